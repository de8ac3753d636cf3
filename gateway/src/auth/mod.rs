//! Accounts and sessions: registration, login, refresh-token rotation with reuse detection,
//! logout, and the extractor that turns a bearer token into a [`TenantScope`].
//!
//! - [`password`]: Argon2id on a bounded blocking pool, strength checks.
//! - [`tokens`]: Ed25519 JWT access tokens with shared, rotatable keys.
//! - [`extract`]: `Member<R>`, the extractor each handler names with the role it needs.
//! - [`Revocations`]: sessions ended before their access tokens expire.

pub mod extract;
pub mod mail;
mod mail_tokens;
pub mod password;
mod revocations;
pub mod tokens;

pub use revocations::Revocations;

use std::sync::Arc;

use base64::Engine as _;
use chrono::Utc;
use coach_connector_api::TenantId;
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::{AuthConfig, Registration};
use crate::error::ApiError;
use crate::store::{
    ApiKeyRecord, Invite, NewRefresh, PendingVerification, RefreshUse, Role, Store, UserId,
};
use crate::tenancy::SystemScope;
use crate::tenancy::TenantScope;
use password::Hasher;
use tokens::Tokens;

/// A fresh pair of tokens.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// Short-lived JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque, single-use token for `POST /v1/auth/refresh`.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    pub expires_in: i64,
    /// The tenant the tokens act for.
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    /// The user.
    pub user_id: UserId,
    /// The user's role in that tenant.
    pub role: Role,
}

/// Everything authentication needs, shared through `AppState`.
#[derive(Clone)]
pub struct Auth {
    store: Arc<dyn Store>,
    /// Access tokens.
    pub tokens: Tokens,
    /// Password hashing.
    pub hasher: Hasher,
    /// Revoked sessions.
    pub revoked: Revocations,
    config: AuthConfig,
    mailer: Option<mail::Mailer>,
    /// New accounts confirm their e-mail address (`auth.verify_email`, needs a mailer).
    verify_email: bool,
    public_url: String,
}

/// What registering, or accepting an invitation without an account, gives.
#[derive(Debug)]
pub enum Joined {
    /// A session for the new member.
    Session(TokenPair),
    /// The account exists but logs in only once its address is confirmed: a link was sent to
    /// this e-mail.
    ConfirmEmail(String),
}

/// How long an e-mail confirmation link works.
const CONFIRMATION_HOURS: i64 = 24;

/// Every API key starts with this, so a bearer value tells what it is.
pub const API_KEY_PREFIX: &str = "cgk_";

/// 32 random bytes, base64url.
fn random_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a bearer secret (refresh tokens, invitations).
fn refresh_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

impl Auth {
    /// The SMTP relay, when one is configured (handoff e-mail uses it too).
    pub fn mailer(&self) -> Option<&mail::Mailer> {
        self.mailer.as_ref()
    }

    /// Authentication over `store` (keys are loaded on first use), with revocations kept in
    /// `revoked`, e-mail through `mailer` and links built on `public_url`.
    pub fn new(
        store: Arc<dyn Store>,
        config: AuthConfig,
        revoked: Revocations,
        mailer: Option<mail::Mailer>,
        public_url: String,
        secrets: crate::secrets::SecretBox,
    ) -> Self {
        let tokens = Tokens::new(
            store.clone(),
            secrets,
            config.issuer.clone(),
            config.access_ttl_secs,
        );
        let hasher = Hasher::new(config.hashing_concurrency);
        let verify_email = mailer.is_some() && config.verify_email.unwrap_or(true);
        Self {
            store,
            tokens,
            hasher,
            revoked,
            config,
            mailer,
            verify_email,
            public_url,
        }
    }

    fn new_refresh(
        &self,
        user: UserId,
        tenant: TenantId,
        family: Uuid,
    ) -> Result<(String, NewRefresh), ApiError> {
        let token = format!("rt_{}", random_token()?);
        let days = i64::try_from(self.config.refresh_ttl_days).unwrap_or(30);
        let record = NewRefresh {
            id: Uuid::now_v7(),
            family_id: family,
            user_id: user,
            tenant_id: tenant,
            token_hash: refresh_hash(&token),
            expires_at: Utc::now() + chrono::Duration::days(days),
        };
        Ok((token, record))
    }

    async fn pair(
        &self,
        user: UserId,
        tenant: TenantId,
        role: Role,
        session: Uuid,
        refresh: String,
    ) -> Result<TokenPair, ApiError> {
        let platform_admin = self
            .store
            .user(&SystemScope::new("issue token"), user)
            .await?
            .platform_admin;
        let access_token = self
            .tokens
            .issue(user, tenant, role, session, platform_admin)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        Ok(TokenPair {
            access_token,
            refresh_token: refresh,
            token_type: "Bearer",
            expires_in: self.tokens.ttl_secs(),
            tenant_id: tenant,
            user_id: user,
            role,
        })
    }

    async fn start_session(
        &self,
        user: UserId,
        tenant: TenantId,
        role: Role,
    ) -> Result<TokenPair, ApiError> {
        let family = Uuid::now_v7();
        let (token, record) = self.new_refresh(user, tenant, family)?;
        self.store
            .create_refresh(&SystemScope::new("start session"), record)
            .await?;
        self.pair(user, tenant, role, family, token).await
    }

    /// Create a tenant and its owner, and log the owner in.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        tenant_name: &str,
    ) -> Result<Joined, ApiError> {
        match self.config.registration {
            Registration::Open => {}
            Registration::InviteOnly => {
                return Err(ApiError::Forbidden(
                    "registration is by invitation only on this gateway".into(),
                ));
            }
            Registration::Closed => {
                return Err(ApiError::Forbidden(
                    "registration is closed on this gateway; ask its operator".into(),
                ));
            }
        }
        if let Some(why) = password::weakness(password, email) {
            return Err(ApiError::Unprocessable(format!("password: {why}")));
        }
        let hash = self
            .hasher
            .hash(password.to_owned())
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?;
        let sys = SystemScope::new("register");
        let confirmation = self.new_confirmation()?;
        let pending = confirmation.as_ref().map(|(_, p)| p.clone());
        let (tenant, user) = self
            .store
            .register(&sys, email, &hash, tenant_name, pending)
            .await?;
        if let Some((token, _)) = confirmation {
            self.send_confirmation(&user.email, &token).await;
            return Ok(Joined::ConfirmEmail(user.email));
        }
        Ok(Joined::Session(
            self.start_session(user.id, tenant.id, Role::Owner).await?,
        ))
    }

    /// Log in to `tenant`, or to the user's first tenant. Unknown e-mail and wrong password get
    /// the same answer after the same work.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        tenant: Option<TenantId>,
    ) -> Result<TokenPair, ApiError> {
        let sys = SystemScope::new("login");
        let creds = self.store.credentials(&sys, email).await?;
        let hash = creds.as_ref().map(|c| c.password_hash.clone());
        let ok = self.hasher.verify(password.to_owned(), hash).await;
        let (Some(creds), true) = (creds, ok) else {
            return Err(ApiError::Unauthorized("wrong e-mail or password".into()));
        };
        // Told only to someone who knows the password.
        if self.verify_email && self.store.email_unconfirmed(&sys, creds.user.id).await? {
            return Err(ApiError::EmailUnconfirmed(
                "confirm your e-mail address first: open the link sent to it, or ask for a new \
                 one with POST /v1/auth/verify-email/resend"
                    .into(),
            ));
        }
        let memberships = self.store.memberships(&sys, creds.user.id).await?;
        let chosen = match tenant {
            Some(t) => memberships.iter().find(|(id, _)| *id == t),
            None => memberships.first(),
        };
        let Some((tenant, role)) = chosen.copied() else {
            return Err(ApiError::Forbidden(
                "this account is not a member of that tenant (or of any)".into(),
            ));
        };
        self.start_session(creds.user.id, tenant, role).await
    }

    /// Exchange a refresh token for a new pair. A token used twice revokes its session.
    pub async fn refresh(&self, token: &str) -> Result<TokenPair, ApiError> {
        let sys = SystemScope::new("refresh");
        // The family is fixed by the store from the presented token; the placeholder ids
        // here are replaced there.
        let (next_token, next) =
            self.new_refresh(UserId(Uuid::nil()), TenantId(Uuid::nil()), Uuid::nil())?;
        match self
            .store
            .use_refresh(&sys, refresh_hash(token), next)
            .await?
        {
            RefreshUse::Rotated {
                user_id,
                tenant_id,
                family_id,
            } => {
                let role = self
                    .store
                    .memberships(&sys, user_id)
                    .await?
                    .into_iter()
                    .find_map(|(t, r)| (t == tenant_id).then_some(r))
                    .ok_or_else(|| {
                        ApiError::Unauthorized("the session's membership has ended".into())
                    })?;
                self.pair(user_id, tenant_id, role, family_id, next_token)
                    .await
            }
            RefreshUse::Reused { family_id } => {
                tracing::warn!(session = %family_id, "refresh token reused: session revoked");
                let until = Utc::now().timestamp() + self.tokens.ttl_secs();
                self.revoked.revoke(family_id, until).await?;
                Err(ApiError::Unauthorized(
                    "refresh token already used; the session has been revoked".into(),
                ))
            }
            RefreshUse::Invalid => Err(ApiError::Unauthorized(
                "invalid or expired refresh token".into(),
            )),
        }
    }

    /// Invite `email` into the scope's tenant with `role`; returns the invitation and its
    /// single-use token (valid 7 days). Only owners may invite owners.
    pub async fn invite(
        &self,
        scope: &TenantScope,
        inviter: Option<UserId>,
        inviter_role: Role,
        email: &str,
        role: Role,
    ) -> Result<(Invite, String), ApiError> {
        if role == Role::Owner && inviter_role != Role::Owner {
            return Err(ApiError::Forbidden("only owners may invite owners".into()));
        }
        let token = format!("inv_{}", random_token()?);
        let now = Utc::now();
        let invite = Invite {
            id: Uuid::now_v7(),
            tenant_id: scope.tenant_id(),
            email: email.to_owned(),
            role,
            invited_by: inviter,
            expires_at: now + chrono::Duration::days(7),
            created_at: now,
        };
        self.store
            .create_invite(scope, invite.clone(), refresh_hash(&token))
            .await?;
        Ok((invite, token))
    }

    /// Join a tenant with an invitation. An existing account proves itself with its password;
    /// a new one is created with `password` and, when new accounts confirm their address, logs
    /// in once it has.
    pub async fn accept_invite(&self, token: &str, password: &str) -> Result<Joined, ApiError> {
        let confirmation = self.new_confirmation()?;
        self.join(token, password, confirmation).await
    }

    /// [`Auth::accept_invite`] for an account the operator makes (the demo's owner): no
    /// confirmation, a session at once.
    pub async fn accept_invite_confirmed(
        &self,
        token: &str,
        password: &str,
    ) -> Result<TokenPair, ApiError> {
        match self.join(token, password, None).await? {
            Joined::Session(pair) => Ok(pair),
            Joined::ConfirmEmail(_) => Err(ApiError::Internal(anyhow::anyhow!(
                "an invitation accepted without confirmation asked for one"
            ))),
        }
    }

    async fn join(
        &self,
        token: &str,
        password: &str,
        confirmation: Option<(String, PendingVerification)>,
    ) -> Result<Joined, ApiError> {
        let sys = SystemScope::new("accept invitation");
        let invite = self
            .store
            .invite(&sys, refresh_hash(token))
            .await?
            .ok_or_else(|| {
                ApiError::Unauthorized("this invitation is unknown, used or expired".into())
            })?;
        if self.store.tenant_status(&sys, invite.tenant_id).await?
            == crate::store::TenantStatus::Suspended
        {
            return Err(ApiError::Forbidden("this tenant is suspended".into()));
        }
        let user = match self.store.credentials(&sys, &invite.email).await? {
            Some(creds) => {
                if !self
                    .hasher
                    .verify(password.to_owned(), Some(creds.password_hash))
                    .await
                {
                    return Err(ApiError::Unauthorized(
                        "an account with this e-mail exists: give its password to join".into(),
                    ));
                }
                self.store
                    .accept_invite(&sys, invite.clone(), Some(creds.user.id), None, None)
                    .await?
            }
            None => {
                if let Some(why) = password::weakness(password, &invite.email) {
                    return Err(ApiError::Unprocessable(format!("password: {why}")));
                }
                let hash = self
                    .hasher
                    .hash(password.to_owned())
                    .await
                    .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?;
                let pending = confirmation.as_ref().map(|(_, p)| p.clone());
                let user = self
                    .store
                    .accept_invite(&sys, invite.clone(), None, Some(hash), pending)
                    .await?;
                if let Some((token, _)) = confirmation {
                    self.send_confirmation(&invite.email, &token).await;
                    return Ok(Joined::ConfirmEmail(invite.email));
                }
                user
            }
        };
        // An existing member keeps their role: the session carries the stored one.
        let role = self
            .store
            .memberships(&sys, user)
            .await?
            .into_iter()
            .find_map(|(tenant, role)| (tenant == invite.tenant_id).then_some(role))
            .ok_or(ApiError::NotFound("membership"))?;
        if self.verify_email && self.store.email_unconfirmed(&sys, user).await? {
            return Err(ApiError::EmailUnconfirmed(
                "you joined; confirm your e-mail address (the link sent to it, or a new one from \
                 POST /v1/auth/verify-email/resend), then log in"
                    .into(),
            ));
        }
        Ok(Joined::Session(
            self.start_session(user, invite.tenant_id, role).await?,
        ))
    }

    /// Make an API key for the scope's tenant with at most the creator's role (never owner).
    /// Returns the record and the secret, which is shown once.
    pub async fn create_api_key(
        &self,
        scope: &TenantScope,
        creator: Option<UserId>,
        creator_role: Role,
        name: &str,
        role: Role,
    ) -> Result<(ApiKeyRecord, String), ApiError> {
        if role == Role::Owner || !creator_role.allows(role) {
            return Err(ApiError::Forbidden(format!(
                "an API key may have at most your role ({}) and never owner",
                creator_role.as_str()
            )));
        }
        let secret = format!("{API_KEY_PREFIX}{}", random_token()?);
        let key = ApiKeyRecord {
            id: Uuid::now_v7(),
            tenant_id: scope.tenant_id(),
            name: name.to_owned(),
            prefix: secret.chars().take(12).collect(),
            role,
            created_at: Utc::now(),
            revoked_at: None,
        };
        self.store
            .create_api_key(scope, key.clone(), refresh_hash(&secret), creator)
            .await?;
        Ok((key, secret))
    }

    /// The live API key with this secret.
    pub async fn api_key(&self, secret: &str) -> Result<ApiKeyRecord, ApiError> {
        self.store
            .api_key_by_hash(
                &SystemScope::new("api key authentication"),
                refresh_hash(secret),
            )
            .await?
            .ok_or_else(|| ApiError::Unauthorized("unknown or revoked API key".into()))
    }

    /// Refuse the access tokens of sessions that were just ended.
    pub async fn end_sessions(&self, sessions: Vec<Uuid>) -> Result<(), ApiError> {
        let until = Utc::now().timestamp() + self.tokens.ttl_secs();
        for session in sessions {
            self.revoked.revoke(session, until).await?;
        }
        Ok(())
    }

    /// Change a password after checking the current one; every session of the user ends.
    pub async fn change_password(
        &self,
        user: UserId,
        current: &str,
        new: &str,
    ) -> Result<(), ApiError> {
        let sys = SystemScope::new("change password");
        let me = self.store.user(&sys, user).await?;
        let creds = self.store.credentials(&sys, &me.email).await?;
        let hash = creds.map(|c| c.password_hash);
        if !self.hasher.verify(current.to_owned(), hash).await {
            return Err(ApiError::Unauthorized(
                "the current password is wrong".into(),
            ));
        }
        if let Some(why) = password::weakness(new, &me.email) {
            return Err(ApiError::Unprocessable(format!("new_password: {why}")));
        }
        let hash = self
            .hasher
            .hash(new.to_owned())
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?;
        let until = Utc::now().timestamp() + self.tokens.ttl_secs();
        for session in self.store.set_password(&sys, user, &hash).await? {
            self.revoked.revoke(session, until).await?;
        }
        Ok(())
    }

    /// End a session: its refresh tokens stop working and its access tokens are refused.
    pub async fn logout(&self, session: Uuid) -> Result<(), ApiError> {
        self.store
            .revoke_session(&SystemScope::new("logout"), session)
            .await?;
        let until = Utc::now().timestamp() + self.tokens.ttl_secs();
        self.revoked.revoke(session, until).await
    }
}
