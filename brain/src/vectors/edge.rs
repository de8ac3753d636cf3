//! The embedded Qdrant engine (`qdrant-edge`): one on-disk shard in a local directory, shared by
//! all tenants and filtered by the `tenant` payload field on every call.
//!
//! The directory holds `collection.json` (the embedding model id and dimension, written by
//! [`VectorStore::ensure`]) and `shard/` (the engine's WAL, segments and configuration). The
//! engine is synchronous, so every call runs in `spawn_blocking`. Searches scan unindexed
//! segments until [`EdgeStore::optimize`] builds their HNSW index; the store runs it in the
//! background once enough points were written and writes paused for a moment.
//!
//! Locking, because `EdgeShard::flush` in qdrant-edge 0.7.2 panics instead of waiting when the
//! WAL is locked by an update or the segment holder by the optimizer: updates and flushes take
//! `write_gate`; the optimizer takes `maintenance` and flushes only after it finished; a flush
//! after a write is skipped while the optimizer runs. Searches and updates run concurrently
//! with the optimizer, as the engine allows. The engine does not replay its WAL on load, so the
//! store flushes after every write to keep data across a crash.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, TryLockError, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use qdrant_edge::{
    Condition, CountRequest, CreateIndex, Distance, EdgeConfig, EdgeShard, EdgeSparseVectorParams,
    EdgeVectorParams, FieldCondition, FieldIndexOperations, Filter, JsonPath, KeywordIndexParams,
    Match, Modifier, NamedQuery, Payload, PayloadFieldSchema, PayloadSchemaParams,
    PayloadSchemaType, PointId, PointInsertOperations, PointOperations, PointStructPersisted,
    QueryEnum, QueryRequest, ScoredPoint, ScoringQuery, UpdateOperation, ValueVariants,
    VectorInternal, VectorStructInternal, VectorStructPersisted, WithPayloadInterface, WithVector,
};
use uuid::Uuid;

use super::{
    ChunkPoint, DENSE_VECTOR, DOCUMENT_FIELD, Hit, KEYWORD_VECTOR, TENANT_FIELD, VERSION_FIELD,
    VectorError, VectorStore, describe_model, payload_from_json, payload_to_json,
};
use crate::Tenant;
use crate::keyword::SparseVector;

mod convert;
use convert::*;

/// The file next to the shard that records the embedding model.
const META_FILE: &str = "collection.json";
/// The shard's own directory inside the store directory.
const SHARD_DIR: &str = "shard";
/// The file `EdgeShard::new` writes first; its presence means a shard exists.
const EDGE_CONFIG_FILE: &str = "edge_config.json";
/// Points written since the last optimization that schedule a background one.
const OPTIMIZE_AFTER_POINTS: usize = 2_000;
/// How long writes must pause before the background optimization starts.
const QUIET_PERIOD: Duration = Duration::from_secs(10);
/// Quiet-period waits after which the optimization starts even if writes continue.
const MAX_QUIET_WAITS: u32 = 6;

/// The embedding model a collection was built with.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct CollectionMeta {
    model_id: String,
    dimension: usize,
}

impl CollectionMeta {
    fn describe(&self) -> String {
        describe_model(&self.model_id, self.dimension)
    }
}

/// Vector store over an embedded Qdrant shard in a local directory (the default backend).
///
/// Cheap to clone. Searches and upserts before [`VectorStore::ensure`] fail; counts and deletes
/// before it see an empty store.
#[derive(Clone)]
pub struct EdgeStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    state: RwLock<State>,
    /// Held by updates and flushes (a flush during an update panics in the engine).
    write_gate: Mutex<()>,
    /// Held by the optimizer; flushes run only while it is free.
    maintenance: Mutex<()>,
    /// Points written since the last optimization started.
    unindexed: AtomicUsize,
    /// A background optimization is waiting or running.
    optimizer_scheduled: AtomicBool,
}

#[derive(Default)]
struct State {
    meta: Option<CollectionMeta>,
    shard: Option<Arc<EdgeShard>>,
}

fn backend(message: impl Into<String>) -> VectorError {
    VectorError::Backend(message.into())
}

impl EdgeStore {
    /// Opens the store in `dir` (created if missing), loading the shard if one exists there.
    /// Blocking: loading a large shard reads its segments.
    pub fn open(dir: &Path) -> Result<Self, VectorError> {
        fs::create_dir_all(dir).map_err(|e| {
            backend(format!(
                "creating the vector directory {}: {e}",
                dir.display()
            ))
        })?;
        let meta = read_meta(dir)?;
        let shard_dir = dir.join(SHARD_DIR);
        let shard = match meta {
            Some(_) if shard_exists(&shard_dir) => Some(Arc::new(load_shard(&shard_dir)?)),
            _ => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                state: RwLock::new(State { meta, shard }),
                write_gate: Mutex::new(()),
                maintenance: Mutex::new(()),
                unindexed: AtomicUsize::new(0),
                optimizer_scheduled: AtomicBool::new(false),
            }),
        })
    }

    /// Builds the HNSW indexes of segments that grew past the indexing threshold, merges small
    /// segments and vacuums deleted points (about a minute per 100k points), then flushes.
    /// Blocking: call it from `spawn_blocking` or a thread, never from an async task. Searches
    /// and upserts keep running meanwhile.
    pub fn optimize(&self) -> Result<(), VectorError> {
        self.inner.optimize_blocking(false)
    }
}

impl Inner {
    fn shard(&self) -> Option<Arc<EdgeShard>> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .shard
            .clone()
    }

    /// The shard and its dense dimension, once `ensure` succeeded.
    fn ready(&self) -> Result<(Arc<EdgeShard>, usize), VectorError> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        match (&state.shard, &state.meta) {
            (Some(shard), Some(meta)) => Ok((Arc::clone(shard), meta.dimension)),
            _ => Err(backend(format!(
                "the vector store in {} is not initialised: call ensure first",
                self.dir.display()
            ))),
        }
    }

    fn reset_blocking(&self, model_id: &str, dimension: usize) -> Result<(), VectorError> {
        {
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            state.shard = None;
            state.meta = None;
            let shard_dir = self.dir.join(SHARD_DIR);
            if shard_dir.exists() {
                fs::remove_dir_all(&shard_dir)
                    .map_err(|e| backend(format!("removing {}: {e}", shard_dir.display())))?;
            }
            let meta = self.dir.join(META_FILE);
            if meta.exists() {
                fs::remove_file(&meta)
                    .map_err(|e| backend(format!("removing {}: {e}", meta.display())))?;
            }
        }
        self.ensure_blocking(model_id, dimension)
    }

    fn ensure_blocking(&self, model_id: &str, dimension: usize) -> Result<(), VectorError> {
        if dimension == 0 {
            return Err(backend("the embedding dimension must be positive"));
        }
        let wanted = CollectionMeta {
            model_id: model_id.to_string(),
            dimension,
        };
        let shard_dir = self.dir.join(SHARD_DIR);
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        match state.meta.clone() {
            Some(stored) if stored != wanted => {
                return Err(VectorError::ModelMismatch {
                    stored: stored.describe(),
                    configured: wanted.describe(),
                });
            }
            Some(_) => {}
            None => {
                if shard_exists(&shard_dir) {
                    return Err(VectorError::ModelMismatch {
                        stored: format!("an unrecorded model ({META_FILE} is missing)"),
                        configured: wanted.describe(),
                    });
                }
                // Recorded before the shard exists: a shard never exists without its model.
                write_meta(&self.dir, &wanted)?;
                state.meta = Some(wanted);
            }
        }
        if state.shard.is_none() {
            let shard = if shard_exists(&shard_dir) {
                load_shard(&shard_dir)?
            } else {
                create_shard(&shard_dir, dimension)?
            };
            state.shard = Some(Arc::new(shard));
        }
        Ok(())
    }

    /// Applies a write, then flushes unless the optimizer is running (it flushes when done).
    fn apply(
        &self,
        shard: &EdgeShard,
        operation: UpdateOperation,
        what: &str,
    ) -> Result<(), VectorError> {
        {
            let _gate = self
                .write_gate
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            shard.update(operation).map_err(|e| {
                backend(format!("edge vector {what} in {}: {e}", self.dir.display()))
            })?;
        }
        self.try_flush(shard);
        Ok(())
    }

    fn try_flush(&self, shard: &EdgeShard) {
        let _maintenance = match self.maintenance.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        let _gate = self
            .write_gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        shard.flush();
    }

    /// Optimizes now; a `background` run skips when an optimization that started meanwhile
    /// (while it waited for the lock) left nothing to index.
    fn optimize_blocking(&self, background: bool) -> Result<(), VectorError> {
        let Some(shard) = self.shard() else {
            return Ok(());
        };
        let _maintenance = self
            .maintenance
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.unindexed.swap(0, Ordering::AcqRel) == 0 && background {
            return Ok(());
        }
        let started = Instant::now();
        let optimized = shard.optimize().map_err(|e| {
            backend(format!(
                "optimizing the vector shard in {}: {e}",
                self.dir.display()
            ))
        })?;
        let _gate = self
            .write_gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Segments the optimizer created get the payload indexes too (a no-op where they exist).
        create_indexes(&shard)?;
        shard.flush();
        tracing::info!(
            optimized,
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            dir = %self.dir.display(),
            "vector shard optimized"
        );
        Ok(())
    }

    /// Counts written points and schedules a background optimization past the threshold.
    fn note_written(self: &Arc<Self>, points: usize) {
        let pending = self.unindexed.fetch_add(points, Ordering::AcqRel) + points;
        if pending < OPTIMIZE_AFTER_POINTS || self.optimizer_scheduled.swap(true, Ordering::AcqRel)
        {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(optimize_when_quiet(Arc::downgrade(self)));
            }
            Err(_) => self.optimizer_scheduled.store(false, Ordering::Release),
        }
    }
}

/// Waits until writes pause, optimizes, and repeats while enough new points arrived meanwhile.
/// Holds only a weak reference while waiting, so dropping the store ends the task.
async fn optimize_when_quiet(inner: Weak<Inner>) {
    loop {
        let mut waits = 0;
        loop {
            let Some(before) = inner.upgrade().map(|i| i.unindexed.load(Ordering::Acquire)) else {
                return;
            };
            tokio::time::sleep(QUIET_PERIOD).await;
            waits += 1;
            let Some(after) = inner.upgrade().map(|i| i.unindexed.load(Ordering::Acquire)) else {
                return;
            };
            if after == before || waits >= MAX_QUIET_WAITS {
                break;
            }
        }
        let Some(strong) = inner.upgrade() else {
            return;
        };
        match tokio::task::spawn_blocking(move || strong.optimize_blocking(true)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "background vector optimization failed"),
            Err(e) => tracing::warn!(error = %e, "background vector optimization panicked"),
        }
        let Some(strong) = inner.upgrade() else {
            return;
        };
        strong.optimizer_scheduled.store(false, Ordering::Release);
        if strong.unindexed.load(Ordering::Acquire) < OPTIMIZE_AFTER_POINTS
            || strong.optimizer_scheduled.swap(true, Ordering::AcqRel)
        {
            return;
        }
    }
}

async fn run_blocking<T, F>(what: &'static str, work: F) -> Result<T, VectorError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, VectorError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| backend(format!("edge vector {what} task failed: {e}")))?
}

fn shard_exists(shard_dir: &Path) -> bool {
    shard_dir.join(EDGE_CONFIG_FILE).exists()
}

fn read_meta(dir: &Path) -> Result<Option<CollectionMeta>, VectorError> {
    let path = dir.join(META_FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| backend(format!("reading {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(backend(format!("reading {}: {e}", path.display()))),
    }
}

/// Writes the model record atomically (temporary file, fsync, rename).
fn write_meta(dir: &Path, meta: &CollectionMeta) -> Result<(), VectorError> {
    let path = dir.join(META_FILE);
    let temporary = dir.join(format!("{META_FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(meta)?;
        let mut file = fs::File::create(&temporary)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, &path)
    };
    write().map_err(|e| backend(format!("writing {}: {e}", path.display())))
}

fn create_shard(shard_dir: &Path, dimension: usize) -> Result<EdgeShard, VectorError> {
    fs::create_dir_all(shard_dir)
        .map_err(|e| backend(format!("creating {}: {e}", shard_dir.display())))?;
    // Payloads in memory: a search reads its hits' payloads (the chunk text), and on disk those
    // pages are evicted after each optimization and read back one random page at a time,
    // which made the slowest searches at 1M points tens of times slower than the median.
    let config = EdgeConfig::builder()
        .on_disk_payload(false)
        .vector(
            DENSE_VECTOR,
            EdgeVectorParams::builder(dimension, Distance::Cosine).build(),
        )
        .sparse_vector(
            KEYWORD_VECTOR,
            EdgeSparseVectorParams::builder()
                .modifier(Modifier::Idf)
                .build(),
        )
        .build();
    let shard = EdgeShard::new(shard_dir, config).map_err(|e| {
        backend(format!(
            "creating the vector shard in {}: {e}",
            shard_dir.display()
        ))
    })?;
    create_indexes(&shard)?;
    Ok(shard)
}

fn load_shard(shard_dir: &Path) -> Result<EdgeShard, VectorError> {
    let shard = EdgeShard::load(shard_dir, None).map_err(|e| {
        backend(format!(
            "loading the vector shard in {}: {e}",
            shard_dir.display()
        ))
    })?;
    // Idempotent; also covers segments created after the indexes were first made.
    create_indexes(&shard)?;
    Ok(shard)
}

/// The payload indexes: `tenant` (keyword, tenant-optimised) and `document_id` (keyword).
/// Callers hold `write_gate` or own the shard alone.
fn create_indexes(shard: &EdgeShard) -> Result<(), VectorError> {
    let tenant =
        PayloadFieldSchema::FieldParams(PayloadSchemaParams::Keyword(KeywordIndexParams {
            is_tenant: Some(true),
            ..KeywordIndexParams::default()
        }));
    let document = PayloadFieldSchema::FieldType(PayloadSchemaType::Keyword);
    for (field, schema) in [(TENANT_FIELD, tenant), (DOCUMENT_FIELD, document)] {
        let operation =
            UpdateOperation::FieldIndexOperation(FieldIndexOperations::CreateIndex(CreateIndex {
                field_name: json_path(field)?,
                field_schema: Some(schema),
            }));
        shard
            .update(operation)
            .map_err(|e| backend(format!("creating the {field} payload index: {e}")))?;
    }
    Ok(())
}

impl EdgeStore {
    async fn query(
        &self,
        request: QueryRequest,
        what: &'static str,
    ) -> Result<Vec<Hit>, VectorError> {
        let (shard, _) = self.inner.ready()?;
        let dir = self.inner.dir.clone();
        let points = run_blocking(what, move || {
            shard
                .query(request)
                .map_err(|e| backend(format!("edge vector {what} in {}: {e}", dir.display())))
        })
        .await?;
        points.into_iter().map(to_hit).collect()
    }

    async fn delete(&self, filter: Filter, what: &'static str) -> Result<(), VectorError> {
        let Some(shard) = self.inner.shard() else {
            return Ok(());
        };
        let inner = Arc::clone(&self.inner);
        run_blocking(what, move || {
            let operation =
                UpdateOperation::PointOperation(PointOperations::DeletePointsByFilter(filter));
            inner.apply(&shard, operation, what)
        })
        .await
    }
}

#[async_trait]
impl VectorStore for EdgeStore {
    async fn ensure(&self, model_id: &str, dimension: usize) -> Result<(), VectorError> {
        let inner = Arc::clone(&self.inner);
        let model_id = model_id.to_string();
        run_blocking("ensure", move || {
            inner.ensure_blocking(&model_id, dimension)
        })
        .await
    }

    async fn reset(&self, model_id: &str, dimension: usize) -> Result<(), VectorError> {
        let inner = Arc::clone(&self.inner);
        let model_id = model_id.to_string();
        run_blocking("reset", move || inner.reset_blocking(&model_id, dimension)).await
    }

    async fn upsert(&self, tenant: Tenant, points: Vec<ChunkPoint>) -> Result<(), VectorError> {
        if points.is_empty() {
            return Ok(());
        }
        let (shard, dimension) = self.inner.ready()?;
        let written = points.len();
        let points = points
            .into_iter()
            .map(|point| to_point(tenant, point, dimension))
            .collect::<Result<Vec<_>, _>>()?;
        let inner = Arc::clone(&self.inner);
        run_blocking("upsert", move || {
            let operation = UpdateOperation::PointOperation(PointOperations::UpsertPoints(
                PointInsertOperations::PointsList(points),
            ));
            inner.apply(&shard, operation, "upsert")
        })
        .await?;
        self.inner.note_written(written);
        Ok(())
    }

    async fn search_dense(
        &self,
        tenant: Tenant,
        vector: Vec<f32>,
        limit: usize,
    ) -> Result<Vec<Hit>, VectorError> {
        let (_, dimension) = self.inner.ready()?;
        if vector.len() != dimension {
            return Err(backend(format!(
                "the query vector has {} dimensions, the collection holds {dimension}",
                vector.len()
            )));
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let request = nearest(VectorInternal::Dense(vector), DENSE_VECTOR, tenant, limit)?;
        self.query(request, "dense search").await
    }

    async fn search_keyword(
        &self,
        tenant: Tenant,
        vector: SparseVector,
        limit: usize,
    ) -> Result<Vec<Hit>, VectorError> {
        if vector.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let request = nearest(engine_sparse(vector)?, KEYWORD_VECTOR, tenant, limit)?;
        self.query(request, "keyword search").await
    }

    async fn delete_document(
        &self,
        tenant: Tenant,
        document: Uuid,
        keep: Option<i64>,
    ) -> Result<(), VectorError> {
        let must_not = match keep {
            Some(version) => Some(vec![field_is(
                VERSION_FIELD,
                ValueVariants::Integer(version),
            )?]),
            None => None,
        };
        let filter = Filter {
            must: Some(vec![
                tenant_is(tenant)?,
                field_is(DOCUMENT_FIELD, ValueVariants::String(document.to_string()))?,
            ]),
            must_not,
            ..Filter::default()
        };
        self.delete(filter, "document delete").await
    }

    async fn delete_tenant(&self, tenant: Tenant) -> Result<(), VectorError> {
        self.delete(tenant_filter(tenant)?, "tenant delete").await
    }

    async fn count(&self, tenant: Tenant) -> Result<usize, VectorError> {
        let Some(shard) = self.inner.shard() else {
            return Ok(0);
        };
        let filter = tenant_filter(tenant)?;
        run_blocking("count", move || {
            shard
                .count(CountRequest {
                    filter: Some(filter),
                    exact: true,
                })
                .map_err(|e| backend(format!("edge vector count: {e}")))
        })
        .await
    }
}
