//! One store compliance suite, run against SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use crate::against_every_backend;
use std::time::Duration;

use crate::common::{Backend, count_messages, message_status, status, tenant_with_channel, text};
use chrono::Utc;
use coach_connector_api::{
    ChannelIdentity, Content, DedupKey, DeliveryStatus, InboundEvent, MediaKind, OutboundBody,
    UnknownEvent,
};
use coach_gateway::store::{
    JOB_FETCH_MEDIA, JOB_TRANSCRIBE, Page, Queue, QueueOutcome, StoreError, StoredEvent,
};
use coach_gateway::tenancy::SystemScope;

const PAGE: Page = Page {
    before: None,
    limit: 100,
};
const LEASE: Duration = Duration::from_secs(60);

against_every_backend!(
    ingest_creates_contacts_conversations_messages_and_jobs,
    replaying_a_batch_stores_nothing_new,
    duplicates_inside_one_batch_are_stored_once,
    dedup_keys_are_scoped_to_their_channel,
    unknown_events_are_kept_whole_and_deduplicated,
    delivery_status_only_moves_forward,
    a_status_that_arrives_before_the_send_is_recorded_still_counts,
    another_tenant_sees_nothing_and_changes_nothing,
    concurrent_redeliveries_store_one_message,
    a_failing_write_leaves_nothing_and_spares_concurrent_writes,
    the_stream_stores_then_publishes_and_survives_nul_characters,
    a_voice_note_is_queued_for_transcription_and_its_transcript_joins_its_content,
);

async fn the_stream_stores_then_publishes_and_survives_nul_characters(b: &Backend) {
    use coach_gateway::bus::{Bus, MemoryBus, StreamPayload};
    let (scope, channel) = tenant_with_channel(&*b.store, "a").await;
    let bus = std::sync::Arc::new(MemoryBus::new(64));
    let mut sub = bus.subscribe();
    let stream = coach_gateway::stream::ConversationStream::new(b.store.clone(), bus);
    // PostgreSQL cannot store NUL in text or jsonb; the stream must not turn one into an error
    // that the provider would retry forever.
    let report = stream
        .ingest(&scope, channel, vec![text("nul", "al\0ice", "a\0b")])
        .await
        .unwrap();
    assert_eq!(report.stored.len(), 1);
    let event = sub.try_recv().expect("published after the commit");
    assert_eq!(event.tenant_id, scope.tenant_id());
    let StreamPayload::Message { message } = &event.payload else {
        panic!("{event:?}")
    };
    assert_eq!(message.content["body"], "a\u{fffd}b");
    let stored = b
        .store
        .messages(&scope, message.conversation_id, None, 10, false)
        .await
        .unwrap();
    assert_eq!(stored[0].content["body"], "a\u{fffd}b");
    // A replay through the stream publishes nothing.
    let again = stream
        .ingest(&scope, channel, vec![text("nul", "al\0ice", "a\0b")])
        .await
        .unwrap();
    assert_eq!(again.duplicates, 1);
    assert!(sub.try_recv().is_err());
}

async fn a_failing_write_leaves_nothing_and_spares_concurrent_writes(b: &Backend) {
    let (scope, channel) = tenant_with_channel(&*b.store, "a").await;
    b.fail_message_inserts("boom").await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = b.store.clone();
        let scope = scope.clone();
        // Every fourth batch carries the failing message after a good one from a new contact.
        let batch = if i % 4 == 0 {
            vec![
                text(&format!("good-{i}"), &format!("doomed-{i}"), "x"),
                text("boom", "z", "x"),
            ]
        } else {
            vec![text(&format!("good-{i}"), "alice", "x")]
        };
        tasks.push(tokio::spawn(async move {
            store.ingest(&scope, channel, batch).await
        }));
    }
    let (mut ok, mut failed) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(report) => {
                assert_eq!(report.stored.len(), 1);
                ok += 1;
            }
            Err(_) => failed += 1,
        }
    }
    assert_eq!((ok, failed), (30, 10));
    assert_eq!(
        count_messages(b, &scope).await,
        30,
        "no message of a failed batch was kept"
    );
    let convs = b
        .store
        .conversations(&scope, PAGE, Default::default())
        .await
        .unwrap();
    assert_eq!(
        convs.len(),
        1,
        "no contact or conversation of a failed batch was kept"
    );
    let sys = SystemScope::new("test");
    assert_eq!(
        b.store.stats(&sys).await.unwrap().jobs_depth,
        30,
        "no job of a failed batch was kept"
    );
}

async fn ingest_creates_contacts_conversations_messages_and_jobs(b: &Backend) {
    let (scope, channel) = tenant_with_channel(&*b.store, "a").await;
    let media = InboundEvent::Message(coach_connector_api::InboundMessage {
        dedup_key: DedupKey("m3".into()),
        provider_message_id: "m3".into(),
        from: ChannelIdentity::id("alice"),
        timestamp: crate::common::ts(2),
        content: Content::Media {
            media: MediaKind::Image,
            media_ref: "media-1".into(),
            mime: Some("image/jpeg".into()),
            size: Some(1234),
            caption: Some("look".into()),
            filename: None,
        },
        reply_to: None,
    });
    let report = b
        .store
        .ingest(
            &scope,
            channel,
            vec![text("m1", "alice", "hi"), text("m2", "bob", "hello"), media],
        )
        .await
        .unwrap();
    assert_eq!(report.stored.len(), 3);
    assert_eq!(report.duplicates, 0);
    let conversations = b
        .store
        .conversations(&scope, PAGE, Default::default())
        .await
        .unwrap();
    assert_eq!(conversations.len(), 2, "one conversation per contact");
    let alice = conversations
        .iter()
        .find(|c| c.external_id == "alice")
        .unwrap();
    let messages = b
        .store
        .messages(&scope, alice.id, None, 50, false)
        .await
        .unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].content["body"], "hi");
    assert_eq!(messages[1].content["kind"], "media");
    assert!(
        messages[0].id < messages[1].id,
        "messages come oldest first"
    );
    // Cursor pagination: after the first message only the second remains.
    let rest = b
        .store
        .messages(&scope, alice.id, Some(messages[0].id), 50, false)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);

    let sys = SystemScope::new("test");
    let stats = b.store.stats(&sys).await.unwrap();
    assert_eq!(stats.jobs_depth, 4, "three answers and one media fetch");
    let fetch = b
        .store
        .claim(
            &sys,
            Queue::Jobs,
            Some(JOB_FETCH_MEDIA),
            Utc::now(),
            10,
            LEASE,
        )
        .await
        .unwrap();
    assert_eq!(fetch.len(), 1);
    assert_eq!(fetch[0].message_id, Some(messages[1].id));
}

async fn replaying_a_batch_stores_nothing_new(b: &Backend) {
    let (scope, channel) = tenant_with_channel(&*b.store, "a").await;
    let batch: Vec<_> = (0..20)
        .map(|i| text(&format!("k{i}"), &format!("p{}", i % 3), "x"))
        .collect();
    let first = b
        .store
        .ingest(&scope, channel, batch.clone())
        .await
        .unwrap();
    assert_eq!((first.stored.len(), first.duplicates), (20, 0));
    let sys = SystemScope::new("test");
    let before = b.store.stats(&sys).await.unwrap();
    let second = b.store.ingest(&scope, channel, batch).await.unwrap();
    assert_eq!((second.stored.len(), second.duplicates), (0, 20));
    assert_eq!(
        b.store.stats(&sys).await.unwrap(),
        before,
        "a replay queues no new jobs"
    );
    let total: usize = count_messages(b, &scope).await;
    assert_eq!(total, 20);
}

async fn duplicates_inside_one_batch_are_stored_once(b: &Backend) {
    let (scope, channel) = tenant_with_channel(&*b.store, "a").await;
    let m = text("same", "alice", "hi");
    let report = b
        .store
        .ingest(&scope, channel, vec![m.clone(), m.clone(), m])
        .await
        .unwrap();
    assert_eq!((report.stored.len(), report.duplicates), (1, 2));
}

async fn dedup_keys_are_scoped_to_their_channel(b: &Backend) {
    let (scope, channel_a) = tenant_with_channel(&*b.store, "a").await;
    let channel_b = b
        .store
        .create_channel(
            &scope,
            coach_gateway::store::NewChannel {
                kind: coach_connector_api::ChannelKind::Telegram,
                name: "bot".into(),
                config: serde_json::json!({}),
            },
        )
        .await
        .unwrap()
        .id;
    let ra = b
        .store
        .ingest(&scope, channel_a, vec![text("42:7", "42", "a")])
        .await
        .unwrap();
    let rb = b
        .store
        .ingest(&scope, channel_b, vec![text("42:7", "42", "b")])
        .await
        .unwrap();
    assert_eq!((ra.stored.len(), rb.stored.len()), (1, 1));
}

async fn unknown_events_are_kept_whole_and_deduplicated(b: &Backend) {
    let (scope, channel) = tenant_with_channel(&*b.store, "a").await;
    let raw = serde_json::json!({ "update_id": 9, "chat_boost": { "nested": [1, 2, 3] } });
    let unknown = InboundEvent::Unknown(UnknownEvent {
        dedup_key: DedupKey("update:9".into()),
        kind: "chat_boost".into(),
        from: None,
        raw,
    });
    let first = b
        .store
        .ingest(&scope, channel, vec![unknown.clone()])
        .await
        .unwrap();
    assert!(
        matches!(&first.stored[..], [StoredEvent::Unknown { kind, .. }] if kind == "chat_boost")
    );
    let again = b
        .store
        .ingest(&scope, channel, vec![unknown])
        .await
        .unwrap();
    assert_eq!((again.stored.len(), again.duplicates), (0, 1));
}

/// Send one outbound message through the outbox and record the provider id.
async fn sent_message(
    b: &Backend,
    scope: &coach_gateway::tenancy::TenantScope,
    channel: coach_connector_api::ChannelId,
    contact: &str,
    provider_id: &str,
) -> coach_connector_api::MessageId {
    b.store
        .ingest(
            scope,
            channel,
            vec![text(&format!("in-{provider_id}"), contact, "hi")],
        )
        .await
        .unwrap();
    let conversation = b
        .store
        .conversations(scope, PAGE, Default::default())
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.external_id == contact)
        .unwrap();
    let out = b
        .store
        .enqueue_outbound(
            scope,
            conversation.id,
            OutboundBody::Text {
                text: "hello".into(),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(out.status, Some(DeliveryStatus::Pending));
    let sys = SystemScope::new("test");
    let items = b
        .store
        .claim(&sys, Queue::Outbox, None, Utc::now(), 10, LEASE)
        .await
        .unwrap();
    let item = items.iter().find(|i| i.message_id == Some(out.id)).unwrap();
    b.store
        .finish(
            &sys,
            Queue::Outbox,
            item,
            QueueOutcome::Done {
                provider_message_id: Some(provider_id.into()),
            },
        )
        .await
        .unwrap();
    out.id
}

async fn delivery_status_only_moves_forward(b: &Backend) {
    let (scope, channel) = tenant_with_channel(&*b.store, "a").await;
    let id = sent_message(b, &scope, channel, "alice", "wamid.1").await;
    assert_eq!(
        message_status(b, &scope, id).await.0,
        Some(DeliveryStatus::Sent)
    );
    let report = b
        .store
        .ingest(
            &scope,
            channel,
            vec![
                status("wamid.1", DeliveryStatus::Read),
                status("wamid.1", DeliveryStatus::Delivered),
                status("wamid.1", DeliveryStatus::Sent),
            ],
        )
        .await
        .unwrap();
    assert_eq!(report.stored.len(), 3, "every report is recorded");
    let applied: Vec<_> = report
        .stored
        .iter()
        .filter(|e| {
            matches!(
                e,
                StoredEvent::Status {
                    applied: Some(_),
                    ..
                }
            )
        })
        .collect();
    assert_eq!(applied.len(), 1, "only `read` moved the message");
    assert_eq!(
        message_status(b, &scope, id).await.0,
        Some(DeliveryStatus::Read)
    );
    b.store
        .ingest(
            &scope,
            channel,
            vec![status("wamid.1", DeliveryStatus::Failed)],
        )
        .await
        .unwrap();
    let (st, err) = message_status(b, &scope, id).await;
    assert_eq!(st, Some(DeliveryStatus::Failed));
    assert_eq!(
        err.unwrap().code,
        "131047",
        "the provider's error code is kept"
    );
    // Failed is final, and a replayed report changes nothing.
    let again = b
        .store
        .ingest(
            &scope,
            channel,
            vec![status("wamid.1", DeliveryStatus::Read)],
        )
        .await
        .unwrap();
    assert_eq!(again.duplicates, 1);
    assert_eq!(
        message_status(b, &scope, id).await.0,
        Some(DeliveryStatus::Failed)
    );
}

async fn a_status_that_arrives_before_the_send_is_recorded_still_counts(b: &Backend) {
    let (scope, channel) = tenant_with_channel(&*b.store, "a").await;
    // The provider reports delivery of wamid.2 before our worker recorded the send.
    let report = b
        .store
        .ingest(
            &scope,
            channel,
            vec![status("wamid.2", DeliveryStatus::Delivered)],
        )
        .await
        .unwrap();
    assert!(matches!(
        &report.stored[..],
        [StoredEvent::Status { applied: None, .. }]
    ));
    let id = sent_message(b, &scope, channel, "bob", "wamid.2").await;
    assert_eq!(
        message_status(b, &scope, id).await.0,
        Some(DeliveryStatus::Delivered)
    );
}

async fn another_tenant_sees_nothing_and_changes_nothing(b: &Backend) {
    let (a, channel_a) = tenant_with_channel(&*b.store, "a").await;
    let (other, _) = tenant_with_channel(&*b.store, "b").await;
    b.store
        .ingest(&a, channel_a, vec![text("a1", "alice", "secret")])
        .await
        .unwrap();
    let conv = b
        .store
        .conversations(&a, PAGE, Default::default())
        .await
        .unwrap()[0]
        .id;

    assert!(matches!(
        b.store.channel(&other, channel_a).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        b.store
            .conversations(&other, PAGE, Default::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        b.store.messages(&other, conv, None, 10, false).await,
        Err(StoreError::NotFound(_))
    ));
    let send = b
        .store
        .enqueue_outbound(&other, conv, OutboundBody::Text { text: "x".into() }, None)
        .await;
    assert!(matches!(send, Err(StoreError::NotFound(_))));
    let ingest = b
        .store
        .ingest(&other, channel_a, vec![text("b1", "mallory", "x")])
        .await;
    assert!(
        matches!(ingest, Err(StoreError::NotFound(_))),
        "nothing is written into A's channel"
    );
    assert_eq!(count_messages(b, &a).await, 1);
    assert!(b.store.audit_log(&other, 10).await.unwrap().is_empty());
}

async fn concurrent_redeliveries_store_one_message(b: &Backend) {
    let (scope, channel) = tenant_with_channel(&*b.store, "a").await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = b.store.clone();
        let scope = scope.clone();
        // Eight copies of each of four messages, from a new contact each, racing.
        let event = text(&format!("race-{}", i % 4), &format!("new-{}", i % 4), "hi");
        tasks.push(tokio::spawn(async move {
            store.ingest(&scope, channel, vec![event]).await.unwrap()
        }));
    }
    let mut stored = 0;
    for t in tasks {
        stored += t.await.unwrap().stored.len();
    }
    assert_eq!(stored, 4);
    assert_eq!(count_messages(b, &scope).await, 4);
    assert_eq!(
        b.store
            .conversations(&scope, PAGE, Default::default())
            .await
            .unwrap()
            .len(),
        4
    );
}

async fn a_voice_note_is_queued_for_transcription_and_its_transcript_joins_its_content(
    b: &Backend,
) {
    let (scope, channel) = tenant_with_channel(&*b.store, "a").await;
    let (other, _) = tenant_with_channel(&*b.store, "b").await;
    let voice = InboundEvent::Message(coach_connector_api::InboundMessage {
        dedup_key: DedupKey("v1".into()),
        provider_message_id: "v1".into(),
        from: ChannelIdentity::id("alice"),
        timestamp: crate::common::ts(1),
        content: Content::Media {
            media: MediaKind::Voice,
            media_ref: "voice-1".into(),
            mime: Some("audio/ogg; codecs=opus".into()),
            size: None,
            caption: None,
            filename: None,
        },
        reply_to: None,
    });
    let report = b.store.ingest(&scope, channel, vec![voice]).await.unwrap();
    let Some(StoredEvent::Message(message)) = report.stored.first() else {
        panic!("{report:?}")
    };
    let sys = SystemScope::new("test");
    assert_eq!(
        b.store.stats(&sys).await.unwrap().jobs_depth,
        3,
        "fetch, transcribe, answer"
    );
    let claimed = b
        .store
        .claim(
            &sys,
            Queue::Jobs,
            Some(JOB_TRANSCRIBE),
            Utc::now(),
            10,
            LEASE,
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].message_id, Some(message.id));

    b.store
        .attach_media(&scope, message.id, serde_json::json!({ "bytes": 9 }))
        .await
        .unwrap();
    let mut fields = serde_json::Map::new();
    fields.insert("transcript".into(), "how do I sleep better".into());
    fields.insert("language".into(), "en".into());
    assert!(matches!(
        b.store
            .annotate_message(&other, message.id, fields.clone())
            .await,
        Err(StoreError::NotFound(_))
    ));
    b.store
        .annotate_message(&scope, message.id, fields)
        .await
        .unwrap();
    let content = b.store.message(&scope, message.id).await.unwrap().content;
    assert_eq!(content["transcript"], "how do I sleep better");
    assert_eq!(content["language"], "en");
    assert_eq!(content["file"]["bytes"], 9, "the kept file stays");
    assert_eq!(content["media"], "voice");
    assert_eq!(content["media_ref"], "voice-1");
}
