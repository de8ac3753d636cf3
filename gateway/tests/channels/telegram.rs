//! Telegram: webhooks with their secret, a refused bot, polling mode.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::api_support::*;
use crate::common::Backend;
use crate::support::*;

crate::against_every_backend!(
    telegram_conversation_end_to_end,
    a_refused_bot_leaves_no_channel,
    telegram_polling_mode,
    the_daily_answer_quota_hands_over_to_the_team,
);

/// A Telegram bot: creation registers the webhook with a secret, updates need it, the answer
/// goes out with sendMessage, a button tap is acknowledged, removal deletes the webhook.
pub(crate) async fn telegram_conversation_end_to_end(b: &Backend) {
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
pub(crate) async fn a_refused_bot_leaves_no_channel(b: &Backend) {
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

/// Telegram polling mode: updates fetched with getUpdates are stored, answered and confirmed.
pub(crate) async fn telegram_polling_mode(b: &Backend) {
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

/// With `brain.answers_per_day` spent, the next message gets a friendly reply (never silence),
/// goes to the team as a `quota_reached` handoff, and the model is not asked.
pub(crate) async fn the_daily_answer_quota_hands_over_to_the_team(b: &Backend) {
    let w = world_with(b, true, coach_gateway::clock::Clock::system(), |c| {
        c.brain.answers_per_day = 1;
    })
    .await;
    let t = tenant_with_knowledge(&w, "quota@example.com").await;
    let channel = create(&w, &t, "telegram", json!({ "bot_token": BOT_TOKEN })).await;
    let id = channel["id"].as_str().unwrap();
    let secret = w.fake.requests_to("/setWebhook")[0].json()["secret_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for (update, text) in [
        (7000, "When should I stop drinking coffee?"),
        (7001, "How cool should the bedroom be?"),
    ] {
        let update = json!({ "update_id": update, "message": { "message_id": update, "date": 1_700_000_000,
            "from": { "id": 43, "is_bot": false, "first_name": "Bo" }, "chat": { "id": 43, "type": "private" },
            "text": text } });
        let hook = format!("/webhooks/telegram/{id}");
        let headers = [("x-telegram-bot-api-secret-token", secret.clone())];
        assert_eq!(
            w.post(&hook, &headers, serde_json::to_vec(&update).unwrap())
                .await
                .0,
            200
        );
        assert_eq!(w.answer_all().await, 1);
    }
    w.deliver().await;
    let sent: Vec<String> = w
        .fake
        .requests_to("/sendMessage")
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(!sent[0].contains("answer more today"), "{sent:?}");
    assert!(sent[1].contains("can't answer more today"), "{sent:?}");

    let (status, analytics) = w
        .app
        .call("GET", "/v1/analytics?days=1", Some(&t), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{analytics}");
    assert_eq!(analytics["unanswered"]["quota_reached"], 1, "{analytics}");
    let answers: i64 = analytics["usage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["answers"].as_i64().unwrap())
        .sum();
    assert!(
        answers <= 1,
        "the model was asked beyond the quota: {analytics}"
    );
}
