//! The shared application state: cheap to clone, passed to handlers with axum's `State`.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

use crate::auth::{Auth, Revocations};
use crate::bus::Bus;
use crate::clock::Clock;
use crate::config::Config;
use crate::connectors::Connectors;
use crate::connectors::sender::ConnectorSender;
use crate::fetch::PageFetcher;
use crate::knowledge::Knowledge;
use crate::limits::Limits;
use crate::secrets::SecretBox;
use crate::store::Store;
use crate::stream::ConversationStream;

/// Everything handlers and workers share.
#[derive(Clone)]
pub struct AppState {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The relational store.
    pub store: Arc<dyn Store>,
    /// The fan-out bus.
    pub bus: Arc<dyn Bus>,
    /// Store-then-publish entry point for every channel.
    pub stream: ConversationStream,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Start-up work still pending or failing (PostgreSQL migrations, role checks).
    pub startup: Startup,
    /// Accounts, tokens and sessions.
    pub auth: Auth,
    /// Request rate limits.
    pub limits: Limits,
    /// Seals secrets before they are stored.
    pub secrets: SecretBox,
    /// The brain (models and vector store), or why it is unavailable.
    pub knowledge: Knowledge,
    /// Fetches web pages for the knowledge base (public addresses only by default).
    pub fetcher: PageFetcher,
    /// Speech to text for voice notes (its worker process starts on the first one).
    pub speech: Arc<crate::voice::Speech>,
    /// Web widget connections: per-visitor limits, the demo channel.
    pub widget: Arc<crate::widget::WidgetRuntime>,
    /// Channel connectors (built in and plugins) and their HTTP client.
    pub connectors: Arc<Connectors>,
    /// Delivery through connectors (the outbox's sender; typing and read signals).
    pub sender: Arc<ConnectorSender>,
    /// The time programs are scheduled on (a manual clock in tests).
    pub clock: Clock,
    /// The live feed of `GET /v1/events` clients, in the event log's order, and their
    /// resumption from the log.
    pub events: Arc<crate::bus::log::EventLog>,
    /// When `/metrics` last read the queue depths from the store (scrapes in between reuse
    /// them).
    pub gauges_read_at: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// Open `/v1/events` streams, per member (or API key) and per tenant.
    pub event_streams: Arc<crate::caps::Caps<String, coach_connector_api::TenantId>>,
    /// Cancelled when the gateway starts shutting down: long-lived responses (event streams,
    /// widget sockets) end then, so the drain never waits on them.
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl AppState {
    /// Assemble the state from its parts; `startup` is what the store still has to finish.
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        metrics: PrometheusHandle,
        startup: Startup,
        secrets: SecretBox,
    ) -> Self {
        let stream = ConversationStream::new(store.clone(), bus.clone());
        let redis = redis_pool(&config);
        let revoked = match &redis {
            Some(pool) => Revocations::Redis {
                pool: pool.clone(),
                prefix: config.redis.prefix.clone(),
            },
            None => Revocations::stored(store.clone()),
        };
        let mailer = crate::auth::mail::Mailer::from_config(&config.smtp);
        let auth = Auth::new(
            store.clone(),
            config.auth.clone(),
            revoked,
            mailer,
            config.public_url.clone(),
            secrets.clone(),
        );
        let limits = match redis {
            Some(pool) => Limits::shared(&config.rate_limits, pool, config.redis.prefix.clone()),
            None => Limits::new(&config.rate_limits),
        };
        let fetcher = PageFetcher::new(
            config.brain.allow_private_urls,
            config.brain.max_upload_bytes,
        )
        .unwrap_or_else(|e| panic!("the HTTP client for page imports cannot start: {e}"));
        let config = Arc::new(config);
        let connectors = Arc::new(Connectors::builtin(config.clone()));
        let clock = Clock::system();
        let sender = Arc::new(ConnectorSender::new(
            store.clone(),
            secrets.clone(),
            connectors.clone(),
            clock.clone(),
            limits.shared_pace(),
        ));
        Self {
            widget: crate::widget::WidgetRuntime::new(&config.widget),
            connectors,
            sender,
            clock,
            events: crate::bus::log::EventLog::new(store.clone(), config.http.event_resume_minutes),
            gauges_read_at: Arc::default(),
            event_streams: crate::caps::Caps::new(
                config.http.event_streams_per_member,
                config.http.event_streams_per_tenant,
            ),
            shutdown: tokio_util::sync::CancellationToken::new(),
            knowledge: Knowledge::unavailable("the models are not loaded"),
            speech: Arc::new(crate::voice::Speech::new(&config.brain)),
            fetcher,
            config,
            store,
            bus,
            stream,
            metrics,
            startup,
            auth,
            limits,
            secrets,
        }
    }
}

impl AppState {
    /// The same state with these connectors (built-in ones and loaded plugins).
    pub fn with_connectors(mut self, connectors: Connectors) -> Self {
        self.connectors = Arc::new(connectors);
        self.sender = Arc::new(ConnectorSender::new(
            self.store.clone(),
            self.secrets.clone(),
            self.connectors.clone(),
            self.clock.clone(),
            self.limits.shared_pace(),
        ));
        self
    }

    /// The same state on another clock (tests run programs on a manual one).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self.sender = Arc::new(ConnectorSender::new(
            self.store.clone(),
            self.secrets.clone(),
            self.connectors.clone(),
            self.clock.clone(),
            self.limits.shared_pace(),
        ));
        self
    }

    /// The same state with a loaded (or failed) brain.
    pub fn with_knowledge(mut self, knowledge: Knowledge) -> Self {
        self.knowledge = knowledge;
        self
    }
}

/// What still keeps the gateway from being ready, shown by `/readyz`; workers wait for it.
#[derive(Clone)]
pub struct Startup(Arc<watch::Sender<Option<String>>>);

impl Default for Startup {
    fn default() -> Self {
        Self(Arc::new(watch::channel(None).0))
    }
}

impl Startup {
    /// The pending or failing start-up step, if any.
    pub fn problem(&self) -> Option<String> {
        self.0.borrow().clone()
    }

    /// Record (or, with `None`, clear) the pending start-up step.
    pub fn set_problem(&self, problem: Option<String>) {
        self.0.send_replace(problem);
    }

    /// Resolve once nothing is pending.
    pub async fn ready(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail while we wait.
        let _ = rx.wait_for(Option::is_none).await;
    }
}

/// The Redis pool for revocations and rate limits, when Redis is configured.
fn redis_pool(config: &Config) -> Option<deadpool_redis::Pool> {
    if config.redis.url.is_empty() {
        return None;
    }
    match deadpool_redis::Config::from_url(&config.redis.url)
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
    {
        Ok(pool) => Some(pool),
        Err(e) => {
            // The URL was validated at start; a pool that cannot be built is a bug worth a log.
            tracing::error!(error = %e, "cannot build the Redis pool; revocations and rate limits stay in this process");
            None
        }
    }
}
