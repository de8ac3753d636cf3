//! SMS through Twilio: the example of a third-party connector built as a plugin.
//!
//! Inbound: Twilio's messaging webhook (form-encoded `MessageSid`, `From`, `Body`,
//! `NumMedia`/`MediaUrlN`, and status callbacks with `MessageStatus`), authenticated by
//! `X-Twilio-Signature` (base64 HMAC-SHA1 over the webhook URL followed by every form
//! parameter's name and value, sorted by name, keyed with the auth token). Outbound: the
//! Messages API (`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, basic auth).
//!
//! The crate depends only on `coach-connector-api` and exports itself with
//! `export_connector!`; the gateway loads the `cdylib` from its plugin directory.
// The exported C functions are `unsafe extern "C"` by nature; all unsafe code is the
// connector API's macro.
#![allow(unsafe_code)]

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use coach_connector_api::{
    ChannelConfig, ChannelIdentity, ChannelKind, ChannelLimits, Connector, ConnectorError, Content,
    DedupKey, DeliveryStatus, HttpCall, HttpMethod, HttpRequest, HttpResponse, Inbound,
    InboundEvent, InboundMessage, Interactive, MediaKind, OutboundBody, OutboundMessage,
    ProviderError, SendOutcome, StatusUpdate, UnknownEvent, numbered_menu, split_text,
};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;

/// The channel kind this plugin serves.
pub const KIND: &str = "sms";
/// Twilio concatenates longer texts up to 1,600 characters.
const MAX_TEXT: usize = 1600;

coach_connector_api::export_connector!(Sms, Sms::default);

/// A channel's settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `AC...`.
    pub account_sid: String,
    /// The account's auth token (signs webhooks, authenticates API calls).
    pub auth_token: String,
    /// The Twilio number messages come from, in E.164 (`+15551234567`).
    pub from_number: String,
}

impl Settings {
    fn from_value(value: &Value) -> Result<Self, ConnectorError> {
        let s: Self = serde_json::from_value(value.clone())
            .map_err(|e| ConnectorError::Config(format!("sms channel: {e}")))?;
        if !(s.account_sid.starts_with("AC")
            && s.account_sid.len() == 34
            && s.account_sid.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return Err(ConnectorError::Config(
                "account_sid: the 34-character id starting with AC from Twilio's console".into(),
            ));
        }
        if s.auth_token.trim().is_empty() {
            return Err(ConnectorError::Config(
                "auth_token: must not be empty".into(),
            ));
        }
        let digits = s.from_number.strip_prefix('+').unwrap_or("");
        if digits.len() < 6 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(ConnectorError::Config(
                "from_number: an E.164 number like +15551234567".into(),
            ));
        }
        Ok(s)
    }
}

/// Twilio's signature of a webhook: base64(HMAC-SHA1(auth token, URL + sorted name+value)).
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The SMS connector.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sms;

impl Connector for Sms {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Plugin(KIND.into())
    }

    fn limits(&self) -> ChannelLimits {
        ChannelLimits {
            max_text_chars: MAX_TEXT,
            max_buttons: 0,
            max_button_title_chars: 0,
            max_list_rows: 0,
            messages_per_second: 1.0,
            per_recipient_per_second: 1.0,
            streaming: false,
            service_window_secs: None,
            typing_renewal_secs: None,
            files: false,
        }
    }

    fn inbound(&self, ch: &ChannelConfig, req: &HttpRequest) -> Result<Inbound, ConnectorError> {
        let settings = Settings::from_value(&ch.settings)?;
        // A webhook configured as GET carries its parameters in the query string, and its
        // signature covers the full URL only; a POST's covers the URL and the form fields.
        let get_request = req.method == Some(HttpMethod::Get);
        let params: Vec<(String, String)> = if get_request {
            form_urlencoded::parse(req.query.as_bytes())
        } else {
            form_urlencoded::parse(&req.body)
        }
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
        let given = req
            .header("x-twilio-signature")
            .ok_or_else(|| ConnectorError::Unauthorized("X-Twilio-Signature: missing".into()))?;
        let mut url = ch.webhook_url.clone();
        if !req.query.is_empty() {
            url = format!("{url}?{}", req.query);
        }
        let signed: &[(String, String)] = if get_request { &[] } else { &params };
        let expected = signature(&settings.auth_token, &url, signed);
        if !constant_time_eq(given.trim().as_bytes(), expected.as_bytes()) {
            return Err(ConnectorError::Unauthorized(
                "X-Twilio-Signature does not match this channel's auth token and webhook URL"
                    .into(),
            ));
        }
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if get("AccountSid") != Some(settings.account_sid.as_str()) {
            return Err(ConnectorError::BadRequest(
                "AccountSid: not this channel's account".into(),
            ));
        }
        let sid = get("MessageSid")
            .or_else(|| get("SmsSid"))
            .ok_or_else(|| ConnectorError::BadRequest("MessageSid: missing".into()))?;
        let events = match get("MessageStatus").or_else(|| get("SmsStatus")) {
            // An inbound message carries SmsStatus=received; callbacks report our sends.
            Some(status) if status != "received" => vec![status_event(sid, status, &get)],
            _ => message_events(sid, &get, &params),
        };
        Ok(Inbound {
            events,
            // Twilio wants TwiML back; an empty response sends nothing.
            response: Some(HttpResponse {
                status: 200,
                headers: vec![("content-type".into(), "text/xml".into())],
                body: b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>".to_vec(),
            }),
            refused: Vec::new(),
        })
    }

    fn render(
        &self,
        ch: &ChannelConfig,
        msg: &OutboundMessage,
    ) -> Result<Vec<HttpCall>, ConnectorError> {
        let settings = Settings::from_value(&ch.settings)?;
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            ch.api_base_url.trim_end_matches('/'),
            settings.account_sid
        );
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", settings.account_sid, settings.auth_token));
        let call = |extra: &[(&str, &str)]| {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("To", &msg.to);
            form.append_pair("From", &settings.from_number);
            // Delivery reports come back to the channel's webhook.
            if !ch.webhook_url.is_empty() {
                form.append_pair("StatusCallback", &ch.webhook_url);
            }
            for (k, v) in extra {
                form.append_pair(k, v);
            }
            HttpCall {
                method: HttpMethod::Post,
                url: url.clone(),
                headers: vec![
                    ("authorization".into(), format!("Basic {auth}")),
                    (
                        "content-type".into(),
                        "application/x-www-form-urlencoded".into(),
                    ),
                ],
                body: form.finish().into_bytes(),
                form: Vec::new(),
            }
        };
        let texts = |text: &str| -> Vec<HttpCall> {
            split_text(text, MAX_TEXT)
                .iter()
                .map(|part| call(&[("Body", part)]))
                .collect()
        };
        Ok(match &msg.body {
            OutboundBody::Text { text } => texts(text),
            OutboundBody::Interactive { text, interactive } => {
                let (Interactive::Buttons { choices } | Interactive::List { choices, .. }) =
                    interactive;
                texts(&numbered_menu(text, choices))
            }
            OutboundBody::Media { url, caption, .. } => vec![call(&[
                ("Body", caption.as_deref().unwrap_or("")),
                ("MediaUrl", url),
            ])],
            // MMS fetches media from a public link; library files are private.
            OutboundBody::File { .. } => {
                return Err(ConnectorError::Unsupported(
                    "SMS cannot carry a library file: send a link in text".into(),
                ));
            }
            OutboundBody::Template { .. } => {
                return Err(ConnectorError::Unsupported(
                    "SMS has no message templates: send text".into(),
                ));
            }
            OutboundBody::Typing | OutboundBody::MarkRead { .. } => Vec::new(),
        })
    }

    fn outcome(&self, _call: &HttpCall, resp: &HttpResponse) -> SendOutcome {
        let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        if (200..300).contains(&resp.status) {
            return SendOutcome::Sent {
                provider_message_id: body.get("sid").and_then(Value::as_str).map(str::to_owned),
            };
        }
        let message = body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_owned();
        if resp.status == 429 || resp.status >= 500 {
            let after = resp
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .map(Duration::from_secs);
            return SendOutcome::Retry {
                after,
                reason: format!("Twilio {}: {message}", resp.status),
            };
        }
        SendOutcome::Failed {
            code: body
                .get("code")
                .and_then(Value::as_i64)
                .map_or_else(|| format!("http_{}", resp.status), |c| c.to_string()),
            message,
        }
    }

    fn default_api_base_url(&self) -> Option<String> {
        Some("https://api.twilio.com".into())
    }

    fn validate(&self, settings: &Value) -> Result<(), ConnectorError> {
        Settings::from_value(settings).map(|_| ())
    }

    /// Twilio's media URL, with the account's credentials; only URLs under the configured API
    /// base are fetched (the token never goes anywhere else).
    fn media_request(
        &self,
        ch: &ChannelConfig,
        media_ref: &str,
    ) -> Result<HttpCall, ConnectorError> {
        let settings = Settings::from_value(&ch.settings)?;
        let base = format!("{}/", ch.api_base_url.trim_end_matches('/'));
        if !media_ref.starts_with(&base) {
            return Err(ConnectorError::Unsupported(format!(
                "media outside the Twilio API ({base}) is not fetched"
            )));
        }
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", settings.account_sid, settings.auth_token));
        Ok(HttpCall {
            method: HttpMethod::Get,
            url: media_ref.to_owned(),
            headers: vec![("authorization".into(), format!("Basic {auth}"))],
            body: Vec::new(),
            form: Vec::new(),
        })
    }

    /// Twilio answers media URLs with a redirect to short-lived storage: followed once,
    /// without the credentials.
    fn media_next(
        &self,
        _ch: &ChannelConfig,
        first: &HttpResponse,
    ) -> Result<Option<HttpCall>, ConnectorError> {
        if !(300..400).contains(&first.status) {
            return Ok(None);
        }
        let location = first
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("location"))
            .map(|(_, v)| v.clone())
            .filter(|l| l.starts_with("https://") || l.starts_with("http://"))
            .ok_or_else(|| {
                ConnectorError::BadRequest("media redirect without a location".into())
            })?;
        Ok(Some(HttpCall {
            method: HttpMethod::Get,
            url: location,
            headers: Vec::new(),
            body: Vec::new(),
            form: Vec::new(),
        }))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An inbound SMS or MMS: its text (or first attachment with the text as caption), then one
/// event per further attachment (`MediaUrl1`...), each with its own dedup key.
fn message_events<'a>(
    sid: &str,
    get: &impl Fn(&str) -> Option<&'a str>,
    params: &[(String, String)],
) -> Vec<InboundEvent> {
    let Some(from) = get("From").filter(|f| !f.is_empty()) else {
        return vec![unknown(sid, "message_without_sender", params)];
    };
    let body = get("Body").unwrap_or("").to_owned();
    let media_count = get("NumMedia")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0)
        .min(10);
    let media = |i: usize, caption: Option<String>| {
        let mime = get(&format!("MediaContentType{i}")).map(str::to_owned);
        let kind = match mime.as_deref().unwrap_or("") {
            m if m.starts_with("image/") => MediaKind::Image,
            m if m.starts_with("audio/") => MediaKind::Audio,
            m if m.starts_with("video/") => MediaKind::Video,
            _ => MediaKind::Document,
        };
        Content::Media {
            media: kind,
            media_ref: get(&format!("MediaUrl{i}")).unwrap_or("").to_owned(),
            mime,
            size: None,
            caption,
            filename: None,
        }
    };
    let event = |key: String, content: Content| {
        InboundEvent::Message(InboundMessage {
            dedup_key: DedupKey(key),
            provider_message_id: sid.to_owned(),
            from: ChannelIdentity::id(from),
            // Twilio's webhook carries no timestamp: the gateway's receipt time is recorded too.
            timestamp: DateTime::<Utc>::UNIX_EPOCH,
            content,
            reply_to: None,
        })
    };
    if media_count == 0 {
        return vec![event(sid.to_owned(), Content::Text { body })];
    }
    let mut events = vec![event(
        sid.to_owned(),
        media(0, (!body.is_empty()).then_some(body)),
    )];
    for i in 1..media_count {
        events.push(event(format!("{sid}:media:{i}"), media(i, None)));
    }
    events
}

fn status_event<'a>(
    sid: &str,
    status: &str,
    get: &impl Fn(&str) -> Option<&'a str>,
) -> InboundEvent {
    let mapped = match status {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" | "undelivered" => DeliveryStatus::Failed,
        // queued, sending, accepted, scheduled: nothing the outbox does not know.
        _ => DeliveryStatus::Pending,
    };
    InboundEvent::Status(StatusUpdate {
        dedup_key: DedupKey(format!("status:{sid}:{status}")),
        provider_message_id: sid.to_owned(),
        status: mapped,
        timestamp: DateTime::<Utc>::UNIX_EPOCH,
        recipient: get("To").map(str::to_owned),
        error: get("ErrorCode").map(|code| ProviderError {
            code: code.to_owned(),
            title: get("ErrorMessage").unwrap_or(status).to_owned(),
        }),
    })
}

fn unknown(sid: &str, kind: &str, params: &[(String, String)]) -> InboundEvent {
    InboundEvent::Unknown(UnknownEvent {
        dedup_key: DedupKey(sid.to_owned()),
        kind: kind.to_owned(),
        from: None,
        raw: Value::Object(
            params
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect(),
        ),
    })
}
