//! Coaching programs end to end on a manual clock (no sleeps): a program created through the
//! API runs one contact on WhatsApp (a fake Graph API that enforces the 24-hour window) and
//! one on Telegram through a week of steps, with time zones, quiet hours, a branch on a
//! button tap, replies answered by the coach, an opt-out, and analytics that match what was
//! sent. Then the scheduler's guarantees: catch-up after downtime, and two gateway processes
//! sharing one database never sending a step twice.

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Timelike, Utc};
use coach_e2e::fake_provider::Recorded;
use coach_gateway::clock::Clock;
use serde_json::{Value, json};

use crate::api_support::*;
use crate::common::Backend;
use crate::support::*;

crate::against_every_backend!(a_week_of_check_ins_on_whatsapp_and_telegram,);

pub(crate) const ANA: &str = "4915112345678";
pub(crate) const BEN: i64 = 43;

pub(crate) fn program() -> Value {
    let tip = |name: &str| json!({ "name": name, "language": "en_US", "parameters": ["{first_name}", "{day}"] });
    json!({
        "name": "Sleep reset", "goal": "Sleep eight hours a night", "keywords": ["SLEEP7"],
        "steps": [
            { "id": "welcome", "message": "Hi {first_name}! Day {day} of {program}. Ready?",
              "buttons": [{ "id": "ready", "title": "Ready" }, { "id": "later", "title": "Not now" }],
              "branches": [{ "on": ["later"], "goto": "nudge" }, { "on": ["ready"], "goto": "coffee" }],
              "template": tip("program_welcome") },
            { "id": "coffee", "message": "Day {day}: no coffee after 2 pm today.",
              "timing": { "day": 2, "at": "09:00" }, "template": tip("daily_tip") },
            { "id": "dark", "message": "Day {day}: keep the bedroom dark tonight.",
              "timing": { "day": 4, "at": "09:00" }, "template": tip("daily_tip") },
            { "id": "checkin", "message": "Day {day}: how many hours did you sleep?",
              "timing": { "day": 7, "at": "20:00" }, "template": tip("daily_checkin"), "next": "end" },
            { "id": "nudge", "message": "No problem {first_name}, tips start tomorrow.",
              "timing": { "after_minutes": 0 }, "next": "coffee" },
        ]
    })
}

pub(crate) fn wa_message(id: &str, at: DateTime<Utc>, message: Value) -> Vec<u8> {
    let mut message = message;
    message["from"] = json!(ANA);
    message["id"] = json!(id);
    message["timestamp"] = json!(at.timestamp().to_string());
    wa_webhook(json!({
        "contacts": [{ "profile": { "name": "Ana Ruiz" }, "wa_id": ANA }],
        "messages": [message],
    }))
}

pub(crate) fn tg_text(update_id: i64, message_id: i64, at: DateTime<Utc>, text: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "update_id": update_id, "message": { "message_id": message_id,
        "date": at.timestamp(), "from": { "id": BEN, "is_bot": false, "first_name": "Ben", "language_code": "en" },
        "chat": { "id": BEN, "type": "private", "first_name": "Ben" }, "text": text } }))
    .unwrap()
}

/// A step message as the provider received it, with the simulated time it was sent.
#[derive(Debug)]
pub(crate) struct Sent {
    pub(crate) at: DateTime<Utc>,
    pub(crate) text: String,
    pub(crate) template: Option<(String, Vec<String>)>,
    pub(crate) buttons: usize,
    /// Whether it quotes a message (answers do; proactive steps do not).
    pub(crate) quotes: bool,
}

/// One turn of the world at `now`: the coach answers, due program steps run, the outbox
/// delivers; what reached the fake providers is logged with `now`.
pub(crate) async fn turn(
    w: &World,
    now: DateTime<Utc>,
    seen: &mut usize,
    log: &mut Vec<(DateTime<Utc>, Recorded)>,
) {
    w.answer_all().await;
    while coach_gateway::programs::worker::poll_once(&w.app.state)
        .await
        .unwrap()
        > 0
    {}
    w.deliver().await;
    let requests = w.fake.requests();
    log.extend(requests[*seen..].iter().cloned().map(|r| (now, r)));
    *seen = requests.len();
}

pub(crate) fn whatsapp_sent(log: &[(DateTime<Utc>, Recorded)]) -> Vec<Sent> {
    log.iter()
        .filter(|(_, r)| r.path.ends_with("/messages"))
        .map(|(at, r)| (at, r.json()))
        .filter(|(_, b)| b["to"] == ANA && b.get("type").is_some())
        .map(|(at, b)| Sent {
            at: *at,
            text: b["text"]["body"]
                .as_str()
                .or(b["interactive"]["body"]["text"].as_str())
                .unwrap_or_default()
                .to_owned(),
            template: (b["type"] == "template").then(|| {
                let params = b["template"]["components"][0]["parameters"]
                    .as_array()
                    .map(|p| {
                        p.iter()
                            .map(|p| p["text"].as_str().unwrap().to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                (b["template"]["name"].as_str().unwrap().to_owned(), params)
            }),
            buttons: b["interactive"]["action"]["buttons"]
                .as_array()
                .map_or(0, Vec::len),
            quotes: b.get("context").is_some(),
        })
        .collect()
}

pub(crate) fn telegram_sent(log: &[(DateTime<Utc>, Recorded)]) -> Vec<(DateTime<Utc>, Value)> {
    log.iter()
        .filter(|(_, r)| r.path.ends_with("/sendMessage"))
        .map(|(at, r)| (*at, r.json()))
        .filter(|(_, b)| b["chat_id"] == BEN)
        .collect()
}

/// Local hour of `at` in `tz` is outside the default quiet hours (21:00-08:00).
pub(crate) fn daytime(at: DateTime<Utc>, tz: &str) -> bool {
    let tz: chrono_tz::Tz = tz.parse().unwrap();
    let h = at.with_timezone(&tz).hour();
    (8..21).contains(&h)
}

/// A week of a program on WhatsApp and Telegram, on a manual clock.
pub(crate) async fn a_week_of_check_ins_on_whatsapp_and_telegram(b: &Backend) {
    let real_now = Utc::now();
    // Day 0 starts tomorrow 06:00 UTC: ahead of the real clock, as the window rule needs.
    let t0 = (real_now + Duration::days(1))
        .date_naive()
        .and_hms_opt(6, 0, 0)
        .unwrap()
        .and_utc();
    let clock = Clock::manual(t0);
    let w = world_on(b, true, clock.clone()).await;
    let sim = clock.clone();
    w.fake
        .enforce_whatsapp_window(Arc::new(move || sim.now().timestamp()));
    let t = tenant_with_knowledge(&w, "programs@example.com").await;
    // The tenant's contacts default to New York time.
    let (status, tenant) = w
        .app
        .call(
            "PATCH",
            "/v1/tenant",
            Some(&t),
            Some(json!({ "outreach": { "time_zone": "America/New_York" } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tenant}");
    assert_eq!(tenant["outreach"]["quiet_hours"]["start"], "21:00");
    let (status, bad) = w
        .app
        .call(
            "PATCH",
            "/v1/tenant",
            Some(&t),
            Some(json!({ "outreach": { "time_zone": "Mars/Base" } })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");

    // A program with mistakes is refused with every mistake named; the sound one is stored.
    let mut wrong = program();
    wrong["steps"][1]["message"] = json!("Day {day}: {nickname}, no coffee.");
    wrong["steps"][2]
        .as_object_mut()
        .unwrap()
        .remove("template");
    let (status, problem) = w
        .app
        .call("POST", "/v1/programs", Some(&t), Some(wrong))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("steps[1] (coffee).message: unknown variable {nickname}"),
        "{detail}"
    );
    assert!(
        detail.contains(
            "steps[2] (dark).template: this step may be sent outside WhatsApp's 24-hour window"
        ),
        "{detail}"
    );
    let (status, created) = w
        .app
        .call("POST", "/v1/programs", Some(&t), Some(program()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let program_id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["version"], 1);

    let wa = create(&w, &t, "whatsapp", whatsapp_config()).await;
    let wa_hook = format!("/webhooks/whatsapp/{}", wa["id"].as_str().unwrap());
    let tg = create(&w, &t, "telegram", json!({ "bot_token": BOT_TOKEN })).await;
    let tg_hook = format!("/webhooks/telegram/{}", tg["id"].as_str().unwrap());
    let secret = w.fake.requests_to("/setWebhook")[0].json()["secret_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let post_wa = |body: Vec<u8>| {
        let sig = meta_signature(&body);
        let hook = wa_hook.clone();
        let w = &w;
        async move {
            assert_eq!(
                w.post(&hook, &[("x-hub-signature-256", sig)], body).await.0,
                200
            );
        }
    };
    let post_tg = |body: Vec<u8>| {
        let hook = tg_hook.clone();
        let secret = secret.clone();
        let w = &w;
        async move {
            let header = [("x-telegram-bot-api-secret-token", secret)];
            assert_eq!(w.post(&hook, &header, body).await.0, 200);
        }
    };

    // Ana asks the coach something on WhatsApp; Ben opens the bot's deep link on Telegram.
    post_wa(wa_message(
        "wamid.ana.1",
        t0,
        json!({ "type": "text",
        "text": { "body": "When should I stop drinking coffee?" } }),
    ))
    .await;
    w.fake.customer_wrote(ANA, t0.timestamp());
    post_tg(tg_text(7000, 1, t0, "/start SLEEP7")).await;
    assert_eq!(w.answer_all().await, 2);
    // Ana is enrolled through the API, in her own time zone.
    let (_, contacts) = w.app.call("GET", "/v1/contacts", Some(&t), None).await;
    let ana = contacts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["display_name"] == "Ana Ruiz")
        .unwrap_or_else(|| panic!("no Ana in {contacts}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let enroll = format!("/v1/programs/{program_id}/enrollments");
    let (status, report) = w
        .app
        .call(
            "POST",
            &enroll,
            Some(&t),
            Some(json!({ "contact_id": ana, "time_zone": "Europe/Madrid" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (report["enrolled"].as_u64(), report["already"].as_u64()),
        (Some(1), Some(0))
    );
    let (_, enrollments) = w.app.call("GET", &enroll, Some(&t), None).await;
    let sources: Vec<&str> = enrollments
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["keyword:sleep7", "api"]);

    // The week, a quarter of an hour at a time, with the people's replies on the way.
    let mut log: Vec<(DateTime<Utc>, Recorded)> = Vec::new();
    let mut seen = w.fake.requests().len();
    let at = |days: i64, h: u32, m: u32| {
        (t0 + Duration::days(days))
            .date_naive()
            .and_hms_opt(h, m, 0)
            .unwrap()
            .and_utc()
    };
    let mut now = t0;
    while now <= t0 + Duration::days(8) {
        clock.set(now);
        if now == at(0, 8, 0) {
            // Ana taps "Not now" on the welcome: the branch leads to the nudge.
            post_wa(wa_message("wamid.ana.2", now, json!({ "type": "interactive",
                "context": { "from": "15550001111", "id": "wamid.out.1" },
                "interactive": { "type": "button_reply", "button_reply": { "id": "later", "title": "Not now" } } }))).await;
            w.fake.customer_wrote(ANA, now.timestamp());
        }
        if now == at(0, 14, 0) {
            // Ben taps "Ready" (a callback query on the welcome's inline keyboard).
            let tap = json!({ "update_id": 7001, "callback_query": { "id": "4382bfdwdsb323b2d9",
                "from": { "id": BEN, "is_bot": false, "first_name": "Ben", "language_code": "en" },
                "message": { "message_id": 5, "from": { "id": 123_456_789, "is_bot": true, "first_name": "Coach" },
                    "chat": { "id": BEN, "first_name": "Ben", "type": "private" }, "date": now.timestamp(),
                    "text": "Hi Ben! Day 1 of Sleep reset. Ready?" },
                "chat_instance": "-7003", "data": "ready" } });
            post_tg(serde_json::to_vec(&tap).unwrap()).await;
        }
        if now == at(4, 10, 0) {
            post_wa(wa_message(
                "wamid.ana.3",
                now,
                json!({ "type": "text", "text": { "body": "STOP" } }),
            ))
            .await;
            w.fake.customer_wrote(ANA, now.timestamp());
        }
        if now == at(7, 2, 0) {
            post_tg(tg_text(7002, 3, now, "About 7 hours")).await;
        }
        turn(&w, now, &mut seen, &mut log).await;
        now += Duration::minutes(15);
    }

    // WhatsApp: never a free-form message outside the window; templates when it was closed.
    assert_eq!(w.fake.window_violations(), Vec::<Value>::new());
    let ana_sent = whatsapp_sent(&log);
    let steps: Vec<&Sent> = ana_sent.iter().filter(|s| !s.quotes).collect();
    assert_eq!(steps.len(), 4, "{ana_sent:#?}");
    assert!(
        steps[0].text.starts_with("Hi Ana! Day 1 of Sleep reset") && steps[0].buttons == 2,
        "{:?}",
        steps[0]
    );
    // Quiet hours in Madrid end at 08:00 (07:00 UTC); the welcome waited for them.
    assert_eq!(steps[0].at, at(0, 7, 0));
    assert_eq!(steps[1].text, "No problem Ana, tips start tomorrow.");
    // The nudge answered her tap at once (the coach did not answer it as well).
    assert_eq!(steps[1].at, at(0, 8, 0));
    assert_eq!(
        ana_sent.iter().filter(|s| s.at == at(0, 8, 0)).count(),
        1,
        "{ana_sent:#?}"
    );
    assert_eq!(
        steps[2].template,
        Some(("daily_tip".into(), vec!["Ana".into(), "2".into()]))
    );
    assert_eq!(steps[2].at, at(1, 8, 0));
    assert_eq!(
        steps[3].template,
        Some(("daily_tip".into(), vec!["Ana".into(), "4".into()]))
    );
    assert!(steps.iter().all(|s| daytime(s.at, "Europe/Madrid")));
    // The opt-out was confirmed, and day 7's check-in never went to her.
    assert!(
        ana_sent
            .iter()
            .any(|s| s.text.contains("no more check-ins")),
        "{ana_sent:#?}"
    );
    assert!(
        !ana_sent
            .iter()
            .any(|s| s.text.contains("hours did you sleep")
                || s.template.as_ref().is_some_and(|t| t.0 == "daily_checkin"))
    );

    // Telegram: Ben's week in New York time, his replies answered by the coach.
    let ben_sent = telegram_sent(&log);
    let expected_steps = [
        "Hi Ben! Day 1 of Sleep reset. Ready?",
        "Day 2: no coffee after 2 pm today.",
        "Day 4: keep the bedroom dark tonight.",
        "Day 7: how many hours did you sleep?",
    ];
    let ben_steps: Vec<&(DateTime<Utc>, Value)> = ben_sent
        .iter()
        // Steps are proactive: they quote nothing (the coach's answers to messages quote them).
        .filter(|(_, b)| {
            b.get("reply_parameters").is_none()
                && expected_steps.contains(&b["text"].as_str().unwrap_or_default())
        })
        .collect();
    let texts: Vec<&str> = ben_steps
        .iter()
        .map(|(_, b)| b["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "Hi Ben! Day 1 of Sleep reset. Ready?",
            "Day 2: no coffee after 2 pm today.",
            "Day 4: keep the bedroom dark tonight.",
            "Day 7: how many hours did you sleep?",
        ],
        "{ben_sent:#?}"
    );
    // The welcome answers his /start at once, though it is 01:00 in New York; the rest keep
    // to his daytime.
    assert_eq!(ben_steps[0].0, t0);
    assert!(ben_steps[0].1["reply_markup"]["inline_keyboard"].is_array());
    assert_eq!(ben_steps[3].0, at(7, 1, 0), "day 7 at 20:00 in New York");
    assert!(
        ben_steps[1..]
            .iter()
            .all(|(at, _)| daytime(*at, "America/New_York"))
    );
    assert!(
        ben_sent.iter().any(|(at_, b)| *at_ == at(0, 14, 0)
            && !expected_steps.contains(&b["text"].as_str().unwrap_or_default())),
        "the coach answered Ben's tap: {ben_sent:#?}"
    );
    assert!(
        ben_sent
            .iter()
            .any(|(_, b)| b["reply_parameters"]["message_id"] == 3),
        "the coach answered Ben's reply: {ben_sent:#?}"
    );

    // Analytics match what was sent.
    let (status, a) = w
        .app
        .call(
            "GET",
            &format!("/v1/programs/{program_id}/analytics"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(
        (
            a["enrolled"].as_i64(),
            a["active"].as_i64(),
            a["completed"].as_i64(),
            a["opted_out"].as_i64()
        ),
        (Some(2), Some(0), Some(1), Some(1)),
        "{a}"
    );
    let step = |id: &str| {
        a["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step_id"] == id)
            .unwrap()
            .clone()
    };
    let counts = |id: &str| {
        let s = step(id);
        (
            s["sent"].as_i64().unwrap(),
            s["templates"].as_i64().unwrap(),
            s["replied"].as_i64().unwrap(),
        )
    };
    assert_eq!(counts("welcome"), (2, 0, 2), "{a}");
    assert_eq!(counts("nudge"), (1, 0, 0), "{a}");
    assert_eq!(counts("coffee"), (2, 1, 0), "{a}");
    assert_eq!(counts("dark"), (2, 1, 0), "{a}");
    assert_eq!(counts("checkin"), (1, 0, 1), "{a}");
    assert_eq!(
        step("welcome")["median_reply_seconds"].as_i64(),
        // Ana after an hour, Ben after eight.
        Some((3600 + 8 * 3600) / 2),
        "{a}"
    );
    let channel = |kind: &str| {
        let c = a["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == kind)
            .unwrap()
            .clone();
        (
            c["enrolled"].as_i64().unwrap(),
            c["sent"].as_i64().unwrap(),
            c["replied"].as_i64().unwrap(),
        )
    };
    assert_eq!(channel("whatsapp"), (1, 4, 1), "{a}");
    assert_eq!(channel("telegram"), (1, 4, 2), "{a}");

    // The opt-out is in the audit log, and enrolling her again is refused.
    let (_, audit) = w.app.call("GET", "/v1/audit-log", Some(&t), None).await;
    let audit = audit.as_array().unwrap().clone();
    let opt_out = audit
        .iter()
        .find(|e| e["action"] == "contact.opt_out")
        .unwrap_or_else(|| panic!("opt-out not audited: {audit:#?}"));
    assert_eq!(opt_out["details"]["keyword"], "stop");
    assert_eq!(opt_out["details"]["enrollments_ended"], 1);
    let (_, again) = w
        .app
        .call(
            "POST",
            &enroll,
            Some(&t),
            Some(json!({ "contact_id": ana })),
        )
        .await;
    assert_eq!(
        (again["enrolled"].as_u64(), again["opted_out"].as_u64()),
        (Some(0), Some(1)),
        "{again}"
    );
    // Another tenant sees none of it.
    let other = w.app.register("other-programs@example.com").await;
    let (status, _) = w
        .app
        .call(
            "GET",
            &format!("/v1/programs/{program_id}/analytics"),
            Some(token(&other)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
