//! The coachee's language: detected from their messages (whatlang, among the languages the
//! coach is expected to meet), overridable per contact (`PATCH /v1/contacts/{id}`), else the
//! persona's. Every fixed text the coach sends (the decline, the handoff and quota notices, the
//! sources line, the AI notice, the memory's acknowledgement, opt-out and opt-in confirmations,
//! progress acknowledgements and summaries, the answers to voice notes it could not listen to)
//! comes from the tenant's per-language strings (`strings` in the tenant profile), with English,
//! Spanish and Portuguese built in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The languages detection chooses among, with their BCP 47 tags and English names (the prompt
/// names the language: small models follow "Spanish" better than "es").
const KNOWN: &[(whatlang::Lang, &str, &str)] = &[
    (whatlang::Lang::Eng, "en", "English"),
    (whatlang::Lang::Spa, "es", "Spanish"),
    (whatlang::Lang::Por, "pt", "Portuguese"),
    (whatlang::Lang::Fra, "fr", "French"),
    (whatlang::Lang::Deu, "de", "German"),
    (whatlang::Lang::Ita, "it", "Italian"),
    (whatlang::Lang::Nld, "nl", "Dutch"),
];

/// Fewer letters than this say too little to tell a language ("ok", "thanks!").
const MIN_LETTERS: usize = 12;

/// whatlang's confidence under which a detection is ignored. Its own "reliable" (0.9) rejects
/// most chat messages; on short coaching questions in seven languages the right answers scored
/// 0.39 to 1.0 and the wrong ones under 0.09 ("Remember that I'm vegetarian." read as German).
const MIN_CONFIDENCE: f64 = 0.25;

/// The language of a contact's message (a BCP 47 tag), when it can be told reliably.
pub fn detect(text: &str) -> Option<&'static str> {
    if text.chars().filter(|c| c.is_alphabetic()).count() < MIN_LETTERS {
        return None;
    }
    let allow = KNOWN.iter().map(|(lang, _, _)| *lang).collect();
    let info = whatlang::Detector::with_allowlist(allow).detect(text)?;
    if info.confidence() < MIN_CONFIDENCE {
        return None;
    }
    KNOWN
        .iter()
        .find(|(lang, _, _)| *lang == info.lang())
        .map(|(_, tag, _)| *tag)
}

/// `tag` as one of the languages detection knows (`es` for `es` or `es-MX`), if it is one: how a
/// language named elsewhere (the one Whisper heard in a voice note) becomes a contact's.
pub fn known(tag: &str) -> Option<&'static str> {
    let primary = primary(tag);
    KNOWN
        .iter()
        .find(|(_, t, _)| *t == primary)
        .map(|(_, t, _)| *t)
}

/// The English name of a language tag's language (the tag itself when unknown).
pub fn name(tag: &str) -> String {
    let primary = primary(tag);
    KNOWN
        .iter()
        .find(|(_, t, _)| *t == primary)
        .map_or_else(|| tag.to_string(), |(_, _, name)| (*name).to_string())
}

/// The primary subtag, lowercase (`pt` of `pt-BR`).
pub(crate) fn primary(tag: &str) -> String {
    tag.split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// A fixed text the coach sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Text {
    /// The knowledge does not hold the answer; a person will.
    Decline,
    /// A person was asked for and will reply.
    Handoff,
    /// The daily answer quota is spent.
    Quota,
    /// Opens the list of an answer's sources ("Sources").
    Sources,
    /// The first reply's notice that the coach is an AI (`{coach}`: its name).
    AiNotice,
    /// "Remember ..." was kept.
    Remembered,
    /// An opt-out by keyword (`{keyword}`: the opt-in keyword).
    OptOut,
    /// An opt-in by keyword.
    OptIn,
    /// A progress answer that counts was recorded (`{streak}`: days in a row).
    ProgressNoted,
    /// A progress answer that does not count (a "no") was recorded.
    ProgressMissed,
    /// Heads the progress summary.
    ProgressTitle,
    /// One line of the summary (`{name}`, `{streak}`, `{best}`, `{total}`, `{last}`).
    ProgressLine,
    /// The summary when nothing was recorded.
    ProgressNone,
    /// A person was asked for outside business hours (`{back}`: when the team is back).
    Away,
    /// The rating question a widget conversation gets when the team resolves it.
    Csat,
    /// A voice note could not be listened to (no speech model, unreadable, no speech heard).
    VoiceUnheard,
    /// A voice note is longer than the coach listens to (`{max}`: the limit, in seconds).
    VoiceTooLong,
}

/// The built-in text of `key` in English, Spanish or Portuguese (`None` for other languages).
fn builtin(lang: &str, key: Text) -> Option<&'static str> {
    let (en, es, pt) = match key {
        Text::Decline => (
            "I don't know that from what I have. I'll ask someone from the team to answer you.",
            "No lo sé con lo que tengo. Le pediré a una persona del equipo que te responda.",
            "Não sei com o que tenho. Vou pedir a alguém da equipe que te responda.",
        ),
        Text::Handoff => (
            "I've let the team know: a person will reply here soon.",
            "He avisado al equipo: una persona te responderá aquí pronto.",
            "Avisei a equipe: uma pessoa vai responder aqui em breve.",
        ),
        Text::Quota => (
            "Thanks for your message. I can't answer more today: someone from the team will reply here.",
            "Gracias por tu mensaje. Hoy ya no puedo responder más: una persona del equipo te contestará aquí.",
            "Obrigado pela mensagem. Hoje não posso responder mais: alguém da equipe vai responder aqui.",
        ),
        Text::Sources => ("Sources", "Fuentes", "Fontes"),
        Text::AiNotice => (
            "({coach} is an AI. Write \"human\" any time to reach a person from the team.)",
            "({coach} es una IA. Escribe \"humano\" cuando quieras hablar con una persona del equipo.)",
            "({coach} é uma IA. Escreva \"humano\" a qualquer momento para falar com uma pessoa da equipe.)",
        ),
        Text::Remembered => (
            "Noted, I'll remember that.",
            "Anotado, lo recordaré.",
            "Anotado, vou lembrar disso.",
        ),
        Text::OptOut => (
            "Done: you will get no more check-ins. Reply {keyword} to get them again.",
            "Listo: no recibirás más mensajes del programa. Escribe {keyword} para volver a recibirlos.",
            "Pronto: você não vai receber mais mensagens do programa. Escreva {keyword} para voltar a recebê-las.",
        ),
        Text::OptIn => (
            "Welcome back: check-ins are on again.",
            "¡Bienvenido de nuevo! Vuelves a recibir los mensajes del programa.",
            "Bem-vindo de volta! Você volta a receber as mensagens do programa.",
        ),
        Text::ProgressNoted => (
            "Noted ✓ Days in a row: {streak}.",
            "Anotado ✓ Días seguidos: {streak}.",
            "Anotado ✓ Dias seguidos: {streak}.",
        ),
        Text::ProgressMissed => (
            "Noted. Tomorrow is a new day.",
            "Anotado. Mañana es un nuevo día.",
            "Anotado. Amanhã é um novo dia.",
        ),
        Text::ProgressTitle => ("Your progress:", "Tu progreso:", "Seu progresso:"),
        Text::ProgressLine => (
            "{name}: {streak} days in a row (best {best}), {total} in all; last answer {last}.",
            "{name}: {streak} días seguidos (mejor racha {best}), {total} en total; última respuesta {last}.",
            "{name}: {streak} dias seguidos (melhor sequência {best}), {total} no total; última resposta {last}.",
        ),
        Text::Away => (
            "I've let the team know. They're away right now and will reply here when they're back: {back}.",
            "He avisado al equipo. Ahora no está disponible y te responderá aquí cuando vuelva: {back}.",
            "Avisei a equipe. Ela está fora agora e vai responder aqui quando voltar: {back}.",
        ),
        Text::Csat => (
            "How would you rate this conversation?",
            "¿Cómo valorarías esta conversación?",
            "Como você avalia esta conversa?",
        ),
        Text::VoiceUnheard => (
            "Sorry, I couldn't listen to your voice note. Could you write your message instead?",
            "Lo siento, no he podido escuchar tu nota de voz. ¿Puedes escribir tu mensaje?",
            "Desculpe, não consegui ouvir sua mensagem de voz. Pode escrever sua mensagem?",
        ),
        Text::VoiceTooLong => (
            "Your voice note is longer than I can listen to ({max} seconds). Could you write it, or send a shorter one?",
            "Tu nota de voz es más larga de lo que puedo escuchar ({max} segundos). ¿Puedes escribirla o enviar una más corta?",
            "Sua mensagem de voz é mais longa do que consigo ouvir ({max} segundos). Pode escrevê-la ou enviar uma mais curta?",
        ),
        Text::ProgressNone => (
            "No progress recorded yet: answer your program's check-ins and it will show here.",
            "Aún no hay progreso registrado: responde a los mensajes de tu programa y aparecerá aquí.",
            "Ainda não há progresso registrado: responda às mensagens do seu programa e ele aparecerá aqui.",
        ),
    };
    match primary(lang).as_str() {
        "en" => Some(en),
        "es" => Some(es),
        "pt" => Some(pt),
        _ => None,
    }
}

/// A tenant's own fixed texts: language tag -> text -> what to send.
pub type Strings = BTreeMap<String, BTreeMap<Text, String>>;

/// The text of `key` in `lang`: the tenant's own (for the tag, then its primary subtag), else
/// the built-in one, else English (the tenant's, then built in).
pub fn text(strings: &Strings, lang: &str, key: Text) -> String {
    let own = |tag: &str| {
        strings
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(tag))
            .and_then(|(_, texts)| texts.get(&key))
            .filter(|t| !t.trim().is_empty())
            .cloned()
    };
    own(lang)
        .or_else(|| own(&primary(lang)))
        .or_else(|| builtin(lang, key).map(str::to_string))
        .or_else(|| own("en"))
        .unwrap_or_else(|| builtin("en", key).unwrap_or_default().to_string())
}

/// The notice that the coach is an AI, naming it (`{coach}` in the text).
pub fn ai_notice(strings: &Strings, lang: &str, coach: &str) -> String {
    let coach = match coach.trim() {
        "" if primary(lang) == "en" || builtin(lang, Text::AiNotice).is_none() => "This coach",
        "" => "Este coach",
        name => name,
    };
    text(strings, lang, Text::AiNotice).replace("{coach}", coach)
}

/// Whether `tag` has the shape of a BCP 47 language tag (`en`, `pt-BR`).
pub fn valid_tag(tag: &str) -> bool {
    tag.len() <= 35
        && tag.split('-').all(|part| {
            (1..=8).contains(&part.len()) && part.chars().all(|c| c.is_ascii_alphanumeric())
        })
}

/// What is wrong with a tenant's texts: a tag that is none, or a text empty or over 1,000
/// characters.
pub fn validate(strings: &Strings) -> Result<(), String> {
    for (tag, texts) in strings {
        if !valid_tag(tag) {
            return Err(format!(
                "strings: {tag:?} is not a language tag such as en or pt-BR"
            ));
        }
        for (key, text) in texts {
            let n = text.trim().chars().count();
            if n == 0 || n > 1000 {
                return Err(format!("strings.{tag}.{key:?}: 1 to 1000 characters"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_language_named_elsewhere_is_known_by_its_primary_tag() {
        assert_eq!(known("es"), Some("es"));
        assert_eq!(known("pt-BR"), Some("pt"));
        assert_eq!(known("ja"), None);
    }

    #[test]
    fn the_language_of_a_message_is_told_when_it_can_be() {
        assert_eq!(
            detect("How long before bed should I stop drinking coffee?"),
            Some("en")
        );
        assert_eq!(
            detect("¿Cuántas horas antes de dormir debo dejar el café?"),
            Some("es")
        );
        assert_eq!(
            detect("Quantas horas antes de dormir devo parar de tomar café?"),
            Some("pt")
        );
        assert_eq!(
            detect("Combien d'heures avant de dormir dois-je arrêter le café ?"),
            Some("fr")
        );
        // Too little to tell, or too unsure.
        assert_eq!(detect("ok gracias"), None);
        assert_eq!(detect("Remember that I'm vegetarian."), None);
        assert_eq!(detect("👍👍"), None);
        assert_eq!(name("pt-BR"), "Portuguese");
        assert_eq!(name("sw"), "sw");
    }

    #[test]
    fn the_tenants_text_wins_then_the_built_in_one_then_english() {
        let mut strings = Strings::new();
        strings
            .entry("pt".into())
            .or_default()
            .insert(Text::Decline, "Ainda não sei.".into());
        strings
            .entry("en".into())
            .or_default()
            .insert(Text::Sources, "Read more".into());
        assert_eq!(text(&strings, "pt-BR", Text::Decline), "Ainda não sei.");
        assert!(text(&strings, "es", Text::Decline).starts_with("No lo sé"));
        assert_eq!(text(&strings, "pt", Text::Sources), "Fontes");
        // A language without built-in texts: the tenant's English, then the built-in English.
        assert_eq!(text(&strings, "de", Text::Sources), "Read more");
        assert!(text(&strings, "de", Text::Decline).starts_with("I don't know"));
        assert!(text(&Strings::new(), "", Text::Handoff).starts_with("I've let the team know"));
        assert_eq!(
            ai_notice(&Strings::new(), "es", ""),
            "(Este coach es una IA. Escribe \"humano\" cuando quieras hablar con una persona del equipo.)"
        );
        assert!(ai_notice(&Strings::new(), "en", "Maya").starts_with("(Maya is an AI."));
        assert!(validate(&strings).is_ok());
        strings.entry("not a tag".into()).or_default();
        assert!(validate(&strings).is_err());
    }
}
