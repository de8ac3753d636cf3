//! Account records: users, their roles per tenant, sessions (refresh-token families) and the
//! JWT signing keys every gateway process shares.

pub(in crate::store) mod sessions_sql;
pub(in crate::store) mod sql;

use async_trait::async_trait;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use coach_connector_api::TenantId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::*;
use crate::tenancy::{SystemScope, TenantScope};

/// The hashed token of a new account's e-mail confirmation link and when it expires
/// (`auth.verify_email`); the account cannot log in until the address is confirmed.
#[derive(Clone, Debug)]
pub struct PendingVerification {
    /// SHA-256 of the token sent.
    pub token_hash: Vec<u8>,
    /// The link's end.
    pub expires_at: DateTime<Utc>,
}

/// A user id (users are global: one person may belong to several tenants).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct UserId(pub Uuid);

impl From<Uuid> for UserId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl TryFrom<String> for Role {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Self, StoreError> {
        s.parse().map_err(StoreError::Corrupt)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A member's role in a tenant, from most to least powerful.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Owns the tenant: everything, including deleting it.
    Owner,
    /// Manages members, channels and settings.
    Admin,
    /// Edits knowledge, programs and conversations.
    Editor,
    /// Reads everything, changes nothing.
    Viewer,
}

impl Role {
    /// Higher is more powerful.
    pub fn rank(self) -> u8 {
        match self {
            Self::Owner => 4,
            Self::Admin => 3,
            Self::Editor => 2,
            Self::Viewer => 1,
        }
    }

    /// Whether this role may do what `needed` may do.
    pub fn allows(self, needed: Role) -> bool {
        self.rank() >= needed.rank()
    }

    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Editor => "editor",
            Self::Viewer => "viewer",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "owner" => Self::Owner,
            "admin" => Self::Admin,
            "editor" => Self::Editor,
            "viewer" => Self::Viewer,
            other => return Err(format!("unknown role {other:?}")),
        })
    }
}

/// A user as shown to the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct User {
    /// Its id.
    #[sqlx(try_from = "Uuid")]
    pub id: UserId,
    /// Its login e-mail.
    pub email: String,
    /// When it registered.
    pub created_at: DateTime<Utc>,
    /// Whether the user operates this gateway (lists and suspends tenants).
    pub platform_admin: bool,
}

/// Whether a tenant may use the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    /// In use.
    Active,
    /// Suspended by an operator: no logins, no API keys.
    Suspended,
}

impl TenantStatus {
    /// The stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }
}

/// A tenant as operators see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantSummary {
    /// Its id.
    #[schema(value_type = String, format = Uuid)]
    pub id: TenantId,
    /// Its name.
    pub name: String,
    /// Whether it may use the gateway.
    pub status: TenantStatus,
    /// How many members it has.
    pub members: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A user with its password hash, for login only.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The user.
    pub user: User,
    /// The Argon2id PHC string.
    pub password_hash: String,
}

/// A refresh token to store (only its hash is kept).
#[derive(Clone, Debug)]
pub struct NewRefresh {
    /// The token row id.
    pub id: Uuid,
    /// The session it belongs to.
    pub family_id: Uuid,
    /// Whose session.
    pub user_id: UserId,
    /// Which tenant the session acts for.
    pub tenant_id: TenantId,
    /// SHA-256 of the opaque token.
    pub token_hash: Vec<u8>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// What presenting a refresh token came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshUse {
    /// The token was valid and is now replaced by the new one.
    Rotated {
        /// Whose session.
        user_id: UserId,
        /// For which tenant.
        tenant_id: TenantId,
        /// The session.
        family_id: Uuid,
    },
    /// The token had been used before: its whole session is now revoked.
    Reused {
        /// The revoked session.
        family_id: Uuid,
    },
    /// Unknown, expired or revoked.
    Invalid,
}

/// A JWT signing key (Ed25519).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SigningKeyRecord {
    /// The key id carried in each token's header.
    pub kid: String,
    /// PKCS#8 DER of the private key.
    pub private_der: Vec<u8>,
    /// The 32-byte public key.
    pub public_raw: Vec<u8>,
    /// When it was created (the newest signs).
    pub created_at: DateTime<Utc>,
}

/// A member of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberRecord {
    /// The user.
    pub user_id: UserId,
    /// Their login e-mail.
    pub email: String,
    /// Their role.
    pub role: Role,
    /// Member since.
    pub since: DateTime<Utc>,
}

/// An invitation to join a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Invite {
    /// Its id.
    pub id: Uuid,
    /// The tenant to join.
    #[schema(value_type = String, format = Uuid)]
    #[sqlx(try_from = "Uuid")]
    pub tenant_id: TenantId,
    /// Who is invited.
    pub email: String,
    /// With which role.
    #[sqlx(try_from = "String")]
    pub role: Role,
    /// Who invited them.
    pub invited_by: Option<UserId>,
    /// When the invitation stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// An API key as listed (the secret itself is shown once, at creation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct ApiKeyRecord {
    /// Its id.
    pub id: Uuid,
    /// The tenant it acts for.
    #[schema(value_type = String, format = Uuid)]
    #[sqlx(try_from = "Uuid")]
    pub tenant_id: TenantId,
    /// A name for humans.
    pub name: String,
    /// The visible start of the key, to recognize it.
    pub prefix: String,
    /// What it may do.
    #[sqlx(try_from = "String")]
    pub role: Role,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A change to a tenant's profile, applied to the stored profile inside the write.
pub type ProfileChange = Box<dyn FnOnce(&mut crate::tenant::TenantProfile) + Send>;

/// Accounts records.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Create a tenant (registration, operators, tests).
    async fn create_tenant(&self, sys: &SystemScope, name: &str) -> Result<Tenant, StoreError>;

    /// Register: a tenant, its owner and the membership, in one transaction. `Conflict` if the
    /// e-mail is taken.
    async fn register(
        &self,
        sys: &SystemScope,
        email: &str,
        password_hash: &str,
        tenant_name: &str,
        verification: Option<PendingVerification>,
    ) -> Result<(Tenant, User), StoreError>;

    /// A user and password hash by e-mail (case-insensitive), for login.
    async fn credentials(
        &self,
        sys: &SystemScope,
        email: &str,
    ) -> Result<Option<Credentials>, StoreError>;

    /// One user.
    async fn user(&self, sys: &SystemScope, id: UserId) -> Result<User, StoreError>;

    /// The user's tenants and roles, the tenant of their latest session first.
    async fn memberships(
        &self,
        sys: &SystemScope,
        user: UserId,
    ) -> Result<Vec<(TenantId, Role)>, StoreError>;

    /// Start a session with its first refresh token.
    async fn create_refresh(&self, sys: &SystemScope, token: NewRefresh) -> Result<(), StoreError>;

    /// Rotate a refresh token (see [`RefreshUse`]); `next` is stored in the same family.
    async fn use_refresh(
        &self,
        sys: &SystemScope,
        token_hash: Vec<u8>,
        next: NewRefresh,
    ) -> Result<RefreshUse, StoreError>;

    /// End a session: none of its refresh tokens works any more.
    async fn revoke_session(&self, sys: &SystemScope, family: uuid::Uuid)
    -> Result<(), StoreError>;

    /// Every JWT signing key, newest first.
    async fn signing_keys(&self, sys: &SystemScope) -> Result<Vec<SigningKeyRecord>, StoreError>;

    /// Record that `session`'s access tokens are refused until `until` (unix seconds), and
    /// forget revocations that expired by `now`.
    async fn remember_revocation(
        &self,
        sys: &SystemScope,
        session: uuid::Uuid,
        until: i64,
        now: i64,
    ) -> Result<(), StoreError>;

    /// The revocations still in force at `now`: session and until when.
    async fn revoked_sessions(
        &self,
        sys: &SystemScope,
        now: i64,
    ) -> Result<Vec<(uuid::Uuid, i64)>, StoreError>;

    /// Replace a signing key's stored private half `plain` by its sealed form (a no-op when
    /// another process sealed it first).
    async fn seal_signing_key(
        &self,
        sys: &SystemScope,
        kid: String,
        plain: Vec<u8>,
        sealed: Vec<u8>,
    ) -> Result<(), StoreError>;

    /// Add a signing key (a concurrent insert of the same kid is ignored).
    async fn add_signing_key(
        &self,
        sys: &SystemScope,
        key: SigningKeyRecord,
    ) -> Result<(), StoreError>;

    /// The tenant and its profile (coach persona).
    async fn tenant_profile(
        &self,
        scope: &TenantScope,
    ) -> Result<(Tenant, crate::tenant::TenantProfile), StoreError>;

    /// Rename the tenant and/or change its profile: `change` is applied to the stored profile
    /// inside the write (its row locked on PostgreSQL; SQLite has one writer), so two members
    /// saving different settings at once both keep theirs.
    async fn update_tenant_profile(
        &self,
        scope: &TenantScope,
        name: Option<String>,
        change: Option<ProfileChange>,
    ) -> Result<(Tenant, crate::tenant::TenantProfile), StoreError>;

    /// Replace a user's password hash and end every session of the user; returns the ended
    /// sessions so their access tokens can be refused too.
    async fn set_password(
        &self,
        sys: &SystemScope,
        user: UserId,
        password_hash: &str,
    ) -> Result<Vec<uuid::Uuid>, StoreError>;

    /// Make a user an operator of the gateway, or not.
    async fn set_platform_admin(
        &self,
        sys: &SystemScope,
        user: UserId,
        on: bool,
    ) -> Result<(), StoreError>;

    /// Every tenant (operators).
    async fn all_tenants(&self, sys: &SystemScope) -> Result<Vec<TenantSummary>, StoreError>;

    /// Whether a tenant is active or suspended (`NotFound` when it does not exist).
    async fn tenant_status(
        &self,
        sys: &SystemScope,
        tenant: TenantId,
    ) -> Result<TenantStatus, StoreError>;

    /// Suspend or resume a tenant (operators); returns the sessions a suspension ended.
    async fn set_tenant_active(
        &self,
        sys: &SystemScope,
        tenant: TenantId,
        active: bool,
    ) -> Result<Vec<uuid::Uuid>, StoreError>;

    /// Store a password reset token (hashed).
    async fn create_password_reset(
        &self,
        sys: &SystemScope,
        user: UserId,
        token_hash: Vec<u8>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The user of a live reset token; `consume` uses it up.
    async fn password_reset(
        &self,
        sys: &SystemScope,
        token_hash: Vec<u8>,
        consume: bool,
    ) -> Result<Option<UserId>, StoreError>;

    /// Send a new confirmation link to an unconfirmed account: its token replaces the previous
    /// one. `false` (nothing stored) when the account's address is confirmed already.
    async fn renew_email_verification(
        &self,
        sys: &SystemScope,
        user: UserId,
        verification: PendingVerification,
    ) -> Result<bool, StoreError>;

    /// Confirm the address of the account whose live confirmation token this is.
    async fn confirm_email(
        &self,
        sys: &SystemScope,
        token_hash: Vec<u8>,
    ) -> Result<Option<UserId>, StoreError>;

    /// Count the account's address as confirmed (a password reset proved the mailbox).
    async fn email_confirmed_by_reset(
        &self,
        sys: &SystemScope,
        user: UserId,
    ) -> Result<(), StoreError>;

    /// Whether the account still has to confirm its e-mail address.
    async fn email_unconfirmed(&self, sys: &SystemScope, user: UserId) -> Result<bool, StoreError>;

    /// Append to the tenant's audit log (append-only).
    async fn audit(&self, scope: &TenantScope, entry: AuditEntry) -> Result<(), StoreError>;

    /// The tenant's audit log, newest first.
    async fn audit_log(
        &self,
        scope: &TenantScope,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError>;
}
