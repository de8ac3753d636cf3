//! Voice notes: how long the gateway's speech worker (`coach-whisper`, Whisper base, converted by
//! scripts/convert_whisper.py) takes to hear a note, and how well, on notes spoken by espeak-ng
//! and encoded as WhatsApp does (Ogg/Opus, 24 kbit/s), in English and Spanish. Latency is given
//! against the note's own length (the real-time factor); the first run, which starts the worker
//! and loads the model, is reported apart. Writes its section of docs/BENCHMARKS.md.

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use coach_e2e::speech::{voice_note, word_edits};
use coach_gateway::config::Config;
use coach_gateway::voice::{Heard, Speech};
use support::{machine, write_section};

/// Scripts of about ten seconds each at espeak-ng's 150 words a minute.
const NOTES: &[(&str, &str)] = &[
    (
        "en",
        "Good morning coach. I ran five kilometres yesterday and my knee hurt a little at the end. \
         Should I rest today or go for an easy walk instead?",
    ),
    (
        "en",
        "I keep waking up at three in the morning and cannot fall asleep again. What can I change \
         in my evening routine to sleep through the night?",
    ),
    (
        "es",
        "Hola, esta semana quiero comer mejor. ¿Qué puedo preparar para la cena en veinte minutos \
         que tenga suficiente proteína y verduras?",
    ),
    (
        "es",
        "Ayer no hice los ejercicios porque llegué muy cansada del trabajo. ¿Cómo puedo mantener \
         la rutina cuando tengo poca energía?",
    ),
];

const ROUNDS: usize = 3;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// What one setting gave.
struct Run {
    cold: f64,
    times: Vec<f64>,
    factors: Vec<f64>,
    audio: f64,
    wer: (f64, f64),
    languages_right: usize,
}

async fn run(fit_window: bool, notes: &[(&str, &str, Vec<u8>)]) -> Run {
    let mut config = Config::default();
    config.brain.models_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    config.brain.speech.fit_window = fit_window;
    let speech = Speech::new(&config.brain);
    if let Some(why) = speech.unavailable() {
        panic!("{why}");
    }
    let timeout = Duration::from_secs(300);
    let started = Instant::now();
    speech.transcribe(&notes[0].2, 120, timeout).await.unwrap();
    let cold = started.elapsed().as_secs_f64();
    let (mut times, mut factors, mut audio) = (Vec::new(), Vec::new(), 0.0);
    let (mut errors, mut total) = ((0, 0), (0, 0));
    let mut languages_right = 0;
    for round in 0..ROUNDS {
        for (lang, script, bytes) in notes {
            let started = Instant::now();
            let heard = speech.transcribe(bytes, 120, timeout).await.unwrap();
            let took = started.elapsed().as_secs_f64();
            let Heard::Text {
                text,
                language,
                seconds,
            } = heard
            else {
                panic!("not heard: {heard:?}");
            };
            times.push(took);
            factors.push(took / seconds);
            if round > 0 {
                continue;
            }
            audio += seconds;
            let (e, n) = word_edits(script, &text);
            let slot = if *lang == "en" { 0 } else { 1 };
            if slot == 0 {
                errors.0 += e;
                total.0 += n;
            } else {
                errors.1 += e;
                total.1 += n;
            }
            languages_right += usize::from(language.as_deref() == Some(*lang));
            eprintln!("fit_window {fit_window}: {lang} {seconds:.1} s in {took:.2} s: {text}");
        }
    }
    times.sort_by(f64::total_cmp);
    factors.sort_by(f64::total_cmp);
    Run {
        cold,
        times,
        factors,
        audio,
        wer: (
            errors.0 as f64 / total.0.max(1) as f64,
            errors.1 as f64 / total.1.max(1) as f64,
        ),
        languages_right,
    }
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let notes: Vec<(&str, &str, Vec<u8>)> = NOTES
        .iter()
        .enumerate()
        .map(|(i, (lang, text))| {
            let note = voice_note(dir.path(), &i.to_string(), lang, text);
            (*lang, *text, note)
        })
        .collect();
    let fit = run(true, &notes).await;
    let full = run(false, &notes).await;
    let row = |name: &str, f: &dyn Fn(&Run) -> String| {
        format!("| {name} | {} | {} |\n", f(&fit), f(&full))
    };
    let p50 = |r: &Run| percentile(&r.times, 0.5);
    let markdown = format!(
        "## Voice notes (speech to text)\n\n\
         Machine: {machine}; date: {date}. `make bench` (gateway/benches/voice.rs): {n} notes of \
         {audio:.1} s in all ({avg:.1} s each), spoken by espeak-ng in English and Spanish and \
         encoded as WhatsApp does (Ogg/Opus, 24 kbit/s), heard {ROUNDS} times each by the \
         gateway's speech worker (whisper.cpp, Whisper base converted by \
         scripts/convert_whisper.py, greedy decoding, language detected, 2 threads), with \
         `brain.speech.fit_window` (the default: the encoder covers the part of Whisper's \
         30-second window the note fills, plus a margin) and, as the baseline, whisper.cpp's full \
         window. The default was chosen on the test suite's two notes; these four are held out.\n\n\
         | figure | fit_window (default) | full window (baseline) |\n|---|---|---|\n\
         {rows}\n\
         With the default a note is heard in {ratio:.2}x the baseline's time (p50). Synthetic \
         speech is clearer than a phone in a street: the error rates are a floor, the times are \
         what counts.\n",
        machine = machine(),
        date = chrono::Utc::now().format("%Y-%m-%d"),
        n = notes.len(),
        audio = fit.audio,
        avg = fit.audio / notes.len() as f64,
        ratio = p50(&fit) / p50(&full),
        rows = [
            row("time to hear a note, p50 / p95", &|r| {
                format!("{:.2} s / {:.2} s", p50(r), percentile(&r.times, 0.95))
            }),
            row(
                "against the note's length (real-time factor), p50 / p95",
                &|r| {
                    format!(
                        "{:.2} / {:.2}",
                        percentile(&r.factors, 0.5),
                        percentile(&r.factors, 0.95)
                    )
                }
            ),
            row("10 s of speech heard in (p50 factor x 10 s)", &|r| {
                format!("{:.2} s", percentile(&r.factors, 0.5) * 10.0)
            }),
            row("first note, worker start and model load included", &|r| {
                format!("{:.2} s", r.cold)
            }),
            row("word error rate, English / Spanish", &|r| {
                format!("{:.2} / {:.2}", r.wer.0, r.wer.1)
            }),
            row("language detected right", &|r| {
                format!("{} of {}", r.languages_right, notes.len())
            }),
        ]
        .concat(),
    );
    println!("{markdown}");
    write_section("voice", &markdown);
}
