//! Conversations and their messages, as read by creators and the responder, and who answers
//! them (handoff). A supertrait of [`Store`](super::Store).

mod sql;

use async_trait::async_trait;
use coach_connector_api::{ChannelId, ConversationId, MessageId};

use crate::store::{
    Conversation, ConversationFilter, ConversationStatus, Page, StoreError, StoredMessage,
};
use crate::tenancy::TenantScope;

/// Conversations and messages of one tenant.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Conversations of the scope's tenant, most recently active first.
    async fn conversations(
        &self,
        scope: &TenantScope,
        page: Page,
        filter: ConversationFilter,
    ) -> Result<Vec<Conversation>, StoreError>;
    /// One conversation.
    async fn conversation(
        &self,
        scope: &TenantScope,
        id: ConversationId,
    ) -> Result<Conversation, StoreError>;
    /// Sets who answers a conversation (handoff); `assignee` is the member who took over.
    async fn set_conversation_status(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        status: ConversationStatus,
        assignee: Option<uuid::Uuid>,
    ) -> Result<Conversation, StoreError>;
    /// Resolve, reopen or snooze a conversation (see [`Lifecycle`]); returns it with the status
    /// it had, read under a row lock, so of two changes at once only one sees the old status.
    async fn set_lifecycle(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        change: Lifecycle,
    ) -> Result<(Conversation, crate::store::ConversationStatus), StoreError>;
    /// Bring back every snoozed conversation whose time has come (to the status it had);
    /// returns them.
    async fn wake_snoozed(
        &self,
        sys: &crate::tenancy::SystemScope,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Conversation>, StoreError>;
    /// Messages of one conversation: oldest first after the cursor, or with `newest_first`
    /// the newest before it (a long conversation opens on its latest messages).
    async fn messages(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        cursor: Option<MessageId>,
        limit: u32,
        newest_first: bool,
    ) -> Result<Vec<StoredMessage>, StoreError>;
    /// One message.
    async fn message(
        &self,
        scope: &TenantScope,
        id: MessageId,
    ) -> Result<StoredMessage, StoreError>;
    /// Up to `limit` messages of a conversation just before `before`, oldest first (the recent
    /// turns an answer takes into account).
    async fn messages_before(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        before: MessageId,
        limit: u32,
    ) -> Result<Vec<StoredMessage>, StoreError>;
    /// The outbound message stored as the reply to `message`, if any (answers are idempotent).
    async fn reply_to(
        &self,
        scope: &TenantScope,
        message: MessageId,
    ) -> Result<Option<MessageId>, StoreError>;
    /// The conversation of the channel's contact known there as `external_id` (a widget
    /// visitor), with its last sequence number, if they have written yet.
    async fn conversation_by_contact(
        &self,
        scope: &TenantScope,
        channel: ChannelId,
        external_id: &str,
    ) -> Result<Option<(ConversationId, i64)>, StoreError>;
    /// Whether the coach has told the conversation's contact that it is an AI.
    async fn ai_disclosed(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
    ) -> Result<bool, StoreError>;
    /// Record that the coach told them (the first time counts).
    async fn mark_ai_disclosed(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;
    /// Up to `limit` messages of a conversation whose sequence number is above `after`, in
    /// order. Numbers follow commit order within a conversation, so a reader that remembers the
    /// last number it saw misses nothing by asking for what came after it.
    async fn messages_after_seq(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Sequenced>, StoreError>;
}

/// A message with its per-conversation sequence number (1, 2, 3...).
#[derive(Clone, Debug, PartialEq)]
pub struct Sequenced {
    /// The message's number in its conversation.
    pub seq: i64,
    /// The message.
    pub message: StoredMessage,
}

/// A change of a conversation's lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Done: `resolved` until the contact writes again (then `open`).
    Resolve,
    /// Back to `open` (the coach answers).
    Reopen,
    /// `snoozed` until this time or the contact's next message, then the status it had.
    Snooze(chrono::DateTime<chrono::Utc>),
}
