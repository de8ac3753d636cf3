//! The conversation stream: every channel's events enter here. They are stored first (one
//! transaction, with their dedup keys and the jobs they cause), then published on the bus.
//! A caller acknowledges a provider only after `ingest` returned `Ok`.

use std::sync::Arc;

use coach_connector_api::{ChannelId, ConversationId, InboundEvent, MessageId, OutboundBody};

use crate::bus::appender::Appender;
use crate::bus::{AnswerPhase, Bus, StreamEvent, StreamPayload};
use crate::store::{IngestReport, Store, StoreError, StoredEvent, StoredMessage};
use crate::tenancy::TenantScope;

/// Store-then-publish for inbound events and outbound messages.
#[derive(Clone)]
pub struct ConversationStream {
    store: Arc<dyn Store>,
    /// Logs each event, then publishes it on the bus.
    appender: Arc<Appender>,
}

impl ConversationStream {
    /// A stream over this store and bus.
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>) -> Self {
        Self {
            appender: Arc::new(Appender::new(store.clone(), bus)),
            store,
        }
    }

    /// Durably store `events` of one channel, then publish what was new. A replayed event is
    /// a no-op counted in `duplicates`. A publish failure is logged, not returned: the events
    /// are stored, and live views resynchronize from the store.
    #[tracing::instrument(
        name = "ingest",
        skip_all,
        fields(tenant = %scope.tenant_id(), channel = %channel, events = events.len())
    )]
    pub async fn ingest(
        &self,
        scope: &TenantScope,
        channel: ChannelId,
        events: Vec<InboundEvent>,
    ) -> Result<IngestReport, StoreError> {
        let started = std::time::Instant::now();
        let report = self
            .store
            .ingest(scope, channel, scrub_nul(events)?)
            .await?;
        metrics::histogram!("ingest_duration_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("ingested_events_total").increment(report.stored.len() as u64);
        metrics::counter!("duplicate_events_total").increment(report.duplicates as u64);
        let mut payloads = Vec::with_capacity(report.stored.len());
        for stored in &report.stored {
            let payload = match stored {
                StoredEvent::Message(message) => StreamPayload::Message {
                    message: message.clone(),
                },
                StoredEvent::Status {
                    status,
                    applied: Some((message_id, conversation_id)),
                    ..
                } => StreamPayload::Status {
                    message_id: *message_id,
                    conversation_id: *conversation_id,
                    status: *status,
                },
                StoredEvent::Status { applied: None, .. } => continue,
                StoredEvent::Unknown { kind, .. } => StreamPayload::Unknown {
                    channel_id: channel,
                    kind: kind.clone(),
                },
            };
            payloads.push(payload);
        }
        self.publish_all(scope, payloads).await;
        Ok(report)
    }

    /// Store an outbound message with its outbox row, then publish it.
    pub async fn send(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        body: OutboundBody,
        reply_to: Option<MessageId>,
    ) -> Result<StoredMessage, StoreError> {
        let message = self
            .store
            .enqueue_outbound(scope, conversation, body, reply_to)
            .await?;
        self.publish(
            scope,
            StreamPayload::Message {
                message: message.clone(),
            },
        )
        .await;
        Ok(message)
    }

    /// Publish an outbound message stored by another path (a program step, written in one
    /// transaction with its run): live views (the widget) show it as it is stored.
    pub async fn announce(&self, scope: &TenantScope, message: StoredMessage) {
        self.publish(scope, StreamPayload::Message { message })
            .await;
    }

    /// Publish the progress of an answer being generated (live views only; nothing stored).
    pub async fn answer(
        &self,
        scope: &TenantScope,
        conversation_id: ConversationId,
        reply_to: MessageId,
        phase: AnswerPhase,
    ) {
        self.publish(
            scope,
            StreamPayload::Answer {
                conversation_id,
                reply_to,
                phase,
            },
        )
        .await;
    }

    /// Publish an event that is not a message (handoffs, ingestion progress, a conversation
    /// changing hands) to live views.
    pub async fn publish(&self, scope: &TenantScope, payload: StreamPayload) {
        self.publish_all(scope, vec![payload]).await;
    }

    /// Publish several events in this order (logged in one transaction).
    async fn publish_all(&self, scope: &TenantScope, payloads: Vec<StreamPayload>) {
        if payloads.is_empty() {
            return;
        }
        let events = payloads
            .into_iter()
            .map(|payload| StreamEvent {
                id: uuid::Uuid::now_v7(),
                seq: None,
                tenant_id: scope.tenant_id(),
                payload,
            })
            .collect();
        if let Err(e) = self.appender.publish_all(events).await {
            metrics::counter!("bus_publish_failures_total").increment(1);
            tracing::warn!(tenant = %scope.tenant_id(), error = %e, "publish failed; event is stored");
        }
    }
}

/// Replace NUL characters, which PostgreSQL cannot store in text or JSON, with U+FFFD, so a
/// payload carrying one is stored (visibly marked) instead of failing forever on every retry.
/// Events without NUL (nearly all) pass through untouched.
fn scrub_nul(events: Vec<InboundEvent>) -> Result<Vec<InboundEvent>, StoreError> {
    events
        .into_iter()
        .map(|event| {
            let json = serde_json::to_string(&event)?;
            if !json.contains("\\u0000") {
                return Ok(event);
            }
            // The text test is a cheap filter (a typed backslash-u0000 also matches it); the
            // walk below only changes real NUL characters.
            let mut value = serde_json::to_value(&event)?;
            replace_nul(&mut value);
            Ok(serde_json::from_value(value)?)
        })
        .collect()
}

fn replace_nul(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) if s.contains('\0') => *s = s.replace('\0', "\u{fffd}"),
        serde_json::Value::Array(items) => items.iter_mut().for_each(replace_nul),
        serde_json::Value::Object(map) => map.values_mut().for_each(replace_nul),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coach_connector_api::{ChannelIdentity, Content, DedupKey, InboundMessage};

    #[test]
    fn nul_characters_are_replaced_everywhere_and_nothing_else_changes() {
        let event = |body: &str, name: &str| {
            InboundEvent::Message(InboundMessage {
                dedup_key: DedupKey("k".into()),
                provider_message_id: "k".into(),
                from: ChannelIdentity {
                    id: "1".into(),
                    display_name: Some(name.into()),
                    username: None,
                },
                timestamp: chrono::DateTime::UNIX_EPOCH,
                content: Content::Text { body: body.into() },
                reply_to: None,
            })
        };
        let clean = event("a\\u0000 literal stays", "Ana");
        assert_eq!(scrub_nul(vec![clean.clone()]).unwrap(), vec![clean]);
        let dirty = event("a\0b", "An\0a");
        assert_eq!(
            scrub_nul(vec![dirty]).unwrap(),
            vec![event("a\u{fffd}b", "An\u{fffd}a")]
        );
    }
}
