//! The scheduler: runs due `program_step` jobs. Each run decides, at that moment and in the
//! contact's time zone, whether the step goes out now (free-form or as its WhatsApp template),
//! waits (a human has the conversation, the person is mid-conversation, quiet hours), or is
//! skipped (overdue past its tolerance after downtime, or a closed window with no template),
//! then records the run, its message and the next step's job in one transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use coach_connector_api::{Choice, Interactive, OutboundBody, TenantId};
use tokio::sync::Mutex;

use super::Outreach;
use super::definition::{CatchUpPolicy, Definition, Step};
use super::schedule::{due_at, parse_tz, program_day};
use super::text::fill;
use crate::jobs::{ClaimOrder, Handler, JobKind, Outcome, Policy, Retry};
use crate::state::AppState;
use crate::store::programs::{
    Enrollment, EnrollmentState, SendMode, StepJob, StepOutcome, StepRun,
};
use crate::store::{ConversationStatus, QueueItem, QueueOutcome, StoreError};
use crate::tenancy::{SystemScope, TenantScope};

/// A claimed step may run this long before another process may take it over.
const LEASE: Duration = Duration::from_secs(120);
/// Steps claimed at once.
const BATCH: u32 = 256;
/// Steps run concurrently.
const CONCURRENCY: usize = 16;
/// How long a step waits while a human has the conversation before it looks again.
const HUMAN_PAUSE_MINUTES: i64 = 30;
/// A free-form step needs this much of WhatsApp's window left, so it cannot close in transit.
const WINDOW_MARGIN_MINUTES: i64 = 10;

/// What a batch looks up once: tenants' rules and program versions.
#[derive(Default)]
pub struct Lookups {
    outreach: Mutex<HashMap<TenantId, Arc<Outreach>>>,
    programs: Mutex<HashMap<(uuid::Uuid, i32), Arc<Definition>>>,
}

impl Lookups {
    async fn outreach(
        &self,
        state: &AppState,
        scope: &TenantScope,
    ) -> Result<Arc<Outreach>, StoreError> {
        if let Some(o) = self.outreach.lock().await.get(&scope.tenant_id()) {
            return Ok(o.clone());
        }
        let (_, profile) = state.store.tenant_profile(scope).await?;
        let o = Arc::new(profile.outreach());
        self.outreach
            .lock()
            .await
            .insert(scope.tenant_id(), o.clone());
        Ok(o)
    }

    async fn program(
        &self,
        state: &AppState,
        scope: &TenantScope,
        e: &Enrollment,
    ) -> Result<Arc<Definition>, StoreError> {
        let key = (e.program_id, e.version);
        if let Some(d) = self.programs.lock().await.get(&key) {
            return Ok(d.clone());
        }
        let d = Arc::new(
            state
                .store
                .program_version(scope, e.program_id, e.version)
                .await?,
        );
        self.programs.lock().await.insert(key, d.clone());
        Ok(d)
    }
}

/// Runs program steps (`program_step` jobs): up to 256 claimed at once, oldest first across
/// tenants (skipping rows another process holds), 16 running at once. A step whose run failed
/// (the store is unreachable, say) is retried with backoff, never given up: its attempts also
/// count the waits (quiet hours, a busy conversation), which are no failures, and a lost step
/// would silently end the person's program.
pub struct Scheduler;

impl crate::jobs::Payload for StepJob {
    fn decode(item: &QueueItem) -> Result<Self, String> {
        crate::jobs::from_json(item)
    }
}

#[async_trait::async_trait]
impl Handler for Scheduler {
    type Job = StepJob;
    type Batch = Lookups;
    const KIND: JobKind = JobKind::ProgramStep;

    fn policy(&self, _state: &AppState) -> Policy {
        Policy {
            batch: BATCH,
            concurrency: CONCURRENCY,
            lease: LEASE,
            idle: Duration::from_millis(500),
            order: ClaimOrder::Oldest,
            retry: Retry {
                max_attempts: None,
                base: Duration::from_secs(1),
                max: Duration::from_secs(300),
            },
        }
    }

    fn now(&self, state: &AppState) -> DateTime<Utc> {
        state.clock.now()
    }

    async fn run(
        &self,
        state: &AppState,
        lookups: &Lookups,
        item: &QueueItem,
        job: StepJob,
    ) -> Outcome {
        match run_step(state, item, job, lookups).await {
            Ok(Some(outcome)) => outcome.into(),
            // Recorded with the run.
            Ok(None) => Outcome::Recorded,
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }
}

/// Claims due steps (at the state's clock) and runs them; returns how many were claimed.
pub async fn poll_once(state: &AppState) -> Result<usize, StoreError> {
    crate::jobs::run_once(Scheduler, state).await
}

fn done() -> QueueOutcome {
    QueueOutcome::Done {
        provider_message_id: None,
    }
}

fn later(at: DateTime<Utc>, why: &str) -> QueueOutcome {
    QueueOutcome::Retry {
        at,
        error: why.to_owned(),
    }
}

/// Decide and record one step run: what becomes of its job, or `None` when recording the run
/// also finished the job.
async fn run_step(
    state: &AppState,
    item: &QueueItem,
    job: StepJob,
    lookups: &Lookups,
) -> Result<Option<QueueOutcome>, StoreError> {
    let store = state.store.as_ref();
    let scope = SystemScope::new("programs").for_tenant(item.tenant_id);
    // One read for what the run decides on (erased meanwhile: nothing to do).
    let Some(context) = store.step_context(&scope, job.enrollment_id).await? else {
        return Ok(Some(done()));
    };
    let enrollment = context.enrollment;
    // Ended (opt-out, cancelled) or already past this run: nothing to do.
    if enrollment.state != EnrollmentState::Active || enrollment.seq + 1 != job.seq {
        return Ok(Some(done()));
    }
    let program = lookups.program(state, &scope, &enrollment).await?;
    let Some(step) = program.step(&job.step_id) else {
        tracing::warn!(enrollment = %enrollment.id, step = %job.step_id, "step not in the program version");
        return Ok(Some(done()));
    };
    let outreach = lookups.outreach(state, &scope).await?;
    let now = state.clock.now();
    let tz = parse_tz(&enrollment.time_zone).unwrap_or_else(|_| outreach.tz());
    // Lateness first, from when the job was last due (a deliberate wait below moves that, so
    // waiting never makes a step overdue; downtime does).
    let late = now - item.due_at;
    let tolerance = chrono::Duration::minutes(i64::from(program.catch_up.tolerance_minutes));
    let (mut mode, mut reason) = (SendMode::FreeForm, None);
    if late > tolerance {
        let minutes = late.num_minutes();
        match program.catch_up.policy {
            CatchUpPolicy::Skip => {
                mode = SendMode::Skipped;
                reason = Some(format!("overdue by {minutes} min"));
            }
            CatchUpPolicy::Delay => reason = Some(format!("sent {minutes} min late")),
        }
    }
    let last_inbound = context.last_inbound_at;
    if mode != SendMode::Skipped {
        if context.conversation_status == ConversationStatus::Human {
            return Ok(Some(later(
                now + chrono::Duration::minutes(HUMAN_PAUSE_MINUTES),
                "paused: a human has the conversation",
            )));
        }
        // A step that answers the contact's own message (a keyword, a branch) goes now: they
        // are waiting for it. Anything else waits for them to finish writing, and for day.
        let pause = chrono::Duration::minutes(i64::from(outreach.pause_minutes));
        if let Some(last) = last_inbound
            && last + pause > now
            && !job.answers
        {
            return Ok(Some(later(
                last + pause,
                "paused: the contact is mid-conversation",
            )));
        }
        let quiet_until = outreach.quiet().after(tz, now);
        if quiet_until > now && !job.answers {
            return Ok(Some(later(quiet_until, "quiet hours")));
        }
    }
    // A channel with a service window (WhatsApp's 24 hours) takes free-form messages only
    // inside it; outside, the step's template.
    let window = state.connectors.service_window(&context.channel_kind);
    let window_open = window.is_none_or(|window| {
        last_inbound.is_some_and(|last| {
            now - last < window - chrono::Duration::minutes(WINDOW_MARGIN_MINUTES)
        })
    });
    if mode != SendMode::Skipped && !window_open {
        if step.template.is_some() {
            mode = SendMode::Template;
        } else {
            mode = SendMode::Skipped;
            reason = Some(format!(
                "the channel's {}-hour service window is closed and the step has no template",
                window.map_or(0, |w| w.num_hours())
            ));
        }
    }
    let day = program_day(tz, enrollment.enrolled_at, now);
    let values = variables(&program, &enrollment, day);
    let body = match mode {
        SendMode::Skipped => None,
        SendMode::Template => step.template.as_ref().map(|t| template(t, &values)),
        SendMode::FreeForm => {
            let file = match step.file {
                // A channel without files (SMS) gets the step's text alone.
                Some(id) if !state.connectors.carries_files(&context.channel_kind) => {
                    tracing::info!(enrollment = %enrollment.id, step = %step.id, file = %id, "the channel carries no files; the step's text is sent alone");
                    None
                }
                Some(id) => match store.file(&scope, id).await {
                    Ok(file) => Some(file),
                    // Gone from the library (an older version of the program named it): the
                    // step's text still goes.
                    Err(crate::store::StoreError::NotFound(_)) => {
                        tracing::warn!(enrollment = %enrollment.id, step = %step.id, file = %id, "the step's file is no longer in the library; its text is sent alone");
                        None
                    }
                    Err(e) => return Err(e),
                },
                None => None,
            };
            Some(free_form(step, &values, file))
        }
    };
    let content = match body {
        None => None,
        Some(body) => {
            let mut content = serde_json::to_value(body)?;
            if window.is_some() && mode == SendMode::FreeForm {
                attach_fallback(&mut content, step, &values);
            }
            Some(content)
        }
    };
    // A step that waits for a reply (a silence branch) schedules its follow-up; the reply,
    // if it comes first, puts the step it leads to in the follow-up's place.
    let next = match step.silence() {
        Some((minutes, follow_up)) if mode != SendMode::Skipped => {
            let due = now + chrono::Duration::minutes(i64::from(minutes));
            Some((follow_up.to_owned(), outreach.quiet().after(tz, due)))
        }
        _ => program.next_after(&step.id).and_then(|next| {
            let when = next.timing.when().ok()?;
            // A step that leads back to itself or an earlier one (a daily question) repeats at
            // its next time of day; so does everything under the `delay` policy.
            let position = |id: &str| program.steps.iter().position(|s| s.id == id);
            let loops_back = position(&next.id) <= position(&step.id);
            let roll = program.catch_up.policy == CatchUpPolicy::Delay || loops_back;
            let due = due_at(when, tz, enrollment.enrolled_at, now, roll);
            Some((next.id.clone(), outreach.quiet().after(tz, due)))
        }),
    };
    let run = StepRun {
        job_id: item.id,
        enrollment_id: enrollment.id,
        program_id: enrollment.program_id,
        seq: job.seq,
        step_id: step.id.clone(),
        day: i32::try_from(day).unwrap_or(i32::MAX),
        channel_id: context.channel_id,
        conversation_id: enrollment.conversation_id,
        mode,
        reason: reason.clone(),
        due_at: job.due_at,
        content,
        next,
    };
    match store.record_step(&scope, run, now).await? {
        StepOutcome::Recorded(message) => {
            // Its job was marked done with the run.
            metrics::counter!("program_steps_total", "mode" => mode.as_str()).increment(1);
            metrics::histogram!("program_step_lag_seconds")
                .record((now - item.due_at).num_milliseconds().max(0) as f64 / 1000.0);
            tracing::info!(enrollment = %enrollment.id, step = %step.id, mode = mode.as_str(), reason = ?reason, message = ?message.as_ref().map(|m| m.id.0), "program step run");
            if let Some(message) = message {
                state.stream.announce(&scope, *message).await;
            }
            Ok(None)
        }
        StepOutcome::AlreadyRan => {
            tracing::info!(enrollment = %enrollment.id, seq = job.seq, "program step ran before; not sent again");
            Ok(Some(done()))
        }
    }
}

/// The values of a step's variables for one enrollment on one day.
pub(super) fn variables(program: &Definition, e: &Enrollment, day: u32) -> HashMap<String, String> {
    let mut values: HashMap<String, String> = program.variables.clone().into_iter().collect();
    for (k, v) in &e.variables {
        let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        values.insert(k.clone(), v);
    }
    let name = e.contact_name.clone().unwrap_or_default();
    let first = name
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    values.insert("first_name".into(), first);
    values.insert("name".into(), name);
    values.insert("day".into(), day.to_string());
    values.insert("program".into(), program.name.clone());
    values.insert("goal".into(), program.goal.clone());
    values
}

fn free_form(
    step: &Step,
    values: &HashMap<String, String>,
    file: Option<crate::store::files::LibraryFile>,
) -> OutboundBody {
    let text = fill(&step.message, values);
    if let Some(file) = file {
        return crate::library::body(file, Some(text));
    }
    if step.buttons.is_empty() {
        return OutboundBody::Text { text };
    }
    OutboundBody::Interactive {
        text,
        interactive: Interactive::Buttons {
            choices: step
                .buttons
                .iter()
                .map(|b| Choice {
                    id: b.id.clone(),
                    title: fill(&b.title, values),
                    description: None,
                })
                .collect(),
        },
    }
}

fn template(t: &super::definition::Template, values: &HashMap<String, String>) -> OutboundBody {
    OutboundBody::Template {
        name: t.name.clone(),
        language: t.language.clone(),
        parameters: t.parameters.iter().map(|p| fill(p, values)).collect(),
    }
}

/// Store the step's template beside a free-form WhatsApp body: if the window closes before
/// the outbox sends it, the connector sends the template instead (never free-form outside).
fn attach_fallback(content: &mut serde_json::Value, step: &Step, values: &HashMap<String, String>) {
    if let (Some(t), serde_json::Value::Object(map)) = (&step.template, content)
        && let Ok(v) = serde_json::to_value(template(t, values))
    {
        map.insert("fallback_template".into(), v);
    }
}
