//! The widget's pre-chat form (`POST /widget/profile`) and the rating of a resolved
//! conversation (`POST /widget/rating`), on SQLite and PostgreSQL with a real socket: bad form
//! settings are refused; a visitor who has not ticked the consent box gets `consent_required`
//! for a message and a 403 for a file, and nothing is stored, while a visitor signed in by the
//! site skips the form; the form's answers land on the contact (not as consent to proactive
//! messages); resolving sends the rating question once, rating it keeps the conversation
//! resolved, only the visitor's own survey can be rated (not a team reply, not through another
//! tenant's channel, not as a tapped choice), ratings reach the analytics, the export and
//! erasure.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::against_every_backend;
use crate::api_support::*;
use crate::common::Backend;
use crate::widget::{ORIGIN, connect, hello, next, send, serve};
use crate::widget_upload::{PNG, file, upload, widget_answer, with};

against_every_backend!(a_visitor_fills_in_the_form_and_rates_the_resolved_conversation,);

/// A form to `path` (a widget route) with `fields`: the status, the CORS header and the body.
async fn form(
    app: &App,
    path: &str,
    channel: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, Option<String>, Value) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let req = Request::builder()
        .method("POST")
        .uri(format!("{path}?channel={channel}"))
        .header("origin", ORIGIN)
        .header(
            "content-type",
            "application/x-www-form-urlencoded;charset=UTF-8",
        )
        .body(Body::from(body))
        .unwrap();
    widget_answer(app, req).await
}

/// The id of the tenant's conversation whose `field` is `value`.
async fn conversation_where(app: &App, t: &str, field: &str, value: &str) -> String {
    let (_, convs) = app.call("GET", "/v1/conversations", Some(t), None).await;
    convs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c[field] == value)
        .unwrap_or_else(|| panic!("no conversation with {field} {value}: {convs}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn channel(app: &App, t: &str, config: Value) -> (StatusCode, Value) {
    app.call(
        "POST",
        "/v1/channels",
        Some(t),
        Some(json!({ "kind": "web_widget", "name": "Site", "config": config })),
    )
    .await
}

async fn messages(app: &App, t: &str, conversation: &str) -> Vec<Value> {
    let (status, page) = app
        .call(
            "GET",
            &format!("/v1/conversations/{conversation}/messages"),
            Some(t),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

fn surveys(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m["content"]["interactive"]["choices"][0]["id"] == "csat:1")
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_visitor_fills_in_the_form_and_rates_the_resolved_conversation(b: &Backend) {
    let app = app(b);
    let owner = app.register("prechat@example.com").await;
    let t = token(&owner).to_owned();
    let t = t.as_str();

    // Form settings that cannot work are refused, naming the setting; nothing is stored.
    for bad in [
        json!({ "name": "off", "email": "off" }),
        json!({ "consent": "  " }),
        json!({ "message": "x".repeat(301) }),
        json!({ "name": "sometimes" }),
        json!({ "phone": "required" }),
    ] {
        let (status, problem) = channel(&app, t, json!({ "prechat": bad })).await;
        assert_eq!(status, 422, "{bad}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("prechat")
                || problem["detail"].as_str().unwrap().contains("variant")
                || problem["detail"].as_str().unwrap().contains("field"),
            "{problem}"
        );
    }
    let (_, list) = app.call("GET", "/v1/channels", Some(t), None).await;
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");

    let consent = "I agree to the [privacy policy](https://site.example/privacy)";
    let (status, created) = channel(
        &app,
        t,
        json!({ "allowed_origins": [ORIGIN], "csat": true, "identity_secret": "s3cret-site-key",
            "prechat": { "message": "Who are you?", "email": "optional", "consent": consent } }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, public) = app
        .call("GET", &format!("/v1/widget/config/{id}"), None, None)
        .await;
    assert_eq!(public["csat"], true, "{public}");
    assert_eq!(public["prechat"]["name"], "required", "{public}");
    assert_eq!(public["prechat"]["email"], "optional", "{public}");
    assert_eq!(public["prechat"]["consent"], consent, "{public}");

    // A new visitor writes before the form: refused, nothing stored.
    let base = serve(&app).await;
    let mut ws = connect(&base, &id, Some(ORIGIN)).await.unwrap();
    let welcome = hello(&mut ws, json!({})).await;
    let visitor = welcome["visitor_token"].as_str().unwrap().to_owned();
    send(
        &mut ws,
        json!({ "type": "message", "client_id": "m1", "text": "Hello, can you help?" }),
    )
    .await;
    let refused = next(&mut ws).await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "consent_required", "{refused}");
    assert_eq!(refused["client_id"], "m1", "{refused}");
    let (status, _, problem) =
        upload(&app, &id, ORIGIN, &with(&visitor, "f1", file("a.png", PNG))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("consent"),
        "{problem}"
    );
    let (_, convs) = app.call("GET", "/v1/conversations", Some(t), None).await;
    assert_eq!(convs["items"].as_array().unwrap().len(), 0, "{convs}");

    // A visitor the site signs in skips the form.
    let now = chrono::Utc::now().timestamp();
    let sig =
        coach_web_widget::identity::sign_identity("s3cret-site-key", "member-1", now).unwrap();
    let mut signed = connect(&base, &id, Some(ORIGIN)).await.unwrap();
    hello(
        &mut signed,
        json!({ "identity": { "user_id": "member-1", "issued_at": now, "signature": sig } }),
    )
    .await;
    send(
        &mut signed,
        json!({ "type": "message", "client_id": "s1", "text": "Signed in already" }),
    )
    .await;
    let frame = next(&mut signed).await.unwrap();
    assert_eq!(frame["type"], "accepted", "{frame}");
    let (_, convs) = app.call("GET", "/v1/conversations", Some(t), None).await;
    assert_eq!(convs["items"].as_array().unwrap().len(), 1, "{convs}");

    // The form: every refusal readable by the widget, and nothing stored by it.
    let v = visitor.as_str();
    for (fields, status, says) in [
        (
            vec![("token", v), ("name", "Ana")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "consent",
        ),
        (
            vec![("token", v), ("consent", "yes")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "name: required",
        ),
        (
            vec![
                ("token", v),
                ("name", "Ana"),
                ("email", "not-an-address"),
                ("consent", "yes"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
        (
            vec![("token", "v1.forged"), ("name", "Ana"), ("consent", "yes")],
            StatusCode::UNAUTHORIZED,
            "token",
        ),
        (
            vec![("token", v), ("name", "Ana"), ("age", "40")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "age",
        ),
    ] {
        let (got, cors, problem) = form(&app, "/widget/profile", &id, &fields).await;
        assert_eq!(got, status, "{fields:?}: {problem}");
        assert_eq!(cors.as_deref(), Some("*"), "{fields:?}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{fields:?}: {problem}"
        );
    }
    let (_, contacts) = app.call("GET", "/v1/contacts", Some(t), None).await;
    assert_eq!(
        contacts["items"].as_array().unwrap().len(),
        1,
        "only the signed-in one: {contacts}"
    );

    let (status, _, saved) = form(
        &app,
        "/widget/profile",
        &id,
        &[
            ("token", v),
            ("name", " Ana Ruiz "),
            ("email", "ana@example.com"),
            ("consent", "yes"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let (_, contacts) = app.call("GET", "/v1/contacts", Some(t), None).await;
    let contact = contacts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["display_name"] == "Ana Ruiz")
        .unwrap_or_else(|| panic!("no Ana Ruiz: {contacts}"))
        .clone();
    assert_eq!(contact["attributes"]["email"], "ana@example.com");
    assert_eq!(contact["attributes"]["chat_consent_text"], consent);
    assert!(
        contact["attributes"]["chat_consent_at"].is_string(),
        "{contact}"
    );
    // The chat's terms are no consent to proactive messages (programs need that one).
    assert!(contact["consent_at"].is_null(), "{contact}");
    let contact_id = contact["id"].as_str().unwrap().to_owned();

    // Now the message goes, on the same contact.
    send(
        &mut ws,
        json!({ "type": "message", "client_id": "m1", "text": "Hello, can you help?" }),
    )
    .await;
    let mut accepted = false;
    while let Some(frame) = next(&mut ws).await {
        if frame["type"] == "accepted" {
            accepted = true;
            break;
        }
        assert_ne!(frame["type"], "error", "{frame}");
    }
    assert!(accepted);
    let conv = conversation_where(&app, t, "contact_id", &contact_id).await;
    // A team reply (no rating question).
    let reply = app
        .expect(
            StatusCode::CREATED,
            "POST",
            &format!("/v1/conversations/{conv}/messages"),
            Some(t),
            Some(json!({ "text": "We are on it" })),
        )
        .await;
    let reply = reply["id"].as_str().unwrap().to_owned();

    // Resolving asks for a rating, once: resolving again (after a reopen) while it is
    // unanswered adds none.
    let resolve = format!("/v1/conversations/{conv}/resolve");
    let reopen = format!("/v1/conversations/{conv}/reopen");
    app.expect(StatusCode::OK, "POST", &resolve, Some(t), None)
        .await;
    let asked = surveys(&messages(&app, t, &conv).await);
    assert_eq!(asked.len(), 1);
    let survey = asked[0].clone();
    app.expect(StatusCode::OK, "POST", &reopen, Some(t), None)
        .await;
    app.expect(StatusCode::OK, "POST", &resolve, Some(t), None)
        .await;
    assert_eq!(surveys(&messages(&app, t, &conv).await), asked);
    // The widget gets it as a message with the five choices.
    let mut seen = None;
    while let Some(frame) = next(&mut ws).await {
        if frame["type"] == "event" && frame["message"]["id"] == survey.as_str() {
            seen = Some(frame);
            break;
        }
    }
    let seen = seen.expect("the survey reaches the widget");
    assert_eq!(
        seen["message"]["choices"].as_array().unwrap().len(),
        5,
        "{seen}"
    );
    assert!(seen["message"].get("rating").is_none(), "{seen}");

    // Only a survey sent to this visitor can be rated, 1 to 5.
    let other = coach_web_widget::identity::visitor_token(
        app.state.secrets.signing_key(),
        &id,
        "anon-someone-else",
    )
    .unwrap();
    let question = messages(&app, t, &conv).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The same visitor id through another tenant's widget.
    let stranger = app.register("stranger-prechat@example.com").await;
    let st = token(&stranger).to_owned();
    let (_, theirs) = channel(&app, &st, json!({ "allowed_origins": [ORIGIN] })).await;
    let theirs = theirs["id"].as_str().unwrap().to_owned();
    let key = app.state.secrets.signing_key().to_vec();
    let who = coach_web_widget::identity::verify_visitor_token(&key, &id, &visitor).unwrap();
    let elsewhere = coach_web_widget::identity::visitor_token(&key, &theirs, &who).unwrap();
    let (status, _, _) = form(
        &app,
        "/widget/rating",
        &theirs,
        &[("token", &elsewhere), ("survey", &survey), ("rating", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let random = uuid::Uuid::new_v4().to_string();
    for (fields, status) in [
        (
            vec![("token", v), ("survey", survey.as_str()), ("rating", "6")],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            vec![("token", v), ("survey", survey.as_str()), ("rating", "")],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            vec![
                ("token", other.as_str()),
                ("survey", survey.as_str()),
                ("rating", "5"),
            ],
            StatusCode::NOT_FOUND,
        ),
        (
            vec![("token", v), ("survey", question.as_str()), ("rating", "5")],
            StatusCode::NOT_FOUND,
        ),
        (
            vec![("token", v), ("survey", random.as_str()), ("rating", "5")],
            StatusCode::NOT_FOUND,
        ),
        (
            vec![("token", v), ("survey", reply.as_str()), ("rating", "5")],
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (got, cors, problem) = form(&app, "/widget/rating", &id, &fields).await;
        assert_eq!(got, status, "{fields:?}: {problem}");
        assert_eq!(cors.as_deref(), Some("*"));
    }
    let (_, analytics) = app.call("GET", "/v1/analytics", Some(t), None).await;
    assert_eq!(analytics["ratings"]["responses"], 0, "{analytics}");
    // A tapped rating sent as a message is refused: it would reopen the conversation.
    send(
        &mut ws,
        json!({ "type": "message", "client_id": "m2", "text": "5", "choice": "csat:5" }),
    )
    .await;
    let refused = next(&mut ws).await.unwrap();
    assert_eq!(refused["code"], "invalid_message", "{refused}");

    // A rating, then a change of mind with a comment: one rating, the conversation stays
    // resolved and nobody answers.
    let (status, _, rated) = form(
        &app,
        "/widget/rating",
        &id,
        &[("token", v), ("survey", &survey), ("rating", "2")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rated}");
    let (status, _, rated) = form(
        &app,
        "/widget/rating",
        &id,
        &[
            ("token", v),
            ("survey", &survey),
            ("rating", "5"),
            ("comment", "Clear and kind, thank you"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rated}");
    assert_eq!(rated["rating"], 5);
    let (_, now) = app
        .call("GET", &format!("/v1/conversations/{conv}"), Some(t), None)
        .await;
    assert_eq!(now["status"], "resolved", "{now}");
    let (_, analytics) = app.call("GET", "/v1/analytics", Some(t), None).await;
    let ratings = &analytics["ratings"];
    assert_eq!(ratings["responses"], 1, "{ratings}");
    assert_eq!(ratings["scores"], json!([0, 0, 0, 0, 1]), "{ratings}");
    assert_eq!(ratings["average"], 5.0, "{ratings}");
    assert_eq!(ratings["satisfied_pct"], 100.0, "{ratings}");
    assert_eq!(ratings["recent"][0]["comment"], "Clear and kind, thank you");
    assert_eq!(ratings["recent"][0]["conversation_id"], conv.as_str());

    // A reconnecting widget sees the question answered.
    let mut again = connect(&base, &id, Some(ORIGIN)).await.unwrap();
    hello(&mut again, json!({ "token": v })).await;
    let mut replayed = None;
    while let Some(frame) = next(&mut again).await {
        if frame["type"] == "event" && frame["message"]["id"] == survey.as_str() {
            replayed = Some(frame);
            break;
        }
    }
    assert_eq!(replayed.unwrap()["message"]["rating"], 5);

    // Answered, a later resolve asks again: once, even when two members resolve at once.
    for round in 0..3 {
        app.expect(StatusCode::OK, "POST", &reopen, Some(t), None)
            .await;
        let (one, two) = tokio::join!(
            app.call("POST", &resolve, Some(t), None),
            app.call("POST", &resolve, Some(t), None),
        );
        assert_eq!((one.0, two.0), (StatusCode::OK, StatusCode::OK));
        let asked = surveys(&messages(&app, t, &conv).await);
        assert_eq!(asked.len(), 2 + round, "round {round}");
        // Answered, so the next round asks again.
        let last = asked.last().unwrap().clone();
        let (status, _, _) = form(
            &app,
            "/widget/rating",
            &id,
            &[("token", v), ("survey", &last), ("rating", "5")],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }

    // Another tenant sees no rating.
    let (_, theirs) = app.call("GET", "/v1/analytics", Some(&st), None).await;
    assert_eq!(theirs["ratings"]["responses"], 0, "{theirs}");

    // The export holds the rating; erasure takes it.
    let (status, export) = app
        .call(
            "GET",
            &format!("/v1/contacts/{contact_id}/export"),
            Some(t),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(export["ratings"][0]["rating"], 5, "{export}");
    assert_eq!(export["ratings"][0]["comment"], "Clear and kind, thank you");
    let (status, _) = app
        .call(
            "DELETE",
            &format!("/v1/contacts/{contact_id}"),
            Some(t),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}");
    let (_, analytics) = app.call("GET", "/v1/analytics", Some(t), None).await;
    assert_eq!(analytics["ratings"]["responses"], 0, "{analytics}");

    // Retention keeps a rating within the period and prunes it after: the signed-in visitor's
    // conversation, resolved and rated.
    let signed_conv = conversation_where(&app, t, "external_id", "user-member-1").await;
    app.expect(
        StatusCode::OK,
        "POST",
        &format!("/v1/conversations/{signed_conv}/resolve"),
        Some(t),
        None,
    )
    .await;
    let asked = surveys(&messages(&app, t, &signed_conv).await);
    let member = coach_web_widget::identity::visitor_token(&key, &id, "user-member-1").unwrap();
    let (status, _, _) = form(
        &app,
        "/widget/rating",
        &id,
        &[("token", &member), ("survey", &asked[0]), ("rating", "3")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    app.expect(
        StatusCode::OK,
        "PATCH",
        "/v1/tenant",
        Some(t),
        Some(json!({ "retention_days": 1 })),
    )
    .await;
    let sys = coach_gateway::tenancy::SystemScope::new("test");
    let now = chrono::Utc::now();
    app.state.store.apply_retention(&sys, now).await.unwrap();
    let (_, analytics) = app.call("GET", "/v1/analytics", Some(t), None).await;
    assert_eq!(analytics["ratings"]["responses"], 1, "{analytics}");
    app.state
        .store
        .apply_retention(&sys, now + chrono::Duration::days(10))
        .await
        .unwrap();
    let (_, analytics) = app.call("GET", "/v1/analytics", Some(t), None).await;
    assert_eq!(analytics["ratings"]["responses"], 0, "{analytics}");

    // A widget that does not ask for ratings sends no question when resolved.
    let (_, quiet) = channel(&app, t, json!({ "allowed_origins": [ORIGIN] })).await;
    let quiet = quiet["id"].as_str().unwrap().to_owned();
    let mut ws = connect(&base, &quiet, Some(ORIGIN)).await.unwrap();
    hello(&mut ws, json!({})).await;
    send(
        &mut ws,
        json!({ "type": "message", "client_id": "q1", "text": "Hi there" }),
    )
    .await;
    while let Some(frame) = next(&mut ws).await {
        if frame["type"] == "accepted" {
            break;
        }
    }
    let conv = conversation_where(&app, t, "channel_id", &quiet).await;
    app.expect(
        StatusCode::OK,
        "POST",
        &format!("/v1/conversations/{conv}/resolve"),
        Some(t),
        None,
    )
    .await;
    assert!(surveys(&messages(&app, t, &conv).await).is_empty());
}
