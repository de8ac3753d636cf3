//! The Redis bus: events are published to one channel; every gateway process keeps a single
//! subscription (reconnecting with backoff) and re-broadcasts what arrives to its local
//! subscribers, its own publications included, so each subscriber sees each event once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::redis::{self, AsyncCommands};
use deadpool_redis::{Config as PoolConfig, Pool, Runtime};
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{Bus, BusError, StreamEvent, Subscription};

/// Fan-out across gateway processes through Redis pub/sub.
pub struct RedisBus {
    pool: Pool,
    channel: String,
    local: broadcast::Sender<Arc<StreamEvent>>,
}

impl RedisBus {
    /// Connect lazily to `url`; the subscription task runs until `shutdown`. The returned
    /// future resolves once the first subscription is active (or after 5 s, if Redis is down:
    /// the task keeps retrying and `ping` reports the trouble).
    pub async fn start(
        url: &str,
        prefix: &str,
        capacity: usize,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, BusError> {
        let pool = PoolConfig::from_url(url)
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        let client = redis::Client::open(url).map_err(|e| BusError::Unavailable(e.to_string()))?;
        let channel = format!("{prefix}coach:events");
        let bus = Arc::new(Self {
            pool,
            channel: channel.clone(),
            local: broadcast::channel(capacity).0,
        });
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(subscribe_loop(
            client,
            channel,
            bus.local.clone(),
            shutdown,
            ready_tx,
        ));
        let _ = tokio::time::timeout(Duration::from_secs(5), ready_rx).await;
        Ok(bus)
    }
}

async fn subscribe_loop(
    client: redis::Client,
    channel: String,
    local: broadcast::Sender<Arc<StreamEvent>>,
    shutdown: CancellationToken,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut delay = Duration::from_millis(100);
    loop {
        let session = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            if let Some(ready) = ready.take() {
                let _ = ready.send(());
            }
            tracing::info!(%channel, "redis bus subscribed");
            let mut messages = pubsub.on_message();
            while let Some(msg) = messages.next().await {
                let payload: Vec<u8> = msg.get_payload()?;
                match serde_json::from_slice::<StreamEvent>(&payload) {
                    Ok(event) => {
                        let _ = local.send(Arc::new(event));
                    }
                    Err(e) => tracing::warn!(error = %e, "undecodable event on the redis bus"),
                }
            }
            Ok::<_, redis::RedisError>(())
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            result = session => {
                match result {
                    Ok(()) => tracing::warn!("redis bus subscription ended; reconnecting"),
                    Err(e) => tracing::warn!(error = %e, "redis bus subscription failed; reconnecting"),
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

#[async_trait]
impl Bus for RedisBus {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn publish(&self, event: StreamEvent) -> Result<(), BusError> {
        let payload = serde_json::to_vec(&event)?;
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        let _: i64 = conn
            .publish(&self.channel, payload)
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        Ok(())
    }

    fn subscribe(&self) -> Subscription {
        self.local.subscribe()
    }

    async fn ping(&self) -> Result<(), BusError> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        Ok(())
    }
}
