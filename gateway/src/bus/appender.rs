//! Publishing through the event log: each process's events are written to the database's
//! event log (numbered, in commit order) and then published on the bus with their `seq`, in
//! the order they were handed over. One writer per process takes them in batches, so a burst
//! costs one transaction per batch. Answer pieces are not logged (only live views show them)
//! but keep their place in the order. When the log cannot be written, events still go out
//! live, without a `seq`.

use std::sync::{Arc, OnceLock};

use chrono::Utc;
use coach_connector_api::ConversationId;
use tokio::sync::{mpsc, oneshot};

use crate::bus::{Bus, BusError, StreamEvent, StreamPayload};
use crate::store::Store;
use crate::store::events::NewLogEvent;
use crate::tenancy::SystemScope;

/// Events waiting for the writer before publishers wait for room.
const QUEUE: usize = 4096;
/// Most events written in one transaction.
const BATCH: usize = 256;
/// Longest wait for the bus to take one event.
const PUBLISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

type Handed = (StreamEvent, oneshot::Sender<Result<(), BusError>>);

/// Logs, then publishes.
pub struct Appender {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    queue: OnceLock<mpsc::Sender<Handed>>,
}

impl Appender {
    /// An appender over this store and bus; its writer starts with the first event.
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>) -> Self {
        Self {
            store,
            bus,
            queue: OnceLock::new(),
        }
    }

    /// Log `event` (unless it is an answer's piece), then publish it; returns once it is
    /// published (an answer's piece: once it has its place in the queue).
    pub async fn publish(&self, event: StreamEvent) -> Result<(), BusError> {
        self.publish_all(vec![event]).await
    }

    /// Log and publish `events` in this order (one transaction when they fit a batch); returns
    /// once all are published, with the first failure (at once when all are answer pieces).
    pub async fn publish_all(&self, events: Vec<StreamEvent>) -> Result<(), BusError> {
        let stopped = || BusError::Unavailable("the event writer stopped".into());
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(write(self.store.clone(), self.bus.clone(), rx));
            tx
        });
        // An answer's pieces keep their place in the order but nobody waits for them: the
        // responder streams on while they go out.
        let wait = events.iter().any(|e| logged(&e.payload));
        let mut waiting = Vec::with_capacity(events.len());
        for event in events {
            let (done, published) = oneshot::channel();
            queue.send((event, done)).await.map_err(|_| stopped())?;
            waiting.push(published);
        }
        if !wait {
            return Ok(());
        }
        let mut outcome = Ok(());
        for published in waiting {
            let result = published.await.map_err(|_| stopped()).and_then(|r| r);
            if outcome.is_ok() {
                outcome = result;
            }
        }
        outcome
    }
}

/// Whether an event is written to the log: everything but an answer's streamed pieces, which
/// only live views show (the stored answer follows as a `message`).
pub fn logged(payload: &StreamPayload) -> bool {
    !matches!(payload, StreamPayload::Answer { .. })
}

/// The conversation an event is about: its log row goes with that conversation.
fn conversation_of(payload: &StreamPayload) -> Option<ConversationId> {
    match payload {
        StreamPayload::Message { message } => Some(message.conversation_id),
        StreamPayload::Conversation { conversation } => Some(conversation.id),
        StreamPayload::Status {
            conversation_id, ..
        }
        | StreamPayload::Handoff {
            conversation_id, ..
        }
        | StreamPayload::Transcript {
            conversation_id, ..
        }
        | StreamPayload::Answer {
            conversation_id, ..
        } => Some(*conversation_id),
        StreamPayload::Unknown { .. }
        | StreamPayload::Document { .. }
        | StreamPayload::Suspended {} => None,
    }
}

/// A failure that left nothing written and may pass on a second try (PostgreSQL's
/// serialization failure and deadlock).
fn retryable(e: &crate::store::StoreError) -> bool {
    match e {
        crate::store::StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40001" | "40P01"))
        }
        _ => false,
    }
}

async fn write(store: Arc<dyn Store>, bus: Arc<dyn Bus>, mut rx: mpsc::Receiver<Handed>) {
    let sys = SystemScope::new("event log");
    let mut batch: Vec<Handed> = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut rows = Vec::new();
        // Which events of the batch have a row.
        let mut has_row = Vec::with_capacity(batch.len());
        for (event, _) in &batch {
            let json = if logged(&event.payload) {
                serde_json::to_string(event)
                    .inspect_err(|e| tracing::warn!(error = %e, "event not encodable for the log"))
                    .ok()
            } else {
                None
            };
            has_row.push(json.is_some());
            if let Some(json) = json {
                rows.push(NewLogEvent {
                    tenant_id: event.tenant_id,
                    conversation_id: conversation_of(&event.payload),
                    event: json,
                    at: Utc::now(),
                });
            }
        }
        let seqs = if rows.is_empty() {
            None
        } else {
            // Tried again after a deadlock or a serialization failure (nothing was written);
            // other failures (the commit's fate may be unknown) are not retried, and the
            // events go out live only: a client that reconnects later cannot get them back.
            let mut outcome = store.append_events(&sys, rows.clone()).await;
            if let Err(e) = &outcome
                && retryable(e)
            {
                tracing::debug!(error = %e, "event log write failed; trying once more");
                outcome = store.append_events(&sys, rows).await;
            }
            match outcome {
                Ok(seqs) => Some(seqs),
                Err(e) => {
                    metrics::counter!("event_log_write_failures_total").increment(1);
                    tracing::warn!(error = %e, "event log not written; events go out live only");
                    None
                }
            }
        };
        let mut seqs = seqs.map(Vec::into_iter);
        for ((mut event, done), has_row) in batch.drain(..).zip(has_row) {
            if has_row && let Some(seqs) = seqs.as_mut() {
                match seqs.next().flatten() {
                    Some(seq) => event.seq = Some(seq),
                    // Its conversation was erased meanwhile: nothing of it goes out.
                    None => {
                        let _ = done.send(Ok(()));
                        continue;
                    }
                }
            }
            // A bus that hangs (Redis unreachable) must not stall every publisher behind it.
            let published = match tokio::time::timeout(PUBLISH_TIMEOUT, bus.publish(event)).await {
                Ok(result) => result,
                Err(_) => Err(BusError::Unavailable("publish timed out".into())),
            };
            let _ = done.send(published);
        }
    }
}
