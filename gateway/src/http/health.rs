//! `/healthz` (the process is up), `/readyz` (every configured backend answers) and `/metrics`
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
    let (db_ok, db) = check(state.store.backend(), async {
        if let Some(problem) = state.startup.problem() {
            return Err(problem);
        }
        state.store.ping().await.map_err(|e| e.to_string())
    })
    .await;
    let (bus_ok, bus) = check(state.bus.backend(), state.bus.ping()).await;
    let ready = db_ok && bus_ok;
    let failing: Vec<&str> = [("database", db_ok), ("bus", bus_ok)]
        .into_iter()
        .filter_map(|(name, ok)| (!ok).then_some(name))
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "failing": failing,
        "checks": { "database": db, "bus": bus },
    });
    (status, Json(body))
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
