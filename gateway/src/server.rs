//! Assembling and running the gateway: open the backends the configuration names, start the
//! workers, serve HTTP until shutdown, then drain: in-flight requests finish, workers stop,
//! pending writes are committed.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgConnectOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, MemoryBus, RedisBus};
use crate::config::{Config, DatabaseBackend};
use crate::outbox;
use crate::state::{AppState, Startup};
use crate::store::{
    PostgresStore, PostgresStoreOptions, SqliteStore, SqliteStoreOptions, Store, migrate_postgres,
};
use crate::tenancy::SystemScope;

/// How many events a slow live subscriber may fall behind before it must resynchronize.
const BUS_CAPACITY: usize = 4096;

/// Open the configured store. SQLite is opened and migrated now (a local file that cannot be
/// opened is a configuration error); PostgreSQL connects lazily and is prepared in the
/// background with retries, so a database that is down at start only delays readiness.
pub async fn open_store(
    config: &Config,
    startup: &Startup,
    shutdown: &CancellationToken,
) -> anyhow::Result<Arc<dyn Store>> {
    match config.database_backend()? {
        DatabaseBackend::Sqlite(path) => {
            let store = SqliteStore::open(SqliteStoreOptions {
                path: path.clone(),
                synchronous: config.database.synchronous,
                max_batch: config.database.max_batch,
                readers: config.database.max_connections,
            })
            .await
            .with_context(|| format!("opening the SQLite database {}", path.display()))?;
            Ok(Arc::new(store))
        }
        DatabaseBackend::Postgres(url) => {
            let connect = PgConnectOptions::from_str(&url).context("database.url")?;
            let store = Arc::new(PostgresStore::connect_lazy(PostgresStoreOptions {
                connect,
                max_connections: config.database.max_connections,
            }));
            let migrate_url = config.database.migrate_url.clone();
            startup.set_problem(Some("preparing PostgreSQL".into()));
            tokio::spawn(prepare_postgres(
                store.clone(),
                migrate_url,
                startup.clone(),
                shutdown.clone(),
            ));
            Ok(store)
        }
    }
}

async fn prepare_postgres(
    store: Arc<PostgresStore>,
    migrate_url: String,
    startup: Startup,
    shutdown: CancellationToken,
) {
    let mut delay = Duration::from_millis(250);
    loop {
        let attempt = async {
            if !migrate_url.is_empty() {
                let owner = PgConnectOptions::from_str(&migrate_url)?;
                migrate_postgres(owner).await?;
            }
            store.check_role().await
        };
        match attempt.await {
            Ok(()) => {
                startup.set_problem(None);
                tracing::info!("PostgreSQL ready");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "PostgreSQL not ready");
                startup.set_problem(Some(format!("PostgreSQL not ready: {e}")));
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// Build the bus the configuration names.
pub async fn open_bus(
    config: &Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<Arc<dyn Bus>> {
    if config.redis.url.is_empty() {
        return Ok(Arc::new(MemoryBus::new(BUS_CAPACITY)));
    }
    let bus = RedisBus::start(
        &config.redis.url,
        &config.redis.prefix,
        BUS_CAPACITY,
        shutdown.clone(),
    )
    .await
    .context("redis.url")?;
    Ok(bus)
}

/// Serve `state` on `listener` with its workers until `shutdown` is cancelled, then drain.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Before any worker claims: what this process claims from now on is not released.
    match state
        .store
        .recover_in_flight(&SystemScope::new("startup"))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            released = n,
            "work left in flight by an earlier run is due again"
        ),
        Err(error) => tracing::warn!(%error, "releasing work left in flight failed"),
    }
    // The JWT signing keys are sealed with the master key (those stored before were not), and
    // a master key that cannot open them stops the gateway: it must not mint new keys and
    // silently log everyone out. A database that is ready (SQLite) is checked before serving.
    let fatal: Arc<std::sync::OnceLock<String>> = Arc::default();
    if state.startup.problem().is_none() {
        seal_keys(&state).await.map_err(anyhow::Error::msg)?;
    } else {
        tokio::spawn({
            let (state, shutdown, fatal) = (state.clone(), shutdown.clone(), fatal.clone());
            async move {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = state.startup.ready() => {}
                }
                if let Err(why) = seal_keys(&state).await {
                    tracing::error!(error = %why, "stopping");
                    let _ = fatal.set(why);
                    shutdown.cancel();
                }
            }
        });
    }
    // The consoles' live feed follows the bus (and the event log) from the start.
    tokio::spawn({
        let (state, shutdown) = (state.clone(), shutdown.clone());
        async move {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = state.startup.ready() => {}
            }
            while let Err(e) = state.events.start(&state.bus).await {
                tracing::warn!(error = %e, "event log unreadable; live events wait for it");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
        }
    });
    let outbox = tokio::spawn({
        let (state, shutdown) = (state.clone(), shutdown.clone());
        async move {
            // Workers start once the store is prepared (PostgreSQL migrations, role check).
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = state.startup.ready() => {}
            }
            outbox::run(
                state.store,
                state.sender,
                state.config.outbox.clone(),
                shutdown,
            )
            .await;
        }
    });
    let pruning = tokio::spawn({
        let (state, shutdown) = (state.clone(), shutdown.clone());
        async move {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = state.startup.ready() => {}
            }
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = every.tick() => {
                        state.limits.prune();
                        // Chunks of documents deleted (or tenants erased) while the vector
                        // store could not be reached.
                        crate::knowledge::forget_erased(state.store.as_ref(), &state.knowledge).await;
                        wake_snoozed(&state).await;
                    }
                }
            }
        }
    });
    let retention = tokio::spawn(retention_loop(state.clone(), shutdown.clone()));
    let polling = tokio::spawn(crate::connectors::polling::run(
        state.clone(),
        shutdown.clone(),
    ));
    // Every job queue (answers, media, ingestion, handoff notices, program steps).
    let mut jobs = crate::jobs::spawn_all(&state, &shutdown);
    if state.config.demo() {
        tokio::spawn({
            let state = state.clone();
            async move {
                state.startup.ready().await;
                if let Err(error) = crate::http::widget::demo::ensure(&state).await {
                    tracing::warn!(%error, "the demo coach could not be set up");
                }
            }
        });
    }
    let app = crate::http::router(state.clone());
    let streams = state.shutdown.clone();
    let draining = shutdown.clone();
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        draining.cancelled().await;
        // Event streams and widget sockets end now; requests in flight may finish.
        streams.cancel();
    });
    let grace = Duration::from_secs(state.config.http.shutdown_grace_secs);
    let served = tokio::select! {
        served = served => served,
        () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "requests still running after http.shutdown_grace_secs were cut off"
            );
            Ok(())
        }
    };
    shutdown.cancel();
    let _ = pruning.await;
    let _ = retention.await;
    let _ = polling.await;
    while let Some(joined) = jobs.join_next().await {
        if let Err(e) = joined {
            tracing::error!(error = %e, "a job runner panicked");
        }
    }
    if let Err(e) = outbox.await {
        tracing::error!(error = %e, "outbox worker panicked");
    }
    state.store.close().await;
    tracing::info!("gateway stopped");
    if let Some(why) = fatal.get() {
        anyhow::bail!("{why}");
    }
    served.context("HTTP server")
}

/// Seal the signing keys stored in the clear and check that they open, and reload the
/// sessions ended before a restart. Only keys that do not open with this master key are fatal
/// (a database hiccup is not: keys load on first use).
async fn seal_keys(state: &AppState) -> Result<(), String> {
    match state.auth.revoked.load().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(sessions = n, "ended sessions stay refused"),
        Err(error) => tracing::warn!(%error, "the revoked sessions could not be reloaded"),
    }
    match state.auth.tokens.seal_stored_keys().await {
        Ok(0) => Ok(()),
        Ok(n) => {
            tracing::info!(keys = n, "JWT signing keys sealed with the master key");
            Ok(())
        }
        Err(crate::store::StoreError::Corrupt(why)) => Err(why),
        Err(error) => {
            tracing::warn!(%error, "the JWT signing keys could not be checked now");
            Ok(())
        }
    }
}

/// How often tenants' retention periods are enforced.
const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// Enforce retention hourly, once the store is ready.
/// Snoozed conversations whose time has come go back to the status they had; live views are
/// told. Checked every minute (by any process: each conversation wakes once).
pub async fn wake_snoozed(state: &AppState) {
    let sys = SystemScope::new("wake snoozed conversations");
    match state.store.wake_snoozed(&sys, state.clock.now()).await {
        Ok(woken) => {
            for conversation in woken {
                let scope = sys.for_tenant(conversation.tenant_id);
                state
                    .stream
                    .publish(
                        &scope,
                        crate::bus::StreamPayload::Conversation { conversation },
                    )
                    .await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "snoozed conversations not woken; next minute"),
    }
}

async fn retention_loop(state: AppState, shutdown: CancellationToken) {
    tokio::select! {
        () = shutdown.cancelled() => return,
        () = state.startup.ready() => {}
    }
    let sys = crate::tenancy::SystemScope::new("retention");
    let mut every = tokio::time::interval(RETENTION_INTERVAL);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        match state.store.apply_retention(&sys, chrono::Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "retention applied"),
            Err(e) => tracing::warn!(error = %e, "retention failed; retrying next hour"),
        }
        media_retention(&state, &sys).await;
    }
}

/// Media files go at the age their messages do (`retention_days` of each tenant's profile).
pub async fn media_retention(state: &AppState, sys: &SystemScope) {
    let Ok(tenants) = state.store.all_tenants(sys).await else {
        return;
    };
    for tenant in tenants {
        let Ok((_, profile)) = state.store.tenant_profile(&sys.for_tenant(tenant.id)).await else {
            continue;
        };
        let Some(days) = profile.retention_days.filter(|d| *d > 0).map(u64::from) else {
            continue;
        };
        let removed =
            crate::connectors::media::apply_retention(&state.config.data_dir, tenant.id, days)
                .await;
        if removed > 0 {
            tracing::info!(tenant = %tenant.id, removed, "media past retention removed");
        }
    }
}
