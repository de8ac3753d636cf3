//! What the gateway asks a channel to send.

use serde::{Deserialize, Serialize};

use crate::inbound::MediaKind;

/// One message (or signal) to a person on a channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// The recipient's id on the channel (the `ChannelIdentity::id` they wrote from).
    pub to: String,
    /// The provider id of the message this one answers, when the channel can quote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// What to send.
    pub body: OutboundBody,
}

/// A quick-reply choice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// Comes back as `Content::InteractiveReply::id` when tapped.
    pub id: String,
    /// What the person sees.
    pub title: String,
    /// A second line, shown by channels that have one (list rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Interactive choices; connectors degrade them to what the channel supports
/// (buttons, then a list, then a numbered text menu).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "style", rename_all = "snake_case")]
pub enum Interactive {
    /// A few reply buttons.
    Buttons {
        /// The choices.
        choices: Vec<Choice>,
    },
    /// A list opened by a button.
    List {
        /// The label of the button that opens the list.
        button: String,
        /// The rows.
        choices: Vec<Choice>,
    },
}

/// The body of an outbound message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutboundBody {
    /// Plain text (connectors split it to the channel's length limit).
    Text {
        /// The text.
        text: String,
    },
    /// A media file reachable by URL.
    Media {
        /// What kind of media.
        media: MediaKind,
        /// Where the provider can fetch it.
        url: String,
        /// A caption.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
        /// The file name shown for documents.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
    /// Text with choices.
    Interactive {
        /// The text above the choices.
        text: String,
        /// The choices.
        interactive: Interactive,
    },
    /// A pre-approved template (WhatsApp's way to write outside the 24-hour window).
    Template {
        /// The template's name.
        name: String,
        /// Its language code, e.g. `en_US`.
        language: String,
        /// Positional body parameters.
        #[serde(default)]
        parameters: Vec<String>,
    },
    /// Show "typing..." to the person.
    Typing,
    /// Mark a received message as read.
    MarkRead {
        /// The provider id of the received message.
        provider_message_id: String,
    },
}

impl OutboundBody {
    /// Whether this is a signal (typing, read marker) rather than a stored message.
    pub fn is_signal(&self) -> bool {
        matches!(self, Self::Typing | Self::MarkRead { .. })
    }
}
