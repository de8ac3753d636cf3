//! Channels: the accounts a tenant connects (WhatsApp, Telegram, widget, plugins), and what
//! flows through them: inbound events stored once with the jobs they cause, outbound messages
//! queued with their outbox row.

pub(in crate::store) mod sql;

use async_trait::async_trait;

use crate::store::*;
use crate::tenancy::{SystemScope, TenantScope};

/// What deleting a channel leaves on disk for the caller to remove.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelRemoval {
    /// Messages of the channel that had a downloaded file (their contact, their id).
    pub media: Vec<(
        coach_connector_api::ContactId,
        coach_connector_api::MessageId,
    )>,
    /// Contacts that had no other channel, deleted with it.
    pub orphans: Vec<coach_connector_api::ContactId>,
}

/// Channels.
#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// Create a channel account for the scope's tenant.
    async fn create_channel(
        &self,
        scope: &TenantScope,
        new: NewChannel,
    ) -> Result<Channel, StoreError>;

    /// One channel of the scope's tenant.
    async fn channel(&self, scope: &TenantScope, id: ChannelId) -> Result<Channel, StoreError>;

    /// Find a channel by id whatever its tenant (webhooks: the channel identifies the tenant).
    async fn channel_for_webhook(
        &self,
        sys: &SystemScope,
        id: ChannelId,
    ) -> Result<Channel, StoreError>;

    /// The tenant's channels, oldest first.
    async fn channels(&self, scope: &TenantScope) -> Result<Vec<Channel>, StoreError>;

    /// Change a channel's name, configuration or state.
    async fn update_channel(
        &self,
        scope: &TenantScope,
        id: ChannelId,
        patch: ChannelPatch,
    ) -> Result<Channel, StoreError>;

    /// Delete a channel with its conversations and messages, and the contacts it leaves without
    /// any identity; says which media files and contact folders are left to remove.
    async fn delete_channel(
        &self,
        scope: &TenantScope,
        id: ChannelId,
    ) -> Result<ChannelRemoval, StoreError>;

    /// Store inbound events of one channel in one transaction, with their dedup keys and the jobs
    /// they cause; contacts and conversations are created on first contact.
    async fn ingest(
        &self,
        scope: &TenantScope,
        channel: ChannelId,
        events: Vec<InboundEvent>,
    ) -> Result<IngestReport, StoreError>;

    /// Store an outbound message and queue it for delivery, in one transaction.
    async fn enqueue_outbound(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        body: OutboundBody,
        reply_to: Option<MessageId>,
    ) -> Result<StoredMessage, StoreError>;
}
