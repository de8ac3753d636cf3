//! Account records: users, their roles per tenant, sessions (refresh-token families) and the
//! JWT signing keys every gateway process shares.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use coach_connector_api::TenantId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A user id (users are global: one person may belong to several tenants).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct UserId(pub Uuid);

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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    /// Its id.
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
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Invite {
    /// Its id.
    pub id: Uuid,
    /// The tenant to join.
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    /// Who is invited.
    pub email: String,
    /// With which role.
    pub role: Role,
    /// Who invited them.
    pub invited_by: Option<UserId>,
    /// When the invitation stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// An API key as listed (the secret itself is shown once, at creation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKeyRecord {
    /// Its id.
    pub id: Uuid,
    /// The tenant it acts for.
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    /// A name for humans.
    pub name: String,
    /// The visible start of the key, to recognize it.
    pub prefix: String,
    /// What it may do.
    pub role: Role,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}
