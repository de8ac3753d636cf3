//! Any body, validly signed (so the parser, not the signature check, is what gets fuzzed):
//! the WhatsApp connector returns events or an error, never panics.
#![no_main]

use coach_connector_api::{ChannelConfig, ChannelId, Connector, HttpMethod, HttpRequest, TenantId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let settings = serde_json::json!({ "phone_number_id": "106540352242922", "access_token": "t",
        "app_secret": "fuzz-secret", "verify_token": "v" });
    let ch = ChannelConfig {
        tenant_id: TenantId::new(),
        channel_id: ChannelId::new(),
        settings,
        api_base_url: "http://127.0.0.1:9".into(),
        webhook_url: String::new(),
    };
    // Parse directly (what a valid signature lets through) and through the full path.
    let _ = coach_whatsapp::inbound::parse("106540352242922", body);
    let req = HttpRequest {
        method: Some(HttpMethod::Post),
        query: String::new(),
        headers: vec![("x-hub-signature-256".into(), String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned())],
        body: body.to_vec(),
    };
    let _ = coach_whatsapp::WhatsApp.inbound(&ch, &req);
});
