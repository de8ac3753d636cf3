//! Shared by the admin API tests: the gateway router over a backend, a request helper, and
//! tokens signed with the gateway's own key (what only an insider could forge).

#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use coach_gateway::bus::MemoryBus;
use coach_gateway::config::Config;
use coach_gateway::state::{AppState, Startup};
use coach_gateway::tenancy::SystemScope;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::Backend;

pub struct App {
    pub state: AppState,
    pub router: axum::Router,
}

pub fn app(b: &Backend) -> App {
    let config = Config {
        public_url: "https://coach.example".into(),
        ..Config::default()
    };
    app_with(b, config)
}

pub fn app_with(b: &Backend, config: Config) -> App {
    app_on(b.store.clone(), config)
}

/// The app over `store` (a second gateway process sharing a database).
pub fn app_on(store: Arc<dyn coach_gateway::store::Store>, config: Config) -> App {
    // A fixed test key (32 bytes of 0x01): nothing is written to disk.
    app_sealed_with(
        store,
        config,
        "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
    )
}

/// A second gateway process beside `first`: the same database, configuration, master key and
/// bus (as processes sharing PostgreSQL and Redis do).
pub fn second_process(first: &App) -> App {
    let state = AppState::new(
        (*first.state.config).clone(),
        first.state.store.clone(),
        first.state.bus.clone(),
        coach_gateway::telemetry::metrics_handle(),
        Startup::default(),
        coach_gateway::secrets::SecretBox::load(
            "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
            std::path::Path::new("."),
        )
        .unwrap(),
    );
    App {
        router: coach_gateway::http::router(state.clone()),
        state,
    }
}

/// The app over `store` with `master_key` (base64 of 32 bytes) as `secrets.master_key`.
pub fn app_sealed_with(
    store: Arc<dyn coach_gateway::store::Store>,
    config: Config,
    master_key: &str,
) -> App {
    let state = AppState::new(
        config,
        store,
        Arc::new(MemoryBus::new(16)),
        coach_gateway::telemetry::metrics_handle(),
        Startup::default(),
        coach_gateway::secrets::SecretBox::load(master_key, std::path::Path::new(".")).unwrap(),
    );
    App {
        router: coach_gateway::http::router(state.clone()),
        state,
    }
}

/// The app with the real brain: the models from `make models` and an embedded vector store in
/// `data_dir`.
pub async fn app_with_brain(b: &Backend, data_dir: &std::path::Path) -> App {
    let mut config = Config {
        public_url: "https://coach.example".into(),
        data_dir: data_dir.to_path_buf(),
        ..Config::default()
    };
    config.brain.models_dir = models_dir();
    let knowledge = coach_gateway::knowledge::Knowledge::load(&config).await;
    knowledge
        .get()
        .unwrap_or_else(|e| panic!("the brain did not load: {e:?} (run `make models`)"));
    let mut app = app_with(b, config);
    app.state = app.state.with_knowledge(knowledge);
    app.router = coach_gateway::http::router(app.state.clone());
    app
}

/// Where `make models` puts the models (`COACH_MODELS_DIR` overrides).
pub fn models_dir() -> std::path::PathBuf {
    std::env::var_os("COACH_MODELS_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"),
        std::path::PathBuf::from,
    )
}

impl App {
    /// Upload a document as `multipart/form-data`.
    pub async fn upload(
        &self,
        token: &str,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> (StatusCode, Value) {
        self.upload_to("/v1/documents", token, filename, content_type, bytes)
            .await
    }

    /// Post one file as `multipart/form-data` (field `file`) to `path`.
    pub async fn upload_to(
        &self,
        path: &str,
        token: &str,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> (StatusCode, Value) {
        let boundary = "coach-test-boundary-7d1a";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Run queued ingestion jobs until none is left.
    pub async fn ingest_all(&self) {
        while coach_gateway::knowledge::ingest::poll_once(&self.state)
            .await
            .unwrap()
            > 0
        {}
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map(|b| b.to_string().into_bytes());
        self.request(
            method,
            path,
            token,
            body.as_ref().map(|_| "application/json"),
            body.unwrap_or_default(),
        )
        .await
    }

    /// Calls `method path` with a raw body of `content_type`.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        self.request(method, path, token, Some(content_type), body)
            .await
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(kind) = content_type {
            req = req.header("content-type", kind);
        }
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = self
            .router
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Calls `method path` and asserts the answer's status; returns the body.
    pub async fn expect<S>(
        &self,
        status: S,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value
    where
        StatusCode: PartialEq<S>,
        S: std::fmt::Debug,
    {
        self.expect_because(status, method, path, token, body, "")
            .await
    }

    /// [`App::expect`], saying why the status is expected when it is not.
    pub async fn expect_because<S>(
        &self,
        status: S,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        why: &str,
    ) -> Value
    where
        StatusCode: PartialEq<S>,
        S: std::fmt::Debug,
    {
        let (got, answer) = self.call(method, path, token, body).await;
        assert!(
            got == status,
            "{method} {path}: expected {status:?}, got {got} {answer} {why}"
        );
        answer
    }

    pub async fn register(&self, email: &str) -> Value {
        let body = json!({ "email": email, "password": "violet-quarry-Tundra-88", "tenant_name": format!("{email} coaching") });
        let (status, pair) = self
            .call("POST", "/v1/auth/register", None, Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{pair}");
        pair
    }
}

/// A WhatsApp channel with a complete configuration (WhatsApp needs no provider call to be
/// created, so CRUD tests reach no network).
pub fn whatsapp_channel(name: &str) -> Value {
    json!({ "kind": "whatsapp", "name": name, "config": {
        "phone_number_id": "106540352242922", "access_token": "EAAG-secret",
        "app_secret": "app-secret", "verify_token": "verify-me" } })
}

/// A new tenant (`email`) with a WhatsApp channel: its token pair, a system scope in it and the
/// channel's id, for storing events as the provider would deliver them.
pub async fn tenant_with_channel(
    app: &App,
    email: &str,
) -> (
    Value,
    coach_gateway::tenancy::TenantScope,
    coach_connector_api::ChannelId,
) {
    let pair = app.register(email).await;
    let (status, channel) = app
        .call(
            "POST",
            "/v1/channels",
            Some(token(&pair)),
            Some(whatsapp_channel("bot")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    let scope =
        SystemScope::new("test").for_tenant(pair["tenant_id"].as_str().unwrap().parse().unwrap());
    let channel_id = channel["id"].as_str().unwrap().parse().unwrap();
    (pair, scope, channel_id)
}

pub fn token(pair: &Value) -> &str {
    pair["access_token"].as_str().unwrap()
}

/// Sign arbitrary claims with the gateway's own key (what only an insider could do).
pub async fn sign(app: &App, header: jsonwebtoken::Header, claims: &Value) -> String {
    let keys = app
        .state
        .store
        .signing_keys(&SystemScope::new("test"))
        .await
        .unwrap();
    // Stored sealed with the app's master key.
    let der = app
        .state
        .secrets
        .open_bytes(&keys[0].private_der)
        .unwrap()
        .unwrap_or_else(|| keys[0].private_der.clone());
    let key = jsonwebtoken::EncodingKey::from_ed_der(&der);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

pub fn b64(v: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// What a creator's server received: each POST's headers and raw body.
pub type Received = Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

/// A creator's server on a loopback port answering every POST to `/hook` with `status`; its
/// URL and what it received.
pub async fn receiver(status: StatusCode) -> (String, Received) {
    let got: Received = Arc::default();
    let keep = got.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let keep = keep.clone();
                async move {
                    keep.lock().unwrap().push((headers, body.to_vec()));
                    status
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, got)
}
