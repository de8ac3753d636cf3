//! `GET /v1/events`: the tenant's live events as server-sent events (new messages, streamed
//! answers, delivery statuses, handoffs, conversations changing hands, ingestion progress).
//!
//! Every event but an answer's pieces has as its id its place in the database's event log
//! (`seq`, the same on every gateway process), and every process sends them in that order
//! ([`crate::bus::log::EventLog`]). A client that reconnects, to any process, with
//! `Last-Event-ID` gets what it missed from the log. When the id is unknown (older than
//! `http.event_resume_minutes`, or never issued) or the connection fell behind, the client gets
//! a `resync` event instead: reload from the REST API, which is the source of truth.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use futures::Stream;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::extract::{Member, Viewer};
use crate::bus::log::Replay;
use crate::bus::{StreamEvent, StreamPayload};
use crate::error::ApiError;
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// One client's feed: what it missed, then the live bus.
struct Feed {
    /// Cancelled when the gateway shuts down; `ended` once the client was told.
    shutdown: tokio_util::sync::CancellationToken,
    ended: bool,
    first: VecDeque<Event>,
    live: broadcast::Receiver<Arc<StreamEvent>>,
    /// Logged events up to this `seq` were replayed (or the client had them).
    after: i64,
    /// Where the live events come from.
    log: Arc<crate::bus::log::EventLog>,
    tenant: coach_connector_api::TenantId,
    until: tokio::time::Instant,
    /// This stream's place under the caps, given back when the stream ends.
    _permit: crate::caps::Permit<String, coach_connector_api::TenantId>,
}

/// One event of the stream, as an SSE client reads it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the stream's shape
pub struct SseEvent {
    /// `message`, `answer`, `status`, `handoff`, `conversation`, `document`, `transcript`,
    /// `unknown`, `suspended`, `resync` or `shutdown`.
    event: String,
    /// The payload, as JSON text.
    data: String,
    /// The event's place in the event log, to resume from with `Last-Event-ID` (absent on
    /// `answer`, `resync` and `shutdown`).
    id: Option<String>,
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
        StreamPayload::Suspended {} => "suspended",
        StreamPayload::Transcript { .. } => "transcript",
    }
}

/// An event as SSE; a logged one carries its `seq` as its id (an answer's pieces have none,
/// so a client's `Last-Event-ID` stays on the last logged event).
fn to_sse(event: &StreamEvent) -> Event {
    let data = serde_json::to_string(&event.payload).unwrap_or_else(|_| "{}".into());
    let sse = Event::default().event(name(&event.payload)).data(data);
    match event.seq {
        Some(seq) => sse.id(seq.to_string()),
        None => sse,
    }
}

/// The last event of a stream cut by a shutdown: reconnect (to another process) with
/// `Last-Event-ID`.
fn shutdown() -> Event {
    Event::default()
        .event("shutdown")
        .data(r#"{"reason":"the gateway is restarting: reconnect with Last-Event-ID"}"#)
}

/// How long a quiet stream waits before it moves the client's cursor (and shows it is alive).
const IDLE: Duration = Duration::from_secs(15);

fn resync() -> Event {
    Event::default()
        .event("resync")
        .data(r#"{"reason":"events were missed: reload from the API"}"#)
}

/// The tenant's live events (server-sent events). Each has an `id`; reconnect with
/// `Last-Event-ID` to get what was missed, or a `resync` event when that is not possible.
/// A member holds at most `http.event_streams_per_member` open streams and a tenant
/// `http.event_streams_per_tenant` (one more: 429 with `Retry-After`).
#[utoipa::path(get, path = "/v1/events", tag = "events",
    params(("Last-Event-ID" = Option<String>, Header, description = "the id of the last event received")),
    responses((status = 200, description = "`text/event-stream`: `message`, `answer`, `status`, `handoff`, `conversation`, `document`, `transcript` (a voice note heard), `unknown`, `resync` and (when the gateway restarts) `shutdown` events", content_type = "text/event-stream", body = SseEvent)))]
async fn events(
    State(state): State<AppState>,
    member: Member<Viewer>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let tenant = member.scope.tenant_id();
    let permit = state
        .event_streams
        .admit(member.actor(), tenant)
        .map_err(|over| {
            let limit = match over {
                crate::caps::Over::Client(n) | crate::caps::Over::Target(n) => n,
            };
            ApiError::TooManyRequests {
                retry_after_secs: 10,
                limit,
            }
        })?;
    state.events.start(&state.bus).await?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().parse::<i64>());
    let (first, following) = match last {
        None => (Vec::new(), state.events.follow(&member.scope, None).await?),
        Some(Err(_)) => {
            let following = state.events.follow(&member.scope, None).await?;
            (vec![resync().id(following.after.to_string())], following)
        }
        Some(Ok(last)) => {
            let following = state.events.follow(&member.scope, Some(last)).await?;
            let first = match &following.replay {
                Replay::Events(events) => events.iter().map(|e| to_sse(e)).collect(),
                // The reload starts from here: so does the client's cursor.
                Replay::Resync => vec![resync().id(following.after.to_string())],
            };
            (first, following)
        }
    };
    // The stream ends when the access token would have: the client reconnects with a fresh
    // one, so a logout, a removal or a revoked key stops the events within that time.
    let until = tokio::time::Instant::now()
        + Duration::from_secs(state.config.auth.access_ttl_secs.max(60));
    let start = Feed {
        shutdown: state.shutdown.clone(),
        ended: false,
        first: first.into(),
        live: following.live,
        after: following.after,
        log: state.events.clone(),
        tenant,
        until,
        _permit: permit,
    };
    let stream = futures::stream::unfold(start, |mut feed| async move {
        if feed.ended {
            return None;
        }
        if let Some(event) = feed.first.pop_front() {
            return Some((Ok(event), feed));
        }
        loop {
            // A busy feed is cut on time too (the wait below only ends it when quiet).
            if tokio::time::Instant::now() >= feed.until {
                return None;
            }
            let next = tokio::select! {
                () = feed.shutdown.cancelled() => {
                    feed.ended = true;
                    return Some((Ok(shutdown()), feed));
                }
                next = tokio::time::timeout_at(
                    feed.until.min(tokio::time::Instant::now() + IDLE),
                    feed.live.recv(),
                ) => next,
            };
            match next {
                Err(_) if tokio::time::Instant::now() >= feed.until => return None,
                // Quiet for a while: the client's cursor moves up to what this process has
                // sent, so a quiet tenant's console resumes long after its last event (and the
                // line keeps proxies from closing the stream).
                Err(_) => {
                    let idle = Event::default().comment("idle");
                    let idle = match feed.log.idle_cursor(&feed.live, feed.after) {
                        Some(cursor) => idle.id(cursor.to_string()),
                        None => idle,
                    };
                    return Some((Ok(idle), feed));
                }
                Ok(Ok(event))
                    if event.tenant_id == feed.tenant
                        && event.seq.is_none_or(|seq| seq > feed.after) =>
                {
                    return Some((Ok(to_sse(&event)), feed));
                }
                Ok(Ok(_)) => {}
                Ok(Err(RecvError::Lagged(_))) => return Some((Ok(resync()), feed)),
                Ok(Err(RecvError::Closed)) => return None,
            }
        }
    });
    Ok(Sse::new(stream))
}
