//! Token-aware chunking. Each section is cut into pieces (sentences; lines, words or characters
//! only when a sentence alone is over budget), the pieces are packed greedily into chunks whose
//! text the embedding model's tokenizer measures at most `max_tokens`, and every chunk after the
//! first starts with trailing pieces of the one before it, up to `overlap_tokens`.
//!
//! Token counts are not additive (merges at the joins, a BOS token per call), so piece counts
//! only estimate a chunk; the chunk text itself is measured before it is accepted, and the
//! search for the largest fitting chunk gallops and bisects to keep tokenizer calls few.
//! Chunks never span sections, so each has one heading and one page; chunk text is an exact
//! slice of the section text.

use crate::extract::Section;

/// The smallest `max_tokens` [`ChunkConfig::validate`] accepts.
pub const MIN_MAX_TOKENS: usize = 16;

/// How big chunks are and how much consecutive chunks share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ChunkConfig {
    /// The most tokens one chunk may have (default 256).
    pub max_tokens: usize,
    /// The most tokens a chunk repeats from the previous one (default 38, about 15%).
    pub overlap_tokens: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            overlap_tokens: 38,
        }
    }
}

/// A chunk configuration that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkConfigError {
    /// `max_tokens` is below [`MIN_MAX_TOKENS`].
    #[error("chunk max_tokens is {0}; it must be at least 16")]
    TooSmall(usize),
    /// `overlap_tokens` is not below half of `max_tokens`.
    #[error(
        "chunk overlap_tokens is {overlap_tokens}; it must be less than half of max_tokens ({max_tokens})"
    )]
    OverlapTooLarge {
        /// The configured overlap.
        overlap_tokens: usize,
        /// The configured maximum.
        max_tokens: usize,
    },
}

impl ChunkConfig {
    /// A validated configuration.
    pub fn new(max_tokens: usize, overlap_tokens: usize) -> Result<Self, ChunkConfigError> {
        let config = Self {
            max_tokens,
            overlap_tokens,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks `max_tokens >= 16` and `overlap_tokens < max_tokens / 2`.
    pub fn validate(&self) -> Result<(), ChunkConfigError> {
        if self.max_tokens < MIN_MAX_TOKENS {
            return Err(ChunkConfigError::TooSmall(self.max_tokens));
        }
        if self.overlap_tokens >= self.max_tokens / 2 {
            return Err(ChunkConfigError::OverlapTooLarge {
                overlap_tokens: self.overlap_tokens,
                max_tokens: self.max_tokens,
            });
        }
        Ok(())
    }
}

/// A passage to embed and retrieve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The text, an exact slice of its section's text.
    pub text: String,
    /// The heading of its section.
    pub heading: Option<String>,
    /// The page of its section (PDF).
    pub page: Option<u32>,
    /// Tokens in `text`, as measured by the tokenizer given to [`chunk`].
    pub tokens: usize,
    /// Position among all chunks of the document, from 0.
    pub ordinal: u32,
}

impl Chunk {
    /// The text indexed for this chunk (embedded and weighted for keywords): the document's
    /// title and the section's heading before the chunk's own text, so a passage that never
    /// names its subject is still found by it. Stored passages keep the bare text.
    pub fn indexed_text(&self, title: &str) -> String {
        let title = title.trim();
        let heading = self
            .heading
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty() && *h != title);
        match (title.is_empty(), heading) {
            (true, None) => self.text.clone(),
            (true, Some(heading)) => format!("{heading}\n\n{}", self.text),
            (false, None) => format!("{title}\n\n{}", self.text),
            (false, Some(heading)) => format!("{title}\n{heading}\n\n{}", self.text),
        }
    }
}

/// Cuts sections into chunks of at most `config.max_tokens` tokens as counted by
/// `count_tokens`. Run [`ChunkConfig::validate`] first; an invalid configuration is still
/// chunked (a `max_tokens` of 0 counts as 1) so this never loops or panics.
pub fn chunk(
    sections: &[Section],
    config: &ChunkConfig,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Vec<Chunk> {
    let max = config.max_tokens.max(1);
    let mut chunks = Vec::new();
    for section in sections {
        let text = section.text.as_str();
        let pieces = Cutter::cut(text, max, count_tokens);
        let packer = Packer {
            text,
            pieces: &pieces,
            max,
            overlap: config.overlap_tokens,
            count: count_tokens,
        };
        for span in packer.spans() {
            let ordinal = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
            chunks.push(Chunk {
                text: text[span.start..span.end].to_string(),
                heading: section.heading.clone(),
                page: section.page,
                tokens: span.tokens,
                ordinal,
            });
        }
    }
    chunks
}

/// A byte range of the section text and its measured token count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Piece {
    start: usize,
    end: usize,
    tokens: usize,
}

/// How finely an over-budget range is cut next.
#[derive(Clone, Copy)]
enum Level {
    Lines,
    Words,
    Chars,
}

struct Cutter<'a> {
    text: &'a str,
    max: usize,
    count: &'a dyn Fn(&str) -> usize,
    pieces: Vec<Piece>,
}

impl<'a> Cutter<'a> {
    /// Sentences of each paragraph, each cut further until it fits `max` on its own.
    fn cut(text: &'a str, max: usize, count: &'a dyn Fn(&str) -> usize) -> Vec<Piece> {
        let mut cutter = Cutter {
            text,
            max,
            count,
            pieces: Vec::new(),
        };
        for (start, end) in paragraphs(text) {
            for (sentence_start, sentence_end) in sentences(text, start, end) {
                cutter.add(sentence_start, sentence_end, Level::Lines);
            }
        }
        cutter.pieces
    }

    fn add(&mut self, start: usize, end: usize, level: Level) {
        let tokens = (self.count)(&self.text[start..end]);
        if tokens <= self.max {
            self.pieces.push(Piece { start, end, tokens });
            return;
        }
        match level {
            Level::Lines => {
                for (line_start, line_end) in lines(self.text, start, end) {
                    self.add(line_start, line_end, Level::Words);
                }
            }
            Level::Words => {
                for (word_start, word_end) in words(self.text, start, end) {
                    self.add(word_start, word_end, Level::Chars);
                }
            }
            Level::Chars => self.add_chars(start, end),
        }
    }

    /// A word longer than the budget (a URL, a hash): the longest prefixes that fit.
    fn add_chars(&mut self, start: usize, end: usize) {
        let mut from = start;
        while from < end {
            let ends: Vec<usize> = self.text[from..end]
                .char_indices()
                .skip(1)
                .map(|(offset, _)| from + offset)
                .chain(std::iter::once(end))
                .collect();
            let mut best: Option<(usize, usize)> = None;
            let (mut low, mut high) = (0, ends.len());
            while low < high {
                let middle = low + (high - low) / 2;
                let tokens = (self.count)(&self.text[from..ends[middle]]);
                if tokens <= self.max {
                    best = Some((middle, tokens));
                    low = middle + 1;
                } else {
                    high = middle;
                }
            }
            // Even one character over budget is taken alone rather than lost.
            let (index, tokens) =
                best.unwrap_or_else(|| (0, (self.count)(&self.text[from..ends[0]])));
            self.pieces.push(Piece {
                start: from,
                end: ends[index],
                tokens,
            });
            from = ends[index];
        }
    }
}

/// One chunk: `start..end` of the section text.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    end: usize,
    tokens: usize,
}

struct Packer<'a> {
    text: &'a str,
    pieces: &'a [Piece],
    max: usize,
    overlap: usize,
    count: &'a dyn Fn(&str) -> usize,
}

impl Packer<'_> {
    fn spans(&self) -> Vec<Span> {
        let mut spans = Vec::new();
        let Some(first_piece) = self.pieces.first() else {
            return spans;
        };
        let (mut first, mut known) = (0, (0, first_piece.tokens));
        loop {
            let (last, tokens) = self.pack(first, known);
            spans.push(Span {
                start: self.pieces[first].start,
                end: self.pieces[last].end,
                tokens,
            });
            if last + 1 >= self.pieces.len() {
                return spans;
            }
            (first, known) = self.next_start(first, last);
        }
    }

    /// Tokens of the text from the start of piece `first` to the end of piece `last`.
    fn measure(&self, first: usize, last: usize) -> usize {
        (self.count)(&self.text[self.pieces[first].start..self.pieces[last].end])
    }

    /// The last piece and token count of the largest chunk starting at piece `first`, given a
    /// `known` last piece already measured to fit.
    fn pack(&self, first: usize, known: (usize, usize)) -> (usize, usize) {
        let n = self.pieces.len();
        let (mut fits, mut fits_tokens) = known;
        // The smallest last piece known not to fit; `n` when none is known.
        let mut too_far = n;

        // Estimate from the pieces' own counts, then check the estimate.
        let mut estimate = first;
        let mut sum = self.pieces[first].tokens;
        while estimate + 1 < n && sum + self.pieces[estimate + 1].tokens <= self.max {
            estimate += 1;
            sum += self.pieces[estimate].tokens;
        }
        if estimate > fits {
            let tokens = self.measure(first, estimate);
            if tokens <= self.max {
                (fits, fits_tokens) = (estimate, tokens);
            } else {
                too_far = estimate;
            }
        }
        // Gallop past an estimate that fit: counts of joined text are often below the sum.
        if too_far == n {
            let mut step = 1;
            while fits + step < n {
                let probe = fits + step;
                let tokens = self.measure(first, probe);
                if tokens > self.max {
                    too_far = probe;
                    break;
                }
                (fits, fits_tokens) = (probe, tokens);
                step *= 2;
            }
        }
        while too_far - fits > 1 {
            let middle = fits + (too_far - fits) / 2;
            let tokens = self.measure(first, middle);
            if tokens <= self.max {
                (fits, fits_tokens) = (middle, tokens);
            } else {
                too_far = middle;
            }
        }
        (fits, fits_tokens)
    }

    /// Where the chunk after `first..=last` starts, with a last piece known to fit: the
    /// trailing pieces of that chunk worth at most `overlap` tokens, as long as they leave room
    /// for the next new piece.
    fn next_start(&self, first: usize, last: usize) -> (usize, (usize, usize)) {
        let next = last + 1;
        let mut start = next;
        let mut sum = 0;
        while start > first + 1 && sum + self.pieces[start - 1].tokens <= self.overlap {
            start -= 1;
            sum += self.pieces[start].tokens;
        }
        while start < next {
            if self.measure(start, last) <= self.overlap {
                let tokens = self.measure(start, next);
                if tokens <= self.max {
                    return (start, (next, tokens));
                }
            }
            start += 1;
        }
        (next, (next, self.pieces[next].tokens))
    }
}

/// Trimmed byte ranges of the paragraphs of `text` (separated by blank lines).
fn paragraphs(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let end = offset + line.len();
        if line.trim().is_empty() {
            out.extend(current.take());
        } else {
            current = Some((current.map_or(offset, |(start, _)| start), end));
        }
        offset = end;
    }
    out.extend(current);
    out.into_iter()
        .filter_map(|(start, end)| trim(text, start, end))
        .collect()
}

/// Trimmed byte ranges of the sentences of `text[start..end]`: a sentence ends at `.`, `!` or
/// `?` (and any closing quotes or brackets) followed by whitespace.
fn sentences(text: &str, start: usize, end: usize) -> Vec<(usize, usize)> {
    let slice = &text[start..end];
    let mut out = Vec::new();
    let mut begin = 0;
    let mut chars = slice.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        if !matches!(c, '.' | '!' | '?') {
            continue;
        }
        let mut stop = index + c.len_utf8();
        while let Some(&(next_index, next)) = chars.peek() {
            if !matches!(
                next,
                '.' | '!' | '?' | '"' | '\'' | ')' | ']' | '»' | '”' | '’'
            ) {
                break;
            }
            stop = next_index + next.len_utf8();
            chars.next();
        }
        if chars.peek().is_some_and(|&(_, next)| next.is_whitespace()) {
            out.push((start + begin, start + stop));
            begin = stop;
        }
    }
    out.push((start + begin, end));
    out.into_iter()
        .filter_map(|(from, to)| trim(text, from, to))
        .collect()
}

/// Trimmed byte ranges of the non-blank lines of `text[start..end]`.
fn lines(text: &str, start: usize, end: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut offset = start;
    for line in text[start..end].split_inclusive('\n') {
        let line_end = offset + line.len();
        out.extend(trim(text, offset, line_end));
        offset = line_end;
    }
    out
}

/// Byte ranges of the whitespace-separated words of `text[start..end]`.
fn words(text: &str, start: usize, end: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut word_start: Option<usize> = None;
    for (offset, c) in text[start..end].char_indices() {
        if c.is_whitespace() {
            if let Some(begin) = word_start.take() {
                out.push((begin, start + offset));
            }
        } else if word_start.is_none() {
            word_start = Some(start + offset);
        }
    }
    out.extend(word_start.map(|begin| (begin, end)));
    out
}

/// `text[start..end]` without surrounding whitespace; `None` when nothing is left.
fn trim(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let slice = &text[start..end];
    let trimmed = slice.trim_start();
    let from = start + (slice.len() - trimmed.len());
    let to = from + trimmed.trim_end().len();
    (to > from).then_some((from, to))
}

#[cfg(test)]
mod tests;
