//! The gateway's side of the brain: loads the models and the vector store from configuration,
//! runs ingestion jobs, and answers questions from a tenant's knowledge.

pub mod answer;
pub mod cli;
pub mod ingest;
pub mod responder;

use std::sync::Arc;

use coach_brain::Tenant;
use coach_brain::keyword;
use coach_brain::model::{Embedder, Generator};
use coach_brain::retrieve::{Mode, Passage, Retriever};
use coach_brain::vectors::VectorStore;

use crate::config::{BrainConfig, Config, ModelBackend, VectorBackend};
use crate::error::ApiError;
use crate::store::Store;
use crate::tenancy::{SystemScope, TenantScope};

/// The loaded models and vector store.
pub struct Brain {
    /// Embeddings.
    pub embedder: Arc<dyn Embedder>,
    /// Answers.
    pub generator: Arc<dyn Generator>,
    /// Chunks.
    pub vectors: Arc<dyn VectorStore>,
    /// Hybrid search over the chunks.
    pub retriever: Retriever,
    /// The configuration it was built from.
    pub config: BrainConfig,
}

/// The brain, or why it is not available (models missing, vector store unreachable).
#[derive(Clone)]
pub struct Knowledge(Result<Arc<Brain>, String>);

impl Knowledge {
    /// A brain that could not be loaded, and why.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self(Err(reason.into()))
    }

    /// A loaded brain.
    pub fn ready(brain: Brain) -> Self {
        Self(Ok(Arc::new(brain)))
    }

    /// The brain, or a 503 that says how to fix it.
    pub fn get(&self) -> Result<&Arc<Brain>, ApiError> {
        self.0.as_ref().map_err(|why| {
            ApiError::Unavailable(format!("the knowledge base is not available: {why}"))
        })
    }

    /// The brain, or why it is not available.
    pub fn state(&self) -> Result<&Arc<Brain>, &str> {
        self.0.as_ref().map_err(String::as_str)
    }

    /// Loads models and the vector store as configured.
    pub async fn load(config: &Config) -> Self {
        match load(config).await {
            Ok(brain) => {
                tracing::info!(
                    embedder = brain.embedder.model_id(),
                    generator = brain.generator.model_id(),
                    "brain loaded"
                );
                Self::ready(brain)
            }
            Err(why) => {
                tracing::error!(error = %why, "the brain is not available; knowledge and answers answer 503");
                Self::unavailable(why)
            }
        }
    }
}

fn missing_model(path: &std::path::Path) -> String {
    format!(
        "model file {} is missing: run `make models` (or set brain.models_dir / brain.embedding_model / brain.generation_model)",
        path.display()
    )
}

async fn load(config: &Config) -> Result<Brain, String> {
    let brain = open(config).await?;
    brain
        .vectors
        .ensure(
            &keyword::index_id(brain.embedder.model_id()),
            brain.embedder.dimension(),
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(brain)
}

/// The models and the vector store as configured, without checking that the stored vectors
/// are of this embedding model (`gateway reembed` resets them instead).
pub(crate) async fn open(config: &Config) -> Result<Brain, String> {
    let brain = config.brain.clone();
    let (embedder, generator): (Arc<dyn Embedder>, Arc<dyn Generator>) = match brain.backend {
        ModelBackend::Llama => {
            let embed_path = brain.embedding_path();
            let gen_path = brain.generation_path();
            for path in [&embed_path, &gen_path] {
                if !path.is_file() {
                    return Err(missing_model(path));
                }
            }
            let threads = brain.threads;
            let embedder = tokio::task::spawn_blocking(move || {
                coach_brain::llama::LlamaEmbedder::load(&embed_path, threads)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            let gen_config = coach_brain::llama::GeneratorConfig {
                threads: brain.threads,
                context_tokens: brain.context_tokens,
                workers: brain.workers as usize,
                gpu_layers: brain.gpu_layers,
                per_tenant_queue: brain.per_tenant_queue as usize,
                ..coach_brain::llama::GeneratorConfig::default()
            };
            let generator = tokio::task::spawn_blocking(move || {
                coach_brain::llama::LlamaGenerator::load(&gen_path, gen_config)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            (Arc::new(embedder), Arc::new(generator))
        }
        ModelBackend::Ollama => {
            let o = &brain.ollama;
            let embedder = coach_brain::ollama::OllamaEmbedder::connect(&o.url, &o.embed_model)
                .await
                .map_err(|e| e.to_string())?;
            let generator = coach_brain::ollama::OllamaGenerator::new(
                &o.url,
                &o.chat_model,
                brain.context_tokens as usize,
            );
            (Arc::new(embedder), Arc::new(generator))
        }
    };
    let vectors: Arc<dyn VectorStore> = match brain.vectors.backend {
        VectorBackend::Edge => {
            let dir = config.data_dir.join("vectors");
            Arc::new(coach_brain::vectors::edge::EdgeStore::open(&dir).map_err(|e| e.to_string())?)
        }
        VectorBackend::Qdrant => {
            let v = &brain.vectors;
            let key = (!v.api_key.is_empty()).then(|| v.api_key.clone());
            Arc::new(
                coach_brain::vectors::server::ServerStore::connect(&v.url, &v.collection, key)
                    .map_err(|e| e.to_string())?,
            )
        }
    };
    let retriever = Retriever::new(embedder.clone(), vectors.clone(), brain.retrieve_config());
    Ok(Brain {
        embedder,
        generator,
        vectors,
        retriever,
        config: brain,
    })
}

/// Adds one generated answer's tokens to the tenant's meter (`GET /v1/analytics` shows it). A
/// failure is logged, never the answer's: the answer was already given.
pub async fn meter(
    store: &dyn crate::store::Store,
    scope: &TenantScope,
    usage: &coach_brain::model::Usage,
) {
    if usage.prompt_tokens == 0 && usage.completion_tokens == 0 {
        return; // nothing ran (the "I don't know" reply)
    }
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let day = crate::store::console::UsageDay {
        day: chrono::Utc::now().format("%Y-%m-%d").to_string(),
        answers: 1,
        prompt_tokens: count(usage.prompt_tokens),
        cached_tokens: count(usage.cached_tokens),
        completion_tokens: count(usage.completion_tokens),
    };
    if let Err(error) = store.record_usage(scope, day).await {
        tracing::warn!(tenant = %scope.tenant_id(), %error, "token usage not recorded");
    }
}

/// Passages found for a query.
pub struct Found {
    /// Best first, of the documents' live versions.
    pub passages: Vec<Passage>,
    /// Whether the best passage clears the relevance floor.
    pub confident: bool,
    /// The best dense similarity.
    pub relevance: f32,
}

/// The brain's view of an authenticated tenant scope.
pub fn tenant(scope: &TenantScope) -> Tenant {
    Tenant::scoped(scope.tenant_id().0)
}

/// Carry out the recorded chunk erasures (deleted documents, erased tenants; the store records
/// them in the deleting transaction) while the vector store answers. Returns how many were
/// done; one that fails stays recorded for the next run (at start and every minute, see
/// `server`), so a deletion made while the models were missing or the vector store was down
/// still happens.
pub async fn forget_erased(store: &dyn Store, knowledge: &Knowledge) -> usize {
    const BATCH: u32 = 100;
    let Ok(brain) = knowledge.get() else {
        return 0;
    };
    let sys = SystemScope::new("vector erasures");
    let mut done = 0;
    loop {
        let batch = match store.vector_erasures(&sys, BATCH).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(%error, "reading the pending vector erasures failed");
                return done;
            }
        };
        let full = batch.len() == BATCH as usize;
        for erasure in batch {
            let owner = Tenant::scoped(erasure.tenant_id.0);
            let forgotten = match erasure.document_id {
                Some(document) => brain.vectors.delete_document(owner, document, None).await,
                None => brain.vectors.delete_tenant(owner).await,
            };
            if let Err(error) = forgotten {
                tracing::warn!(tenant = %erasure.tenant_id, document = ?erasure.document_id, %error,
                    "erased chunks remain in the vector store for now; retried within a minute");
                return done;
            }
            if let Err(error) = store.vector_erasure_done(&sys, erasure.id).await {
                tracing::warn!(%error, "recording a vector erasure as done failed; it will run again");
                return done;
            }
            done += 1;
        }
        if !full {
            return done;
        }
    }
}

impl Brain {
    /// The `limit` best passages of the tenant's live document versions, and whether the best
    /// clears the relevance floor. Hits of a replaced version are dropped, so a re-index
    /// switches atomically.
    pub async fn search(
        &self,
        store: &dyn Store,
        scope: &TenantScope,
        query: &str,
        limit: usize,
        mode: Mode,
    ) -> Result<Found, ApiError> {
        let found = self
            .retriever
            .search(tenant(scope), query, limit * 2 + 4, mode)
            .await
            .map_err(|e| ApiError::Unavailable(format!("search: {e}")))?;
        let mut ids: Vec<uuid::Uuid> = found.passages.iter().map(|p| p.chunk.document_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let live = store.live_versions(scope, ids).await?;
        let mut passages: Vec<Passage> = found
            .passages
            .into_iter()
            .filter(|p| live.get(&p.chunk.document_id) == Some(&p.chunk.version))
            .collect();
        passages.truncate(limit);
        Ok(Found {
            confident: found.confident && !passages.is_empty(),
            relevance: found.relevance,
            passages,
        })
    }
}
