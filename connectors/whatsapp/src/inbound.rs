//! Webhooks: the verification handshake (GET), the signature over the raw body, and every
//! entry, change, message, status and error of a POST.

use chrono::{DateTime, Utc};
use coach_connector_api::{
    ChannelConfig, ChannelIdentity, ContactCard, Content, DedupKey, DeliveryStatus, HttpMethod,
    HttpRequest, HttpResponse, Inbound, InboundEvent, InboundMessage, MediaKind, ProviderError,
    StatusUpdate, UnknownEvent,
};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Settings;
use coach_connector_api::ConnectorError;

/// Handle one webhook request of a channel.
pub fn handle(ch: &ChannelConfig, req: &HttpRequest) -> Result<Inbound, ConnectorError> {
    let settings = Settings::from_value(&ch.settings)?;
    match req.method {
        Some(HttpMethod::Get) => verify_subscription(&settings, &req.query),
        _ => {
            verify_signature(&settings.app_secret, req)?;
            parse(&settings.phone_number_id, &req.body)
        }
    }
}

/// Answer Meta's subscription handshake: echo `hub.challenge` when `hub.verify_token` matches.
pub fn verify_subscription(settings: &Settings, query: &str) -> Result<Inbound, ConnectorError> {
    let mut mode = None;
    let mut token = None;
    let mut challenge = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "hub.mode" => mode = Some(v.into_owned()),
            "hub.verify_token" => token = Some(v.into_owned()),
            "hub.challenge" => challenge = Some(v.into_owned()),
            _ => {}
        }
    }
    if mode.as_deref() != Some("subscribe") {
        return Err(ConnectorError::BadRequest(
            "hub.mode: expected \"subscribe\"".into(),
        ));
    }
    let challenge =
        challenge.ok_or_else(|| ConnectorError::BadRequest("hub.challenge: missing".into()))?;
    let given = token.unwrap_or_default();
    if !constant_time_eq(given.as_bytes(), settings.verify_token.as_bytes()) {
        return Err(ConnectorError::Forbidden(
            "hub.verify_token does not match this channel's verify_token".into(),
        ));
    }
    Ok(Inbound {
        events: Vec::new(),
        response: Some(HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: challenge.into_bytes(),
        }),
        refused: Vec::new(),
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Digests first: equal lengths, so the comparison time says nothing about the token.
    bool::from(Sha256::digest(a).ct_eq(&Sha256::digest(b)))
}

/// Check `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw body with the app
/// secret, in constant time. Hex may be either case; the `sha256=` prefix is required.
pub fn verify_signature(app_secret: &str, req: &HttpRequest) -> Result<(), ConnectorError> {
    let header = req
        .header("x-hub-signature-256")
        .ok_or_else(|| ConnectorError::Unauthorized("X-Hub-Signature-256: missing".into()))?;
    let hex_sig = header.trim().strip_prefix("sha256=").ok_or_else(|| {
        ConnectorError::Unauthorized("X-Hub-Signature-256: expected \"sha256=<hex>\"".into())
    })?;
    let sig = hex::decode(hex_sig)
        .map_err(|_| ConnectorError::Unauthorized("X-Hub-Signature-256: not hex".into()))?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(app_secret.as_bytes())
        .map_err(|_| ConnectorError::Config("app_secret: unusable".into()))?;
    mac.update(&req.body);
    mac.verify_slice(&sig).map_err(|_| {
        ConnectorError::Unauthorized(
            "X-Hub-Signature-256 does not match the body signed with this channel's app secret"
                .into(),
        )
    })
}

/// Parse a (verified) webhook body. Entries addressed to another phone number id are refused
/// (reported in [`Inbound::refused`]), never turned into events.
pub fn parse(phone_number_id: &str, body: &[u8]) -> Result<Inbound, ConnectorError> {
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| ConnectorError::BadRequest(format!("body is not JSON: {e}")))?;
    if root.get("object").and_then(Value::as_str) != Some("whatsapp_business_account") {
        return Err(ConnectorError::BadRequest(
            "object: expected \"whatsapp_business_account\"".into(),
        ));
    }
    let entries = root
        .get("entry")
        .and_then(Value::as_array)
        .ok_or_else(|| ConnectorError::BadRequest("entry: expected an array".into()))?;
    let mut out = Inbound::default();
    for entry in entries {
        let Some(changes) = entry.get("changes").and_then(Value::as_array) else {
            return Err(ConnectorError::BadRequest(
                "entry[].changes: expected an array".into(),
            ));
        };
        for change in changes {
            parse_change(phone_number_id, entry, change, &mut out);
        }
    }
    Ok(out)
}

fn parse_change(phone_number_id: &str, entry: &Value, change: &Value, out: &mut Inbound) {
    let field = change.get("field").and_then(Value::as_str).unwrap_or("");
    let value = change.get("value").unwrap_or(&Value::Null);
    let addressed = value
        .pointer("/metadata/phone_number_id")
        .and_then(Value::as_str);
    if field != "messages" && addressed.is_none() {
        // Account-level notifications (template status, quality...) name no number: with a
        // shared app they may be another tenant's, so they are refused, never stored.
        out.refused.push(format!(
            "account-level change {:?} of entry {} (names no phone number)",
            field_or(field, "change"),
            entry.get("id").and_then(Value::as_str).unwrap_or("?")
        ));
        return;
    }
    if addressed != Some(phone_number_id) {
        out.refused.push(format!(
            "entry {} addressed to phone_number_id {:?}, not this channel's",
            entry.get("id").and_then(Value::as_str).unwrap_or("?"),
            addressed.unwrap_or("(none)")
        ));
        return;
    }
    if field != "messages" {
        // Other fields of this number (message echoes, history...): kept whole.
        out.events
            .push(unknown(field_or(field, "change"), None, change));
        return;
    }
    let contacts = value
        .get("contacts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for message in array(value, "messages") {
        out.events.push(parse_message(message, contacts));
    }
    for status in array(value, "statuses") {
        out.events.push(parse_status(status));
    }
    for error in array(value, "errors") {
        out.events.push(unknown("error", None, error));
    }
}

fn field_or<'a>(field: &'a str, default: &'a str) -> &'a str {
    if field.is_empty() { default } else { field }
}

fn array<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn owned(value: &Value, pointer: &str) -> Option<String> {
    str_at(value, pointer).map(str::to_owned)
}

/// The event for a payload part we keep but do not map: its own content hash as the dedup key,
/// so the same part delivered twice is stored once.
fn unknown(kind: &str, from: Option<ChannelIdentity>, raw: &Value) -> InboundEvent {
    let digest = Sha256::digest(raw.to_string().as_bytes());
    InboundEvent::Unknown(UnknownEvent {
        dedup_key: DedupKey(format!("{kind}:{}", hex::encode(&digest[..16]))),
        kind: kind.to_owned(),
        from,
        raw: raw.clone(),
    })
}

fn timestamp(value: &Value) -> DateTime<Utc> {
    let secs = match value.get("timestamp") {
        Some(Value::String(s)) => s.parse::<i64>().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    };
    secs.and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// The sender: `wa_id` (the `from` field), or the user id of a username-only user, with the
/// profile name from the `contacts` block that matches.
fn sender(message: &Value, contacts: &[Value]) -> Option<ChannelIdentity> {
    let id = owned(message, "/from")
        .or_else(|| owned(message, "/from_user_id"))
        .filter(|id| !id.is_empty())?;
    let contact = contacts.iter().find(|c| {
        str_at(c, "/wa_id") == Some(id.as_str()) || str_at(c, "/user_id") == Some(id.as_str())
    });
    Some(ChannelIdentity {
        display_name: contact.and_then(|c| owned(c, "/profile/name")),
        username: contact.and_then(|c| owned(c, "/profile/username")),
        id,
    })
}

fn parse_message(message: &Value, contacts: &[Value]) -> InboundEvent {
    let kind = str_at(message, "/type").unwrap_or("unknown");
    let from = sender(message, contacts);
    let id = str_at(message, "/id").filter(|id| !id.is_empty());
    let (Some(from), Some(id)) = (from.clone(), id) else {
        return unknown(kind, from, message);
    };
    let Some(content) = content(kind, message) else {
        return unknown(kind, Some(from), message);
    };
    InboundEvent::Message(InboundMessage {
        dedup_key: DedupKey(id.to_owned()),
        provider_message_id: id.to_owned(),
        from,
        timestamp: timestamp(message),
        content,
        reply_to: owned(message, "/context/id"),
    })
}

fn media(message: &Value, kind: &str, media: MediaKind) -> Option<Content> {
    let m = message.get(kind)?;
    Some(Content::Media {
        media,
        media_ref: owned(m, "/id")?,
        mime: owned(m, "/mime_type"),
        size: m.get("file_size").and_then(Value::as_u64),
        caption: owned(m, "/caption"),
        filename: owned(m, "/filename"),
    })
}

fn content(kind: &str, message: &Value) -> Option<Content> {
    Some(match kind {
        "text" => Content::Text {
            body: owned(message, "/text/body")?,
        },
        "image" => media(message, "image", MediaKind::Image)?,
        "video" => media(message, "video", MediaKind::Video)?,
        "document" => media(message, "document", MediaKind::Document)?,
        "sticker" => media(message, "sticker", MediaKind::Sticker)?,
        "audio" => {
            let voice = message.pointer("/audio/voice").and_then(Value::as_bool) == Some(true);
            media(
                message,
                "audio",
                if voice {
                    MediaKind::Voice
                } else {
                    MediaKind::Audio
                },
            )?
        }
        "voice" => media(message, "voice", MediaKind::Voice)?,
        "location" => Content::Location {
            latitude: message.pointer("/location/latitude")?.as_f64()?,
            longitude: message.pointer("/location/longitude")?.as_f64()?,
            name: owned(message, "/location/name"),
            address: owned(message, "/location/address"),
        },
        "contacts" => Content::Contacts {
            cards: message
                .get("contacts")?
                .as_array()?
                .iter()
                .map(|c| ContactCard {
                    name: owned(c, "/name/formatted_name").unwrap_or_default(),
                    phones: array(c, "phones")
                        .iter()
                        .filter_map(|p| owned(p, "/phone").or_else(|| owned(p, "/wa_id")))
                        .collect(),
                    emails: array(c, "emails")
                        .iter()
                        .filter_map(|e| owned(e, "/email"))
                        .collect(),
                })
                .collect(),
        },
        "interactive" => {
            let reply = match str_at(message, "/interactive/type")? {
                "button_reply" => message.pointer("/interactive/button_reply")?,
                "list_reply" => message.pointer("/interactive/list_reply")?,
                _ => return None,
            };
            Content::InteractiveReply {
                id: owned(reply, "/id")?,
                title: owned(reply, "/title").unwrap_or_default(),
            }
        }
        // A tap on a template's quick-reply button.
        "button" => Content::InteractiveReply {
            id: owned(message, "/button/payload")?,
            title: owned(message, "/button/text").unwrap_or_default(),
        },
        "reaction" => Content::Reaction {
            to_message: owned(message, "/reaction/message_id")?,
            emoji: owned(message, "/reaction/emoji").filter(|e| !e.is_empty()),
        },
        // Click-to-WhatsApp ads send a text message with a `referral` block (kept in the
        // message's raw form only through `Unknown` when it has no text).
        "request_welcome" | "order" | "system" | "unsupported" | "unknown" => return None,
        _ => return None,
    })
}

fn parse_status(status: &Value) -> InboundEvent {
    let id = str_at(status, "/id").filter(|s| !s.is_empty());
    let reported = str_at(status, "/status").unwrap_or("");
    let mapped = match reported {
        "sent" => Some(DeliveryStatus::Sent),
        "delivered" => Some(DeliveryStatus::Delivered),
        "read" => Some(DeliveryStatus::Read),
        "failed" => Some(DeliveryStatus::Failed),
        _ => None,
    };
    let (Some(id), Some(mapped)) = (id, mapped) else {
        return unknown(
            &format!("status_{}", field_or(reported, "unknown")),
            None,
            status,
        );
    };
    let error = status
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
        .map(|e| ProviderError {
            code: match e.get("code") {
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::String(s)) => s.clone(),
                _ => "unknown".into(),
            },
            title: owned(e, "/title")
                .or_else(|| owned(e, "/message"))
                .unwrap_or_default(),
        });
    InboundEvent::Status(StatusUpdate {
        dedup_key: DedupKey(format!("status:{id}:{reported}")),
        provider_message_id: id.to_owned(),
        status: mapped,
        timestamp: timestamp(status),
        recipient: owned(status, "/recipient_id"),
        error,
    })
}
