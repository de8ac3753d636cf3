//! `POST /v1/search` (retrieval only, for creators to test their knowledge base) and
//! `POST /v1/chat` (a question answered as server-sent events: tokens, then citations).

use std::convert::Infallible;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use coach_brain::model::{ChatMessage, GenerateEvent};
use coach_brain::retrieve::{Mode, Passage};
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::extract::{Member, Viewer};
use crate::error::{ApiError, ApiJson};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(chat))
}

/// A retrieval test.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// The question.
    #[schema(min_length = 1)]
    pub query: String,
    /// Passages to return (1-50, default 5).
    #[schema(minimum = 1, maximum = 50)]
    pub limit: Option<usize>,
    /// `hybrid` (default), `dense` or `keyword`.
    #[schema(value_type = Option<String>)]
    pub mode: Option<Mode>,
}

/// What retrieval found.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    /// Best first.
    #[schema(value_type = Vec<Object>)]
    pub passages: Vec<Passage>,
    /// Whether the best passage clears the relevance floor.
    pub confident: bool,
    /// Time taken, query embedding included.
    pub took_ms: u64,
}

fn check_question(text: &str, field: &str) -> Result<(), ApiError> {
    let n = text.trim().chars().count();
    if n == 0 || n > 2000 {
        return Err(ApiError::Unprocessable(format!(
            "{field}: {n} characters; ask with 1 to 2000"
        )));
    }
    Ok(())
}

/// Search the knowledge base as the coach would.
#[utoipa::path(post, path = "/v1/search", tag = "documents", request_body = SearchRequest,
    responses((status = 200, body = SearchResponse), (status = 422, body = crate::error::Problem), (status = 503, body = crate::error::Problem)))]
async fn search(
    State(state): State<AppState>,
    member: Member<Viewer>,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<Json<SearchResponse>, ApiError> {
    check_question(&req.query, "query")?;
    let limit = match req.limit {
        None => 5,
        Some(n @ 1..=50) => n,
        Some(n) => {
            return Err(ApiError::Unprocessable(format!(
                "limit: {n} is outside 1-50"
            )));
        }
    };
    let brain = state.knowledge.get()?;
    let start = Instant::now();
    let found = brain
        .search(
            state.store.as_ref(),
            &member.scope,
            req.query.trim(),
            limit,
            req.mode.unwrap_or_default(),
        )
        .await?;
    Ok(Json(SearchResponse {
        passages: found.passages,
        confident: found.confident,
        took_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
    }))
}

/// A question for the coach.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    /// The question.
    #[schema(min_length = 1)]
    pub question: String,
    /// Earlier turns, oldest first (optional).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<ChatMessage>,
}

/// Ask the coach. The answer streams as server-sent events: `token` (`{"text"}`) as it is
/// generated, then `citations` (the passages the reply rests on), then `done` (`{"usage",
/// "confident", "text"}`; `confident: false` means the coach did not know and a human should
/// answer; `text` is the reply as stored: repetition and sentences its sources do not support
/// removed).
/// Closing the stream stops generation.
#[utoipa::path(post, path = "/v1/chat", tag = "documents", request_body = ChatRequest,
    responses((status = 200, content_type = "text/event-stream", description = "token, citations and done events"),
        (status = 422, body = crate::error::Problem), (status = 429, body = crate::error::Problem), (status = 503, body = crate::error::Problem)))]
async fn chat(
    State(state): State<AppState>,
    member: Member<Viewer>,
    ApiJson(req): ApiJson<ChatRequest>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    check_question(&req.question, "question")?;
    if req.history.len() > 50 {
        return Err(ApiError::Unprocessable("history: at most 50 turns".into()));
    }
    let brain = state.knowledge.get()?.clone();
    let cancel = CancellationToken::new();
    let mut answer = brain
        .answer(
            state.store.as_ref(),
            &member.scope,
            req.question.trim(),
            &req.history,
            cancel.clone(),
        )
        .await?;
    let (store, scope) = (state.store.clone(), member.scope.clone());
    let stream = async_stream(move |tx| async move {
        // Dropping the guard (the client went away) cancels generation.
        let _guard = cancel.drop_guard();
        let mut generated = String::new();
        while let Some(event) = answer.next().await {
            let sse = match event {
                Ok(GenerateEvent::Started { .. } | GenerateEvent::Abstain(_)) => continue,
                Ok(GenerateEvent::Token(text)) => {
                    generated.push_str(&text);
                    Event::default()
                        .event("token")
                        .json_data(serde_json::json!({ "text": text }))
                }
                Ok(GenerateEvent::Done(usage)) => {
                    crate::knowledge::meter(store.as_ref(), &scope, &usage).await;
                    // The reply as the coach stores it: without sentences its sources do not
                    // support, citing the passages it rests on.
                    let finished = answer.finish(&generated);
                    if let Ok(event) = Event::default()
                        .event("citations")
                        .json_data(&finished.citations)
                    {
                        let _ = tx.send(event).await;
                    }
                    Event::default().event("done").json_data(serde_json::json!({
                        "usage": usage,
                        "confident": finished.confident,
                        "text": finished.text,
                    }))
                }
                Err(e) => Event::default()
                    .event("error")
                    .json_data(serde_json::json!({ "detail": e.to_string() })),
            };
            let Ok(sse) = sse else { break };
            if tx.send(sse).await.is_err() {
                break;
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A stream fed by a task: the task sends events until done or the receiver is dropped.
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(32);
    tokio::spawn(f(tx));
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (Ok(event), rx))
    })
}
