//! Knowledge documents: records, their uploaded bytes and their ingestion state. A supertrait
//! of [`Store`](super::Store), so every backend keeps documents in the same database.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::{Page, StoreError};
use crate::tenancy::{SystemScope, TenantScope};

pub(in crate::store) mod sql;

/// Job kind: extract, chunk, embed and index one document version.
pub const JOB_INGEST: &str = crate::jobs::JobKind::Ingest.as_str();

/// An `ingest` job's payload: index this version of this document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IngestJob {
    /// The document.
    pub document_id: uuid::Uuid,
    /// The version to index.
    pub version: i64,
}

/// Where a document is in ingestion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentStatus {
    /// Waiting for a worker.
    Queued,
    /// Being extracted, chunked and embedded.
    Processing,
    /// Searchable.
    Ready,
    /// Ingestion failed; `error` says why.
    Failed,
}

impl DocumentStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "processing" => Self::Processing,
            "ready" => Self::Ready,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

impl TryFrom<String> for DocumentStatus {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Self, StoreError> {
        Self::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("document status {s}")))
    }
}

/// A knowledge document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Document {
    /// Its id.
    pub id: Uuid,
    /// Title used in citations.
    pub title: String,
    /// The uploaded file's name.
    pub filename: Option<String>,
    /// The web page it was fetched from.
    pub source_url: Option<String>,
    /// `pdf`, `docx`, `text`, `markdown` or `html`.
    pub kind: String,
    /// Size of the uploaded bytes.
    pub size_bytes: i64,
    /// SHA-256 of the uploaded bytes (hex).
    pub sha256: String,
    /// Ingestion state of the newest version.
    #[sqlx(try_from = "String")]
    pub status: DocumentStatus,
    /// Why ingestion failed.
    pub error: Option<String>,
    /// Ingestion progress of the newest version, 0 to 1.
    pub progress: f64,
    /// Chunks of the searchable version.
    #[sqlx(try_from = "i32")]
    pub chunks: i64,
    /// The newest version (being built or live).
    pub version: i64,
    /// The version search uses, once one is ready.
    pub live_version: Option<i64>,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
}

/// A document to store.
#[derive(Clone, Debug)]
pub struct NewDocument {
    /// Title used in citations.
    pub title: String,
    /// The uploaded file's name.
    pub filename: Option<String>,
    /// The web page it was fetched from.
    pub source_url: Option<String>,
    /// Detected kind.
    pub kind: String,
    /// The bytes.
    pub content: Vec<u8>,
    /// SHA-256 of the bytes (hex).
    pub sha256: String,
}

/// A change of ingestion state, applied only while `version` is still the newest.
#[derive(Clone, Debug)]
pub struct IngestUpdate {
    /// The version the worker built.
    pub version: i64,
    /// New state.
    pub status: DocumentStatus,
    /// Progress, 0 to 1.
    pub progress: f64,
    /// Chunks written (with `Ready`, the searchable count).
    pub chunks: i64,
    /// Why it failed.
    pub error: Option<String>,
}

/// Chunks the vector store must forget: one document's, or (without a document) a whole
/// tenant's. Written with the deletion, removed once the vector store did it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct VectorErasure {
    /// The erasure.
    pub id: Uuid,
    /// Whose chunks.
    #[sqlx(try_from = "Uuid")]
    pub tenant_id: coach_connector_api::TenantId,
    /// The document whose chunks go; `None`: every chunk of the tenant.
    pub document_id: Option<Uuid>,
}

/// Documents and their ingestion.
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Store a document, its bytes and its ingestion job in one transaction.
    async fn create_document(
        &self,
        scope: &TenantScope,
        document: NewDocument,
    ) -> Result<Document, StoreError>;

    /// The tenant's documents, newest first.
    async fn documents(&self, scope: &TenantScope, page: Page)
    -> Result<Vec<Document>, StoreError>;

    /// One document.
    async fn document(&self, scope: &TenantScope, id: Uuid) -> Result<Document, StoreError>;

    /// The uploaded bytes of a document.
    async fn document_content(&self, scope: &TenantScope, id: Uuid) -> Result<Vec<u8>, StoreError>;

    /// Start a new version of the document and queue its ingestion.
    async fn reindex_document(&self, scope: &TenantScope, id: Uuid)
    -> Result<Document, StoreError>;

    /// Record ingestion state. A `Ready` update also makes `version` the live one, in the same
    /// statement. Returns false when a newer version replaced this one (the worker stops).
    async fn update_ingest(
        &self,
        scope: &TenantScope,
        id: Uuid,
        update: IngestUpdate,
    ) -> Result<bool, StoreError>;

    /// Delete a document and its bytes, and record that its chunks must leave the vector store
    /// (see [`DocumentStore::vector_erasures`]).
    async fn delete_document(&self, scope: &TenantScope, id: Uuid) -> Result<(), StoreError>;

    /// The oldest chunk erasures not yet carried out (a tenant's erasure records one too).
    async fn vector_erasures(
        &self,
        sys: &SystemScope,
        limit: u32,
    ) -> Result<Vec<VectorErasure>, StoreError>;

    /// The vector store forgot what `id` named.
    async fn vector_erasure_done(&self, sys: &SystemScope, id: Uuid) -> Result<(), StoreError>;

    /// The live version of each of these documents (missing: deleted or not ready).
    async fn live_versions(
        &self,
        scope: &TenantScope,
        ids: Vec<Uuid>,
    ) -> Result<std::collections::HashMap<Uuid, i64>, StoreError>;
}
