//! [`ConsoleStore`] on PostgreSQL: each call one transaction under the tenant's row-level security.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::PostgresStore;
use crate::store::StoreError;
use coach_connector_api::ConversationId;

use crate::store::console::{ConsoleStore, DayCount, Handoff, HandoffReason, InboxItem, UsageDay};
use crate::tenancy::TenantScope;

mod sql {
    crate::store::console_sql::console_ops!(
        sqlx::postgres::PgConnection,
        sqlx::postgres::PgRow,
        "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    );
}

#[async_trait]
impl ConsoleStore for PostgresStore {
    async fn record_handoff(
        &self,
        scope: &TenantScope,
        handoff: Handoff,
        notify: Option<serde_json::Value>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        let new = sql::record_handoff(&mut tx, scope.tenant_id(), handoff, notify).await?;
        tx.commit().await?;
        Ok(new)
    }
    async fn inbox(
        &self,
        scope: &TenantScope,
        user: uuid::Uuid,
        limit: u32,
    ) -> Result<Vec<InboxItem>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::inbox(&mut tx, scope.tenant_id(), user, limit).await
    }
    async fn mark_read(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        user: uuid::Uuid,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::mark_read(&mut tx, scope.tenant_id(), conversation, user).await?;
        tx.commit().await?;
        Ok(())
    }
    async fn handoffs(
        &self,
        scope: &TenantScope,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Handoff>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::handoffs(&mut tx, scope.tenant_id(), since, limit).await
    }
    async fn handoff_counts(
        &self,
        scope: &TenantScope,
        since: DateTime<Utc>,
    ) -> Result<Vec<(HandoffReason, i64)>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::handoff_counts(&mut tx, scope.tenant_id(), since).await
    }
    async fn record_usage(&self, scope: &TenantScope, usage: UsageDay) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::record_usage(&mut tx, scope.tenant_id(), usage).await?;
        tx.commit().await?;
        Ok(())
    }
    async fn usage(
        &self,
        scope: &TenantScope,
        since_day: &str,
    ) -> Result<Vec<UsageDay>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::usage(&mut tx, scope.tenant_id(), since_day).await
    }
    async fn message_counts(
        &self,
        scope: &TenantScope,
        since: DateTime<Utc>,
    ) -> Result<Vec<DayCount>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::message_counts(&mut tx, scope.tenant_id(), since).await
    }
    async fn answer_times(
        &self,
        scope: &TenantScope,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::answer_times(&mut tx, scope.tenant_id(), since, limit).await
    }
}
