//! `/readyz` covers every configured backend: the database and the bus decide readiness; a
//! Qdrant server and an Ollama server, when the brain uses them, are checked and reported
//! (`degraded` when down, without taking the gateway out of its balancer); the models' state is
//! in the body.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use axum::body::Body;
use axum::http::{Request, StatusCode};
use coach_e2e::fake_ollama::FakeOllama;
use coach_gateway::config::{Config, ModelBackend, VectorBackend};
use serde_json::Value;
use tower::ServiceExt;

use crate::api_support::*;
use crate::common::Backend;

crate::against_every_backend!(readiness_names_each_configured_backend_and_the_models,);

async fn readyz(app: &App) -> (StatusCode, Value) {
    let resp = app
        .router
        .clone()
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// The app with the brain loaded (or not) from `config`.
async fn app_loading(b: &Backend, config: Config) -> App {
    let knowledge = coach_gateway::knowledge::Knowledge::load(&config).await;
    let mut app = app_with(b, config);
    app.state = app.state.with_knowledge(knowledge);
    app.router = coach_gateway::http::router(app.state.clone());
    app
}

async fn readiness_names_each_configured_backend_and_the_models(b: &Backend) {
    let data = tempfile::tempdir().unwrap();
    let ollama = FakeOllama::start().await;
    let on_ollama = |url: &str| {
        let mut config = Config {
            data_dir: data.path().to_path_buf(),
            ..Config::default()
        };
        config.brain.backend = ModelBackend::Ollama;
        config.brain.ollama.url = url.to_owned();
        config
    };

    // Embedded defaults: the database and the bus; no models loaded here.
    let (status, body) = readyz(&app(b)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut checks: Vec<&String> = body["checks"].as_object().unwrap().keys().collect();
    checks.sort();
    assert_eq!(checks, vec!["bus", "database"], "{body}");
    assert_eq!(body["models"]["status"], "unavailable", "{body}");

    // Ollama answering: ready, and the models are named.
    let (status, body) = readyz(&app_loading(b, on_ollama(&ollama.base_url)).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["ollama"]["status"], "ok", "{body}");
    assert_eq!(body["models"]["status"], "loaded", "{body}");
    assert!(body["models"]["generator"].is_string(), "{body}");

    assert_eq!(body["degraded"], serde_json::json!([]), "{body}");

    // Ollama gone: still ready (webhooks and the console work), and it is named as degraded.
    let (status, body) = readyz(&app_loading(b, on_ollama("http://127.0.0.1:1")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["degraded"], serde_json::json!(["ollama"]), "{body}");
    assert_eq!(body["checks"]["ollama"]["status"], "error", "{body}");
    assert_eq!(body["models"]["status"], "unavailable", "{body}");

    // A Qdrant server that does not answer: the vector store is named.
    let mut config = on_ollama(&ollama.base_url);
    config.brain.vectors.backend = VectorBackend::Qdrant;
    config.brain.vectors.url = "http://127.0.0.1:1".into();
    let (status, body) = readyz(&app_loading(b, config).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["degraded"], serde_json::json!(["vectors"]), "{body}");
    assert_eq!(body["checks"]["vectors"]["backend"], "qdrant", "{body}");
    assert_eq!(body["failing"], serde_json::json!([]), "{body}");
}
