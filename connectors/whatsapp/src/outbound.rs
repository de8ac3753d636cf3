//! Outbound: messages rendered as Graph API calls at send time, and the Graph API's answers
//! judged (sent, retry later, failed with its code).

use std::time::Duration;

use coach_connector_api::{
    ChannelConfig, Choice, ConnectorError, FormPart, HttpCall, HttpMethod, HttpResponse,
    Interactive, MediaKind, OutboundBody, OutboundMessage, SendOutcome, numbered_menu, split_text,
};
use serde_json::{Value, json};

use crate::Settings;

/// The customer-service window: free-form messages only within 24 hours of the person's last
/// message.
pub const SERVICE_WINDOW_HOURS: i64 = 24;
const MAX_TEXT: usize = 4096;
const MAX_INTERACTIVE_BODY: usize = 1024;
const MAX_BUTTONS: usize = 3;
const MAX_BUTTON_TITLE: usize = 20;
const MAX_ROWS: usize = 10;
const MAX_ROW_TITLE: usize = 24;
const MAX_ROW_DESCRIPTION: usize = 72;
const MAX_LIST_BUTTON: usize = 20;
const MAX_CAPTION: usize = 1024;

/// Render one message as the Graph API calls that send it, in order.
pub fn render(ch: &ChannelConfig, msg: &OutboundMessage) -> Result<Vec<HttpCall>, ConnectorError> {
    let settings = Settings::from_value(&ch.settings)?;
    let url = format!(
        "{}/{}/messages",
        ch.api_base_url.trim_end_matches('/'),
        settings.phone_number_id
    );
    let call = |body: Value| HttpCall {
        method: HttpMethod::Post,
        url: url.clone(),
        headers: vec![
            (
                "authorization".into(),
                format!("Bearer {}", settings.access_token),
            ),
            ("content-type".into(), "application/json".into()),
        ],
        body: body.to_string().into_bytes(),
        form: Vec::new(),
    };
    let free_form = matches!(
        msg.body,
        OutboundBody::Text { .. }
            | OutboundBody::Media { .. }
            | OutboundBody::File { .. }
            | OutboundBody::Interactive { .. }
    );
    if free_form
        && !msg
            .context
            .within(chrono::Duration::hours(SERVICE_WINDOW_HOURS))
    {
        if let Some(fallback) = &msg.context.fallback
            && let OutboundBody::Template {
                name,
                language,
                parameters,
            } = fallback.as_ref()
        {
            return Ok(vec![call(template_body(
                &msg.to, name, language, parameters,
            ))]);
        }
        let Some(template) = &settings.fallback_template else {
            return Err(ConnectorError::Held(
                "outside WhatsApp's 24-hour window since the contact's last message, and the \
                 channel has no fallback_template: held until they write again or it is resent"
                    .into(),
            ));
        };
        return Ok(vec![call(template_body(
            &msg.to,
            &template.name,
            &template.language,
            &[],
        ))]);
    }
    let bodies = match &msg.body {
        OutboundBody::Text { text } => text_bodies(&msg.to, text),
        OutboundBody::Media {
            media,
            url,
            caption,
            filename,
        } => {
            let kind = match media {
                MediaKind::Image => "image",
                MediaKind::Audio | MediaKind::Voice => "audio",
                MediaKind::Video => "video",
                MediaKind::Document => "document",
                MediaKind::Sticker => "sticker",
            };
            let mut object = json!({ "link": url });
            let captioned = matches!(kind, "image" | "video" | "document");
            if let (true, Some(c)) = (captioned, caption) {
                object["caption"] = Value::from(truncate(c, MAX_CAPTION));
            }
            if let (MediaKind::Document, Some(f)) = (media, filename) {
                object["filename"] = Value::from(f.as_str());
            }
            let mut bodies = vec![json!({
                "messaging_product": "whatsapp", "recipient_type": "individual",
                "to": msg.to, "type": kind, kind: object,
            })];
            // Audio and stickers have no caption: the text follows as its own message.
            if let (false, Some(c)) = (captioned, caption) {
                bodies.extend(text_bodies(&msg.to, c));
            }
            bodies
        }
        OutboundBody::File {
            media,
            filename,
            caption,
            uploaded,
            ..
        } => {
            let Some(id) = uploaded else {
                return Err(ConnectorError::BadRequest(
                    "a file is sent by its uploaded media id: upload it first".into(),
                ));
            };
            file_bodies(&msg.to, *media, id, filename, caption.as_deref())
        }
        OutboundBody::Interactive { text, interactive } => {
            interactive_bodies(&msg.to, text, interactive)
        }
        OutboundBody::Template {
            name,
            language,
            parameters,
        } => vec![template_body(&msg.to, name, language, parameters)],
        OutboundBody::MarkRead {
            provider_message_id,
        } => vec![read_body(provider_message_id)],
        // WhatsApp shows "typing" only together with a read receipt of the message answered.
        OutboundBody::Typing => match &msg.reply_to {
            Some(id) => vec![read_body(id)],
            None => Vec::new(),
        },
    };
    let mut calls: Vec<HttpCall> = bodies.into_iter().map(call).collect();
    // Quote the message answered on the first part.
    if let (Some(reply_to), Some(first)) = (&msg.reply_to, calls.first_mut())
        && !msg.body.is_signal()
        && let Ok(mut body) = serde_json::from_slice::<Value>(&first.body)
    {
        body["context"] = json!({ "message_id": reply_to });
        first.body = body.to_string().into_bytes();
    }
    Ok(calls)
}

/// A library file sent by its media id: documents keep their name, images, videos and
/// documents their caption; audio has none (and a caption over 1,024 characters does not fit),
/// so it follows as text.
fn file_bodies(
    to: &str,
    media: MediaKind,
    id: &str,
    filename: &str,
    caption: Option<&str>,
) -> Vec<Value> {
    let kind = match media {
        MediaKind::Image | MediaKind::Sticker => "image",
        MediaKind::Audio | MediaKind::Voice => "audio",
        MediaKind::Video => "video",
        MediaKind::Document => "document",
    };
    let mut object = json!({ "id": id });
    // A caption longer than Graph takes follows as text, whole.
    let captioned = kind != "audio" && caption.is_none_or(|c| c.chars().count() <= MAX_CAPTION);
    if let (true, Some(c)) = (captioned, caption) {
        object["caption"] = Value::from(c);
    }
    if kind == "document" {
        object["filename"] = Value::from(filename);
    }
    let mut bodies = vec![json!({
        "messaging_product": "whatsapp", "recipient_type": "individual",
        "to": to, "type": kind, kind: object,
    })];
    if let (false, Some(c)) = (captioned, caption) {
        bodies.extend(text_bodies(to, c));
    }
    bodies
}

/// Graph's media upload (`POST /{phone-number-id}/media`, a multipart form with the file, its
/// type and `messaging_product`), answered with the media id messages then name.
pub fn upload(
    ch: &ChannelConfig,
    msg: &OutboundMessage,
) -> Result<Option<HttpCall>, ConnectorError> {
    let OutboundBody::File {
        mime,
        filename,
        data: Some(data),
        ..
    } = &msg.body
    else {
        return Ok(None);
    };
    let settings = Settings::from_value(&ch.settings)?;
    Ok(Some(HttpCall {
        method: HttpMethod::Post,
        url: format!(
            "{}/{}/media",
            ch.api_base_url.trim_end_matches('/'),
            settings.phone_number_id
        ),
        headers: vec![(
            "authorization".into(),
            format!("Bearer {}", settings.access_token),
        )],
        body: Vec::new(),
        form: vec![
            FormPart::text("messaging_product", "whatsapp"),
            FormPart::text("type", mime),
            FormPart::file("file", data.clone(), filename, mime),
        ],
    }))
}

/// The media id in the upload's answer (`{"id": "..."}`).
pub fn uploaded(call: &HttpCall, resp: &HttpResponse) -> Result<String, SendOutcome> {
    let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    match body.get("id").and_then(Value::as_str) {
        Some(id) if (200..300).contains(&resp.status) && !id.is_empty() => Ok(id.to_owned()),
        _ => Err(match outcome(call, resp) {
            SendOutcome::Sent { .. } => SendOutcome::Failed {
                code: "upload".into(),
                message: "the media upload's answer has no id".into(),
            },
            other => other,
        }),
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn text_bodies(to: &str, text: &str) -> Vec<Value> {
    split_text(text, MAX_TEXT)
        .into_iter()
        .map(|part| {
            json!({
                "messaging_product": "whatsapp", "recipient_type": "individual",
                "to": to, "type": "text", "text": { "body": part, "preview_url": false },
            })
        })
        .collect()
}

fn read_body(message_id: &str) -> Value {
    json!({
        "messaging_product": "whatsapp", "status": "read", "message_id": message_id,
        "typing_indicator": { "type": "text" },
    })
}

fn template_body(to: &str, name: &str, language: &str, parameters: &[String]) -> Value {
    let mut template = json!({ "name": name, "language": { "code": language } });
    if !parameters.is_empty() {
        let params: Vec<Value> = parameters
            .iter()
            .map(|p| json!({ "type": "text", "text": p }))
            .collect();
        template["components"] = json!([{ "type": "body", "parameters": params }]);
    }
    json!({
        "messaging_product": "whatsapp", "recipient_type": "individual",
        "to": to, "type": "template", "template": template,
    })
}

fn fits(choices: &[Choice], max: usize, title: usize) -> bool {
    !choices.is_empty()
        && choices.len() <= max
        && choices.iter().all(|c| {
            !c.title.trim().is_empty() && c.title.chars().count() <= title && c.id.len() <= 200
        })
}

/// Reply buttons when they fit (at most 3, titles of at most 20 characters), else a list (at
/// most 10 rows of 24 characters), else the text with a numbered menu.
fn interactive_bodies(to: &str, text: &str, interactive: &Interactive) -> Vec<Value> {
    let (choices, button) = match interactive {
        Interactive::Buttons { choices } => (choices, None),
        Interactive::List { button, choices } => (choices, Some(button.as_str())),
    };
    let body_fits = !text.trim().is_empty() && text.chars().count() <= MAX_INTERACTIVE_BODY;
    let envelope = |interactive: Value| {
        json!({
            "messaging_product": "whatsapp", "recipient_type": "individual",
            "to": to, "type": "interactive", "interactive": interactive,
        })
    };
    if body_fits && button.is_none() && fits(choices, MAX_BUTTONS, MAX_BUTTON_TITLE) {
        let buttons: Vec<Value> = choices
            .iter()
            .map(|c| json!({ "type": "reply", "reply": { "id": c.id, "title": c.title } }))
            .collect();
        return vec![envelope(json!({
            "type": "button", "body": { "text": text }, "action": { "buttons": buttons },
        }))];
    }
    if body_fits && fits(choices, MAX_ROWS, MAX_ROW_TITLE) {
        let rows: Vec<Value> = choices
            .iter()
            .map(|c| {
                let mut row = json!({ "id": c.id, "title": c.title });
                if let Some(d) = &c.description {
                    row["description"] = Value::from(truncate(d, MAX_ROW_DESCRIPTION));
                }
                row
            })
            .collect();
        let label = truncate(button.unwrap_or("Choose"), MAX_LIST_BUTTON);
        return vec![envelope(json!({
            "type": "list", "body": { "text": text },
            "action": { "button": label, "sections": [{ "title": truncate(&label, 24), "rows": rows }] },
        }))];
    }
    text_bodies(to, &numbered_menu(text, choices))
}

/// Judge the Graph API's answer to one call.
pub fn outcome(_call: &HttpCall, resp: &HttpResponse) -> SendOutcome {
    let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    if (200..300).contains(&resp.status) {
        return SendOutcome::Sent {
            provider_message_id: body
                .pointer("/messages/0/id")
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
    }
    let code = body.pointer("/error/code").and_then(Value::as_i64);
    let message = body
        .pointer("/error/error_data/details")
        .or_else(|| body.pointer("/error/message"))
        .and_then(Value::as_str)
        .unwrap_or("no error message")
        .to_owned();
    let after = retry_after(resp);
    match code {
        // Throughput and pair rate limits, application and account limits, temporary trouble.
        Some(130429 | 131056 | 4 | 80007 | 1 | 2 | 131000 | 131016) => SendOutcome::Retry {
            after,
            reason: format!("Graph API {}: {message}", code.unwrap_or_default()),
        },
        Some(code) if resp.status != 429 && resp.status < 500 => SendOutcome::Failed {
            code: code.to_string(),
            message,
        },
        _ if resp.status == 429 || resp.status >= 500 || resp.status == 408 => SendOutcome::Retry {
            after,
            reason: format!("Graph API HTTP {}: {message}", resp.status),
        },
        _ => SendOutcome::Failed {
            code: format!("http_{}", resp.status),
            message,
        },
    }
}

fn retry_after(resp: &HttpResponse) -> Option<Duration> {
    resp.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Media step one: the media id's metadata (`GET /{media-id}`), which holds a short-lived URL.
pub fn media_request(ch: &ChannelConfig, media_ref: &str) -> Result<HttpCall, ConnectorError> {
    let settings = Settings::from_value(&ch.settings)?;
    if media_ref.is_empty() || !media_ref.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ConnectorError::BadRequest(format!(
            "media id {media_ref:?} is not a Graph API id"
        )));
    }
    Ok(HttpCall {
        method: HttpMethod::Get,
        url: format!("{}/{media_ref}", ch.api_base_url.trim_end_matches('/')),
        headers: vec![(
            "authorization".into(),
            format!("Bearer {}", settings.access_token),
        )],
        body: Vec::new(),
        form: Vec::new(),
    })
}

/// Media step two: download the URL the metadata named, with the same token (it expires after
/// about five minutes, so the gateway fetches media at once).
pub fn media_next(ch: &ChannelConfig, first: &HttpResponse) -> Result<HttpCall, ConnectorError> {
    let settings = Settings::from_value(&ch.settings)?;
    let body: Value = serde_json::from_slice(&first.body).unwrap_or(Value::Null);
    let url = body
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| media_host_allowed(u, &ch.api_base_url))
        .ok_or_else(|| {
            ConnectorError::BadRequest(format!(
                "media metadata (HTTP {}) has no download URL on Meta's servers",
                first.status
            ))
        })?;
    Ok(HttpCall {
        method: HttpMethod::Get,
        url: url.to_owned(),
        headers: vec![(
            "authorization".into(),
            format!("Bearer {}", settings.access_token),
        )],
        body: Vec::new(),
        form: Vec::new(),
    })
}

/// The access token goes only to Meta's media hosts over HTTPS, or to the configured API host.
/// URLs are read as the HTTP client reads them (WHATWG parsing, `url` crate), so a crafted one
/// (`https://x.example\\@fbcdn.net/`, user info, odd ports) cannot name one host here and reach
/// another.
fn media_host_allowed(url: &str, api_base_url: &str) -> bool {
    let Ok(target) = url::Url::parse(url) else {
        return false;
    };
    if !target.username().is_empty() || target.password().is_some() {
        return false;
    }
    let Some(host) = target.host_str() else {
        return false;
    };
    let api = url::Url::parse(api_base_url).ok();
    if api.as_ref().is_some_and(|api| {
        api.host_str() == Some(host)
            && api.port_or_known_default() == target.port_or_known_default()
            && api.scheme() == target.scheme()
    }) {
        return true;
    }
    target.scheme() == "https"
        && target.port().is_none()
        && ["fbsbx.com", "facebook.com", "whatsapp.net", "fbcdn.net"]
            .iter()
            .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}
