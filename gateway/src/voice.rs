//! Voice notes heard: each inbound voice note (WhatsApp `audio.voice`, Telegram `voice`, a
//! recording from the widget) gets a `transcribe` job with the message. Once its file is kept
//! (the `fetch_media` job), the job has it transcribed by whisper.cpp and records on the
//! message's content `transcript` and `language` (and `duration_secs`), or `transcript_error`
//! (`too_long`, `unreadable`, `silent`, `unavailable`). The responder waits for either: a
//! transcript is answered like text, an error with a polite request to write.
//!
//! whisper.cpp runs in its own process, `coach-whisper` (a copy of ggml beside llama.cpp's in one
//! binary clashes), started on the first voice note and kept for the next; one at a time, claimed
//! fairly across tenants like answers. A worker that dies or stalls is killed and started again
//! by the next job.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use coach_connector_api::{Content, MediaKind, MessageId, TenantId};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::jobs::{ClaimOrder, Handler, JobKind, Outcome, Policy, Retry};
use crate::state::AppState;
use crate::store::{QueueItem, StoreError};
use crate::tenancy::{SystemScope, TenantScope};

/// The worker's program name.
pub const WORKER: &str = "coach-whisper";

/// How long a voice note's file may take to arrive before it counts as unavailable (the media
/// download retries for about two minutes).
pub const FILE_WAIT: chrono::Duration = chrono::Duration::minutes(5);

/// How long the worker may take to load its model.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The `transcript_error` of a note longer than `providers.voice_max_secs` (answered with a
/// request to write that names the limit).
pub const TOO_LONG: &str = "too_long";

/// The most bytes the worker takes in one request (its own limit).
const MAX_NOTE_BYTES: usize = 64 << 20;

/// What the worker made of a recording.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Heard {
    /// Words.
    Text {
        /// What was said.
        text: String,
        /// The language spoken (ISO 639-1), as Whisper detected it.
        language: Option<String>,
        /// The recording's length in seconds.
        seconds: f64,
    },
    /// No words: `too_long`, `unreadable`, `silent` or `failed`.
    Error {
        /// The reason's code.
        error: String,
        /// What happened.
        detail: String,
    },
}

/// Why nothing was heard.
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    /// Not configured here (no model or no worker program): no retry helps.
    #[error("speech to text is unavailable: {0}")]
    Unavailable(String),
    /// The worker failed (died, stalled, spoke out of turn): worth another attempt.
    #[error("the speech worker failed: {0}")]
    Worker(String),
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// The speech worker, started on first use.
pub struct Speech {
    model: PathBuf,
    program: Option<PathBuf>,
    threads: u32,
    fit_window: bool,
    enabled: bool,
    worker: tokio::sync::Mutex<Option<Worker>>,
}

impl Speech {
    /// From the brain's configuration.
    pub fn new(config: &crate::config::BrainConfig) -> Self {
        Self {
            model: config.speech_path(),
            program: config.speech.worker.clone().or_else(find_worker),
            threads: if config.speech.threads == 0 {
                config.threads
            } else {
                config.speech.threads
            },
            fit_window: config.speech.fit_window,
            enabled: config.speech.enabled,
            worker: tokio::sync::Mutex::new(None),
        }
    }

    /// Why voice notes cannot be transcribed here, if they cannot.
    pub fn unavailable(&self) -> Option<String> {
        if !self.enabled {
            return Some("brain.speech.enabled is off".into());
        }
        let Some(program) = &self.program else {
            return Some(format!(
                "{WORKER} was not found beside the gateway (build it with `make build`, or set brain.speech.worker)"
            ));
        };
        if !program.is_file() {
            return Some(format!("{} does not exist", program.display()));
        }
        if !self.model.is_file() {
            return Some(format!(
                "the speech model {} is missing (run `make models`)",
                self.model.display()
            ));
        }
        None
    }

    /// Transcribe one recording, refusing it past `max_secs`; `timeout` bounds the whole.
    pub async fn transcribe(
        &self,
        bytes: &[u8],
        max_secs: u32,
        timeout: Duration,
    ) -> Result<Heard, SpeechError> {
        if let Some(why) = self.unavailable() {
            return Err(SpeechError::Unavailable(why));
        }
        let mut slot = self.worker.lock().await;
        // Out of the slot while it works: if this future is dropped mid-request, the worker (out
        // of step) is dropped with it, killed, and never answers the next request with this
        // one's words.
        let mut worker = match slot.take() {
            Some(worker) => worker,
            None => self.start().await?,
        };
        let asked = tokio::time::timeout(timeout, ask(&mut worker, bytes, max_secs)).await;
        match asked {
            Ok(Ok(heard)) => {
                *slot = Some(worker);
                Ok(heard)
            }
            // Out of step or dead: the next job starts a fresh one.
            Ok(Err(e)) => {
                let _ = worker.child.kill().await;
                Err(SpeechError::Worker(e))
            }
            Err(_) => {
                let _ = worker.child.kill().await;
                Err(SpeechError::Worker(format!(
                    "no answer within {} s",
                    timeout.as_secs()
                )))
            }
        }
    }

    async fn start(&self) -> Result<Worker, SpeechError> {
        let program = self
            .program
            .as_ref()
            .ok_or_else(|| SpeechError::Unavailable(format!("{WORKER} not found")))?;
        let mut child = Command::new(program)
            .arg("--model")
            .arg(&self.model)
            .arg("--threads")
            .arg(self.threads.to_string())
            .arg("--fit-window")
            .arg(self.fit_window.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // It parses untrusted audio: none of the gateway's secrets go with it.
            .env_clear()
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| SpeechError::Unavailable(format!("{}: {e}", program.display())))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(SpeechError::Worker("no pipes to the worker".into()));
        };
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let read = tokio::time::timeout(START_TIMEOUT, stdout.read_line(&mut line)).await;
        match read {
            Ok(Ok(n)) if n > 0 && line.contains("\"ready\":true") => {}
            Ok(Ok(_)) => {
                let _ = child.kill().await;
                let status = child.wait().await.ok();
                return Err(SpeechError::Worker(format!(
                    "the worker stopped while loading {} ({status:?})",
                    self.model.display()
                )));
            }
            Ok(Err(e)) => return Err(SpeechError::Worker(e.to_string())),
            Err(_) => {
                let _ = child.kill().await;
                return Err(SpeechError::Worker(
                    "the model took too long to load".into(),
                ));
            }
        }
        tracing::info!(model = %self.model.display(), "speech worker started");
        Ok(Worker {
            child,
            stdin,
            stdout,
        })
    }
}

/// `coach-whisper` beside the running binary (or one folder up: test binaries live in `deps/`).
fn find_worker() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join(WORKER))
        .find(|p| p.is_file())
}

async fn ask(worker: &mut Worker, bytes: &[u8], max_secs: u32) -> Result<Heard, String> {
    let request = serde_json::json!({ "bytes": bytes.len(), "max_secs": max_secs });
    let io = |e: std::io::Error| e.to_string();
    worker
        .stdin
        .write_all(format!("{request}\n").as_bytes())
        .await
        .map_err(io)?;
    worker.stdin.write_all(bytes).await.map_err(io)?;
    worker.stdin.flush().await.map_err(io)?;
    let mut line = String::new();
    if worker.stdout.read_line(&mut line).await.map_err(io)? == 0 {
        return Err("the worker exited".into());
    }
    serde_json::from_str(&line).map_err(|e| format!("an answer that is no answer ({e}): {line}"))
}

/// Transcribes voice notes (`transcribe` jobs), one at a time, fairly across tenants.
pub struct Transcriber;

#[async_trait::async_trait]
impl Handler for Transcriber {
    type Job = MessageId;
    type Batch = ();
    const KIND: JobKind = JobKind::Transcribe;

    fn policy(&self, state: &AppState) -> Policy {
        Policy {
            batch: 1,
            concurrency: 1,
            // Longer than one run can take: a start, then the longest note's time.
            lease: START_TIMEOUT
                + ask_timeout(state.config.providers.voice_max_secs)
                + Duration::from_secs(60),
            idle: Duration::from_millis(300),
            order: ClaimOrder::Fair,
            retry: Retry {
                max_attempts: Some(4),
                base: Duration::from_secs(1),
                max: Duration::from_secs(30),
            },
        }
    }

    async fn run(
        &self,
        state: &AppState,
        (): &(),
        item: &QueueItem,
        message: MessageId,
    ) -> Outcome {
        let last = self.policy(state).last_attempt(item);
        match transcribe(state, item.tenant_id, message, last).await {
            Ok(Step::Done) => Outcome::Done,
            Ok(Step::WaitForFile) => Outcome::Wait {
                at: Utc::now() + chrono::Duration::seconds(2),
                why: "waiting for the voice note's file".into(),
            },
            Err(e) => Outcome::Failed(e),
        }
    }
}

/// Claims and transcribes one due voice note; returns how many jobs ran.
pub async fn poll_once(state: &AppState) -> Result<usize, StoreError> {
    crate::jobs::run_once(Transcriber, state).await
}

enum Step {
    Done,
    WaitForFile,
}

/// How long one request to the worker may take for a note of up to `max_secs` (generous:
/// whisper.cpp hears a minute of speech in seconds on two cores).
fn ask_timeout(max_secs: u32) -> Duration {
    Duration::from_secs(60 + u64::from(max_secs) * 2)
}

/// How long the answer to a voice note waits for its transcript before it says it could not
/// listen: the file's wait, then a worker start and two tries at the longest note, and a margin
/// for a queue of notes.
pub fn answer_wait(max_secs: u32) -> chrono::Duration {
    let worker = START_TIMEOUT + ask_timeout(max_secs) * 2;
    FILE_WAIT
        + chrono::Duration::from_std(worker).unwrap_or(chrono::Duration::minutes(10))
        + chrono::Duration::minutes(5)
}

/// Where a message stands with being heard, for its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hearing {
    /// Not a voice note, or one with its transcript: answered from its text.
    Text,
    /// A voice note whose transcript is still coming.
    Waiting,
    /// A voice note that will not be heard: answered with this request to write.
    Unheard(crate::language::Text),
}

/// Where the message with `content`, stored at `created_at`, stands at `now` (it waits for its
/// transcript up to `wait`, see [`answer_wait`]).
pub fn hearing(
    content: &serde_json::Value,
    (created_at, now): (chrono::DateTime<Utc>, chrono::DateTime<Utc>),
    wait: chrono::Duration,
) -> Hearing {
    if !is_voice(content) || content.get("transcript").is_some() {
        return Hearing::Text;
    }
    match content.get("transcript_error").and_then(|e| e.as_str()) {
        Some(TOO_LONG) => Hearing::Unheard(crate::language::Text::VoiceTooLong),
        Some(_) => Hearing::Unheard(crate::language::Text::VoiceUnheard),
        None if now - created_at < wait => Hearing::Waiting,
        None => Hearing::Unheard(crate::language::Text::VoiceUnheard),
    }
}

/// The text of an inbound message's content: what was typed, chosen or (for a voice note) said;
/// a caption comes before the transcript.
pub fn inbound_text(content: &serde_json::Value) -> Option<String> {
    let typed = serde_json::from_value::<Content>(content.clone())
        .ok()
        .and_then(|c| c.text().map(str::to_string));
    let said = content
        .get("transcript")
        .and_then(|t| t.as_str())
        .map(str::to_string);
    match (typed, said) {
        (Some(typed), Some(said)) => Some(format!("{typed}\n{said}")),
        (typed, said) => said.or(typed),
    }
}

/// Whether `content` is a voice note still waiting for its transcript (or its error).
pub fn awaiting_transcript(content: &serde_json::Value) -> bool {
    is_voice(content)
        && content.get("transcript").is_none()
        && content.get("transcript_error").is_none()
}

fn is_voice(content: &serde_json::Value) -> bool {
    matches!(
        serde_json::from_value::<Content>(content.clone()),
        Ok(Content::Media {
            media: MediaKind::Voice,
            ..
        })
    )
}

async fn transcribe(
    state: &AppState,
    tenant: TenantId,
    id: MessageId,
    last_attempt: bool,
) -> Result<Step, String> {
    let scope: TenantScope = SystemScope::new("speech").for_tenant(tenant);
    let message = match state.store.message(&scope, id).await {
        Ok(m) => m,
        // Erased meanwhile: nothing to hear.
        Err(StoreError::NotFound(_)) => return Ok(Step::Done),
        Err(e) => return Err(e.to_string()),
    };
    if !awaiting_transcript(&message.content) {
        return Ok(Step::Done);
    }
    if message.content.get("file").is_none() {
        if Utc::now() - message.created_at < FILE_WAIT {
            return Ok(Step::WaitForFile);
        }
        return record_error(
            state,
            &scope,
            &message,
            "unavailable",
            "the file never arrived",
        )
        .await;
    }
    let path =
        crate::connectors::media::contact_dir(&state.config.data_dir, tenant, message.contact_id)
            .join(id.0.to_string());
    let bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return record_error(state, &scope, &message, "unavailable", "the file is gone").await;
        }
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let max_secs = state.config.providers.voice_max_secs;
    if bytes.len() > MAX_NOTE_BYTES {
        return record_error(
            state,
            &scope,
            &message,
            TOO_LONG,
            "over the worker's size limit",
        )
        .await;
    }
    let timeout = ask_timeout(max_secs);
    let heard = match state.speech.transcribe(&bytes, max_secs, timeout).await {
        Ok(heard) => heard,
        Err(SpeechError::Unavailable(why)) => {
            tracing::warn!(message = %id, %why, "a voice note was not transcribed");
            return record_error(state, &scope, &message, "unavailable", &why).await;
        }
        Err(SpeechError::Worker(e)) if last_attempt => {
            return record_error(state, &scope, &message, "unavailable", &e).await;
        }
        Err(SpeechError::Worker(e)) => return Err(e),
    };
    let fields = match heard {
        Heard::Text {
            text,
            language,
            seconds,
        } => {
            metrics::counter!("voice_notes_transcribed_total").increment(1);
            metrics::histogram!("voice_note_seconds").record(seconds);
            let mut fields = serde_json::Map::new();
            fields.insert("transcript".into(), text.into());
            if let Some(language) = language {
                fields.insert("language".into(), language.into());
            }
            fields.insert("duration_secs".into(), seconds.into());
            fields
        }
        // The worker failed on this note (not the note itself): another attempt may do.
        Heard::Error { error, detail } if error == "failed" && !last_attempt => {
            return Err(format!("the speech worker failed: {detail}"));
        }
        Heard::Error { error, detail } => {
            return record_error(state, &scope, &message, &error, &detail).await;
        }
    };
    annotate(state, &scope, &message, fields).await
}

/// A voice note whose file will never be kept (too large, refused, gone) is marked unheard at
/// once, so its answer (a request to write) need not wait for the file; `code` is the download's
/// reason.
pub async fn not_kept(state: &AppState, tenant: TenantId, id: MessageId, code: &str) {
    let scope: TenantScope = SystemScope::new("speech").for_tenant(tenant);
    let Ok(message) = state.store.message(&scope, id).await else {
        return;
    };
    if !awaiting_transcript(&message.content) {
        return;
    }
    let reason = if code == "too_large" {
        TOO_LONG
    } else {
        "unreadable"
    };
    if let Err(error) = record_error(state, &scope, &message, reason, code).await {
        tracing::warn!(message = %id, %error, "an unkept voice note was not marked");
    }
}

async fn record_error(
    state: &AppState,
    scope: &TenantScope,
    message: &crate::store::StoredMessage,
    code: &str,
    detail: &str,
) -> Result<Step, String> {
    tracing::info!(message = %message.id, code, detail, "voice note not transcribed");
    metrics::counter!("voice_notes_unheard_total", "reason" => code.to_owned()).increment(1);
    let mut fields = serde_json::Map::new();
    fields.insert("transcript_error".into(), code.into());
    annotate(state, scope, message, fields).await
}

/// Record `fields` on the voice note and tell live views (the console shows the transcript
/// under the player).
async fn annotate(
    state: &AppState,
    scope: &TenantScope,
    message: &crate::store::StoredMessage,
    fields: serde_json::Map<String, serde_json::Value>,
) -> Result<Step, String> {
    let text = |key: &str| fields.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let event = crate::bus::StreamPayload::Transcript {
        conversation_id: message.conversation_id,
        message_id: message.id,
        transcript: text("transcript"),
        language: text("language"),
        error: text("transcript_error"),
    };
    match state
        .store
        .annotate_message(scope, message.id, fields)
        .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound(_)) => return Ok(Step::Done),
        Err(e) => return Err(e.to_string()),
    }
    state.stream.publish(scope, event).await;
    Ok(Step::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::language::Text as Says;
    use serde_json::json;

    fn note(extra: serde_json::Value) -> serde_json::Value {
        let mut content = json!({ "kind": "media", "media": "voice", "media_ref": "m1" });
        if let (Some(content), Some(extra)) = (content.as_object_mut(), extra.as_object()) {
            content.extend(extra.clone());
        }
        content
    }

    #[test]
    fn a_voice_note_waits_for_its_transcript_then_is_text_or_a_request_to_write() {
        let at = Utc::now();
        let soon = at + chrono::Duration::seconds(30);
        let wait = answer_wait(120);
        let late = at + wait + chrono::Duration::seconds(1);
        assert_eq!(
            hearing(&note(json!({})), (at, soon), wait),
            Hearing::Waiting
        );
        assert_eq!(
            hearing(&note(json!({})), (at, late), wait),
            Hearing::Unheard(Says::VoiceUnheard)
        );
        let heard = note(json!({ "transcript": "hello", "language": "en" }));
        assert_eq!(hearing(&heard, (at, soon), wait), Hearing::Text);
        assert_eq!(inbound_text(&heard).as_deref(), Some("hello"));
        let long = note(json!({ "transcript_error": "too_long" }));
        assert_eq!(
            hearing(&long, (at, soon), wait),
            Hearing::Unheard(Says::VoiceTooLong)
        );
        assert_eq!(inbound_text(&long), None);
        let silent = note(json!({ "transcript_error": "silent" }));
        assert_eq!(
            hearing(&silent, (at, soon), wait),
            Hearing::Unheard(Says::VoiceUnheard)
        );
    }

    #[test]
    fn other_messages_are_text_as_before() {
        let at = Utc::now();
        let wait = answer_wait(120);
        let typed = json!({ "kind": "text", "body": "hi" });
        assert_eq!(hearing(&typed, (at, at), wait), Hearing::Text);
        assert_eq!(inbound_text(&typed).as_deref(), Some("hi"));
        let picture =
            json!({ "kind": "media", "media": "image", "media_ref": "p", "caption": "lunch" });
        assert_eq!(hearing(&picture, (at, at), wait), Hearing::Text);
        assert_eq!(inbound_text(&picture).as_deref(), Some("lunch"));
        let captioned = note(json!({ "caption": "listen", "transcript": "I ran today" }));
        assert_eq!(
            inbound_text(&captioned).as_deref(),
            Some("listen\nI ran today")
        );
    }
}
