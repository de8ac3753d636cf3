//! Erased text leaves no byte behind in SQLite's files (database and WAL).

use std::path::Path;

use coach_gateway::config::Synchronous;
use coach_gateway::store::documents::NewDocument;
use coach_gateway::store::prelude::*;
use coach_gateway::store::{SqliteStore, SqliteStoreOptions};

use crate::common::{tenant_with_channel, text};

/// The SQLite store at `path` (created with its directories).
async fn open(path: std::path::PathBuf) -> SqliteStore {
    SqliteStore::open(SqliteStoreOptions {
        path,
        synchronous: Synchronous::Normal,
        max_batch: 64,
        readers: 2,
    })
    .await
    .unwrap()
}

/// Whether any file under `dir` contains `phrase`.
fn found(dir: &Path, phrase: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            hits.extend(found(&path, phrase));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(phrase.len()).any(|w| w == phrase.as_bytes())
        {
            hits.push(path.display().to_string());
        }
    }
    hits
}

/// A unique phrase in a contact's message and another in a document are first found in the
/// files (so the search can fail); erasing the contact removes the first, and each of its words
/// from the full-text index, from every file at once, erasing the tenant the second, and nothing comes back after the store is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erased_text_leaves_no_byte_in_the_sqlite_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path().join("gateway.db")).await;
    let (scope, channel) = tenant_with_channel(&store, "erase").await;
    let said = "quartz-heron-4471 is my secret";
    let wrote = "umber-falcon-9082 handbook";
    let report = store
        .ingest(&scope, channel, vec![text("k1", "4915100000001", said)])
        .await
        .unwrap();
    // The message went out on the stream too: the event log holds its text.
    let coach_gateway::store::StoredEvent::Message(message) = &report.stored[0] else {
        panic!("stored {:?}", report.stored)
    };
    let logged = coach_gateway::store::events::NewLogEvent {
        tenant_id: scope.tenant_id(),
        conversation_id: Some(message.conversation_id),
        event: serde_json::json!({ "event": "message", "message": message }).to_string(),
        at: chrono::Utc::now(),
    };
    let sys = coach_gateway::tenancy::SystemScope::new("test");
    let seqs = store.append_events(&sys, vec![logged]).await.unwrap();
    assert!(seqs[0].is_some(), "{seqs:?}");
    store
        .create_document(
            &scope,
            NewDocument {
                title: "Handbook".into(),
                filename: Some("handbook.md".into()),
                source_url: None,
                kind: "markdown".into(),
                content: format!(
                    "# Handbook

{wrote}
"
                )
                .into_bytes(),
                sha256: "0".repeat(64),
            },
        )
        .await
        .unwrap();
    assert!(
        !found(dir.path(), "quartz-heron-4471").is_empty(),
        "the search can fail"
    );
    assert!(
        !found(dir.path(), "umber-falcon-9082").is_empty(),
        "the search can fail"
    );

    let contact = store.contacts(&scope, None, 10).await.unwrap()[0].id;
    store.erase_contact(&scope, contact).await.unwrap();
    assert_eq!(found(dir.path(), "quartz-heron-4471"), Vec::<String>::new());
    // The search index holds words, not the phrase: none of its words is left either.
    assert_eq!(found(dir.path(), "heron"), Vec::<String>::new());
    assert!(!found(dir.path(), "umber-falcon-9082").is_empty());

    store.erase_tenant(&scope).await.unwrap();
    assert_eq!(found(dir.path(), "umber-falcon-9082"), Vec::<String>::new());
    store.close().await;
    assert_eq!(found(dir.path(), "quartz-heron-4471"), Vec::<String>::new());
    assert_eq!(found(dir.path(), "umber-falcon-9082"), Vec::<String>::new());
}

/// The database, its WAL and the directory it is created in are private to the gateway's user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("new/data");
    let store = open(data.join("gateway.db")).await;
    tenant_with_channel(&store, "modes").await;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&dir.path().join("new")), 0o700);
    assert_eq!(mode(&data.join("gateway.db")), 0o600);
    assert_eq!(mode(&data.join("gateway.db-wal")), 0o600);
    store.close().await;
}

/// Every table, and what a tenant's erasure, a contact's export and erasure, and retention do
/// with its rows. A table added by a migration fails
/// [`every_table_is_covered_by_erasure_export_and_retention`] until it is placed here, which
/// is where those three are decided for it.
const TABLES: &[(&str, &str)] = &[
    (
        "tenants",
        "the tenant: erasure deletes it, every tenant table cascades",
    ),
    (
        "users",
        "global accounts: kept (a user may belong to other tenants); memberships go",
    ),
    ("memberships", "tenant: cascade"),
    (
        "message_search",
        "contact: the words of messages (FTS5), deleted by trigger with each message; derived",
    ),
    ("message_search_config", "FTS5's settings"),
    (
        "message_search_content",
        "FTS5: the indexed text, deleted with its message",
    ),
    (
        "message_search_data",
        "FTS5: the index (secure-delete), cleared with its message",
    ),
    (
        "message_search_docsize",
        "FTS5: per-row sizes, deleted with its message",
    ),
    ("message_search_idx", "FTS5: segment directory, no text"),
    (
        "message_search_ids",
        "message ids numbered for the index, deleted by trigger with each message",
    ),
    (
        "conversation_labels",
        "contact: exported (`conversations[].labels`), cascade with the conversation",
    ),
    (
        "conversation_notes",
        "contact: exported (`conversations[].notes`), cascade; retention",
    ),
    (
        "contact_memory",
        "contact: exported (`memory`), cascade with the contact; retention",
    ),
    (
        "answer_feedback",
        "contact: exported (`feedback`), cascade with the contact and the answer; retention",
    ),
    (
        "conversation_ratings",
        "contact: exported (`ratings`), cascade with the contact, the conversation and the survey; retention",
    ),
    (
        "progress_entries",
        "contact: exported (`progress.entries`), cascade with the contact; retention",
    ),
    (
        "progress_milestones",
        "contact: exported (`progress.milestones`), cascade with the contact; retention",
    ),
    (
        "webhook_deliveries",
        "tenant: cascade; event ids, types, statuses and timings, no message text or contact; retention",
    ),
    (
        "files",
        "tenant: cascade (and its media folder); the creator's material, no contact data",
    ),
    (
        "file_uploads",
        "tenant: cascade with the file and the channel; provider ids, no contact data",
    ),
    (
        "canned_replies",
        "tenant: cascade; the creator's texts, no contact data",
    ),
    (
        "refresh_tokens",
        "tenant: cascade; the sessions are revoked too",
    ),
    ("password_resets", "global: follows its user"),
    (
        "email_verifications",
        "global: follows its user; deleted once the address is confirmed",
    ),
    ("signing_keys", "global: no personal data (sealed keys)"),
    (
        "leases",
        "global: lease names and process ids, no personal data",
    ),
    (
        "revoked_sessions",
        "global: session ids until their tokens expire, no personal data",
    ),
    ("api_keys", "tenant: cascade"),
    ("invites", "tenant: cascade"),
    (
        "audit_log",
        "tenant: cascade; holds ids only, never personal data",
    ),
    ("channels", "tenant: cascade"),
    ("contacts", "contact: exported (`contact`), erased"),
    (
        "contact_identities",
        "contact: exported (`contact.identities`), cascade",
    ),
    (
        "conversations",
        "contact: exported (`conversations`), cascade",
    ),
    (
        "messages",
        "contact: exported (`conversations[].messages`, media inline), cascade; retention",
    ),
    (
        "message_status",
        "contact: erased with their messages; retention",
    ),
    (
        "unknown_events",
        "contact: exported (`unknown_events`), erased by sender; retention",
    ),
    (
        "jobs",
        "tenant: deleted first (no foreign key to messages); contact's go with their messages; \
         webhook events of a reaction or a resolve name ids only and send nothing once those are gone",
    ),
    ("outbox", "contact: cascade from messages; retention"),
    (
        "handoffs",
        "contact: exported (`handoffs`), cascade from messages",
    ),
    (
        "conversation_reads",
        "tenant: cascade from conversations; member read marks, no contact data",
    ),
    ("usage_daily", "tenant: cascade; counts only"),
    (
        "documents",
        "tenant: cascade; their chunks leave the vector store (vector_erasures)",
    ),
    ("document_blobs", "tenant: cascade"),
    (
        "vector_erasures",
        "kept after a tenant's erasure until the vector store forgot its chunks; ids only",
    ),
    ("programs", "tenant: cascade"),
    ("program_versions", "tenant: cascade"),
    ("enrollments", "contact: exported (`programs`), cascade"),
    (
        "program_sends",
        "contact: exported (`programs[].sends`), cascade from enrollments",
    ),
    ("opt_outs", "contact: exported (`opt_out`), cascade"),
    (
        "event_log",
        "contact: exported (`live_events`), cascade from conversations; \
         every row pruned after http.event_resume_minutes (at most a day)",
    ),
];

/// Tables whose `tenant_id` outlives the tenant on purpose.
const KEPT_AFTER_ERASURE: &[&str] = &["vector_erasures"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_is_covered_by_erasure_export_and_retention() {
    use sqlx::Row as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.db");
    let store = open(path.clone()).await;
    store.close().await;
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}",
        path.display()
    ))
    .await
    .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    let mut listed: Vec<String> = TABLES.iter().map(|(t, _)| (*t).to_owned()).collect();
    listed.sort();
    assert_eq!(
        tables, listed,
        "a table is missing from TABLES (decide its erasure, export and retention) or is gone"
    );
    for table in &tables {
        let columns: Vec<String> = sqlx::query(&format!("PRAGMA table_info({table})"))
            .fetch_all(&mut db)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("name"))
            .collect();
        let keys: Vec<(String, String, String)> =
            sqlx::query(&format!("PRAGMA foreign_key_list({table})"))
                .fetch_all(&mut db)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get("table"), r.get("from"), r.get("on_delete")))
                .collect();
        let cascades = |to: &str, column: &str| {
            keys.iter()
                .any(|(t, from, on_delete)| t == to && from == column && on_delete == "CASCADE")
        };
        if columns.iter().any(|c| c == "tenant_id") && !KEPT_AFTER_ERASURE.contains(&table.as_str())
        {
            assert!(
                cascades("tenants", "tenant_id"),
                "{table}: its tenant_id must cascade from tenants, or the tenant's erasure leaves rows"
            );
        }
        if columns.iter().any(|c| c == "contact_id") {
            assert!(
                cascades("contacts", "contact_id"),
                "{table}: its contact_id must cascade from contacts, or a contact's erasure leaves rows"
            );
        }
    }
}
