//! The brain: turns a tenant's documents into retrievable passages and answers questions from
//! them (retrieval-augmented generation), with llama.cpp in-process or an Ollama server.
//! It never knows about channels; every call takes a [`Tenant`] scope.
//!
//! Layout:
//! - [`extract`]: PDF, DOCX, TXT, Markdown and HTML to sections of clean text (headings, pages).
//! - [`chunk`]: token-aware chunks with overlap, measured by the embedding model's tokenizer.
//! - [`keyword`]: BM25-style sparse vectors for keyword retrieval.
//! - [`vectors`]: the vector store trait, with the embedded Qdrant engine and a Qdrant server.
//! - [`llama`]: llama.cpp in-process (embeddings and generation) on a bounded worker pool.
//! - [`ollama`]: the same two traits over an Ollama server.
//! - [`retrieve`]: hybrid retrieval (dense + keyword, reciprocal rank fusion).
//! - [`prompt`]: the persona, passages within a token budget and recent turns.

pub mod chunk;
pub mod extract;
pub mod grounding;
pub mod keyword;
pub mod llama;
pub mod model;
pub mod ollama;
pub mod prompt;
pub mod repetition;
pub mod retrieve;
pub mod vectors;

use uuid::Uuid;

/// Permission to read and write one tenant's knowledge. The gateway builds it from its own
/// authenticated tenant scope; every vector store call requires it, so no search runs unfiltered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tenant(Uuid);

impl Tenant {
    /// The scope of one tenant. Callers obtain the id from an authenticated scope.
    pub fn scoped(id: Uuid) -> Self {
        Self(id)
    }

    /// The tenant's id.
    pub fn id(&self) -> Uuid {
        self.0
    }
}
