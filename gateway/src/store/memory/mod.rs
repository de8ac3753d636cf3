//! What the coach remembers of a contact: goals and facts the contact stated (with the message
//! they came from) and the team's notes about them. The responder puts them in the prompt of
//! later answers; members read and edit them in the console. Erased with the contact (cascade),
//! in the contact's export (`memory`), pruned by retention by when an item was last written.
//! A supertrait of [`Store`](super::Store).

mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coach_connector_api::ContactId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::store::StoreError;
use crate::tenancy::TenantScope;

/// At most this many items are kept per contact; the coachee's oldest go first.
pub const MAX_ITEMS: usize = 50;

/// What an item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemoryKind {
    /// Something the contact is working towards.
    Goal,
    /// Something about them (a preference, a circumstance).
    Fact,
    /// A note from the team, for the coach.
    Note,
}

impl MemoryKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Goal => "goal",
            Self::Fact => "fact",
            Self::Note => "note",
        }
    }
}

/// Where an item came from: a small model can invent, so the coach is only given what the
/// contact said in so many words or what the team wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemorySource {
    /// The contact's own words (`message_id` names the message).
    Coachee,
    /// A member wrote or edited it.
    Team,
}

impl MemorySource {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Coachee => "coachee",
            Self::Team => "team",
        }
    }
}

/// One thing the coach remembers.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct MemoryItem {
    /// Its id.
    pub id: Uuid,
    /// Goal, fact or note.
    pub kind: MemoryKind,
    /// What is remembered.
    pub text: String,
    /// The contact's words or the team's.
    pub source: MemorySource,
    /// The message it was taken from (contact's words only; kept after the message is gone).
    pub message_id: Option<Uuid>,
    /// When it was first remembered.
    pub created_at: DateTime<Utc>,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

/// A contact's memory.
#[async_trait]
pub trait MemoryStore: Send + Sync {
    /// A contact's memory, oldest first (`NotFound` for another tenant's contact).
    async fn memory(
        &self,
        scope: &TenantScope,
        contact: ContactId,
    ) -> Result<Vec<MemoryItem>, StoreError>;
    /// Replace a contact's memory with `items` (the caller keeps ids and times of unchanged
    /// items); returns it oldest first.
    async fn set_memory(
        &self,
        scope: &TenantScope,
        contact: ContactId,
        items: Vec<MemoryItem>,
    ) -> Result<Vec<MemoryItem>, StoreError>;
    /// Remember one more item unless the same kind and text (any case) is already there; over
    /// [`MAX_ITEMS`], the contact's oldest own item goes. `true` when it was added.
    async fn remember(
        &self,
        scope: &TenantScope,
        contact: ContactId,
        item: MemoryItem,
    ) -> Result<bool, StoreError>;
}
