//! Ingest benchmark: normalized inbound text events -> durably stored with dedup, on SQLite
//! (batched and unbatched group commit) and PostgreSQL, at concurrency 1, 16 and 256; then the
//! same events replayed (nothing new may be stored). Writes its section of docs/BENCHMARKS.md.

#![allow(clippy::unwrap_used, missing_docs)]

mod support;
use support::{machine, write_section};

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use coach_connector_api::{
    ChannelId, ChannelIdentity, ChannelKind, Content, DedupKey, InboundEvent, InboundMessage,
};
use coach_gateway::config::Synchronous;
use coach_gateway::store::{
    NewChannel, PostgresStore, PostgresStoreOptions, SqliteStore, SqliteStoreOptions, Store,
    migrate_postgres,
};
use coach_gateway::tenancy::{SystemScope, TenantScope};

struct Row {
    backend: String,
    concurrency: usize,
    events: usize,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    stored: usize,
}

fn event(run: &str, i: usize) -> InboundEvent {
    InboundEvent::Message(InboundMessage {
        dedup_key: DedupKey(format!("{run}-{i}")),
        provider_message_id: format!("{run}-{i}"),
        from: ChannelIdentity::id(format!("contact-{}", i % 1000)),
        timestamp: Utc::now(),
        content: Content::Text {
            body: format!("How do I keep my habit on day {i}?"),
        },
        reply_to: None,
    })
}

async fn setup(store: &dyn Store) -> (TenantScope, ChannelId) {
    let sys = SystemScope::new("bench");
    let tenant = store.create_tenant(&sys, "bench").await.unwrap();
    let scope = sys.for_tenant(tenant.id);
    let channel = store
        .create_channel(
            &scope,
            NewChannel {
                kind: ChannelKind::WhatsApp,
                name: "b".into(),
                config: serde_json::json!({}),
            },
        )
        .await
        .unwrap();
    (scope, channel.id)
}

/// Ingest `events` one event per call (one webhook, one message) from `concurrency` tasks.
async fn run(
    store: Arc<dyn Store>,
    label: &str,
    concurrency: usize,
    events: Vec<InboundEvent>,
    scope: &TenantScope,
    channel: ChannelId,
) -> Row {
    let total = events.len();
    let per_task = total.div_ceil(concurrency);
    let mut chunks: Vec<Vec<InboundEvent>> = Vec::new();
    let mut it = events.into_iter();
    loop {
        let chunk: Vec<_> = it.by_ref().take(per_task).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    let start = Instant::now();
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let (store, scope) = (store.clone(), scope.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(chunk.len());
                let mut stored = 0;
                for e in chunk {
                    let t = Instant::now();
                    stored += store
                        .ingest(&scope, channel, vec![e])
                        .await
                        .unwrap()
                        .stored
                        .len();
                    latencies.push(t.elapsed().as_micros() as u64);
                }
                (latencies, stored)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    let mut stored = 0;
    for t in tasks {
        let (l, s) = t.await.unwrap();
        latencies.extend(l);
        stored += s;
    }
    latencies.sort_unstable();
    let quantile =
        |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    let elapsed = start.elapsed();
    Row {
        backend: label.into(),
        concurrency,
        events: total,
        per_sec: total as f64 / elapsed.as_secs_f64(),
        p50_ms: quantile(0.5),
        p99_ms: quantile(0.99),
        stored,
    }
}

async fn suite(
    store: Arc<dyn Store>,
    label: &str,
    events: usize,
    rows: &mut Vec<Row>,
    replays: &mut Vec<Row>,
) {
    for concurrency in [1, 16, 256] {
        let (scope, channel) = setup(&*store).await;
        let run_id = format!("{label}-{concurrency}");
        let batch: Vec<_> = (0..events).map(|i| event(&run_id, i)).collect();
        let row = run(
            store.clone(),
            label,
            concurrency,
            batch.clone(),
            &scope,
            channel,
        )
        .await;
        assert_eq!(row.stored, events, "every event stored once");
        eprintln!(
            "{label:>22} c={concurrency:<3} {:>9.0} ev/s p50 {:.2} ms p99 {:.2} ms",
            row.per_sec, row.p50_ms, row.p99_ms
        );
        rows.push(row);
        if concurrency == 16 {
            let replay = run(store.clone(), label, concurrency, batch, &scope, channel).await;
            assert_eq!(replay.stored, 0, "a replay stores nothing");
            replays.push(replay);
        }
    }
}

#[tokio::main]
async fn main() {
    let events: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let pg_events = events / 4;
    let mut rows = Vec::new();
    let mut replays = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    for (label, max_batch) in [("SQLite batched", 256), ("SQLite unbatched", 1)] {
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(SqliteStoreOptions {
                path: dir.path().join(format!("{max_batch}.db")),
                synchronous: Synchronous::Normal,
                max_batch,
                readers: 4,
            })
            .await
            .unwrap(),
        );
        suite(store.clone(), label, events, &mut rows, &mut replays).await;
        store.close().await;
    }
    let schema = coach_e2e::pg::fresh_schema().await.unwrap();
    migrate_postgres(schema.owner.clone()).await.unwrap();
    let pg: Arc<dyn Store> = Arc::new(PostgresStore::connect_lazy(PostgresStoreOptions {
        connect: schema.app.clone(),
        max_connections: 32,
    }));
    suite(pg.clone(), "PostgreSQL", pg_events, &mut rows, &mut replays).await;
    pg.close().await;

    let rate = |label: &str, c: usize| {
        rows.iter()
            .find(|r| r.backend == label && r.concurrency == c)
            .map_or(0.0, |r| r.per_sec)
    };
    let mut md = String::new();
    md.push_str(&format!(
        "## Ingest (`make bench`)\n\n{} on {}; release build; SQLite in WAL mode with `synchronous=NORMAL` \
         (durable against a process crash), PostgreSQL 15 on loopback with its defaults (`synchronous_commit=on`). \
         One event per `ingest` call (a webhook carrying one message), 1,000 contacts, dedup key checked and \
         an `answer` job written in the same transaction.\n\n",
        Utc::now().format("%Y-%m-%d"),
        machine()
    ));
    md.push_str("| backend | concurrency | events | events/s | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|\n");
    for r in &rows {
        md.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} |\n",
            r.backend, r.concurrency, r.events, r.per_sec, r.p50_ms, r.p99_ms
        ));
    }
    md.push_str(
        "\nBatching (group commit by the single SQLite writer), measured in the same run:\n\n",
    );
    for c in [1, 16, 256] {
        md.push_str(&format!(
            "- concurrency {c}: batched / unbatched = {:.2}x\n",
            rate("SQLite batched", c) / rate("SQLite unbatched", c).max(1e-9)
        ));
    }
    md.push_str("\nReplay (the same events ingested again, concurrency 16): every event reported as a duplicate, nothing stored.\n\n");
    md.push_str("| backend | events | duplicates/s | stored |\n|---|---:|---:|---:|\n");
    for r in &replays {
        md.push_str(&format!(
            "| {} | {} | {:.0} | {} |\n",
            r.backend, r.events, r.per_sec, r.stored
        ));
    }
    md.push('\n');
    print!("{md}");
    write_section("ingest", &md);
}
