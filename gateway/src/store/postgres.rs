//! The PostgreSQL backend: a sqlx pool; every transaction first switches to the `coach_app`
//! role with the tenant set (row-level security does the rest), or to `coach_worker` for system
//! work. The login role must be neither owner nor superuser; migrations run as the owner.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use coach_connector_api::{ChannelId, InboundEvent, TenantId};
use futures::FutureExt;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use super::backend::{Backend, Conn, Scoped, Work};
use super::{IngestReport, Store, StoreError};
use crate::tenancy::TenantScope;

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

    /// A transaction as the app role under `tenant`'s row-level security, or as the worker
    /// role for system work.
    async fn begin(
        &self,
        tenant: Option<TenantId>,
    ) -> Result<Transaction<'_, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        match tenant {
            Some(tenant) => sqlx::query(
                "SELECT set_config('role', 'coach_app', true), set_config('app.tenant_id', $1, true)",
            )
            .bind(tenant.to_string()),
            None => sqlx::query("SELECT set_config('role', 'coach_worker', true)"),
        }
        .execute(&mut *tx)
        .await?;
        Ok(tx)
    }

    async fn tenant_tx(
        &self,
        scope: &TenantScope,
    ) -> Result<Transaction<'_, Postgres>, StoreError> {
        self.begin(Some(scope.tenant_id())).await
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
impl Backend for PostgresStore {
    type Db = Postgres;
    const GREATEST: &'static str = "GREATEST";
    const CLAIM_LOCK: &'static str = "FOR UPDATE SKIP LOCKED";
    const ROW_LOCK: &'static str = "FOR UPDATE";
    // One key for the whole event log ("coach-ev" in ASCII). Without it, a reader can see a
    // row before a lower-numbered one commits (the event log's concurrency test fails).
    const EVENT_LOG_TURN: &'static str = "SELECT pg_advisory_xact_lock(7165052611747210614)";
    const KEY_SHARE: &'static str = "FOR KEY SHARE";
    const UTC_DAY: &'static str = "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')";
    const MESSAGE_SEARCH: &'static str = "SELECT m.conversation_id FROM messages m \
        WHERE m.tenant_id = $tenant AND m.search @@ plainto_tsquery('simple', $query)";

    fn search_query(search: &crate::store::SearchText) -> String {
        search.tsquery()
    }

    async fn read<S: Scoped, T: Send + 'static>(
        &self,
        scope: &S,
        work: impl Work<Conn<Self>, S::Key, T>,
    ) -> Result<T, StoreError> {
        work(&mut *self.begin(scope.tenant()).await?, scope.key()).await
    }

    async fn write<S: Scoped, T: Send + 'static>(
        &self,
        scope: &S,
        work: impl Work<Conn<Self>, S::Key, T>,
    ) -> Result<T, StoreError> {
        let mut tx = self.begin(scope.tenant()).await?;
        let out = work(&mut tx, scope.key()).await?;
        tx.commit().await?;
        Ok(out)
    }
}

impl PostgresStore {
    /// Inbound events are stored in one transaction under the tenant's row-level security.
    pub(in crate::store) async fn ingest_events(
        &self,
        scope: &TenantScope,
        channel: ChannelId,
        events: Vec<InboundEvent>,
    ) -> Result<IngestReport, StoreError> {
        self.write(scope, move |c, tenant| {
            super::channels::sql::postgres::ingest(c, tenant, channel, events, Utc::now()).boxed()
        })
        .await
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

    async fn close(&self) {
        self.pool.close().await;
    }
}
