//! `/v1/channels`: a tenant's channel accounts. Secrets in a channel's configuration are never
//! returned (masked), and the webhook URL is built from the operator's `public_url`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use coach_connector_api::{ChannelId, ChannelKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::extract::{Admin, Member, Viewer};
use crate::error::{ApiError, ApiJson};
use crate::http::limits::ClientIp;
use crate::state::AppState;
use crate::store::{AuditEntry, Channel, ChannelPatch, NewChannel};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_channel, list_channels))
        .routes(routes!(get_channel, update_channel, delete_channel))
}

/// A channel to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    /// `whatsapp`, `telegram` or `web_widget`.
    pub kind: String,
    /// A name for creators.
    pub name: String,
    /// Per-kind settings (tokens and secrets are stored, never returned).
    #[serde(default = "empty_object")]
    pub config: Value,
}

/// Changes to a channel.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChannel {
    /// A new name.
    pub name: Option<String>,
    /// A new configuration (replaces the old one).
    pub config: Option<Value>,
    /// Enable or disable the channel.
    pub enabled: Option<bool>,
}

/// A channel as shown to creators.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelView {
    /// Its id.
    #[schema(value_type = String, format = Uuid)]
    pub id: ChannelId,
    /// Its kind.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Whether it accepts and sends messages.
    pub enabled: bool,
    /// Where the provider must send webhooks (none for the widget).
    pub webhook_url: Option<String>,
    /// Its configuration with every secret masked.
    pub config: Value,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

fn mask(config: &Value) -> Value {
    match config {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let shown = if crate::secrets::is_secret(k) && !v.is_null() {
                        Value::from("********")
                    } else {
                        mask(v)
                    };
                    (k.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask).collect()),
        other => other.clone(),
    }
}

fn view(state: &AppState, c: Channel) -> ChannelView {
    let webhook_url = (c.kind != ChannelKind::WebWidget).then(|| {
        format!(
            "{}/webhooks/{}/{}",
            state.config.public_url.trim_end_matches('/'),
            c.kind,
            c.id
        )
    });
    ChannelView {
        id: c.id,
        kind: c.kind.to_string(),
        name: c.name,
        enabled: c.enabled,
        webhook_url,
        config: mask(&c.config),
        created_at: c.created_at,
    }
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::Unprocessable("name: 1 to 100 characters".into()));
    }
    Ok(name.to_owned())
}

fn check_config(config: Value) -> Result<Value, ApiError> {
    if !config.is_object() {
        return Err(ApiError::Unprocessable(
            "config: must be a JSON object".into(),
        ));
    }
    Ok(config)
}

fn parse_id(id: &str) -> Result<ChannelId, ApiError> {
    // Anything that is not an id cannot name a channel of this tenant.
    id.parse::<Uuid>()
        .map(ChannelId)
        .map_err(|_| ApiError::NotFound("channel"))
}

fn audit(
    member: &Member<impl crate::auth::extract::Need>,
    ip: ClientIp,
    action: &str,
    id: ChannelId,
) -> AuditEntry {
    AuditEntry {
        actor: member.actor(),
        action: action.into(),
        resource_type: "channel".into(),
        resource_id: Some(id.to_string()),
        ip: Some(ip.0.to_string()),
        details: Value::Object(serde_json::Map::new()),
    }
}

/// Connect a channel.
#[utoipa::path(post, path = "/v1/channels", tag = "channels", request_body = CreateChannel, security(("bearer" = [])),
    responses((status = 201, body = ChannelView), (status = 422, body = crate::error::Problem)))]
async fn create_channel(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    ApiJson(req): ApiJson<CreateChannel>,
) -> Result<(StatusCode, Json<ChannelView>), ApiError> {
    let kind = match req.kind.parse::<ChannelKind>() {
        Ok(k @ (ChannelKind::WhatsApp | ChannelKind::Telegram | ChannelKind::WebWidget)) => k,
        _ => {
            return Err(ApiError::Unprocessable(format!(
                "kind: {:?} is not a connector of this gateway (whatsapp, telegram, web_widget)",
                req.kind
            )));
        }
    };
    let mut config = check_config(req.config)?;
    state
        .secrets
        .seal(&mut config)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let new = NewChannel {
        kind,
        name: check_name(&req.name)?,
        config,
    };
    let channel = state.store.create_channel(&member.scope, new).await?;
    state
        .store
        .audit(
            &member.scope,
            audit(&member, ip, "channel.create", channel.id),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view(&state, channel))))
}

/// The tenant's channels.
#[utoipa::path(get, path = "/v1/channels", tag = "channels", security(("bearer" = [])),
    responses((status = 200, body = Vec<ChannelView>)))]
async fn list_channels(
    State(state): State<AppState>,
    member: Member<Viewer>,
) -> Result<Json<Vec<ChannelView>>, ApiError> {
    let channels = state.store.channels(&member.scope).await?;
    Ok(Json(
        channels.into_iter().map(|c| view(&state, c)).collect(),
    ))
}

/// One channel.
#[utoipa::path(get, path = "/v1/channels/{id}", tag = "channels", security(("bearer" = [])),
    params(("id" = String, Path, description = "channel id")),
    responses((status = 200, body = ChannelView), (status = 404, body = crate::error::Problem)))]
async fn get_channel(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Path(id): Path<String>,
) -> Result<Json<ChannelView>, ApiError> {
    let channel = state.store.channel(&member.scope, parse_id(&id)?).await?;
    Ok(Json(view(&state, channel)))
}

/// Rename, reconfigure, enable or disable a channel.
#[utoipa::path(patch, path = "/v1/channels/{id}", tag = "channels", request_body = UpdateChannel, security(("bearer" = [])),
    params(("id" = String, Path, description = "channel id")),
    responses((status = 200, body = ChannelView), (status = 404, body = crate::error::Problem)))]
async fn update_channel(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateChannel>,
) -> Result<Json<ChannelView>, ApiError> {
    let id = parse_id(&id)?;
    let patch = ChannelPatch {
        name: req.name.as_deref().map(check_name).transpose()?,
        config: req
            .config
            .map(|c| {
                let mut c = check_config(c)?;
                state
                    .secrets
                    .seal(&mut c)
                    .map_err(|e| ApiError::Internal(e.into()))?;
                Ok::<_, ApiError>(c)
            })
            .transpose()?,
        enabled: req.enabled,
    };
    let channel = state.store.update_channel(&member.scope, id, patch).await?;
    state
        .store
        .audit(&member.scope, audit(&member, ip, "channel.update", id))
        .await?;
    Ok(Json(view(&state, channel)))
}

/// Remove a channel with its conversations.
#[utoipa::path(delete, path = "/v1/channels/{id}", tag = "channels", security(("bearer" = [])),
    params(("id" = String, Path, description = "channel id")),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
async fn delete_channel(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    state.store.delete_channel(&member.scope, id).await?;
    state
        .store
        .audit(&member.scope, audit(&member, ip, "channel.delete", id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_at_any_depth() {
        let config = serde_json::json!({
            "phone_number_id": "123", "access_token": "EAAG", "app_secret": "s",
            "nested": { "bot_token": "1:AA", "mode": "webhook" }, "verify_token": null
        });
        let shown = mask(&config);
        assert_eq!(shown["phone_number_id"], "123");
        assert_eq!(shown["access_token"], "********");
        assert_eq!(shown["app_secret"], "********");
        assert_eq!(shown["nested"]["bot_token"], "********");
        assert_eq!(shown["nested"]["mode"], "webhook");
        assert!(shown["verify_token"].is_null());
    }
}
