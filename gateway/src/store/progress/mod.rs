//! Progress: the answers contacts gave to progress questions (one per step run at most) and
//! the milestones they reached (each sent once per enrollment). Erased with the contact
//! (cascade), in the contact's export (`progress`), pruned by retention by when an answer was
//! recorded. A supertrait of [`Store`](super::Store).

pub(in crate::store) mod sql;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use coach_connector_api::{ContactId, ConversationId};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::store::{StoreError, StoredMessage};
use crate::tenancy::TenantScope;

/// An answer to record.
#[derive(Clone, Debug)]
pub struct NewEntry {
    /// Who answered.
    pub contact_id: ContactId,
    /// In which enrollment.
    pub enrollment_id: Uuid,
    /// The program.
    pub program_id: Uuid,
    /// The step run answered (at most one answer per run).
    pub seq: i32,
    /// The step.
    pub step_id: String,
    /// The progress key.
    pub key: String,
    /// `yes_no`, `number`, `scale`.
    pub kind: &'static str,
    /// The value (yes = 1, no = 0).
    pub value: f64,
    /// Whether it counts towards streaks and totals.
    pub counts: bool,
    /// The contact's local date of the step run.
    pub local_date: NaiveDate,
    /// The reply as written (at most 500 characters).
    pub answer: String,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

/// A recorded answer.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ProgressEntry {
    /// Who answered.
    #[schema(value_type = String, format = Uuid)]
    pub contact_id: Uuid,
    /// The enrollment.
    pub enrollment_id: Uuid,
    /// The program.
    pub program_id: Uuid,
    /// The step asked.
    pub step_id: String,
    /// The progress key.
    pub key: String,
    /// `yes_no`, `number`, `scale`.
    pub kind: String,
    /// The value (yes = 1, no = 0).
    pub value: f64,
    /// Whether it counts towards streaks and totals.
    pub counts: bool,
    /// The contact's local date of the question.
    #[schema(value_type = String, format = Date)]
    pub local_date: NaiveDate,
    /// The reply as written.
    pub answer: String,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// A milestone reached (its message was queued with it).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct MilestoneReached {
    /// Who reached it.
    #[schema(value_type = String, format = Uuid)]
    pub contact_id: Uuid,
    /// The enrollment.
    pub enrollment_id: Uuid,
    /// The program.
    pub program_id: Uuid,
    /// `<key>:streak:<n>` or `<key>:total:<n>`.
    pub milestone: String,
    /// The message sent.
    pub message_id: Option<Uuid>,
    /// When.
    pub reached_at: DateTime<Utc>,
}

/// Answers and milestones, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct ProgressLog {
    /// The answers.
    pub entries: Vec<ProgressEntry>,
    /// The milestones reached.
    pub milestones: Vec<MilestoneReached>,
}

/// A milestone to mark reached, with the message that tells the contact.
#[derive(Clone, Debug)]
pub struct NewMilestone {
    /// Who reached it.
    pub contact_id: ContactId,
    /// The enrollment.
    pub enrollment_id: Uuid,
    /// The program.
    pub program_id: Uuid,
    /// Its id within the program.
    pub milestone: String,
    /// Where the message goes.
    pub conversation_id: ConversationId,
    /// The message content.
    pub content: serde_json::Value,
    /// When.
    pub at: DateTime<Utc>,
}

/// Progress answers and milestones of one tenant.
#[async_trait]
pub trait ProgressStore: Send + Sync {
    /// Record an answer unless the run has one; `true` when it was recorded now.
    async fn record_progress(
        &self,
        scope: &TenantScope,
        entry: NewEntry,
    ) -> Result<bool, StoreError>;
    /// The local dates of an enrollment's answers for `key` that count.
    async fn progress_days(
        &self,
        scope: &TenantScope,
        enrollment: Uuid,
        key: &str,
    ) -> Result<Vec<NaiveDate>, StoreError>;
    /// Mark a milestone reached and queue its message, in one transaction; `None` when it was
    /// reached before (nothing is sent again).
    async fn reach_milestone(
        &self,
        scope: &TenantScope,
        milestone: NewMilestone,
    ) -> Result<Option<StoredMessage>, StoreError>;
    /// A contact's answers and milestones (`NotFound` for another tenant's contact).
    async fn contact_progress(
        &self,
        scope: &TenantScope,
        contact: ContactId,
    ) -> Result<ProgressLog, StoreError>;
    /// A program's answers and milestones, for analytics.
    async fn program_progress(
        &self,
        scope: &TenantScope,
        program: Uuid,
    ) -> Result<ProgressLog, StoreError>;
}
