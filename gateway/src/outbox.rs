//! The outbox worker: claims due rows, hands each to a [`Sender`], and records the outcome with
//! exponential backoff and jitter, dead-lettering after `max_attempts`. Rows are claimed under a
//! lease, so a crashed worker's rows are taken over once the lease expires; on PostgreSQL
//! several gateway processes share the table (`FOR UPDATE SKIP LOCKED`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use coach_connector_api::ProviderError;
use tokio_util::sync::CancellationToken;

use crate::config::OutboxConfig;
use crate::store::{Queue, QueueItem, QueueOutcome, Store, backoff};
use crate::tenancy::SystemScope;

/// What a send attempt came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Delivery {
    /// The provider accepted it.
    Sent {
        /// The provider's message id.
        provider_message_id: Option<String>,
    },
    /// Try again; `after` is the provider's `Retry-After`, if any.
    Retry {
        /// The provider's requested delay.
        after: Option<Duration>,
        /// Why.
        reason: String,
    },
    /// It will never succeed.
    Failed(ProviderError),
}

/// Sends one outbox row through its channel (the connector registry implements this).
#[async_trait]
pub trait Sender: Send + Sync + 'static {
    /// Attempt delivery of `item`.
    async fn send(&self, item: &QueueItem) -> Delivery;
    /// `item` was recorded as a dead letter: a sender may look at its channel's health and
    /// alert the team (the connector sender does). Nothing by default.
    async fn dead_lettered(&self, _item: &QueueItem) {}
}

/// Run the outbox worker until `shutdown`.
pub async fn run(
    store: Arc<dyn Store>,
    sender: Arc<dyn Sender>,
    config: OutboxConfig,
    shutdown: CancellationToken,
) {
    let sys = SystemScope::new("outbox worker");
    let poll = Duration::from_millis(config.poll_interval_ms);
    loop {
        let handled = match poll_once(&*store, &*sender, &config, &sys).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "outbox poll failed");
                0
            }
        };
        if handled > 0 {
            continue;
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(poll) => {}
        }
    }
    tracing::info!("outbox worker stopped");
}

/// Claim one batch and deliver it; returns how many rows were handled.
pub async fn poll_once(
    store: &dyn Store,
    sender: &dyn Sender,
    config: &OutboxConfig,
    sys: &SystemScope,
) -> Result<usize, crate::store::StoreError> {
    let lease = Duration::from_secs(config.lease_secs);
    let items = store
        .claim(
            sys,
            Queue::Outbox,
            None,
            Utc::now(),
            config.batch_size,
            lease,
        )
        .await?;
    // The batch holds at most one row per conversation, so its rows are sent concurrently
    // (order within a conversation is kept by the claim) and one recipient's pacing never
    // holds back the others. Each row is recorded by its own future as soon as its send ends,
    // so a failure to record one never leaves the others' sends unrecorded (and repeated after
    // the lease), and no row's recording waits on a send that is not being polled (which,
    // with sends holding pooled connections, would starve the pool).
    let results = futures::future::join_all(
        items
            .iter()
            .map(|item| deliver_and_record(store, sender, config, sys, item)),
    )
    .await;
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        return Err(e);
    }
    Ok(items.len())
}

/// Send one claimed row and record the outcome.
async fn deliver_and_record(
    store: &dyn Store,
    sender: &dyn Sender,
    config: &OutboxConfig,
    sys: &SystemScope,
    item: &QueueItem,
) -> Result<(), crate::store::StoreError> {
    let delivery = sender.send(item).await;
    let outcome = outcome_for(delivery, item.attempts, config);
    match &outcome {
        QueueOutcome::Done { .. } => metrics::counter!("outbox_sent_total").increment(1),
        QueueOutcome::Retry { error, .. } | QueueOutcome::Wait { why: error, .. } => {
            metrics::counter!("outbox_retries_total").increment(1);
            tracing::info!(outbox_id = %item.id, tenant = %item.tenant_id, attempts = item.attempts, %error, "delivery will be retried");
        }
        QueueOutcome::Dead { error } => {
            metrics::counter!("outbox_dead_total").increment(1);
            tracing::warn!(outbox_id = %item.id, tenant = %item.tenant_id, code = %error.code, "delivery dead-lettered");
        }
    }
    let dead = matches!(outcome, QueueOutcome::Dead { .. });
    store
        .finish(sys, Queue::Outbox, item, outcome)
        .await
        .inspect_err(|e| {
            tracing::error!(outbox_id = %item.id, error = %e, "recording a delivery failed; the row is retried after its lease");
        })?;
    if dead {
        sender.dead_lettered(item).await;
    }
    Ok(())
}

/// Map a delivery to a queue outcome: retries back off exponentially with jitter (never sooner
/// than the provider asked) until `max_attempts`, then the row is dead.
pub fn outcome_for(delivery: Delivery, attempts: u32, config: &OutboxConfig) -> QueueOutcome {
    match delivery {
        Delivery::Sent {
            provider_message_id,
        } => QueueOutcome::Done {
            provider_message_id,
        },
        Delivery::Failed(error) => QueueOutcome::Dead { error },
        Delivery::Retry { reason, .. } if attempts >= config.max_attempts => QueueOutcome::Dead {
            error: ProviderError {
                code: "max_attempts".into(),
                title: format!("gave up after {attempts} attempts: {reason}"),
            },
        },
        Delivery::Retry { after, reason } => {
            let delay = backoff(
                attempts,
                Duration::from_millis(config.base_backoff_ms),
                Duration::from_secs(config.max_backoff_secs),
                after,
            );
            // A provider asking for more than a day is capped: the row is retried and asks again.
            let delay = delay.min(Duration::from_secs(86_400));
            let at =
                Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::days(1));
            QueueOutcome::Retry { at, error: reason }
        }
    }
}
