//! The sans-IO connector contract: bytes in, events out; messages in, HTTP calls out.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::{ChannelId, ChannelKind, TenantId};
use crate::inbound::InboundEvent;
use crate::outbound::OutboundMessage;

/// An HTTP method, as far as connectors need them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
}

/// A request the gateway received for a channel (a webhook call), handed to the connector whole.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// The method.
    pub method: Option<HttpMethod>,
    /// The query string without `?`, undecoded.
    #[serde(default)]
    pub query: String,
    /// Headers with lowercase names.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The raw body: signatures are computed over these exact bytes.
    #[serde(default)]
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The first header of that (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP call the gateway should make on the connector's behalf.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpCall {
    /// The method.
    pub method: HttpMethod,
    /// The full URL, built from the operator-configured API base URL.
    pub url: String,
    /// Headers to send (may carry credentials: the gateway never logs them).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body.
    #[serde(default)]
    pub body: Vec<u8>,
    /// A `multipart/form-data` form, sent instead of `body` when not empty (file uploads):
    /// the gateway encodes it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub form: Vec<FormPart>,
}

/// One part of a `multipart/form-data` form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormPart {
    /// The field's name.
    pub name: String,
    /// Its value: text, or a file's bytes.
    pub value: Vec<u8>,
    /// The file name, for a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// The file's type, for a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
}

impl FormPart {
    /// A text field.
    pub fn text(name: &str, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: value.as_bytes().to_vec(),
            filename: None,
            mime: None,
        }
    }

    /// A file field.
    pub fn file(name: &str, value: Vec<u8>, filename: &str, mime: &str) -> Self {
        Self {
            name: name.to_owned(),
            value,
            filename: Some(filename.to_owned()),
            mime: Some(mime.to_owned()),
        }
    }
}

/// A response: what the provider answered to an [`HttpCall`], or what the gateway should answer
/// to a webhook (verification challenges).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers with lowercase names.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body.
    #[serde(default)]
    pub body: Vec<u8>,
}

/// What a connector made of a webhook call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    /// Every event in the payload, in payload order.
    pub events: Vec<InboundEvent>,
    /// A response the provider expects instead of a plain 200 (e.g. a verification challenge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<HttpResponse>,
    /// Parts of the payload refused without failing the request (say, an entry addressed to
    /// another channel of a shared app): the gateway logs them and stores nothing of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
}

/// One channel account's configuration, as the connector sees it at call time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelConfig {
    /// The tenant owning the channel.
    pub tenant_id: TenantId,
    /// The channel.
    pub channel_id: ChannelId,
    /// Per-kind settings with secrets decrypted (never logged, never stored in rows).
    pub settings: serde_json::Value,
    /// The provider's API base URL: operator configuration, never tenant input.
    pub api_base_url: String,
    /// The channel's webhook URL as providers call it (some sign it, e.g. Twilio).
    #[serde(default)]
    pub webhook_url: String,
}

/// What a channel can carry and how fast.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelLimits {
    /// Longest text in one message, in characters.
    pub max_text_chars: usize,
    /// Most reply buttons in one message (0: none).
    pub max_buttons: usize,
    /// Longest button title, in characters.
    pub max_button_title_chars: usize,
    /// Most rows in a list message (0: no lists).
    pub max_list_rows: usize,
    /// Sends per second per channel account.
    pub messages_per_second: f64,
    /// Sends per second to one recipient.
    pub per_recipient_per_second: f64,
    /// Whether the channel can show an answer while it is generated.
    pub streaming: bool,
    /// Free-form messages may go out only this many seconds after the contact's last message
    /// (WhatsApp's 24-hour customer service window); outside it, only approved templates.
    /// `None`: the channel has no such window. Plugins built before this field read `None`.
    #[serde(default)]
    pub service_window_secs: Option<u64>,
    /// How often the channel's "typing..." signal is renewed while an answer is generated;
    /// `None`: the channel shows none (or streams the answer itself).
    #[serde(default)]
    pub typing_renewal_secs: Option<u64>,
    /// Whether the channel carries a library file (`OutboundBody::File`); the gateway refuses to
    /// send one where it does not. Plugins built before this field read `false`.
    #[serde(default)]
    pub files: bool,
}

/// What became of one sent call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SendOutcome {
    /// Accepted; the provider's message id when it gives one.
    Sent {
        /// The provider's id for the sent message.
        provider_message_id: Option<String>,
    },
    /// Try again later (rate limits, provider trouble).
    Retry {
        /// How long the provider asked us to wait.
        after: Option<Duration>,
        /// Why, for the record.
        reason: String,
    },
    /// Will never succeed as it is; the provider's code is kept.
    Failed {
        /// The provider's error code.
        code: String,
        /// The provider's message.
        message: String,
    },
}

/// Why a connector refused a request or a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", content = "detail", rename_all = "snake_case")]
pub enum ConnectorError {
    /// The signature or secret did not verify (HTTP 401).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// A verification handshake with the wrong token (HTTP 403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The body is not what the provider sends (HTTP 400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The channel's configuration is missing or invalid.
    #[error("channel configuration: {0}")]
    Config(String),
    /// The channel cannot carry this message.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The channel's rules forbid sending it now (WhatsApp: free-form text outside the
    /// 24-hour window with no template configured). The message is held, not dropped.
    #[error("held: {0}")]
    Held(String),
}

/// A channel connector: pure, deterministic code with no I/O.
///
/// The gateway calls [`Connector::inbound`] with each webhook request and stores what it returns
/// before acknowledging; it calls [`Connector::render`] at send time and executes the calls itself,
/// then reports each response through [`Connector::outcome`].
pub trait Connector: Send + Sync {
    /// The channel kind this connector serves.
    fn kind(&self) -> ChannelKind;
    /// What the channel can carry and how fast.
    fn limits(&self) -> ChannelLimits;
    /// Authenticate and parse a webhook request into events.
    fn inbound(&self, ch: &ChannelConfig, req: &HttpRequest) -> Result<Inbound, ConnectorError>;
    /// Turn one message into the HTTP calls that send it, in order.
    fn render(
        &self,
        ch: &ChannelConfig,
        msg: &OutboundMessage,
    ) -> Result<Vec<HttpCall>, ConnectorError>;
    /// Judge the provider's response to one call.
    fn outcome(&self, call: &HttpCall, resp: &HttpResponse) -> SendOutcome;
    /// Calls that register a new channel with its provider (Telegram: `setWebhook` with the
    /// webhook URL and a secret); none by default.
    fn connect(
        &self,
        _ch: &ChannelConfig,
        _webhook_url: &str,
    ) -> Result<Vec<HttpCall>, ConnectorError> {
        Ok(Vec::new())
    }
    /// Calls that unregister a removed channel (Telegram: `deleteWebhook`); none by default.
    fn disconnect(&self, _ch: &ChannelConfig) -> Result<Vec<HttpCall>, ConnectorError> {
        Ok(Vec::new())
    }
    /// The first call that fetches an inbound media file (`Content::Media::media_ref`); channels
    /// without downloadable media answer `Unsupported` (the default).
    fn media_request(
        &self,
        _ch: &ChannelConfig,
        _media_ref: &str,
    ) -> Result<HttpCall, ConnectorError> {
        Err(ConnectorError::Unsupported(
            "this channel has no media to fetch".into(),
        ))
    }
    /// After the first media call: `Some(call)` when its answer only says where the file is
    /// (WhatsApp's media URL, Telegram's file path), `None` when the answer is the file itself.
    fn media_next(
        &self,
        _ch: &ChannelConfig,
        _first: &HttpResponse,
    ) -> Result<Option<HttpCall>, ConnectorError> {
        Ok(None)
    }
    /// The call that uploads a file to the provider before the message that sends it
    /// (WhatsApp's `/media`), given the message with the file's bytes in
    /// [`OutboundBody::File`](crate::OutboundBody::File)`::data`; `None` (the default) when the
    /// channel takes the bytes with the message itself.
    fn upload(
        &self,
        _ch: &ChannelConfig,
        _msg: &OutboundMessage,
    ) -> Result<Option<HttpCall>, ConnectorError> {
        Ok(None)
    }
    /// The provider's id for an uploaded file, from the upload's answer; otherwise what to do
    /// (retry later, or failed with the provider's code). The gateway keeps the id for the
    /// channel and sends the file by it until [`Connector::upload_lifetime_secs`] has passed.
    fn uploaded(&self, call: &HttpCall, resp: &HttpResponse) -> Result<String, SendOutcome> {
        Err(match self.outcome(call, resp) {
            SendOutcome::Sent { .. } => SendOutcome::Failed {
                code: "upload".into(),
                message: "the upload's answer names no file".into(),
            },
            other => other,
        })
    }
    /// How long an uploaded file's id stays usable (WhatsApp: 30 days).
    fn upload_lifetime_secs(&self) -> u64 {
        0
    }
    /// Whether a failure code means the provider considers the contact's messaging window
    /// closed (WhatsApp 131047); the gateway then renders the message again as outside the
    /// window (a template, or held).
    fn closes_window(&self, _code: &str) -> bool {
        false
    }
    /// Whether a failure code means the channel's credentials stopped working (WhatsApp 190,
    /// an expired or revoked access token; Telegram 401, a revoked bot token): every later
    /// message will fail the same way until a creator fixes the channel, so the gateway alerts
    /// the team instead of only dead-lettering.
    fn auth_failed(&self, _code: &str) -> bool {
        false
    }
    /// The provider's API base URL when the operator configured none (plugins; the built-in
    /// connectors' defaults live in the gateway's configuration).
    fn default_api_base_url(&self) -> Option<String> {
        None
    }
    /// Check a channel's settings when a creator saves them, naming the field at fault.
    fn validate(&self, _settings: &serde_json::Value) -> Result<(), ConnectorError> {
        Ok(())
    }
}
