//! Safety before coaching, over Telegram webhooks: a message that signals a crisis is handed to
//! a person as urgent and answered with help resources (the tenant's when set, in the contact's
//! language), never coached; "delete my data", confirmed, erases the contact as the API does;
//! asking for a person outside business hours says when the team is back.

use serde_json::{Value, json};

use crate::api_support::*;
use crate::common::Backend;
use crate::support::*;

crate::against_every_backend!(
    a_crisis_is_handed_to_a_person_with_help_resources,
    a_contact_erases_their_data_by_asking,
    asking_for_a_person_outside_business_hours_says_when_the_team_is_back,
);

struct Bot {
    hook: String,
    secret: String,
}

async fn bot(w: &World, t: &str) -> Bot {
    let channel = create(w, t, "telegram", json!({ "bot_token": BOT_TOKEN })).await;
    let secret = w.fake.requests_to("/setWebhook")[0].json()["secret_token"]
        .as_str()
        .unwrap()
        .to_owned();
    Bot {
        hook: format!("/webhooks/telegram/{}", channel["id"].as_str().unwrap()),
        secret,
    }
}

/// Contact `chat` writes `text` (update `id`); the coach's turn runs and its sends go out.
async fn say(w: &World, bot: &Bot, id: i64, chat: i64, text: &str) {
    let update = json!({ "update_id": id, "message": { "message_id": id, "date": 1_700_000_000,
        "from": { "id": chat, "is_bot": false, "first_name": "Sam" }, "chat": { "id": chat, "type": "private" },
        "text": text } });
    let headers = [("x-telegram-bot-api-secret-token", bot.secret.clone())];
    let (status, _) = w
        .post(&bot.hook, &headers, serde_json::to_vec(&update).unwrap())
        .await;
    assert_eq!(status, 200);
    w.answer_all().await;
    w.deliver().await;
}

/// The texts sent to `chat`, in order.
fn sent_to(w: &World, chat: i64) -> Vec<String> {
    w.fake
        .requests_to("/sendMessage")
        .iter()
        .map(Recorded::json)
        .filter(|m| m["chat_id"].to_string().trim_matches('"') == chat.to_string())
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

use coach_e2e::fake_provider::Recorded;

pub(crate) async fn a_crisis_is_handed_to_a_person_with_help_resources(b: &Backend) {
    let w = world(b, false).await;
    let t = token(&w.app.register("safe@example.com").await).to_owned();
    let bot = bot(&w, &t).await;

    say(&w, &bot, 1, 501, "Honestly I don't want to live anymore").await;
    let reply = sent_to(&w, 501);
    assert_eq!(reply.len(), 1, "{reply:?}");
    assert!(
        reply[0].contains("112") && reply[0].contains("alerted the team"),
        "{reply:?}"
    );
    let (_, convs) = w.app.call("GET", "/v1/conversations", Some(&t), None).await;
    assert_eq!(convs["items"][0]["status"], "waiting", "{convs}");
    let (_, analytics) = w.app.call("GET", "/v1/analytics", Some(&t), None).await;
    assert_eq!(analytics["unanswered"]["crisis"], 1, "{analytics}");
    assert_eq!(analytics["unanswered"]["recent"][0]["reason"], "crisis");

    // The tenant's own resources, in the contact's language.
    let persona = json!({ "persona": { "coach_name": "Maya", "help_resources": "Llama al 024, línea de atención a la conducta suicida." } });
    w.app
        .expect(200u16, "PATCH", "/v1/tenant", Some(&t), Some(persona))
        .await;
    say(&w, &bot, 2, 502, "a veces quiero morir").await;
    let reply = sent_to(&w, 502);
    assert_eq!(reply.len(), 1, "{reply:?}");
    assert!(
        reply[0].starts_with("Soy un coach de IA") && reply[0].contains("024"),
        "{reply:?}"
    );
    assert!(
        !reply[0].contains("988"),
        "the tenant's resources replace the built-in ones"
    );
    assert!(
        !reply[0].contains("(Maya es una IA"),
        "the resources already say it is an AI: {reply:?}"
    );

    // Any other first reply ends by saying once, in the contact's language, that Maya is an AI.
    say(&w, &bot, 3, 503, "quiero hablar con una persona").await;
    say(&w, &bot, 4, 503, "por favor, una persona").await;
    let reply = sent_to(&w, 503);
    assert_eq!(reply.len(), 2, "{reply:?}");
    assert!(
        reply[0].ends_with(
            "(Maya es una IA. Escribe \"humano\" cuando quieras hablar con una persona del equipo.)"
        ),
        "{reply:?}"
    );
    assert!(!reply[1].contains("es una IA"), "only once: {reply:?}");
}

pub(crate) async fn a_contact_erases_their_data_by_asking(b: &Backend) {
    let w = world(b, false).await;
    let t = token(&w.app.register("forget@example.com").await).to_owned();
    let bot = bot(&w, &t).await;
    let contacts = |v: &Value| v["items"].as_array().map_or(0, Vec::len);

    // The word alone erases nothing: it must answer the question.
    say(&w, &bot, 10, 601, "DELETE").await;
    say(&w, &bot, 11, 601, "Please delete my data").await;
    let asked = sent_to(&w, 601);
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].contains("reply DELETE"), "{asked:?}");
    // Another contact's data stays.
    say(&w, &bot, 12, 602, "Hello coach").await;
    let (_, before) = w.app.call("GET", "/v1/contacts", Some(&t), None).await;
    assert_eq!(contacts(&before), 2, "{before}");

    say(&w, &bot, 13, 601, "delete").await;
    let told = sent_to(&w, 601);
    assert_eq!(
        told.last().unwrap(),
        "Done: your messages and data are erased.",
        "{told:?}"
    );
    let (_, after) = w.app.call("GET", "/v1/contacts", Some(&t), None).await;
    assert_eq!(contacts(&after), 1, "{after}");
    let (_, convs) = w.app.call("GET", "/v1/conversations", Some(&t), None).await;
    assert_eq!(convs["items"].as_array().unwrap().len(), 1, "{convs}");
    let (_, audit) = w.app.call("GET", "/v1/audit-log", Some(&t), None).await;
    assert!(
        audit.to_string().contains("contact.erase"),
        "the erasure is audited: {audit}"
    );
}

/// Business hours: outside them, asking for a person is answered with when the team is back
/// (in the contact's language, or the tenant's own text); inside them, as always.
pub(crate) async fn asking_for_a_person_outside_business_hours_says_when_the_team_is_back(
    b: &Backend,
) {
    use chrono::{DateTime, Utc};
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    // Friday 4 December 2026, 21:00 in Madrid.
    let clock = coach_gateway::clock::Clock::manual(at("2026-12-04T20:00:00Z"));
    let w = world_on(b, false, clock.clone()).await;
    let t = token(&w.app.register("hours@example.com").await).to_owned();
    let bot = bot(&w, &t).await;

    let weekdays: serde_json::Map<String, Value> = ["mon", "tue", "wed", "thu", "fri"]
        .iter()
        .map(|d| (d.to_string(), json!("09:00-17:30")))
        .collect();
    let hours = json!({ "time_zone": "Europe/Madrid", "open": weekdays });
    for (bad, field) in [
        (json!({ "time_zone": "Mars/Olympus" }), "time_zone"),
        (
            json!({ "time_zone": "UTC", "open": { "someday": "09:00-10:00" } }),
            "someday",
        ),
        (
            json!({ "time_zone": "UTC", "open": { "sat": "18:00-09:00" } }),
            "open.sat",
        ),
    ] {
        let problem = w
            .app
            .expect(
                422u16,
                "PATCH",
                "/v1/tenant",
                Some(&t),
                Some(json!({ "business_hours": bad })),
            )
            .await;
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{problem}"
        );
    }
    let (_, tenant) = w.app.call("GET", "/v1/tenant", Some(&t), None).await;
    assert!(
        tenant["business_hours"].is_null(),
        "bad hours change nothing: {tenant}"
    );
    w.app
        .expect(
            200u16,
            "PATCH",
            "/v1/tenant",
            Some(&t),
            Some(json!({ "business_hours": hours })),
        )
        .await;
    let (_, tenant) = w.app.call("GET", "/v1/tenant", Some(&t), None).await;
    assert_eq!(tenant["business_hours"]["open"]["fri"], "09:00-17:30");

    // Friday night: back on Monday, in the language asked in.
    say(&w, &bot, 1, 601, "I want to talk to a human").await;
    let reply = sent_to(&w, 601);
    assert!(
        reply[0].contains("They're away right now") && reply[0].contains("Monday 09:00"),
        "{reply:?}"
    );
    say(&w, &bot, 2, 602, "quiero hablar con una persona").await;
    assert!(
        sent_to(&w, 602)[0].contains("cuando vuelva: lunes 09:00"),
        "{:?}",
        sent_to(&w, 602)
    );
    let (_, convs) = w.app.call("GET", "/v1/conversations", Some(&t), None).await;
    assert!(
        convs["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "waiting"),
        "the team is still asked: {convs}"
    );

    // Monday 10:00 in Madrid: the team is in.
    clock.set(at("2026-12-07T09:00:00Z"));
    say(&w, &bot, 3, 603, "human please").await;
    let reply = sent_to(&w, 603);
    assert!(
        reply[0].starts_with("I've let the team know: a person will reply here soon."),
        "{reply:?}"
    );

    // The tenant's own away text; Monday 21:00: back on Tuesday.
    let own = json!({ "business_hours": { "time_zone": "Europe/Madrid", "open": weekdays,
        "away_reply": "We're offline. Back {back}, promise." } });
    w.app
        .expect(200u16, "PATCH", "/v1/tenant", Some(&t), Some(own))
        .await;
    clock.set(at("2026-12-07T20:00:00Z"));
    say(&w, &bot, 4, 604, "Can I talk to a person?").await;
    assert!(
        sent_to(&w, 604)[0].starts_with("We're offline. Back Tuesday 09:00, promise."),
        "{:?}",
        sent_to(&w, 604)
    );

    // `null` removes them: a person is promised at any hour again.
    w.app
        .expect(
            200u16,
            "PATCH",
            "/v1/tenant",
            Some(&t),
            Some(json!({ "business_hours": null })),
        )
        .await;
    say(&w, &bot, 5, 605, "human").await;
    assert!(
        sent_to(&w, 605)[0].starts_with("I've let the team know: a person"),
        "{:?}",
        sent_to(&w, 605)
    );
}
