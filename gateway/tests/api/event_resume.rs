//! `GET /v1/events` across gateway processes: the event log (not a process's memory) is what a
//! client resumes from, and what the bus loses is read back from it. The two "processes" here
//! share the database but not a bus, as if Redis dropped every event between them.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use std::time::Duration;

use crate::against_every_backend;
use crate::api_support::*;
use crate::common::Backend;
use crate::console::{Events, progress, scope_of};

against_every_backend!(
    a_console_resumes_on_another_process_and_gets_what_the_bus_lost,
    a_quiet_tenants_console_resumes_after_the_log_moved_on,
);

/// The next `document` event's chunk count and id, waiting long enough for a poll of the log.
async fn next_chunks(events: &mut Events) -> (i64, String) {
    let (name, id, data) = events
        .next_within(Duration::from_secs(5))
        .await
        .expect("an event within 5 s");
    assert_eq!(name, "document", "{data}");
    (data["chunks"].as_i64().unwrap(), id)
}

async fn a_console_resumes_on_another_process_and_gets_what_the_bus_lost(b: &Backend) {
    let first = app(b);
    let second = app_on(b.second_store(), (*first.state.config).clone());
    let ana = first.register("ana@example.com").await;
    let bob = first.register("bob@example.com").await;
    let (ana_scope, bob_scope) = (scope_of(&ana), scope_of(&bob));

    // Ana follows the second process; events are published on the first, whose bus the second
    // never hears: they come from the log, in order, each once.
    let mut on_second = Events::open(&second, token(&ana), None).await;
    for n in 1..=3 {
        progress(&first, &ana_scope, n).await;
    }
    progress(&first, &bob_scope, 99).await;
    let mut ids = Vec::new();
    for n in 1..=3 {
        let (chunks, id) = next_chunks(&mut on_second).await;
        assert_eq!(chunks, n);
        ids.push(
            id.parse::<i64>()
                .expect("the id is the event's number in the log"),
        );
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(
        on_second
            .next_within(Duration::from_secs(2))
            .await
            .is_none(),
        "an event came twice, or bob's leaked"
    );

    // Her connection drops after the second event; the third is published meanwhile on the
    // other process, and two more on this one. Reconnecting to the first process with the
    // second's id gives exactly what she missed, in order.
    drop(on_second);
    progress(&second, &ana_scope, 4).await;
    progress(&second, &ana_scope, 5).await;
    let mut resumed = Events::open(&first, token(&ana), Some(&ids[1].to_string())).await;
    for n in 3..=5 {
        assert_eq!(next_chunks(&mut resumed).await.0, n);
    }
    assert!(
        resumed.next_within(Duration::from_secs(2)).await.is_none(),
        "an event came twice, or bob's leaked"
    );
    // The live feed goes on after the replay, from either process.
    progress(&second, &ana_scope, 6).await;
    assert_eq!(next_chunks(&mut resumed).await.0, 6);
    progress(&first, &ana_scope, 7).await;
    assert_eq!(next_chunks(&mut resumed).await.0, 7);
    assert!(
        resumed.next_within(Duration::from_secs(2)).await.is_none(),
        "an event came twice"
    );
}

/// A tenant with no events for longer than the log keeps them: its console's cursor moves with
/// the log while the stream is quiet, so reconnecting does not force a reload; and a reload
/// (`resync`) hands out a cursor that works next time.
async fn a_quiet_tenants_console_resumes_after_the_log_moved_on(b: &Backend) {
    let app = app(b);
    let ana = app.register("ana@example.com").await;
    let bob = app.register("bob@example.com").await;
    let (ana_scope, bob_scope) = (scope_of(&ana), scope_of(&bob));
    let mut events = Events::open(&app, token(&ana), None).await;
    progress(&app, &ana_scope, 1).await;
    let (_, old, _) = events.next().await.unwrap();
    // Ana is quiet; bob is not, and the log is pruned past ana's last event (the newest
    // row, bob's second, stays).
    progress(&app, &bob_scope, 1).await;
    progress(&app, &bob_scope, 1).await;
    let sys = coach_gateway::tenancy::SystemScope::new("test");
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    app.state
        .store
        .prune_event_log(&sys, later, 1000)
        .await
        .unwrap();
    progress(&app, &bob_scope, 2).await;

    // Her stream, quiet for 15 s, moves her cursor past what was pruned.
    let cursor = events
        .idle_id(Duration::from_secs(20))
        .await
        .expect("a quiet stream sends its cursor");
    assert!(
        cursor.parse::<i64>().unwrap() > old.parse::<i64>().unwrap(),
        "{cursor} after {old}"
    );
    drop(events);
    let mut resumed = Events::open(&app, token(&ana), Some(&cursor)).await;
    progress(&app, &ana_scope, 2).await;
    let (name, _, data) = resumed.next().await.unwrap();
    assert_eq!(
        (name.as_str(), data["chunks"].as_i64()),
        ("document", Some(2)),
        "{data}"
    );
    drop(resumed);

    // With her old cursor she must reload; the reload's cursor then resumes.
    let mut stale = Events::open(&app, token(&ana), Some(&old)).await;
    let (name, fresh, _) = stale.next().await.unwrap();
    assert_eq!(name, "resync");
    assert!(!fresh.is_empty(), "the resync carries a cursor");
    drop(stale);
    progress(&app, &ana_scope, 3).await;
    let mut again = Events::open(&app, token(&ana), Some(&fresh)).await;
    let (name, _, data) = again.next().await.unwrap();
    assert_eq!(
        (name.as_str(), data["chunks"].as_i64()),
        ("document", Some(3)),
        "{data}"
    );
}
