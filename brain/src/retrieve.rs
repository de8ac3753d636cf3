//! Hybrid retrieval: dense (embeddings) and keyword (BM25-like) candidates fused by reciprocal
//! rank fusion, with a relevance floor on the dense similarity under which the coach should say
//! it does not know.

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use crate::Tenant;
use crate::keyword;
use crate::model::{Embedder, ModelError};
use crate::vectors::{ChunkPayload, Hit, VectorError, VectorStore};

/// Which retrievers run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Embeddings only.
    Dense,
    /// Keywords only.
    Keyword,
    /// Both, fused.
    #[default]
    Hybrid,
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dense" => Ok(Self::Dense),
            "keyword" => Ok(Self::Keyword),
            "hybrid" => Ok(Self::Hybrid),
            other => Err(format!("{other:?}: use dense, keyword or hybrid")),
        }
    }
}

/// A retrieved chunk.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Passage {
    /// The chunk's point id.
    pub id: Uuid,
    /// Fused score (higher is better; comparable within one query only).
    pub score: f32,
    /// Cosine similarity to the query, when the dense retriever found it.
    pub dense_score: Option<f32>,
    /// Keyword score, when the keyword retriever found it.
    pub keyword_score: Option<f32>,
    /// The chunk.
    #[serde(flatten)]
    pub chunk: ChunkPayload,
}

/// What a retrieval found.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Retrieval {
    /// Best first.
    pub passages: Vec<Passage>,
    /// Whether the best passage clears the relevance floor (else: "I don't know" and handoff).
    pub confident: bool,
    /// The best dense similarity (0 when nothing was found).
    pub relevance: f32,
}

/// Retrieval failed.
#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    /// Embedding the query failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The vector store failed.
    #[error(transparent)]
    Vectors(#[from] VectorError),
}

/// Tunables of retrieval.
#[derive(Clone, Copy, Debug)]
pub struct RetrieveConfig {
    /// Candidates taken from each retriever before fusion.
    pub candidates: usize,
    /// Reciprocal rank fusion's constant (60 in the original paper; 10 measured best on
    /// SciFact's training claims, see docs/BENCHMARKS.md).
    pub rrf_k: f32,
    /// Weight of the keyword ranking against the dense one in fusion (1.1 measured best on
    /// SciFact's training claims: keywords win the many ties).
    pub keyword_weight: f32,
    /// Dense cosine similarity under which a passage does not count as an answer.
    pub floor: f32,
}

impl Default for RetrieveConfig {
    fn default() -> Self {
        Self {
            candidates: 50,
            rrf_k: 10.0,
            keyword_weight: 1.1,
            floor: 0.35,
        }
    }
}

/// Searches one tenant's chunks.
#[derive(Clone)]
pub struct Retriever {
    embedder: Arc<dyn Embedder>,
    store: Arc<dyn VectorStore>,
    config: RetrieveConfig,
}

impl Retriever {
    /// A retriever over `store` with queries embedded by `embedder`.
    pub fn new(
        embedder: Arc<dyn Embedder>,
        store: Arc<dyn VectorStore>,
        config: RetrieveConfig,
    ) -> Self {
        Self {
            embedder,
            store,
            config,
        }
    }

    /// The `limit` best passages for `query` among the tenant's chunks.
    pub async fn search(
        &self,
        tenant: Tenant,
        query: &str,
        limit: usize,
        mode: Mode,
    ) -> Result<Retrieval, RetrieveError> {
        let depth = self.config.candidates.max(limit);
        let dense = if mode == Mode::Keyword {
            Vec::new()
        } else {
            let vector = self
                .embedder
                .embed(vec![query.to_string()])
                .await?
                .pop()
                .ok_or_else(|| ModelError::Inference("no embedding returned".into()))?;
            self.store.search_dense(tenant, vector, depth).await?
        };
        let keyword = match mode {
            Mode::Dense => Vec::new(),
            _ => {
                let vector = keyword::query_vector(query);
                if vector.is_empty() {
                    Vec::new()
                } else {
                    self.store.search_keyword(tenant, vector, depth).await?
                }
            }
        };
        let relevance = dense.first().map_or(0.0, |hit| hit.score);
        let confident = dense
            .first()
            .is_some_and(|hit| hit.score >= self.config.floor)
            || (mode == Mode::Keyword && !keyword.is_empty());
        let mut passages = fuse(&dense, &keyword, &self.config);
        passages.truncate(limit);
        Ok(Retrieval {
            passages,
            confident,
            relevance,
        })
    }
}

/// Reciprocal rank fusion of two rankings.
pub fn fuse(dense: &[Hit], keyword: &[Hit], config: &RetrieveConfig) -> Vec<Passage> {
    let mut by_id: HashMap<Uuid, Passage> = HashMap::new();
    let mut add = |hits: &[Hit], weight: f32, is_dense: bool| {
        for (rank, hit) in hits.iter().enumerate() {
            let entry = by_id.entry(hit.id).or_insert_with(|| Passage {
                id: hit.id,
                score: 0.0,
                dense_score: None,
                keyword_score: None,
                chunk: hit.payload.clone(),
            });
            entry.score += weight / (config.rrf_k + rank as f32 + 1.0);
            if is_dense {
                entry.dense_score = Some(hit.score);
            } else {
                entry.keyword_score = Some(hit.score);
            }
        }
    };
    add(dense, 1.0, true);
    add(keyword, config.keyword_weight, false);
    let mut passages: Vec<Passage> = by_id.into_values().collect();
    // Equal fused scores are common (rank r in one list only, either list): the closer dense
    // match goes first, then the id, so the order never depends on how the map iterates.
    let dense_of = |p: &Passage| p.dense_score.unwrap_or(f32::NEG_INFINITY);
    passages.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(dense_of(b).total_cmp(&dense_of(a)))
            .then(a.id.cmp(&b.id))
    });
    passages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(n: u128, score: f32) -> Hit {
        Hit {
            id: Uuid::from_u128(n),
            score,
            payload: ChunkPayload {
                document_id: Uuid::nil(),
                version: 1,
                ordinal: 0,
                title: String::new(),
                heading: None,
                page: None,
                text: n.to_string(),
            },
        }
    }

    #[test]
    fn a_chunk_both_retrievers_rank_well_wins() {
        let dense = [hit(1, 0.9), hit(2, 0.8), hit(3, 0.7)];
        let keyword = [hit(4, 12.0), hit(2, 9.0), hit(3, 3.0)];
        let fused = fuse(&dense, &keyword, &RetrieveConfig::default());
        let ids: Vec<u128> = fused.iter().map(|p| p.id.as_u128()).collect();
        assert_eq!(ids[0], 2, "second in both beats first in one");
        assert_eq!(ids.len(), 4);
        assert_eq!(fused[0].dense_score, Some(0.8));
        assert_eq!(fused[0].keyword_score, Some(9.0));
    }

    #[test]
    fn ties_go_to_the_closer_dense_match() {
        // With equal weights, 5 first for keywords only and 1 first for the dense retriever
        // only tie, and the dense match wins whatever the ids.
        let config = RetrieveConfig {
            keyword_weight: 1.0,
            ..RetrieveConfig::default()
        };
        for (dense_id, keyword_id) in [(1, 5), (5, 1)] {
            let fused = fuse(&[hit(dense_id, 0.6)], &[hit(keyword_id, 7.0)], &config);
            assert_eq!(fused[0].score, fused[1].score);
            assert_eq!(fused[0].id.as_u128(), dense_id);
        }
    }
}
