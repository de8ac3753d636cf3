//! [`ConversationStore`] on PostgreSQL: each call one transaction under the tenant's row-level security.

use async_trait::async_trait;
use coach_connector_api::{ConversationId, MessageId};

use super::PostgresStore;
use crate::store::conversations::ConversationStore;
use crate::store::{
    Conversation, ConversationFilter, ConversationStatus, Page, StoreError, StoredMessage,
};
use crate::tenancy::TenantScope;

#[async_trait]
impl ConversationStore for PostgresStore {
    async fn conversations(
        &self,
        scope: &TenantScope,
        page: Page,
        filter: ConversationFilter,
    ) -> Result<Vec<Conversation>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        super::ops::conversations(&mut tx, scope.tenant_id(), page, filter).await
    }
    async fn conversation(
        &self,
        scope: &TenantScope,
        id: ConversationId,
    ) -> Result<Conversation, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        super::ops::conversation(&mut tx, scope.tenant_id(), id).await
    }
    async fn set_conversation_status(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        status: ConversationStatus,
        assignee: Option<uuid::Uuid>,
    ) -> Result<Conversation, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        let conversation =
            super::ops::set_conversation_status(&mut tx, scope.tenant_id(), id, status, assignee)
                .await?;
        tx.commit().await?;
        Ok(conversation)
    }
    async fn messages(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        super::ops::messages(&mut tx, scope.tenant_id(), conversation, after, limit).await
    }
    async fn message(
        &self,
        scope: &TenantScope,
        id: MessageId,
    ) -> Result<StoredMessage, StoreError> {
        super::ops::message(&mut *self.tenant_tx(scope).await?, scope.tenant_id(), id).await
    }
    async fn messages_before(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        before: MessageId,
        limit: u32,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        super::ops::messages_before(
            &mut *self.tenant_tx(scope).await?,
            scope.tenant_id(),
            conversation,
            before,
            limit,
        )
        .await
    }
    async fn reply_to(
        &self,
        scope: &TenantScope,
        message: MessageId,
    ) -> Result<Option<MessageId>, StoreError> {
        super::ops::reply_to(
            &mut *self.tenant_tx(scope).await?,
            scope.tenant_id(),
            message,
        )
        .await
    }
}
