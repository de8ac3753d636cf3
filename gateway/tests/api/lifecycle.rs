//! A conversation's lifecycle on SQLite and PostgreSQL: resolve, reopen and snooze through the
//! API (audited), a contact's message reopening a resolved conversation and waking a snoozed one
//! to the status it had, snoozes running out, bad snoozes refused, another tenant refused.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use crate::against_every_backend;
use crate::api_support::*;
use axum::http::StatusCode;
use coach_gateway::tenancy::SystemScope;
use serde_json::json;

use crate::common::Backend;

against_every_backend!(conversations_are_resolved_reopened_and_snoozed);

async fn conversations_are_resolved_reopened_and_snoozed(b: &Backend) {
    let app = app(b);
    let (pair, scope, channel_id) = tenant_with_channel(&app, "cycle@example.com").await;
    let t = Some(token(&pair));
    let write = |key: &str, text: &str| {
        let event = crate::common::text(key, "rio", text);
        let (store, scope) = (b.store.clone(), scope.clone());
        async move { store.ingest(&scope, channel_id, vec![event]).await.unwrap() }
    };
    write("c1", "hello").await;
    let (_, convs) = app.call("GET", "/v1/conversations", t, None).await;
    let id = convs["items"][0]["id"].as_str().unwrap().to_owned();
    let path = |action: &str| format!("/v1/conversations/{id}/{action}");
    let status = || {
        let app = &app;
        let get = format!("/v1/conversations/{id}");
        async move { app.expect(StatusCode::OK, "GET", &get, t, None).await["status"].clone() }
    };

    let resolved = app
        .expect(StatusCode::OK, "POST", &path("resolve"), t, None)
        .await;
    assert_eq!(resolved["status"], "resolved");
    let listed = app
        .expect(
            StatusCode::OK,
            "GET",
            "/v1/conversations?status=resolved",
            t,
            None,
        )
        .await;
    assert_eq!(listed["items"][0]["id"], id.as_str());
    let reopened = app
        .expect(StatusCode::OK, "POST", &path("reopen"), t, None)
        .await;
    assert_eq!(reopened["status"], "open");
    let audit = app
        .expect(StatusCode::OK, "GET", "/v1/audit-log", t, None)
        .await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.starts_with(&["conversation.reopen", "conversation.resolve"]),
        "{actions:?}"
    );

    // The contact writes to a resolved conversation: it is open again.
    app.expect(StatusCode::OK, "POST", &path("resolve"), t, None)
        .await;
    write("c2", "me again").await;
    assert_eq!(status().await, "open");

    // Taken over, then snoozed: the contact's message brings it back to the member.
    app.expect(StatusCode::OK, "POST", &path("takeover"), t, None)
        .await;
    let snoozed = app
        .expect(
            StatusCode::OK,
            "POST",
            &path("snooze"),
            t,
            Some(json!({ "minutes": 30 })),
        )
        .await;
    assert_eq!(snoozed["status"], "snoozed");
    assert!(snoozed["snoozed_until"].is_string(), "{snoozed}");
    write("c3", "are you there?").await;
    assert_eq!(status().await, "human");

    // Or its time runs out (the minute loop's work, run here at a chosen time).
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    app.expect(
        StatusCode::OK,
        "POST",
        &path("snooze"),
        t,
        Some(json!({ "until": until })),
    )
    .await;
    let sys = SystemScope::new("test");
    let early = b
        .store
        .wake_snoozed(&sys, until - chrono::Duration::minutes(1))
        .await
        .unwrap();
    assert!(early.is_empty(), "woken before its time");
    let woken = b.store.wake_snoozed(&sys, until).await.unwrap();
    assert_eq!(woken.len(), 1);
    assert_eq!(status().await, "human");
    assert!(
        b.store.wake_snoozed(&sys, until).await.unwrap().is_empty(),
        "woken once"
    );

    // Bad snoozes say why; another tenant cannot touch it.
    let past = chrono::Utc::now() - chrono::Duration::minutes(5);
    for bad in [
        json!({ "until": past }),
        json!({ "minutes": 0 }),
        json!({ "minutes": 5, "until": until }),
    ] {
        app.expect(
            StatusCode::UNPROCESSABLE_ENTITY,
            "POST",
            &path("snooze"),
            t,
            Some(bad),
        )
        .await;
    }
    let (code, _) = app
        .call("POST", &path("snooze"), t, Some(json!({ "hours": 2 })))
        .await;
    assert!(code.is_client_error(), "{code}");
    let other = app.register("other-cycle@example.com").await;
    for action in ["resolve", "reopen", "snooze"] {
        let body = Some(json!({ "minutes": 5 }));
        app.expect(
            StatusCode::NOT_FOUND,
            "POST",
            &path(action),
            Some(token(&other)),
            body,
        )
        .await;
    }
    assert_eq!(status().await, "human", "unchanged by the other tenant");
}
