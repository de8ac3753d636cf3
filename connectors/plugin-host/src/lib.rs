//! Connector plugins: `cdylib`s speaking the C ABI of `coach_connector_api::plugin`, loaded
//! with libloading from the plugin directory at start-up. A plugin is checked before use (ABI
//! version, a kind that is new and valid); its panics are caught on its side of the boundary.
// Loading a shared library and calling its C functions is unsafe by nature; each call below
// states what it relies on.
#![allow(unsafe_code)]

use std::path::{Path, PathBuf};

use coach_connector_api::plugin::{
    ABI_VERSION, Buffer, ConnectInput, Description, InboundInput, MediaInput, MediaNextInput, Op,
    OutcomeInput, RenderInput, Reply, SYMBOL_CALL, SYMBOL_FREE, SYMBOL_VERSION,
};
use coach_connector_api::{
    ChannelConfig, ChannelKind, ChannelLimits, Connector, ConnectorError, HttpCall, HttpRequest,
    HttpResponse, Inbound, OutboundMessage, SendOutcome,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

type VersionFn = unsafe extern "C" fn() -> u32;
type CallFn = unsafe extern "C" fn(*const u8, usize, *const u8, usize) -> Buffer;
type FreeFn = unsafe extern "C" fn(Buffer);

/// Why a plugin was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The directory could not be read.
    #[error("plugin directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The library did not load or lacks a symbol.
    #[error("plugin {path}: {detail}")]
    Load {
        /// The library.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// It speaks another ABI version.
    #[error(
        "plugin {path} speaks connector ABI v{found}, this gateway v{ABI_VERSION}: rebuild it against this gateway's coach-connector-api"
    )]
    Version {
        /// The library.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
    /// Two connectors claim one kind.
    #[error("two connectors claim channel kind {0:?}: remove one plugin")]
    DuplicateKind(String),
}

/// A loaded plugin: a [`Connector`] whose calls cross the C ABI as JSON.
pub struct PluginConnector {
    path: PathBuf,
    description: Description,
    kind: ChannelKind,
    call: CallFn,
    free: FreeFn,
}

impl std::fmt::Debug for PluginConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginConnector")
            .field("path", &self.path)
            .field("kind", &self.description.kind)
            .finish()
    }
}

/// Load every shared library of `dir` (none when it does not exist).
pub fn load_dir(dir: &Path) -> Result<Vec<PluginConnector>, PluginError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(PluginError::Dir {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("so" | "dylib" | "dll")
            )
        })
        .collect();
    paths.sort();
    paths.iter().map(|p| PluginConnector::load(p)).collect()
}

impl PluginConnector {
    /// Load one plugin and check it.
    pub fn load(path: &Path) -> Result<Self, PluginError> {
        let load_error = |detail: String| PluginError::Load {
            path: path.to_owned(),
            detail,
        };
        // SAFETY: loading runs the library's initializers; plugins are code the operator
        // installed in the plugin directory, trusted like the gateway binary itself.
        let library = unsafe { libloading::Library::new(path) }
            .map_err(|e| load_error(format!("cannot load: {e}")))?;
        // Never unloaded: the function pointers below stay valid for the life of the process
        // (unloading Rust code with live thread-locals or statics is not safe to attempt).
        let library: &'static libloading::Library = Box::leak(Box::new(library));
        // SAFETY: the symbols are declared by `export_connector!` with exactly these
        // signatures; the version is checked before any other symbol is called.
        let (version, call, free) = unsafe {
            let version = *library
                .get::<VersionFn>(SYMBOL_VERSION)
                .map_err(|e| load_error(format!("not a connector plugin: {e}")))?;
            let call = *library
                .get::<CallFn>(SYMBOL_CALL)
                .map_err(|e| load_error(format!("not a connector plugin: {e}")))?;
            let free = *library
                .get::<FreeFn>(SYMBOL_FREE)
                .map_err(|e| load_error(format!("not a connector plugin: {e}")))?;
            (version, call, free)
        };
        // SAFETY: a function taking nothing and returning an integer.
        let found = unsafe { version() };
        if found != ABI_VERSION {
            return Err(PluginError::Version {
                path: path.to_owned(),
                found,
            });
        }
        let mut plugin = Self {
            path: path.to_owned(),
            description: Description {
                kind: String::new(),
                limits: ChannelLimits {
                    max_text_chars: 0,
                    max_buttons: 0,
                    max_button_title_chars: 0,
                    max_list_rows: 0,
                    messages_per_second: 1.0,
                    per_recipient_per_second: 1.0,
                    streaming: false,
                    service_window_secs: None,
                    typing_renewal_secs: None,
                    files: false,
                },
                default_api_base_url: None,
            },
            kind: ChannelKind::Plugin(String::new()),
            call,
            free,
        };
        let description: Description = plugin
            .invoke(Op::Describe, &())
            .map_err(|e| load_error(format!("describe failed: {e}")))?;
        let kind = match description.kind.parse::<ChannelKind>() {
            Ok(kind @ ChannelKind::Plugin(_)) => kind,
            _ => {
                return Err(load_error(format!(
                    "declares kind {:?}: plugins need a new name of [a-z0-9_-]",
                    description.kind
                )));
            }
        };
        plugin.description = description;
        plugin.kind = kind;
        Ok(plugin)
    }

    /// Where it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn invoke<T: DeserializeOwned>(
        &self,
        op: Op,
        input: &impl Serialize,
    ) -> Result<T, ConnectorError> {
        let input = serde_json::to_vec(input)
            .map_err(|e| ConnectorError::Config(format!("plugin input: {e}")))?;
        let name = op.name().as_bytes();
        // SAFETY: both buffers are valid for the call; the returned buffer is the plugin's,
        // copied out and handed back to its own free function exactly once.
        let bytes = unsafe {
            let buffer = (self.call)(name.as_ptr(), name.len(), input.as_ptr(), input.len());
            let bytes = buffer.to_vec();
            (self.free)(buffer);
            bytes
        };
        match serde_json::from_slice::<Reply>(&bytes) {
            Ok(Reply::Ok(value)) => serde_json::from_value(value).map_err(|e| {
                ConnectorError::Config(format!(
                    "plugin {} answered {} with an unexpected shape: {e}",
                    self.path.display(),
                    op.name()
                ))
            }),
            Ok(Reply::Error(e)) => Err(e),
            Err(e) => Err(ConnectorError::Config(format!(
                "plugin {} answered {} with invalid JSON: {e}",
                self.path.display(),
                op.name()
            ))),
        }
    }
}

impl Connector for PluginConnector {
    fn kind(&self) -> ChannelKind {
        self.kind.clone()
    }

    fn limits(&self) -> ChannelLimits {
        self.description.limits.clone()
    }

    fn inbound(&self, ch: &ChannelConfig, req: &HttpRequest) -> Result<Inbound, ConnectorError> {
        self.invoke(
            Op::Inbound,
            &InboundInput {
                channel: ch.clone(),
                request: req.clone(),
            },
        )
    }

    fn render(
        &self,
        ch: &ChannelConfig,
        msg: &OutboundMessage,
    ) -> Result<Vec<HttpCall>, ConnectorError> {
        self.invoke(
            Op::Render,
            &RenderInput {
                channel: ch.clone(),
                message: msg.clone(),
            },
        )
    }

    fn outcome(&self, call: &HttpCall, resp: &HttpResponse) -> SendOutcome {
        self.invoke(
            Op::Outcome,
            &OutcomeInput {
                call: call.clone(),
                response: resp.clone(),
            },
        )
        .unwrap_or_else(|e| SendOutcome::Retry {
            after: None,
            reason: format!("plugin could not judge the answer: {e}"),
        })
    }

    fn connect(
        &self,
        ch: &ChannelConfig,
        webhook_url: &str,
    ) -> Result<Vec<HttpCall>, ConnectorError> {
        self.invoke(
            Op::Connect,
            &ConnectInput {
                channel: ch.clone(),
                webhook_url: webhook_url.to_owned(),
            },
        )
    }

    fn disconnect(&self, ch: &ChannelConfig) -> Result<Vec<HttpCall>, ConnectorError> {
        self.invoke(Op::Disconnect, ch)
    }

    fn media_request(
        &self,
        ch: &ChannelConfig,
        media_ref: &str,
    ) -> Result<HttpCall, ConnectorError> {
        self.invoke(
            Op::MediaRequest,
            &MediaInput {
                channel: ch.clone(),
                media_ref: media_ref.to_owned(),
            },
        )
    }

    fn media_next(
        &self,
        ch: &ChannelConfig,
        first: &HttpResponse,
    ) -> Result<Option<HttpCall>, ConnectorError> {
        self.invoke(
            Op::MediaNext,
            &MediaNextInput {
                channel: ch.clone(),
                response: first.clone(),
            },
        )
    }

    fn default_api_base_url(&self) -> Option<String> {
        self.description.default_api_base_url.clone()
    }

    fn validate(&self, settings: &serde_json::Value) -> Result<(), ConnectorError> {
        self.invoke::<serde_json::Value>(Op::Validate, settings)
            .map(|_| ())
    }
}
