//! Inbox benchmark: one tenant with 10,000 conversations (one contact each, a message in each,
//! 3,000 resolved, 500 labelled `vip`), on SQLite and PostgreSQL, the gateway's router served on
//! loopback in this process. Measures the inbox list the console loads (`GET /v1/inbox?limit=100`,
//! its views and a search) over HTTP, then (SQLite) the console itself in headless Chromium:
//! from opening the Inbox to the first 100 rows on screen (`tests/browser/bench-inbox.mjs`,
//! skipped with a note when node or chromium is missing). Writes its section of
//! docs/BENCHMARKS.md.

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use coach_connector_api::{
    ChannelId, ChannelIdentity, Content, DedupKey, InboundEvent, InboundMessage,
};
use coach_gateway::config::{Config, RateLimitConfig};
use coach_gateway::store::conversations::Lifecycle;
use coach_gateway::store::{
    ConversationFilter, Page, PostgresStore, PostgresStoreOptions, Store, migrate_postgres,
};
use coach_gateway::tenancy::{SystemScope, TenantScope};
use serde_json::{Value, json};
use support::{machine, register, serve, sqlite_state, state_on, write_section};

const PASSWORD: &str = "violet-quarry-Tundra-88";
const CONVERSATIONS: usize = 10_000;
const RUNS: usize = 100;

fn config() -> Config {
    Config {
        rate_limits: RateLimitConfig {
            auth_per_minute: 1_000_000,
            tenant_per_second: 1_000_000,
            ..RateLimitConfig::default()
        },
        ..Config::default()
    }
}

fn message(i: usize, body: String) -> InboundEvent {
    InboundEvent::Message(InboundMessage {
        dedup_key: DedupKey(format!("m{i}")),
        provider_message_id: format!("m{i}"),
        from: ChannelIdentity {
            id: format!("visitor-{i}"),
            display_name: Some(format!("Person {i}")),
            username: None,
        },
        timestamp: Utc::now(),
        content: Content::Text { body },
        reply_to: None,
    })
}

/// The tenant of a registered owner, with a widget channel holding `CONVERSATIONS`
/// conversations.
async fn seed(store: &dyn Store, client: &reqwest::Client, base: &str, token: &str) {
    let me: Value = client
        .get(format!("{base}/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tenant = uuid::Uuid::parse_str(me["tenant_id"].as_str().unwrap()).unwrap();
    let scope: TenantScope =
        SystemScope::new("bench").for_tenant(coach_connector_api::TenantId(tenant));
    let channel: Value = client
        .post(format!("{base}/v1/channels"))
        .bearer_auth(token)
        .json(&json!({ "kind": "web_widget", "name": "Site", "config": {} }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let channel = ChannelId(uuid::Uuid::parse_str(channel["id"].as_str().unwrap()).unwrap());
    let started = Instant::now();
    let mut batch = Vec::new();
    for i in 0..CONVERSATIONS {
        let body = format!("Message {i}: how do I keep my evening routine when I travel?");
        batch.push(message(i, body));
        if batch.len() == 500 {
            store
                .ingest(&scope, channel, std::mem::take(&mut batch))
                .await
                .unwrap();
        }
    }
    if !batch.is_empty() {
        store.ingest(&scope, channel, batch).await.unwrap();
    }
    let mut before = None;
    let mut all = Vec::new();
    loop {
        let page = store
            .conversations(
                &scope,
                Page { before, limit: 500 },
                ConversationFilter::default(),
            )
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        before = Some((last.last_message_at, last.id.0));
        all.extend(page.into_iter().map(|c| c.id));
    }
    assert_eq!(all.len(), CONVERSATIONS);
    for (n, id) in all.iter().enumerate() {
        if n % 10 < 3 {
            store
                .set_lifecycle(&scope, *id, Lifecycle::Resolve)
                .await
                .unwrap();
        }
        if n % 20 == 0 {
            store
                .set_labels(&scope, *id, vec!["vip".into()])
                .await
                .unwrap();
        }
    }
    eprintln!(
        "{CONVERSATIONS} conversations seeded in {:.1?}",
        started.elapsed()
    );
}

struct Row {
    backend: &'static str,
    view: &'static str,
    rows: usize,
    p50: f64,
    p95: f64,
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

async fn lists(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    backend: &'static str,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for (view, query) in [
        ("all, newest first", ""),
        ("resolved", "&status=resolved"),
        ("label `vip`", "&label=vip"),
        ("unassigned", "&assignee=none"),
        ("search: a word in every message", "&q=routine"),
        ("search: one contact", "&q=visitor-4321"),
    ] {
        let url = format!("{base}/v1/inbox?limit=100{query}");
        let mut times = Vec::new();
        let mut count = 0;
        for _ in 0..RUNS {
            let start = Instant::now();
            let resp = client.get(&url).bearer_auth(token).send().await.unwrap();
            assert_eq!(resp.status(), 200, "{url}");
            let items: Vec<Value> = resp.json().await.unwrap();
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            count = items.len();
        }
        times.sort_by(f64::total_cmp);
        let row = Row {
            backend,
            view,
            rows: count,
            p50: pct(&times, 0.5),
            p95: pct(&times, 0.95),
        };
        eprintln!(
            "{backend:>10} {view:<34} {count:>3} rows p50 {:.2} ms p95 {:.2} ms",
            row.p50, row.p95
        );
        rows.push(row);
    }
    rows
}

/// The console in headless Chromium: opening the Inbox until its first 100 rows are drawn,
/// `runs` times; sorted milliseconds, or why it could not run.
fn browser(base: &str, email: &str, runs: usize) -> Result<Vec<f64>, String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser");
    if !dir.join("node_modules/playwright-core").exists() {
        let npm = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .map_err(|e| format!("npm: {e}"))?;
        if !npm.success() {
            return Err("npm ci failed in tests/browser".into());
        }
    }
    let out = std::process::Command::new("node")
        .arg("bench-inbox.mjs")
        .current_dir(&dir)
        .env("BASE", base)
        .env("EMAIL", email)
        .env("PASSWORD", PASSWORD)
        .env("RUNS", runs.to_string())
        .output()
        .map_err(|e| format!("node: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "bench-inbox.mjs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut times: Vec<f64> = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    times.sort_by(f64::total_cmp);
    Ok(times)
}

#[tokio::main]
async fn main() {
    let client = reqwest::Client::new();
    let mut rows = Vec::new();

    let dir = tempfile::tempdir().unwrap();
    let state = sqlite_state(dir.path(), config()).await;
    let store = state.store.clone();
    let base = serve(state).await;
    let email = "inbox-sqlite@example.com";
    let token = register(&client, &base, email, PASSWORD).await;
    seed(&*store, &client, &base, &token).await;
    rows.extend(lists(&client, &base, &token, "SQLite").await);
    let shown = browser(&base, email, 30);
    match &shown {
        Ok(t) => eprintln!(
            "console: first 100 rows p50 {:.1} ms p95 {:.1} ms",
            pct(t, 0.5),
            pct(t, 0.95)
        ),
        Err(why) => eprintln!("console: not measured: {why}"),
    }

    let schema = coach_e2e::pg::fresh_schema().await.unwrap();
    migrate_postgres(schema.owner.clone()).await.unwrap();
    let pg: Arc<dyn Store> = Arc::new(PostgresStore::connect_lazy(PostgresStoreOptions {
        connect: schema.app.clone(),
        max_connections: 8,
    }));
    let state = state_on(pg.clone(), config());
    let base = serve(state).await;
    let token = register(&client, &base, "inbox-pg@example.com", PASSWORD).await;
    seed(&*pg, &client, &base, &token).await;
    // Statistics as autovacuum keeps them on a live database (a fresh bulk load has none yet).
    let owner = sqlx::PgPool::connect_with(schema.owner.clone())
        .await
        .unwrap();
    sqlx::query("ANALYZE").execute(&owner).await.unwrap();
    rows.extend(lists(&client, &base, &token, "PostgreSQL").await);

    let mut md = format!(
        "## Inbox (`make bench`)\n\n{} on {}; release build; one tenant with {CONVERSATIONS} \
         conversations (a contact and a message each, 3,000 resolved, 500 labelled `vip`); the \
         gateway's router on loopback in this process (PostgreSQL 15 analyzed after loading, as \
         autovacuum leaves it). The list the console loads, \
         `GET /v1/inbox?limit=100` over HTTP ({RUNS} times per view, one at a time), then the \
         console in headless Chromium: from opening the Inbox to its first 100 rows drawn (the \
         request, the JSON and the DOM; 30 times, SQLite). Target: a page on screen in < 200 ms.\n\n\
         | backend | view | rows | p50 ms | p95 ms |\n|---|---|---:|---:|---:|\n",
        Utc::now().format("%Y-%m-%d"),
        machine()
    );
    for r in &rows {
        md.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.2} |\n",
            r.backend, r.view, r.rows, r.p50, r.p95
        ));
    }
    match shown {
        Ok(t) => md.push_str(&format!(
            "| SQLite | **the console: Inbox opened to 100 rows drawn** (Chromium) | 100 | {:.2} | {:.2} |\n",
            pct(&t, 0.5),
            pct(&t, 0.95)
        )),
        Err(why) => md.push_str(&format!("\nThe console was not measured: {why}.\n")),
    }
    md.push('\n');
    print!("{md}");
    write_section("inbox", &md);
}
