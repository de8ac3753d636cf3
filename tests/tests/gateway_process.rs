//! The `gateway` binary as an operator runs it: embedded defaults, bad configuration, a
//! database that is down at start, PostgreSQL + Redis, graceful shutdown.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use std::time::Duration;

use coach_e2e::{Gateway, gateway_bin, pg, redis_url};
use serde_json::Value;

async fn get(base: &str, path: &str) -> (u16, String) {
    let resp = reqwest::get(format!("{base}{path}")).await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn embedded_defaults_serve_health_readiness_and_metrics_then_stop_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path().join("data"), &[]).await.unwrap();
    let (status, body) = get(&gw.base_url, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = get(&gw.base_url, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["checks"]["database"]["backend"], "sqlite");
    assert_eq!(ready["checks"]["bus"]["backend"], "memory");
    let (status, metrics) = get(&gw.base_url, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"http_requests_total{method="GET",route="/readyz",status="200"}"#),
        "{metrics}"
    );
    assert!(metrics.contains("outbox_depth 0"), "{metrics}");
    let resp = reqwest::get(format!("{}/nowhere", gw.base_url))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.headers().contains_key("x-request-id"));
    assert!(
        dir.path().join("data/gateway.db").exists(),
        "the data dir is created on first run"
    );
    assert_eq!(
        gw.terminate().await.unwrap(),
        Some(0),
        "SIGTERM is a clean stop"
    );
}

#[tokio::test]
async fn bad_configuration_exits_2_naming_key_value_and_expectation() {
    let cases = [
        ("GATEWAY__HTTP__ADDR", "nowhere", "http.addr"),
        (
            "GATEWAY__DATABASE__URL",
            "mysql://root:hunter2@db/x",
            "database.url",
        ),
        (
            "GATEWAY__OUTBOX__MAX_ATTEMPTS",
            "many",
            "outbox.max_attempts",
        ),
        ("GATEWAY__NO_SUCH_KEY", "1", "no_such_key"),
    ];
    for (var, value, key) in cases {
        let out = tokio::process::Command::new(gateway_bin())
            .arg("serve")
            .env(var, value)
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{var}: {err}");
        assert!(
            !err.contains("hunter2"),
            "a secret reached the terminal: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// A master key for processes on PostgreSQL (32 bytes of 0x02).
const MASTER_KEY: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

/// On PostgreSQL, where several processes share a deployment, `serve` refuses what they cannot
/// share: no master key, no Redis, the embedded vector store (unless it says it runs alone).
#[tokio::test]
async fn serving_on_postgres_needs_what_processes_share() {
    let db = "postgres://coach_gateway@127.0.0.1:1/test";
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[], "secrets.master_key"),
        (&[("GATEWAY__SECRETS__MASTER_KEY", MASTER_KEY)], "redis.url"),
        (
            &[
                ("GATEWAY__SECRETS__MASTER_KEY", MASTER_KEY),
                ("GATEWAY__REDIS__URL", "redis://127.0.0.1:1"),
            ],
            "brain.vectors.backend",
        ),
    ];
    for (env, key) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut command = tokio::process::Command::new(gateway_bin());
        command
            .arg("serve")
            .env("GATEWAY__DATA_DIR", dir.path())
            .env("GATEWAY__DATABASE__URL", db);
        for (var, value) in env {
            command.env(var, value);
        }
        let out = command.output().await.unwrap();
        assert_eq!(out.status.code(), Some(2), "{key}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{key}: {err}");
        assert!(
            !err.contains(MASTER_KEY),
            "the key reached the terminal: {err}"
        );
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "nothing was written before refusing"
        );
    }
    // `gateway config` and `migrate` are not serving: they are not refused.
    let out = tokio::process::Command::new(gateway_bin())
        .arg("config")
        .env("GATEWAY__DATABASE__URL", db)
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
}

#[tokio::test]
async fn config_command_masks_secrets() {
    let out = tokio::process::Command::new(gateway_bin())
        .arg("config")
        .env(
            "GATEWAY__DATABASE__URL",
            "postgres://app:s3cret@db:5432/coach",
        )
        .env("GATEWAY__REDIS__URL", "redis://:hunter2@cache:6379")
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("postgres://app:***@db:5432/coach"),
        "{shown}"
    );
    assert!(
        !shown.contains("s3cret") && !shown.contains("hunter2"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_database_down_at_start_makes_readyz_fail_not_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path().join("data"),
        &[
            (
                "GATEWAY__DATABASE__URL",
                "postgres://coach_gateway@127.0.0.1:1/test",
            ),
            ("GATEWAY__SECRETS__MASTER_KEY", MASTER_KEY),
            ("GATEWAY__DATABASE__SINGLE_PROCESS", "true"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(get(&gw.base_url, "/healthz").await.0, 200);
    let (status, body) = get(&gw.base_url, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["failing"], serde_json::json!(["database"]));
    assert_eq!(ready["checks"]["database"]["backend"], "postgres");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        get(&gw.base_url, "/healthz").await.0,
        200,
        "still serving while retrying"
    );
    assert_eq!(gw.terminate().await.unwrap(), Some(0));
}

#[tokio::test]
async fn postgres_and_redis_backends_become_ready() {
    let schema = pg::fresh_schema().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let redis = redis_url();
    let prefix = format!("{}:", schema.schema);
    let gw = Gateway::start(
        dir.path().join("data"),
        &[
            ("GATEWAY__DATABASE__URL", &schema.app_url),
            ("GATEWAY__DATABASE__MIGRATE_URL", &schema.owner_url),
            ("GATEWAY__REDIS__URL", &redis),
            ("GATEWAY__REDIS__PREFIX", &prefix),
            ("GATEWAY__SECRETS__MASTER_KEY", MASTER_KEY),
            // The embedded vector store: one process here.
            ("GATEWAY__DATABASE__SINGLE_PROCESS", "true"),
        ],
    )
    .await
    .unwrap();
    let mut last = String::new();
    for _ in 0..100 {
        let (status, body) = get(&gw.base_url, "/readyz").await;
        if status == 200 {
            let ready: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(ready["checks"]["database"]["backend"], "postgres");
            assert_eq!(ready["checks"]["bus"]["backend"], "redis");
            // A PostgreSQL deployment gets no demo tenant (nor its owner login) unless asked.
            let (demo, _) = get(&gw.base_url, "/demo").await;
            assert_eq!(demo, 404, "the demo is served on PostgreSQL");
            assert!(!dir.path().join("data/demo.json").exists());
            assert_eq!(gw.terminate().await.unwrap(), Some(0));
            return;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never ready: {last}");
}

#[tokio::test]
async fn serving_as_a_superuser_is_refused_with_a_fix() {
    let schema = pg::fresh_schema().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path().join("data"),
        &[
            ("GATEWAY__DATABASE__URL", &schema.owner_url),
            ("GATEWAY__DATABASE__MIGRATE_URL", &schema.owner_url),
            ("GATEWAY__SECRETS__MASTER_KEY", MASTER_KEY),
            ("GATEWAY__DATABASE__SINGLE_PROCESS", "true"),
        ],
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = get(&gw.base_url, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("superuser"), "{body}");
    assert_eq!(gw.terminate().await.unwrap(), Some(0));
}

#[tokio::test]
async fn admin_create_makes_an_operator_who_can_list_tenants() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = tokio::process::Command::new(gateway_bin())
        .args(["admin", "create", "--email", "op@example.com"])
        .env("GATEWAY__DATA_DIR", &data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"violet-quarry-Tundra-88\n")
        .await
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("platform administrator"));

    let gw = Gateway::start(data, &[]).await.unwrap();
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{}/v1/auth/login", gw.base_url))
        .json(&serde_json::json!({ "email": "op@example.com", "password": "violet-quarry-Tundra-88" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();
    let resp = client
        .get(format!("{}/v1/platform/tenants", gw.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let tenants: Value = resp.json().await.unwrap();
    assert_eq!(tenants[0]["name"], "Operators");
    let docs = client
        .get(format!("{}/docs/", gw.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200, "the API browser renders");
    assert!(
        docs.text().await.unwrap().contains("swagger"),
        "swagger UI page"
    );
    assert_eq!(gw.terminate().await.unwrap(), Some(0));
}

/// A rolling restart with consoles open: `SIGTERM` ends every `/v1/events` stream with a final
/// `shutdown` event and the process exits 0 well within `http.shutdown_grace_secs`, and the
/// next start needs no recovery.
#[tokio::test]
async fn sigterm_ends_event_streams_and_exits_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path().join("data"),
        &[("GATEWAY__WIDGET__DEMO", "false")],
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let pair: Value = client
        .post(format!("{}/v1/auth/register", gw.base_url))
        .json(&serde_json::json!({ "email": "roll@example.com",
            "password": "violet-quarry-Tundra-88", "tenant_name": "Rolling" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = pair["access_token"].as_str().unwrap().to_owned();
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut resp = client
            .get(format!("{}/v1/events", gw.base_url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        streams.push(tokio::spawn(async move {
            let mut text = String::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                text.push_str(&String::from_utf8_lossy(&chunk));
            }
            text
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let data_dir = gw.data_dir.clone();
    let started = std::time::Instant::now();
    assert_eq!(
        gw.terminate().await.unwrap(),
        Some(0),
        "SIGTERM is a clean stop"
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "exit took {took:?}");
    for stream in streams {
        let text = tokio::time::timeout(Duration::from_secs(5), stream)
            .await
            .unwrap()
            .unwrap();
        assert!(text.contains("event: shutdown"), "{text:?}");
    }
    // The store was closed cleanly: the next start serves at once.
    let again = Gateway::start(data_dir, &[("GATEWAY__WIDGET__DEMO", "false")])
        .await
        .unwrap();
    let (status, _) = get(&again.base_url, "/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(again.terminate().await.unwrap(), Some(0));
}
