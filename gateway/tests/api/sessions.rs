//! Admin API sessions on SQLite and PostgreSQL: registration, login, refresh rotation and
//! reuse, logout, password change and reset, JWT attacks, rate limits, shared revocation.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use crate::against_every_backend;
use crate::api_support::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use coach_gateway::config::Config;

use crate::common::Backend;
use coach_gateway::tenancy::SystemScope;
use serde_json::{Value, json};
use tower::ServiceExt;

against_every_backend!(
    register_login_and_me,
    refresh_rotates_and_a_reused_token_ends_the_session,
    logout_ends_the_session,
    forged_and_tampered_tokens_are_refused,
    changing_the_password_ends_every_session,
    password_guessing_is_rate_limited_per_address,
    a_logout_is_seen_by_every_process_sharing_redis,
    a_forgotten_password_is_reset_by_email,
);

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
    app.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        "POST",
        "/v1/auth/register",
        None,
        Some(weak),
    )
    .await;

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
    app.expect(StatusCode::OK, "GET", "/v1/me", Some(token(&second)), None)
        .await;
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
    app.expect(
        StatusCode::UNAUTHORIZED,
        "GET",
        "/v1/me",
        Some(token(&second)),
        None,
    )
    .await;
    app.expect(
        StatusCode::UNAUTHORIZED,
        "POST",
        "/v1/auth/refresh",
        None,
        Some(json!({ "refresh_token": "rt_made_up" })),
    )
    .await;
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
    app.expect(
        StatusCode::NO_CONTENT,
        "POST",
        "/v1/auth/logout",
        Some(token(&pair)),
        None,
    )
    .await;
    app.expect(
        StatusCode::UNAUTHORIZED,
        "GET",
        "/v1/me",
        Some(token(&pair)),
        None,
    )
    .await;
    let (status, _) = app
        .call(
            "POST",
            "/v1/auth/refresh",
            None,
            Some(json!({ "refresh_token": pair["refresh_token"] })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.expect_because(
        StatusCode::OK,
        "GET",
        "/v1/me",
        Some(token(&other)),
        None,
        "other sessions live on",
    )
    .await;
    // A restart without Redis: the ended session's access token is still refused.
    let config = Config {
        public_url: "https://coach.example".into(),
        ..Config::default()
    };
    let restarted = app_on(b.store.clone(), config);
    assert_eq!(restarted.state.auth.revoked.load().await.unwrap(), 1);
    restarted
        .expect_because(
            StatusCode::UNAUTHORIZED,
            "GET",
            "/v1/me",
            Some(token(&pair)),
            None,
            "a logout survives a restart",
        )
        .await;
    restarted
        .expect(StatusCode::OK, "GET", "/v1/me", Some(token(&other)), None)
        .await;
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
    app.expect(StatusCode::OK, "GET", "/v1/me", Some(&good), None)
        .await;
    app.expect(StatusCode::UNAUTHORIZED, "GET", "/v1/me", None, None)
        .await;
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
    app.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        "POST",
        "/v1/auth/password",
        Some(token(&first)),
        Some(weak),
    )
    .await;
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
        app.expect(
            StatusCode::UNAUTHORIZED,
            "GET",
            "/v1/me",
            Some(token(pair)),
            None,
        )
        .await;
        let refresh = json!({ "refresh_token": pair["refresh_token"] });
        app.expect(
            StatusCode::UNAUTHORIZED,
            "POST",
            "/v1/auth/refresh",
            None,
            Some(refresh),
        )
        .await;
    }
    app.expect(
        StatusCode::UNAUTHORIZED,
        "POST",
        "/v1/auth/login",
        None,
        Some(login),
    )
    .await;
    let new_login = json!({ "email": "ana@example.com", "password": "amber-Glacier-violin-51" });
    app.expect(
        StatusCode::OK,
        "POST",
        "/v1/auth/login",
        None,
        Some(new_login),
    )
    .await;
}

async fn password_guessing_is_rate_limited_per_address(b: &Backend) {
    let app = app(b);
    let started = std::time::Instant::now();
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
    // The quota refills one request every 2 s: a slow run (a loaded machine hashing passwords)
    // earns those back.
    let refilled = started.elapsed().as_secs() / 2;
    assert!(
        (29..=29 + refilled).contains(&attempt),
        "the 30-per-minute quota includes the registration: refused at attempt {attempt}, \
         {refilled} refilled"
    );
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    assert_eq!(headers["ratelimit-limit"], "30");
}

async fn a_logout_is_seen_by_every_process_sharing_redis(b: &Backend) {
    let mut config = Config::default();
    config.redis.url = coach_e2e::redis_url();
    config.redis.prefix = format!("test-{}:", uuid::Uuid::now_v7());
    // Two gateway processes: same store, same Redis, separate memory.
    let one = app_with(b, config.clone());
    let two = app_with(b, config);
    let pair = one.register("ana@example.com").await;
    two.expect_because(
        StatusCode::OK,
        "GET",
        "/v1/me",
        Some(token(&pair)),
        None,
        "keys are shared",
    )
    .await;
    one.expect(
        StatusCode::NO_CONTENT,
        "POST",
        "/v1/auth/logout",
        Some(token(&pair)),
        None,
    )
    .await;
    two.expect(
        StatusCode::UNAUTHORIZED,
        "GET",
        "/v1/me",
        Some(token(&pair)),
        None,
    )
    .await;
}

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
    assert_eq!(status, StatusCode::FORBIDDEN);
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
    // Accounts confirm their address first when mail is configured; tests/api/email.rs has
    // that (and a reset confirming one); here the session from registering is needed.
    config.auth.verify_email = Some(false);
    let app = app_with(b, config);
    let pair = app.register("ana@example.com").await;
    let ask = |email: &str| json!({ "email": email });
    app.expect(
        StatusCode::ACCEPTED,
        "POST",
        "/v1/auth/password-reset",
        None,
        Some(ask("nobody@example.com")),
    )
    .await;
    assert!(
        sink.messages.lock().unwrap().is_empty(),
        "no mail for unknown accounts"
    );
    app.expect(
        StatusCode::ACCEPTED,
        "POST",
        "/v1/auth/password-reset",
        None,
        Some(ask("ana@example.com")),
    )
    .await;
    let raw = sink.messages.lock().unwrap().pop().expect("a reset e-mail");
    // The body is quoted-printable: undo soft line breaks and the escaped `=`.
    let mail = raw.replace("=\n", "").replace("=3D", "=");
    assert!(mail.contains("To: ana@example.com"), "{mail}");
    assert!(
        mail.contains("https://coach.example/console#/reset-password?token=pr_"),
        "{mail}"
    );
    let reset = mail
        .split_whitespace()
        .find(|w| w.starts_with("pr_"))
        .unwrap()
        .to_owned();

    let confirm = |password: &str| json!({ "token": reset, "new_password": password });
    app.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        "POST",
        "/v1/auth/password-reset/confirm",
        None,
        Some(confirm("weak")),
    )
    .await;
    app.expect(
        StatusCode::NO_CONTENT,
        "POST",
        "/v1/auth/password-reset/confirm",
        None,
        Some(confirm("amber-Glacier-violin-51")),
    )
    .await;
    app.expect_because(
        StatusCode::UNAUTHORIZED,
        "GET",
        "/v1/me",
        Some(token(&pair)),
        None,
        "old sessions end",
    )
    .await;
    let login = json!({ "email": "ana@example.com", "password": "amber-Glacier-violin-51" });
    app.expect(StatusCode::OK, "POST", "/v1/auth/login", None, Some(login))
        .await;
    app.expect_because(
        StatusCode::UNAUTHORIZED,
        "POST",
        "/v1/auth/password-reset/confirm",
        None,
        Some(confirm("cobalt-Meadow-tiger-27")),
        "single use",
    )
    .await;
}
