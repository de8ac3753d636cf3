//! What the creator console stands on, on SQLite and PostgreSQL: live events (tenant-scoped,
//! resumed with `Last-Event-ID`), human handoff with the creator's signed webhook, the inbox
//! with unread counts, and analytics.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use crate::against_every_backend;
use std::time::Duration;

use crate::api_support::*;
use crate::common::Backend;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use coach_gateway::bus::StreamPayload;
use coach_gateway::config::Config;
use coach_gateway::tenancy::{SystemScope, TenantScope};
use futures::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tower::ServiceExt;

against_every_backend!(
    live_events_are_the_tenants_own_and_resume_after_a_drop,
    event_streams_are_capped_per_member_and_per_tenant,
    metrics_can_be_kept_behind_a_token,
    asking_for_a_person_waits_notifies_once_and_is_handed_back,
    bad_console_input_gets_clear_errors,
);

/// A `GET /v1/events` connection.
pub(crate) struct Events {
    body: axum::body::BodyDataStream,
    buffer: String,
}

/// `GET /v1/events` as `token`, resuming after `last`.
pub(crate) async fn events_request(
    app: &App,
    token: &str,
    last: Option<&str>,
) -> axum::response::Response {
    let mut req = Request::get("/v1/events").header("authorization", format!("Bearer {token}"));
    if let Some(id) = last {
        req = req.header("last-event-id", id);
    }
    app.router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

impl Events {
    pub(crate) async fn open(app: &App, token: &str, last: Option<&str>) -> Self {
        let resp = events_request(app, token, last).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            body: resp.into_body().into_data_stream(),
            buffer: String::new(),
        }
    }

    /// The id of the next line without data (a quiet stream's cursor), skipping nothing else:
    /// `None` when an event comes first or nothing within `wait`.
    pub(crate) async fn idle_id(&mut self, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(cut) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..cut + 2).collect();
                if block.lines().any(|l| l.starts_with("data:")) {
                    return None;
                }
                if let Some(id) = block.lines().find_map(|l| l.strip_prefix("id:")) {
                    return Some(id.trim().to_owned());
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()??
                .unwrap();
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event (name, id, data), or `None` when nothing comes within a second.
    pub(crate) async fn next(&mut self) -> Option<(String, String, Value)> {
        self.next_within(Duration::from_secs(1)).await
    }

    /// The next event, or `None` when nothing comes within `wait`.
    pub(crate) async fn next_within(&mut self, wait: Duration) -> Option<(String, String, Value)> {
        loop {
            if let Some(cut) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..cut + 2).collect();
                let (mut name, mut id, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().into();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().into();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some((name, id, serde_json::from_str(&data).unwrap()));
            }
            let chunk = tokio::time::timeout(wait, self.body.next())
                .await
                .ok()??
                .unwrap();
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

async fn events_status(app: &App, token: &str) -> (StatusCode, HeaderMap, Value) {
    let resp = events_request(app, token, None).await;
    let (status, headers) = (resp.status(), resp.headers().clone());
    let body = if status == StatusCode::OK {
        Value::Null
    } else {
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, headers, body)
}

async fn event_streams_are_capped_per_member_and_per_tenant(b: &Backend) {
    let mut config = Config {
        public_url: "https://coach.example".into(),
        ..Config::default()
    };
    config.http.event_streams_per_member = 2;
    config.http.event_streams_per_tenant = 3;
    let app = app_with(b, config);
    let ana = app.register("ana@example.com").await;
    let bob = app.register("bob@example.com").await;
    let (status, key) = app
        .call(
            "POST",
            "/v1/api-keys",
            Some(token(&ana)),
            Some(json!({ "name": "dashboard", "role": "viewer" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let key = key["key"].as_str().unwrap().to_owned();

    let first = Events::open(&app, token(&ana), None).await;
    let _second = Events::open(&app, token(&ana), None).await;
    let (status, headers, problem) = events_status(&app, token(&ana)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    // Another principal of the tenant has room until the tenant's cap.
    let _third = Events::open(&app, &key, None).await;
    assert_eq!(
        events_status(&app, &key).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "the tenant's cap (3) is reached"
    );
    // Another tenant is not affected.
    let _bobs = Events::open(&app, token(&bob), None).await;
    // A closed stream gives its place back.
    drop(first);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _again = Events::open(&app, token(&ana), None).await;
}

async fn metrics_can_be_kept_behind_a_token(b: &Backend) {
    let mut config = Config::default();
    config.http.metrics_token = "scrape-me-9f2c".into();
    let app = app_with(b, config);
    let scrape = |auth: Option<&'static str>| {
        let mut req = Request::get("/metrics");
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        app.router.clone().oneshot(req.body(Body::empty()).unwrap())
    };
    for wrong in [
        None,
        Some("Bearer scrape-me"),
        Some("Bearer scrape-me-9f2cx"),
    ] {
        let resp = scrape(wrong).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{wrong:?}");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
    }
    let resp = scrape(Some("Bearer scrape-me-9f2c")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&body).contains("outbox_depth"),
        "the queue depths are read on the first scrape"
    );
}

pub(crate) fn scope_of(pair: &Value) -> TenantScope {
    SystemScope::new("test").for_tenant(pair["tenant_id"].as_str().unwrap().parse().unwrap())
}

pub(crate) async fn progress(app: &App, scope: &TenantScope, n: i64) {
    let payload = StreamPayload::Document {
        document_id: uuid::Uuid::nil(),
        status: "processing".into(),
        progress: 0.5,
        chunks: n,
    };
    app.state.stream.publish(scope, payload).await;
}

async fn live_events_are_the_tenants_own_and_resume_after_a_drop(b: &Backend) {
    let app = app(b);
    let ana = app.register("ana@example.com").await;
    let bob = app.register("bob@example.com").await;
    let (ana_scope, bob_scope) = (scope_of(&ana), scope_of(&bob));
    let mut ana_events = Events::open(&app, token(&ana), None).await;
    let mut bob_events = Events::open(&app, token(&bob), None).await;

    // A stored message is an event, and only its tenant sees it.
    let (_, channel) = app
        .call(
            "POST",
            "/v1/channels",
            Some(token(&ana)),
            Some(whatsapp_channel("wa")),
        )
        .await;
    let channel_id = channel["id"].as_str().unwrap().parse().unwrap();
    app.state
        .stream
        .ingest(
            &ana_scope,
            channel_id,
            vec![crate::common::text("m1", "alice", "hello")],
        )
        .await
        .unwrap();
    let (name, first_id, data) = ana_events.next().await.unwrap();
    assert_eq!(name, "message");
    assert_eq!(data["message"]["content"]["body"], "hello");
    progress(&app, &bob_scope, 7).await;
    let (name, _, data) = bob_events.next().await.unwrap();
    assert_eq!(
        (name.as_str(), data["chunks"].as_i64()),
        ("document", Some(7))
    );
    assert!(
        bob_events.next().await.is_none(),
        "bob saw another tenant's event"
    );

    // Ana's connection drops; what happens meanwhile comes back in order on reconnect.
    progress(&app, &ana_scope, 1).await;
    let (_, seen, _) = ana_events.next().await.unwrap();
    drop(ana_events);
    for n in 2..=4 {
        progress(&app, &ana_scope, n).await;
    }
    progress(&app, &bob_scope, 99).await;
    let mut resumed = Events::open(&app, token(&ana), Some(&seen)).await;
    for n in 2..=4 {
        let (name, _, data) = resumed.next().await.unwrap();
        assert_eq!(
            (name.as_str(), data["chunks"].as_i64()),
            ("document", Some(n))
        );
    }
    assert!(
        resumed.next().await.is_none(),
        "an event came twice, or bob's leaked"
    );
    // From the first event: everything after it, bob's left out.
    let mut again = Events::open(&app, token(&ana), Some(&first_id)).await;
    for n in 1..=4 {
        let (_, _, data) = again.next().await.unwrap();
        assert_eq!(data["chunks"].as_i64(), Some(n));
    }

    // An id the gateway no longer knows (or never did): reload.
    let beyond = (first_id.parse::<i64>().unwrap() + 1000).to_string();
    for unknown in [beyond, uuid::Uuid::now_v7().to_string()] {
        let mut lost = Events::open(&app, token(&ana), Some(&unknown)).await;
        assert_eq!(lost.next().await.unwrap().0, "resync", "{unknown}");
    }
    let mut junk = Events::open(&app, token(&ana), Some("not-an-id")).await;
    assert_eq!(junk.next().await.unwrap().0, "resync");

    // No token, no events.
    let resp = app
        .router
        .clone()
        .oneshot(Request::get("/v1/events").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

fn verifies(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = headers["coach-signature"].to_str().unwrap();
    let (t, v1) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .unwrap();
    let age = chrono::Utc::now().timestamp() - t.parse::<i64>().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    (0..300).contains(&age) && mac.verify_slice(&hex::decode(v1).unwrap()).is_ok()
}

async fn asking_for_a_person_waits_notifies_once_and_is_handed_back(b: &Backend) {
    let mut config = Config {
        public_url: "https://coach.example".into(),
        ..Config::default()
    };
    config.http.allow_private_webhooks = true;
    let app = app_with(b, config);
    let ana = app.register("ana@example.com").await;
    let t = Some(token(&ana));
    let scope = scope_of(&ana);
    let (url, got) = receiver(StatusCode::OK).await;
    let (status, notify) = app
        .call("PUT", "/v1/tenant/notify", t, Some(json!({ "url": url })))
        .await;
    assert_eq!(status, StatusCode::OK, "{notify}");
    let secret = notify["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let (_, shown) = app.call("GET", "/v1/tenant/notify", t, None).await;
    assert_eq!(
        shown,
        json!({ "url": url, "events": ["handoff.requested"] }),
        "the secret is shown once; handoffs are the events taken by default"
    );
    let (_, tenant) = app.call("GET", "/v1/tenant", t, None).await;
    assert!(!tenant.to_string().contains(&secret));

    let (_, channel) = app
        .call("POST", "/v1/channels", t, Some(whatsapp_channel("wa")))
        .await;
    let channel_id = channel["id"].as_str().unwrap().parse().unwrap();
    let mut events = Events::open(&app, token(&ana), None).await;
    app.state
        .stream
        .ingest(
            &scope,
            channel_id,
            vec![crate::common::text(
                "m1",
                "alice",
                "Can I talk to a human, please?",
            )],
        )
        .await
        .unwrap();
    // Handled without the models: the person is told, the conversation waits.
    assert_eq!(
        coach_gateway::knowledge::responder::poll_once(&app.state)
            .await
            .unwrap(),
        1
    );
    let mut names = Vec::new();
    while let Some((name, _, data)) = events.next().await {
        if name == "handoff" {
            assert_eq!(data["reason"], "asked_for_human");
            assert_eq!(data["question"], "Can I talk to a human, please?");
        }
        names.push(name);
    }
    assert!(names.contains(&"handoff".to_string()), "{names:?}");
    assert!(names.contains(&"conversation".to_string()), "{names:?}");

    let (_, inbox) = app.call("GET", "/v1/inbox", t, None).await;
    let item = &inbox[0];
    assert_eq!(item["conversation"]["status"], "waiting");
    assert_eq!(item["channel_kind"], "whatsapp");
    assert_eq!(item["unread"], 1);
    assert_eq!(item["last_direction"], "outbound");
    assert!(
        item["last_content"]["text"]
            .as_str()
            .unwrap()
            .contains("a person will reply")
    );
    let conversation = item["conversation"]["id"].as_str().unwrap().to_string();

    // The creator's server gets one signed notice, once.
    assert_eq!(
        coach_gateway::handoff::poll_once(&app.state).await.unwrap(),
        1
    );
    {
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 1);
        let (headers, body) = &got[0];
        assert!(
            verifies(&secret, headers, body),
            "the signature does not verify"
        );
        assert!(!verifies("whsec_other", headers, body));
        let notice: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(notice["type"], "handoff.requested");
        assert_eq!(notice["data"]["conversation_id"], conversation.as_str());
        assert_eq!(
            notice["data"]["console_url"],
            format!("https://coach.example/console#/inbox/{conversation}")
        );
    }
    // The same message again (a redelivered job) asks nobody twice.
    let message: coach_gateway::store::StoredMessage = app
        .state
        .store
        .messages(&scope, conversation.parse().unwrap(), None, 1, false)
        .await
        .unwrap()
        .remove(0);
    coach_gateway::handoff::request(
        &app.state,
        &scope,
        &message,
        "Can I talk to a human, please?",
        coach_gateway::store::console::HandoffReason::AskedForHuman,
    )
    .await
    .unwrap();
    assert_eq!(
        coach_gateway::handoff::poll_once(&app.state).await.unwrap(),
        0
    );

    // Read, taken over, handed back.
    let read = format!("/v1/conversations/{conversation}/read");
    app.expect(StatusCode::NO_CONTENT, "POST", &read, t, None)
        .await;
    let (_, inbox) = app.call("GET", "/v1/inbox", t, None).await;
    assert_eq!(inbox[0]["unread"], 0);
    let take = format!("/v1/conversations/{conversation}/takeover");
    let (_, taken) = app.call("POST", &take, t, None).await;
    assert_eq!(taken["status"], "human");
    let (name, _, data) = events.next().await.unwrap();
    assert_eq!(
        (name.as_str(), &data["conversation"]["status"]),
        ("conversation", &json!("human"))
    );
    let back = format!("/v1/conversations/{conversation}/handback");
    assert_eq!(app.call("POST", &back, t, None).await.1["status"], "open");

    // Analytics count it.
    let (status, stats) = app.call("GET", "/v1/analytics?days=7", t, None).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["days"].as_array().unwrap().len(), 7);
    let count = |direction: &str| -> i64 {
        stats["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == direction)
            .map(|m| m["count"].as_i64().unwrap())
            .sum()
    };
    assert_eq!((count("inbound"), count("outbound")), (1, 1));
    assert_eq!(stats["latency"][0]["answers"], 1);
    assert_eq!(stats["unanswered"]["asked_for_human"], 1);
    assert_eq!(
        stats["unanswered"]["recent"][0]["question"],
        "Can I talk to a human, please?"
    );

    // A failing webhook is retried later, not dropped and not hammered.
    let (failing, tries) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
    let (status, _) = app
        .call(
            "PUT",
            "/v1/tenant/notify",
            t,
            Some(json!({ "url": failing })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.state
        .stream
        .ingest(
            &scope,
            channel_id,
            vec![crate::common::text("m9", "bruno", "agent")],
        )
        .await
        .unwrap();
    coach_gateway::knowledge::responder::poll_once(&app.state)
        .await
        .unwrap();
    assert_eq!(
        coach_gateway::handoff::poll_once(&app.state).await.unwrap(),
        1
    );
    assert_eq!(tries.lock().unwrap().len(), 1);
    assert_eq!(
        coach_gateway::handoff::poll_once(&app.state).await.unwrap(),
        0
    );
    let sys = SystemScope::new("test");
    assert_eq!(
        app.state.store.stats(&sys).await.unwrap().jobs_depth,
        1,
        "the notice waits for its retry"
    );

    // Another tenant sees none of it.
    let bob = app.register("bob@example.com").await;
    let tb = Some(token(&bob));
    assert_eq!(app.call("GET", "/v1/inbox", tb, None).await.1, json!([]));
    app.expect(StatusCode::NOT_FOUND, "POST", &read, tb, None)
        .await;
    let (_, theirs) = app.call("GET", "/v1/analytics", tb, None).await;
    assert_eq!(theirs["messages"], json!([]));
    assert_eq!(theirs["unanswered"]["asked_for_human"], 0);
}

async fn bad_console_input_gets_clear_errors(b: &Backend) {
    let app = app(b);
    let ana = app.register("ana@example.com").await;
    let t = Some(token(&ana));
    for (url, why) in [
        ("ftp://example.com/x", "http"),
        ("not a url", "url"),
        ("http://127.0.0.1:9/hook", "public"),
        ("http://10.0.0.8/hook", "public"),
    ] {
        let (status, problem) = app
            .call("PUT", "/v1/tenant/notify", t, Some(json!({ "url": url })))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        assert!(
            problem["detail"].as_str().unwrap().contains(why),
            "{problem}"
        );
    }
    for q in ["days=0", "days=366", "days=x"] {
        let (status, _) = app
            .call("GET", &format!("/v1/analytics?{q}"), t, None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}");
    }
    app.expect(StatusCode::BAD_REQUEST, "GET", "/v1/inbox?limit=0", t, None)
        .await;
    app.expect(
        StatusCode::NOT_FOUND,
        "POST",
        "/v1/conversations/nope/read",
        t,
        None,
    )
    .await;
    // Viewers read the console but cannot point the creator's webhook anywhere.
    let (_, key) = app
        .call(
            "POST",
            "/v1/api-keys",
            t,
            Some(json!({ "name": "ro", "role": "viewer" })),
        )
        .await;
    let viewer = key["key"].as_str().unwrap();
    app.expect(StatusCode::OK, "GET", "/v1/inbox", Some(viewer), None)
        .await;
    app.expect(
        StatusCode::FORBIDDEN,
        "PUT",
        "/v1/tenant/notify",
        Some(viewer),
        Some(json!({ "url": "https://example.com" })),
    )
    .await;
}
