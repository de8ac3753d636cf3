//! One bus compliance suite, run against the in-process bus and Redis pub/sub.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use std::sync::Arc;
use std::time::Duration;

use coach_connector_api::{ChannelId, TenantId};
use coach_gateway::bus::{Bus, MemoryBus, RedisBus, StreamEvent, StreamPayload};
use tokio_util::sync::CancellationToken;

fn event(tenant: TenantId, i: usize) -> StreamEvent {
    StreamEvent {
        seq: None,
        id: uuid::Uuid::now_v7(),
        tenant_id: tenant,
        payload: StreamPayload::Unknown {
            channel_id: ChannelId::new(),
            kind: format!("k{i}"),
        },
    }
}

/// Every subscriber gets every event once, in publish order, with its tenant.
async fn delivers_in_order_to_every_subscriber(
    publisher: Arc<dyn Bus>,
    watchers: Vec<Arc<dyn Bus>>,
) {
    let mut subs: Vec<_> = watchers
        .iter()
        .flat_map(|b| [b.subscribe(), b.subscribe()])
        .collect();
    let tenant = TenantId::new();
    let sent: Vec<_> = (0..200).map(|i| event(tenant, i)).collect();
    for e in &sent {
        publisher.publish(e.clone()).await.unwrap();
    }
    for sub in &mut subs {
        for expected in &sent {
            let got = tokio::time::timeout(Duration::from_secs(5), sub.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&*got, expected);
        }
        assert!(sub.try_recv().is_err(), "an event was delivered twice");
    }
    publisher.ping().await.unwrap();
}

#[tokio::test]
async fn memory_bus() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new(1024));
    delivers_in_order_to_every_subscriber(bus.clone(), vec![bus]).await;
}

#[tokio::test]
async fn redis_bus_fans_out_across_processes() {
    let shutdown = CancellationToken::new();
    // A unique prefix per run keeps parallel and repeated runs apart.
    let prefix = format!("test-{}:", uuid::Uuid::now_v7());
    let url = coach_e2e::redis_url();
    let a: Arc<dyn Bus> = RedisBus::start(&url, &prefix, 1024, shutdown.clone())
        .await
        .unwrap();
    let b: Arc<dyn Bus> = RedisBus::start(&url, &prefix, 1024, shutdown.clone())
        .await
        .unwrap();
    a.ping()
        .await
        .expect("Redis must be reachable: run the tests with `make test`");
    delivers_in_order_to_every_subscriber(a.clone(), vec![a, b]).await;
    shutdown.cancel();
}

#[tokio::test]
async fn redis_bus_reports_an_unreachable_server() {
    let shutdown = CancellationToken::new();
    let bus = RedisBus::start("redis://127.0.0.1:1", "x:", 16, shutdown.clone())
        .await
        .unwrap();
    assert!(bus.ping().await.is_err());
    assert!(bus.publish(event(TenantId::new(), 0)).await.is_err());
    shutdown.cancel();
}
