//! `GET /v1/events`: the tenant's live events as server-sent events (new messages, streamed
//! answers, delivery statuses, handoffs, conversations changing hands, ingestion progress).
//!
//! Every event has the id it was published with on the bus (time-ordered, the same in every
//! gateway process, since they share the Redis bus). Each process keeps the most recent events
//! in a ring ([`EventLog`]); a client that reconnects with `Last-Event-ID` gets what it missed
//! from there. When the id has left the ring (or the connection fell behind the bus), the client
//! gets a `resync` event instead: reload from the REST API, which is the source of truth.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::extract::{Member, Viewer};
use crate::bus::{Bus, StreamEvent, StreamPayload};
use crate::state::AppState;

/// Events kept for resuming, all tenants together.
const RING: usize = 4096;

/// The most recent events this process saw on the bus, for `Last-Event-ID`.
#[derive(Default)]
pub struct EventLog {
    ring: Mutex<VecDeque<Arc<StreamEvent>>>,
    started: OnceLock<()>,
}

/// What a reconnecting client is owed.
#[derive(Debug, PartialEq)]
pub enum Replay {
    /// The events after its last one (its tenant's only).
    Events(Vec<Arc<StreamEvent>>),
    /// Its last event is no longer known here: it must reload.
    Resync,
}

impl EventLog {
    /// An empty log; [`EventLog::start`] feeds it.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Start recording the bus (once; later calls do nothing).
    pub fn start(self: &Arc<Self>, bus: &Arc<dyn Bus>) {
        if self.started.set(()).is_err() {
            return;
        }
        let mut sub = bus.subscribe();
        let log = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                match sub.recv().await {
                    Ok(event) => match log.upgrade() {
                        Some(log) => log.push(event),
                        None => return,
                    },
                    // Missed events cannot be resumed from here; a client asking for them gets
                    // `resync` because their neighbours' ids are not found.
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<StreamEvent>>> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record one event (the feeder does; tests may too).
    pub fn push(&self, event: Arc<StreamEvent>) {
        let mut ring = self.lock();
        if ring.len() == RING {
            ring.pop_front();
        }
        ring.push_back(event);
    }

    /// The tenant's events after `last`.
    pub fn after(&self, tenant: coach_connector_api::TenantId, last: Uuid) -> Replay {
        let ring = self.lock();
        match ring.iter().position(|e| e.id == last) {
            Some(at) => Replay::Events(
                ring.iter()
                    .skip(at + 1)
                    .filter(|e| e.tenant_id == tenant)
                    .cloned()
                    .collect(),
            ),
            None => Replay::Resync,
        }
    }
}

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// One client's feed: what it missed, then the live bus.
struct Feed {
    first: VecDeque<Event>,
    live: crate::bus::Subscription,
    seen: HashSet<Uuid>,
    tenant: coach_connector_api::TenantId,
}

/// The SSE `event` name of a payload.
fn name(payload: &StreamPayload) -> &'static str {
    match payload {
        StreamPayload::Message { .. } => "message",
        StreamPayload::Status { .. } => "status",
        StreamPayload::Unknown { .. } => "unknown",
        StreamPayload::Answer { .. } => "answer",
        StreamPayload::Conversation { .. } => "conversation",
        StreamPayload::Handoff { .. } => "handoff",
        StreamPayload::Document { .. } => "document",
    }
}

fn to_sse(event: &StreamEvent) -> Event {
    let data = serde_json::to_string(&event.payload).unwrap_or_else(|_| "{}".into());
    Event::default()
        .id(event.id.to_string())
        .event(name(&event.payload))
        .data(data)
}

fn resync() -> Event {
    Event::default()
        .event("resync")
        .data(r#"{"reason":"events were missed: reload from the API"}"#)
}

/// The tenant's live events (server-sent events). Each has an `id`; reconnect with
/// `Last-Event-ID` to get what was missed, or a `resync` event when that is not possible.
#[utoipa::path(get, path = "/v1/events", tag = "events", security(("bearer" = [])),
    params(("Last-Event-ID" = Option<String>, Header, description = "the id of the last event received")),
    responses((status = 200, description = "`text/event-stream`: `message`, `answer`, `status`, `handoff`, `conversation`, `document`, `unknown` and `resync` events", content_type = "text/event-stream", body = String)))]
async fn events(
    State(state): State<AppState>,
    member: Member<Viewer>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    state.events.start(&state.bus);
    let tenant = member.scope.tenant_id();
    // Subscribe before reading the ring, so nothing falls between the two.
    let live = state.bus.subscribe();
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().parse::<Uuid>());
    let (first, seen): (Vec<Event>, HashSet<Uuid>) = match last {
        None => (Vec::new(), HashSet::new()),
        Some(Err(_)) => (vec![resync()], HashSet::new()),
        Some(Ok(last)) => match state.events.after(tenant, last) {
            Replay::Events(events) => (
                events.iter().map(|e| to_sse(e)).collect(),
                events.iter().map(|e| e.id).collect(),
            ),
            Replay::Resync => (vec![resync()], HashSet::new()),
        },
    };
    let start = Feed {
        first: first.into(),
        live,
        seen,
        tenant,
    };
    let stream = futures::stream::unfold(start, |mut feed| async move {
        if let Some(event) = feed.first.pop_front() {
            return Some((Ok(event), feed));
        }
        loop {
            match feed.live.recv().await {
                Ok(event) if event.tenant_id == feed.tenant => {
                    // Replayed events may arrive live too: each is sent once.
                    if !feed.seen.is_empty() && feed.seen.remove(&event.id) {
                        continue;
                    }
                    return Some((Ok(to_sse(&event)), feed));
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => return Some((Ok(resync()), feed)),
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
