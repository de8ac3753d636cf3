//! Streamed chat generation on a fixed pool of OS worker threads, each owning a llama.cpp
//! context. Requests wait in a queue that is fair across tenants; each worker keeps the tokens
//! in its KV cache and only evaluates the part of a new prompt that differs (the tenant's
//! persona and instructions at the start of the prompt are reused).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::worker::{Job, Shared, spawn_worker};
use super::{default_threads, load_model, model_id};
use crate::model::{ChatMessage, GenerateEvent, GenerateRequest, Generator, ModelError, Role};

/// One item of a generation stream.
pub(super) type Event = Result<GenerateEvent, ModelError>;

/// How the in-process generator runs.
#[derive(Clone, Debug)]
pub struct GeneratorConfig {
    /// CPU threads each worker uses for inference.
    pub threads: u32,
    /// The context window in tokens (prompt plus answer), per worker.
    pub context_tokens: u32,
    /// Worker threads; each owns a context (and its KV cache memory) and runs one request.
    pub workers: usize,
    /// Layers offloaded to the GPU (with the `cuda` feature): 0 keeps the model on the CPU,
    /// a number above the model's layer count (99) offloads all of it.
    pub gpu_layers: u32,
    /// Requests that may wait across all tenants before new ones are refused as busy.
    pub max_queue: usize,
    /// Requests one tenant may have waiting before its new ones are refused as busy.
    pub per_tenant_queue: usize,
    /// Events buffered per stream before the worker waits for the reader.
    pub stream_buffer: usize,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            threads: default_threads(),
            context_tokens: 2048,
            workers: 1,
            gpu_layers: 0,
            max_queue: 64,
            per_tenant_queue: 4,
            stream_buffer: 32,
        }
    }
}

/// Generates chat answers in-process with llama.cpp on dedicated worker threads.
pub struct LlamaGenerator {
    model: Arc<LlamaModel>,
    model_id: String,
    template: LlamaChatTemplate,
    /// Texts of the control tokens (`<|im_start|>`...), removed from message contents so a
    /// message cannot forge turns of the chat template.
    specials: Vec<String>,
    context_tokens: usize,
    stream_buffer: usize,
    shared: Arc<Shared>,
}

impl LlamaGenerator {
    /// Loads the GGUF model at `path` once and starts `config.workers` worker threads, each
    /// with its own context. Blocks while loading.
    pub fn load(path: impl AsRef<Path>, config: GeneratorConfig) -> Result<Self, ModelError> {
        let path = path.as_ref();
        let load_error = |reason: String| ModelError::Load {
            path: path.display().to_string(),
            reason,
        };
        let model = Arc::new(load_model(path, Some(config.gpu_layers))?);
        let template = match model.chat_template(None) {
            Ok(template) => template,
            Err(error) => {
                tracing::warn!(%error, "the model carries no chat template; using ChatML");
                LlamaChatTemplate::new("chatml").map_err(|error| load_error(error.to_string()))?
            }
        };
        let specials = special_texts(&model);
        let shared = Arc::new(Shared::new(config.max_queue, config.per_tenant_queue));
        // One at a time: creating contexts of one model in parallel is unsound in llama.cpp.
        let mut context_tokens = usize::try_from(config.context_tokens).unwrap_or(usize::MAX);
        for id in 0..config.workers.max(1) {
            match spawn_worker(id, &model, &shared, &config) {
                Ok(n_ctx) => context_tokens = n_ctx,
                Err(reason) => {
                    shared.shut_down();
                    return Err(load_error(reason));
                }
            }
        }
        tracing::info!(
            model = %model_id(path),
            workers = config.workers.max(1),
            context_tokens,
            "generator ready"
        );
        Ok(Self {
            model,
            model_id: model_id(path),
            template,
            specials,
            context_tokens,
            stream_buffer: config.stream_buffer.max(1),
            shared,
        })
    }

    /// The prompt tokens: the messages through the model's chat template, with the assistant's
    /// turn opened.
    fn prompt_tokens(&self, messages: &[ChatMessage]) -> Result<Vec<LlamaToken>, ModelError> {
        if messages.is_empty() {
            return Err(ModelError::Input("no messages to answer".into()));
        }
        let chat = messages
            .iter()
            .map(|message| {
                LlamaChatMessage::new(
                    role_name(message.role).to_string(),
                    self.sanitize(&message.content),
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| ModelError::Input(error.to_string()))?;
        let prompt = self
            .model
            .apply_chat_template(&self.template, &chat, true)
            .map_err(|error| {
                ModelError::Inference(format!("applying the chat template: {error}"))
            })?;
        // Special tokens are parsed here: the template's markers become control tokens.
        Ok(self.model.vocab().tokenize(prompt.as_bytes(), true, true))
    }

    /// The content without NUL bytes and without the text of any control token.
    fn sanitize(&self, content: &str) -> String {
        let mut clean = content.replace('\0', "");
        loop {
            let before = clean.len();
            for special in &self.specials {
                if clean.contains(special.as_str()) {
                    clean = clean.replace(special.as_str(), "");
                }
            }
            // Removing one marker can join the halves of another: repeat until nothing changes.
            if clean.len() == before {
                return clean;
            }
        }
    }
}

impl Drop for LlamaGenerator {
    fn drop(&mut self) {
        // Workers finish the request they run, then exit; waiting requests end unanswered.
        self.shared.shut_down();
    }
}

#[async_trait]
impl Generator for LlamaGenerator {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn count_tokens(&self, text: &str) -> Result<usize, ModelError> {
        Ok(self
            .model
            .vocab()
            .tokenize(text.as_bytes(), false, false)
            .len())
    }

    fn context_tokens(&self) -> usize {
        self.context_tokens
    }

    async fn generate(
        &self,
        request: GenerateRequest,
        cancel: CancellationToken,
    ) -> Result<mpsc::Receiver<Event>, ModelError> {
        let prompt = self.prompt_tokens(&request.messages)?;
        if prompt.len() >= self.context_tokens {
            return Err(ModelError::Input(format!(
                "the prompt has {} tokens but the context window holds {}: shorten it",
                prompt.len(),
                self.context_tokens
            )));
        }
        let (events, receiver) = mpsc::channel(self.stream_buffer);
        let job = Job {
            tenant: request.tenant,
            prompt,
            params: request.params,
            events,
            cancel,
            enqueued: Instant::now(),
        };
        self.shared.submit(request.tenant, job)?;
        Ok(receiver)
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// The texts of the model's control and end-of-generation tokens.
fn special_texts(model: &LlamaModel) -> Vec<String> {
    let vocab = model.vocab();
    let mut texts: Vec<String> = vocab
        .tokens()
        .filter(|&token| vocab.is_control(token) || vocab.is_eog(token))
        .filter_map(|token| String::from_utf8(vocab.token_to_piece(token, true, None)).ok())
        .filter(|text| !text.trim().is_empty())
        .collect();
    texts.sort_unstable();
    texts.dedup();
    texts
}
