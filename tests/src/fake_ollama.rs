//! A loopback stand-in for an Ollama server, speaking its documented API: `/api/version`,
//! `/api/embed` (a
//! bag-of-words vector per input: texts sharing words are similar, so retrieval ranks as it
//! would) and a streamed `/api/chat` (NDJSON lines, then the final line with the counts). It
//! records every chat request, so a test can assert on the exact prompt the gateway built, and
//! answers with the text a test sets.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

/// The vector size of the bag of words.
pub const DIMENSION: usize = 256;

#[derive(Default)]
struct Inner {
    chats: Vec<Value>,
    reply: String,
}

/// A running fake Ollama server.
#[derive(Clone)]
pub struct FakeOllama {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeOllama {
    /// Start on a free loopback port; it answers "I don't know." until told otherwise.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            reply: "I don't know.".into(),
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/api/chat", post(chat))
            .route("/api/embed", post(embed))
            .route(
                "/api/version",
                axum::routing::get(|| async { Json(json!({ "version": "0.12.0" })) }),
            )
            .with_state(inner.clone());
        Self {
            base_url: crate::serve_loopback(app).await,
            inner,
        }
    }

    /// What the next chats answer.
    pub fn reply_with(&self, text: &str) {
        self.lock().reply = text.to_string();
    }

    /// Every `/api/chat` request body so far, oldest first.
    pub fn chats(&self) -> Vec<Value> {
        self.lock().chats.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Lowercase words of letters and digits, each counted in one of [`DIMENSION`] slots (FNV-1a),
/// the vector scaled to length 1 (a text without words gets a fixed unit vector).
pub fn bag_of_words(text: &str) -> Vec<f32> {
    let mut v = vec![0.0_f32; DIMENSION];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in word.to_lowercase().bytes() {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        v[(hash % DIMENSION as u64) as usize] += 1.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        v[0] = 1.0;
    } else {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

async fn embed(Json(body): Json<Value>) -> Response {
    let inputs: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect(),
        _ => Vec::new(),
    };
    let embeddings: Vec<Vec<f32>> = inputs.iter().map(|t| bag_of_words(t)).collect();
    Json(json!({ "model": body["model"], "embeddings": embeddings })).into_response()
}

async fn chat(State(inner): State<Arc<Mutex<Inner>>>, Json(body): Json<Value>) -> Response {
    let reply = {
        let mut inner = inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.chats.push(body.clone());
        inner.reply.clone()
    };
    let mut lines = String::new();
    // One line per word, as Ollama streams tokens.
    let words: Vec<&str> = reply.split_inclusive(' ').collect();
    for word in &words {
        let line = json!({
            "model": body["model"], "created_at": "2026-12-04T10:00:00Z",
            "message": { "role": "assistant", "content": word }, "done": false,
        });
        lines.push_str(&format!("{line}\n"));
    }
    let last = json!({
        "model": body["model"], "created_at": "2026-12-04T10:00:01Z",
        "message": { "role": "assistant", "content": "" }, "done": true, "done_reason": "stop",
        "prompt_eval_count": 100, "eval_count": words.len(),
    });
    lines.push_str(&format!("{last}\n"));
    ([(header::CONTENT_TYPE, "application/x-ndjson")], lines).into_response()
}
