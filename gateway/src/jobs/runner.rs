//! The one runner every job kind uses: claim due jobs as the handler's policy says, keep up to
//! `concurrency` of them running, record each outcome (done, later, retry with backoff, dead).

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::Utc;
use coach_connector_api::ProviderError;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{ClaimOrder, Handler, Outcome, Payload, Policy};
use crate::state::AppState;
use crate::store::{Queue, QueueItem, QueueOutcome, StoreError};
use crate::tenancy::SystemScope;

/// Claim up to `limit` due jobs of the handler's kind in its claim order.
async fn claim<H: Handler>(
    handler: &H,
    state: &AppState,
    policy: &Policy,
    limit: u32,
) -> Result<Vec<QueueItem>, StoreError> {
    let sys = SystemScope::new(H::KIND.as_str());
    let now = handler.now(state);
    match policy.order {
        ClaimOrder::Fair => {
            state
                .store
                .claim_fair(&sys, H::KIND.as_str(), now, limit, policy.lease)
                .await
        }
        ClaimOrder::Oldest => {
            state
                .store
                .claim(
                    &sys,
                    Queue::Jobs,
                    Some(H::KIND.as_str()),
                    now,
                    limit,
                    policy.lease,
                )
                .await
        }
    }
}

/// What the queue records for a handler's outcome.
fn record(
    now: chrono::DateTime<Utc>,
    policy: &Policy,
    item: &QueueItem,
    outcome: Outcome,
) -> Option<QueueOutcome> {
    Some(match outcome {
        Outcome::Done => QueueOutcome::Done {
            provider_message_id: None,
        },
        Outcome::Recorded => return None,
        Outcome::Later { at, why } => QueueOutcome::Retry { at, error: why },
        Outcome::Wait { at, why } => QueueOutcome::Wait { at, why },
        Outcome::Dead { code, title } => {
            tracing::warn!(job = %item.id, kind = %item.kind, %code, %title, "job dead-lettered");
            QueueOutcome::Dead {
                error: ProviderError { code, title },
            }
        }
        Outcome::Failed(error) if policy.last_attempt(item) => {
            tracing::error!(job = %item.id, kind = %item.kind, attempts = item.attempts, %error, "job given up");
            QueueOutcome::Dead {
                error: ProviderError {
                    code: item.kind.clone(),
                    title: error,
                },
            }
        }
        Outcome::Failed(error) => {
            tracing::warn!(job = %item.id, kind = %item.kind, attempts = item.attempts, %error, "job will be retried");
            let wait =
                crate::store::backoff(item.attempts, policy.retry.base, policy.retry.max, None);
            QueueOutcome::Retry {
                at: now + chrono::Duration::from_std(wait).unwrap_or_default(),
                error,
            }
        }
    })
}

/// Decode, run and record one claimed job.
async fn run_one<H: Handler>(
    handler: &H,
    state: &AppState,
    policy: &Policy,
    batch: &H::Batch,
    item: QueueItem,
) {
    let outcome = match H::Job::decode(&item) {
        Ok(job) => handler.run(state, batch, &item, job).await,
        Err(why) => Outcome::dead("corrupt", why),
    };
    if let Some(outcome) = record(handler.now(state), policy, &item, outcome) {
        let sys = SystemScope::new(H::KIND.as_str());
        if let Err(error) = state.store.finish(&sys, Queue::Jobs, &item, outcome).await {
            // The lease runs out and the job is claimed again: nothing is lost.
            tracing::warn!(job = %item.id, kind = %item.kind, %error, "job outcome not recorded");
        }
    }
}

/// How many jobs to claim now, with `running` of them in flight.
fn room(policy: &Policy, running: usize) -> u32 {
    let free = policy.concurrency.saturating_sub(running);
    let free = u32::try_from(free).unwrap_or(u32::MAX);
    match policy.order {
        // Claim no more than can start: what waits here would be claimed out of turn.
        ClaimOrder::Fair => policy.batch.min(free),
        ClaimOrder::Oldest if free == 0 => 0,
        ClaimOrder::Oldest => policy.batch,
    }
}

/// Claims one batch of due jobs and runs them to the end (`concurrency` at a time); returns
/// how many were claimed. For tests and tools that drive the queue step by step.
pub async fn run_once<H: Handler>(handler: H, state: &AppState) -> Result<usize, StoreError> {
    if !handler.ready(state) {
        return Ok(0);
    }
    let policy = handler.policy(state);
    let items = claim(&handler, state, &policy, room(&policy, 0)).await?;
    let claimed = items.len();
    let batch = H::Batch::default();
    let mut items = items.into_iter();
    loop {
        let chunk: Vec<_> = items.by_ref().take(policy.concurrency.max(1)).collect();
        if chunk.is_empty() {
            break;
        }
        futures::future::join_all(
            chunk
                .into_iter()
                .map(|item| run_one(&handler, state, &policy, &batch, item)),
        )
        .await;
    }
    Ok(claimed)
}

/// Runs `handler`'s jobs until `shutdown` (once the store is ready): claims as slots free up,
/// waits `idle` when nothing is due. At shutdown, running jobs finish and claimed jobs that did
/// not start are released.
pub async fn run<H: Handler>(handler: H, state: AppState, shutdown: CancellationToken) {
    tokio::select! {
        () = shutdown.cancelled() => return,
        () = state.startup.ready() => {}
    }
    let handler = Arc::new(handler);
    let mut running: JoinSet<()> = JoinSet::new();
    let mut backlog: VecDeque<QueueItem> = VecDeque::new();
    let mut batch = Arc::new(H::Batch::default());
    loop {
        let policy = handler.policy(&state);
        // Nothing more is due now: look again after `idle` (or when a running job ends).
        let mut drained = false;
        if backlog.is_empty() && handler.ready(&state) {
            let limit = room(&policy, running.len());
            if limit > 0 {
                match claim(&*handler, &state, &policy, limit).await {
                    Ok(items) => {
                        drained = items.len() < limit as usize;
                        if !items.is_empty() {
                            batch = Arc::new(H::Batch::default());
                        }
                        backlog.extend(items);
                    }
                    Err(error) => {
                        tracing::warn!(%error, kind = %H::KIND, "cannot claim jobs");
                        drained = true;
                    }
                }
            }
        } else if backlog.is_empty() {
            drained = true;
        }
        while running.len() < policy.concurrency.max(1) {
            let Some(item) = backlog.pop_front() else {
                break;
            };
            let (handler, state, batch) = (handler.clone(), state.clone(), batch.clone());
            running.spawn(async move { run_one(&*handler, &state, &policy, &batch, item).await });
        }
        if shutdown.is_cancelled() {
            break;
        }
        let idle = tokio::time::sleep(policy.idle);
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(joined) = running.join_next(), if !running.is_empty() => {
                if let Err(e) = joined {
                    tracing::error!(error = %e, kind = %H::KIND, "job panicked");
                }
            }
            () = idle, if drained || running.is_empty() => {}
        }
    }
    release(&state, backlog).await;
    while let Some(joined) = running.join_next().await {
        if let Err(e) = joined {
            tracing::error!(error = %e, kind = %H::KIND, "job panicked");
        }
    }
}

/// Claimed jobs that never started are due again at once (not left to their lease).
async fn release(state: &AppState, backlog: VecDeque<QueueItem>) {
    let sys = SystemScope::new("shutdown");
    for item in backlog {
        let outcome = QueueOutcome::Retry {
            at: Utc::now(),
            error: "released at shutdown".into(),
        };
        if let Err(error) = state.store.finish(&sys, Queue::Jobs, &item, outcome).await {
            tracing::warn!(job = %item.id, %error, "claimed job not released; its lease will run out");
        }
    }
}
