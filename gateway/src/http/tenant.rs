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

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_tenant, update_tenant, erase_tenant))
}

/// How the coach presents itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Persona {
    /// The coach's name, e.g. "Maya".
    pub coach_name: String,
    /// Tone of voice, e.g. "warm, direct, no jargon".
    pub tone: String,
    /// Answer language as a BCP 47 tag (`en`, `es`, `pt-BR`); empty: the person's language.
    pub language: String,
    /// The first message a new person receives.
    pub greeting: String,
    /// How the coach works with people (questions first, small steps...).
    pub coaching_style: String,
    /// What the coach never does (medical advice, prices...).
    pub boundaries: String,
}

impl Persona {
    fn validate(&self) -> Result<(), ApiError> {
        let fields = [
            ("coach_name", &self.coach_name, 100),
            ("tone", &self.tone, 500),
            ("greeting", &self.greeting, 2000),
            ("coaching_style", &self.coaching_style, 2000),
            ("boundaries", &self.boundaries, 2000),
        ];
        for (name, value, max) in fields {
            if value.chars().count() > max {
                return Err(ApiError::Unprocessable(format!(
                    "persona.{name}: at most {max} characters"
                )));
            }
        }
        let lang = &self.language;
        let ok = lang.is_empty()
            || (lang.len() <= 35
                && lang.split('-').all(|part| {
                    (1..=8).contains(&part.len()) && part.chars().all(|c| c.is_ascii_alphanumeric())
                }));
        if !ok {
            return Err(ApiError::Unprocessable(format!(
                "persona.language: {lang:?} is not a language tag such as en or pt-BR"
            )));
        }
        Ok(())
    }
}

/// How the tenant's documents are cut into chunks (absent: the operator's `brain.chunk_tokens`
/// and `brain.chunk_overlap`). Applies to documents indexed from then on: re-index the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Chunking {
    /// Chunk size in embedding tokens (16 to 512; the embedding model reads at most 512).
    pub chunk_tokens: u32,
    /// Tokens repeated between consecutive chunks (under half of `chunk_tokens`).
    pub chunk_overlap: u32,
}

impl Chunking {
    fn validate(self) -> Result<(), ApiError> {
        if !(16..=512).contains(&self.chunk_tokens) || self.chunk_overlap * 2 >= self.chunk_tokens {
            return Err(ApiError::Unprocessable(format!(
                "chunking: {} tokens with {} overlap; use 16 to 512 tokens and an overlap under half of them",
                self.chunk_tokens, self.chunk_overlap
            )));
        }
        Ok(())
    }

    /// The tenant's chunking from its profile, if it set one.
    pub fn of(profile: &serde_json::Value) -> Option<Self> {
        serde_json::from_value(profile.get("chunking")?.clone()).ok()
    }
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

fn view(tenant: Tenant, profile: serde_json::Value) -> TenantView {
    let persona = serde_json::from_value(profile.get("persona").cloned().unwrap_or_default())
        .unwrap_or_default();
    let retention_days = profile
        .get("retention_days")
        .and_then(serde_json::Value::as_u64)
        .and_then(|d| u32::try_from(d).ok());
    TenantView {
        id: tenant.id,
        name: tenant.name,
        created_at: tenant.created_at,
        persona,
        retention_days,
        outreach: Outreach::of(&profile),
        chunking: Chunking::of(&profile),
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
        if !profile.is_object() {
            profile = serde_json::json!({});
        }
        if let Some(persona) = req.persona {
            profile["persona"] =
                serde_json::to_value(persona).map_err(|e| ApiError::Internal(e.into()))?;
        }
        if let Some(outreach) = req.outreach {
            profile["outreach"] =
                serde_json::to_value(outreach).map_err(|e| ApiError::Internal(e.into()))?;
        }
        match req.chunking {
            Some(Some(chunking)) => {
                profile["chunking"] =
                    serde_json::to_value(chunking).map_err(|e| ApiError::Internal(e.into()))?;
            }
            Some(None) => profile["chunking"] = serde_json::Value::Null,
            None => {}
        }
        match req.retention_days {
            Some(0) => profile["retention_days"] = serde_json::Value::Null,
            Some(days) => profile["retention_days"] = days.into(),
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
