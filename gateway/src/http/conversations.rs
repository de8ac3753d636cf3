//! `/v1/conversations` (newest activity first, cursor pagination) and their messages, and
//! `/v1/audit-log`.

use axum::Json;
use axum::extract::{Path, State};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use coach_connector_api::{ConversationId, MessageId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::extract::{Admin, Member, Viewer};
use crate::error::{ApiError, ApiQuery};
use crate::state::AppState;
use crate::store::{AuditRecord, Conversation, Page, StoredMessage};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_conversations))
        .routes(routes!(list_messages))
        .routes(routes!(audit_log))
}

/// A page of items and the cursor of the next page (absent on the last page).
#[derive(Debug, Serialize, ToSchema)]
pub struct Paged<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page.
    pub next_cursor: Option<String>,
}

/// Paging parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page (1-200, default 50).
    pub limit: Option<u32>,
}

pub(super) fn limit(q: &PageQuery) -> Result<u32, ApiError> {
    match q.limit {
        None => Ok(50),
        Some(n @ 1..=200) => Ok(n),
        Some(n) => Err(ApiError::BadRequest(format!("limit: {n} is outside 1-200"))),
    }
}

pub(super) fn encode_cursor(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

pub(super) fn decode_cursor(c: &str) -> Result<String, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::BadRequest("cursor: not a cursor this API returned".into()))
}

/// The tenant's conversations, most recently active first.
#[utoipa::path(get, path = "/v1/conversations", tag = "conversations", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Paged<Conversation>)))]
async fn list_conversations(
    State(state): State<AppState>,
    member: Member<Viewer>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Paged<Conversation>>, ApiError> {
    let limit = limit(&q)?;
    let before = q
        .cursor
        .as_deref()
        .map(|c| {
            decode_cursor(c)?
                .parse::<DateTime<Utc>>()
                .map_err(|_| ApiError::BadRequest("cursor: not a cursor this API returned".into()))
        })
        .transpose()?;
    let items = state
        .store
        .conversations(&member.scope, Page { before, limit })
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| {
            items
                .last()
                .map(|c| encode_cursor(&c.last_message_at.to_rfc3339()))
        })
        .flatten();
    Ok(Json(Paged { items, next_cursor }))
}

/// A conversation's messages, oldest first.
#[utoipa::path(get, path = "/v1/conversations/{id}/messages", tag = "conversations", params(("id" = String, Path, description = "conversation id"), PageQuery),
    security(("bearer" = [])), responses((status = 200, body = Paged<StoredMessage>), (status = 404, body = crate::error::Problem)))]
async fn list_messages(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Paged<StoredMessage>>, ApiError> {
    let limit = limit(&q)?;
    let id = id
        .parse::<Uuid>()
        .map(ConversationId)
        .map_err(|_| ApiError::NotFound("conversation"))?;
    let after = q
        .cursor
        .as_deref()
        .map(|c| {
            decode_cursor(c)?
                .parse::<Uuid>()
                .map(MessageId)
                .map_err(|_| ApiError::BadRequest("cursor: not a cursor this API returned".into()))
        })
        .transpose()?;
    let items = state
        .store
        .messages(&member.scope, id, after, limit)
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|m| encode_cursor(&m.id.to_string())))
        .flatten();
    Ok(Json(Paged { items, next_cursor }))
}

/// Who did what, newest first (owners and admins).
#[utoipa::path(get, path = "/v1/audit-log", tag = "audit", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<AuditRecord>), (status = 403, body = crate::error::Problem)))]
async fn audit_log(
    State(state): State<AppState>,
    member: Member<Admin>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Vec<AuditRecord>>, ApiError> {
    Ok(Json(
        state.store.audit_log(&member.scope, limit(&q)?).await?,
    ))
}
