//! Voice notes for the tests and benchmarks: speech made by espeak-ng and encoded as WhatsApp and
//! Telegram send voice notes (Ogg/Opus, 24 kbit/s), and the word error rate of what was heard.

use std::path::Path;
use std::process::Command;

/// `text` spoken by espeak-ng in `voice` (`en`, `es`...), as Ogg/Opus; `name` names its files in
/// `dir`.
pub fn voice_note(dir: &Path, name: &str, voice: &str, text: &str) -> Vec<u8> {
    let wav = dir.join(format!("{name}.wav"));
    let ogg = dir.join(format!("{name}.ogg"));
    let spoken = Command::new("espeak-ng")
        .args(["-v", voice, "-s", "150", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .expect("espeak-ng runs (apt install espeak-ng)");
    assert!(spoken.success(), "espeak-ng failed");
    let encoded = Command::new("opusenc")
        .args(["--quiet", "--bitrate", "24"])
        .arg(&wav)
        .arg(&ogg)
        .status()
        .expect("opusenc runs (apt install opus-tools)");
    assert!(encoded.success(), "opusenc failed");
    std::fs::read(ogg).expect("the encoded note")
}

/// Lowercase words of letters and digits.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Word-level edit distance of `heard` from `script`, and the script's word count.
pub fn word_edits(script: &str, heard: &str) -> (usize, usize) {
    let (a, b) = (words(script), words(heard));
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, wa) in a.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, wb) in b.iter().enumerate() {
            let substitution = previous + usize::from(wa != wb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    (row[b.len()], a.len())
}

/// Word error rate of `heard` against `script`.
pub fn word_error_rate(script: &str, heard: &str) -> f64 {
    let (edits, n) = word_edits(script, heard);
    edits as f64 / n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_error_rate_counts_edits_per_script_word() {
        assert_eq!(
            word_error_rate("one two three four", "One, two three four."),
            0.0
        );
        assert_eq!(word_error_rate("one two three four", "one too three"), 0.5);
    }
}
