//! The in-process bus: a tokio broadcast channel.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::{Bus, BusError, StreamEvent, Subscription};

/// Fan-out within this process only.
pub struct MemoryBus {
    tx: broadcast::Sender<Arc<StreamEvent>>,
}

impl MemoryBus {
    /// A bus whose subscribers may fall `capacity` events behind before they lag.
    pub fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::channel(capacity).0,
        }
    }
}

#[async_trait]
impl Bus for MemoryBus {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn publish(&self, event: StreamEvent) -> Result<(), BusError> {
        // No subscriber is not an error: the store already holds the event.
        let _ = self.tx.send(Arc::new(event));
        Ok(())
    }

    fn subscribe(&self) -> Subscription {
        self.tx.subscribe()
    }

    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }
}
