//! Routes conversation-stream events to the widget connections of their conversation. One task
//! per process subscribes to the bus and looks each event's conversation up, so an event wakes
//! only its own visitors' connections, not every connection of the process.
//!
//! A connection that falls behind (its queue is full) or a bus subscription that lags marks the
//! connection for a resync: it reads the store after the last sequence number it sent, so
//! stored messages are never lost; only transient frames (streamed text) may be skipped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use coach_connector_api::ConversationId;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::bus::{Bus, StreamEvent, StreamPayload};

/// Events queued per connection before it is marked for a resync instead.
const QUEUE: usize = 256;

struct Slot {
    id: u64,
    tx: mpsc::Sender<Arc<StreamEvent>>,
    resync: Arc<AtomicBool>,
}

/// The router.
#[derive(Default)]
pub struct Hub {
    routes: Mutex<HashMap<ConversationId, Vec<Slot>>>,
    started: OnceLock<()>,
    next_id: AtomicU64,
}

/// A connection's subscription to one conversation; dropping it unsubscribes.
pub struct Subscription {
    hub: Arc<Hub>,
    conversation: ConversationId,
    id: u64,
    /// Events of the conversation.
    pub events: mpsc::Receiver<Arc<StreamEvent>>,
    resync: Arc<AtomicBool>,
}

impl Subscription {
    /// Whether events were dropped since the last call (read the store to catch up).
    pub fn take_resync(&self) -> bool {
        self.resync.swap(false, Ordering::Relaxed)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut routes = self.hub.lock();
        if let Some(slots) = routes.get_mut(&self.conversation) {
            slots.retain(|s| s.id != self.id);
            if slots.is_empty() {
                routes.remove(&self.conversation);
            }
        }
    }
}

fn conversation_of(event: &StreamEvent) -> Option<ConversationId> {
    match &event.payload {
        StreamPayload::Message { message } => Some(message.conversation_id),
        StreamPayload::Status {
            conversation_id, ..
        }
        | StreamPayload::Answer {
            conversation_id, ..
        } => Some(*conversation_id),
        StreamPayload::Unknown { .. }
        | StreamPayload::Conversation { .. }
        | StreamPayload::Handoff { .. }
        | StreamPayload::Document { .. } => None,
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ConversationId, Vec<Slot>>> {
        // A panic while holding the lock leaves the map usable: recover it.
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribes to `conversation`, starting the router on first use.
    pub fn subscribe(
        self: &Arc<Self>,
        bus: &Arc<dyn Bus>,
        conversation: ConversationId,
    ) -> Subscription {
        self.started.get_or_init(|| {
            let hub = Arc::clone(self);
            let mut rx = bus.subscribe();
            tokio::spawn(async move {
                loop {
                    match rx.recv().await {
                        Ok(event) => hub.dispatch(event),
                        Err(RecvError::Lagged(_)) => hub.resync_all(),
                        Err(RecvError::Closed) => break,
                    }
                }
            });
        });
        let (tx, events) = mpsc::channel(QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let resync = Arc::new(AtomicBool::new(false));
        self.lock().entry(conversation).or_default().push(Slot {
            id,
            tx,
            resync: resync.clone(),
        });
        Subscription {
            hub: Arc::clone(self),
            conversation,
            id,
            events,
            resync,
        }
    }

    fn dispatch(&self, event: Arc<StreamEvent>) {
        let Some(conversation) = conversation_of(&event) else {
            return;
        };
        let routes = self.lock();
        for slot in routes.get(&conversation).into_iter().flatten() {
            if slot.tx.try_send(Arc::clone(&event)).is_err() {
                slot.resync.store(true, Ordering::Relaxed);
            }
        }
    }

    fn resync_all(&self) {
        for slot in self.lock().values().flatten() {
            slot.resync.store(true, Ordering::Relaxed);
        }
    }

    /// Connections subscribed now (metrics, tests).
    pub fn subscribers(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }
}
