//! The two durable work queues (outbox and jobs) share one shape: claim due rows under a lease,
//! then record done, retry later, or dead.

mod sql;

use std::time::Duration;

use chrono::{DateTime, Utc};
use coach_connector_api::{ChannelId, ConversationId, MessageId, ProviderError, TenantId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::*;
use crate::tenancy::SystemScope;

/// Which queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Queue {
    /// Outbound messages waiting for delivery through their channel.
    Outbox,
    /// Background jobs caused by inbound events (answer, fetch media...).
    Jobs,
}

impl Queue {
    /// The table name (also the metrics label).
    pub fn table(self) -> &'static str {
        match self {
            Self::Outbox => "outbox",
            Self::Jobs => "jobs",
        }
    }
}

/// A claimed queue row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueItem {
    /// The row id.
    pub id: Uuid,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// The job kind (`answer`, `fetch_media`...) or, for the outbox, the channel kind.
    pub kind: String,
    /// The channel, for outbox rows.
    pub channel_id: Option<ChannelId>,
    /// The conversation, for outbox rows.
    pub conversation_id: Option<ConversationId>,
    /// The message this row is about.
    pub message_id: Option<MessageId>,
    /// Extra job data.
    pub payload: serde_json::Value,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// When the row was due (a retried row: when its retry was due).
    pub due_at: DateTime<Utc>,
}

/// What became of a claimed row.
#[derive(Clone, Debug, PartialEq)]
pub enum QueueOutcome {
    /// Done; for the outbox, the provider's id of the sent message.
    Done {
        /// The provider's message id, when it gave one.
        provider_message_id: Option<String>,
    },
    /// Try again at `at`.
    Retry {
        /// When it becomes due again.
        at: DateTime<Utc>,
        /// Why it failed this time.
        error: String,
    },
    /// Not due yet (waiting for something else, not failing): look again at `at`; the claim
    /// that found it so does not count as an attempt.
    Wait {
        /// When it becomes due again.
        at: DateTime<Utc>,
        /// What it waits for.
        why: String,
    },
    /// Give up: the row is dead-lettered and, for the outbox, the message marked failed.
    Dead {
        /// Why.
        error: ProviderError,
    },
}

/// Exponential backoff with full jitter: a random delay in `[0, min(max, base * 2^(attempt-1))]`,
/// but never below `floor` (e.g. a provider's `Retry-After`).
pub fn backoff(attempt: u32, base: Duration, max: Duration, floor: Option<Duration>) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let cap = exp.min(max);
    let jittered = cap.mul_f64(fastrand::f64());
    jittered.max(floor.unwrap_or_default())
}

/// Queue records.
#[async_trait::async_trait]
pub trait QueueStore: Send + Sync {
    /// Take or renew the named lease for `holder` until `now + ttl`: `true` when `holder` has
    /// it now (it was free, expired, or already `holder`'s), `false` when another holder's
    /// lease is still running. One process does a piece of work that must not run twice at
    /// once (a Telegram channel's `getUpdates` loop) while it keeps renewing.
    async fn take_lease(
        &self,
        sys: &SystemScope,
        name: &str,
        holder: Uuid,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Give the lease up (if `holder` has it), so another process takes over at once.
    async fn release_lease(
        &self,
        sys: &SystemScope,
        name: &str,
        holder: Uuid,
    ) -> Result<(), StoreError>;

    /// Claim up to `limit` due items of a queue for `lease` (expired leases are reclaimed).
    /// For the outbox, only the oldest undelivered item of each conversation is due, so order
    /// is kept per conversation. `kind` restricts job claims to one kind.
    async fn claim(
        &self,
        sys: &SystemScope,
        queue: Queue,
        kind: Option<&str>,
        now: DateTime<Utc>,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<QueueItem>, StoreError>;

    /// Claim up to `limit` due jobs of `kind` for `lease`, fairly across tenants: each
    /// tenant's jobs are ranked after those it already has in flight, and the claim takes the
    /// lowest ranks first (oldest first among equals), so one tenant's burst does not delay
    /// another tenant's first job.
    async fn claim_fair(
        &self,
        sys: &SystemScope,
        kind: &str,
        now: DateTime<Utc>,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<QueueItem>, StoreError>;

    /// Record what became of a claimed item.
    async fn finish(
        &self,
        sys: &SystemScope,
        queue: Queue,
        item: &QueueItem,
        outcome: QueueOutcome,
    ) -> Result<(), StoreError>;

    /// Queue depths and counts for metrics.
    async fn stats(&self, sys: &SystemScope) -> Result<StoreStats, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_the_floor() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(10);
        for attempt in 1..40 {
            let d = backoff(attempt, base, max, None);
            assert!(d <= max);
            let cap = base.saturating_mul(1 << (attempt - 1).min(20)).min(max);
            assert!(d <= cap, "attempt {attempt}: {d:?} > {cap:?}");
        }
        let floor = Duration::from_secs(30);
        assert!(backoff(1, base, max, Some(floor)) >= floor);
    }
}
