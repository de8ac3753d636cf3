#![allow(clippy::unwrap_used, missing_docs)]
//! One compliance suite for every vector store backend: the embedded engine always (in a
//! temporary directory), a Qdrant server when `TEST_QDRANT_URL` is set (its gRPC address, e.g.
//! `http://localhost:6334`; `TEST_QDRANT_API_KEY` if the server needs one). Each test uses a
//! fresh directory or collection and removes the collection afterwards.

use std::collections::HashSet;

use coach_brain::Tenant;
use coach_brain::keyword::{document_vector, query_vector};
use coach_brain::vectors::{
    ChunkPayload, ChunkPoint, EdgeStore, Hit, ServerStore, VectorError, VectorStore,
};
use uuid::Uuid;

const DIM: usize = 8;
const MODEL: &str = "test-embedder";

enum Backend {
    Edge(tempfile::TempDir),
    Server {
        url: String,
        api_key: Option<String>,
        collection: String,
    },
}

impl Backend {
    fn all() -> Vec<Backend> {
        let mut backends = vec![Backend::Edge(tempfile::tempdir().unwrap())];
        match std::env::var("TEST_QDRANT_URL") {
            Ok(url) if !url.is_empty() => backends.push(Backend::Server {
                url,
                api_key: std::env::var("TEST_QDRANT_API_KEY").ok(),
                collection: format!("compliance_{}", Uuid::new_v4().simple()),
            }),
            _ => eprintln!(
                "skipping the ServerStore backend: set TEST_QDRANT_URL (e.g. http://localhost:6334) \
                 to run the vector compliance suite against a Qdrant server"
            ),
        }
        backends
    }

    fn name(&self) -> &'static str {
        match self {
            Backend::Edge(_) => "edge",
            Backend::Server { .. } => "server",
        }
    }

    /// Opens the store, or reopens the same directory or collection.
    fn open(&self) -> Box<dyn VectorStore> {
        match self {
            Backend::Edge(dir) => Box::new(EdgeStore::open(dir.path()).unwrap()),
            Backend::Server {
                url,
                api_key,
                collection,
            } => Box::new(ServerStore::connect(url, collection, api_key.clone()).unwrap()),
        }
    }

    async fn open_ensured(&self) -> Box<dyn VectorStore> {
        let store = self.open();
        store.ensure(MODEL, DIM).await.unwrap();
        store
    }

    async fn cleanup(self) {
        if let Backend::Server {
            url,
            api_key,
            collection,
        } = &self
        {
            let store = ServerStore::connect(url, collection, api_key.clone()).unwrap();
            store.delete_collection().await.unwrap();
        }
    }
}

fn new_tenant() -> Tenant {
    Tenant::scoped(Uuid::new_v4())
}

fn basis(axis: usize) -> Vec<f32> {
    let mut vector = vec![0.0; DIM];
    vector[axis] = 1.0;
    vector
}

fn chunk(document: Uuid, version: i64, ordinal: u32, text: &str, dense: Vec<f32>) -> ChunkPoint {
    ChunkPoint {
        id: Uuid::new_v4(),
        dense,
        sparse: document_vector(text),
        payload: ChunkPayload {
            document_id: document,
            version,
            ordinal,
            title: "Coaching notes".to_string(),
            heading: Some("Habits".to_string()),
            page: None,
            text: text.to_string(),
        },
    }
}

fn documents(hits: &[Hit]) -> HashSet<Uuid> {
    hits.iter().map(|hit| hit.payload.document_id).collect()
}

fn ids(points: &[ChunkPoint]) -> HashSet<Uuid> {
    points.iter().map(|point| point.id).collect()
}

async fn dense_search_returns_the_nearest(backend: &Backend) {
    let name = backend.name();
    let store = backend.open_ensured().await;
    let tenant = new_tenant();
    let points: Vec<ChunkPoint> = (0..4)
        .map(|axis| {
            chunk(
                Uuid::new_v4(),
                1,
                0,
                &format!("note on axis {axis}"),
                basis(axis),
            )
        })
        .collect();
    let expected = points.clone();
    store.upsert(tenant, points).await.unwrap();

    let mut query = basis(2);
    query[3] = 0.2;
    query[0] = 0.1;
    let hits = store.search_dense(tenant, query, 3).await.unwrap();

    assert_eq!(hits.len(), 3, "{name}: limit");
    assert_eq!(hits[0].id, expected[2].id, "{name}: nearest first");
    assert_eq!(
        hits[0].payload, expected[2].payload,
        "{name}: payload round trip"
    );
    assert!(
        hits[0].score > 0.95 && hits[0].score < 1.001,
        "{name}: cosine score {}",
        hits[0].score
    );
    assert_eq!(hits[1].id, expected[3].id, "{name}: second nearest");
    assert_eq!(hits[2].id, expected[0].id, "{name}: third nearest");
    assert!(
        hits.windows(2).all(|w| w[0].score >= w[1].score),
        "{name}: sorted"
    );
}

async fn keyword_search_ranks_the_rare_term_first(backend: &Backend) {
    let name = backend.name();
    let store = backend.open_ensured().await;
    let tenant = new_tenant();
    // Without the IDF factor the first text wins ("habit" six times); with it the rare
    // "kettlebell" outweighs a term that three of four chunks share.
    let texts = [
        "habit habit habit habit habit habit",
        "kettlebell swings daily",
        "habit loops and cues",
        "habit formation takes time",
    ];
    let points: Vec<ChunkPoint> = texts
        .iter()
        .enumerate()
        .map(|(axis, text)| chunk(Uuid::new_v4(), 1, 0, text, basis(axis)))
        .collect();
    store.upsert(tenant, points).await.unwrap();

    let hits = store
        .search_keyword(tenant, query_vector("habit kettlebell"), 10)
        .await
        .unwrap();
    assert_eq!(hits.len(), 4, "{name}: every chunk shares a term");
    assert_eq!(hits[0].payload.text, texts[1], "{name}: rare term first");
    assert!(
        hits.windows(2).all(|w| w[0].score >= w[1].score),
        "{name}: sorted"
    );

    let none = store
        .search_keyword(tenant, query_vector("meditation"), 10)
        .await
        .unwrap();
    assert!(none.is_empty(), "{name}: no shared term, no hit");
    let empty = store
        .search_keyword(tenant, query_vector("the of"), 10)
        .await
        .unwrap();
    assert!(empty.is_empty(), "{name}: empty query");
}

async fn tenants_never_see_each_other(backend: &Backend) {
    let name = backend.name();
    let store = backend.open_ensured().await;
    let (a, b) = (new_tenant(), new_tenant());
    let texts = [
        "sleep hygiene before competitions",
        "morning mobility routine",
        "journaling after training",
    ];
    let make = || -> Vec<ChunkPoint> {
        texts
            .iter()
            .enumerate()
            .map(|(axis, text)| chunk(Uuid::new_v4(), 1, 0, text, basis(axis)))
            .collect()
    };
    let (points_a, points_b) = (make(), make());
    let own_a: HashSet<Uuid> = points_a.iter().map(|p| p.payload.document_id).collect();
    let own_b: HashSet<Uuid> = points_b.iter().map(|p| p.payload.document_id).collect();
    store.upsert(a, points_a).await.unwrap();
    store.upsert(b, points_b).await.unwrap();

    for (tenant, own) in [(a, &own_a), (b, &own_b)] {
        let dense = store.search_dense(tenant, basis(0), 10).await.unwrap();
        assert_eq!(
            documents(&dense),
            *own,
            "{name}: dense hits are the tenant's own"
        );
        assert_eq!(dense.len(), 3, "{name}: dense hit count");

        let keyword = store
            .search_keyword(tenant, query_vector("sleep mobility journaling"), 10)
            .await
            .unwrap();
        assert_eq!(
            documents(&keyword),
            *own,
            "{name}: keyword hits are the tenant's own"
        );
        assert_eq!(keyword.len(), 3, "{name}: keyword hit count");

        assert_eq!(store.count(tenant).await.unwrap(), 3, "{name}: count");
    }

    let stranger = new_tenant();
    assert_eq!(
        store.count(stranger).await.unwrap(),
        0,
        "{name}: stranger count"
    );
    let dense = store.search_dense(stranger, basis(0), 10).await.unwrap();
    assert!(dense.is_empty(), "{name}: stranger dense search");
    let keyword = store
        .search_keyword(stranger, query_vector("sleep"), 10)
        .await
        .unwrap();
    assert!(keyword.is_empty(), "{name}: stranger keyword search");
}

async fn delete_document_removes_its_chunks(backend: &Backend) {
    let name = backend.name();
    let store = backend.open_ensured().await;
    let (a, b) = (new_tenant(), new_tenant());
    let document = Uuid::new_v4();
    let other = Uuid::new_v4();
    let old = vec![
        chunk(document, 1, 0, "old advice on pacing", basis(0)),
        chunk(document, 1, 1, "old advice on fueling", basis(1)),
    ];
    let new = vec![
        chunk(document, 2, 0, "new advice on pacing", basis(0)),
        chunk(document, 2, 1, "new advice on fueling", basis(1)),
    ];
    let new_ids = ids(&new);
    store.upsert(a, old).await.unwrap();
    store.upsert(a, new).await.unwrap();
    let unrelated = vec![chunk(other, 1, 0, "unrelated recovery note", basis(2))];
    store.upsert(a, unrelated).await.unwrap();
    // The same document id under another tenant must survive tenant a's deletes.
    let foreign = vec![chunk(document, 1, 0, "old advice on pacing", basis(0))];
    store.upsert(b, foreign).await.unwrap();
    assert_eq!(store.count(a).await.unwrap(), 5, "{name}: before");

    store.delete_document(a, document, Some(2)).await.unwrap();
    assert_eq!(
        store.count(a).await.unwrap(),
        3,
        "{name}: old version removed"
    );
    let hits = store.search_dense(a, basis(0), 10).await.unwrap();
    let kept: HashSet<Uuid> = hits
        .iter()
        .filter(|hit| hit.payload.document_id == document)
        .map(|hit| hit.id)
        .collect();
    assert_eq!(kept, new_ids, "{name}: exactly the kept version remains");
    assert!(
        hits.iter()
            .filter(|hit| hit.payload.document_id == document)
            .all(|hit| hit.payload.version == 2),
        "{name}: kept version"
    );

    store.delete_document(a, document, None).await.unwrap();
    assert_eq!(
        store.count(a).await.unwrap(),
        1,
        "{name}: every version removed"
    );
    let hits = store.search_dense(a, basis(0), 10).await.unwrap();
    assert_eq!(
        documents(&hits),
        HashSet::from([other]),
        "{name}: other document stays"
    );
    assert_eq!(
        store.count(b).await.unwrap(),
        1,
        "{name}: other tenant untouched"
    );
}

async fn delete_tenant_removes_only_that_tenant(backend: &Backend) {
    let name = backend.name();
    let store = backend.open_ensured().await;
    let (a, b) = (new_tenant(), new_tenant());
    for tenant in [a, b] {
        let points = vec![
            chunk(Uuid::new_v4(), 1, 0, "interval training plan", basis(0)),
            chunk(Uuid::new_v4(), 1, 0, "tempo run guidance", basis(1)),
        ];
        store.upsert(tenant, points).await.unwrap();
    }

    store.delete_tenant(a).await.unwrap();

    assert_eq!(store.count(a).await.unwrap(), 0, "{name}: erased");
    assert!(
        store
            .search_dense(a, basis(0), 10)
            .await
            .unwrap()
            .is_empty(),
        "{name}: dense"
    );
    let keyword = store
        .search_keyword(a, query_vector("interval tempo"), 10)
        .await
        .unwrap();
    assert!(keyword.is_empty(), "{name}: keyword");
    assert_eq!(
        store.count(b).await.unwrap(),
        2,
        "{name}: other tenant kept"
    );
    assert_eq!(
        store.search_dense(b, basis(0), 10).await.unwrap().len(),
        2,
        "{name}: b"
    );
}

async fn reopen_keeps_points_and_refuses_another_model(backend: &Backend) {
    let name = backend.name();
    let tenant = new_tenant();
    let points = vec![
        chunk(Uuid::new_v4(), 1, 0, "warm up before lifting", basis(0)),
        chunk(Uuid::new_v4(), 1, 0, "cool down after running", basis(1)),
    ];
    {
        let store = backend.open_ensured().await;
        store.upsert(tenant, points).await.unwrap();
    }

    let store = backend.open();
    let other_model = store.ensure("another-embedder", DIM).await;
    assert!(
        matches!(other_model, Err(VectorError::ModelMismatch { .. })),
        "{name}: another model: {other_model:?}"
    );
    let other_dimension = store.ensure(MODEL, DIM * 2).await;
    assert!(
        matches!(other_dimension, Err(VectorError::ModelMismatch { .. })),
        "{name}: another dimension: {other_dimension:?}"
    );
    store.ensure(MODEL, DIM).await.unwrap();

    assert_eq!(
        store.count(tenant).await.unwrap(),
        2,
        "{name}: points persisted"
    );
    let hits = store.search_dense(tenant, basis(1), 1).await.unwrap();
    assert_eq!(
        hits[0].payload.text, "cool down after running",
        "{name}: searchable"
    );
    let keyword = store
        .search_keyword(tenant, query_vector("lifting"), 5)
        .await
        .unwrap();
    assert_eq!(keyword.len(), 1, "{name}: keyword index persisted");
}

/// A reset (the embedding model changed) empties the collection for every tenant and records
/// the new model: the old one is refused from then on, also after reopening.
async fn reset_empties_and_records_the_new_model(backend: &Backend) {
    let name = backend.name();
    let tenant = new_tenant();
    let store = backend.open_ensured().await;
    store
        .upsert(
            tenant,
            vec![chunk(Uuid::new_v4(), 1, 0, "old vectors", basis(0))],
        )
        .await
        .unwrap();
    store.reset("another-embedder", DIM * 2).await.unwrap();
    assert_eq!(store.count(tenant).await.unwrap(), 0, "{name}: emptied");
    let mut vector = basis(0);
    vector.extend(basis(1));
    store
        .upsert(
            tenant,
            vec![chunk(Uuid::new_v4(), 1, 0, "new vectors", vector.clone())],
        )
        .await
        .unwrap();
    let hits = store.search_dense(tenant, vector, 1).await.unwrap();
    assert_eq!(hits[0].payload.text, "new vectors", "{name}: searchable");
    drop(store);
    let reopened = backend.open();
    let old = reopened.ensure(MODEL, DIM).await;
    assert!(
        matches!(old, Err(VectorError::ModelMismatch { .. })),
        "{name}: the old model after a reset: {old:?}"
    );
    reopened.ensure("another-embedder", DIM * 2).await.unwrap();
    assert_eq!(reopened.count(tenant).await.unwrap(), 1, "{name}: kept");
}

#[tokio::test]
async fn reset_for_a_new_model() {
    for backend in Backend::all() {
        reset_empties_and_records_the_new_model(&backend).await;
        backend.cleanup().await;
    }
}

#[tokio::test]
async fn dense_search() {
    for backend in Backend::all() {
        dense_search_returns_the_nearest(&backend).await;
        backend.cleanup().await;
    }
}

#[tokio::test]
async fn keyword_search() {
    for backend in Backend::all() {
        keyword_search_ranks_the_rare_term_first(&backend).await;
        backend.cleanup().await;
    }
}

#[tokio::test]
async fn tenant_isolation() {
    for backend in Backend::all() {
        tenants_never_see_each_other(&backend).await;
        backend.cleanup().await;
    }
}

#[tokio::test]
async fn delete_document() {
    for backend in Backend::all() {
        delete_document_removes_its_chunks(&backend).await;
        backend.cleanup().await;
    }
}

#[tokio::test]
async fn delete_tenant() {
    for backend in Backend::all() {
        delete_tenant_removes_only_that_tenant(&backend).await;
        backend.cleanup().await;
    }
}

#[tokio::test]
async fn reopen_and_model_mismatch() {
    for backend in Backend::all() {
        reopen_keeps_points_and_refuses_another_model(&backend).await;
        backend.cleanup().await;
    }
}

#[tokio::test]
async fn edge_optimize_keeps_search_results() {
    let dir = tempfile::tempdir().unwrap();
    let store = EdgeStore::open(dir.path()).unwrap();
    store.ensure(MODEL, DIM).await.unwrap();
    let tenant = new_tenant();
    let points: Vec<ChunkPoint> = (0..64u32)
        .map(|i| {
            let axis = usize::try_from(i).unwrap() % DIM;
            chunk(
                Uuid::new_v4(),
                1,
                i,
                &format!("note {i} about pacing"),
                basis(axis),
            )
        })
        .collect();
    store.upsert(tenant, points).await.unwrap();

    let optimizer = store.clone();
    tokio::task::spawn_blocking(move || optimizer.optimize())
        .await
        .unwrap()
        .unwrap();

    assert_eq!(store.count(tenant).await.unwrap(), 64);
    let hits = store.search_dense(tenant, basis(3), 5).await.unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.iter().all(|hit| hit.score > 0.99), "{hits:?}");
    let keyword = store
        .search_keyword(tenant, query_vector("pacing"), 100)
        .await
        .unwrap();
    assert_eq!(keyword.len(), 64);
}
