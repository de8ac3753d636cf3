//! `/v1/conversations` (newest activity first, cursor pagination, filters), their messages,
//! human handoff (take over, hand back, manual replies), and `/v1/audit-log`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use coach_connector_api::{ChannelId, ContactId, MessageId, OutboundBody};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::extract::{Admin, Editor, Member, Need, Principal, Viewer};
use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::http::kit::{self, Cursor, Id, Paged, resource};
use crate::http::limits::ClientIp;
use crate::state::AppState;
use crate::store::conversations::Lifecycle;
use crate::store::{
    AssigneeFilter, AuditRecord, Conversation, ConversationFilter, ConversationStatus, Page,
    SearchText, StoredMessage,
};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_conversations))
        .routes(routes!(get_conversation))
        .routes(routes!(list_messages, send_message))
        .routes(routes!(take_over))
        .routes(routes!(hand_back))
        .routes(routes!(resolve))
        .routes(routes!(reopen))
        .routes(routes!(snooze))
        .routes(routes!(audit_log))
}

/// Paging and filters of the conversation list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConversationQuery {
    /// The `next_cursor` of the previous page.
    #[param(pattern = r"^[0-9a-f]{48}$")]
    pub cursor: Option<String>,
    /// Items per page (1-200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Only conversations on this channel.
    pub channel_id: Option<Uuid>,
    /// Only conversations with this contact.
    pub contact_id: Option<Uuid>,
    /// Only conversations in this state (`waiting` lists those that asked for a human).
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

/// A listing's filter with its search (`?q=`), label and assignee; `None` when nothing can
/// match (a search of punctuation only).
pub(super) fn filter(
    member: &Member<Viewer>,
    base: ConversationFilter,
    q: Option<&str>,
    label: Option<&str>,
    assignee: Option<&str>,
) -> Result<Option<ConversationFilter>, ApiError> {
    let search = match q.map(str::trim) {
        None | Some("") => None,
        Some(text) => match SearchText::parse(text) {
            Some(search) => Some(search),
            None => return Ok(None),
        },
    };
    let assignee = match assignee {
        None => None,
        Some("none") => Some(AssigneeFilter::Unassigned),
        Some("me") => Some(AssigneeFilter::Member(member.user()?.0)),
        Some(id) => Some(AssigneeFilter::Member(Uuid::parse_str(id).map_err(
            |_| ApiError::BadRequest("assignee must be `me`, `none` or a user id".into()),
        )?)),
    };
    Ok(Some(ConversationFilter {
        search,
        // Labels are stored trimmed and lower-cased.
        label: label.map(|l| l.trim().to_lowercase()),
        assignee,
        ..base
    }))
}

/// The tenant's conversations, most recently active first.
#[utoipa::path(get, path = "/v1/conversations", tag = "conversations", params(ConversationQuery),
    responses((status = 200, body = Paged<Conversation>), (status = 400, body = crate::error::Problem)))]
async fn list_conversations(
    State(state): State<AppState>,
    member: Member<Viewer>,
    ApiQuery(q): ApiQuery<ConversationQuery>,
) -> Result<Json<Paged<Conversation>>, ApiError> {
    let limit = kit::page_size(q.limit)?;
    let before = Cursor::parse(q.cursor.as_deref())?.map(|c| (c.at, c.id));
    let Some(filter) = filter(
        &member,
        ConversationFilter {
            channel: q.channel_id.map(ChannelId),
            contact: q.contact_id.map(ContactId),
            status: q.status,
            ..ConversationFilter::default()
        },
        q.q.as_deref(),
        q.label.as_deref(),
        q.assignee.as_deref(),
    )?
    else {
        return Ok(Json(Paged {
            items: Vec::new(),
            next_cursor: None,
        }));
    };
    let items = state
        .store
        .conversations(&member.scope, Page { before, limit }, filter)
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| {
            items.last().map(|c| {
                Cursor {
                    at: c.last_message_at,
                    id: c.id.0,
                }
                .to_string()
            })
        })
        .flatten();
    Ok(Json(Paged { items, next_cursor }))
}

/// Which end of a conversation a page of messages starts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageOrder {
    /// The first message first; `next_cursor` pages forward.
    #[default]
    Oldest,
    /// The latest message first; `next_cursor` pages back in time.
    Newest,
}

/// A page of a conversation's messages.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// The `next_cursor` of the previous page.
    #[param(pattern = r"^[0-9a-f]{48}$")]
    pub cursor: Option<String>,
    /// Items per page (1-200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `oldest` (default) or `newest`: a long conversation opens on its latest messages.
    pub order: Option<MessageOrder>,
}

/// A conversation's messages, oldest first, or newest first with `order=newest`.
#[utoipa::path(get, path = "/v1/conversations/{id}/messages", tag = "conversations", params(("id" = String, Path, description = "conversation id"), MessagesQuery),
    responses((status = 200, body = Paged<StoredMessage>), (status = 404, body = crate::error::Problem)))]
async fn list_messages(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Id(id): Id<resource::Conversation>,
    ApiQuery(q): ApiQuery<MessagesQuery>,
) -> Result<Json<Paged<StoredMessage>>, ApiError> {
    let limit = kit::page_size(q.limit)?;
    let cursor = Cursor::parse(q.cursor.as_deref())?.map(|c| MessageId(c.id));
    let newest = q.order.unwrap_or_default() == MessageOrder::Newest;
    let items = state
        .store
        .messages(&member.scope, id, cursor, limit, newest)
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|m| Cursor::id(m.id.0)))
        .flatten();
    Ok(Json(Paged { items, next_cursor }))
}

/// How many audit records to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// The newest this many (1-200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// Who did what, the newest records first (owners and admins).
#[utoipa::path(get, path = "/v1/audit-log", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditRecord>), (status = 403, body = crate::error::Problem)))]
async fn audit_log(
    State(state): State<AppState>,
    member: Member<Admin>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditRecord>>, ApiError> {
    let limit = kit::page_size(q.limit)?;
    Ok(Json(state.store.audit_log(&member.scope, limit).await?))
}

/// The user behind a request, if a person (API keys take over as nobody in particular).
fn assignee(member: &Member<impl Need>) -> Option<Uuid> {
    match member.principal {
        Principal::User { id, .. } => Some(id.0),
        Principal::ApiKey(_) => None,
    }
}

/// One conversation.
#[utoipa::path(get, path = "/v1/conversations/{id}", tag = "conversations", params(("id" = String, Path, description = "conversation id")),
    responses((status = 200, body = Conversation), (status = 404, body = crate::error::Problem)))]
async fn get_conversation(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Id(id): Id<resource::Conversation>,
) -> Result<Json<Conversation>, ApiError> {
    Ok(Json(state.store.conversation(&member.scope, id).await?))
}

/// Live views (the console) see a conversation change hands.
async fn announce(
    state: &AppState,
    scope: &crate::tenancy::TenantScope,
    conversation: &Conversation,
) {
    state
        .stream
        .publish(
            scope,
            crate::bus::StreamPayload::Conversation {
                conversation: conversation.clone(),
            },
        )
        .await;
}

/// Take a conversation over: the coach stays silent until it is handed back.
#[utoipa::path(post, path = "/v1/conversations/{id}/takeover", tag = "conversations", params(("id" = String, Path, description = "conversation id")),
    responses((status = 200, body = Conversation), (status = 404, body = crate::error::Problem)))]
async fn take_over(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Id(id): Id<resource::Conversation>,
) -> Result<Json<Conversation>, ApiError> {
    let conversation = state
        .store
        .set_conversation_status(
            &member.scope,
            id,
            ConversationStatus::Human,
            assignee(&member),
        )
        .await?;
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "conversation.takeover", "conversation", id),
        )
        .await?;
    announce(&state, &member.scope, &conversation).await;
    Ok(Json(conversation))
}

/// Resolve a conversation: nobody answers until the contact writes again, which reopens it.
#[utoipa::path(post, path = "/v1/conversations/{id}/resolve", tag = "conversations", params(("id" = String, Path, description = "conversation id")),
    responses((status = 200, body = Conversation), (status = 404, body = crate::error::Problem)))]
async fn resolve(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Id(id): Id<resource::Conversation>,
) -> Result<Json<Conversation>, ApiError> {
    lifecycle(
        &state,
        &member,
        ip,
        id,
        Lifecycle::Resolve,
        "conversation.resolve",
    )
    .await
}

/// Reopen a resolved or snoozed conversation: the coach answers again.
#[utoipa::path(post, path = "/v1/conversations/{id}/reopen", tag = "conversations", params(("id" = String, Path, description = "conversation id")),
    responses((status = 200, body = Conversation), (status = 404, body = crate::error::Problem)))]
async fn reopen(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Id(id): Id<resource::Conversation>,
) -> Result<Json<Conversation>, ApiError> {
    lifecycle(
        &state,
        &member,
        ip,
        id,
        Lifecycle::Reopen,
        "conversation.reopen",
    )
    .await
}

/// Until when to snooze (one of the two; neither: 24 hours).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnoozeRequest {
    /// When the conversation comes back by itself (in the future, within 90 days).
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Or in how many minutes (1-129600).
    #[schema(minimum = 1, maximum = 129600)]
    pub minutes: Option<u32>,
}

/// Snooze a conversation until a time (or the contact's next message), when it comes back to
/// the status it had.
#[utoipa::path(post, path = "/v1/conversations/{id}/snooze", tag = "conversations", params(("id" = String, Path, description = "conversation id")),
    request_body = SnoozeRequest,
    responses((status = 200, body = Conversation), (status = 404, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
async fn snooze(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Id(id): Id<resource::Conversation>,
    ApiJson(req): ApiJson<SnoozeRequest>,
) -> Result<Json<Conversation>, ApiError> {
    // Another tenant's (or an unknown) conversation is a 404 whatever the body says.
    state.store.conversation(&member.scope, id).await?;
    let now = state.clock.now();
    let until = match (req.until, req.minutes) {
        (Some(_), Some(_)) => {
            return Err(ApiError::Unprocessable(
                "give until or minutes, not both".into(),
            ));
        }
        (Some(until), None) => until,
        (None, Some(minutes)) if (1..=129_600).contains(&minutes) => {
            now + chrono::Duration::minutes(i64::from(minutes))
        }
        (None, Some(_)) => {
            return Err(ApiError::Unprocessable("minutes: 1 to 129600".into()));
        }
        (None, None) => now + chrono::Duration::hours(24),
    };
    if until <= now || until > now + chrono::Duration::days(90) {
        return Err(ApiError::Unprocessable(
            "until: a time in the next 90 days".into(),
        ));
    }
    lifecycle(
        &state,
        &member,
        ip,
        id,
        Lifecycle::Snooze(until),
        "conversation.snooze",
    )
    .await
}

/// Apply a lifecycle change, audit it and tell live views.
async fn lifecycle(
    state: &AppState,
    member: &Member<Editor>,
    ip: ClientIp,
    id: coach_connector_api::ConversationId,
    change: Lifecycle,
    action: &str,
) -> Result<Json<Conversation>, ApiError> {
    let resolved = matches!(change, Lifecycle::Resolve);
    let (conversation, was) = state.store.set_lifecycle(&member.scope, id, change).await?;
    // The visitor is asked to rate it (widget channels that ask for ratings); the resolve
    // stands if asking fails.
    if resolved
        && was != ConversationStatus::Resolved
        && let Err(e) =
            crate::http::widget::visitor::ask_rating(state, &member.scope, &conversation).await
    {
        tracing::warn!(error = ?e, conversation = %id, "asking for a rating failed");
    }
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(member, ip, action, "conversation", id),
        )
        .await?;
    announce(state, &member.scope, &conversation).await;
    Ok(Json(conversation))
}

/// Hand a conversation back to the coach.
#[utoipa::path(post, path = "/v1/conversations/{id}/handback", tag = "conversations", params(("id" = String, Path, description = "conversation id")),
    responses((status = 200, body = Conversation), (status = 404, body = crate::error::Problem)))]
async fn hand_back(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Id(id): Id<resource::Conversation>,
) -> Result<Json<Conversation>, ApiError> {
    let conversation = state
        .store
        .set_conversation_status(&member.scope, id, ConversationStatus::Open, None)
        .await?;
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "conversation.handback", "conversation", id),
        )
        .await?;
    announce(&state, &member.scope, &conversation).await;
    Ok(Json(conversation))
}

/// A message written by a member.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualMessage {
    /// The text to send (1 to 4,096 characters; channels split longer texts themselves), or
    /// the caption of `file_id` (up to 1,024 characters, optional).
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub text: Option<String>,
    /// A file of the tenant's library (`POST /v1/files`) to send.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub file_id: Option<uuid::Uuid>,
}

/// What a member's message sends: a text, or a library file with its caption.
async fn manual_body(
    state: &AppState,
    scope: &crate::tenancy::TenantScope,
    channel: coach_connector_api::ChannelId,
    req: ManualMessage,
) -> Result<OutboundBody, ApiError> {
    let text = req.text.as_deref().unwrap_or("").trim().to_owned();
    let length = text.chars().count();
    let Some(file_id) = req.file_id else {
        if length == 0 || length > 4096 {
            return Err(ApiError::Unprocessable(format!(
                "text: {length} characters; send 1 to 4096, or a file_id"
            )));
        }
        return Ok(OutboundBody::Text { text });
    };
    if length > 1024 {
        return Err(ApiError::Unprocessable(format!(
            "text: {length} characters; a file's caption takes at most 1024"
        )));
    }
    let kind = state.store.channel(scope, channel).await?.kind;
    if !state.connectors.carries_files(&kind) {
        return Err(ApiError::Unprocessable(format!(
            "file_id: a {kind} channel cannot carry files; send a link in text"
        )));
    }
    let file = match state.store.file(scope, file_id).await {
        Ok(file) => file,
        Err(crate::store::StoreError::NotFound(_)) => {
            return Err(ApiError::Unprocessable(format!(
                "file_id: {file_id} is not in the file library (POST /v1/files first)"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(crate::library::body(file, Some(text)))
}

/// Send a message as a human. Replying takes the conversation over (the coach stays silent
/// until it is handed back), so the coach never talks over the person who stepped in.
#[utoipa::path(post, path = "/v1/conversations/{id}/messages", tag = "conversations", params(("id" = String, Path, description = "conversation id")),
    request_body = ManualMessage,
    responses((status = 201, body = StoredMessage), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn send_message(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Id(id): Id<resource::Conversation>,
    ApiJson(req): ApiJson<ManualMessage>,
) -> Result<(StatusCode, Json<StoredMessage>), ApiError> {
    let conversation = state.store.conversation(&member.scope, id).await?;
    let body = manual_body(&state, &member.scope, conversation.channel_id, req).await?;
    if conversation.status != ConversationStatus::Human {
        state
            .store
            .set_conversation_status(
                &member.scope,
                id,
                ConversationStatus::Human,
                assignee(&member),
            )
            .await?;
    }
    // Through the conversation stream: stored with its outbox row, then published, so the
    // visitor's widget shows it at once.
    let message = state.stream.send(&member.scope, id, body, None).await?;
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "conversation.reply", "conversation", id),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(message)))
}
