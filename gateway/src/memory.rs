//! What the coach remembers of a contact (see [`crate::store::memory`]): goals and facts taken
//! from the contact's own words, and the team's notes. Two kinds of sentences are remembered,
//! in English, Spanish and Portuguese: "remember (that) ..." (a command, acknowledged without
//! asking the model) and a stated goal ("my goal is ...", "mi meta es ...", "meu objetivo é
//! ..."). Nothing is inferred by a model: a 0.5B model invents, and what the coach is told about
//! a person must be what they said. The memory goes into the prompt within a token budget, the
//! team's notes first, then goals, then facts, newest first within each.

use chrono::{DateTime, Utc};
use coach_connector_api::ContactId;

use crate::safety::Lang;
use crate::store::StoreError;
use crate::store::memory::{MemoryItem, MemoryKind, MemorySource};
use crate::tenancy::TenantScope;

/// Tokens the memory may take in a prompt.
pub const PROMPT_TOKENS: usize = 120;

/// The longest remembered text in characters (longer statements are cut at a word).
pub const MAX_TEXT: usize = 300;

/// "Remember (that) ...": the contact asks the coach to keep something. Folded (lowercase, no
/// accents); matched at the start of the message, after an optional "please".
const COMMANDS: &[(Lang, &[&str])] = &[
    (
        Lang::En,
        &[
            "remember that ",
            "remember: ",
            "remember ",
            "don't forget that ",
            "dont forget that ",
            "keep in mind that ",
            "note that ",
        ],
    ),
    (
        Lang::Es,
        &[
            "recuerda que ",
            "recuerda: ",
            "acuerdate de que ",
            "acuerdate que ",
            "no olvides que ",
            "ten en cuenta que ",
        ],
    ),
    (
        Lang::Pt,
        &[
            "lembre-se de que ",
            "lembre-se que ",
            "lembre que ",
            "lembra que ",
            "nao esqueca que ",
        ],
    ),
];

/// Words a command may open with.
const PLEASE: &[&str] = &["please ", "por favor ", "coach, ", "ok, ", "and "];

/// A stated goal: the words after one of these, anywhere in a sentence that is not a question.
const GOALS: &[&str] = &[
    "my goal is to ",
    "my goal is ",
    "my goal: ",
    "my aim is to ",
    "my target is to ",
    "my target is ",
    "i'm training for ",
    "i am training for ",
    "i'm working towards ",
    "i am working towards ",
    "mi meta es ",
    "mi objetivo es ",
    "mi meta: ",
    "estoy entrenando para ",
    "meu objetivo e ",
    "minha meta e ",
    "estou treinando para ",
];

/// What a message gives the memory.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// "Remember ...": remember it and acknowledge, without the model.
    Command(Lang, String),
    /// A goal stated in passing: remember it, then answer as usual.
    Goal(String),
}

/// Lowercase with accents folded, one character for one (so positions match the original).
fn fold_chars(text: &str) -> Vec<char> {
    text.chars()
        .map(|c| {
            let mut lower = c.to_lowercase();
            // A character whose lowercase is longer (rare) keeps its place as itself.
            let c = match (lower.next(), lower.next()) {
                (Some(l), None) => l,
                _ => c,
            };
            crate::safety::fold_char(c)
        })
        .collect()
}

/// The statement after a matched opening: trimmed, without closing punctuation, cut at a word
/// within [`MAX_TEXT`]; `None` when too short to mean anything.
fn statement(original: &[char]) -> Option<String> {
    let text: String = original.iter().collect();
    let text = text
        .trim()
        .trim_end_matches(['.', '!', ',', ';', ' '])
        .trim();
    if text.chars().filter(|c| c.is_alphanumeric()).count() < 3 {
        return None;
    }
    if text.chars().count() <= MAX_TEXT {
        return Some(text.to_string());
    }
    let cut: String = text.chars().take(MAX_TEXT).collect();
    let end = cut.rfind(' ').unwrap_or(cut.len());
    Some(cut[..end].to_string())
}

/// What `text` (a contact's message) gives the memory, if anything.
pub fn find(text: &str) -> Option<Found> {
    let original: Vec<char> = text.trim().chars().collect();
    let folded = fold_chars(&original.iter().collect::<String>());
    let folded_text: String = folded.iter().collect();
    // A command: at the start, after an optional "please", not asked as a question.
    let asked = folded_text.ends_with('?');
    let mut start = 0;
    for please in PLEASE {
        if folded_text.starts_with(please) {
            start = please.chars().count();
            break;
        }
    }
    let rest: String = folded[start..].iter().collect();
    for (lang, openings) in COMMANDS {
        for opening in *openings {
            if !asked && rest.starts_with(opening) {
                let from = start + opening.chars().count();
                // One word ("remember that") says nothing to keep.
                return statement(&original[from..])
                    .filter(|s| s.split_whitespace().count() > 1)
                    .map(|s| Found::Command(*lang, s));
            }
        }
    }
    // A goal: in a sentence that is not a question.
    for sentence in sentences(&folded) {
        let words: String = folded[sentence.clone()].iter().collect();
        if words.trim_end().ends_with('?') {
            continue;
        }
        for goal in GOALS {
            if let Some(at) = words.find(goal) {
                // Only at a word's start.
                if at > 0
                    && words[..at]
                        .chars()
                        .last()
                        .is_some_and(char::is_alphanumeric)
                {
                    continue;
                }
                let chars_before = words[..at].chars().count();
                let from = sentence.start + chars_before + goal.chars().count();
                return statement(&original[from..sentence.end]).map(Found::Goal);
            }
        }
    }
    None
}

/// The character ranges of the sentences of `text` (each with its closing mark).
fn sentences(text: &[char]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.iter().enumerate() {
        if matches!(c, '.' | '!' | '?' | '\n') {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < text.len() {
        out.push(start..text.len());
    }
    out
}

/// Remember what a contact's message `text` holds; returns what was found.
pub async fn remember(
    store: &dyn crate::store::Store,
    scope: &TenantScope,
    contact: ContactId,
    message: uuid::Uuid,
    text: &str,
    now: DateTime<Utc>,
) -> Result<Option<Found>, StoreError> {
    let Some(found) = find(text) else {
        return Ok(None);
    };
    let (kind, text) = match &found {
        Found::Command(_, text) => (MemoryKind::Fact, text.clone()),
        Found::Goal(text) => (MemoryKind::Goal, text.clone()),
    };
    let item = MemoryItem {
        id: uuid::Uuid::now_v7(),
        kind,
        text,
        source: MemorySource::Coachee,
        message_id: Some(message),
        created_at: now,
        updated_at: now,
    };
    store.remember(scope, contact, item).await?;
    Ok(Some(found))
}

/// One item as the prompt shows it.
fn line(item: &MemoryItem) -> String {
    match (item.kind, item.source) {
        (MemoryKind::Goal, _) => format!("Goal: {}", item.text),
        (MemoryKind::Note, _) | (_, MemorySource::Team) => format!("Team note: {}", item.text),
        (MemoryKind::Fact, MemorySource::Coachee) => format!("They said: {}", item.text),
    }
}

/// The lines of the memory that fit in `budget` tokens: the team's notes first, then goals,
/// then facts, the newest first within each.
pub fn prompt_lines(
    items: &[MemoryItem],
    budget: usize,
    count: &dyn Fn(&str) -> usize,
) -> Vec<String> {
    let rank = |item: &MemoryItem| match (item.source, item.kind) {
        (MemorySource::Team, _) | (_, MemoryKind::Note) => 0,
        (_, MemoryKind::Goal) => 1,
        (_, MemoryKind::Fact) => 2,
    };
    let mut ordered: Vec<&MemoryItem> = items.iter().collect();
    ordered.sort_by(|a, b| rank(a).cmp(&rank(b)).then(b.updated_at.cmp(&a.updated_at)));
    let mut used = 0;
    let mut lines = Vec::new();
    for item in ordered {
        let line = line(item);
        let tokens = count(&line) + 2;
        if used + tokens > budget {
            continue;
        }
        used += tokens;
        lines.push(line);
    }
    lines
}

/// The memory's lines as a block of the system message.
pub fn prompt_block(lines: &[String]) -> Option<String> {
    if lines.is_empty() {
        return None;
    }
    let mut block = String::from(
        "What you know about this person (their own words or the team's notes; use it, do not \
         repeat it back):",
    );
    for line in lines {
        block.push_str("\n- ");
        block.push_str(line);
    }
    Some(block)
}

/// Whether `question` is about what the memory holds: it shares a word (3 letters or more,
/// beyond pronouns and fillers) with the memory's lines. Such a question is answered from the
/// memory even when the knowledge base has nothing on it.
pub fn asks_about(question: &str, lines: &[String]) -> bool {
    const FILLERS: &str = "you your mine did does again tell know said say about remember \
        recuerda lembra";
    let fillers: std::collections::HashSet<String> = coach_brain::keyword::terms(FILLERS).collect();
    let known: std::collections::HashSet<String> = lines
        .iter()
        .flat_map(|l| coach_brain::keyword::terms(l).collect::<Vec<_>>())
        .collect();
    coach_brain::keyword::terms(question)
        .filter(|t| t.chars().count() >= 3 && !fillers.contains(t))
        .any(|t| known.contains(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn goal(s: &str) -> Option<Found> {
        Some(Found::Goal(s.into()))
    }

    #[test]
    fn commands_are_found_at_the_start() {
        assert_eq!(
            find("Remember that I'm vegetarian."),
            Some(Found::Command(Lang::En, "I'm vegetarian".into()))
        );
        assert_eq!(
            find("please remember: my knee hurts on stairs"),
            Some(Found::Command(Lang::En, "my knee hurts on stairs".into()))
        );
        assert_eq!(
            find("Recuerda que trabajo de noche"),
            Some(Found::Command(Lang::Es, "trabajo de noche".into()))
        );
        assert_eq!(
            find("Lembre-se de que eu não como carne!"),
            Some(Found::Command(Lang::Pt, "eu não como carne".into()))
        );
        // A question, a mention, too little: nothing.
        assert_eq!(find("Remember when we talked about sleep?"), None);
        assert_eq!(find("I can't remember that exercise"), None);
        assert_eq!(find("remember that"), None);
        assert_eq!(find("remember: ok"), None);
    }

    #[test]
    fn goals_are_found_in_any_sentence() {
        assert_eq!(
            find("Hi! My goal is to run a half marathon in May. Any tips?"),
            goal("run a half marathon in May")
        );
        assert_eq!(
            find("ok so I'm training for the Berlin marathon"),
            goal("the Berlin marathon")
        );
        assert_eq!(
            find("Mi meta es dormir ocho horas."),
            goal("dormir ocho horas")
        );
        assert_eq!(find("Meu objetivo é perder 5 kg"), goal("perder 5 kg"));
        // Asked, not stated; inside a word; nothing after it.
        assert_eq!(find("What should my goal is to be?"), None);
        assert_eq!(find("Is my goal is to run realistic?"), None);
        assert_eq!(find("tommy goal is to win"), None);
        assert_eq!(find("my goal is ."), None);
    }

    #[test]
    fn long_statements_are_cut_at_a_word() {
        let long = format!("remember that {}", "word ".repeat(100));
        let Some(Found::Command(_, text)) = find(&long) else {
            panic!("not found");
        };
        assert!(text.chars().count() <= MAX_TEXT);
        assert!(text.ends_with("word"));
    }

    fn item(kind: MemoryKind, source: MemorySource, text: &str, minute: i64) -> MemoryItem {
        let at = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::minutes(minute);
        MemoryItem {
            id: uuid::Uuid::now_v7(),
            kind,
            text: text.into(),
            source,
            message_id: None,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn the_prompt_gets_notes_then_goals_then_facts_within_the_budget() {
        let words = |s: &str| s.split_whitespace().count();
        let items = [
            item(MemoryKind::Fact, MemorySource::Coachee, "I'm vegetarian", 1),
            item(MemoryKind::Goal, MemorySource::Coachee, "run 10 km", 2),
            item(
                MemoryKind::Goal,
                MemorySource::Coachee,
                "run a half marathon",
                3,
            ),
            item(MemoryKind::Note, MemorySource::Team, "prefers mornings", 4),
        ];
        let lines = prompt_lines(&items, 100, &words);
        assert_eq!(
            lines,
            [
                "Team note: prefers mornings",
                "Goal: run a half marathon",
                "Goal: run 10 km",
                "They said: I'm vegetarian",
            ]
        );
        // Within a small budget: what ranks first.
        let lines = prompt_lines(&items, 13, &words);
        assert_eq!(
            lines,
            ["Team note: prefers mornings", "Goal: run a half marathon"]
        );
        let block = prompt_block(&lines).unwrap_or_default();
        assert!(block.ends_with("\n- Team note: prefers mornings\n- Goal: run a half marathon"));
        assert_eq!(prompt_block(&[]), None);
    }

    #[test]
    fn questions_about_the_memory_are_recognised() {
        let lines = ["Goal: run a half marathon in May".to_string()];
        assert!(asks_about("What was my goal again?", &lines));
        assert!(asks_about("how long until my marathon", &lines));
        assert!(!asks_about("what do you know about me?", &lines));
        assert!(!asks_about("How do I sleep better?", &lines));
    }
}
