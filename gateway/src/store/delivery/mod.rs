//! Delivery records: the outbox as creators see it (dead letters and their resend), and the
//! facts a send depends on (when the contact last wrote). A supertrait of [`Store`](super::Store).

mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coach_connector_api::{ChannelId, ConversationId, MessageId};
use serde::Serialize;

use crate::store::StoreError;
use crate::tenancy::TenantScope;

/// One outbox row, as shown in the admin API.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OutboxEntry {
    /// The row's id.
    #[schema(value_type = String, format = Uuid)]
    pub id: uuid::Uuid,
    /// The message it delivers.
    #[schema(value_type = String, format = Uuid)]
    pub message_id: MessageId,
    /// Its conversation.
    #[schema(value_type = String, format = Uuid)]
    pub conversation_id: ConversationId,
    /// Its channel.
    #[schema(value_type = String, format = Uuid)]
    pub channel_id: ChannelId,
    /// The channel kind.
    pub kind: String,
    /// `pending`, `inflight`, `done` or `dead`.
    pub state: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The last error (`code: title` for dead letters).
    pub last_error: Option<String>,
    /// When it is due next.
    pub next_attempt_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

/// How one channel's sends went since a time (its health, `GET /v1/channels/health`).
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelFailures {
    /// The channel.
    pub channel_id: ChannelId,
    /// Dead letters since then, not counting messages that could never go (the contact opted
    /// out, the message or the channel was erased).
    pub dead: i64,
    /// When the latest of them died.
    pub last_dead_at: Option<DateTime<Utc>>,
    /// Its error (`code: title`).
    pub last_error: Option<String>,
    /// When the latest message was sent.
    pub last_sent_at: Option<DateTime<Utc>>,
}

/// The delivery records of one tenant.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// When the contact of a conversation last wrote (WhatsApp's 24-hour window).
    async fn last_inbound_at(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// The provider id of the message an outbound message answers (to quote it), if known.
    async fn reply_target(
        &self,
        scope: &TenantScope,
        message: MessageId,
    ) -> Result<Option<String>, StoreError>;
    /// Record a fetched media file on its inbound message (`content.file`).
    async fn attach_media(
        &self,
        scope: &TenantScope,
        message: MessageId,
        file: serde_json::Value,
    ) -> Result<(), StoreError>;
    /// Add `fields` to an inbound message's content, keeping the rest (a voice note's
    /// `transcript` and `language`, or `transcript_error`).
    async fn annotate_message(
        &self,
        scope: &TenantScope,
        message: MessageId,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), StoreError>;
    /// Outbox rows of the tenant in `state` (all states when `None`), newest change first.
    async fn outbox_entries(
        &self,
        scope: &TenantScope,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Per channel with any send or dead letter since `since`: how its sends went.
    async fn channel_failures(
        &self,
        scope: &TenantScope,
        since: DateTime<Utc>,
    ) -> Result<Vec<ChannelFailures>, StoreError>;
    /// Send a dead letter again: the row becomes due now with a fresh attempt count, and its
    /// message pending again. `NotFound` for another tenant's row, `Conflict` unless dead.
    async fn retry_outbox(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
    ) -> Result<OutboxEntry, StoreError>;
}
