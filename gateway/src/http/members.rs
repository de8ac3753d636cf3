//! `/v1/members`: who belongs to the tenant with which role; invitations, role changes and
//! removal. A tenant always keeps an owner; a changed or removed member's sessions in the tenant
//! end at once. `POST /v1/auth/accept-invite` joins with an invitation.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::TokenPair;
use crate::auth::extract::{Admin, Member, Viewer};
use crate::error::{ApiError, ApiJson};
use crate::http::kit::{self, Id, resource};
use crate::http::limits::ClientIp;
use crate::state::AppState;
use crate::store::{MemberRecord, Role, UserId};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_members))
        .routes(routes!(invite_member, list_invites))
        .routes(routes!(revoke_invite))
        .routes(routes!(change_role, remove_member))
        .routes(routes!(accept_invite))
}

/// Someone to invite.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// Their e-mail.
    #[schema(format = Email)]
    pub email: String,
    /// The role they get.
    pub role: Role,
}

/// An invitation; `invite_token` is shown once, here: send it to the person.
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteCreated {
    /// The invitation id.
    pub id: Uuid,
    /// Who is invited.
    pub email: String,
    /// With which role.
    pub role: Role,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// The single-use secret for `POST /v1/auth/accept-invite`.
    pub invite_token: String,
}

/// A new role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// The role.
    pub role: Role,
}

/// An invitation token and the password of the (new or existing) account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvite {
    /// The token from the invitation.
    pub invite_token: String,
    /// The existing account's password, or the new account's.
    pub password: String,
}

/// The member that `id` names in the caller's tenant (404 otherwise). Only owners act on
/// owners, or make someone owner (`makes_owner`).
async fn target(
    state: &AppState,
    caller: &Member<Admin>,
    user: UserId,
    makes_owner: bool,
) -> Result<UserId, ApiError> {
    let members = state.store.members(&caller.scope).await?;
    let current = members
        .iter()
        .find(|m| m.user_id == user)
        .ok_or(ApiError::NotFound("member"))?;
    if (makes_owner || current.role == Role::Owner) && caller.role != Role::Owner {
        return Err(ApiError::Forbidden(
            "only owners act on owners or make owners".into(),
        ));
    }
    Ok(user)
}

/// The tenant's members.
#[utoipa::path(get, path = "/v1/members", tag = "members", responses((status = 200, body = Vec<MemberRecord>)))]
async fn list_members(
    State(state): State<AppState>,
    member: Member<Viewer>,
) -> Result<Json<Vec<MemberRecord>>, ApiError> {
    Ok(Json(state.store.members(&member.scope).await?))
}

/// Invite someone (admins; only owners invite owners).
#[utoipa::path(post, path = "/v1/members/invites", tag = "members", request_body = InviteRequest,
    responses((status = 201, body = InviteCreated), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn invite_member(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    ApiJson(req): ApiJson<InviteRequest>,
) -> Result<(StatusCode, Json<InviteCreated>), ApiError> {
    let email = super::auth::valid_email(&req.email)?;
    let (invite, token) = state
        .auth
        .invite(
            &member.scope,
            member.user().ok(),
            member.role,
            &email,
            req.role,
        )
        .await?;
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "member.invite", "member", invite.id),
        )
        .await?;
    let created = InviteCreated {
        id: invite.id,
        email: invite.email,
        role: invite.role,
        expires_at: invite.expires_at,
        invite_token: token,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// Pending invitations (admins), newest first; their tokens are never shown again.
#[utoipa::path(get, path = "/v1/members/invites", tag = "members",
    responses((status = 200, body = Vec<crate::store::Invite>), (status = 403, body = crate::error::Problem)))]
async fn list_invites(
    State(state): State<AppState>,
    member: Member<Admin>,
) -> Result<Json<Vec<crate::store::Invite>>, ApiError> {
    Ok(Json(state.store.invites(&member.scope).await?))
}

/// Revoke a pending invitation (admins): its token stops working.
#[utoipa::path(delete, path = "/v1/members/invites/{id}", tag = "members",
    params(("id" = String, Path, description = "invitation id")),
    responses((status = 204), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn revoke_invite(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    Id(id): Id<resource::Invite>,
) -> Result<StatusCode, ApiError> {
    state.store.revoke_invite(&member.scope, id).await?;
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "member.invite_revoke", "member", id),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change a member's role (only owners make or unmake owners; a tenant keeps one owner).
#[utoipa::path(patch, path = "/v1/members/{id}", tag = "members", request_body = RoleChange,
    params(("id" = String, Path, description = "user id")),
    responses((status = 204), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn change_role(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    Id(id): Id<resource::Member>,
    ApiJson(req): ApiJson<RoleChange>,
) -> Result<StatusCode, ApiError> {
    let user = target(&state, &member, id, req.role == Role::Owner).await?;
    let ended = state.store.set_role(&member.scope, user, req.role).await?;
    state.auth.end_sessions(ended).await?;
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "member.role", "member", user),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member (admins; owners only by owners; never the last owner).
#[utoipa::path(delete, path = "/v1/members/{id}", tag = "members",
    params(("id" = String, Path, description = "user id")),
    responses((status = 204), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn remove_member(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    Id(id): Id<resource::Member>,
) -> Result<StatusCode, ApiError> {
    let user = target(&state, &member, id, false).await?;
    let ended = state.store.remove_member(&member.scope, user).await?;
    state.auth.end_sessions(ended).await?;
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "member.remove", "member", user),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Join a tenant with an invitation; answers with a session in that tenant, or 202 for a new
/// account that confirms its e-mail address first (`auth.verify_email`).
#[utoipa::path(post, path = "/v1/auth/accept-invite", tag = "auth", request_body = AcceptInvite,
    responses((status = 200, body = TokenPair), (status = 202, body = super::auth::ConfirmationSent),
        (status = 403, body = crate::error::Problem), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn accept_invite(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<AcceptInvite>,
) -> Result<axum::response::Response, ApiError> {
    state.limits.auth_attempt(ip).await?;
    let done = state
        .auth
        .accept_invite(req.invite_token.trim(), &req.password)
        .await?;
    Ok(super::auth::joined(done, StatusCode::OK))
}
