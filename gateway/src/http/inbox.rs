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
use crate::store::{ConversationFilter, ConversationStatus};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(inbox))
        .routes(routes!(mark_read))
}

/// How many conversations, and which (the filters of `GET /v1/conversations`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// Conversations to list (1-200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Only conversations on this channel.
    pub channel_id: Option<uuid::Uuid>,
    /// Only conversations in this state.
    pub status: Option<ConversationStatus>,
    /// Search: conversations with a message holding every word of it (letters and digits, any
    /// case), or whose contact's name or address contains it.
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// Only conversations with this label (any case).
    #[param(max_length = 50)]
    pub label: Option<String>,
    /// Whose conversations: `me` (the calling user's), `none` (unassigned) or a member's user id.
    #[param(
        pattern = r"^(me|none|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
    )]
    pub assignee: Option<String>,
}

/// The inbox: conversations waiting for a human first, then the most recently active; with a
/// search (`q`) or filters, only those that match.
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
    let Some(filter) = crate::http::conversations::filter(
        &member,
        ConversationFilter {
            channel: q.channel_id.map(coach_connector_api::ChannelId),
            status: q.status,
            ..ConversationFilter::default()
        },
        q.q.as_deref(),
        q.label.as_deref(),
        q.assignee.as_deref(),
    )?
    else {
        return Ok(Json(Vec::new()));
    };
    Ok(Json(
        state
            .store
            .inbox(&member.scope, user, limit, filter)
            .await?,
    ))
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
