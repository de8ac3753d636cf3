//! The wire format: versioned JSON frames, one per WebSocket text message, tagged by `type`.

use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks; a `hello` with another is refused.
pub const VERSION: u32 = 1;

/// The longest message text a visitor may send, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;

/// The longest client id, in bytes.
pub const MAX_CLIENT_ID: usize = 64;

/// A signed identity from the creator's own site: `signature` is the hex HMAC-SHA256 of
/// `"{user_id}:{issued_at}"` with the channel's identity secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// The site's own user id.
    pub user_id: String,
    /// When the site signed it (Unix seconds).
    pub issued_at: i64,
    /// Hex HMAC-SHA256.
    pub signature: String,
    /// A display name for the creator's inbox.
    #[serde(default)]
    pub name: Option<String>,
}

/// What a widget sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// The first frame of every connection.
    Hello {
        /// Protocol version ([`VERSION`]).
        v: u32,
        /// The visitor token from an earlier `welcome`, if the widget kept one.
        #[serde(default)]
        token: Option<String>,
        /// A signed identity from the creator's site.
        #[serde(default)]
        identity: Option<Identity>,
        /// The last sequence number the widget has; the server replays what came after.
        #[serde(default)]
        resume_after: i64,
    },
    /// A message typed by the visitor. Sending the same `client_id` again is harmless.
    Message {
        /// Chosen by the widget, unique per visitor (1-64 bytes).
        client_id: String,
        /// The text (1-4,096 characters): what was typed, or the title of a tapped choice.
        text: String,
        /// The id of the choice tapped (see [`WireMessage::choices`]), if one was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        choice: Option<String>,
    },
    /// A reaction to one of the coach's messages (the widget's thumbs): `emoji`, or none to
    /// take it back. Stored like a message (it comes back as an `event` with `reacts_to`);
    /// sending the same `client_id` again is harmless.
    React {
        /// Chosen by the widget, unique per visitor (1-64 bytes).
        client_id: String,
        /// The id of the message reacted to ([`WireMessage::id`]).
        message_id: String,
        /// The reaction (at most 16 characters); absent to take it back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        emoji: Option<String>,
    },
    /// Everything up to `seq` arrived.
    Ack {
        /// The highest sequence number received in order.
        seq: i64,
    },
    /// The visitor is typing (or stopped).
    Typing {
        /// On or off.
        on: bool,
    },
    /// The visitor has seen everything up to `seq`.
    Read {
        /// The sequence number.
        seq: i64,
    },
    /// Something the visitor sent outside this connection was stored (a file, through
    /// `POST /widget/upload`, which may have started their conversation): the server finds the
    /// conversation if it did not know it and sends what is new.
    Sync,
    /// Heartbeat; answered with `pong`.
    Ping,
    /// Answer to the server's `ping`.
    Pong,
}

/// A message as the widget shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireMessage {
    /// Its id.
    pub id: String,
    /// `in` (from the visitor) or `out` (from the coach or a human).
    pub direction: String,
    /// The text to show (non-text content is described in brackets).
    pub text: String,
    /// The widget's own id for a message it sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Buttons offered with a coach's message (a program check-in); a tap sends the title as
    /// text with the choice's id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<WireChoice>,
    /// When it was stored (RFC 3339).
    pub created_at: String,
    /// For a rating question (a message whose choices are `csat:1` to `csat:5`, sent when the
    /// team resolves the conversation): the visitor's rating, once given. Widgets answer such a
    /// question through `POST /widget/rating`, never as a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<i16>,
    /// For a visitor's reaction: the id of the message it reacts to (`text` is the emoji, empty
    /// when the reaction was taken back). Widgets apply it to that message instead of showing
    /// it as a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reacts_to: Option<String>,
    /// A file the message carries (one the visitor sent, or one the coach sent), once kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<Box<WireFile>>,
}

/// A file under a message: a signed link, valid for hours, that needs no visitor token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireFile {
    /// The link, relative to the gateway (`/widget/file/...`).
    pub url: String,
    /// Its name.
    pub name: String,
    /// Its type as declared when it was kept.
    pub mime: String,
    /// `image` when the widget may show it in place (PNG, JPEG, WebP, GIF), else `file`.
    pub kind: String,
}

/// A button under a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireChoice {
    /// Sent back when tapped.
    pub id: String,
    /// What the visitor sees.
    pub title: String,
}

/// Why the server refused something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not a frame of this version.
    BadFrame,
    /// The first frame was not `hello`, or `hello` came twice.
    BadSequence,
    /// The client speaks another protocol version.
    UnsupportedVersion,
    /// The visitor token or identity signature is invalid or expired.
    Unauthorized,
    /// The text is empty or too long, or the client id is malformed.
    InvalidMessage,
    /// Too many messages; wait before sending more.
    RateLimited,
    /// The channel's pre-chat form asks for consent and the visitor has not given it
    /// (`POST /widget/profile`): nothing was stored; send it again after the form.
    ConsentRequired,
    /// The message could not be stored; send it again.
    Unavailable,
}

/// What the server sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Answer to `hello`: keep `visitor_token` to come back to the same conversation.
    Welcome {
        /// Protocol version.
        v: u32,
        /// The visitor's token (store it per channel).
        visitor_token: String,
        /// The latest sequence number of the conversation (0 when there is none yet).
        last_seq: i64,
    },
    /// A stored message, numbered within the conversation.
    Event {
        /// Its sequence number; acknowledge with `ack`.
        seq: i64,
        /// The message.
        message: WireMessage,
    },
    /// The visitor's message is stored (it also arrives as an `event`).
    Accepted {
        /// The widget's id for it.
        client_id: String,
    },
    /// An answer started streaming.
    StreamStart {
        /// Identifies the stream (the id of the message being answered).
        stream_id: String,
    },
    /// More of a streaming answer.
    StreamDelta {
        /// The stream.
        stream_id: String,
        /// Text to append.
        text: String,
    },
    /// The streaming answer is stored as `message_id` (its `event` replaces the stream).
    StreamEnd {
        /// The stream.
        stream_id: String,
        /// The stored answer.
        message_id: String,
    },
    /// The coach or a human is typing (or stopped).
    Typing {
        /// On or off.
        on: bool,
    },
    /// Heartbeat; answer with `pong`.
    Ping,
    /// Answer to the client's `ping`.
    Pong,
    /// Something was refused.
    Error {
        /// Machine-readable reason.
        code: ErrorCode,
        /// For people.
        message: String,
        /// The client id of the refused message, if a message was refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
}

impl ClientFrame {
    /// Parses a text frame, or says why not.
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("not a frame of protocol {VERSION}: {e}"))
    }
}

impl ServerFrame {
    /// The frame as JSON text.
    pub fn to_text(&self) -> String {
        // A frame of strings and numbers always serializes.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"type\":\"ping\"}"))
    }

    /// An error frame.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
            client_id: None,
        }
    }
}
