//! Programs over time on WhatsApp's 24-hour window (thirty days without one 131047), and
//! enrollments that end and start over.

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use coach_e2e::fake_provider::Recorded;
use coach_gateway::clock::Clock;
use serde_json::{Value, json};

use crate::api_support::*;
use crate::common::Backend;
use crate::support::*;

use crate::program_scheduler::{daily_program, step_texts};
use crate::programs::*;

crate::against_every_backend!(
    thirty_days_on_whatsapp_without_a_131047,
    enrollments_end_and_start_over,
    imported_contacts_start_with_a_template_and_only_with_consent,
);

/// The world on a manual clock at 06:00 tomorrow, its fake Graph API enforcing WhatsApp's
/// 24-hour window on that clock.
async fn windowed_world(b: &Backend) -> (World, Clock, DateTime<Utc>) {
    let t0 = (Utc::now() + Duration::days(1))
        .date_naive()
        .and_hms_opt(6, 0, 0)
        .unwrap()
        .and_utc();
    let clock = Clock::manual(t0);
    let w = world_on(b, false, clock.clone()).await;
    let sim = clock.clone();
    w.fake
        .enforce_whatsapp_window(Arc::new(move || sim.now().timestamp()));
    (w, clock, t0)
}

/// Thirty daily check-ins on WhatsApp against a Graph API that enforces the 24-hour window:
/// the contact writes every third day, so some days' steps fall inside the window and go out
/// as written, the others as the template, and not one message meets error 131047.
pub(crate) async fn thirty_days_on_whatsapp_without_a_131047(b: &Backend) {
    let (w, clock, t0) = windowed_world(b).await;
    let t = token(&w.app.register("thirty@example.com").await).to_owned();
    let steps: Vec<Value> = (1..=30)
        .map(|day| {
            json!({ "id": format!("d{day}"), "message": format!("Day {{day}} of 30, {{first_name}}."),
                "timing": { "day": day, "at": "09:00" },
                "template": { "name": "daily", "language": "en", "parameters": ["{day}"] } })
        })
        .collect();
    let (status, program) = w
        .app
        .call(
            "POST",
            "/v1/programs",
            Some(&t),
            Some(json!({ "name": "Thirty", "steps": steps })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{program}");
    let wa = create(&w, &t, "whatsapp", whatsapp_config()).await;
    let hook = format!("/webhooks/whatsapp/{}", wa["id"].as_str().unwrap());
    let write = |n: u32, at: DateTime<Utc>| {
        let body = wa_message(
            &format!("wamid.day.{n}"),
            at,
            json!({ "type": "reaction",
            "reaction": { "message_id": "wamid.out.1", "emoji": "\u{1F44D}" } }),
        );
        let sig = meta_signature(&body);
        let (hook, w) = (hook.clone(), &w);
        async move {
            assert_eq!(
                w.post(&hook, &[("x-hub-signature-256", sig)], body).await.0,
                200
            );
            w.fake.customer_wrote(ANA, at.timestamp());
        }
    };
    write(1000, t0).await;
    let (_, contacts) = w.app.call("GET", "/v1/contacts", Some(&t), None).await;
    let ana = contacts["items"][0]["id"].as_str().unwrap().to_owned();
    let id = program["id"].as_str().unwrap();
    let (status, report) = w
        .app
        .call(
            "POST",
            &format!("/v1/programs/{id}/enrollments"),
            Some(&t),
            Some(json!({ "contact_id": ana, "time_zone": "UTC" })),
        )
        .await;
    assert_eq!(
        (status, report["enrolled"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{report}"
    );
    let mut wrote = vec![t0];
    let mut log: Vec<(DateTime<Utc>, Recorded)> = Vec::new();
    let mut seen = w.fake.requests().len();
    let mut now = t0;
    while now <= t0 + Duration::days(31) {
        clock.set(now);
        let day = (now - t0).num_days();
        // She reacts every third day at 12:00: the window opens until 12:00 the next day.
        if day % 3 == 0
            && now == t0.date_naive().and_hms_opt(12, 0, 0).unwrap().and_utc() + Duration::days(day)
        {
            write(u32::try_from(day).unwrap(), now).await;
            wrote.push(now);
        }
        turn(&w, now, &mut seen, &mut log).await;
        now += Duration::hours(1);
    }
    assert_eq!(w.fake.window_violations(), Vec::<Value>::new());
    let sent = whatsapp_sent(&log);
    assert_eq!(sent.len(), 30, "one message a day: {sent:#?}");
    let (mut free, mut templates) = (0, 0);
    for s in &sent {
        // Free-form exactly when she wrote within the last 24 hours (minus the margin).
        let open = wrote
            .iter()
            .any(|w| *w <= s.at && s.at - *w < Duration::hours(24) - Duration::minutes(10));
        assert_eq!(s.template.is_none(), open, "{s:?} (she wrote at {wrote:?})");
        if open { free += 1 } else { templates += 1 }
    }
    assert!(
        free >= 9 && templates >= 19,
        "{free} free-form, {templates} templates"
    );
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
            a["completed"].as_i64(),
            a["steps"].as_array().unwrap().len()
        ),
        (Some(1), 30),
        "{a}"
    );
    let templated: i64 = a["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["templates"].as_i64().unwrap())
        .sum();
    assert_eq!(templated, templates, "{a}");
}

/// An enrollment ended by a creator can start over: the first step goes out again (the old
/// run's job does not block it), and a cancelled or opted-out contact gets nothing more.
pub(crate) async fn enrollments_end_and_start_over(b: &Backend) {
    let t0 = (Utc::now() + Duration::days(1))
        .date_naive()
        .and_hms_opt(10, 0, 0)
        .unwrap()
        .and_utc();
    let clock = Clock::manual(t0);
    let w = world_on(b, false, clock.clone()).await;
    let t = token(&w.app.register("again@example.com").await).to_owned();
    let (id, _) = daily_program(&w, &t, 1, "skip").await;
    let run = |now: DateTime<Utc>| {
        let (w, clock) = (&w, &clock);
        async move {
            clock.set(now);
            while coach_gateway::programs::worker::poll_once(&w.app.state)
                .await
                .unwrap()
                > 0
            {}
            w.deliver().await;
        }
    };
    // Day 1's step was due at 09:00, an hour ago: within the tolerance, it goes once the
    // contact's own message is half an hour old (they might still be writing).
    run(t0).await;
    assert_eq!(step_texts(&w).len(), 0);
    run(t0 + Duration::minutes(30)).await;
    assert_eq!(step_texts(&w).len(), 1);
    let enrollments = format!("/v1/programs/{id}/enrollments");
    let (_, list) = w.app.call("GET", &enrollments, Some(&t), None).await;
    let enrollment = list[0]["id"].as_str().unwrap().to_owned();
    let contact = list[0]["contact_id"].as_str().unwrap().to_owned();
    let (status, cancelled) = w
        .app
        .call(
            "DELETE",
            &format!("{enrollments}/{enrollment}"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(
        (status, cancelled["state"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    let (status, _) = w
        .app
        .call(
            "DELETE",
            &format!("{enrollments}/{enrollment}"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Day 2 passes: nothing for a cancelled enrollment.
    run(t0 + Duration::days(1)).await;
    assert_eq!(step_texts(&w).len(), 1);
    // Enrolled again, starting tomorrow: the first step goes out again then.
    let start = t0 + Duration::days(2) - Duration::hours(2);
    let (_, report) = w
        .app
        .call(
            "POST",
            &enrollments,
            Some(&t),
            Some(json!({ "contact_id": contact, "time_zone": "UTC", "start_at": start })),
        )
        .await;
    assert_eq!(report["enrolled"].as_u64(), Some(1), "{report}");
    run(start + Duration::minutes(65)).await;
    let texts = step_texts(&w);
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[1].1.starts_with("one"), "{texts:?}");
    // Opted out by a member: the rest never comes, and enrolling again is refused.
    let (status, consent) = w
        .app
        .call(
            "POST",
            &format!("/v1/contacts/{contact}/opt-out"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(
        (status, consent["enrollments_ended"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{consent}"
    );
    run(t0 + Duration::days(4)).await;
    assert_eq!(step_texts(&w).len(), 2);
    let (_, report) = w
        .app
        .call(
            "POST",
            &enrollments,
            Some(&t),
            Some(json!({ "contact_id": contact })),
        )
        .await;
    assert_eq!(
        (report["enrolled"].as_u64(), report["opted_out"].as_u64()),
        (Some(0), Some(1))
    );
    // Allowed again on their request: enrolling works again.
    let (status, _) = w
        .app
        .call(
            "POST",
            &format!("/v1/contacts/{contact}/opt-in"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, report) = w
        .app
        .call(
            "POST",
            &enrollments,
            Some(&t),
            Some(json!({ "contact_id": contact })),
        )
        .await;
    assert_eq!(report["enrolled"].as_u64(), Some(1), "{report}");
    // Bad input is refused with the reason.
    let (status, problem) = w
        .app
        .call(
            "POST",
            &enrollments,
            Some(&t),
            Some(json!({ "segment": { "active_within_days": 4_000_000_000u32 } })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, problem) = w
        .app
        .call(
            "POST",
            &enrollments,
            Some(&t),
            Some(json!({ "contact_id": contact, "variables": { "nope": "x" } })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("variables.nope"),
        "{problem}"
    );
}

/// Contacts imported from a CSV file who never wrote: only those with recorded consent are
/// enrolled, on a conversation opened for them; the first WhatsApp step goes out as its
/// template (the 24-hour rule, enforced by the fake Graph API), and once the contact answers
/// the next one goes out as written.
pub(crate) async fn imported_contacts_start_with_a_template_and_only_with_consent(b: &Backend) {
    let (w, clock, t0) = windowed_world(b).await;
    let t = token(&w.app.register("imported@example.com").await).to_owned();
    let wa = create(&w, &t, "whatsapp", whatsapp_config()).await;
    let wa_id = wa["id"].as_str().unwrap();
    let csv = format!(
        "name,phone,time_zone,consent\nAna Ruiz,+{ANA},UTC,yes\nBo Lind,+4915199999999,UTC,no\n"
    );
    let (status, report) = w
        .app
        .send(
            "POST",
            &format!("/v1/contacts/import?channel_id={wa_id}"),
            Some(&t),
            "text/csv",
            csv.into_bytes(),
        )
        .await;
    assert_eq!(
        (status, report["created"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{report}"
    );
    let (_, contacts) = w.app.call("GET", "/v1/contacts", Some(&t), None).await;
    let id_of = |name: &str| {
        contacts["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["display_name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (ana, bo) = (id_of("Ana Ruiz"), id_of("Bo Lind"));
    let steps = json!([
        { "id": "hello", "message": "Hi {first_name}, day {day}: ready?", "timing": { "day": 1, "at": "09:00" },
          "template": { "name": "welcome", "language": "en", "parameters": ["{first_name}"] } },
        { "id": "next", "message": "Day {day}: one glass of water first thing.", "timing": { "day": 2, "at": "09:00" },
          "template": { "name": "daily", "language": "en", "parameters": ["{day}"] } },
    ]);
    let (_, program) = w
        .app
        .call(
            "POST",
            "/v1/programs",
            Some(&t),
            Some(json!({ "name": "Water", "steps": steps })),
        )
        .await;
    let id = program["id"].as_str().unwrap();
    let (status, report) = w
        .app
        .call(
            "POST",
            &format!("/v1/programs/{id}/enrollments"),
            Some(&t),
            Some(json!({ "contact_ids": [ana, bo], "channel_id": wa_id, "time_zone": "UTC" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["enrolled"], 1, "{report}");
    assert_eq!(report["no_consent"], json!([bo]), "{report}");
    assert_eq!(report["unreachable"], json!([]), "{report}");

    let mut log: Vec<(DateTime<Utc>, Recorded)> = Vec::new();
    let mut seen = w.fake.requests().len();
    let mut now = t0;
    let wrote_at = t0 + Duration::hours(5);
    while now <= t0 + Duration::days(1) + Duration::hours(4) {
        clock.set(now);
        if now == wrote_at {
            // Ana answers the template: the window opens.
            let body = wa_message(
                "wamid.ana.1",
                now,
                json!({ "type": "text", "text": { "body": "Ready!" } }),
            );
            let sig = meta_signature(&body);
            let hook = format!("/webhooks/whatsapp/{wa_id}");
            assert_eq!(
                w.post(&hook, &[("x-hub-signature-256", sig)], body).await.0,
                200
            );
            w.fake.customer_wrote(ANA, now.timestamp());
        }
        turn(&w, now, &mut seen, &mut log).await;
        now += Duration::hours(1);
    }
    assert_eq!(w.fake.window_violations(), Vec::<Value>::new());
    let sent = whatsapp_sent(&log);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert!(
        sent[0].template.is_some(),
        "the first step is a template: {sent:#?}"
    );
    assert!(
        sent[1].template.is_none(),
        "after her answer, as written: {sent:#?}"
    );
    assert_eq!(sent[1].text, "Day 2: one glass of water first thing.");
    // Nothing ever went to the contact without consent.
    assert!(
        log.iter().all(|(_, r)| r.json()["to"] != "4915199999999"),
        "{log:#?}"
    );
}
