//! Updates written in the Bot API's documented format (one of every kind this connector maps),
//! the secret-token check, polling answers, and rendering.
#![allow(clippy::unwrap_used)]

use coach_connector_api::{
    Choice, Connector, ConnectorError, Content, HttpCall, HttpMethod, HttpRequest, HttpResponse,
    InboundEvent, Interactive, MediaKind, OutboundBody, SendOutcome,
};
use coach_telegram::{Telegram, get_updates_call, parse_updates};
use serde_json::{Value, json};
use support::{TOKEN, channel, out};

mod support;

fn post(update: &Value, secret: Option<&str>) -> HttpRequest {
    HttpRequest {
        method: Some(HttpMethod::Post),
        query: String::new(),
        headers: secret
            .map(|s| vec![("x-telegram-bot-api-secret-token".to_owned(), s.to_owned())])
            .unwrap_or_default(),
        body: serde_json::to_vec(update).unwrap(),
    }
}

fn private(update_id: i64, message_id: i64, extra: Value) -> Value {
    let mut message = json!({
        "message_id": message_id, "date": 1_700_000_000,
        "from": { "id": 42, "is_bot": false, "first_name": "Ana", "last_name": "Lima", "username": "ana" },
        "chat": { "id": 42, "type": "private", "first_name": "Ana" },
    });
    if let (Value::Object(m), Value::Object(e)) = (&mut message, extra) {
        m.extend(e);
    }
    json!({ "update_id": update_id, "message": message })
}

fn one(update: Value) -> InboundEvent {
    let mut events = Telegram
        .inbound(&channel("webhook"), &post(&update, Some("s3cret_-x")))
        .unwrap()
        .events;
    assert_eq!(events.len(), 1, "{update}");
    events.remove(0)
}

fn content(update: Value) -> Content {
    match one(update) {
        InboundEvent::Message(m) => m.content,
        other => panic!("{other:?}"),
    }
}

#[test]
fn only_the_exact_secret_token_is_accepted() {
    let update = private(1, 1, json!({ "text": "hi" }));
    let ch = channel("webhook");
    assert!(
        Telegram
            .inbound(&ch, &post(&update, Some("s3cret_-x")))
            .is_ok()
    );
    for bad in [None, Some(""), Some("s3cret_-X"), Some("s3cret_-x ")] {
        assert!(
            matches!(
                Telegram.inbound(&ch, &post(&update, bad)),
                Err(ConnectorError::Unauthorized(_))
            ),
            "{bad:?}"
        );
    }
    let not_update = post(&json!({ "message": {} }), Some("s3cret_-x"));
    assert!(matches!(
        Telegram.inbound(&ch, &not_update),
        Err(ConnectorError::BadRequest(_))
    ));
}

#[test]
fn messages_of_every_kind_are_mapped() {
    match one(private(
        10,
        7,
        json!({ "text": "/start promo-2026", "entities": [{ "type": "bot_command", "offset": 0, "length": 6 }] }),
    )) {
        InboundEvent::Message(m) => {
            assert_eq!(m.dedup_key.0, "42:7");
            assert_eq!(m.from.id, "42");
            assert_eq!(m.from.display_name.as_deref(), Some("Ana Lima"));
            assert_eq!(m.from.username.as_deref(), Some("ana"));
            assert_eq!(
                m.content,
                Content::Text {
                    body: "/start promo-2026".into()
                }
            );
        }
        other => panic!("{other:?}"),
    }
    let photo = content(private(
        11,
        8,
        json!({ "photo": [{ "file_id": "small", "file_size": 10, "width": 90, "height": 90 }, { "file_id": "big", "file_size": 900, "width": 800, "height": 800 }], "caption": "my meal" }),
    ));
    assert_eq!(
        photo,
        Content::Media {
            media: MediaKind::Image,
            media_ref: "big".into(),
            mime: Some("image/jpeg".into()),
            size: Some(900),
            caption: Some("my meal".into()),
            filename: None
        }
    );
    let doc = content(private(
        12,
        9,
        json!({ "document": { "file_id": "D", "file_name": "plan.pdf", "mime_type": "application/pdf", "file_size": 5 } }),
    ));
    assert!(
        matches!(doc, Content::Media { media: MediaKind::Document, ref filename, .. } if filename.as_deref() == Some("plan.pdf"))
    );
    let voice = content(private(
        13,
        10,
        json!({ "voice": { "file_id": "V", "duration": 3, "mime_type": "audio/ogg" } }),
    ));
    assert!(matches!(
        voice,
        Content::Media {
            media: MediaKind::Voice,
            ..
        }
    ));
    let location = content(private(
        14,
        11,
        json!({ "location": { "latitude": 1.5, "longitude": -2.25 } }),
    ));
    assert_eq!(
        location,
        Content::Location {
            latitude: 1.5,
            longitude: -2.25,
            name: None,
            address: None
        }
    );
    let contact = content(private(
        15,
        12,
        json!({ "contact": { "phone_number": "+4915100", "first_name": "Bo", "last_name": "Li" } }),
    ));
    assert_eq!(
        contact,
        Content::Contacts {
            cards: vec![coach_connector_api::ContactCard {
                name: "Bo Li".into(),
                phones: vec!["+4915100".into()],
                emails: vec![]
            }]
        }
    );
    match one(private(
        16,
        13,
        json!({ "text": "yes", "reply_to_message": { "message_id": 5, "date": 1, "chat": { "id": 42, "type": "private" } } }),
    )) {
        InboundEvent::Message(m) => assert_eq!(m.reply_to.as_deref(), Some("5")),
        other => panic!("{other:?}"),
    }
    // A message kind without a mapping (a dice roll) is kept whole.
    match one(private(
        17,
        14,
        json!({ "dice": { "emoji": "🎲", "value": 4 } }),
    )) {
        InboundEvent::Unknown(u) => {
            assert_eq!(
                (u.kind.as_str(), u.dedup_key.0.as_str()),
                ("message", "update:17")
            );
            assert_eq!(u.raw["message"]["dice"]["value"], 4);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn edits_callbacks_blocks_and_unknown_updates() {
    let mut edited = private(
        20,
        7,
        json!({ "text": "fixed typo", "edit_date": 1_700_000_100 }),
    );
    edited["edited_message"] = edited["message"].take();
    edited.as_object_mut().unwrap().remove("message");
    match one(edited) {
        InboundEvent::Message(m) => assert_eq!(m.dedup_key.0, "42:7:edit:1700000100"),
        other => panic!("{other:?}"),
    }
    let tap = json!({ "update_id": 21, "callback_query": {
        "id": "4382bfdwdsb323b2d9", "from": { "id": 42, "first_name": "Ana" }, "data": "plan_b",
        "message": { "message_id": 30, "date": 1_700_000_000, "chat": { "id": 42, "type": "private" },
                     "reply_markup": { "inline_keyboard": [[{ "text": "Plan A", "callback_data": "plan_a" }], [{ "text": "Plan B", "callback_data": "plan_b" }]] } } } });
    let inbound = Telegram
        .inbound(&channel("webhook"), &post(&tap, Some("s3cret_-x")))
        .unwrap();
    match &inbound.events[0] {
        InboundEvent::Message(m) => {
            assert_eq!(
                m.content,
                Content::InteractiveReply {
                    id: "plan_b".into(),
                    title: "Plan B".into()
                }
            );
            assert_eq!(m.from.id, "42");
        }
        other => panic!("{other:?}"),
    }
    let answer: Value = serde_json::from_slice(&inbound.response.unwrap().body).unwrap();
    assert_eq!(
        answer,
        json!({ "method": "answerCallbackQuery", "callback_query_id": "4382bfdwdsb323b2d9" })
    );

    let member = |status: &str| {
        json!({ "update_id": 22, "my_chat_member": {
        "chat": { "id": 42, "type": "private" }, "from": { "id": 42, "first_name": "Ana" }, "date": 1,
        "old_chat_member": { "status": "member", "user": { "id": 1, "is_bot": true, "first_name": "bot" } },
        "new_chat_member": { "status": status, "user": { "id": 1, "is_bot": true, "first_name": "bot" } } } })
    };
    assert!(
        matches!(one(member("kicked")), InboundEvent::Unknown(u) if u.kind == "blocked" && u.from.as_ref().unwrap().id == "42")
    );
    assert!(matches!(one(member("member")), InboundEvent::Unknown(u) if u.kind == "unblocked"));
    assert!(
        matches!(one(json!({ "update_id": 23, "poll_answer": { "poll_id": "p" } })), InboundEvent::Unknown(u) if u.kind == "poll_answer")
    );
    // A reaction to the bot's message 31 (the Bot API's `message_reaction`), then its removal.
    let reaction = |update_id: i64, new: Value| {
        json!({ "update_id": update_id, "message_reaction": {
        "chat": { "id": 42, "type": "private", "first_name": "Ana" }, "message_id": 31,
        "user": { "id": 42, "is_bot": false, "first_name": "Ana" }, "date": 1_700_000_200,
        "old_reaction": [], "new_reaction": new } })
    };
    match one(reaction(24, json!([{ "type": "emoji", "emoji": "👎" }]))) {
        InboundEvent::Message(m) => {
            assert_eq!(
                m.content,
                Content::Reaction {
                    to_message: "31".into(),
                    emoji: Some("👎".into())
                }
            );
            assert_eq!(
                (m.from.id.as_str(), m.dedup_key.0.as_str()),
                ("42", "update:24")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        content(reaction(25, json!([]))),
        Content::Reaction {
            to_message: "31".into(),
            emoji: None
        }
    );
}

#[test]
fn group_messages_count_only_when_addressed_to_the_bot() {
    let group = |extra: Value| {
        let mut u = private(30, 1, extra);
        u["message"]["chat"] = json!({ "id": -100123, "type": "supergroup", "title": "Club" });
        u
    };
    let ch = channel("webhook");
    let events = |u: Value| {
        Telegram
            .inbound(&ch, &post(&u, Some("s3cret_-x")))
            .unwrap()
            .events
    };
    assert!(events(group(json!({ "text": "chatting among ourselves" }))).is_empty());
    assert_eq!(events(group(json!({ "text": "@coach_bot help", "entities": [{ "type": "mention", "offset": 0, "length": 10 }] }))).len(), 1);
    let reply = group(
        json!({ "text": "thanks", "reply_to_message": { "message_id": 3, "date": 1, "chat": { "id": -100123, "type": "supergroup" }, "from": { "id": 1, "is_bot": true, "first_name": "bot" } } }),
    );
    match &events(reply)[0] {
        InboundEvent::Message(m) => assert_eq!(m.from.id, "-100123", "answers go to the group"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn polling_answers_give_events_and_the_next_offset() {
    let body = json!({ "ok": true, "result": [
        private(100, 1, json!({ "text": "a" })),
        { "update_id": 101, "callback_query": { "id": "q1", "from": { "id": 42 }, "data": "x" } },
    ] });
    let polled = parse_updates(body.to_string().as_bytes()).unwrap();
    assert_eq!(polled.events.len(), 2);
    assert_eq!(polled.next_offset, Some(102));
    assert_eq!(polled.callback_queries, vec!["q1".to_owned()]);
    assert!(
        parse_updates(br#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#).is_err()
    );
    let call = get_updates_call(&channel("polling"), Some(102), 25).unwrap();
    assert_eq!(
        call.url,
        format!("http://127.0.0.1:9/bot{TOKEN}/getUpdates")
    );
    let sent: Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(
        (sent["offset"].as_i64(), sent["timeout"].as_i64()),
        (Some(102), Some(25))
    );
}

fn bodies(calls: &[HttpCall]) -> Vec<Value> {
    calls
        .iter()
        .map(|c| serde_json::from_slice(&c.body).unwrap())
        .collect()
}

#[test]
fn text_is_escaped_split_and_quotes_the_question() {
    let ch = channel("webhook");
    let calls = Telegram
        .render(
            &ch,
            &out(OutboundBody::Text {
                text: "Use <b> & 2 > 1".into(),
            }),
        )
        .unwrap();
    assert_eq!(
        calls[0].url,
        format!("http://127.0.0.1:9/bot{TOKEN}/sendMessage")
    );
    let b = bodies(&calls);
    assert_eq!(b[0]["text"], "Use &lt;b&gt; &amp; 2 &gt; 1");
    assert_eq!(
        (b[0]["parse_mode"].as_str(), b[0]["chat_id"].as_i64()),
        (Some("HTML"), Some(42))
    );
    assert_eq!(b[0]["reply_parameters"]["message_id"], 7);
    let long = Telegram
        .render(
            &ch,
            &out(OutboundBody::Text {
                text: "Sentence number one. ".repeat(400),
            }),
        )
        .unwrap();
    assert_eq!(long.len(), 3);
    assert!(
        bodies(&long)
            .iter()
            .all(|b| b["text"].as_str().unwrap().chars().count() <= 4096)
    );
}

#[test]
fn choices_become_an_inline_keyboard_or_a_menu() {
    let ch = channel("webhook");
    let choice = |id: String| Choice {
        id,
        title: "Pick".into(),
        description: None,
    };
    let ask = |choices: Vec<Choice>| {
        bodies(
            &Telegram
                .render(
                    &ch,
                    &out(OutboundBody::Interactive {
                        text: "Which?".into(),
                        interactive: Interactive::Buttons { choices },
                    }),
                )
                .unwrap(),
        )
        .remove(0)
    };
    let keyboard = ask(vec![choice("a".into()), choice("b".into())]);
    assert_eq!(
        keyboard["reply_markup"]["inline_keyboard"][1][0]["callback_data"],
        "b"
    );
    let menu = ask(vec![choice("x".repeat(65))]);
    assert!(menu.get("reply_markup").is_none());
    assert!(menu["text"].as_str().unwrap().ends_with("1. Pick"));
}

#[test]
fn media_typing_and_webhook_registration() {
    let ch = channel("webhook");
    let photo = Telegram
        .render(
            &ch,
            &out(OutboundBody::Media {
                media: MediaKind::Image,
                url: "https://example.com/a.jpg".into(),
                caption: Some("a & b".into()),
                filename: None,
            }),
        )
        .unwrap();
    assert!(photo[0].url.ends_with("/sendPhoto"));
    assert_eq!(bodies(&photo)[0]["caption"], "a &amp; b");
    let typing = Telegram.render(&ch, &out(OutboundBody::Typing)).unwrap();
    assert!(typing[0].url.ends_with("/sendChatAction"));
    assert!(
        Telegram
            .render(
                &ch,
                &out(OutboundBody::MarkRead {
                    provider_message_id: "1".into()
                })
            )
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        Telegram.render(
            &ch,
            &out(OutboundBody::Template {
                name: "t".into(),
                language: "en".into(),
                parameters: vec![]
            })
        ),
        Err(ConnectorError::Unsupported(_))
    ));

    let set = Telegram
        .connect(&ch, "https://coach.example/webhooks/telegram/x")
        .unwrap();
    assert!(set[0].url.ends_with("/setWebhook"));
    let b = bodies(&set);
    assert_eq!(
        (b[0]["url"].as_str(), b[0]["secret_token"].as_str()),
        (
            Some("https://coach.example/webhooks/telegram/x"),
            Some("s3cret_-x")
        )
    );
    assert!(
        Telegram.connect(&channel("polling"), "unused").unwrap()[0]
            .url
            .ends_with("/deleteWebhook")
    );
    assert!(
        Telegram.disconnect(&ch).unwrap()[0]
            .url
            .ends_with("/deleteWebhook")
    );
}

#[test]
fn bot_api_answers_are_judged() {
    let call = HttpCall {
        method: HttpMethod::Post,
        url: String::new(),
        headers: vec![],
        body: vec![],
        form: Vec::new(),
    };
    let resp = |status: u16, body: Value| HttpResponse {
        status,
        headers: vec![],
        body: body.to_string().into_bytes(),
    };
    assert_eq!(
        Telegram.outcome(
            &call,
            &resp(200, json!({ "ok": true, "result": { "message_id": 99 } }))
        ),
        SendOutcome::Sent {
            provider_message_id: Some("99".into())
        }
    );
    match Telegram.outcome(&call, &resp(429, json!({ "ok": false, "error_code": 429, "description": "Too Many Requests: retry after 3", "parameters": { "retry_after": 3 } }))) {
        SendOutcome::Retry { after, .. } => assert_eq!(after, Some(std::time::Duration::from_secs(3))),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Telegram.outcome(&call, &resp(502, json!(null))),
        SendOutcome::Retry { .. }
    ));
    assert_eq!(
        Telegram.outcome(&call, &resp(403, json!({ "ok": false, "error_code": 403, "description": "Forbidden: bot was blocked by the user" }))),
        SendOutcome::Failed { code: "403".into(), message: "Forbidden: bot was blocked by the user".into() }
    );
}

#[test]
fn settings_are_checked() {
    assert!(Telegram.validate(&json!({ "bot_token": TOKEN })).is_ok());
    for bad in [
        json!({}),
        json!({ "bot_token": "nope" }),
        json!({ "bot_token": TOKEN, "mode": "carrier-pigeon" }),
        json!({ "bot_token": TOKEN, "secret_token": "has space" }),
    ] {
        assert!(
            matches!(Telegram.validate(&bad), Err(ConnectorError::Config(_))),
            "{bad}"
        );
    }
}

#[test]
fn media_is_fetched_with_get_file_then_the_file_path() {
    let ch = channel("webhook");
    let first = Telegram.media_request(&ch, "AgAD-file").unwrap();
    assert!(first.url.ends_with("/getFile"));
    assert_eq!(
        serde_json::from_slice::<Value>(&first.body).unwrap()["file_id"],
        "AgAD-file"
    );
    let answer = HttpResponse {
        status: 200,
        headers: vec![],
        body: br#"{"ok":true,"result":{"file_id":"x","file_path":"photos/file_7.jpg"}}"#.to_vec(),
    };
    let next = Telegram.media_next(&ch, &answer).unwrap().unwrap();
    assert_eq!(
        next.url,
        format!("http://127.0.0.1:9/file/bot{TOKEN}/photos/file_7.jpg")
    );
    let escape = HttpResponse {
        status: 200,
        headers: vec![],
        body: br#"{"ok":true,"result":{"file_path":"../../etc/passwd"}}"#.to_vec(),
    };
    assert!(Telegram.media_next(&ch, &escape).is_err());
    let refused = HttpResponse {
        status: 400,
        headers: vec![],
        body: br#"{"ok":false,"description":"Bad Request: file is too big"}"#.to_vec(),
    };
    assert!(
        Telegram
            .media_next(&ch, &refused)
            .unwrap_err()
            .to_string()
            .contains("file is too big")
    );
}
