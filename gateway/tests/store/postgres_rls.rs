//! Row-level security: SQL run for tenant B that forgets its tenant filter still cannot read or
//! change tenant A's rows, and the serving role cannot edit the audit log.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use crate::common::{tenant_with_channel, text};
use coach_gateway::store::{AuditEntry, StoreError};
use coach_gateway::tenancy::SystemScope;
use sqlx::Executor;

const TENANT_TABLES: [&str; 11] = [
    "channels",
    "contacts",
    "contact_identities",
    "conversations",
    "messages",
    "message_status",
    "unknown_events",
    "jobs",
    "outbox",
    "audit_log",
    "memberships",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_without_tenant_filter_cannot_cross_tenants() {
    let backend = crate::common::postgres().await;
    let pg = backend.postgres.clone().unwrap();
    let (a, channel_a) = tenant_with_channel(&*backend.store, "a").await;
    let (b, _) = tenant_with_channel(&*backend.store, "b").await;
    backend
        .store
        .ingest(&a, channel_a, vec![text("m1", "alice", "private")])
        .await
        .unwrap();
    let conv = backend
        .store
        .conversations(
            &a,
            coach_gateway::store::Page {
                before: None,
                limit: 1,
            },
            Default::default(),
        )
        .await
        .unwrap()[0]
        .id;
    backend
        .store
        .enqueue_outbound(
            &a,
            conv,
            coach_connector_api::OutboundBody::Text {
                text: "reply".into(),
            },
            None,
        )
        .await
        .unwrap();
    backend
        .store
        .audit(
            &a,
            AuditEntry {
                actor: "user:a".into(),
                action: "channel.create".into(),
                resource_type: "channel".into(),
                resource_id: None,
                ip: None,
                details: serde_json::json!({}),
            },
        )
        .await
        .unwrap();

    // Sanity: A's own scope sees its rows through the same path, so the zeros below mean
    // something.
    assert_eq!(
        pg.raw_tenant_query(&a, "SELECT * FROM messages")
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        pg.raw_tenant_query(&a, "SELECT * FROM tenants")
            .await
            .unwrap(),
        1
    );

    for table in TENANT_TABLES {
        let own = pg
            .raw_tenant_query(
                &b,
                &format!(
                    "SELECT * FROM {table} WHERE tenant_id = '{}'",
                    a.tenant_id()
                ),
            )
            .await
            .unwrap();
        assert_eq!(own, 0, "B read A's rows of {table} by naming A's id");
        let all = pg
            .raw_tenant_query(&b, &format!("SELECT * FROM {table}"))
            .await
            .unwrap();
        let b_own = pg
            .raw_tenant_query(
                &b,
                &format!(
                    "SELECT * FROM {table} WHERE tenant_id = '{}'",
                    b.tenant_id()
                ),
            )
            .await
            .unwrap();
        assert_eq!(all, b_own, "B saw rows of {table} that are not its own");
    }
    assert_eq!(
        pg.raw_tenant_query(&b, "SELECT * FROM tenants")
            .await
            .unwrap(),
        1,
        "B sees only itself"
    );
    assert_eq!(
        pg.raw_tenant_query(&b, "UPDATE messages SET content = '{}'")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        pg.raw_tenant_query(&b, "DELETE FROM messages")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        pg.raw_tenant_query(&b, "DELETE FROM conversations")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        pg.raw_tenant_query(&b, "UPDATE outbox SET state = 'dead'")
            .await
            .unwrap(),
        0
    );
    let forged = pg
        .raw_tenant_query(
            &b,
            &format!(
                "INSERT INTO channels (id, tenant_id, kind, name, config, created_at, updated_at) \
                 VALUES (gen_random_uuid(), '{}', 'whatsapp', 'x', '{{}}', now(), now())",
                a.tenant_id()
            ),
        )
        .await;
    assert!(
        matches!(forged, Err(StoreError::Database(_))),
        "B wrote a row into A: {forged:?}"
    );

    // The audit log is append-only for the serving role, even for its own tenant.
    let edit = pg
        .raw_tenant_query(&a, "UPDATE audit_log SET action = 'nothing'")
        .await;
    assert!(
        matches!(edit, Err(StoreError::Database(_))),
        "audit log edited: {edit:?}"
    );
    let erase = pg.raw_tenant_query(&a, "DELETE FROM audit_log").await;
    assert!(
        matches!(erase, Err(StoreError::Database(_))),
        "audit log erased: {erase:?}"
    );

    // A's data is untouched.
    assert_eq!(
        pg.raw_tenant_query(
            &a,
            "SELECT * FROM messages WHERE content::text LIKE '%private%'"
        )
        .await
        .unwrap(),
        1
    );
    assert_eq!(
        pg.raw_tenant_query(&a, "SELECT * FROM audit_log")
            .await
            .unwrap(),
        1
    );
    backend.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_role_alone_reads_nothing() {
    let schema = coach_e2e::pg::fresh_schema().await.unwrap();
    coach_gateway::store::migrate_postgres(schema.owner.clone())
        .await
        .unwrap();
    // Without switching to coach_app or coach_worker the login role has no table privileges.
    let mut conn = sqlx::ConnectOptions::connect(&schema.app).await.unwrap();
    let denied = conn.execute("SELECT * FROM messages").await;
    assert!(denied.is_err(), "the login role read a table directly");
    // With the serving role but no tenant set, nothing is visible.
    let store = coach_gateway::store::PostgresStore::connect_lazy(
        coach_gateway::store::PostgresStoreOptions {
            connect: schema.app.clone(),
            max_connections: 2,
        },
    );
    let sys = SystemScope::new("test");
    let t = coach_gateway::store::AccountStore::create_tenant(&store, &sys, "t")
        .await
        .unwrap();
    let visible: i64 = {
        let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
        tx.execute("SELECT set_config('role', 'coach_app', true)")
            .await
            .unwrap();
        let n = sqlx::query_scalar("SELECT count(*) FROM tenants")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        n
    };
    assert_eq!(visible, 0, "tenant {} visible without a tenant set", t.id);
}

/// Every table with a `tenant_id` that the serving role (`coach_app`) may touch forces
/// row-level security and gives that role a policy, read from the catalog after all migrations:
/// a table added without them fails here, not in a tenant probe later. Tables only the worker
/// role reaches (sessions, read before a tenant is known) are listed apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tenant_table_forces_row_level_security() {
    let schema = coach_e2e::pg::fresh_schema().await.unwrap();
    coach_gateway::store::migrate_postgres(schema.owner.clone())
        .await
        .unwrap();
    let mut conn: sqlx::PgConnection = sqlx::ConnectOptions::connect(&schema.owner).await.unwrap();
    let tables: Vec<(String, bool, bool, bool, bool)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity, \
                EXISTS (SELECT 1 FROM pg_policy p JOIN pg_roles r ON r.oid = ANY (p.polroles) \
                        WHERE p.polrelid = c.oid AND r.rolname = 'coach_app'), \
                has_table_privilege('coach_app', c.oid, 'SELECT, INSERT, UPDATE, DELETE') \
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
            AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid \
                        AND a.attname = 'tenant_id' AND NOT a.attisdropped) \
          ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(
        tables.len() >= 20,
        "the catalog query found only {} tenant tables: {tables:?}",
        tables.len()
    );
    for table in TENANT_TABLES {
        assert!(
            tables.iter().any(|(name, ..)| name == table),
            "{table} not found"
        );
    }
    let unguarded: Vec<&String> = tables
        .iter()
        .filter(|(_, enabled, forced, policy, served)| *served && !(*enabled && *forced && *policy))
        .map(|(name, ..)| name)
        .collect();
    assert_eq!(
        unguarded,
        Vec::<&String>::new(),
        "tables with a tenant_id the serving role may touch, without forced row-level security \
         and a coach_app policy"
    );
    let worker_only: Vec<&String> = tables
        .iter()
        .filter(|t| !t.4)
        .map(|(name, ..)| name)
        .collect();
    assert_eq!(
        worker_only,
        vec!["refresh_tokens"],
        "tables the serving role cannot touch"
    );
}
