//! Telegram Bot API connector: checks `X-Telegram-Bot-Api-Secret-Token`, parses updates into
//! normalized events (messages keyed by chat id + message id, other updates by `update_id`), and
//! renders outbound messages as Bot API calls. Sans-IO: the gateway does the HTTP, the webhook
//! registration calls this crate renders, and the `getUpdates` loop of polling mode.
//!
//! Layout: [`inbound`] (secret check, update parsing, polling), [`outbound`] (rendering with
//! HTML escaping and inline keyboards, judging the Bot API's answers).

pub mod inbound;
pub mod outbound;

use coach_connector_api::{
    ChannelConfig, ChannelKind, ChannelLimits, Connector, ConnectorError, HttpCall, HttpRequest,
    HttpResponse, Inbound, OutboundMessage, SendOutcome,
};
use serde::Deserialize;

pub use inbound::{get_updates_call, parse_updates};
pub use outbound::answer_callback_call;

/// The channel kind this crate serves.
pub const KIND: ChannelKind = ChannelKind::Telegram;

/// Telegram Bot API limits: 4,096-character texts, about 1 message/s per chat and 30/s per bot.
pub fn limits() -> ChannelLimits {
    ChannelLimits {
        max_text_chars: 4096,
        max_buttons: 8,
        max_button_title_chars: 64,
        max_list_rows: 0,
        messages_per_second: 30.0,
        per_recipient_per_second: 1.0,
        streaming: false,
        service_window_secs: None,
        // Telegram shows "typing..." for about 5 s.
        typing_renewal_secs: Some(4),
        files: true,
    }
}

/// How the bot receives updates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Telegram calls the gateway's webhook (it must be reachable over HTTPS).
    #[default]
    Webhook,
    /// The gateway long-polls `getUpdates` (no public address needed).
    Polling,
}

/// A Telegram channel's settings.
#[derive(Clone, Debug, Deserialize)]
pub struct Settings {
    /// The token BotFather gave (`123456:ABC...`).
    pub bot_token: String,
    /// Webhook (default) or polling.
    #[serde(default)]
    pub mode: Mode,
    /// The secret Telegram sends back in `X-Telegram-Bot-Api-Secret-Token` (the gateway makes
    /// one when the channel is created).
    #[serde(default)]
    pub secret_token: Option<String>,
}

impl Settings {
    /// Read and check the settings of a channel.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, ConnectorError> {
        let s: Self = serde_json::from_value(value.clone())
            .map_err(|e| ConnectorError::Config(format!("telegram channel: {e}")))?;
        let valid_token = s.bot_token.split_once(':').is_some_and(|(id, secret)| {
            !id.is_empty()
                && id.chars().all(|c| c.is_ascii_digit())
                && !secret.is_empty()
                && secret
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
        if !valid_token {
            return Err(ConnectorError::Config(
                "bot_token: expected the token BotFather gave, like 123456789:AAE...".into(),
            ));
        }
        if let Some(secret) = &s.secret_token
            && (secret.is_empty()
                || secret.len() > 256
                || !secret
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        {
            return Err(ConnectorError::Config(
                "secret_token: 1-256 characters of A-Z, a-z, 0-9, _ and -".into(),
            ));
        }
        Ok(s)
    }

    /// `{base}/bot{token}/{method}`: the token is in the path, so the gateway redacts URLs.
    pub fn method_url(&self, base: &str, method: &str) -> String {
        format!(
            "{}/bot{}/{method}",
            base.trim_end_matches('/'),
            self.bot_token
        )
    }
}

/// The Telegram Bot API connector.
#[derive(Clone, Copy, Debug, Default)]
pub struct Telegram;

impl Connector for Telegram {
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

    fn connect(
        &self,
        ch: &ChannelConfig,
        webhook_url: &str,
    ) -> Result<Vec<HttpCall>, ConnectorError> {
        outbound::connect(ch, webhook_url)
    }

    fn disconnect(&self, ch: &ChannelConfig) -> Result<Vec<HttpCall>, ConnectorError> {
        let settings = Settings::from_value(&ch.settings)?;
        Ok(vec![outbound::json_call(
            settings.method_url(&ch.api_base_url, "deleteWebhook"),
            &serde_json::json!({ "drop_pending_updates": false }),
        )])
    }

    fn validate(&self, settings: &serde_json::Value) -> Result<(), ConnectorError> {
        Settings::from_value(settings).map(|_| ())
    }

    /// 401 Unauthorized: the bot token was revoked or regenerated in BotFather (a 403 is one
    /// person blocking the bot, not the channel failing).
    fn auth_failed(&self, code: &str) -> bool {
        code == "401"
    }

    /// `getFile` with the file id.
    fn media_request(
        &self,
        ch: &ChannelConfig,
        media_ref: &str,
    ) -> Result<HttpCall, ConnectorError> {
        let settings = Settings::from_value(&ch.settings)?;
        Ok(outbound::json_call(
            settings.method_url(&ch.api_base_url, "getFile"),
            &serde_json::json!({ "file_id": media_ref }),
        ))
    }

    /// The download of `result.file_path` (`{base}/file/bot{token}/{path}`).
    fn media_next(
        &self,
        ch: &ChannelConfig,
        first: &HttpResponse,
    ) -> Result<Option<HttpCall>, ConnectorError> {
        let settings = Settings::from_value(&ch.settings)?;
        let body: serde_json::Value = serde_json::from_slice(&first.body).unwrap_or_default();
        let path = body
            .pointer("/result/file_path")
            .and_then(serde_json::Value::as_str)
            .filter(|p| !p.contains("..") && !p.starts_with('/'))
            .ok_or_else(|| {
                ConnectorError::BadRequest(format!(
                    "getFile (HTTP {}) named no file_path: {}",
                    first.status,
                    body.get("description")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("no description")
                ))
            })?;
        Ok(Some(coach_connector_api::HttpCall {
            method: coach_connector_api::HttpMethod::Get,
            url: format!(
                "{}/file/bot{}/{path}",
                ch.api_base_url.trim_end_matches('/'),
                settings.bot_token
            ),
            headers: Vec::new(),
            body: Vec::new(),
            form: Vec::new(),
        }))
    }
}
