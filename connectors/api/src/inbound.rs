//! What arrives from a channel, normalized so the rest of the gateway never sees provider JSON.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A key unique within one channel that identifies an inbound event, so a provider's retry of the
/// same webhook is recognized and changes nothing.
///
/// Each connector defines its keys (WhatsApp: `wamid`; Telegram: `chat_id:message_id` for
/// messages and `update:<update_id>` for other updates; widget: `contact:client_message_id`).
/// Status updates use keys of their own (see [`StatusUpdate::dedup_key`]) so they never collide
/// with the message they describe.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DedupKey(pub String);

impl DedupKey {
    /// A key from any displayable parts joined with `:`.
    pub fn from_parts(parts: &[&dyn std::fmt::Display]) -> Self {
        let mut key = String::new();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                key.push(':');
            }
            key.push_str(&part.to_string());
        }
        Self(key)
    }
}

/// Who sent a message, as the channel knows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelIdentity {
    /// The channel's stable id for the person (`wa_id`, Telegram user id, widget visitor id).
    pub id: String,
    /// The name the person shows on the channel, when the provider sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// A username or handle, when the channel has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

impl ChannelIdentity {
    /// An identity known only by its id.
    pub fn id(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            display_name: None,
            username: None,
        }
    }
}

/// One normalized inbound event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InboundEvent {
    /// Something a person sent.
    Message(InboundMessage),
    /// A delivery status of a message we sent.
    Status(StatusUpdate),
    /// Anything the connector does not understand (yet): kept whole, never dropped.
    Unknown(UnknownEvent),
}

impl InboundEvent {
    /// The event's dedup key within its channel.
    pub fn dedup_key(&self) -> &DedupKey {
        match self {
            Self::Message(m) => &m.dedup_key,
            Self::Status(s) => &s.dedup_key,
            Self::Unknown(u) => &u.dedup_key,
        }
    }
}

/// A message from a person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// Unique within the channel; see [`DedupKey`].
    pub dedup_key: DedupKey,
    /// The provider's id of this message (used to reply to it, or mark it read).
    pub provider_message_id: String,
    /// The sender.
    pub from: ChannelIdentity,
    /// When the provider says it was sent.
    pub timestamp: DateTime<Utc>,
    /// What was sent.
    pub content: Content,
    /// The provider id of the message this one answers, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// The kinds of media a message can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// A picture.
    Image,
    /// Recorded or uploaded audio.
    Audio,
    /// A voice note.
    Voice,
    /// A video.
    Video,
    /// Any file.
    Document,
    /// A sticker.
    Sticker,
}

/// A shared contact card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactCard {
    /// The formatted name.
    pub name: String,
    /// Phone numbers on the card.
    #[serde(default)]
    pub phones: Vec<String>,
    /// E-mail addresses on the card.
    #[serde(default)]
    pub emails: Vec<String>,
}

/// The content of an inbound message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Content {
    /// Plain text.
    Text {
        /// The text as typed.
        body: String,
    },
    /// A media attachment, fetched later by a job (provider URLs expire).
    Media {
        /// What kind of media.
        media: MediaKind,
        /// The provider's handle for fetching it (a media id or a file id).
        media_ref: String,
        /// Declared MIME type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mime: Option<String>,
        /// Declared size in bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
        /// A caption typed with the media.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
        /// The original file name, for documents.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
    /// A shared location.
    Location {
        /// Latitude in degrees.
        latitude: f64,
        /// Longitude in degrees.
        longitude: f64,
        /// A place name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// A street address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
    },
    /// One or more contact cards.
    Contacts {
        /// The cards.
        cards: Vec<ContactCard>,
    },
    /// A tap on a button or list row we sent.
    InteractiveReply {
        /// The id we gave the choice.
        id: String,
        /// The title the person saw.
        title: String,
    },
    /// A reaction to an earlier message.
    Reaction {
        /// The provider id of the message reacted to.
        to_message: String,
        /// The emoji; `None` when a reaction was removed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        emoji: Option<String>,
    },
}

impl Content {
    /// The text a person typed, if the content has any (text body or media caption).
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Text { body } => Some(body),
            Self::Media { caption, .. } => caption.as_deref(),
            Self::InteractiveReply { title, .. } => Some(title),
            _ => None,
        }
    }
}

/// Delivery status of an outbound message. Ordered: a message only moves forward, and
/// `Failed` is final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Queued in our outbox, not yet accepted by the provider.
    Pending,
    /// The provider accepted it.
    Sent,
    /// It reached the person's device.
    Delivered,
    /// The person opened it.
    Read,
    /// It will never arrive; the provider's error is kept.
    Failed,
}

impl DeliveryStatus {
    /// The rank used to move statuses only forward (higher wins; `Failed` is final).
    pub fn rank(self) -> i16 {
        match self {
            Self::Pending => 0,
            Self::Sent => 1,
            Self::Delivered => 2,
            Self::Read => 3,
            Self::Failed => 4,
        }
    }

    /// The status of a rank, the inverse of [`DeliveryStatus::rank`].
    pub fn from_rank(rank: i16) -> Option<Self> {
        Some(match rank {
            0 => Self::Pending,
            1 => Self::Sent,
            2 => Self::Delivered,
            3 => Self::Read,
            4 => Self::Failed,
            _ => return None,
        })
    }

    /// Whether a message in `self` may move to `next`.
    pub fn advances_to(self, next: Self) -> bool {
        self != Self::Failed && next.rank() > self.rank()
    }
}

/// A provider's error for a failed delivery or a webhook-level error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderError {
    /// The provider's numeric or symbolic code (WhatsApp `131047`, HTTP status...).
    pub code: String,
    /// The provider's human-readable title.
    pub title: String,
}

/// A provider's report on a message we sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    /// Unique within the channel, distinct from message keys (e.g. `status:<wamid>:read`).
    pub dedup_key: DedupKey,
    /// The provider id of our outbound message.
    pub provider_message_id: String,
    /// The reported status.
    pub status: DeliveryStatus,
    /// When the provider says it happened.
    pub timestamp: DateTime<Utc>,
    /// The recipient, as the channel knows them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// Why it failed, for `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ProviderError>,
}

/// An event the connector could not map; the raw JSON is kept for later processing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnknownEvent {
    /// Unique within the channel (a provider id when there is one, else a content hash).
    pub dedup_key: DedupKey,
    /// The provider's name for the kind, as best known (`"edited_channel_post"`, `"unsupported"`).
    pub kind: String,
    /// The sender, when one can be told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ChannelIdentity>,
    /// The raw provider JSON of the event.
    pub raw: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_only_moves_forward_and_failed_is_final() {
        use DeliveryStatus::*;
        assert!(Sent.advances_to(Delivered));
        assert!(Sent.advances_to(Read));
        assert!(!Read.advances_to(Delivered));
        assert!(!Delivered.advances_to(Delivered));
        assert!(Read.advances_to(Failed));
        for s in [Pending, Sent, Delivered, Read, Failed] {
            assert!(!Failed.advances_to(s));
            assert_eq!(DeliveryStatus::from_rank(s.rank()), Some(s));
        }
    }

    #[test]
    fn events_round_trip_as_tagged_json() {
        let ev = InboundEvent::Message(InboundMessage {
            dedup_key: DedupKey::from_parts(&[&42, &"7"]),
            provider_message_id: "7".into(),
            from: ChannelIdentity::id("42"),
            timestamp: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            content: Content::Text { body: "hi".into() },
            reply_to: None,
        });
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(json["type"], "message");
        assert_eq!(json["content"]["kind"], "text");
        assert_eq!(json["dedup_key"], "42:7");
        assert_eq!(serde_json::from_value::<InboundEvent>(json).unwrap(), ev);
    }
}
