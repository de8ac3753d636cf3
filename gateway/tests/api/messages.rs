//! A conversation's messages page by page on SQLite and PostgreSQL: oldest first by default, or
//! newest first (`order=newest`) so a long conversation opens on its latest messages and pages
//! back in time; another tenant reads none of them.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use crate::against_every_backend;
use crate::api_support::*;
use axum::http::StatusCode;
use serde_json::Value;

use crate::common::Backend;

against_every_backend!(a_long_conversation_opens_on_its_newest_messages);

fn bodies(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"]["body"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_long_conversation_opens_on_its_newest_messages(b: &Backend) {
    let app = app(b);
    let (pair, scope, channel_id) = tenant_with_channel(&app, "long@example.com").await;
    let t = Some(token(&pair));
    for i in 1..=7 {
        let event = crate::common::text(&format!("m{i}"), "ana", &format!("message {i}"));
        b.store
            .ingest(&scope, channel_id, vec![event])
            .await
            .unwrap();
    }
    let (_, convs) = app.call("GET", "/v1/conversations", t, None).await;
    let id = convs["items"][0]["id"].as_str().unwrap().to_owned();
    let page = |query: String| {
        let app = &app;
        let path = format!("/v1/conversations/{id}/messages?{query}");
        async move { app.expect(StatusCode::OK, "GET", &path, t, None).await }
    };

    let first = page("order=newest&limit=3".into()).await;
    assert_eq!(bodies(&first), ["message 7", "message 6", "message 5"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = page(format!("order=newest&limit=3&cursor={cursor}")).await;
    assert_eq!(bodies(&second), ["message 4", "message 3", "message 2"]);
    let cursor = second["next_cursor"].as_str().unwrap();
    let last = page(format!("order=newest&limit=3&cursor={cursor}")).await;
    assert_eq!(bodies(&last), ["message 1"]);
    assert!(last["next_cursor"].is_null(), "{last}");

    // The default is unchanged: oldest first.
    let oldest = page("limit=2".into()).await;
    assert_eq!(bodies(&oldest), ["message 1", "message 2"]);
    let (status, _) = app
        .call(
            "GET",
            &format!("/v1/conversations/{id}/messages?order=sideways"),
            t,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let other = app.register("other-long@example.com").await;
    let (status, _) = app
        .call(
            "GET",
            &format!("/v1/conversations/{id}/messages?order=newest"),
            Some(token(&other)),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another tenant reads nothing"
    );
}
