//! [`DeliveryStore`] on SQLite: reads from the pool, writes through the single writer.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coach_connector_api::{ConversationId, MessageId};
use futures::FutureExt;

use super::SqliteStore;
use crate::store::StoreError;
use crate::store::delivery::{DeliveryStore, OutboxEntry};
use crate::tenancy::TenantScope;

mod sql {
    crate::store::delivery_sql::delivery_ops!(
        sqlx::sqlite::SqliteConnection,
        sqlx::sqlite::SqliteRow
    );
}

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn last_inbound_at(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        sql::last_inbound_at(&mut *self.reader().await?, scope.tenant_id(), conversation).await
    }
    async fn reply_target(
        &self,
        scope: &TenantScope,
        message: MessageId,
    ) -> Result<Option<String>, StoreError> {
        sql::reply_target(&mut *self.reader().await?, scope.tenant_id(), message).await
    }
    async fn attach_media(
        &self,
        scope: &TenantScope,
        message: MessageId,
        file: serde_json::Value,
    ) -> Result<(), StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| sql::attach_media(c, tenant, message, file).boxed())
            .await
    }
    async fn outbox_entries(
        &self,
        scope: &TenantScope,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        sql::outbox_entries(&mut *self.reader().await?, scope.tenant_id(), state, limit).await
    }
    async fn retry_outbox(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
    ) -> Result<OutboxEntry, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| sql::retry_outbox(c, tenant, id, Utc::now()).boxed())
            .await
    }
}
