//! The embedding and generation traits over an Ollama server's HTTP API (`/api/embed` and a
//! streamed `/api/chat`). Ollama queues and schedules requests itself; the generator only
//! bounds how many it has in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::model::{
    ChatMessage, Embedder, GenerateEvent, GenerateRequest, Generator, ModelError, Usage,
};

type Event = Result<GenerateEvent, ModelError>;

/// How long connecting to Ollama may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one embedding request may take (a large batch on a CPU can be slow).
const EMBED_TIMEOUT: Duration = Duration::from_secs(300);
/// The input limit assumed for an Ollama embedding model (all-MiniLM's 512 tokens).
pub const DEFAULT_EMBED_TOKENS: usize = 512;

/// Embeds texts with an Ollama embedding model. Token counts are estimated as characters / 4
/// (rounded up), because Ollama exposes no tokenizer; keep chunk budgets well under the
/// model's limit to absorb the error.
pub struct OllamaEmbedder {
    client: reqwest::Client,
    url: String,
    model: String,
    model_id: String,
    dimension: usize,
    max_tokens: usize,
}

impl OllamaEmbedder {
    /// Connects to the Ollama server at `base_url` (e.g. `http://localhost:11434`) and learns
    /// the vector dimension of `model` by embedding a probe text. The input limit is taken to
    /// be [`DEFAULT_EMBED_TOKENS`]; see [`OllamaEmbedder::with_max_tokens`].
    pub async fn connect(base_url: &str, model: &str) -> Result<Self, ModelError> {
        let mut embedder = Self {
            client: client(),
            url: endpoint(base_url, "api/embed"),
            model: model.to_string(),
            model_id: format!("ollama/{model}"),
            dimension: 0,
            max_tokens: DEFAULT_EMBED_TOKENS,
        };
        let probe = embedder.request(&["dimension probe".to_string()]).await?;
        embedder.dimension = probe.first().map_or(0, Vec::len);
        if embedder.dimension == 0 {
            return Err(ModelError::Backend(format!(
                "ollama model {model} returned an empty embedding: is it an embedding model?"
            )));
        }
        tracing::info!(
            model,
            dimension = embedder.dimension,
            "ollama embedder ready"
        );
        Ok(embedder)
    }

    /// Sets the model's input limit in tokens, which Ollama does not report.
    #[must_use]
    pub fn with_max_tokens(mut self, max_tokens: usize) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    async fn request(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        #[derive(Serialize)]
        struct Body<'a> {
            model: &'a str,
            input: &'a [String],
        }
        #[derive(Deserialize)]
        struct Answer {
            embeddings: Vec<Vec<f32>>,
        }
        let started = Instant::now();
        let response = self
            .client
            .post(&self.url)
            .timeout(EMBED_TIMEOUT)
            .json(&Body {
                model: &self.model,
                input: texts,
            })
            .send()
            .await
            .map_err(|error| connect_error(&self.url, &error))?;
        let response = check_status(response).await?;
        let answer: Answer = response
            .json()
            .await
            .map_err(|error| ModelError::Backend(format!("unreadable embed answer: {error}")))?;
        if answer.embeddings.len() != texts.len() {
            return Err(ModelError::Backend(format!(
                "ollama returned {} embeddings for {} texts",
                answer.embeddings.len(),
                texts.len()
            )));
        }
        tracing::debug!(texts = texts.len(), elapsed = ?started.elapsed(), "ollama embedded");
        Ok(answer.embeddings)
    }
}

#[async_trait]
impl Embedder for OllamaEmbedder {
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
        Ok(text.chars().count().div_ceil(4))
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let vectors = self.request(&texts).await?;
        vectors
            .into_iter()
            .map(|vector| {
                if vector.len() == self.dimension {
                    Ok(normalize(vector))
                } else {
                    Err(ModelError::Backend(format!(
                        "ollama returned a vector of {} values, expected {}",
                        vector.len(),
                        self.dimension
                    )))
                }
            })
            .collect()
    }
}

/// How the Ollama generator runs.
#[derive(Clone, Debug)]
pub struct OllamaGeneratorConfig {
    /// The context window to ask for (`num_ctx`), in tokens.
    pub context_tokens: usize,
    /// Requests in flight to Ollama at once; more wait here.
    pub max_concurrent: usize,
    /// Requests that may wait here before new ones are refused as busy.
    pub max_queue: usize,
    /// Events buffered per stream before reading from Ollama pauses.
    pub stream_buffer: usize,
}

impl Default for OllamaGeneratorConfig {
    fn default() -> Self {
        Self {
            context_tokens: 2048,
            max_concurrent: 4,
            max_queue: 64,
            stream_buffer: 32,
        }
    }
}

/// Generates chat answers with an Ollama chat model, streamed. Token counts are estimated as
/// characters / 4 (rounded up). Ollama reports evaluated prompt tokens only, so
/// `Usage::cached_tokens` stays 0.
pub struct OllamaGenerator {
    client: reqwest::Client,
    url: String,
    model: String,
    model_id: String,
    config: OllamaGeneratorConfig,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
}

impl OllamaGenerator {
    /// A generator for `model` on the Ollama server at `base_url` with a context window of
    /// `context_tokens` and default limits; nothing is sent until the first request.
    pub fn new(base_url: &str, model: &str, context_tokens: usize) -> Self {
        let config = OllamaGeneratorConfig {
            context_tokens,
            ..OllamaGeneratorConfig::default()
        };
        Self::with_config(base_url, model, config)
    }

    /// A generator for `model` on the Ollama server at `base_url`, configured in full.
    pub fn with_config(base_url: &str, model: &str, config: OllamaGeneratorConfig) -> Self {
        Self {
            client: client(),
            url: endpoint(base_url, "api/chat"),
            model: model.to_string(),
            model_id: format!("ollama/{model}"),
            permits: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
            config,
            waiting: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl Generator for OllamaGenerator {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn count_tokens(&self, text: &str) -> Result<usize, ModelError> {
        Ok(text.chars().count().div_ceil(4))
    }

    fn context_tokens(&self) -> usize {
        self.config.context_tokens
    }

    async fn generate(
        &self,
        request: GenerateRequest,
        cancel: CancellationToken,
    ) -> Result<mpsc::Receiver<Event>, ModelError> {
        #[derive(Serialize)]
        struct Body<'a> {
            model: &'a str,
            messages: &'a [ChatMessage],
            stream: bool,
            options: Options<'a>,
        }
        #[derive(Serialize)]
        struct Options<'a> {
            num_predict: usize,
            temperature: f32,
            repeat_penalty: f32,
            repeat_last_n: i32,
            stop: &'a [String],
            num_ctx: usize,
        }

        let enqueued = Instant::now();
        let permit = {
            let _waiting = Waiting::enter(&self.waiting, self.config.max_queue)?;
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(ended_stream()),
                permit = Arc::clone(&self.permits).acquire_owned() => permit
                    .map_err(|_| ModelError::Backend("the generator is shutting down".into()))?,
            }
        };
        let body = Body {
            model: &self.model,
            messages: &request.messages,
            stream: true,
            options: Options {
                num_predict: request.params.max_tokens,
                temperature: request.params.temperature,
                repeat_penalty: request.params.repeat_penalty,
                repeat_last_n: request.params.repeat_last_n,
                stop: &request.params.stop,
                num_ctx: self.config.context_tokens,
            },
        };
        let sent = self.client.post(&self.url).json(&body).send();
        let response = tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(ended_stream()),
            response = sent => response.map_err(|error| connect_error(&self.url, &error))?,
        };
        let response = check_status(response).await?;
        let started = GenerateEvent::Started {
            at: Instant::now(),
            queued: enqueued.elapsed(),
        };
        let (events, receiver) = mpsc::channel(self.config.stream_buffer.max(1));
        tokio::spawn(pump(response, events, cancel, permit, started));
        Ok(receiver)
    }
}

/// Counts requests waiting for a permit; refuses beyond the limit. Leaving (even by a dropped
/// future) frees the place.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize, limit: usize) -> Result<Self, ModelError> {
        let before = count.fetch_add(1, Ordering::SeqCst);
        let place = Self(count);
        if before >= limit.max(1) {
            return Err(ModelError::Busy(format!(
                "{before} generations are already waiting for the model server; retry shortly"
            )));
        }
        Ok(place)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Reads Ollama's NDJSON stream and forwards it as events. Holding the permit bounds the
/// requests in flight; returning drops the response, which closes the connection and makes
/// Ollama stop generating.
async fn pump(
    mut response: reqwest::Response,
    events: mpsc::Sender<Event>,
    cancel: CancellationToken,
    _permit: OwnedSemaphorePermit,
    started: GenerateEvent,
) {
    if !deliver(&events, &cancel, Ok(started)).await {
        return;
    }
    let mut lines = LineBuffer::default();
    let mut tokens = 0;
    let mut loops = crate::repetition::LoopGuard::new();
    loop {
        let chunk = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                let usage = Usage { completion_tokens: tokens, ..Usage::default() };
                let _ = events.try_send(Ok(GenerateEvent::Done(usage)));
                return;
            }
            () = events.closed() => return,
            chunk = response.chunk() => chunk,
        };
        let (complete, body_ended) = match chunk {
            Ok(Some(bytes)) => (lines.push(&bytes), false),
            Ok(None) => (lines.finish(), true),
            Err(error) => {
                let error = ModelError::Backend(format!("reading the ollama stream: {error}"));
                deliver(&events, &cancel, Err(error)).await;
                return;
            }
        };
        for line in complete {
            let (text, done) = match parse_line(&line) {
                Ok(parsed) => parsed,
                Err(error) => {
                    deliver(&events, &cancel, Err(error)).await;
                    return;
                }
            };
            if !text.is_empty() {
                tokens += 1;
                let looping = loops.push(&text);
                if !deliver(&events, &cancel, Ok(GenerateEvent::Token(text))).await {
                    return;
                }
                if looping {
                    // Dropping the response ends Ollama's generation.
                    let usage = Usage {
                        completion_tokens: tokens,
                        ..Usage::default()
                    };
                    deliver(&events, &cancel, Ok(GenerateEvent::Done(usage))).await;
                    return;
                }
            }
            if let Some(counts) = done {
                let usage = Usage {
                    prompt_tokens: counts.prompt_eval_count.unwrap_or(0),
                    cached_tokens: 0,
                    completion_tokens: counts.eval_count.unwrap_or(tokens),
                };
                deliver(&events, &cancel, Ok(GenerateEvent::Done(usage))).await;
                return;
            }
        }
        if body_ended {
            let error = ModelError::Backend("the ollama stream ended before its final line".into());
            deliver(&events, &cancel, Err(error)).await;
            return;
        }
    }
}

/// Sends an event, waiting while the stream is full; `false` once cancelled or unread.
async fn deliver(events: &mpsc::Sender<Event>, cancel: &CancellationToken, event: Event) -> bool {
    tokio::select! {
        biased;
        () = cancel.cancelled() => false,
        sent = events.send(event) => sent.is_ok(),
    }
}

/// Splits a byte stream into lines (a line may arrive in several chunks).
#[derive(Default)]
struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    /// Adds bytes; returns the lines they complete.
    fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.pending.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(end) = self.pending.iter().position(|&byte| byte == b'\n') {
            lines.push(self.pending.drain(..=end).collect());
        }
        lines
    }

    /// Ends the stream: a last line without a newline still counts.
    fn finish(&mut self) -> Vec<Vec<u8>> {
        if self.pending.is_empty() {
            Vec::new()
        } else {
            vec![std::mem::take(&mut self.pending)]
        }
    }
}

/// One line of Ollama's chat stream; the counts come on the final (`done`) line.
#[derive(Deserialize)]
struct ChatLine {
    #[serde(default)]
    message: Option<ChatLineMessage>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    prompt_eval_count: Option<usize>,
    #[serde(default)]
    eval_count: Option<usize>,
}

#[derive(Deserialize)]
struct ChatLineMessage {
    #[serde(default)]
    content: String,
}

/// Token counts from the final line.
struct Counts {
    prompt_eval_count: Option<usize>,
    eval_count: Option<usize>,
}

/// A line's text (possibly empty) and, on the final line, the counts; an `error` line or an
/// unreadable one is an error.
fn parse_line(line: &[u8]) -> Result<(String, Option<Counts>), ModelError> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok((String::new(), None));
    }
    let parsed: ChatLine = serde_json::from_slice(line)
        .map_err(|error| ModelError::Backend(format!("unreadable ollama stream line: {error}")))?;
    if let Some(error) = parsed.error {
        return Err(ModelError::Backend(format!("ollama: {error}")));
    }
    let text = parsed
        .message
        .map(|message| message.content)
        .unwrap_or_default();
    let counts = parsed.done.then_some(Counts {
        prompt_eval_count: parsed.prompt_eval_count,
        eval_count: parsed.eval_count,
    });
    Ok((text, counts))
}

/// A stream that ends at once (the request was cancelled before it started).
fn ended_stream() -> mpsc::Receiver<Event> {
    let (_, receiver) = mpsc::channel(1);
    receiver
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "HTTP client without a connect timeout");
            reqwest::Client::new()
        })
}

fn endpoint(base_url: &str, path: &str) -> String {
    format!("{}/{path}", base_url.trim_end_matches('/'))
}

fn connect_error(url: &str, error: &reqwest::Error) -> ModelError {
    ModelError::Backend(format!(
        "cannot reach ollama at {url}: {error}; is `ollama serve` running?"
    ))
}

/// Passes a 2xx response through; otherwise reads Ollama's `{"error": ...}` into the error.
async fn check_status(response: reqwest::Response) -> Result<reqwest::Response, ModelError> {
    #[derive(Deserialize)]
    struct Failure {
        error: String,
    }
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    let reason = serde_json::from_str::<Failure>(&text).map_or_else(
        |_| text.chars().take(200).collect::<String>(),
        |failure| failure.error,
    );
    Err(ModelError::Backend(format!(
        "ollama answered {status}: {reason}"
    )))
}

/// Scales a vector to unit length (Ollama normalises already; other servers may not).
fn normalize(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
    if norm > 0.0 {
        for value in &mut vector {
            *value /= norm;
        }
    }
    vector
}
