//! `gateway eval retrieval`: retrieval quality on a BEIR-format benchmark (corpus, queries,
//! qrels), through the same chunker, embedder, vector store and fusion the coach uses, printing
//! nDCG@10 and recall@100 for each mode.

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

/// Runs the evaluation and prints one line per mode.
pub async fn retrieval(
    config: &Config,
    corpus: &Path,
    queries: &Path,
    qrels_path: &Path,
    modes: &[Mode],
) -> anyhow::Result<()> {
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
    let dir = tempfile::tempdir()?;
    let store = Arc::new(coach_brain::vectors::edge::EdgeStore::open(dir.path())?);
    store
        .ensure(embedder.model_id(), embedder.dimension())
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
            let section = Section {
                heading: None,
                page: None,
                text: format!("{}\n\n{}", doc.title, doc.text),
            };
            let count = |t: &str| {
                embedder
                    .count_tokens(t)
                    .unwrap_or_else(|_| t.len().div_ceil(3))
            };
            for c in chunk(std::slice::from_ref(&section), &chunk_config, &count) {
                pieces.push((doc.id.clone(), c));
            }
        }
        let dense = if needs_dense {
            embedder
                .embed(pieces.iter().map(|(_, c)| c.text.clone()).collect())
                .await?
        } else {
            vec![vec![0.0; embedder.dimension()]; pieces.len()]
        };
        chunks_total += pieces.len();
        let points = pieces
            .into_iter()
            .zip(dense)
            .map(|((doc_id, c), dense)| ChunkPoint {
                id: uuid::Uuid::new_v4(),
                dense,
                sparse: keyword::document_vector(&c.text),
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

    let retriever = Retriever::new(embedder, store, RetrieveConfig::default());
    println!("mode     nDCG@10  recall@100  queries");
    for &mode in modes {
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
        println!(
            "{:<8} {:>7.4}  {:>10.4}  {}",
            format!("{mode:?}").to_lowercase(),
            ndcg_sum / n,
            recall_sum / n,
            queries.len()
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
