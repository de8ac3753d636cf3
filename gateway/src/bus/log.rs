//! The live feed of `GET /v1/events`, one per tenant, fed from the bus and the event log.
//!
//! Every logged event has a `seq`, its place in the database's event log (written before it is
//! published: [`super::appender`]). Each process hands its clients the events in `seq` order:
//! one that arrives early (another process published it first) waits for those before it, and
//! a poll of the log every second delivers what the bus lost (a Redis blip, a lagging
//! subscriber) and settles numbers that will never come (a rolled back write). So a client's last
//! `seq` is a cursor valid on every process: reconnecting with it as `Last-Event-ID` replays
//! the tenant's events after it from the database, then continues live without a gap or a
//! repeat. Answer pieces are not logged and pass straight through.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::bus::{Bus, StreamEvent};
use crate::store::events::LoggedEvent;
use crate::store::{Store, StoreError};
use crate::tenancy::{SystemScope, TenantScope};

/// Live events of its tenant a slow client may fall behind by before it gets `resync`.
const LIVE: usize = 1024;
/// How often the log is read for what the bus did not bring.
const POLL: Duration = Duration::from_secs(1);
/// Rows read per poll (a backlog is read in several).
const POLL_ROWS: u32 = 1000;
/// How often events past `http.event_resume_minutes` are deleted.
const PRUNE: Duration = Duration::from_secs(60);
/// Rows deleted per write when pruning.
const PRUNE_ROWS: u32 = 5000;
/// Events held back waiting for an earlier one before they go out regardless.
const HELD_MAX: usize = 4096;
/// Most events one reconnection replays; further behind, the client reloads.
const REPLAY_MAX: u32 = 4096;

type TenantId = coach_connector_api::TenantId;

/// The live feed of `GET /v1/events` clients, in `seq` order, and their resumption.
pub struct EventLog {
    store: Arc<dyn Store>,
    keep: chrono::Duration,
    ring: Mutex<Ring>,
    started: tokio::sync::OnceCell<()>,
}

#[derive(Default)]
struct Ring {
    /// Every logged event up to this `seq` was handed to live feeds (or will never be).
    delivered: i64,
    /// Events that came before one with a lower `seq`.
    held: BTreeMap<i64, Arc<StreamEvent>>,
    /// Unlogged events (an answer's pieces) that came while logged ones were held, each with
    /// the highest held `seq` then: they go out once it is no longer held.
    waiting: VecDeque<(i64, Arc<StreamEvent>)>,
    /// Each followed tenant's live feed.
    live: HashMap<TenantId, broadcast::Sender<Arc<StreamEvent>>>,
}

impl Ring {
    /// Hand an event to its tenant's live clients. A tenant nobody follows loses its feed.
    fn send(&mut self, event: Arc<StreamEvent>) {
        let tenant = event.tenant_id;
        if let Some(live) = self.live.get(&tenant)
            && live.send(event).is_err()
        {
            self.live.remove(&tenant);
        }
    }

    /// Deliver held events that are next in line.
    fn release(&mut self) {
        while let Some(&next) = self.held.keys().next() {
            if next != self.delivered + 1 && self.held.len() <= HELD_MAX {
                return;
            }
            self.delivered = next;
            if let Some(event) = self.held.remove(&next) {
                self.send(event);
            }
            self.flush();
        }
        self.flush();
    }

    /// Send the waiting unlogged events whose logged predecessor is no longer held (it went
    /// out, or a poll found it erased).
    fn flush(&mut self) {
        while let Some((after, _)) = self.waiting.front() {
            if self.held.contains_key(after) {
                return;
            }
            if let Some((_, event)) = self.waiting.pop_front() {
                self.send(event);
            }
        }
    }
}

/// What a reconnecting client is owed.
#[derive(Debug, PartialEq)]
pub enum Replay {
    /// The tenant's events after its cursor, oldest first.
    Events(Vec<Arc<StreamEvent>>),
    /// Its cursor is unknown here (pruned, never issued, or too far behind): it must reload.
    Resync,
}

/// A client's place in the stream: what it missed, then the live feed, without logged events
/// up to `after` (they are in the replay, or the client had them).
pub struct Following {
    /// What it missed.
    pub replay: Replay,
    /// Its tenant's live events.
    pub live: broadcast::Receiver<Arc<StreamEvent>>,
    /// Live logged events up to this `seq` are not sent again.
    pub after: i64,
}

impl EventLog {
    /// A log over `store` keeping events `keep_minutes`; [`EventLog::start`] feeds it.
    pub fn new(store: Arc<dyn Store>, keep_minutes: u32) -> Arc<Self> {
        Arc::new(Self {
            store,
            keep: chrono::Duration::minutes(i64::from(keep_minutes)),
            ring: Mutex::default(),
            started: tokio::sync::OnceCell::new(),
        })
    }

    /// Start following the bus and polling the log (once; later calls return at once).
    pub async fn start(self: &Arc<Self>, bus: &Arc<dyn Bus>) -> Result<(), StoreError> {
        self.started
            .get_or_try_init(|| async {
                // Subscribed before the starting point is read: nothing after it is missed.
                let sub = bus.subscribe();
                let sys = SystemScope::new("event log");
                let high = self
                    .store
                    .event_log_bounds(&sys)
                    .await?
                    .map_or(0, |(_, h)| h);
                {
                    // Events logged before the start were held meanwhile: no client is owed
                    // them live (a reconnecting one gets them from the log).
                    let mut ring = self.lock();
                    ring.delivered = high;
                    ring.held.retain(|seq, _| *seq > high);
                    ring.release();
                }
                tokio::spawn(receive(Arc::downgrade(self), sub));
                tokio::spawn(poll(Arc::downgrade(self)));
                Ok::<(), StoreError>(())
            })
            .await
            .map(|_| ())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An event from the bus: delivered now, or held until those before it are.
    pub fn accept(&self, event: Arc<StreamEvent>) {
        let mut ring = self.lock();
        match event.seq {
            // An answer's piece, or an event the log could not take: live only, after the
            // logged events that came before it.
            None => match ring.held.keys().next_back().copied() {
                // Bounded: past it, pieces go out rather than wait on a gap for everyone.
                Some(last_held) if ring.waiting.len() < HELD_MAX => {
                    ring.waiting.push_back((last_held, event));
                }
                _ => ring.send(event),
            },
            // Delivered already (the poll was first).
            Some(seq) if seq <= ring.delivered => {}
            Some(seq) => {
                ring.held.insert(seq, event);
                ring.release();
            }
        }
    }

    /// Deliver, in order, the logged events after the last delivered one that the bus has
    /// not brought. Rows become visible in `seq` order, so a number the log skips before one
    /// it shows will never come. Returns how many events came from the log alone.
    pub async fn catch_up(&self) -> Result<usize, StoreError> {
        let sys = SystemScope::new("event log");
        let mut recovered = 0;
        loop {
            // Events held before the read were logged before it (they are published after
            // their commit): one a complete read does not return was erased.
            let (after, held_before) = {
                let ring = self.lock();
                (
                    ring.delivered,
                    ring.held.keys().copied().collect::<Vec<_>>(),
                )
            };
            let rows = self.store.logged_after(&sys, after, POLL_ROWS).await?;
            let full = rows.len() == POLL_ROWS as usize;
            let mut ring = self.lock();
            for row in rows {
                if row.seq <= ring.delivered {
                    continue;
                }
                // Held events before this row are not in the log: erased since.
                while ring
                    .held
                    .first_key_value()
                    .is_some_and(|(k, _)| *k < row.seq)
                {
                    ring.held.pop_first();
                }
                let event = match ring.held.remove(&row.seq) {
                    Some(event) => event,
                    None => match decode(&row) {
                        Some(event) => {
                            recovered += 1;
                            event
                        }
                        None => {
                            ring.delivered = row.seq;
                            continue;
                        }
                    },
                };
                ring.delivered = row.seq;
                ring.send(event);
            }
            if !full {
                for seq in held_before {
                    ring.held.remove(&seq);
                }
            }
            ring.release();
            ring.flush();
            if !full {
                break;
            }
        }
        if recovered > 0 {
            metrics::counter!("event_log_recovered_total").increment(recovered as u64);
        }
        Ok(recovered)
    }

    /// The live feed from now on and, when `last` (a `seq`) is given, the tenant's events
    /// after it.
    pub async fn follow(
        &self,
        scope: &TenantScope,
        last: Option<i64>,
    ) -> Result<Following, StoreError> {
        let (upto, live) = {
            let mut ring = self.lock();
            let live = ring
                .live
                .entry(scope.tenant_id())
                .or_insert_with(|| broadcast::channel(LIVE).0)
                .subscribe();
            (ring.delivered, live)
        };
        let Some(last) = last else {
            return Ok(Following {
                replay: Replay::Events(Vec::new()),
                live,
                after: upto,
            });
        };
        let sys = SystemScope::new("event log");
        let known = match self.store.event_log_bounds(&sys).await? {
            // Nothing after the cursor may have been pruned, and it must have been issued.
            Some((low, high)) => last >= low - 1 && last <= high,
            None => false,
        };
        if !known {
            return Ok(Following {
                replay: Replay::Resync,
                live,
                after: upto,
            });
        }
        let rows = self
            .store
            .tenant_events_after(scope, last, upto, REPLAY_MAX + 1)
            .await?;
        let replay = if rows.len() > REPLAY_MAX as usize {
            Replay::Resync
        } else {
            Replay::Events(rows.iter().filter_map(decode).collect())
        };
        Ok(Following {
            replay,
            live,
            after: upto.max(last),
        })
    }

    /// Where a quiet client stands: every logged event up to the returned `seq` that it may
    /// see was handed to it (its live feed has nothing unread), so it may resume from there.
    /// `None` while its feed holds unread events.
    pub fn idle_cursor(
        &self,
        live: &broadcast::Receiver<Arc<StreamEvent>>,
        after: i64,
    ) -> Option<i64> {
        // Events reach feeds under this lock: an empty feed now has missed nothing up to
        // `delivered`.
        let ring = self.lock();
        live.is_empty().then_some(ring.delivered.max(after))
    }

    /// Delete events past their time, a batch per write.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        let sys = SystemScope::new("event log");
        let before = chrono::Utc::now() - self.keep;
        let mut pruned = 0;
        loop {
            let n = self.store.prune_event_log(&sys, before, PRUNE_ROWS).await?;
            pruned += n;
            if n < u64::from(PRUNE_ROWS) {
                return Ok(pruned);
            }
        }
    }
}

/// A logged event as it went out, with its `seq`.
fn decode(row: &LoggedEvent) -> Option<Arc<StreamEvent>> {
    match serde_json::from_str::<StreamEvent>(&row.event) {
        Ok(mut event) if event.tenant_id == row.tenant_id => {
            event.seq = Some(row.seq);
            Some(Arc::new(event))
        }
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(seq = row.seq, error = %e, "undecodable event in the event log");
            None
        }
    }
}

async fn receive(log: Weak<EventLog>, mut sub: broadcast::Receiver<Arc<StreamEvent>>) {
    loop {
        let next = sub.recv().await;
        let Some(log) = log.upgrade() else { return };
        match next {
            Ok(event) => log.accept(event),
            // Missed events are read back from the log by the next poll.
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "event feed fell behind the bus; reading the log"
                )
            }
            Err(RecvError::Closed) => return,
        }
    }
}

async fn poll(log: Weak<EventLog>) {
    let mut every = tokio::time::interval(POLL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pruned = tokio::time::Instant::now();
    // Said once per outage, not every second.
    let mut failing = false;
    loop {
        every.tick().await;
        let Some(log) = log.upgrade() else { return };
        match log.catch_up().await {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(events = n, "events the bus missed were read from the log");
                }
                failing = false;
            }
            Err(e) if !failing => {
                tracing::warn!(error = %e, "event log unreadable; retrying every second");
                failing = true;
            }
            Err(_) => {}
        }
        if pruned.elapsed() >= PRUNE {
            pruned = tokio::time::Instant::now();
            if let Err(e) = log.prune().await {
                tracing::warn!(error = %e, "event log not pruned; retrying");
            }
        }
    }
}
