//! The connectors this gateway runs: the built-in ones (WhatsApp, Telegram, the web widget) and
//! those loaded as plugins, with the one HTTP client that executes the calls they render.
//!
//! Connectors are sans-IO; everything with I/O around them lives here: [`plugins`] (loading
//! `cdylib`s through the C ABI), [`sender`] (the outbox's delivery through a connector),
//! [`polling`] (Telegram's `getUpdates` loop) and [`Connectors::execute`].

pub mod media;
/// Connector plugins, loaded by the plugin host (the one crate allowed `unsafe`).
pub use coach_plugin_host as plugins;
pub mod polling;
pub mod sender;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use coach_connector_api::{
    ChannelConfig, ChannelId, ChannelKind, Connector, ConnectorError, HttpCall, HttpMethod,
    HttpResponse,
};

use crate::config::Config;
use crate::secrets::SecretBox;
use crate::store::{Channel, Store};
use crate::tenancy::SystemScope;

/// Largest provider answer read (their answers are small JSON documents).
const MAX_RESPONSE_BYTES: u64 = 1 << 20;

/// How long a webhook's channel (with its opened secrets) is reused before it is read again;
/// changes through this process's API apply at once, other processes' within this time.
const CHANNEL_CACHE_TTL: Duration = Duration::from_secs(5);

/// A channel as webhooks need it: the record and its connector configuration.
pub type WebhookChannel = Arc<(Channel, ChannelConfig)>;

/// The registry of connectors by kind, and the client that executes their calls.
pub struct Connectors {
    by_kind: HashMap<String, Arc<dyn Connector>>,
    client: reqwest::Client,
    config: Arc<Config>,
    channels: std::sync::Mutex<HashMap<ChannelId, (std::time::Instant, WebhookChannel)>>,
}

impl Connectors {
    /// The built-in connectors only.
    pub fn builtin(config: Arc<Config>) -> Self {
        let mut by_kind: HashMap<String, Arc<dyn Connector>> = HashMap::new();
        by_kind.insert(
            ChannelKind::WhatsApp.to_string(),
            Arc::new(coach_whatsapp::WhatsApp),
        );
        by_kind.insert(
            ChannelKind::Telegram.to_string(),
            Arc::new(coach_telegram::Telegram),
        );
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // Calls carry credentials: never follow a redirect elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("coach-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            by_kind,
            client,
            config,
            channels: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The built-in connectors and every plugin of the configured plugin directory.
    pub fn load(config: Arc<Config>) -> Result<Self, plugins::PluginError> {
        let mut this = Self::builtin(config.clone());
        let dir = match config.providers.plugin_dir.as_str() {
            "" => config.data_dir.join("plugins"),
            dir => dir.into(),
        };
        for plugin in plugins::load_dir(&dir)? {
            this.add(Arc::new(plugin))?;
        }
        Ok(this)
    }

    /// Register one more connector (a plugin); its kind must be new.
    pub fn add(&mut self, connector: Arc<dyn Connector>) -> Result<(), plugins::PluginError> {
        let kind = connector.kind().to_string();
        if self.by_kind.contains_key(&kind) || kind == ChannelKind::WebWidget.as_str() {
            return Err(plugins::PluginError::DuplicateKind(kind));
        }
        tracing::info!(%kind, "connector plugin loaded");
        self.by_kind.insert(kind, connector);
        Ok(())
    }

    /// The connector of a kind.
    pub fn get(&self, kind: &ChannelKind) -> Option<&Arc<dyn Connector>> {
        self.by_kind.get(kind.as_str())
    }

    /// Every kind a channel can be created with (the widget included).
    pub fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.by_kind.keys().cloned().collect();
        kinds.push(ChannelKind::WebWidget.to_string());
        kinds.sort();
        kinds
    }

    /// Whether providers call the channel's webhook (the widget speaks over its own socket).
    pub fn has_webhook(&self, kind: &ChannelKind) -> bool {
        *kind != ChannelKind::WebWidget
    }

    /// A setting the gateway generates when a channel is created without it: Telegram's
    /// `secret_token`, which Telegram sends back on every webhook call.
    pub fn generated_secret(&self, kind: &ChannelKind) -> Option<&'static str> {
        (*kind == ChannelKind::Telegram).then_some("secret_token")
    }

    /// How often a channel's "typing..." signal is renewed while an answer is generated, as
    /// its connector declares (`None`: it shows none).
    pub fn typing_renewal(&self, kind: &ChannelKind) -> Option<Duration> {
        let secs = self.get(kind)?.limits().typing_renewal_secs?;
        Some(Duration::from_secs(secs.max(1)))
    }

    /// The channel's service window, as its connector declares: free-form messages only this
    /// long after the contact's last message (`None`: no window).
    pub fn service_window(&self, kind: &ChannelKind) -> Option<chrono::Duration> {
        let secs = self.get(kind)?.limits().service_window_secs?;
        Some(chrono::Duration::seconds(
            i64::try_from(secs).unwrap_or(i64::MAX / 1000),
        ))
    }

    /// Whether channels of a kind carry library files (the widget always does).
    pub fn carries_files(&self, kind: &ChannelKind) -> bool {
        *kind == ChannelKind::WebWidget || self.get(kind).is_some_and(|c| c.limits().files)
    }

    /// The provider API base URL of a kind: operator configuration only.
    pub fn api_base_url(&self, kind: &ChannelKind) -> String {
        let providers = &self.config.providers;
        match kind {
            ChannelKind::WhatsApp => providers.whatsapp.api_base_url.clone(),
            ChannelKind::Telegram => providers.telegram.api_base_url.clone(),
            ChannelKind::WebWidget => String::new(),
            ChannelKind::Plugin(name) => providers
                .plugins
                .get(name)
                .map(|p| p.api_base_url.clone())
                .or_else(|| self.get(kind)?.default_api_base_url())
                .unwrap_or_default(),
        }
    }

    /// Where a channel's provider sends webhooks.
    pub fn webhook_url(&self, kind: &ChannelKind, id: coach_connector_api::ChannelId) -> String {
        format!(
            "{}/webhooks/{kind}/{id}",
            self.config.public_url.trim_end_matches('/')
        )
    }

    /// A channel as its connector sees it: secrets opened, operator URLs filled in.
    pub fn channel_config(
        &self,
        channel: &Channel,
        secrets: &SecretBox,
    ) -> Result<ChannelConfig, ConnectorError> {
        let mut settings = channel.config.clone();
        secrets
            .open(&mut settings)
            .map_err(|e| ConnectorError::Config(format!("stored secrets: {e}")))?;
        Ok(ChannelConfig {
            tenant_id: channel.tenant_id,
            channel_id: channel.id,
            settings,
            api_base_url: self.api_base_url(&channel.kind),
            webhook_url: self.webhook_url(&channel.kind, channel.id),
        })
    }

    /// The channel a webhook names, whatever its tenant, with its secrets opened; reused for a
    /// few seconds so a burst of webhooks does not read and decrypt it for every request.
    pub async fn webhook_channel(
        &self,
        store: &dyn Store,
        secrets: &SecretBox,
        id: ChannelId,
    ) -> Result<WebhookChannel, WebhookChannelError> {
        let now = std::time::Instant::now();
        if let Some((at, cached)) = self.lock_channels().get(&id)
            && now.duration_since(*at) < CHANNEL_CACHE_TTL
        {
            return Ok(cached.clone());
        }
        let channel = store
            .channel_for_webhook(&SystemScope::new("webhook"), id)
            .await
            .map_err(WebhookChannelError::Store)?;
        let config = self
            .channel_config(&channel, secrets)
            .map_err(WebhookChannelError::Config)?;
        let entry: WebhookChannel = Arc::new((channel, config));
        let mut cache = self.lock_channels();
        if cache.len() >= 10_000 {
            cache.retain(|_, (at, _)| now.duration_since(*at) < CHANNEL_CACHE_TTL);
        }
        cache.insert(id, (now, entry.clone()));
        Ok(entry)
    }

    /// Drop a channel from the webhook cache (after it changed or was removed).
    pub fn forget_channel(&self, id: ChannelId) {
        self.lock_channels().remove(&id);
    }

    fn lock_channels(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<ChannelId, (std::time::Instant, WebhookChannel)>> {
        self.channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Where the gateway keeps its files (the library's files are read from there at send time).
    pub fn data_dir(&self) -> &std::path::Path {
        &self.config.data_dir
    }

    /// The longest a call carrying a file may take: a third of the outbox's lease (at least
    /// 10 s), so an upload and the send after it end before another worker may claim the row.
    pub fn file_call_timeout(&self) -> Duration {
        Duration::from_secs((self.config.outbox.lease_secs / 3).max(10))
    }

    /// Execute one call. Errors never contain the URL (Telegram puts the bot token in it).
    pub async fn execute(&self, call: &HttpCall) -> Result<HttpResponse, String> {
        self.execute_with_timeout(
            call,
            Duration::from_secs(self.config.providers.request_timeout_secs),
        )
        .await
    }

    /// [`Connectors::execute`] with its own time limit (long polls).
    pub async fn execute_with_timeout(
        &self,
        call: &HttpCall,
        timeout: Duration,
    ) -> Result<HttpResponse, String> {
        self.execute_limited(call, timeout, MAX_RESPONSE_BYTES)
            .await
    }

    /// [`Connectors::execute`] with its own time limit and largest answer (media downloads).
    pub async fn execute_limited(
        &self,
        call: &HttpCall,
        timeout: Duration,
        max_bytes: u64,
    ) -> Result<HttpResponse, String> {
        let max_bytes = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        let method = match call.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
            HttpMethod::Delete => reqwest::Method::DELETE,
        };
        let mut request = self.client.request(method, &call.url).timeout(timeout);
        for (name, value) in &call.headers {
            request = request.header(name, value);
        }
        request = if call.form.is_empty() {
            request.body(call.body.clone())
        } else {
            request.multipart(form(call)?)
        };
        let started = std::time::Instant::now();
        let mut response = request
            .send()
            .await
            .map_err(|e| redact(&e.without_url().to_string()))?;
        metrics::histogram!("provider_call_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| redact(&e.without_url().to_string()))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > max_bytes {
                return Err(format!("provider answer larger than {max_bytes} bytes"));
            }
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// Why a webhook's channel could not be prepared.
#[derive(Debug)]
pub enum WebhookChannelError {
    /// Reading it failed (`NotFound` for an unknown id).
    Store(crate::store::StoreError),
    /// Its stored configuration could not be opened.
    Config(ConnectorError),
}

/// Remove anything that looks like a Telegram bot token (`<digits>:<35 characters>`) from a
/// message, in case a provider echoes a URL back.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("/bot") {
        out.push_str(&rest[..i + 4]);
        rest = &rest[i + 4..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == ':' || c == '_' || c == '-'))
            .unwrap_or(rest.len());
        if rest[..end].contains(':') {
            out.push_str("<redacted>");
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

/// A call's multipart form as reqwest encodes it.
fn form(call: &HttpCall) -> Result<reqwest::multipart::Form, String> {
    let mut form = reqwest::multipart::Form::new();
    for part in &call.form {
        let mut field = reqwest::multipart::Part::bytes(part.value.clone());
        if let Some(name) = &part.filename {
            field = field.file_name(name.clone());
        }
        if let Some(mime) = &part.mime {
            field = field
                .mime_str(mime)
                .map_err(|_| format!("form part {}: bad type {mime:?}", part.name))?;
        }
        form = form.part(part.name.clone(), field);
    }
    Ok(form)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_tokens_are_redacted_from_messages() {
        assert_eq!(
            redact("error sending request for https://api.telegram.org/bot123:AA-b_c/sendMessage"),
            "error sending request for https://api.telegram.org/bot<redacted>/sendMessage"
        );
        assert_eq!(redact("no token /bottle here"), "no token /bottle here");
    }
}
