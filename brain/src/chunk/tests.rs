#![allow(clippy::unwrap_used)]
use proptest::prelude::*;

use super::*;

fn count_words(text: &str) -> usize {
    text.split_whitespace().count()
}

fn section(text: &str) -> Section {
    Section {
        heading: Some("Heading".to_string()),
        page: Some(3),
        text: text.to_string(),
    }
}

/// Paragraphs of sentences, each sentence a word count and an ending (0 `.`, 1 `!`, 2 `?`,
/// 3 none: it runs on into the next sentence).
type Shape = Vec<Vec<(usize, u8)>>;

/// Renders a section with words unique across the document (`s{section}w{n}`), so overlaps
/// between chunks are found exactly. Returns the text and the word count of every piece the
/// chunker cuts it into (when no sentence is over budget).
fn render(index: usize, shape: &Shape) -> (String, Vec<usize>) {
    let mut n = 0;
    let mut paragraphs = Vec::new();
    let mut pieces = Vec::new();
    for paragraph in shape {
        let mut sentences = Vec::new();
        let mut pending = 0;
        for &(len, ending) in paragraph {
            let mut words: Vec<String> = (0..len)
                .map(|_| {
                    n += 1;
                    format!("s{index}w{n}")
                })
                .collect();
            pending += len;
            if let Some(mark) = ['.', '!', '?'].get(usize::from(ending)) {
                if let Some(last) = words.last_mut() {
                    last.push(*mark);
                }
                pieces.push(pending);
                pending = 0;
            }
            sentences.push(words.join(" "));
        }
        if pending > 0 {
            pieces.push(pending);
        }
        if !sentences.is_empty() {
            paragraphs.push(sentences.join(" "));
        }
    }
    (paragraphs.join("\n\n"), pieces)
}

fn shape() -> impl Strategy<Value = Shape> {
    prop::collection::vec(prop::collection::vec((1usize..30, 0u8..4), 0..6), 0..5)
}

fn configs() -> impl Strategy<Value = ChunkConfig> {
    (16usize..80)
        .prop_flat_map(|max| (Just(max), 0..max / 2))
        .prop_map(|(max_tokens, overlap_tokens)| ChunkConfig {
            max_tokens,
            overlap_tokens,
        })
}

proptest! {
    #[test]
    fn chunks_keep_every_word_in_order_within_budget(
        shapes in prop::collection::vec(shape(), 1..4),
        config in configs()
    ) {
        prop_assert!(config.validate().is_ok());
        let rendered: Vec<(String, Vec<usize>)> =
            shapes.iter().enumerate().map(|(index, shape)| render(index, shape)).collect();
        let sections: Vec<Section> = rendered
            .iter()
            .enumerate()
            .map(|(index, (text, _))| Section {
                heading: Some(format!("H{index}")),
                page: Some(u32::try_from(index).unwrap() + 1),
                text: text.clone(),
            })
            .collect();
        let chunks = chunk(&sections, &config, &count_words);

        // (b) and (d): within budget, never empty, counted right, numbered in order.
        for (position, chunk) in chunks.iter().enumerate() {
            prop_assert_eq!(chunk.ordinal as usize, position);
            prop_assert!(!chunk.text.trim().is_empty());
            prop_assert!(chunk.tokens > 0);
            prop_assert_eq!(chunk.tokens, count_words(&chunk.text));
            prop_assert!(chunk.tokens <= config.max_tokens);
        }

        let mut accounted = 0;
        for (index, (text, pieces)) in rendered.iter().enumerate() {
            let prefix = format!("s{index}w");
            let mine: Vec<&Chunk> = chunks
                .iter()
                .filter(|chunk| chunk.text.split_whitespace().next().is_some_and(|word| word.starts_with(&prefix)))
                .collect();
            accounted += mine.len();
            let small_pieces = config.overlap_tokens > 0
                && pieces.iter().all(|&piece| piece <= config.overlap_tokens);

            let mut rebuilt: Vec<&str> = Vec::new();
            let mut previous: Option<Vec<&str>> = None;
            for chunk in &mine {
                // Chunks never span sections and keep the section's heading and page.
                prop_assert!(chunk.text.split_whitespace().all(|word| word.starts_with(&prefix)));
                prop_assert_eq!(chunk.heading.clone(), Some(format!("H{index}")));
                prop_assert_eq!(chunk.page, Some(u32::try_from(index).unwrap() + 1));

                let current: Vec<&str> = chunk.text.split_whitespace().collect();
                let shared = match &previous {
                    Some(previous) => previous
                        .iter()
                        .position(|word| *word == current[0])
                        .map_or(0, |at| previous.len() - at),
                    None => 0,
                };
                if let Some(previous) = &previous {
                    // (c) the overlap is a suffix of the previous chunk, within budget, and
                    // present whenever the pieces are small enough to allow it.
                    prop_assert!(shared < current.len());
                    prop_assert_eq!(&previous[previous.len() - shared..], &current[..shared]);
                    prop_assert!(shared <= config.overlap_tokens);
                    if small_pieces {
                        prop_assert!(shared > 0, "no overlap between {:?} and {:?}", previous, current);
                    }
                }
                rebuilt.extend_from_slice(&current[shared..]);
                previous = Some(current);
            }
            // (a) no text lost: chunks minus overlaps give back every word in order.
            let expected: Vec<&str> = text.split_whitespace().collect();
            prop_assert_eq!(rebuilt, expected);
        }
        prop_assert_eq!(accounted, chunks.len());
    }

    #[test]
    fn non_additive_tokenizers_never_exceed_the_budget(
        text in "[a-zA-Z .!?\n]{0,1500}",
        max_tokens in 16usize..64
    ) {
        // A BOS token per call and about three bytes per token, like a real tokenizer.
        let count = |text: &str| text.len() / 3 + 1;
        let config = ChunkConfig { max_tokens, overlap_tokens: max_tokens / 4 };
        let chunks = chunk(&[section(&text)], &config, &count);
        for chunk in &chunks {
            prop_assert!(!chunk.text.trim().is_empty());
            prop_assert_eq!(chunk.tokens, count(&chunk.text));
            prop_assert!(chunk.tokens <= max_tokens);
        }
        prop_assert_eq!(chunks.is_empty(), text.trim().is_empty());
        let letters = |text: &str| text.chars().filter(|c| !c.is_whitespace()).count();
        let covered: usize = chunks.iter().map(|chunk| letters(&chunk.text)).sum();
        prop_assert!(covered >= letters(&text));
        if let (Some(first), Some(last)) = (chunks.first(), chunks.last()) {
            prop_assert!(text.trim_start().starts_with(first.text.as_str()));
            prop_assert!(text.trim_end().ends_with(last.text.as_str()));
        }
    }
}

#[test]
fn defaults_are_valid_and_bad_configs_are_refused() {
    assert_eq!(
        ChunkConfig::default(),
        ChunkConfig {
            max_tokens: 256,
            overlap_tokens: 38
        }
    );
    assert!(ChunkConfig::default().validate().is_ok());
    assert_eq!(ChunkConfig::new(8, 0), Err(ChunkConfigError::TooSmall(8)));
    assert_eq!(
        ChunkConfig::new(100, 50),
        Err(ChunkConfigError::OverlapTooLarge {
            overlap_tokens: 50,
            max_tokens: 100
        })
    );
    assert!(ChunkConfig::new(100, 49).is_ok());
}

#[test]
fn empty_sections_give_no_chunks() {
    let config = ChunkConfig::default();
    assert!(chunk(&[], &config, &count_words).is_empty());
    assert!(chunk(&[section(" \n\n\t ")], &config, &count_words).is_empty());
}

#[test]
fn a_short_section_is_one_chunk_with_its_heading_and_page() {
    let chunks = chunk(
        &[section("Sleep well.\n\nWake early!")],
        &ChunkConfig::default(),
        &count_words,
    );
    assert_eq!(
        chunks,
        vec![Chunk {
            text: "Sleep well.\n\nWake early!".to_string(),
            heading: Some("Heading".to_string()),
            page: Some(3),
            tokens: 4,
            ordinal: 0,
        }]
    );
}

#[test]
fn the_next_chunk_repeats_trailing_sentences() {
    let text = (1..=12)
        .map(|n| format!("Sentence number {n} here."))
        .collect::<Vec<_>>()
        .join(" ");
    let config = ChunkConfig::new(16, 7).unwrap();
    let chunks = chunk(&[section(&text)], &config, &count_words);
    assert_eq!(
        chunks[0].text,
        "Sentence number 1 here. Sentence number 2 here. Sentence number 3 here. Sentence number 4 here."
    );
    assert_eq!(
        chunks[1].text,
        "Sentence number 4 here. Sentence number 5 here. Sentence number 6 here. Sentence number 7 here."
    );
    assert!(
        chunks
            .last()
            .unwrap()
            .text
            .ends_with("Sentence number 12 here.")
    );
}

#[test]
fn an_overlong_sentence_is_cut_by_words_and_a_huge_word_by_characters() {
    let long = (0..100)
        .map(|n| format!("w{n}"))
        .collect::<Vec<_>>()
        .join(" ");
    let chunks = chunk(
        &[section(&long)],
        &ChunkConfig::new(16, 0).unwrap(),
        &count_words,
    );
    assert_eq!(chunks.len(), 7);
    assert!(chunks.iter().all(|chunk| chunk.tokens <= 16));
    let words: Vec<&str> = chunks
        .iter()
        .flat_map(|chunk| chunk.text.split_whitespace())
        .collect();
    assert_eq!(words.join(" "), long);

    let by_bytes = |text: &str| text.len().div_ceil(4);
    let huge = "x".repeat(200);
    let chunks = chunk(
        &[section(&huge)],
        &ChunkConfig::new(16, 0).unwrap(),
        &by_bytes,
    );
    assert!(chunks.iter().all(|chunk| by_bytes(&chunk.text) <= 16));
    assert_eq!(
        chunks
            .iter()
            .map(|chunk| chunk.text.as_str())
            .collect::<String>(),
        huge
    );
}

#[test]
fn splitting_helpers_cut_where_expected() {
    let text = "  One. Two!  \"Three?\" e.g.x\n\n\n  Four  ";
    let paragraphs = paragraphs(text);
    let slices: Vec<&str> = paragraphs
        .iter()
        .map(|&(start, end)| &text[start..end])
        .collect();
    assert_eq!(slices, vec!["One. Two!  \"Three?\" e.g.x", "Four"]);
    let (start, end) = paragraphs[0];
    let sentences: Vec<&str> = sentences(text, start, end)
        .into_iter()
        .map(|(from, to)| &text[from..to])
        .collect();
    assert_eq!(sentences, vec!["One.", "Two!", "\"Three?\"", "e.g.x"]);
}

#[test]
fn indexed_text_names_the_document_and_section_once() {
    let chunk = |heading: Option<&str>| Chunk {
        text: "Dim the lights an hour before.".into(),
        heading: heading.map(str::to_string),
        page: None,
        tokens: 7,
        ordinal: 2,
    };
    assert_eq!(
        chunk(Some("Evenings")).indexed_text("Sleep guide"),
        "Sleep guide\nEvenings\n\nDim the lights an hour before."
    );
    assert_eq!(
        chunk(Some("Sleep guide")).indexed_text(" Sleep guide "),
        "Sleep guide\n\nDim the lights an hour before."
    );
    assert_eq!(
        chunk(Some(" ")).indexed_text(""),
        "Dim the lights an hour before."
    );
    assert_eq!(
        chunk(Some("Evenings")).indexed_text(""),
        "Evenings\n\nDim the lights an hour before."
    );
}
