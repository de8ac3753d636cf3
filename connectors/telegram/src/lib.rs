//! Telegram Bot API connector: checks `X-Telegram-Bot-Api-Secret-Token`, parses updates into
//! normalized events (dedup by `update_id`, messages by chat id + message id), and renders
//! outbound messages as Bot API calls. Sans-IO: the gateway does the HTTP, webhooks and polling.
//!
//! Status: the channel limits are here; parsing and rendering land with the channels issue.

use coach_connector_api::{ChannelKind, ChannelLimits};

/// The channel kind this crate serves.
pub const KIND: ChannelKind = ChannelKind::Telegram;

/// Telegram Bot API limits: 4,096-character texts, about 1 message/s per chat and 30/s per bot.
pub fn limits() -> ChannelLimits {
    ChannelLimits {
        max_text_chars: 4096,
        max_buttons: 8,
        max_button_title_chars: 64,
        max_list_rows: 0,
        messages_per_second: 30.0,
        per_recipient_per_second: 1.0,
        streaming: false,
    }
}
