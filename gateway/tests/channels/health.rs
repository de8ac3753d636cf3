//! Channel health: a WhatsApp access token that stops working fails the channel in
//! `GET /v1/channels/health` and mails the owner once; a message that goes out again heals it;
//! dead letters piling up warn. Another tenant sees none of it.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::api_support::*;
use crate::common::Backend;
use crate::support::*;

crate::against_every_backend!(a_failing_channel_is_shown_and_mailed_once,);

async fn health(w: &World, t: &str) -> Vec<Value> {
    let (status, body) = w
        .app
        .call("GET", "/v1/channels/health", Some(t), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

async fn reply(w: &World, t: &str, conversation: &str, text: &str) {
    let (status, body) = w
        .app
        .call(
            "POST",
            &format!("/v1/conversations/{conversation}/messages"),
            Some(t),
            Some(json!({ "text": text })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn mail_due(w: &World) -> usize {
    coach_gateway::notify::email::poll_once(&w.app.state)
        .await
        .unwrap()
}

async fn a_failing_channel_is_shown_and_mailed_once(b: &Backend) {
    // Accounts are made before the relay is on (with it, new addresses confirm first).
    let plain = app(b);
    let owner = plain.register("health-owner@example.com").await;
    let other = plain.register("health-other@example.com").await;
    let sink = coach_e2e::smtp::start().await.unwrap();
    let url = sink.url.clone();
    let w = world_with(b, false, coach_gateway::clock::Clock::system(), move |c| {
        c.smtp.url = url;
    })
    .await;
    let mails = || -> Vec<String> {
        sink.messages
            .lock()
            .unwrap()
            .iter()
            .map(|m| {
                m.replace("=\r\n", "")
                    .replace("=\n", "")
                    .replace("=3D", "=")
            })
            .collect()
    };
    let t = token(&owner).to_owned();
    let channel = create(&w, &t, "whatsapp", whatsapp_config()).await;
    let id = channel["id"].as_str().unwrap().to_owned();
    let hello = wa_text("wamid.HEALTH", "hello");
    let hook = format!("/webhooks/whatsapp/{id}");
    let sig = meta_signature(&hello);
    assert_eq!(
        w.post(&hook, &[("x-hub-signature-256", sig)], hello)
            .await
            .0,
        200
    );
    let (_, convs) = w.app.call("GET", "/v1/conversations", Some(&t), None).await;
    let conv = convs["items"][0]["id"].as_str().unwrap().to_owned();

    let all = health(&w, &t).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["channel_id"], id.as_str());
    assert_eq!(all[0]["status"], "ok", "{all:?}");

    // The token expires: Graph answers 401 with code 190 to every send.
    let path = format!("/{PHONE_ID}/messages");
    let expired = json!({ "error": { "code": 190, "type": "OAuthException",
        "message": "Error validating access token: Session has expired on Tuesday" } });
    for n in 1..=2 {
        w.fake.fail_next(&path, 401, expired.clone(), &[]);
        reply(&w, &t, &conv, &format!("reply {n}")).await;
    }
    w.deliver().await;
    let failing = health(&w, &t).await;
    assert_eq!(failing[0]["status"], "failing", "{failing:?}");
    assert_eq!(failing[0]["problems"][0]["code"], "token");
    assert!(
        failing[0]["problems"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("190: Error validating access token"),
        "{failing:?}"
    );
    assert_eq!(failing[0]["dead_letters"], 2);

    // Two dead letters, one e-mail, to the owner.
    assert_eq!(mail_due(&w).await, 1);
    assert_eq!(mail_due(&w).await, 0);
    let got = mails();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains("To: health-owner@example.com"),
        "{}",
        got[0]
    );
    assert!(
        got[0].contains("The provider refused the channel"),
        "{}",
        got[0]
    );
    assert!(got[0].contains("/console#/channels"), "{}", got[0]);
    assert!(
        got[0].contains("190: Error validating access token"),
        "{}",
        got[0]
    );

    // Another tenant sees only its own channel, healthy, none of the first one's failures.
    let ot = token(&other).to_owned();
    let mut config = whatsapp_config();
    config["phone_number_id"] = json!("106540352242999");
    let theirs = create(&w, &ot, "whatsapp", config).await;
    let seen = health(&w, &ot).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["channel_id"], theirs["id"]);
    assert_eq!(seen[0]["status"], "ok");
    assert_eq!(seen[0]["dead_letters"], 0);

    // A new token is saved and a message goes out: healthy again.
    let (status, _) = w
        .app
        .call(
            "PATCH",
            &format!("/v1/channels/{id}"),
            Some(&t),
            Some(
                json!({ "config": { "phone_number_id": PHONE_ID, "access_token": "EAAG-new-token",
                "app_secret": "********", "verify_token": "verify-me" } }),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    reply(&w, &t, &conv, "back again").await;
    w.deliver().await;
    let healed = health(&w, &t).await;
    assert_eq!(healed[0]["status"], "ok", "{healed:?}");
    assert_eq!(healed[0]["dead_letters"], 2, "dead letters stay counted");

    // Messages keep dying for another reason: a warning, mailed once.
    let undeliverable = json!({ "error": { "code": 131026, "message": "Message undeliverable" } });
    for n in 1..=3 {
        w.fake.fail_next(&path, 400, undeliverable.clone(), &[]);
        reply(&w, &t, &conv, &format!("lost {n}")).await;
    }
    w.deliver().await;
    let warned = health(&w, &t).await;
    assert_eq!(warned[0]["status"], "warning", "{warned:?}");
    assert_eq!(warned[0]["problems"][0]["code"], "dead_letters");
    assert_eq!(warned[0]["dead_letters"], 5);
    assert_eq!(mail_due(&w).await, 1);
    let got = mails();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[1].contains("Several messages could not be delivered"),
        "{}",
        got[1]
    );
    assert!(
        got[1].contains("131026: Message undeliverable"),
        "{}",
        got[1]
    );
}
