//! Shared by the benchmarks: the machine's description and writing a section of
//! docs/BENCHMARKS.md (between `<!-- name:start -->` and `<!-- name:end -->`).

#![allow(clippy::unwrap_used, dead_code)]

pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

pub fn write_section(name: &str, markdown: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/BENCHMARKS.md");
    let (start, end) = (
        format!("<!-- {name}:start -->"),
        format!("<!-- {name}:end -->"),
    );
    let (start, end) = (start.as_str(), end.as_str());
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let section = format!("{start}\n{markdown}{end}");
    let doc = match (doc.find(start), doc.find(end)) {
        (Some(a), Some(b)) => format!("{}{}{}", &doc[..a], section, &doc[b + end.len()..]),
        _ => format!("{}\n{}\n", doc.trim_end(), section),
    };
    std::fs::write(&path, doc).unwrap();
    eprintln!("wrote {}", path.display());
}

/// The gateway's state on a fresh SQLite file in `dir` (WAL, `synchronous=NORMAL`), with a
/// fixed secrets key (nothing written outside `dir`).
pub async fn sqlite_state(
    dir: &std::path::Path,
    config: coach_gateway::config::Config,
) -> coach_gateway::state::AppState {
    use coach_gateway::store::{SqliteStore, SqliteStoreOptions};
    let store = std::sync::Arc::new(
        SqliteStore::open(SqliteStoreOptions {
            path: dir.join("bench.db"),
            synchronous: coach_gateway::config::Synchronous::Normal,
            max_batch: 256,
            readers: 8,
        })
        .await
        .unwrap(),
    );
    state_on(store, config)
}

/// The gateway's state on `store`, with a fixed secrets key.
pub fn state_on(
    store: std::sync::Arc<dyn coach_gateway::store::Store>,
    config: coach_gateway::config::Config,
) -> coach_gateway::state::AppState {
    coach_gateway::state::AppState::new(
        config,
        store,
        std::sync::Arc::new(coach_gateway::bus::MemoryBus::new(16)),
        coach_gateway::telemetry::metrics_handle(),
        coach_gateway::state::Startup::default(),
        // A fixed test key (32 bytes of 0x01).
        coach_gateway::secrets::SecretBox::load(
            "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
            std::path::Path::new("."),
        )
        .unwrap(),
    )
}

/// Serves the gateway's router on a loopback port in this process; its base URL.
pub async fn serve(state: coach_gateway::state::AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, coach_gateway::http::router(state))
            .await
            .unwrap()
    });
    base
}

/// Registers an account and returns its access token.
pub async fn register(client: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let pair: serde_json::Value = client
        .post(format!("{base}/v1/auth/register"))
        .json(&serde_json::json!({ "email": email, "password": password, "tenant_name": "Bench" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    pair["access_token"].as_str().unwrap().to_owned()
}
