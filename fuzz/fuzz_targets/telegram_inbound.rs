//! Any body with the right secret: the Telegram connector returns events or an error, never
//! panics; the polling parser likewise.
#![no_main]

use coach_connector_api::{ChannelConfig, ChannelId, Connector, HttpMethod, HttpRequest, TenantId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let ch = ChannelConfig {
        tenant_id: TenantId::new(),
        channel_id: ChannelId::new(),
        settings: serde_json::json!({ "bot_token": "123:abc", "secret_token": "s" }),
        api_base_url: "http://127.0.0.1:9".into(),
        webhook_url: String::new(),
    };
    let req = HttpRequest {
        method: Some(HttpMethod::Post),
        query: String::new(),
        headers: vec![("x-telegram-bot-api-secret-token".into(), "s".into())],
        body: body.to_vec(),
    };
    let _ = coach_telegram::Telegram.inbound(&ch, &req);
    let _ = coach_telegram::parse_updates(body);
});
