//! Labels, private notes and canned replies on SQLite and PostgreSQL: the contract's routes,
//! their 404s and 422s, another tenant's view (nothing), and the notes' place in the contact's
//! export and erasure.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use crate::against_every_backend;
use crate::api_support::*;
use axum::http::StatusCode;
use serde_json::json;

use crate::common::Backend;

against_every_backend!(a_team_labels_annotates_and_saves_replies);

async fn a_team_labels_annotates_and_saves_replies(b: &Backend) {
    let app = app(b);
    let (pair, scope, channel_id) = tenant_with_channel(&app, "team@example.com").await;
    let t = Some(token(&pair));
    let event = crate::common::text("n1", "noa", "I keep skipping breakfast");
    b.store
        .ingest(&scope, channel_id, vec![event])
        .await
        .unwrap();
    let (_, convs) = app.call("GET", "/v1/conversations", t, None).await;
    let id = convs["items"][0]["id"].as_str().unwrap().to_owned();
    let labels = format!("/v1/conversations/{id}/labels");
    let notes = format!("/v1/conversations/{id}/notes");

    // Labels: a set, cleaned and sorted; replaced whole.
    let empty = app.expect(StatusCode::OK, "GET", &labels, t, None).await;
    assert_eq!(empty, json!([]));
    let set = app
        .expect(
            StatusCode::OK,
            "PUT",
            &labels,
            t,
            Some(json!([" VIP ", "nutrition", "vip"])),
        )
        .await;
    assert_eq!(set, json!(["nutrition", "vip"]));
    let replaced = app
        .expect(
            StatusCode::OK,
            "PUT",
            &labels,
            t,
            Some(json!(["follow-up"])),
        )
        .await;
    assert_eq!(replaced, json!(["follow-up"]));
    assert_eq!(
        app.expect(StatusCode::OK, "GET", &labels, t, None).await,
        json!(["follow-up"])
    );
    app.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        "PUT",
        &labels,
        t,
        Some(json!([""])),
    )
    .await;
    let many: Vec<String> = (0..21).map(|i| format!("l{i}")).collect();
    app.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        "PUT",
        &labels,
        t,
        Some(json!(many)),
    )
    .await;

    // Notes: private, oldest first, with their author.
    let note = app
        .expect(
            StatusCode::CREATED,
            "POST",
            &notes,
            t,
            Some(json!({ "text": "Ask about mornings next time" })),
        )
        .await;
    assert_eq!(note["author"], pair["user_id"]);
    app.expect(
        StatusCode::CREATED,
        "POST",
        &notes,
        t,
        Some(json!({ "text": "She prefers evenings" })),
    )
    .await;
    let listed = app.expect(StatusCode::OK, "GET", &notes, t, None).await;
    let texts: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["Ask about mornings next time", "She prefers evenings"]
    );
    app.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        "POST",
        &notes,
        t,
        Some(json!({ "text": "  " })),
    )
    .await;
    let (status, _) = app
        .call("POST", &notes, t, Some(json!({ "txt": "typo" })))
        .await;
    assert!(
        status.is_client_error(),
        "unknown fields are refused: {status}"
    );
    // No message went to the contact.
    let (_, msgs) = app
        .call("GET", &format!("/v1/conversations/{id}/messages"), t, None)
        .await;
    assert_eq!(msgs["items"].as_array().unwrap().len(), 1);

    // Canned replies: unique shortcuts, listed by shortcut, deleted by id.
    let canned = |shortcut: &str, text: &str| Some(json!({ "shortcut": shortcut, "text": text }));
    let hello = app
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/canned-replies",
            t,
            canned("hello", "Hi! How are you today?"),
        )
        .await;
    app.expect(
        StatusCode::CREATED,
        "POST",
        "/v1/canned-replies",
        t,
        canned("bye", "Talk soon!"),
    )
    .await;
    app.expect(
        StatusCode::CONFLICT,
        "POST",
        "/v1/canned-replies",
        t,
        canned("hello", "Again"),
    )
    .await;
    app.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        "POST",
        "/v1/canned-replies",
        t,
        canned("Has Space", "x"),
    )
    .await;
    let list = app
        .expect(StatusCode::OK, "GET", "/v1/canned-replies", t, None)
        .await;
    let shortcuts: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["shortcut"].as_str().unwrap())
        .collect();
    assert_eq!(shortcuts, ["bye", "hello"]);

    // Another tenant sees and changes none of it.
    let other = app.register("other-team@example.com").await;
    let o = Some(token(&other));
    app.expect(StatusCode::NOT_FOUND, "GET", &labels, o, None)
        .await;
    app.expect(
        StatusCode::NOT_FOUND,
        "PUT",
        &labels,
        o,
        Some(json!(["mine"])),
    )
    .await;
    app.expect(StatusCode::NOT_FOUND, "GET", &notes, o, None)
        .await;
    app.expect(
        StatusCode::NOT_FOUND,
        "POST",
        &notes,
        o,
        Some(json!({ "text": "peek" })),
    )
    .await;
    assert_eq!(
        app.expect(StatusCode::OK, "GET", "/v1/canned-replies", o, None)
            .await,
        json!([])
    );
    let hello_id = hello["id"].as_str().unwrap();
    app.expect(
        StatusCode::NOT_FOUND,
        "DELETE",
        &format!("/v1/canned-replies/{hello_id}"),
        o,
        None,
    )
    .await;
    app.expect(
        StatusCode::NO_CONTENT,
        "DELETE",
        &format!("/v1/canned-replies/{hello_id}"),
        t,
        None,
    )
    .await;
    app.expect(
        StatusCode::NOT_FOUND,
        "GET",
        "/v1/conversations/not-an-id/labels",
        t,
        None,
    )
    .await;

    // The notes and labels are in the contact's export, and go with the contact.
    let contact = convs["items"][0]["contact_id"].as_str().unwrap().to_owned();
    let export = app
        .expect(
            StatusCode::OK,
            "GET",
            &format!("/v1/contacts/{contact}/export"),
            t,
            None,
        )
        .await;
    let exported = &export["conversations"][0];
    assert_eq!(
        exported["notes"][1]["text"], "She prefers evenings",
        "{export}"
    );
    assert_eq!(exported["labels"], json!(["follow-up"]));
    app.expect(
        StatusCode::NO_CONTENT,
        "DELETE",
        &format!("/v1/contacts/{contact}"),
        t,
        None,
    )
    .await;
    app.expect(StatusCode::NOT_FOUND, "GET", &notes, t, None)
        .await;
}
