//! [`DeliveryStore`] on PostgreSQL: each call one transaction under the tenant's row-level security.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coach_connector_api::{ConversationId, MessageId};

use super::PostgresStore;
use crate::store::StoreError;
use crate::store::delivery::{DeliveryStore, OutboxEntry};
use crate::tenancy::TenantScope;

mod sql {
    crate::store::delivery_sql::delivery_ops!(sqlx::postgres::PgConnection, sqlx::postgres::PgRow);
}

#[async_trait]
impl DeliveryStore for PostgresStore {
    async fn last_inbound_at(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::last_inbound_at(&mut tx, scope.tenant_id(), conversation).await
    }
    async fn reply_target(
        &self,
        scope: &TenantScope,
        message: MessageId,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::reply_target(&mut tx, scope.tenant_id(), message).await
    }
    async fn attach_media(
        &self,
        scope: &TenantScope,
        message: MessageId,
        file: serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::attach_media(&mut tx, scope.tenant_id(), message, file).await?;
        tx.commit().await?;
        Ok(())
    }
    async fn outbox_entries(
        &self,
        scope: &TenantScope,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::outbox_entries(&mut tx, scope.tenant_id(), state, limit).await
    }
    async fn retry_outbox(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
    ) -> Result<OutboxEntry, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        let entry = sql::retry_outbox(&mut tx, scope.tenant_id(), id, Utc::now()).await?;
        tx.commit().await?;
        Ok(entry)
    }
}
