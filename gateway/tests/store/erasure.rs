//! Erased text leaves no byte behind in SQLite's files (database and WAL).

use std::path::Path;

use coach_gateway::config::Synchronous;
use coach_gateway::store::documents::NewDocument;
use coach_gateway::store::prelude::*;
use coach_gateway::store::{SqliteStore, SqliteStoreOptions};

use crate::common::{tenant_with_channel, text};

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
/// files (so the search can fail); erasing the contact removes the first from every file at
/// once, erasing the tenant the second, and nothing comes back after the store is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erased_text_leaves_no_byte_in_the_sqlite_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteStoreOptions {
        path: dir.path().join("gateway.db"),
        synchronous: Synchronous::Normal,
        max_batch: 64,
        readers: 2,
    })
    .await
    .unwrap();
    let (scope, channel) = tenant_with_channel(&store, "erase").await;
    let said = "quartz-heron-4471 is my secret";
    let wrote = "umber-falcon-9082 handbook";
    store
        .ingest(&scope, channel, vec![text("k1", "4915100000001", said)])
        .await
        .unwrap();
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
    let store = SqliteStore::open(SqliteStoreOptions {
        path: data.join("gateway.db"),
        synchronous: Synchronous::Normal,
        max_batch: 64,
        readers: 2,
    })
    .await
    .unwrap();
    tenant_with_channel(&store, "modes").await;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&dir.path().join("new")), 0o700);
    assert_eq!(mode(&data.join("gateway.db")), 0o600);
    assert_eq!(mode(&data.join("gateway.db-wal")), 0o600);
    store.close().await;
}
