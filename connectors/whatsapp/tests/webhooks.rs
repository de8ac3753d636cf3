//! Webhook verification and parsing against payloads written in the Cloud API's documented
//! webhook format (one of every message kind and status).
#![allow(clippy::unwrap_used)]

mod support;

use coach_connector_api::{
    Connector, ConnectorError, Content, DeliveryStatus, HttpMethod, HttpRequest, InboundEvent,
    MediaKind,
};
use coach_whatsapp::WhatsApp;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use support::{PHONE_ID, SECRET, channel};

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn post(body: &Value) -> HttpRequest {
    let body = serde_json::to_vec(body).unwrap();
    HttpRequest {
        method: Some(HttpMethod::Post),
        query: String::new(),
        headers: vec![("x-hub-signature-256".into(), sign(SECRET, &body))],
        body,
    }
}

fn webhook(phone_id: &str, value: Value) -> Value {
    let mut value = value;
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] =
        json!({ "display_phone_number": "15550001111", "phone_number_id": phone_id });
    json!({ "object": "whatsapp_business_account",
            "entry": [{ "id": "WABA1", "changes": [{ "field": "messages", "value": value }] }] })
}

fn message(id: &str, kind: &str, part: Value) -> Value {
    let mut m =
        json!({ "from": "4915112345678", "id": id, "timestamp": "1700000000", "type": kind });
    if !part.is_null() {
        m[kind] = part;
    }
    m
}

fn contacts() -> Value {
    json!([{ "profile": { "name": "Ana" }, "wa_id": "4915112345678" }])
}

#[test]
fn the_signature_is_checked_over_the_raw_bytes() {
    // The published example vector: HMAC-SHA256(key "secret", "test").
    assert_eq!(
        sign("secret", b"test"),
        "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"
    );
    let ch = channel(json!({}));
    let body = webhook(
        PHONE_ID,
        json!({ "contacts": contacts(), "messages": [message("wamid.A", "text", json!({"body": "hi"}))] }),
    );
    let good = post(&body);
    assert_eq!(WhatsApp.inbound(&ch, &good).unwrap().events.len(), 1);

    let mut upper = good.clone();
    upper.headers[0].1 = format!("sha256={}", good.headers[0].1[7..].to_uppercase());
    assert!(
        WhatsApp.inbound(&ch, &upper).is_ok(),
        "hex case does not matter"
    );

    let reserialized = HttpRequest {
        body: serde_json::to_vec_pretty(&body).unwrap(),
        ..good.clone()
    };
    let cases = [
        reserialized,
        HttpRequest {
            headers: vec![],
            ..good.clone()
        },
        HttpRequest {
            headers: vec![("x-hub-signature-256".into(), good.headers[0].1[7..].into())],
            ..good.clone()
        },
        HttpRequest {
            headers: vec![(
                "x-hub-signature-256".into(),
                sign("other-secret", &good.body),
            )],
            ..good.clone()
        },
        HttpRequest {
            headers: vec![("x-hub-signature-256".into(), "sha256=zz".into())],
            ..good.clone()
        },
    ];
    for bad in cases {
        assert!(matches!(
            WhatsApp.inbound(&ch, &bad),
            Err(ConnectorError::Unauthorized(_))
        ));
    }
}

#[test]
fn the_verification_handshake_echoes_the_challenge_only_for_the_right_token() {
    let ch = channel(json!({}));
    let get = |query: &str| HttpRequest {
        method: Some(HttpMethod::Get),
        query: query.into(),
        ..Default::default()
    };
    let ok = WhatsApp
        .inbound(
            &ch,
            &get("hub.mode=subscribe&hub.verify_token=let-me-in&hub.challenge=1158201444"),
        )
        .unwrap();
    let response = ok.response.unwrap();
    assert_eq!(
        (response.status, response.body),
        (200, b"1158201444".to_vec())
    );
    assert!(ok.events.is_empty());
    assert!(matches!(
        WhatsApp.inbound(
            &ch,
            &get("hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")
        ),
        Err(ConnectorError::Forbidden(_))
    ));
    assert!(matches!(
        WhatsApp.inbound(&ch, &get("hub.verify_token=let-me-in&hub.challenge=1")),
        Err(ConnectorError::BadRequest(_))
    ));
}

#[test]
fn every_entry_change_and_message_of_a_batch_is_processed() {
    let ch = channel(json!({}));
    let entries: Vec<Value> = (0..3)
        .map(|e| {
            let changes: Vec<Value> = (0..2)
                .map(|c| {
                    let msgs: Vec<Value> = (0..5)
                        .map(|m| {
                            message(
                                &format!("wamid.{e}.{c}.{m}"),
                                "text",
                                json!({"body": format!("m{e}{c}{m}")}),
                            )
                        })
                        .collect();
                    json!({ "field": "messages", "value": {
                        "messaging_product": "whatsapp",
                        "metadata": { "display_phone_number": "1", "phone_number_id": PHONE_ID },
                        "contacts": contacts(), "messages": msgs } })
                })
                .collect();
            json!({ "id": format!("WABA{e}"), "changes": changes })
        })
        .collect();
    let body = json!({ "object": "whatsapp_business_account", "entry": entries });
    let inbound = WhatsApp.inbound(&ch, &post(&body)).unwrap();
    assert_eq!(inbound.events.len(), 30);
    let keys: std::collections::BTreeSet<_> = inbound
        .events
        .iter()
        .map(|e| e.dedup_key().0.clone())
        .collect();
    assert_eq!(keys.len(), 30);
    assert_eq!(inbound.events[29].dedup_key().0, "wamid.2.1.4");
}

#[test]
fn an_entry_for_another_number_of_a_shared_app_is_refused_not_stored() {
    let ch = channel(json!({}));
    let body = webhook(
        "999999",
        json!({ "contacts": contacts(), "messages": [message("wamid.X", "text", json!({"body": "hi"}))] }),
    );
    let inbound = WhatsApp.inbound(&ch, &post(&body)).unwrap();
    assert!(inbound.events.is_empty());
    assert_eq!(inbound.refused.len(), 1);
    assert!(inbound.refused[0].contains("999999"));
    // Account-level changes name no number: with a shared app they may be another tenant's.
    let account = json!({ "object": "whatsapp_business_account", "entry": [{ "id": "WABA9", "changes": [
        { "field": "message_template_status_update", "value": { "event": "APPROVED", "message_template_name": "x" } }] }] });
    let inbound = WhatsApp.inbound(&ch, &post(&account)).unwrap();
    assert!(inbound.events.is_empty());
    assert!(inbound.refused[0].contains("message_template_status_update"));
}

fn only_content(value: Value) -> Content {
    let ch = channel(json!({}));
    let events = WhatsApp
        .inbound(&ch, &post(&webhook(PHONE_ID, value)))
        .unwrap()
        .events;
    assert_eq!(events.len(), 1);
    match events.into_iter().next().unwrap() {
        InboundEvent::Message(m) => m.content,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn every_message_kind_is_mapped() {
    let one = |m: Value| only_content(json!({ "contacts": contacts(), "messages": [m] }));
    assert_eq!(
        one(message("w1", "text", json!({"body": "Hello"}))),
        Content::Text {
            body: "Hello".into()
        }
    );
    let image = one(message(
        "w2",
        "image",
        json!({"id": "MEDIA1", "mime_type": "image/jpeg", "sha256": "x", "caption": "look"}),
    ));
    assert!(
        matches!(image, Content::Media { media: MediaKind::Image, ref media_ref, ref caption, .. } if media_ref == "MEDIA1" && caption.as_deref() == Some("look"))
    );
    let voice = one(message(
        "w3",
        "audio",
        json!({"id": "A1", "mime_type": "audio/ogg; codecs=opus", "voice": true}),
    ));
    assert!(matches!(
        voice,
        Content::Media {
            media: MediaKind::Voice,
            ..
        }
    ));
    let audio = one(message(
        "w4",
        "audio",
        json!({"id": "A2", "mime_type": "audio/mpeg"}),
    ));
    assert!(matches!(
        audio,
        Content::Media {
            media: MediaKind::Audio,
            ..
        }
    ));
    assert!(matches!(
        one(message(
            "w5",
            "video",
            json!({"id": "V1", "mime_type": "video/mp4"})
        )),
        Content::Media {
            media: MediaKind::Video,
            ..
        }
    ));
    let doc = one(message(
        "w6",
        "document",
        json!({"id": "D1", "filename": "plan.pdf", "mime_type": "application/pdf"}),
    ));
    assert!(
        matches!(doc, Content::Media { media: MediaKind::Document, ref filename, .. } if filename.as_deref() == Some("plan.pdf"))
    );
    assert!(matches!(
        one(message(
            "w7",
            "sticker",
            json!({"id": "S1", "mime_type": "image/webp", "animated": false})
        )),
        Content::Media {
            media: MediaKind::Sticker,
            ..
        }
    ));
    let location = one(message(
        "w8",
        "location",
        json!({"latitude": 52.52, "longitude": 13.405, "name": "Berlin"}),
    ));
    assert_eq!(
        location,
        Content::Location {
            latitude: 52.52,
            longitude: 13.405,
            name: Some("Berlin".into()),
            address: None
        }
    );
    let mut card = message("w9b", "contacts", json!(null));
    card["contacts"] = json!([{ "name": { "formatted_name": "Bo Li", "first_name": "Bo" }, "phones": [{ "phone": "+1 555", "type": "CELL" }], "emails": [{ "email": "bo@example.com" }] }]);
    assert_eq!(
        one(card),
        Content::Contacts {
            cards: vec![coach_connector_api::ContactCard {
                name: "Bo Li".into(),
                phones: vec!["+1 555".into()],
                emails: vec!["bo@example.com".into()]
            }]
        }
    );
    let button = one(message(
        "w10",
        "interactive",
        json!({"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}),
    ));
    assert_eq!(
        button,
        Content::InteractiveReply {
            id: "yes".into(),
            title: "Yes".into()
        }
    );
    let row = one(message(
        "w11",
        "interactive",
        json!({"type": "list_reply", "list_reply": {"id": "r2", "title": "Row 2", "description": "d"}}),
    ));
    assert_eq!(
        row,
        Content::InteractiveReply {
            id: "r2".into(),
            title: "Row 2".into()
        }
    );
    let template_button = one(message(
        "w12",
        "button",
        json!({"payload": "STOP", "text": "Stop promotions"}),
    ));
    assert_eq!(
        template_button,
        Content::InteractiveReply {
            id: "STOP".into(),
            title: "Stop promotions".into()
        }
    );
    let reaction = one(message(
        "w13",
        "reaction",
        json!({"message_id": "wamid.OUT", "emoji": "👍"}),
    ));
    assert_eq!(
        reaction,
        Content::Reaction {
            to_message: "wamid.OUT".into(),
            emoji: Some("👍".into())
        }
    );
    let removed = one(message(
        "w14",
        "reaction",
        json!({"message_id": "wamid.OUT", "emoji": ""}),
    ));
    assert_eq!(
        removed,
        Content::Reaction {
            to_message: "wamid.OUT".into(),
            emoji: None
        }
    );
    let mut referral = message("w15", "text", json!({"body": "I saw your ad"}));
    referral["referral"] =
        json!({ "source_url": "https://fb.me/x", "source_type": "ad", "headline": "Coaching" });
    assert_eq!(
        one(referral),
        Content::Text {
            body: "I saw your ad".into()
        }
    );
}

#[test]
fn replies_keep_their_context_and_unknown_kinds_are_kept_whole() {
    let ch = channel(json!({}));
    let mut reply = message("wamid.R", "text", json!({"body": "replied"}));
    reply["context"] = json!({ "from": "15550001111", "id": "wamid.ORIG" });
    let mut unsupported = message("wamid.U", "unsupported", json!(null));
    unsupported["errors"] = json!([{ "code": 131051, "title": "Message type unknown" }]);
    let body = webhook(
        PHONE_ID,
        json!({
            "contacts": contacts(), "messages": [reply, unsupported, message("wamid.N", "some_new_kind", json!({"x": 1}))],
            "errors": [{ "code": 131000, "title": "Something went wrong" }],
        }),
    );
    let events = WhatsApp.inbound(&ch, &post(&body)).unwrap().events;
    assert_eq!(events.len(), 4);
    match &events[0] {
        InboundEvent::Message(m) => {
            assert_eq!(m.reply_to.as_deref(), Some("wamid.ORIG"));
            assert_eq!(m.from.display_name.as_deref(), Some("Ana"));
            assert_eq!(m.timestamp.timestamp(), 1_700_000_000);
        }
        other => panic!("{other:?}"),
    }
    for (event, kind) in events[1..]
        .iter()
        .zip(["unsupported", "some_new_kind", "error"])
    {
        match event {
            InboundEvent::Unknown(u) => {
                assert_eq!(u.kind, kind);
                assert!(!u.raw.is_null());
            }
            other => panic!("{other:?}"),
        }
    }
    // The same unknown part twice has the same key: a provider retry stores it once.
    let again = WhatsApp.inbound(&ch, &post(&body)).unwrap().events;
    assert_eq!(again[3].dedup_key(), events[3].dedup_key());
}

#[test]
fn statuses_carry_their_error_and_distinct_keys() {
    let ch = channel(json!({}));
    let status = |s: &str| json!({ "id": "wamid.OUT", "status": s, "timestamp": "1700000100", "recipient_id": "4915112345678" });
    let mut failed = status("failed");
    failed["errors"] = json!([{ "code": 131047, "title": "Re-engagement message" }]);
    let body = webhook(
        PHONE_ID,
        json!({ "statuses": [status("sent"), status("delivered"), status("read"), failed, status("deleted")] }),
    );
    let events = WhatsApp.inbound(&ch, &post(&body)).unwrap().events;
    let statuses: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            InboundEvent::Status(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses.iter().map(|s| s.status).collect::<Vec<_>>(),
        [
            DeliveryStatus::Sent,
            DeliveryStatus::Delivered,
            DeliveryStatus::Read,
            DeliveryStatus::Failed
        ]
    );
    assert_eq!(statuses[3].error.as_ref().unwrap().code, "131047");
    assert_eq!(statuses[0].dedup_key.0, "status:wamid.OUT:sent");
    assert!(matches!(&events[4], InboundEvent::Unknown(u) if u.kind == "status_deleted"));
}

#[test]
fn bodies_that_are_not_webhooks_are_bad_requests_never_panics() {
    let ch = channel(json!({}));
    for body in [
        json!([]),
        json!({"object": "page", "entry": []}),
        json!({"object": "whatsapp_business_account"}),
        json!({"object": "whatsapp_business_account", "entry": [{"changes": 3}]}),
    ] {
        assert!(
            matches!(
                WhatsApp.inbound(&ch, &post(&body)),
                Err(ConnectorError::BadRequest(_))
            ),
            "{body}"
        );
    }
    // Odd but well-formed parts become unknown events rather than errors.
    let odd = webhook(
        PHONE_ID,
        json!({ "messages": [{ "type": "text" }, 7, { "id": "w", "from": "1", "type": "image", "image": {} }] }),
    );
    let events = WhatsApp.inbound(&ch, &post(&odd)).unwrap().events;
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| matches!(e, InboundEvent::Unknown(_))));
}
