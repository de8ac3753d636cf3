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

/// Who is calling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A person, in one login session.
    User {
        /// The user.
        id: UserId,
        /// The session (refresh-token family).
        session: Uuid,
    },
    /// A server holding an API key.
    ApiKey(Uuid),
}

/// An authenticated member of a tenant (a user or an API key) with at least role `R`.
pub struct Member<R: Need = Viewer> {
    /// Who is calling.
    pub principal: Principal,
    /// Their role in the tenant.
    pub role: Role,
    /// Whether the caller operates the gateway (never for API keys).
    pub platform_admin: bool,
    /// The tenant scope for the store.
    pub scope: TenantScope,
    _need: PhantomData<R>,
}

/// A platform administrator (an operator of the gateway), whatever tenant they act for.
pub struct Operator(pub Member<Viewer>);

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let member = Member::<Viewer>::from_request_parts(parts, state).await?;
        if !member.platform_admin {
            return Err(ApiError::Forbidden(
                "this is for the gateway's operators".into(),
            ));
        }
        Ok(Self(member))
    }
}

impl<R: Need> Member<R> {
    /// The calling user; API keys are refused where a person is needed.
    pub fn user(&self) -> Result<UserId, ApiError> {
        match self.principal {
            Principal::User { id, .. } => Ok(id),
            Principal::ApiKey(_) => Err(ApiError::Forbidden(
                "this needs a user's session, not an API key".into(),
            )),
        }
    }

    /// The calling user's session.
    pub fn session(&self) -> Result<Uuid, ApiError> {
        match self.principal {
            Principal::User { session, .. } => Ok(session),
            Principal::ApiKey(_) => Err(ApiError::Forbidden(
                "API keys have no session: revoke the key instead".into(),
            )),
        }
    }

    /// The caller as the audit log names it: `user:<id>` or `api_key:<id>`.
    pub fn actor(&self) -> String {
        match self.principal {
            Principal::User { id, .. } => format!("user:{id}"),
            Principal::ApiKey(id) => format!("api_key:{id}"),
        }
    }
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
                ApiError::Unauthorized(
                    "send `Authorization: Bearer <access token or API key>`".into(),
                )
            })?
            .trim();
        if token.starts_with(super::API_KEY_PREFIX) {
            let key = state.auth.api_key(token).await?;
            state.limits.tenant_request(key.tenant_id.0).await?;
            if !key.role.allows(R::ROLE) {
                return Err(ApiError::Forbidden(format!(
                    "this needs the {} role or higher",
                    R::ROLE.as_str()
                )));
            }
            return Ok(Self {
                principal: Principal::ApiKey(key.id),
                role: key.role,
                platform_admin: false,
                scope: TenantScope::authenticated(key.tenant_id, format!("api_key:{}", key.id)),
                _need: PhantomData,
            });
        }
        let claims = state.auth.tokens.verify(token).await.map_err(|e| match e {
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
        state.limits.tenant_request(claims.tid).await?;
        if !claims.role.allows(R::ROLE) {
            return Err(ApiError::Forbidden(format!(
                "this needs the {} role or higher",
                R::ROLE.as_str()
            )));
        }
        Ok(Self {
            platform_admin: claims.pa,
            principal: Principal::User {
                id: claims.user(),
                session: claims.sid,
            },
            role: claims.role,
            scope: TenantScope::authenticated(claims.tenant(), format!("user:{}", claims.sub)),
            _need: PhantomData,
        })
    }
}
