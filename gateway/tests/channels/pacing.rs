//! Provider pacing across processes: with Redis, two gateway processes sending through one
//! WhatsApp number together keep to its rate (Meta's throughput tier), instead of each sending
//! at the full rate.

use std::time::{Duration, Instant};

use coach_connector_api::{ChannelId, ConversationId, OutboundBody};
use serde_json::json;

use crate::api_support::*;
use crate::common::Backend;
use crate::support::*;

crate::against_every_backend!(processes_share_a_channels_pace_through_redis);

pub(crate) async fn processes_share_a_channels_pace_through_redis(b: &Backend) {
    let prefix = format!("pace-{}:", uuid::Uuid::now_v7());
    let w = world_with(b, false, coach_gateway::clock::Clock::system(), |c| {
        c.redis.url = coach_e2e::redis_url();
        c.redis.prefix = prefix.clone();
    })
    .await;
    let owner = w.app.register("pace@example.com").await;
    let t = token(&owner).to_owned();
    let mut config = whatsapp_config();
    config["messages_per_second"] = json!(2);
    let channel = create(&w, &t, "whatsapp", config).await;
    let channel = ChannelId(channel["id"].as_str().unwrap().parse().unwrap());
    let tenant: coach_connector_api::TenantId =
        serde_json::from_value(owner["tenant_id"].clone()).unwrap();
    let two = app_on(w.app.state.store.clone(), (*w.app.state.config).clone());

    // Three read receipts from each process at once: 2 a second with a burst of 2 means the
    // last of the six goes out 2 s after the first. Each process pacing alone would be done
    // in 0.5 s.
    let started = Instant::now();
    let send = move |state: coach_gateway::state::AppState, n: usize| async move {
        let scope = coach_gateway::tenancy::SystemScope::new("test").for_tenant(tenant);
        for i in 0..3 {
            state
                .sender
                .signal(
                    &scope,
                    channel,
                    ConversationId(uuid::Uuid::now_v7()),
                    format!("3460000000{n}{i}"),
                    OutboundBody::MarkRead {
                        provider_message_id: format!("wamid.{n}.{i}"),
                    },
                    None,
                )
                .await;
        }
    };
    tokio::join!(send(w.app.state.clone(), 1), send(two.state.clone(), 2));
    let took = started.elapsed();
    assert_eq!(
        w.fake.requests_to(&format!("/{PHONE_ID}/messages")).len(),
        6,
        "every receipt was sent"
    );
    assert!(
        took >= Duration::from_millis(1900),
        "six sends at 2/s (burst 2) over two processes took {took:?}: the pace is not shared"
    );
}
