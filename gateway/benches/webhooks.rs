//! Channel throughput on this machine (SQLite, the load generator in the same process):
//! signed WhatsApp webhooks -> verified, parsed, deduplicated, stored -> 200, at concurrency 64,
//! against a bare axum handler on the same stack as the baseline; then outbound sends/s
//! through the outbox against a loopback fake of the Graph API.
//! Results go to docs/BENCHMARKS.md (section `webhooks`).

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use axum::routing::post;
use coach_e2e::fake_provider::FakeProvider;
use hmac::Mac;
use serde_json::json;

const REQUESTS: usize = 20_000;
const CONCURRENCY: usize = 64;
const SENDERS: usize = 5_000;
const SECRET: &str = "bench-app-secret";
const PHONE_ID: &str = "106540352242922";

fn signed_body(i: usize) -> (Vec<u8>, String) {
    let from = format!("49151{:07}", i % SENDERS);
    let body = serde_json::to_vec(&json!({ "object": "whatsapp_business_account", "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": { "display_phone_number": "15550001111", "phone_number_id": PHONE_ID },
        "contacts": [{ "profile": { "name": "Bench" }, "wa_id": from }],
        "messages": [{ "from": from, "id": format!("wamid.bench.{i}"), "timestamp": "1700000000", "type": "text", "text": { "body": "How do I sleep better?" } }] } }] }] }))
    .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&body);
    (
        body,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
    )
}

struct Load {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    failures: usize,
}

async fn load(url: String, bodies: std::sync::Arc<Vec<(Vec<u8>, String)>>) -> Load {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, url, bodies, next) =
            (client.clone(), url.clone(), bodies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((body, sig)) = bodies.get(i) else {
                    break;
                };
                let t = Instant::now();
                let resp = client
                    .post(&url)
                    .header("x-hub-signature-256", sig)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                latencies.push(t.elapsed());
                if !resp.is_ok_and(|r| r.status() == 200) {
                    failures += 1;
                }
            }
            (latencies, failures)
        }));
    }
    let mut all = Vec::new();
    let mut failures = 0;
    for t in tasks {
        let (l, f) = t.await.unwrap();
        all.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed();
    all.sort();
    let pct =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0;
    Load {
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        failures,
    }
}

#[tokio::main]
async fn main() {
    let fake = FakeProvider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = coach_gateway::config::Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    config.providers.whatsapp.api_base_url = format!("{}/v21.0", fake.base_url);
    config.rate_limits.tenant_per_second = 100_000;
    config.rate_limits.tenant_burst = 100_000;
    let state = support::sqlite_state(dir.path(), config).await;
    let base = support::serve(state.clone()).await;
    let client = reqwest::Client::new();
    let token = support::register(
        &client,
        &base,
        "bench@example.com",
        "violet-quarry-Tundra-88",
    )
    .await;
    let channel: serde_json::Value = client
        .post(format!("{base}/v1/channels"))
        .bearer_auth(&token)
        .json(&json!({ "kind": "whatsapp", "name": "Bench", "config": { "phone_number_id": PHONE_ID, "access_token": "EAAG-bench", "app_secret": SECRET, "verify_token": "v", "messages_per_second": 1000 } }))
        .send().await.unwrap().json().await.unwrap();
    let hook = format!(
        "{base}/webhooks/whatsapp/{}",
        channel["id"].as_str().unwrap()
    );

    // Baseline: the same requests to a bare axum handler that only reads the body.
    let bare = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bare_url = format!("http://{}/hook", bare.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            bare,
            axum::Router::new().route("/hook", post(|_b: axum::body::Bytes| async { "{}" })),
        )
        .await
        .unwrap()
    });

    let bodies = std::sync::Arc::new((0..REQUESTS).map(signed_body).collect::<Vec<_>>());
    let baseline = load(bare_url, bodies.clone()).await;
    let gateway = load(hook.clone(), bodies.clone()).await;
    // Every request again: provider redeliveries, answered 200 and stored nothing new.
    let redelivered = load(hook, bodies).await;
    let sys = coach_gateway::tenancy::SystemScope::new("bench");
    let stats = state.store.stats(&sys).await.unwrap();
    eprintln!(
        "inbound: {:.0} req/s p99 {:.2} ms (bare axum {:.0} req/s), redelivery {:.0} req/s, jobs {}",
        gateway.per_second,
        gateway.p99_ms,
        baseline.per_second,
        redelivered.per_second,
        stats.jobs_depth
    );
    assert_eq!(gateway.failures + redelivered.failures, 0);
    assert_eq!(
        stats.jobs_depth as usize, REQUESTS,
        "one answer job per message, none for redeliveries"
    );

    // Outbound: one reply per conversation, through the outbox against the fake Graph API.
    let tenant = state.store.all_tenants(&sys).await.unwrap()[0].id;
    let scope = sys.for_tenant(tenant);
    let mut conversations = Vec::new();
    let mut before = None;
    loop {
        let page = state
            .store
            .conversations(
                &scope,
                coach_gateway::store::Page { before, limit: 200 },
                Default::default(),
            )
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        before = Some((last.last_message_at, last.id.0));
        conversations.extend(page);
    }
    for c in &conversations {
        state
            .stream
            .send(
                &scope,
                c.id,
                coach_connector_api::OutboundBody::Text {
                    text: "Keep a regular bedtime.".into(),
                },
                None,
            )
            .await
            .unwrap();
    }
    let mut outbox = state.config.outbox.clone();
    outbox.batch_size = 256;
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(300) {
        let n = coach_gateway::outbox::poll_once(&*state.store, &*state.sender, &outbox, &sys)
            .await
            .unwrap();
        if n == 0 && state.store.stats(&sys).await.unwrap().outbox_depth == 0 {
            break;
        }
        sent += n;
    }
    let outbound_per_second = sent as f64 / started.elapsed().as_secs_f64();
    let provider_calls = fake.requests_to("/messages").len();
    eprintln!(
        "outbound: {sent} sends in {:.1} s = {outbound_per_second:.0}/s; the fake saw {provider_calls}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(provider_calls, conversations.len());

    let date = chrono::Utc::now().format("%Y-%m-%d");
    support::write_section(
        "webhooks",
        &format!(
            "## Channels: webhooks in, sends out\n\n{date}, {}, release build, `make bench` (`gateway/benches/webhooks.rs`), SQLite (`synchronous=NORMAL`), load generator in the same process.\n\n\
             | measure | result | target |\n|---|---|---|\n\
             | signed WhatsApp webhook -> verified, parsed, deduplicated, stored -> 200 ({REQUESTS} requests, concurrency {CONCURRENCY}) | {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms | >= 10,000 req/s, p99 <= 10 ms |\n\
             | the same requests to a bare axum handler (baseline: HTTP stack and load generator) | {:.0} req/s, p99 {:.2} ms | |\n\
             | gateway / bare axum | {:.2} | |\n\
             | every webhook delivered again (deduplicated, nothing stored) | {:.0} req/s, p99 {:.2} ms | |\n\
             | outbound sends through the outbox to a loopback Graph API ({} conversations, one reply each; paced by the channel's `messages_per_second`, 1,000) | {:.0} sends/s | |\n\n",
            support::machine(),
            gateway.per_second,
            gateway.p50_ms,
            gateway.p99_ms,
            baseline.per_second,
            baseline.p99_ms,
            gateway.per_second / baseline.per_second,
            redelivered.per_second,
            redelivered.p99_ms,
            conversations.len(),
            outbound_per_second,
        ),
    );
}
