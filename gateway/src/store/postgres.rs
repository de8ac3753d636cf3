//! The PostgreSQL backend: a sqlx pool; every transaction first switches to the `coach_app`
//! role with the tenant set (row-level security does the rest), or to `coach_worker` for system
//! work. The login role must be neither owner nor superuser; migrations run as the owner.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coach_connector_api::{
    ChannelId, ConversationId, InboundEvent, MessageId, OutboundBody, TenantId,
};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use super::{
    ApiKeyRecord, AuditEntry, AuditRecord, Channel, ChannelPatch, ContactRecord, Credentials,
    IngestReport, NewChannel, NewRefresh, Queue, QueueItem, QueueOutcome, RefreshUse, Role,
    SigningKeyRecord, Store, StoreError, StoreStats, StoredMessage, Tenant, TenantSummary, User,
    UserId,
};
use crate::tenancy::{SystemScope, TenantScope};

#[path = "postgres_console.rs"]
mod console;
#[path = "postgres_conversations.rs"]
mod conversations;
#[path = "postgres_delivery.rs"]
mod delivery;
#[path = "postgres_documents.rs"]
mod documents;
#[path = "postgres_members.rs"]
mod members;
#[path = "postgres_programs.rs"]
mod programs;

mod ops {
    crate::store::ops::store_ops!(sqlx::postgres::PgConnection, sqlx::postgres::PgRow);
}

mod accounts_sql {
    crate::store::accounts_sql::account_ops!(sqlx::postgres::PgConnection, sqlx::postgres::PgRow);
}

mod members_sql {
    crate::store::members_sql::member_ops!(sqlx::postgres::PgConnection, sqlx::postgres::PgRow);
}

mod privacy_sql {
    crate::store::privacy_sql::privacy_ops!(sqlx::postgres::PgConnection, sqlx::postgres::PgRow);
}

mod queue_sql {
    crate::store::queue_sql::queue_ops!(
        sqlx::postgres::PgConnection,
        greatest = "GREATEST",
        claim_lock = "FOR UPDATE SKIP LOCKED"
    );
}

/// How to reach PostgreSQL.
#[derive(Clone, Debug)]
pub struct PostgresStoreOptions {
    /// The serving role's connection options (not owner, not superuser).
    pub connect: PgConnectOptions,
    /// Pool size.
    pub max_connections: u32,
}

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: PgPool,
}

/// Run the migrations as the schema owner (`gateway migrate`, tests, and start-up when
/// `database.migrate_url` is set).
pub async fn migrate(owner: PgConnectOptions) -> Result<(), StoreError> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(owner)
        .await?;
    sqlx::migrate!("../migrations/postgres").run(&pool).await?;
    pool.close().await;
    Ok(())
}

impl PostgresStore {
    /// A store whose pool connects lazily: a database that is down at start makes `/readyz`
    /// fail until it is back, it does not stop the process.
    pub fn connect_lazy(opts: PostgresStoreOptions) -> Self {
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(opts.connect);
        Self { pool }
    }

    /// Refuse to serve as a superuser or a role that bypasses row-level security.
    pub async fn check_role(&self) -> Result<(), StoreError> {
        let (user, superuser, bypass): (String, bool, bool) = sqlx::query_as(
            "SELECT rolname::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
        )
        .fetch_one(&self.pool)
        .await?;
        if superuser || bypass {
            return Err(StoreError::Unavailable(format!(
                "PostgreSQL role {user:?} is a superuser or bypasses row-level security; connect \
                 database.url as a role that is neither (see README, PostgreSQL)"
            )));
        }
        Ok(())
    }

    async fn tenant_tx(
        &self,
        scope: &TenantScope,
    ) -> Result<Transaction<'_, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "SELECT set_config('role', 'coach_app', true), set_config('app.tenant_id', $1, true)",
        )
        .bind(scope.tenant_id().to_string())
        .execute(&mut *tx)
        .await?;
        Ok(tx)
    }

    async fn system_tx(&self, _sys: &SystemScope) -> Result<Transaction<'_, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('role', 'coach_worker', true)")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Run raw SQL inside a tenant transaction exactly as every store method does, returning
    /// the rows it returned or changed. For the row-level-security tests, which show that SQL
    /// forgetting its tenant filter still cannot cross tenants.
    #[doc(hidden)]
    pub async fn raw_tenant_query(
        &self,
        scope: &TenantScope,
        sql: &str,
    ) -> Result<u64, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        let n = sqlx::raw_sql(sql).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(n)
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_tenant(&self, sys: &SystemScope, name: &str) -> Result<Tenant, StoreError> {
        let mut tx = self.system_tx(sys).await?;
        let tenant = ops::create_tenant(&mut tx, name, Utc::now()).await?;
        tx.commit().await?;
        Ok(tenant)
    }

    async fn create_channel(
        &self,
        scope: &TenantScope,
        new: NewChannel,
    ) -> Result<Channel, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        let channel = ops::create_channel(&mut tx, scope.tenant_id(), new, Utc::now()).await?;
        tx.commit().await?;
        Ok(channel)
    }

    async fn channel(&self, scope: &TenantScope, id: ChannelId) -> Result<Channel, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        ops::channel(&mut tx, Some(scope.tenant_id()), id).await
    }

    async fn channel_for_webhook(
        &self,
        sys: &SystemScope,
        id: ChannelId,
    ) -> Result<Channel, StoreError> {
        let mut tx = self.system_tx(sys).await?;
        ops::channel(&mut tx, None, id).await
    }

    async fn ingest(
        &self,
        scope: &TenantScope,
        channel: ChannelId,
        events: Vec<InboundEvent>,
    ) -> Result<IngestReport, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        let report = ops::ingest(&mut tx, scope.tenant_id(), channel, events, Utc::now()).await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn enqueue_outbound(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        body: OutboundBody,
        reply_to: Option<MessageId>,
    ) -> Result<StoredMessage, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        let msg = ops::enqueue_outbound(
            &mut tx,
            scope.tenant_id(),
            conversation,
            body,
            reply_to,
            Utc::now(),
        )
        .await?;
        tx.commit().await?;
        Ok(msg)
    }

    async fn claim(
        &self,
        sys: &SystemScope,
        queue: Queue,
        kind: Option<&str>,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<QueueItem>, StoreError> {
        let mut tx = self.system_tx(sys).await?;
        let items = queue_sql::claim(&mut tx, queue, kind, now, limit, now + lease).await?;
        tx.commit().await?;
        Ok(items)
    }

    async fn claim_fair(
        &self,
        sys: &SystemScope,
        kind: &str,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<QueueItem>, StoreError> {
        let mut tx = self.system_tx(sys).await?;
        let items = queue_sql::claim_fair(&mut tx, kind, now, limit, now + lease).await?;
        tx.commit().await?;
        Ok(items)
    }

    async fn finish(
        &self,
        sys: &SystemScope,
        queue: Queue,
        item: &QueueItem,
        outcome: QueueOutcome,
    ) -> Result<(), StoreError> {
        let mut tx = self.system_tx(sys).await?;
        queue_sql::finish(&mut tx, queue, item, outcome, Utc::now()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit(&self, scope: &TenantScope, entry: AuditEntry) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        queue_sql::audit(&mut tx, scope.tenant_id(), entry, Utc::now()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_log(
        &self,
        scope: &TenantScope,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        queue_sql::audit_log(&mut tx, scope.tenant_id(), limit).await
    }

    async fn stats(&self, sys: &SystemScope) -> Result<StoreStats, StoreError> {
        let mut tx = self.system_tx(sys).await?;
        queue_sql::stats(&mut tx).await
    }

    async fn register(
        &self,
        sys: &SystemScope,
        email: &str,
        password_hash: &str,
        tenant_name: &str,
    ) -> Result<(Tenant, User), StoreError> {
        let mut tx = self.system_tx(sys).await?;
        let out =
            accounts_sql::register(&mut tx, email, password_hash, tenant_name, Utc::now()).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn credentials(
        &self,
        sys: &SystemScope,
        email: &str,
    ) -> Result<Option<Credentials>, StoreError> {
        accounts_sql::credentials(&mut *self.system_tx(sys).await?, email).await
    }

    async fn user(&self, sys: &SystemScope, id: UserId) -> Result<User, StoreError> {
        accounts_sql::user(&mut *self.system_tx(sys).await?, id).await
    }

    async fn memberships(
        &self,
        sys: &SystemScope,
        user: UserId,
    ) -> Result<Vec<(TenantId, Role)>, StoreError> {
        accounts_sql::memberships(&mut *self.system_tx(sys).await?, user).await
    }

    async fn create_refresh(&self, sys: &SystemScope, token: NewRefresh) -> Result<(), StoreError> {
        let mut tx = self.system_tx(sys).await?;
        accounts_sql::create_refresh(&mut tx, &token, Utc::now()).await?;
        Ok(tx.commit().await?)
    }

    async fn use_refresh(
        &self,
        sys: &SystemScope,
        token_hash: Vec<u8>,
        next: NewRefresh,
    ) -> Result<RefreshUse, StoreError> {
        let mut tx = self.system_tx(sys).await?;
        let out = accounts_sql::use_refresh(&mut tx, &token_hash, &next, Utc::now()).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn revoke_session(
        &self,
        sys: &SystemScope,
        family: uuid::Uuid,
    ) -> Result<(), StoreError> {
        let mut tx = self.system_tx(sys).await?;
        accounts_sql::revoke_family(&mut tx, family, Utc::now()).await?;
        Ok(tx.commit().await?)
    }

    async fn signing_keys(&self, sys: &SystemScope) -> Result<Vec<SigningKeyRecord>, StoreError> {
        accounts_sql::signing_keys(&mut *self.system_tx(sys).await?).await
    }

    async fn add_signing_key(
        &self,
        sys: &SystemScope,
        key: SigningKeyRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.system_tx(sys).await?;
        accounts_sql::add_signing_key(&mut tx, &key).await?;
        Ok(tx.commit().await?)
    }

    async fn tenant_profile(
        &self,
        scope: &TenantScope,
    ) -> Result<(Tenant, crate::tenant::TenantProfile), StoreError> {
        accounts_sql::tenant_profile(&mut *self.tenant_tx(scope).await?, scope.tenant_id()).await
    }

    async fn update_tenant_profile(
        &self,
        scope: &TenantScope,
        name: Option<String>,
        profile: Option<crate::tenant::TenantProfile>,
    ) -> Result<(Tenant, crate::tenant::TenantProfile), StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        let out =
            accounts_sql::update_tenant_profile(&mut tx, scope.tenant_id(), name, profile).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn set_password(
        &self,
        sys: &SystemScope,
        user: UserId,
        password_hash: &str,
    ) -> Result<Vec<uuid::Uuid>, StoreError> {
        let mut tx = self.system_tx(sys).await?;
        let ended = accounts_sql::set_password(&mut tx, user, password_hash, Utc::now()).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn contacts(
        &self,
        scope: &TenantScope,
        before: Option<coach_connector_api::ContactId>,
        limit: u32,
    ) -> Result<Vec<ContactRecord>, StoreError> {
        privacy_sql::contacts(
            &mut *self.tenant_tx(scope).await?,
            scope.tenant_id(),
            before,
            limit,
        )
        .await
    }

    async fn export_contact(
        &self,
        scope: &TenantScope,
        contact: coach_connector_api::ContactId,
    ) -> Result<serde_json::Value, StoreError> {
        privacy_sql::export_contact(
            &mut *self.tenant_tx(scope).await?,
            scope.tenant_id(),
            contact,
        )
        .await
    }

    async fn erase_contact(
        &self,
        scope: &TenantScope,
        contact: coach_connector_api::ContactId,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        privacy_sql::erase_contact(&mut tx, scope.tenant_id(), contact).await?;
        Ok(tx.commit().await?)
    }

    async fn erase_tenant(&self, scope: &TenantScope) -> Result<Vec<uuid::Uuid>, StoreError> {
        // Sessions live in a worker-only table; the statements filter by this tenant.
        let sys = SystemScope::new("erase tenant");
        let mut tx = self.system_tx(&sys).await?;
        let sessions = privacy_sql::erase_tenant(&mut tx, scope.tenant_id()).await?;
        tx.commit().await?;
        Ok(sessions)
    }

    async fn create_api_key(
        &self,
        scope: &TenantScope,
        key: ApiKeyRecord,
        key_hash: Vec<u8>,
        created_by: Option<UserId>,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        members_sql::create_api_key(&mut tx, &key, &key_hash, created_by).await?;
        Ok(tx.commit().await?)
    }

    async fn api_keys(&self, scope: &TenantScope) -> Result<Vec<ApiKeyRecord>, StoreError> {
        members_sql::api_keys(&mut *self.tenant_tx(scope).await?, scope.tenant_id()).await
    }

    async fn api_key_by_hash(
        &self,
        sys: &SystemScope,
        key_hash: Vec<u8>,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        members_sql::api_key_by_hash(&mut *self.system_tx(sys).await?, &key_hash).await
    }

    async fn revoke_api_key(&self, scope: &TenantScope, id: uuid::Uuid) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        members_sql::revoke_api_key(&mut tx, scope.tenant_id(), id, Utc::now()).await?;
        Ok(tx.commit().await?)
    }

    async fn apply_retention(
        &self,
        sys: &SystemScope,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.system_tx(sys).await?;
        let deleted = privacy_sql::apply_retention(&mut tx, now).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn set_platform_admin(
        &self,
        sys: &SystemScope,
        user: UserId,
        on: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.system_tx(sys).await?;
        accounts_sql::set_platform_admin(&mut tx, user, on).await?;
        Ok(tx.commit().await?)
    }

    async fn all_tenants(&self, sys: &SystemScope) -> Result<Vec<TenantSummary>, StoreError> {
        accounts_sql::all_tenants(&mut *self.system_tx(sys).await?).await
    }

    async fn set_tenant_active(
        &self,
        sys: &SystemScope,
        tenant: TenantId,
        active: bool,
    ) -> Result<Vec<uuid::Uuid>, StoreError> {
        let mut tx = self.system_tx(sys).await?;
        let ended = accounts_sql::set_tenant_active(&mut tx, tenant, active, Utc::now()).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn create_password_reset(
        &self,
        sys: &SystemScope,
        user: UserId,
        token_hash: Vec<u8>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.system_tx(sys).await?;
        accounts_sql::create_password_reset(&mut tx, user, &token_hash, expires_at, Utc::now())
            .await?;
        Ok(tx.commit().await?)
    }

    async fn password_reset(
        &self,
        sys: &SystemScope,
        token_hash: Vec<u8>,
        consume: bool,
    ) -> Result<Option<UserId>, StoreError> {
        let mut tx = self.system_tx(sys).await?;
        let user = accounts_sql::password_reset(&mut tx, &token_hash, consume, Utc::now()).await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn channels(&self, scope: &TenantScope) -> Result<Vec<Channel>, StoreError> {
        accounts_sql::channels(&mut *self.tenant_tx(scope).await?, scope.tenant_id()).await
    }

    async fn update_channel(
        &self,
        scope: &TenantScope,
        id: ChannelId,
        patch: ChannelPatch,
    ) -> Result<Channel, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        let channel =
            accounts_sql::update_channel(&mut tx, scope.tenant_id(), id, patch, Utc::now()).await?;
        tx.commit().await?;
        Ok(channel)
    }

    async fn delete_channel(&self, scope: &TenantScope, id: ChannelId) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        accounts_sql::delete_channel(&mut tx, scope.tenant_id(), id).await?;
        Ok(tx.commit().await?)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
