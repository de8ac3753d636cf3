//! The relational store: one trait, two backends (embedded SQLite, PostgreSQL with row-level
//! security). Both pass the same compliance suite (`gateway/tests/store_compliance.rs`).
//!
//! Invariants every backend keeps:
//! - an inbound event is stored at most once per channel (its dedup key), with the jobs it causes,
//!   in one transaction: a replay is a no-op reported as a duplicate;
//! - an outbound message and its outbox row are written in one transaction;
//! - delivery status only moves forward (`Failed` is final), whatever order reports arrive in;
//! - a failed write leaves nothing behind.

mod accounts;
mod accounts_sql;
pub mod console;
mod console_sql;
pub mod conversations;
mod conversations_sql;
pub mod delivery;
mod delivery_sql;
pub mod documents;
mod documents_sql;
pub mod members;
mod members_sql;
mod ops;
mod postgres;
mod privacy_sql;
pub mod programs;
mod programs_audience_sql;
mod programs_sql;
mod queue;
mod queue_sql;
mod sqlite;
mod types;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coach_connector_api::{
    ChannelId, ConversationId, InboundEvent, MessageId, OutboundBody, TenantId,
};

pub use accounts::{
    ApiKeyRecord, Credentials, Invite, MemberRecord, NewRefresh, RefreshUse, Role,
    SigningKeyRecord, TenantStatus, TenantSummary, User, UserId,
};
pub use postgres::{PostgresStore, PostgresStoreOptions, migrate as migrate_postgres};
pub use queue::{Queue, QueueItem, QueueOutcome, backoff};
pub use sqlite::{SqliteStore, SqliteStoreOptions};
pub use types::*;

use crate::tenancy::{SystemScope, TenantScope};

/// A stored status (`active`, `archived`...) as its enum; an unknown one is corruption.
pub(crate) fn stored_enum<T: serde::de::DeserializeOwned>(stored: String) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(stored))
        .map_err(|e| StoreError::Corrupt(format!("stored status: {e}")))
}

/// Why a store call failed. Callers map these to HTTP statuses; details of `Database` never
/// reach clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist for this tenant (another tenant's ids look the same).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The write conflicts with an existing record (unique name, e-mail...).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backend cannot be reached or is shutting down.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data could not be decoded (a bug or a manual edit).
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Corrupt(e.to_string())
    }
}

/// The relational store.
#[async_trait]
pub trait Store:
    conversations::ConversationStore
    + console::ConsoleStore
    + delivery::DeliveryStore
    + documents::DocumentStore
    + members::MemberStore
    + programs::ProgramStore
    + Send
    + Sync
    + 'static
{
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Whether the backend answers now.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Create a tenant (registration, operators, tests).
    async fn create_tenant(&self, sys: &SystemScope, name: &str) -> Result<Tenant, StoreError>;

    /// Create a channel account for the scope's tenant.
    async fn create_channel(
        &self,
        scope: &TenantScope,
        new: NewChannel,
    ) -> Result<Channel, StoreError>;

    /// One channel of the scope's tenant.
    async fn channel(&self, scope: &TenantScope, id: ChannelId) -> Result<Channel, StoreError>;

    /// Find a channel by id whatever its tenant (webhooks: the channel identifies the tenant).
    async fn channel_for_webhook(
        &self,
        sys: &SystemScope,
        id: ChannelId,
    ) -> Result<Channel, StoreError>;

    /// Store inbound events of one channel in one transaction, with their dedup keys and the jobs
    /// they cause; contacts and conversations are created on first contact.
    async fn ingest(
        &self,
        scope: &TenantScope,
        channel: ChannelId,
        events: Vec<InboundEvent>,
    ) -> Result<IngestReport, StoreError>;

    /// Store an outbound message and queue it for delivery, in one transaction.
    async fn enqueue_outbound(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        body: OutboundBody,
        reply_to: Option<MessageId>,
    ) -> Result<StoredMessage, StoreError>;

    /// Claim up to `limit` due items of a queue for `lease` (expired leases are reclaimed).
    /// For the outbox, only the oldest undelivered item of each conversation is due, so order
    /// is kept per conversation. `kind` restricts job claims to one kind.
    async fn claim(
        &self,
        sys: &SystemScope,
        queue: Queue,
        kind: Option<&str>,
        now: DateTime<Utc>,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<QueueItem>, StoreError>;

    /// Claim up to `limit` due jobs of `kind` for `lease`, fairly across tenants: each
    /// tenant's jobs are ranked after those it already has in flight, and the claim takes the
    /// lowest ranks first (oldest first among equals), so one tenant's burst does not delay
    /// another tenant's first job.
    async fn claim_fair(
        &self,
        sys: &SystemScope,
        kind: &str,
        now: DateTime<Utc>,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<QueueItem>, StoreError>;

    /// Record what became of a claimed item.
    async fn finish(
        &self,
        sys: &SystemScope,
        queue: Queue,
        item: &QueueItem,
        outcome: QueueOutcome,
    ) -> Result<(), StoreError>;

    /// Append to the tenant's audit log (append-only).
    async fn audit(&self, scope: &TenantScope, entry: AuditEntry) -> Result<(), StoreError>;

    /// The tenant's audit log, newest first.
    async fn audit_log(
        &self,
        scope: &TenantScope,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    /// Queue depths and counts for metrics.
    async fn stats(&self, sys: &SystemScope) -> Result<StoreStats, StoreError>;

    /// Register: a tenant, its owner and the membership, in one transaction. `Conflict` if the
    /// e-mail is taken.
    async fn register(
        &self,
        sys: &SystemScope,
        email: &str,
        password_hash: &str,
        tenant_name: &str,
    ) -> Result<(Tenant, User), StoreError>;

    /// A user and password hash by e-mail (case-insensitive), for login.
    async fn credentials(
        &self,
        sys: &SystemScope,
        email: &str,
    ) -> Result<Option<Credentials>, StoreError>;

    /// One user.
    async fn user(&self, sys: &SystemScope, id: UserId) -> Result<User, StoreError>;

    /// The user's tenants and roles, oldest first.
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

    /// Rename the tenant and/or replace its profile.
    async fn update_tenant_profile(
        &self,
        scope: &TenantScope,
        name: Option<String>,
        profile: Option<crate::tenant::TenantProfile>,
    ) -> Result<(Tenant, crate::tenant::TenantProfile), StoreError>;

    /// Replace a user's password hash and end every session of the user; returns the ended
    /// sessions so their access tokens can be refused too.
    async fn set_password(
        &self,
        sys: &SystemScope,
        user: UserId,
        password_hash: &str,
    ) -> Result<Vec<uuid::Uuid>, StoreError>;

    /// Contacts, newest first, before the cursor.
    async fn contacts(
        &self,
        scope: &TenantScope,
        before: Option<coach_connector_api::ContactId>,
        limit: u32,
    ) -> Result<Vec<ContactRecord>, StoreError>;

    /// Everything stored about one contact, as one JSON document.
    async fn export_contact(
        &self,
        scope: &TenantScope,
        contact: coach_connector_api::ContactId,
    ) -> Result<serde_json::Value, StoreError>;

    /// Erase a contact and everything derived from them, in one transaction.
    async fn erase_contact(
        &self,
        scope: &TenantScope,
        contact: coach_connector_api::ContactId,
    ) -> Result<(), StoreError>;

    /// Enforce every tenant's retention period; returns how many rows were deleted.
    async fn apply_retention(
        &self,
        sys: &SystemScope,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Erase the tenant with all its data; returns its sessions.
    async fn erase_tenant(&self, scope: &TenantScope) -> Result<Vec<uuid::Uuid>, StoreError>;

    /// Store a new API key (its secret only as a hash).
    async fn create_api_key(
        &self,
        scope: &TenantScope,
        key: ApiKeyRecord,
        key_hash: Vec<u8>,
        created_by: Option<UserId>,
    ) -> Result<(), StoreError>;

    /// The tenant's API keys, revoked ones included.
    async fn api_keys(&self, scope: &TenantScope) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// A live key by the hash of its secret (authentication, before the tenant is known).
    async fn api_key_by_hash(
        &self,
        sys: &SystemScope,
        key_hash: Vec<u8>,
    ) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// Revoke a key.
    async fn revoke_api_key(&self, scope: &TenantScope, id: uuid::Uuid) -> Result<(), StoreError>;

    /// Make a user an operator of the gateway, or not.
    async fn set_platform_admin(
        &self,
        sys: &SystemScope,
        user: UserId,
        on: bool,
    ) -> Result<(), StoreError>;

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

    /// Every tenant (operators).
    async fn all_tenants(&self, sys: &SystemScope) -> Result<Vec<TenantSummary>, StoreError>;

    /// Suspend or resume a tenant (operators); returns the sessions a suspension ended.
    async fn set_tenant_active(
        &self,
        sys: &SystemScope,
        tenant: TenantId,
        active: bool,
    ) -> Result<Vec<uuid::Uuid>, StoreError>;

    /// The tenant's channels, oldest first.
    async fn channels(&self, scope: &TenantScope) -> Result<Vec<Channel>, StoreError>;

    /// Change a channel's name, configuration or state.
    async fn update_channel(
        &self,
        scope: &TenantScope,
        id: ChannelId,
        patch: ChannelPatch,
    ) -> Result<Channel, StoreError>;

    /// Delete a channel with its conversations and messages.
    async fn delete_channel(&self, scope: &TenantScope, id: ChannelId) -> Result<(), StoreError>;

    /// Called once when a gateway process starts serving: work another run of this process
    /// left in flight (an answer cut by a crash) becomes due again now instead of when its
    /// lease expires. Only the embedded SQLite database knows it belongs to one process; on
    /// PostgreSQL other replicas may hold leases, so nothing changes and leases expire.
    /// Returns how many items were released.
    async fn recover_in_flight(&self, _sys: &SystemScope) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Wait until every accepted write is committed, then release connections.
    async fn close(&self);
}
