//! WhatsApp: a conversation end to end, the 24-hour window, media.

use axum::http::StatusCode;
use coach_gateway::tenancy::SystemScope;
use serde_json::{Value, json};

use crate::api_support::*;
use crate::common::{self, Backend};
use crate::support::*;

crate::against_every_backend!(
    whatsapp_conversation_end_to_end,
    the_whatsapp_window_holds_free_form_replies,
    a_131047_falls_back_to_the_template,
    whatsapp_media_is_fetched_checked_and_erased,
    a_suspended_tenants_webhooks_are_refused_until_resumed,
);

/// A WhatsApp conversation: the handshake, a signed question delivered three times, one
/// brain answer sent once through the Graph API, statuses out of order ending at `read`.
pub(crate) async fn whatsapp_conversation_end_to_end(b: &Backend) {
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
                &[("x-hub-signature-256", meta_signature(&question))],
                question.clone(),
            )
            .await;
        assert_eq!(status, 200);
    }
    let (status, _) = w
        .post(
            &hook,
            &[("x-hub-signature-256", meta_signature(b"other"))],
            question.clone(),
        )
        .await;
    assert_eq!(status, 401, "a bad signature is refused");
    let garbage = b"{\"object\":\"page\"}".to_vec();
    let (status, _) = w
        .post(
            &hook,
            &[("x-hub-signature-256", meta_signature(&garbage))],
            garbage,
        )
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
            w.post(
                &hook,
                &[("x-hub-signature-256", meta_signature(&body))],
                body
            )
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
        w.post(
            &hook,
            &[("x-hub-signature-256", meta_signature(b"x"))],
            other
        )
        .await
        .0,
        401
    );
}

/// Outside the 24-hour window a free-form reply is held (dead, code `held`), never sent.
pub(crate) async fn the_whatsapp_window_holds_free_form_replies(b: &Backend) {
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

/// The provider's word wins: a 131047 inside what we took for the window sends the channel's
/// fallback template instead.
pub(crate) async fn a_131047_falls_back_to_the_template(b: &Backend) {
    let w = world(b, false).await;
    let owner = w.app.register("closed@example.com").await;
    let t = token(&owner).to_owned();
    let mut config = whatsapp_config();
    config["fallback_template"] = json!({ "name": "checkin", "language": "en_US" });
    let channel = create(&w, &t, "whatsapp", config).await;
    let hook = format!("/webhooks/whatsapp/{}", channel["id"].as_str().unwrap());
    let hello = wa_text("wamid.W", "hello");
    assert_eq!(
        w.post(
            &hook,
            &[("x-hub-signature-256", meta_signature(&hello))],
            hello
        )
        .await
        .0,
        200
    );
    let conv = w
        .app
        .call("GET", "/v1/conversations", Some(&t), None)
        .await
        .1["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/{PHONE_ID}/messages");
    w.fake.fail_next(
        &path,
        400,
        json!({ "error": { "code": 131047, "message": "Re-engagement message" } }),
        &[],
    );
    w.app
        .call(
            "POST",
            &format!("/v1/conversations/{conv}/messages"),
            Some(&t),
            Some(json!({ "text": "Checking in!" })),
        )
        .await;
    w.deliver().await;
    let kinds: Vec<Value> = w
        .fake
        .requests_to(&path)
        .iter()
        .map(|r| r.json()["type"].clone())
        .collect();
    assert_eq!(kinds, [json!("text"), json!("template")]);
    assert_eq!(
        w.fake.requests_to(&path)[1].json()["template"]["name"],
        "checkin"
    );
    assert_eq!(w.messages(&t).await.last().unwrap()["status"], "sent");
}

/// Media sent on WhatsApp is fetched at once through the Graph API's two steps, checked and
/// kept; the admin API serves it; a file of the wrong type or size is refused; erasing the
/// contact removes the files.
pub(crate) async fn whatsapp_media_is_fetched_checked_and_erased(b: &Backend) {
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
            w.post(
                &hook,
                &[("x-hub-signature-256", meta_signature(&body))],
                body
            )
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
    // Read from its bytes: the console shows it in place.
    assert_eq!(resp.headers()["x-media-kind"], "image");
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
    // The contact's export carries the file they sent.
    let (status, archive) = w
        .app
        .call(
            "GET",
            &format!(
                "/v1/contacts/{}/export",
                kept["contact_id"].as_str().unwrap()
            ),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let exported = archive["conversations"][0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == kept["id"])
        .unwrap();
    assert_eq!(exported["media"]["mime"], "image/jpeg");
    assert_eq!(
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            exported["media"]["base64"].as_str().unwrap()
        )
        .unwrap(),
        jpeg
    );

    let media_dir = w.app.state.config.data_dir.join("media");
    assert!(media_dir.exists());
    let mode = |p: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&media_dir), 0o700, "media directories are private");
    for tenant in std::fs::read_dir(&media_dir).unwrap() {
        for contact in std::fs::read_dir(tenant.unwrap().path()).unwrap() {
            for file in std::fs::read_dir(contact.unwrap().path()).unwrap() {
                assert_eq!(
                    mode(&file.unwrap().path()),
                    0o600,
                    "media files are private"
                );
            }
        }
    }

    // Retention: a file older than the tenant's retention period goes; a recent one stays.
    let tenant = owner["tenant_id"].as_str().unwrap();
    let contact = msgs[0]["contact_id"].as_str().unwrap();
    let file = media_dir
        .join(tenant)
        .join(contact)
        .join(kept["id"].as_str().unwrap());
    let (status, _) = w
        .app
        .call(
            "PATCH",
            "/v1/tenant",
            Some(&t),
            Some(json!({ "retention_days": 1 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let sys = SystemScope::new("test");
    coach_gateway::server::media_retention(&w.app.state, &sys).await;
    assert!(
        file.exists(),
        "a file younger than the retention period is kept"
    );
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400))
        .unwrap();
    coach_gateway::server::media_retention(&w.app.state, &sys).await;
    assert!(
        !file.exists(),
        "a file past the retention period is removed"
    );
    let (status, _) = w
        .app
        .call("DELETE", &format!("/v1/contacts/{contact}"), Some(&t), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        !media_dir.join(tenant).join(contact).exists(),
        "erasing the contact removed their files"
    );
}

/// A suspended tenant's webhooks answer 503 with `Retry-After` and store nothing (WhatsApp
/// retries); once resumed, the redelivery is stored.
pub(crate) async fn a_suspended_tenants_webhooks_are_refused_until_resumed(b: &Backend) {
    let w = world(b, false).await;
    let owner = w.app.register("paused@example.com").await;
    let t = token(&owner).to_owned();
    let channel = create(&w, &t, "whatsapp", whatsapp_config()).await;
    let hook = format!("/webhooks/whatsapp/{}", channel["id"].as_str().unwrap());
    let tenant =
        coach_connector_api::TenantId(owner["tenant_id"].as_str().unwrap().parse().unwrap());
    let sys = SystemScope::new("test");
    let scope = sys.for_tenant(tenant);
    b.store
        .set_tenant_active(&sys, tenant, false)
        .await
        .unwrap();
    let question = wa_text("wamid.S1", "Are you there?");
    let resp = w
        .http
        .post(format!("{}{hook}", w.base))
        .header("x-hub-signature-256", meta_signature(&question))
        .body(question.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "3600");
    assert_eq!(common::count_messages(b, &scope).await, 0, "nothing stored");

    b.store.set_tenant_active(&sys, tenant, true).await.unwrap();
    let (status, _) = w
        .post(
            &hook,
            &[("x-hub-signature-256", meta_signature(&question))],
            question,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        common::count_messages(b, &scope).await,
        1,
        "the redelivery is stored"
    );
}
