//! Safety before coaching. A message that may signal a crisis or self-harm is never coached: it
//! goes to a person at once (an urgent `crisis` handoff, first in the console) and is answered
//! with help resources (the tenant's, or built-in ones naming emergency numbers). A contact who
//! writes "delete my data" is asked to confirm, and the confirmation erases them as
//! `DELETE /v1/contacts/{id}` does. Phrases are matched in English, Spanish and Portuguese, with
//! accents folded; a small model's own judgement is not trusted for either.

use chrono::{DateTime, Utc};
use coach_connector_api::{ContactId, OutboundBody};

use crate::state::AppState;
use crate::store::StoreError;
use crate::tenancy::TenantScope;

/// The languages of the built-in phrases and texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Spanish.
    Es,
    /// Portuguese.
    Pt,
}

impl Lang {
    /// Its BCP 47 tag.
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Es => "es",
            Self::Pt => "pt",
        }
    }
}

/// Phrases of crisis and self-harm, folded (lowercase, no accents, words joined by one space).
const CRISIS: &[(Lang, &[&str])] = &[
    (
        Lang::En,
        &[
            "kill myself",
            "killing myself",
            "suicide",
            "suicidal",
            "end my life",
            "ending my life",
            "take my own life",
            "want to die",
            "wanna die",
            "don't want to live",
            "dont want to live",
            "do not want to live",
            "no reason to live",
            "better off dead",
            "hurt myself",
            "hurting myself",
            "self harm",
            "cut myself",
            "cutting myself",
        ],
    ),
    (
        Lang::Es,
        &[
            "suicidarme",
            "suicidio",
            "suicida",
            "matarme",
            "quitarme la vida",
            "acabar con mi vida",
            "no quiero vivir",
            "quiero morir",
            "quiero morirme",
            "hacerme dano",
            "autolesion",
            "cortarme las venas",
        ],
    ),
    (
        Lang::Pt,
        &[
            "me matar",
            "suicidar",
            "tirar minha vida",
            "tirar a minha vida",
            "acabar com minha vida",
            "nao quero viver",
            "quero morrer",
            "me machucar",
            "automutilacao",
            "me cortar",
        ],
    ),
];

/// "Delete my data" and its kin: the whole message (a few words around it at most).
const ERASE: &[(Lang, &[&str])] = &[
    (
        Lang::En,
        &[
            "delete my data",
            "erase my data",
            "remove my data",
            "delete my information",
            "delete everything about me",
            "forget me",
            "delete my account",
        ],
    ),
    (
        Lang::Es,
        &[
            "borrar mis datos",
            "borra mis datos",
            "borren mis datos",
            "eliminar mis datos",
            "elimina mis datos",
            "olvidame",
        ],
    ),
    (
        Lang::Pt,
        &[
            "apagar meus dados",
            "apague meus dados",
            "excluir meus dados",
            "exclua meus dados",
            "me esqueca",
        ],
    ),
];

/// How long the confirmation question stands.
const CONFIRM_MINUTES: i64 = 10;

/// A lowercase character without its accent (a typographic apostrophe becomes `'`).
pub(crate) fn fold_char(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'ñ' => 'n',
        'ç' => 'c',
        '\u{2019}' => '\'',
        c => c,
    }
}

/// Lowercase, accents folded, words (letters, digits, apostrophes) joined by single spaces.
fn fold(text: &str) -> String {
    let folded: String = text.to_lowercase().chars().map(fold_char).collect();
    folded
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn found(phrases: &[(Lang, &[&str])], folded: &str) -> Option<Lang> {
    let padded = format!(" {folded} ");
    phrases.iter().find_map(|(lang, list)| {
        list.iter()
            .any(|p| padded.contains(&format!(" {p} ")))
            .then_some(*lang)
    })
}

/// Whether a message may signal a crisis or self-harm, and in which language.
pub fn crisis(text: &str) -> Option<Lang> {
    found(CRISIS, &fold(text))
}

/// The answer to a message that signals a crisis: no coaching, the tenant's help resources (or
/// the built-in ones), and that a person was told.
pub fn crisis_reply(lang: Lang, resources: &str) -> String {
    let (opening, builtin, closing) = match lang {
        Lang::En => (
            "I'm an AI coach, and what you wrote sounds serious. You deserve support from a \
             person right now.",
            "If you are in danger or might act on these thoughts, call your local emergency \
             number (112 in Europe, 911 in North America) or a crisis line (988 in the US).",
            "I've alerted the team, and someone will reply here.",
        ),
        Lang::Es => (
            "Soy un coach de IA y lo que escribes suena serio. Mereces el apoyo de una persona \
             ahora mismo.",
            "Si estás en peligro o puedes hacerte daño, llama al número de emergencias (112 en \
             Europa, 911 en América) o a una línea de crisis (024 en España).",
            "He avisado al equipo y alguien te responderá aquí.",
        ),
        Lang::Pt => (
            "Sou um coach de IA e o que você escreveu parece sério. Você merece o apoio de uma \
             pessoa agora mesmo.",
            "Se você está em perigo ou pode se machucar, ligue para o número de emergência (112 \
             na Europa, 192 no Brasil) ou para o CVV (188).",
            "Avisei a equipe e alguém vai responder aqui.",
        ),
    };
    let resources = resources.trim();
    let resources = if resources.is_empty() {
        builtin
    } else {
        resources
    };
    format!("{opening} {resources} {closing}")
}

/// Whether a message asks to delete the contact's data (it must be little more than that).
pub fn erase_request(text: &str) -> Option<Lang> {
    let folded = fold(text);
    if folded.split(' ').count() > 8 {
        return None;
    }
    found(ERASE, &folded)
}

/// The question that asks to confirm an erasure.
pub fn confirm_question(lang: Lang) -> &'static str {
    match lang {
        Lang::En => {
            "This erases your messages and everything this coach keeps about you, for good. To \
             go ahead, reply DELETE within 10 minutes; anything else keeps your data."
        }
        Lang::Es => {
            "Esto borra para siempre tus mensajes y todo lo que este coach guarda sobre ti. Para \
             seguir, responde BORRAR en los próximos 10 minutos; cualquier otra respuesta \
             conserva tus datos."
        }
        Lang::Pt => {
            "Isto apaga para sempre suas mensagens e tudo o que este coach guarda sobre você. \
             Para continuar, responda APAGAR nos próximos 10 minutos; qualquer outra resposta \
             mantém seus dados."
        }
    }
}

/// The word that confirms, in the language the question was asked in.
fn confirm_word(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "delete",
        Lang::Es => "borrar",
        Lang::Pt => "apagar",
    }
}

/// What the contact is told once their data is gone (sent, never stored).
pub fn erased_notice(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "Done: your messages and data are erased.",
        Lang::Es => "Hecho: tus mensajes y datos están borrados.",
        Lang::Pt => "Pronto: suas mensagens e dados foram apagados.",
    }
}

/// Whether `reply` confirms the confirmation question `asked` (the coach's last message,
/// sent at `asked_at`), still standing at `now`; the question's language.
pub fn confirms(
    reply: &str,
    asked: &str,
    asked_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<Lang> {
    if now - asked_at > chrono::Duration::minutes(CONFIRM_MINUTES) {
        return None;
    }
    [Lang::En, Lang::Es, Lang::Pt]
        .into_iter()
        .find(|lang| confirm_question(*lang) == asked && fold(reply) == confirm_word(*lang))
}

/// Erase a contact with everything stored about them: the rows (conversations, messages, jobs
/// and outbox rows cascade) and their media files.
pub async fn erase_contact(
    state: &AppState,
    scope: &TenantScope,
    contact: ContactId,
) -> Result<(), StoreError> {
    state.store.erase_contact(scope, contact).await?;
    crate::connectors::media::remove_dir(crate::connectors::media::contact_dir(
        &state.config.data_dir,
        scope.tenant_id(),
        contact,
    ))
    .await;
    Ok(())
}

/// The contact confirmed: tell them (sent directly, never stored: nothing of theirs may stay),
/// then erase them, and keep an audit record of ids only.
pub async fn erase_on_request(
    state: &AppState,
    scope: &TenantScope,
    message: &crate::store::StoredMessage,
    to: String,
    lang: Lang,
) -> Result<(), StoreError> {
    state
        .sender
        .signal(
            scope,
            message.channel_id,
            message.conversation_id,
            to,
            OutboundBody::Text {
                text: erased_notice(lang).into(),
            },
            None,
        )
        .await;
    erase_contact(state, scope, message.contact_id).await?;
    tracing::info!(contact = %message.contact_id, "contact erased at their request");
    state
        .store
        .audit(
            scope,
            crate::store::AuditEntry {
                actor: format!("contact:{}", message.contact_id),
                action: "contact.erase".into(),
                resource_type: "contact".into(),
                resource_id: Some(message.contact_id.to_string()),
                ip: None,
                details: serde_json::json!({ "by": "the contact's request" }),
            },
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crisis_phrases_are_found_in_three_languages_and_ordinary_ones_are_not() {
        assert_eq!(crisis("Sometimes I want to die, honestly"), Some(Lang::En));
        assert_eq!(crisis("I've been thinking about SUICIDE"), Some(Lang::En));
        assert_eq!(crisis("No quiero vivir más"), Some(Lang::Es));
        assert_eq!(crisis("pensé en hacerme daño"), Some(Lang::Es));
        assert_eq!(crisis("Não quero viver assim"), Some(Lang::Pt));
        for fine in [
            "This workout is killing me",
            "How do I cut sugar?",
            "I could die for a coffee",
            "Quiero vivir mejor",
        ] {
            assert_eq!(crisis(fine), None, "{fine}");
        }
    }

    #[test]
    fn an_erasure_needs_the_request_then_the_word_within_ten_minutes() {
        assert_eq!(erase_request("Please delete my data."), Some(Lang::En));
        assert_eq!(erase_request("Borra mis datos por favor"), Some(Lang::Es));
        assert_eq!(
            erase_request(
                "How do I delete my data from my phone's gallery without losing the photos?"
            ),
            None
        );
        let asked = Utc::now();
        let question = confirm_question(Lang::Es);
        assert_eq!(confirms("BORRAR", question, asked, asked), Some(Lang::Es));
        assert_eq!(confirms("borrar!", question, asked, asked), Some(Lang::Es));
        assert_eq!(confirms("delete", question, asked, asked), None);
        assert_eq!(confirms("no", question, asked, asked), None);
        let late = asked + chrono::Duration::minutes(11);
        assert_eq!(confirms("BORRAR", question, asked, late), None);
        assert_eq!(confirms("DELETE", "Anything else?", asked, asked), None);
    }

    #[test]
    fn the_crisis_reply_uses_the_tenants_resources_when_set() {
        let reply = crisis_reply(Lang::En, "Call Samaritans on 116 123.");
        assert!(
            reply.contains("Samaritans") && !reply.contains("988"),
            "{reply}"
        );
        assert!(crisis_reply(Lang::Es, "").contains("112"));
    }
}
