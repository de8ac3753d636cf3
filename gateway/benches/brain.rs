//! The brain's benchmark, each figure beside its raw baseline measured in the same run:
//! - `POST /v1/chat` on a real HTTP server (SmolLM2-135M, the persona prefix cached): time to
//!   first token and to a full answer, against raw llama-cpp-2 prefill of the same uncached
//!   token counts (the gateway's overhead) and raw greedy decoding (tokens/s ratio);
//! - embeddings/s of the gateway's embedder against raw llama.cpp batches of the same texts;
//! - vector search (qdrant-edge) on synthetic vectors across 1,000 tenants: p50/p99 and
//!   recall@10 against exact search (`BENCH_VECTORS=100000,1000000` for the 1M run);
//! - `POST /v1/search` end to end, query embedding included.

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coach_brain::Tenant;
use coach_brain::keyword;
use coach_brain::vectors::edge::EdgeStore;
use coach_brain::vectors::{ChunkPayload, ChunkPoint, VectorStore};
use coach_gateway::config::{Config, RateLimitConfig};
use futures::StreamExt;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use serde_json::{Value, json};
use support::{machine, register, serve, sqlite_state, write_section};

const PASSWORD: &str = "violet-quarry-Tundra-88";

const QUESTIONS: &[&str] = &[
    "How do I start the gateway?",
    "Which databases does the gateway support?",
    "How are documents ingested?",
    "What does make test do?",
    "How does the coach cite its sources?",
    "How is a tenant's knowledge kept apart from other tenants?",
    "What happens when the coach does not know the answer?",
    "How do I upload a PDF?",
    "Which models does make models download?",
    "How does a human take over a conversation?",
    "How are API keys rotated?",
    "What rate limits apply to logins?",
    "How does the outbox deliver messages?",
    "Where are the vectors stored?",
    "How can I use Ollama instead of llama.cpp?",
    "What is the passage budget of a prompt?",
    "How do I run the retrieval evaluation?",
    "How are webhooks deduplicated?",
    "What does the responder do?",
    "How do I configure PostgreSQL?",
];

fn pct(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// One answer through `POST /v1/chat`.
struct ChatRun {
    first_token: Duration,
    total: Duration,
    prompt_tokens: usize,
    cached_tokens: usize,
    completion_tokens: usize,
}

async fn chat(client: &reqwest::Client, base: &str, token: &str, question: &str) -> ChatRun {
    let start = Instant::now();
    let resp = client
        .post(format!("{base}/v1/chat"))
        .bearer_auth(token)
        .json(&json!({ "question": question }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{question}");
    let mut stream = resp.bytes_stream();
    let mut buffer = String::new();
    let mut first_token = None;
    let mut usage = Value::Null;
    while let Some(bytes) = stream.next().await {
        buffer.push_str(&String::from_utf8_lossy(&bytes.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let event = frame
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .map(str::trim);
            let data = frame
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .map(str::trim);
            match event {
                Some("token") if first_token.is_none() => first_token = Some(start.elapsed()),
                Some("done") => {
                    usage = serde_json::from_str::<Value>(data.unwrap()).unwrap()["usage"].clone();
                }
                Some("error") => panic!("{question}: {frame}"),
                _ => {}
            }
        }
    }
    let n = |k: &str| {
        usage[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{question}: no usage")) as usize
    };
    ChatRun {
        first_token: first_token.unwrap_or_else(|| panic!("{question}: no token")),
        total: start.elapsed(),
        prompt_tokens: n("prompt_tokens"),
        cached_tokens: n("cached_tokens"),
        completion_tokens: n("completion_tokens"),
    }
}

/// Raw llama-cpp-2 on the generation model, with the gateway's context settings.
struct RawGenerator {
    model: LlamaModel,
    threads: i32,
    tokens: Vec<LlamaToken>,
}

impl RawGenerator {
    fn load(path: &std::path::Path, threads: u32, text: &str) -> Self {
        let backend = coach_brain::llama::backend().unwrap();
        let model =
            LlamaModel::load_from_file(backend, path, &LlamaModelParams::default()).unwrap();
        let tokens = model.vocab().tokenize(text.as_bytes(), false, false);
        Self {
            model,
            threads: threads as i32,
            tokens,
        }
    }

    /// Evaluates `cached` tokens untimed, then times `uncached` more tokens up to the first
    /// sampled token; then decodes `decode` tokens greedily. Returns (prefill, decode tokens/s).
    fn run(&self, cached: usize, uncached: usize, decode: usize) -> (Duration, f64) {
        let backend = coach_brain::llama::backend().unwrap();
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(2048))
            .with_n_batch(512)
            .with_n_ubatch(512)
            .with_n_threads(self.threads)
            .with_n_threads_batch(self.threads);
        let mut ctx = self.model.new_context(backend, params).unwrap();
        let mut batch = LlamaBatch::new(512, 1);
        let text = self.tokens.iter().cycle();
        let prompt: Vec<LlamaToken> = text.take(cached + uncached).copied().collect();
        let mut eval = |ctx: &mut llama_cpp_2::context::LlamaContext, from: usize, to: usize| {
            let mut pos = from;
            while pos < to {
                let end = (pos + 512).min(to);
                batch.clear();
                for (i, &t) in prompt[pos..end].iter().enumerate() {
                    let at = pos + i;
                    batch.add(t, at as i32, &[0], at + 1 == to).unwrap();
                }
                ctx.decode(&mut batch).unwrap();
                pos = end;
            }
            batch.n_tokens() - 1
        };
        if cached > 0 {
            eval(&mut ctx, 0, cached);
        }
        let start = Instant::now();
        let last = eval(&mut ctx, cached, cached + uncached);
        let mut sampler = LlamaSampler::greedy();
        let mut token = sampler.sample(&ctx, last);
        let prefill = start.elapsed();
        let mut batch = LlamaBatch::new(1, 1);
        let start = Instant::now();
        for i in 0..decode {
            batch.clear();
            batch
                .add(token, (cached + uncached + i) as i32, &[0], true)
                .unwrap();
            ctx.decode(&mut batch).unwrap();
            token = sampler.sample(&ctx, 0);
        }
        let rate = decode as f64 / start.elapsed().as_secs_f64();
        (prefill, rate)
    }
}

/// Raw llama.cpp embeddings: texts packed into passes as the gateway's embedder packs them
/// (1,024 tokens or 32 sequences per pass), mean pooling.
fn raw_embeddings(path: &std::path::Path, threads: u32, texts: &[String]) -> f64 {
    let backend = coach_brain::llama::backend().unwrap();
    let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default()).unwrap();
    let params = LlamaContextParams::default()
        .with_embeddings(true)
        .with_pooling_type(llama_cpp_2::context::params::LlamaPoolingType::Mean)
        .with_n_ctx(NonZeroU32::new(1024))
        .with_n_batch(1024)
        .with_n_ubatch(1024)
        .with_n_seq_max(32)
        .with_kv_unified(true)
        .with_n_threads(threads as i32)
        .with_n_threads_batch(threads as i32);
    let mut ctx = model.new_context(backend, params).unwrap();
    let inputs: Vec<Vec<LlamaToken>> = texts
        .iter()
        .map(|t| model.vocab().tokenize(t.as_bytes(), true, false))
        .collect();
    let mut batch = LlamaBatch::new(1024, 1);
    let start = Instant::now();
    let mut done = 0;
    let mut i = 0;
    while i < inputs.len() {
        batch.clear();
        ctx.clear_kv_cache();
        let (mut used, mut seqs) = (0, 0);
        while i < inputs.len() && seqs < 32 && used + inputs[i].len() <= 1024 {
            batch.add_sequence(&inputs[i], seqs, true).unwrap();
            used += inputs[i].len();
            seqs += 1;
            i += 1;
        }
        ctx.decode(&mut batch).unwrap();
        for s in 0..seqs {
            assert_eq!(ctx.embeddings_seq_ith(s).unwrap().len(), 384);
            done += 1;
        }
    }
    done as f64 / start.elapsed().as_secs_f64()
}

fn random_unit(rng: &mut fastrand::Rng, dim: usize) -> Vec<f32> {
    let v: Vec<f32> = (0..dim).map(|_| rng.f32() * 2.0 - 1.0).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

/// Vector search at `total` points over 1,000 tenants: (upsert s, index s, p50 ms, p99 ms,
/// recall@10, major page faults while searching).
async fn vector_search(total: usize) -> (f64, f64, f64, f64, f64, u64) {
    const TENANTS: usize = 1000;
    const DIM: usize = 384;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EdgeStore::open(dir.path()).unwrap());
    store.ensure("synthetic", DIM).await.unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let per_tenant = total / TENANTS;
    let tenants: Vec<uuid::Uuid> = (0..TENANTS).map(|_| uuid::Uuid::new_v4()).collect();
    let mut vectors: Vec<Vec<(uuid::Uuid, Vec<f32>)>> = vec![Vec::new(); TENANTS];
    let sparse = keyword::document_vector("synthetic");
    let start = Instant::now();
    for (t, tenant) in tenants.iter().enumerate() {
        let points: Vec<ChunkPoint> = (0..per_tenant)
            .map(|n| {
                let id = uuid::Uuid::new_v4();
                let dense = random_unit(&mut rng, DIM);
                vectors[t].push((id, dense.clone()));
                ChunkPoint {
                    id,
                    dense,
                    sparse: sparse.clone(),
                    payload: ChunkPayload {
                        document_id: uuid::Uuid::nil(),
                        version: 1,
                        ordinal: n as u32,
                        title: "synthetic".into(),
                        heading: None,
                        page: None,
                        text: String::new(),
                    },
                }
            })
            .collect();
        store.upsert(Tenant::scoped(*tenant), points).await.unwrap();
        if t % 100 == 99 {
            eprintln!("vectors: {} of {total} upserted", (t + 1) * per_tenant);
        }
    }
    let upsert = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let optimizer = store.clone();
    tokio::task::spawn_blocking(move || optimizer.optimize())
        .await
        .unwrap()
        .unwrap();
    let index = start.elapsed().as_secs_f64();
    let faults_before = major_faults();
    let (mut latencies, mut found) = (Vec::new(), 0usize);
    let queries = 2000;
    for _ in 0..queries {
        let t = rng.usize(..TENANTS);
        let query = random_unit(&mut rng, DIM);
        let start = Instant::now();
        let hits = store
            .search_dense(Tenant::scoped(tenants[t]), query.clone(), 10)
            .await
            .unwrap();
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
        let mut exact: Vec<(f32, uuid::Uuid)> = vectors[t]
            .iter()
            .map(|(id, v)| (v.iter().zip(&query).map(|(a, b)| a * b).sum(), *id))
            .collect();
        exact.sort_by(|a, b| b.0.total_cmp(&a.0));
        let truth: std::collections::HashSet<uuid::Uuid> =
            exact.iter().take(10).map(|(_, id)| *id).collect();
        found += hits.iter().filter(|h| truth.contains(&h.id)).count();
    }
    let faults = major_faults().saturating_sub(faults_before);
    let latencies = sorted(latencies);
    (
        upsert,
        index,
        pct(&latencies, 0.5),
        pct(&latencies, 0.99),
        found as f64 / (queries * 10) as f64,
        faults,
    )
}

/// Page faults of this process that had to read from disk (Linux `/proc/self/stat`, field 12;
/// 0 elsewhere).
fn major_faults() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(9)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(run(dir.path()));
    // The server task holds the vector store: stop it before its directory goes.
    drop(runtime);
}

async fn run(dir: &std::path::Path) {
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        rate_limits: RateLimitConfig {
            auth_per_minute: 1_000_000,
            tenant_per_second: 1_000_000,
            tenant_burst: 1_000_000,
        },
        ..Config::default()
    };
    config.brain.models_dir = std::env::var_os("COACH_MODELS_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"),
        std::path::PathBuf::from,
    );
    let brain_config = config.brain.clone();
    let knowledge = coach_gateway::knowledge::Knowledge::load(&config).await;
    let brain = knowledge
        .get()
        .unwrap_or_else(|e| panic!("the brain did not load: {e:?} (run `make models`)"))
        .clone();
    let state = sqlite_state(dir, config).await.with_knowledge(knowledge);
    let base = serve(state.clone()).await;
    let client = reqwest::Client::new();
    let token = register(&client, &base, "bench@example.com", PASSWORD).await;

    // The knowledge: the project's own documentation.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut corpus = String::new();
    for doc in ["README.md", "docs/ARCHITECTURE.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        corpus.push_str(&text);
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::text(text)
                .file_name(doc.rsplit('/').next().unwrap().to_owned())
                .mime_str("text/markdown")
                .unwrap(),
        );
        let resp = client
            .post(format!("{base}/v1/documents"))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
    }
    while coach_gateway::knowledge::ingest::poll_once(&state)
        .await
        .unwrap()
        > 0
    {}

    // Answers through the gateway.
    let threads = brain_config.threads;
    // The persona prefix enters the cache with a question that is not measured (asking a
    // measured one twice would find its whole prompt cached).
    chat(&client, &base, &token, "What is this gateway for?").await;
    let mut runs = Vec::new();
    for q in QUESTIONS {
        let run = chat(&client, &base, &token, q).await;
        eprintln!(
            "chat: first token {:.0} ms, answer {:.0} ms, {} + {} cached prompt tokens, {} generated",
            run.first_token.as_secs_f64() * 1000.0,
            run.total.as_secs_f64() * 1000.0,
            run.prompt_tokens,
            run.cached_tokens,
            run.completion_tokens
        );
        runs.push(run);
    }
    // Questions the coach did not know are answered without the model (a fixed reply and a
    // handoff): they say nothing about generation, so they are counted, not timed.
    let asked = runs.len();
    runs.retain(|r| r.prompt_tokens > 0 && r.completion_tokens > 0);
    let declined = asked - runs.len();
    assert!(!runs.is_empty(), "the coach answered none of the questions");

    // The same token counts through raw llama-cpp-2, in the same process.
    let generator_path = brain_config.generation_path();
    let raw = RawGenerator::load(&generator_path, threads, &corpus);
    let mut raw_prefill = Vec::new();
    let mut raw_decode = Vec::new();
    for run in &runs {
        let (prefill, rate) = raw.run(run.cached_tokens, run.prompt_tokens, 128);
        raw_prefill.push(prefill.as_secs_f64() * 1000.0);
        raw_decode.push(rate);
    }
    let ttft: Vec<f64> = runs
        .iter()
        .map(|r| r.first_token.as_secs_f64() * 1000.0)
        .collect();
    let overhead: Vec<f64> = ttft.iter().zip(&raw_prefill).map(|(t, r)| t - r).collect();
    // What raw llama-cpp-2 needs for the same answer: its prefill, then as many tokens as the
    // gateway generated at its decoding rate.
    let raw_answer = sorted(
        runs.iter()
            .zip(raw_prefill.iter().zip(&raw_decode))
            .map(|(r, (prefill, rate))| prefill + r.completion_tokens as f64 / rate * 1000.0)
            .collect(),
    );
    let overhead_share: f64 =
        overhead.iter().sum::<f64>() / raw_prefill.iter().sum::<f64>() * 100.0;
    let gateway_decode: Vec<f64> = runs
        .iter()
        .filter(|r| r.completion_tokens > 8)
        .map(|r| {
            (r.completion_tokens - 1) as f64 / (r.total - r.first_token).as_secs_f64().max(1e-6)
        })
        .collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let decode_ratio = mean(&gateway_decode) / mean(&raw_decode);
    let totals = sorted(
        runs.iter()
            .map(|r| r.total.as_secs_f64() * 1000.0)
            .collect(),
    );
    let (ttft_s, overhead_s, raw_s) = (sorted(ttft), sorted(overhead), sorted(raw_prefill));
    let uncached = mean(
        &runs
            .iter()
            .map(|r| r.prompt_tokens as f64)
            .collect::<Vec<_>>(),
    );
    let cached = mean(
        &runs
            .iter()
            .map(|r| r.cached_tokens as f64)
            .collect::<Vec<_>>(),
    );
    let generated = mean(
        &runs
            .iter()
            .map(|r| r.completion_tokens as f64)
            .collect::<Vec<_>>(),
    );

    // Embeddings: lines of the docs, about sentence length.
    let sentences: Vec<String> = corpus
        .lines()
        .map(str::trim)
        .filter(|l| l.len() > 40)
        .map(|l| l.chars().take(200).collect())
        .cycle()
        .take(1024)
        .collect();
    let start = Instant::now();
    for batch in sentences.chunks(64) {
        brain.embedder.embed(batch.to_vec()).await.unwrap();
    }
    let gateway_embeds = sentences.len() as f64 / start.elapsed().as_secs_f64();
    let embed_path = brain_config.embedding_path();
    let raw_embeds = tokio::task::spawn_blocking({
        let sentences = sentences.clone();
        move || raw_embeddings(&embed_path, threads, &sentences)
    })
    .await
    .unwrap();
    eprintln!("embeddings/s: gateway {gateway_embeds:.1}, raw {raw_embeds:.1}");

    // POST /v1/search end to end.
    let mut search = Vec::new();
    for i in 0..300 {
        let q = QUESTIONS[i % QUESTIONS.len()];
        let start = Instant::now();
        let resp = client
            .post(format!("{base}/v1/search"))
            .bearer_auth(&token)
            .json(&json!({ "query": q }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
        search.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let search = sorted(search);

    let sizes: Vec<usize> = std::env::var("BENCH_VECTORS")
        .unwrap_or_else(|_| "100000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let mut vector_rows = String::new();
    for &n in &sizes {
        let (upsert, index, p50, p99, recall, faults) = vector_search(n).await;
        eprintln!(
            "vectors {n}: p50 {p50:.2} ms p99 {p99:.2} ms recall@10 {recall:.4}, {faults} major faults"
        );
        vector_rows.push_str(&format!(
            "| {n} | {} | {upsert:.0} | {index:.0} | {p50:.2} | {p99:.2} | {recall:.4} | {faults} |\n",
            n / 1000
        ));
    }

    let md = format!(
        "## Brain (`make bench`)\n\n{date} on {machine}; release build; {threads} inference threads; SmolLM2-135M-Instruct \
         Q4_1 and all-MiniLM-L6-v2 f16 from `make models`; the gateway served on loopback in the benchmark process \
         with its client beside it. Knowledge: README.md and docs/ARCHITECTURE.md. Prompt: the default passage \
         budget (3 passages, 300 tokens) after the tenant's persona, whose KV cache is reused.\n\n\
         ### Answers (`POST /v1/chat`, concurrency 1, {n} answered of {asked} questions; {declined} got the \
         \"I don't know\" reply, which skips the model)\n\n\
         | measurement | p50 ms | p95 ms |\n|---|---:|---:|\n\
         | time to first token through `POST /v1/chat` | {t50:.0} | {t95:.0} |\n\
         | raw llama-cpp-2 prefill of the same uncached tokens | {r50:.0} | {r95:.0} |\n\
         | gateway overhead (difference per question) | {o50:.0} | {o95:.0} |\n\
         | full answer (up to 128 tokens) | {a50:.0} | {a95:.0} |\n\
         | raw llama-cpp-2: the same prefill and generated tokens | {ra50:.0} | {ra95:.0} |\n\n\
         Mean prompt: {uncached:.0} tokens evaluated after {cached:.0} cached; {generated:.0} tokens generated. \
         Gateway overhead: **{overhead_share:.1}%** of raw prefill (target ≤ 10%). Decoding: gateway {gd:.1} \
         tokens/s vs raw {rd:.1} tokens/s, ratio **{decode_ratio:.2}** (target ≥ 0.9). Full answer p95: \
         gateway / raw llama-cpp-2 = {full_ratio:.2}.\n\n\
         ### Embeddings\n\n1,024 lines of the docs (≤ 200 characters) in calls of 64: gateway {gateway_embeds:.1}/s, \
         raw llama.cpp {raw_embeds:.1}/s, ratio **{embed_ratio:.2}** (target ≥ 0.9).\n\n\
         ### Search\n\n`POST /v1/search` (hybrid, query embedding included), 300 sequential queries: p50 {s50:.2} ms, \
         p99 **{s99:.2} ms** (target ≤ 25 ms).\n\n\
         qdrant-edge, synthetic 384-dimension unit vectors spread over 1,000 tenants, 2,000 filtered top-10 \
         queries, recall against exact search in the tenant:\n\n\
         | points | per tenant | upsert s | index build s | p50 ms | p99 ms | recall@10 | page faults from disk while searching |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n\
         {vector_rows}\n",
        date = chrono::Utc::now().format("%Y-%m-%d"),
        machine = machine(),
        n = runs.len(),
        t50 = pct(&ttft_s, 0.5),
        t95 = pct(&ttft_s, 0.95),
        r50 = pct(&raw_s, 0.5),
        r95 = pct(&raw_s, 0.95),
        o50 = pct(&overhead_s, 0.5),
        o95 = pct(&overhead_s, 0.95),
        a50 = pct(&totals, 0.5),
        a95 = pct(&totals, 0.95),
        ra50 = pct(&raw_answer, 0.5),
        ra95 = pct(&raw_answer, 0.95),
        full_ratio = pct(&totals, 0.95) / pct(&raw_answer, 0.95),
        gd = mean(&gateway_decode),
        rd = mean(&raw_decode),
        embed_ratio = gateway_embeds / raw_embeds,
        s50 = pct(&search, 0.5),
        s99 = pct(&search, 0.99),
    );
    print!("{md}");
    write_section("brain", &md);
}
