//! Whether a reply says what its sources say. Each sentence's content words (stemmed, without
//! stopwords, as the keyword index sees them) are looked up in each passage placed in the prompt
//! (and in the question, which a reply may repeat): a sentence's support is the share of its
//! words found in its best passage. Sentences under the floor are dropped; the passages that
//! support what is kept are the reply's citations. A sentence with fewer than
//! [`MIN_TERMS`] content words ("Sure!") is neither judged nor cited.

use std::collections::HashSet;

use crate::keyword;

/// Sentences with fewer content words than this are kept without judging.
pub const MIN_TERMS: usize = 2;

/// A reply checked against its passages.
#[derive(Clone, Debug, PartialEq)]
pub struct Grounded {
    /// The reply without its unsupported sentences (empty when none was supported).
    pub text: String,
    /// Sentences dropped as unsupported.
    pub dropped: usize,
    /// The passages (their indexes) that support a kept sentence, the best supporting first.
    pub used: Vec<usize>,
    /// The best support of any judged sentence (1 when no sentence could be judged): under the
    /// floor, nothing of the reply is left.
    pub best: f32,
}

/// The sentences of `text` (with their ending), as the reply's reader sees them.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        let next = chars.get(i + 1).map(|&(_, n)| n);
        // A full stop ends a sentence only before a space or the end ("3.5", "e.g.x" stay).
        let ends =
            c == '\n' || (matches!(c, '.' | '!' | '?') && next.is_none_or(char::is_whitespace));
        if ends {
            let end = at + c.len_utf8();
            if !text[start..end].trim().is_empty() {
                out.push(&text[start..end]);
            }
            start = end;
        }
    }
    if !text[start..].trim().is_empty() {
        out.push(&text[start..]);
    }
    out
}

/// `reply` checked against `passages` (the texts placed in the prompt) and `question`: every
/// judged sentence whose support is under `floor` is dropped.
pub fn ground(reply: &str, passages: &[&str], question: &str, floor: f32) -> Grounded {
    let indexed: Vec<HashSet<String>> = passages
        .iter()
        .map(|p| keyword::terms(p).collect())
        .collect();
    let asked: HashSet<String> = keyword::terms(question).collect();
    let mut kept = Vec::new();
    let mut dropped = 0;
    let mut best = None::<f32>;
    // (passage, summed support) of the kept sentences.
    let mut credit: Vec<f32> = vec![0.0; passages.len()];
    for sentence in sentences(reply) {
        let words: HashSet<String> = keyword::terms(sentence).collect();
        if words.len() < MIN_TERMS {
            kept.push(sentence);
            continue;
        }
        let mut top = (0.0f32, None);
        for (i, terms) in indexed.iter().enumerate() {
            let found = words
                .iter()
                .filter(|w| terms.contains(*w) || asked.contains(*w))
                .count();
            let share = found as f32 / words.len() as f32;
            if share > top.0 {
                top = (share, Some(i));
            }
        }
        best = Some(best.map_or(top.0, |b| b.max(top.0)));
        if top.0 >= floor {
            kept.push(sentence);
            if let Some(i) = top.1 {
                credit[i] += top.0;
            }
        } else {
            dropped += 1;
        }
    }
    let mut used: Vec<usize> = (0..passages.len()).filter(|&i| credit[i] > 0.0).collect();
    used.sort_by(|&a, &b| credit[b].total_cmp(&credit[a]).then(a.cmp(&b)));
    let text = if dropped == 0 {
        reply.trim().to_owned()
    } else {
        kept.concat().trim().to_owned()
    };
    Grounded {
        text,
        dropped,
        used,
        best: best.unwrap_or(1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSAGES: [&str; 2] = [
        "By default the gateway stores everything in SQLite under data_dir; PostgreSQL is for \
         several processes.",
        "Box breathing: breathe in for four counts, hold for four, breathe out for four.",
    ];

    #[test]
    fn sentences_end_at_stops_before_spaces_and_at_newlines() {
        assert_eq!(
            sentences("It costs 3.5 euros. Really?\n- one\n- two"),
            vec!["It costs 3.5 euros.", " Really?", "\n", "- one\n", "- two"]
                .into_iter()
                .filter(|s| !s.trim().is_empty())
                .collect::<Vec<_>>()
        );
        assert!(sentences("").is_empty());
    }

    #[test]
    fn unsupported_sentences_are_dropped_and_the_supporting_passage_cited() {
        let reply = "The gateway stores data in SQLite by default. It was written by NASA \
                     astronauts on Jupiter. Sure!";
        let g = ground(reply, &PASSAGES, "What database does the gateway use?", 0.6);
        assert_eq!(
            g.text,
            "The gateway stores data in SQLite by default. Sure!"
        );
        assert_eq!(g.dropped, 1);
        assert_eq!(g.used, vec![0]);
        assert!(g.best >= 0.6);
    }

    #[test]
    fn a_wholly_invented_reply_leaves_nothing_and_says_how_little_was_supported() {
        let g = ground(
            "Install the wamid command-line client and run wasm wasm.",
            &PASSAGES,
            "How do I connect WhatsApp?",
            0.5,
        );
        assert_eq!(g.text, "");
        assert_eq!(g.dropped, 1);
        assert!(g.used.is_empty());
        assert!(g.best < 0.5, "{}", g.best);
        // With a floor of zero nothing is dropped.
        let all = ground("Install the wamid client.", &PASSAGES, "", 0.0);
        assert_eq!(all.text, "Install the wamid client.");
    }

    #[test]
    fn a_reply_may_repeat_the_question() {
        let g = ground(
            "To connect WhatsApp, breathe in for four counts.",
            &PASSAGES,
            "How do I connect WhatsApp?",
            0.9,
        );
        assert_eq!(g.dropped, 0);
        assert_eq!(g.used, vec![1]);
    }
}
