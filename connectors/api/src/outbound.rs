//! What the gateway asks a channel to send.

use chrono::{DateTime, Utc};
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
    /// What the gateway knows at send time that a channel's rules may depend on.
    #[serde(default)]
    pub context: SendContext,
}

/// Facts about the recipient at send time (connectors have no clock and no store).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SendContext {
    /// The time of sending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<DateTime<Utc>>,
    /// When the recipient last wrote on this channel (WhatsApp's 24-hour window starts there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_inbound_at: Option<DateTime<Utc>>,
    /// What to send instead of a free-form body when the channel's window is closed (a program
    /// step's approved template, an [`OutboundBody::Template`]); channels without a window
    /// ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Box<OutboundBody>>,
}

impl SendContext {
    /// Whether the recipient wrote within `window` before now. Without a clock (`now` unset)
    /// the window counts as open: the gateway always sets it.
    pub fn within(&self, window: chrono::Duration) -> bool {
        match (self.now, self.last_inbound_at) {
            (Some(now), Some(last)) => now.signed_duration_since(last) < window,
            (Some(_), None) => false,
            (None, _) => true,
        }
    }
}

/// Split `text` into pieces of at most `max_chars` characters, cutting at the last paragraph
/// break, else line break, else sentence end, else space before the limit, and only inside a
/// word when a piece has none of those. Pieces are trimmed; none is empty.
pub fn split_text(text: &str, max_chars: usize) -> Vec<String> {
    let max_chars = max_chars.max(1);
    let mut pieces = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((limit, _)) = rest.char_indices().nth(max_chars) else {
            pieces.push(rest.to_owned());
            break;
        };
        let window = &rest[..limit];
        let cut = ["\n\n", "\n", ". ", "! ", "? ", " "]
            .iter()
            .find_map(|sep| {
                window
                    .rfind(sep)
                    .filter(|&i| i > 0)
                    .map(|i| i + sep.trim_end().len())
            })
            .filter(|&i| i > 0)
            .unwrap_or(limit);
        let (piece, tail) = rest.split_at(cut);
        let piece = piece.trim();
        if !piece.is_empty() {
            pieces.push(piece.to_owned());
        }
        rest = tail.trim_start();
    }
    pieces
}

/// The text fallback for choices a channel cannot show: the text, then `1. Title` lines. A
/// reply of the number or the title is matched back by [`match_menu_reply`].
pub fn numbered_menu(text: &str, choices: &[Choice]) -> String {
    let mut out = text.trim().to_owned();
    for (i, choice) in choices.iter().enumerate() {
        out.push_str(if i == 0 { "\n\n" } else { "\n" });
        out.push_str(&format!("{}. {}", i + 1, choice.title));
        if let Some(d) = &choice.description {
            out.push_str(&format!(" - {d}"));
        }
    }
    out
}

/// The choice a typed reply to a [`numbered_menu`] names (its number or its exact title).
pub fn match_menu_reply<'a>(reply: &str, choices: &'a [Choice]) -> Option<&'a Choice> {
    let reply = reply.trim().trim_end_matches('.');
    if let Ok(n) = reply.parse::<usize>() {
        return n.checked_sub(1).and_then(|i| choices.get(i));
    }
    choices.iter().find(|c| c.title.eq_ignore_ascii_case(reply))
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
    /// A file from the tenant's library (a worksheet, an image): the gateway keeps it and gives
    /// the connector either its bytes (`data`) or the provider's id for it after
    /// [`Connector::upload`](crate::Connector::upload) (`uploaded`), at send time only.
    File {
        /// How the channel shows it.
        media: MediaKind,
        /// Its id in the tenant's library.
        file_id: String,
        /// Its type, read from its bytes when it was added.
        mime: String,
        /// Its name, shown for documents.
        filename: String,
        /// Its size in bytes.
        bytes: u64,
        /// A caption.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
        /// The provider's id of the uploaded file (filled at send time, never stored).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uploaded: Option<String>,
        /// The file's bytes, for channels that send them with the message (filled at send
        /// time, never stored).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<Vec<u8>>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_prefers_paragraphs_then_sentences_and_keeps_every_word() {
        let text = "First paragraph here.\n\nSecond one. It has two sentences.";
        assert_eq!(
            split_text(text, 30),
            vec![
                "First paragraph here.",
                "Second one.",
                "It has two sentences."
            ]
        );
        let long = "word ".repeat(2000);
        let pieces = split_text(&long, 4096);
        assert!(pieces.iter().all(|p| p.chars().count() <= 4096));
        assert_eq!(pieces.join(" ").split(' ').count(), 2000);
        // No break at all: cut inside, nothing lost, multi-byte characters kept whole.
        let solid = "é".repeat(10);
        assert_eq!(split_text(&solid, 4), vec!["éééé", "éééé", "éé"]);
        assert!(split_text("  ", 10).is_empty());
    }

    #[test]
    fn menus_number_the_choices_and_match_replies() {
        let choices = vec![
            Choice {
                id: "a".into(),
                title: "Yes".into(),
                description: None,
            },
            Choice {
                id: "b".into(),
                title: "Tell me more".into(),
                description: Some("details".into()),
            },
        ];
        let menu = numbered_menu("Ready?", &choices);
        assert_eq!(menu, "Ready?\n\n1. Yes\n2. Tell me more - details");
        assert_eq!(
            match_menu_reply(" 2 ", &choices).map(|c| c.id.as_str()),
            Some("b")
        );
        assert_eq!(
            match_menu_reply("yes", &choices).map(|c| c.id.as_str()),
            Some("a")
        );
        assert_eq!(match_menu_reply("3", &choices), None);
        assert_eq!(match_menu_reply("0", &choices), None);
    }

    #[test]
    fn the_window_is_open_only_within_the_duration() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let day = chrono::Duration::hours(24);
        let ctx = |last: Option<i64>| SendContext {
            now: Some(t),
            last_inbound_at: last.map(|s| t - chrono::Duration::seconds(s)),
            fallback: None,
        };
        assert!(ctx(Some(3600)).within(day));
        assert!(!ctx(Some(86_400)).within(day));
        assert!(!ctx(None).within(day));
        assert!(SendContext::default().within(day));
    }
}
