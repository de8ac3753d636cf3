//! The conversation stream's event log: what was published on the bus, numbered in commit
//! order (`seq`), so `GET /v1/events` resumes on any gateway process and a process that missed
//! events on the bus reads them back ([`crate::bus::log`]). Rows carry contact data; each names
//! its conversation and goes with it (erasure, retention), and all are pruned after
//! `http.event_resume_minutes`. A supertrait of [`Store`](super::Store).

pub(crate) mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coach_connector_api::{ConversationId, TenantId};

use crate::store::StoreError;
use crate::tenancy::{SystemScope, TenantScope};

/// An event to log.
#[derive(Clone, Debug)]
pub struct NewLogEvent {
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The conversation it is about, if any: the row goes with it.
    pub conversation_id: Option<ConversationId>,
    /// The event, as the bus carries it (JSON).
    pub event: String,
    /// When it was published.
    pub at: DateTime<Utc>,
}

/// A logged event.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedEvent {
    /// Its number: rows become visible in this order.
    pub seq: i64,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The event (JSON).
    pub event: String,
}

/// The event log.
#[async_trait]
pub trait EventLogStore: Send + Sync {
    /// Log events in one transaction, in order; each gets its `seq`, or `None` when its tenant
    /// or conversation is gone (erased meanwhile: nothing of it is written).
    async fn append_events(
        &self,
        sys: &SystemScope,
        events: Vec<NewLogEvent>,
    ) -> Result<Vec<Option<i64>>, StoreError>;
    /// Every tenant's events after `after`, oldest first, at most `limit`.
    async fn logged_after(
        &self,
        sys: &SystemScope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LoggedEvent>, StoreError>;
    /// The tenant's events after `after` up to `upto` (inclusive), oldest first, at most
    /// `limit`.
    async fn tenant_events_after(
        &self,
        scope: &TenantScope,
        after: i64,
        upto: i64,
        limit: u32,
    ) -> Result<Vec<LoggedEvent>, StoreError>;
    /// The lowest and highest `seq` kept (`None` when the log is empty).
    async fn event_log_bounds(&self, sys: &SystemScope) -> Result<Option<(i64, i64)>, StoreError>;
    /// Delete at most `limit` of the events up to the last one logged before `before`, lowest
    /// `seq` first (what is kept is always everything above a number), never the newest;
    /// returns how many.
    async fn prune_event_log(
        &self,
        sys: &SystemScope,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError>;
}
