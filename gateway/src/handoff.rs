//! Human handoff: a conversation waits for a person when the contact asks for one or the coach
//! is not confident. The request is recorded once per message (the conversation turns
//! `waiting`, the creator's webhook notice and the team's e-mail are queued in the same
//! transaction), then announced live. Delivery: `crate::notify`.

use chrono::Utc;

use crate::bus::StreamPayload;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::console::{Handoff, HandoffReason};
use crate::tenancy::TenantScope;

/// The language someone asked for a person in (the coach answers in it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    /// English.
    English,
    /// Spanish.
    Spanish,
    /// Portuguese.
    Portuguese,
}

/// Verbs and objects of "talk to a person" (anywhere in a short message).
const TALK: &[&str] = &[
    "talk to",
    "talk with",
    "speak to",
    "speak with",
    "chat with",
];
const SOMEONE: &[&str] = &[
    "a human",
    "a real human",
    "a person",
    "a real person",
    "someone",
    "somebody",
    "an agent",
    "a real agent",
    "your team",
    "the team",
];
const HABLAR: &[&str] = &["hablar con", "habla con", "hablo con", "comunicarme con"];
const ALGUIEN: &[&str] = &[
    "una persona",
    "una persona real",
    "un humano",
    "alguien",
    "un agente",
    "el equipo",
    "tu equipo",
];
/// Asking for a person in few words ("human", "agent please", "I want a human").
const NOUNS_EN: &[&str] = &[
    "human",
    "a human",
    "person",
    "a person",
    "real person",
    "a real person",
    "agent",
    "an agent",
    "operator",
    "representative",
];
const NOUNS_ES: &[&str] = &[
    "humano",
    "un humano",
    "persona",
    "una persona",
    "persona real",
    "agente",
];
const FALAR: &[&str] = &["falar com", "fala com", "falo com", "conversar com"];
const ALGUEM: &[&str] = &[
    "uma pessoa",
    "pessoa",
    "pessoa real",
    "alguém",
    "alguem",
    "um humano",
    "humano",
    "um atendente",
    "atendente",
    "a equipe",
    "sua equipe",
];
const NOUNS_PT: &[&str] = &[
    "atendente",
    "um atendente",
    "uma pessoa real",
    "pessoa real",
];
/// Words that may surround such a request without changing it.
const FILLERS: &[&str] = &[
    "please", "pls", "now", "i", "want", "need", "would", "like", "can", "could", "get", "me",
    "hi", "hello", "por", "favor", "quiero", "necesito", "ahora", "hola", "un", "una", "quero",
    "preciso", "agora", "olá", "ola", "um", "uma",
];

/// Whether a message asks to talk to a person, and in which language: "Can I talk to a
/// human?", "I want to speak with someone", "agent please", "¿Puedo hablar con una persona?".
/// Questions that merely mention people ("How much protein does a person need?") do not.
pub fn asks_for_human(text: &str) -> Option<Asked> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() || words.len() > 14 {
        return None;
    }
    let joined = format!(" {} ", words.join(" "));
    let phrase = |verbs: &[&str], objects: &[&str]| {
        verbs.iter().any(|v| {
            objects
                .iter()
                .any(|o| joined.contains(&format!(" {v} {o} ")))
        })
    };
    if phrase(TALK, SOMEONE) {
        return Some(Asked::English);
    }
    if phrase(HABLAR, ALGUIEN) {
        return Some(Asked::Spanish);
    }
    if phrase(FALAR, ALGUEM) {
        return Some(Asked::Portuguese);
    }
    // Without a verb, the request must be (nearly) the whole message.
    let core: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| !FILLERS.contains(w) && *w != "a" && *w != "an")
        .collect();
    let core = core.join(" ");
    let bare = |nouns: &[&str]| {
        nouns.iter().any(|n| {
            let n: Vec<&str> = n
                .split(' ')
                .filter(|w| !FILLERS.contains(w) && *w != "a" && *w != "an")
                .collect();
            n.join(" ") == core
        })
    };
    if bare(NOUNS_EN) {
        Some(Asked::English)
    } else if bare(NOUNS_ES) {
        Some(Asked::Spanish)
    } else if bare(NOUNS_PT) {
        Some(Asked::Portuguese)
    } else {
        None
    }
}

/// Record that `message` (the contact's `question`) needs a person, and tell the creator: a
/// live `handoff` event and, when configured, the webhook and the team's e-mail. Does nothing more for a message
/// already recorded (a retried answer).
pub async fn request(
    state: &AppState,
    scope: &TenantScope,
    message: &crate::store::StoredMessage,
    question: &str,
    reason: HandoffReason,
) -> Result<(), StoreError> {
    let handoff = Handoff {
        conversation_id: message.conversation_id,
        message_id: message.id,
        reason,
        question: question.chars().take(2000).collect(),
        created_at: Utc::now(),
    };
    let (_, profile) = state.store.tenant_profile(scope).await?;
    let takes_it = profile.notify_url().is_some()
        && profile
            .webhook_events()
            .iter()
            .any(|e| e == crate::store::notices::HANDOFF_REQUESTED);
    let notify = takes_it.then(|| notice(state, scope, &handoff));
    let email = state.auth.mailer().is_some().then(|| {
        serde_json::json!({
            "type": crate::store::notices::HANDOFF_REQUESTED,
            "conversation_id": handoff.conversation_id,
            "reason": handoff.reason,
        })
    });
    if !state
        .store
        .record_handoff(scope, handoff.clone(), notify, email)
        .await?
    {
        return Ok(());
    }
    tracing::info!(conversation = %handoff.conversation_id, reason = reason.as_str(), "handoff requested");
    metrics::counter!("handoffs_total", "reason" => reason.as_str()).increment(1);
    let conversation = state
        .store
        .conversation(scope, handoff.conversation_id)
        .await?;
    state
        .stream
        .publish(scope, StreamPayload::Conversation { conversation })
        .await;
    state
        .stream
        .publish(
            scope,
            StreamPayload::Handoff {
                conversation_id: handoff.conversation_id,
                message_id: handoff.message_id,
                reason: reason.as_str().into(),
                question: handoff.question,
            },
        )
        .await;
    Ok(())
}

/// The webhook body of a handoff.
fn notice(state: &AppState, scope: &TenantScope, handoff: &Handoff) -> serde_json::Value {
    serde_json::json!({
        "id": uuid::Uuid::now_v7(),
        "type": "handoff.requested",
        "timestamp": handoff.created_at,
        "created_at": handoff.created_at,
        "tenant_id": scope.tenant_id(),
        "data": {
            "conversation_id": handoff.conversation_id,
            "message_id": handoff.message_id,
            "reason": handoff.reason,
            "question": handoff.question,
            "console_url": format!(
                "{}/console#/inbox/{}",
                state.config.public_url.trim_end_matches('/'),
                handoff.conversation_id
            ),
        }
    })
}

/// Claims and delivers due handoff notices; returns how many ran.
pub async fn poll_once(state: &AppState) -> Result<usize, StoreError> {
    crate::notify::poll_handoffs(state).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asking_for_a_person_is_recognised_and_ordinary_questions_are_not() {
        for yes in [
            "human",
            "Human please!",
            "I want a human",
            "Can I talk to a human?",
            "I want to speak with someone from your team",
            "agent",
            "an agent please",
        ] {
            assert_eq!(asks_for_human(yes), Some(Asked::English), "{yes}");
        }
        for yes in [
            "¿Puedo hablar con una persona?",
            "humano por favor",
            "quiero hablar con alguien",
        ] {
            assert_eq!(asks_for_human(yes), Some(Asked::Spanish), "{yes}");
        }
        for yes in [
            "Quero falar com uma pessoa",
            "posso falar com alguém?",
            "atendente por favor",
        ] {
            assert_eq!(asks_for_human(yes), Some(Asked::Portuguese), "{yes}");
        }
        for no in [
            "How do humans build habits?",
            "What is a human's resting heart rate?",
            "How much protein does a person need?",
            "¿Cuánta proteína necesita una persona al día?",
            "Quanta proteína uma pessoa precisa por dia?",
            "My agent said I should run more, what do you think about a plan for that?",
            "",
            "How do I start the gateway?",
        ] {
            assert_eq!(asks_for_human(no), None, "{no}");
        }
    }
}
