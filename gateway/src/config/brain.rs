//! The `brain` section: models, vector store, chunking and prompt budgets.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which engine runs the models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelBackend {
    /// llama.cpp in this process (CPU, or GPU with the `cuda` feature).
    Llama,
    /// An Ollama server.
    Ollama,
}

/// Which vector store keeps the chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorBackend {
    /// The embedded Qdrant engine, under `data_dir/vectors`.
    Edge,
    /// A Qdrant server at `brain.vectors.url`.
    Qdrant,
}

/// Answers from the tenant's knowledge.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrainConfig {
    /// Model engine.
    pub backend: ModelBackend,
    /// Folder of the model files (`make models` fills `./models`).
    pub models_dir: PathBuf,
    /// Embedding model GGUF, relative to `models_dir` unless absolute.
    pub embedding_model: PathBuf,
    /// Generation model GGUF, relative to `models_dir` unless absolute.
    pub generation_model: PathBuf,
    /// CPU threads per inference.
    pub threads: u32,
    /// Generation workers (each holds its own context).
    pub workers: u32,
    /// Context window of a generation in tokens.
    pub context_tokens: u32,
    /// Model layers offloaded to the GPU (needs a `cuda` build).
    pub gpu_layers: u32,
    /// Longest answer in tokens.
    pub max_answer_tokens: u32,
    /// Queued generations per tenant before new ones are refused (429).
    pub per_tenant_queue: u32,
    /// Ollama, when `backend = "ollama"`.
    pub ollama: OllamaConfig,
    /// The vector store.
    pub vectors: VectorsConfig,
    /// Chunk size in embedding tokens (all-MiniLM-L6-v2 was trained on short passages).
    pub chunk_tokens: u32,
    /// Tokens repeated between consecutive chunks.
    pub chunk_overlap: u32,
    /// Tokens the passages of one prompt may take.
    pub passage_tokens: u32,
    /// Passages per prompt.
    pub passages: u32,
    /// The instruction that opens the coach's system message (`{name}`: the coach's name),
    /// before the persona and the passages. The default asks for "I don't know" when the
    /// passages do not hold the answer, which the decline decision reads; chosen on SQuAD 2.0
    /// dev articles and the README set for the default model (docs/BENCHMARKS.md).
    pub instruction: String,
    /// Dense similarity under which the coach says it does not know.
    pub relevance_floor: f32,
    /// The coach declines when the model was at least this likely to open its reply with "I
    /// don't know" (the prompt asks for it when the sources do not hold the answer); above 1
    /// only a reply that does open with it is a decline. Chosen on SQuAD 2.0 dev articles
    /// (docs/BENCHMARKS.md) for the default model.
    pub abstain_threshold: f32,
    /// The coach declines without generating when fewer than this share of the question's terms
    /// occur in the passages found (0: off). Chosen on SQuAD 2.0 dev articles with `abstain_threshold`.
    pub coverage_floor: f32,
    /// Each sentence of a reply must find at least this share of its content words in one
    /// passage of its prompt (or in the question): sentences under it are dropped, and a reply
    /// with nothing left is declined (0: off). Chosen on SQuAD 2.0 dev articles, where 0 to 0.6
    /// score the same: the lowest floor that still drops what shares almost no word with the
    /// sources, since a right coaching sentence carries words of its own (docs/BENCHMARKS.md).
    pub support_floor: f32,
    /// Answers the coach of one tenant may generate per day (UTC), 0 for no limit. Beyond it,
    /// a message gets a friendly reply and goes to the team (handoff `quota_reached`).
    pub answers_per_day: u32,
    /// Reciprocal rank fusion's constant: larger values flatten the difference between ranks.
    pub fusion_k: f32,
    /// Weight of the keyword ranking against the dense one (1.0) in fusion.
    pub keyword_weight: f32,
    /// Largest upload in bytes.
    pub max_upload_bytes: u64,
    /// Let `POST /v1/documents` fetch pages on loopback, private or link-local addresses.
    pub allow_private_urls: bool,
    /// Speech to text for voice notes.
    pub speech: SpeechConfig,
}

impl Default for BrainConfig {
    fn default() -> Self {
        Self {
            backend: ModelBackend::Llama,
            models_dir: PathBuf::from("./models"),
            embedding_model: PathBuf::from("all-MiniLM-L6-v2.f16.gguf"),
            generation_model: PathBuf::from("SmolLM2-135M-Instruct.Q4_1.gguf"),
            threads: 2,
            workers: 1,
            context_tokens: 2048,
            gpu_layers: 0,
            max_answer_tokens: 128,
            per_tenant_queue: 8,
            ollama: OllamaConfig::default(),
            vectors: VectorsConfig::default(),
            chunk_tokens: 256,
            chunk_overlap: 38,
            passage_tokens: 300,
            passages: 3,
            instruction: coach_brain::prompt::INSTRUCTION.into(),
            relevance_floor: 0.35,
            abstain_threshold: 0.1,
            coverage_floor: 0.0,
            support_floor: 0.3,
            answers_per_day: 0,
            fusion_k: 10.0,
            keyword_weight: 1.1,
            max_upload_bytes: 20 * 1024 * 1024,
            allow_private_urls: false,
            speech: SpeechConfig::default(),
        }
    }
}

impl BrainConfig {
    /// Retrieval's tunables from this configuration.
    pub fn retrieve_config(&self) -> coach_brain::retrieve::RetrieveConfig {
        coach_brain::retrieve::RetrieveConfig {
            floor: self.relevance_floor,
            rrf_k: self.fusion_k,
            keyword_weight: self.keyword_weight,
            ..coach_brain::retrieve::RetrieveConfig::default()
        }
    }

    /// The embedding model's path.
    pub fn embedding_path(&self) -> PathBuf {
        self.models_dir.join(&self.embedding_model)
    }

    /// The generation model's path.
    pub fn generation_path(&self) -> PathBuf {
        self.models_dir.join(&self.generation_model)
    }

    /// The speech model's path.
    pub fn speech_path(&self) -> PathBuf {
        self.models_dir.join(&self.speech.model)
    }
}

/// Speech to text: whisper.cpp in its own worker process (`coach-whisper`, built with the
/// gateway), started when the first voice note comes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpeechConfig {
    /// Transcribe voice notes at all; when off, they are answered with a request to write.
    pub enabled: bool,
    /// The Whisper model in whisper.cpp's format, relative to `models_dir` unless absolute.
    pub model: PathBuf,
    /// The worker program; by default `coach-whisper` beside the gateway's own binary.
    pub worker: Option<PathBuf>,
    /// CPU threads for one transcription (0: as many as `brain.threads`).
    pub threads: u32,
    /// Encode only the part of Whisper's 30-second window a note fills (plus a margin): about
    /// three times faster on short notes, at the same error rate in `make bench`; off runs
    /// whisper.cpp's full window.
    pub fit_window: bool,
}

impl Default for SpeechConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            model: PathBuf::from("ggml-whisper-base.bin"),
            worker: None,
            threads: 0,
            fit_window: true,
        }
    }
}

/// An Ollama server.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OllamaConfig {
    /// Base URL.
    pub url: String,
    /// Chat model name.
    pub chat_model: String,
    /// Embedding model name.
    pub embed_model: String,
}

impl Default for OllamaConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:11434".into(),
            chat_model: "llama3.2:1b".into(),
            embed_model: "all-minilm".into(),
        }
    }
}

/// The vector store.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VectorsConfig {
    /// `edge` (embedded) or `qdrant` (server).
    pub backend: VectorBackend,
    /// Qdrant server URL (gRPC, e.g. `http://127.0.0.1:6334`).
    pub url: String,
    /// Qdrant collection.
    pub collection: String,
    /// Qdrant API key (secret).
    pub api_key: String,
}

impl Default for VectorsConfig {
    fn default() -> Self {
        Self {
            backend: VectorBackend::Edge,
            url: String::new(),
            collection: "coach_chunks".into(),
            api_key: String::new(),
        }
    }
}
