//! [`ConversationStore`] on SQLite: reads from the pool, writes through the single writer.

use async_trait::async_trait;
use coach_connector_api::{ChannelId, ConversationId, MessageId};
use futures::FutureExt;

use super::SqliteStore;
use crate::store::conversations::{ConversationStore, Sequenced};
use crate::store::{
    Conversation, ConversationFilter, ConversationStatus, Page, StoreError, StoredMessage,
};
use crate::tenancy::TenantScope;

mod sql {
    crate::store::conversations_sql::conversation_ops!(
        sqlx::sqlite::SqliteConnection,
        sqlx::sqlite::SqliteRow
    );
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn conversations(
        &self,
        scope: &TenantScope,
        page: Page,
        filter: ConversationFilter,
    ) -> Result<Vec<Conversation>, StoreError> {
        sql::conversations(&mut *self.reader().await?, scope.tenant_id(), page, filter).await
    }
    async fn conversation(
        &self,
        scope: &TenantScope,
        id: ConversationId,
    ) -> Result<Conversation, StoreError> {
        sql::conversation(&mut *self.reader().await?, scope.tenant_id(), id).await
    }
    async fn set_conversation_status(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        status: ConversationStatus,
        assignee: Option<uuid::Uuid>,
    ) -> Result<Conversation, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| sql::set_conversation_status(c, tenant, id, status, assignee).boxed())
            .await
    }
    async fn messages(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut conn = self.reader().await?;
        sql::messages(&mut conn, scope.tenant_id(), conversation, after, limit).await
    }
    async fn message(
        &self,
        scope: &TenantScope,
        id: MessageId,
    ) -> Result<StoredMessage, StoreError> {
        sql::message(&mut *self.reader().await?, scope.tenant_id(), id).await
    }
    async fn messages_before(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        before: MessageId,
        limit: u32,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        sql::messages_before(
            &mut *self.reader().await?,
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
        sql::reply_to(&mut *self.reader().await?, scope.tenant_id(), message).await
    }
    async fn conversation_by_contact(
        &self,
        scope: &TenantScope,
        channel: ChannelId,
        external_id: &str,
    ) -> Result<Option<(ConversationId, i64)>, StoreError> {
        sql::conversation_by_contact(
            &mut *self.reader().await?,
            scope.tenant_id(),
            channel,
            external_id,
        )
        .await
    }
    async fn messages_after_seq(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Sequenced>, StoreError> {
        sql::messages_after_seq(
            &mut *self.reader().await?,
            scope.tenant_id(),
            conversation,
            after,
            limit,
        )
        .await
    }
}
