//! Library files on Telegram: the bytes go with the message, in the `send*` form.
#![allow(clippy::unwrap_used)]

use coach_connector_api::{Connector, ConnectorError, MediaKind, OutboundBody};
use coach_telegram::Telegram;
use serde_json::Value;
use support::{channel, out};

mod support;

#[test]
fn a_library_file_goes_up_in_the_send_form() {
    let ch = channel("webhook");
    let file = |data: Option<Vec<u8>>, caption: Option<String>| OutboundBody::File {
        media: MediaKind::Document,
        file_id: "0193f3e4-0000-7000-8000-000000000001".into(),
        mime: "application/pdf".into(),
        filename: "plan.pdf".into(),
        bytes: 9,
        caption,
        uploaded: None,
        data,
    };
    // Telegram takes the bytes with the message: no upload step.
    assert!(
        Telegram
            .upload(&ch, &out(file(Some(vec![1]), None)))
            .unwrap()
            .is_none()
    );
    let calls = Telegram
        .render(
            &ch,
            &out(file(Some(b"%PDF-1.4\n".to_vec()), Some("Plan <1>".into()))),
        )
        .unwrap();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].url.ends_with("/sendDocument"), "{}", calls[0].url);
    assert!(calls[0].body.is_empty());
    let field = |name: &str| calls[0].form.iter().find(|p| p.name == name).unwrap();
    assert_eq!(field("chat_id").value, b"42");
    assert_eq!(field("caption").value, b"Plan &lt;1&gt;");
    assert_eq!(field("parse_mode").value, b"HTML");
    assert_eq!(
        serde_json::from_slice::<Value>(&field("reply_parameters").value).unwrap()["message_id"],
        7
    );
    assert_eq!(field("document").value, b"%PDF-1.4\n");
    assert_eq!(field("document").filename.as_deref(), Some("plan.pdf"));
    assert_eq!(field("document").mime.as_deref(), Some("application/pdf"));
    // A caption over Telegram's 1,024 characters follows as text.
    let long = "word ".repeat(300);
    let calls = Telegram
        .render(&ch, &out(file(Some(vec![1]), Some(long))))
        .unwrap();
    assert_eq!(calls.len(), 2);
    assert!(calls[0].form.iter().all(|p| p.name != "caption"));
    assert!(calls[1].url.ends_with("/sendMessage"));
    // Without its bytes there is nothing to send.
    assert!(matches!(
        Telegram.render(&ch, &out(file(None, None))),
        Err(ConnectorError::BadRequest(_))
    ));
}
