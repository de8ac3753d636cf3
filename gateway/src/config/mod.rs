//! Layered configuration: built-in defaults, then an optional `gateway.toml`, then `GATEWAY__*`
//! environment variables (nested keys joined by `__`), validated once at start-up.

use std::path::{Path, PathBuf};

mod brain;
mod sections;

pub use brain::*;
pub use sections::*;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Environment variables with this prefix override the file (`GATEWAY__HTTP__ADDR`...).
pub const ENV_PREFIX: &str = "GATEWAY__";

/// Why the configuration cannot be used; the message names the key, the value and what was
/// expected. The CLI exits with code 2 on it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The layered sources did not deserialize.
    #[error("{}", describe(.0))]
    Parse(#[from] Box<figment::Error>),
    /// A value parsed but makes no sense.
    #[error("invalid value for `{key}`: {value:?}: expected {expected}")]
    Invalid {
        /// The dotted key, e.g. `database.url`.
        key: &'static str,
        /// The offending value (secrets masked).
        value: String,
        /// What would be accepted.
        expected: &'static str,
    },
}

/// The whole configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the embedded database, media and models live.
    pub data_dir: PathBuf,
    /// The address providers and browsers use to reach this gateway; webhook URLs start with it.
    pub public_url: String,
    /// Proxies (CIDR) whose `X-Forwarded-For` is believed when telling a client's address.
    pub trusted_proxies: Vec<IpNet>,
    /// The HTTP server.
    pub http: HttpConfig,
    /// The relational store.
    pub database: DatabaseConfig,
    /// Redis, for fan-out across gateway processes.
    pub redis: RedisConfig,
    /// Provider API endpoints: operator settings, never tenant input.
    pub providers: ProvidersConfig,
    /// Outbound delivery.
    pub outbox: OutboxConfig,
    /// Accounts and tokens.
    pub auth: AuthConfig,
    /// Request rate limits.
    pub rate_limits: RateLimitConfig,
    /// Outgoing e-mail (password resets).
    pub smtp: SmtpConfig,
    /// Encryption of stored secrets (channel tokens).
    pub secrets: SecretsConfig,
    /// Logging.
    pub log: LogConfig,
    /// Knowledge, models and answers.
    pub brain: BrainConfig,
    /// The web widget and its demo page.
    pub widget: WidgetConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            public_url: "http://127.0.0.1:8080".into(),
            trusted_proxies: Vec::new(),
            http: HttpConfig::default(),
            database: DatabaseConfig::default(),
            redis: RedisConfig::default(),
            providers: ProvidersConfig::default(),
            outbox: OutboxConfig::default(),
            auth: AuthConfig::default(),
            rate_limits: RateLimitConfig::default(),
            smtp: SmtpConfig::default(),
            secrets: SecretsConfig::default(),
            log: LogConfig::default(),
            brain: BrainConfig::default(),
            widget: WidgetConfig::default(),
        }
    }
}

/// Which relational backend the configuration selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseBackend {
    /// The embedded SQLite file at this path.
    Sqlite(PathBuf),
    /// PostgreSQL at this URL.
    Postgres(String),
}

impl Config {
    /// Load defaults, then `file` (if it exists, or if it was named explicitly), then the
    /// environment; then validate.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None => figment = figment.merge(Toml::file("gateway.toml")),
        }
        Self::from_figment(figment.merge(Env::prefixed(ENV_PREFIX).split("__")))
    }

    /// Extract and validate a configuration from any figment (tests build their own).
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        check_http_url("public_url", &self.public_url)?;
        check_http_url(
            "providers.whatsapp.api_base_url",
            &self.providers.whatsapp.api_base_url,
        )?;
        check_http_url(
            "providers.telegram.api_base_url",
            &self.providers.telegram.api_base_url,
        )?;
        self.database_backend()?;
        if !self.database.migrate_url.is_empty() && !is_postgres_url(&self.database.migrate_url) {
            return Err(invalid(
                "database.migrate_url",
                mask_url(&self.database.migrate_url),
                "a postgres:// URL of the schema owner, or empty",
            ));
        }
        if self.brain.vectors.backend == VectorBackend::Qdrant {
            check_http_url("brain.vectors.url", &self.brain.vectors.url)?;
        }
        if self.brain.backend == ModelBackend::Ollama {
            check_http_url("brain.ollama.url", &self.brain.ollama.url)?;
        }
        let b = &self.brain;
        if b.chunk_tokens < 16 || b.chunk_tokens > 512 || b.chunk_overlap * 2 >= b.chunk_tokens {
            return Err(invalid(
                "brain.chunk_tokens",
                format!("{} (overlap {})", b.chunk_tokens, b.chunk_overlap),
                "16 to 512 tokens, with brain.chunk_overlap under half of it",
            ));
        }
        if b.threads == 0 || b.workers == 0 || b.passages == 0 {
            return Err(invalid(
                "brain.threads",
                format!(
                    "threads {} workers {} passages {}",
                    b.threads, b.workers, b.passages
                ),
                "at least 1 thread, 1 worker and 1 passage",
            ));
        }
        if !(1..=1440).contains(&self.http.event_resume_minutes) {
            return Err(invalid(
                "http.event_resume_minutes",
                self.http.event_resume_minutes.to_string(),
                "1 to 1440 minutes (a day, the shortest message retention)",
            ));
        }
        if !(1..=600).contains(&self.providers.voice_max_secs) {
            return Err(invalid(
                "providers.voice_max_secs",
                self.providers.voice_max_secs.to_string(),
                "1 to 600 seconds",
            ));
        }
        if !(b.fusion_k.is_finite() && b.fusion_k >= 1.0) {
            return Err(invalid(
                "brain.fusion_k",
                b.fusion_k.to_string(),
                "a number >= 1 (60 in the original reciprocal rank fusion)",
            ));
        }
        if !(b.keyword_weight.is_finite() && (0.0..=10.0).contains(&b.keyword_weight)) {
            return Err(invalid(
                "brain.keyword_weight",
                b.keyword_weight.to_string(),
                "a number from 0 (dense only) to 10",
            ));
        }
        if !self.redis.url.is_empty() {
            let ok = url::Url::parse(&self.redis.url)
                .is_ok_and(|u| matches!(u.scheme(), "redis" | "rediss"));
            if !ok {
                return Err(invalid(
                    "redis.url",
                    mask_url(&self.redis.url),
                    "a redis:// or rediss:// URL, or empty for the in-process bus",
                ));
            }
        }
        if !self.smtp.url.is_empty() {
            let ok = url::Url::parse(&self.smtp.url)
                .is_ok_and(|u| matches!(u.scheme(), "smtp" | "smtps"));
            if !ok {
                return Err(invalid(
                    "smtp.url",
                    mask_url(&self.smtp.url),
                    "an smtp:// or smtps:// URL, or empty",
                ));
            }
            if self.smtp.from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(invalid(
                    "smtp.from",
                    self.smtp.from.clone(),
                    "a mailbox such as `Coach <no-reply@example.com>`",
                ));
            }
        }
        if self.auth.verify_email == Some(true) && self.smtp.url.is_empty() {
            return Err(invalid(
                "auth.verify_email",
                "true".into(),
                "false, or set smtp.url too: the confirmation links are sent by e-mail",
            ));
        }
        if self.database.max_batch == 0 {
            return Err(invalid("database.max_batch", "0".into(), "an integer >= 1"));
        }
        if self.database.max_connections == 0 {
            return Err(invalid(
                "database.max_connections",
                "0".into(),
                "an integer >= 1",
            ));
        }
        if self.auth.access_ttl_secs == 0
            || self.auth.refresh_ttl_days == 0
            || self.auth.hashing_concurrency == 0
        {
            return Err(invalid(
                "auth.access_ttl_secs / auth.refresh_ttl_days / auth.hashing_concurrency",
                "0".into(),
                "integers >= 1",
            ));
        }
        let r = &self.rate_limits;
        if r.auth_per_minute == 0 || r.tenant_per_second == 0 || r.tenant_burst == 0 {
            return Err(invalid("rate_limits.*", "0".into(), "integers >= 1"));
        }
        if self.outbox.max_attempts == 0 || self.outbox.batch_size == 0 {
            return Err(invalid(
                "outbox.max_attempts / outbox.batch_size",
                "0".into(),
                "integers >= 1",
            ));
        }
        Ok(())
    }

    /// Whether `/demo` and its demo tenant are served: `widget.demo`, by default only on the
    /// embedded SQLite database.
    pub fn demo(&self) -> bool {
        self.widget
            .demo
            .unwrap_or_else(|| !matches!(self.database_backend(), Ok(DatabaseBackend::Postgres(_))))
    }

    /// Why `serve` must not start with this configuration: PostgreSQL is how several gateway
    /// processes share one deployment, and each of them needs the same master key (else one
    /// cannot open the channel secrets another sealed), Redis (events, revocations, limits
    /// across processes) and a vector store they share, unless `database.single_process` says
    /// there is one process. `None` on SQLite, which one process owns.
    pub fn cluster_problem(&self) -> Option<String> {
        if !matches!(self.database_backend(), Ok(DatabaseBackend::Postgres(_))) {
            return None;
        }
        if self.secrets.master_key.trim().is_empty() {
            let file = self.data_dir.join("master.key");
            return Some(format!(
                "secrets.master_key is empty, and on PostgreSQL every gateway process must seal \
                 and open channel secrets with the same key. Set it, for example \
                 GATEWAY__SECRETS__MASTER_KEY=\"$(openssl rand -base64 32)\"; a deployment that \
                 already has {} keeps its sealed secrets with \
                 GATEWAY__SECRETS__MASTER_KEY=\"$(cat {})\"",
                file.display(),
                file.display()
            ));
        }
        if self.database.single_process {
            return None;
        }
        if self.redis.url.trim().is_empty() {
            return Some(
                "redis.url is empty: gateway processes on one PostgreSQL share live events, \
                 ended sessions and rate limits through Redis. Set redis.url, or \
                 database.single_process = true (GATEWAY__DATABASE__SINGLE_PROCESS=true) when this \
                 is the only process"
                    .into(),
            );
        }
        if self.brain.vectors.backend == VectorBackend::Edge {
            return Some(
                "brain.vectors.backend is \"edge\", a vector store inside this process's data_dir \
                 that other processes cannot see. Set brain.vectors.backend = \"qdrant\" with \
                 brain.vectors.url, or database.single_process = true when this is the only process"
                    .into(),
            );
        }
        None
    }

    /// The relational backend selected by `database.url`.
    pub fn database_backend(&self) -> Result<DatabaseBackend, ConfigError> {
        let url = self.database.url.trim();
        if url.is_empty() {
            return Ok(DatabaseBackend::Sqlite(self.data_dir.join("gateway.db")));
        }
        if is_postgres_url(url) {
            return Ok(DatabaseBackend::Postgres(url.to_owned()));
        }
        let sqlite_path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"));
        if let Some(path) = sqlite_path.filter(|p| !p.is_empty()) {
            return Ok(DatabaseBackend::Sqlite(PathBuf::from(path)));
        }
        Err(invalid(
            "database.url",
            mask_url(url),
            "empty (embedded SQLite), sqlite://PATH or postgres://USER@HOST:PORT/DB",
        ))
    }

    /// The effective configuration as TOML with every secret masked (for `gateway config`).
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database.url = mask_url(&shown.database.url);
        shown.database.migrate_url = mask_url(&shown.database.migrate_url);
        shown.redis.url = mask_url(&shown.redis.url);
        shown.smtp.url = mask_url(&shown.smtp.url);
        if !shown.secrets.master_key.is_empty() {
            shown.secrets.master_key = "***".into();
        }
        if !shown.brain.vectors.api_key.is_empty() {
            shown.brain.vectors.api_key = "***".into();
        }
        toml::to_string_pretty(&shown)
            .unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

/// Name the key, where its value came from (and the value, for environment variables), and
/// what was expected, for each error figment collected.
fn describe(errors: &figment::Error) -> String {
    errors
        .clone()
        .into_iter()
        .map(|e| {
            let key = e.path.join(".").to_lowercase();
            let source = e.metadata.as_ref().map(|md| {
                let var = format!("{ENV_PREFIX}{}", e.path.join("__").to_uppercase());
                match std::env::var(&var) {
                    Ok(value) if md.name.contains("environment") => format!(" ({var}={value:?})"),
                    _ => format!(" (in {})", md.name),
                }
            });
            format!(
                "invalid value for `{key}`{}: {}",
                source.unwrap_or_default(),
                e.kind
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn invalid(key: &'static str, value: String, expected: &'static str) -> ConfigError {
    ConfigError::Invalid {
        key,
        value,
        expected,
    }
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn check_http_url(key: &'static str, value: &str) -> Result<(), ConfigError> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(invalid(
            key,
            value.to_owned(),
            "an absolute http:// or https:// URL",
        )),
    }
}

/// The URL with its password replaced by `***` (unparseable URLs are masked whole).
pub fn mask_url(raw: &str) -> String {
    if raw.is_empty() {
        return String::new();
    }
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "***".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Serialized;

    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut f = Figment::from(Serialized::defaults(Config::default()));
        for (k, v) in pairs {
            f = f.merge(Serialized::default(k, v));
        }
        Config::from_figment(f)
    }

    #[test]
    fn defaults_are_valid_and_embedded() {
        let c = with(&[]).unwrap();
        assert_eq!(
            c.database_backend().unwrap(),
            DatabaseBackend::Sqlite("./data/gateway.db".into())
        );
        assert!(c.redis.url.is_empty());
    }

    #[test]
    fn bad_values_name_key_value_and_expectation() {
        let err = with(&[("database.url", "mysql://root:hunter2@db/x")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("database.url"), "{err}");
        assert!(err.contains("postgres://"), "{err}");
        assert!(!err.contains("hunter2"), "secret leaked: {err}");
        let err = with(&[("public_url", "not a url")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("public_url") && err.contains("not a url"),
            "{err}"
        );
        let err = with(&[("http.addr", "nowhere")]).unwrap_err().to_string();
        assert!(err.contains("http.addr") || err.contains("addr"), "{err}");
    }

    #[test]
    fn the_demo_is_on_for_the_embedded_database_only_unless_asked() {
        let demo = |url: &str, asked: Option<bool>| {
            let mut f = Figment::from(Serialized::defaults(Config::default()));
            if !url.is_empty() {
                f = f.merge(Serialized::default("database.url", url));
            }
            if let Some(on) = asked {
                f = f.merge(Serialized::default("widget.demo", on));
            }
            Config::from_figment(f).unwrap().demo()
        };
        let pg = "postgres://app@db:5432/x";
        assert!(demo("", None));
        assert!(!demo(pg, None));
        assert!(demo(pg, Some(true)));
        assert!(!demo("", Some(false)));
    }

    #[test]
    fn masked_output_hides_passwords() {
        let c = with(&[("database.url", "postgres://app:s3cret@db:5432/x")]).unwrap();
        let shown = c.to_masked_toml();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres://app:***@db:5432/x"), "{shown}");
        assert!(shown.contains("[http]"), "{shown}");
    }
}
