//! Voice notes over WhatsApp's signed webhooks, heard by the real speech worker (`coach-whisper`
//! with the converted Whisper base model): a note spoken by espeak-ng and encoded as Ogg/Opus, as
//! WhatsApp sends them, is fetched through the fake Graph API, transcribed onto the message, and
//! answered from the knowledge base with its words in the prompt (the brain on a loopback Ollama
//! that records prompts); a note over `providers.voice_max_secs` is answered with a polite request
//! to write, in the contact's language, without the model. A Spanish voice note on Telegram is
//! heard as Spanish and answered in Spanish.

use coach_e2e::fake_ollama::FakeOllama;
use coach_e2e::speech::{voice_note, word_error_rate, words};
use serde_json::{Value, json};

use crate::api_support::token;
use crate::common::Backend;
use crate::support::*;

crate::against_every_backend!(
    a_whatsapp_voice_note_is_transcribed_and_answered,
    a_voice_note_over_the_limit_is_answered_with_a_request_to_write,
    a_spanish_telegram_voice_note_is_answered_in_spanish,
);

/// The world with its brain on a fake Ollama (which records the prompts) and `voice_max_secs`.
async fn ollama_world(b: &Backend, max_secs: u32) -> (World, FakeOllama) {
    let ollama = FakeOllama::start().await;
    let url = ollama.base_url.clone();
    let w = world_with(b, true, coach_gateway::clock::Clock::system(), |c| {
        c.brain.backend = coach_gateway::config::ModelBackend::Ollama;
        c.brain.ollama.url = url;
        c.brain.relevance_floor = 0.2;
        c.providers.voice_max_secs = max_secs;
    })
    .await;
    (w, ollama)
}

/// [`ollama_world`] with the sleep guide and a WhatsApp channel (token, webhook path).
async fn voice_world(
    b: &Backend,
    email: &str,
    max_secs: u32,
) -> (World, FakeOllama, String, String) {
    let (w, ollama) = ollama_world(b, max_secs).await;
    let t = tenant_with_knowledge(&w, email).await;
    let channel = create(&w, &t, "whatsapp", whatsapp_config()).await;
    let hook = format!("/webhooks/whatsapp/{}", channel["id"].as_str().unwrap());
    (w, ollama, t, hook)
}

/// Ana sends the voice note `bytes` (media id `media`, message `wamid`); the media download,
/// the transcription, the answer and the delivery run.
async fn send_voice(w: &World, hook: &str, wamid: &str, media: &str, bytes: Vec<u8>) {
    let meta = json!({ "messaging_product": "whatsapp", "url": format!("{}/cdn/{media}", w.fake.base_url),
        "mime_type": "audio/ogg; codecs=opus", "file_size": bytes.len(), "id": media });
    w.fake.serve(
        &format!("/v21.0/{media}"),
        "application/json",
        meta.to_string(),
    );
    w.fake.serve(&format!("/cdn/{media}"), "audio/ogg", bytes);
    let body = wa_webhook(json!({
        "contacts": [{ "profile": { "name": "Ana" }, "wa_id": "4915112345678" }],
        "messages": [{ "from": "4915112345678", "id": wamid, "timestamp": "1700000000", "type": "audio",
                       "audio": { "id": media, "mime_type": "audio/ogg; codecs=opus", "sha256": "x", "voice": true } }] }));
    let (status, _) = w
        .post(
            hook,
            &[("x-hub-signature-256", meta_signature(&body))],
            body,
        )
        .await;
    assert_eq!(status, 200);
    // Before it is heard, the answer waits.
    let before = sent_texts(w).len();
    assert_eq!(w.answer_all().await, 1, "the answer job ran and waits");
    w.deliver().await;
    assert_eq!(sent_texts(w).len(), before, "nothing was answered yet");
    while coach_gateway::connectors::media::poll_once(&w.app.state)
        .await
        .unwrap()
        > 0
    {}
    while coach_gateway::voice::poll_once(&w.app.state).await.unwrap() > 0 {}
    // The answer job waits a second after each look.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    w.answer_all().await;
    w.deliver().await;
}

fn messages_path() -> String {
    format!("/v21.0/{PHONE_ID}/messages")
}

fn sent_texts(w: &World) -> Vec<String> {
    w.fake
        .requests_to(&messages_path())
        .iter()
        .map(|r| r.json())
        .filter(|m| m["type"] == "text")
        .map(|m| m["text"]["body"].as_str().unwrap().to_owned())
        .collect()
}

fn voice_message(msgs: &[Value]) -> &Value {
    msgs.iter()
        .find(|m| m["content"]["media"] == "voice")
        .expect("the voice note is stored")
}

pub(crate) async fn a_whatsapp_voice_note_is_transcribed_and_answered(b: &Backend) {
    let (w, ollama, t, hook) = voice_world(b, "voice@example.com", 120).await;
    ollama.reply_with("Stop drinking coffee eight hours before bed.");
    let dir = tempfile::tempdir().unwrap();
    let script = "Hi coach. My evenings are busy and I go to bed late. How many hours before bed \
                  should I stop drinking coffee?";
    send_voice(
        &w,
        &hook,
        "wamid.V1",
        "VOICE1",
        voice_note(dir.path(), "en", "en", script),
    )
    .await;

    let msgs = w.messages(&t).await;
    let note = voice_message(&msgs);
    let heard = note["content"]["transcript"]
        .as_str()
        .expect("a transcript");
    let wer = word_error_rate(script, heard);
    assert!(wer <= 0.2, "WER {wer:.2}: {heard:?}");
    assert_eq!(note["content"]["language"], "en");
    assert!(note["content"]["duration_secs"].as_f64().unwrap() > 1.0);
    assert_eq!(note["content"]["file"]["mime"], "audio/ogg");

    // Answered like text: its words are the question the model saw, with the guide's passage.
    let chats = ollama.chats();
    let chat = chats.last().expect("the model was asked");
    let turns = chat["messages"].as_array().unwrap();
    let question = turns.last().unwrap()["content"].as_str().unwrap();
    assert!(question.contains(heard), "{question}");
    let system = turns[0]["content"].as_str().unwrap();
    assert!(system.contains("eight hours before bed"), "{system}");
    let sent = sent_texts(&w);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].starts_with("Stop drinking coffee eight hours"),
        "{sent:?}"
    );
    assert!(
        msgs.iter().any(|m| m["direction"] == "outbound"),
        "the answer is stored"
    );
}

pub(crate) async fn a_voice_note_over_the_limit_is_answered_with_a_request_to_write(b: &Backend) {
    let (w, ollama, t, hook) = voice_world(b, "long-voice@example.com", 2).await;
    // The contact is known to write Spanish.
    let body = wa_text(
        "wamid.T1",
        "Hola, quiero dormir mejor por las noches, ¿me ayudas?",
    );
    w.post(
        &hook,
        &[("x-hub-signature-256", meta_signature(&body))],
        body,
    )
    .await;
    w.answer_all().await;
    w.deliver().await;
    let asked = ollama.chats().len();
    let dir = tempfile::tempdir().unwrap();
    let note = voice_note(
        dir.path(),
        "es",
        "es",
        "Esta nota de voz dura bastante más de dos segundos, así que no se transcribe.",
    );
    send_voice(&w, &hook, "wamid.V2", "VOICE2", note).await;

    let msgs = w.messages(&t).await;
    let note = voice_message(&msgs);
    assert_eq!(note["content"]["transcript_error"], "too_long", "{note}");
    assert!(note["content"].get("transcript").is_none());
    assert_eq!(ollama.chats().len(), asked, "the model is not asked");
    let sent = sent_texts(&w);
    let last = sent.last().unwrap();
    assert!(
        last.starts_with("Tu nota de voz es más larga de lo que puedo escuchar (2 segundos)"),
        "{sent:?}"
    );
}

pub(crate) async fn a_spanish_telegram_voice_note_is_answered_in_spanish(b: &Backend) {
    let (w, ollama) = ollama_world(b, 120).await;
    let owner = w.app.register("voz@example.com").await;
    let t = token(&owner).to_owned();
    let guide = "# Guía del sueño\n\nDeja el café ocho horas antes de dormir. La cafeína retrasa el sueño profundo.\n";
    w.app
        .upload(&t, "guia.md", "text/markdown", guide.as_bytes())
        .await;
    w.app.ingest_all().await;
    ollama.reply_with("Deja el café ocho horas antes de dormir.");
    let channel = create(&w, &t, "telegram", json!({ "bot_token": BOT_TOKEN })).await;
    let secret = w.fake.requests_to("/setWebhook")[0].json()["secret_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let note = voice_note(
        dir.path(),
        "es",
        "es",
        "Buenas noches. ¿Cuántas horas antes de acostarme tengo que dejar de tomar café?",
    );
    // Telegram's two media steps: getFile names the path, the path serves the file.
    w.fake.serve(
        &format!("/bot{BOT_TOKEN}/getFile"),
        "application/json",
        json!({ "ok": true, "result": { "file_id": "VOICE-ES", "file_path": "voice/file_1.oga" } })
            .to_string(),
    );
    w.fake.serve(
        &format!("/file/bot{BOT_TOKEN}/voice/file_1.oga"),
        "audio/ogg",
        note.clone(),
    );
    let update = json!({ "update_id": 9100, "message": { "message_id": 91, "date": 1_700_000_000,
        "from": { "id": 702, "is_bot": false, "first_name": "Lola" }, "chat": { "id": 702, "type": "private" },
        "voice": { "file_id": "VOICE-ES", "file_unique_id": "u-es", "duration": 6, "mime_type": "audio/ogg", "file_size": note.len() } } });
    let hook = format!("/webhooks/telegram/{}", channel["id"].as_str().unwrap());
    let (status, _) = w
        .post(
            &hook,
            &[("x-telegram-bot-api-secret-token", secret)],
            serde_json::to_vec(&update).unwrap(),
        )
        .await;
    assert_eq!(status, 200);
    while coach_gateway::connectors::media::poll_once(&w.app.state)
        .await
        .unwrap()
        > 0
    {}
    while coach_gateway::voice::poll_once(&w.app.state).await.unwrap() > 0 {}
    w.answer_all().await;
    w.deliver().await;

    let msgs = w.messages(&t).await;
    let heard = voice_message(&msgs)["content"].clone();
    assert_eq!(heard["language"], "es", "{heard}");
    let words = words(heard["transcript"].as_str().unwrap());
    for word in ["horas", "café"] {
        assert!(words.iter().any(|w| w == word), "{word}: {heard}");
    }
    let system = ollama.chats().last().unwrap()["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        system.contains("Answer in language: Spanish"),
        "{heard}: {system}"
    );
    let sent: Vec<String> = w
        .fake
        .requests_to("/sendMessage")
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].starts_with("Deja el café ocho horas antes de dormir.\n\nFuentes: "),
        "{sent:?}"
    );
}
