//! Human handoff: a conversation waits for a person when the contact asks for one or the coach
//! is not confident. The request is recorded once per message (the conversation turns
//! `waiting`, the creator's webhook job is queued in the same transaction), then announced live.
//!
//! The creator's webhook (`PUT /v1/tenant/notify`) gets a JSON body signed like this:
//! `Coach-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`. Receivers
//! recompute it over the raw body, compare in constant time and refuse old timestamps (e.g.
//! more than five minutes). Failed calls are retried with backoff, then dead-lettered.

use std::time::Duration;

use chrono::Utc;
use coach_connector_api::TenantId;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::bus::StreamPayload;
use crate::jobs::{ClaimOrder, Handler, JobKind, Outcome, Policy, Retry};
use crate::state::AppState;
use crate::store::console::{Handoff, HandoffReason};
use crate::store::{QueueItem, StoreError};
use crate::tenancy::{SystemScope, TenantScope};

/// Deliveries of one notice before it is dead-lettered (about a day of backoff).
const MAX_ATTEMPTS: u32 = 12;
/// How long a claimed notice may take before another worker may take it.
const LEASE: Duration = Duration::from_secs(60);

/// The language someone asked for a person in (the coach answers in it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    /// English.
    English,
    /// Spanish.
    Spanish,
    /// Portuguese.
    Portuguese,
}

/// Verbs and objects of "talk to a person" (anywhere in a short message).
const TALK: &[&str] = &[
    "talk to",
    "talk with",
    "speak to",
    "speak with",
    "chat with",
];
const SOMEONE: &[&str] = &[
    "a human",
    "a real human",
    "a person",
    "a real person",
    "someone",
    "somebody",
    "an agent",
    "a real agent",
    "your team",
    "the team",
];
const HABLAR: &[&str] = &["hablar con", "habla con", "hablo con", "comunicarme con"];
const ALGUIEN: &[&str] = &[
    "una persona",
    "una persona real",
    "un humano",
    "alguien",
    "un agente",
    "el equipo",
    "tu equipo",
];
/// Asking for a person in few words ("human", "agent please", "I want a human").
const NOUNS_EN: &[&str] = &[
    "human",
    "a human",
    "person",
    "a person",
    "real person",
    "a real person",
    "agent",
    "an agent",
    "operator",
    "representative",
];
const NOUNS_ES: &[&str] = &[
    "humano",
    "un humano",
    "persona",
    "una persona",
    "persona real",
    "agente",
];
const FALAR: &[&str] = &["falar com", "fala com", "falo com", "conversar com"];
const ALGUEM: &[&str] = &[
    "uma pessoa",
    "pessoa",
    "pessoa real",
    "alguém",
    "alguem",
    "um humano",
    "humano",
    "um atendente",
    "atendente",
    "a equipe",
    "sua equipe",
];
const NOUNS_PT: &[&str] = &[
    "atendente",
    "um atendente",
    "uma pessoa real",
    "pessoa real",
];
/// Words that may surround such a request without changing it.
const FILLERS: &[&str] = &[
    "please", "pls", "now", "i", "want", "need", "would", "like", "can", "could", "get", "me",
    "hi", "hello", "por", "favor", "quiero", "necesito", "ahora", "hola", "un", "una", "quero",
    "preciso", "agora", "olá", "ola", "um", "uma",
];

/// Whether a message asks to talk to a person, and in which language: "Can I talk to a
/// human?", "I want to speak with someone", "agent please", "¿Puedo hablar con una persona?".
/// Questions that merely mention people ("How much protein does a person need?") do not.
pub fn asks_for_human(text: &str) -> Option<Asked> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() || words.len() > 14 {
        return None;
    }
    let joined = format!(" {} ", words.join(" "));
    let phrase = |verbs: &[&str], objects: &[&str]| {
        verbs.iter().any(|v| {
            objects
                .iter()
                .any(|o| joined.contains(&format!(" {v} {o} ")))
        })
    };
    if phrase(TALK, SOMEONE) {
        return Some(Asked::English);
    }
    if phrase(HABLAR, ALGUIEN) {
        return Some(Asked::Spanish);
    }
    if phrase(FALAR, ALGUEM) {
        return Some(Asked::Portuguese);
    }
    // Without a verb, the request must be (nearly) the whole message.
    let core: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| !FILLERS.contains(w) && *w != "a" && *w != "an")
        .collect();
    let core = core.join(" ");
    let bare = |nouns: &[&str]| {
        nouns.iter().any(|n| {
            let n: Vec<&str> = n
                .split(' ')
                .filter(|w| !FILLERS.contains(w) && *w != "a" && *w != "an")
                .collect();
            n.join(" ") == core
        })
    };
    if bare(NOUNS_EN) {
        Some(Asked::English)
    } else if bare(NOUNS_ES) {
        Some(Asked::Spanish)
    } else if bare(NOUNS_PT) {
        Some(Asked::Portuguese)
    } else {
        None
    }
}

/// Record that `message` (the contact's `question`) needs a person, and tell the creator: a
/// live `handoff` event and, when configured, the webhook. Does nothing more for a message
/// already recorded (a retried answer).
pub async fn request(
    state: &AppState,
    scope: &TenantScope,
    message: &crate::store::StoredMessage,
    question: &str,
    reason: HandoffReason,
) -> Result<(), StoreError> {
    let handoff = Handoff {
        conversation_id: message.conversation_id,
        message_id: message.id,
        reason,
        question: question.chars().take(2000).collect(),
        created_at: Utc::now(),
    };
    let (_, profile) = state.store.tenant_profile(scope).await?;
    let notify = profile.notify_url().map(|_| notice(state, scope, &handoff));
    if !state
        .store
        .record_handoff(scope, handoff.clone(), notify)
        .await?
    {
        return Ok(());
    }
    tracing::info!(conversation = %handoff.conversation_id, reason = reason.as_str(), "handoff requested");
    metrics::counter!("handoffs_total", "reason" => reason.as_str()).increment(1);
    let conversation = state
        .store
        .conversation(scope, handoff.conversation_id)
        .await?;
    state
        .stream
        .publish(scope, StreamPayload::Conversation { conversation })
        .await;
    state
        .stream
        .publish(
            scope,
            StreamPayload::Handoff {
                conversation_id: handoff.conversation_id,
                message_id: handoff.message_id,
                reason: reason.as_str().into(),
                question: handoff.question,
            },
        )
        .await;
    Ok(())
}

/// The webhook body of a handoff.
fn notice(state: &AppState, scope: &TenantScope, handoff: &Handoff) -> serde_json::Value {
    serde_json::json!({
        "id": uuid::Uuid::now_v7(),
        "type": "handoff.requested",
        "created_at": handoff.created_at,
        "tenant_id": scope.tenant_id(),
        "data": {
            "conversation_id": handoff.conversation_id,
            "message_id": handoff.message_id,
            "reason": handoff.reason,
            "question": handoff.question,
            "console_url": format!(
                "{}/console#/inbox/{}",
                state.config.public_url.trim_end_matches('/'),
                handoff.conversation_id
            ),
        }
    })
}

/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Delivers handoff notices to creators' webhooks (`notify` jobs), eight at a time, fairly
/// across tenants; retried with backoff for about a day.
pub struct Notifier;

/// A `notify` job's payload: the notice as it is posted.
pub struct Notice(serde_json::Value);

impl crate::jobs::Payload for Notice {
    fn decode(item: &QueueItem) -> Result<Self, String> {
        Ok(Self(item.payload.clone()))
    }
}

#[async_trait::async_trait]
impl Handler for Notifier {
    type Job = Notice;
    type Batch = ();
    const KIND: JobKind = JobKind::Notify;

    fn policy(&self, _state: &AppState) -> Policy {
        Policy {
            batch: 8,
            concurrency: 8,
            lease: LEASE,
            idle: Duration::from_millis(500),
            order: ClaimOrder::Fair,
            retry: Retry {
                max_attempts: Some(MAX_ATTEMPTS),
                base: Duration::from_secs(10),
                max: Duration::from_secs(3600),
            },
        }
    }

    async fn run(&self, state: &AppState, (): &(), item: &QueueItem, notice: Notice) -> Outcome {
        match deliver(state, item.tenant_id, &notice.0).await {
            Outcome::Failed(error) if self.policy(state).last_attempt(item) => {
                tracing::warn!(job = %item.id, %error, "creator webhook given up");
                Outcome::dead("webhook", error)
            }
            outcome => outcome,
        }
    }
}

/// Claims and delivers due notices; returns how many ran.
pub async fn poll_once(state: &AppState) -> Result<usize, StoreError> {
    crate::jobs::run_once(Notifier, state).await
}

async fn deliver(state: &AppState, tenant: TenantId, payload: &serde_json::Value) -> Outcome {
    let scope = SystemScope::new("notifier").for_tenant(tenant);
    let profile = match state.store.tenant_profile(&scope).await {
        Ok((_, profile)) => profile,
        Err(StoreError::NotFound(_)) => return Outcome::Done,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let mut notify = profile.notify.unwrap_or_default();
    if state.secrets.open(&mut notify).is_err() {
        return Outcome::Failed("the webhook secret cannot be opened with this master key".into());
    }
    let (Some(url), Some(secret)) = (
        notify.get("url").and_then(|v| v.as_str()),
        notify.get("secret").and_then(|v| v.as_str()),
    ) else {
        // The creator removed the webhook meanwhile: nothing to deliver.
        return Outcome::Done;
    };
    match post(state, url, secret, payload).await {
        Ok(()) => Outcome::Done,
        Err(e) => Outcome::Failed(e),
    }
}

async fn post(
    state: &AppState,
    url: &str,
    secret: &str,
    payload: &serde_json::Value,
) -> Result<(), String> {
    let allow = state.config.http.allow_private_webhooks;
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("url: {e}"))?;
    crate::fetch::check_literal(&parsed, allow).map_err(|e| e.to_string())?;
    let client =
        crate::fetch::guarded_client(allow, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(payload).map_err(|e| e.to_string())?;
    let signature = sign(secret, Utc::now().timestamp(), &body);
    let id = payload.get("id").and_then(|v| v.as_str()).unwrap_or("");
    let response = client
        .post(parsed)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Coach-Signature", signature)
        .header("Coach-Event-Id", id)
        .body(body)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the webhook answered {}", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asking_for_a_person_is_recognised_and_ordinary_questions_are_not() {
        for yes in [
            "human",
            "Human please!",
            "I want a human",
            "Can I talk to a human?",
            "I want to speak with someone from your team",
            "agent",
            "an agent please",
        ] {
            assert_eq!(asks_for_human(yes), Some(Asked::English), "{yes}");
        }
        for yes in [
            "¿Puedo hablar con una persona?",
            "humano por favor",
            "quiero hablar con alguien",
        ] {
            assert_eq!(asks_for_human(yes), Some(Asked::Spanish), "{yes}");
        }
        for yes in [
            "Quero falar com uma pessoa",
            "posso falar com alguém?",
            "atendente por favor",
        ] {
            assert_eq!(asks_for_human(yes), Some(Asked::Portuguese), "{yes}");
        }
        for no in [
            "How do humans build habits?",
            "What is a human's resting heart rate?",
            "How much protein does a person need?",
            "¿Cuánta proteína necesita una persona al día?",
            "Quanta proteína uma pessoa precisa por dia?",
            "My agent said I should run more, what do you think about a plan for that?",
            "",
            "How do I start the gateway?",
        ] {
            assert_eq!(asks_for_human(no), None, "{no}");
        }
    }

    #[test]
    fn signatures_cover_timestamp_and_body() {
        let a = sign("whsec_x", 1_700_000_000, b"{}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_eq!(a.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(a, sign("whsec_x", 1_700_000_001, b"{}"));
        assert_ne!(a, sign("whsec_x", 1_700_000_000, b"{ }"));
        assert_ne!(a, sign("whsec_y", 1_700_000_000, b"{}"));
    }
}
