//! The Ollama backends against a loopback server speaking Ollama's documented NDJSON protocol:
//! streamed lines cut across chunks, the final usage, an error line, error statuses, a stream
//! cut short, cancellation (the connection is dropped), the concurrency bound, embeddings, and
//! the generator compliance suite shared with llama.cpp.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use coach_brain::model::{Embedder, Generator, ModelError, Usage};
use coach_brain::ollama::{OllamaEmbedder, OllamaGenerator, OllamaGeneratorConfig};
use common::{Outcome, drain, next_event, request, tenant};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const BUFFER: usize = 8;

/// What the stand-in server saw and did.
#[derive(Default)]
struct Server {
    chats: Mutex<Vec<Value>>,
    endless_dropped: Arc<AtomicBool>,
}

/// Serves `/api/chat` and `/api/embed` on a free loopback port; returns the base URL. The chat
/// model name picks the behaviour: `missing` (404), `broken` (an error line), `truncated` (no
/// final line), `endless` (never ends) or anything else (`num_predict` tokens, then usage).
async fn spawn_server() -> (String, Arc<Server>) {
    let server = Arc::new(Server::default());
    let app = Router::new()
        .route("/api/chat", post(chat))
        .route("/api/embed", post(embed))
        .with_state(Arc::clone(&server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, server)
}

async fn chat(State(server): State<Arc<Server>>, Json(body): Json<Value>) -> Response {
    server.chats.lock().unwrap().push(body.clone());
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let wanted = body["options"]["num_predict"]
        .as_u64()
        .unwrap_or(5)
        .min(1000);
    match model.as_str() {
        "missing" => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "model \"missing\" not found, try pulling it first"})),
        )
            .into_response(),
        "broken" => ndjson(&[
            token_line("par"),
            token_line("tial"),
            json!({"error": "llama runner process has terminated: signal: killed"}),
        ]),
        "truncated" => ndjson(&[token_line("cut "), token_line("off")]),
        "endless" => endless(&server),
        _ => {
            let mut lines: Vec<Value> = (0..wanted)
                .map(|i| token_line(&format!("tök{i} ")))
                .collect();
            lines.push(json!({
                "model": model,
                "created_at": "2024-06-01T10:00:00Z",
                "message": {"role": "assistant", "content": ""},
                "done": true,
                "done_reason": "stop",
                "total_duration": 4_883_583_458_u64,
                "load_duration": 1_334_875,
                "prompt_eval_count": 26,
                "prompt_eval_duration": 342_546_000,
                "eval_count": wanted,
                "eval_duration": 4_535_599_000_u64
            }));
            ndjson(&lines)
        }
    }
}

fn token_line(text: &str) -> Value {
    json!({
        "model": "test",
        "created_at": "2024-06-01T10:00:00Z",
        "message": {"role": "assistant", "content": text},
        "done": false
    })
}

/// NDJSON in 7-byte chunks, so lines (and the two-byte `ö`) arrive cut apart.
fn ndjson(lines: &[Value]) -> Response {
    let bytes: Vec<u8> = lines
        .iter()
        .flat_map(|line| format!("{line}\n").into_bytes())
        .collect();
    let chunks: Vec<Result<Vec<u8>, Infallible>> =
        bytes.chunks(7).map(|chunk| Ok(chunk.to_vec())).collect();
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(futures::stream::iter(chunks)),
    )
        .into_response()
}

/// Sets its flag when dropped: the server let go of the endless stream.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn endless(server: &Server) -> Response {
    let guard = SetOnDrop(Arc::clone(&server.endless_dropped));
    let lines = futures::stream::unfold((0_u64, guard), |(i, guard)| async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let line = format!("{}\n", token_line(&format!("t{i} ")));
        Some((Ok::<_, Infallible>(line), (i + 1, guard)))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

async fn embed(Json(body): Json<Value>) -> Response {
    if body["model"] == "missing" {
        let error = json!({"error": "model \"missing\" not found, try pulling it first"});
        return (StatusCode::NOT_FOUND, Json(error)).into_response();
    }
    // A vector that is not normalised: [characters, 1, 0, 2].
    let embeddings: Vec<Vec<f32>> = body["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|input| {
            let characters = input.as_str().unwrap().chars().count() as f32;
            vec![characters, 1.0, 0.0, 2.0]
        })
        .collect();
    Json(json!({"model": body["model"], "embeddings": embeddings})).into_response()
}

fn generator(base: &str, model: &str) -> OllamaGenerator {
    let config = OllamaGeneratorConfig {
        stream_buffer: BUFFER,
        ..OllamaGeneratorConfig::default()
    };
    OllamaGenerator::with_config(base, model, config)
}

#[tokio::test]
async fn generator_compliance() {
    let (base, _) = spawn_server().await;
    common::generator_compliance(&generator(&base, "tokens"), BUFFER).await;
}

#[tokio::test]
async fn streams_lines_cut_across_chunks_and_reports_usage() {
    let (base, server) = spawn_server().await;
    let generator = generator(&base, "tokens");
    let mut ask = request(tenant(), "You are a coach.", "Hi", 6);
    ask.params.temperature = 0.25;
    ask.params.stop = vec!["\nUser:".to_string()];
    let outcome = drain(
        generator
            .generate(ask, CancellationToken::new())
            .await
            .unwrap(),
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let expected: Vec<String> = (0..6).map(|i| format!("tök{i} ")).collect();
    assert_eq!(outcome.tokens, expected);
    assert_eq!(
        outcome.usage,
        Some(Usage {
            prompt_tokens: 26,
            cached_tokens: 0,
            completion_tokens: 6
        })
    );

    let sent = server.chats.lock().unwrap()[0].clone();
    assert_eq!(sent["model"], "tokens");
    assert_eq!(sent["stream"], true);
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "system", "content": "You are a coach."},
            {"role": "user", "content": "Hi"}
        ])
    );
    assert_eq!(sent["options"]["num_predict"], 6);
    assert_eq!(sent["options"]["num_ctx"], 2048);
    assert_eq!(sent["options"]["stop"], json!(["\nUser:"]));
    let temperature = sent["options"]["temperature"].as_f64().unwrap();
    assert!((temperature - 0.25).abs() < 1e-6, "{temperature}");
}

#[tokio::test]
async fn an_error_line_ends_the_stream_with_a_backend_error() {
    let (base, _) = spawn_server().await;
    let ask = request(tenant(), "s", "u", 10);
    let outcome = drain(
        generator(&base, "broken")
            .generate(ask, CancellationToken::new())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(outcome.tokens, ["par", "tial"]);
    assert!(outcome.usage.is_none());
    assert!(
        matches!(&outcome.error, Some(ModelError::Backend(message)) if message.contains("runner process has terminated")),
        "{:?}",
        outcome.error
    );
}

#[tokio::test]
async fn a_stream_without_its_final_line_is_an_error() {
    let (base, _) = spawn_server().await;
    let ask = request(tenant(), "s", "u", 10);
    let outcome = drain(
        generator(&base, "truncated")
            .generate(ask, CancellationToken::new())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(outcome.tokens, ["cut ", "off"]);
    assert!(
        matches!(&outcome.error, Some(ModelError::Backend(message)) if message.contains("final line")),
        "{:?}",
        outcome.error
    );
}

#[tokio::test]
async fn an_error_status_is_a_backend_error_with_ollamas_message() {
    let (base, _) = spawn_server().await;
    let ask = request(tenant(), "s", "u", 10);
    match generator(&base, "missing")
        .generate(ask, CancellationToken::new())
        .await
    {
        Err(ModelError::Backend(message)) => {
            assert!(message.contains("404"), "{message}");
            assert!(message.contains("try pulling it first"), "{message}");
        }
        Err(other) => panic!("expected a backend error, got {other:?}"),
        Ok(_) => panic!("expected a backend error, got a stream"),
    }
}

#[tokio::test]
async fn an_unreachable_server_is_a_backend_error() {
    // Port 9 (discard) on loopback: nothing listens there in a test environment.
    let ask = request(tenant(), "s", "u", 10);
    let result = generator("http://127.0.0.1:9", "tokens")
        .generate(ask, CancellationToken::new())
        .await;
    assert!(
        matches!(result, Err(ModelError::Backend(message)) if message.contains("cannot reach"))
    );
}

#[tokio::test]
async fn cancelling_drops_the_connection() {
    let (base, server) = spawn_server().await;
    let cancel = CancellationToken::new();
    let ask = request(tenant(), "s", "u", 100_000);
    let mut stream = generator(&base, "endless")
        .generate(ask, cancel.clone())
        .await
        .unwrap();
    let mut outcome = Outcome::default();
    while outcome.tokens.len() < 3 {
        outcome.record(next_event(&mut stream).await.unwrap());
    }
    assert!(!server.endless_dropped.load(Ordering::SeqCst));
    cancel.cancel();
    while let Some(event) = next_event(&mut stream).await {
        outcome.record(event);
    }
    assert!(
        outcome.tokens.len() <= 3 + BUFFER + 1,
        "{:?}",
        outcome.tokens
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.endless_dropped.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the server was still streaming 10 s after the cancellation"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn requests_beyond_the_concurrency_bound_wait_then_busy() {
    let (base, _) = spawn_server().await;
    let config = OllamaGeneratorConfig {
        max_concurrent: 1,
        max_queue: 1,
        stream_buffer: BUFFER,
        ..OllamaGeneratorConfig::default()
    };
    let generator = Arc::new(OllamaGenerator::with_config(&base, "endless", config));
    let first_cancel = CancellationToken::new();
    let first = generator
        .generate(request(tenant(), "s", "u", 100), first_cancel.clone())
        .await
        .unwrap();

    // The second waits for the only permit; the third finds the waiting line full.
    let second_cancel = CancellationToken::new();
    let waiting = {
        let generator = Arc::clone(&generator);
        let cancel = second_cancel.clone();
        tokio::spawn(async move {
            generator
                .generate(request(tenant(), "s", "u", 100), cancel)
                .await
        })
    };
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let third = generator
        .generate(request(tenant(), "s", "u", 100), CancellationToken::new())
        .await;
    assert!(matches!(third, Err(ModelError::Busy(_))));
    assert!(
        !waiting.is_finished(),
        "the second request must wait for the first"
    );

    first_cancel.cancel();
    drop(first);
    let second = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the second request never started")
        .unwrap();
    let mut second = second.unwrap();
    let mut outcome = Outcome::default();
    outcome.record(next_event(&mut second).await.unwrap());
    assert!(outcome.started.is_some());
    second_cancel.cancel();
}

#[tokio::test]
async fn embedder_learns_the_dimension_and_normalises() {
    let (base, _) = spawn_server().await;
    let embedder = OllamaEmbedder::connect(&base, "all-minilm")
        .await
        .unwrap()
        .with_max_tokens(256);
    assert_eq!(embedder.dimension(), 4);
    assert_eq!(embedder.model_id(), "ollama/all-minilm");
    assert_eq!(embedder.max_tokens(), 256);
    assert_eq!(embedder.count_tokens("abcdefghi").unwrap(), 3);
    assert_eq!(embedder.count_tokens("").unwrap(), 0);

    let vectors = embedder
        .embed(vec!["abc".to_string(), "hello".to_string()])
        .await
        .unwrap();
    assert_eq!(vectors.len(), 2);
    for (vector, characters) in vectors.iter().zip([3.0_f32, 5.0]) {
        let length = (characters * characters + 1.0 + 4.0).sqrt();
        let expected = [characters / length, 1.0 / length, 0.0, 2.0 / length];
        for (got, want) in vector.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{vector:?}");
        }
    }
    assert!(embedder.embed(Vec::new()).await.unwrap().is_empty());
}

#[tokio::test]
async fn embedder_reports_a_missing_model() {
    let (base, _) = spawn_server().await;
    let result = OllamaEmbedder::connect(&base, "missing").await;
    assert!(matches!(result, Err(ModelError::Backend(message)) if message.contains("not found")));
}
