//! Repetition control for generated text: a small model can fall into a loop ("wasm:wasm:..."),
//! or say the same sentence again and again until its token budget ends. [`LoopGuard`] watches a
//! reply as it is generated and says when to stop; [`clean`] removes what a stopped loop left in
//! the finished text (repeated sentences, runs of a repeated fragment).

use std::collections::HashSet;

/// A fragment repeated this many times in a row is a loop.
const RUN: usize = 3;
/// The longest fragment (in characters) whose runs are looked for.
const MAX_UNIT: usize = 48;
/// Sentences shorter than this (normalized) may repeat ("Yes." twice is fine).
const MIN_SENTENCE: usize = 12;

/// Watches generated text for a loop.
#[derive(Debug, Default)]
pub struct LoopGuard {
    text: String,
    sentence_start: usize,
    seen: HashSet<String>,
}

impl LoopGuard {
    /// A guard for a new reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next piece of text; `true` when the reply has started to repeat itself and
    /// generation should stop.
    pub fn push(&mut self, piece: &str) -> bool {
        self.text.push_str(piece);
        if ends_in_run(&self.text) {
            return true;
        }
        // Each sentence completed by this piece must be new.
        let mut repeated = false;
        while let Some(end) = self.text[self.sentence_start..]
            .find(is_sentence_end)
            .map(|i| self.sentence_start + i)
        {
            let sentence = normalize(&self.text[self.sentence_start..end]);
            self.sentence_start = end + self.text[end..].chars().next().map_or(1, char::len_utf8);
            if sentence.chars().count() >= MIN_SENTENCE && !self.seen.insert(sentence) {
                repeated = true;
            }
        }
        repeated
    }
}

fn is_sentence_end(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '\n' | '。')
}

/// Lower case, letters and digits only, single spaces: how sentences are compared.
fn normalize(sentence: &str) -> String {
    let mut out = String::with_capacity(sentence.len());
    for word in sentence
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Whether `text` ends with some fragment repeated `RUN` times in a row, the fragment holding
/// at least two characters that are not spaces (so "...", "---" or a long number are no loop).
fn ends_in_run(text: &str) -> bool {
    let chars: Vec<char> = text.chars().rev().take(MAX_UNIT * RUN).collect();
    (1..=MAX_UNIT).any(|unit| {
        if chars.len() < unit * RUN {
            return false;
        }
        let first = &chars[..unit];
        let distinct = {
            let mut c: Vec<char> = first
                .iter()
                .copied()
                .filter(|c| !c.is_whitespace())
                .collect();
            c.sort_unstable();
            c.dedup();
            c.len()
        };
        distinct >= 2
            && first.iter().filter(|c| c.is_alphabetic()).count() >= 2
            && (1..RUN).all(|k| chars[k * unit..(k + 1) * unit] == *first)
    })
}

/// The finished reply without what a loop left behind: sentences said before are dropped, and
/// a fragment repeated `RUN` or more times in a row is kept once.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut seen = HashSet::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest
            .char_indices()
            .find(|&(_, c)| is_sentence_end(c))
            .map_or(rest.len(), |(i, c)| i + c.len_utf8());
        let (sentence, after) = rest.split_at(end);
        rest = after;
        let key = normalize(sentence);
        if key.chars().count() >= MIN_SENTENCE && !seen.insert(key) {
            continue;
        }
        out.push_str(&collapse_runs(sentence));
    }
    out.trim_end().to_owned()
}

/// Keeps one copy of any fragment repeated `RUN` or more times in a row.
fn collapse_runs(sentence: &str) -> String {
    let mut chars: Vec<char> = sentence.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let mut collapsed = false;
        for unit in 1..=MAX_UNIT.min((chars.len() - i) / RUN) {
            let first = &chars[i..i + unit];
            if first.iter().filter(|c| c.is_alphabetic()).count() < 2 {
                continue;
            }
            let mut reps = 1;
            while i + (reps + 1) * unit <= chars.len()
                && chars[i + reps * unit..i + (reps + 1) * unit] == *first
            {
                reps += 1;
            }
            if reps >= RUN {
                chars.drain(i + unit..i + reps * unit);
                collapsed = true;
                break;
            }
        }
        if !collapsed {
            i += 1;
        }
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stops_at(pieces: &[&str]) -> Option<usize> {
        let mut guard = LoopGuard::new();
        pieces.iter().position(|p| guard.push(p))
    }

    #[test]
    fn a_token_loop_stops_generation() {
        let pieces = [
            "Use the ", "wasm", ":", "wasm", ":", "wasm", ":", "wasm", ":", "wasm",
        ];
        let at = stops_at(&pieces).expect("a loop");
        assert!(at <= 7, "stopped at {at}");
    }

    #[test]
    fn a_repeated_sentence_stops_generation() {
        let pieces = [
            "A webhook delivered twice is stored once. ",
            "The provider gets 200. ",
            "A webhook delivered twice is stored once.",
        ];
        assert_eq!(stops_at(&pieces), Some(2));
    }

    #[test]
    fn ordinary_answers_run_to_the_end() {
        let answer = [
            "The gateway uses SQLite by default. ",
            "Set database.url to postgres://... for PostgreSQL. ",
            "Versions 1.2.3, 1.2.4 and 1.2.5 work... ",
            "Yes. Yes. ",
            "Phone: 1111 1111 1111.",
            "\n- step one\n- step two\n- step three",
        ];
        assert_eq!(stops_at(&answer), None);
    }

    #[test]
    fn clean_drops_repeated_sentences_and_collapses_runs() {
        let looped = "Run make run. It builds the gateway. It builds the gateway. It builds the gateway. wasm:wasm:wasm:wasm:";
        assert_eq!(clean(looped), "Run make run. It builds the gateway. wasm:");
        let fine = "Use SQLite. Then PostgreSQL.";
        assert_eq!(clean(fine), fine);
    }
}
