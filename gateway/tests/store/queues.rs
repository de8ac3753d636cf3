//! The store's queues and bookkeeping against SQLite and PostgreSQL: outbox order, backoff,
//! leases and dead letters; jobs by kind; retention; the audit log.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use crate::against_every_backend;
use std::time::Duration;

use crate::common::{Backend, count_messages, message_status, tenant_with_channel, text};
use chrono::Utc;
use coach_connector_api::{DeliveryStatus, OutboundBody, ProviderError};
use coach_gateway::store::{AuditEntry, JOB_ANSWER, JOB_FETCH_MEDIA, Page, Queue, QueueOutcome};
use coach_gateway::tenancy::SystemScope;

const PAGE: Page = Page {
    before: None,
    limit: 100,
};
const LEASE: Duration = Duration::from_secs(60);

against_every_backend!(
    outbox_keeps_order_per_conversation_and_backs_off,
    expired_leases_are_reclaimed_and_dead_letters_mark_the_message_failed,
    jobs_are_claimed_by_kind,
    a_suspended_tenants_work_waits_until_it_is_resumed,
    a_burst_of_one_tenant_does_not_hold_back_another,
    retention_deletes_only_old_messages_of_tenants_that_set_it,
    audit_log_is_per_tenant_newest_first,
    a_wait_gives_back_the_attempt_its_claim_counted,
);

async fn outbox_keeps_order_per_conversation_and_backs_off(b: &Backend) {
    let (scope, channel) = tenant_with_channel(&*b.store, "a").await;
    b.store
        .ingest(
            &scope,
            channel,
            vec![text("a1", "alice", "x"), text("b1", "bob", "y")],
        )
        .await
        .unwrap();
    let convs = b
        .store
        .conversations(&scope, PAGE, Default::default())
        .await
        .unwrap();
    let alice = convs.iter().find(|c| c.external_id == "alice").unwrap().id;
    let bob = convs.iter().find(|c| c.external_id == "bob").unwrap().id;
    let body = |t: &str| OutboundBody::Text { text: t.into() };
    let a1 = b
        .store
        .enqueue_outbound(&scope, alice, body("first"), None)
        .await
        .unwrap();
    let a2 = b
        .store
        .enqueue_outbound(&scope, alice, body("second"), None)
        .await
        .unwrap();
    let b1 = b
        .store
        .enqueue_outbound(&scope, bob, body("other"), None)
        .await
        .unwrap();
    let sys = SystemScope::new("test");
    let claimed = b
        .store
        .claim(&sys, Queue::Outbox, None, Utc::now(), 10, LEASE)
        .await
        .unwrap();
    let ids: Vec<_> = claimed.iter().map(|i| i.message_id.unwrap()).collect();
    assert_eq!(
        ids,
        vec![a1.id, b1.id],
        "alice's second message waits for her first"
    );
    assert!(
        claimed
            .iter()
            .all(|i| i.attempts == 1 && i.kind == "whatsapp")
    );
    // Nothing more is due while they are in flight.
    assert!(
        b.store
            .claim(&sys, Queue::Outbox, None, Utc::now(), 10, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    let retry_at = Utc::now() + chrono::Duration::seconds(30);
    b.store
        .finish(
            &sys,
            Queue::Outbox,
            &claimed[0],
            QueueOutcome::Retry {
                at: retry_at,
                error: "429".into(),
            },
        )
        .await
        .unwrap();
    b.store
        .finish(
            &sys,
            Queue::Outbox,
            &claimed[1],
            QueueOutcome::Done {
                provider_message_id: None,
            },
        )
        .await
        .unwrap();
    assert!(
        b.store
            .claim(&sys, Queue::Outbox, None, Utc::now(), 10, LEASE)
            .await
            .unwrap()
            .is_empty(),
        "the retried row is not due yet, and the second still waits behind it"
    );
    let later = b
        .store
        .claim(
            &sys,
            Queue::Outbox,
            None,
            retry_at + chrono::Duration::seconds(1),
            10,
            LEASE,
        )
        .await
        .unwrap();
    assert_eq!(
        later
            .iter()
            .map(|i| i.message_id.unwrap())
            .collect::<Vec<_>>(),
        vec![a1.id]
    );
    assert_eq!(later[0].attempts, 2);
    b.store
        .finish(
            &sys,
            Queue::Outbox,
            &later[0],
            QueueOutcome::Done {
                provider_message_id: Some("p1".into()),
            },
        )
        .await
        .unwrap();
    let next = b
        .store
        .claim(
            &sys,
            Queue::Outbox,
            None,
            retry_at + chrono::Duration::seconds(2),
            10,
            LEASE,
        )
        .await
        .unwrap();
    assert_eq!(
        next.iter()
            .map(|i| i.message_id.unwrap())
            .collect::<Vec<_>>(),
        vec![a2.id]
    );
}

async fn expired_leases_are_reclaimed_and_dead_letters_mark_the_message_failed(b: &Backend) {
    let (scope, channel) = tenant_with_channel(&*b.store, "a").await;
    b.store
        .ingest(&scope, channel, vec![text("a1", "alice", "x")])
        .await
        .unwrap();
    let conv = b
        .store
        .conversations(&scope, PAGE, Default::default())
        .await
        .unwrap()[0]
        .id;
    let out = b
        .store
        .enqueue_outbound(&scope, conv, OutboundBody::Text { text: "t".into() }, None)
        .await
        .unwrap();
    let sys = SystemScope::new("test");
    let now = Utc::now();
    let first = b
        .store
        .claim(&sys, Queue::Outbox, None, now, 10, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    // The worker "crashed": after the lease another worker takes the row over.
    let taken = b
        .store
        .claim(
            &sys,
            Queue::Outbox,
            None,
            now + chrono::Duration::seconds(6),
            10,
            LEASE,
        )
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].attempts, 2);
    let error = ProviderError {
        code: "131026".into(),
        title: "Message undeliverable".into(),
    };
    b.store
        .finish(&sys, Queue::Outbox, &taken[0], QueueOutcome::Dead { error })
        .await
        .unwrap();
    let stats = b.store.stats(&sys).await.unwrap();
    assert_eq!((stats.outbox_depth, stats.outbox_dead), (0, 1));
    let (st, err) = message_status(b, &scope, out.id).await;
    assert_eq!(st, Some(DeliveryStatus::Failed));
    assert_eq!(err.unwrap().code, "131026");
}

async fn jobs_are_claimed_by_kind(b: &Backend) {
    let (scope, channel) = tenant_with_channel(&*b.store, "a").await;
    b.store
        .ingest(
            &scope,
            channel,
            vec![text("a1", "alice", "x"), text("a2", "alice", "y")],
        )
        .await
        .unwrap();
    let sys = SystemScope::new("test");
    assert!(
        b.store
            .claim(
                &sys,
                Queue::Jobs,
                Some(JOB_FETCH_MEDIA),
                Utc::now(),
                10,
                LEASE
            )
            .await
            .unwrap()
            .is_empty()
    );
    let jobs = b
        .store
        .claim(&sys, Queue::Jobs, Some(JOB_ANSWER), Utc::now(), 10, LEASE)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 2);
    assert!(
        jobs.iter()
            .all(|j| j.tenant_id == scope.tenant_id() && j.kind == JOB_ANSWER)
    );
    for job in &jobs {
        b.store
            .finish(
                &sys,
                Queue::Jobs,
                job,
                QueueOutcome::Done {
                    provider_message_id: None,
                },
            )
            .await
            .unwrap();
    }
    assert_eq!(b.store.stats(&sys).await.unwrap().jobs_depth, 0);
}

/// Suspending a tenant stops its workers: no claim (fair or oldest first) takes its jobs, other
/// tenants' go on, and resuming it brings its queued work back.
async fn a_suspended_tenants_work_waits_until_it_is_resumed(b: &Backend) {
    let (paused, channel) = tenant_with_channel(&*b.store, "paused").await;
    let (other, other_channel) = tenant_with_channel(&*b.store, "other").await;
    b.store
        .ingest(&paused, channel, vec![text("p1", "alice", "x")])
        .await
        .unwrap();
    b.store
        .ingest(&other, other_channel, vec![text("o1", "bob", "y")])
        .await
        .unwrap();
    let sys = SystemScope::new("test");
    b.store
        .set_tenant_active(&sys, paused.tenant_id(), false)
        .await
        .unwrap();
    let fair = b
        .store
        .claim_fair(&sys, JOB_ANSWER, Utc::now(), 10, LEASE)
        .await
        .unwrap();
    assert_eq!(
        fair.iter().map(|j| j.tenant_id).collect::<Vec<_>>(),
        vec![other.tenant_id()]
    );
    assert!(
        b.store
            .claim(&sys, Queue::Jobs, Some(JOB_ANSWER), Utc::now(), 10, LEASE)
            .await
            .unwrap()
            .iter()
            .all(|j| j.tenant_id != paused.tenant_id())
    );
    b.store
        .set_tenant_active(&sys, paused.tenant_id(), true)
        .await
        .unwrap();
    let resumed = b
        .store
        .claim_fair(&sys, JOB_ANSWER, Utc::now(), 10, LEASE)
        .await
        .unwrap();
    assert_eq!(
        resumed.iter().map(|j| j.tenant_id).collect::<Vec<_>>(),
        vec![paused.tenant_id()]
    );
}

/// The responder's claim: tenant A floods 200 messages, then tenant B writes once. With one
/// answer running at a time, B's job is the second one claimed; with two, the first pair.
async fn a_burst_of_one_tenant_does_not_hold_back_another(b: &Backend) {
    let (a, a_channel) = tenant_with_channel(&*b.store, "a").await;
    let (other, b_channel) = tenant_with_channel(&*b.store, "b").await;
    let burst: Vec<_> = (0..200)
        .map(|i| text(&format!("a{i}"), &format!("visitor{}", i % 7), "hello"))
        .collect();
    b.store.ingest(&a, a_channel, burst).await.unwrap();
    b.store
        .ingest(&other, b_channel, vec![text("b0", "bea", "me too")])
        .await
        .unwrap();
    let sys = SystemScope::new("test");
    let now = Utc::now();
    let done = QueueOutcome::Done {
        provider_message_id: None,
    };

    // One worker: A's oldest first (equal rank, older), then B's while A's runs.
    let first = b
        .store
        .claim_fair(&sys, JOB_ANSWER, now, 1, LEASE)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].tenant_id, a.tenant_id());
    let second = b
        .store
        .claim_fair(&sys, JOB_ANSWER, now, 1, LEASE)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(
        second[0].tenant_id,
        other.tenant_id(),
        "B's answer waits for at most one of A's"
    );
    // Then A's burst goes on, oldest first, and nothing is claimed twice.
    let more = b
        .store
        .claim_fair(&sys, JOB_ANSWER, now, 5, LEASE)
        .await
        .unwrap();
    assert_eq!(more.len(), 5);
    assert!(more.iter().all(|j| j.tenant_id == a.tenant_id()));
    assert!(more.windows(2).all(|w| w[0].id < w[1].id));
    assert!(more.iter().all(|j| j.id > first[0].id));
    for job in first.iter().chain(&second).chain(&more) {
        b.store
            .finish(&sys, Queue::Jobs, job, done.clone())
            .await
            .unwrap();
    }
    assert_eq!(b.store.stats(&sys).await.unwrap().jobs_depth, 194);

    // Two workers: B writes again while A has 194 waiting: the first claim of two takes one of each.
    b.store
        .ingest(&other, b_channel, vec![text("b1", "bea", "again")])
        .await
        .unwrap();
    let pair = b
        .store
        .claim_fair(&sys, JOB_ANSWER, Utc::now(), 2, LEASE)
        .await
        .unwrap();
    let mut tenants: Vec<_> = pair.iter().map(|j| j.tenant_id).collect();
    tenants.sort();
    let mut expected = vec![a.tenant_id(), other.tenant_id()];
    expected.sort();
    assert_eq!(tenants, expected);

    // A lease that ran out makes its job due again; a retry waits for its time.
    let later = Utc::now() + chrono::Duration::seconds(LEASE.as_secs() as i64 + 1);
    let again = b
        .store
        .claim_fair(&sys, JOB_ANSWER, later, 200, LEASE)
        .await
        .unwrap();
    assert_eq!(
        again.len(),
        195,
        "193 of A's waiting, and A's and B's expired leases"
    );
    assert!(again.iter().any(|j| j.id == pair[0].id) && again.iter().any(|j| j.id == pair[1].id));
    let retry = QueueOutcome::Retry {
        at: later + chrono::Duration::hours(1),
        error: "later".into(),
    };
    for job in &again {
        b.store
            .finish(&sys, Queue::Jobs, job, retry.clone())
            .await
            .unwrap();
    }
    assert!(
        b.store
            .claim_fair(&sys, JOB_ANSWER, later, 10, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn retention_deletes_only_old_messages_of_tenants_that_set_it(b: &Backend) {
    let (keeps, channel_k) = tenant_with_channel(&*b.store, "keeps").await;
    let (limits, channel_l) = tenant_with_channel(&*b.store, "limits").await;
    b.store
        .ingest(&keeps, channel_k, vec![text("k1", "alice", "x")])
        .await
        .unwrap();
    b.store
        .ingest(
            &limits,
            channel_l,
            vec![text("l1", "bob", "x"), text("l2", "bob", "y")],
        )
        .await
        .unwrap();
    b.store
        .update_tenant_profile(
            &limits,
            None,
            Some(Box::new(|p: &mut coach_gateway::tenant::TenantProfile| {
                p.retention_days = Some(30);
            })),
        )
        .await
        .unwrap();
    let sys = SystemScope::new("test");
    // Nothing is 30 days old yet.
    assert_eq!(b.store.apply_retention(&sys, Utc::now()).await.unwrap(), 0);
    // 31 days later, only the tenant with a retention period loses its messages (and jobs).
    let later = Utc::now() + chrono::Duration::days(31);
    assert!(b.store.apply_retention(&sys, later).await.unwrap() >= 2);
    assert_eq!(count_messages(b, &limits).await, 0);
    assert_eq!(count_messages(b, &keeps).await, 1);
    assert_eq!(
        b.store.stats(&sys).await.unwrap().jobs_depth,
        1,
        "the deleted messages' jobs went too"
    );
}

async fn audit_log_is_per_tenant_newest_first(b: &Backend) {
    let (scope, _) = tenant_with_channel(&*b.store, "a").await;
    for action in ["channel.create", "channel.update"] {
        b.store
            .audit(
                &scope,
                AuditEntry {
                    actor: "user:1".into(),
                    action: action.into(),
                    resource_type: "channel".into(),
                    resource_id: Some("c1".into()),
                    ip: Some("127.0.0.1".into()),
                    details: serde_json::json!({}),
                },
            )
            .await
            .unwrap();
    }
    let log = b.store.audit_log(&scope, 10).await.unwrap();
    assert_eq!(
        log.iter()
            .map(|r| r.entry.action.as_str())
            .collect::<Vec<_>>(),
        ["channel.update", "channel.create"]
    );
}

/// A job that waits for other work (a voice note's transcript) gives back the attempt its claim
/// counted; a failure keeps it.
async fn a_wait_gives_back_the_attempt_its_claim_counted(b: &Backend) {
    let (scope, channel) = tenant_with_channel(&*b.store, "a").await;
    b.store
        .ingest(&scope, channel, vec![text("w1", "alice", "hi")])
        .await
        .unwrap();
    let sys = SystemScope::new("test");
    let mut due = Utc::now();
    let mut attempts = Vec::new();
    for outcome in [
        QueueOutcome::Wait {
            at: due,
            why: "waiting for the transcript".into(),
        },
        QueueOutcome::Wait {
            at: due,
            why: "waiting for the transcript".into(),
        },
        QueueOutcome::Retry {
            at: due,
            error: "the model failed".into(),
        },
        QueueOutcome::Done {
            provider_message_id: None,
        },
    ] {
        due += chrono::Duration::seconds(1);
        let claimed = b
            .store
            .claim(&sys, Queue::Jobs, Some(JOB_ANSWER), due, 10, LEASE)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        attempts.push(claimed[0].attempts);
        b.store
            .finish(&sys, Queue::Jobs, &claimed[0], outcome)
            .await
            .unwrap();
    }
    assert_eq!(
        attempts,
        [1, 1, 1, 2],
        "waits are no attempts, a failure is"
    );
}
