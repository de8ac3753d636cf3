//! `/v1/tenant`: the tenant's profile and its coach persona (name, tone, language, greeting,
//! coaching style, boundaries), which the brain puts at the head of every prompt.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use coach_connector_api::TenantId;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::extract::{Admin, Member, Owner, Viewer};
use crate::error::{ApiError, ApiJson};
use crate::http::kit;
use crate::http::limits::ClientIp;
use crate::programs::Outreach;
use crate::state::AppState;
use crate::store::Tenant;
pub use crate::tenant::{Chunking, Persona, TenantProfile, UpdateTenant};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_tenant, update_tenant, erase_tenant))
}

/// The tenant as its members see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    /// Its id.
    #[schema(value_type = String, format = Uuid)]
    pub id: TenantId,
    /// Its display name.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The coach persona.
    pub persona: Persona,
    /// Messages older than this many days are deleted (none: kept until erased).
    pub retention_days: Option<u32>,
    /// Rules for proactive messages: time zone, quiet hours, opt-out words.
    pub outreach: Outreach,
    /// The tenant's own chunking (absent: the gateway's default).
    pub chunking: Option<Chunking>,
    /// The tenant's own fixed texts per language (empty: the built-in ones).
    #[schema(value_type = Object)]
    pub strings: crate::language::Strings,
    /// When the team answers (none: any time).
    pub business_hours: Option<crate::hours::BusinessHours>,
}

fn view(tenant: Tenant, profile: TenantProfile) -> TenantView {
    TenantView {
        id: tenant.id,
        name: tenant.name,
        created_at: tenant.created_at,
        persona: profile.persona.unwrap_or_default(),
        retention_days: profile.retention_days,
        outreach: profile.outreach.unwrap_or_default(),
        chunking: profile.chunking,
        strings: profile.strings.unwrap_or_default(),
        business_hours: profile.business_hours,
    }
}

/// The tenant and its coach persona.
#[utoipa::path(get, path = "/v1/tenant", tag = "tenant", responses((status = 200, body = TenantView)))]
async fn get_tenant(
    State(state): State<AppState>,
    member: Member<Viewer>,
) -> Result<Json<TenantView>, ApiError> {
    let (tenant, profile) = state.store.tenant_profile(&member.scope).await?;
    Ok(Json(view(tenant, profile)))
}

/// Rename the tenant or change the coach persona.
#[utoipa::path(patch, path = "/v1/tenant", tag = "tenant", request_body = UpdateTenant,
    responses((status = 200, body = TenantView), (status = 422, body = crate::error::Problem)))]
async fn update_tenant(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    ApiJson(req): ApiJson<UpdateTenant>,
) -> Result<Json<TenantView>, ApiError> {
    let (tenant, profile) = crate::tenant::update(state.store.as_ref(), &member.scope, req).await?;
    let entry = kit::audit_entry(&member, ip, "tenant.update", "tenant", tenant.id);
    state.store.audit(&member.scope, entry).await?;
    Ok(Json(view(tenant, profile)))
}

/// Erase the tenant with every channel, contact, conversation, message and audit record;
/// every session in it ends. Owners only; there is no undo.
#[utoipa::path(delete, path = "/v1/tenant", tag = "tenant",
    responses((status = 204), (status = 403, body = crate::error::Problem)))]
async fn erase_tenant(
    State(state): State<AppState>,
    member: Member<Owner>,
) -> Result<axum::http::StatusCode, ApiError> {
    let sessions = state.store.erase_tenant(&member.scope).await?;
    // Its chunks (the documents' text) go from the vector store too: now when it answers, else
    // as soon as it does (the erasure recorded that they must).
    crate::knowledge::forget_erased(state.store.as_ref(), &state.knowledge).await;
    crate::connectors::media::remove_dir(crate::connectors::media::tenant_dir(
        &state.config.data_dir,
        member.scope.tenant_id(),
    ))
    .await;
    state.auth.end_sessions(sessions).await?;
    tracing::warn!(tenant = %member.scope.tenant_id(), by = %member.actor(), "tenant erased");
    Ok(axum::http::StatusCode::NO_CONTENT)
}
