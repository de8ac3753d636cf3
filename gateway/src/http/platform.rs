//! `/v1/platform/*`: for the gateway's operators (platform administrators, made with
//! `gateway admin create`): list tenants, suspend and resume them. A suspended tenant's
//! sessions end at once, its members cannot log in to it and its API keys stop working.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::extract::Operator;
use crate::error::ApiError;
use crate::http::kit::{Id, resource};
use crate::state::AppState;
use crate::store::TenantSummary;
use crate::tenancy::SystemScope;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants))
        .routes(routes!(suspend_tenant))
        .routes(routes!(resume_tenant))
}

/// Every tenant of the gateway.
#[utoipa::path(get, path = "/v1/platform/tenants", tag = "platform",
    responses((status = 200, body = Vec<TenantSummary>), (status = 403, body = crate::error::Problem)))]
async fn list_tenants(
    State(state): State<AppState>,
    _op: Operator,
) -> Result<Json<Vec<TenantSummary>>, ApiError> {
    Ok(Json(
        state
            .store
            .all_tenants(&SystemScope::new("operator lists tenants"))
            .await?,
    ))
}

/// Suspend a tenant: its sessions end, logins and API keys are refused until resumed.
#[utoipa::path(post, path = "/v1/platform/tenants/{id}/suspend", tag = "platform",
    params(("id" = String, Path, description = "tenant id")),
    responses((status = 204), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn suspend_tenant(
    State(state): State<AppState>,
    op: Operator,
    Id(tenant): Id<resource::Tenant>,
) -> Result<StatusCode, ApiError> {
    let ended = state
        .store
        .set_tenant_active(&SystemScope::new("operator suspends tenant"), tenant, false)
        .await?;
    state.auth.end_sessions(ended).await?;
    // Its visitors' open chats close: here at once, in every other process when the bus
    // brings them the suspension (new ones are refused everywhere).
    state.widget.close_tenant(tenant);
    let scope = SystemScope::new("operator suspends tenant").for_tenant(tenant);
    state
        .stream
        .publish(&scope, crate::bus::StreamPayload::Suspended {})
        .await;
    tracing::warn!(%tenant, by = %op.0.actor(), "tenant suspended");
    Ok(StatusCode::NO_CONTENT)
}

/// Resume a suspended tenant.
#[utoipa::path(post, path = "/v1/platform/tenants/{id}/resume", tag = "platform",
    params(("id" = String, Path, description = "tenant id")),
    responses((status = 204), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn resume_tenant(
    State(state): State<AppState>,
    op: Operator,
    Id(tenant): Id<resource::Tenant>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .set_tenant_active(&SystemScope::new("operator resumes tenant"), tenant, true)
        .await?;
    tracing::info!(%tenant, by = %op.0.actor(), "tenant resumed");
    Ok(StatusCode::NO_CONTENT)
}
