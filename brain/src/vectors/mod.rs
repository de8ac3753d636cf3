//! The vector store: dense and keyword (sparse) vectors of chunks, always filtered by tenant.
//! Two backends: the embedded Qdrant engine (`qdrant-edge`, default) and a Qdrant server.

pub mod edge;
pub mod server;

pub use edge::EdgeStore;
pub use server::ServerStore;

use async_trait::async_trait;
use uuid::Uuid;

use crate::Tenant;
use crate::keyword::SparseVector;

/// A vector store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// The collection holds vectors of another model or dimension.
    #[error(
        "the vector collection was built with {stored}, the configured embedding model is {configured}: run `gateway reembed` to rebuild it"
    )]
    ModelMismatch {
        /// Model and dimension recorded with the collection.
        stored: String,
        /// The configured model and dimension.
        configured: String,
    },
    /// The backend failed.
    #[error("vector store: {0}")]
    Backend(String),
}

/// What a point stores besides its vectors.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChunkPayload {
    /// The document the chunk came from.
    pub document_id: Uuid,
    /// The document version (a re-index writes a new version, then removes the old one).
    pub version: i64,
    /// Position of the chunk in the document.
    pub ordinal: u32,
    /// Document title, for citations.
    pub title: String,
    /// The nearest heading above the chunk, for citations.
    pub heading: Option<String>,
    /// The page the chunk starts on (PDF), for citations.
    pub page: Option<u32>,
    /// The chunk text.
    pub text: String,
}

/// One chunk to store.
#[derive(Clone, Debug)]
pub struct ChunkPoint {
    /// Unique id of the point.
    pub id: Uuid,
    /// The dense embedding.
    pub dense: Vec<f32>,
    /// The keyword vector.
    pub sparse: SparseVector,
    /// Payload.
    pub payload: ChunkPayload,
}

/// A search hit.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// Point id.
    pub id: Uuid,
    /// Similarity score (cosine for dense, BM25-like for keyword).
    pub score: f32,
    /// Payload.
    pub payload: ChunkPayload,
}

/// Stores and searches chunk vectors. Every call takes a [`Tenant`]: every point carries its
/// tenant and every search and delete filters by it.
#[async_trait]
pub trait VectorStore: Send + Sync {
    /// Makes sure the collection exists for this model id and dimension; refuses a mismatch.
    async fn ensure(&self, model_id: &str, dimension: usize) -> Result<(), VectorError>;
    /// Deletes every point of every tenant and records this model id and dimension instead
    /// (`gateway reembed`, after the embedding model changed). Nothing else may use the store
    /// meanwhile.
    async fn reset(&self, model_id: &str, dimension: usize) -> Result<(), VectorError>;
    /// Stores points (overwriting equal ids).
    async fn upsert(&self, tenant: Tenant, points: Vec<ChunkPoint>) -> Result<(), VectorError>;
    /// The `limit` nearest chunks to `vector` among the tenant's chunks. Callers drop hits of
    /// a document version that is no longer current, so a re-index switches atomically.
    async fn search_dense(
        &self,
        tenant: Tenant,
        vector: Vec<f32>,
        limit: usize,
    ) -> Result<Vec<Hit>, VectorError>;
    /// The `limit` best keyword matches.
    async fn search_keyword(
        &self,
        tenant: Tenant,
        vector: SparseVector,
        limit: usize,
    ) -> Result<Vec<Hit>, VectorError>;
    /// Removes a document's chunks, every version except `keep` when given.
    async fn delete_document(
        &self,
        tenant: Tenant,
        document: Uuid,
        keep: Option<i64>,
    ) -> Result<(), VectorError>;
    /// Removes every chunk of a tenant (tenant erasure).
    async fn delete_tenant(&self, tenant: Tenant) -> Result<(), VectorError>;
    /// Number of chunks stored for a tenant.
    async fn count(&self, tenant: Tenant) -> Result<usize, VectorError>;
    /// Whether the store answers now (`/readyz`); an embedded store always does.
    async fn ping(&self) -> Result<(), VectorError> {
        Ok(())
    }
}

/// Name of the dense vector in both backends.
pub(crate) const DENSE_VECTOR: &str = "dense";
/// Name of the keyword (sparse, IDF-modified) vector in both backends.
pub(crate) const KEYWORD_VECTOR: &str = "keyword";
/// Payload field with the tenant id (a keyword index marked `is_tenant`).
pub(crate) const TENANT_FIELD: &str = "tenant";
/// Payload field with the document id, as serialised from [`ChunkPayload::document_id`].
pub(crate) const DOCUMENT_FIELD: &str = "document_id";
/// Payload field with the document version, as serialised from [`ChunkPayload::version`].
pub(crate) const VERSION_FIELD: &str = "version";

/// How a collection's embedding model appears in [`VectorError::ModelMismatch`].
pub(crate) fn describe_model(model_id: &str, dimension: usize) -> String {
    format!("{model_id} ({dimension} dimensions)")
}

/// The stored payload of a point: the chunk's fields plus its tenant.
pub(crate) fn payload_to_json(
    tenant: Tenant,
    payload: &ChunkPayload,
) -> Result<serde_json::Map<String, serde_json::Value>, VectorError> {
    match serde_json::to_value(payload) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.insert(
                TENANT_FIELD.to_string(),
                serde_json::Value::String(tenant.id().to_string()),
            );
            Ok(map)
        }
        Ok(other) => Err(VectorError::Backend(format!(
            "chunk payload serialised to {other}, not an object"
        ))),
        Err(e) => Err(VectorError::Backend(format!(
            "serialising the payload of a chunk of document {}: {e}",
            payload.document_id
        ))),
    }
}

/// Reads a stored payload back (the tenant field is ignored).
pub(crate) fn payload_from_json(
    map: serde_json::Map<String, serde_json::Value>,
) -> Result<ChunkPayload, VectorError> {
    serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| VectorError::Backend(format!("reading a stored chunk payload: {e}")))
}
