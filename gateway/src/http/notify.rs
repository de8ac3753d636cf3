//! `/v1/tenant/notify`: the creator's own webhook for handoff notices (see `crate::handoff` for
//! the signature). Setting it makes a new signing secret, shown once.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
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
    OpenApiRouter::new().routes(routes!(get_notify, set_notify, remove_notify))
}

/// Where handoff notices go.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetNotify {
    /// An `https://` (or `http://`) URL that accepts POSTed JSON.
    #[schema(min_length = 1, pattern = "^https?://")]
    pub url: String,
}

/// The webhook as configured.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotifyView {
    /// The URL, if one is set.
    pub url: Option<String>,
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
    Ok(Json(NotifyView { url, secret: None }))
}

/// Send handoff notices to this URL, signed with a new secret (returned once). Each POST has
/// `Coach-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
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
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("randomness: {e}")))?;
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let mut notify = serde_json::json!({ "url": url, "secret": secret });
    state
        .secrets
        .seal(&mut notify)
        .map_err(|e| ApiError::Internal(e.into()))?;
    save(&state, &member, ip, Some(notify)).await?;
    Ok(Json(NotifyView {
        url: Some(url.to_string()),
        secret: Some(secret),
    }))
}

/// Stop sending handoff notices.
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

async fn save(
    state: &AppState,
    member: &Member<Admin>,
    ClientIp(ip): ClientIp,
    notify: Option<serde_json::Value>,
) -> Result<(), ApiError> {
    let (_, mut profile) = state.store.tenant_profile(&member.scope).await?;
    let action = if notify.is_some() {
        "notify.set"
    } else {
        "notify.remove"
    };
    profile.notify = notify;
    state
        .store
        .update_tenant_profile(&member.scope, None, Some(profile))
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
