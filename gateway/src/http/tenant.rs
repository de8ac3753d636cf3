//! `/v1/tenant`: the tenant's profile and its coach persona (name, tone, language, greeting,
//! coaching style, boundaries), which the brain puts at the head of every prompt.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use coach_connector_api::TenantId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::extract::{Admin, Member, Owner, Viewer};
use crate::error::{ApiError, ApiJson};
use crate::http::limits::ClientIp;
use crate::programs::Outreach;
use crate::state::AppState;
use crate::store::{AuditEntry, Tenant};
pub use crate::tenant::{Chunking, Persona, TenantProfile};

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
}

/// Changes to the tenant; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    /// A new display name.
    pub name: Option<String>,
    /// A new persona (replaces the old one whole).
    pub persona: Option<Persona>,
    /// Delete messages older than this many days (1-3650); `0` keeps them until erased.
    pub retention_days: Option<u32>,
    /// Rules for proactive messages (replaces the old ones whole).
    pub outreach: Option<Outreach>,
    /// How documents are chunked from now on; `null` returns to the gateway's default.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Chunking>)]
    pub chunking: Option<Option<Chunking>>,
}

/// A field that may be absent (unchanged), `null` (cleared) or a value.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
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
    }
}

/// The tenant and its coach persona.
#[utoipa::path(get, path = "/v1/tenant", tag = "tenant", security(("bearer" = [])), responses((status = 200, body = TenantView)))]
async fn get_tenant(
    State(state): State<AppState>,
    member: Member<Viewer>,
) -> Result<Json<TenantView>, ApiError> {
    let (tenant, profile) = state.store.tenant_profile(&member.scope).await?;
    Ok(Json(view(tenant, profile)))
}

/// Rename the tenant or change the coach persona.
#[utoipa::path(patch, path = "/v1/tenant", tag = "tenant", request_body = UpdateTenant, security(("bearer" = [])),
    responses((status = 200, body = TenantView), (status = 422, body = crate::error::Problem)))]
async fn update_tenant(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    ApiJson(req): ApiJson<UpdateTenant>,
) -> Result<Json<TenantView>, ApiError> {
    let name = req
        .name
        .map(|n| {
            let n = n.trim().to_owned();
            if n.is_empty() || n.chars().count() > 100 {
                Err(ApiError::Unprocessable("name: 1 to 100 characters".into()))
            } else {
                Ok(n)
            }
        })
        .transpose()?;
    if let Some(persona) = &req.persona {
        persona.validate()?;
    }
    if req.retention_days.is_some_and(|d| d > 3650) {
        return Err(ApiError::Unprocessable(
            "retention_days: 1 to 3650, or 0 to keep messages until erased".into(),
        ));
    }
    if let Some(outreach) = &req.outreach {
        outreach.validate().map_err(ApiError::Unprocessable)?;
    }
    if let Some(Some(chunking)) = req.chunking {
        chunking.validate()?;
    }
    let profile = if req.persona.is_some()
        || req.retention_days.is_some()
        || req.outreach.is_some()
        || req.chunking.is_some()
    {
        let (_, mut profile) = state.store.tenant_profile(&member.scope).await?;
        if let Some(persona) = req.persona {
            profile.persona = Some(persona);
        }
        if let Some(outreach) = req.outreach {
            profile.outreach = Some(outreach);
        }
        if let Some(chunking) = req.chunking {
            profile.chunking = chunking;
        }
        match req.retention_days {
            Some(0) => profile.retention_days = None,
            Some(days) => profile.retention_days = Some(days),
            None => {}
        }
        Some(profile)
    } else {
        None
    };
    let (tenant, profile) = state
        .store
        .update_tenant_profile(&member.scope, name, profile)
        .await?;
    let entry = AuditEntry {
        actor: member.actor(),
        action: "tenant.update".into(),
        resource_type: "tenant".into(),
        resource_id: Some(tenant.id.to_string()),
        ip: Some(ip.0.to_string()),
        details: serde_json::json!({}),
    };
    state.store.audit(&member.scope, entry).await?;
    Ok(Json(view(tenant, profile)))
}

/// Erase the tenant with every channel, contact, conversation, message and audit record;
/// every session in it ends. Owners only; there is no undo.
#[utoipa::path(delete, path = "/v1/tenant", tag = "tenant", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = crate::error::Problem)))]
async fn erase_tenant(
    State(state): State<AppState>,
    member: Member<Owner>,
) -> Result<axum::http::StatusCode, ApiError> {
    let sessions = state.store.erase_tenant(&member.scope).await?;
    crate::connectors::media::remove_dir(crate::connectors::media::tenant_dir(
        &state.config.data_dir,
        member.scope.tenant_id(),
    ))
    .await;
    state.auth.end_sessions(sessions).await?;
    tracing::warn!(tenant = %member.scope.tenant_id(), by = %member.actor(), "tenant erased");
    Ok(axum::http::StatusCode::NO_CONTENT)
}
