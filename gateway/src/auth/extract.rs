//! `Member<R>`: the extractor every tenant route names, with the least role it needs.
//! It verifies the bearer token, refuses ended sessions, checks the role, and yields the
//! request's [`TenantScope`], which the store requires.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use uuid::Uuid;

use super::tokens::TokenError;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{Role, UserId};
use crate::tenancy::TenantScope;

/// The least role a route needs.
pub trait Need: Send + Sync + 'static {
    /// The role.
    const ROLE: Role;
}

/// Any member (viewer and up).
pub struct Viewer;
/// Editors and up.
pub struct Editor;
/// Admins and owners.
pub struct Admin;
/// Owners only.
pub struct Owner;

impl Need for Viewer {
    const ROLE: Role = Role::Viewer;
}
impl Need for Editor {
    const ROLE: Role = Role::Editor;
}
impl Need for Admin {
    const ROLE: Role = Role::Admin;
}
impl Need for Owner {
    const ROLE: Role = Role::Owner;
}

/// An authenticated member of a tenant with at least role `R`.
pub struct Member<R: Need = Viewer> {
    /// The user.
    pub user: UserId,
    /// The user's role.
    pub role: Role,
    /// The session (for logout).
    pub session: Uuid,
    /// The tenant scope for the store.
    pub scope: TenantScope,
    _need: PhantomData<R>,
}

impl<R: Need> FromRequestParts<AppState> for Member<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or_else(|| {
                ApiError::Unauthorized("send `Authorization: Bearer <access token>`".into())
            })?;
        let claims = state
            .auth
            .tokens
            .verify(token.trim())
            .await
            .map_err(|e| match e {
                TokenError::Invalid(why) => {
                    tracing::debug!(%why, "access token refused");
                    ApiError::Unauthorized("invalid or expired access token".into())
                }
                TokenError::Store(e) => e.into(),
            })?;
        if state.auth.revoked.is_revoked(claims.sid).await? {
            return Err(ApiError::Unauthorized(
                "this session has ended; log in again".into(),
            ));
        }
        state.limits.tenant_request(claims.tid)?;
        if !claims.role.allows(R::ROLE) {
            return Err(ApiError::Forbidden(format!(
                "this needs the {} role or higher",
                R::ROLE.as_str()
            )));
        }
        Ok(Self {
            user: claims.user(),
            role: claims.role,
            session: claims.sid,
            scope: TenantScope::authenticated(claims.tenant(), format!("user:{}", claims.sub)),
            _need: PhantomData,
        })
    }
}
