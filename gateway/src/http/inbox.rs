//! `GET /v1/inbox`: the console's conversation list (waiting for a human first, with contact,
//! channel, last message and unread count), and `POST /v1/conversations/{id}/read`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::extract::{Member, Viewer};
use crate::error::{ApiError, ApiQuery};
use crate::http::kit::{Id, resource};
use crate::state::AppState;
use crate::store::console::InboxItem;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(inbox))
        .routes(routes!(mark_read))
}

/// How many conversations.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// Conversations to list (1-200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// The inbox: conversations waiting for a human first, then the most recently active.
/// Unread counts are the caller's (an API key, which is nobody, has read nothing).
#[utoipa::path(get, path = "/v1/inbox", tag = "conversations", params(InboxQuery),
    responses((status = 200, body = Vec<InboxItem>), (status = 400, body = crate::error::Problem)))]
async fn inbox(
    State(state): State<AppState>,
    member: Member<Viewer>,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> Result<Json<Vec<InboxItem>>, ApiError> {
    let limit = crate::http::kit::page_size(q.limit)?;
    let user = member
        .user()
        .map(|u| u.0)
        .unwrap_or_else(|_| uuid::Uuid::nil());
    Ok(Json(state.store.inbox(&member.scope, user, limit).await?))
}

/// Mark a conversation read up to its latest message (for the calling member).
#[utoipa::path(post, path = "/v1/conversations/{id}/read", tag = "conversations", params(("id" = String, Path, description = "conversation id")),
    responses((status = 204), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn mark_read(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Id(id): Id<resource::Conversation>,
) -> Result<StatusCode, ApiError> {
    let user = member.user()?;
    // 404 for another tenant's (or no) conversation.
    state.store.conversation(&member.scope, id).await?;
    state.store.mark_read(&member.scope, id, user.0).await?;
    Ok(StatusCode::NO_CONTENT)
}
