//! Shared by the model tests: where the models are, reading generation streams, and the one
//! generator compliance suite every backend passes (llama.cpp and Ollama alike).

#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use coach_brain::Tenant;
use coach_brain::model::{
    ChatMessage, GenerateEvent, GenerateParams, GenerateRequest, Generator, ModelError, Role, Usage,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub type Stream = mpsc::Receiver<Result<GenerateEvent, ModelError>>;

/// How long a stream may stay silent before the test fails (a CPU runs the models).
const STALL: Duration = Duration::from_secs(180);

pub const SYSTEM: &str = "You are a friendly running coach. Answer in plain English.";
pub const LONG_ASK: &str =
    "Write a long, detailed story about a young runner training for her first marathon.";

/// The models folder: `COACH_MODELS_DIR`, else `models/` at the workspace root.
pub fn models_dir() -> PathBuf {
    std::env::var_os("COACH_MODELS_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"),
        PathBuf::from,
    )
}

/// A model file, or a failure that says how to get it (these tests never skip silently).
pub fn model_file(name: &str) -> PathBuf {
    let path = models_dir().join(name);
    assert!(
        path.is_file(),
        "model file {} is missing: run `make models` (or set COACH_MODELS_DIR to the folder \
         that holds it)",
        path.display()
    );
    path
}

pub fn tenant() -> Tenant {
    Tenant::scoped(Uuid::new_v4())
}

pub fn request(tenant: Tenant, system: &str, user: &str, max_tokens: usize) -> GenerateRequest {
    GenerateRequest {
        tenant,
        messages: vec![
            ChatMessage {
                role: Role::System,
                content: system.to_string(),
            },
            ChatMessage {
                role: Role::User,
                content: user.to_string(),
            },
        ],
        params: GenerateParams {
            max_tokens,
            ..GenerateParams::default()
        },
    }
}

/// What a stream delivered, checked event by event against the protocol.
#[derive(Debug, Default)]
pub struct Outcome {
    pub started: Option<Instant>,
    pub queued: Option<Duration>,
    pub tokens: Vec<String>,
    pub abstain: Option<f32>,
    pub usage: Option<Usage>,
    pub error: Option<ModelError>,
}

impl Outcome {
    pub fn text(&self) -> String {
        self.tokens.concat()
    }

    /// Records one event; the protocol is `Started`, then tokens, then `Done` or an error.
    pub fn record(&mut self, event: Result<GenerateEvent, ModelError>) {
        assert!(
            self.usage.is_none() && self.error.is_none(),
            "an event came after the end: {event:?}"
        );
        match event {
            Ok(GenerateEvent::Started { at, queued }) => {
                assert!(self.started.is_none(), "Started came twice");
                assert!(self.tokens.is_empty(), "Started came after tokens");
                self.started = Some(at);
                self.queued = Some(queued);
            }
            Ok(GenerateEvent::Abstain(p)) => {
                assert!(self.started.is_some(), "Abstain came before Started");
                assert!(self.tokens.is_empty(), "Abstain came after tokens");
                assert!(self.abstain.is_none(), "Abstain came twice");
                assert!((0.0..=1.0).contains(&p), "a probability of {p}");
                self.abstain = Some(p);
            }
            Ok(GenerateEvent::Token(text)) => {
                assert!(self.started.is_some(), "a token came before Started");
                assert!(!text.is_empty(), "an empty token was sent");
                self.tokens.push(text);
            }
            Ok(GenerateEvent::Done(usage)) => self.usage = Some(usage),
            Err(error) => self.error = Some(error),
        }
    }
}

/// The next event, failing the test if the stream stalls.
pub async fn next_event(stream: &mut Stream) -> Option<Result<GenerateEvent, ModelError>> {
    tokio::time::timeout(STALL, stream.recv())
        .await
        .expect("the generation stream stalled")
}

/// Reads a stream to its end.
pub async fn drain(mut stream: Stream) -> Outcome {
    let mut outcome = Outcome::default();
    while let Some(event) = next_event(&mut stream).await {
        outcome.record(event);
    }
    outcome
}

/// The generator contract, the same for every backend. `stream_buffer` is the backend's
/// per-stream buffer: after a cancellation at most that many tokens (plus one in flight) may
/// still arrive.
pub async fn generator_compliance(generator: &dyn Generator, stream_buffer: usize) {
    counts_tokens(generator);
    streams_tokens_then_done(generator).await;
    respects_max_tokens(generator).await;
    cancellation_ends_the_stream(generator, stream_buffer).await;
}

fn counts_tokens(generator: &dyn Generator) {
    assert!(!generator.model_id().is_empty());
    assert!(generator.context_tokens() > 0);
    let short = generator.count_tokens("Hello there").unwrap();
    let long = generator.count_tokens(&"Hello there. ".repeat(20)).unwrap();
    assert!(short > 0 && long > short, "short {short}, long {long}");
}

async fn streams_tokens_then_done(generator: &dyn Generator) {
    let ask = request(tenant(), SYSTEM, "How do I start running?", 24);
    let outcome = drain(
        generator
            .generate(ask, CancellationToken::new())
            .await
            .unwrap(),
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert!(
        outcome.started.is_some(),
        "the stream must begin with Started"
    );
    assert!(!outcome.text().trim().is_empty(), "no text: {outcome:?}");
    let usage = outcome.usage.expect("the stream must end with Done");
    assert!(
        (1..=24).contains(&usage.completion_tokens),
        "{usage:?} for max_tokens 24"
    );
    assert!(usage.prompt_tokens + usage.cached_tokens > 0, "{usage:?}");
}

async fn respects_max_tokens(generator: &dyn Generator) {
    let ask = request(tenant(), SYSTEM, LONG_ASK, 3);
    let outcome = drain(
        generator
            .generate(ask, CancellationToken::new())
            .await
            .unwrap(),
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let usage = outcome.usage.expect("the stream must end with Done");
    assert!(usage.completion_tokens <= 3, "{usage:?} for max_tokens 3");
    // One event per token at most, plus text held back (a possible stop string) at the end.
    assert!(outcome.tokens.len() <= 4, "{:?}", outcome.tokens);
}

async fn cancellation_ends_the_stream(generator: &dyn Generator, stream_buffer: usize) {
    let cancel = CancellationToken::new();
    let ask = request(tenant(), SYSTEM, LONG_ASK, 200);
    let mut stream = generator.generate(ask, cancel.clone()).await.unwrap();
    let mut outcome = Outcome::default();
    while outcome.tokens.is_empty() {
        let event = next_event(&mut stream)
            .await
            .expect("the stream ended before its first token");
        outcome.record(event);
        assert!(
            outcome.usage.is_none(),
            "the answer ended before its first token"
        );
    }
    cancel.cancel();
    let seen = outcome.tokens.len();
    while let Some(event) = next_event(&mut stream).await {
        outcome.record(event);
    }
    let late = outcome.tokens.len() - seen;
    assert!(
        late <= stream_buffer + 2,
        "{late} tokens arrived after the cancellation (stream buffer {stream_buffer})"
    );
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    if let Some(usage) = outcome.usage {
        assert!(usage.completion_tokens < 200, "{usage:?}");
    }
}
