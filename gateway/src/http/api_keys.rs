//! `/v1/api-keys`: keys for server-to-server use. The secret is shown once at creation and
//! stored only as a hash; its prefix stays visible; a key's role is at most its creator's.
//! Send it as `Authorization: Bearer cgk_...`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::extract::{Admin, Member};
use crate::error::{ApiError, ApiJson};
use crate::http::kit::{self, Id, resource};
use crate::http::limits::ClientIp;
use crate::state::AppState;
use crate::store::{ApiKeyRecord, Role};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
}

/// A key to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// What it is for.
    #[schema(min_length = 1)]
    pub name: String,
    /// What it may do: `admin`, `editor` or `viewer` (at most your role).
    pub role: Role,
}

/// A new key; `key` is shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyCreated {
    /// The key's record.
    #[serde(flatten)]
    pub record: ApiKeyRecord,
    /// The secret: `Authorization: Bearer <key>`.
    pub key: String,
}

/// Make a key.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", request_body = CreateKey,
    responses((status = 201, body = KeyCreated), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn create_key(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    ApiJson(req): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<KeyCreated>), ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::Unprocessable("name: 1 to 100 characters".into()));
    }
    let (record, key) = state
        .auth
        .create_api_key(
            &member.scope,
            member.user().ok(),
            member.role,
            name,
            req.role,
        )
        .await?;
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "api_key.create", "api_key", record.id),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(KeyCreated { record, key })))
}

/// The tenant's keys (never their secrets).
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys",
    responses((status = 200, body = Vec<ApiKeyRecord>)))]
async fn list_keys(
    State(state): State<AppState>,
    member: Member<Admin>,
) -> Result<Json<Vec<ApiKeyRecord>>, ApiError> {
    Ok(Json(state.store.api_keys(&member.scope).await?))
}

/// Revoke a key: it stops working at once.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "key id")),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
async fn revoke_key(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    Id(id): Id<resource::ApiKey>,
) -> Result<StatusCode, ApiError> {
    state.store.revoke_api_key(&member.scope, id).await?;
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "api_key.revoke", "api_key", id),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
