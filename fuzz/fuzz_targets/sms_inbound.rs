//! Any form body, correctly signed: the SMS plugin returns events or an error, never panics.
#![no_main]

use coach_connector_api::{ChannelConfig, ChannelId, Connector, HttpMethod, HttpRequest, TenantId};
use libfuzzer_sys::fuzz_target;

const URL: &str = "https://coach.example/webhooks/sms/x";

fuzz_target!(|body: &[u8]| {
    let ch = ChannelConfig {
        tenant_id: TenantId::new(),
        channel_id: ChannelId::new(),
        settings: serde_json::json!({ "account_sid": "AC0123456789abcdef0123456789abcdef",
            "auth_token": "tok", "from_number": "+15550001111" }),
        api_base_url: "http://127.0.0.1:9".into(),
        webhook_url: URL.into(),
    };
    let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let req = HttpRequest {
        method: Some(HttpMethod::Post),
        query: String::new(),
        headers: vec![("x-twilio-signature".into(), coach_sms_twilio::signature("tok", URL, &params))],
        body: body.to_vec(),
    };
    let _ = coach_sms_twilio::Sms.inbound(&ch, &req);
});
