//! A stored message as the widget shows it ([`wire`]), with its file's signed link
//! ([`FileLinks`], served by `file.rs`).

use coach_connector_api::{ChannelId, Content, Interactive, OutboundBody};
use coach_web_widget::frames::{WireChoice, WireFile, WireMessage};
use coach_web_widget::identity::{FILE_LINK_MAX_AGE_SECS, file_signature};

use crate::store::{Direction, StoredMessage};

/// Signs the file links shown on one connection.
pub(super) struct FileLinks {
    /// The gateway's signing key.
    pub key: Vec<u8>,
    /// The widget channel.
    pub channel: ChannelId,
}

impl FileLinks {
    /// The file `message` carries, as the widget shows it (`None` when it has none kept).
    pub fn file(&self, message: &StoredMessage, now: i64) -> Option<WireFile> {
        let content = &message.content;
        let (name, mime) = match message.direction {
            Direction::Outbound if content.get("kind")?.as_str()? == "file" => (
                content.get("filename")?.as_str()?.to_owned(),
                content.get("mime")?.as_str()?.to_owned(),
            ),
            Direction::Inbound => (
                content
                    .get("filename")
                    .and_then(|n| n.as_str())
                    .unwrap_or("file")
                    .to_owned(),
                content.get("file")?.get("mime")?.as_str()?.to_owned(),
            ),
            Direction::Outbound => return None,
        };
        // Whole hours, so a page of history signs each link the same way for an hour (so a link
        // lasts 11 to 12 hours).
        let expires = (now / 3600) * 3600 + FILE_LINK_MAX_AGE_SECS;
        let id = message.id.0.to_string();
        let channel = self.channel.0.to_string();
        let sig = file_signature(&self.key, &channel, &id, expires).ok()?;
        let kind = if matches!(
            mime.as_str(),
            "image/png" | "image/jpeg" | "image/webp" | "image/gif"
        ) {
            "image"
        } else {
            "file"
        };
        Some(WireFile {
            url: format!("/widget/file/{id}?channel={channel}&exp={expires}&sig={sig}"),
            name,
            mime,
            kind: kind.into(),
        })
    }
}

/// A stored message as the widget shows it.
pub(super) fn wire(message: &StoredMessage) -> WireMessage {
    let mut choices = Vec::new();
    let mut reacts_to = None;
    let (direction, text, client_id) = match message.direction {
        Direction::Inbound => {
            let content = serde_json::from_value::<Content>(message.content.clone()).ok();
            let text = match content {
                Some(Content::Reaction { to_message, emoji }) => {
                    reacts_to = Some(to_message);
                    emoji.unwrap_or_default()
                }
                // A voice note shows as what was said in it, once heard (a microphone alone
                // when it could not be heard; an ellipsis while it is being heard).
                Some(Content::Media {
                    media: coach_connector_api::MediaKind::Voice,
                    caption: None,
                    ..
                }) => format!(
                    "\u{1f3a4} {}",
                    message
                        .content
                        .get("transcript")
                        .and_then(|t| t.as_str())
                        .or_else(|| message.content.get("transcript_error").map(|_| ""))
                        .unwrap_or("\u{2026}")
                ),
                // A file shows as its caption, else as a clip and its name.
                Some(Content::Media {
                    caption: None,
                    filename,
                    media,
                    ..
                }) => format!(
                    "\u{1f4ce} {}",
                    filename.unwrap_or_else(|| format!("{media:?}").to_lowercase())
                ),
                Some(c) => c
                    .text()
                    .map_or_else(|| "[attachment]".into(), str::to_string),
                None => "[attachment]".into(),
            };
            ("in", text, message.provider_message_id.clone())
        }
        Direction::Outbound => {
            let text = match serde_json::from_value::<OutboundBody>(message.content.clone()) {
                Ok(OutboundBody::Text { text }) => text,
                Ok(OutboundBody::Interactive { text, interactive }) => {
                    let (Interactive::Buttons { choices: offered }
                    | Interactive::List {
                        choices: offered, ..
                    }) = interactive;
                    choices = offered
                        .into_iter()
                        .map(|c| WireChoice {
                            id: c.id,
                            title: c.title,
                        })
                        .collect();
                    text
                }
                Ok(OutboundBody::Media {
                    caption: Some(caption),
                    ..
                }) => caption,
                // A file shows as its caption, else as a clip and its name (with its link).
                Ok(OutboundBody::File {
                    caption, filename, ..
                }) => caption.unwrap_or_else(|| format!("\u{1f4ce} {filename}")),
                _ => "[message]".into(),
            };
            ("out", text, None)
        }
    };
    WireMessage {
        id: message.id.0.to_string(),
        direction: direction.into(),
        text,
        client_id,
        choices,
        created_at: message.created_at.to_rfc3339(),
        rating: None,
        reacts_to,
        file: None,
    }
}
