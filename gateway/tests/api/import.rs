//! Contacts from a CSV file on SQLite and PostgreSQL (`POST /v1/contacts/import`): a dry run
//! that lists every bad row and stores nothing, the import of the rest with E.164 numbers and
//! merged duplicates, a second run that changes nothing, an update, the contract's refusals, the
//! imported contact met again by an inbound message, and its export and erasure.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use crate::against_every_backend;
use crate::api_support::*;
use axum::http::StatusCode;
use serde_json::Value;

use crate::common::Backend;

against_every_backend!(contacts_are_imported_from_csv);

/// A file of `n` rows (every 100th with an unknown time zone) plus a repeat of row 1.
fn csv(n: usize) -> (String, Vec<u64>) {
    let mut text = String::from("name,phone,time_zone,language,consent,plan\n");
    let mut bad = Vec::new();
    for i in 1..=n {
        let zone = if i % 100 == 0 {
            bad.push(i as u64 + 1);
            "Nowhere/City"
        } else {
            "Europe/Lisbon"
        };
        let consent = if i % 2 == 0 { "yes" } else { "" };
        text.push_str(&format!(
            "Person {i},+49 151 2{i:07},{zone},pt,{consent},gold\n"
        ));
    }
    // The first person again, in national notation (default country DE), with a new plan.
    text.push_str("Person 1,0151 20000001,,,,platinum\n");
    (text, bad)
}

async fn import(app: &App, token: &str, query: &str, body: &str) -> (StatusCode, Value) {
    app.send(
        "POST",
        &format!("/v1/contacts/import?{query}"),
        Some(token),
        "text/csv; charset=utf-8",
        body.as_bytes().to_vec(),
    )
    .await
}

async fn contacts_are_imported_from_csv(b: &Backend) {
    let app = app(b);
    let (pair, scope, channel) = tenant_with_channel(&app, "importer@example.com").await;
    let token = token(&pair);
    let query = format!("channel_id={channel}&default_country=de");
    let (text, bad) = csv(2_000);

    // Dry run: every bad row with its line, nothing stored.
    let (status, dry) = import(&app, token, &format!("{query}&dry_run=true"), &text).await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["rows"], 2_001);
    assert_eq!(dry["invalid"], 20);
    let lines: Vec<u64> = dry["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, bad);
    assert!(
        dry["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("Nowhere/City")
    );
    assert_eq!(dry["merged"], 1);
    assert_eq!(dry["created"], 1_980);
    let listed = app
        .expect(StatusCode::OK, "GET", "/v1/contacts", Some(token), None)
        .await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        0,
        "a dry run stores nothing"
    );

    // The import stores the rest; the same file again changes nothing.
    let (status, done) = import(&app, token, &query, &text).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(
        (
            done["created"].as_u64(),
            done["updated"].as_u64(),
            done["unchanged"].as_u64()
        ),
        (Some(1_980), Some(0), Some(0))
    );
    let (_, again) = import(&app, token, &query, &text).await;
    assert_eq!(
        (
            again["created"].as_u64(),
            again["updated"].as_u64(),
            again["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(1_980))
    );
    // A change: one contact's language; empty cells keep what is stored.
    let (_, changed) = import(
        &app,
        token,
        &query,
        "name,phone,time_zone,language\n,+4915120000002,,es\n",
    )
    .await;
    assert_eq!(
        (changed["updated"].as_u64(), changed["created"].as_u64()),
        (Some(1), Some(0))
    );

    // The imported person writes: the same contact, with everything the file said.
    let event = crate::common::text("in-1", "4915120000002", "Olá!");
    b.store.ingest(&scope, channel, vec![event]).await.unwrap();
    let (_, convs) = app
        .call("GET", "/v1/conversations", Some(token), None)
        .await;
    let contact = convs["items"][0]["contact_id"].as_str().unwrap().to_owned();
    let export = app
        .expect(
            StatusCode::OK,
            "GET",
            &format!("/v1/contacts/{contact}/export"),
            Some(token),
            None,
        )
        .await;
    let person = &export["contact"];
    assert_eq!(person["display_name"], "Person 2");
    assert_eq!(person["time_zone"], "Europe/Lisbon");
    assert_eq!(person["language"], "es");
    assert!(person["consent_at"].is_string(), "{person}");
    assert_eq!(person["attributes"]["plan"], "gold");
    assert_eq!(person["identities"][0]["external_id"], "4915120000002");
    let listed = app
        .expect(
            StatusCode::OK,
            "GET",
            "/v1/contacts?limit=200",
            Some(token),
            None,
        )
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 200);

    // Refusals: another tenant's channel, a file that is not CSV, missing columns, a bad country.
    let (other, _, _) = tenant_with_channel(&app, "other-importer@example.com").await;
    let (status, _) = import(&app, crate::api_support::token(&other), &query, &text).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .send(
            "POST",
            &format!("/v1/contacts/import?{query}"),
            Some(token),
            "application/json",
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, problem) = import(&app, token, &query, "name,email\nA,a@example.com\n").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem["detail"].as_str().unwrap().contains("time_zone"),
        "{problem}"
    );
    let (status, _) = import(
        &app,
        token,
        &format!("channel_id={channel}&default_country=XX"),
        &text,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Erasure takes the imported details with the contact.
    app.expect(
        StatusCode::NO_CONTENT,
        "DELETE",
        &format!("/v1/contacts/{contact}"),
        Some(token),
        None,
    )
    .await;
    app.expect(
        StatusCode::NOT_FOUND,
        "GET",
        &format!("/v1/contacts/{contact}/export"),
        Some(token),
        None,
    )
    .await;
}
