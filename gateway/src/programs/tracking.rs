//! What progress answers do: record the answer, send a milestone's message once when the
//! streak or total reaches it (else a short acknowledgement), and answer "progress" with the
//! contact's summary. Called by [`inbound`](super::inbound) before the coach answers.

use chrono::{DateTime, Utc};
use coach_connector_api::OutboundBody;
use serde::Serialize;
use utoipa::ToSchema;

use super::definition::Definition;
use super::progress::{self, Progress};
use super::text::fill;
use crate::language::{Strings, Text, text};
use crate::state::AppState;
use crate::store::programs::LastRun;
use crate::store::progress::{NewEntry, NewMilestone, ProgressEntry};
use crate::store::{StoreError, StoredMessage};
use crate::tenancy::TenantScope;

/// An answer counts for the step run it follows only this long after the run.
pub const ANSWER_HOURS: i64 = 24;

/// A progress answer to a step run.
pub struct Answer<'a> {
    /// The contact's message.
    pub message: &'a StoredMessage,
    /// The run it answers.
    pub run: &'a LastRun,
    /// The program version of the run.
    pub program: &'a Definition,
    /// The step's question.
    pub question: &'a Progress,
    /// The value read from the reply.
    pub value: f64,
    /// The reply as written.
    pub reply: String,
    /// The enrollment's time zone.
    pub tz: chrono_tz::Tz,
    /// The contact's language and the tenant's texts (for the acknowledgement).
    pub lang: &'a str,
    /// The tenant's texts.
    pub strings: &'a Strings,
    /// A step is sent in answer already: no acknowledgement.
    pub answered: bool,
}

/// Record a progress answer; returns whether it was recorded now (then it is answered here:
/// a milestone's message, the acknowledgement, or the step the reply leads to).
pub async fn record(
    state: &AppState,
    scope: &TenantScope,
    a: Answer<'_>,
) -> Result<bool, StoreError> {
    let store = state.store.as_ref();
    let now = state.clock.now();
    let enrollment = &a.run.enrollment;
    let first = store
        .record_progress(
            scope,
            NewEntry {
                contact_id: enrollment.contact_id,
                enrollment_id: enrollment.id,
                program_id: enrollment.program_id,
                seq: a.run.seq,
                step_id: a.run.step_id.clone(),
                key: a.question.key.clone(),
                kind: a.question.kind.as_str(),
                value: a.value,
                counts: a.question.counts(a.value),
                local_date: a.run.sent_at.with_timezone(&a.tz).date_naive(),
                answer: a.reply.chars().take(500).collect(),
                at: now,
            },
        )
        .await?;
    // Milestones are looked at again on a re-run (a crash after the answer was recorded):
    // each is marked reached with its message in one transaction, so none is sent twice.
    let days = store
        .progress_days(scope, enrollment.id, &a.question.key)
        .await?;
    let tally = progress::tally(&days);
    let mut values = super::worker::variables(a.program, enrollment, day(a.run, a.tz, now));
    values.insert("streak".into(), tally.streak.to_string());
    values.insert("total".into(), tally.total.to_string());
    let mut celebrated = false;
    if a.question.counts(a.value) {
        for m in a
            .program
            .milestones
            .iter()
            .filter(|m| m.key == a.question.key && m.reached(tally))
        {
            let body = OutboundBody::Text {
                text: fill(&m.message, &values),
            };
            let reached = store
                .reach_milestone(
                    scope,
                    NewMilestone {
                        contact_id: enrollment.contact_id,
                        enrollment_id: enrollment.id,
                        program_id: enrollment.program_id,
                        milestone: m.id(),
                        conversation_id: a.message.conversation_id,
                        content: serde_json::to_value(body)?,
                        at: now,
                    },
                )
                .await?;
            if let Some(sent) = reached {
                tracing::info!(enrollment = %enrollment.id, milestone = %m.id(), "milestone reached");
                metrics::counter!("program_milestones_total").increment(1);
                state.stream.announce(scope, sent).await;
                celebrated = true;
            }
        }
    }
    if first && !celebrated && !a.answered {
        let key = if a.question.counts(a.value) {
            Text::ProgressNoted
        } else {
            Text::ProgressMissed
        };
        let ack = text(a.strings, a.lang, key).replace("{streak}", &tally.streak.to_string());
        state
            .stream
            .send(
                scope,
                a.message.conversation_id,
                OutboundBody::Text { text: ack },
                Some(a.message.id),
            )
            .await?;
    }
    Ok(first)
}

fn day(run: &LastRun, tz: chrono_tz::Tz, now: DateTime<Utc>) -> u32 {
    super::schedule::program_day(tz, run.enrollment.enrolled_at, now)
}

/// The contact's progress, one line per program and key: streak (alive today), best streak,
/// answers that count, and the last answer.
pub async fn summary(
    state: &AppState,
    scope: &TenantScope,
    message: &StoredMessage,
    lang: &str,
    strings: &Strings,
) -> Result<String, StoreError> {
    let log = state
        .store
        .contact_progress(scope, message.contact_id)
        .await?;
    if log.entries.is_empty() {
        return Ok(text(strings, lang, Text::ProgressNone));
    }
    let mut out = vec![text(strings, lang, Text::ProgressTitle)];
    for item in by_key(state, scope, &log.entries).await? {
        let Some(last) = item.entries.last() else {
            continue;
        };
        let name = match item.program.as_str() {
            "" => item.key.clone(),
            program => format!("{program} · {}", item.key),
        };
        out.push(
            text(strings, lang, Text::ProgressLine)
                .replace("{name}", &name)
                .replace("{streak}", &item.streak.to_string())
                .replace("{best}", &item.best_streak.to_string())
                .replace("{total}", &item.total.to_string())
                .replace(
                    "{last}",
                    &progress::display(&last.kind, last.value, item.unit.as_deref()),
                ),
        );
    }
    Ok(out.join("\n"))
}

/// One program's key for one contact.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyProgress {
    /// The program.
    #[schema(value_type = String, format = Uuid)]
    pub program_id: uuid::Uuid,
    /// Its name (empty if it is gone).
    pub program: String,
    /// The progress key.
    pub key: String,
    /// `yes_no`, `number` or `scale`.
    pub kind: String,
    /// The unit of numbers, if the program gives one.
    pub unit: Option<String>,
    /// Days in a row with an answer that counts, alive today (in the enrollment's time zone).
    pub streak: u32,
    /// The longest such run.
    pub best_streak: u32,
    /// Answers that count.
    pub total: u32,
    /// The answers, oldest first.
    pub entries: Vec<ProgressEntry>,
}

/// A contact's answers grouped per program and key (in the order first answered), with their
/// streaks in the enrollment's time zone.
pub async fn by_key(
    state: &AppState,
    scope: &TenantScope,
    entries: &[ProgressEntry],
) -> Result<Vec<KeyProgress>, StoreError> {
    let store = state.store.as_ref();
    let programs = if entries.is_empty() {
        Vec::new()
    } else {
        store.programs(scope).await?
    };
    let now = state.clock.now();
    let mut items: Vec<KeyProgress> = Vec::new();
    for e in entries.iter().cloned() {
        if let Some(item) = items
            .iter_mut()
            .find(|i| i.program_id == e.program_id && i.key == e.key)
        {
            item.entries.push(e);
            continue;
        }
        let program = programs.iter().find(|p| p.id == e.program_id);
        let unit = program.and_then(|p| {
            p.definition
                .steps
                .iter()
                .find_map(|s| s.progress.as_ref().filter(|q| q.key == e.key))
                .and_then(|q| q.unit.clone())
        });
        items.push(KeyProgress {
            program_id: e.program_id,
            program: program
                .map(|p| p.definition.name.clone())
                .unwrap_or_default(),
            key: e.key.clone(),
            kind: e.kind.clone(),
            unit,
            streak: 0,
            best_streak: 0,
            total: 0,
            entries: vec![e],
        });
    }
    for item in &mut items {
        let enrollment = store
            .enrollment(scope, item.entries[0].enrollment_id)
            .await?;
        let tz = super::schedule::parse_tz(&enrollment.time_zone).unwrap_or(chrono_tz::UTC);
        let days: Vec<_> = item
            .entries
            .iter()
            .filter(|e| e.counts)
            .map(|e| e.local_date)
            .collect();
        let tally = progress::tally(&days);
        item.streak = progress::current_streak(&days, now.with_timezone(&tz).date_naive());
        item.best_streak = tally.best;
        item.total = tally.total;
    }
    Ok(items)
}
