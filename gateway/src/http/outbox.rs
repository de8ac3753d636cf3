//! `/v1/outbox`: deliveries as creators see them, dead letters first of all, and the resend of
//! a dead letter (it really goes through the connector again); `/v1/messages/{id}/media`: the
//! files contacts sent, from the media store.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::extract::{Admin, Member, Viewer};
use crate::error::{ApiError, ApiQuery};
use crate::http::kit::{Id, resource};
use crate::http::limits::ClientIp;
use crate::state::AppState;
use crate::store::AuditEntry;
use crate::store::delivery::OutboxEntry;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_outbox))
        .routes(routes!(retry_outbox))
        .routes(routes!(message_media))
}

/// Which deliveries to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    /// Only the deliveries in this state (all when absent).
    #[param(inline)]
    pub state: Option<DeliveryState>,
    /// At most this many (1-200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its time.
    Pending,
    /// Being sent.
    Inflight,
    /// Sent.
    Done,
    /// Given up after its attempts (retry it with `POST /v1/outbox/{id}/retry`).
    Dead,
}

impl DeliveryState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Inflight => "inflight",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }
}

/// The tenant's deliveries, most recently changed first (`?state=dead`: the dead letters).
#[utoipa::path(get, path = "/v1/outbox", tag = "outbox", params(OutboxQuery),
    responses((status = 200, body = Vec<OutboxEntry>), (status = 400, body = crate::error::Problem)))]
async fn list_outbox(
    State(state): State<AppState>,
    member: Member<Viewer>,
    ApiQuery(query): ApiQuery<OutboxQuery>,
) -> Result<Json<Vec<OutboxEntry>>, ApiError> {
    let wanted = query.state.map(DeliveryState::as_str);
    let limit = crate::http::kit::page_size(query.limit)?;
    Ok(Json(
        state
            .store
            .outbox_entries(&member.scope, wanted, limit)
            .await?,
    ))
}

/// Resend a dead letter: due now, with a fresh attempt count (409 unless it is dead).
#[utoipa::path(post, path = "/v1/outbox/{id}/retry", tag = "outbox",
    params(("id" = String, Path, description = "outbox entry id")),
    responses((status = 200, body = OutboxEntry), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem)))]
async fn retry_outbox(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    Id(id): Id<resource::OutboxEntry>,
) -> Result<Json<OutboxEntry>, ApiError> {
    let entry = state.store.retry_outbox(&member.scope, id).await?;
    state
        .store
        .audit(
            &member.scope,
            AuditEntry {
                actor: member.actor(),
                action: "outbox.retry".into(),
                resource_type: "outbox".into(),
                resource_id: Some(id.to_string()),
                ip: Some(ip.0.to_string()),
                details: serde_json::json!({ "message_id": entry.message_id }),
            },
        )
        .await?;
    Ok(Json(entry))
}

/// The media file of an inbound message, once fetched from its provider (404 before, or for a
/// message without one), or the library file a sent message carried (404 once removed). Served as an attachment, never rendered in place; `X-Media-Kind`
/// says how the console may show it (`image`, `audio` or `video`, with the type read from the
/// file's first bytes, else `file`: a download).
#[utoipa::path(get, path = "/v1/messages/{id}/media", tag = "conversations",
    params(("id" = String, Path, description = "message id")),
    responses((status = 200, description = "the file", content_type = "application/octet-stream"),
        (status = 404, body = crate::error::Problem)))]
async fn message_media(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Id(id): Id<resource::Message>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let message = state.store.message(&member.scope, id).await?;
    let (bytes, declared) = crate::library::message_file(&state.config.data_dir, &message)
        .await
        .ok_or(ApiError::NotFound("media file"))?;
    let declared = declared.as_str();
    let (mime, kind) = match crate::connectors::media::shown_as(&bytes) {
        Some((mime, kind)) => (mime.to_owned(), kind),
        // A declared image, sound or film whose bytes are none of those is just bytes.
        None if ["image/", "audio/", "video/"]
            .iter()
            .any(|p| declared.starts_with(p)) =>
        {
            ("application/octet-stream".to_owned(), "file")
        }
        None => (declared.to_owned(), "file"),
    };
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, mime),
            (
                axum::http::header::HeaderName::from_static("x-media-kind"),
                kind.to_owned(),
            ),
            (
                axum::http::header::CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", id.0),
            ),
            (
                axum::http::header::X_CONTENT_TYPE_OPTIONS,
                "nosniff".to_owned(),
            ),
        ],
        bytes,
    )
        .into_response())
}
