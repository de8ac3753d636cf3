//! A contact's memory on SQLite and PostgreSQL: empty for a new contact, edited whole (unchanged
//! items keep their origin), bad edits refused with 422, another tenant's 404, in the contact's
//! export, pruned by retention, gone with the contact.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use crate::against_every_backend;
use crate::api_support::*;
use axum::http::StatusCode;
use coach_gateway::tenancy::SystemScope;
use serde_json::json;

use crate::common::Backend;

against_every_backend!(a_team_reads_and_edits_what_the_coach_remembers);

async fn a_team_reads_and_edits_what_the_coach_remembers(b: &Backend) {
    let app = app(b);
    let (pair, scope, channel_id) = tenant_with_channel(&app, "memory@example.com").await;
    let t = Some(token(&pair));
    let event = crate::common::text("m1", "ines", "Remember that I work night shifts.");
    b.store
        .ingest(&scope, channel_id, vec![event])
        .await
        .unwrap();
    let (_, convs) = app.call("GET", "/v1/conversations", t, None).await;
    let contact = convs["items"][0]["contact_id"].as_str().unwrap().to_owned();
    let message = {
        let id = convs["items"][0]["id"].as_str().unwrap();
        let (_, msgs) = app
            .call("GET", &format!("/v1/conversations/{id}/messages"), t, None)
            .await;
        msgs["items"][0]["id"].as_str().unwrap().to_owned()
    };
    let path = format!("/v1/contacts/{contact}/memory");
    assert_eq!(
        app.expect(StatusCode::OK, "GET", &path, t, None).await,
        json!({ "items": [] })
    );

    // What the responder keeps from the contact's own words.
    let contact_id = coach_connector_api::ContactId(contact.parse().unwrap());
    let found = coach_gateway::memory::remember(
        b.store.as_ref(),
        &scope,
        contact_id,
        message.parse().unwrap(),
        "Remember that I work night shifts.",
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert!(found.is_some());
    // Said again in other case: kept once.
    coach_gateway::memory::remember(
        b.store.as_ref(),
        &scope,
        contact_id,
        message.parse().unwrap(),
        "remember that I WORK night shifts",
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let memory = app.expect(StatusCode::OK, "GET", &path, t, None).await;
    let items = memory["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{memory}");
    assert_eq!(items[0]["kind"], "fact");
    assert_eq!(items[0]["text"], "I work night shifts");
    assert_eq!(items[0]["source"], "coachee");
    assert_eq!(items[0]["message_id"], message.as_str());
    let said = items[0]["id"].as_str().unwrap().to_owned();

    // The team adds a note and a goal, keeping the contact's item as it is.
    let edited = app
        .expect(
            StatusCode::OK,
            "PUT",
            &path,
            t,
            Some(json!({ "items": [
                { "id": said, "kind": "fact", "text": "I work night shifts" },
                { "kind": "note", "text": "  Check in after 2 pm  " },
                { "kind": "goal", "text": "Sleep 7 hours" },
            ] })),
        )
        .await;
    let items = edited["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{edited}");
    assert_eq!(items[0]["id"], said.as_str());
    assert_eq!(
        items[0]["source"], "coachee",
        "unchanged: still their words"
    );
    assert_eq!(items[1]["text"], "Check in after 2 pm");
    assert_eq!(items[1]["source"], "team");
    assert!(items[1]["message_id"].is_null());
    let goal = items[2]["id"].as_str().unwrap().to_owned();

    // Editing the contact's words makes them the team's; what is left out is forgotten.
    let edited = app
        .expect(
            StatusCode::OK,
            "PUT",
            &path,
            t,
            Some(json!({ "items": [
                { "id": said, "kind": "fact", "text": "Works night shifts, Mon-Thu" },
                { "id": goal, "kind": "goal", "text": "Sleep 7 hours" },
            ] })),
        )
        .await;
    let items = edited["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{edited}");
    assert_eq!(items[0]["id"], said.as_str(), "the id is kept");
    assert_eq!(items[0]["source"], "team");
    assert!(items[0]["message_id"].is_null());
    assert_eq!(items[1]["text"], "Sleep 7 hours");

    // Bad edits change nothing.
    for bad in [
        json!({ "items": [{ "kind": "goal", "text": "  " }] }),
        json!({ "items": [{ "kind": "goal", "text": "x".repeat(301) }] }),
        json!({ "items": [{ "kind": "wish", "text": "fly" }] }),
        json!({ "items": [{ "id": goal, "kind": "goal", "text": "a" }, { "id": goal, "kind": "goal", "text": "b" }] }),
        json!({ "items": (0..51).map(|i| json!({ "kind": "note", "text": format!("n{i}") })).collect::<Vec<_>>() }),
    ] {
        let (status, problem) = app.call("PUT", &path, t, Some(bad.clone())).await;
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST,
            "{bad}: {status} {problem}"
        );
    }
    assert_eq!(
        app.expect(StatusCode::OK, "GET", &path, t, None).await["items"],
        edited["items"]
    );

    // Another tenant: not found, changes nothing.
    let other = app.register("other-memory@example.com").await;
    let o = Some(token(&other));
    app.expect(StatusCode::NOT_FOUND, "GET", &path, o, None)
        .await;
    app.expect(
        StatusCode::NOT_FOUND,
        "PUT",
        &path,
        o,
        Some(json!({ "items": [] })),
    )
    .await;
    assert_eq!(
        app.expect(StatusCode::OK, "GET", &path, t, None).await["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // In the contact's export.
    let export = app
        .expect(
            StatusCode::OK,
            "GET",
            &format!("/v1/contacts/{contact}/export"),
            t,
            None,
        )
        .await;
    assert_eq!(export["memory"][0]["text"], "Works night shifts, Mon-Thu");
    assert_eq!(export["memory"][1]["kind"], "goal");

    // Retention: items last written before the period go, the others stay.
    app.expect(
        StatusCode::OK,
        "PATCH",
        "/v1/tenant",
        t,
        Some(json!({ "retention_days": 1 })),
    )
    .await;
    let sys = SystemScope::new("test");
    b.store
        .apply_retention(&sys, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(b.store.memory(&scope, contact_id).await.unwrap().len(), 2);
    b.store
        .apply_retention(&sys, chrono::Utc::now() + chrono::Duration::days(2))
        .await
        .unwrap();
    assert!(b.store.memory(&scope, contact_id).await.unwrap().is_empty());

    // Gone with the contact.
    app.expect(
        StatusCode::OK,
        "PUT",
        &path,
        t,
        Some(json!({ "items": [{ "kind": "note", "text": "Likes podcasts" }] })),
    )
    .await;
    app.expect(
        StatusCode::NO_CONTENT,
        "DELETE",
        &format!("/v1/contacts/{contact}"),
        t,
        None,
    )
    .await;
    app.expect(StatusCode::NOT_FOUND, "GET", &path, t, None)
        .await;
}
