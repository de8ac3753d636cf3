//! `/v1/channels`: a tenant's channel accounts. Secrets in a channel's configuration are never
//! returned (masked), and the webhook URL is built from the operator's `public_url`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use coach_connector_api::{ChannelId, ChannelKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::extract::{Admin, Member, Viewer};
use crate::error::{ApiError, ApiJson};
use crate::http::kit::{self, Id, resource};
use crate::http::limits::ClientIp;
use crate::state::AppState;
use crate::store::{Channel, ChannelPatch, NewChannel};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_channel, list_channels))
        .routes(routes!(channel_health))
        .routes(routes!(get_channel, update_channel, delete_channel))
}

/// A channel to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    /// `whatsapp`, `telegram`, `web_widget` or a plugin's kind (e.g. `sms`): the document
    /// served by a gateway lists the connectors it runs.
    pub kind: String,
    /// A name for creators (not only spaces).
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// Per-kind settings (tokens and secrets are stored, never returned); what each kind needs
    /// is checked by its connector (422 naming what is missing).
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub config: Value,
}

/// Changes to a channel.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChannel {
    /// A new name (not only spaces).
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    /// A new configuration (replaces the old one).
    #[schema(value_type = Option<Object>)]
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

/// Replaces masked secrets (`"********"`) in `new` with their values in `stored`, at any depth.
fn keep_masked(new: &mut Value, stored: &Value) {
    match new {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match v {
                    Value::String(s) if s == "********" && crate::secrets::is_secret(k) => {
                        *v = stored.get(k).cloned().unwrap_or(Value::Null);
                    }
                    other => keep_masked(other, stored.get(k).unwrap_or(&Value::Null)),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                keep_masked(v, stored.get(i).unwrap_or(&Value::Null));
            }
        }
        _ => {}
    }
}

fn view(state: &AppState, c: Channel) -> ChannelView {
    let webhook_url = state
        .connectors
        .has_webhook(&c.kind)
        .then(|| state.connectors.webhook_url(&c.kind, c.id));
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
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(ApiError::Unprocessable(
            "name: 1 to 100 characters, not only spaces".into(),
        ));
    }
    Ok(name.trim().to_owned())
}

/// A widget's starter questions: absent, or up to 4 texts of 1-80 characters.
fn check_starters(starters: Option<&Value>) -> Result<(), ApiError> {
    let bad = || {
        ApiError::Unprocessable(
            "config.starters: up to 4 questions of 1 to 80 characters each".into(),
        )
    };
    match starters {
        None => Ok(()),
        Some(Value::Array(items)) if items.len() <= 4 => {
            items.iter().try_for_each(|item| match item.as_str() {
                Some(t) if !t.trim().is_empty() && t.chars().count() <= 80 => Ok(()),
                _ => Err(bad()),
            })
        }
        // `null` too: the widget's settings would not read, and fall back to none at all.
        Some(_) => Err(bad()),
    }
}

fn check_config(config: Value) -> Result<Value, ApiError> {
    if !config.is_object() {
        return Err(ApiError::Unprocessable(
            "config: must be a JSON object".into(),
        ));
    }
    Ok(config)
}

/// Check a configuration with its connector, adding what the gateway generates (Telegram's
/// webhook secret).
fn prepare_config(
    state: &AppState,
    kind: &ChannelKind,
    config: &mut Value,
) -> Result<(), ApiError> {
    if let Some(key) = state.connectors.generated_secret(kind)
        && let Value::Object(map) = config
        && !map.contains_key(key)
    {
        map.insert(key.into(), Value::from(random_secret()?));
    }
    if let Some(connector) = state.connectors.get(kind) {
        connector
            .validate(config)
            .map_err(|e| ApiError::Unprocessable(format!("config: {e}")))?;
    }
    if *kind == ChannelKind::WebWidget {
        check_starters(config.get("starters"))?;
        // A setting of the wrong type would make the whole configuration unreadable (and the
        // widget fall back to defaults, its origin allow-list included).
        let settings = serde_json::from_value::<super::widget::WidgetSettings>(config.clone())
            .map_err(|e| ApiError::Unprocessable(format!("config: {e}")))?;
        if let Some(form) = &settings.public.prechat {
            form.check().map_err(ApiError::Unprocessable)?;
        }
    }
    Ok(())
}

fn random_secret() -> Result<String, ApiError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::Unavailable(format!("the system random source failed: {e}")))?;
    Ok(hex::encode(bytes))
}

/// Run a connector's provider calls for a channel (`connect` with the plain configuration,
/// or `disconnect`); a refusal is a 502 naming the provider's reason.
async fn provider_calls(
    state: &AppState,
    channel: &Channel,
    plain: Value,
    connecting: bool,
) -> Result<(), ApiError> {
    let Some(connector) = state.connectors.get(&channel.kind) else {
        return Ok(());
    };
    let config = coach_connector_api::ChannelConfig {
        tenant_id: channel.tenant_id,
        channel_id: channel.id,
        settings: plain,
        api_base_url: state.connectors.api_base_url(&channel.kind),
        webhook_url: state.connectors.webhook_url(&channel.kind, channel.id),
    };
    let calls = if connecting {
        connector.connect(&config, &config.webhook_url)
    } else {
        connector.disconnect(&config)
    }
    .map_err(|e| ApiError::Unprocessable(format!("config: {e}")))?;
    for call in calls {
        let response = state.connectors.execute(&call).await.map_err(|e| {
            ApiError::BadGateway(format!("{} could not be reached: {e}", channel.kind))
        })?;
        match connector.outcome(&call, &response) {
            coach_connector_api::SendOutcome::Sent { .. } => {}
            coach_connector_api::SendOutcome::Retry { reason, .. } => {
                return Err(ApiError::BadGateway(format!(
                    "{}: {reason}; try again",
                    channel.kind
                )));
            }
            coach_connector_api::SendOutcome::Failed { code, message } => {
                return Err(ApiError::BadGateway(format!(
                    "{} refused the channel ({code}): {}",
                    channel.kind,
                    crate::connectors::redact(&message)
                )));
            }
        }
    }
    Ok(())
}

async fn connect(state: &AppState, channel: &Channel, plain: Value) -> Result<(), ApiError> {
    provider_calls(state, channel, plain, true).await
}

/// Connect a channel.
#[utoipa::path(post, path = "/v1/channels", tag = "channels", request_body = CreateChannel,
    responses((status = 201, body = ChannelView), (status = 422, body = crate::error::Problem)))]
async fn create_channel(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    ApiJson(req): ApiJson<CreateChannel>,
) -> Result<(StatusCode, Json<ChannelView>), ApiError> {
    let kind = match req.kind.parse::<ChannelKind>() {
        Ok(k)
            if state
                .connectors
                .kinds()
                .iter()
                .any(|known| known == k.as_str()) =>
        {
            k
        }
        _ => {
            return Err(ApiError::Unprocessable(format!(
                "kind: {:?} is not a connector of this gateway ({})",
                req.kind,
                state.connectors.kinds().join(", ")
            )));
        }
    };
    let mut config = check_config(req.config)?;
    prepare_config(&state, &kind, &mut config)?;
    let plain = config.clone();
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
    // Register with the provider (Telegram's setWebhook); a refusal undoes the creation.
    if let Err(e) = connect(&state, &channel, plain).await {
        if let Err(undo) = state.store.delete_channel(&member.scope, channel.id).await {
            tracing::error!(channel = %channel.id, error = %undo, "removing a channel the provider refused failed");
        }
        return Err(e);
    }
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "channel.create", "channel", channel.id),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view(&state, channel))))
}

/// The tenant's channels.
#[utoipa::path(get, path = "/v1/channels", tag = "channels",
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

/// Whether each channel's messages are getting out (the last 24 hours): `failing` when the
/// provider refuses its credentials (a WhatsApp token that expired, a revoked Telegram bot
/// token) and nothing was sent since, `warning` when messages keep dying. The owners and
/// admins are e-mailed once per channel, problem and day.
#[utoipa::path(get, path = "/v1/channels/health", tag = "channels",
    responses((status = 200, body = Vec<crate::notify::health::ChannelHealth>)))]
async fn channel_health(
    State(state): State<AppState>,
    member: Member<Viewer>,
) -> Result<Json<Vec<crate::notify::health::ChannelHealth>>, ApiError> {
    Ok(Json(
        crate::notify::health::check(&*state.store, &state.connectors, &member.scope, Utc::now())
            .await?,
    ))
}

/// One channel.
#[utoipa::path(get, path = "/v1/channels/{id}", tag = "channels",
    params(("id" = String, Path, description = "channel id")),
    responses((status = 200, body = ChannelView), (status = 404, body = crate::error::Problem)))]
async fn get_channel(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Id(id): Id<resource::Channel>,
) -> Result<Json<ChannelView>, ApiError> {
    let channel = state.store.channel(&member.scope, id).await?;
    Ok(Json(view(&state, channel)))
}

/// Rename, reconfigure, enable or disable a channel.
#[utoipa::path(patch, path = "/v1/channels/{id}", tag = "channels", request_body = UpdateChannel,
    params(("id" = String, Path, description = "channel id")),
    responses((status = 200, body = ChannelView), (status = 404, body = crate::error::Problem)))]
async fn update_channel(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    Id(id): Id<resource::Channel>,
    ApiJson(req): ApiJson<UpdateChannel>,
) -> Result<Json<ChannelView>, ApiError> {
    let current = state.store.channel(&member.scope, id).await?;
    let config = match req.config {
        None => None,
        Some(c) => {
            let mut c = check_config(c)?;
            // A secret sent back masked (as `GET` shows it) keeps its stored value.
            let mut stored = current.config.clone();
            state
                .secrets
                .open(&mut stored)
                .map_err(|e| ApiError::Internal(e.into()))?;
            keep_masked(&mut c, &stored);
            prepare_config(&state, &current.kind, &mut c)?;
            // The provider learns the new settings (a new bot, a new secret) before they are kept.
            connect(&state, &current, c.clone()).await?;
            state
                .secrets
                .seal(&mut c)
                .map_err(|e| ApiError::Internal(e.into()))?;
            Some(c)
        }
    };
    let patch = ChannelPatch {
        name: req.name.as_deref().map(check_name).transpose()?,
        config,
        enabled: req.enabled,
    };
    let channel = state.store.update_channel(&member.scope, id, patch).await?;
    state.connectors.forget_channel(id);
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "channel.update", "channel", id),
        )
        .await?;
    Ok(Json(view(&state, channel)))
}

/// Remove a channel with its conversations.
#[utoipa::path(delete, path = "/v1/channels/{id}", tag = "channels",
    params(("id" = String, Path, description = "channel id")),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
async fn delete_channel(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    Id(id): Id<resource::Channel>,
) -> Result<StatusCode, ApiError> {
    let channel = state.store.channel(&member.scope, id).await?;
    // Best effort: a provider that cannot be told (a revoked bot) must not keep a channel alive.
    let mut plain = channel.config.clone();
    if state.secrets.open(&mut plain).is_ok()
        && let Err(e) = provider_calls(&state, &channel, plain, false).await
    {
        tracing::warn!(channel = %id, error = %e, "unregistering the channel at its provider failed");
    }
    let removed = state.store.delete_channel(&member.scope, id).await?;
    state.connectors.forget_channel(id);
    // The files its contacts sent go with it, and the folders of contacts it alone knew.
    crate::connectors::media::remove_after_channel(
        &state.config.data_dir,
        member.scope.tenant_id(),
        removed,
    )
    .await;
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "channel.delete", "channel", id),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_secrets_sent_back_keep_their_stored_values() {
        let stored = serde_json::json!({
            "bot_token": "1:AA", "nested": { "app_secret": "s" }, "title": "Old"
        });
        let mut new = serde_json::json!({
            "bot_token": "********", "nested": { "app_secret": "********" }, "title": "New",
            "identity_secret": "********", "accounts": [{ "token": "********" }]
        });
        let stored = {
            let mut s = stored;
            s["accounts"] = serde_json::json!([{ "token": "t0" }]);
            s
        };
        keep_masked(&mut new, &stored);
        assert_eq!(new["accounts"][0]["token"], "t0");
        assert_eq!(new["bot_token"], "1:AA");
        assert_eq!(new["nested"]["app_secret"], "s");
        assert_eq!(new["title"], "New");
        // A masked secret that was never stored is no secret at all.
        assert!(new["identity_secret"].is_null());
    }

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
