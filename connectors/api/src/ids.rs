//! Typed identifiers, so a tenant id can never be passed where a contact id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) identifier.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

id_type!(
    /// A creator's account: every tenant-owned record carries one.
    TenantId
);
id_type!(
    /// One configured channel account of a tenant (a WhatsApp number, a Telegram bot, a widget).
    ChannelId
);
id_type!(
    /// A person the coach talks to, possibly reachable on several channels.
    ContactId
);
id_type!(
    /// The thread between one contact and the coach on one channel.
    ConversationId
);
id_type!(
    /// One stored message, inbound or outbound.
    MessageId
);

/// The kind of a channel: the built-in ones, or the kind a plugin connector declares.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum ChannelKind {
    /// WhatsApp Business through the Cloud API.
    WhatsApp,
    /// A Telegram bot.
    Telegram,
    /// The drop-in web chat widget.
    WebWidget,
    /// A third-party connector; the name is what the plugin declares (lowercase, `[a-z0-9_-]`).
    Plugin(String),
}

impl ChannelKind {
    /// The wire name used in URLs, the API and the database.
    pub fn as_str(&self) -> &str {
        match self {
            Self::WhatsApp => "whatsapp",
            Self::Telegram => "telegram",
            Self::WebWidget => "web_widget",
            Self::Plugin(name) => name,
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a channel kind.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid channel kind {0:?}: expected whatsapp, telegram, web_widget or a plugin name of 1-32 characters [a-z0-9_-]"
)]
pub struct InvalidChannelKind(pub String);

impl FromStr for ChannelKind {
    type Err = InvalidChannelKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "whatsapp" => Self::WhatsApp,
            "telegram" => Self::Telegram,
            "web_widget" => Self::WebWidget,
            other
                if !other.is_empty()
                    && other.len() <= 32
                    && other.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                    }) =>
            {
                Self::Plugin(other.to_owned())
            }
            other => return Err(InvalidChannelKind(other.to_owned())),
        })
    }
}

impl From<ChannelKind> for String {
    fn from(kind: ChannelKind) -> Self {
        kind.as_str().to_owned()
    }
}

impl TryFrom<String> for ChannelKind {
    type Error = InvalidChannelKind;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_kind_round_trips_and_rejects_junk() {
        for s in ["whatsapp", "telegram", "web_widget", "sms"] {
            let kind: ChannelKind = s.parse().unwrap();
            assert_eq!(kind.as_str(), s);
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(serde_json::from_str::<ChannelKind>(&json).unwrap(), kind);
        }
        assert!("".parse::<ChannelKind>().is_err());
        assert!("SMS".parse::<ChannelKind>().is_err());
        assert!("../etc".parse::<ChannelKind>().is_err());
    }

    #[test]
    fn ids_are_time_ordered() {
        let a = MessageId::new();
        let b = MessageId::new();
        assert!(a < b);
        assert_eq!(a.to_string().parse::<MessageId>().unwrap(), a);
    }
}
