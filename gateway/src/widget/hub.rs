//! Routes conversation-stream events to the widget connections of their conversation. One task
//! per process subscribes to the bus and looks each event's conversation up, so an event wakes
//! only its own visitors' connections, not every connection of the process. A tenant's
//! suspension, published by whichever process the operator reached, closes its connections in
//! every process.
//!
//! A connection that falls behind (its queue is full) or a bus subscription that lags marks the
//! connection for a resync: it reads the store after the last sequence number it sent, so
//! stored messages are never lost; only transient frames (streamed text) may be skipped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use coach_connector_api::{ConversationId, TenantId};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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
    /// Cancelled when a tenant is suspended (by any process: the bus carries it): its open
    /// connections close.
    suspended: Mutex<HashMap<TenantId, CancellationToken>>,
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
        | StreamPayload::Document { .. }
        | StreamPayload::Suspended {}
        | StreamPayload::Transcript { .. } => None,
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
        self.start(bus);
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

    /// Start the router (once): one bus subscription for the process.
    fn start(self: &Arc<Self>, bus: &Arc<dyn Bus>) {
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
    }

    /// What a connection of `tenant` waits on to close when the tenant is suspended (in this
    /// process or another: the router listens to the bus from now on).
    pub fn suspension(self: &Arc<Self>, bus: &Arc<dyn Bus>, tenant: TenantId) -> CancellationToken {
        self.start(bus);
        let mut tokens = self.suspended.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, t| !t.is_cancelled());
        tokens.entry(tenant).or_default().clone()
    }

    /// Close this process's open connections of `tenant` (it was suspended).
    pub fn close_tenant(&self, tenant: TenantId) {
        let token = self
            .suspended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&tenant);
        if let Some(token) = token {
            token.cancel();
        }
    }

    fn dispatch(&self, event: Arc<StreamEvent>) {
        if let StreamPayload::Suspended {} = event.payload {
            self.close_tenant(event.tenant_id);
            return;
        }
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
