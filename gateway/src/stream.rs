//! The conversation stream: every channel's events enter here. They are stored first (one
//! transaction, with their dedup keys and the jobs they cause), then published on the bus.
//! A caller acknowledges a provider only after `ingest` returned `Ok`.

use std::sync::Arc;

use coach_connector_api::{ChannelId, ConversationId, InboundEvent, MessageId, OutboundBody};

use crate::bus::{Bus, StreamEvent, StreamPayload};
use crate::store::{IngestReport, Store, StoreError, StoredEvent, StoredMessage};
use crate::tenancy::TenantScope;

/// Store-then-publish for inbound events and outbound messages.
#[derive(Clone)]
pub struct ConversationStream {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
}

impl ConversationStream {
    /// A stream over this store and bus.
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>) -> Self {
        Self { store, bus }
    }

    /// Durably store `events` of one channel, then publish what was new. A replayed event is
    /// a no-op counted in `duplicates`. A publish failure is logged, not returned: the events
    /// are stored, and live views resynchronize from the store.
    pub async fn ingest(
        &self,
        scope: &TenantScope,
        channel: ChannelId,
        events: Vec<InboundEvent>,
    ) -> Result<IngestReport, StoreError> {
        let report = self.store.ingest(scope, channel, events).await?;
        metrics::counter!("ingested_events_total").increment(report.stored.len() as u64);
        metrics::counter!("duplicate_events_total").increment(report.duplicates as u64);
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
            self.publish(scope, payload).await;
        }
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

    async fn publish(&self, scope: &TenantScope, payload: StreamPayload) {
        let event = StreamEvent {
            tenant_id: scope.tenant_id(),
            payload,
        };
        if let Err(e) = self.bus.publish(event).await {
            metrics::counter!("bus_publish_failures_total").increment(1);
            tracing::warn!(tenant = %scope.tenant_id(), error = %e, "publish failed; event is stored");
        }
    }
}
