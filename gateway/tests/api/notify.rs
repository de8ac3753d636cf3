//! Notifications on SQLite and PostgreSQL: the creator's webhook takes the events it chose
//! (`message.created`, `conversation.resolved`, `feedback.created`, `handoff.requested`), each
//! signed per Standard Webhooks (verified with the reference library) and logged per attempt,
//! never another tenant's, never an erased message; a handoff e-mails the assignee, or the
//! owners and admins, who want e-mail, through a loopback SMTP sink.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use crate::against_every_backend;
use crate::api_support::*;
use crate::common::Backend;
use axum::http::StatusCode;
use coach_gateway::config::Config;
use coach_gateway::store::feedback::NewFeedback;
use serde_json::{Value, json};

against_every_backend!(
    webhook_events_are_chosen_signed_logged_and_the_tenants_own,
    a_handoff_emails_the_assignee_or_the_owners_who_want_it,
);

fn hooks_config() -> Config {
    let mut config = Config {
        public_url: "https://coach.example".into(),
        ..Config::default()
    };
    config.http.allow_private_webhooks = true;
    config
}

async fn poll_events(app: &App) -> usize {
    coach_gateway::notify::poll_events(&app.state)
        .await
        .unwrap()
}

/// The body of the `n`th POST, checked against `secret` with the Standard Webhooks library.
fn verified(got: &Received, n: usize, secret: &str) -> Value {
    let got = got.lock().unwrap();
    let (headers, body) = &got[n];
    let hook = standardwebhooks::Webhook::new(secret).unwrap();
    hook.verify(body, headers)
        .unwrap_or_else(|e| panic!("the signature does not verify: {e}"));
    let other = standardwebhooks::Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    assert!(
        other.verify(body, headers).is_err(),
        "another secret verifies"
    );
    assert!(
        headers.contains_key("coach-signature"),
        "the deprecated header is still sent"
    );
    let event: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(headers["webhook-id"].to_str().unwrap(), event["id"]);
    event
}

async fn webhook_events_are_chosen_signed_logged_and_the_tenants_own(b: &Backend) {
    let app = app_with(b, hooks_config());
    let (ana, scope, channel) = tenant_with_channel(&app, "ana@example.com").await;
    let t = Some(token(&ana));
    let (url, got) = receiver(StatusCode::OK).await;

    // Unknown events are refused and change nothing.
    let bad = json!({ "url": url, "events": ["message.created", "message.deleted"] });
    let problem = app
        .expect(
            StatusCode::UNPROCESSABLE_ENTITY,
            "PUT",
            "/v1/tenant/notify",
            t,
            Some(bad),
        )
        .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("message.deleted"),
        "{problem}"
    );
    let (_, shown) = app.call("GET", "/v1/tenant/notify", t, None).await;
    assert_eq!(shown, json!({ "url": null, "events": [] }));

    let chosen = [
        "message.created",
        "conversation.resolved",
        "feedback.created",
    ];
    let set = app
        .expect(
            StatusCode::OK,
            "PUT",
            "/v1/tenant/notify",
            t,
            Some(json!({ "url": url, "events": chosen })),
        )
        .await;
    let secret = set["secret"].as_str().unwrap().to_string();
    let (_, shown) = app.call("GET", "/v1/tenant/notify", t, None).await;
    assert_eq!(shown, json!({ "url": url, "events": chosen }));

    // Another tenant without a webhook: its messages queue nothing.
    let (bob, bob_scope, bob_channel) = tenant_with_channel(&app, "bob@example.com").await;
    app.state
        .stream
        .ingest(
            &bob_scope,
            bob_channel,
            vec![crate::common::text("b1", "zoe", "Hi from Bob's side")],
        )
        .await
        .unwrap();

    // An inbound message: one signed `message.created`.
    app.state
        .stream
        .ingest(
            &scope,
            channel,
            vec![crate::common::text("m1", "alice", "Hello coach")],
        )
        .await
        .unwrap();
    assert_eq!(poll_events(&app).await, 1);
    let event = verified(&got, 0, &secret);
    assert_eq!(event["type"], "message.created");
    assert_eq!(event["tenant_id"], ana["tenant_id"]);
    assert_eq!(event["data"]["direction"], "inbound");
    assert_eq!(event["data"]["content"]["body"], "Hello coach", "{event}");
    let conversation = event["data"]["conversation_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(poll_events(&app).await, 0, "each event once; none of Bob's");

    // The team's reply, then the contact's thumbs-up on it, then resolving.
    let reply = app
        .expect(
            StatusCode::CREATED,
            "POST",
            &format!("/v1/conversations/{conversation}/messages"),
            t,
            Some(json!({ "text": "Hi Alice, how can I help?" })),
        )
        .await;
    let contact = event["data"]["contact_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    app.state
        .store
        .record_feedback(
            &scope,
            NewFeedback {
                contact_id: coach_connector_api::ContactId(contact),
                conversation_id: coach_connector_api::ConversationId(conversation.parse().unwrap()),
                to_message: reply["id"].as_str().unwrap().to_string(),
                emoji: Some("👍".into()),
                rating: 1,
                at: chrono::Utc::now(),
            },
        )
        .await
        .unwrap();
    app.expect(
        StatusCode::OK,
        "POST",
        &format!("/v1/conversations/{conversation}/resolve"),
        t,
        None,
    )
    .await;
    assert_eq!(poll_events(&app).await, 3);
    let events: Vec<Value> = (1..4).map(|n| verified(&got, n, &secret)).collect();
    let of = |kind: &str| {
        events
            .iter()
            .find(|e| e["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {events:?}"))
            .clone()
    };
    let sent = of("message.created");
    assert_eq!(sent["data"]["direction"], "outbound");
    assert_eq!(sent["data"]["id"], reply["id"]);
    let feedback = of("feedback.created");
    assert_eq!(feedback["data"]["emoji"], "👍");
    assert_eq!(feedback["data"]["rating"], 1);
    assert_eq!(feedback["data"]["message_id"], reply["id"]);
    let resolved = of("conversation.resolved");
    assert_eq!(resolved["data"]["id"], conversation.as_str());
    assert_eq!(resolved["data"]["status"], "resolved");
    let ids: std::collections::HashSet<&str> =
        events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "every event has its own id");

    // The delivery log: the admin's own, newest first; Bob's is empty.
    let log = app
        .expect(
            StatusCode::OK,
            "GET",
            "/v1/tenant/notify/deliveries",
            t,
            None,
        )
        .await;
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 4);
    assert!(
        log.iter()
            .all(|d| d["status"] == 200 && d["error"].is_null() && d["attempt"] == 1)
    );
    assert_eq!(log[3]["event_type"], "message.created");
    assert_eq!(log[3]["event_id"], event["id"]);
    let bobs = app
        .expect(
            StatusCode::OK,
            "GET",
            "/v1/tenant/notify/deliveries",
            Some(token(&bob)),
            None,
        )
        .await;
    assert_eq!(bobs, json!([]));

    // A message erased before its event went out is never sent.
    app.state
        .stream
        .ingest(
            &scope,
            channel,
            vec![crate::common::text("m2", "carl", "Please forget me")],
        )
        .await
        .unwrap();
    let (_, contacts) = app.call("GET", "/v1/contacts", t, None).await;
    let carl = contacts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["display_name"] == "Person carl")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.expect(
        StatusCode::NO_CONTENT,
        "DELETE",
        &format!("/v1/contacts/{carl}"),
        t,
        None,
    )
    .await;
    assert_eq!(poll_events(&app).await, 0);
    assert_eq!(got.lock().unwrap().len(), 4);

    // Only the chosen events: without `message.created`, messages queue nothing.
    let patched = app
        .expect(
            StatusCode::OK,
            "PATCH",
            "/v1/tenant/notify",
            t,
            Some(json!({ "events": ["conversation.resolved"] })),
        )
        .await;
    assert_eq!(
        patched,
        json!({ "url": url, "events": ["conversation.resolved"] })
    );
    app.state
        .stream
        .ingest(
            &scope,
            channel,
            vec![crate::common::text("m3", "alice", "Still there?")],
        )
        .await
        .unwrap();
    assert_eq!(poll_events(&app).await, 0);

    // A failing webhook: the attempt is logged with its status and the event is kept for a retry.
    let (failing, failed) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
    app.expect(
        StatusCode::OK,
        "PUT",
        "/v1/tenant/notify",
        t,
        Some(json!({ "url": failing, "events": ["conversation.resolved"] })),
    )
    .await;
    app.expect(
        StatusCode::OK,
        "POST",
        &format!("/v1/conversations/{conversation}/resolve"),
        t,
        None,
    )
    .await;
    assert_eq!(poll_events(&app).await, 1);
    assert_eq!(failed.lock().unwrap().len(), 1);
    let log = app
        .expect(
            StatusCode::OK,
            "GET",
            "/v1/tenant/notify/deliveries?limit=1",
            t,
            None,
        )
        .await;
    assert_eq!(log[0]["status"], 500, "{log}");
    assert!(log[0]["error"].as_str().unwrap().contains("500"), "{log}");
    // Resolving what is already resolved queues no second event (the failed one may be retried
    // meanwhile: its backoff has jitter, so only the event ids are compared).
    let ids = |log: Value| -> std::collections::HashSet<String> {
        log.as_array()
            .unwrap()
            .iter()
            .map(|d| d["event_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let log = "/v1/tenant/notify/deliveries?limit=200";
    let before = ids(app.expect(StatusCode::OK, "GET", log, t, None).await);
    app.expect(
        StatusCode::OK,
        "POST",
        &format!("/v1/conversations/{conversation}/resolve"),
        t,
        None,
    )
    .await;
    poll_events(&app).await;
    let after = ids(app.expect(StatusCode::OK, "GET", log, t, None).await);
    assert!(
        after.is_subset(&before),
        "a second resolve sent a new event"
    );
    // The delivery log is pruned by retention: kept within the period, gone after it.
    app.expect(
        StatusCode::OK,
        "PATCH",
        "/v1/tenant",
        t,
        Some(json!({ "retention_days": 1 })),
    )
    .await;
    let sys = coach_gateway::tenancy::SystemScope::new("test");
    let now = chrono::Utc::now();
    app.state.store.apply_retention(&sys, now).await.unwrap();
    let kept = app.expect(StatusCode::OK, "GET", log, t, None).await;
    assert!(!kept.as_array().unwrap().is_empty(), "{kept}");
    app.state
        .store
        .apply_retention(&sys, now + chrono::Duration::days(10))
        .await
        .unwrap();
    let left = app.expect(StatusCode::OK, "GET", log, t, None).await;
    assert!(left.as_array().unwrap().is_empty(), "{left}");
    // Editing events needs a webhook; non-admins cannot read the log.
    app.expect(
        StatusCode::NO_CONTENT,
        "DELETE",
        "/v1/tenant/notify",
        t,
        None,
    )
    .await;
    app.expect(
        StatusCode::NOT_FOUND,
        "PATCH",
        "/v1/tenant/notify",
        t,
        Some(json!({ "events": [] })),
    )
    .await;
}

async fn a_handoff_emails_the_assignee_or_the_owners_who_want_it(b: &Backend) {
    // Members are made before the relay is configured (with it, new accounts confirm their
    // address first); the mailing app shares the database.
    let plain = app(b);
    let (ana, scope, channel) = tenant_with_channel(&plain, "ana@example.com").await;
    let t = Some(token(&ana));
    let invite = plain
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/members/invites",
            t,
            Some(json!({ "email": "joe@example.com", "role": "editor" })),
        )
        .await;
    let joe = plain
        .expect(
            StatusCode::OK,
            "POST",
            "/v1/auth/accept-invite",
            None,
            Some(json!({ "invite_token": invite["invite_token"], "password": "cobalt-Meadow-tiger-27" })),
        )
        .await;

    let sink = coach_e2e::smtp::start().await.unwrap();
    let mut config = Config {
        public_url: "https://coach.example".into(),
        ..Config::default()
    };
    config.smtp.url = sink.url.clone();
    let app = app_with(b, config);
    let mails = || -> Vec<String> {
        sink.messages
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.replace("=\n", "").replace("=3D", "="))
            .collect()
    };
    let state = app.state.clone();
    let ask = |key: &'static str, from: &'static str| {
        let state = state.clone();
        let scope = scope.clone();
        async move {
            state
                .stream
                .ingest(
                    &scope,
                    channel,
                    vec![crate::common::text(
                        key,
                        from,
                        "Can I talk to a human, please?",
                    )],
                )
                .await
                .unwrap();
            // Every answer due, older ones (a woken conversation's) included.
            while coach_gateway::knowledge::responder::poll_once(&state)
                .await
                .unwrap()
                > 0
            {}
        }
    };

    // Nobody assigned: the owner (ana) gets it; the editor does not.
    ask("h1", "alice").await;
    assert_eq!(
        coach_gateway::notify::email::poll_once(&app.state)
            .await
            .unwrap(),
        1
    );
    let got = mails();
    assert_eq!(got.len(), 1);
    assert!(got[0].contains("To: ana@example.com"), "{}", got[0]);
    assert!(
        got[0].contains("Person alice asked for a person"),
        "{}",
        got[0]
    );
    assert!(
        got[0].contains("Can I talk to a human, please?"),
        "{}",
        got[0]
    );
    assert!(
        got[0].contains("https://coach.example/console#/inbox/"),
        "{}",
        got[0]
    );
    // Asking again in the same wait mails nobody twice.
    ask("h2", "alice").await;
    assert_eq!(
        coach_gateway::notify::email::poll_once(&app.state)
            .await
            .unwrap(),
        0
    );

    // Joe takes the conversation over and hands it back; the next wait mails Joe only.
    let (_, inbox) = app.call("GET", "/v1/inbox", t, None).await;
    let conversation = inbox[0]["conversation"]["id"].as_str().unwrap().to_string();
    let jt = Some(token(&joe));
    app.expect(
        StatusCode::OK,
        "POST",
        &format!("/v1/conversations/{conversation}/takeover"),
        jt,
        None,
    )
    .await;
    app.expect(
        StatusCode::OK,
        "POST",
        &format!("/v1/conversations/{conversation}/resolve"),
        jt,
        None,
    )
    .await;
    ask("h3", "alice").await;
    assert_eq!(
        coach_gateway::notify::email::poll_once(&app.state)
            .await
            .unwrap(),
        1
    );
    let got = mails();
    assert_eq!(got.len(), 2);
    assert!(got[1].contains("To: joe@example.com"), "{}", got[1]);

    // Joe snoozes it until Alice writes; her message wakes it and Joe hears of it, once.
    app.expect(
        StatusCode::OK,
        "POST",
        &format!("/v1/conversations/{conversation}/snooze"),
        jt,
        Some(json!({ "minutes": 1440 })),
    )
    .await;
    for key in ["w1", "w2"] {
        app.state
            .stream
            .ingest(
                &scope,
                channel,
                vec![crate::common::text(key, "alice", "I'm back with news")],
            )
            .await
            .unwrap();
    }
    assert_eq!(
        coach_gateway::notify::email::poll_once(&app.state)
            .await
            .unwrap(),
        1
    );
    let got = mails();
    assert_eq!(got.len(), 3);
    assert!(got[2].contains("To: joe@example.com"), "{}", got[2]);
    assert!(got[2].contains("Person alice wrote again"), "{}", got[2]);
    assert!(got[2].contains("I'm back with news"), "{}", got[2]);

    // Ana turns e-mail off: another coachee's handoff mails nobody.
    let off = app
        .expect(
            StatusCode::OK,
            "PUT",
            "/v1/me/notifications",
            t,
            Some(json!({ "email": false })),
        )
        .await;
    assert_eq!(off, json!({ "email": false }));
    let (_, shown) = app.call("GET", "/v1/me/notifications", t, None).await;
    assert_eq!(shown, json!({ "email": false }));
    let (_, joes) = app.call("GET", "/v1/me/notifications", jt, None).await;
    assert_eq!(
        joes,
        json!({ "email": true }),
        "a member's choice is their own"
    );
    app.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        "PUT",
        "/v1/me/notifications",
        t,
        Some(json!({ "email": "no" })),
    )
    .await;
    ask("h4", "bruno").await;
    assert_eq!(
        coach_gateway::notify::email::poll_once(&app.state)
            .await
            .unwrap(),
        1
    );
    assert_eq!(mails().len(), 3, "nobody who wants e-mail: none sent");
}
