//! Coaching programs: definitions (versioned), enrollments, the record of every step run, and
//! opt-outs. A supertrait of [`Store`](super::Store).
//!
//! Invariants every backend keeps:
//! - a step run (`<enrollment>:<seq>`) is recorded at most once, in the transaction that
//!   queues its message and schedules the next step's job: two workers (or a worker retrying
//!   after a crash) running the same step leave one message;
//! - an opted-out contact cannot be enrolled, and opting out ends every enrollment at once.

mod audience;
mod runs;
mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coach_connector_api::{ChannelId, ContactId, ConversationId};
use serde::{Deserialize, Serialize};

use crate::programs::definition::Definition;
use crate::store::StoreError;
use crate::tenancy::TenantScope;

/// An enrollment's columns (`e`), with the contact's name, as [`Enrollment`] decodes them.
pub(in crate::store) const ENROLLMENT: &str = "e.id, e.program_id, e.version, e.contact_id, e.conversation_id, e.state, \
    e.step_id, e.seq, e.time_zone, e.variables, e.source, e.enrolled_at, e.ended_at, \
    (SELECT n.display_name FROM contacts n WHERE n.id = e.contact_id) AS contact_name";

/// The job kind that runs one program step.
pub const JOB_PROGRAM_STEP: &str = crate::jobs::JobKind::ProgramStep.as_str();

/// A `program_step` job's payload: run step `seq` (`step_id`) of an enrollment, due at `due_at`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepJob {
    /// The enrollment.
    pub enrollment_id: uuid::Uuid,
    /// The run's sequence number within the enrollment (unique: the job's dedup key).
    pub seq: i32,
    /// The step of the program version.
    pub step_id: String,
    /// When it is due (judged for lateness at run time).
    pub due_at: DateTime<Utc>,
    /// The step answers the contact's own message (keyword, branch): no pause for them.
    #[serde(default)]
    pub answers: bool,
}

impl TryFrom<String> for ProgramStatus {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Self, StoreError> {
        crate::store::stored_enum(s)
    }
}

impl TryFrom<String> for EnrollmentState {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Self, StoreError> {
        Self::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("enrollment state {s}")))
    }
}

/// A stored program (its newest version).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct ProgramRecord {
    /// Its id.
    #[schema(value_type = String, format = Uuid)]
    pub id: uuid::Uuid,
    /// The newest version (1, 2...); enrollments keep the version they started on.
    pub version: i32,
    /// Whether it takes enrollments.
    #[sqlx(try_from = "String")]
    pub status: ProgramStatus,
    /// The newest definition.
    #[sqlx(json)]
    pub definition: Definition,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Whether a program takes enrollments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProgramStatus {
    /// Runs and takes enrollments.
    Active,
    /// Archived: its enrollments were cancelled.
    Archived,
}

/// Where an enrollment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentState {
    /// Steps are being sent.
    Active,
    /// The last step was sent.
    Completed,
    /// The contact opted out of proactive messages.
    OptedOut,
    /// A creator ended it, or the program was archived.
    Cancelled,
}

impl EnrollmentState {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Completed => "completed",
            Self::OptedOut => "opted_out",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parse the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "completed" => Self::Completed,
            "opted_out" => Self::OptedOut,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// A contact's enrollment in a program.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Enrollment {
    /// Its id.
    #[schema(value_type = String, format = Uuid)]
    pub id: uuid::Uuid,
    /// The program.
    #[schema(value_type = String, format = Uuid)]
    pub program_id: uuid::Uuid,
    /// The program version it follows.
    pub version: i32,
    /// The person.
    #[schema(value_type = String, format = Uuid)]
    #[sqlx(try_from = "uuid::Uuid")]
    pub contact_id: ContactId,
    /// Their name as the channel gave it.
    pub contact_name: Option<String>,
    /// The conversation (and so the channel) the steps are sent to.
    #[schema(value_type = String, format = Uuid)]
    #[sqlx(try_from = "uuid::Uuid")]
    pub conversation_id: ConversationId,
    /// Where it stands.
    #[sqlx(try_from = "String")]
    pub state: EnrollmentState,
    /// The last step run, if any.
    pub step_id: Option<String>,
    /// Steps run so far.
    pub seq: i32,
    /// The contact's IANA time zone.
    pub time_zone: String,
    /// Values of the program's custom variables for this person.
    #[sqlx(json)]
    pub variables: serde_json::Map<String, serde_json::Value>,
    /// `api`, `bulk`, `keyword`...
    pub source: String,
    /// When it started (day 1 is this local date).
    pub enrolled_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
}

/// A new enrollment and its first step's job.
#[derive(Clone, Debug)]
pub struct NewEnrollment {
    /// The program.
    pub program_id: uuid::Uuid,
    /// The version to follow.
    pub version: i32,
    /// The person.
    pub contact_id: ContactId,
    /// Where to reach them.
    pub conversation_id: ConversationId,
    /// Their time zone.
    pub time_zone: String,
    /// Custom variable values.
    pub variables: serde_json::Map<String, serde_json::Value>,
    /// How they were enrolled.
    pub source: String,
    /// The first step and when it is due.
    pub first_step: String,
    /// When the first step is due.
    pub due_at: DateTime<Utc>,
    /// The first step answers the contact's own message (a keyword): it does not wait for
    /// them to finish writing.
    pub answers: bool,
}

/// Where a program reaches a contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// In this conversation (theirs, or one opened for a contact who never wrote).
    Conversation(ConversationId),
    /// They never wrote and no consent to proactive messages is recorded for them.
    NoConsent,
    /// No conversation and no address on the channel.
    Unreachable,
}

/// What an enrollment request came to.
#[derive(Clone, Debug, PartialEq)]
pub enum EnrollOutcome {
    /// Enrolled now (again, if an earlier enrollment had ended).
    Enrolled(Enrollment),
    /// Already enrolled and active: nothing changed.
    Already(Enrollment),
    /// The contact opted out of proactive messages: not enrolled.
    OptedOut,
}

/// How a step went out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SendMode {
    /// As written (the 24-hour window is open, or the channel has none).
    FreeForm,
    /// As its approved WhatsApp template (the window is closed).
    Template,
    /// Not sent (overdue past its tolerance, or no template for a closed window).
    Skipped,
}

impl SendMode {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FreeForm => "free_form",
            Self::Template => "template",
            Self::Skipped => "skipped",
        }
    }
}

/// One step run, written with its message and the next step's job in one transaction.
#[derive(Clone, Debug)]
pub struct StepRun {
    /// The claimed job that runs it: marked done in the same transaction.
    pub job_id: uuid::Uuid,
    /// The enrollment.
    pub enrollment_id: uuid::Uuid,
    /// The program.
    pub program_id: uuid::Uuid,
    /// Which run of the enrollment this is (1, 2...).
    pub seq: i32,
    /// The step.
    pub step_id: String,
    /// The program day it ran on.
    pub day: i32,
    /// The channel it went to.
    pub channel_id: ChannelId,
    /// The conversation it went to.
    pub conversation_id: ConversationId,
    /// How it went out.
    pub mode: SendMode,
    /// Why it was skipped or sent late.
    pub reason: Option<String>,
    /// When it was due.
    pub due_at: DateTime<Utc>,
    /// The stored message content (`None` when skipped).
    pub content: Option<serde_json::Value>,
    /// The next step and when it is due; `None` completes the enrollment.
    pub next: Option<(String, DateTime<Utc>)>,
}

/// What recording a step run came to.
#[derive(Clone, Debug, PartialEq)]
pub enum StepOutcome {
    /// Recorded now; the message (if any) is queued.
    Recorded(Option<Box<crate::store::StoredMessage>>),
    /// This run was recorded before (by another worker, or before a crash): nothing written.
    AlreadyRan,
}

/// The newest step run of an active enrollment in a conversation (a reply answers it).
#[derive(Clone, Debug, PartialEq)]
pub struct LastRun {
    /// The enrollment.
    pub enrollment: Enrollment,
    /// Which run.
    pub seq: i32,
    /// The step.
    pub step_id: String,
    /// The program day it ran on.
    pub day: i32,
    /// When it ran.
    pub sent_at: DateTime<Utc>,
    /// Whether a reply was recorded already.
    pub replied: bool,
}

/// Where a reply to a step run leads.
#[derive(Clone, Debug, PartialEq)]
pub enum Route {
    /// Nowhere new: the pending next step stays as scheduled.
    Stay,
    /// The pending next step becomes this step, due then (a branch; or, for a step that
    /// waited for the reply, the step after it).
    Goto(String, DateTime<Utc>),
    /// The program ends here (a step that waited for the reply was the last): the pending
    /// follow-up is dropped and the enrollment completes.
    End,
}

/// Everything a step run decides on, read at once: the enrollment, who answers its
/// conversation, its channel, and when the contact last wrote there.
#[derive(Clone, Debug, PartialEq)]
pub struct StepContext {
    /// The enrollment.
    pub enrollment: Enrollment,
    /// Who answers the conversation (a human may have taken it over).
    pub conversation_status: crate::store::ConversationStatus,
    /// The conversation's channel.
    pub channel_id: ChannelId,
    /// Its kind.
    pub channel_kind: coach_connector_api::ChannelKind,
    /// When the contact last wrote (the later of our and the provider's time).
    pub last_inbound_at: Option<DateTime<Utc>>,
}

/// One step run as analytics read it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunFact {
    /// The enrollment.
    pub enrollment_id: uuid::Uuid,
    /// The step.
    pub step_id: String,
    /// How it went out.
    pub mode: String,
    /// The channel kind.
    pub channel_kind: String,
    /// Its message's delivery status rank, if a message was sent.
    pub status_rank: Option<i16>,
    /// When it ran.
    pub sent_at: DateTime<Utc>,
    /// When the person replied.
    pub replied_at: Option<DateTime<Utc>>,
}

/// Programs, enrollments and opt-outs of one tenant.
#[async_trait]
pub trait ProgramStore: Send + Sync {
    /// Store a new (validated) program as version 1.
    async fn create_program(
        &self,
        scope: &TenantScope,
        definition: Definition,
    ) -> Result<ProgramRecord, StoreError>;
    /// Store a new version of a program; running enrollments keep theirs.
    async fn update_program(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
        definition: Definition,
    ) -> Result<ProgramRecord, StoreError>;
    /// The tenant's programs, oldest first.
    async fn programs(&self, scope: &TenantScope) -> Result<Vec<ProgramRecord>, StoreError>;
    /// One program (newest version).
    async fn program(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
    ) -> Result<ProgramRecord, StoreError>;
    /// One version of a program's definition.
    async fn program_version(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
        version: i32,
    ) -> Result<Definition, StoreError>;
    /// Archive a program: no new enrollments, running ones are cancelled.
    async fn archive_program(&self, scope: &TenantScope, id: uuid::Uuid)
    -> Result<u64, StoreError>;
    /// Enroll contacts, each with its first step's job, in one transaction.
    async fn enroll(
        &self,
        scope: &TenantScope,
        new: Vec<NewEnrollment>,
        now: DateTime<Utc>,
    ) -> Result<Vec<EnrollOutcome>, StoreError>;
    /// One enrollment.
    async fn enrollment(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
    ) -> Result<Enrollment, StoreError>;
    /// A program's enrollments, oldest first, after the cursor.
    async fn enrollments(
        &self,
        scope: &TenantScope,
        program: uuid::Uuid,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<Enrollment>, StoreError>;
    /// What a step run of this enrollment decides on, in one read (`None`: it is gone).
    async fn step_context(
        &self,
        scope: &TenantScope,
        enrollment: uuid::Uuid,
    ) -> Result<Option<StepContext>, StoreError>;
    /// End an active enrollment (creators).
    async fn cancel_enrollment(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
    ) -> Result<Enrollment, StoreError>;
    /// Record a step run with its message and the next step's job (see the module invariants).
    async fn record_step(
        &self,
        scope: &TenantScope,
        run: StepRun,
        now: DateTime<Utc>,
    ) -> Result<StepOutcome, StoreError>;
    /// The newest step run of an active enrollment in this conversation.
    async fn last_run(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
    ) -> Result<Option<LastRun>, StoreError>;
    /// Record the first reply to a run and where it leads (see [`Route`]). Returns whether
    /// the reply was the first.
    async fn record_reply(
        &self,
        scope: &TenantScope,
        enrollment: uuid::Uuid,
        seq: i32,
        reply: String,
        at: DateTime<Utc>,
        route: Route,
    ) -> Result<bool, StoreError>;
    /// Stop all proactive messages to a contact: record the opt-out and end their active
    /// enrollments. Returns how many enrollments ended (`None` if already opted out).
    async fn opt_out(
        &self,
        scope: &TenantScope,
        contact: ContactId,
        source: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError>;
    /// Allow proactive messages again; returns whether the contact had opted out.
    async fn opt_in(&self, scope: &TenantScope, contact: ContactId) -> Result<bool, StoreError>;
    /// When the contact opted out, if they did.
    async fn opted_out(
        &self,
        scope: &TenantScope,
        contact: ContactId,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// The contact's most recently active conversation (on `channel` if given).
    async fn reach(
        &self,
        scope: &TenantScope,
        contact: ContactId,
        channel: Option<ChannelId>,
    ) -> Result<Option<ConversationId>, StoreError>;
    /// Where to reach a contact for a program: their most recent conversation (on `channel` if
    /// given); for a contact who never wrote (an import), a conversation opened on a channel
    /// where they have an address, provided their consent to proactive messages is recorded.
    async fn open_reach(
        &self,
        scope: &TenantScope,
        contact: ContactId,
        channel: Option<ChannelId>,
        now: DateTime<Utc>,
    ) -> Result<Reach, StoreError>;
    /// Contacts with their most recent conversation (on `channel` if given) active since
    /// `since`, for bulk enrollment.
    async fn segment(
        &self,
        scope: &TenantScope,
        channel: Option<ChannelId>,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<(ContactId, ConversationId)>, StoreError>;
    /// Enrollment counts by state.
    async fn enrollment_counts(
        &self,
        scope: &TenantScope,
        program: uuid::Uuid,
    ) -> Result<Vec<(String, String, i64)>, StoreError>;
    /// Every step run of a program, for analytics.
    async fn run_facts(
        &self,
        scope: &TenantScope,
        program: uuid::Uuid,
    ) -> Result<Vec<RunFact>, StoreError>;
}
