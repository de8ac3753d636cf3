//! The two model traits every backend implements: embeddings and streamed generation.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A model backend failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The model file could not be loaded (path, format), with the fix.
    #[error("model {path}: {reason}")]
    Load {
        /// The configured path.
        path: String,
        /// What went wrong and what to do.
        reason: String,
    },
    /// The input does not fit the model (too long, empty).
    #[error("input: {0}")]
    Input(String),
    /// The backend is busy beyond its queue or the tenant's quota.
    #[error("busy: {0}")]
    Busy(String),
    /// The remote backend (Ollama) failed or could not be reached.
    #[error("backend: {0}")]
    Backend(String),
    /// Inference failed inside the engine.
    #[error("inference: {0}")]
    Inference(String),
}

/// Turns text into vectors of a fixed dimension.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// Identifies the model (recorded with each collection; vectors of two models never mix).
    fn model_id(&self) -> &str;
    /// Vector dimension.
    fn dimension(&self) -> usize;
    /// The most tokens one input may have.
    fn max_tokens(&self) -> usize;
    /// Counts tokens of `text` with the model's own tokenizer (chunk sizing).
    fn count_tokens(&self, text: &str) -> Result<usize, ModelError>;
    /// Embeds each text; vectors are L2-normalised.
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, ModelError>;
}

/// One chat turn.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: Role,
    /// The text.
    pub content: String,
}

/// Who speaks in a chat turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions, persona and passages.
    System,
    /// The person asking.
    User,
    /// The coach.
    Assistant,
}

/// How to generate.
#[derive(Clone, Debug)]
pub struct GenerateParams {
    /// Stop after this many new tokens.
    pub max_tokens: usize,
    /// Sampling temperature (0 = greedy).
    pub temperature: f32,
    /// Stop when the output ends with one of these.
    pub stop: Vec<String>,
    /// Penalty on tokens among the last `repeat_last_n` generated ones (1.0: none; 1.1 as
    /// Ollama's default). Small models otherwise loop on a phrase until the token budget ends.
    pub repeat_penalty: f32,
    /// How many recent tokens the penalty looks at.
    pub repeat_last_n: i32,
    /// What the reply says when the sources do not hold the answer (the prompt asks for these
    /// words). A backend that sees the model's probabilities reports how likely the reply
    /// starts with one of them ([`GenerateEvent::Abstain`]) before its first token.
    pub abstain: Vec<String>,
}

impl Default for GenerateParams {
    fn default() -> Self {
        Self {
            max_tokens: 128,
            temperature: 0.0,
            stop: vec!["<|im_end|>".into(), "\nUser:".into()],
            repeat_penalty: 1.1,
            repeat_last_n: 64,
            abstain: Vec::new(),
        }
    }
}

/// A generation request: the chat so far. Requests that start with the same messages (the
/// tenant's persona and instructions) share a prompt prefix whose KV cache a backend may reuse.
#[derive(Clone, Debug)]
pub struct GenerateRequest {
    /// Whose quota this counts against (fair queueing across tenants).
    pub tenant: crate::Tenant,
    /// The messages, system first.
    pub messages: Vec<ChatMessage>,
    /// Parameters.
    pub params: GenerateParams,
}

/// What a generation stream yields: `Started` once, then `Token`s, then `Done`.
#[derive(Clone, Debug, PartialEq)]
pub enum GenerateEvent {
    /// The request left the queue and generation began (a "typing" signal for channels).
    Started {
        /// When it began; starts of one backend are ordered by it (fair-queueing checks).
        at: Instant,
        /// How long the request waited in the backend's queue.
        queued: Duration,
    },
    /// How likely the model was to start its reply with one of [`GenerateParams::abstain`]
    /// (the probabilities of their first tokens, summed), sent once before the first `Token`
    /// by backends that see the model's probabilities (llama.cpp).
    Abstain(f32),
    /// A piece of text.
    Token(String),
    /// Generation ended.
    Done(Usage),
}

/// Tokens used by one generation (metered per tenant).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Prompt tokens evaluated (excluding a reused cached prefix).
    pub prompt_tokens: usize,
    /// Prompt tokens served from a cached prefix.
    pub cached_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
}

/// Generates chat answers as a stream of tokens.
#[async_trait]
pub trait Generator: Send + Sync {
    /// Identifies the model.
    fn model_id(&self) -> &str;
    /// Counts tokens with the generation model's tokenizer (prompt budgeting).
    fn count_tokens(&self, text: &str) -> Result<usize, ModelError>;
    /// The context window in tokens.
    fn context_tokens(&self) -> usize;
    /// Starts generating; events arrive on the receiver. Cancelling `cancel` (or dropping the
    /// receiver) stops generation at the next token; the stream then ends, with a `Done` carrying
    /// the usage so far when the stream has room for it.
    async fn generate(
        &self,
        request: GenerateRequest,
        cancel: CancellationToken,
    ) -> Result<mpsc::Receiver<Result<GenerateEvent, ModelError>>, ModelError>;
}
