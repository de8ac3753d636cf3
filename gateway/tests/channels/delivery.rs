//! Delivery: retries in order, dead letters and their resend.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::api_support::*;
use crate::common::Backend;
use crate::support::*;

crate::against_every_backend!(failures_are_retried_in_order_and_dead_letters_resent,);

/// Replies in one conversation while the Graph API throttles, fails and times out: each is
/// delivered exactly once, in order; a permanent error dead-letters one, and the admin API's
/// retry really resends it.
pub(crate) async fn failures_are_retried_in_order_and_dead_letters_resent(b: &Backend) {
    let w = world(b, false).await;
    let owner = w.app.register("fail@example.com").await;
    let t = token(&owner).to_owned();
    let channel = create(&w, &t, "whatsapp", whatsapp_config()).await;
    let hook = format!("/webhooks/whatsapp/{}", channel["id"].as_str().unwrap());
    let hello = wa_text("wamid.H", "hello");
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
