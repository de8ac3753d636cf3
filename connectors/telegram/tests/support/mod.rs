//! What the Telegram tests share: a channel and a message to it.
#![allow(dead_code)]

use coach_connector_api::{
    ChannelConfig, ChannelId, OutboundBody, OutboundMessage, SendContext, TenantId,
};
use serde_json::json;

pub const TOKEN: &str = "123456789:AAE_test-token";

pub fn channel(mode: &str) -> ChannelConfig {
    ChannelConfig {
        tenant_id: TenantId::new(),
        channel_id: ChannelId::new(),
        settings: json!({ "bot_token": TOKEN, "mode": mode, "secret_token": "s3cret_-x" }),
        api_base_url: "http://127.0.0.1:9".into(),
        webhook_url: String::new(),
    }
}

pub fn out(body: OutboundBody) -> OutboundMessage {
    OutboundMessage {
        to: "42".into(),
        reply_to: Some("7".into()),
        body,
        context: SendContext::default(),
    }
}
