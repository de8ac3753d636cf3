//! `/v1/auth/*` and `/v1/me`: registration, login, token refresh, logout, the current user.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::response::{IntoResponse, Response};

use crate::auth::extract::{Member, Viewer};
use crate::auth::{Joined, TokenPair};
use crate::error::{ApiError, ApiJson};
use crate::http::limits::ClientIp;
use crate::state::AppState;
use crate::store::{Role, User};
use crate::tenancy::SystemScope;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(request_reset))
        .routes(routes!(confirm_reset))
        .routes(routes!(verify_email))
        .routes(routes!(resend_confirmation))
}

/// The answer to a new account that confirms its e-mail address before it logs in
/// (`auth.verify_email`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfirmationSent {
    /// Always `confirm_email`.
    pub status: &'static str,
    /// The address the confirmation link was sent to.
    pub email: String,
    /// What to do next.
    pub detail: &'static str,
}

/// A session (`status` 200 or 201), or 202 with [`ConfirmationSent`].
pub(super) fn joined(joined: Joined, session: StatusCode) -> Response {
    match joined {
        Joined::Session(pair) => (session, Json(pair)).into_response(),
        Joined::ConfirmEmail(email) => (
            StatusCode::ACCEPTED,
            Json(ConfirmationSent {
                status: "confirm_email",
                email,
                detail: "open the link sent to this address (valid 24 hours), then log in",
            }),
        )
            .into_response(),
    }
}

/// A new tenant and its owner.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The owner's login e-mail.
    pub email: String,
    /// 10 to 1024 characters and hard to guess (zxcvbn score 3 or more, else 422 with a hint).
    #[schema(min_length = 10, max_length = 1024)]
    pub password: String,
    /// The tenant's display name.
    pub tenant_name: String,
}

/// E-mail and password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The login e-mail.
    pub email: String,
    /// The password.
    pub password: String,
    /// The tenant to act for (default: the one of the account's latest session).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub tenant_id: Option<coach_connector_api::TenantId>,
}

/// A refresh token to exchange.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last pair (single use).
    pub refresh_token: String,
}

/// The current user and the tenant the token acts for.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The user.
    pub user: User,
    /// The tenant.
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: coach_connector_api::TenantId,
    /// The user's role there.
    pub role: Role,
}

pub(super) fn valid_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim();
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(email.to_owned())
    } else {
        Err(ApiError::Unprocessable(format!(
            "email: {email:?} is not an e-mail address"
        )))
    }
}

/// Create a tenant and its owner; answers with the owner's first token pair, or (when new
/// accounts confirm their e-mail address) 202: log in once the address is confirmed.
#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = TokenPair), (status = 202, body = ConfirmationSent), (status = 409, description = "e-mail taken", body = crate::error::Problem),
        (status = 422, description = "weak password or bad e-mail", body = crate::error::Problem)))]
async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    state.limits.auth_attempt(ip).await?;
    let email = valid_email(&req.email)?;
    let name = req.tenant_name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::Unprocessable(
            "tenant_name: 1 to 100 characters".into(),
        ));
    }
    let done = state.auth.register(&email, &req.password, name).await?;
    Ok(joined(done, StatusCode::CREATED))
}

/// Log in; the same answer for an unknown e-mail and a wrong password. An account that has
/// not confirmed its e-mail address gets 403 (`email-unconfirmed`).
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem),
        (status = 429, description = "too many attempts from this address", body = crate::error::Problem)))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    state.limits.auth_attempt(ip).await?;
    Ok(Json(
        state
            .auth
            .login(req.email.trim(), &req.password, req.tenant_id)
            .await?,
    ))
}

/// Exchange a refresh token for a new pair; a token presented twice ends its session.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = crate::error::Problem)))]
async fn refresh(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    state.limits.auth_attempt(ip).await?;
    Ok(Json(state.auth.refresh(req.refresh_token.trim()).await?))
}

/// End this session: its refresh token and access tokens stop working.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = crate::error::Problem)))]
async fn logout(
    State(state): State<AppState>,
    member: Member<Viewer>,
) -> Result<StatusCode, ApiError> {
    state.auth.logout(member.session()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The current user, tenant and role.
#[utoipa::path(get, path = "/v1/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = crate::error::Problem)))]
async fn me(State(state): State<AppState>, member: Member<Viewer>) -> Result<Json<Me>, ApiError> {
    let user = state
        .store
        .user(&SystemScope::new("current user"), member.user()?)
        .await?;
    Ok(Json(Me {
        user,
        tenant_id: member.scope.tenant_id(),
        role: member.role,
    }))
}

/// The current password and a new one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The password in use now.
    pub current_password: String,
    /// The new password (10 to 1024 characters, hard to guess, else 422 with a hint).
    #[schema(min_length = 10, max_length = 1024)]
    pub new_password: String,
}

/// Change the password; every session of the user ends, this one included.
#[utoipa::path(post, path = "/v1/auth/password", tag = "auth", request_body = ChangePassword,
    responses((status = 204), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn change_password(
    State(state): State<AppState>,
    member: Member<Viewer>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    state.limits.auth_attempt(ip).await?;
    state
        .auth
        .change_password(member.user()?, &req.current_password, &req.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The account whose password is forgotten.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The login e-mail.
    #[schema(format = Email)]
    pub email: String,
}

/// A reset token and the new password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    /// The token from the e-mail.
    pub token: String,
    /// The new password (10 to 1024 characters, hard to guess, else 422 with a hint).
    #[schema(min_length = 10, max_length = 1024)]
    pub new_password: String,
}

/// E-mail a reset link (valid 30 minutes). The answer is 202 whether the account exists or not;
/// 403 when this gateway has no SMTP relay, 503 when the relay fails.
#[utoipa::path(post, path = "/v1/auth/password-reset", tag = "auth", request_body = ResetRequest,
    responses((status = 202), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem),
        (status = 503, body = crate::error::Problem)))]
async fn request_reset(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    state.limits.auth_attempt(ip).await?;
    let email = valid_email(&req.email)?;
    state.auth.request_password_reset(&email).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Choose a new password with the token from the e-mail; every session ends.
#[utoipa::path(post, path = "/v1/auth/password-reset/confirm", tag = "auth", request_body = ResetConfirm,
    responses((status = 204), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn confirm_reset(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<ResetConfirm>,
) -> Result<StatusCode, ApiError> {
    state.limits.auth_attempt(ip).await?;
    state
        .auth
        .confirm_password_reset(req.token.trim(), &req.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The token of an e-mail confirmation link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmEmail {
    /// The token from the link (`ev_...`).
    pub token: String,
}

/// Confirm the account's e-mail address with the token from its link; then log in.
#[utoipa::path(post, path = "/v1/auth/verify-email", tag = "auth", request_body = ConfirmEmail,
    responses((status = 204), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn verify_email(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<ConfirmEmail>,
) -> Result<StatusCode, ApiError> {
    state.limits.auth_attempt(ip).await?;
    state.auth.confirm_email(req.token.trim()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send a new confirmation link (valid 24 hours). The answer is 202 whether the account
/// exists, is confirmed already, or not; 403 when this gateway does not ask for confirmation.
#[utoipa::path(post, path = "/v1/auth/verify-email/resend", tag = "auth", request_body = ResetRequest,
    responses((status = 202), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn resend_confirmation(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    state.limits.auth_attempt(ip).await?;
    let email = valid_email(&req.email)?;
    state.auth.resend_confirmation(&email).await?;
    Ok(StatusCode::ACCEPTED)
}
