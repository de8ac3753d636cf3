//! WhatsApp Cloud API connector: verifies `X-Hub-Signature-256`, parses every entry, change,
//! message and status of a webhook into normalized events, and renders outbound messages as Graph
//! API calls. Sans-IO: the gateway does the HTTP.
//!
//! Status: the channel limits are here; parsing and rendering land with the channels issue.

use coach_connector_api::{ChannelKind, ChannelLimits};

/// The channel kind this crate serves.
pub const KIND: ChannelKind = ChannelKind::WhatsApp;

/// WhatsApp Cloud API limits: 4,096-character texts, 3 reply buttons of 20 characters, lists of
/// 10 rows, 80 messages/s per business number by default.
pub fn limits() -> ChannelLimits {
    ChannelLimits {
        max_text_chars: 4096,
        max_buttons: 3,
        max_button_title_chars: 20,
        max_list_rows: 10,
        messages_per_second: 80.0,
        per_recipient_per_second: 1.0,
        streaming: false,
    }
}
