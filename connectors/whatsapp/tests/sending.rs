//! Rendering of outbound messages (splitting, choices, the 24-hour window), the Graph API's
//! answers, and settings validation.
#![allow(clippy::unwrap_used)]

mod support;

use coach_connector_api::{
    Choice, Connector, ConnectorError, HttpMethod, HttpResponse, Interactive, OutboundBody,
    OutboundMessage, SendContext, SendOutcome,
};
use coach_whatsapp::WhatsApp;
use serde_json::{Value, json};
use support::{PHONE_ID, channel};

fn out(body: OutboundBody, last_inbound_secs_ago: Option<i64>) -> OutboundMessage {
    let now = chrono::DateTime::from_timestamp(1_700_100_000, 0).unwrap();
    OutboundMessage {
        to: "4915112345678".into(),
        reply_to: Some("wamid.IN".into()),
        body,
        context: SendContext {
            now: Some(now),
            last_inbound_at: last_inbound_secs_ago.map(|s| now - chrono::Duration::seconds(s)),
            fallback: None,
        },
    }
}

fn bodies(calls: &[coach_connector_api::HttpCall]) -> Vec<Value> {
    calls
        .iter()
        .map(|c| serde_json::from_slice(&c.body).unwrap())
        .collect()
}

#[test]
fn long_text_is_split_and_the_first_part_quotes_the_question() {
    let ch = channel(json!({}));
    let text = format!("{}\n\n{}", "a".repeat(3000), "b ".repeat(1500));
    let calls = WhatsApp
        .render(&ch, &out(OutboundBody::Text { text }, Some(60)))
        .unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].url,
        format!("http://127.0.0.1:9/v21.0/{PHONE_ID}/messages")
    );
    assert!(
        calls[0]
            .headers
            .contains(&("authorization".into(), "Bearer EAAtoken".into()))
    );
    let b = bodies(&calls);
    assert_eq!(b[0]["context"]["message_id"], "wamid.IN");
    assert!(b[1].get("context").is_none());
    assert!(
        b.iter()
            .all(|b| b["text"]["body"].as_str().unwrap().chars().count() <= 4096)
    );
}

#[test]
fn choices_degrade_from_buttons_to_a_list_to_a_numbered_menu() {
    let ch = channel(json!({}));
    let choice = |i: usize, title: &str| Choice {
        id: format!("c{i}"),
        title: title.into(),
        description: None,
    };
    let ask = |choices: Vec<Choice>| {
        let calls = WhatsApp
            .render(
                &ch,
                &out(
                    OutboundBody::Interactive {
                        text: "Pick one".into(),
                        interactive: Interactive::Buttons { choices },
                    },
                    Some(60),
                ),
            )
            .unwrap();
        bodies(&calls).remove(0)
    };
    let buttons = ask((0..3).map(|i| choice(i, "Short")).collect());
    assert_eq!(buttons["interactive"]["type"], "button");
    assert_eq!(
        buttons["interactive"]["action"]["buttons"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let list = ask((0..4).map(|i| choice(i, "Short")).collect());
    assert_eq!(list["interactive"]["type"], "list");
    let long_titles = ask(vec![choice(0, "Title of 22 characters"), choice(1, "B")]);
    assert_eq!(long_titles["interactive"]["type"], "list");
    let menu = ask((0..11).map(|i| choice(i, "Option")).collect());
    assert_eq!(menu["type"], "text");
    assert!(
        menu["text"]["body"]
            .as_str()
            .unwrap()
            .contains("11. Option")
    );
}

#[test]
fn outside_the_window_free_form_is_held_or_replaced_by_the_template() {
    let text = OutboundBody::Text {
        text: "Checking in".into(),
    };
    let day = 86_400;
    assert!(matches!(
        WhatsApp.render(&channel(json!({})), &out(text.clone(), Some(day + 1))),
        Err(ConnectorError::Held(_))
    ));
    assert!(matches!(
        WhatsApp.render(&channel(json!({})), &out(text.clone(), None)),
        Err(ConnectorError::Held(_))
    ));
    let with_template =
        channel(json!({ "fallback_template": { "name": "checkin", "language": "en_US" } }));
    let b = bodies(
        &WhatsApp
            .render(&with_template, &out(text.clone(), Some(day + 1)))
            .unwrap(),
    );
    assert_eq!(b[0]["type"], "template");
    assert_eq!(b[0]["template"]["name"], "checkin");
    // A message's own fallback (a program step's template) wins over the channel's, and is
    // only used when the window is closed.
    let step_template = OutboundBody::Template {
        name: "day_checkin".into(),
        language: "es".into(),
        parameters: vec!["Ana".into(), "3".into()],
    };
    let mut late = out(text.clone(), Some(day + 1));
    late.context.fallback = Some(Box::new(step_template));
    let b = bodies(&WhatsApp.render(&with_template, &late).unwrap());
    assert_eq!(b[0]["template"]["name"], "day_checkin");
    assert_eq!(b[0]["template"]["language"]["code"], "es");
    assert_eq!(
        b[0]["template"]["components"][0]["parameters"][1]["text"],
        "3"
    );
    late.context.last_inbound_at = late.context.now;
    let b = bodies(&WhatsApp.render(&with_template, &late).unwrap());
    assert_eq!(b[0]["type"], "text");
    // Templates and read receipts need no window.
    let template = OutboundBody::Template {
        name: "welcome".into(),
        language: "de".into(),
        parameters: vec!["Ana".into()],
    };
    let b = bodies(
        &WhatsApp
            .render(&channel(json!({})), &out(template, None))
            .unwrap(),
    );
    assert_eq!(
        b[0]["template"]["components"][0]["parameters"][0]["text"],
        "Ana"
    );
    let read = OutboundBody::MarkRead {
        provider_message_id: "wamid.IN".into(),
    };
    let b = bodies(
        &WhatsApp
            .render(&channel(json!({})), &out(read, None))
            .unwrap(),
    );
    assert_eq!(
        (
            b[0]["status"].as_str(),
            b[0]["typing_indicator"]["type"].as_str()
        ),
        (Some("read"), Some("text"))
    );
}

#[test]
fn graph_api_answers_are_judged_by_their_codes() {
    let call = coach_connector_api::HttpCall {
        method: HttpMethod::Post,
        url: String::new(),
        headers: vec![],
        body: vec![],
        form: Vec::new(),
    };
    let resp = |status: u16, body: Value, headers: Vec<(String, String)>| HttpResponse {
        status,
        headers,
        body: body.to_string().into_bytes(),
    };
    let error = |code: i64| json!({ "error": { "message": "m", "type": "OAuthException", "code": code, "error_data": { "details": "d" } } });
    assert_eq!(
        WhatsApp.outcome(
            &call,
            &resp(
                200,
                json!({ "messaging_product": "whatsapp", "messages": [{ "id": "wamid.S" }] }),
                vec![]
            )
        ),
        SendOutcome::Sent {
            provider_message_id: Some("wamid.S".into())
        }
    );
    for code in [130429, 131056] {
        assert!(matches!(
            WhatsApp.outcome(&call, &resp(400, error(code), vec![])),
            SendOutcome::Retry { .. }
        ));
    }
    match WhatsApp.outcome(
        &call,
        &resp(429, json!({}), vec![("Retry-After".into(), "7".into())]),
    ) {
        SendOutcome::Retry { after, .. } => {
            assert_eq!(after, Some(std::time::Duration::from_secs(7)))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        WhatsApp.outcome(&call, &resp(503, json!("oops"), vec![])),
        SendOutcome::Retry { .. }
    ));
    assert_eq!(
        WhatsApp.outcome(&call, &resp(400, error(131047), vec![])),
        SendOutcome::Failed {
            code: "131047".into(),
            message: "d".into()
        }
    );
    assert!(
        matches!(WhatsApp.outcome(&call, &resp(404, json!(null), vec![])), SendOutcome::Failed { ref code, .. } if code == "http_404")
    );
}

#[test]
fn settings_are_checked_when_a_channel_is_saved() {
    assert!(WhatsApp.validate(&channel(json!({})).settings).is_ok());
    for (field, value) in [
        ("app_secret", json!("")),
        ("phone_number_id", json!("+1 555")),
        ("access_token", json!(null)),
    ] {
        let mut s = channel(json!({})).settings;
        s[field] = value;
        let err = WhatsApp.validate(&s).unwrap_err().to_string();
        assert!(err.contains(field), "{err}");
    }
}

#[test]
fn the_token_goes_only_to_meta_media_hosts() {
    let ch = channel(json!({}));
    let meta = |url: &str| HttpResponse {
        status: 200,
        headers: vec![],
        body: json!({ "url": url, "mime_type": "image/jpeg" })
            .to_string()
            .into_bytes(),
    };
    let first = WhatsApp.media_request(&ch, "1234567890").unwrap();
    assert_eq!(first.url, "http://127.0.0.1:9/v21.0/1234567890");
    for allowed in [
        "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1",
        "http://127.0.0.1:9/cdn/1",
    ] {
        let next = WhatsApp.media_next(&ch, &meta(allowed)).unwrap().unwrap();
        assert_eq!(next.url, allowed);
        assert!(next.headers[0].1.starts_with("Bearer "));
    }
    for refused in [
        "http://lookaside.fbsbx.com/x",
        "https://evil.example/x",
        "https://fbsbx.com.evil.example/x",
        "https://user@10.0.0.5/x",
        "file:///etc/passwd",
        "https://x.example\\@fbcdn.net/",
        "https://evil.example\\@lookaside.fbsbx.com/x",
        "https://lookaside.fbsbx.com@evil.example/x",
        "https://lookaside.fbsbx.com:8443/x",
        "http://127.0.0.1:10/cdn/1",
    ] {
        assert!(
            WhatsApp.media_next(&ch, &meta(refused)).is_err(),
            "{refused}"
        );
    }
    assert!(WhatsApp.media_request(&ch, "../me").is_err());
}

fn file(uploaded: Option<&str>, data: Option<Vec<u8>>, caption: Option<&str>) -> OutboundBody {
    OutboundBody::File {
        media: coach_connector_api::MediaKind::Document,
        file_id: "0193f3e4-0000-7000-8000-000000000001".into(),
        mime: "application/pdf".into(),
        filename: "plan.pdf".into(),
        bytes: 9,
        caption: caption.map(str::to_owned),
        uploaded: uploaded.map(str::to_owned),
        data,
    }
}

#[test]
fn a_library_file_is_uploaded_to_media_then_sent_by_its_id() {
    let ch = channel(json!({}));
    // The upload: a multipart form with the product, the type and the file, to /media.
    let with_bytes = out(file(None, Some(b"%PDF-1.4\n".to_vec()), None), Some(60));
    let call = WhatsApp.upload(&ch, &with_bytes).unwrap().unwrap();
    assert_eq!(call.method, HttpMethod::Post);
    assert_eq!(
        call.url,
        format!("http://127.0.0.1:9/v21.0/{PHONE_ID}/media")
    );
    assert!(call.body.is_empty());
    let names: Vec<&str> = call.form.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["messaging_product", "type", "file"]);
    assert_eq!(call.form[0].value, b"whatsapp");
    assert_eq!(call.form[1].value, b"application/pdf");
    assert_eq!(call.form[2].value, b"%PDF-1.4\n");
    assert_eq!(call.form[2].filename.as_deref(), Some("plan.pdf"));
    // A text has nothing to upload.
    let text = out(OutboundBody::Text { text: "hi".into() }, Some(60));
    assert!(WhatsApp.upload(&ch, &text).unwrap().is_none());

    // Its answer names the media id; an error is judged like a send's.
    let ok = HttpResponse {
        status: 200,
        headers: vec![],
        body: br#"{"id":"4490709327384033"}"#.to_vec(),
    };
    assert_eq!(WhatsApp.uploaded(&call, &ok).unwrap(), "4490709327384033");
    let refused = HttpResponse {
        status: 400,
        headers: vec![],
        body: br#"{"error":{"code":100,"message":"Param file must be a file"}}"#.to_vec(),
    };
    assert!(matches!(
        WhatsApp.uploaded(&call, &refused),
        Err(SendOutcome::Failed { code, .. }) if code == "100"
    ));
    let no_id = HttpResponse {
        status: 200,
        headers: vec![],
        body: b"{}".to_vec(),
    };
    assert!(matches!(
        WhatsApp.uploaded(&call, &no_id),
        Err(SendOutcome::Failed { .. })
    ));
    assert_eq!(WhatsApp.upload_lifetime_secs(), 29 * 86_400);

    // Sent by id with its name and caption, quoting the message answered; never without an id.
    let calls = WhatsApp
        .render(
            &ch,
            &out(
                file(Some("4490709327384033"), None, Some("Week 1")),
                Some(60),
            ),
        )
        .unwrap();
    let b = bodies(&calls);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["type"], "document");
    assert_eq!(
        b[0]["document"],
        json!({ "id": "4490709327384033", "filename": "plan.pdf", "caption": "Week 1" })
    );
    assert_eq!(b[0]["context"]["message_id"], "wamid.IN");
    assert!(matches!(
        WhatsApp.render(&ch, &out(file(None, Some(vec![1]), None), Some(60))),
        Err(ConnectorError::BadRequest(_))
    ));
    // Outside the window a file is held like any free-form message.
    assert!(matches!(
        WhatsApp.render(&ch, &out(file(Some("1"), None, None), Some(90_000))),
        Err(ConnectorError::Held(_))
    ));
}
