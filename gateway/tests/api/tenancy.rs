//! Admin API tenancy on SQLite and PostgreSQL: a cross-tenant walk over every route of the
//! OpenAPI document, roles, and bad input answered with problems.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use crate::against_every_backend;
use crate::api_support::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};

use crate::common::Backend;
use coach_gateway::store::{Page, Role};
use coach_gateway::tenancy::SystemScope;
use serde_json::{Value, json};
use tower::ServiceExt;

against_every_backend!(
    another_tenant_gets_404_on_every_route,
    roles_are_enforced,
    bad_input_gets_a_problem_not_a_panic,
);

/// A valid-looking value for an OpenAPI schema: every property filled, enums with their first
/// value, references resolved, so that requests reach the handler's tenancy check.
fn sample(doc: &Value, schema: &Value) -> Value {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return sample(doc, &doc["components"]["schemas"][name]);
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    for combinator in ["oneOf", "anyOf", "allOf"] {
        let options = schema[combinator].as_array();
        if let Some(option) = options.and_then(|o| o.iter().find(|o| o["type"] != "null")) {
            return sample(doc, option);
        }
    }
    let kind = match &schema["type"] {
        Value::Array(types) => types
            .iter()
            .find(|t| *t != "null")
            .cloned()
            .unwrap_or(Value::Null),
        other => other.clone(),
    };
    match kind.as_str() {
        Some("object") => Value::Object(
            schema["properties"]
                .as_object()
                .map(|props| {
                    props
                        .iter()
                        .map(|(k, v)| (k.clone(), sample(doc, v)))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        Some("string") if schema["format"] == "email" => json!("stolen@example.com"),
        Some("string") if schema["format"] == "uuid" => json!(uuid::Uuid::now_v7()),
        Some("string") if schema["format"] == "date-time" => {
            json!(chrono::Utc::now() + chrono::Duration::hours(1))
        }
        Some("string") => json!("stolen"),
        Some("boolean") => json!(true),
        Some("integer" | "number") => json!(1),
        Some("array") => json!([]),
        _ => json!({}),
    }
}

/// Tenant B walks every route of the OpenAPI document with tenant A's ids: every route that
/// names an id answers 404, and no listing shows any of A's ids.
async fn another_tenant_gets_404_on_every_route(b: &Backend) {
    let data = tempfile::tempdir().unwrap();
    let mut app = crate::api_support::app_with_brain(b, data.path()).await;
    // The walk makes more calls than a tenant's burst allows; rate limits have their own test.
    app.state.limits =
        coach_gateway::http::limits::Limits::new(&coach_gateway::config::RateLimitConfig {
            tenant_per_second: 100_000,
            tenant_burst: 100_000,
            ..Default::default()
        });
    app.router = coach_gateway::http::router(app.state.clone());
    let a = app.register("ana@example.com").await;
    let bee = app.register("bob@example.com").await;
    let (_, channel) = app
        .call(
            "POST",
            "/v1/channels",
            Some(token(&a)),
            Some(crate::api_support::whatsapp_channel("A's")),
        )
        .await;
    let channel_id = channel["id"].as_str().unwrap().to_owned();
    let scope =
        SystemScope::new("test").for_tenant(a["tenant_id"].as_str().unwrap().parse().unwrap());
    b.store
        .ingest(
            &scope,
            channel_id.parse().unwrap(),
            vec![crate::common::text("m1", "alice", "A's secret")],
        )
        .await
        .unwrap();
    let conv = b
        .store
        .conversations(
            &scope,
            Page {
                before: None,
                limit: 1,
            },
            Default::default(),
        )
        .await
        .unwrap()[0]
        .clone();
    let (status, doc) = app
        .upload(
            token(&a),
            "secret.md",
            "text/markdown",
            b"# Plan\n\nThe zorblax method: walk 7 minutes after each meal.",
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{doc}");
    app.ingest_all().await;
    let program = json!({ "name": "A's program", "steps": [{ "id": "hi", "message": "Hi",
        "template": { "name": "hi", "language": "en" } }] });
    let (status, program) = app
        .call("POST", "/v1/programs", Some(token(&a)), Some(program))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{program}");
    let a_ids = [
        a["user_id"].as_str().unwrap().to_owned(),
        doc["id"].as_str().unwrap().to_owned(),
        channel_id.clone(),
        conv.id.to_string(),
        conv.contact_id.to_string(),
        a["tenant_id"].as_str().unwrap().to_owned(),
        program["id"].as_str().unwrap().to_owned(),
    ];

    let (_, doc) = app.call("GET", "/openapi.json", None, None).await;
    let paths = doc["paths"].as_object().unwrap();
    let mut checked = 0;
    for (path, item) in paths {
        // Public by design: any page that embeds a widget reads its channel's theme
        // (tests/widget.rs checks it serves widget channels only and never their secrets).
        if path.starts_with("/v1/widget/") {
            continue;
        }
        // A stream that stays open while the token lives; its tenancy (another tenant's events
        // never arrive) is tested in tests/api_console.rs.
        if path == "/v1/events" {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            // The route exists in the router (documented routes are served).
            let (status, _) = app
                .call(
                    &method,
                    &path.replace("{id}", &channel_id),
                    None,
                    Some(json!({})),
                )
                .await;
            assert_ne!(
                status,
                StatusCode::NOT_FOUND,
                "{method} {path} is documented but not routed"
            );
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not routed"
            );
            // Auth routes act on the caller's own session; erasing the walker's own tenant
            // would end the walk (tenant erasure has its own test).
            if path.starts_with("/v1/auth/") || (method == "DELETE" && path == "/v1/tenant") {
                continue;
            }
            let body =
                item[method.to_lowercase()]["requestBody"]["content"]["application/json"]["schema"]
                    .as_object()
                    .map(|schema| sample(&doc, &Value::Object(schema.clone())));
            if path.starts_with(coach_gateway::http::openapi::OPERATOR_PREFIX) {
                let concrete = path.replace("{id}", &a_ids[5]);
                let (status, resp) = app
                    .call(&method, &concrete, Some(token(&bee)), body.clone())
                    .await;
                assert_eq!(status, StatusCode::FORBIDDEN, "B {method} {path}: {resp}");
            } else if path.contains("{id}") {
                for id in &a_ids {
                    let (status, resp) = app
                        .call(
                            &method,
                            &path.replace("{id}", id),
                            Some(token(&bee)),
                            body.clone(),
                        )
                        .await;
                    assert_eq!(
                        status,
                        StatusCode::NOT_FOUND,
                        "B {method} {path} with A's id {id}: {resp}"
                    );
                }
            } else {
                let (status, resp) = app
                    .call(&method, path, Some(token(&bee)), body.clone())
                    .await;
                assert!(
                    status.is_success() || status.is_client_error(),
                    "{method} {path}: {status}"
                );
                let text = resp.to_string();
                for id in &a_ids {
                    assert!(
                        !text.contains(id.as_str()) || path == "/v1/me",
                        "B saw A's id {id} in {method} {path}: {text}"
                    );
                }
                assert!(
                    !text.contains("A's secret") && !text.contains("EAAG-secret"),
                    "{method} {path}: {text}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} routes walked");
    for (method, path) in coach_gateway::http::openapi::PUBLIC_ROUTES {
        let (status, _) = app.call(method, path, None, None).await;
        assert!(
            status.is_success() || status.is_redirection(),
            "{method} {path}: {status}"
        );
    }
    // A's data is untouched.
    let (status, still) = app
        .call(
            "GET",
            &format!("/v1/channels/{channel_id}"),
            Some(token(&a)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(still["name"], "A's");
    assert_eq!(
        still["config"]["access_token"], "********",
        "secrets are never returned"
    );
    // At rest the token is sealed; only the master key opens it.
    let stored = b
        .store
        .channel(&scope, channel_id.parse().unwrap())
        .await
        .unwrap();
    assert!(
        !stored.config.to_string().contains("EAAG-secret"),
        "{}",
        stored.config
    );
    assert!(stored.config["access_token"]["$enc"].is_string());
    let mut opened = stored.config.clone();
    app.state.secrets.open(&mut opened).unwrap();
    assert_eq!(opened["access_token"], "EAAG-secret");
}

async fn roles_are_enforced(b: &Backend) {
    let app = app(b);
    let pair = app.register("ana@example.com").await;
    let keys = app
        .state
        .store
        .signing_keys(&SystemScope::new("test"))
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let viewer_claims = json!({
        "iss": "coach-gateway", "aud": "coach-gateway", "sub": pair["user_id"], "tid": pair["tenant_id"],
        "role": Role::Viewer, "sid": uuid::Uuid::now_v7(), "iat": now, "exp": now + 60
    });
    let header = jsonwebtoken::Header {
        kid: Some(keys[0].kid.clone()),
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA)
    };
    let viewer = sign(&app, header, &viewer_claims).await;
    let create = crate::api_support::whatsapp_channel("bot");
    app.expect(
        StatusCode::FORBIDDEN,
        "POST",
        "/v1/channels",
        Some(&viewer),
        Some(create.clone()),
    )
    .await;
    app.expect(StatusCode::OK, "GET", "/v1/channels", Some(&viewer), None)
        .await;
    app.expect(
        StatusCode::FORBIDDEN,
        "GET",
        "/v1/audit-log",
        Some(&viewer),
        None,
    )
    .await;
    app.expect(
        StatusCode::CREATED,
        "POST",
        "/v1/channels",
        Some(token(&pair)),
        Some(create),
    )
    .await;
    let (status, log) = app
        .call("GET", "/v1/audit-log", Some(token(&pair)), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(log[0]["action"], "channel.create");
}

async fn bad_input_gets_a_problem_not_a_panic(b: &Backend) {
    let app = app(b);
    let pair = app.register("ana@example.com").await;
    let t = Some(token(&pair));
    let cases: Vec<(&str, &str, Option<Value>, StatusCode)> = vec![
        (
            "POST",
            "/v1/channels",
            Some(json!({ "kind": "fax", "name": "x" })),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/v1/channels",
            Some(json!({ "kind": "whatsapp", "name": "" })),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/v1/channels",
            Some(json!({ "kind": "whatsapp", "name": "x", "config": [1] })),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/v1/channels",
            Some(json!({ "kind": 5 })),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/v1/channels",
            Some(json!({ "kind": "whatsapp", "name": "x", "extra": 1 })),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("GET", "/v1/channels/not-an-id", None, StatusCode::NOT_FOUND),
        (
            "PATCH",
            "/v1/channels/00000000-0000-0000-0000-000000000000",
            Some(json!({ "name": "x" })),
            StatusCode::NOT_FOUND,
        ),
        (
            "GET",
            "/v1/conversations?limit=0",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/v1/conversations?cursor=%%%",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/v1/conversations?limit=abc",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/v1/auth/register",
            Some(
                json!({ "email": "not-an-email", "password": "violet-quarry-Tundra-88", "tenant_name": "x" }),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (method, path, body, expected) in cases {
        let (status, problem) = app.call(method, path, t, body).await;
        assert_eq!(status, expected, "{method} {path}: {problem}");
        assert_eq!(
            problem["status"],
            expected.as_u16(),
            "{method} {path}: problem body {problem}"
        );
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{problem}"
        );
    }
    // Malformed JSON and a missing content type.
    let req = Request::post("/v1/channels")
        .header("authorization", format!("Bearer {}", token(&pair)))
        .header("content-type", "application/json")
        .body(Body::from("{\"kind\":"))
        .unwrap();
    assert_eq!(
        app.router.clone().oneshot(req).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let req = Request::post("/v1/channels")
        .header("authorization", format!("Bearer {}", token(&pair)))
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(
        app.router.clone().oneshot(req).await.unwrap().status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}
