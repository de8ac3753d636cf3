//! `GET /v1/programs/{id}/versions/{version}` on SQLite and PostgreSQL: every version a program
//! had, for the console's comparison; 404 for a version that does not exist, a malformed one,
//! and another tenant's program.

use axum::http::StatusCode;
use serde_json::json;

use crate::against_every_backend;
use crate::api_support::*;
use crate::common::Backend;

against_every_backend!(earlier_versions_are_read_by_their_tenant_only,);

async fn earlier_versions_are_read_by_their_tenant_only(b: &Backend) {
    let app = app(b);
    let owner = app.register("versions-owner@example.com").await;
    let t = Some(token(&owner));
    let step = |message: &str| {
        json!({ "name": "Walk", "steps": [{ "id": "welcome", "message": message,
            "template": { "name": "walk_hello", "language": "en" } }] })
    };
    let created = app
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/programs",
            t,
            Some(step("Ready?")),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let second = app
        .expect(
            StatusCode::OK,
            "PUT",
            &format!("/v1/programs/{id}"),
            t,
            Some(step("Ready now?")),
        )
        .await;
    assert_eq!(second["version"], 2);

    let v1 = app
        .expect(
            StatusCode::OK,
            "GET",
            &format!("/v1/programs/{id}/versions/1"),
            t,
            None,
        )
        .await;
    assert_eq!(v1["steps"][0]["message"], "Ready?");
    let v2 = app
        .expect(
            StatusCode::OK,
            "GET",
            &format!("/v1/programs/{id}/versions/2"),
            t,
            None,
        )
        .await;
    assert_eq!(v2["steps"][0]["message"], "Ready now?");
    for missing in ["3", "0", "abc"] {
        app.expect(
            StatusCode::NOT_FOUND,
            "GET",
            &format!("/v1/programs/{id}/versions/{missing}"),
            t,
            None,
        )
        .await;
    }
    let other = app.register("versions-other@example.com").await;
    app.expect(
        StatusCode::NOT_FOUND,
        "GET",
        &format!("/v1/programs/{id}/versions/1"),
        Some(token(&other)),
        None,
    )
    .await;
}
