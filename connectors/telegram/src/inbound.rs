//! Updates: the secret-token check, and every kind of update mapped to normalized events.

use chrono::{DateTime, Utc};
use coach_connector_api::{
    ChannelConfig, ChannelIdentity, ConnectorError, ContactCard, Content, DedupKey, HttpCall,
    HttpMethod, HttpRequest, HttpResponse, Inbound, InboundEvent, InboundMessage, MediaKind,
    UnknownEvent,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Settings;

/// The header Telegram sends the webhook's secret in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Handle one webhook call: the exact secret token, then one update.
pub fn handle(ch: &ChannelConfig, req: &HttpRequest) -> Result<Inbound, ConnectorError> {
    let settings = Settings::from_value(&ch.settings)?;
    let expected = settings.secret_token.as_deref().ok_or_else(|| {
        ConnectorError::Config("secret_token: missing (recreate the channel)".into())
    })?;
    let given = req.header(SECRET_HEADER).unwrap_or("");
    let same = Sha256::digest(given.as_bytes()).ct_eq(&Sha256::digest(expected.as_bytes()));
    if !bool::from(same) {
        return Err(ConnectorError::Unauthorized(
            "X-Telegram-Bot-Api-Secret-Token does not match this channel's secret".into(),
        ));
    }
    let update: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ConnectorError::BadRequest(format!("body is not JSON: {e}")))?;
    let mut inbound = Inbound::default();
    let event = parse_update(&update)?;
    // A button tap is acknowledged in the webhook's own answer, which Telegram executes.
    if let Some(id) = update.pointer("/callback_query/id").and_then(Value::as_str) {
        inbound.response = Some(HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: json!({ "method": "answerCallbackQuery", "callback_query_id": id })
                .to_string()
                .into_bytes(),
        });
    }
    inbound.events.extend(event);
    Ok(inbound)
}

/// The `getUpdates` long-poll call of polling mode, from `offset` (the last update id + 1).
pub fn get_updates_call(
    ch: &ChannelConfig,
    offset: Option<i64>,
    timeout_secs: u32,
) -> Result<HttpCall, ConnectorError> {
    let settings = Settings::from_value(&ch.settings)?;
    let mut body =
        json!({ "timeout": timeout_secs, "allowed_updates": crate::outbound::ALLOWED_UPDATES });
    if let Some(offset) = offset {
        body["offset"] = json!(offset);
    }
    Ok(HttpCall {
        method: HttpMethod::Post,
        url: settings.method_url(&ch.api_base_url, "getUpdates"),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
        form: Vec::new(),
    })
}

/// A `getUpdates` answer: the events of every update, the callback queries to answer, and the
/// offset that confirms them (the highest `update_id` + 1).
pub fn parse_updates(body: &[u8]) -> Result<PolledUpdates, ConnectorError> {
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| ConnectorError::BadRequest(format!("getUpdates answer is not JSON: {e}")))?;
    if root.get("ok").and_then(Value::as_bool) != Some(true) {
        return Err(ConnectorError::BadRequest(format!(
            "getUpdates failed: {}",
            root.get("description")
                .and_then(Value::as_str)
                .unwrap_or("no description")
        )));
    }
    let updates = root
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| ConnectorError::BadRequest("getUpdates: result is not a list".into()))?;
    let mut polled = PolledUpdates::default();
    for update in updates {
        let id = update.get("update_id").and_then(Value::as_i64);
        polled.next_offset = polled.next_offset.max(id.map(|i| i + 1));
        polled.events.extend(parse_update(update)?);
        if let Some(q) = update.pointer("/callback_query/id").and_then(Value::as_str) {
            polled.callback_queries.push(q.to_owned());
        }
    }
    Ok(polled)
}

/// What one `getUpdates` answer held.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolledUpdates {
    /// The events, in update order.
    pub events: Vec<InboundEvent>,
    /// Callback queries to acknowledge (`answerCallbackQuery`).
    pub callback_queries: Vec<String>,
    /// The next `offset`, when there were updates.
    pub next_offset: Option<i64>,
}

/// One update as events: none for a group message not addressed to the bot.
pub fn parse_update(update: &Value) -> Result<Option<InboundEvent>, ConnectorError> {
    let update_id = update
        .get("update_id")
        .and_then(Value::as_i64)
        .ok_or_else(|| ConnectorError::BadRequest("update_id: missing".into()))?;
    let fallback = |kind: &str, from: Option<ChannelIdentity>| {
        InboundEvent::Unknown(UnknownEvent {
            dedup_key: DedupKey(format!("update:{update_id}")),
            kind: kind.to_owned(),
            from,
            raw: update.clone(),
        })
    };
    if let Some(message) = update.get("message") {
        if !addressed_to_bot(message) {
            return Ok(None);
        }
        return Ok(Some(
            parse_message(message, None).unwrap_or_else(|| fallback("message", identity(message))),
        ));
    }
    if let Some(message) = update.get("edited_message") {
        if !addressed_to_bot(message) {
            return Ok(None);
        }
        let edit = message
            .get("edit_date")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        return Ok(Some(
            parse_message(message, Some(edit))
                .unwrap_or_else(|| fallback("edited_message", identity(message))),
        ));
    }
    if let Some(query) = update.get("callback_query") {
        return Ok(Some(
            parse_callback(query).unwrap_or_else(|| fallback("callback_query", None)),
        ));
    }
    if let Some(reaction) = update.get("message_reaction") {
        return Ok(Some(
            parse_reaction(reaction, update_id)
                .unwrap_or_else(|| fallback("message_reaction", None)),
        ));
    }
    if let Some(member) = update.get("my_chat_member") {
        let status = member
            .pointer("/new_chat_member/status")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = match status {
            "kicked" => "blocked",
            "member" => "unblocked",
            _ => "my_chat_member",
        };
        return Ok(Some(fallback(kind, identity(member))));
    }
    let kind = update
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "update_id").cloned())
        .unwrap_or_else(|| "empty".into());
    Ok(Some(fallback(&kind, None)))
}

/// Private chats always; in groups, commands, mentions and replies to the bot.
fn addressed_to_bot(message: &Value) -> bool {
    let chat_type = message
        .pointer("/chat/type")
        .and_then(Value::as_str)
        .unwrap_or("private");
    if chat_type == "private" {
        return true;
    }
    let entities = message
        .get("entities")
        .or_else(|| message.get("caption_entities"))
        .and_then(Value::as_array);
    let mentioned = entities.is_some_and(|es| {
        es.iter().any(|e| {
            matches!(
                e.get("type").and_then(Value::as_str),
                Some("bot_command" | "mention" | "text_mention")
            )
        })
    });
    let replies_to_bot = message
        .pointer("/reply_to_message/from/is_bot")
        .and_then(Value::as_bool)
        == Some(true);
    mentioned || replies_to_bot
}

/// The person (their id is the chat id we answer in) with their names.
fn identity(message: &Value) -> Option<ChannelIdentity> {
    let chat = message.pointer("/chat/id").and_then(Value::as_i64);
    let from = message.get("from");
    let id = chat.or_else(|| from?.get("id")?.as_i64())?;
    let name = from.map(|f| {
        [f.get("first_name"), f.get("last_name")]
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    });
    Some(ChannelIdentity {
        id: id.to_string(),
        display_name: name.filter(|n| !n.is_empty()),
        username: from
            .and_then(|f| f.get("username"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

fn owned(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn media(message: &Value, key: &str, kind: MediaKind) -> Option<Content> {
    let file = match message.get(key)? {
        // Photos come in several sizes: the last is the largest.
        Value::Array(sizes) => sizes.last()?,
        one => one,
    };
    Some(Content::Media {
        media: kind,
        media_ref: owned(file, "file_id")?,
        mime: owned(file, "mime_type").or_else(|| (key == "photo").then(|| "image/jpeg".into())),
        size: file.get("file_size").and_then(Value::as_u64),
        caption: owned(message, "caption"),
        filename: owned(file, "file_name"),
    })
}

fn content(message: &Value) -> Option<Content> {
    if let Some(text) = owned(message, "text") {
        return Some(Content::Text { body: text });
    }
    for (key, kind) in [
        ("photo", MediaKind::Image),
        ("document", MediaKind::Document),
        ("voice", MediaKind::Voice),
        ("audio", MediaKind::Audio),
        ("video", MediaKind::Video),
        ("video_note", MediaKind::Video),
        ("animation", MediaKind::Video),
        ("sticker", MediaKind::Sticker),
    ] {
        if message.get(key).is_some() {
            return media(message, key, kind);
        }
    }
    if let Some(venue) = message.get("venue") {
        return Some(Content::Location {
            latitude: venue.pointer("/location/latitude")?.as_f64()?,
            longitude: venue.pointer("/location/longitude")?.as_f64()?,
            name: owned(venue, "title"),
            address: owned(venue, "address"),
        });
    }
    if let Some(location) = message.get("location") {
        return Some(Content::Location {
            latitude: location.get("latitude")?.as_f64()?,
            longitude: location.get("longitude")?.as_f64()?,
            name: None,
            address: None,
        });
    }
    if let Some(contact) = message.get("contact") {
        let name = [contact.get("first_name"), contact.get("last_name")]
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        return Some(Content::Contacts {
            cards: vec![ContactCard {
                name,
                phones: owned(contact, "phone_number").into_iter().collect(),
                emails: Vec::new(),
            }],
        });
    }
    None
}

fn parse_message(message: &Value, edited: Option<i64>) -> Option<InboundEvent> {
    let from = identity(message)?;
    let message_id = message.get("message_id")?.as_i64()?;
    let content = content(message)?;
    let key = match edited {
        Some(at) => format!("{}:{message_id}:edit:{at}", from.id),
        None => format!("{}:{message_id}", from.id),
    };
    let at = edited
        .or_else(|| message.get("date").and_then(Value::as_i64))
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .unwrap_or(DateTime::UNIX_EPOCH);
    Some(InboundEvent::Message(InboundMessage {
        dedup_key: DedupKey(key),
        provider_message_id: message_id.to_string(),
        from,
        timestamp: at,
        content,
        reply_to: message
            .pointer("/reply_to_message/message_id")
            .and_then(Value::as_i64)
            .map(|id| id.to_string()),
    }))
}

/// A reaction to a message (`message_reaction`): the first emoji of the new reactions, or none
/// when they were all removed. Anonymous (channel) reactions have no user and are not ours.
fn parse_reaction(reaction: &Value, update_id: i64) -> Option<InboundEvent> {
    let chat = reaction.pointer("/chat/id").and_then(Value::as_i64)?;
    let user = reaction.get("user")?;
    let to_message = reaction.get("message_id").and_then(Value::as_i64)?;
    let emoji = reaction
        .get("new_reaction")
        .and_then(Value::as_array)
        .and_then(|all| {
            all.iter()
                .find_map(|r| r.get("emoji").and_then(Value::as_str))
        })
        .map(str::to_owned);
    Some(InboundEvent::Message(InboundMessage {
        dedup_key: DedupKey(format!("update:{update_id}")),
        provider_message_id: format!("reaction:{update_id}"),
        from: ChannelIdentity {
            id: chat.to_string(),
            display_name: owned(user, "first_name"),
            username: owned(user, "username"),
        },
        timestamp: reaction
            .get("date")
            .and_then(Value::as_i64)
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .unwrap_or(DateTime::UNIX_EPOCH),
        content: Content::Reaction {
            to_message: to_message.to_string(),
            emoji,
        },
        reply_to: Some(to_message.to_string()),
    }))
}

fn parse_callback(query: &Value) -> Option<InboundEvent> {
    let id = owned(query, "id")?;
    let data = owned(query, "data")?;
    // The chat of the message with the keyboard; inline-mode messages have none, and a
    // private chat's id is the user's id.
    let chat = query
        .pointer("/message/chat/id")
        .or_else(|| query.pointer("/from/id"))
        .and_then(Value::as_i64)?;
    let from = query.get("from");
    let title = query
        .pointer("/message/reply_markup/inline_keyboard")
        .and_then(Value::as_array)
        .and_then(|rows| {
            rows.iter()
                .filter_map(Value::as_array)
                .flatten()
                .find(|b| b.get("callback_data").and_then(Value::as_str) == Some(data.as_str()))
        })
        .and_then(|b| owned(b, "text"))
        .unwrap_or_else(|| data.clone());
    Some(InboundEvent::Message(InboundMessage {
        dedup_key: DedupKey(format!("callback:{id}")),
        provider_message_id: id,
        from: ChannelIdentity {
            id: chat.to_string(),
            display_name: from.and_then(|f| owned(f, "first_name")),
            username: from.and_then(|f| owned(f, "username")),
        },
        timestamp: query
            .pointer("/message/date")
            .and_then(Value::as_i64)
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .unwrap_or(DateTime::UNIX_EPOCH),
        content: Content::InteractiveReply { id: data, title },
        reply_to: query
            .pointer("/message/message_id")
            .and_then(Value::as_i64)
            .map(|id| id.to_string()),
    }))
}
