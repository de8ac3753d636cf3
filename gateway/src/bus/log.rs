//! The most recent events of the bus, kept per process for resuming `GET /v1/events`
//! (`Last-Event-ID`), and the live feed of its clients, one per tenant: an event reaches only
//! its tenant's streams, and a busy tenant cannot make another tenant's clients fall behind.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::bus::{Bus, StreamEvent, StreamPayload};

/// Events kept for resuming, all tenants together (answer deltas are not kept: a client that
/// reconnects mid-answer gets the stored answer as its `message`).
const RING: usize = 4096;
/// Live events of its tenant a slow client may fall behind by before it gets `resync`.
const LIVE: usize = 1024;

type TenantId = coach_connector_api::TenantId;

/// The most recent events this process saw on the bus, for `Last-Event-ID`, and the live feed
/// of `GET /v1/events` clients (one place, so a client's replay and its live events meet
/// without a gap or a repeat).
pub struct EventLog {
    /// The ring and, under the same lock, each followed tenant's live feed.
    ring: Mutex<Ring>,
    started: OnceLock<()>,
}

#[derive(Default)]
struct Ring {
    events: VecDeque<Arc<StreamEvent>>,
    live: HashMap<TenantId, broadcast::Sender<Arc<StreamEvent>>>,
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
        Arc::new(Self {
            ring: Mutex::default(),
            started: OnceLock::new(),
        })
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
                let next = sub.recv().await;
                let Some(log) = log.upgrade() else { return };
                match next {
                    Ok(event) => log.push(event),
                    // Events were missed: nothing before this point can be resumed without a
                    // gap, so clients asking for it reload instead.
                    Err(RecvError::Lagged(_)) => log.lock().events.clear(),
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record one event and hand it to live clients.
    pub fn push(&self, event: Arc<StreamEvent>) {
        let mut ring = self.lock();
        let transient = matches!(
            &event.payload,
            StreamPayload::Answer {
                phase: crate::bus::AnswerPhase::Delta { .. },
                ..
            }
        );
        if !transient {
            if ring.events.len() == RING {
                ring.events.pop_front();
            }
            ring.events.push_back(event.clone());
        }
        // Sent under the lock: a client subscribing under it sees each event once, in the
        // replay or live. A tenant nobody follows any more loses its feed.
        let tenant = event.tenant_id;
        if let Some(live) = ring.live.get(&tenant)
            && live.send(event).is_err()
        {
            ring.live.remove(&tenant);
        }
    }

    /// The live feed from now on and, when `last` is given, the tenant's events after it.
    pub fn follow(
        &self,
        tenant: coach_connector_api::TenantId,
        last: Option<Uuid>,
    ) -> (Replay, broadcast::Receiver<Arc<StreamEvent>>) {
        let mut ring = self.lock();
        let live = ring
            .live
            .entry(tenant)
            .or_insert_with(|| broadcast::channel(LIVE).0)
            .subscribe();
        let Some(last) = last else {
            return (Replay::Events(Vec::new()), live);
        };
        let replay = match ring.events.iter().position(|e| e.id == last) {
            Some(at) => Replay::Events(
                ring.events
                    .iter()
                    .skip(at + 1)
                    .filter(|e| e.tenant_id == tenant)
                    .cloned()
                    .collect(),
            ),
            None => Replay::Resync,
        };
        (replay, live)
    }
}
