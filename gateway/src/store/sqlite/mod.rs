//! The embedded SQLite backend: a file in the data directory in WAL mode, a pool of read-only
//! connections, and one writer task that commits concurrent writes together in one transaction
//! (group commit), each write isolated by a savepoint so one failure never affects another.

mod bulk;
mod recovery;
mod writer;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coach_connector_api::{
    ChannelId, ConversationId, InboundEvent, MessageId, OutboundBody, TenantId,
};
use futures::FutureExt;
use sqlx::ConnectOptions;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use super::{
    ApiKeyRecord, AuditEntry, AuditRecord, Channel, ChannelPatch, ContactRecord, Credentials,
    IngestReport, NewChannel, NewRefresh, Queue, QueueItem, QueueOutcome, RefreshUse, Role,
    SigningKeyRecord, Store, StoreError, StoreStats, StoredMessage, Tenant, TenantSummary, User,
    UserId,
};
use crate::config::Synchronous;
use crate::tenancy::{SystemScope, TenantScope};
use writer::Writer;

mod console;
mod conversations;
mod delivery;
mod documents;
mod members;
mod programs;

mod ops {
    crate::store::ops::store_ops!(sqlx::sqlite::SqliteConnection, sqlx::sqlite::SqliteRow);
}

mod accounts_sql {
    crate::store::accounts_sql::account_ops!(
        sqlx::sqlite::SqliteConnection,
        sqlx::sqlite::SqliteRow
    );
}

mod members_sql {
    crate::store::members_sql::member_ops!(sqlx::sqlite::SqliteConnection, sqlx::sqlite::SqliteRow);
}

mod privacy_sql {
    crate::store::privacy_sql::privacy_ops!(
        sqlx::sqlite::SqliteConnection,
        sqlx::sqlite::SqliteRow
    );
}

mod queue_sql {
    crate::store::queue_sql::queue_ops!(
        sqlx::sqlite::SqliteConnection,
        greatest = "MAX",
        claim_lock = ""
    );
}

/// How to open the SQLite store.
#[derive(Clone, Debug)]
pub struct SqliteStoreOptions {
    /// The database file (created with its directory if missing).
    pub path: PathBuf,
    /// Durability against process crash (`Normal`) or power loss (`Full`).
    pub synchronous: Synchronous,
    /// Most writes per transaction (1: no batching).
    pub max_batch: usize,
    /// Read connections.
    pub readers: u32,
}

/// The embedded SQLite store.
pub struct SqliteStore {
    read: SqlitePool,
    writer: Writer,
}

impl SqliteStore {
    /// Open (creating if needed) and migrate the database, then start the writer.
    pub async fn open(opts: SqliteStoreOptions) -> Result<Self, StoreError> {
        if let Some(dir) = opts.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let connect = SqliteConnectOptions::from_str("sqlite://")?
            .filename(&opts.path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match opts.synchronous {
                Synchronous::Normal => SqliteSynchronous::Normal,
                Synchronous::Full => SqliteSynchronous::Full,
            })
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory");
        let mut conn: SqliteConnection = connect.connect().await?;
        sqlx::migrate!("../migrations/sqlite")
            .run(&mut conn)
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(opts.readers.max(1))
            .connect_with(connect.read_only(true))
            .await?;
        Ok(Self {
            read,
            writer: Writer::spawn(conn, opts.max_batch.max(1)),
        })
    }

    async fn reader(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>, StoreError> {
        Ok(self.read.acquire().await?)
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        self.writer.ping().await
    }

    async fn create_tenant(&self, _sys: &SystemScope, name: &str) -> Result<Tenant, StoreError> {
        let name = name.to_owned();
        self.writer
            .write(move |c| async move { ops::create_tenant(c, &name, Utc::now()).await }.boxed())
            .await
    }

    async fn create_channel(
        &self,
        scope: &TenantScope,
        new: NewChannel,
    ) -> Result<Channel, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| ops::create_channel(c, tenant, new, Utc::now()).boxed())
            .await
    }

    async fn channel(&self, scope: &TenantScope, id: ChannelId) -> Result<Channel, StoreError> {
        ops::channel(&mut *self.reader().await?, Some(scope.tenant_id()), id).await
    }

    async fn channel_for_webhook(
        &self,
        _sys: &SystemScope,
        id: ChannelId,
    ) -> Result<Channel, StoreError> {
        ops::channel(&mut *self.reader().await?, None, id).await
    }

    async fn ingest(
        &self,
        scope: &TenantScope,
        channel: ChannelId,
        events: Vec<InboundEvent>,
    ) -> Result<IngestReport, StoreError> {
        self.writer.ingest(scope.tenant_id(), channel, events).await
    }

    async fn enqueue_outbound(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        body: OutboundBody,
        reply_to: Option<MessageId>,
    ) -> Result<StoredMessage, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| {
                ops::enqueue_outbound(c, tenant, conversation, body, reply_to, Utc::now()).boxed()
            })
            .await
    }

    async fn claim(
        &self,
        _sys: &SystemScope,
        queue: Queue,
        kind: Option<&str>,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<QueueItem>, StoreError> {
        let kind = kind.map(str::to_owned);
        let until = now + lease;
        self.writer
            .write(move |c| {
                async move { queue_sql::claim(c, queue, kind.as_deref(), now, limit, until).await }
                    .boxed()
            })
            .await
    }

    async fn claim_fair(
        &self,
        _sys: &SystemScope,
        kind: &str,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<QueueItem>, StoreError> {
        let kind = kind.to_owned();
        let until = now + lease;
        self.writer
            .write(move |c| {
                async move { queue_sql::claim_fair(c, &kind, now, limit, until).await }.boxed()
            })
            .await
    }

    async fn finish(
        &self,
        _sys: &SystemScope,
        queue: Queue,
        item: &QueueItem,
        outcome: QueueOutcome,
    ) -> Result<(), StoreError> {
        let item = item.clone();
        self.writer
            .write(move |c| {
                async move { queue_sql::finish(c, queue, &item, outcome, Utc::now()).await }.boxed()
            })
            .await
    }

    async fn audit(&self, scope: &TenantScope, entry: AuditEntry) -> Result<(), StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| queue_sql::audit(c, tenant, entry, Utc::now()).boxed())
            .await
    }

    async fn audit_log(
        &self,
        scope: &TenantScope,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        queue_sql::audit_log(&mut *self.reader().await?, scope.tenant_id(), limit).await
    }

    async fn stats(&self, _sys: &SystemScope) -> Result<StoreStats, StoreError> {
        queue_sql::stats(&mut *self.reader().await?).await
    }

    async fn register(
        &self,
        _sys: &SystemScope,
        email: &str,
        password_hash: &str,
        tenant_name: &str,
    ) -> Result<(Tenant, User), StoreError> {
        let (email, hash, name) = (
            email.to_owned(),
            password_hash.to_owned(),
            tenant_name.to_owned(),
        );
        self.writer
            .write(move |c| {
                async move { accounts_sql::register(c, &email, &hash, &name, Utc::now()).await }
                    .boxed()
            })
            .await
    }

    async fn credentials(
        &self,
        _sys: &SystemScope,
        email: &str,
    ) -> Result<Option<Credentials>, StoreError> {
        accounts_sql::credentials(&mut *self.reader().await?, email).await
    }

    async fn user(&self, _sys: &SystemScope, id: UserId) -> Result<User, StoreError> {
        accounts_sql::user(&mut *self.reader().await?, id).await
    }

    async fn memberships(
        &self,
        _sys: &SystemScope,
        user: UserId,
    ) -> Result<Vec<(TenantId, Role)>, StoreError> {
        accounts_sql::memberships(&mut *self.reader().await?, user).await
    }

    async fn create_refresh(
        &self,
        _sys: &SystemScope,
        token: NewRefresh,
    ) -> Result<(), StoreError> {
        self.writer
            .write(move |c| {
                async move { accounts_sql::create_refresh(c, &token, Utc::now()).await }.boxed()
            })
            .await
    }

    async fn use_refresh(
        &self,
        _sys: &SystemScope,
        token_hash: Vec<u8>,
        next: NewRefresh,
    ) -> Result<RefreshUse, StoreError> {
        self.writer
            .write(move |c| {
                async move { accounts_sql::use_refresh(c, &token_hash, &next, Utc::now()).await }
                    .boxed()
            })
            .await
    }

    async fn revoke_session(
        &self,
        _sys: &SystemScope,
        family: uuid::Uuid,
    ) -> Result<(), StoreError> {
        self.writer
            .write(move |c| accounts_sql::revoke_family(c, family, Utc::now()).boxed())
            .await
    }

    async fn signing_keys(&self, _sys: &SystemScope) -> Result<Vec<SigningKeyRecord>, StoreError> {
        accounts_sql::signing_keys(&mut *self.reader().await?).await
    }

    async fn add_signing_key(
        &self,
        _sys: &SystemScope,
        key: SigningKeyRecord,
    ) -> Result<(), StoreError> {
        self.writer
            .write(move |c| async move { accounts_sql::add_signing_key(c, &key).await }.boxed())
            .await
    }

    async fn tenant_profile(
        &self,
        scope: &TenantScope,
    ) -> Result<(Tenant, crate::tenant::TenantProfile), StoreError> {
        accounts_sql::tenant_profile(&mut *self.reader().await?, scope.tenant_id()).await
    }

    async fn update_tenant_profile(
        &self,
        scope: &TenantScope,
        name: Option<String>,
        profile: Option<crate::tenant::TenantProfile>,
    ) -> Result<(Tenant, crate::tenant::TenantProfile), StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| accounts_sql::update_tenant_profile(c, tenant, name, profile).boxed())
            .await
    }

    async fn set_password(
        &self,
        _sys: &SystemScope,
        user: UserId,
        password_hash: &str,
    ) -> Result<Vec<uuid::Uuid>, StoreError> {
        let hash = password_hash.to_owned();
        self.writer
            .write(move |c| {
                async move { accounts_sql::set_password(c, user, &hash, Utc::now()).await }.boxed()
            })
            .await
    }

    async fn contacts(
        &self,
        scope: &TenantScope,
        before: Option<coach_connector_api::ContactId>,
        limit: u32,
    ) -> Result<Vec<ContactRecord>, StoreError> {
        privacy_sql::contacts(&mut *self.reader().await?, scope.tenant_id(), before, limit).await
    }

    async fn export_contact(
        &self,
        scope: &TenantScope,
        contact: coach_connector_api::ContactId,
    ) -> Result<serde_json::Value, StoreError> {
        privacy_sql::export_contact(&mut *self.reader().await?, scope.tenant_id(), contact).await
    }

    async fn erase_contact(
        &self,
        scope: &TenantScope,
        contact: coach_connector_api::ContactId,
    ) -> Result<(), StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| privacy_sql::erase_contact(c, tenant, contact).boxed())
            .await
    }

    async fn erase_tenant(&self, scope: &TenantScope) -> Result<Vec<uuid::Uuid>, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| privacy_sql::erase_tenant(c, tenant).boxed())
            .await
    }

    async fn create_api_key(
        &self,
        _scope: &TenantScope,
        key: ApiKeyRecord,
        key_hash: Vec<u8>,
        created_by: Option<UserId>,
    ) -> Result<(), StoreError> {
        self.writer
            .write(move |c| {
                async move { members_sql::create_api_key(c, &key, &key_hash, created_by).await }
                    .boxed()
            })
            .await
    }

    async fn api_keys(&self, scope: &TenantScope) -> Result<Vec<ApiKeyRecord>, StoreError> {
        members_sql::api_keys(&mut *self.reader().await?, scope.tenant_id()).await
    }

    async fn api_key_by_hash(
        &self,
        _sys: &SystemScope,
        key_hash: Vec<u8>,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        members_sql::api_key_by_hash(&mut *self.reader().await?, &key_hash).await
    }

    async fn revoke_api_key(&self, scope: &TenantScope, id: uuid::Uuid) -> Result<(), StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| members_sql::revoke_api_key(c, tenant, id, Utc::now()).boxed())
            .await
    }

    async fn apply_retention(
        &self,
        _sys: &SystemScope,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.writer
            .write(move |c| privacy_sql::apply_retention(c, now).boxed())
            .await
    }

    async fn set_platform_admin(
        &self,
        _sys: &SystemScope,
        user: UserId,
        on: bool,
    ) -> Result<(), StoreError> {
        self.writer
            .write(move |c| accounts_sql::set_platform_admin(c, user, on).boxed())
            .await
    }

    async fn all_tenants(&self, _sys: &SystemScope) -> Result<Vec<TenantSummary>, StoreError> {
        accounts_sql::all_tenants(&mut *self.reader().await?).await
    }

    async fn set_tenant_active(
        &self,
        _sys: &SystemScope,
        tenant: TenantId,
        active: bool,
    ) -> Result<Vec<uuid::Uuid>, StoreError> {
        self.writer
            .write(move |c| accounts_sql::set_tenant_active(c, tenant, active, Utc::now()).boxed())
            .await
    }

    async fn create_password_reset(
        &self,
        _sys: &SystemScope,
        user: UserId,
        token_hash: Vec<u8>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.writer
            .write(move |c| {
                async move {
                    accounts_sql::create_password_reset(
                        c,
                        user,
                        &token_hash,
                        expires_at,
                        Utc::now(),
                    )
                    .await
                }
                .boxed()
            })
            .await
    }

    async fn password_reset(
        &self,
        _sys: &SystemScope,
        token_hash: Vec<u8>,
        consume: bool,
    ) -> Result<Option<UserId>, StoreError> {
        if !consume {
            return accounts_sql::password_reset(
                &mut *self.reader().await?,
                &token_hash,
                false,
                Utc::now(),
            )
            .await;
        }
        self.writer
            .write(move |c| {
                async move { accounts_sql::password_reset(c, &token_hash, true, Utc::now()).await }
                    .boxed()
            })
            .await
    }

    async fn channels(&self, scope: &TenantScope) -> Result<Vec<Channel>, StoreError> {
        accounts_sql::channels(&mut *self.reader().await?, scope.tenant_id()).await
    }

    async fn update_channel(
        &self,
        scope: &TenantScope,
        id: ChannelId,
        patch: ChannelPatch,
    ) -> Result<Channel, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| accounts_sql::update_channel(c, tenant, id, patch, Utc::now()).boxed())
            .await
    }

    async fn delete_channel(&self, scope: &TenantScope, id: ChannelId) -> Result<(), StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| accounts_sql::delete_channel(c, tenant, id).boxed())
            .await
    }

    async fn recover_in_flight(&self, _sys: &SystemScope) -> Result<u64, StoreError> {
        self.writer
            .write(move |c| recovery::release_in_flight(c, Utc::now()).boxed())
            .await
    }

    async fn close(&self) {
        self.writer.close().await;
        self.read.close().await;
    }
}
