//! The world the channel tests run in: the gateway on a real socket with loopback fakes of the
//! providers, and helpers that sign and post provider payloads.

use std::time::Duration;

use axum::http::StatusCode;
use coach_e2e::fake_provider::FakeProvider;
use coach_gateway::config::Config;
use coach_gateway::tenancy::SystemScope;
use hmac::Mac;
use serde_json::{Value, json};

use crate::api_support::*;
use crate::common::Backend;

pub(crate) const PHONE_ID: &str = "106540352242922";
pub(crate) const APP_SECRET: &str = "meta-app-secret";
pub(crate) const BOT_TOKEN: &str = "123456789:AAE_fake-bot-token";

pub(crate) const GUIDE: &[u8] = b"# Sleep guide\n\nStop drinking coffee eight hours before bed. Caffeine stays in the blood for hours and delays deep sleep.\n\nKeep the bedroom cool, dark and quiet.\n";

pub(crate) struct World {
    pub(crate) app: App,
    pub(crate) fake: FakeProvider,
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    _data: tempfile::TempDir,
}

pub(crate) async fn world(b: &Backend, brain: bool) -> World {
    world_on(b, brain, coach_gateway::clock::Clock::system()).await
}

/// The world with its programs (and WhatsApp's window) on `clock`.
pub(crate) async fn world_on(
    b: &Backend,
    brain: bool,
    clock: coach_gateway::clock::Clock,
) -> World {
    world_with(b, brain, clock, |_| {}).await
}

/// The world with `tweak` applied to its configuration.
pub(crate) async fn world_with(
    b: &Backend,
    brain: bool,
    clock: coach_gateway::clock::Clock,
    tweak: impl FnOnce(&mut Config),
) -> World {
    let fake = FakeProvider::start().await;
    let data = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config {
        public_url: format!("http://{addr}"),
        data_dir: data.path().to_path_buf(),
        ..Config::default()
    };
    config.providers.whatsapp.api_base_url = format!("{}/v21.0", fake.base_url);
    config.providers.telegram.api_base_url = fake.base_url.clone();
    config.providers.request_timeout_secs = 2;
    config.outbox.base_backoff_ms = 1;
    config.outbox.max_backoff_secs = 1;
    config.outbox.max_attempts = 4;
    tweak(&mut config);
    let mut app = if brain {
        config.brain.models_dir = models_dir();
        let knowledge = coach_gateway::knowledge::Knowledge::load(&config).await;
        knowledge
            .get()
            .unwrap_or_else(|e| panic!("the brain did not load: {e:?}"));
        let mut app = app_with(b, config);
        app.state = app.state.with_knowledge(knowledge);
        app
    } else {
        app_with(b, config)
    };
    app.state = app.state.with_clock(clock);
    app.router = coach_gateway::http::router(app.state.clone());
    let router = app.router.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });
    World {
        app,
        fake,
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        _data: data,
    }
}

impl World {
    /// Run the outbox until nothing is due (waiting out short retry delays).
    pub(crate) async fn deliver(&self) {
        let sys = SystemScope::new("test");
        let config = self.app.state.config.outbox.clone();
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        while std::time::Instant::now() < deadline {
            coach_gateway::outbox::poll_once(
                &*self.app.state.store,
                &*self.app.state.sender,
                &config,
                &sys,
            )
            .await
            .unwrap();
            let stats = self.app.state.store.stats(&sys).await.unwrap();
            if stats.outbox_depth == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        panic!("the outbox did not drain");
    }

    pub(crate) async fn answer_all(&self) -> usize {
        let mut n = 0;
        while coach_gateway::knowledge::responder::poll_once(&self.app.state)
            .await
            .unwrap()
            > 0
        {
            n += 1;
        }
        n
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        let mut req = self.http.post(format!("{}{path}", self.base)).body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
    }

    pub(crate) async fn messages(&self, token: &str) -> Vec<Value> {
        let (_, convs) = self
            .app
            .call("GET", "/v1/conversations", Some(token), None)
            .await;
        let conv = convs["items"][0]["id"].as_str().unwrap().to_owned();
        let (_, msgs) = self
            .app
            .call(
                "GET",
                &format!("/v1/conversations/{conv}/messages"),
                Some(token),
                None,
            )
            .await;
        msgs["items"].as_array().unwrap().clone()
    }
}

pub(crate) fn whatsapp_config() -> Value {
    json!({ "phone_number_id": PHONE_ID, "access_token": "EAAG-live-token", "app_secret": APP_SECRET, "verify_token": "verify-me" })
}

pub(crate) fn meta_signature(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub(crate) fn wa_webhook(value: Value) -> Vec<u8> {
    let mut value = value;
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] =
        json!({ "display_phone_number": "15550001111", "phone_number_id": PHONE_ID });
    serde_json::to_vec(&json!({ "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": value }] }] }))
    .unwrap()
}

pub(crate) fn wa_text(id: &str, body: &str) -> Vec<u8> {
    wa_webhook(json!({
        "contacts": [{ "profile": { "name": "Ana" }, "wa_id": "4915112345678" }],
        "messages": [{ "from": "4915112345678", "id": id, "timestamp": "1700000000", "type": "text", "text": { "body": body } }],
    }))
}

pub(crate) fn wa_status(id: &str, status: &str) -> Vec<u8> {
    wa_webhook(
        json!({ "statuses": [{ "id": id, "status": status, "timestamp": "1700000100", "recipient_id": "4915112345678" }] }),
    )
}

pub(crate) async fn tenant_with_knowledge(w: &World, email: &str) -> String {
    let owner = w.app.register(email).await;
    let t = token(&owner).to_owned();
    w.app.upload(&t, "sleep.md", "text/markdown", GUIDE).await;
    w.app.ingest_all().await;
    t
}

pub(crate) async fn create(w: &World, t: &str, kind: &str, config: Value) -> Value {
    let (status, channel) = w
        .app
        .call(
            "POST",
            "/v1/channels",
            Some(t),
            Some(json!({ "kind": kind, "name": kind, "config": config })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    channel
}
