//! `/healthz` (the process is up), `/readyz` (the database and the bus answer; the brain's
//! servers and the models are reported) and `/metrics`
//! (Prometheus text; the queue depths are read from the store at most every 10 s, and a
//! `http.metrics_token` keeps it private).

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::config::{ModelBackend, VectorBackend};
use crate::error::ApiError;
use crate::state::AppState;
use crate::tenancy::SystemScope;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn check<E: std::fmt::Display>(
    backend: &str,
    fut: impl Future<Output = Result<(), E>>,
) -> (bool, Value) {
    match tokio::time::timeout(CHECK_TIMEOUT, fut).await {
        Ok(Ok(())) => (true, json!({ "backend": backend, "status": "ok" })),
        Ok(Err(e)) => (
            false,
            json!({ "backend": backend, "status": "error", "error": e.to_string() }),
        ),
        Err(_) => (
            false,
            json!({ "backend": backend, "status": "error", "error": "timed out" }),
        ),
    }
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let brain = &state.config.brain;
    let database = check(state.store.backend(), async {
        if let Some(problem) = state.startup.problem() {
            return Err(problem);
        }
        state.store.ping().await.map_err(|e| e.to_string())
    });
    let bus = check(state.bus.backend(), state.bus.ping());
    // The servers the brain uses, when configured. Answers wait for them, but webhooks, the
    // console and the outbox do not: they are reported (`degraded`), and the gateway stays
    // ready, so a model server's outage does not take every process out of the balancer.
    let vectors = async {
        if brain.vectors.backend != VectorBackend::Qdrant {
            return None;
        }
        Some(
            check("qdrant", async {
                match state.knowledge.state() {
                    Ok(loaded) => loaded.vectors.ping().await.map_err(|e| e.to_string()),
                    Err(why) => Err(format!("not connected: {why}")),
                }
            })
            .await,
        )
    };
    let ollama = async {
        if brain.backend != ModelBackend::Ollama {
            return None;
        }
        Some(check("ollama", ollama_version(&brain.ollama.url)).await)
    };
    let ((db_ok, db), (bus_ok, bus), vectors, ollama) =
        tokio::join!(database, bus, vectors, ollama);
    let mut checks = serde_json::Map::new();
    checks.insert("database".into(), db);
    checks.insert("bus".into(), bus);
    let failing: Vec<&str> = [("database", db_ok), ("bus", bus_ok)]
        .into_iter()
        .filter_map(|(name, ok)| (!ok).then_some(name))
        .collect();
    let mut degraded: Vec<&str> = Vec::new();
    for (name, result) in [("vectors", vectors), ("ollama", ollama)] {
        if let Some((ok, body)) = result {
            checks.insert(name.into(), body);
            if !ok {
                degraded.push(name);
            }
        }
    }
    let ready = failing.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // The models' state: shown, not a condition of readiness.
    let models = match state.knowledge.state() {
        Ok(loaded) => json!({
            "status": "loaded",
            "embedder": loaded.embedder.model_id(),
            "generator": loaded.generator.model_id(),
        }),
        Err(why) => json!({ "status": "unavailable", "error": why }),
    };
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "failing": failing,
        "degraded": degraded,
        "checks": checks,
        "models": models,
    });
    (status, Json(body))
}

/// Whether the Ollama server at `url` answers (`GET /api/version`).
async fn ollama_version(url: &str) -> Result<(), String> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let client = CLIENT.get_or_init(reqwest::Client::new);
    let url = format!("{}/api/version", url.trim_end_matches('/'));
    let resp = client.get(&url).send().await.map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("{url} answered {}", resp.status()))
    }
}

/// How long the queue depths `/metrics` read from the store are reused.
const GAUGES_FOR: Duration = Duration::from_secs(10);

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let wanted = &state.config.http.metrics_token;
    if !wanted.is_empty() {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !bool::from(given.as_bytes().ct_eq(wanted.as_bytes())) {
            return ApiError::Unauthorized(
                "send the metrics token (http.metrics_token) as a bearer token".into(),
            )
            .into_response();
        }
    }
    let due = {
        let mut read_at = state
            .gauges_read_at
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let due = read_at.is_none_or(|at| at.elapsed() >= GAUGES_FOR);
        if due {
            *read_at = Some(Instant::now());
        }
        due
    };
    if due {
        let sys = SystemScope::new("metrics scrape");
        if let Ok(Ok(stats)) = tokio::time::timeout(CHECK_TIMEOUT, state.store.stats(&sys)).await {
            metrics::gauge!("outbox_depth").set(stats.outbox_depth as f64);
            metrics::gauge!("outbox_dead").set(stats.outbox_dead as f64);
            metrics::gauge!("jobs_depth").set(stats.jobs_depth as f64);
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
