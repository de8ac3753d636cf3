//! Feedback on answers: a contact's reaction to one of our messages (a WhatsApp or Telegram
//! reaction, the widget's thumbs), one per message and contact, with the question it answered.
//! Erased with the contact (cascade), in the contact's export (`feedback`), pruned by retention
//! by when it was last given. A supertrait of [`Store`](super::Store).

pub(in crate::store) mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coach_connector_api::{ContactId, ConversationId, MessageId};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::store::StoreError;
use crate::tenancy::TenantScope;

/// A reaction to record.
#[derive(Clone, Debug)]
pub struct NewFeedback {
    /// Who reacted.
    pub contact_id: ContactId,
    /// Where.
    pub conversation_id: ConversationId,
    /// The message reacted to: its provider id, or (the widget) our id.
    pub to_message: String,
    /// The emoji; `None` when the reaction was removed.
    pub emoji: Option<String>,
    /// 1 helpful, -1 unhelpful, 0 neither.
    pub rating: i16,
    /// When.
    pub at: DateTime<Utc>,
}

/// What recording a reaction came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Stored (or replaced) on this answer.
    Given(MessageId),
    /// The reaction was removed, and with it the feedback.
    Withdrawn,
    /// Not a reaction to one of our messages in this conversation: nothing stored.
    NotOurs,
}

/// An answer the contact found unhelpful, with its question.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Unhelpful {
    /// The conversation.
    #[schema(value_type = String, format = Uuid)]
    pub conversation_id: Uuid,
    /// The answer.
    #[schema(value_type = String, format = Uuid)]
    pub answer_id: Uuid,
    /// What was asked (empty when the answer replied to nothing: a program step).
    pub question: String,
    /// What was answered.
    pub answer: String,
    /// The reaction.
    pub emoji: String,
    /// When it was given.
    pub created_at: DateTime<Utc>,
}

/// Feedback over a period.
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct FeedbackSummary {
    /// Answers found helpful.
    pub helpful: i64,
    /// Answers found unhelpful.
    pub unhelpful: i64,
    /// Other reactions.
    pub other: i64,
    /// The most recent unhelpful answers, newest first (at most 50).
    pub recent: Vec<Unhelpful>,
}

/// Feedback of one tenant.
#[async_trait]
pub trait FeedbackStore: Send + Sync {
    /// Record, replace or withdraw a contact's reaction to one of our messages.
    async fn record_feedback(
        &self,
        scope: &TenantScope,
        feedback: NewFeedback,
    ) -> Result<Recorded, StoreError>;
    /// Counts since `since`, with the most recent unhelpful answers.
    async fn feedback_summary(
        &self,
        scope: &TenantScope,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<FeedbackSummary, StoreError>;
}
