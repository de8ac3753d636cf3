//! The web widget's WebSocket protocol as a sans-IO state machine: versioned JSON frames
//! ([`frames`]), client message ids for idempotent resends, per-conversation sequence numbers
//! with acknowledgements and resume after reconnect, heartbeats and streamed answers
//! ([`session`]), and visitor identity ([`identity`]).

pub mod frames;
pub mod identity;
pub mod session;

use coach_connector_api::{ChannelKind, ChannelLimits};

/// The channel kind this crate serves.
pub const KIND: ChannelKind = ChannelKind::WebWidget;

/// The widget has no provider limits beyond our own frame size; it shows answers as they stream.
pub fn limits() -> ChannelLimits {
    ChannelLimits {
        max_text_chars: 16_384,
        max_buttons: 8,
        max_button_title_chars: 40,
        max_list_rows: 20,
        messages_per_second: f64::INFINITY,
        per_recipient_per_second: f64::INFINITY,
        streaming: true,
        service_window_secs: None,
        typing_renewal_secs: None,
        files: true,
    }
}
