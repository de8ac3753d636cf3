//! Admin API benchmark on a real HTTP server (SQLite, in this process, client beside it):
//! authenticated reads (`GET /v1/me`) paced at 1,000 req/s, then the same reads at 200 req/s
//! while logins (Argon2id) run flat out, to show hashing does not starve other requests.

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use coach_gateway::config::{Config, RateLimitConfig};
use serde_json::json;
use support::{machine, register, serve, sqlite_state, write_section};

const PASSWORD: &str = "violet-quarry-Tundra-88";

/// Send `GET /v1/me` at `rate` per second for `secs`; latencies in ms, sorted.
async fn paced_reads(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    rate: u64,
    secs: u64,
) -> Vec<f64> {
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    for _ in 0..rate * secs {
        tick.tick().await;
        let (client, url, token) = (client.clone(), format!("{base}/v1/me"), token.to_owned());
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            let resp = client.get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.bytes().await.unwrap();
            start.elapsed().as_secs_f64() * 1000.0
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.push(t.await.unwrap());
    }
    latencies.sort_by(f64::total_cmp);
    latencies
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        // The limits are what is measured against here, not what is enforced.
        rate_limits: RateLimitConfig {
            auth_per_minute: 1_000_000,
            tenant_per_second: 1_000_000,
            tenant_burst: 1_000_000,
        },
        ..Config::default()
    };
    let hashing = config.auth.hashing_concurrency;
    let state = sqlite_state(dir.path(), config).await;
    let base = serve(state).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let token = register(&client, &base, "bench@example.com", PASSWORD).await;
    paced_reads(&client, &base, &token, 200, 1).await; // warm up connections

    let alone = paced_reads(&client, &base, &token, 1000, 5).await;
    eprintln!(
        "GET /v1/me at 1000/s: p50 {:.2} ms p99 {:.2} ms",
        pct(&alone, 0.5),
        pct(&alone, 0.99)
    );

    let quiet = paced_reads(&client, &base, &token, 200, 3).await;
    let stop = Arc::new(AtomicBool::new(false));
    let logins = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (client, base, stop, logins) =
                (client.clone(), base.clone(), stop.clone(), logins.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let resp = client
                        .post(format!("{base}/v1/auth/login"))
                        .json(&json!({ "email": "bench@example.com", "password": PASSWORD }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 200);
                    logins.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let loaded = paced_reads(&client, &base, &token, 200, 5).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let login_rate = logins.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "logins {login_rate:.1}/s; GET /v1/me at 200/s p99 {:.2} ms (quiet {:.2} ms)",
        pct(&loaded, 0.99),
        pct(&quiet, 0.99)
    );

    let md = format!(
        "## Admin API (`make bench`)\n\n{} on {}; release build; SQLite; the gateway's router served on loopback in \
         the benchmark process, with its HTTP client beside it (both share the two cores). Rate limits lifted for \
         the run.\n\n\
         | measurement | p50 ms | p99 ms |\n|---|---:|---:|\n\
         | `GET /v1/me` paced at 1,000 req/s, 5 s | {:.2} | {:.2} |\n\
         | `GET /v1/me` paced at 200 req/s, no logins | {:.2} | {:.2} |\n\
         | `GET /v1/me` paced at 200 req/s while 4 clients log in flat out | {:.2} | {:.2} |\n\n\
         Logins (Argon2id, 19 MiB, 2 passes, at most {hashing} at once on the blocking pool): {login_rate:.1}/s. \
         Reads under login load vs without: p99 ratio {:.2}x.\n\n",
        chrono::Utc::now().format("%Y-%m-%d"),
        machine(),
        pct(&alone, 0.5),
        pct(&alone, 0.99),
        pct(&quiet, 0.5),
        pct(&quiet, 0.99),
        pct(&loaded, 0.5),
        pct(&loaded, 0.99),
        pct(&loaded, 0.99) / pct(&quiet, 0.99),
    );
    print!("{md}");
    write_section("auth", &md);
}
