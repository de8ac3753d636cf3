#![allow(clippy::unwrap_used, missing_docs)]
//! The web widget's WebSocket on a real socket, on SQLite and PostgreSQL: origin allow-list,
//! visitor tokens, idempotent resends, replay after reconnect, streamed answers, signed
//! identities, and visitors who never see each other's messages.

use std::time::Duration;

use crate::api_support::*;
use crate::common::Backend;
use coach_connector_api::{ConversationId, MessageId, OutboundBody};
use coach_gateway::bus::AnswerPhase;
use coach_gateway::tenancy::SystemScope;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub(crate) const ORIGIN: &str = "https://site.example";

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn serve(app: &App) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("ws://{addr}")
}

pub(crate) async fn connect(
    base: &str,
    channel: &str,
    origin: Option<&str>,
) -> Result<Socket, u16> {
    let mut req = format!("{base}/widget/ws?channel={channel}")
        .into_client_request()
        .unwrap();
    if let Some(origin) = origin {
        req.headers_mut().insert("origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

pub(crate) async fn send(ws: &mut Socket, frame: Value) {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// The next protocol frame (heartbeats skipped); `None` when the server closed.
pub(crate) async fn next(ws: &mut Socket) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no frame within 10 s");
        match msg {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["type"] != "ping" {
                    return Some(frame);
                }
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// No frame arrives for a short while.
pub(crate) async fn quiet(ws: &mut Socket) {
    if let Ok(Some(Ok(Message::Text(text)))) =
        tokio::time::timeout(Duration::from_millis(300), ws.next()).await
    {
        panic!("unexpected frame {text}");
    }
}

pub(crate) async fn hello(ws: &mut Socket, extra: Value) -> Value {
    let mut frame = json!({ "type": "hello", "v": 1 });
    frame
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    send(ws, frame).await;
    next(ws).await.unwrap()
}

async fn widget_conversation(b: &Backend) {
    let app = app(b);
    let owner = app.register("widget@example.com").await;
    let t = token(&owner);
    // Starter questions: up to 4, each 1 to 80 characters.
    for bad in [
        json!(["a", "b", "c", "d", "e"]),
        json!(["x".repeat(81)]),
        json!(["  "]),
        json!([7]),
        json!("How do I sleep?"),
        json!(null),
        json!([format!("{}a", " ".repeat(100))]),
    ] {
        let (status, problem) = app
            .call(
                "POST",
                "/v1/channels",
                Some(t),
                Some(json!({ "kind": "web_widget", "name": "Bad", "config": { "starters": bad } })),
            )
            .await;
        assert_eq!(status, 422, "{bad}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("config.starters"),
            "{problem}"
        );
    }
    let (status, channel) = app
        .call(
            "POST",
            "/v1/channels",
            Some(t),
            Some(json!({ "kind": "web_widget", "name": "Site", "config": {
                "allowed_origins": [ORIGIN], "identity_secret": "s3cret-site-key",
                "title": "Sleep coach", "greeting": "Hello!",
                "starters": ["How do I sleep better?", "What about naps?"] } })),
        )
        .await;
    assert_eq!(status, 201, "{channel}");
    let id = channel["id"].as_str().unwrap().to_string();

    // The public configuration shows the theme, never the secret.
    let (status, config) = app
        .call("GET", &format!("/v1/widget/config/{id}"), None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(config["title"], "Sleep coach");
    assert_eq!(
        config["starters"],
        json!(["How do I sleep better?", "What about naps?"])
    );
    assert!(!config.to_string().contains("s3cret"), "{config}");
    let (status, _) = app
        .call(
            "GET",
            &format!("/v1/widget/config/{}", uuid::Uuid::new_v4()),
            None,
            None,
        )
        .await;
    assert_eq!(status, 404);

    let base = serve(&app).await;
    // Pages not on the allow-list cannot open the widget.
    assert_eq!(
        connect(&base, &id, Some("https://evil.example"))
            .await
            .err(),
        Some(403)
    );
    assert_eq!(connect(&base, &id, None).await.err(), Some(403));

    // Visitor A: a new token, a message stored once however often it is sent.
    let mut a = connect(&base, &id, Some(ORIGIN)).await.unwrap();
    let welcome = hello(&mut a, json!({})).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["last_seq"], 0);
    let token_a = welcome["visitor_token"].as_str().unwrap().to_string();
    send(
        &mut a,
        json!({ "type": "message", "client_id": "c1", "text": "I sleep badly" }),
    )
    .await;
    assert_eq!(
        next(&mut a).await.unwrap(),
        json!({ "type": "accepted", "client_id": "c1" })
    );
    let event = next(&mut a).await.unwrap();
    assert_eq!(event["seq"], 1, "{event}");
    assert_eq!(event["message"]["text"], "I sleep badly");
    assert_eq!(event["message"]["client_id"], "c1");
    send(
        &mut a,
        json!({ "type": "message", "client_id": "c1", "text": "I sleep badly" }),
    )
    .await;
    assert_eq!(next(&mut a).await.unwrap()["type"], "accepted");
    quiet(&mut a).await;

    // Bad frames get error frames, not a dropped connection.
    send(
        &mut a,
        json!({ "type": "message", "client_id": "c2", "text": "" }),
    )
    .await;
    let error = next(&mut a).await.unwrap();
    assert_eq!(
        (error["code"].as_str(), error["client_id"].as_str()),
        (Some("invalid_message"), Some("c2"))
    );
    a.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(next(&mut a).await.unwrap()["code"], "bad_frame");

    // The coach streams an answer, then stores it.
    let (_, list) = app
        .call(
            "GET",
            &format!("/v1/conversations?channel_id={id}"),
            Some(t),
            None,
        )
        .await;
    let item = if list["items"].is_array() {
        &list["items"][0]
    } else {
        &list[0]
    };
    let uuid_of = |v: &Value| uuid::Uuid::parse_str(v.as_str().unwrap()).unwrap();
    let conversation = ConversationId(uuid_of(&item["id"]));
    let scope = SystemScope::new("test")
        .for_tenant(coach_connector_api::TenantId(uuid_of(&item["tenant_id"])));
    let question =
        MessageId(uuid::Uuid::parse_str(event["message"]["id"].as_str().unwrap()).unwrap());
    for phase in [
        AnswerPhase::Start,
        AnswerPhase::Delta {
            text: "Dim the ".into(),
        },
    ] {
        app.state
            .stream
            .answer(&scope, conversation, question, phase)
            .await;
    }
    assert_eq!(next(&mut a).await.unwrap()["type"], "stream_start");
    let delta = next(&mut a).await.unwrap();
    assert_eq!(
        (delta["type"].as_str(), delta["text"].as_str()),
        (Some("stream_delta"), Some("Dim the "))
    );
    let reply = app
        .state
        .stream
        .send(
            &scope,
            conversation,
            OutboundBody::Text {
                text: "Dim the lights.".into(),
            },
            Some(question),
        )
        .await
        .unwrap();
    let event = next(&mut a).await.unwrap();
    assert_eq!(
        (
            event["seq"].as_i64(),
            event["message"]["direction"].as_str()
        ),
        (Some(2), Some("out"))
    );
    assert_eq!(event["message"]["id"], reply.id.0.to_string());

    // The widget needs no provider send: the outbox marks its rows sent at once.
    let sent = coach_gateway::outbox::poll_once(
        app.state.store.as_ref(),
        app.state.sender.as_ref(),
        &Default::default(),
        &SystemScope::new("test"),
    )
    .await
    .unwrap();
    assert_eq!(sent, 1);
    let (_, messages) = app
        .call(
            "GET",
            &format!("/v1/conversations/{}/messages", conversation.0),
            Some(t),
            None,
        )
        .await;
    let statuses: Vec<&str> = messages["items"]
        .as_array()
        .or(messages.as_array())
        .unwrap()
        .iter()
        .filter_map(|m| m["status"].as_str())
        .collect();
    assert_eq!(statuses, vec!["sent"], "{messages}");

    // Replies stored while the visitor is away arrive once they come back, and only those.
    drop(a);
    app.state
        .stream
        .send(
            &scope,
            conversation,
            OutboundBody::Text {
                text: "Also: no coffee after 2 pm.".into(),
            },
            None,
        )
        .await
        .unwrap();
    let mut a = connect(&base, &id, Some(ORIGIN)).await.unwrap();
    let welcome = hello(&mut a, json!({ "token": token_a, "resume_after": 2 })).await;
    assert_eq!(welcome["last_seq"], 3, "{welcome}");
    let event = next(&mut a).await.unwrap();
    assert_eq!(
        (event["seq"].as_i64(), event["message"]["text"].as_str()),
        (Some(3), Some("Also: no coffee after 2 pm."))
    );
    quiet(&mut a).await;
    // A refresh (resume from 0) shows the whole history again.
    let mut again = connect(&base, &id, Some(ORIGIN)).await.unwrap();
    hello(&mut again, json!({ "token": token_a })).await;
    let seqs: Vec<i64> = [
        next(&mut again).await,
        next(&mut again).await,
        next(&mut again).await,
    ]
    .iter()
    .map(|f| f.as_ref().unwrap()["seq"].as_i64().unwrap())
    .collect();
    assert_eq!(seqs, vec![1, 2, 3]);

    // Visitor B sees only their own conversation; A's token cannot be bent to another visitor.
    let mut b_ws = connect(&base, &id, Some(ORIGIN)).await.unwrap();
    let welcome_b = hello(&mut b_ws, json!({})).await;
    assert_eq!(welcome_b["last_seq"], 0);
    assert_ne!(welcome_b["visitor_token"], token_a.as_str());
    send(
        &mut b_ws,
        json!({ "type": "message", "client_id": "c1", "text": "Hi from B" }),
    )
    .await;
    assert_eq!(next(&mut b_ws).await.unwrap()["type"], "accepted");
    let event = next(&mut b_ws).await.unwrap();
    assert_eq!(
        (event["seq"].as_i64(), event["message"]["text"].as_str()),
        (Some(1), Some("Hi from B"))
    );
    quiet(&mut b_ws).await;
    quiet(&mut a).await;
    let (visitor, _) = token_a.trim_start_matches("v1.").split_once('.').unwrap();
    let forged = format!("v1.{visitor}x.{}", "0".repeat(64));
    let mut f = connect(&base, &id, Some(ORIGIN)).await.unwrap();
    let refused = hello(&mut f, json!({ "token": forged })).await;
    assert_eq!(refused["code"], "unauthorized", "{refused}");
    assert!(next(&mut f).await.is_none());

    // A signed identity from the creator's site: valid, or refused when forged or expired.
    let now = chrono::Utc::now().timestamp();
    let sig = coach_web_widget::identity::sign_identity("s3cret-site-key", "user-7", now).unwrap();
    let mut u = connect(&base, &id, Some(ORIGIN)).await.unwrap();
    let welcome = hello(
        &mut u,
        json!({ "identity": { "user_id": "user-7", "issued_at": now, "signature": sig } }),
    )
    .await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let stale =
        coach_web_widget::identity::sign_identity("s3cret-site-key", "user-7", now - 90_000)
            .unwrap();
    let mut u = connect(&base, &id, Some(ORIGIN)).await.unwrap();
    let refused = hello(&mut u, json!({ "identity": { "user_id": "user-7", "issued_at": now - 90_000, "signature": stale } })).await;
    assert_eq!(refused["code"], "unauthorized");
    let mut u = connect(&base, &id, Some(ORIGIN)).await.unwrap();
    let refused = hello(
        &mut u,
        json!({ "identity": { "user_id": "user-8", "issued_at": now, "signature": sig } }),
    )
    .await;
    assert_eq!(refused["code"], "unauthorized");

    // Another tenant's widget channel id is not a door into this one.
    let other = app.register("other-widget@example.com").await;
    let (_, other_channel) = app
        .call(
            "POST",
            "/v1/channels",
            Some(token(&other)),
            Some(json!({ "kind": "web_widget", "name": "Other", "config": {} })),
        )
        .await;
    let other_id = other_channel["id"].as_str().unwrap();
    let mut o = connect(&base, other_id, None).await.unwrap();
    let welcome = hello(&mut o, json!({ "token": token_a })).await;
    assert_eq!(
        welcome["code"], "unauthorized",
        "a token is bound to its channel: {welcome}"
    );
}

#[tokio::test]
async fn widget_conversation_on_sqlite() {
    widget_conversation(&crate::common::sqlite().await).await;
}

#[tokio::test]
async fn widget_conversation_on_postgres() {
    widget_conversation(&crate::common::postgres().await).await;
}

/// One address opening connections beyond `widget.sockets_per_address` gets each closed at
/// once with code 1013 and a reason naming the setting; a closed connection frees its place.
#[tokio::test]
async fn sockets_beyond_the_per_address_cap_are_refused_with_a_reason() {
    let b = crate::common::sqlite().await;
    let mut config = coach_gateway::config::Config {
        public_url: "https://coach.example".into(),
        ..Default::default()
    };
    config.widget.sockets_per_address = 20;
    let app = app_with(&b, config);
    let owner = app.register("crowd@example.com").await;
    let (status, channel) = app
        .call(
            "POST",
            "/v1/channels",
            Some(token(&owner)),
            Some(json!({ "kind": "web_widget", "name": "Site", "config": {} })),
        )
        .await;
    assert_eq!(status, 201, "{channel}");
    let id = channel["id"].as_str().unwrap().to_string();
    let base = serve(&app).await;

    let mut admitted = Vec::new();
    for _ in 0..20 {
        let mut ws = connect(&base, &id, None).await.unwrap();
        assert_eq!(hello(&mut ws, json!({})).await["type"], "welcome");
        admitted.push(ws);
    }
    for _ in 0..100 {
        let mut ws = connect(&base, &id, None).await.unwrap();
        let close = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("closed at once");
        let Some(Ok(Message::Close(Some(frame)))) = close else {
            panic!("expected a close frame, got {close:?}");
        };
        assert_eq!(u16::from(frame.code), 1013);
        assert!(
            frame.reason.contains("widget.sockets_per_address"),
            "{}",
            frame.reason
        );
    }
    // One closing makes room for another.
    let mut last = admitted.pop().unwrap();
    last.close(None).await.unwrap();
    while last.next().await.is_some() {}
    let mut welcomed = false;
    for _ in 0..50 {
        let mut ws = connect(&base, &id, None).await.unwrap();
        send(&mut ws, json!({ "type": "hello", "v": 1 })).await;
        if let Some(frame) = next(&mut ws).await {
            assert_eq!(frame["type"], "welcome", "{frame}");
            welcomed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(welcomed, "the freed place was never given back");

    // An operator suspends the tenant: its open chats close with a reason, new ones are refused.
    let op = app.register("op@example.com").await;
    let op_id = coach_gateway::store::UserId(op["user_id"].as_str().unwrap().parse().unwrap());
    b.store
        .set_platform_admin(&SystemScope::new("test"), op_id, true)
        .await
        .unwrap();
    // A new login carries the operator flag.
    let (_, op) = app
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({ "email": "op@example.com", "password": "violet-quarry-Tundra-88" })),
        )
        .await;
    // A visitor chatting through a second gateway process (same database and bus).
    let two = second_process(&app);
    let base_two = serve(&two).await;
    let mut elsewhere = connect(&base_two, &id, None).await.unwrap();
    send(&mut elsewhere, json!({ "type": "hello", "v": 1 })).await;
    assert_eq!(next(&mut elsewhere).await.unwrap()["type"], "welcome");
    let tid = owner["tenant_id"].as_str().unwrap();
    app.expect(
        axum::http::StatusCode::NO_CONTENT,
        "POST",
        &format!("/v1/platform/tenants/{tid}/suspend"),
        Some(token(&op)),
        None,
    )
    .await;
    let mut open = admitted.pop().unwrap();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), open.next())
            .await
            .expect("closed at once")
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let frame = close.expect("a close frame with a reason");
    assert_eq!(u16::from(frame.code), 1013);
    assert!(frame.reason.contains("paused"), "{}", frame.reason);
    // The other process closes its chat too: the suspension reached it on the bus.
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), elsewhere.next())
            .await
            .expect("closed in the other process too")
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(close.expect("a reason").code), 1013);
    assert_eq!(
        connect(&base, &id, None).await.err(),
        Some(503),
        "a suspended tenant's widget does not connect"
    );
}
