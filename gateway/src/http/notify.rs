//! `/v1/tenant/notify`: the creator's own webhook, the events it takes and the log of its
//! deliveries (see `crate::notify` for the signatures); setting it makes a new signing secret,
//! shown once. `/v1/me/notifications`: whether the calling member gets e-mail on handoff.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::extract::{Admin, Member};
use crate::error::{ApiError, ApiJson};
use crate::http::limits::ClientIp;
use crate::state::AppState;
use crate::store::AuditEntry;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_notify, set_notify, remove_notify, set_events))
        .routes(routes!(deliveries))
        .routes(routes!(get_preferences, set_preferences))
}

/// Where events go, and which.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetNotify {
    /// An `https://` (or `http://`) URL that accepts POSTed JSON.
    #[schema(min_length = 1, pattern = "^https?://")]
    pub url: String,
    /// The events to send (absent: `["handoff.requested"]`): `handoff.requested`,
    /// `message.created`, `conversation.resolved`, `feedback.created`.
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

/// A new choice of events for the webhook already set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetEvents {
    /// The events to send.
    pub events: Vec<String>,
}

/// The webhook as configured.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotifyView {
    /// The URL, if one is set.
    pub url: Option<String>,
    /// The events it takes (empty without a URL).
    pub events: Vec<String>,
    /// The signing secret: only in the answer that set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// The creator's handoff webhook (admins: a webhook URL can be a credential itself).
#[utoipa::path(get, path = "/v1/tenant/notify", tag = "tenant",
    responses((status = 200, body = NotifyView), (status = 403, body = crate::error::Problem)))]
async fn get_notify(
    State(state): State<AppState>,
    member: Member<Admin>,
) -> Result<Json<NotifyView>, ApiError> {
    let (_, profile) = state.store.tenant_profile(&member.scope).await?;
    let url = profile.notify_url().map(str::to_string);
    Ok(Json(NotifyView {
        url,
        events: profile.webhook_events(),
        secret: None,
    }))
}

/// Send events to this URL, signed with a new secret (returned once) per Standard Webhooks:
/// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>` over
/// `"<id>.<timestamp>.<raw body>"` with the key in the secret's base64 (after `whsec_`). The older
/// `Coach-Signature` header is sent beside it for one release (deprecated).
#[utoipa::path(put, path = "/v1/tenant/notify", tag = "tenant", request_body = SetNotify,
    responses((status = 200, body = NotifyView), (status = 422, body = crate::error::Problem)))]
async fn set_notify(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    ApiJson(req): ApiJson<SetNotify>,
) -> Result<Json<NotifyView>, ApiError> {
    let url = req.url.trim();
    let parsed =
        reqwest::Url::parse(url).map_err(|e| ApiError::Unprocessable(format!("url: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ApiError::Unprocessable(
            "url: an http:// or https:// address".into(),
        ));
    }
    crate::fetch::check_literal(&parsed, state.config.http.allow_private_webhooks)
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let events = checked_events(
        req.events
            .unwrap_or_else(|| vec![crate::store::notices::HANDOFF_REQUESTED.to_owned()]),
    )?;
    let secret = crate::notify::new_secret()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("randomness: {e}")))?;
    let mut notify = serde_json::json!({ "url": url, "secret": secret, "events": events });
    state
        .secrets
        .seal(&mut notify)
        .map_err(|e| ApiError::Internal(e.into()))?;
    save(&state, &member, ip, Some(notify)).await?;
    Ok(Json(NotifyView {
        url: Some(url.to_string()),
        events,
        secret: Some(secret),
    }))
}

/// Stop sending events.
#[utoipa::path(delete, path = "/v1/tenant/notify", tag = "tenant",
    responses((status = 204)))]
async fn remove_notify(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
) -> Result<StatusCode, ApiError> {
    save(&state, &member, ip, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Choose the events the webhook takes, keeping its URL and secret.
#[utoipa::path(patch, path = "/v1/tenant/notify", tag = "tenant", request_body = SetEvents,
    responses((status = 200, body = NotifyView), (status = 404, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
async fn set_events(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    ApiJson(req): ApiJson<SetEvents>,
) -> Result<Json<NotifyView>, ApiError> {
    let events = checked_events(req.events)?;
    let (_, profile) = state.store.tenant_profile(&member.scope).await?;
    let Some(url) = profile.notify_url().map(str::to_string) else {
        return Err(ApiError::NotFound("webhook"));
    };
    let mut notify = profile.notify.unwrap_or_default();
    if let Some(fields) = notify.as_object_mut() {
        fields.insert("events".into(), serde_json::json!(events));
    }
    save(&state, &member, ip, Some(notify)).await?;
    Ok(Json(NotifyView {
        url: Some(url),
        events,
        secret: None,
    }))
}

/// Known event types, each once, in the order given; 422 otherwise.
fn checked_events(events: Vec<String>) -> Result<Vec<String>, ApiError> {
    let mut kept: Vec<String> = Vec::new();
    for event in events {
        if !crate::store::notices::EVENT_TYPES.contains(&event.as_str()) {
            return Err(ApiError::Unprocessable(format!(
                "events: {event:?} is not one of {}",
                crate::store::notices::EVENT_TYPES.join(", ")
            )));
        }
        if !kept.contains(&event) {
            kept.push(event);
        }
    }
    Ok(kept)
}

/// How many deliveries to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// At most this many (1-200, default 50).
    pub limit: Option<u32>,
}

/// The latest attempts to deliver events to the webhook, newest first (admins).
#[utoipa::path(get, path = "/v1/tenant/notify/deliveries", tag = "tenant", params(DeliveriesQuery),
    responses((status = 200, body = Vec<crate::store::notices::Delivery>)))]
async fn deliveries(
    State(state): State<AppState>,
    member: Member<Admin>,
    crate::error::ApiQuery(q): crate::error::ApiQuery<DeliveriesQuery>,
) -> Result<Json<Vec<crate::store::notices::Delivery>>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    Ok(Json(state.store.deliveries(&member.scope, limit).await?))
}

/// A member's notification settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// E-mail when a conversation waits for the team (to its assignee, or to owners and
    /// admins when nobody is assigned).
    pub email: bool,
}

/// The calling member's notification settings.
#[utoipa::path(get, path = "/v1/me/notifications", tag = "auth",
    responses((status = 200, body = Preferences), (status = 400, body = crate::error::Problem)))]
async fn get_preferences(
    State(state): State<AppState>,
    member: Member,
) -> Result<Json<Preferences>, ApiError> {
    let user = member.user()?;
    let email = state
        .store
        .email_notifications(&member.scope, user.0)
        .await?;
    Ok(Json(Preferences { email }))
}

/// Change the calling member's notification settings.
#[utoipa::path(put, path = "/v1/me/notifications", tag = "auth", request_body = Preferences,
    responses((status = 200, body = Preferences), (status = 422, body = crate::error::Problem)))]
async fn set_preferences(
    State(state): State<AppState>,
    member: Member,
    ApiJson(req): ApiJson<Preferences>,
) -> Result<Json<Preferences>, ApiError> {
    let user = member.user()?;
    state
        .store
        .set_email_notifications(&member.scope, user.0, req.email)
        .await?;
    Ok(Json(req))
}

async fn save(
    state: &AppState,
    member: &Member<Admin>,
    ClientIp(ip): ClientIp,
    notify: Option<serde_json::Value>,
) -> Result<(), ApiError> {
    let action = if notify.is_some() {
        "notify.set"
    } else {
        "notify.remove"
    };
    state
        .store
        .update_tenant_profile(
            &member.scope,
            None,
            Some(Box::new(move |profile| profile.notify = notify)),
        )
        .await?;
    let entry = AuditEntry {
        actor: member.actor(),
        action: action.into(),
        resource_type: "tenant".into(),
        resource_id: Some(member.scope.tenant_id().to_string()),
        ip: Some(ip.to_string()),
        details: serde_json::json!({}),
    };
    state.store.audit(&member.scope, entry).await?;
    Ok(())
}
