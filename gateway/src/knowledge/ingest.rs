//! The ingestion worker: claims `ingest` jobs and turns a document version into searchable
//! chunks (extract -> chunk -> embed in batches -> vector store), reporting progress. When the
//! version is complete it becomes the live one in one update, then older versions' chunks go.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use coach_brain::chunk::{ChunkConfig, chunk};
use coach_brain::extract::{DocumentKind, extract};
use coach_brain::keyword;
use coach_brain::vectors::{ChunkPayload, ChunkPoint};
use uuid::Uuid;

use super::{Brain, tenant};
use crate::jobs::{ClaimOrder, Handler, JobKind, Outcome, Policy, Retry};
use crate::state::AppState;
use crate::store::documents::{DocumentStatus, IngestJob, IngestUpdate};
use crate::store::{QueueItem, StoreError};
use crate::tenancy::{SystemScope, TenantScope};

/// Texts embedded per call (one progress step each).
const BATCH: usize = 16;

/// Why an ingestion stopped.
enum Failure {
    /// The document itself is the problem (unreadable, empty): retrying cannot help.
    Document(String),
    /// A backend failed (store, vectors, model): retry later.
    Backend(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Backend(e.to_string())
    }
}

/// Indexes document versions (`ingest` jobs), one at a time, fairly across tenants.
pub struct Indexer;

#[async_trait::async_trait]
impl Handler for Indexer {
    type Job = IngestJob;
    type Batch = ();
    const KIND: JobKind = JobKind::Ingest;

    fn policy(&self, _state: &AppState) -> Policy {
        Policy {
            batch: 1,
            concurrency: 1,
            lease: Duration::from_secs(900),
            idle: Duration::from_millis(300),
            order: ClaimOrder::Fair,
            retry: Retry {
                max_attempts: Some(5),
                base: Duration::from_secs(2),
                max: Duration::from_secs(120),
            },
        }
    }

    /// Documents wait in the queue until the models are loaded.
    fn ready(&self, state: &AppState) -> bool {
        state.knowledge.get().is_ok()
    }

    async fn run(&self, state: &AppState, (): &(), item: &QueueItem, job: IngestJob) -> Outcome {
        let Ok(brain) = state.knowledge.get().cloned() else {
            return Outcome::Later {
                at: Utc::now() + chrono::Duration::seconds(5),
                why: "waiting for the models to load".into(),
            };
        };
        let last = self.policy(state).last_attempt(item);
        process(state, &brain, item.tenant_id, job, last).await
    }
}

impl crate::jobs::Payload for IngestJob {
    fn decode(item: &QueueItem) -> Result<Self, String> {
        crate::jobs::from_json(item)
    }
}

/// Claims and runs at most one due ingestion; returns how many ran.
pub async fn poll_once(state: &AppState) -> Result<usize, StoreError> {
    crate::jobs::run_once(Indexer, state).await
}

async fn process(
    state: &AppState,
    brain: &Arc<Brain>,
    tenant_id: coach_connector_api::TenantId,
    job: IngestJob,
    last_attempt: bool,
) -> Outcome {
    let scope = SystemScope::new("ingest worker").for_tenant(tenant_id);
    let IngestJob {
        document_id: id,
        version,
    } = job;
    let started = std::time::Instant::now();
    let result = ingest(state, brain, &scope, id, version).await;
    let fail = |error: String| IngestUpdate {
        version,
        status: DocumentStatus::Failed,
        progress: 0.0,
        chunks: 0,
        error: Some(error),
    };
    match result {
        Ok(chunks) => {
            tracing::info!(document = %id, version, chunks, ms = started.elapsed().as_millis() as u64, "document ingested");
            Outcome::Done
        }
        Err(Failure::Document(why)) => {
            tracing::info!(document = %id, version, reason = %why, "document refused");
            let _ = state.store.update_ingest(&scope, id, fail(why)).await;
            announce(state, &scope, id, DocumentStatus::Failed, 0.0, 0).await;
            let _ = brain
                .vectors
                .delete_document(tenant(&scope), id, None)
                .await;
            Outcome::Done
        }
        Err(Failure::Backend(why)) if last_attempt => {
            tracing::error!(document = %id, version, error = %why, "ingestion given up");
            let _ = state
                .store
                .update_ingest(
                    &scope,
                    id,
                    fail(format!("indexing failed repeatedly: {why}")),
                )
                .await;
            announce(state, &scope, id, DocumentStatus::Failed, 0.0, 0).await;
            Outcome::dead("ingest", why)
        }
        Err(Failure::Backend(why)) => {
            tracing::warn!(document = %id, version, error = %why, "ingestion will be retried");
            Outcome::Failed(why)
        }
    }
}

/// The stored form of a document kind.
pub fn kind_name(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Pdf => "pdf",
        DocumentKind::Docx => "docx",
        DocumentKind::Text => "text",
        DocumentKind::Markdown => "markdown",
        DocumentKind::Html => "html",
    }
}

fn kind_from_name(name: &str) -> Option<DocumentKind> {
    Some(match name {
        "pdf" => DocumentKind::Pdf,
        "docx" => DocumentKind::Docx,
        "text" => DocumentKind::Text,
        "markdown" => DocumentKind::Markdown,
        "html" => DocumentKind::Html,
        _ => return None,
    })
}

async fn progress(
    state: &AppState,
    scope: &TenantScope,
    id: Uuid,
    version: i64,
    status: DocumentStatus,
    progress: f64,
    chunks: usize,
) -> Result<bool, Failure> {
    let chunks = i64::try_from(chunks).unwrap_or(i64::MAX);
    let current = state
        .store
        .update_ingest(
            scope,
            id,
            IngestUpdate {
                version,
                status,
                progress,
                chunks,
                error: None,
            },
        )
        .await?;
    if current {
        announce(state, scope, id, status, progress, chunks).await;
    }
    Ok(current)
}

/// Live views (the console's progress bars) see the document move on.
async fn announce(
    state: &AppState,
    scope: &TenantScope,
    id: Uuid,
    status: DocumentStatus,
    progress: f64,
    chunks: i64,
) {
    let payload = crate::bus::StreamPayload::Document {
        document_id: id,
        status: status.as_str().into(),
        progress,
        chunks,
    };
    state.stream.publish(scope, payload).await;
}

/// Ingests one version; returns the chunk count. A version replaced meanwhile stops quietly.
async fn ingest(
    state: &AppState,
    brain: &Arc<Brain>,
    scope: &TenantScope,
    id: Uuid,
    version: i64,
) -> Result<usize, Failure> {
    let document = match state.store.document(scope, id).await {
        Ok(d) => d,
        Err(StoreError::NotFound(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    if document.version != version {
        return Ok(0);
    }
    if !progress(
        state,
        scope,
        id,
        version,
        DocumentStatus::Processing,
        0.02,
        0,
    )
    .await?
    {
        return Ok(0);
    }
    let content = state.store.document_content(scope, id).await?;
    let kind = kind_from_name(&document.kind)
        .ok_or_else(|| Failure::Document(format!("unknown document kind {}", document.kind)))?;
    let embedder = brain.embedder.clone();
    // The tenant's own chunking, else the operator's.
    let (_, profile) = state.store.tenant_profile(scope).await?;
    let (tokens, overlap) = profile.chunking.map_or(
        (brain.config.chunk_tokens, brain.config.chunk_overlap),
        |c| (c.chunk_tokens, c.chunk_overlap),
    );
    let config = ChunkConfig {
        max_tokens: tokens as usize,
        overlap_tokens: overlap as usize,
    };
    let chunks = tokio::task::spawn_blocking(move || {
        let extracted = extract(&content, kind).map_err(|e| Failure::Document(e.to_string()))?;
        let count = |text: &str| {
            embedder
                .count_tokens(text)
                .unwrap_or_else(|_| text.len().div_ceil(3))
        };
        Ok::<_, Failure>((extracted.title, chunk(&extracted.sections, &config, &count)))
    })
    .await
    .map_err(|e| Failure::Backend(format!("extraction task: {e}")))??;
    let (_, chunks) = chunks;
    if chunks.is_empty() {
        return Err(Failure::Document(
            "the document has no extractable text; scanned PDFs need OCR first".into(),
        ));
    }
    let tenant = tenant(scope);
    let total = chunks.len();
    let mut done = 0;
    for batch in chunks.chunks(BATCH) {
        let texts: Vec<String> = batch
            .iter()
            .map(|c| c.indexed_text(&document.title))
            .collect();
        let sparse: Vec<_> = texts.iter().map(|t| keyword::document_vector(t)).collect();
        let vectors = brain
            .embedder
            .embed(texts)
            .await
            .map_err(|e| Failure::Backend(e.to_string()))?;
        let points = batch
            .iter()
            .zip(sparse.into_iter().zip(vectors))
            .map(|(c, (sparse, dense))| ChunkPoint {
                id: Uuid::new_v4(),
                dense,
                sparse,
                payload: ChunkPayload {
                    document_id: id,
                    version,
                    ordinal: c.ordinal,
                    title: document.title.clone(),
                    heading: c.heading.clone(),
                    page: c.page,
                    text: c.text.clone(),
                },
            })
            .collect();
        brain
            .vectors
            .upsert(tenant, points)
            .await
            .map_err(|e| Failure::Backend(e.to_string()))?;
        done += batch.len();
        let fraction = 0.05 + 0.9 * done as f64 / total as f64;
        if !progress(
            state,
            scope,
            id,
            version,
            DocumentStatus::Processing,
            fraction,
            done,
        )
        .await?
        {
            // Replaced or deleted meanwhile: what this version wrote is not wanted.
            discard(state, brain, scope, id).await;
            return Ok(0);
        }
    }
    if !progress(state, scope, id, version, DocumentStatus::Ready, 1.0, total).await? {
        discard(state, brain, scope, id).await;
        return Ok(0);
    }
    // The new version is live: older versions' chunks are no longer searched; remove them.
    brain
        .vectors
        .delete_document(tenant, id, Some(version))
        .await
        .map_err(|e| Failure::Backend(e.to_string()))?;
    Ok(total)
}

/// After a version was replaced or the document deleted: keep only what is live, if anything.
async fn discard(state: &AppState, brain: &Arc<Brain>, scope: &TenantScope, id: Uuid) {
    let keep = match state.store.document(scope, id).await {
        Ok(d) => d.live_version,
        Err(_) => None,
    };
    if let Err(e) = brain.vectors.delete_document(tenant(scope), id, keep).await {
        tracing::warn!(document = %id, error = %e, "cannot remove replaced chunks");
    }
}
