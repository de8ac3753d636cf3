//! The responder: answers each stored inbound message of a conversation that no human has taken
//! over. It claims `answer` jobs (one per inbound message, created with the message), asks the
//! brain with the conversation's recent turns, and stores the answer as an outbound message
//! (queued in the outbox) marked as the reply to that message. Because the reply is looked up
//! before answering and written in one transaction with its outbox row, a redelivered message
//! or a crash mid-answer still yields exactly one answer.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use coach_brain::model::{ChatMessage, GenerateEvent, ModelError, Role};
use coach_connector_api::{MessageId, OutboundBody};
use tokio_util::sync::CancellationToken;

use super::Brain;
use crate::bus::AnswerPhase;
use crate::jobs::{ClaimOrder, Handler, JobKind, Outcome, Policy, Retry};
use crate::language::Text;
use crate::state::AppState;
use crate::store::console::HandoffReason;
use crate::store::{ConversationStatus, Direction, QueueItem, StoreError};
use crate::tenancy::{SystemScope, TenantScope};

/// Turns of the conversation an answer takes into account.
const HISTORY: u32 = 8;

/// Answers inbound messages (`answer` jobs): claimed fairly across tenants, as many at once as
/// the brain has workers, so one tenant's burst does not hold back another tenant's coachee.
pub struct Responder;

/// How soon a message waiting for the models is looked at again.
const NO_BRAIN_WAIT: chrono::Duration = chrono::Duration::seconds(5);

#[async_trait::async_trait]
impl Handler for Responder {
    type Job = MessageId;
    type Batch = ();
    const KIND: JobKind = JobKind::Answer;

    fn policy(&self, state: &AppState) -> Policy {
        let workers = state.config.brain.workers.max(1);
        Policy {
            batch: workers,
            concurrency: workers as usize,
            lease: Duration::from_secs(300),
            idle: Duration::from_millis(200),
            order: ClaimOrder::Fair,
            retry: Retry {
                max_attempts: Some(6),
                base: Duration::from_millis(500),
                max: Duration::from_secs(60),
            },
        }
    }

    /// Without loaded models, commands (opt-out, enrollment keywords) are still handled; other
    /// messages wait for them.
    async fn run(
        &self,
        state: &AppState,
        (): &(),
        item: &QueueItem,
        message: MessageId,
    ) -> Outcome {
        let brain = state.knowledge.get().ok().cloned();
        let scope = SystemScope::new("responder").for_tenant(item.tenant_id);
        match respond(state, brain.as_ref(), &scope, message).await {
            Ok(Responded::Done) => Outcome::Done,
            Ok(Responded::NoBrain) => Outcome::Later {
                at: Utc::now() + NO_BRAIN_WAIT,
                why: "waiting for the models to load".into(),
            },
            Ok(Responded::Unheard) => Outcome::Wait {
                at: Utc::now() + chrono::Duration::seconds(1),
                why: "waiting for the voice note's transcript".into(),
            },
            Err(e) => Outcome::Failed(e),
        }
    }
}

/// What became of a message.
enum Responded {
    /// Answered, or nothing to answer.
    Done,
    /// It needs the coach, whose models are not loaded (yet).
    NoBrain,
    /// A voice note not transcribed yet.
    Unheard,
}

/// Claims and answers one batch of due messages (as many as the brain has workers); returns
/// how many ran.
pub async fn poll_once(state: &AppState) -> Result<usize, StoreError> {
    crate::jobs::run_once(Responder, state).await
}

/// "Delete my data" and its confirmation (see [`crate::safety`]): `Some` when the message was
/// one of them and is handled.
async fn erasure(
    state: &AppState,
    scope: &TenantScope,
    message: &crate::store::StoredMessage,
    conversation: &crate::store::Conversation,
    text: &str,
) -> Result<Option<Responded>, String> {
    let store = state.store.as_ref();
    let err = |e: StoreError| e.to_string();
    let last = store
        .messages_before(scope, message.conversation_id, message.id, 1)
        .await
        .map_err(err)?;
    let asked = last
        .iter()
        .rev()
        .find(|m| m.direction == Direction::Outbound);
    if let Some(asked) = asked
        && let Some(question) = text_of(Direction::Outbound, &asked.content)
        && let Some(lang) =
            crate::safety::confirms(text, &question, asked.created_at, state.clock.now())
    {
        crate::safety::erase_on_request(
            state,
            scope,
            message,
            conversation.external_id.clone(),
            lang,
        )
        .await
        .map_err(err)?;
        return Ok(Some(Responded::Done));
    }
    let Some(lang) = crate::safety::erase_request(text) else {
        return Ok(None);
    };
    state
        .stream
        .send(
            scope,
            message.conversation_id,
            OutboundBody::Text {
                text: crate::safety::confirm_question(lang).into(),
            },
            Some(message.id),
        )
        .await
        .map_err(err)?;
    Ok(Some(Responded::Done))
}

/// The text of a stored message's content, inbound or outbound.
fn text_of(direction: Direction, content: &serde_json::Value) -> Option<String> {
    match direction {
        Direction::Inbound => crate::voice::inbound_text(content),
        Direction::Outbound => {
            match serde_json::from_value::<OutboundBody>(content.clone()).ok()? {
                OutboundBody::Text { text } | OutboundBody::Interactive { text, .. } => Some(text),
                // The coach knows what was sent, a worksheet included.
                OutboundBody::File {
                    filename, caption, ..
                } => Some(match caption {
                    Some(caption) => format!("[file {filename}] {caption}"),
                    None => format!("[file {filename}]"),
                }),
                _ => None,
            }
        }
    }
}

async fn respond(
    state: &AppState,
    brain: Option<&Arc<Brain>>,
    scope: &TenantScope,
    id: MessageId,
) -> Result<Responded, String> {
    let store = state.store.as_ref();
    let err = |e: StoreError| e.to_string();
    if store.reply_to(scope, id).await.map_err(err)?.is_some() {
        return Ok(Responded::Done);
    }
    let message = match store.message(scope, id).await {
        Ok(m) => m,
        // Erased meanwhile (GDPR, retention): nothing to answer.
        Err(StoreError::NotFound(_)) => return Ok(Responded::Done),
        Err(e) => return Err(e.to_string()),
    };
    // A voice note is answered once it is heard, or known not to be.
    let wait = crate::voice::answer_wait(state.config.providers.voice_max_secs);
    let hearing = crate::voice::hearing(&message.content, (message.created_at, Utc::now()), wait);
    if hearing == crate::voice::Hearing::Waiting {
        return Ok(Responded::Unheard);
    }
    let conversation = store
        .conversation(scope, message.conversation_id)
        .await
        .map_err(err)?;
    // A contact's own erasure comes before anything else (even in a conversation a human has
    // taken over): "delete my data" asks to confirm, the confirmation erases them.
    if let Some(text) = text_of(Direction::Inbound, &message.content)
        && let Some(done) = erasure(state, scope, &message, &conversation, &text).await?
    {
        return Ok(done);
    }
    // Programs first: opt-out, opt-in and enrollment keywords are answered there (even in a
    // conversation a human has taken over), and a reply to a check-in gives the coach context.
    let program = match crate::programs::inbound::on_inbound(state, scope, &message, &conversation)
        .await
        .map_err(err)?
    {
        crate::programs::inbound::Next::Handled => return Ok(Responded::Done),
        crate::programs::inbound::Next::Answer(context) => context,
    };
    // A member took over: the coach is silent. While a conversation only waits for one, the
    // coach goes on answering.
    // A resolved or snoozed conversation was set aside after this message came (a new one
    // brings it back before it is answered): nobody answers.
    if matches!(
        conversation.status,
        ConversationStatus::Human | ConversationStatus::Resolved | ConversationStatus::Snoozed
    ) {
        tracing::debug!(conversation = %conversation.id, status = conversation.status.as_str(), "the coach does not answer this conversation");
        return Ok(Responded::Done);
    }
    let Some(question) =
        text_of(Direction::Inbound, &message.content).filter(|t| !t.trim().is_empty())
    else {
        if let crate::voice::Hearing::Unheard(key) = hearing {
            // In the language the contact is known to write in.
            let voice = voice(state, scope, conversation.contact_id, ("", None)).await?;
            let max = state.config.providers.voice_max_secs.to_string();
            let text = voice.text(key).replace("{max}", &max);
            let how = (&voice, voice.lang.as_str(), Disclosure::Due);
            reply(state, scope, &message, text, how).await?;
        }
        return Ok(Responded::Done);
    };
    // A voice note's language is the one Whisper heard, which beats guessing from its words.
    let spoken = message.content.get("language").and_then(|l| l.as_str());
    let said = (question.as_str(), spoken);
    let voice = voice(state, scope, conversation.contact_id, said).await?;
    let handoff = if let Some(lang) = crate::safety::crisis(&question) {
        // Never coached: a person is told at once, the contact gets help resources. They open
        // by saying the coach is an AI: no second notice under them.
        let reply = crate::safety::crisis_reply(lang, &voice.help_resources);
        Some((HandoffReason::Crisis, reply, lang.tag(), Disclosure::Said))
    } else if let Some(language) = crate::handoff::asks_for_human(&question) {
        // In the language they asked in.
        let lang = match language {
            crate::handoff::Asked::English => "en",
            crate::handoff::Asked::Spanish => "es",
            crate::handoff::Asked::Portuguese => "pt",
        };
        // Outside business hours they are told the team is away, and when it is back.
        let away = voice.hours.as_ref().and_then(|hours| {
            crate::hours::away_reply(hours, state.clock.now(), lang, || {
                voice.text_in(lang, Text::Away)
            })
        });
        let reply = away.unwrap_or_else(|| voice.text_in(lang, Text::Handoff));
        Some((HandoffReason::AskedForHuman, reply, lang, Disclosure::Due))
    } else if quota_spent(state, scope).await.map_err(err)? {
        let reply = voice.text(Text::Quota);
        Some((
            HandoffReason::QuotaReached,
            reply,
            voice.lang.as_str(),
            Disclosure::Due,
        ))
    } else {
        None
    };
    if handoff.is_none() {
        // "Remember ..." is kept and acknowledged; a goal said in passing is kept, then answered.
        let found = crate::memory::remember(
            store,
            scope,
            conversation.contact_id,
            message.id.0,
            &question,
            state.clock.now(),
        )
        .await
        .map_err(err)?;
        if let Some(crate::memory::Found::Command(lang, _)) = found {
            let text = voice.text_in(lang.tag(), Text::Remembered);
            let how = (&voice, lang.tag(), Disclosure::Due);
            reply(state, scope, &message, text, how).await?;
            return Ok(Responded::Done);
        }
    }
    if let Some((reason, text, lang, disclosure)) = handoff {
        crate::handoff::request(state, scope, &message, &question, reason)
            .await
            .map_err(err)?;
        reply(state, scope, &message, text, (&voice, lang, disclosure)).await?;
        return Ok(Responded::Done);
    }
    let Some(brain) = brain else {
        return Ok(Responded::NoBrain);
    };
    // "typing..." on channels that show it, renewed until the answer is stored.
    let typing = CancellationToken::new();
    let _stop_typing = typing.clone().drop_guard();
    if let Ok(channel) = store.channel(scope, conversation.channel_id).await
        && let Some(every) = state.connectors.typing_renewal(&channel.kind)
    {
        tokio::spawn(keep_typing(
            state.sender.clone(),
            scope.clone(),
            conversation.clone(),
            message.provider_message_id.clone(),
            every,
            typing,
        ));
    }
    let history: Vec<ChatMessage> = store
        .messages_before(scope, message.conversation_id, id, HISTORY)
        .await
        .map_err(err)?
        .into_iter()
        .filter_map(|m| {
            let role = match m.direction {
                Direction::Inbound => Role::User,
                Direction::Outbound => Role::Assistant,
            };
            text_of(m.direction, &m.content).map(|content| ChatMessage { role, content })
        })
        .collect();
    let memory = store
        .memory(scope, conversation.contact_id)
        .await
        .map_err(err)?;
    let started = std::time::Instant::now();
    let decline = voice.text(Text::Decline);
    let context = super::answer::Context {
        program: program.as_deref(),
        memory: &memory,
        language: Some(voice.lang.as_str()).filter(|l| !l.is_empty()),
        decline: Some(&decline),
        persona: Some(&voice.persona),
    };
    let mut answer = brain
        .answer_with(
            store,
            scope,
            &question,
            &history,
            context,
            CancellationToken::new(),
        )
        .await
        .map_err(|e| format!("{e:?}"))?;
    // Recorded before the answer is stored: a retry after a failure here still finds no
    // answer and asks again (the request is idempotent per message).
    let unsure = || {
        crate::handoff::request(
            state,
            scope,
            &message,
            &question,
            HandoffReason::LowConfidence,
        )
    };
    if !answer.confident {
        unsure().await.map_err(err)?;
    }
    // Live views (the widget) see the answer as it is generated.
    let conversation_id = message.conversation_id;
    let live = |phase: AnswerPhase| state.stream.answer(scope, conversation_id, id, phase);
    let mut text = String::new();
    while let Some(event) = answer.next().await {
        match event {
            Ok(GenerateEvent::Token(piece)) => {
                text.push_str(&piece);
                live(AnswerPhase::Delta { text: piece }).await;
            }
            Ok(GenerateEvent::Started { .. }) => live(AnswerPhase::Start).await,
            Ok(GenerateEvent::Abstain(_)) => {}
            Ok(GenerateEvent::Done(usage)) => {
                super::meter(store, scope, &usage).await;
                tracing::info!(
                    message = %id,
                    prompt_tokens = usage.prompt_tokens,
                    cached_tokens = usage.cached_tokens,
                    completion_tokens = usage.completion_tokens,
                    ms = started.elapsed().as_millis() as u64,
                    confident = answer.confident,
                    "answered"
                );
            }
            Err(ModelError::Busy(why)) => {
                live(AnswerPhase::Abort).await;
                return Err(format!("busy: {why}"));
            }
            Err(e) => {
                live(AnswerPhase::Abort).await;
                return Err(e.to_string());
            }
        }
    }
    // What a stopped loop left (a sentence said twice, a repeated fragment) is not stored, nor
    // a sentence the passages do not support; with nothing supported the coach declines.
    let finished = answer.finish(&text);
    let mut text = finished.text;
    if text.is_empty() {
        text = decline.clone();
    }
    if answer.confident && !finished.confident {
        tracing::info!(message = %id, dropped = finished.dropped, "no sentence of the answer was supported: declined");
        unsure().await.map_err(err)?;
    }
    if !finished.citations.is_empty() {
        let mut sources: Vec<String> = Vec::new();
        for c in &finished.citations {
            let label = match c.page {
                Some(page) => format!("{} (p. {page})", c.title),
                None => c.title.clone(),
            };
            if !sources.contains(&label) {
                sources.push(label);
            }
        }
        let label = voice.text(Text::Sources);
        text.push_str(&format!("\n\n{label}: {}", sources.join("; ")));
    }
    let how = (&voice, voice.lang.as_str(), Disclosure::Due);
    let stored = reply(state, scope, &message, text, how).await?;
    live(AnswerPhase::End {
        message_id: stored.id,
    })
    .await;
    Ok(Responded::Done)
}

/// Whether a reply says by itself that the coach is an AI.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Disclosure {
    /// It does not: the first reply of a conversation ends with the notice.
    Due,
    /// It does (help resources): nothing is added, and the conversation counts as told.
    Said,
}

/// How the coach speaks to a contact: in their language (chosen by the team, else detected in
/// their messages, this one included, else the persona's), with the tenant's fixed texts.
struct Voice {
    /// A BCP 47 tag, or empty when nothing is known.
    lang: String,
    strings: crate::language::Strings,
    coach: String,
    help_resources: String,
    /// When the team answers (absent: any time).
    hours: Option<crate::hours::BusinessHours>,
    /// The persona as the brain reads it (read once per message).
    persona: coach_brain::prompt::Persona,
}

impl Voice {
    fn text(&self, key: Text) -> String {
        self.text_in(&self.lang, key)
    }

    fn text_in(&self, lang: &str, key: Text) -> String {
        crate::language::text(&self.strings, lang, key)
    }
}

/// The contact's [`Voice`]; the language detected in `question` (or, for a voice note, the one
/// it was spoken in) is recorded on the contact.
async fn voice(
    state: &AppState,
    scope: &TenantScope,
    contact: coach_connector_api::ContactId,
    (question, spoken): (&str, Option<&str>),
) -> Result<Voice, String> {
    let store = state.store.as_ref();
    let err = |e: StoreError| e.to_string();
    let (_, profile) = store.tenant_profile(scope).await.map_err(err)?;
    let brain_persona = super::answer::brain_persona(profile.persona.as_ref());
    let persona = profile.persona.unwrap_or_default();
    let mut language = store.contact_language(scope, contact).await.map_err(err)?;
    let detected = spoken
        .and_then(crate::language::known)
        .or_else(|| crate::language::detect(question));
    if let Some(detected) = detected
        && language.detected.as_deref() != Some(detected)
    {
        store
            .set_detected_language(scope, contact, detected.to_string())
            .await
            .map_err(err)?;
        language.detected = Some(detected.to_string());
    }
    Ok(Voice {
        lang: language.effective(&persona.language).to_string(),
        strings: profile.strings.unwrap_or_default(),
        coach: persona.coach_name,
        help_resources: persona.help_resources,
        hours: profile.business_hours,
        persona: brain_persona,
    })
}

/// Store `text` as the coach's reply to `message` (queued for delivery), in `voice` and the
/// language tag given with it. The coach's first reply in a conversation ends by telling the
/// contact that they talk to an AI (EU AI Act art. 50); it is recorded once the reply is stored,
/// so a crash in between tells them twice rather than never.
async fn reply(
    state: &AppState,
    scope: &TenantScope,
    message: &crate::store::StoredMessage,
    mut text: String,
    (voice, lang, disclosure): (&Voice, &str, Disclosure),
) -> Result<crate::store::StoredMessage, String> {
    let store = state.store.as_ref();
    let err = |e: StoreError| e.to_string();
    let conversation = message.conversation_id;
    let disclose = !store.ai_disclosed(scope, conversation).await.map_err(err)?;
    if disclose && disclosure == Disclosure::Due {
        text.push_str("\n\n");
        text.push_str(&crate::language::ai_notice(
            &voice.strings,
            lang,
            &voice.coach,
        ));
    }
    let stored = state
        .stream
        .send(
            scope,
            conversation,
            OutboundBody::Text { text },
            Some(message.id),
        )
        .await
        .map_err(err)?;
    if disclose {
        store
            .mark_ai_disclosed(scope, conversation, state.clock.now())
            .await
            .map_err(err)?;
    }
    Ok(stored)
}

/// Whether the tenant's coach has given every answer `brain.answers_per_day` allows today.
async fn quota_spent(state: &AppState, scope: &TenantScope) -> Result<bool, StoreError> {
    let quota = state.config.brain.answers_per_day;
    if quota == 0 {
        return Ok(false);
    }
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let used = state
        .store
        .usage(scope, &today)
        .await?
        .iter()
        .filter(|d| d.day == today)
        .map(|d| d.answers)
        .sum::<i64>();
    Ok(used >= i64::from(quota))
}

/// Send the typing signal every `every` until `stop`.
async fn keep_typing(
    sender: Arc<crate::connectors::sender::ConnectorSender>,
    scope: TenantScope,
    conversation: crate::store::Conversation,
    about: Option<String>,
    every: std::time::Duration,
    stop: CancellationToken,
) {
    loop {
        sender
            .signal(
                &scope,
                conversation.channel_id,
                conversation.id,
                conversation.external_id.clone(),
                OutboundBody::Typing,
                about.clone(),
            )
            .await;
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
    }
}
