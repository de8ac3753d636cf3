//! The plugin ABI: a connector built as a `cdylib` exports three C functions that pass JSON in
//! byte buffers, so no Rust type, allocator or async runtime crosses the boundary.
//!
//! ```text
//! uint32_t  coach_connector_abi_version(void);
//! Buffer    coach_connector_call(const uint8_t *op, size_t op_len,
//!                                const uint8_t *input, size_t input_len);
//! void      coach_connector_free(Buffer buffer);
//! ```
//!
//! `op` is one of [`Op`]'s names; `input` and the returned buffer are JSON documents
//! ([`Reply`]: `{"ok": ...}` or `{"error": ...}`). The buffer is owned by the plugin and handed
//! back to its `coach_connector_free`. A panic inside the plugin is caught at the boundary and
//! returned as an error. A plugin exports all of this with [`export_connector!`](crate::export_connector).
#![allow(unsafe_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    ChannelConfig, ChannelLimits, Connector, ConnectorError, HttpCall, HttpRequest, HttpResponse,
    OutboundMessage,
};

/// The ABI version this crate speaks; the gateway refuses a plugin that reports another.
pub const ABI_VERSION: u32 = 1;
/// Symbol names, NUL-terminated for `dlsym`.
pub const SYMBOL_VERSION: &[u8] = b"coach_connector_abi_version\0";
/// See [`SYMBOL_VERSION`].
pub const SYMBOL_CALL: &[u8] = b"coach_connector_call\0";
/// See [`SYMBOL_VERSION`].
pub const SYMBOL_FREE: &[u8] = b"coach_connector_free\0";

/// A byte buffer allocated by the plugin (a `Vec<u8>`'s parts).
#[repr(C)]
#[derive(Debug)]
pub struct Buffer {
    /// Start of the bytes.
    pub ptr: *mut u8,
    /// Number of bytes.
    pub len: usize,
    /// Allocated capacity (for the plugin's own free).
    pub cap: usize,
}

impl Buffer {
    /// Hand a vector over the boundary.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        let mut bytes = std::mem::ManuallyDrop::new(bytes);
        Self {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            cap: bytes.capacity(),
        }
    }

    /// Take a buffer made by [`Buffer::from_vec`] in this same library back and drop it.
    ///
    /// # Safety
    /// `self` must come from [`Buffer::from_vec`] of this library and not be freed twice.
    pub unsafe fn free(self) {
        if !self.ptr.is_null() {
            // SAFETY: the parts are those of a Vec<u8> this library leaked (caller's contract).
            drop(unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) });
        }
    }

    /// Copy the bytes out (host side; the buffer stays owned by the plugin).
    ///
    /// # Safety
    /// `ptr` must point at `len` readable bytes (or be null with `len` 0).
    pub unsafe fn to_vec(&self) -> Vec<u8> {
        if self.ptr.is_null() || self.len == 0 {
            return Vec::new();
        }
        // SAFETY: the caller guarantees `len` readable bytes at `ptr`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }.to_vec()
    }
}

/// Borrow `len` bytes at `ptr` as a slice (empty for null).
///
/// # Safety
/// `ptr` must point at `len` readable bytes that outlive the returned slice.
pub unsafe fn slice<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: the caller guarantees `len` readable bytes at `ptr`.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

/// The operations, by the name passed as `op`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Input `null`; output [`Description`].
    Describe,
    /// Input [`InboundInput`]; output [`crate::Inbound`].
    Inbound,
    /// Input [`RenderInput`]; output `Vec<HttpCall>`.
    Render,
    /// Input [`OutcomeInput`]; output [`crate::SendOutcome`].
    Outcome,
    /// Input [`ConnectInput`]; output `Vec<HttpCall>`.
    Connect,
    /// Input [`ChannelConfig`]; output `Vec<HttpCall>`.
    Disconnect,
    /// Input the settings JSON; output `null`.
    Validate,
    /// Input [`MediaInput`]; output [`HttpCall`].
    MediaRequest,
    /// Input [`MediaNextInput`]; output `Option<HttpCall>`.
    MediaNext,
}

impl Op {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Describe => "describe",
            Self::Inbound => "inbound",
            Self::Render => "render",
            Self::Outcome => "outcome",
            Self::Connect => "connect",
            Self::Disconnect => "disconnect",
            Self::Validate => "validate",
            Self::MediaRequest => "media_request",
            Self::MediaNext => "media_next",
        }
    }

    fn parse(name: &[u8]) -> Option<Self> {
        [
            Self::Describe,
            Self::Inbound,
            Self::Render,
            Self::Outcome,
            Self::Connect,
            Self::Disconnect,
            Self::Validate,
            Self::MediaRequest,
            Self::MediaNext,
        ]
        .into_iter()
        .find(|op| op.name().as_bytes() == name)
    }
}

/// What a plugin says about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Description {
    /// Its channel kind (`[a-z0-9_-]`, not a built-in kind).
    pub kind: String,
    /// What its channel carries.
    pub limits: ChannelLimits,
    /// Its provider's API base URL unless the operator sets one.
    #[serde(default)]
    pub default_api_base_url: Option<String>,
}

/// Input of [`Op::Inbound`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InboundInput {
    /// The channel.
    pub channel: ChannelConfig,
    /// The webhook request.
    pub request: HttpRequest,
}

/// Input of [`Op::Render`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RenderInput {
    /// The channel.
    pub channel: ChannelConfig,
    /// The message.
    pub message: OutboundMessage,
}

/// Input of [`Op::Outcome`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutcomeInput {
    /// The call made.
    pub call: HttpCall,
    /// The provider's answer.
    pub response: HttpResponse,
}

/// Input of [`Op::Connect`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConnectInput {
    /// The channel.
    pub channel: ChannelConfig,
    /// Its webhook URL.
    pub webhook_url: String,
}

/// Input of [`Op::MediaRequest`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MediaInput {
    /// The channel.
    pub channel: ChannelConfig,
    /// The provider's handle of the file.
    pub media_ref: String,
}

/// Input of [`Op::MediaNext`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MediaNextInput {
    /// The channel.
    pub channel: ChannelConfig,
    /// The answer to the first media call.
    pub response: HttpResponse,
}

/// The answer to any call.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// It worked.
    Ok(Value),
    /// It did not; a panic in the plugin is reported as `Config("plugin panicked: ...")`.
    Error(ConnectorError),
}

fn run<T: Serialize>(
    input: &[u8],
    f: impl FnOnce(Value) -> Result<T, ConnectorError>,
) -> Result<Value, ConnectorError> {
    let value: Value = if input.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(input)
            .map_err(|e| ConnectorError::BadRequest(format!("plugin input is not JSON: {e}")))?
    };
    let out = f(value)?;
    serde_json::to_value(out).map_err(|e| ConnectorError::Config(format!("plugin output: {e}")))
}

fn from<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ConnectorError> {
    serde_json::from_value(value)
        .map_err(|e| ConnectorError::BadRequest(format!("plugin input: {e}")))
}

/// Plugin side: run `op` on the connector `make` builds (once), catching panics; the JSON
/// [`Reply`] as bytes. Used by [`export_connector!`](crate::export_connector).
pub fn dispatch<C: Connector>(
    connector: &std::sync::OnceLock<C>,
    make: fn() -> C,
    op: &[u8],
    input: &[u8],
) -> Vec<u8> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let c = connector.get_or_init(make);
        let op = Op::parse(op).ok_or_else(|| {
            ConnectorError::Unsupported(format!(
                "operation {:?} (ABI v{ABI_VERSION})",
                String::from_utf8_lossy(op)
            ))
        })?;
        match op {
            Op::Describe => run(input, |_| {
                Ok(Description {
                    kind: c.kind().to_string(),
                    limits: c.limits(),
                    default_api_base_url: c.default_api_base_url(),
                })
            }),
            Op::Inbound => run(input, |v| {
                let i: InboundInput = from(v)?;
                c.inbound(&i.channel, &i.request)
            }),
            Op::Render => run(input, |v| {
                let i: RenderInput = from(v)?;
                c.render(&i.channel, &i.message)
            }),
            Op::Outcome => run(input, |v| {
                let i: OutcomeInput = from(v)?;
                Ok(c.outcome(&i.call, &i.response))
            }),
            Op::Connect => run(input, |v| {
                let i: ConnectInput = from(v)?;
                c.connect(&i.channel, &i.webhook_url)
            }),
            Op::Disconnect => run(input, |v| c.disconnect(&from(v)?)),
            Op::Validate => run(input, |v| c.validate(&v)),
            Op::MediaRequest => run(input, |v| {
                let i: MediaInput = from(v)?;
                c.media_request(&i.channel, &i.media_ref)
            }),
            Op::MediaNext => run(input, |v| {
                let i: MediaNextInput = from(v)?;
                c.media_next(&i.channel, &i.response)
            }),
        }
    }));
    let reply = match result {
        Ok(Ok(value)) => Reply::Ok(value),
        Ok(Err(e)) => Reply::Error(e),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Reply::Error(ConnectorError::Config(format!("plugin panicked: {what}")))
        }
    };
    serde_json::to_vec(&reply).unwrap_or_else(|_| {
        br#"{"error":{"error":"config","detail":"unserializable reply"}}"#.to_vec()
    })
}

/// Export a connector from a `cdylib` crate: `export_connector!(MyConnector, MyConnector::new);`
/// (the type, and a `fn() -> MyConnector` that builds it on first use).
#[macro_export]
macro_rules! export_connector {
    ($ty:ty, $make:expr) => {
        static COACH_CONNECTOR: ::std::sync::OnceLock<$ty> = ::std::sync::OnceLock::new();

        /// The ABI version this plugin speaks.
        #[unsafe(no_mangle)]
        pub extern "C" fn coach_connector_abi_version() -> u32 {
            $crate::plugin::ABI_VERSION
        }

        /// Run one operation; the reply buffer goes back to `coach_connector_free`.
        ///
        /// # Safety
        /// `op` and `input` must point at `op_len` and `input_len` readable bytes.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn coach_connector_call(
            op: *const u8,
            op_len: usize,
            input: *const u8,
            input_len: usize,
        ) -> $crate::plugin::Buffer {
            // SAFETY: the host passes valid buffers for the duration of the call.
            let (op, input) = unsafe {
                (
                    $crate::plugin::slice(op, op_len),
                    $crate::plugin::slice(input, input_len),
                )
            };
            $crate::plugin::Buffer::from_vec($crate::plugin::dispatch(
                &COACH_CONNECTOR,
                $make,
                op,
                input,
            ))
        }

        /// Free a buffer returned by `coach_connector_call`.
        ///
        /// # Safety
        /// `buffer` must come from `coach_connector_call` and be freed once.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn coach_connector_free(buffer: $crate::plugin::Buffer) {
            // SAFETY: the host hands back a buffer this library made, once.
            unsafe { buffer.free() }
        }
    };
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{ChannelKind, Inbound, SendOutcome};

    #[derive(Default)]
    struct Panicky;

    impl Connector for Panicky {
        fn kind(&self) -> ChannelKind {
            ChannelKind::Plugin("panicky".into())
        }
        fn limits(&self) -> ChannelLimits {
            ChannelLimits {
                max_text_chars: 10,
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
        fn inbound(&self, _: &ChannelConfig, _: &HttpRequest) -> Result<Inbound, ConnectorError> {
            panic!("bug in the plugin")
        }
        fn render(
            &self,
            _: &ChannelConfig,
            _: &OutboundMessage,
        ) -> Result<Vec<HttpCall>, ConnectorError> {
            Err(ConnectorError::Unsupported("nothing".into()))
        }
        fn outcome(&self, _: &HttpCall, _: &HttpResponse) -> SendOutcome {
            SendOutcome::Sent {
                provider_message_id: None,
            }
        }
    }

    static CONNECTOR: std::sync::OnceLock<Panicky> = std::sync::OnceLock::new();

    fn call(op: &str, input: &serde_json::Value) -> Reply {
        let out = dispatch(
            &CONNECTOR,
            Panicky::default,
            op.as_bytes(),
            input.to_string().as_bytes(),
        );
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn describe_errors_and_panics_come_back_as_json() {
        match call("describe", &serde_json::Value::Null) {
            Reply::Ok(v) => assert_eq!(v["kind"], "panicky"),
            Reply::Error(e) => panic!("{e}"),
        }
        let channel = serde_json::json!({ "tenant_id": uuid::Uuid::nil(), "channel_id": uuid::Uuid::nil(), "settings": {}, "api_base_url": "" });
        let inbound = serde_json::json!({ "channel": channel, "request": {} });
        assert!(
            matches!(call("inbound", &inbound), Reply::Error(ConnectorError::Config(m)) if m.contains("plugin panicked: bug in the plugin"))
        );
        assert!(matches!(
            call("fly", &serde_json::Value::Null),
            Reply::Error(ConnectorError::Unsupported(_))
        ));
        assert!(matches!(
            call("render", &serde_json::json!({ "nonsense": 1 })),
            Reply::Error(ConnectorError::BadRequest(_))
        ));
        let out = dispatch(&CONNECTOR, Panicky::default, b"describe", b"{not json");
        assert!(matches!(
            serde_json::from_slice(&out).unwrap(),
            Reply::Error(ConnectorError::BadRequest(_))
        ));
    }

    #[test]
    fn buffers_round_trip() {
        let buffer = Buffer::from_vec(b"hello".to_vec());
        // SAFETY: made just above by from_vec, freed once.
        unsafe {
            assert_eq!(buffer.to_vec(), b"hello");
            buffer.free();
        }
    }
}
