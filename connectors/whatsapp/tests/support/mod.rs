//! Shared by the connector's tests: a channel with test credentials.
#![allow(dead_code)]

use coach_connector_api::{ChannelConfig, ChannelId, TenantId};
use serde_json::{Value, json};

pub const SECRET: &str = "test-app-secret";
pub const PHONE_ID: &str = "106540352242922";

pub fn channel(extra: Value) -> ChannelConfig {
    let mut settings = json!({
        "phone_number_id": PHONE_ID, "access_token": "EAAtoken", "app_secret": SECRET,
        "verify_token": "let-me-in",
    });
    if let (Value::Object(s), Value::Object(e)) = (&mut settings, extra) {
        s.extend(e);
    }
    ChannelConfig {
        tenant_id: TenantId::new(),
        channel_id: ChannelId::new(),
        settings,
        api_base_url: "http://127.0.0.1:9/v21.0".into(),
        webhook_url: String::new(),
    }
}
