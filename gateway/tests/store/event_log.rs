//! The event log (`GET /v1/events` resumes from it on any process), on SQLite and PostgreSQL:
//! numbered in commit order, each tenant's own, gone with the contact's conversation, in the
//! contact's export, pruned by age.

use std::sync::Arc;
use std::time::Duration;

use coach_connector_api::{ConversationId, TenantId};
use coach_gateway::bus::log::{EventLog, Replay};
use coach_gateway::bus::{Bus, MemoryBus, StreamEvent, StreamPayload};
use coach_gateway::store::StoredEvent;
use coach_gateway::store::events::NewLogEvent;
use coach_gateway::tenancy::SystemScope;

use crate::against_every_backend;
use crate::common::{Backend, tenant_with_channel, text};

against_every_backend!(
    events_are_numbered_kept_per_tenant_and_erased_with_their_conversation,
    rows_become_visible_in_number_order_under_concurrent_writers,
    live_feeds_get_events_in_log_order_and_what_the_bus_lost,
);

fn event(tenant: TenantId, conversation: Option<ConversationId>, n: i64) -> NewLogEvent {
    NewLogEvent {
        tenant_id: tenant,
        conversation_id: conversation,
        event: serde_json::json!({ "event": "document", "chunks": n }).to_string(),
        at: chrono::Utc::now(),
    }
}

async fn events_are_numbered_kept_per_tenant_and_erased_with_their_conversation(b: &Backend) {
    let store = &b.store;
    let sys = SystemScope::new("test");
    let (ana, channel) = tenant_with_channel(store.as_ref(), "ana").await;
    let (bob, _) = tenant_with_channel(store.as_ref(), "bob").await;
    let report = store
        .ingest(&ana, channel, vec![text("k1", "4915100000001", "hello")])
        .await
        .unwrap();
    let StoredEvent::Message(message) = &report.stored[0] else {
        panic!("{:?}", report.stored)
    };
    let conversation = message.conversation_id;
    let (a, b_) = (ana.tenant_id(), bob.tenant_id());

    let seqs = store
        .append_events(
            &sys,
            vec![
                event(a, None, 1),
                event(a, Some(conversation), 2),
                event(b_, None, 3),
                // A conversation that does not exist (erased meanwhile): not logged.
                event(a, Some(ConversationId::new()), 4),
            ],
        )
        .await
        .unwrap();
    let [Some(s1), Some(s2), Some(s3), None] = seqs[..] else {
        panic!("{seqs:?}")
    };
    assert!(s1 < s2 && s2 < s3, "{seqs:?}");
    let more = store
        .append_events(&sys, vec![event(a, None, 5)])
        .await
        .unwrap();
    let s5 = more[0].unwrap();
    assert!(s5 > s3);

    let all = store.logged_after(&sys, s1 - 1, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![s1, s2, s3, s5]
    );
    assert_eq!(
        store.logged_after(&sys, s1, 2).await.unwrap().len(),
        2,
        "the limit holds"
    );
    let anas = store
        .tenant_events_after(&ana, s1 - 1, s5, 100)
        .await
        .unwrap();
    assert_eq!(
        anas.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![s1, s2, s5],
        "bob's event is not ana's"
    );
    assert!(anas.iter().all(|e| e.tenant_id == a));
    assert_eq!(
        store
            .tenant_events_after(&ana, s1, s2, 100)
            .await
            .unwrap()
            .len(),
        1,
        "up to `upto` only"
    );
    assert_eq!(store.event_log_bounds(&sys).await.unwrap(), Some((s1, s5)));

    // The contact's export names their conversation's events; erasing them takes those away.
    let contact = store.contacts(&ana, None, 10).await.unwrap()[0].id;
    let export = store.export_contact(&ana, contact).await.unwrap();
    let live = export["live_events"].as_array().unwrap();
    assert_eq!(live.len(), 1, "{export}");
    assert_eq!(live[0]["seq"], s2);
    assert_eq!(live[0]["event"]["chunks"], 2);
    store.erase_contact(&ana, contact).await.unwrap();
    let left = store.logged_after(&sys, 0, 100).await.unwrap();
    assert_eq!(
        left.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![s1, s3, s5]
    );

    // Pruning goes by age; erasing a tenant takes its rows.
    assert_eq!(
        store
            .prune_event_log(&sys, chrono::Utc::now() - chrono::Duration::hours(1), 10)
            .await
            .unwrap(),
        0
    );
    store.erase_tenant(&bob).await.unwrap();
    assert_eq!(store.event_log_bounds(&sys).await.unwrap(), Some((s1, s5)));
    assert_eq!(store.logged_after(&sys, 0, 100).await.unwrap().len(), 2);
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(
        store.prune_event_log(&sys, later, 1).await.unwrap(),
        1,
        "a batch at a time, oldest first"
    );
    assert_eq!(store.event_log_bounds(&sys).await.unwrap(), Some((s5, s5)));
    assert_eq!(
        store.prune_event_log(&sys, later, 10).await.unwrap(),
        0,
        "the newest row stays, so cursors stay known"
    );
    assert_eq!(store.event_log_bounds(&sys).await.unwrap(), Some((s5, s5)));
}

/// Writers of two processes append at once while a reader follows the log: the reader never
/// sees a number below one it already saw (what lets a process trust that a number missing
/// below a visible one will never come). On PostgreSQL this needs the writers' advisory lock.
async fn rows_become_visible_in_number_order_under_concurrent_writers(b: &Backend) {
    let (ana, _) = tenant_with_channel(b.store.as_ref(), "ana").await;
    let tenant = ana.tenant_id();
    let writers: Vec<Arc<dyn coach_gateway::store::Store>> =
        vec![b.store.clone(), b.second_store(), b.second_store()];
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = tokio::spawn({
        let (store, done) = (b.store.clone(), done.clone());
        async move {
            let sys = SystemScope::new("test");
            let mut seen = 0_i64;
            let mut reads = 0;
            let mut visible = std::collections::BTreeSet::new();
            loop {
                let last = done.load(std::sync::atomic::Ordering::SeqCst);
                let rows = store.logged_after(&sys, 0, 100_000).await.unwrap();
                for row in &rows {
                    if row.seq <= seen && !visible.contains(&row.seq) {
                        panic!("{} became visible after {seen}", row.seq);
                    }
                }
                visible.extend(rows.iter().map(|r| r.seq));
                seen = seen.max(rows.last().map_or(0, |r| r.seq));
                reads += 1;
                if last {
                    return (visible.len(), reads);
                }
            }
        }
    });
    let mut tasks = Vec::new();
    for (w, store) in writers.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let sys = SystemScope::new("test");
            for i in 0..40 {
                let batch = (0..3).map(|k| event(tenant, None, (w * 1000 + i * 3 + k) as i64));
                store.append_events(&sys, batch.collect()).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (rows, reads) = reader.await.unwrap();
    assert_eq!(rows, 3 * 40 * 3, "every row is read in the end");
    assert!(reads > 1, "the reader followed the writers");
}

/// A `document` event of `tenant` with `chunks`, logged: what a process published.
async fn logged(b: &Backend, tenant: TenantId, chunks: i64) -> StreamEvent {
    let mut event = StreamEvent {
        id: uuid::Uuid::now_v7(),
        seq: None,
        tenant_id: tenant,
        payload: StreamPayload::Document {
            document_id: uuid::Uuid::nil(),
            status: "processing".into(),
            progress: 0.5,
            chunks,
        },
    };
    let row = NewLogEvent {
        tenant_id: tenant,
        conversation_id: None,
        event: serde_json::to_string(&event).unwrap(),
        at: chrono::Utc::now(),
    };
    let seqs = b
        .store
        .append_events(&SystemScope::new("test"), vec![row])
        .await
        .unwrap();
    event.seq = seqs[0];
    event
}

/// The chunk counts of the next `n` live events.
async fn chunks(
    live: &mut tokio::sync::broadcast::Receiver<Arc<StreamEvent>>,
    n: usize,
) -> Vec<i64> {
    let mut got = Vec::new();
    for _ in 0..n {
        let event = tokio::time::timeout(Duration::from_secs(5), live.recv())
            .await
            .expect("an event within 5 s")
            .unwrap();
        match &event.payload {
            StreamPayload::Document { chunks, .. } => got.push(*chunks),
            other => panic!("{other:?}"),
        }
    }
    got
}

/// Events that reach a process out of order (another process published first) go to its
/// clients in the log's order; one the bus never brings comes from the log, in its place.
async fn live_feeds_get_events_in_log_order_and_what_the_bus_lost(b: &Backend) {
    let (ana, _) = tenant_with_channel(b.store.as_ref(), "ana").await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new(64));
    let log = EventLog::new(b.store.clone(), 60);
    log.start(&bus).await.unwrap();
    let mut following = log.follow(&ana, None).await.unwrap();
    assert_eq!(following.replay, Replay::Events(Vec::new()));

    let (one, two) = (
        logged(b, ana.tenant_id(), 1).await,
        logged(b, ana.tenant_id(), 2).await,
    );
    bus.publish(two).await.unwrap();
    bus.publish(one).await.unwrap();
    assert_eq!(chunks(&mut following.live, 2).await, vec![1, 2]);

    // The third never reaches this process's bus: the poll reads it before the fourth goes out.
    let _three = logged(b, ana.tenant_id(), 3).await;
    let four = logged(b, ana.tenant_id(), 4).await;
    let cursor = four.seq.unwrap();
    bus.publish(four.clone()).await.unwrap();
    assert_eq!(chunks(&mut following.live, 2).await, vec![3, 4]);
    // The bus's late copy is not delivered twice.
    bus.publish(four).await.unwrap();
    let five = logged(b, ana.tenant_id(), 5).await;
    bus.publish(five).await.unwrap();
    assert_eq!(chunks(&mut following.live, 1).await, vec![5]);

    // A client resuming after the fourth gets the fifth from the log, then the live feed.
    let resumed = log.follow(&ana, Some(cursor)).await.unwrap();
    let Replay::Events(replay) = &resumed.replay else {
        panic!("resync")
    };
    assert_eq!(replay.len(), 1);
    assert!(matches!(
        replay[0].payload,
        StreamPayload::Document { chunks: 5, .. }
    ));
    assert_eq!(resumed.after, replay[0].seq.unwrap());
    // A number the log never issued is unknown: reload.
    assert_eq!(
        log.follow(&ana, Some(cursor + 100)).await.unwrap().replay,
        Replay::Resync
    );
}
