//! `coach-whisper`: transcribes voice notes for the gateway, in its own process because
//! whisper.cpp and llama.cpp each carry a copy of ggml and the two clash in one binary
//! (utilityai/llama-cpp-rs#484).
//!
//! ```text
//! coach-whisper --model models/ggml-whisper-base.bin [--threads N]
//! ```
//!
//! It loads the model, writes `{"ready":true}` on stdout, then answers requests one at a time.
//! A request is one JSON line, `{"bytes":N,"max_secs":120,"language":null}`, followed by the N
//! bytes of the recording; the answer is one JSON line:
//! `{"text":"...","language":"en","seconds":7.9,"millis":812}`, or
//! `{"error":"too_long"|"unreadable"|"silent"|"failed","detail":"..."}`. It exits when stdin
//! closes. Nothing but answers goes to stdout; diagnostics go to stderr.

mod audio;

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use serde::{Deserialize, Serialize};
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

/// Speech to text for the coaching gateway's voice notes (whisper.cpp).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The Whisper model in whisper.cpp's format (`make models` converts it).
    #[arg(long)]
    model: PathBuf,
    /// CPU threads for one transcription (default: all).
    #[arg(long)]
    threads: Option<usize>,
    /// Encode only as much of Whisper's 30-second window as the note fills (plus a margin)
    /// instead of all of it: short notes are heard several times faster.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    fit_window: bool,
}

/// One transcription asked for.
#[derive(Deserialize)]
struct Request {
    /// Length of the recording that follows the line.
    bytes: usize,
    /// Longer recordings are refused (`too_long`).
    max_secs: f64,
    /// The language spoken, when known (ISO 639-1); detected otherwise.
    #[serde(default)]
    language: Option<String>,
}

/// What became of it.
#[derive(Serialize)]
#[serde(untagged)]
enum Answer {
    Text {
        text: String,
        language: Option<String>,
        seconds: f64,
        millis: u128,
    },
    Error {
        error: &'static str,
        detail: String,
    },
}

fn failed(error: &'static str, detail: impl std::fmt::Display) -> Answer {
    Answer::Error {
        error,
        detail: detail.to_string(),
    }
}

/// A segment Whisper itself thinks is more likely not speech than this is dropped.
const NO_SPEECH: f32 = 0.8;

/// The largest recording a request may announce (a voice note of minutes is a few MB).
const MAX_BYTES: usize = 64 << 20;

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // whisper.cpp's own logging goes nowhere: stdout is the protocol.
    whisper_rs::install_logging_hooks();
    let context =
        match WhisperContext::new_with_params(&args.model, WhisperContextParameters::default()) {
            Ok(context) => context,
            Err(e) => {
                eprintln!(
                    "coach-whisper: cannot load {}: {e} (run `make models`)",
                    args.model.display()
                );
                return std::process::ExitCode::from(2);
            }
        };
    // One state (the model's buffers and caches) for every request: making one costs about a
    // second.
    let mut state = match context.create_state() {
        Ok(state) => state,
        Err(e) => {
            eprintln!("coach-whisper: cannot set up the model: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    });
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut output = std::io::stdout().lock();
    if writeln!(output, "{}", serde_json::json!({ "ready": true }))
        .and_then(|()| output.flush())
        .is_err()
    {
        return std::process::ExitCode::FAILURE;
    }
    let mut line = String::new();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) => return std::process::ExitCode::SUCCESS,
            Ok(_) => {}
            Err(e) => {
                eprintln!("coach-whisper: reading a request: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
        let answer = match serde_json::from_str::<Request>(&line) {
            Ok(request) if request.bytes > MAX_BYTES => {
                // The bytes cannot be skipped safely: the stream is out of step. Stop.
                eprintln!("coach-whisper: a request of {} bytes", request.bytes);
                return std::process::ExitCode::FAILURE;
            }
            Ok(request) => {
                let mut bytes = vec![0u8; request.bytes];
                if let Err(e) = input.read_exact(&mut bytes) {
                    eprintln!("coach-whisper: reading a recording: {e}");
                    return std::process::ExitCode::FAILURE;
                }
                transcribe(
                    &mut state,
                    Settings {
                        threads,
                        fit_window: args.fit_window,
                    },
                    &request,
                    bytes,
                )
            }
            Err(e) => {
                eprintln!("coach-whisper: not a request: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        let written = serde_json::to_string(&answer)
            .map_err(std::io::Error::other)
            .and_then(|json| writeln!(output, "{json}"))
            .and_then(|()| output.flush());
        if written.is_err() {
            return std::process::ExitCode::FAILURE;
        }
    }
}

/// How transcriptions run.
#[derive(Clone, Copy)]
struct Settings {
    threads: usize,
    fit_window: bool,
}

/// The encoder's context for `seconds` of audio: Whisper's window holds 30 s in 1,500 frames;
/// a note fills its share plus a margin (a window cut right at the last word makes Whisper
/// repeat itself or trail off).
fn audio_ctx(seconds: f64) -> i32 {
    const FULL: f64 = 1500.0;
    let frames = (seconds / 30.0 * FULL).ceil() + 128.0;
    // Whole multiples of 64 keep whisper.cpp's matrices aligned.
    ((frames / 64.0).ceil() * 64.0).min(FULL) as i32
}

fn transcribe(
    state: &mut WhisperState,
    settings: Settings,
    request: &Request,
    bytes: Vec<u8>,
) -> Answer {
    let started = Instant::now();
    // A decoder panic on a malformed file is that file's problem, not the worker's end.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        audio::decode(bytes, request.max_secs)
    }));
    let Ok(decoded) = decoded else {
        return failed("unreadable", "the decoder gave up on this file");
    };
    let samples = match decoded {
        Ok(samples) => samples,
        Err(e @ audio::AudioError::TooLong { .. }) => return failed("too_long", e),
        Err(e @ audio::AudioError::Unreadable(_)) => return failed("unreadable", e),
    };
    let seconds = samples.len() as f64 / f64::from(audio::RATE);
    // Too short to hold a word.
    if seconds < 0.3 {
        return failed("silent", format!("{seconds:.1} s of audio"));
    }
    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_n_threads(i32::try_from(settings.threads).unwrap_or(2));
    if settings.fit_window {
        params.set_audio_ctx(audio_ctx(seconds));
    }
    params.set_language(Some(request.language.as_deref().unwrap_or("auto")));
    params.set_no_context(true);
    params.set_no_timestamps(true);
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_special(false);
    params.set_print_timestamps(false);
    if let Err(e) = state.full(params, &samples) {
        return failed("failed", e);
    }
    let text = state
        .as_iter()
        // Whisper "hears" a word or two in silence ("you", "Thank you."), with a high no-speech
        // probability: 0.93 on five silent seconds, at most 0.49 on the speech of the tests and
        // benchmark notes.
        .filter(|segment| segment.no_speech_probability() <= NO_SPEECH)
        .filter_map(|segment| segment.to_str_lossy().ok().map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty() && !is_non_speech(s))
        .collect::<Vec<_>>()
        .join(" ");
    if text.is_empty() {
        return failed("silent", "no speech heard");
    }
    let language = whisper_rs::get_lang_str(state.full_lang_id_from_state()).map(str::to_string);
    Answer::Text {
        text,
        language,
        seconds: (seconds * 10.0).round() / 10.0,
        millis: started.elapsed().as_millis(),
    }
}

/// Whisper's notes for what is not speech: `[BLANK_AUDIO]`, `(music)`, `[Applause]`.
fn is_non_speech(segment: &str) -> bool {
    let bracketed = |open: char, close: char| segment.starts_with(open) && segment.ends_with(close);
    bracketed('[', ']') || bracketed('(', ')')
}
