//! Telegram's polling mode, for gateways without a public HTTPS address: one `getUpdates`
//! long-poll loop per polling channel. Updates are stored before their offset is confirmed,
//! so an update Telegram handed over is never lost (a repeat is a no-op by its dedup key).

use std::collections::HashMap;
use std::time::Duration;

use coach_connector_api::{ChannelId, ChannelKind};
use tokio_util::sync::CancellationToken;

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
            tokio::spawn(poll(state.clone(), channel, token));
        }
    }
    for (token, _) in running.values() {
        token.cancel();
    }
}

/// Poll one channel until `stop`.
async fn poll(state: AppState, channel: Channel, stop: CancellationToken) {
    tracing::info!(channel = %channel.id, "telegram polling started");
    let scope = SystemScope::new("telegram polling").for_tenant(channel.tenant_id);
    let wait = state.config.providers.telegram_poll_secs;
    let mut offset = None;
    let mut backoff = Duration::from_secs(1);
    loop {
        let round = async {
            let config = state
                .connectors
                .channel_config(&channel, &state.secrets)
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
