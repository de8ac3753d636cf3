//! Telegram polling with two gateway processes on one database: exactly one polls a channel
//! (Telegram refuses a second `getUpdates` with 409), the other takes over when the first
//! dies (its lease runs out) or stops (it gives the lease up), and no update is lost.

use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::api_support::*;
use crate::common::Backend;
use crate::support::*;

crate::against_every_backend!(one_process_polls_a_channel_and_another_takes_over);

/// A second gateway process: the same database, configuration and master key.
fn second_process(w: &World) -> App {
    app_on(w.app.state.store.clone(), (*w.app.state.config).clone())
}

fn update(id: i64, text: &str) -> serde_json::Value {
    json!({ "update_id": id, "message": { "message_id": id, "date": 1_700_000_000,
        "from": { "id": 42, "first_name": "Ana" }, "chat": { "id": 42, "type": "private" }, "text": text } })
}

/// Waits until the tenant's conversation holds `n` messages.
async fn messages_reach(w: &World, t: &str, n: usize) {
    for _ in 0..150 {
        let (_, convs) = w.app.call("GET", "/v1/conversations", Some(t), None).await;
        if convs["items"].as_array().is_some_and(|c| !c.is_empty())
            && w.messages(t).await.len() >= n
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} messages were not stored");
}

pub(crate) async fn one_process_polls_a_channel_and_another_takes_over(b: &Backend) {
    let w = world_with(b, false, coach_gateway::clock::Clock::system(), |c| {
        c.providers.telegram_lease_secs = 2;
    })
    .await;
    let t = token(&w.app.register("lease@example.com").await).to_owned();
    create(
        &w,
        &t,
        "telegram",
        json!({ "bot_token": BOT_TOKEN, "mode": "polling" }),
    )
    .await;
    let two = second_process(&w);

    // The first process polls (so it holds the lease), then the second starts too.
    let first = tokio::spawn(coach_gateway::connectors::polling::run(
        w.app.state.clone(),
        CancellationToken::new(),
    ));
    w.fake.push_update(update(100, "first while both run"));
    messages_reach(&w, &t, 1).await;
    let second_stop = CancellationToken::new();
    let second = tokio::spawn(coach_gateway::connectors::polling::run(
        two.state.clone(),
        second_stop.clone(),
    ));
    // Both processes run for a while: the polls never overlap.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let polls = w.fake.requests_to("/getUpdates").len();
    assert!(polls >= 5, "the channel was polled {polls} times");
    assert_eq!(
        w.fake.overlapping_polls(),
        0,
        "two processes polled at once"
    );

    // The first process dies (no goodbye: its tasks vanish, the lease is not given up); the
    // second takes over once the lease runs out.
    first.abort();
    let _ = first.await;
    w.fake.push_update(update(101, "after a crash"));
    messages_reach(&w, &t, 2).await;

    // A clean stop gives the lease up; a third process takes over at once.
    let three = second_process(&w);
    let third_stop = CancellationToken::new();
    let third = tokio::spawn(coach_gateway::connectors::polling::run(
        three.state.clone(),
        third_stop.clone(),
    ));
    second_stop.cancel();
    second.await.unwrap();
    w.fake.push_update(update(102, "after a clean stop"));
    messages_reach(&w, &t, 3).await;
    third_stop.cancel();
    third.await.unwrap();

    assert_eq!(
        w.fake.overlapping_polls(),
        0,
        "two processes polled at once"
    );
    let texts: Vec<String> = w
        .messages(&t)
        .await
        .iter()
        .map(|m| m["content"]["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        texts,
        [
            "first while both run",
            "after a crash",
            "after a clean stop"
        ]
    );
}
