//! The admin API against SQLite and PostgreSQL: accounts, sessions, JWT attacks, roles, bad
//! input, and a cross-tenant walk over every route of the OpenAPI document.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use coach_gateway::bus::MemoryBus;
use coach_gateway::config::Config;
use coach_gateway::state::{AppState, Startup};
use coach_gateway::store::{Page, Role};
use coach_gateway::tenancy::SystemScope;
use common::Backend;
use serde_json::{Value, json};
use tower::ServiceExt;

struct App {
    state: AppState,
    router: axum::Router,
}

fn app(b: &Backend) -> App {
    let config = Config {
        public_url: "https://coach.example".into(),
        ..Config::default()
    };
    app_with(b, config)
}

fn app_with(b: &Backend, config: Config) -> App {
    let state = AppState::new(
        config,
        b.store.clone(),
        Arc::new(MemoryBus::new(16)),
        coach_gateway::telemetry::metrics_handle(),
        Startup::default(),
        // A fixed test key (32 bytes of 0x01): nothing is written to disk.
        coach_gateway::secrets::SecretBox::load(
            "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
            std::path::Path::new("."),
        )
        .unwrap(),
    );
    App {
        router: coach_gateway::http::router(state.clone()),
        state,
    }
}

impl App {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn register(&self, email: &str) -> Value {
        let body = json!({ "email": email, "password": "violet-quarry-Tundra-88", "tenant_name": format!("{email} coaching") });
        let (status, pair) = self
            .call("POST", "/v1/auth/register", None, Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{pair}");
        pair
    }
}

fn token(pair: &Value) -> &str {
    pair["access_token"].as_str().unwrap()
}

against_every_backend!(
    register_login_and_me,
    refresh_rotates_and_a_reused_token_ends_the_session,
    logout_ends_the_session,
    forged_and_tampered_tokens_are_refused,
    roles_are_enforced,
    bad_input_gets_a_problem_not_a_panic,
    another_tenant_gets_404_on_every_route,
    password_guessing_is_rate_limited_per_address,
    the_persona_is_kept_and_validated,
    changing_the_password_ends_every_session,
    a_logout_is_seen_by_every_process_sharing_redis,
    members_are_invited_promoted_and_removed,
    a_contact_is_exported_then_erased_with_everything_derived,
    erasing_a_tenant_removes_its_data_and_sessions,
    api_keys_act_for_their_tenant_within_their_role,
    operators_list_suspend_and_resume_tenants,
    a_forgotten_password_is_reset_by_email,
);

async fn a_forgotten_password_is_reset_by_email(b: &Backend) {
    // Without a relay the feature says so.
    let plain = app(b);
    let (status, problem) = plain
        .call(
            "POST",
            "/v1/auth/password-reset",
            None,
            Some(json!({ "email": "x@example.com" })),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        problem["detail"].as_str().unwrap().contains("smtp.url"),
        "{problem}"
    );

    let sink = coach_e2e::smtp::start().await.unwrap();
    let mut config = Config {
        public_url: "https://coach.example".into(),
        ..Config::default()
    };
    config.smtp.url = sink.url.clone();
    let app = app_with(b, config);
    let pair = app.register("ana@example.com").await;
    let ask = |email: &str| json!({ "email": email });
    assert_eq!(
        app.call(
            "POST",
            "/v1/auth/password-reset",
            None,
            Some(ask("nobody@example.com"))
        )
        .await
        .0,
        StatusCode::ACCEPTED
    );
    assert!(
        sink.messages.lock().unwrap().is_empty(),
        "no mail for unknown accounts"
    );
    assert_eq!(
        app.call(
            "POST",
            "/v1/auth/password-reset",
            None,
            Some(ask("ana@example.com"))
        )
        .await
        .0,
        StatusCode::ACCEPTED
    );
    let raw = sink.messages.lock().unwrap().pop().expect("a reset e-mail");
    // The body is quoted-printable: undo soft line breaks and the escaped `=`.
    let mail = raw.replace("=\n", "").replace("=3D", "=");
    assert!(mail.contains("To: ana@example.com"), "{mail}");
    assert!(
        mail.contains("https://coach.example/reset-password?token=pr_"),
        "{mail}"
    );
    let reset = mail
        .split_whitespace()
        .find(|w| w.starts_with("pr_"))
        .unwrap()
        .to_owned();

    let confirm = |password: &str| json!({ "token": reset, "new_password": password });
    assert_eq!(
        app.call(
            "POST",
            "/v1/auth/password-reset/confirm",
            None,
            Some(confirm("weak"))
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.call(
            "POST",
            "/v1/auth/password-reset/confirm",
            None,
            Some(confirm("amber-Glacier-violin-51"))
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call("GET", "/v1/me", Some(token(&pair)), None).await.0,
        StatusCode::UNAUTHORIZED,
        "old sessions end"
    );
    let login = json!({ "email": "ana@example.com", "password": "amber-Glacier-violin-51" });
    assert_eq!(
        app.call("POST", "/v1/auth/login", None, Some(login))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        app.call(
            "POST",
            "/v1/auth/password-reset/confirm",
            None,
            Some(confirm("cobalt-Meadow-tiger-27"))
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED,
        "single use"
    );
}

async fn operators_list_suspend_and_resume_tenants(b: &Backend) {
    let app = app(b);
    let op = app.register("op@example.com").await;
    let sys = SystemScope::new("test");
    let op_id = coach_gateway::store::UserId(op["user_id"].as_str().unwrap().parse().unwrap());
    b.store.set_platform_admin(&sys, op_id, true).await.unwrap();
    let customer = app.register("ana@example.com").await;
    let (_, key) = app
        .call(
            "POST",
            "/v1/api-keys",
            Some(token(&customer)),
            Some(json!({ "name": "k", "role": "viewer" })),
        )
        .await;
    let key = key["key"].as_str().unwrap().to_owned();
    // The operator flag is read when a token is issued.
    assert_eq!(
        app.call("GET", "/v1/platform/tenants", Some(token(&op)), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let login = |email: &str| json!({ "email": email, "password": "violet-quarry-Tundra-88" });
    let op = app
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(login("op@example.com")),
        )
        .await
        .1;
    let (status, tenants) = app
        .call("GET", "/v1/platform/tenants", Some(token(&op)), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{tenants}");
    assert_eq!(tenants.as_array().unwrap().len(), 2);
    assert_eq!(
        app.call("GET", "/v1/platform/tenants", Some(token(&customer)), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call("GET", "/v1/platform/tenants", Some(&key), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    let tid = customer["tenant_id"].as_str().unwrap();
    let suspend = format!("/v1/platform/tenants/{tid}/suspend");
    assert_eq!(
        app.call("POST", &suspend, Some(token(&op)), None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call("GET", "/v1/me", Some(token(&customer)), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call(
            "POST",
            "/v1/auth/login",
            None,
            Some(login("ana@example.com"))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call("GET", "/v1/channels", Some(&key), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, tenants) = app
        .call("GET", "/v1/platform/tenants", Some(token(&op)), None)
        .await;
    assert!(
        tenants
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == tid && t["status"] == "suspended")
    );

    let resume = format!("/v1/platform/tenants/{tid}/resume");
    assert_eq!(
        app.call("POST", &resume, Some(token(&op)), None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call(
            "POST",
            "/v1/auth/login",
            None,
            Some(login("ana@example.com"))
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        app.call("GET", "/v1/channels", Some(&key), None).await.0,
        StatusCode::OK
    );
    let missing = format!("/v1/platform/tenants/{}/suspend", uuid::Uuid::now_v7());
    assert_eq!(
        app.call("POST", &missing, Some(token(&op)), None).await.0,
        StatusCode::NOT_FOUND
    );
}

async fn api_keys_act_for_their_tenant_within_their_role(b: &Backend) {
    let app = app(b);
    let owner = app.register("ana@example.com").await;
    let t = Some(token(&owner));
    let (status, created) = app
        .call(
            "POST",
            "/v1/api-keys",
            t,
            Some(json!({ "name": "crm sync", "role": "editor" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("cgk_") && key.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(
        app.call(
            "POST",
            "/v1/api-keys",
            t,
            Some(json!({ "name": "x", "role": "owner" }))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    // The key reads within its tenant, is bounded by its role, and has no user.
    assert_eq!(
        app.call("GET", "/v1/channels", Some(&key), None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.call("GET", "/v1/tenant", Some(&key), None).await.1["id"],
        owner["tenant_id"]
    );
    let create = json!({ "kind": "telegram", "name": "bot" });
    assert_eq!(
        app.call("POST", "/v1/channels", Some(&key), Some(create))
            .await
            .0,
        StatusCode::FORBIDDEN,
        "editors cannot add channels"
    );
    assert_eq!(
        app.call("GET", "/v1/me", Some(&key), None).await.0,
        StatusCode::FORBIDDEN
    );
    let (_, keys) = app.call("GET", "/v1/api-keys", t, None).await;
    assert!(!keys.to_string().contains(&key), "secrets are never listed");
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        app.call("DELETE", &format!("/v1/api-keys/{id}"), t, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call("GET", "/v1/channels", Some(&key), None).await.0,
        StatusCode::UNAUTHORIZED,
        "revoked at once"
    );
    assert_eq!(
        app.call("GET", "/v1/channels", Some("cgk_forged"), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

async fn a_contact_is_exported_then_erased_with_everything_derived(b: &Backend) {
    let app = app(b);
    let pair = app.register("ana@example.com").await;
    let t = Some(token(&pair));
    let (_, channel) = app
        .call(
            "POST",
            "/v1/channels",
            t,
            Some(json!({ "kind": "telegram", "name": "bot" })),
        )
        .await;
    let scope =
        SystemScope::new("test").for_tenant(pair["tenant_id"].as_str().unwrap().parse().unwrap());
    let channel_id = channel["id"].as_str().unwrap().parse().unwrap();
    let events = vec![
        common::text("m1", "alice", "my private goal"),
        common::text("m2", "alice", "second"),
        common::text("m3", "bob", "bob's"),
    ];
    b.store.ingest(&scope, channel_id, events).await.unwrap();
    let (status, contacts) = app.call("GET", "/v1/contacts", t, None).await;
    assert_eq!(status, StatusCode::OK);
    let alice = contacts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["identities"][0]["external_id"] == "alice")
        .unwrap()
        .clone();
    let alice_id = alice["id"].as_str().unwrap();
    let (status, archive) = app
        .call("GET", &format!("/v1/contacts/{alice_id}/export"), t, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(archive["contact"]["id"], alice["id"]);
    let messages = &archive["conversations"][0]["messages"];
    assert_eq!(messages.as_array().unwrap().len(), 2);
    assert_eq!(messages[0]["content"]["body"], "my private goal");
    assert!(
        !archive.to_string().contains("bob's"),
        "only this contact's data"
    );

    let sys = SystemScope::new("test");
    assert_eq!(b.store.stats(&sys).await.unwrap().jobs_depth, 3);
    assert_eq!(
        app.call("DELETE", &format!("/v1/contacts/{alice_id}"), t, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call("GET", &format!("/v1/contacts/{alice_id}/export"), t, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, convs) = app.call("GET", "/v1/conversations", t, None).await;
    assert_eq!(
        convs["items"].as_array().unwrap().len(),
        1,
        "bob's conversation remains"
    );
    assert_eq!(
        b.store.stats(&sys).await.unwrap().jobs_depth,
        1,
        "alice's jobs went with her"
    );
    let (_, log) = app.call("GET", "/v1/audit-log", t, None).await;
    assert_eq!(log[0]["action"], "contact.erase");
    assert!(
        !log.to_string().contains("private goal") && !log.to_string().contains("alice"),
        "no personal data in the audit log"
    );
    assert_eq!(
        app.call("DELETE", &format!("/v1/contacts/{alice_id}"), t, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

async fn erasing_a_tenant_removes_its_data_and_sessions(b: &Backend) {
    let app = app(b);
    let doomed = app.register("ana@example.com").await;
    let kept = app.register("bob@example.com").await;
    let t = Some(token(&doomed));
    app.call(
        "POST",
        "/v1/channels",
        t,
        Some(json!({ "kind": "telegram", "name": "bot" })),
    )
    .await;
    app.call(
        "POST",
        "/v1/channels",
        Some(token(&kept)),
        Some(json!({ "kind": "telegram", "name": "bot" })),
    )
    .await;
    assert_eq!(
        app.call("DELETE", "/v1/tenant", t, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call("GET", "/v1/channels", t, None).await.0,
        StatusCode::UNAUTHORIZED,
        "its sessions ended"
    );
    let (status, _) = app
        .call(
            "POST",
            "/v1/auth/refresh",
            None,
            Some(json!({ "refresh_token": doomed["refresh_token"] })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, channels) = app
        .call("GET", "/v1/channels", Some(token(&kept)), None)
        .await;
    assert_eq!(
        channels.as_array().unwrap().len(),
        1,
        "other tenants keep their data"
    );
}

async fn members_are_invited_promoted_and_removed(b: &Backend) {
    let app = app(b);
    let owner = app.register("ana@example.com").await;
    let t = Some(token(&owner));
    let (status, invite) = app
        .call(
            "POST",
            "/v1/members/invites",
            t,
            Some(json!({ "email": "eve@example.com", "role": "editor" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invite}");
    let accept =
        |password: &str| json!({ "invite_token": invite["invite_token"], "password": password });
    assert_eq!(
        app.call("POST", "/v1/auth/accept-invite", None, Some(accept("weak")))
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (status, eve) = app
        .call(
            "POST",
            "/v1/auth/accept-invite",
            None,
            Some(accept("cobalt-Meadow-tiger-27")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{eve}");
    assert_eq!(eve["role"], "editor");
    assert_eq!(eve["tenant_id"], owner["tenant_id"]);
    assert_eq!(
        app.call(
            "POST",
            "/v1/auth/accept-invite",
            None,
            Some(accept("cobalt-Meadow-tiger-27"))
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED,
        "single use"
    );

    let (_, members) = app
        .call("GET", "/v1/members", Some(token(&eve)), None)
        .await;
    assert_eq!(members.as_array().unwrap().len(), 2);
    // An editor cannot invite; an admin cannot make owners.
    let invite_admin = json!({ "email": "x@example.com", "role": "admin" });
    assert_eq!(
        app.call(
            "POST",
            "/v1/members/invites",
            Some(token(&eve)),
            Some(invite_admin)
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let eve_id = eve["user_id"].as_str().unwrap();
    let (status, _) = app
        .call(
            "PATCH",
            &format!("/v1/members/{eve_id}"),
            t,
            Some(json!({ "role": "admin" })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.call("GET", "/v1/me", Some(token(&eve)), None).await.0,
        StatusCode::UNAUTHORIZED,
        "a role change ends the member's sessions"
    );
    let eve = app
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({ "email": "eve@example.com", "password": "cobalt-Meadow-tiger-27" })),
        )
        .await
        .1;
    assert_eq!(eve["role"], "admin");
    let owner_id = owner["user_id"].as_str().unwrap();
    let demote = json!({ "role": "viewer" });
    assert_eq!(
        app.call(
            "PATCH",
            &format!("/v1/members/{owner_id}"),
            Some(token(&eve)),
            Some(demote.clone())
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call("PATCH", &format!("/v1/members/{owner_id}"), t, Some(demote))
            .await
            .0,
        StatusCode::CONFLICT,
        "the last owner stays"
    );
    assert_eq!(
        app.call("DELETE", &format!("/v1/members/{owner_id}"), t, None)
            .await
            .0,
        StatusCode::CONFLICT
    );
    // An existing account joins another tenant with its own password, and logs in to either.
    let other = app.register("bob@example.com").await;
    let (_, inv) = app
        .call(
            "POST",
            "/v1/members/invites",
            Some(token(&other)),
            Some(json!({ "email": "ana@example.com", "role": "viewer" })),
        )
        .await;
    let wrong =
        json!({ "invite_token": inv["invite_token"], "password": "cobalt-Meadow-tiger-27" });
    assert_eq!(
        app.call("POST", "/v1/auth/accept-invite", None, Some(wrong))
            .await
            .0,
        StatusCode::UNAUTHORIZED,
        "no takeover of an existing account"
    );
    let right =
        json!({ "invite_token": inv["invite_token"], "password": "violet-quarry-Tundra-88" });
    let (status, joined) = app
        .call("POST", "/v1/auth/accept-invite", None, Some(right))
        .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(joined["tenant_id"], other["tenant_id"]);
    let login = json!({ "email": "ana@example.com", "password": "violet-quarry-Tundra-88", "tenant_id": other["tenant_id"] });
    assert_eq!(
        app.call("POST", "/v1/auth/login", None, Some(login))
            .await
            .1["role"],
        "viewer"
    );
    // Removal ends the member's sessions.
    assert_eq!(
        app.call("DELETE", &format!("/v1/members/{eve_id}"), t, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call("GET", "/v1/me", Some(token(&eve)), None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

async fn a_logout_is_seen_by_every_process_sharing_redis(b: &Backend) {
    let mut config = Config::default();
    config.redis.url = coach_e2e::redis_url();
    config.redis.prefix = format!("test-{}:", uuid::Uuid::now_v7());
    // Two gateway processes: same store, same Redis, separate memory.
    let one = app_with(b, config.clone());
    let two = app_with(b, config);
    let pair = one.register("ana@example.com").await;
    assert_eq!(
        two.call("GET", "/v1/me", Some(token(&pair)), None).await.0,
        StatusCode::OK,
        "keys are shared"
    );
    assert_eq!(
        one.call("POST", "/v1/auth/logout", Some(token(&pair)), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        two.call("GET", "/v1/me", Some(token(&pair)), None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

async fn the_persona_is_kept_and_validated(b: &Backend) {
    let app = app(b);
    let pair = app.register("ana@example.com").await;
    let t = Some(token(&pair));
    let (status, tenant) = app.call("GET", "/v1/tenant", t, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tenant["persona"]["coach_name"], "");
    let persona = json!({ "coach_name": "Maya", "tone": "warm", "language": "es", "greeting": "¡Hola!",
        "coaching_style": "questions first", "boundaries": "no medical advice" });
    let (status, updated) = app
        .call(
            "PATCH",
            "/v1/tenant",
            t,
            Some(json!({ "name": "Ana & Co", "persona": persona })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["name"], "Ana & Co");
    let (_, again) = app.call("GET", "/v1/tenant", t, None).await;
    assert_eq!(again["persona"], persona);
    let bad = json!({ "persona": { "language": "english please" } });
    assert_eq!(
        app.call("PATCH", "/v1/tenant", t, Some(bad)).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let unknown = json!({ "persona": { "mood": "x" } });
    assert_eq!(
        app.call("PATCH", "/v1/tenant", t, Some(unknown)).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.call("GET", "/v1/tenant", t, None).await.1["persona"],
        persona,
        "a refused change changes nothing"
    );
    let (_, kept) = app
        .call(
            "PATCH",
            "/v1/tenant",
            t,
            Some(json!({ "retention_days": 30 })),
        )
        .await;
    assert_eq!(
        (kept["retention_days"].as_u64(), &kept["persona"]),
        (Some(30), &persona),
        "fields not sent stay"
    );
    assert_eq!(
        app.call(
            "PATCH",
            "/v1/tenant",
            t,
            Some(json!({ "retention_days": 5000 }))
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (_, forever) = app
        .call(
            "PATCH",
            "/v1/tenant",
            t,
            Some(json!({ "retention_days": 0 })),
        )
        .await;
    assert!(forever["retention_days"].is_null());
}

async fn changing_the_password_ends_every_session(b: &Backend) {
    let app = app(b);
    let first = app.register("ana@example.com").await;
    let login = json!({ "email": "ana@example.com", "password": "violet-quarry-Tundra-88" });
    let second = app
        .call("POST", "/v1/auth/login", None, Some(login.clone()))
        .await
        .1;
    let change = |current: &str| json!({ "current_password": current, "new_password": "amber-Glacier-violin-51" });
    let (status, _) = app
        .call(
            "POST",
            "/v1/auth/password",
            Some(token(&first)),
            Some(change("wrong-password-here")),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let weak =
        json!({ "current_password": "violet-quarry-Tundra-88", "new_password": "password1" });
    assert_eq!(
        app.call("POST", "/v1/auth/password", Some(token(&first)), Some(weak))
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (status, body) = app
        .call(
            "POST",
            "/v1/auth/password",
            Some(token(&first)),
            Some(change("violet-quarry-Tundra-88")),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for pair in [&first, &second] {
        assert_eq!(
            app.call("GET", "/v1/me", Some(token(pair)), None).await.0,
            StatusCode::UNAUTHORIZED
        );
        let refresh = json!({ "refresh_token": pair["refresh_token"] });
        assert_eq!(
            app.call("POST", "/v1/auth/refresh", None, Some(refresh))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.call("POST", "/v1/auth/login", None, Some(login))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let new_login = json!({ "email": "ana@example.com", "password": "amber-Glacier-violin-51" });
    assert_eq!(
        app.call("POST", "/v1/auth/login", None, Some(new_login))
            .await
            .0,
        StatusCode::OK
    );
}

async fn password_guessing_is_rate_limited_per_address(b: &Backend) {
    let app = app(b);
    app.register("ana@example.com").await;
    let guess = json!({ "email": "ana@example.com", "password": "guess-guess-guess" });
    let mut limited = None;
    for attempt in 0..40 {
        let req = Request::post("/v1/auth/login")
            .header("content-type", "application/json")
            .body(Body::from(guess.to_string()))
            .unwrap();
        let resp = app.router.clone().oneshot(req).await.unwrap();
        match resp.status() {
            StatusCode::UNAUTHORIZED => assert!(resp.headers().contains_key("www-authenticate")),
            StatusCode::TOO_MANY_REQUESTS => {
                limited = Some((attempt, resp.headers().clone()));
                break;
            }
            other => panic!("attempt {attempt}: {other}"),
        }
    }
    let (attempt, headers) = limited.expect("30 guesses a minute at most");
    assert_eq!(
        attempt, 29,
        "the 30-per-minute quota includes the registration"
    );
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    assert_eq!(headers["ratelimit-limit"], "30");
}

async fn register_login_and_me(b: &Backend) {
    let app = app(b);
    let pair = app.register("ana@example.com").await;
    assert_eq!(pair["role"], "owner");
    assert_eq!(pair["token_type"], "Bearer");
    let (status, me) = app.call("GET", "/v1/me", Some(token(&pair)), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["user"]["email"], "ana@example.com");
    assert_eq!(me["tenant_id"], pair["tenant_id"]);

    let again = json!({ "email": "ANA@example.com", "password": "violet-quarry-Tundra-88", "tenant_name": "x" });
    let (status, problem) = app
        .call("POST", "/v1/auth/register", None, Some(again))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");

    let weak = json!({ "email": "bo@example.com", "password": "password123", "tenant_name": "x" });
    assert_eq!(
        app.call("POST", "/v1/auth/register", None, Some(weak))
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let (status, login) = app
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({ "email": "Ana@Example.com", "password": "violet-quarry-Tundra-88" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    assert_eq!(login["tenant_id"], pair["tenant_id"]);
    let wrong = app
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({ "email": "ana@example.com", "password": "nope-nope-nope" })),
        )
        .await;
    let unknown = app
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({ "email": "who@example.com", "password": "nope-nope-nope" })),
        )
        .await;
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong, unknown,
        "unknown e-mail and wrong password look the same"
    );
}

async fn refresh_rotates_and_a_reused_token_ends_the_session(b: &Backend) {
    let app = app(b);
    let first = app.register("ana@example.com").await;
    let (status, second) = app
        .call(
            "POST",
            "/v1/auth/refresh",
            None,
            Some(json!({ "refresh_token": first["refresh_token"] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(
        app.call("GET", "/v1/me", Some(token(&second)), None)
            .await
            .0,
        StatusCode::OK
    );
    // The first token again: a thief or a replay. The whole session ends.
    let (status, _) = app
        .call(
            "POST",
            "/v1/auth/refresh",
            None,
            Some(json!({ "refresh_token": first["refresh_token"] })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .call(
            "POST",
            "/v1/auth/refresh",
            None,
            Some(json!({ "refresh_token": second["refresh_token"] })),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the rotated token died with its session"
    );
    assert_eq!(
        app.call("GET", "/v1/me", Some(token(&second)), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call(
            "POST",
            "/v1/auth/refresh",
            None,
            Some(json!({ "refresh_token": "rt_made_up" }))
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
}

async fn logout_ends_the_session(b: &Backend) {
    let app = app(b);
    let pair = app.register("ana@example.com").await;
    let other = app
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({ "email": "ana@example.com", "password": "violet-quarry-Tundra-88" })),
        )
        .await
        .1;
    assert_eq!(
        app.call("POST", "/v1/auth/logout", Some(token(&pair)), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call("GET", "/v1/me", Some(token(&pair)), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = app
        .call(
            "POST",
            "/v1/auth/refresh",
            None,
            Some(json!({ "refresh_token": pair["refresh_token"] })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.call("GET", "/v1/me", Some(token(&other)), None).await.0,
        StatusCode::OK,
        "other sessions live on"
    );
}

/// Sign arbitrary claims with the gateway's own key (what only an insider could do).
async fn sign(app: &App, header: jsonwebtoken::Header, claims: &Value) -> String {
    let keys = app
        .state
        .store
        .signing_keys(&SystemScope::new("test"))
        .await
        .unwrap();
    let key = jsonwebtoken::EncodingKey::from_ed_der(&keys[0].private_der);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn b64(v: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

async fn forged_and_tampered_tokens_are_refused(b: &Backend) {
    let app = app(b);
    let pair = app.register("ana@example.com").await;
    let good = token(&pair).to_owned();
    let parts: Vec<&str> = good.split('.').collect();
    let payload: Value = {
        use base64::Engine as _;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(parts[1])
                .unwrap(),
        )
        .unwrap()
    };
    let keys = app
        .state
        .store
        .signing_keys(&SystemScope::new("test"))
        .await
        .unwrap();
    let kid = keys[0].kid.clone();
    let mut attacks: Vec<(&str, String)> = Vec::new();
    attacks.push((
        "alg none",
        format!(
            "{}.{}.",
            b64(&json!({ "alg": "none", "typ": "JWT", "kid": kid })),
            parts[1]
        ),
    ));
    let mut escalated = payload.clone();
    escalated["tid"] = json!(uuid::Uuid::now_v7());
    attacks.push((
        "tampered payload",
        format!("{}.{}.{}", parts[0], b64(&escalated), parts[2]),
    ));
    let hs = jsonwebtoken::Header {
        kid: Some(kid.clone()),
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
    };
    let confusion = jsonwebtoken::encode(
        &hs,
        &payload,
        &jsonwebtoken::EncodingKey::from_secret(&keys[0].public_raw),
    )
    .unwrap();
    attacks.push(("HS256 with the public key", confusion));
    let ed = |kid: Option<String>| jsonwebtoken::Header {
        kid,
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA)
    };
    let mut expired = payload.clone();
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 60);
    attacks.push(("expired", sign(&app, ed(Some(kid.clone())), &expired).await));
    let mut foreign = payload.clone();
    foreign["iss"] = json!("someone-else");
    attacks.push((
        "wrong issuer",
        sign(&app, ed(Some(kid.clone())), &foreign).await,
    ));
    let mut audience = payload.clone();
    audience["aud"] = json!("another-app");
    attacks.push((
        "wrong audience",
        sign(&app, ed(Some(kid.clone())), &audience).await,
    ));
    attacks.push(("no kid", sign(&app, ed(None), &payload).await));
    attacks.push((
        "unknown kid",
        sign(&app, ed(Some("nope".into())), &payload).await,
    ));
    attacks.push(("garbage", "not.a.token".into()));
    for (name, forged) in attacks {
        let (status, body) = app.call("GET", "/v1/me", Some(&forged), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {body}");
    }
    assert_eq!(
        app.call("GET", "/v1/me", Some(&good), None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.call("GET", "/v1/me", None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
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
    let create = json!({ "kind": "telegram", "name": "bot", "config": {} });
    assert_eq!(
        app.call("POST", "/v1/channels", Some(&viewer), Some(create.clone()))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call("GET", "/v1/channels", Some(&viewer), None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.call("GET", "/v1/audit-log", Some(&viewer), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call("POST", "/v1/channels", Some(token(&pair)), Some(create))
            .await
            .0,
        StatusCode::CREATED
    );
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
    let app = app(b);
    let a = app.register("ana@example.com").await;
    let bee = app.register("bob@example.com").await;
    let (_, channel) = app
        .call("POST", "/v1/channels", Some(token(&a)), Some(json!({ "kind": "whatsapp", "name": "A's", "config": { "access_token": "EAAG-secret" } })))
        .await;
    let channel_id = channel["id"].as_str().unwrap().to_owned();
    let scope =
        SystemScope::new("test").for_tenant(a["tenant_id"].as_str().unwrap().parse().unwrap());
    b.store
        .ingest(
            &scope,
            channel_id.parse().unwrap(),
            vec![common::text("m1", "alice", "A's secret")],
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
        )
        .await
        .unwrap()[0]
        .clone();
    let a_ids = [
        a["user_id"].as_str().unwrap().to_owned(),
        channel_id.clone(),
        conv.id.to_string(),
        conv.contact_id.to_string(),
        a["tenant_id"].as_str().unwrap().to_owned(),
    ];

    let (_, doc) = app.call("GET", "/openapi.json", None, None).await;
    let paths = doc["paths"].as_object().unwrap();
    let mut checked = 0;
    for (path, item) in paths {
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
                let concrete = path.replace("{id}", &a_ids[4]);
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
