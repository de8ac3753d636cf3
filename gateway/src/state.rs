//! The shared application state: cheap to clone, passed to handlers with axum's `State`.

use std::sync::{Arc, RwLock};

use metrics_exporter_prometheus::PrometheusHandle;

use crate::bus::Bus;
use crate::config::Config;
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
}

/// What still keeps the gateway from being ready, shown by `/readyz`.
#[derive(Clone, Default)]
pub struct Startup(Arc<RwLock<Option<String>>>);

impl Startup {
    /// The pending or failing start-up step, if any.
    pub fn problem(&self) -> Option<String> {
        self.0.read().map_or_else(|p| p.into_inner().clone(), |p| p.clone())
    }

    /// Record (or, with `None`, clear) the pending start-up step.
    pub fn set_problem(&self, problem: Option<String>) {
        match self.0.write() {
            Ok(mut p) => *p = problem,
            Err(p) => *p.into_inner() = problem,
        }
    }
}

impl AppState {
    /// Assemble the state from its parts.
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        metrics: PrometheusHandle,
    ) -> Self {
        let stream = ConversationStream::new(store.clone(), bus.clone());
        Self { config: Arc::new(config), store, bus, stream, metrics, startup: Startup::default() }
    }
}
