//! Telegram's polling mode, for gateways without a public HTTPS address: one `getUpdates`
//! long-poll loop per polling channel. Updates are stored before their offset is confirmed,
//! so an update Telegram handed over is never lost (a repeat is a no-op by its dedup key).
//!
//! Telegram serves one `getUpdates` per bot at a time (a second gets 409 Conflict), so with
//! several gateway processes exactly one polls a channel: the one holding the channel's lease
//! in the store, renewed every third of `providers.telegram_lease_secs`. A process that stops
//! gives the lease up; one that dies stops renewing it, and another process takes over when it
//! runs out (starting from the first unconfirmed update: nothing is skipped).

use std::collections::HashMap;
use std::time::Duration;

use coach_connector_api::{ChannelId, ChannelKind};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::state::AppState;
use crate::store::Channel;
use crate::tenancy::SystemScope;

/// How often the set of polling channels is refreshed.
const REFRESH: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

fn is_polling(channel: &Channel) -> bool {
    channel.kind == ChannelKind::Telegram
        && channel.enabled
        && channel.config.get("mode").and_then(|m| m.as_str()) == Some("polling")
}

/// Keep one poller running per enabled polling channel until `shutdown`.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    tokio::select! {
        () = shutdown.cancelled() => return,
        () = state.startup.ready() => {}
    }
    let sys = SystemScope::new("telegram polling");
    // This process, as a lease holder.
    let holder = Uuid::now_v7();
    // Each poller with the configuration it started with: a changed one (a new bot token) is
    // restarted.
    let mut running: HashMap<ChannelId, (CancellationToken, serde_json::Value)> = HashMap::new();
    let mut every = tokio::time::interval(REFRESH);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = every.tick() => {}
        }
        let Ok(tenants) = state.store.all_tenants(&sys).await else {
            continue;
        };
        let mut wanted = HashMap::new();
        for tenant in tenants
            .iter()
            .filter(|t| t.status == crate::store::TenantStatus::Active)
        {
            let scope = sys.for_tenant(tenant.id);
            if let Ok(channels) = state.store.channels(&scope).await {
                wanted.extend(channels.into_iter().filter(is_polling).map(|c| (c.id, c)));
            }
        }
        running.retain(|id, (token, config)| {
            let keep = wanted.get(id).is_some_and(|c| c.config == *config) && !token.is_cancelled();
            if !keep {
                token.cancel();
            }
            keep
        });
        for (id, channel) in wanted {
            if running.contains_key(&id) {
                continue;
            }
            let token = shutdown.child_token();
            running.insert(id, (token.clone(), channel.config.clone()));
            tokio::spawn(poll_under_lease(state.clone(), channel, holder, token));
        }
    }
    for (token, _) in running.values() {
        token.cancel();
    }
}

/// Wait for the channel's lease, poll while holding it, and wait again if it is lost, until
/// `stop` (which gives the lease up).
async fn poll_under_lease(
    state: AppState,
    channel: Channel,
    holder: Uuid,
    stop: CancellationToken,
) {
    let name = format!("telegram-poll:{}", channel.id);
    let sys = SystemScope::new("telegram polling lease");
    let ttl = Duration::from_secs(state.config.providers.telegram_lease_secs.max(1));
    let renew = ttl / 3;
    loop {
        // Free, expired, or ours: take it; else look again after a renewal period.
        let taken = state
            .store
            .take_lease(&sys, &name, holder, chrono::Utc::now(), ttl)
            .await;
        match taken {
            Ok(true) => {
                tracing::debug!(channel = %channel.id, "telegram polling lease taken");
                tokio::select! {
                    () = poll(&state, &channel, &stop) => {}
                    () = keep(&state, &name, holder, ttl) => {
                        tracing::warn!(channel = %channel.id, "telegram polling lease lost; another process polls");
                    }
                }
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(channel = %channel.id, error = %e, "telegram polling lease unavailable")
            }
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(renew) => {}
        }
    }
    if let Err(e) = state.store.release_lease(&sys, &name, holder).await {
        tracing::debug!(error = %e, "telegram polling lease not given up; it runs out");
    }
}

/// Renew the lease every third of `ttl`; returns when it is lost, or cannot be renewed
/// before it runs out (then another process may hold it).
async fn keep(state: &AppState, name: &str, holder: Uuid, ttl: Duration) {
    let sys = SystemScope::new("telegram polling lease");
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(ttl / 3).await;
        match state
            .store
            .take_lease(&sys, name, holder, chrono::Utc::now(), ttl)
            .await
        {
            Ok(true) => renewed = tokio::time::Instant::now(),
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "telegram polling lease not renewed");
                if renewed.elapsed() >= ttl * 2 / 3 {
                    return;
                }
            }
        }
    }
}

/// Poll one channel until `stop`.
async fn poll(state: &AppState, channel: &Channel, stop: &CancellationToken) {
    tracing::info!(channel = %channel.id, "telegram polling started");
    let scope = SystemScope::new("telegram polling").for_tenant(channel.tenant_id);
    let wait = state.config.providers.telegram_poll_secs;
    let mut offset = None;
    let mut backoff = Duration::from_secs(1);
    loop {
        let round = async {
            let config = state
                .connectors
                .channel_config(channel, &state.secrets)
                .map_err(|e| e.to_string())?;
            let call = coach_telegram::get_updates_call(&config, offset, wait)
                .map_err(|e| e.to_string())?;
            let response = state
                .connectors
                .execute_with_timeout(&call, Duration::from_secs(u64::from(wait) + 10))
                .await?;
            let polled = coach_telegram::parse_updates(&response.body)
                .map_err(|e| format!("HTTP {}: {e}", response.status))?;
            if !polled.events.is_empty() {
                state
                    .stream
                    .ingest(&scope, channel.id, polled.events)
                    .await
                    .map_err(|e| format!("storing updates: {e}"))?;
            }
            for id in &polled.callback_queries {
                if let Ok(call) = coach_telegram::answer_callback_call(&config, id)
                    && let Err(e) = state.connectors.execute(&call).await
                {
                    tracing::debug!(error = %e, "answerCallbackQuery failed");
                }
            }
            Ok::<_, String>(polled.next_offset)
        };
        let result = tokio::select! {
            () = stop.cancelled() => break,
            r = round => r,
        };
        match result {
            Ok(next) => {
                // Confirmed only now that the updates are stored.
                offset = next.or(offset);
                backoff = Duration::from_secs(1);
            }
            Err(error) => {
                tracing::warn!(channel = %channel.id, %error, "telegram polling failed; retrying");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    tracing::info!(channel = %channel.id, "telegram polling stopped");
}
