//! What every web widget connection of this process shares: the message limiters (per visitor,
//! per client address, per channel), the open-connection counts, the demo channel and the hub
//! that routes conversation events to connections. The HTTP and WebSocket side lives in
//! `http::widget`.

pub mod hub;

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};

use coach_connector_api::ChannelId;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Shared by every widget connection of this process.
pub struct WidgetRuntime {
    /// Messages per visitor.
    limiter: DefaultKeyedRateLimiter<String>,
    /// Messages per client address.
    address_limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Messages per channel.
    channel_limiter: DefaultKeyedRateLimiter<ChannelId>,
    /// Open connections per address and per channel.
    open: Mutex<OpenSockets>,
    sockets_per_address: u32,
    sockets_per_channel: u32,
    /// The demo channel, once created.
    pub demo_channel: OnceLock<ChannelId>,
    /// Routes conversation events to the connections of their conversation.
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
            open: Mutex::default(),
            sockets_per_address: config.sockets_per_address,
            sockets_per_channel: config.sockets_per_channel,
            demo_channel: OnceLock::new(),
            hub: Arc::default(),
        })
    }
}

/// Open widget connections of this process, by client address and by channel.
#[derive(Default)]
struct OpenSockets {
    by_address: HashMap<IpAddr, u32>,
    by_channel: HashMap<ChannelId, u32>,
}

/// An admitted connection's place in the counts, given back when dropped.
pub struct SocketPermit {
    runtime: Arc<WidgetRuntime>,
    address: IpAddr,
    channel: ChannelId,
}

impl Drop for SocketPermit {
    fn drop(&mut self) {
        let mut open = self.runtime.open.lock().unwrap_or_else(|e| e.into_inner());
        release(&mut open.by_address, &self.address);
        release(&mut open.by_channel, &self.channel);
    }
}

/// One connection fewer under `key` (the entry goes at zero).
fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(key);
        }
    }
}

impl WidgetRuntime {
    /// Counts a new connection from `address` to `channel`, or says which cap it is over.
    pub fn admit(
        self: &Arc<Self>,
        address: IpAddr,
        channel: ChannelId,
    ) -> Result<SocketPermit, String> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let from_address = open.by_address.get(&address).copied().unwrap_or(0);
        if from_address >= self.sockets_per_address {
            return Err(format!(
                "too many connections from your address ({}, widget.sockets_per_address)",
                self.sockets_per_address
            ));
        }
        let on_channel = open.by_channel.get(&channel).copied().unwrap_or(0);
        if on_channel >= self.sockets_per_channel {
            return Err(format!(
                "this chat is full ({} connections, widget.sockets_per_channel): try again later",
                self.sockets_per_channel
            ));
        }
        *open.by_address.entry(address).or_default() += 1;
        *open.by_channel.entry(channel).or_default() += 1;
        Ok(SocketPermit {
            runtime: self.clone(),
            address,
            channel,
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
