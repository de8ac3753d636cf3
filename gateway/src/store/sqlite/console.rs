//! [`ConsoleStore`] on SQLite: reads from the pool, writes through the single writer.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::FutureExt;

use super::SqliteStore;
use crate::store::StoreError;
use coach_connector_api::ConversationId;

use crate::store::console::{ConsoleStore, DayCount, Handoff, HandoffReason, InboxItem, UsageDay};
use crate::tenancy::TenantScope;

mod sql {
    crate::store::console_sql::console_ops!(
        sqlx::sqlite::SqliteConnection,
        sqlx::sqlite::SqliteRow,
        "substr(created_at, 1, 10)"
    );
}

#[async_trait]
impl ConsoleStore for SqliteStore {
    async fn record_handoff(
        &self,
        scope: &TenantScope,
        handoff: Handoff,
        notify: Option<serde_json::Value>,
    ) -> Result<bool, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| sql::record_handoff(c, tenant, handoff, notify).boxed())
            .await
    }
    async fn inbox(
        &self,
        scope: &TenantScope,
        user: uuid::Uuid,
        limit: u32,
    ) -> Result<Vec<InboxItem>, StoreError> {
        sql::inbox(&mut *self.reader().await?, scope.tenant_id(), user, limit).await
    }
    async fn mark_read(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        user: uuid::Uuid,
    ) -> Result<(), StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| sql::mark_read(c, tenant, conversation, user).boxed())
            .await
    }
    async fn handoffs(
        &self,
        scope: &TenantScope,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Handoff>, StoreError> {
        sql::handoffs(&mut *self.reader().await?, scope.tenant_id(), since, limit).await
    }
    async fn handoff_counts(
        &self,
        scope: &TenantScope,
        since: DateTime<Utc>,
    ) -> Result<Vec<(HandoffReason, i64)>, StoreError> {
        sql::handoff_counts(&mut *self.reader().await?, scope.tenant_id(), since).await
    }
    async fn record_usage(&self, scope: &TenantScope, usage: UsageDay) -> Result<(), StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| sql::record_usage(c, tenant, usage).boxed())
            .await
    }
    async fn usage(
        &self,
        scope: &TenantScope,
        since_day: &str,
    ) -> Result<Vec<UsageDay>, StoreError> {
        sql::usage(&mut *self.reader().await?, scope.tenant_id(), since_day).await
    }
    async fn message_counts(
        &self,
        scope: &TenantScope,
        since: DateTime<Utc>,
    ) -> Result<Vec<DayCount>, StoreError> {
        sql::message_counts(&mut *self.reader().await?, scope.tenant_id(), since).await
    }
    async fn answer_times(
        &self,
        scope: &TenantScope,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>, StoreError> {
        sql::answer_times(&mut *self.reader().await?, scope.tenant_id(), since, limit).await
    }
}
