//! The configuration's sections, one struct each, with their defaults.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The HTTP server.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Listen address; port 0 picks a free port (printed at start).
    pub addr: SocketAddr,
    /// Longest time a request may take, in seconds.
    pub request_timeout_secs: u64,
    /// Largest request body, in bytes (document uploads: `brain.max_upload_bytes`).
    pub body_limit_bytes: usize,
    /// After `SIGTERM`, how long in-flight requests may take before the gateway stops anyway,
    /// in seconds. Live streams (events, widget sockets) end at once, telling clients to
    /// reconnect.
    pub shutdown_grace_secs: u64,
    /// Origins allowed by CORS on the admin API (empty: same origin only).
    pub cors_origins: Vec<String>,
    /// Creators' outgoing webhooks (handoff notices) may target loopback and private
    /// addresses (off: a creator could otherwise make the gateway call the operator's network).
    pub allow_private_webhooks: bool,
    /// Open `/v1/events` streams one member (or API key) may hold in this process; one more
    /// gets a 429 with `Retry-After`.
    pub event_streams_per_member: u32,
    /// Open `/v1/events` streams of one tenant in this process.
    pub event_streams_per_tenant: u32,
    /// How long a `/v1/events` client can reconnect with `Last-Event-ID` and get what it
    /// missed, on any process: the event log keeps events this many minutes (1 to 1440).
    pub event_resume_minutes: u32,
    /// When set, `/metrics` answers only requests with `Authorization: Bearer <this>`.
    pub metrics_token: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            request_timeout_secs: 30,
            body_limit_bytes: 2 * 1024 * 1024,
            shutdown_grace_secs: 10,
            cors_origins: Vec::new(),
            allow_private_webhooks: false,
            event_streams_per_member: 8,
            event_streams_per_tenant: 64,
            event_resume_minutes: 60,
            metrics_token: String::new(),
        }
    }
}

/// SQLite durability mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Durable against a process crash (WAL + `synchronous=NORMAL`).
    Normal,
    /// Durable against power loss too (an fsync per commit).
    Full,
}

/// The relational store: SQLite in the data directory unless a PostgreSQL URL is given.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://...` to use PostgreSQL; empty for the embedded SQLite file.
    pub url: String,
    /// PostgreSQL only: the owner's URL used to run migrations at start and by `gateway migrate`
    /// (the serving role must be neither owner nor superuser).
    pub migrate_url: String,
    /// SQLite durability: `normal` (process crash) or `full` (power loss).
    pub synchronous: Synchronous,
    /// SQLite: most writes committed in one transaction by the single writer (1 disables batching).
    pub max_batch: usize,
    /// Connection pool size.
    pub max_connections: u32,
    /// PostgreSQL with exactly one gateway process: `serve` then allows an empty `redis.url`
    /// and the embedded vector store, which several processes cannot share.
    pub single_process: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            migrate_url: String::new(),
            synchronous: Synchronous::Normal,
            max_batch: 256,
            max_connections: 16,
            single_process: false,
        }
    }
}

/// Redis: empty URL for the in-process bus.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:port/db`, or empty.
    pub url: String,
    /// Prefix of every key and channel, so several deployments can share one Redis.
    pub prefix: String,
}

/// One provider's API endpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Base URL of the provider API (tests point it at a local server).
    pub api_base_url: String,
}

/// Provider API endpoints and the connectors loaded as plugins.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvidersConfig {
    /// WhatsApp Cloud API (Graph API).
    pub whatsapp: ProviderConfig,
    /// Telegram Bot API.
    pub telegram: ProviderConfig,
    /// API base URLs of plugin connectors, by their kind (e.g. `sms`).
    pub plugins: std::collections::BTreeMap<String, ProviderConfig>,
    /// Where connector plugins (`.so`, `.dylib`, `.dll`) are loaded from at start-up; empty:
    /// `<data_dir>/plugins`.
    pub plugin_dir: String,
    /// Longest wait for one provider call, in seconds.
    pub request_timeout_secs: u64,
    /// How long one Telegram `getUpdates` long poll waits for updates (polling mode), in seconds.
    pub telegram_poll_secs: u32,
    /// Exactly one gateway process polls a Telegram channel, under a lease it renews every
    /// third of this many seconds; when that process dies, another takes over within it.
    pub telegram_lease_secs: u64,
    /// Largest inbound media file kept in the media store, in bytes.
    pub media_max_bytes: u64,
    /// Longest voice note transcribed, in seconds; a longer one is answered with a polite
    /// request to write instead.
    pub voice_max_secs: u32,
}

impl Default for ProvidersConfig {
    fn default() -> Self {
        Self {
            whatsapp: ProviderConfig {
                api_base_url: "https://graph.facebook.com/v21.0".into(),
            },
            telegram: ProviderConfig {
                api_base_url: "https://api.telegram.org".into(),
            },
            plugins: std::collections::BTreeMap::new(),
            plugin_dir: String::new(),
            request_timeout_secs: 15,
            telegram_poll_secs: 25,
            telegram_lease_secs: 15,
            media_max_bytes: 16 * 1024 * 1024,
            voice_max_secs: 120,
        }
    }
}

/// Outbound delivery.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// How often an idle worker looks for due rows, in milliseconds.
    pub poll_interval_ms: u64,
    /// Rows claimed at once.
    pub batch_size: u32,
    /// Attempts before a row is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay, in milliseconds (doubles each attempt, with full jitter).
    pub base_backoff_ms: u64,
    /// Longest retry delay, in seconds.
    pub max_backoff_secs: u64,
    /// How long a claimed row stays reserved before another worker may take it, in seconds.
    pub lease_secs: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: 250,
            batch_size: 32,
            max_attempts: 8,
            base_backoff_ms: 1_000,
            max_backoff_secs: 600,
            lease_secs: 60,
        }
    }
}

/// Who may create an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Anyone may register a tenant.
    Open,
    /// Only with an invitation.
    InviteOnly,
    /// Nobody: operators create accounts.
    Closed,
}

/// Accounts and tokens.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Who may register.
    pub registration: Registration,
    /// The `iss` and `aud` of access tokens.
    pub issuer: String,
    /// Access token lifetime, in seconds.
    pub access_ttl_secs: u64,
    /// Refresh token lifetime, in days.
    pub refresh_ttl_days: u64,
    /// Concurrent password hashes (each takes about 19 MiB and tens of milliseconds of CPU);
    /// default: half the cores.
    pub hashing_concurrency: usize,
    /// New accounts (registration, or an invitation accepted without an account) confirm their
    /// e-mail address through a link before they can log in. Default: on when `smtp.url` is
    /// set; turning it on needs `smtp.url`. Accounts made while it was off count as confirmed.
    pub verify_email: Option<bool>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            registration: Registration::Open,
            issuer: "coach-gateway".into(),
            access_ttl_secs: 900,
            refresh_ttl_days: 30,
            // Half the cores: logins queue rather than starve every other request.
            hashing_concurrency: std::thread::available_parallelism()
                .map_or(1, |n| (n.get() / 2).max(1)),
            verify_email: None,
        }
    }
}

/// Request rate limits (429 with `Retry-After` beyond them).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Login, registration and refresh attempts per client address per minute.
    pub auth_per_minute: u32,
    /// Admin API requests per tenant per second (sustained).
    pub tenant_per_second: u32,
    /// Admin API requests per tenant in a burst.
    pub tenant_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            auth_per_minute: 30,
            tenant_per_second: 50,
            tenant_burst: 200,
        }
    }
}

/// Outgoing e-mail through an SMTP relay; without one, password reset is disabled.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// `smtp://user:pass@host:587?tls=required`, `smtps://...:465`, or empty.
    pub url: String,
    /// The sender, e.g. `Coach <no-reply@example.com>`.
    pub from: String,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            from: "Coaching gateway <no-reply@localhost>".into(),
        }
    }
}

/// Encryption of secrets stored in the database (channel tokens and app secrets).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// Base64 of a 32-byte master key. Empty: `data_dir/master.key`, created on first run.
    /// Every gateway process sharing one database needs the same key.
    pub master_key: String,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `coach_gateway=debug,info` (`RUST_LOG` wins).
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

/// The web widget's connections and the demo page.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WidgetConfig {
    /// Serve `/demo`: a page with the widget of a demo tenant whose coach knows this gateway's
    /// own documentation (created on first start). Default: on for the embedded SQLite
    /// database, off on PostgreSQL (a production deployment gets no demo tenant and owner
    /// login unless it asks for them); see [`crate::config::Config::demo`].
    pub demo: Option<bool>,
    /// Messages one visitor may send per minute.
    pub messages_per_minute: u32,
    /// Messages all visitors behind one client address may send per minute (generous: many
    /// visitors share an office or mobile carrier's address).
    pub address_messages_per_minute: u32,
    /// Messages all visitors of one widget channel may send per minute.
    pub channel_messages_per_minute: u32,
    /// Open widget connections from one client address (beyond: closed with code 1013 and
    /// the reason).
    pub sockets_per_address: u32,
    /// Open connections of one widget channel.
    pub sockets_per_channel: u32,
    /// The largest frame a widget may send, in bytes.
    pub max_frame_bytes: usize,
    /// Seconds without a frame from a widget before its connection is closed.
    pub idle_timeout_secs: u64,
}

impl Default for WidgetConfig {
    fn default() -> Self {
        Self {
            demo: None,
            messages_per_minute: 20,
            address_messages_per_minute: 120,
            channel_messages_per_minute: 600,
            sockets_per_address: 50,
            sockets_per_channel: 2000,
            max_frame_bytes: 16 * 1024,
            idle_timeout_secs: 70,
        }
    }
}
