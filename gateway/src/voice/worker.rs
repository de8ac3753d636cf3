//! The speech worker: `coach-whisper` (whisper.cpp, in its own process because a copy of ggml
//! beside llama.cpp's in one binary clashes), started on the first voice note and kept for the
//! next, spoken to over stdin/stdout (a JSON line, the recording's bytes, a JSON line back). One
//! request at a time; a worker that dies, stalls or is abandoned mid-request is killed and the
//! next request starts a fresh one.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The worker's program name.
pub const WORKER: &str = "coach-whisper";

/// How long the worker may take to load its model.
pub(super) const START_TIMEOUT: Duration = Duration::from_secs(120);

/// What the worker made of a recording.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Heard {
    /// Words.
    Text {
        /// What was said.
        text: String,
        /// The language spoken (ISO 639-1), as Whisper detected it.
        language: Option<String>,
        /// The recording's length in seconds.
        seconds: f64,
    },
    /// No words: `too_long`, `unreadable`, `silent` or `failed`.
    Error {
        /// The reason's code.
        error: String,
        /// What happened.
        detail: String,
    },
}

/// Why nothing was heard.
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    /// Not configured here (no model or no worker program): no retry helps.
    #[error("speech to text is unavailable: {0}")]
    Unavailable(String),
    /// The worker failed (died, stalled, spoke out of turn): worth another attempt.
    #[error("the speech worker failed: {0}")]
    Worker(String),
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// The speech worker, started on first use.
pub struct Speech {
    model: PathBuf,
    program: Option<PathBuf>,
    threads: u32,
    fit_window: bool,
    enabled: bool,
    worker: tokio::sync::Mutex<Option<Worker>>,
}

impl Speech {
    /// From the brain's configuration.
    pub fn new(config: &crate::config::BrainConfig) -> Self {
        Self {
            model: config.speech_path(),
            program: config.speech.worker.clone().or_else(find_worker),
            threads: if config.speech.threads == 0 {
                config.threads
            } else {
                config.speech.threads
            },
            fit_window: config.speech.fit_window,
            enabled: config.speech.enabled,
            worker: tokio::sync::Mutex::new(None),
        }
    }

    /// Why voice notes cannot be transcribed here, if they cannot.
    pub fn unavailable(&self) -> Option<String> {
        if !self.enabled {
            return Some("brain.speech.enabled is off".into());
        }
        let Some(program) = &self.program else {
            return Some(format!(
                "{WORKER} was not found beside the gateway (build it with `make build`, or set brain.speech.worker)"
            ));
        };
        if !program.is_file() {
            return Some(format!("{} does not exist", program.display()));
        }
        if !self.model.is_file() {
            return Some(format!(
                "the speech model {} is missing (run `make models`)",
                self.model.display()
            ));
        }
        None
    }

    /// Transcribe one recording, refusing it past `max_secs`; `timeout` bounds the whole.
    pub async fn transcribe(
        &self,
        bytes: &[u8],
        max_secs: u32,
        timeout: Duration,
    ) -> Result<Heard, SpeechError> {
        if let Some(why) = self.unavailable() {
            return Err(SpeechError::Unavailable(why));
        }
        let mut slot = self.worker.lock().await;
        // Out of the slot while it works: if this future is dropped mid-request, the worker (out
        // of step) is dropped with it, killed, and never answers the next request with this
        // one's words.
        let mut worker = match slot.take() {
            Some(worker) => worker,
            None => self.start().await?,
        };
        let asked = tokio::time::timeout(timeout, ask(&mut worker, bytes, max_secs)).await;
        match asked {
            Ok(Ok(heard)) => {
                *slot = Some(worker);
                Ok(heard)
            }
            // Out of step or dead: the next job starts a fresh one.
            Ok(Err(e)) => {
                let _ = worker.child.kill().await;
                Err(SpeechError::Worker(e))
            }
            Err(_) => {
                let _ = worker.child.kill().await;
                Err(SpeechError::Worker(format!(
                    "no answer within {} s",
                    timeout.as_secs()
                )))
            }
        }
    }

    async fn start(&self) -> Result<Worker, SpeechError> {
        let program = self
            .program
            .as_ref()
            .ok_or_else(|| SpeechError::Unavailable(format!("{WORKER} not found")))?;
        let mut child = Command::new(program)
            .arg("--model")
            .arg(&self.model)
            .arg("--threads")
            .arg(self.threads.to_string())
            .arg("--fit-window")
            .arg(self.fit_window.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // It parses untrusted audio: none of the gateway's secrets go with it.
            .env_clear()
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| SpeechError::Unavailable(format!("{}: {e}", program.display())))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(SpeechError::Worker("no pipes to the worker".into()));
        };
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let read = tokio::time::timeout(START_TIMEOUT, stdout.read_line(&mut line)).await;
        match read {
            Ok(Ok(n)) if n > 0 && line.contains("\"ready\":true") => {}
            Ok(Ok(_)) => {
                let _ = child.kill().await;
                let status = child.wait().await.ok();
                return Err(SpeechError::Worker(format!(
                    "the worker stopped while loading {} ({status:?})",
                    self.model.display()
                )));
            }
            Ok(Err(e)) => return Err(SpeechError::Worker(e.to_string())),
            Err(_) => {
                let _ = child.kill().await;
                return Err(SpeechError::Worker(
                    "the model took too long to load".into(),
                ));
            }
        }
        tracing::info!(model = %self.model.display(), "speech worker started");
        Ok(Worker {
            child,
            stdin,
            stdout,
        })
    }
}

/// `coach-whisper` beside the running binary (or one folder up: test binaries live in `deps/`).
fn find_worker() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join(WORKER))
        .find(|p| p.is_file())
}

async fn ask(worker: &mut Worker, bytes: &[u8], max_secs: u32) -> Result<Heard, String> {
    let request = serde_json::json!({ "bytes": bytes.len(), "max_secs": max_secs });
    let io = |e: std::io::Error| e.to_string();
    worker
        .stdin
        .write_all(format!("{request}\n").as_bytes())
        .await
        .map_err(io)?;
    worker.stdin.write_all(bytes).await.map_err(io)?;
    worker.stdin.flush().await.map_err(io)?;
    let mut line = String::new();
    if worker.stdout.read_line(&mut line).await.map_err(io)? == 0 {
        return Err("the worker exited".into());
    }
    serde_json::from_str(&line).map_err(|e| format!("an answer that is no answer ({e}): {line}"))
}

/// How long one request to the worker may take for a note of up to `max_secs` (generous:
/// whisper.cpp hears a minute of speech in seconds on two cores).
pub(super) fn ask_timeout(max_secs: u32) -> Duration {
    Duration::from_secs(60 + u64::from(max_secs) * 2)
}
