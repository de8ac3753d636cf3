//! Follow-ups and progress on a manual clock: a daily yes/no question with a silence branch
//! runs for two Telegram contacts over eight days. The one who stays silent gets the follow-up
//! after the configured delay; the one who answers never does, gets an acknowledgement with
//! their streak, and on the seventh day in a row the milestone message, once. "progress" gives
//! the summary; the API, the analytics (funnel, streaks), the export and erasure show the same.

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use coach_gateway::clock::Clock;
use serde_json::{Value, json};

use crate::api_support::*;
use crate::common::Backend;
use crate::support::*;

crate::against_every_backend!(
    silence_follow_ups_and_streaks,
    an_answered_last_step_ends_the_program,
);

const DOER: i64 = 501;
const QUIET: i64 = 502;

fn program() -> Value {
    let yes_no = json!({ "key": "move", "kind": "yes_no" });
    json!({
        "name": "Move daily", "goal": "Move twenty minutes a day", "keywords": ["MOVE"],
        "steps": [
            { "id": "ask", "message": "Day {day}: did you move for 20 minutes, {first_name}?",
              "buttons": [{ "id": "yes", "title": "Yes" }, { "id": "no", "title": "Not today" }],
              "progress": yes_no, "timing": { "day": 1, "at": "18:00" },
              "if_no_reply_after": 120, "no_reply_goto": "nudge", "next": "ask",
              "template": { "name": "move_check", "language": "en", "parameters": [] } },
            { "id": "nudge", "message": "Just tap Yes or Not today: it keeps your streak honest.",
              "progress": yes_no, "next": "ask" },
        ],
        "milestones": [{ "key": "move", "streak": 7, "message": "{streak} days in a row, {first_name}! 🎉" }]
    })
}

fn text_update(update_id: i64, chat: i64, at: DateTime<Utc>, text: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "update_id": update_id, "message": { "message_id": update_id,
        "date": at.timestamp(), "from": { "id": chat, "is_bot": false, "first_name": format!("P{chat}") },
        "chat": { "id": chat, "type": "private" }, "text": text } }))
    .unwrap()
}

fn tap(update_id: i64, chat: i64, at: DateTime<Utc>, data: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "update_id": update_id, "callback_query": { "id": format!("cb{update_id}"),
        "from": { "id": chat, "is_bot": false, "first_name": format!("P{chat}") },
        "message": { "message_id": 1, "from": { "id": 123_456_789, "is_bot": true, "first_name": "Coach" },
            "chat": { "id": chat, "type": "private" }, "date": at.timestamp(), "text": "Day 1" },
        "chat_instance": "-1", "data": data } }))
    .unwrap()
}

/// What each chat received, with the simulated time.
fn received(
    w: &World,
    seen: &mut usize,
    now: DateTime<Utc>,
    log: &mut Vec<(DateTime<Utc>, i64, String)>,
) {
    let sent = w.fake.requests_to("/sendMessage");
    for r in &sent[*seen..] {
        let b = r.json();
        log.push((
            now,
            b["chat_id"].as_i64().unwrap(),
            b["text"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    *seen = sent.len();
}

/// A Telegram bot channel's webhook, posted to as Telegram does.
struct Bot {
    hook: String,
    secret: String,
}

impl Bot {
    async fn post(&self, w: &World, body: Vec<u8>) {
        let header = [("x-telegram-bot-api-secret-token", self.secret.clone())];
        assert_eq!(w.post(&self.hook, &header, body).await.0, 200);
    }
}

/// A world on a manual clock set to tomorrow `hour`:00 UTC, a tenant (its token) and its
/// Telegram bot.
async fn world_with_bot(
    b: &Backend,
    email: &str,
    hour: u32,
) -> (World, Clock, DateTime<Utc>, String, Bot) {
    let t0 = (Utc::now() + Duration::days(1))
        .date_naive()
        .and_hms_opt(hour, 0, 0)
        .unwrap()
        .and_utc();
    let clock = Clock::manual(t0);
    let w = world_on(b, false, clock.clone()).await;
    let t = token(&w.app.register(email).await).to_owned();
    let tg = create(&w, &t, "telegram", json!({ "bot_token": BOT_TOKEN })).await;
    let hook = format!("/webhooks/telegram/{}", tg["id"].as_str().unwrap());
    let secret = w.fake.requests_to("/setWebhook")[0].json()["secret_token"]
        .as_str()
        .unwrap()
        .to_owned();
    (w, clock, t0, t, Bot { hook, secret })
}

pub(crate) async fn silence_follow_ups_and_streaks(b: &Backend) {
    // Day 1 starts at 08:00 UTC tomorrow (contacts are in UTC).
    let (w, clock, t0, t, bot) = world_with_bot(b, "progress@example.com", 8).await;
    let post = |body: Vec<u8>| bot.post(&w, body);

    // A silence branch without its target, and a milestone on an unknown key, are refused.
    let mut wrong = program();
    wrong["steps"][0]
        .as_object_mut()
        .unwrap()
        .remove("no_reply_goto");
    wrong["milestones"][0]["key"] = json!("sleep");
    let (status, problem) = w
        .app
        .call("POST", "/v1/programs", Some(&t), Some(wrong))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("steps[0] (ask): give both if_no_reply_after"),
        "{detail}"
    );
    assert!(
        detail.contains("milestones[0].key: no step asks for progress \"sleep\""),
        "{detail}"
    );
    let (status, created) = w
        .app
        .call("POST", "/v1/programs", Some(&t), Some(program()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    // Both join by keyword (handled without the coach).
    post(text_update(1, DOER, t0, "MOVE")).await;
    post(text_update(2, QUIET, t0, "/start move")).await;
    w.answer_all().await;
    let (_, enrollments) = w
        .app
        .call(
            "GET",
            &format!("/v1/programs/{id}/enrollments"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(enrollments.as_array().unwrap().len(), 2, "{enrollments}");

    // Eight days, a quarter of an hour at a time. The doer answers every evening at 18:30
    // (typing on even days, tapping on odd ones); the quiet one says nothing on day 1, then
    // "not today" on day 2 at 18:15, then nothing again.
    let at = |day: i64, h: u32, m: u32| {
        (t0 + Duration::days(day - 1))
            .date_naive()
            .and_hms_opt(h, m, 0)
            .unwrap()
            .and_utc()
    };
    let (mut now, mut seen, mut log, mut update) = (t0, 0, Vec::new(), 100);
    while now <= at(8, 23, 45) {
        clock.set(now);
        for day in 1..=8 {
            if now == at(day, 18, 30) {
                update += 1;
                post(if day % 2 == 0 {
                    text_update(update, DOER, now, "Yes!")
                } else {
                    tap(update, DOER, now, "yes")
                })
                .await;
            }
        }
        if now == at(2, 18, 15) {
            update += 1;
            post(text_update(update, QUIET, now, "Not today")).await;
        }
        w.answer_all().await;
        while coach_gateway::programs::worker::poll_once(&w.app.state)
            .await
            .unwrap()
            > 0
        {}
        w.deliver().await;
        received(&w, &mut seen, now, &mut log);
        now += Duration::minutes(15);
    }
    let to = |chat: i64| -> Vec<(DateTime<Utc>, String)> {
        log.iter()
            .filter(|(_, c, _)| *c == chat)
            .map(|(at, _, t)| (*at, t.clone()))
            .collect()
    };
    let (doer, quiet) = (to(DOER), to(QUIET));
    let sent_at = |sent: &[(DateTime<Utc>, String)], prefix: &str| -> Vec<DateTime<Utc>> {
        sent.iter()
            .filter(|(_, t)| t.starts_with(prefix))
            .map(|(at, _)| *at)
            .collect()
    };
    // The question goes out at 18:00 every day, to both.
    for day in 1..=8 {
        for sent in [&doer, &quiet] {
            assert_eq!(
                sent_at(sent, &format!("Day {day}:")),
                vec![at(day, 18, 0)],
                "{sent:#?}"
            );
        }
    }
    // The follow-up reaches the quiet one two hours later on each day they said nothing, and
    // never the one who answered.
    let follow_ups: Vec<_> = [1, 3, 4, 5, 6, 7, 8]
        .iter()
        .map(|d| at(*d, 20, 0))
        .collect();
    assert_eq!(sent_at(&quiet, "Just tap Yes"), follow_ups, "{quiet:#?}");
    assert!(sent_at(&doer, "Just tap Yes").is_empty(), "{doer:#?}");
    // Each answer is acknowledged with the streak; day 7 brings the milestone instead, once.
    for day in [1, 2, 3, 4, 5, 6, 8] {
        assert_eq!(
            sent_at(&doer, &format!("Noted ✓ Days in a row: {day}.")),
            vec![at(day, 18, 30)],
            "{doer:#?}"
        );
    }
    assert_eq!(
        sent_at(&doer, "7 days in a row, P501! 🎉"),
        vec![at(7, 18, 30)],
        "{doer:#?}"
    );
    assert_eq!(
        sent_at(&doer, "Noted ✓ Days in a row: 7."),
        Vec::<DateTime<Utc>>::new()
    );
    assert_eq!(
        sent_at(&quiet, "Noted. Tomorrow is a new day."),
        vec![at(2, 18, 15)],
        "{quiet:#?}"
    );
    assert_eq!(doer.len(), 16, "a question and an answer a day: {doer:#?}");

    // "progress" on any channel: the summary (in Spanish for "progreso").
    let after = at(9, 9, 0);
    clock.set(after);
    post(text_update(900, DOER, after, "progress")).await;
    post(text_update(901, QUIET, after, "Progreso")).await;
    w.answer_all().await;
    w.deliver().await;
    received(&w, &mut seen, after, &mut log);
    let last = |chat: i64| {
        log.iter()
            .rev()
            .find(|(_, c, _)| *c == chat)
            .unwrap()
            .2
            .clone()
    };
    assert_eq!(
        last(DOER),
        "Your progress:\nMove daily · move: 8 days in a row (best 8), 8 in all; last answer ✓."
    );
    assert_eq!(
        last(QUIET),
        "Tu progreso:\nMove daily · move: 0 días seguidos (mejor racha 0), 0 en total; última respuesta ✗."
    );

    // The creator's view: per contact, and the program's funnel and streaks.
    let (_, contacts) = w.app.call("GET", "/v1/contacts", Some(&t), None).await;
    let contact = |name: &str| {
        contacts["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["display_name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {contacts}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (doer_id, quiet_id) = (contact("P501"), contact("P502"));
    let (status, progress) = w
        .app
        .call(
            "GET",
            &format!("/v1/contacts/{doer_id}/progress"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{progress}");
    let item = &progress["items"][0];
    assert_eq!(
        (
            item["key"].as_str(),
            item["streak"].as_u64(),
            item["best_streak"].as_u64(),
            item["total"].as_u64()
        ),
        (Some("move"), Some(8), Some(8), Some(8)),
        "{progress}"
    );
    assert_eq!(item["entries"].as_array().unwrap().len(), 8);
    assert_eq!(
        progress["milestones"][0]["milestone"], "move:streak:7",
        "{progress}"
    );
    let other = w.app.register("other-progress@example.com").await;
    let (status, _) = w
        .app
        .call(
            "GET",
            &format!("/v1/contacts/{doer_id}/progress"),
            Some(token(&other)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, a) = w
        .app
        .call(
            "GET",
            &format!("/v1/programs/{id}/analytics"),
            Some(&t),
            None,
        )
        .await;
    let funnel: Vec<(String, i64)> = a["funnel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_owned(),
                s["reached"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        funnel,
        [
            ("ask".to_owned(), 2),
            ("nudge".to_owned(), 1),
            ("completed".to_owned(), 0)
        ],
        "{a}"
    );
    let p = &a["progress"][0];
    assert_eq!(
        (
            p["contacts"].as_i64(),
            p["answers"].as_i64(),
            p["counted"].as_i64(),
            p["best_streak"].as_i64(),
            p["milestones"].as_i64()
        ),
        (Some(2), Some(9), Some(8), Some(8), Some(1)),
        "{a}"
    );
    assert_eq!(
        p["streaks"],
        json!([{ "days": "0", "contacts": 1 }, { "days": "1-2", "contacts": 0 },
        { "days": "3-6", "contacts": 0 }, { "days": "7+", "contacts": 1 }]),
        "{a}"
    );

    // In the export; gone with the contact.
    let (_, export) = w
        .app
        .call(
            "GET",
            &format!("/v1/contacts/{doer_id}/export"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(
        export["progress"]["entries"].as_array().unwrap().len(),
        8,
        "{export}"
    );
    assert_eq!(
        export["progress"]["milestones"].as_array().unwrap().len(),
        1,
        "{export}"
    );
    let (status, _) = w
        .app
        .call("DELETE", &format!("/v1/contacts/{doer_id}"), Some(&t), None)
        .await;
    assert!(status.is_success(), "{status}");
    let (status, _) = w
        .app
        .call(
            "GET",
            &format!("/v1/contacts/{doer_id}/progress"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, a) = w
        .app
        .call(
            "GET",
            &format!("/v1/programs/{id}/analytics"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(
        (
            a["progress"][0]["contacts"].as_i64(),
            a["progress"][0]["milestones"].as_i64()
        ),
        (Some(1), Some(0)),
        "{a}"
    );
    let (_, quiet_progress) = w
        .app
        .call(
            "GET",
            &format!("/v1/contacts/{quiet_id}/progress"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(
        quiet_progress["items"][0]["entries"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Pruned by retention: kept within the period, gone after it.
    let (status, _) = w
        .app
        .call(
            "PATCH",
            "/v1/tenant",
            Some(&t),
            Some(json!({ "retention_days": 1 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let sys = coach_gateway::tenancy::SystemScope::new("test");
    // The quiet one's answer is from day 2: a day's retention as of day 1 keeps it.
    w.app.state.store.apply_retention(&sys, t0).await.unwrap();
    let path = format!("/v1/contacts/{quiet_id}/progress");
    let (_, kept) = w.app.call("GET", &path, Some(&t), None).await;
    assert_eq!(kept["items"].as_array().unwrap().len(), 1, "{kept}");
    let later = clock.now() + Duration::days(10);
    w.app
        .state
        .store
        .apply_retention(&sys, later)
        .await
        .unwrap();
    let (_, pruned) = w.app.call("GET", &path, Some(&t), None).await;
    assert_eq!(pruned["items"], json!([]), "{pruned}");
}

/// A last step that waits for a reply: answered, the program ends there and its follow-up is
/// never sent; unanswered, the follow-up goes out and then the program ends.
pub(crate) async fn an_answered_last_step_ends_the_program(b: &Backend) {
    let (w, clock, t0, t, bot) = world_with_bot(b, "last-step@example.com", 10).await;
    let post = |body: Vec<u8>| bot.post(&w, body);
    let program = json!({ "name": "One question", "keywords": ["ASK"], "steps": [
        { "id": "ask", "message": "Did the exercise help?", "if_no_reply_after": 60,
          "no_reply_goto": "nudge", "next": "end",
          "template": { "name": "ask", "language": "en", "parameters": [] } },
        { "id": "nudge", "message": "A yes or no is enough.", "next": "end" },
    ] });
    let (status, created) = w
        .app
        .call("POST", "/v1/programs", Some(&t), Some(program))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    post(text_update(1, DOER, t0, "ASK")).await;
    post(text_update(2, QUIET, t0, "ASK")).await;
    let (mut now, mut seen, mut log) = (t0, 0, Vec::new());
    while now <= t0 + Duration::hours(3) {
        clock.set(now);
        if now == t0 + Duration::minutes(30) {
            post(text_update(3, DOER, now, "Yes, it did")).await;
        }
        w.answer_all().await;
        while coach_gateway::programs::worker::poll_once(&w.app.state)
            .await
            .unwrap()
            > 0
        {}
        w.deliver().await;
        received(&w, &mut seen, now, &mut log);
        now += Duration::minutes(15);
    }
    let nudged: Vec<(DateTime<Utc>, i64)> = log
        .iter()
        .filter(|(_, _, text)| text.starts_with("A yes or no"))
        .map(|(at, chat, _)| (*at, *chat))
        .collect();
    assert_eq!(
        nudged,
        vec![(t0 + Duration::minutes(60), QUIET)],
        "{log:#?}"
    );
    let (_, enrollments) = w
        .app
        .call(
            "GET",
            &format!("/v1/programs/{id}/enrollments"),
            Some(&t),
            None,
        )
        .await;
    let states: Vec<&str> = enrollments
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["completed", "completed"], "{enrollments}");
}
