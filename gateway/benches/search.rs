//! Conversation search benchmark: 50,000 messages of one tenant (5,000 contacts, 10 messages
//! each, words drawn from a 2,000-word vocabulary), a rare phrase said in one of them and, word
//! for word, by another tenant's contact; `GET /v1/conversations?q=` as the store runs it
//! (first page of 50), on SQLite (FTS5) and PostgreSQL (`tsvector` + GIN). Writes its section of
//! docs/BENCHMARKS.md.

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
    ConversationFilter, NewChannel, Page, PostgresStore, PostgresStoreOptions, SearchText,
    SqliteStore, SqliteStoreOptions, Store, migrate_postgres,
};
use coach_gateway::tenancy::{SystemScope, TenantScope};

const PHRASE: &str = "tangerine lighthouse keeper";

/// A deterministic word from a 2,000-word vocabulary (`w0`..`w1999`, with a few common
/// coaching words more frequent).
fn word(seed: &mut u64) -> String {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let n = (*seed >> 33) % 2_100;
    match n {
        2_000..=2_049 => "habit".into(),
        2_050..=2_099 => "sleep".into(),
        _ => format!("w{n}"),
    }
}

fn message(key: String, from: String, body: String) -> InboundEvent {
    InboundEvent::Message(InboundMessage {
        dedup_key: DedupKey(key.clone()),
        provider_message_id: key,
        from: ChannelIdentity::id(from),
        timestamp: Utc::now(),
        content: Content::Text { body },
        reply_to: None,
    })
}

async fn tenant(store: &dyn Store, name: &str) -> (TenantScope, ChannelId) {
    let sys = SystemScope::new("bench");
    let tenant = store.create_tenant(&sys, name).await.unwrap();
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

struct Row {
    backend: &'static str,
    query: &'static str,
    found: usize,
    p50_ms: f64,
    p95_ms: f64,
}

async fn suite(store: Arc<dyn Store>, backend: &'static str, messages: usize, rows: &mut Vec<Row>) {
    let (a, channel_a) = tenant(&*store, "searched").await;
    let (b, channel_b) = tenant(&*store, "neighbour").await;
    let started = Instant::now();
    let mut seed = 7;
    let planted = messages / 2;
    let mut batch = Vec::new();
    for i in 0..messages {
        let body = if i == planted {
            format!("yesterday the {PHRASE} told me about my habit")
        } else {
            (0..12)
                .map(|_| word(&mut seed))
                .collect::<Vec<_>>()
                .join(" ")
        };
        batch.push(message(format!("m{i}"), format!("c{}", i % 5_000), body));
        if batch.len() == 500 {
            store
                .ingest(&a, channel_a, std::mem::take(&mut batch))
                .await
                .unwrap();
        }
    }
    if !batch.is_empty() {
        store.ingest(&a, channel_a, batch).await.unwrap();
    }
    let other = format!("the {PHRASE} again");
    store
        .ingest(
            &b,
            channel_b,
            vec![message("o1".into(), "c0".into(), other)],
        )
        .await
        .unwrap();
    eprintln!(
        "{backend}: {messages} messages stored in {:.1?}",
        started.elapsed()
    );

    for (query, text) in [
        ("rare phrase (1 message)", PHRASE),
        ("common word (~2% of messages)", "habit"),
        ("two common words", "habit sleep"),
        ("a contact's number", "c4321"),
    ] {
        let filter = ConversationFilter {
            search: SearchText::parse(text),
            ..ConversationFilter::default()
        };
        let page = Page {
            before: None,
            limit: 50,
        };
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..200 {
            let t = Instant::now();
            let got = store.conversations(&a, page, filter.clone()).await.unwrap();
            times.push(t.elapsed().as_secs_f64() * 1e3);
            found = got.len();
        }
        if text == PHRASE {
            assert_eq!(
                found, 1,
                "the planted phrase is in one conversation of this tenant"
            );
        }
        times.sort_by(f64::total_cmp);
        let row = Row {
            backend,
            query,
            found,
            p50_ms: times[times.len() / 2],
            p95_ms: times[times.len() * 95 / 100],
        };
        eprintln!(
            "{backend:>10} {query:<32} found {found:>3} p50 {:.2} ms p95 {:.2} ms",
            row.p50_ms, row.p95_ms
        );
        rows.push(row);
    }
}

#[tokio::main]
async fn main() {
    let messages: usize = std::env::var("BENCH_SEARCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let mut rows = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn Store> = Arc::new(
        SqliteStore::open(SqliteStoreOptions {
            path: dir.path().join("search.db"),
            synchronous: Synchronous::Normal,
            max_batch: 256,
            readers: 4,
        })
        .await
        .unwrap(),
    );
    suite(sqlite.clone(), "SQLite", messages, &mut rows).await;
    sqlite.close().await;
    let schema = coach_e2e::pg::fresh_schema().await.unwrap();
    migrate_postgres(schema.owner.clone()).await.unwrap();
    let pg: Arc<dyn Store> = Arc::new(PostgresStore::connect_lazy(PostgresStoreOptions {
        connect: schema.app.clone(),
        max_connections: 8,
    }));
    suite(pg.clone(), "PostgreSQL", messages, &mut rows).await;
    pg.close().await;

    let mut md = format!(
        "## Conversation search (`make bench`)\n\n{} on {}; release build; one tenant with {messages} \
         messages (5,000 contacts, 12 words each from a 2,000-word vocabulary), a rare phrase said in \
         one of them and by another tenant's contact; the first page (50) of \
         `GET /v1/conversations?q=` as the store runs it, 200 times per query, one at a time. \
         SQLite: FTS5 (`message_search`); PostgreSQL 15: a generated `tsvector` with a GIN index. \
         Target: the rare phrase's conversation in < 100 ms at p95 on both.\n\n\
         | backend | search | conversations found | p50 ms | p95 ms |\n|---|---|---:|---:|---:|\n",
        Utc::now().format("%Y-%m-%d"),
        machine()
    );
    for r in &rows {
        md.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.2} |\n",
            r.backend, r.query, r.found, r.p50_ms, r.p95_ms
        ));
    }
    md.push('\n');
    print!("{md}");
    write_section("search", &md);
}
