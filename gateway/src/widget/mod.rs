//! What every web widget connection of this process shares: the message limiters (per visitor,
//! per client address, per channel), the open-connection counts, the demo channel and the hub
//! that routes conversation events to connections. The HTTP and WebSocket side lives in
//! `http::widget`.

pub mod hub;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};

use coach_connector_api::{ChannelId, TenantId};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

use crate::caps::{Caps, Over, Permit};

/// An admitted widget connection's place in the counts (per address, per channel).
pub type SocketPermit = Permit<IpAddr, ChannelId>;

/// Shared by every widget connection of this process.
pub struct WidgetRuntime {
    /// Messages per visitor.
    limiter: DefaultKeyedRateLimiter<String>,
    /// Messages per client address.
    address_limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Messages per channel.
    channel_limiter: DefaultKeyedRateLimiter<ChannelId>,
    /// Open connections per address and per channel.
    sockets: Arc<Caps<IpAddr, ChannelId>>,
    /// The demo channel, once created.
    pub demo_channel: OnceLock<ChannelId>,
    /// Routes conversation events to the connections of their conversation, and closes a
    /// suspended tenant's connections.
    pub hub: Arc<hub::Hub>,
}

impl WidgetRuntime {
    /// Limits as configured.
    pub fn new(config: &crate::config::WidgetConfig) -> Arc<Self> {
        let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Arc::new(Self {
            limiter: RateLimiter::keyed(per_minute(config.messages_per_minute)),
            address_limiter: RateLimiter::keyed(per_minute(config.address_messages_per_minute)),
            channel_limiter: RateLimiter::keyed(per_minute(config.channel_messages_per_minute)),
            sockets: Caps::new(config.sockets_per_address, config.sockets_per_channel),
            demo_channel: OnceLock::new(),
            hub: Arc::default(),
        })
    }

    /// What a connection of `tenant` waits on to close when the tenant is suspended.
    pub fn suspension(
        &self,
        bus: &Arc<dyn crate::bus::Bus>,
        tenant: TenantId,
    ) -> CancellationToken {
        self.hub.suspension(bus, tenant)
    }

    /// Close this process's open connections of `tenant` (it was suspended); the other
    /// processes close theirs when the suspension reaches them on the bus.
    pub fn close_tenant(&self, tenant: TenantId) {
        self.hub.close_tenant(tenant);
    }

    /// Counts a new connection from `address` to `channel`, or says which cap it is over.
    pub fn admit(&self, address: IpAddr, channel: ChannelId) -> Result<SocketPermit, String> {
        self.sockets.admit(address, channel).map_err(|over| match over {
            Over::Client(n) => {
                format!("too many connections from your address ({n}, widget.sockets_per_address)")
            }
            Over::Target(n) => format!(
                "this chat is full ({n} connections, widget.sockets_per_channel): try again later"
            ),
        })
    }

    /// Whether one more message from `visitor`, behind `address`, on `channel` is within the
    /// limits; otherwise which one it is over.
    pub fn allow_message(
        &self,
        visitor: &str,
        address: IpAddr,
        channel: ChannelId,
    ) -> Result<(), &'static str> {
        if self.limiter.check_key(&visitor.to_string()).is_err() {
            return Err("too many messages: wait a moment and send again");
        }
        if self.address_limiter.check_key(&address).is_err() {
            return Err("too many messages from your network: wait a moment and send again");
        }
        if self.channel_limiter.check_key(&channel).is_err() {
            return Err("this chat is very busy: wait a moment and send again");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(per_address: u32, per_channel: u32) -> Arc<WidgetRuntime> {
        WidgetRuntime::new(&crate::config::WidgetConfig {
            sockets_per_address: per_address,
            sockets_per_channel: per_channel,
            address_messages_per_minute: 3,
            ..Default::default()
        })
    }

    #[test]
    fn connections_are_capped_per_address_and_per_channel_and_given_back() {
        let widget = runtime(2, 3);
        let (a, b) = (
            "203.0.113.1".parse().unwrap(),
            "203.0.113.2".parse().unwrap(),
        );
        let (one, two) = (ChannelId::new(), ChannelId::new());
        let first = widget.admit(a, one).unwrap();
        let _second = widget.admit(a, one).unwrap();
        let refused = widget.admit(a, two).err().unwrap();
        assert!(refused.contains("widget.sockets_per_address"), "{refused}");
        let _third = widget.admit(b, one).unwrap();
        let full = widget.admit(b, one).err().unwrap();
        assert!(full.contains("widget.sockets_per_channel"), "{full}");
        assert!(widget.admit(b, two).is_ok(), "another channel has room");
        drop(first);
        assert!(
            widget.admit(a, two).is_ok(),
            "a closed connection gives its place back"
        );
    }

    #[test]
    fn messages_are_limited_per_address_across_visitors() {
        let widget = runtime(10, 10);
        let address = "198.51.100.7".parse().unwrap();
        let channel = ChannelId::new();
        for visitor in ["v1", "v2", "v3"] {
            widget.allow_message(visitor, address, channel).unwrap();
        }
        let over = widget.allow_message("v4", address, channel).unwrap_err();
        assert!(over.contains("your network"), "{over}");
        let elsewhere = "198.51.100.8".parse().unwrap();
        assert!(widget.allow_message("v5", elsewhere, channel).is_ok());
    }
}
