//! `gateway eval retrieval`: retrieval quality on a BEIR-format benchmark (corpus, queries,
//! qrels), through the same chunker, embedder, vector store and fusion the coach uses, printing
//! nDCG@10 and recall@100 for each mode. `gateway eval answers` ([`answers`]): end-to-end answer
//! quality on SQuAD 2.0.

pub mod answers;
pub mod calibrate;
pub mod scoring;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use coach_brain::Tenant;
use coach_brain::chunk::{ChunkConfig, chunk};
use coach_brain::extract::Section;
use coach_brain::keyword;
use coach_brain::model::Embedder;
use coach_brain::retrieve::{Mode, RetrieveConfig, Retriever};
use coach_brain::vectors::{ChunkPayload, ChunkPoint, VectorStore};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;

use crate::config::Config;

/// How `gateway eval retrieval` runs besides its files.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Modes to measure, each on the same index.
    pub modes: Vec<Mode>,
    /// Keeps the chunks' embeddings between runs (keyed by model and text), so measuring
    /// another fusion or keyword setting does not embed the corpus again.
    pub cache: Option<std::path::PathBuf>,
    /// Fusion constants to try in hybrid mode (empty: the configured one).
    pub fusion_k: Vec<f32>,
    /// Keyword weights to try in hybrid mode (empty: the configured one).
    pub keyword_weight: Vec<f32>,
}

/// Embeddings computed before, in an append-only file: per entry the SHA-256 of the text,
/// then its vector as little-endian `f32`s. A torn last entry (an interrupted run) is ignored.
struct EmbeddingCache {
    known: HashMap<[u8; 32], Vec<f32>>,
    file: Option<std::io::BufWriter<std::fs::File>>,
    dimension: usize,
}

impl EmbeddingCache {
    fn disabled(dimension: usize) -> Self {
        Self {
            known: HashMap::new(),
            file: None,
            dimension,
        }
    }

    fn open(dir: &Path, model_id: &str, dimension: usize) -> anyhow::Result<Self> {
        use sha2::Digest as _;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let name = hex::encode(&sha2::Sha256::digest(model_id.as_bytes())[..8]);
        let path = dir.join(format!("embeddings-{name}-{dimension}.bin"));
        let entry = 32 + dimension * 4;
        let mut bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
        };
        bytes.truncate(bytes.len() - bytes.len() % entry);
        let known = bytes
            .chunks_exact(entry)
            .map(|e| {
                let mut key = [0u8; 32];
                key.copy_from_slice(&e[..32]);
                let vector = e[32..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                (key, vector)
            })
            .collect::<HashMap<_, _>>();
        let torn = std::fs::metadata(&path).is_ok_and(|m| m.len() != bytes.len() as u64);
        if torn {
            // An interrupted run left half an entry: drop it before appending.
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        eprintln!("{} cached embeddings in {}", known.len(), path.display());
        Ok(Self {
            known,
            file: Some(std::io::BufWriter::new(file)),
            dimension,
        })
    }

    fn key(text: &str) -> [u8; 32] {
        use sha2::Digest as _;
        sha2::Sha256::digest(text.as_bytes()).into()
    }

    /// The vectors of `texts`, embedding (and keeping) only those not seen before.
    async fn embed(
        &mut self,
        embedder: &dyn Embedder,
        texts: Vec<String>,
    ) -> anyhow::Result<Vec<Vec<f32>>> {
        use std::io::Write as _;
        let keys: Vec<[u8; 32]> = texts.iter().map(|t| Self::key(t)).collect();
        let missing: Vec<usize> = (0..texts.len())
            .filter(|&i| !self.known.contains_key(&keys[i]))
            .collect();
        if !missing.is_empty() {
            let fresh = embedder
                .embed(missing.iter().map(|&i| texts[i].clone()).collect())
                .await?;
            anyhow::ensure!(fresh.len() == missing.len(), "the embedder lost texts");
            for (&i, vector) in missing.iter().zip(fresh) {
                anyhow::ensure!(vector.len() == self.dimension, "unexpected dimension");
                if let Some(file) = self.file.as_mut() {
                    file.write_all(&keys[i])?;
                    for x in &vector {
                        file.write_all(&x.to_le_bytes())?;
                    }
                }
                self.known.insert(keys[i], vector);
            }
            if let Some(file) = self.file.as_mut() {
                file.flush()?;
            }
        }
        Ok(keys.iter().map(|k| self.known[k].clone()).collect())
    }
}

#[derive(Deserialize)]
struct CorpusDoc {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default)]
    title: String,
    text: String,
}

#[derive(Deserialize)]
struct Query {
    #[serde(rename = "_id")]
    id: String,
    text: String,
}

fn open(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::new(reader)))
}

fn jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<Vec<T>> {
    open(path)?
        .lines()
        .enumerate()
        .filter(|(_, l)| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .map(|(n, line)| {
            serde_json::from_str(&line?)
                .with_context(|| format!("{} line {}: not a BEIR record", path.display(), n + 1))
        })
        .collect()
}

/// query id -> (doc id -> grade)
fn qrels(path: &Path) -> anyhow::Result<HashMap<String, HashMap<String, u32>>> {
    let mut out: HashMap<String, HashMap<String, u32>> = HashMap::new();
    for (n, line) in open(path)?.lines().enumerate() {
        let line = line?;
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 3 || (n == 0 && cols[2].trim() == "score") {
            continue;
        }
        let grade: u32 = cols[2]
            .trim()
            .parse()
            .with_context(|| format!("{} line {}: score is not a number", path.display(), n + 1))?;
        if grade > 0 {
            out.entry(cols[0].into())
                .or_default()
                .insert(cols[1].into(), grade);
        }
    }
    Ok(out)
}

/// nDCG@k of a ranking with graded relevance.
pub fn ndcg(ranked: &[String], relevant: &HashMap<String, u32>, k: usize) -> f64 {
    let gain = |g: u32| f64::from((1u32 << g.min(16)) - 1);
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| {
            relevant
                .get(d)
                .map_or(0.0, |&g| gain(g) / ((i + 2) as f64).log2())
        })
        .sum();
    let mut ideal: Vec<u32> = relevant.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, &g)| gain(g) / ((i + 2) as f64).log2())
        .sum();
    if idcg == 0.0 { 0.0 } else { dcg / idcg }
}

/// Share of the relevant documents found in the first `k`.
pub fn recall(ranked: &[String], relevant: &HashMap<String, u32>, k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let found = ranked
        .iter()
        .take(k)
        .filter(|d| relevant.contains_key(*d))
        .count();
    found as f64 / relevant.len() as f64
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Runs the evaluation and prints one line per mode (and per fusion setting tried).
pub async fn retrieval(
    config: &Config,
    corpus: &Path,
    queries: &Path,
    qrels_path: &Path,
    options: &Options,
) -> anyhow::Result<()> {
    let modes = &options.modes;
    let docs: Vec<CorpusDoc> = jsonl(corpus)?;
    let queries: Vec<Query> = jsonl(queries)?;
    let qrels = qrels(qrels_path)?;
    let queries: Vec<Query> = queries
        .into_iter()
        .filter(|q| qrels.contains_key(&q.id))
        .collect();
    anyhow::ensure!(
        !queries.is_empty(),
        "no query of {} has relevance judgements",
        qrels_path.display()
    );
    eprintln!("{} documents, {} judged queries", docs.len(), queries.len());

    let brain = &config.brain;
    let embed_path = brain.embedding_path();
    let threads = brain.threads;
    let embedder: Arc<dyn Embedder> = Arc::new(
        tokio::task::spawn_blocking(move || {
            coach_brain::llama::LlamaEmbedder::load(&embed_path, threads)
        })
        .await??,
    );
    let mut cache = match &options.cache {
        Some(dir) => EmbeddingCache::open(dir, embedder.model_id(), embedder.dimension())?,
        None => EmbeddingCache::disabled(embedder.dimension()),
    };
    let dir = tempfile::tempdir()?;
    let store = Arc::new(coach_brain::vectors::edge::EdgeStore::open(dir.path())?);
    store
        .ensure(
            &keyword::index_id(embedder.model_id()),
            embedder.dimension(),
        )
        .await?;
    let tenant = Tenant::scoped(uuid::Uuid::nil());
    let chunk_config = ChunkConfig {
        max_tokens: brain.chunk_tokens as usize,
        overlap_tokens: brain.chunk_overlap as usize,
    };
    let needs_dense = modes.iter().any(|m| *m != Mode::Keyword);
    let progress = bar(docs.len(), "indexing");
    let started = std::time::Instant::now();
    let mut chunks_total = 0;
    for batch in docs.chunks(16) {
        let mut pieces = Vec::new();
        for doc in batch {
            // As an upload: the title is the document's, the abstract its one section.
            let section = Section {
                heading: None,
                page: None,
                text: doc.text.clone(),
            };
            let count = |t: &str| {
                embedder
                    .count_tokens(t)
                    .unwrap_or_else(|_| t.len().div_ceil(3))
            };
            for c in chunk(std::slice::from_ref(&section), &chunk_config, &count) {
                let indexed = c.indexed_text(&doc.title);
                pieces.push((doc.id.clone(), indexed, c));
            }
        }
        let dense = if needs_dense {
            cache
                .embed(
                    embedder.as_ref(),
                    pieces
                        .iter()
                        .map(|(_, indexed, _)| indexed.clone())
                        .collect(),
                )
                .await?
        } else {
            vec![vec![0.0; embedder.dimension()]; pieces.len()]
        };
        chunks_total += pieces.len();
        let points = pieces
            .into_iter()
            .zip(dense)
            .map(|((doc_id, indexed, c), dense)| ChunkPoint {
                // Stable ids: the same corpus gives the same index, run after run.
                id: stable_id(&doc_id, c.ordinal),
                dense,
                sparse: keyword::document_vector(&indexed),
                payload: ChunkPayload {
                    document_id: uuid::Uuid::nil(),
                    version: 1,
                    ordinal: c.ordinal,
                    title: doc_id,
                    heading: None,
                    page: None,
                    text: c.text,
                },
            })
            .collect();
        store.upsert(tenant, points).await?;
        progress.inc(batch.len() as u64);
        if progress.is_hidden() && progress.position() % 512 < batch.len() as u64 {
            // No terminal (a log, CI): a line now and then instead of a bar.
            eprintln!("indexed {}/{} documents", progress.position(), docs.len());
        }
    }
    progress.finish_and_clear();
    eprintln!(
        "indexed {chunks_total} chunks in {:.1} s; building the vector index",
        started.elapsed().as_secs_f64()
    );
    let optimizer = store.clone();
    tokio::task::spawn_blocking(move || optimizer.optimize()).await??;

    let base = config.brain.retrieve_config();
    let mut settings = Vec::new();
    for &mode in modes {
        if mode != Mode::Hybrid {
            settings.push((mode, base));
            continue;
        }
        let ks = if options.fusion_k.is_empty() {
            vec![base.rrf_k]
        } else {
            options.fusion_k.clone()
        };
        let weights = if options.keyword_weight.is_empty() {
            vec![base.keyword_weight]
        } else {
            options.keyword_weight.clone()
        };
        for &rrf_k in &ks {
            for &keyword_weight in &weights {
                settings.push((
                    mode,
                    RetrieveConfig {
                        rrf_k,
                        keyword_weight,
                        ..base
                    },
                ));
            }
        }
    }
    println!("mode     nDCG@10  recall@100  queries  fusion");
    for (mode, setting) in settings {
        let retriever = Retriever::new(embedder.clone(), store.clone(), setting);
        let (mut ndcg_sum, mut recall_sum) = (0.0, 0.0);
        for query in &queries {
            let found = retriever.search(tenant, &query.text, 300, mode).await?;
            let mut seen = HashSet::new();
            let ranked: Vec<String> = found
                .passages
                .into_iter()
                .map(|p| p.chunk.title)
                .filter(|d| seen.insert(d.clone()))
                .collect();
            let relevant = &qrels[&query.id];
            ndcg_sum += ndcg(&ranked, relevant, 10);
            recall_sum += recall(&ranked, relevant, 100);
        }
        let n = queries.len() as f64;
        let fusion = if mode == Mode::Hybrid {
            format!(
                "k={} keyword_weight={}",
                setting.rrf_k, setting.keyword_weight
            )
        } else {
            String::new()
        };
        println!(
            "{:<8} {:>7.4}  {:>10.4}  {:>7}  {fusion}",
            format!("{mode:?}").to_lowercase(),
            ndcg_sum / n,
            recall_sum / n,
            queries.len()
        );
    }
    if modes.contains(&Mode::Hybrid) {
        grounding(config, &embedder, &store, tenant, &queries, &qrels).await?;
    }
    Ok(())
}

/// A point id derived from the document id and the chunk's position.
fn stable_id(doc_id: &str, ordinal: u32) -> uuid::Uuid {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("{doc_id}#{ordinal}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Uuid::from_bytes(bytes)
}

/// Passage budgets compared by [`grounding`]: (passages, prompt tokens for them).
const BUDGETS: [(usize, usize); 5] = [(1, 100), (2, 200), (3, 300), (5, 500), (8, 800)];

/// Answer grounding: how often a relevant document is among the passages the coach would place
/// in the prompt (hybrid retrieval as configured, then the prompt builder with its token
/// budget), for the configured budget and smaller and larger ones, with the passage tokens
/// each costs (prompt evaluation time grows with them).
async fn grounding(
    config: &Config,
    embedder: &Arc<dyn Embedder>,
    store: &Arc<coach_brain::vectors::edge::EdgeStore>,
    tenant: Tenant,
    queries: &[Query],
    qrels: &HashMap<String, HashMap<String, u32>>,
) -> anyhow::Result<()> {
    let brain = &config.brain;
    let path = brain.generation_path();
    let generator_config = coach_brain::llama::GeneratorConfig {
        threads: brain.threads,
        context_tokens: 512,
        ..coach_brain::llama::GeneratorConfig::default()
    };
    // The prompt's tokens are the generation model's.
    let generator = tokio::task::spawn_blocking(move || {
        coach_brain::llama::LlamaGenerator::load(&path, generator_config)
    })
    .await??;
    let count = |text: &str| {
        coach_brain::model::Generator::count_tokens(&generator, text)
            .unwrap_or_else(|_| text.len().div_ceil(3))
    };
    let configured = (brain.passages as usize, brain.passage_tokens as usize);
    let mut budgets: Vec<(usize, usize)> = BUDGETS.to_vec();
    if !budgets.contains(&configured) {
        budgets.push(configured);
        budgets.sort_unstable();
    }
    let deepest = budgets.iter().map(|b| b.0).max().unwrap_or(1);
    let retriever = Retriever::new(embedder.clone(), store.clone(), brain.retrieve_config());
    let persona = coach_brain::prompt::Persona::default();
    let (mut grounded, mut tokens) = (vec![0usize; budgets.len()], vec![0usize; budgets.len()]);
    for query in queries {
        let found = retriever
            .search(tenant, &query.text, deepest, Mode::Hybrid)
            .await?;
        let length = |p: &coach_brain::prompt::Prompt| count(&p.messages[0].content);
        // The system message without passages: the same for every budget.
        let bare = length(&coach_brain::prompt::build(
            &persona,
            &[],
            &[],
            &query.text,
            &coach_brain::prompt::PromptConfig::default(),
            &count,
        ));
        for (i, &(passages, passage_tokens)) in budgets.iter().enumerate() {
            let prompt_config = coach_brain::prompt::PromptConfig {
                passage_tokens,
                max_passages: passages,
                ..coach_brain::prompt::PromptConfig::default()
            };
            let built = coach_brain::prompt::build(
                &persona,
                &found.passages,
                &[],
                &query.text,
                &prompt_config,
                &count,
            );
            if built
                .citations
                .iter()
                .any(|c| qrels[&query.id].contains_key(&c.title))
            {
                grounded[i] += 1;
            }
            tokens[i] += length(&built).saturating_sub(bare);
        }
    }
    let n = queries.len().max(1);
    println!();
    println!("grounding: a relevant document among the passages placed in the prompt (hybrid)");
    println!("passages  budget  grounded  passage tokens");
    for (i, &(passages, budget)) in budgets.iter().enumerate() {
        let mark = if (passages, budget) == configured {
            "  (configured)"
        } else {
            ""
        };
        println!(
            "{passages:>8}  {budget:>6}  {:>8.4}  {:>14.0}{mark}",
            grounded[i] as f64 / n as f64,
            tokens[i] as f64 / n as f64,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndcg_and_recall_match_hand_computed_values() {
        let relevant: HashMap<String, u32> = [("a".to_string(), 1), ("b".to_string(), 1)].into();
        let ranked: Vec<String> = ["x", "a", "b"].iter().map(|s| s.to_string()).collect();
        let ideal = 1.0 + 1.0 / 3f64.log2();
        let got = 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!((ndcg(&ranked, &relevant, 10) - got / ideal).abs() < 1e-12);
        assert!((recall(&ranked, &relevant, 2) - 0.5).abs() < 1e-12);
        assert_eq!(ndcg(&[], &relevant, 10), 0.0);
    }
}
