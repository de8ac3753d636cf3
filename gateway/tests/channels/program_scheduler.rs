//! The programs scheduler's guarantees, on a manual clock: catch-up after downtime (skip or
//! delay), and two gateway processes sharing one database never sending a step twice.

use std::collections::HashMap;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use coach_gateway::clock::Clock;
use serde_json::json;

use crate::api_support::*;
use crate::common::Backend;
use crate::support::*;

crate::against_every_backend!(
    catch_up_after_downtime,
    two_schedulers_never_send_a_step_twice,
);

/// A program of three daily steps for `n` Telegram contacts, enrolled as a segment.
pub(crate) async fn daily_program(
    w: &World,
    t: &str,
    n: i64,
    policy: &str,
) -> (String, HashMap<i64, String>) {
    let tg = create(w, t, "telegram", json!({ "bot_token": BOT_TOKEN })).await;
    let hook = format!("/webhooks/telegram/{}", tg["id"].as_str().unwrap());
    let secret = w.fake.requests_to("/setWebhook")[0].json()["secret_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let start = w.app.state.clock.now();
    for i in 0..n {
        let body = serde_json::to_vec(&json!({ "update_id": 9000 + i, "message": { "message_id": 1,
            "date": start.timestamp(), "from": { "id": 100 + i, "is_bot": false, "first_name": format!("P{i}") },
            "chat": { "id": 100 + i, "type": "private" }, "text": "hello" } }))
        .unwrap();
        let header = [("x-telegram-bot-api-secret-token", secret.clone())];
        assert_eq!(w.post(&hook, &header, body).await.0, 200);
    }
    let step = |id: &str, day: u32| {
        json!({ "id": id, "message": format!("{id} for {{first_name}}"),
        "timing": { "day": day, "at": "09:00" },
        "template": { "name": "daily", "language": "en", "parameters": [] } })
    };
    let program = json!({ "name": "Three days", "catch_up": { "tolerance_minutes": 60, "policy": policy },
        "steps": [step("one", 1), step("two", 2), step("three", 3)] });
    let (status, created) = w
        .app
        .call("POST", "/v1/programs", Some(t), Some(program))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, report) = w
        .app
        .call(
            "POST",
            &format!("/v1/programs/{id}/enrollments"),
            Some(t),
            Some(json!({ "segment": {}, "time_zone": "UTC" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["enrolled"].as_i64(), Some(n), "{report}");
    let names = (0..n).map(|i| (100 + i, format!("P{i}"))).collect();
    (id, names)
}

pub(crate) fn step_texts(w: &World) -> Vec<(i64, String)> {
    w.fake
        .requests_to("/sendMessage")
        .iter()
        .map(|r| r.json())
        .map(|b| {
            (
                b["chat_id"].as_i64().unwrap(),
                b["text"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .filter(|(_, text)| text.contains(" for P"))
        .collect()
}

/// After downtime, overdue steps are skipped (no burst of stale check-ins), or with the
/// `delay` policy sent late one at a time, the rest of the program moving later.
pub(crate) async fn catch_up_after_downtime(b: &Backend) {
    for policy in ["skip", "delay"] {
        // Day 1 starts at 08:00 UTC tomorrow; the first step is due at 09:00.
        let t0 = (Utc::now() + Duration::days(1))
            .date_naive()
            .and_hms_opt(8, 0, 0)
            .unwrap()
            .and_utc();
        let clock = Clock::manual(t0);
        let w = world_on(b, false, clock.clone()).await;
        let t = token(
            &w.app
                .register(&format!("catchup-{policy}@example.com"))
                .await,
        )
        .to_owned();
        let (id, _) = daily_program(&w, &t, 3, policy).await;
        // The gateway is down from 08:00 on day 1 until 13:00 on day 2: steps one (day 1 09:00)
        // and two (day 2 09:00) are overdue by more than their hour of tolerance.
        let mut now = t0 + Duration::days(1) + Duration::hours(5);
        let mut sent_at = Vec::new();
        while now <= t0 + Duration::days(5) {
            clock.set(now);
            while coach_gateway::programs::worker::poll_once(&w.app.state)
                .await
                .unwrap()
                > 0
            {}
            w.deliver().await;
            let texts = step_texts(&w);
            for (chat, text) in &texts[sent_at.len()..] {
                sent_at.push((now, *chat, text.clone()));
            }
            now += Duration::minutes(30);
        }
        let at = |days: i64, h: u32| {
            (t0 + Duration::days(days))
                .date_naive()
                .and_hms_opt(h, 0, 0)
                .unwrap()
                .and_utc()
        };
        let (status, a) = w
            .app
            .call(
                "GET",
                &format!("/v1/programs/{id}/analytics"),
                Some(&t),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let step = |s: &str| {
            a["steps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["step_id"] == s)
                .unwrap()
                .clone()
        };
        match policy {
            "skip" => {
                // Nothing at restart; each contact gets day 3's step on time, once.
                assert_eq!(sent_at.len(), 3, "{sent_at:#?}");
                assert!(
                    sent_at
                        .iter()
                        .all(|(when, _, text)| *when == at(2, 9) && text.starts_with("three")),
                    "{sent_at:#?}"
                );
                assert_eq!(
                    (
                        step("one")["skipped"].as_i64(),
                        step("two")["skipped"].as_i64()
                    ),
                    (Some(3), Some(3)),
                    "{a}"
                );
                assert_eq!(a["completed"].as_i64(), Some(3), "{a}");
            }
            _ => {
                // One step per contact at restart, then one a day at 09:00: never two at once.
                let mut per_contact: HashMap<i64, Vec<(DateTime<Utc>, String)>> = HashMap::new();
                for (when, chat, text) in &sent_at {
                    per_contact
                        .entry(*chat)
                        .or_default()
                        .push((*when, text.split(' ').next().unwrap().to_owned()));
                }
                assert_eq!(per_contact.len(), 3);
                for (chat, sends) in per_contact {
                    let expected = vec![
                        (
                            t0 + Duration::days(1) + Duration::hours(5),
                            "one".to_owned(),
                        ),
                        (at(2, 9), "two".to_owned()),
                        (at(3, 9), "three".to_owned()),
                    ];
                    assert_eq!(sends, expected, "contact {chat}");
                }
            }
        }
    }
}

/// Two gateway processes share one database: every step reaches every contact exactly once.
pub(crate) async fn two_schedulers_never_send_a_step_twice(b: &Backend) {
    let t0 = (Utc::now() + Duration::days(1))
        .date_naive()
        .and_hms_opt(8, 0, 0)
        .unwrap()
        .and_utc();
    let clock = Clock::manual(t0);
    let w = world_on(b, false, clock.clone()).await;
    let t = token(&w.app.register("two-processes@example.com").await).to_owned();
    let n = 40;
    let (_, names) = daily_program(&w, &t, n, "skip").await;
    // The second process: its own store connection (PostgreSQL), state and workers.
    let mut second = app_on(b.second_store(), (*w.app.state.config).clone());
    second.state = second.state.with_clock(clock.clone());
    let mut now = t0;
    while now <= t0 + Duration::days(3) + Duration::hours(2) {
        clock.set(now);
        loop {
            let (a, b2) = tokio::join!(
                coach_gateway::programs::worker::poll_once(&w.app.state),
                coach_gateway::programs::worker::poll_once(&second.state),
            );
            if a.unwrap() + b2.unwrap() == 0 {
                break;
            }
        }
        w.deliver().await;
        now += Duration::hours(1);
    }
    let mut counts: HashMap<(i64, String), usize> = HashMap::new();
    for (chat, text) in step_texts(&w) {
        *counts.entry((chat, text)).or_default() += 1;
    }
    assert_eq!(
        counts.len(),
        names.len() * 3,
        "every step reached every contact"
    );
    assert!(
        counts.values().all(|&c| c == 1),
        "a step was sent twice: {counts:?}"
    );
}
