//! Notices to the creator's own systems: events POSTed to their webhook (`PUT
//! /v1/tenant/notify`), and e-mail to the team on handoff ([`email`]).
//!
//! Webhook events are signed per the Standard Webhooks scheme: `webhook-id` (the event's id,
//! the same on every retry), `webhook-timestamp` (unix seconds) and `webhook-signature:
//! v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<raw body>")>`, the key being the base64 after
//! `whsec_` in the secret (any Standard Webhooks library verifies them). For one release each
//! POST also carries the older `Coach-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
//! "<t>.<raw body>")>` (deprecated). Failed calls are retried with backoff for about a day, then
//! dead-lettered; every attempt is logged (`GET /v1/tenant/notify/deliveries`).

pub mod email;
pub mod health;

use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use coach_connector_api::{ConversationId, TenantId};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::jobs::{ClaimOrder, Handler, JobKind, Outcome, Policy, Retry};
use crate::state::AppState;
use crate::store::notices::{
    CONVERSATION_RESOLVED, Delivery, FEEDBACK_CREATED, HANDOFF_REQUESTED, MESSAGE_CREATED,
};
use crate::store::{QueueItem, StoreError};
use crate::tenancy::{SystemScope, TenantScope};

/// Deliveries of one event before it is dead-lettered (about a day of backoff).
const MAX_ATTEMPTS: u32 = 12;
/// How long a claimed event may take before another worker may take it.
const LEASE: Duration = Duration::from_secs(60);

/// A new signing secret: `whsec_` and 24 random bytes in standard base64 (the form Standard
/// Webhooks libraries take).
pub fn new_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    Ok(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// The HMAC key of a secret: the bytes its base64 stands for (secrets made before Standard
/// Webhooks used the URL-safe alphabet; both read).
fn key_of(secret: &str) -> Vec<u8> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded))
        .unwrap_or_else(|_| encoded.as_bytes().to_vec())
}

/// The deprecated `Coach-Signature` header's value for `body` sent at `timestamp`.
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

/// The Standard Webhooks `webhook-signature` value.
fn standard_signature(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, String> {
    standardwebhooks::Webhook::from_bytes(key_of(secret))
        .and_then(|hook| hook.sign(id, timestamp, body))
        .map_err(|e| e.to_string())
}

/// A notice job's payload: the stored JSON.
pub struct Notice(serde_json::Value);

impl crate::jobs::Payload for Notice {
    fn decode(item: &QueueItem) -> Result<Self, String> {
        Ok(Self(item.payload.clone()))
    }
}

fn policy() -> Policy {
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

/// Delivers handoff notices (`notify` jobs, whose body was written when the handoff was
/// recorded), eight at a time, fairly across tenants.
pub struct Notifier;

#[async_trait::async_trait]
impl Handler for Notifier {
    type Job = Notice;
    type Batch = ();
    const KIND: JobKind = JobKind::Notify;

    fn policy(&self, _state: &AppState) -> Policy {
        policy()
    }

    async fn run(&self, state: &AppState, (): &(), item: &QueueItem, notice: Notice) -> Outcome {
        // The body's own id, written when the handoff was recorded (the same on every retry).
        let id = notice
            .0
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        let outcome = send(state, item, HANDOFF_REQUESTED, &id, &notice.0).await;
        give_up_at_last(self.policy(state), item, outcome)
    }
}

/// Delivers `event` jobs: reads what the event reports (gone: nothing is sent), then POSTs it.
pub struct EventSender;

#[async_trait::async_trait]
impl Handler for EventSender {
    type Job = Notice;
    type Batch = ();
    const KIND: JobKind = JobKind::Event;

    fn policy(&self, _state: &AppState) -> Policy {
        policy()
    }

    async fn run(&self, state: &AppState, (): &(), item: &QueueItem, notice: Notice) -> Outcome {
        let scope = SystemScope::new("events").for_tenant(item.tenant_id);
        let kind = notice.0.get("type").and_then(|v| v.as_str()).unwrap_or("");
        let data = match event_data(state, &scope, item, kind, &notice.0).await {
            Ok(Some(data)) => data,
            Ok(None) => return Outcome::Done,
            Err(outcome) => return outcome,
        };
        let id = format!("evt_{}", item.id.simple());
        let body = serde_json::json!({
            "id": id,
            "type": kind,
            "timestamp": queued_at(item.id),
            "tenant_id": item.tenant_id,
            "data": data,
        });
        let outcome = send(state, item, kind, &id, &body).await;
        give_up_at_last(self.policy(state), item, outcome)
    }
}

/// When a job was queued: the time in its version 7 id.
fn queued_at(id: Uuid) -> DateTime<Utc> {
    id.get_timestamp()
        .and_then(|ts| {
            let (secs, nanos) = ts.to_unix();
            DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos)
        })
        .unwrap_or_else(Utc::now)
}

/// What an event reports, read now; `None` when it is gone (erased, withdrawn).
async fn event_data(
    state: &AppState,
    scope: &TenantScope,
    item: &QueueItem,
    kind: &str,
    payload: &serde_json::Value,
) -> Result<Option<serde_json::Value>, Outcome> {
    let uuid_field = |name: &str| {
        payload
            .get(name)
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse::<Uuid>().ok())
    };
    let gone = |e: StoreError| match e {
        StoreError::NotFound(_) => Ok(None),
        e => Err(Outcome::Failed(e.to_string())),
    };
    let as_json = |value: Result<serde_json::Value, serde_json::Error>| {
        value.map(Some).map_err(|e| Outcome::Failed(e.to_string()))
    };
    match kind {
        MESSAGE_CREATED => {
            let Some(id) = item.message_id else {
                return Err(Outcome::dead(
                    "event",
                    "message.created without its message",
                ));
            };
            match state.store.message(scope, id).await {
                Ok(message) => as_json(serde_json::to_value(message)),
                Err(e) => gone(e),
            }
        }
        CONVERSATION_RESOLVED => {
            let Some(id) = uuid_field("conversation_id") else {
                return Err(Outcome::dead(
                    "event",
                    "conversation.resolved without its conversation",
                ));
            };
            match state.store.conversation(scope, ConversationId(id)).await {
                Ok(conversation) => as_json(serde_json::to_value(conversation)),
                Err(e) => gone(e),
            }
        }
        FEEDBACK_CREATED => {
            let Some(id) = uuid_field("feedback_id") else {
                return Err(Outcome::dead(
                    "event",
                    "feedback.created without its feedback",
                ));
            };
            match state.store.feedback_event(scope, id).await {
                Ok(Some(feedback)) => as_json(serde_json::to_value(feedback)),
                Ok(None) => Ok(None),
                Err(e) => gone(e),
            }
        }
        other => Err(Outcome::dead(
            "event",
            format!("unknown event type {other:?}"),
        )),
    }
}

/// Claims and delivers due handoff notices; returns how many ran.
pub async fn poll_handoffs(state: &AppState) -> Result<usize, StoreError> {
    crate::jobs::run_once(Notifier, state).await
}

/// Claims and delivers due events; returns how many ran.
pub async fn poll_events(state: &AppState) -> Result<usize, StoreError> {
    crate::jobs::run_once(EventSender, state).await
}

fn give_up_at_last(policy: Policy, item: &QueueItem, outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Failed(error) if policy.last_attempt(item) => {
            tracing::warn!(job = %item.id, %error, "creator webhook given up");
            Outcome::dead("webhook", error)
        }
        outcome => outcome,
    }
}

/// The tenant's webhook: its URL, its opened secret and the events it takes; `None` when there
/// is none (removed meanwhile: nothing to deliver).
pub async fn webhook(
    state: &AppState,
    tenant: TenantId,
) -> Result<Option<(String, String, Vec<String>)>, String> {
    let scope = SystemScope::new("notifier").for_tenant(tenant);
    let profile = match state.store.tenant_profile(&scope).await {
        Ok((_, profile)) => profile,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let events = profile.webhook_events();
    let mut notify = profile.notify.unwrap_or_default();
    if state.secrets.open(&mut notify).is_err() {
        return Err("the webhook secret cannot be opened with this master key".into());
    }
    let (Some(url), Some(secret)) = (
        notify.get("url").and_then(|v| v.as_str()),
        notify.get("secret").and_then(|v| v.as_str()),
    ) else {
        return Ok(None);
    };
    Ok(Some((url.to_string(), secret.to_string(), events)))
}

/// POST one event to the tenant's webhook if it still takes that event; log the attempt.
async fn send(
    state: &AppState,
    item: &QueueItem,
    kind: &str,
    id: &str,
    body: &serde_json::Value,
) -> Outcome {
    let (url, secret, events) = match webhook(state, item.tenant_id).await {
        Ok(Some(hook)) => hook,
        Ok(None) => return Outcome::Done,
        Err(e) => return Outcome::Failed(e),
    };
    if !events.iter().any(|e| e == kind) {
        return Outcome::Done;
    }
    let started = Instant::now();
    let result = post(state, &url, &secret, id, body).await;
    let (status, error) = match &result {
        Ok(status) if (200..300).contains(status) => (Some(i32::from(*status)), None),
        Ok(status) => (
            Some(i32::from(*status)),
            Some(format!("the webhook answered {status}")),
        ),
        Err(e) => (None, Some(e.clone())),
    };
    let delivery = Delivery {
        id: Uuid::now_v7(),
        event_id: id.to_string(),
        event_type: kind.to_string(),
        attempt: i32::try_from(item.attempts).unwrap_or(i32::MAX),
        status,
        error: error.clone(),
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        created_at: Utc::now(),
    };
    let scope = SystemScope::new("notifier").for_tenant(item.tenant_id);
    if let Err(e) = state.store.record_delivery(&scope, delivery).await {
        tracing::warn!(error = %e, "a webhook delivery could not be logged");
    }
    match error {
        None => Outcome::Done,
        Some(error) => Outcome::Failed(error),
    }
}

/// POST `body`, signed both ways; the HTTP status, or why there was none.
async fn post(
    state: &AppState,
    url: &str,
    secret: &str,
    id: &str,
    body: &serde_json::Value,
) -> Result<u16, String> {
    let allow = state.config.http.allow_private_webhooks;
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("url: {e}"))?;
    crate::fetch::check_literal(&parsed, allow).map_err(|e| e.to_string())?;
    let client =
        crate::fetch::guarded_client(allow, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let timestamp = Utc::now().timestamp();
    let response = client
        .post(parsed)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            standard_signature(secret, id, timestamp, &body)?,
        )
        .header("Coach-Signature", sign(secret, timestamp, &body))
        .header("Coach-Event-Id", id)
        .body(body)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_timestamp_and_body() {
        let a = sign("whsec_x", 1_700_000_000, b"{}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_eq!(a.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(a, sign("whsec_x", 1_700_000_001, b"{}"));
        assert_ne!(a, sign("whsec_x", 1_700_000_000, b"{ }"));
        assert_ne!(a, sign("whsec_y", 1_700_000_000, b"{}"));
    }

    #[test]
    fn standard_signatures_verify_with_the_standard_library() {
        let secret = new_secret().unwrap();
        let body = br#"{"type":"message.created"}"#;
        let now = Utc::now().timestamp();
        let signature = standard_signature(&secret, "evt_1", now, body).unwrap();
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("webhook-id", "evt_1".parse().unwrap());
        headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
        headers.insert("webhook-signature", signature.parse().unwrap());
        let receiver = standardwebhooks::Webhook::new(&secret).unwrap();
        assert!(receiver.verify(body, &headers).is_ok());
        assert!(receiver.verify(br#"{"type":"other"}"#, &headers).is_err());
        // A secret made before (URL-safe alphabet) still signs with the bytes it stands for.
        let old = "whsec_AAAA-_-_AAAA";
        assert_eq!(
            key_of(old),
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode("AAAA-_-_AAAA")
                .unwrap()
        );
    }
}
