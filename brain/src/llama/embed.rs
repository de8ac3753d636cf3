//! Sentence embeddings with a BERT-style GGUF model (all-MiniLM-L6-v2) on a dedicated thread.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Instant;

use async_trait::async_trait;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::oneshot;

use super::{backend, load_model, model_id, thread_count};
use crate::model::{Embedder, ModelError};

/// Tokens evaluated in one pass; texts are packed into passes up to this size.
const BATCH_TOKENS: usize = 1024;
/// Texts packed into one pass at most (each is its own llama.cpp sequence).
const MAX_SEQUENCES: usize = 32;

type Vectors = Result<Vec<Vec<f32>>, ModelError>;

/// Embeds texts in-process with llama.cpp. Inputs longer than [`Embedder::max_tokens`] are
/// truncated to it (keeping the closing separator token); the chunker keeps chunks below the
/// limit, so this only affects oversized queries.
pub struct LlamaEmbedder {
    model: Arc<LlamaModel>,
    model_id: String,
    dimension: usize,
    max_tokens: usize,
    /// Jobs for the worker thread; the worker stops when this sender is dropped.
    jobs: std_mpsc::Sender<Job>,
}

struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Vectors>,
}

/// What the worker thread needs besides the model.
struct Setup {
    threads: i32,
    batch_tokens: usize,
    pooling: LlamaPoolingType,
    max_tokens: usize,
    dimension: usize,
}

impl LlamaEmbedder {
    /// Loads the GGUF model at `path` and starts its worker thread, which runs inference on
    /// `threads` CPU threads. Blocks while loading.
    pub fn load(path: impl AsRef<Path>, threads: u32) -> Result<Self, ModelError> {
        let path = path.as_ref();
        let load_error = |reason: String| ModelError::Load {
            path: path.display().to_string(),
            reason,
        };
        let model = Arc::new(load_model(path, None)?);
        let dimension = usize::try_from(model.n_embd_out()).unwrap_or(0);
        if dimension == 0 {
            return Err(load_error("the model reports no embedding size".into()));
        }
        let max_tokens = match model.n_ctx_train() {
            0 => 512,
            trained => usize::try_from(trained).unwrap_or(512),
        };
        let setup = Setup {
            threads: thread_count(threads),
            batch_tokens: BATCH_TOKENS.max(max_tokens),
            pooling: pooling_type(&model),
            max_tokens,
            dimension,
        };
        let (jobs, queue) = std_mpsc::channel();
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let worker_model = Arc::clone(&model);
        std::thread::Builder::new()
            .name("llama-embed".into())
            .spawn(move || run_worker(&worker_model, &setup, &ready_tx, &queue))
            .map_err(|error| load_error(format!("starting the embedding thread: {error}")))?;
        ready_rx
            .recv()
            .map_err(|_| load_error("the embedding thread died while starting".into()))?
            .map_err(load_error)?;
        tracing::info!(model = %model_id(path), dimension, max_tokens, "embedder ready");
        Ok(Self {
            model,
            model_id: model_id(path),
            dimension,
            max_tokens,
            jobs,
        })
    }
}

#[async_trait]
impl Embedder for LlamaEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    fn count_tokens(&self, text: &str) -> Result<usize, ModelError> {
        // With the model's special tokens ([CLS] and [SEP] for BERT), as `embed` sees them.
        Ok(self
            .model
            .vocab()
            .tokenize(text.as_bytes(), true, false)
            .len())
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { texts, reply })
            .map_err(|_| ModelError::Inference("the embedding thread has stopped".into()))?;
        answer.await.map_err(|_| {
            ModelError::Inference("the embedding thread stopped before answering".into())
        })?
    }
}

/// The worker thread: creates the context, reports readiness, then serves jobs until the
/// embedder is dropped.
fn run_worker(
    model: &LlamaModel,
    setup: &Setup,
    ready: &std_mpsc::Sender<Result<(), String>>,
    queue: &std_mpsc::Receiver<Job>,
) {
    let mut worker = match Worker::new(model, setup) {
        Ok(worker) => worker,
        Err(reason) => {
            let _ = ready.send(Err(reason));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    while let Ok(job) = queue.recv() {
        let started = Instant::now();
        let result = worker.embed(&job.texts);
        tracing::debug!(texts = job.texts.len(), elapsed = ?started.elapsed(), "embedded");
        let _ = job.reply.send(result);
    }
    tracing::debug!("embedding thread stopped");
}

struct Worker<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    batch_tokens: usize,
    max_tokens: usize,
    dimension: usize,
    /// The token the tokenizer closes an input with ([SEP]), kept when truncating.
    end_token: Option<LlamaToken>,
}

impl<'m> Worker<'m> {
    fn new(model: &'m LlamaModel, setup: &Setup) -> Result<Self, String> {
        let backend = backend().map_err(|error| error.to_string())?;
        let tokens = u32::try_from(setup.batch_tokens).unwrap_or(u32::MAX);
        let sequences = u32::try_from(MAX_SEQUENCES).unwrap_or(1);
        // Every pass starts from an empty cache and holds at most `tokens` tokens in total, so
        // one unified cache of that size serves all sequences (for models that keep one at all:
        // BERT does not).
        let params = LlamaContextParams::default()
            .with_embeddings(true)
            .with_pooling_type(setup.pooling)
            .with_n_ctx(NonZeroU32::new(tokens))
            .with_n_batch(tokens)
            .with_n_ubatch(tokens)
            .with_n_seq_max(sequences)
            .with_kv_unified(true)
            .with_n_threads(setup.threads)
            .with_n_threads_batch(setup.threads);
        let ctx = model
            .new_context(backend, params)
            .map_err(|error| format!("creating the embedding context: {error}"))?;
        let closing = model.vocab().tokenize(b"", true, false);
        Ok(Self {
            model,
            ctx,
            batch: LlamaBatch::new(setup.batch_tokens, 1),
            batch_tokens: setup.batch_tokens,
            max_tokens: setup.max_tokens,
            dimension: setup.dimension,
            end_token: if closing.len() >= 2 {
                closing.last().copied()
            } else {
                None
            },
        })
    }

    /// Embeds all texts, packing as many as fit into each pass (one sequence id per text).
    fn embed(&mut self, texts: &[String]) -> Vectors {
        let inputs = texts
            .iter()
            .map(|text| self.tokens(text))
            .collect::<Result<Vec<_>, _>>()?;
        let mut vectors = Vec::with_capacity(inputs.len());
        let mut start = 0;
        while start < inputs.len() {
            let mut end = start;
            let mut used = 0;
            while end < inputs.len()
                && end - start < MAX_SEQUENCES
                && used + inputs[end].len() <= self.batch_tokens
            {
                used += inputs[end].len();
                end += 1;
            }
            if end == start {
                return Err(ModelError::Inference(format!(
                    "an input of {} tokens does not fit a pass of {}",
                    inputs[start].len(),
                    self.batch_tokens
                )));
            }
            self.pass(&inputs[start..end], &mut vectors)?;
            start = end;
        }
        Ok(vectors)
    }

    /// One decode of several sequences; appends their pooled, normalised vectors in order.
    fn pass(
        &mut self,
        inputs: &[Vec<LlamaToken>],
        vectors: &mut Vec<Vec<f32>>,
    ) -> Result<(), ModelError> {
        self.ctx.clear_kv_cache();
        self.batch.clear();
        for (seq, tokens) in inputs.iter().enumerate() {
            self.batch
                .add_sequence(tokens, seq_id(seq), true)
                .map_err(|error| ModelError::Inference(format!("batching: {error}")))?;
        }
        self.ctx
            .decode(&mut self.batch)
            .map_err(|error| ModelError::Inference(format!("embedding: {error}")))?;
        for seq in 0..inputs.len() {
            let pooled = self
                .ctx
                .embeddings_seq_ith(seq_id(seq))
                .map_err(|error| ModelError::Inference(format!("reading embeddings: {error}")))?;
            if pooled.len() != self.dimension {
                return Err(ModelError::Inference(format!(
                    "the model returned {} values, expected {}",
                    pooled.len(),
                    self.dimension
                )));
            }
            vectors.push(normalize(pooled));
        }
        Ok(())
    }

    /// The text's tokens with the model's special tokens, truncated to `max_tokens`.
    fn tokens(&self, text: &str) -> Result<Vec<LlamaToken>, ModelError> {
        let mut tokens = self.model.vocab().tokenize(text.as_bytes(), true, false);
        if tokens.is_empty() {
            return Err(ModelError::Input(
                "the model has no tokens for an empty text".into(),
            ));
        }
        if tokens.len() > self.max_tokens {
            let last = tokens.last().copied();
            tokens.truncate(self.max_tokens);
            if let (Some(end), Some(slot)) = (self.end_token, tokens.last_mut())
                && last == Some(end)
            {
                *slot = end;
            }
        }
        Ok(tokens)
    }
}

/// The pooling the GGUF declares (`{arch}.pooling_type`), or mean pooling when it declares none.
fn pooling_type(model: &LlamaModel) -> LlamaPoolingType {
    let declared = model
        .meta_val_str("general.architecture")
        .ok()
        .and_then(|arch| model.meta_val_str(&format!("{arch}.pooling_type")).ok())
        .and_then(|value| value.trim().parse::<i32>().ok())
        .map(LlamaPoolingType::from);
    match declared {
        Some(
            pooling @ (LlamaPoolingType::Mean | LlamaPoolingType::Cls | LlamaPoolingType::Last),
        ) => pooling,
        other => {
            tracing::warn!(declared = ?other, "the model declares no usable pooling; using mean pooling");
            LlamaPoolingType::Mean
        }
    }
}

fn seq_id(index: usize) -> i32 {
    i32::try_from(index).unwrap_or(i32::MAX)
}

/// Scales a vector to unit length (cosine similarity becomes a dot product).
fn normalize(vector: &[f32]) -> Vec<f32> {
    let norm = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter().map(|value| value / norm).collect()
    } else {
        vector.to_vec()
    }
}
