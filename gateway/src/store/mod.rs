//! The relational store: one trait, two backends (embedded SQLite, PostgreSQL with row-level
//! security). Both pass the same compliance suite (`gateway/tests/store_compliance.rs`).
//!
//! Invariants every backend keeps:
//! - an inbound event is stored at most once per channel (its dedup key), with the jobs it causes,
//!   in one transaction: a replay is a no-op reported as a duplicate;
//! - an outbound message and its outbox row are written in one transaction;
//! - delivery status only moves forward (`Failed` is final), whatever order reports arrive in;
//! - a failed write leaves nothing behind.

pub mod accounts;
mod backend;
pub mod channels;
pub mod console;
pub mod contacts;
pub mod conversations;
pub mod delivery;
pub mod documents;
pub mod events;
pub mod feedback;
pub mod files;
pub mod members;
pub mod memory;
pub mod notices;
mod postgres;
pub mod privacy;
pub mod programs;
pub mod progress;
pub mod queue;
pub mod ratings;
mod sqlite;
pub mod teamwork;
mod types;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coach_connector_api::{ChannelId, ConversationId, InboundEvent, MessageId, OutboundBody};

pub use accounts::{
    AccountStore, ApiKeyRecord, Credentials, Invite, MemberRecord, NewRefresh, PendingVerification,
    RefreshUse, Role, SigningKeyRecord, TenantStatus, TenantSummary, User, UserId,
};
pub use channels::ChannelStore;
pub use postgres::{PostgresStore, PostgresStoreOptions, migrate as migrate_postgres};
pub use privacy::PrivacyStore;
pub use queue::{Queue, QueueItem, QueueOutcome, QueueStore, backoff};
pub use sqlite::{SqliteStore, SqliteStoreOptions};
pub use types::*;

use crate::tenancy::SystemScope;

/// Every aggregate trait, for calling store methods on a concrete backend
/// (`use coach_gateway::store::prelude::*;`); through `dyn Store` they need no import.
pub mod prelude {
    pub use super::Store;
    pub use super::accounts::AccountStore;
    pub use super::channels::ChannelStore;
    pub use super::console::ConsoleStore;
    pub use super::contacts::ContactStore;
    pub use super::conversations::ConversationStore;
    pub use super::delivery::DeliveryStore;
    pub use super::documents::DocumentStore;
    pub use super::events::EventLogStore;
    pub use super::feedback::FeedbackStore;
    pub use super::files::FileStore;
    pub use super::members::MemberStore;
    pub use super::memory::MemoryStore;
    pub use super::notices::NoticeStore;
    pub use super::privacy::PrivacyStore;
    pub use super::programs::ProgramStore;
    pub use super::progress::ProgressStore;
    pub use super::queue::QueueStore;
    pub use super::ratings::RatingStore;
    pub use super::teamwork::TeamworkStore;
}

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

/// The relational store: the sum of its aggregates, each a folder with its types, its trait and
/// its SQL (written once for both backends, see `backend.rs`).
#[async_trait]
pub trait Store:
    accounts::AccountStore
    + channels::ChannelStore
    + console::ConsoleStore
    + conversations::ConversationStore
    + delivery::DeliveryStore
    + documents::DocumentStore
    + events::EventLogStore
    + feedback::FeedbackStore
    + files::FileStore
    + members::MemberStore
    + memory::MemoryStore
    + notices::NoticeStore
    + privacy::PrivacyStore
    + programs::ProgramStore
    + progress::ProgressStore
    + queue::QueueStore
    + ratings::RatingStore
    + teamwork::TeamworkStore
    + contacts::ContactStore
    + Send
    + Sync
    + 'static
{
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Whether the backend answers now.
    async fn ping(&self) -> Result<(), StoreError>;

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
