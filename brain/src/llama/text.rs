//! From token bytes to streamed text: UTF-8 characters split across tokens are joined, and text
//! that may be the start of a stop string is held back until it is decided.

/// Joins token bytes into text without ever splitting a multi-byte character.
#[derive(Debug, Default)]
pub(crate) struct Utf8Decoder {
    pending: Vec<u8>,
}

impl Utf8Decoder {
    /// Adds a token's bytes; returns the complete characters so far. Invalid bytes become
    /// U+FFFD; an incomplete character at the end waits for the next token.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            let (valid, invalid) = match std::str::from_utf8(&self.pending) {
                Ok(_) => (self.pending.len(), None),
                Err(error) => (error.valid_up_to(), error.error_len()),
            };
            out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
            match invalid {
                Some(len) => {
                    out.push(char::REPLACEMENT_CHARACTER);
                    self.pending.drain(..valid + len);
                }
                None => {
                    // Everything was valid, or the tail is a character still incomplete.
                    self.pending.drain(..valid);
                    return out;
                }
            }
        }
    }

    /// Ends the stream: an incomplete character left over becomes U+FFFD.
    pub(crate) fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

/// Withholds text that could begin a stop string, and cuts the output where one appears.
#[derive(Debug)]
pub(crate) struct StopFilter {
    stops: Vec<String>,
    held: String,
}

impl StopFilter {
    /// A filter for these stop strings (empty ones are ignored).
    pub(crate) fn new(stops: &[String]) -> Self {
        Self {
            stops: stops
                .iter()
                .filter(|stop| !stop.is_empty())
                .cloned()
                .collect(),
            held: String::new(),
        }
    }

    /// Adds generated text. Returns the text that may be shown now and whether a stop string
    /// was reached (the stop string and anything after it are never shown).
    pub(crate) fn push(&mut self, text: &str) -> (String, bool) {
        self.held.push_str(text);
        let first_stop = self
            .stops
            .iter()
            .filter_map(|stop| self.held.find(stop.as_str()))
            .min();
        if let Some(at) = first_stop {
            let shown = self.held[..at].to_string();
            self.held.clear();
            return (shown, true);
        }
        let cut = self.held.len() - self.undecided_len();
        let shown = self.held[..cut].to_string();
        self.held.drain(..cut);
        (shown, false)
    }

    /// Ends the stream without a stop string: what was held back is shown after all.
    pub(crate) fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// The length of the longest end of the held text that begins some stop string.
    fn undecided_len(&self) -> usize {
        let held = self.held.as_bytes();
        let mut longest = 0;
        for stop in &self.stops {
            let most = (stop.len() - 1).min(held.len());
            for len in (longest + 1..=most).rev() {
                let start = held.len() - len;
                if self.held.is_char_boundary(start) && stop.as_bytes().starts_with(&held[start..])
                {
                    longest = len;
                    break;
                }
            }
        }
        longest
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn split_at_cuts(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut points: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
        points.push(0);
        points.push(bytes.len());
        points.sort_unstable();
        points
            .windows(2)
            .map(|w| bytes[w[0]..w[1]].to_vec())
            .collect()
    }

    #[test]
    fn a_character_split_over_two_tokens_is_joined() {
        let mut decoder = Utf8Decoder::default();
        let bytes = "é!".as_bytes();
        assert_eq!(decoder.push(&bytes[..1]), "");
        assert_eq!(decoder.push(&bytes[1..]), "é!");
        assert_eq!(decoder.finish(), "");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut decoder = Utf8Decoder::default();
        assert_eq!(decoder.push(&[b'a', 0xFF, b'b']), "a\u{FFFD}b");
        assert_eq!(decoder.push(&[0xE2, 0x82]), "");
        assert_eq!(decoder.finish(), "\u{FFFD}");
    }

    #[test]
    fn stop_strings_are_cut_and_prefixes_held_back() {
        let mut filter = StopFilter::new(&["\nUser:".to_string()]);
        assert_eq!(filter.push("Hello"), ("Hello".to_string(), false));
        assert_eq!(filter.push(" there\nUs"), (" there".to_string(), false));
        assert_eq!(filter.push("er: next"), (String::new(), true));

        let mut filter = StopFilter::new(&["\nUser:".to_string()]);
        assert_eq!(filter.push("a\nU"), ("a".to_string(), false));
        assert_eq!(filter.push("nits"), ("\nUnits".to_string(), false));
        assert_eq!(filter.push("\n"), (String::new(), false));
        assert_eq!(filter.finish(), "\n");
    }

    proptest! {
        #[test]
        fn decoding_any_split_gives_back_the_text(text in "\\PC{0,40}", cuts in prop::collection::vec(0usize..200, 0..8)) {
            let mut decoder = Utf8Decoder::default();
            let mut out = String::new();
            for piece in split_at_cuts(text.as_bytes(), &cuts) {
                out.push_str(&decoder.push(&piece));
            }
            out.push_str(&decoder.finish());
            prop_assert_eq!(out, text);
        }

        #[test]
        fn the_output_is_the_text_before_the_first_stop(text in "[ab\\nUser:é]{0,40}", cuts in prop::collection::vec(0usize..200, 0..8)) {
            let stops = vec!["\nUser:".to_string(), "bb".to_string()];
            let expected = stops.iter().filter_map(|stop| text.find(stop.as_str())).min().map_or(text.as_str(), |at| &text[..at]);
            let mut filter = StopFilter::new(&stops);
            let mut out = String::new();
            let mut stopped = false;
            for piece in split_at_cuts(text.as_bytes(), &cuts) {
                let (shown, hit) = filter.push(&String::from_utf8(piece).unwrap_or_default());
                out.push_str(&shown);
                if hit { stopped = true; break; }
            }
            if !stopped { out.push_str(&filter.finish()); }
            // Cuts inside a character are skipped by the filter test: only compare clean splits.
            if split_at_cuts(text.as_bytes(), &cuts).iter().all(|piece| std::str::from_utf8(piece).is_ok()) {
                prop_assert_eq!(out, expected);
            }
        }
    }
}
