//! Backends for the compliance suites: a fresh SQLite file or a fresh PostgreSQL schema each.

#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use coach_connector_api::{
    ChannelIdentity, ChannelKind, Content, DedupKey, DeliveryStatus, InboundEvent, InboundMessage,
    StatusUpdate,
};
use coach_gateway::config::Synchronous;
use coach_gateway::store::{
    NewChannel, PostgresStore, PostgresStoreOptions, SqliteStore, SqliteStoreOptions, Store,
    migrate_postgres,
};
use coach_gateway::tenancy::{SystemScope, TenantScope};

/// A store under test and what keeps its backing alive.
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub postgres: Option<Arc<PostgresStore>>,
    /// How the gateway logs in to this schema (PostgreSQL), for a second "process".
    pg_app: Option<sqlx::postgres::PgConnectOptions>,
    sabotage: Sabotage,
    _dir: Option<tempfile::TempDir>,
}

/// How to reach the database behind the store's back, to make a write fail mid-transaction.
enum Sabotage {
    Sqlite(std::path::PathBuf),
    Postgres(Box<sqlx::postgres::PgConnectOptions>),
}

impl Backend {
    /// The store as a second gateway process sees it: its own connection pool on PostgreSQL;
    /// the same store on SQLite, whose file belongs to one process.
    pub fn second_store(&self) -> Arc<dyn Store> {
        match &self.pg_app {
            Some(app) => {
                let store = PostgresStore::connect_lazy(PostgresStoreOptions {
                    connect: app.clone(),
                    max_connections: 8,
                });
                Arc::new(store)
            }
            None => self.store.clone(),
        }
    }

    /// Move every stored message `secs` into the past (as if they had arrived then).
    pub async fn age_messages(&self, secs: i64) {
        use sqlx::ConnectOptions;
        let at = Utc::now() - chrono::Duration::seconds(secs);
        match &self.sabotage {
            Sabotage::Sqlite(path) => {
                let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .connect()
                    .await
                    .unwrap();
                sqlx::query("UPDATE messages SET created_at = $1")
                    .bind(at)
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            Sabotage::Postgres(owner) => {
                let mut conn = owner.connect().await.unwrap();
                sqlx::query("UPDATE messages SET created_at = $1")
                    .bind(at)
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
    }

    /// Make every insert of a message with this dedup key fail inside the database (a trigger),
    /// so tests can show that a failing write leaves nothing behind.
    pub async fn fail_message_inserts(&self, dedup_key: &str) {
        use sqlx::{ConnectOptions, Executor};
        match &self.sabotage {
            Sabotage::Sqlite(path) => {
                let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .connect()
                    .await
                    .unwrap();
                conn.execute(
                    format!(
                        "CREATE TRIGGER sabotage BEFORE INSERT ON messages WHEN NEW.dedup_key = '{dedup_key}' \
                         BEGIN SELECT RAISE(ABORT, 'sabotaged'); END"
                    )
                    .as_str(),
                )
                .await
                .unwrap();
            }
            Sabotage::Postgres(owner) => {
                let mut conn = owner.connect().await.unwrap();
                conn.execute(
                    format!(
                        "CREATE FUNCTION sabotage() RETURNS trigger LANGUAGE plpgsql AS $$ \
                         BEGIN IF NEW.dedup_key = '{dedup_key}' THEN RAISE EXCEPTION 'sabotaged'; END IF; \
                         RETURN NEW; END $$; \
                         CREATE TRIGGER sabotage BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION sabotage();"
                    )
                    .as_str(),
                )
                .await
                .unwrap();
            }
        }
    }
}

pub async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    let store = SqliteStore::open(SqliteStoreOptions {
        path: path.clone(),
        synchronous: Synchronous::Normal,
        max_batch: 64,
        readers: 4,
    })
    .await
    .unwrap();
    Backend {
        store: Arc::new(store),
        postgres: None,
        pg_app: None,
        sabotage: Sabotage::Sqlite(path),
        _dir: Some(dir),
    }
}

pub async fn postgres() -> Backend {
    let schema = coach_e2e::pg::fresh_schema().await.unwrap();
    migrate_postgres(schema.owner.clone()).await.unwrap();
    let store = Arc::new(PostgresStore::connect_lazy(PostgresStoreOptions {
        connect: schema.app.clone(),
        max_connections: 8,
    }));
    store.check_role().await.unwrap();
    Backend {
        store: store.clone(),
        postgres: Some(store),
        pg_app: Some(schema.app.clone()),
        sabotage: Sabotage::Postgres(Box::new(schema.owner)),
        _dir: None,
    }
}

/// A tenant with one channel of the given kind.
pub async fn tenant_with_channel(
    store: &dyn Store,
    name: &str,
) -> (TenantScope, coach_connector_api::ChannelId) {
    let sys = SystemScope::new("test");
    let tenant = store.create_tenant(&sys, name).await.unwrap();
    let scope = sys.for_tenant(tenant.id);
    let channel = store
        .create_channel(
            &scope,
            NewChannel {
                kind: ChannelKind::WhatsApp,
                name: format!("{name} whatsapp"),
                config: serde_json::json!({ "phone_number_id": "123" }),
            },
        )
        .await
        .unwrap();
    (scope, channel.id)
}

pub fn ts(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000 + secs, 0).unwrap()
}

pub fn text(key: &str, from: &str, body: &str) -> InboundEvent {
    InboundEvent::Message(InboundMessage {
        dedup_key: DedupKey(key.into()),
        provider_message_id: key.into(),
        from: ChannelIdentity {
            id: from.into(),
            display_name: Some(format!("Person {from}")),
            username: None,
        },
        timestamp: ts(0),
        content: Content::Text { body: body.into() },
        reply_to: None,
    })
}

pub fn status(provider_id: &str, status: DeliveryStatus) -> InboundEvent {
    InboundEvent::Status(StatusUpdate {
        dedup_key: DedupKey(format!("status:{provider_id}:{status:?}")),
        provider_message_id: provider_id.into(),
        status,
        timestamp: ts(1),
        recipient: None,
        error: (status == DeliveryStatus::Failed).then(|| coach_connector_api::ProviderError {
            code: "131047".into(),
            title: "Re-engagement message".into(),
        }),
    })
}

/// Every message of the scope's tenant, across its conversations.
pub async fn count_messages(b: &Backend, scope: &coach_gateway::tenancy::TenantScope) -> usize {
    let mut total = 0;
    for c in b
        .store
        .conversations(
            scope,
            coach_gateway::store::Page {
                before: None,
                limit: 100,
            },
            Default::default(),
        )
        .await
        .unwrap()
    {
        total += b
            .store
            .messages(scope, c.id, None, 1000, false)
            .await
            .unwrap()
            .len();
    }
    total
}

/// The delivery status and error of one message.
pub async fn message_status(
    b: &Backend,
    scope: &coach_gateway::tenancy::TenantScope,
    id: coach_connector_api::MessageId,
) -> (
    Option<DeliveryStatus>,
    Option<coach_connector_api::ProviderError>,
) {
    for c in b
        .store
        .conversations(
            scope,
            coach_gateway::store::Page {
                before: None,
                limit: 100,
            },
            Default::default(),
        )
        .await
        .unwrap()
    {
        if let Some(m) = b
            .store
            .messages(scope, c.id, None, 1000, false)
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.id == id)
        {
            return (m.status, m.error);
        }
    }
    panic!("message {id} not found");
}

/// Generate `#[tokio::test]`s that run each named suite function against every backend.
#[macro_export]
macro_rules! against_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let backend = $crate::common::sqlite().await;
                    super::$name(&backend).await;
                    backend.store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let backend = $crate::common::postgres().await;
                    super::$name(&backend).await;
                    backend.store.close().await;
                }
            )*
        }
    };
}
