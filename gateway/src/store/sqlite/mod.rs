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
use chrono::Utc;
use coach_connector_api::{ChannelId, InboundEvent};
use futures::FutureExt;
use sqlx::ConnectOptions;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use super::backend::{Backend, Conn, Scoped, Work};
use super::{IngestReport, Store, StoreError};
use crate::config::Synchronous;
use crate::tenancy::{SystemScope, TenantScope};
use writer::Writer;

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
            crate::files::private_dir(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        crate::files::private_file(&opts.path).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", opts.path.display()))
        })?;
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
            // Deleted rows are overwritten with zeros: erased text leaves no byte in the file.
            .pragma("secure_delete", "on")
            .pragma("temp_store", "memory");
        let mut conn: SqliteConnection = connect.connect().await?;
        sqlx::migrate!("../migrations/sqlite")
            .run(&mut conn)
            .await?;
        // Pages freed before `secure_delete` was on may still hold erased text: rewrite the file
        // once (VACUUM cannot run inside a migration's transaction).
        let rewritten: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut conn)
            .await?;
        if rewritten < 1 {
            sqlx::query("VACUUM").execute(&mut conn).await?;
            sqlx::query("PRAGMA user_version = 1")
                .execute(&mut conn)
                .await?;
        }
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

impl Backend for SqliteStore {
    type Db = sqlx::Sqlite;
    const GREATEST: &'static str = "MAX";
    const CLAIM_LOCK: &'static str = "";
    const ROW_LOCK: &'static str = "";
    const EVENT_LOG_TURN: &'static str = "";
    const KEY_SHARE: &'static str = "";
    const UTC_DAY: &'static str = "substr(created_at, 1, 10)";
    // CROSS JOIN keeps this order (SQLite's planner does not reorder it): the full-text match
    // first, then its messages by key. Left to itself the planner walked the tenant's messages
    // and ran the match once per message (over a second per search at 50,000 messages).
    const MESSAGE_SEARCH: &'static str = "SELECT m.conversation_id FROM message_search \
        CROSS JOIN message_search_ids i ON i.rowid = message_search.rowid \
        CROSS JOIN messages m ON m.id = i.message_id \
        WHERE message_search MATCH $query AND m.tenant_id = $tenant";

    fn search_query(search: &crate::store::SearchText) -> String {
        search.fts5()
    }

    async fn read<S: Scoped, T: Send + 'static>(
        &self,
        scope: &S,
        work: impl Work<Conn<Self>, S::Key, T>,
    ) -> Result<T, StoreError> {
        work(&mut *self.reader().await?, scope.key()).await
    }

    async fn write<S: Scoped, T: Send + 'static>(
        &self,
        scope: &S,
        work: impl Work<Conn<Self>, S::Key, T>,
    ) -> Result<T, StoreError> {
        let key = scope.key();
        self.writer.write(move |c| work(c, key)).await
    }

    async fn after_erasure(&self) {
        self.writer.checkpoint().await;
    }
}

impl SqliteStore {
    /// Inbound events go through the writer's set-based path, batched with other ingests.
    pub(in crate::store) async fn ingest_events(
        &self,
        scope: &TenantScope,
        channel: ChannelId,
        events: Vec<InboundEvent>,
    ) -> Result<IngestReport, StoreError> {
        self.writer.ingest(scope.tenant_id(), channel, events).await
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
