//! The worker as the gateway runs it: the converted Whisper model, real voice notes (spoken by
//! espeak-ng, encoded as Ogg/Opus by opusenc like a WhatsApp or Telegram voice note), spoken
//! to over stdin/stdout.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use coach_e2e::speech::{voice_note, word_error_rate, words};

fn model() -> PathBuf {
    let path = std::env::var_os("WHISPER_MODEL").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/ggml-whisper-base.bin"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "{} is missing: run `make models-tiny`",
        path.display()
    );
    path
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_coach-whisper"))
            .arg("--model")
            .arg(model())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the worker starts");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut ready = String::new();
        stdout.read_line(&mut ready).expect("a first line");
        assert_eq!(ready.trim(), r#"{"ready":true}"#);
        Self {
            child,
            stdin,
            stdout,
        }
    }

    fn ask(&mut self, bytes: &[u8], max_secs: f64) -> serde_json::Value {
        let request = serde_json::json!({ "bytes": bytes.len(), "max_secs": max_secs });
        writeln!(self.stdin, "{request}").expect("request");
        self.stdin.write_all(bytes).expect("recording");
        self.stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("an answer");
        serde_json::from_str(&line).expect("a JSON answer")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn voice_notes_are_transcribed_in_the_language_spoken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut worker = Worker::start();

    let script = "Hello coach, I would like to know how many minutes I should run every morning \
                  to get ready for my first ten kilometre race.";
    let note = voice_note(dir.path(), "en", "en", script);
    let answer = worker.ask(&note, 120.0);
    let text = answer["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    let wer = word_error_rate(script, text);
    eprintln!("en: {text:?}, WER {wer:.2}, {} ms", answer["millis"]);
    assert!(wer <= 0.2, "WER {wer:.2}: {text:?}");
    assert_eq!(answer["language"], "en");
    assert!(
        answer["seconds"]
            .as_f64()
            .is_some_and(|s| s > 5.0 && s < 10.0)
    );

    let script = "Hola, quiero saber cuántos minutos debo correr cada mañana para preparar mi \
                  primera carrera.";
    let note = voice_note(dir.path(), "es", "es", script);
    let answer = worker.ask(&note, 120.0);
    let text = answer["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    let wer = word_error_rate(script, text);
    eprintln!("es: {text:?}, WER {wer:.2}, {} ms", answer["millis"]);
    // espeak-ng's Spanish voice is far from a person's (its WER is in docs/BENCHMARKS.md): the
    // words that carry the question are heard.
    for word in ["minutos", "correr", "preparar", "carrera"] {
        assert!(words(text).iter().any(|w| w == word), "{word}: {text:?}");
    }
    assert_eq!(answer["language"], "es");
}

#[test]
fn a_note_over_the_limit_or_no_recording_at_all_gets_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut worker = Worker::start();
    let note = voice_note(
        dir.path(),
        "long",
        "en",
        "This note goes on for a good few seconds, longer than the limit allows.",
    );
    let answer = worker.ask(&note, 2.0);
    assert_eq!(answer["error"], "too_long", "{answer}");

    let answer = worker.ask(b"%PDF-1.7 this is no recording", 120.0);
    assert_eq!(answer["error"], "unreadable", "{answer}");

    // Five seconds of silence: nothing said (Whisper alone would hear "you").
    let answer = worker.ask(&silence(5), 120.0);
    assert_eq!(answer["error"], "silent", "{answer}");

    // The worker is still in step after refusals.
    let answer = worker.ask(&note, 120.0);
    assert!(answer["text"].as_str().is_some(), "{answer}");
}

/// `seconds` of silence as a 16 kHz mono WAV file.
fn silence(seconds: u32) -> Vec<u8> {
    let data = vec![0u8; (seconds * 16_000 * 2) as usize];
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    for field in [
        16u32.to_le_bytes(),
        [1, 0, 1, 0],
        16_000u32.to_le_bytes(),
        32_000u32.to_le_bytes(),
        [2, 0, 16, 0],
    ] {
        out.extend_from_slice(&field);
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}
