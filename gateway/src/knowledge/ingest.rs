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
use coach_connector_api::ProviderError;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Brain, tenant};
use crate::state::AppState;
use crate::store::documents::{DocumentStatus, IngestUpdate, JOB_INGEST};
use crate::store::{Queue, QueueItem, QueueOutcome, StoreError};
use crate::tenancy::{SystemScope, TenantScope};

/// Texts embedded per call (one progress step each).
const BATCH: usize = 16;
/// How long a claimed ingestion may run before another worker may take it over.
const LEASE: Duration = Duration::from_secs(900);
/// Attempts before a failing ingestion (backend down) is given up.
const MAX_ATTEMPTS: u32 = 5;

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

/// Runs until `shutdown`, polling for ingestion jobs.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    super::work_loop(
        state,
        shutdown,
        "ingest worker",
        Duration::from_millis(300),
        |s| async move { poll_once(&s).await },
    )
    .await;
}

/// Claims and runs at most one due ingestion; returns how many ran.
pub async fn poll_once(state: &AppState) -> Result<usize, StoreError> {
    let Ok(brain) = state.knowledge.get().cloned() else {
        return Ok(0);
    };
    let sys = SystemScope::new("ingest worker");
    let items = state
        .store
        .claim(&sys, Queue::Jobs, Some(JOB_INGEST), Utc::now(), 1, LEASE)
        .await?;
    for item in &items {
        let outcome = process(state, &brain, &sys, item).await;
        state.store.finish(&sys, Queue::Jobs, item, outcome).await?;
    }
    Ok(items.len())
}

async fn process(
    state: &AppState,
    brain: &Arc<Brain>,
    sys: &SystemScope,
    item: &QueueItem,
) -> QueueOutcome {
    let scope = sys.for_tenant(item.tenant_id);
    let id = item
        .payload
        .get("document_id")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse::<Uuid>().ok());
    let version = item
        .payload
        .get("version")
        .and_then(serde_json::Value::as_i64);
    let (Some(id), Some(version)) = (id, version) else {
        return dead(format!("malformed ingest job payload {}", item.payload));
    };
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
            QueueOutcome::Done {
                provider_message_id: None,
            }
        }
        Err(Failure::Document(why)) => {
            tracing::info!(document = %id, version, reason = %why, "document refused");
            let _ = state.store.update_ingest(&scope, id, fail(why)).await;
            announce(state, &scope, id, DocumentStatus::Failed, 0.0, 0).await;
            let _ = brain
                .vectors
                .delete_document(tenant(&scope), id, None)
                .await;
            QueueOutcome::Done {
                provider_message_id: None,
            }
        }
        Err(Failure::Backend(why)) if item.attempts >= MAX_ATTEMPTS => {
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
            dead(why)
        }
        Err(Failure::Backend(why)) => {
            tracing::warn!(document = %id, version, error = %why, "ingestion will be retried");
            let wait = crate::store::backoff(
                item.attempts,
                Duration::from_secs(2),
                Duration::from_secs(120),
                None,
            );
            QueueOutcome::Retry {
                at: Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default(),
                error: why,
            }
        }
    }
}

fn dead(error: String) -> QueueOutcome {
    QueueOutcome::Dead {
        error: ProviderError {
            code: "ingest".into(),
            title: error,
        },
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
    let (tokens, overlap) = crate::http::tenant::Chunking::of(&profile).map_or(
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
