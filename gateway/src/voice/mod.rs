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

mod worker;

use std::time::Duration;

use chrono::Utc;
use coach_connector_api::{Content, MediaKind, MessageId, TenantId};

use crate::jobs::{ClaimOrder, Handler, JobKind, Outcome, Policy, Retry};
use crate::state::AppState;
use crate::store::{QueueItem, StoreError};
use crate::tenancy::{SystemScope, TenantScope};

pub use worker::{Heard, Speech, SpeechError, WORKER};
use worker::{START_TIMEOUT, ask_timeout};

/// How long a voice note's file may take to arrive before it counts as unavailable (the media
/// download retries for about two minutes).
pub const FILE_WAIT: chrono::Duration = chrono::Duration::minutes(5);

/// The `transcript_error` of a note longer than `providers.voice_max_secs` (answered with a
/// request to write that names the limit).
pub const TOO_LONG: &str = "too_long";

/// The most bytes the worker takes in one request (its own limit).
const MAX_NOTE_BYTES: usize = 64 << 20;

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
