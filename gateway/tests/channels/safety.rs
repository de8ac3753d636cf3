//! Safety before coaching, over Telegram webhooks: a message that signals a crisis is handed to
//! a person as urgent and answered with help resources (the tenant's when set, in the contact's
//! language), never coached; "delete my data", confirmed, erases the contact as the API does.

use serde_json::{Value, json};

use crate::api_support::*;
use crate::common::Backend;
use crate::support::*;

crate::against_every_backend!(
    a_crisis_is_handed_to_a_person_with_help_resources,
    a_contact_erases_their_data_by_asking,
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
