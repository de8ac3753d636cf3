//! What the creator console reads and the handoff writes: handoff requests (the contact asked
//! for a human, or the coach was unsure) and the analytics behind its charts. A supertrait of
//! [`Store`](super::Store).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coach_connector_api::{ChannelId, ConversationId, MessageId};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;
use crate::tenancy::TenantScope;

/// The job kind that delivers a creator's outgoing webhook.
pub const JOB_NOTIFY: &str = "notify";

/// Why a person should look at a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    /// The contact asked to talk to a person.
    AskedForHuman,
    /// The coach's knowledge did not cover the question.
    LowConfidence,
}

impl HandoffReason {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AskedForHuman => "asked_for_human",
            Self::LowConfidence => "low_confidence",
        }
    }

    /// The stored form back.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "asked_for_human" => Some(Self::AskedForHuman),
            "low_confidence" => Some(Self::LowConfidence),
            _ => None,
        }
    }
}

/// One handoff request.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Handoff {
    /// The conversation.
    #[schema(value_type = String, format = Uuid)]
    pub conversation_id: ConversationId,
    /// The contact's message that caused it.
    #[schema(value_type = String, format = Uuid)]
    pub message_id: MessageId,
    /// Why.
    pub reason: HandoffReason,
    /// The contact's words.
    pub question: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Messages of one day, channel and direction.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct DayCount {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// The channel.
    #[schema(value_type = String, format = Uuid)]
    pub channel_id: ChannelId,
    /// Which way.
    pub direction: crate::store::Direction,
    /// How many.
    pub count: i64,
}

/// A conversation as the console's inbox lists it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct InboxItem {
    /// The conversation.
    pub conversation: crate::store::Conversation,
    /// The contact's name, when the channel told it.
    pub contact_name: Option<String>,
    /// The channel's kind (`whatsapp`, `telegram`, `web_widget`...).
    pub channel_kind: String,
    /// The channel's name.
    pub channel_name: String,
    /// Who wrote last.
    pub last_direction: Option<crate::store::Direction>,
    /// The last message's content (as stored).
    #[schema(value_type = Option<Object>)]
    pub last_content: Option<serde_json::Value>,
    /// The contact's messages the member has not read yet.
    pub unread: i64,
}

/// Handoffs and analytics of one tenant.
#[async_trait]
pub trait ConsoleStore: Send + Sync {
    /// Record a handoff request once per message; the conversation waits for a human unless
    /// one already has it. With `notify`, the creator's webhook job (that payload) is queued in
    /// the same transaction when the conversation starts waiting now (once per wait). Returns
    /// whether the request was new.
    async fn record_handoff(
        &self,
        scope: &TenantScope,
        handoff: Handoff,
        notify: Option<serde_json::Value>,
    ) -> Result<bool, StoreError>;
    /// Conversations for the inbox: those waiting for a human first, then the most recently
    /// active, each with its contact, channel, last message and `user`'s unread count.
    async fn inbox(
        &self,
        scope: &TenantScope,
        user: uuid::Uuid,
        limit: u32,
    ) -> Result<Vec<InboxItem>, StoreError>;
    /// `user` has read the conversation up to its latest message.
    async fn mark_read(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        user: uuid::Uuid,
    ) -> Result<(), StoreError>;
    /// The most recent handoff requests since `since`, newest first.
    async fn handoffs(
        &self,
        scope: &TenantScope,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Handoff>, StoreError>;
    /// How many handoff requests of each reason since `since`.
    async fn handoff_counts(
        &self,
        scope: &TenantScope,
        since: DateTime<Utc>,
    ) -> Result<Vec<(HandoffReason, i64)>, StoreError>;
    /// Messages per day, channel and direction since `since`.
    async fn message_counts(
        &self,
        scope: &TenantScope,
        since: DateTime<Utc>,
    ) -> Result<Vec<DayCount>, StoreError>;
    /// When each of (at most `limit`, the most recent) questions since `since` was stored and
    /// when its answer was.
    async fn answer_times(
        &self,
        scope: &TenantScope,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>, StoreError>;
}
