//! Background work as one abstraction. Every queued job has a [`JobKind`] (the `kind` column of
//! the `jobs` table) and a typed payload; each kind has one [`Handler`] that says how its jobs
//! are claimed (batch, concurrency, lease, fair or oldest first) and retried, and runs one job.
//! One generic [runner](runner) claims, runs and records for every kind, and
//! [`spawn_all`] starts one runner per kind under the shutdown token.
//!
//! Adding background work: a `JobKind` variant, a payload type, a `Handler`, a line in
//! `spawn_all`.

pub mod runner;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coach_connector_api::MessageId;
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;
use crate::store::QueueItem;

pub use runner::{run, run_once};

/// The kinds of background job (stored as text in `jobs.kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Answer an inbound message (the responder).
    Answer,
    /// Download an inbound message's media before the provider's URL expires.
    FetchMedia,
    /// Index a document version into the knowledge base.
    Ingest,
    /// Deliver a handoff notice to the creator's webhook.
    Notify,
    /// Run one step of a coaching program for one enrollment.
    ProgramStep,
    /// Record a contact's reaction to one of our messages as feedback on it.
    Feedback,
    /// Deliver an event (`message.created`, `conversation.resolved`, `feedback.created`) to
    /// the creator's webhook.
    Event,
    /// E-mail the team about a handoff.
    Email,
    /// Turn an inbound voice note into text.
    Transcribe,
}

impl JobKind {
    /// Every kind, in the order their runners start.
    pub const ALL: [Self; 9] = [
        Self::Answer,
        Self::FetchMedia,
        Self::Ingest,
        Self::Notify,
        Self::ProgramStep,
        Self::Feedback,
        Self::Event,
        Self::Email,
        Self::Transcribe,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Answer => "answer",
            Self::FetchMedia => "fetch_media",
            Self::Ingest => "ingest",
            Self::Notify => "notify",
            Self::ProgramStep => "program_step",
            Self::Feedback => "feedback",
            Self::Event => "event",
            Self::Email => "email",
            Self::Transcribe => "transcribe",
        }
    }

    /// The kind of a stored name (`None` for a kind this version does not know).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which due jobs a claim takes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimOrder {
    /// Round-robin over tenants: each tenant's oldest job, ranked after the jobs that tenant
    /// already has in flight, so one tenant's burst cannot delay another tenant's first job.
    /// For expensive work (answers, ingestion, downloads, webhooks).
    Fair,
    /// Oldest first across tenants, skipping rows another process holds. For cheap, numerous
    /// work whose order in time matters (program steps).
    Oldest,
}

/// How a failed job is retried.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Attempts before the job is dead-lettered; `None`: retried for ever.
    pub max_attempts: Option<u32>,
    /// The first backoff (doubling, with full jitter).
    pub base: Duration,
    /// The longest backoff.
    pub max: Duration,
}

/// How a kind's jobs are claimed and retried.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Most jobs claimed at once.
    pub batch: u32,
    /// Most jobs running at once (in this process).
    pub concurrency: usize,
    /// How long a claimed job is this process's before another may take it over.
    pub lease: Duration,
    /// How long to wait before looking again when nothing was due.
    pub idle: Duration,
    /// Which jobs a claim takes first.
    pub order: ClaimOrder,
    /// What happens after a failure.
    pub retry: Retry,
}

impl Policy {
    /// Whether `item`'s attempt is the last the policy allows.
    pub fn last_attempt(&self, item: &QueueItem) -> bool {
        self.retry
            .max_attempts
            .is_some_and(|max| item.attempts >= max)
    }
}

/// What became of one job run.
#[derive(Debug)]
pub enum Outcome {
    /// Finished.
    Done,
    /// The run recorded the job's end itself, in the same transaction as its effect.
    Recorded,
    /// Waiting for other work (a voice note's file or transcript): look again at `at`, without
    /// using up an attempt (short polls would otherwise spend the retries a failure needs).
    Wait {
        /// When it is due again.
        at: DateTime<Utc>,
        /// What it waits for (kept as the job's last error).
        why: String,
    },
    /// Not a failure: look again at `at` (quiet hours, models still loading...).
    Later {
        /// When it is due again.
        at: DateTime<Utc>,
        /// Why it waits (kept as the job's last error).
        why: String,
    },
    /// A failure worth another attempt: retried with the policy's backoff, dead-lettered after
    /// its last attempt.
    Failed(String),
    /// A failure no retry can fix: dead-lettered at once.
    Dead {
        /// A short machine-readable code.
        code: String,
        /// What went wrong.
        title: String,
    },
}

impl Outcome {
    /// A permanent failure.
    pub fn dead(code: &str, title: impl Into<String>) -> Self {
        Self::Dead {
            code: code.to_owned(),
            title: title.into(),
        }
    }
}

impl From<crate::store::QueueOutcome> for Outcome {
    fn from(outcome: crate::store::QueueOutcome) -> Self {
        use crate::store::QueueOutcome;
        match outcome {
            QueueOutcome::Done { .. } => Self::Done,
            QueueOutcome::Retry { at, error } => Self::Later { at, why: error },
            QueueOutcome::Wait { at, why } => Self::Wait { at, why },
            QueueOutcome::Dead { error } => Self::Dead {
                code: error.code,
                title: error.title,
            },
        }
    }
}

/// A job's typed payload, decoded from its row.
pub trait Payload: Sized + Send {
    /// Decode the row's payload (and columns); an error dead-letters the job as corrupt.
    fn decode(item: &QueueItem) -> Result<Self, String>;
}

/// Jobs about one message (`answer`, `fetch_media`, `transcribe`) carry it in the `message_id` column.
impl Payload for MessageId {
    fn decode(item: &QueueItem) -> Result<Self, String> {
        item.message_id
            .ok_or_else(|| format!("{} job without a message", item.kind))
    }
}

/// Decode a JSON payload into its typed form (for `Payload` impls).
pub fn from_json<T: DeserializeOwned>(item: &QueueItem) -> Result<T, String> {
    serde_json::from_value(item.payload.clone())
        .map_err(|e| format!("{} job payload: {e}", item.kind))
}

/// Runs the jobs of one kind.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// The jobs' payload.
    type Job: Payload;
    /// What one claimed batch shares (lookups made once per batch); `()` for nothing.
    type Batch: Default + Send + Sync;

    /// The kind this handler runs.
    const KIND: JobKind;

    /// How its jobs are claimed and retried (may depend on configuration).
    fn policy(&self, state: &AppState) -> Policy;

    /// The time jobs are due by (the state's clock for program steps, which tests move).
    fn now(&self, _state: &AppState) -> DateTime<Utc> {
        Utc::now()
    }

    /// Whether jobs can run now (for example, the models are loaded); when not, nothing is
    /// claimed and the jobs wait in the queue.
    fn ready(&self, _state: &AppState) -> bool {
        true
    }

    /// Run one job.
    async fn run(
        &self,
        state: &AppState,
        batch: &Self::Batch,
        item: &QueueItem,
        job: Self::Job,
    ) -> Outcome;
}

/// Start one runner per job kind, each stopping when `shutdown` is cancelled.
pub fn spawn_all(state: &AppState, shutdown: &CancellationToken) -> JoinSet<()> {
    let mut set = JoinSet::new();
    set.spawn(run(
        crate::knowledge::responder::Responder,
        state.clone(),
        shutdown.clone(),
    ));
    set.spawn(run(
        crate::connectors::media::Fetcher,
        state.clone(),
        shutdown.clone(),
    ));
    set.spawn(run(
        crate::knowledge::ingest::Indexer,
        state.clone(),
        shutdown.clone(),
    ));
    set.spawn(run(
        crate::notify::Notifier,
        state.clone(),
        shutdown.clone(),
    ));
    set.spawn(run(
        crate::programs::worker::Scheduler,
        state.clone(),
        shutdown.clone(),
    ));
    set.spawn(run(
        crate::feedback::Recorder,
        state.clone(),
        shutdown.clone(),
    ));
    set.spawn(run(
        crate::notify::EventSender,
        state.clone(),
        shutdown.clone(),
    ));
    set.spawn(run(
        crate::notify::email::Mailer,
        state.clone(),
        shutdown.clone(),
    ));
    set.spawn(run(
        crate::voice::Transcriber,
        state.clone(),
        shutdown.clone(),
    ));
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_stored_names() {
        for kind in JobKind::ALL {
            assert_eq!(JobKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(JobKind::parse("no_such_kind"), None);
    }
}
