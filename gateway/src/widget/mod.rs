//! What every web widget connection of this process shares: the per-visitor message limiter,
//! the demo channel and the hub that routes conversation events to connections. The HTTP and
//! WebSocket side lives in `http::widget`.

pub mod hub;

use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};

use coach_connector_api::ChannelId;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Shared by every widget connection of this process.
pub struct WidgetRuntime {
    /// Messages per visitor.
    pub(crate) limiter: DefaultKeyedRateLimiter<String>,
    /// The demo channel, once created.
    pub demo_channel: OnceLock<ChannelId>,
    /// Routes conversation events to the connections of their conversation.
    pub hub: Arc<hub::Hub>,
}

impl WidgetRuntime {
    /// Limits as configured.
    pub fn new(config: &crate::config::WidgetConfig) -> Arc<Self> {
        let per_minute =
            NonZeroU32::new(config.messages_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Arc::new(Self {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            demo_channel: OnceLock::new(),
            hub: Arc::default(),
        })
    }
}
