#![allow(clippy::unwrap_used, missing_docs)]
//! WhatsApp, Telegram and the SMS plugin end to end against loopback fakes of their provider
//! APIs, on SQLite and PostgreSQL: signed webhooks in, brain answers out through the outbox,
//! redeliveries and out-of-order statuses, failures with retries, dead letters and their resend.

mod api_support;
mod common;

use std::sync::Arc;
use std::time::Duration;

use api_support::*;
use axum::http::StatusCode;
use coach_e2e::fake_provider::FakeProvider;
use coach_gateway::config::Config;
use coach_gateway::tenancy::SystemScope;
use common::Backend;
use hmac::Mac;
use serde_json::{Value, json};

const PHONE_ID: &str = "106540352242922";
const APP_SECRET: &str = "meta-app-secret";
const BOT_TOKEN: &str = "123456789:AAE_fake-bot-token";

const GUIDE: &[u8] = b"# Sleep guide\n\nStop drinking coffee eight hours before bed. Caffeine stays in the blood for hours and delays deep sleep.\n\nKeep the bedroom cool, dark and quiet.\n";

struct World {
    app: App,
    fake: FakeProvider,
    base: String,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

async fn world(b: &Backend, brain: bool) -> World {
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
    async fn deliver(&self) {
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

    async fn answer_all(&self) -> usize {
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

    async fn post(&self, path: &str, headers: &[(&str, String)], body: Vec<u8>) -> (u16, Vec<u8>) {
        let mut req = self.http.post(format!("{}{path}", self.base)).body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
    }

    async fn messages(&self, token: &str) -> Vec<Value> {
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

fn whatsapp_config() -> Value {
    json!({ "phone_number_id": PHONE_ID, "access_token": "EAAG-live-token", "app_secret": APP_SECRET, "verify_token": "verify-me" })
}

fn sign(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn wa_webhook(value: Value) -> Vec<u8> {
    let mut value = value;
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] =
        json!({ "display_phone_number": "15550001111", "phone_number_id": PHONE_ID });
    serde_json::to_vec(&json!({ "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": value }] }] }))
    .unwrap()
}

fn wa_text(id: &str, body: &str) -> Vec<u8> {
    wa_webhook(json!({
        "contacts": [{ "profile": { "name": "Ana" }, "wa_id": "4915112345678" }],
        "messages": [{ "from": "4915112345678", "id": id, "timestamp": "1700000000", "type": "text", "text": { "body": body } }],
    }))
}

fn wa_status(id: &str, status: &str) -> Vec<u8> {
    wa_webhook(
        json!({ "statuses": [{ "id": id, "status": status, "timestamp": "1700000100", "recipient_id": "4915112345678" }] }),
    )
}

async fn tenant_with_knowledge(w: &World, email: &str) -> String {
    let owner = w.app.register(email).await;
    let t = token(&owner).to_owned();
    w.app.upload(&t, "sleep.md", "text/markdown", GUIDE).await;
    w.app.ingest_all().await;
    t
}

async fn create(w: &World, t: &str, kind: &str, config: Value) -> Value {
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

/// A WhatsApp conversation: the handshake, a signed question delivered three times, one
/// brain answer sent once through the Graph API, statuses out of order ending at `read`.
async fn whatsapp_conversation_end_to_end(b: &Backend) {
    let w = world(b, true).await;
    let t = tenant_with_knowledge(&w, "wa@example.com").await;
    let channel = create(&w, &t, "whatsapp", whatsapp_config()).await;
    let hook = format!("/webhooks/whatsapp/{}", channel["id"].as_str().unwrap());
    assert_eq!(
        channel["webhook_url"].as_str().unwrap(),
        format!("{}{hook}", w.base)
    );

    let verify = |token: &str| {
        format!(
            "{}{hook}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=8472",
            w.base
        )
    };
    let ok = w.http.get(verify("verify-me")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "8472");
    assert_eq!(
        w.http.get(verify("guess")).send().await.unwrap().status(),
        403
    );

    let question = wa_text("wamid.Q1", "When should I stop drinking coffee?");
    for _ in 0..3 {
        let (status, _) = w
            .post(
                &hook,
                &[("x-hub-signature-256", sign(&question))],
                question.clone(),
            )
            .await;
        assert_eq!(status, 200);
    }
    let (status, _) = w
        .post(
            &hook,
            &[("x-hub-signature-256", sign(b"other"))],
            question.clone(),
        )
        .await;
    assert_eq!(status, 401, "a bad signature is refused");
    let garbage = b"{\"object\":\"page\"}".to_vec();
    let (status, _) = w
        .post(&hook, &[("x-hub-signature-256", sign(&garbage))], garbage)
        .await;
    assert_eq!(status, 400);

    assert_eq!(w.answer_all().await, 1, "one answer for three deliveries");
    w.deliver().await;
    let calls = w.fake.requests_to(&format!("/v21.0/{PHONE_ID}/messages"));
    let (sent, signals): (Vec<_>, Vec<_>) =
        calls.into_iter().partition(|r| r.json()["type"] == "text");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        signals
            .iter()
            .all(|r| r.json()["status"] == "read" && r.json()["message_id"] == "wamid.Q1"),
        "typing shown as a read receipt with the typing indicator: {signals:?}"
    );
    assert!(
        !signals.is_empty(),
        "the question was marked read while the answer was generated"
    );
    assert_eq!(
        sent[0].header("authorization"),
        Some("Bearer EAAG-live-token")
    );
    let body = sent[0].json();
    assert_eq!(body["to"], "4915112345678");
    assert_eq!(
        body["context"]["message_id"], "wamid.Q1",
        "the answer quotes the question"
    );
    let text = body["text"]["body"].as_str().unwrap();
    assert!(text.contains("Sources: sleep.md"), "{text}");

    // Statuses arrive out of order (and twice): the message ends at `read`.
    let out_id = w.messages(&t).await[1]["provider_message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for status in ["read", "delivered", "sent", "read"] {
        let body = wa_status(&out_id, status);
        assert_eq!(
            w.post(&hook, &[("x-hub-signature-256", sign(&body))], body)
                .await
                .0,
            200
        );
    }
    let msgs = w.messages(&t).await;
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1]["status"], "read");

    // Another tenant's app secret cannot post into this channel.
    let mut other = wa_text("wamid.X", "hi");
    other.extend_from_slice(b" ");
    assert_eq!(
        w.post(&hook, &[("x-hub-signature-256", sign(b"x"))], other)
            .await
            .0,
        401
    );
}

/// A Telegram bot: creation registers the webhook with a secret, updates need it, the answer
/// goes out with sendMessage, a button tap is acknowledged, removal deletes the webhook.
async fn telegram_conversation_end_to_end(b: &Backend) {
    let w = world(b, true).await;
    let t = tenant_with_knowledge(&w, "tg@example.com").await;
    let channel = create(&w, &t, "telegram", json!({ "bot_token": BOT_TOKEN })).await;
    assert_eq!(channel["config"]["bot_token"], "********");
    let id = channel["id"].as_str().unwrap();
    let set = w.fake.requests_to("/setWebhook");
    assert_eq!(set.len(), 1);
    assert_eq!(set[0].path, format!("/bot{BOT_TOKEN}/setWebhook"));
    let secret = set[0].json()["secret_token"].as_str().unwrap().to_owned();
    assert_eq!(
        set[0].json()["url"],
        format!("{}/webhooks/telegram/{id}", w.base)
    );
    let hook = format!("/webhooks/telegram/{id}");

    let update = json!({ "update_id": 5000, "message": { "message_id": 11, "date": 1_700_000_000,
        "from": { "id": 42, "is_bot": false, "first_name": "Ana" }, "chat": { "id": 42, "type": "private" },
        "text": "When should I stop drinking coffee?" } });
    let body = serde_json::to_vec(&update).unwrap();
    assert_eq!(w.post(&hook, &[], body.clone()).await.0, 401);
    assert_eq!(
        w.post(
            &hook,
            &[("x-telegram-bot-api-secret-token", "wrong".into())],
            body.clone()
        )
        .await
        .0,
        401
    );
    for _ in 0..2 {
        assert_eq!(
            w.post(
                &hook,
                &[("x-telegram-bot-api-secret-token", secret.clone())],
                body.clone()
            )
            .await
            .0,
            200
        );
    }
    assert_eq!(w.answer_all().await, 1);
    w.deliver().await;
    let sent = w.fake.requests_to("/sendMessage");
    assert_eq!(sent.len(), 1);
    let typing = w.fake.requests_to("/sendChatAction");
    assert!(
        !typing.is_empty()
            && typing
                .iter()
                .all(|r| r.json()["action"] == "typing" && r.json()["chat_id"] == 42)
    );
    let sent = sent[0].json();
    assert_eq!(
        (
            sent["chat_id"].as_i64(),
            sent["reply_parameters"]["message_id"].as_i64()
        ),
        (Some(42), Some(11))
    );
    assert!(
        sent["text"].as_str().unwrap().contains("Sources: sleep.md"),
        "{sent}"
    );

    let tap = json!({ "update_id": 5001, "callback_query": { "id": "cbq-1", "from": { "id": 42, "first_name": "Ana" },
        "data": "more", "message": { "message_id": 12, "date": 1_700_000_010, "chat": { "id": 42, "type": "private" } } } });
    let (status, answer) = w
        .post(
            &hook,
            &[("x-telegram-bot-api-secret-token", secret.clone())],
            serde_json::to_vec(&tap).unwrap(),
        )
        .await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(
        answer,
        json!({ "method": "answerCallbackQuery", "callback_query_id": "cbq-1" })
    );

    let (status, _) = w
        .app
        .call("DELETE", &format!("/v1/channels/{id}"), Some(&t), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(w.fake.requests_to("/deleteWebhook").len(), 1);
    assert_eq!(
        w.post(&hook, &[("x-telegram-bot-api-secret-token", secret)], body)
            .await
            .0,
        404
    );
}

/// A bot token Telegram refuses: a 502 naming the reason, the token nowhere in it, and no
/// channel left behind.
async fn a_refused_bot_leaves_no_channel(b: &Backend) {
    let w = world(b, false).await;
    let owner = w.app.register("refused@example.com").await;
    let t = token(&owner);
    w.fake.fail_next(
        "/setWebhook",
        401,
        json!({ "ok": false, "error_code": 401, "description": "Unauthorized" }),
        &[],
    );
    let (status, problem) = w
        .app
        .call(
            "POST",
            "/v1/channels",
            Some(t),
            Some(
                json!({ "kind": "telegram", "name": "bot", "config": { "bot_token": BOT_TOKEN } }),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("Unauthorized"),
        "{problem}"
    );
    assert!(
        !problem.to_string().contains("AAE_fake"),
        "the token leaked: {problem}"
    );
    let (_, channels) = w.app.call("GET", "/v1/channels", Some(t), None).await;
    assert_eq!(channels, json!([]));
    let (status, problem) = w
        .app
        .call("POST", "/v1/channels", Some(t), Some(json!({ "kind": "whatsapp", "name": "wa", "config": { "phone_number_id": PHONE_ID, "access_token": "x", "verify_token": "v" } })))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem["detail"].as_str().unwrap().contains("app_secret"),
        "{problem}"
    );
}

/// Replies in one conversation while the Graph API throttles, fails and times out: each is
/// delivered exactly once, in order; a permanent error dead-letters one, and the admin API's
/// retry really resends it.
async fn failures_are_retried_in_order_and_dead_letters_resent(b: &Backend) {
    let w = world(b, false).await;
    let owner = w.app.register("fail@example.com").await;
    let t = token(&owner).to_owned();
    let channel = create(&w, &t, "whatsapp", whatsapp_config()).await;
    let hook = format!("/webhooks/whatsapp/{}", channel["id"].as_str().unwrap());
    let hello = wa_text("wamid.H", "hello");
    assert_eq!(
        w.post(&hook, &[("x-hub-signature-256", sign(&hello))], hello)
            .await
            .0,
        200
    );
    let (_, convs) = w.app.call("GET", "/v1/conversations", Some(&t), None).await;
    let conv = convs["items"][0]["id"].as_str().unwrap().to_owned();

    let path = format!("/{PHONE_ID}/messages");
    w.fake.fail_next(
        &path,
        429,
        json!({ "error": { "code": 130429, "message": "Rate limit hit" } }),
        &[("retry-after", "1")],
    );
    w.fake.fail_next(&path, 503, json!({}), &[]);
    w.fake.delay_next(&path, Duration::from_secs(3));
    for n in 1..=3 {
        let (status, _) = w
            .app
            .call(
                "POST",
                &format!("/v1/conversations/{conv}/messages"),
                Some(&t),
                Some(json!({ "text": format!("reply {n}") })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    w.deliver().await;
    let texts: Vec<String> = w
        .fake
        .requests_to(&path)
        .iter()
        .map(|r| r.json()["text"]["body"].as_str().unwrap_or("").to_owned())
        .collect();
    // Attempts: 429, 503, a timeout (the fake answered too late), then success; then 2 and 3.
    assert_eq!(
        texts,
        [
            "reply 1", "reply 1", "reply 1", "reply 1", "reply 2", "reply 3"
        ]
    );
    let accepted: Vec<String> = texts.iter().skip(3).cloned().collect();
    assert_eq!(
        accepted,
        ["reply 1", "reply 2", "reply 3"],
        "order kept, each accepted once"
    );

    // A permanent error: dead, visible, and resent for real by the retry action.
    w.fake.fail_next(
        &path,
        400,
        json!({ "error": { "code": 131026, "message": "Message undeliverable" } }),
        &[],
    );
    w.app
        .call(
            "POST",
            &format!("/v1/conversations/{conv}/messages"),
            Some(&t),
            Some(json!({ "text": "reply 4" })),
        )
        .await;
    w.deliver().await;
    let (status, dead) = w
        .app
        .call("GET", "/v1/outbox?state=dead", Some(&t), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(dead.as_array().unwrap().len(), 1, "{dead}");
    assert!(
        dead[0]["last_error"]
            .as_str()
            .unwrap()
            .starts_with("131026"),
        "{dead}"
    );
    let msgs = w.messages(&t).await;
    assert_eq!(msgs.last().unwrap()["status"], "failed");
    let other = w.app.register("intruder@example.com").await;
    let retry = format!("/v1/outbox/{}/retry", dead[0]["id"].as_str().unwrap());
    assert_eq!(
        w.app
            .call("POST", &retry, Some(token(&other)), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, entry) = w.app.call("POST", &retry, Some(&t), None).await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    assert_eq!(
        w.app.call("POST", &retry, Some(&t), None).await.0,
        StatusCode::CONFLICT
    );
    w.deliver().await;
    let last = w.fake.requests_to(&path).pop().unwrap().json();
    assert_eq!(last["text"]["body"], "reply 4");
    assert_eq!(w.messages(&t).await.last().unwrap()["status"], "sent");
    assert_eq!(
        w.app
            .call("GET", "/v1/outbox?state=dead", Some(&t), None)
            .await
            .1,
        json!([])
    );
    assert_eq!(
        w.app
            .call("GET", "/v1/outbox?state=lost", Some(&t), None)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}

/// Outside the 24-hour window a free-form reply is held (dead, code `held`), never sent.
async fn the_whatsapp_window_holds_free_form_replies(b: &Backend) {
    let w = world(b, false).await;
    let owner = w.app.register("window@example.com").await;
    let t = token(&owner).to_owned();
    let channel = create(&w, &t, "whatsapp", whatsapp_config()).await;
    let scope =
        SystemScope::new("test").for_tenant(owner["tenant_id"].as_str().unwrap().parse().unwrap());
    let old = common::text("wamid.OLD", "4915112345678", "hi from yesterday");
    b.store
        .ingest(
            &scope,
            channel["id"].as_str().unwrap().parse().unwrap(),
            vec![old],
        )
        .await
        .unwrap();
    // Age the inbound message past the window.
    let conv = w
        .app
        .call("GET", "/v1/conversations", Some(&t), None)
        .await
        .1["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    b.age_messages(25 * 3600).await;
    w.app
        .call(
            "POST",
            &format!("/v1/conversations/{conv}/messages"),
            Some(&t),
            Some(json!({ "text": "Checking in!" })),
        )
        .await;
    w.deliver().await;
    assert!(
        w.fake.requests_to("/messages").is_empty(),
        "nothing sent outside the window"
    );
    let dead = w
        .app
        .call("GET", "/v1/outbox?state=dead", Some(&t), None)
        .await
        .1;
    assert!(
        dead[0]["last_error"].as_str().unwrap().starts_with("held"),
        "{dead}"
    );
}

/// Media sent on WhatsApp is fetched at once through the Graph API's two steps, checked and
/// kept; the admin API serves it; a file of the wrong type or size is refused; erasing the
/// contact removes the files.
async fn whatsapp_media_is_fetched_checked_and_erased(b: &Backend) {
    let w = world(b, false).await;
    let owner = w.app.register("media@example.com").await;
    let t = token(&owner).to_owned();
    let channel = create(&w, &t, "whatsapp", whatsapp_config()).await;
    let hook = format!("/webhooks/whatsapp/{}", channel["id"].as_str().unwrap());
    let jpeg = [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[7u8; 2048][..]].concat();
    let meta = |id: &str, mime: &str| {
        json!({ "messaging_product": "whatsapp", "url": format!("{}/cdn/{id}", w.fake.base_url), "mime_type": mime, "file_size": 2052, "id": id }).to_string()
    };
    w.fake.serve(
        "/v21.0/MEDIA1",
        "application/json",
        meta("MEDIA1", "image/jpeg"),
    );
    w.fake.serve("/cdn/MEDIA1", "image/jpeg", jpeg.clone());
    w.fake.serve(
        "/v21.0/MEDIA2",
        "application/json",
        meta("MEDIA2", "image/jpeg"),
    );
    w.fake
        .serve("/cdn/MEDIA2", "text/html", "<html>not a picture</html>");
    let image = |wamid: &str, media: &str, size: u64| {
        wa_webhook(json!({
        "contacts": [{ "profile": { "name": "Ana" }, "wa_id": "4915112345678" }],
        "messages": [{ "from": "4915112345678", "id": wamid, "timestamp": "1700000000", "type": "image",
                       "image": { "id": media, "mime_type": "image/jpeg", "sha256": "x", "file_size": size, "caption": "my lunch" } }] }))
    };
    for body in [
        image("wamid.I1", "MEDIA1", 2052),
        image("wamid.I2", "MEDIA2", 2052),
        image("wamid.I3", "MEDIA3", 999_999_999),
    ] {
        assert_eq!(
            w.post(&hook, &[("x-hub-signature-256", sign(&body))], body)
                .await
                .0,
            200
        );
    }
    while coach_gateway::connectors::media::poll_once(&w.app.state)
        .await
        .unwrap()
        > 0
    {}
    let msgs = w.messages(&t).await;
    assert_eq!(msgs.len(), 3);
    let kept = &msgs[0];
    assert_eq!(kept["content"]["file"]["bytes"], 2052, "{kept}");
    assert_eq!(kept["content"]["file"]["mime"], "image/jpeg");
    let metadata = w.fake.requests_to("/v21.0/MEDIA1");
    assert_eq!(
        metadata[0].header("authorization"),
        Some("Bearer EAAG-live-token")
    );
    assert_eq!(
        w.fake.requests_to("/cdn/MEDIA1")[0].header("authorization"),
        Some("Bearer EAAG-live-token")
    );
    let resp = w
        .http
        .get(format!(
            "{}/v1/messages/{}/media",
            w.base,
            kept["id"].as_str().unwrap()
        ))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), jpeg);
    let other = w.app.register("peek@example.com").await;
    let (status, _) = w
        .app
        .call(
            "GET",
            &format!("/v1/messages/{}/media", kept["id"].as_str().unwrap()),
            Some(token(&other)),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another tenant cannot read the file"
    );
    assert!(
        msgs[1]["content"].get("file").is_none(),
        "HTML served as an image is not kept"
    );
    assert!(
        msgs[2]["content"].get("file").is_none(),
        "a file over the limit is not fetched"
    );
    assert!(w.fake.requests_to("/v21.0/MEDIA3").is_empty());
    let (status, _) = w
        .app
        .call(
            "GET",
            &format!("/v1/messages/{}/media", msgs[1]["id"].as_str().unwrap()),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let media_dir = w.app.state.config.data_dir.join("media");
    assert!(media_dir.exists());
    let contact = msgs[0]["contact_id"].as_str().unwrap();
    let (status, _) = w
        .app
        .call("DELETE", &format!("/v1/contacts/{contact}"), Some(&t), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let tenant = owner["tenant_id"].as_str().unwrap();
    assert!(
        !media_dir.join(tenant).join(contact).exists(),
        "erasing the contact removed their files"
    );
}

/// Telegram polling mode: updates fetched with getUpdates are stored, answered and confirmed.
async fn telegram_polling_mode(b: &Backend) {
    let w = world(b, false).await;
    let owner = w.app.register("poll@example.com").await;
    let t = token(&owner).to_owned();
    create(
        &w,
        &t,
        "telegram",
        json!({ "bot_token": BOT_TOKEN, "mode": "polling" }),
    )
    .await;
    assert_eq!(
        w.fake.requests_to("/deleteWebhook").len(),
        1,
        "polling needs no webhook"
    );
    w.fake.push_update(json!({ "update_id": 77, "message": { "message_id": 1, "date": 1_700_000_000,
        "from": { "id": 42, "first_name": "Ana" }, "chat": { "id": 42, "type": "private" }, "text": "hello by polling" } }));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let poller = tokio::spawn(coach_gateway::connectors::polling::run(
        w.app.state.clone(),
        shutdown.clone(),
    ));
    let mut stored = false;
    for _ in 0..100 {
        let (_, convs) = w.app.call("GET", "/v1/conversations", Some(&t), None).await;
        if convs["items"].as_array().is_some_and(|i| !i.is_empty()) {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stored, "the polled update was not stored");
    // The next poll confirms the update (offset 78).
    for _ in 0..50 {
        if w.fake
            .requests_to("/getUpdates")
            .iter()
            .any(|r| r.json()["offset"] == 78)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        w.fake
            .requests_to("/getUpdates")
            .iter()
            .any(|r| r.json()["offset"] == 78)
    );
    shutdown.cancel();
    poller.await.unwrap();
    assert_eq!(
        w.messages(&t).await[0]["content"]["body"],
        "hello by polling"
    );
}

/// The SMS plugin: the cdylib loads through the C ABI, a Twilio-signed webhook is stored, and
/// a reply goes out through the Messages API.
async fn the_sms_plugin_carries_a_conversation(b: &Backend) {
    let w = world(b, false).await;
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(
        plugin_library(),
        plugins.path().join("libcoach_sms_twilio.so"),
    )
    .unwrap();
    let mut config = (*w.app.state.config).clone();
    config.providers.plugin_dir = plugins.path().display().to_string();
    let defaults = coach_gateway::connectors::Connectors::load(Arc::new(config.clone())).unwrap();
    assert_eq!(
        defaults.api_base_url(&"sms".parse().unwrap()),
        "https://api.twilio.com",
        "the plugin's own default, unless the operator sets one"
    );
    config.providers.plugins.insert(
        "sms".into(),
        coach_gateway::config::ProviderConfig {
            api_base_url: w.fake.base_url.clone(),
        },
    );
    let connectors = coach_gateway::connectors::Connectors::load(Arc::new(config)).unwrap();
    assert!(connectors.kinds().contains(&"sms".to_owned()));
    let mut app = App {
        state: w.app.state.clone().with_connectors(connectors),
        router: w.app.router.clone(),
    };
    app.router = coach_gateway::http::router(app.state.clone());
    let owner = app.register("sms@example.com").await;
    let t = token(&owner).to_owned();
    let sid = "AC0123456789abcdef0123456789abcdef";
    let (status, channel) = app
        .call("POST", "/v1/channels", Some(&t), Some(json!({ "kind": "sms", "name": "SMS", "config": { "account_sid": sid, "auth_token": "twilio-token", "from_number": "+15550001111" } })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    let (status, bad) = app
        .call(
            "POST",
            "/v1/channels",
            Some(&t),
            Some(json!({ "kind": "sms", "name": "SMS", "config": { "account_sid": "nope" } })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    let url = channel["webhook_url"].as_str().unwrap().to_owned();
    let path = url
        .trim_start_matches(&*app.state.config.public_url)
        .to_owned();
    let pairs = [
        ("AccountSid", sid),
        ("MessageSid", "SM1"),
        ("From", "+4915100"),
        ("To", "+15550001111"),
        ("Body", "Hello coach"),
        ("NumMedia", "0"),
        ("SmsStatus", "received"),
    ];
    let params: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let signature = coach_sms_twilio::signature("twilio-token", &url, &params);
    let send = |sig: String| {
        let req = axum::http::Request::post(&path)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", sig)
            .body(axum::body::Body::from(body.clone()))
            .unwrap();
        let router = app.router.clone();
        async move {
            use tower::ServiceExt;
            let resp = router.oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    let (status, twiml) = send(signature.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(twiml.contains("<Response>"), "{twiml}");
    assert_eq!(send(signature).await.0, StatusCode::OK, "a redelivery");
    assert_eq!(send("forged".into()).await.0, StatusCode::UNAUTHORIZED);
    let (_, convs) = app.call("GET", "/v1/conversations", Some(&t), None).await;
    assert_eq!(convs["items"].as_array().unwrap().len(), 1);
    let conv = convs["items"][0]["id"].as_str().unwrap().to_owned();
    app.call(
        "POST",
        &format!("/v1/conversations/{conv}/messages"),
        Some(&t),
        Some(json!({ "text": "Hi! How can I help?" })),
    )
    .await;
    let sys = SystemScope::new("test");
    coach_gateway::outbox::poll_once(
        &*app.state.store,
        &*app.state.sender,
        &app.state.config.outbox,
        &sys,
    )
    .await
    .unwrap();
    let sent = w
        .fake
        .requests_to(&format!("/2010-04-01/Accounts/{sid}/Messages.json"));
    assert_eq!(sent.len(), 1);
    let form = sent[0].form();
    assert!(form.contains(&("To".into(), "+4915100".into())), "{form:?}");
    assert!(form.contains(&("Body".into(), "Hi! How can I help?".into())));
    assert!(
        sent[0]
            .header("authorization")
            .unwrap()
            .starts_with("Basic ")
    );
    let (_, msgs) = app
        .call(
            "GET",
            &format!("/v1/conversations/{conv}/messages"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(msgs["items"][1]["status"], "sent");
    assert!(
        msgs["items"][1]["provider_message_id"]
            .as_str()
            .unwrap()
            .starts_with("SM")
    );
}

/// The built example plugin (cargo builds the cdylib with the workspace).
fn plugin_library() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let name = format!(
        "{}coach_sms_twilio{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    [deps.join(&name), deps.parent().unwrap().join(&name)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{name} is missing: build with `cargo test --workspace`"))
}

#[tokio::test]
async fn a_library_that_is_not_a_plugin_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libnot_a_plugin.so");
    std::fs::write(&fake, b"not an ELF file").unwrap();
    let err = coach_gateway::connectors::plugins::load_dir(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("libnot_a_plugin.so") && err.contains("cannot load"),
        "{err}"
    );
    assert!(
        coach_gateway::connectors::plugins::load_dir(&dir.path().join("absent"))
            .unwrap()
            .is_empty()
    );
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(&super::common::sqlite().await).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                super::$name(&super::common::postgres().await).await;
            })*
        }
    };
}

on_both_backends!(
    whatsapp_conversation_end_to_end,
    telegram_conversation_end_to_end,
    a_refused_bot_leaves_no_channel,
    failures_are_retried_in_order_and_dead_letters_resent,
    the_whatsapp_window_holds_free_form_replies,
    telegram_polling_mode,
    the_sms_plugin_carries_a_conversation,
    whatsapp_media_is_fetched_checked_and_erased,
);
