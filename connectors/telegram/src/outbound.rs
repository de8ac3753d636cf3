//! Outbound: messages rendered as Bot API calls (HTML parse mode, escaped), webhook
//! registration, and the Bot API's answers judged.

use std::time::Duration;

use coach_connector_api::{
    ChannelConfig, Choice, ConnectorError, FormPart, HttpCall, HttpMethod, HttpResponse,
    Interactive, MediaKind, OutboundBody, OutboundMessage, SendOutcome, numbered_menu, split_text,
};
use serde_json::{Value, json};

use crate::{Mode, Settings};

/// The update kinds the gateway asks for.
pub const ALLOWED_UPDATES: [&str; 5] = [
    "message",
    "edited_message",
    "callback_query",
    "my_chat_member",
    "message_reaction",
];
const MAX_TEXT: usize = 4096;
const MAX_CAPTION: usize = 1024;
const MAX_BUTTONS: usize = 8;
const MAX_CALLBACK_DATA_BYTES: usize = 64;

/// A POST of a JSON body.
pub fn json_call(url: String, body: &Value) -> HttpCall {
    HttpCall {
        method: HttpMethod::Post,
        url,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
        form: Vec::new(),
    }
}

/// Escape text for `parse_mode: HTML`: `&`, `<` and `>` are the only characters it reserves.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `setWebhook` with the channel's URL and secret (webhook mode), or `deleteWebhook` so that
/// `getUpdates` works (polling mode).
pub fn connect(ch: &ChannelConfig, webhook_url: &str) -> Result<Vec<HttpCall>, ConnectorError> {
    let settings = Settings::from_value(&ch.settings)?;
    Ok(vec![match settings.mode {
        Mode::Webhook => {
            let secret = settings
                .secret_token
                .as_deref()
                .ok_or_else(|| ConnectorError::Config("secret_token: missing".into()))?;
            json_call(
                settings.method_url(&ch.api_base_url, "setWebhook"),
                &json!({ "url": webhook_url, "secret_token": secret, "allowed_updates": ALLOWED_UPDATES }),
            )
        }
        Mode::Polling => json_call(
            settings.method_url(&ch.api_base_url, "deleteWebhook"),
            &json!({ "drop_pending_updates": false }),
        ),
    }])
}

/// `answerCallbackQuery` for a tapped button (polling mode; webhooks answer in the response).
pub fn answer_callback_call(ch: &ChannelConfig, id: &str) -> Result<HttpCall, ConnectorError> {
    let settings = Settings::from_value(&ch.settings)?;
    Ok(json_call(
        settings.method_url(&ch.api_base_url, "answerCallbackQuery"),
        &json!({ "callback_query_id": id }),
    ))
}

/// Render one message as Bot API calls, in order.
pub fn render(ch: &ChannelConfig, msg: &OutboundMessage) -> Result<Vec<HttpCall>, ConnectorError> {
    let settings = Settings::from_value(&ch.settings)?;
    let chat_id: Value = match msg.to.parse::<i64>() {
        Ok(id) => json!(id),
        Err(_) => json!(msg.to),
    };
    let url = |method: &str| settings.method_url(&ch.api_base_url, method);
    let reply = msg
        .reply_to
        .as_deref()
        .and_then(|id| id.parse::<i64>().ok())
        .map(|id| json!({ "message_id": id, "allow_sending_without_reply": true }));
    let texts = |text: &str, markup: Option<Value>| -> Vec<HttpCall> {
        let parts = split_text(text, MAX_TEXT);
        let last = parts.len().saturating_sub(1);
        parts
            .into_iter()
            .enumerate()
            .map(|(i, part)| {
                let mut body =
                    json!({ "chat_id": chat_id, "text": escape_html(&part), "parse_mode": "HTML" });
                if let (0, Some(r)) = (i, &reply) {
                    body["reply_parameters"] = r.clone();
                }
                if let (true, Some(m)) = (i == last, &markup) {
                    body["reply_markup"] = m.clone();
                }
                json_call(url("sendMessage"), &body)
            })
            .collect()
    };
    Ok(match &msg.body {
        OutboundBody::Text { text } => texts(text, None),
        OutboundBody::Interactive { text, interactive } => {
            let choices = match interactive {
                Interactive::Buttons { choices } | Interactive::List { choices, .. } => choices,
            };
            match keyboard(choices) {
                Some(markup) => texts(text, Some(markup)),
                None => texts(&numbered_menu(text, choices), None),
            }
        }
        OutboundBody::Media {
            media,
            url: link,
            caption,
            filename: _,
        } => {
            let (method, field) = match media {
                MediaKind::Image => ("sendPhoto", "photo"),
                MediaKind::Audio => ("sendAudio", "audio"),
                MediaKind::Voice => ("sendVoice", "voice"),
                MediaKind::Video => ("sendVideo", "video"),
                MediaKind::Document => ("sendDocument", "document"),
                MediaKind::Sticker => ("sendSticker", "sticker"),
            };
            let mut body = json!({ "chat_id": chat_id, field: link });
            if let Some(r) = &reply {
                body["reply_parameters"] = r.clone();
            }
            let mut calls = Vec::new();
            match caption {
                Some(c) if c.chars().count() <= MAX_CAPTION && *media != MediaKind::Sticker => {
                    body["caption"] = json!(escape_html(c));
                    body["parse_mode"] = json!("HTML");
                    calls.push(json_call(url(method), &body));
                }
                Some(c) => {
                    calls.push(json_call(url(method), &body));
                    calls.extend(texts(c, None));
                }
                None => calls.push(json_call(url(method), &body)),
            }
            calls
        }
        // A library file goes up with the message, as a multipart form.
        OutboundBody::File {
            media,
            mime,
            filename,
            caption,
            data,
            ..
        } => {
            let Some(data) = data else {
                return Err(ConnectorError::BadRequest(
                    "a file is sent with its bytes: none were given".into(),
                ));
            };
            // sendAudio plays MP3 and M4A; Ogg/Opus is what sendVoice takes.
            let (method, field) = match media {
                MediaKind::Image | MediaKind::Sticker => ("sendPhoto", "photo"),
                MediaKind::Audio | MediaKind::Voice if mime == "audio/ogg" => {
                    ("sendVoice", "voice")
                }
                MediaKind::Audio | MediaKind::Voice => ("sendAudio", "audio"),
                MediaKind::Video => ("sendVideo", "video"),
                MediaKind::Document => ("sendDocument", "document"),
            };
            let mut form = vec![FormPart::text("chat_id", msg.to.trim())];
            if let Some(r) = &reply {
                form.push(FormPart::text("reply_parameters", &r.to_string()));
            }
            let captioned = caption
                .as_deref()
                .filter(|c| c.chars().count() <= MAX_CAPTION);
            if let Some(c) = captioned {
                form.push(FormPart::text("caption", &escape_html(c)));
                form.push(FormPart::text("parse_mode", "HTML"));
            }
            form.push(FormPart::file(field, data.clone(), filename, mime));
            let mut calls = vec![HttpCall {
                method: HttpMethod::Post,
                url: url(method),
                headers: Vec::new(),
                body: Vec::new(),
                form,
            }];
            if let (None, Some(c)) = (captioned, caption) {
                calls.extend(texts(c, None));
            }
            calls
        }
        OutboundBody::Template { .. } => {
            return Err(ConnectorError::Unsupported(
                "Telegram has no message templates: send text".into(),
            ));
        }
        OutboundBody::Typing => vec![json_call(
            url("sendChatAction"),
            &json!({ "chat_id": chat_id, "action": "typing" }),
        )],
        // Bots cannot mark messages read.
        OutboundBody::MarkRead { .. } => Vec::new(),
    })
}

/// An inline keyboard, one button per row, when every choice fits (at most 8, callback data
/// of at most 64 bytes).
fn keyboard(choices: &[Choice]) -> Option<Value> {
    let fits = !choices.is_empty()
        && choices.len() <= MAX_BUTTONS
        && choices.iter().all(|c| {
            !c.id.is_empty() && c.id.len() <= MAX_CALLBACK_DATA_BYTES && !c.title.trim().is_empty()
        });
    fits.then(|| {
        let rows: Vec<Value> = choices
            .iter()
            .map(|c| json!([{ "text": c.title, "callback_data": c.id }]))
            .collect();
        json!({ "inline_keyboard": rows })
    })
}

/// Judge the Bot API's answer to one call.
pub fn outcome(_call: &HttpCall, resp: &HttpResponse) -> SendOutcome {
    let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    if (200..300).contains(&resp.status) && body.get("ok").and_then(Value::as_bool) != Some(false) {
        return SendOutcome::Sent {
            provider_message_id: body
                .pointer("/result/message_id")
                .and_then(Value::as_i64)
                .map(|id| id.to_string()),
        };
    }
    let description = body
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("no description")
        .to_owned();
    let after = body
        .pointer("/parameters/retry_after")
        .and_then(Value::as_u64)
        .map(Duration::from_secs);
    match resp.status {
        429 | 408 => SendOutcome::Retry {
            after,
            reason: format!("Bot API {}: {description}", resp.status),
        },
        s if s >= 500 => SendOutcome::Retry {
            after,
            reason: format!("Bot API {s}: {description}"),
        },
        s => SendOutcome::Failed {
            code: body
                .get("error_code")
                .and_then(Value::as_i64)
                .unwrap_or(i64::from(s))
                .to_string(),
            message: description,
        },
    }
}
