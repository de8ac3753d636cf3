//! E-mail ownership on SQLite and PostgreSQL (`auth.verify_email`, on when an SMTP relay is
//! configured): new accounts log in only after opening the link sent to them; accounts made
//! before it was on, and accounts that reset their password by e-mail, count as confirmed.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use crate::against_every_backend;
use crate::api_support::*;
use axum::http::StatusCode;
use coach_gateway::config::Config;
use serde_json::{Value, json};

use crate::common::Backend;

against_every_backend!(
    new_accounts_confirm_their_email_before_logging_in,
    invited_newcomers_confirm_their_email_too,
);

const PASSWORD: &str = "violet-quarry-Tundra-88";

/// An app whose mail goes to a local SMTP sink (so e-mail confirmation is on).
async fn mailing_app(b: &Backend) -> (App, coach_e2e::smtp::Sink) {
    let sink = coach_e2e::smtp::start().await.unwrap();
    let mut config = Config {
        public_url: "https://coach.example".into(),
        ..Config::default()
    };
    config.smtp.url = sink.url.clone();
    (app_with(b, config), sink)
}

/// The token (`prefix...`) in the latest mail to `to`, which must link to `link`.
fn token_in_mail(sink: &coach_e2e::smtp::Sink, to: &str, link: &str, prefix: &str) -> String {
    let raw = sink
        .messages
        .lock()
        .unwrap()
        .last()
        .cloned()
        .expect("an e-mail");
    // The body is quoted-printable: undo soft line breaks and the escaped `=`.
    let mail = raw.replace("=\n", "").replace("=3D", "=");
    assert!(mail.contains(&format!("To: {to}")), "{mail}");
    assert!(mail.contains(link), "{mail}");
    mail.split_whitespace()
        .find(|w| w.starts_with(prefix))
        .unwrap()
        .to_owned()
}

fn login(email: &str) -> Option<Value> {
    Some(json!({ "email": email, "password": PASSWORD }))
}

async fn new_accounts_confirm_their_email_before_logging_in(b: &Backend) {
    // An account made while the gateway had no relay (no confirmation) keeps working.
    let before = app(b);
    before.register("early@example.com").await;

    let (app, sink) = mailing_app(b).await;
    app.expect_because(
        StatusCode::OK,
        "POST",
        "/v1/auth/login",
        None,
        login("early@example.com"),
        "accounts older than the confirmation count as confirmed",
    )
    .await;

    let register =
        json!({ "email": "new@example.com", "password": PASSWORD, "tenant_name": "New" });
    let sent = app
        .expect(
            StatusCode::ACCEPTED,
            "POST",
            "/v1/auth/register",
            None,
            Some(register),
        )
        .await;
    assert_eq!(sent["status"], "confirm_email", "{sent}");
    assert!(
        sent.get("access_token").is_none(),
        "no session before confirming: {sent}"
    );
    let first = token_in_mail(
        &sink,
        "new@example.com",
        "https://coach.example/console#/verify-email?token=ev_",
        "ev_",
    );

    // The password is right, the address unconfirmed: a 403 that says what to do. A wrong
    // password still gets the plain 401 (nothing is told to someone without it).
    let refused = app
        .expect(
            StatusCode::FORBIDDEN,
            "POST",
            "/v1/auth/login",
            None,
            login("new@example.com"),
        )
        .await;
    assert!(
        refused["type"]
            .as_str()
            .unwrap()
            .ends_with("/email-unconfirmed"),
        "{refused}"
    );
    let wrong = json!({ "email": "new@example.com", "password": "not-the-Password-99" });
    app.expect(
        StatusCode::UNAUTHORIZED,
        "POST",
        "/v1/auth/login",
        None,
        Some(wrong),
    )
    .await;

    // A new link replaces the first; unknown addresses get the same answer and no mail.
    let mails = sink.messages.lock().unwrap().len();
    for email in ["new@example.com", "nobody@example.com", "early@example.com"] {
        app.expect(
            StatusCode::ACCEPTED,
            "POST",
            "/v1/auth/verify-email/resend",
            None,
            Some(json!({ "email": email })),
        )
        .await;
    }
    assert_eq!(
        sink.messages.lock().unwrap().len(),
        mails + 1,
        "one new link, only to the unconfirmed account"
    );
    let second = token_in_mail(&sink, "new@example.com", "#/verify-email?token=ev_", "ev_");
    assert_ne!(first, second);
    let confirm = |token: &str| Some(json!({ "token": token }));
    app.expect_because(
        StatusCode::UNAUTHORIZED,
        "POST",
        "/v1/auth/verify-email",
        None,
        confirm(&first),
        "the replaced link",
    )
    .await;
    app.expect(
        StatusCode::NO_CONTENT,
        "POST",
        "/v1/auth/verify-email",
        None,
        confirm(&second),
    )
    .await;
    app.expect_because(
        StatusCode::UNAUTHORIZED,
        "POST",
        "/v1/auth/verify-email",
        None,
        confirm(&second),
        "single use",
    )
    .await;
    let pair = app
        .expect(
            StatusCode::OK,
            "POST",
            "/v1/auth/login",
            None,
            login("new@example.com"),
        )
        .await;
    app.expect(StatusCode::OK, "GET", "/v1/me", Some(token(&pair)), None)
        .await;

    // A password reset proves the mailbox too: whoever registered someone else's address
    // cannot keep its owner out.
    let squat =
        json!({ "email": "owner@example.com", "password": PASSWORD, "tenant_name": "Squat" });
    app.expect(
        StatusCode::ACCEPTED,
        "POST",
        "/v1/auth/register",
        None,
        Some(squat),
    )
    .await;
    app.expect(
        StatusCode::ACCEPTED,
        "POST",
        "/v1/auth/password-reset",
        None,
        Some(json!({ "email": "owner@example.com" })),
    )
    .await;
    let reset = token_in_mail(
        &sink,
        "owner@example.com",
        "https://coach.example/console#/reset-password?token=pr_",
        "pr_",
    );
    let fresh = "cobalt-Meadow-tiger-27";
    app.expect(
        StatusCode::NO_CONTENT,
        "POST",
        "/v1/auth/password-reset/confirm",
        None,
        Some(json!({ "token": reset, "new_password": fresh })),
    )
    .await;
    let owner = json!({ "email": "owner@example.com", "password": fresh });
    app.expect(StatusCode::OK, "POST", "/v1/auth/login", None, Some(owner))
        .await;

    // Turned off, nobody is asked (and the resend endpoint says why it is refused).
    let mut config = Config::default();
    config.smtp.url = sink.url.clone();
    config.auth.verify_email = Some(false);
    let off = app_with(b, config);
    off.register("off@example.com").await;
    off.expect(
        StatusCode::FORBIDDEN,
        "POST",
        "/v1/auth/verify-email/resend",
        None,
        Some(json!({ "email": "off@example.com" })),
    )
    .await;
}

async fn invited_newcomers_confirm_their_email_too(b: &Backend) {
    let (app, sink) = mailing_app(b).await;
    let before = app_with(b, Config::default());
    let owner = before.register("boss@example.com").await;
    let t = Some(token(&owner));
    let invite = |email: &str| Some(json!({ "email": email, "role": "editor" }));
    let made = app
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/members/invites",
            t,
            invite("newbie@example.com"),
        )
        .await;
    let accept = json!({ "invite_token": made["invite_token"], "password": PASSWORD });
    let sent = app
        .expect(
            StatusCode::ACCEPTED,
            "POST",
            "/v1/auth/accept-invite",
            None,
            Some(accept),
        )
        .await;
    assert_eq!(sent["email"], "newbie@example.com", "{sent}");
    let members = app
        .expect(StatusCode::OK, "GET", "/v1/members", t, None)
        .await;
    assert!(
        members.to_string().contains("newbie@example.com"),
        "joined: {members}"
    );
    app.expect(
        StatusCode::FORBIDDEN,
        "POST",
        "/v1/auth/login",
        None,
        login("newbie@example.com"),
    )
    .await;
    let link = token_in_mail(
        &sink,
        "newbie@example.com",
        "#/verify-email?token=ev_",
        "ev_",
    );
    app.expect(
        StatusCode::NO_CONTENT,
        "POST",
        "/v1/auth/verify-email",
        None,
        Some(json!({ "token": link })),
    )
    .await;
    app.expect(
        StatusCode::OK,
        "POST",
        "/v1/auth/login",
        None,
        login("newbie@example.com"),
    )
    .await;

    // An existing (confirmed) account joining another tenant gets its session at once.
    let other = before.register("elsewhere@example.com").await;
    let second = app
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/members/invites",
            Some(token(&other)),
            invite("boss@example.com"),
        )
        .await;
    let join = json!({ "invite_token": second["invite_token"], "password": PASSWORD });
    let pair = app
        .expect(
            StatusCode::OK,
            "POST",
            "/v1/auth/accept-invite",
            None,
            Some(join),
        )
        .await;
    assert!(pair["access_token"].is_string(), "{pair}");
}
