//! Conversations and their messages, as read by creators and the responder, and who answers
//! them (handoff). A supertrait of [`Store`](super::Store).

use async_trait::async_trait;
use coach_connector_api::{ConversationId, MessageId};

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
    /// Messages of one conversation, oldest first, after the cursor.
    async fn messages(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        after: Option<MessageId>,
        limit: u32,
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
}
