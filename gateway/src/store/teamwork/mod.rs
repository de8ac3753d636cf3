//! The team's tools around conversations: labels (a conversation's set of words for filtering),
//! private notes (members only, never sent to the contact; exported and erased with the
//! contact's conversations, pruned by retention like messages) and canned replies (the tenant's
//! saved texts, typed in the console as `/shortcut`). A supertrait of [`Store`](super::Store).

mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coach_connector_api::ConversationId;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::store::StoreError;
use crate::tenancy::TenantScope;

/// A private note on a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Note {
    /// Its id.
    pub id: Uuid,
    /// The conversation.
    #[schema(value_type = String, format = Uuid)]
    pub conversation_id: ConversationId,
    /// The member who wrote it (absent for an API key).
    pub author: Option<Uuid>,
    /// The note.
    pub text: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// A saved reply, inserted in the console by typing `/shortcut`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct CannedReply {
    /// Its id.
    pub id: Uuid,
    /// What is typed after `/` (lowercase letters, digits, `-` and `_`, 1-32).
    pub shortcut: String,
    /// The text it inserts.
    pub text: String,
    /// When it was saved.
    pub created_at: DateTime<Utc>,
}

/// Labels, notes and canned replies.
#[async_trait]
pub trait TeamworkStore: Send + Sync {
    /// A conversation's labels, sorted (`NotFound` for another tenant's conversation).
    async fn labels(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
    ) -> Result<Vec<String>, StoreError>;
    /// Replace a conversation's labels; returns them sorted.
    async fn set_labels(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        labels: Vec<String>,
    ) -> Result<Vec<String>, StoreError>;
    /// Add a private note to a conversation.
    async fn add_note(&self, scope: &TenantScope, note: Note) -> Result<Note, StoreError>;
    /// A conversation's notes, oldest first.
    async fn notes(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
    ) -> Result<Vec<Note>, StoreError>;
    /// Save a canned reply (`Conflict` when the shortcut is taken).
    async fn add_canned_reply(
        &self,
        scope: &TenantScope,
        reply: CannedReply,
    ) -> Result<CannedReply, StoreError>;
    /// The tenant's canned replies, by shortcut.
    async fn canned_replies(&self, scope: &TenantScope) -> Result<Vec<CannedReply>, StoreError>;
    /// Delete a canned reply (`NotFound` when it is not the tenant's).
    async fn delete_canned_reply(&self, scope: &TenantScope, id: Uuid) -> Result<(), StoreError>;
}
