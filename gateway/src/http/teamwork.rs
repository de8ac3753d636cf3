//! A team's tools around conversations: `/v1/conversations/{id}/labels` (PUT replaces the set),
//! `/v1/conversations/{id}/notes` (private notes, never sent to the contact) and
//! `/v1/canned-replies` (saved texts the console inserts with `/shortcut`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::extract::{Editor, Member, Viewer};
use crate::error::{ApiError, ApiJson};
use crate::http::kit::{Id, resource};
use crate::state::AppState;
use crate::store::teamwork::{CannedReply, Note};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_labels, put_labels))
        .routes(routes!(list_notes, add_note))
        .routes(routes!(list_canned, add_canned))
        .routes(routes!(delete_canned))
}

/// At most this many labels on a conversation.
const MAX_LABELS: usize = 20;

/// Labels as stored: trimmed, lowercase, 1-50 characters, no duplicates.
fn clean_labels(asked: Vec<String>) -> Result<Vec<String>, ApiError> {
    let mut labels: Vec<String> = Vec::new();
    for raw in asked {
        let label = raw.trim().to_lowercase();
        let n = label.chars().count();
        if n == 0 || n > 50 || label.chars().any(char::is_control) {
            return Err(ApiError::Unprocessable(format!(
                "labels: {raw:?} must be 1 to 50 characters without control characters"
            )));
        }
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    if labels.len() > MAX_LABELS {
        return Err(ApiError::Unprocessable(format!(
            "labels: at most {MAX_LABELS} on a conversation"
        )));
    }
    Ok(labels)
}

/// A conversation's labels, sorted.
#[utoipa::path(get, path = "/v1/conversations/{id}/labels", tag = "conversations",
    params(("id" = String, Path, description = "conversation id")),
    responses((status = 200, body = Vec<String>), (status = 404, body = crate::error::Problem)))]
async fn get_labels(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Id(id): Id<resource::Conversation>,
) -> Result<Json<Vec<String>>, ApiError> {
    Ok(Json(state.store.labels(&member.scope, id).await?))
}

/// Replace a conversation's labels (a JSON array of strings; stored trimmed and lowercase, at
/// most 20 of 1-50 characters); answers with them sorted.
#[utoipa::path(put, path = "/v1/conversations/{id}/labels", tag = "conversations",
    params(("id" = String, Path, description = "conversation id")), request_body = Vec<String>,
    responses((status = 200, body = Vec<String>), (status = 404, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
async fn put_labels(
    State(state): State<AppState>,
    member: Member<Editor>,
    Id(id): Id<resource::Conversation>,
    ApiJson(labels): ApiJson<Vec<String>>,
) -> Result<Json<Vec<String>>, ApiError> {
    let labels = clean_labels(labels)?;
    Ok(Json(
        state.store.set_labels(&member.scope, id, labels).await?,
    ))
}

/// A new private note.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    /// The note (1-5000 characters); members see it, the contact never does.
    #[schema(min_length = 1, max_length = 5000)]
    pub text: String,
}

/// A conversation's private notes, oldest first.
#[utoipa::path(get, path = "/v1/conversations/{id}/notes", tag = "conversations",
    params(("id" = String, Path, description = "conversation id")),
    responses((status = 200, body = Vec<Note>), (status = 404, body = crate::error::Problem)))]
async fn list_notes(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Id(id): Id<resource::Conversation>,
) -> Result<Json<Vec<Note>>, ApiError> {
    Ok(Json(state.store.notes(&member.scope, id).await?))
}

/// Add a private note to a conversation (never sent to the contact; in the contact's export
/// and erased with them).
#[utoipa::path(post, path = "/v1/conversations/{id}/notes", tag = "conversations",
    params(("id" = String, Path, description = "conversation id")), request_body = NewNote,
    responses((status = 201, body = Note), (status = 404, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
async fn add_note(
    State(state): State<AppState>,
    member: Member<Editor>,
    Id(id): Id<resource::Conversation>,
    ApiJson(req): ApiJson<NewNote>,
) -> Result<(StatusCode, Json<Note>), ApiError> {
    let text = req.text.trim();
    if text.is_empty() || text.chars().count() > 5000 {
        return Err(ApiError::Unprocessable("text: 1 to 5000 characters".into()));
    }
    let note = Note {
        id: Uuid::now_v7(),
        conversation_id: id,
        author: member.user().ok().map(|u| u.0),
        text: text.to_owned(),
        created_at: Utc::now(),
    };
    let note = state.store.add_note(&member.scope, note).await?;
    Ok((StatusCode::CREATED, Json(note)))
}

/// A new canned reply.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCannedReply {
    /// What is typed after `/`: lowercase letters, digits, `-` and `_` (1-32).
    #[schema(pattern = r"^[a-z0-9_-]{1,32}$")]
    pub shortcut: String,
    /// The text it inserts (1-5000 characters).
    #[schema(min_length = 1, max_length = 5000)]
    pub text: String,
}

/// The tenant's canned replies, by shortcut.
#[utoipa::path(get, path = "/v1/canned-replies", tag = "conversations",
    responses((status = 200, body = Vec<CannedReply>)))]
async fn list_canned(
    State(state): State<AppState>,
    member: Member<Viewer>,
) -> Result<Json<Vec<CannedReply>>, ApiError> {
    Ok(Json(state.store.canned_replies(&member.scope).await?))
}

/// Save a canned reply (409 when the shortcut is taken).
#[utoipa::path(post, path = "/v1/canned-replies", tag = "conversations", request_body = NewCannedReply,
    responses((status = 201, body = CannedReply), (status = 409, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
async fn add_canned(
    State(state): State<AppState>,
    member: Member<Editor>,
    ApiJson(req): ApiJson<NewCannedReply>,
) -> Result<(StatusCode, Json<CannedReply>), ApiError> {
    let shortcut = req.shortcut.trim().to_owned();
    let ok = (1..=32).contains(&shortcut.len())
        && shortcut
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        return Err(ApiError::Unprocessable(
            "shortcut: 1 to 32 lowercase letters, digits, - or _".into(),
        ));
    }
    let text = req.text.trim();
    if text.is_empty() || text.chars().count() > 5000 {
        return Err(ApiError::Unprocessable("text: 1 to 5000 characters".into()));
    }
    let reply = CannedReply {
        id: Uuid::now_v7(),
        shortcut,
        text: text.to_owned(),
        created_at: Utc::now(),
    };
    let reply = state.store.add_canned_reply(&member.scope, reply).await?;
    Ok((StatusCode::CREATED, Json(reply)))
}

/// Delete a canned reply.
#[utoipa::path(delete, path = "/v1/canned-replies/{id}", tag = "conversations",
    params(("id" = String, Path, description = "canned reply id")),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
async fn delete_canned(
    State(state): State<AppState>,
    member: Member<Editor>,
    Id(id): Id<resource::CannedReply>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_canned_reply(&member.scope, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
