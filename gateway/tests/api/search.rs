//! Finding conversations on SQLite (FTS5) and PostgreSQL (`tsvector`): by the words of any
//! message, contact or team, in any case and order; by the contact's name or address; by label
//! and assignee; never another tenant's, and never a word of an erased contact.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use crate::against_every_backend;
use crate::api_support::*;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::Backend;

against_every_backend!(conversations_are_found_by_words_names_labels_and_assignee);

/// The ids of the listed conversations, sorted (their order is the listing's, tested elsewhere).
fn ids(page: &Value) -> Vec<String> {
    let mut ids: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// `ids`, sorted.
fn set(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

async fn conversations_are_found_by_words_names_labels_and_assignee(b: &Backend) {
    let app = app(b);
    let (pair, scope, channel) = tenant_with_channel(&app, "finder@example.com").await;
    let (other_pair, other_scope, other_channel) =
        tenant_with_channel(&app, "other-finder@example.com").await;
    let t = Some(token(&pair));
    let said = [
        (
            "s1",
            "4915100000001",
            "I want to run a Marathon next spring",
        ),
        ("s2", "4915100000002", "Sleeping badly since the move"),
        ("s3", "4915100000003", "Which shoes for a half marathon?"),
    ];
    for (key, from, text) in said {
        let event = crate::common::text(key, from, text);
        b.store.ingest(&scope, channel, vec![event]).await.unwrap();
    }
    // Another tenant's contact says the same words.
    let event = crate::common::text(
        "o1",
        "4915100000001",
        "I want to run a Marathon next spring",
    );
    b.store
        .ingest(&other_scope, other_channel, vec![event])
        .await
        .unwrap();
    let all = app
        .expect(StatusCode::OK, "GET", "/v1/conversations", t, None)
        .await;
    let conv_of = |external: &str| {
        all["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["external_id"] == external)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (runner, sleeper, shoes) = (
        conv_of("4915100000001"),
        conv_of("4915100000002"),
        conv_of("4915100000003"),
    );
    let search = |query: &str| {
        let (app, path) = (&app, format!("/v1/conversations?{query}"));
        async move { ids(&app.expect(StatusCode::OK, "GET", &path, t, None).await) }
    };

    // Every word, in any case and order.
    assert_eq!(
        search("q=marathon").await,
        set(vec![shoes.clone(), runner.clone()])
    );
    assert_eq!(search("q=SPRING%20marathon").await, vec![runner.clone()]);
    assert_eq!(search("q=marathon%20winter").await, Vec::<String>::new());
    // Punctuation splits words as in the index; punctuation alone matches nothing.
    assert_eq!(search("q=half-marathon%3F").await, vec![shoes.clone()]);
    assert_eq!(search("q=%25%25%21").await, Vec::<String>::new());
    assert_eq!(
        search("q=").await.len(),
        3,
        "an empty search lists everything"
    );
    // The contact's name and address.
    assert_eq!(search("q=person%20491510000000").await.len(), 3);
    assert_eq!(search("q=4915100000002").await, vec![sleeper.clone()]);
    // The other tenant sees only its own conversation for the same words.
    let theirs = app
        .expect(
            StatusCode::OK,
            "GET",
            "/v1/conversations?q=marathon",
            Some(token(&other_pair)),
            None,
        )
        .await;
    assert_eq!(ids(&theirs).len(), 1);
    assert!(!ids(&theirs).contains(&runner));

    // The team's words are found too.
    b.store
        .enqueue_outbound(
            &scope,
            sleeper.parse().unwrap(),
            coach_connector_api::OutboundBody::Text {
                text: "Try a fixed wind-down routine".into(),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(search("q=routine%20WIND").await, vec![sleeper.clone()]);

    // Filters combine with the search: label, status, assignee.
    app.expect(
        StatusCode::OK,
        "PUT",
        &format!("/v1/conversations/{shoes}/labels"),
        t,
        Some(json!(["Gear"])),
    )
    .await;
    assert_eq!(search("label=GEAR").await, vec![shoes.clone()]);
    assert_eq!(search("label=gear&q=spring").await, Vec::<String>::new());
    app.expect(
        StatusCode::OK,
        "POST",
        &format!("/v1/conversations/{runner}/takeover"),
        t,
        None,
    )
    .await;
    assert_eq!(search("assignee=me").await, vec![runner.clone()]);
    let user = pair["user_id"].as_str().unwrap();
    assert_eq!(
        search(&format!("assignee={user}")).await,
        vec![runner.clone()]
    );
    assert_eq!(
        search("assignee=none").await,
        set(vec![sleeper.clone(), shoes.clone()])
    );
    assert_eq!(
        search("assignee=none&q=marathon").await,
        vec![shoes.clone()]
    );
    app.expect(
        StatusCode::BAD_REQUEST,
        "GET",
        "/v1/conversations?assignee=someone",
        t,
        None,
    )
    .await;

    // A contact's erasure takes their words out of the search.
    let contact = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == runner.as_str())
        .unwrap()["contact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.expect(
        StatusCode::NO_CONTENT,
        "DELETE",
        &format!("/v1/contacts/{contact}"),
        t,
        None,
    )
    .await;
    assert_eq!(search("q=spring").await, Vec::<String>::new());
    assert_eq!(search("q=marathon").await, vec![shoes.clone()]);
}
