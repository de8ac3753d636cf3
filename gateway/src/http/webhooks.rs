//! `/webhooks/{kind}/{channel_id}`: provider webhooks for every connector (built in and
//! plugins). The channel names its tenant; the connector authenticates and parses the request;
//! the events are stored (deduplicated) before the provider gets its 200. 401 on a bad
//! signature or secret, 403 on a wrong verification token, 400 on a body the provider would not
//! send, 404 for an unknown or disabled channel, 503 when the events could not be stored (the
//! provider retries).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use coach_connector_api::{ChannelId, ConnectorError, HttpMethod, HttpRequest};
use uuid::Uuid;

use crate::connectors::WebhookChannelError;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::StoreError;
use crate::tenancy::SystemScope;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/webhooks/{kind}/{channel_id}", any(webhook))
}

async fn webhook(
    State(state): State<AppState>,
    Path((kind, channel_id)): Path<(String, String)>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let method = match method {
        Method::GET => HttpMethod::Get,
        Method::POST => HttpMethod::Post,
        _ => return Err(ApiError::BadRequest("webhooks take GET or POST".into())),
    };
    let unknown = || ApiError::NotFound("channel");
    let id = channel_id
        .parse::<Uuid>()
        .map(ChannelId)
        .map_err(|_| unknown())?;
    let cached = match state
        .connectors
        .webhook_channel(state.store.as_ref(), &state.secrets, id)
        .await
    {
        Ok(c) => c,
        Err(WebhookChannelError::Store(StoreError::NotFound(_))) => return Err(unknown()),
        Err(WebhookChannelError::Store(e)) => return Err(e.into()),
        Err(WebhookChannelError::Config(e)) => return Err(ApiError::Internal(e.into())),
    };
    let (channel, config) = &*cached;
    if channel.kind.as_str() != kind || !channel.enabled {
        return Err(unknown());
    }
    let connector = state.connectors.get(&channel.kind).ok_or_else(unknown)?;
    // A suspended tenant stores nothing: providers retry a 503, so what arrives while it is
    // suspended is delivered again if it is resumed within their retry window.
    let status = state
        .store
        .tenant_status(&SystemScope::new("webhook"), channel.tenant_id)
        .await?;
    if status == crate::store::TenantStatus::Suspended {
        let mut refused =
            ApiError::Unavailable("this tenant is suspended; retry later".into()).into_response();
        refused.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            HeaderValue::from_static("3600"),
        );
        return Ok(refused);
    }
    let request = HttpRequest {
        method: Some(method),
        query: query.unwrap_or_default(),
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
    };
    let inbound = connector.inbound(config, &request).map_err(|e| {
        metrics::counter!("webhook_rejected_total", "kind" => kind.clone()).increment(1);
        tracing::info!(channel = %channel.id, %kind, error = %e, "webhook refused");
        match e {
            ConnectorError::Unauthorized(m) => ApiError::Unauthorized(m),
            ConnectorError::Forbidden(m) => ApiError::Forbidden(m),
            ConnectorError::BadRequest(m) | ConnectorError::Unsupported(m) => {
                ApiError::BadRequest(m)
            }
            ConnectorError::Config(m) | ConnectorError::Held(m) => {
                ApiError::Unavailable(format!("the channel is misconfigured: {m}"))
            }
        }
    })?;
    for refused in &inbound.refused {
        tracing::warn!(channel = %channel.id, %kind, %refused, "webhook part refused, not stored");
    }
    if !inbound.events.is_empty() {
        let scope = SystemScope::new("webhook").for_tenant(channel.tenant_id);
        state
            .stream
            .ingest(&scope, channel.id, inbound.events)
            .await
            .map_err(|e| {
                tracing::warn!(channel = %channel.id, error = %e, "webhook events not stored; the provider will retry");
                ApiError::Unavailable("the events could not be stored; retry".into())
            })?;
    }
    let Some(answer) = inbound.response else {
        return Ok((StatusCode::OK, axum::Json(serde_json::json!({}))).into_response());
    };
    let mut response = (
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK),
        answer.body,
    )
        .into_response();
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}
