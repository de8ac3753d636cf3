//! The SMS connector against Twilio's documented webhook and Messages API formats.
#![allow(clippy::unwrap_used)]

use coach_connector_api::{
    ChannelConfig, ChannelId, Connector, ConnectorError, Content, DeliveryStatus, HttpMethod,
    HttpRequest, HttpResponse, InboundEvent, OutboundBody, OutboundMessage, SendContext,
    SendOutcome, TenantId,
};
use coach_sms_twilio::{Sms, signature};
use serde_json::json;

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const URL: &str = "https://coach.example/webhooks/sms/4c1b";

fn channel() -> ChannelConfig {
    ChannelConfig {
        tenant_id: TenantId::new(),
        channel_id: ChannelId::new(),
        settings: json!({ "account_sid": SID, "auth_token": "tok", "from_number": "+15550001111" }),
        api_base_url: "http://127.0.0.1:9".into(),
        webhook_url: URL.into(),
    }
}

fn form(pairs: &[(&str, &str)]) -> (Vec<(String, String)>, Vec<u8>) {
    let owned: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    (owned, s.finish().into_bytes())
}

fn signed(pairs: &[(&str, &str)]) -> HttpRequest {
    let (params, body) = form(pairs);
    HttpRequest {
        method: Some(HttpMethod::Post),
        query: String::new(),
        headers: vec![("x-twilio-signature".into(), signature("tok", URL, &params))],
        body,
    }
}

#[test]
fn the_signature_matches_twilios_published_example() {
    let params: Vec<(String, String)> = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ]
    .iter()
    .map(|(k, v)| ((*k).into(), (*v).into()))
    .collect();
    assert_eq!(
        signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            &params
        ),
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    );
}

#[test]
fn inbound_messages_and_statuses_are_verified_and_parsed() {
    let text = signed(&[
        ("MessageSid", "SM1"),
        ("AccountSid", SID),
        ("From", "+4915100"),
        ("To", "+15550001111"),
        ("Body", "Hi coach"),
        ("NumMedia", "0"),
        ("SmsStatus", "received"),
    ]);
    let inbound = Sms.inbound(&channel(), &text).unwrap();
    match &inbound.events[0] {
        InboundEvent::Message(m) => {
            assert_eq!(
                (m.dedup_key.0.as_str(), m.from.id.as_str()),
                ("SM1", "+4915100")
            );
            assert_eq!(
                m.content,
                Content::Text {
                    body: "Hi coach".into()
                }
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(inbound.response.unwrap().headers[0].1, "text/xml");

    let photo = signed(&[
        ("MessageSid", "SM2"),
        ("AccountSid", SID),
        ("From", "+4915100"),
        ("Body", ""),
        ("NumMedia", "1"),
        ("MediaUrl0", "https://api.twilio.com/media/ME1"),
        ("MediaContentType0", "image/png"),
    ]);
    assert!(
        matches!(&Sms.inbound(&channel(), &photo).unwrap().events[0], InboundEvent::Message(m) if matches!(m.content, Content::Media { .. }))
    );

    let failed = signed(&[
        ("MessageSid", "SM9"),
        ("AccountSid", SID),
        ("MessageStatus", "undelivered"),
        ("To", "+4915100"),
        ("ErrorCode", "30003"),
    ]);
    match &Sms.inbound(&channel(), &failed).unwrap().events[0] {
        InboundEvent::Status(s) => {
            assert_eq!(s.status, DeliveryStatus::Failed);
            assert_eq!(s.error.as_ref().unwrap().code, "30003");
        }
        other => panic!("{other:?}"),
    }

    let mut tampered = text.clone();
    tampered.body.extend_from_slice(b"&Body=more");
    assert!(matches!(
        Sms.inbound(&channel(), &tampered),
        Err(ConnectorError::Unauthorized(_))
    ));
    let mut other_url = channel();
    other_url.webhook_url = "https://elsewhere.example/webhooks/sms/4c1b".into();
    assert!(matches!(
        Sms.inbound(&other_url, &text),
        Err(ConnectorError::Unauthorized(_))
    ));
    let other_account = signed(&[
        ("MessageSid", "SM3"),
        ("AccountSid", "AC_other"),
        ("From", "+1"),
    ]);
    assert!(matches!(
        Sms.inbound(&channel(), &other_account),
        Err(ConnectorError::BadRequest(_))
    ));
}

#[test]
fn outbound_uses_the_messages_api_and_judges_its_answers() {
    let msg = OutboundMessage {
        to: "+4915100".into(),
        reply_to: None,
        body: OutboundBody::Text {
            text: "x ".repeat(1000),
        },
        context: SendContext::default(),
    };
    let calls = Sms.render(&channel(), &msg).unwrap();
    assert_eq!(calls.len(), 2, "2,000 characters go as two messages");
    assert_eq!(
        calls[0].url,
        format!("http://127.0.0.1:9/2010-04-01/Accounts/{SID}/Messages.json")
    );
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&calls[0].body)
        .into_owned()
        .collect();
    assert!(pairs.contains(&("To".into(), "+4915100".into())));
    assert!(pairs.contains(&("From".into(), "+15550001111".into())));
    assert!(
        pairs.contains(&("StatusCallback".into(), URL.into())),
        "delivery reports come back"
    );
    let resp = |status: u16, body: serde_json::Value| HttpResponse {
        status,
        headers: vec![],
        body: body.to_string().into_bytes(),
    };
    assert_eq!(
        Sms.outcome(&calls[0], &resp(201, json!({ "sid": "SMout" }))),
        SendOutcome::Sent {
            provider_message_id: Some("SMout".into())
        }
    );
    assert!(matches!(
        Sms.outcome(&calls[0], &resp(429, json!({}))),
        SendOutcome::Retry { .. }
    ));
    assert_eq!(
        Sms.outcome(
            &calls[0],
            &resp(
                400,
                json!({ "code": 21211, "message": "Invalid 'To' Phone Number" })
            )
        ),
        SendOutcome::Failed {
            code: "21211".into(),
            message: "Invalid 'To' Phone Number".into()
        }
    );
    assert!(
        Sms.validate(
            &json!({ "account_sid": "nope", "auth_token": "t", "from_number": "+1555000" })
        )
        .is_err()
    );
}

#[test]
fn every_attachment_is_kept_and_get_webhooks_are_verified() {
    let mms = signed(&[
        ("MessageSid", "MM1"),
        ("AccountSid", SID),
        ("From", "+4915100"),
        ("Body", "two pictures"),
        ("NumMedia", "2"),
        ("MediaUrl0", "https://api.twilio.com/m/0"),
        ("MediaContentType0", "image/jpeg"),
        ("MediaUrl1", "https://api.twilio.com/m/1"),
        ("MediaContentType1", "video/mp4"),
    ]);
    let events = Sms.inbound(&channel(), &mms).unwrap().events;
    let keys: Vec<&str> = events.iter().map(|e| e.dedup_key().0.as_str()).collect();
    assert_eq!(keys, ["MM1", "MM1:media:1"]);
    assert!(
        matches!(&events[1], InboundEvent::Message(m) if matches!(m.content, Content::Media { media: coach_connector_api::MediaKind::Video, .. }))
    );

    // GET: the parameters are in the query, and the signature covers the full URL only.
    let query = form(&[
        ("MessageSid", "SM7"),
        ("AccountSid", SID),
        ("From", "+4915100"),
        ("Body", "by GET"),
    ])
    .1;
    let query = String::from_utf8(query).unwrap();
    let get = HttpRequest {
        method: Some(HttpMethod::Get),
        query: query.clone(),
        headers: vec![(
            "x-twilio-signature".into(),
            signature("tok", &format!("{URL}?{query}"), &[]),
        )],
        body: Vec::new(),
    };
    match &Sms.inbound(&channel(), &get).unwrap().events[0] {
        InboundEvent::Message(m) => assert_eq!(
            m.content,
            Content::Text {
                body: "by GET".into()
            }
        ),
        other => panic!("{other:?}"),
    }
    let forged = HttpRequest {
        headers: vec![("x-twilio-signature".into(), signature("tok", URL, &[]))],
        ..get
    };
    assert!(matches!(
        Sms.inbound(&channel(), &forged),
        Err(ConnectorError::Unauthorized(_))
    ));
}
