//! WhatsApp Cloud API connector: verifies `X-Hub-Signature-256`, parses every entry, change,
//! message and status of a webhook into normalized events, and renders outbound messages as Graph
//! API calls. Sans-IO: the gateway does the HTTP, the clock and the storage.
//!
//! Layout: [`inbound`] (verification handshake, signature, parsing), [`outbound`] (rendering
//! with the 24-hour window and interactive fallbacks, judging the Graph API's answers).

pub mod inbound;
pub mod outbound;

use coach_connector_api::{
    ChannelConfig, ChannelKind, ChannelLimits, Connector, ConnectorError, HttpCall, HttpRequest,
    HttpResponse, Inbound, OutboundMessage, SendOutcome,
};
use serde::Deserialize;

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
        service_window_secs: Some(outbound::SERVICE_WINDOW_HOURS.unsigned_abs() * 3600),
        // A typing indicator lasts up to 25 s or until the reply.
        typing_renewal_secs: Some(20),
        files: true,
    }
}

/// A WhatsApp channel's settings, as creators enter them (`POST /v1/channels`).
#[derive(Clone, Debug, Deserialize)]
pub struct Settings {
    /// The business phone number's id (Graph API node that sends).
    pub phone_number_id: String,
    /// A system-user access token with `whatsapp_business_messaging`.
    pub access_token: String,
    /// The Meta app's secret: every webhook POST is signed with it.
    pub app_secret: String,
    /// The token Meta echoes in the verification handshake.
    pub verify_token: String,
    /// The template sent instead of free-form text outside the 24-hour window.
    #[serde(default)]
    pub fallback_template: Option<TemplateRef>,
    /// Messages per second for this number (Meta's throughput tier); 80 by default.
    #[serde(default)]
    pub messages_per_second: Option<f64>,
}

/// A pre-approved template by name and language.
#[derive(Clone, Debug, Deserialize)]
pub struct TemplateRef {
    /// The template's name.
    pub name: String,
    /// Its language code, e.g. `en_US`.
    pub language: String,
}

impl Settings {
    /// Read and check the settings of a channel.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, ConnectorError> {
        for field in [
            "phone_number_id",
            "access_token",
            "app_secret",
            "verify_token",
        ] {
            let given = value.get(field).and_then(serde_json::Value::as_str);
            if given.is_none_or(|v| v.trim().is_empty()) {
                return Err(ConnectorError::Config(format!(
                    "{field}: required, a non-empty string (from Meta's app dashboard)"
                )));
            }
        }
        let s: Self = serde_json::from_value(value.clone())
            .map_err(|e| ConnectorError::Config(format!("whatsapp channel: {e}")))?;
        if !s.phone_number_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(ConnectorError::Config(
                "phone_number_id: digits only (the id Meta shows for the number, not the number)"
                    .into(),
            ));
        }
        if let Some(rate) = s.messages_per_second
            && !(1.0..=1000.0).contains(&rate)
        {
            return Err(ConnectorError::Config(
                "messages_per_second: between 1 and 1000".into(),
            ));
        }
        Ok(s)
    }
}

/// The WhatsApp Cloud API connector.
#[derive(Clone, Copy, Debug, Default)]
pub struct WhatsApp;

impl Connector for WhatsApp {
    fn kind(&self) -> ChannelKind {
        KIND
    }

    fn limits(&self) -> ChannelLimits {
        limits()
    }

    fn inbound(&self, ch: &ChannelConfig, req: &HttpRequest) -> Result<Inbound, ConnectorError> {
        inbound::handle(ch, req)
    }

    fn render(
        &self,
        ch: &ChannelConfig,
        msg: &OutboundMessage,
    ) -> Result<Vec<HttpCall>, ConnectorError> {
        outbound::render(ch, msg)
    }

    fn outcome(&self, call: &HttpCall, resp: &HttpResponse) -> SendOutcome {
        outbound::outcome(call, resp)
    }

    fn validate(&self, settings: &serde_json::Value) -> Result<(), ConnectorError> {
        Settings::from_value(settings).map(|_| ())
    }

    fn upload(
        &self,
        ch: &ChannelConfig,
        msg: &OutboundMessage,
    ) -> Result<Option<HttpCall>, ConnectorError> {
        outbound::upload(ch, msg)
    }

    fn uploaded(&self, call: &HttpCall, resp: &HttpResponse) -> Result<String, SendOutcome> {
        outbound::uploaded(call, resp)
    }

    /// Graph keeps an uploaded file for 30 days; a day is left as margin.
    fn upload_lifetime_secs(&self) -> u64 {
        29 * 86_400
    }

    /// 131047: "more than 24 hours have passed since the customer last replied".
    fn closes_window(&self, code: &str) -> bool {
        code == "131047"
    }

    /// 190: the access token expired or was revoked; 10 and 200: the token lost the
    /// `whatsapp_business_messaging` permission; an HTTP 401 without a Graph error code.
    fn auth_failed(&self, code: &str) -> bool {
        matches!(code, "190" | "10" | "200" | "http_401")
    }

    fn media_request(
        &self,
        ch: &ChannelConfig,
        media_ref: &str,
    ) -> Result<HttpCall, ConnectorError> {
        outbound::media_request(ch, media_ref)
    }

    fn media_next(
        &self,
        ch: &ChannelConfig,
        first: &HttpResponse,
    ) -> Result<Option<HttpCall>, ConnectorError> {
        outbound::media_next(ch, first).map(Some)
    }
}
