//! The outbox worker against a real SQLite store and a scripted sender: retries back off,
//! `Retry-After` is honoured, dead letters after the limit, and nothing is sent twice.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use coach_connector_api::{DeliveryStatus, OutboundBody, ProviderError};
use coach_gateway::config::OutboxConfig;
use coach_gateway::outbox::{Delivery, Sender, outcome_for, poll_once};
use coach_gateway::store::{Page, QueueItem, QueueOutcome};
use coach_gateway::tenancy::SystemScope;

/// Answers with a scripted sequence of deliveries and records what it was asked to send.
struct Scripted {
    script: Mutex<Vec<Delivery>>,
    sent: Mutex<Vec<QueueItem>>,
}

#[async_trait]
impl Sender for Scripted {
    async fn send(&self, item: &QueueItem) -> Delivery {
        self.sent.lock().unwrap().push(item.clone());
        let mut script = self.script.lock().unwrap();
        if script.is_empty() {
            Delivery::Sent {
                provider_message_id: Some(format!("p-{}", item.id)),
            }
        } else {
            script.remove(0)
        }
    }
}

fn fast() -> OutboxConfig {
    OutboxConfig {
        base_backoff_ms: 1,
        max_backoff_secs: 1,
        max_attempts: 3,
        ..OutboxConfig::default()
    }
}

/// A tenant with one conversation and one outbound message queued in it.
async fn queued_message(
    b: &crate::common::Backend,
) -> (
    coach_gateway::tenancy::TenantScope,
    coach_connector_api::ConversationId,
    coach_gateway::store::StoredMessage,
) {
    let (scope, channel) = crate::common::tenant_with_channel(&*b.store, "a").await;
    let inbound = vec![crate::common::text("in", "alice", "hi")];
    b.store.ingest(&scope, channel, inbound).await.unwrap();
    let page = Page {
        before: None,
        limit: 1,
    };
    let conv = b
        .store
        .conversations(&scope, page, Default::default())
        .await
        .unwrap()[0]
        .id;
    let body = OutboundBody::Text {
        text: "hello".into(),
    };
    let out = b
        .store
        .enqueue_outbound(&scope, conv, body, None)
        .await
        .unwrap();
    (scope, conv, out)
}

#[tokio::test]
async fn retries_then_delivers_once() {
    let b = crate::common::sqlite().await;
    let (scope, conv, out) = queued_message(&b).await;
    let sender = Scripted {
        script: Mutex::new(vec![Delivery::Retry {
            after: None,
            reason: "503".into(),
        }]),
        sent: Mutex::new(Vec::new()),
    };
    let sys = SystemScope::new("test");
    let config = fast();
    assert_eq!(
        poll_once(&*b.store, &sender, &config, &sys).await.unwrap(),
        1
    );
    // Backoff is at most 1 ms here; poll until it is sent.
    for _ in 0..100 {
        if sender.sent.lock().unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        poll_once(&*b.store, &sender, &config, &sys).await.unwrap();
    }
    assert_eq!(
        sender.sent.lock().unwrap().len(),
        2,
        "one failure, one success"
    );
    for _ in 0..3 {
        assert_eq!(
            poll_once(&*b.store, &sender, &config, &sys).await.unwrap(),
            0,
            "nothing is sent again"
        );
    }
    let msg = b
        .store
        .messages(&scope, conv, None, 10, false)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.id == out.id)
        .unwrap();
    assert_eq!(msg.status, Some(DeliveryStatus::Sent));
    assert!(msg.provider_message_id.unwrap().starts_with("p-"));
}

#[tokio::test]
async fn gives_up_after_max_attempts_and_keeps_the_reason() {
    let b = crate::common::sqlite().await;
    let (scope, conv, out) = queued_message(&b).await;
    let retry = || Delivery::Retry {
        after: None,
        reason: "timeout".into(),
    };
    let sender = Scripted {
        script: Mutex::new(vec![retry(), retry(), retry(), retry()]),
        sent: Mutex::new(Vec::new()),
    };
    let sys = SystemScope::new("test");
    for _ in 0..200 {
        poll_once(&*b.store, &sender, &fast(), &sys).await.unwrap();
        if b.store.stats(&sys).await.unwrap().outbox_dead == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        sender.sent.lock().unwrap().len(),
        3,
        "exactly max_attempts attempts"
    );
    let msg = b
        .store
        .messages(&scope, conv, None, 10, false)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.id == out.id)
        .unwrap();
    assert_eq!(msg.status, Some(DeliveryStatus::Failed));
    assert_eq!(msg.error.unwrap().code, "max_attempts");
}

#[test]
fn retry_after_is_a_floor_and_failures_are_final() {
    let config = OutboxConfig {
        base_backoff_ms: 10,
        max_backoff_secs: 1,
        max_attempts: 5,
        ..OutboxConfig::default()
    };
    let before = chrono::Utc::now();
    let QueueOutcome::Retry { at, .. } = outcome_for(
        Delivery::Retry {
            after: Some(Duration::from_secs(120)),
            reason: "429".into(),
        },
        1,
        &config,
    ) else {
        panic!("expected a retry");
    };
    assert!(
        at >= before + chrono::Duration::seconds(120),
        "Retry-After honoured"
    );
    let error = ProviderError {
        code: "131047".into(),
        title: "window closed".into(),
    };
    assert_eq!(
        outcome_for(Delivery::Failed(error.clone()), 1, &config),
        QueueOutcome::Dead { error }
    );
}
