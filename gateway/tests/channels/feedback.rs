//! Feedback on answers: a WhatsApp reaction and a Telegram `message_reaction` to the coach's
//! answers (real brain, loopback providers) are recorded against the answer and its question;
//! a new reaction replaces the old, a removed one withdraws it, a reaction to anything else is
//! no feedback. Analytics list the unhelpful answers beside unanswered questions; the export
//! holds the contact's feedback and erasure takes it.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::api_support::*;
use crate::common::Backend;
use crate::support::*;

crate::against_every_backend!(reactions_rate_answers_on_whatsapp_and_telegram,);

const TG_CHAT: i64 = 77;

fn wa_reaction(id: &str, to: &str, emoji: &str) -> Vec<u8> {
    wa_webhook(json!({
        "contacts": [{ "profile": { "name": "Ana" }, "wa_id": "4915112345678" }],
        "messages": [{ "from": "4915112345678", "id": id, "timestamp": "1700000300", "type": "reaction",
            "reaction": { "message_id": to, "emoji": emoji } }],
    }))
}

fn tg_update(update: Value) -> Vec<u8> {
    serde_json::to_vec(&update).unwrap()
}

/// The contact called `name`.
async fn contact_id(w: &World, t: &str, name: &str) -> String {
    let (_, contacts) = w.app.call("GET", "/v1/contacts", Some(t), None).await;
    contacts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["display_name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {contacts}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The provider id of the newest outbound message to `name`, and the conversation.
async fn answer_of(w: &World, t: &str, name: &str) -> (String, String) {
    let contact = contact_id(w, t, name).await;
    let (_, convs) = w.app.call("GET", "/v1/conversations", Some(t), None).await;
    let conv = convs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["contact_id"] == contact.as_str())
        .unwrap_or_else(|| panic!("no conversation with {name}: {convs}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, msgs) = w
        .app
        .call(
            "GET",
            &format!("/v1/conversations/{conv}/messages"),
            Some(t),
            None,
        )
        .await;
    let out = msgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|m| m["direction"] == "outbound")
        .unwrap_or_else(|| panic!("no answer: {msgs}"))
        .clone();
    (
        out["provider_message_id"]
            .as_str()
            .unwrap_or_else(|| panic!("not sent: {out}"))
            .to_owned(),
        conv,
    )
}

async fn feedback(w: &World, t: &str) -> Value {
    while coach_gateway::feedback::poll_once(&w.app.state)
        .await
        .unwrap()
        > 0
    {}
    let (status, a) = w.app.call("GET", "/v1/analytics", Some(t), None).await;
    assert_eq!(status, StatusCode::OK, "{a}");
    a["feedback"].clone()
}

pub(crate) async fn reactions_rate_answers_on_whatsapp_and_telegram(b: &Backend) {
    let w = world(b, true).await;
    let t = tenant_with_knowledge(&w, "feedback@example.com").await;
    let wa = create(&w, &t, "whatsapp", whatsapp_config()).await;
    let wa_hook = format!("/webhooks/whatsapp/{}", wa["id"].as_str().unwrap());
    let post_wa = |body: Vec<u8>| {
        let sig = meta_signature(&body);
        let hook = wa_hook.clone();
        let w = &w;
        async move {
            assert_eq!(
                w.post(&hook, &[("x-hub-signature-256", sig)], body).await.0,
                200
            );
        }
    };
    let tg = create(&w, &t, "telegram", json!({ "bot_token": BOT_TOKEN })).await;
    let tg_hook = format!("/webhooks/telegram/{}", tg["id"].as_str().unwrap());
    let registration = w.fake.requests_to("/setWebhook")[0].json();
    assert!(
        registration["allowed_updates"]
            .as_array()
            .unwrap()
            .contains(&json!("message_reaction")),
        "{registration}"
    );
    let secret = registration["secret_token"].as_str().unwrap().to_owned();
    let post_tg = |body: Vec<u8>| {
        let hook = tg_hook.clone();
        let header = [("x-telegram-bot-api-secret-token", secret.clone())];
        let w = &w;
        async move { assert_eq!(w.post(&hook, &header, body).await.0, 200) }
    };

    // Ana asks on WhatsApp, Ben on Telegram; the coach answers both.
    post_wa(wa_text("wamid.Q1", "When should I stop drinking coffee?")).await;
    post_tg(tg_update(
        json!({ "update_id": 1, "message": { "message_id": 1, "date": 1_700_000_000,
        "from": { "id": TG_CHAT, "is_bot": false, "first_name": "Ben" },
        "chat": { "id": TG_CHAT, "type": "private", "first_name": "Ben" },
        "text": "How many hours of sleep do adults need?" } }),
    ))
    .await;
    assert_eq!(w.answer_all().await, 2);
    w.deliver().await;
    let (wa_answer, wa_conv) = answer_of(&w, &t, "Ana").await;
    let (tg_answer, _) = answer_of(&w, &t, "Ben").await;

    // Nothing yet.
    let f = feedback(&w, &t).await;
    assert_eq!(
        (f["helpful"].as_i64(), f["unhelpful"].as_i64()),
        (Some(0), Some(0)),
        "{f}"
    );

    // 👎 on WhatsApp (twice: the redelivery is one reaction), then Ben's 👍 on Telegram.
    for _ in 0..2 {
        post_wa(wa_reaction("wamid.R1", &wa_answer, "👎")).await;
    }
    post_tg(tg_update(json!({ "update_id": 2, "message_reaction": {
        "chat": { "id": TG_CHAT, "type": "private" }, "message_id": tg_answer.parse::<i64>().unwrap(),
        "user": { "id": TG_CHAT, "is_bot": false, "first_name": "Ben" }, "date": 1_700_000_100,
        "old_reaction": [], "new_reaction": [{ "type": "emoji", "emoji": "👍" }] } })))
    .await;
    // A reaction to Ana's own message is no feedback on an answer.
    post_wa(wa_reaction("wamid.R2", "wamid.Q1", "😂")).await;
    // The coach does not answer reactions.
    assert_eq!(w.answer_all().await, 0);
    let f = feedback(&w, &t).await;
    assert_eq!(
        (
            f["helpful"].as_i64(),
            f["unhelpful"].as_i64(),
            f["other"].as_i64()
        ),
        (Some(1), Some(1), Some(0)),
        "{f}"
    );
    let recent = &f["recent"][0];
    assert_eq!(
        recent["question"], "When should I stop drinking coffee?",
        "{f}"
    );
    assert_eq!(recent["emoji"], "👎");
    assert_eq!(recent["conversation_id"], wa_conv.as_str());
    assert!(!recent["answer"].as_str().unwrap().is_empty(), "{f}");

    // Ana changes her mind (👍 replaces 👎); Ben takes his back.
    post_wa(wa_reaction("wamid.R3", &wa_answer, "❤️")).await;
    post_tg(tg_update(json!({ "update_id": 3, "message_reaction": {
        "chat": { "id": TG_CHAT, "type": "private" }, "message_id": tg_answer.parse::<i64>().unwrap(),
        "user": { "id": TG_CHAT, "is_bot": false, "first_name": "Ben" }, "date": 1_700_000_200,
        "old_reaction": [{ "type": "emoji", "emoji": "👍" }], "new_reaction": [] } })))
    .await;
    let f = feedback(&w, &t).await;
    assert_eq!(
        (
            f["helpful"].as_i64(),
            f["unhelpful"].as_i64(),
            f["recent"].as_array().unwrap().len()
        ),
        (Some(1), Some(0), 0),
        "{f}"
    );

    // Another tenant sees none of it; the export holds it; erasure takes it.
    let other = w.app.register("feedback-other@example.com").await;
    let (_, a) = w
        .app
        .call("GET", "/v1/analytics", Some(token(&other)), None)
        .await;
    assert_eq!(a["feedback"]["helpful"], 0, "{a}");
    let ana = contact_id(&w, &t, "Ana").await;
    let (_, export) = w
        .app
        .call("GET", &format!("/v1/contacts/{ana}/export"), Some(&t), None)
        .await;
    assert_eq!(export["feedback"][0]["emoji"], "❤️", "{export}");
    assert_eq!(export["feedback"][0]["rating"], 1);
    let (status, _) = w
        .app
        .call("DELETE", &format!("/v1/contacts/{ana}"), Some(&t), None)
        .await;
    assert!(status.is_success());
    let f = feedback(&w, &t).await;
    assert_eq!(f["helpful"], 0, "{f}");

    // Pruned by retention: Ben's 👎 is kept within the period, gone after it.
    post_tg(tg_update(json!({ "update_id": 4, "message_reaction": {
        "chat": { "id": TG_CHAT, "type": "private" }, "message_id": tg_answer.parse::<i64>().unwrap(),
        "user": { "id": TG_CHAT, "is_bot": false, "first_name": "Ben" }, "date": 1_700_000_300,
        "old_reaction": [], "new_reaction": [{ "type": "emoji", "emoji": "👎" }] } })))
    .await;
    assert_eq!(feedback(&w, &t).await["unhelpful"], 1);
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
    let sys = coach_gateway::tenancy::SystemScope::new("test");
    let now = chrono::Utc::now();
    w.app.state.store.apply_retention(&sys, now).await.unwrap();
    assert_eq!(feedback(&w, &t).await["unhelpful"], 1);
    let later = now + chrono::Duration::days(10);
    w.app
        .state
        .store
        .apply_retention(&sys, later)
        .await
        .unwrap();
    let f = feedback(&w, &t).await;
    assert_eq!(
        (f["helpful"].as_i64(), f["unhelpful"].as_i64()),
        (Some(0), Some(0)),
        "{f}"
    );
}
