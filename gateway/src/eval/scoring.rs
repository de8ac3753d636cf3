//! Scoring a reply the way SQuAD does: normalized text (lower case, no punctuation, no
//! articles), a gold answer or every listed fact on word boundaries, and whether the reply
//! repeats itself.

/// SQuAD's answer normalization: lower case, no punctuation, no articles, single spaces.
pub fn normalize(text: &str) -> String {
    let lower: String = text
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    lower
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `needle` (normalized) appears in `haystack` (normalized) on word boundaries.
pub fn contains(haystack: &str, needle: &str) -> bool {
    let needle = normalize(needle);
    !needle.is_empty() && format!(" {haystack} ").contains(&format!(" {needle} "))
}

/// Whether `reply` holds one of the `golds` or, when `facts` are listed, every fact (`a|b`:
/// either wording counts).
pub fn holds<'a>(reply: &str, mut golds: impl Iterator<Item = &'a str>, facts: &[String]) -> bool {
    let reply = normalize(reply);
    if facts.is_empty() {
        golds.any(|g| contains(&reply, g))
    } else {
        facts
            .iter()
            .all(|f| f.split('|').any(|alt| contains(&reply, alt)))
    }
}

/// Whether a finished reply repeats a sentence or a run of a fragment.
pub fn repeats(reply: &str) -> bool {
    let mut guard = coach_brain::repetition::LoopGuard::new();
    // Ends the last sentence, so it is compared too.
    guard.push(reply) || guard.push(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_is_squads() {
        assert_eq!(normalize("The  Normans, in 1066!"), "normans in 1066");
        assert!(contains(&normalize("It was the Normans."), "normans"));
        assert!(!contains(&normalize("Normandy"), "norman"));
    }
}
