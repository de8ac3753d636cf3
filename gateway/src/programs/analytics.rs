//! Program analytics: enrollments by state, and per step and per channel what was sent,
//! delivered, read and replied to, with the time people took to reply; the completion funnel
//! (how many enrollments each step reached) and, per progress key, answers, streaks and
//! milestones.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;

use coach_connector_api::DeliveryStatus;
use serde::Serialize;

use crate::store::programs::{EnrollmentState, ProgramRecord, RunFact};
use crate::store::progress::ProgressLog;

/// A program's numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Analytics {
    /// The program.
    #[schema(value_type = String, format = Uuid)]
    pub program_id: uuid::Uuid,
    /// Everyone ever enrolled.
    pub enrolled: i64,
    /// Still receiving steps.
    pub active: i64,
    /// Received the last step.
    pub completed: i64,
    /// Opted out of proactive messages.
    pub opted_out: i64,
    /// Ended by a creator (or the program was archived).
    pub cancelled: i64,
    /// Per step, in program order.
    pub steps: Vec<StepStats>,
    /// Per channel kind.
    pub channels: Vec<ChannelStats>,
    /// Per step in program order, how many enrollments it reached (sent, not skipped); then
    /// `completed`.
    pub funnel: Vec<FunnelStage>,
    /// Per progress key.
    pub progress: Vec<ProgressStats>,
}

/// One stage of the completion funnel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FunnelStage {
    /// The step (or `completed`).
    pub stage: String,
    /// Enrollments that got there.
    pub reached: i64,
}

/// One progress key's numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ProgressStats {
    /// The key.
    pub key: String,
    /// Contacts who answered at least once.
    pub contacts: i64,
    /// Answers recorded.
    pub answers: i64,
    /// Answers that count (yes, or on target).
    pub counted: i64,
    /// Contacts by the streak they have going (alive on today's UTC date or the day before):
    /// `0`, `1-2`, `3-6`, `7+` days.
    pub streaks: Vec<StreakBucket>,
    /// The longest streak anyone reached.
    pub best_streak: u32,
    /// Milestones reached (messages sent).
    pub milestones: i64,
}

/// Contacts whose current streak is in a range.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StreakBucket {
    /// `0`, `1-2`, `3-6` or `7+`.
    pub days: String,
    /// How many.
    pub contacts: i64,
}

/// One step's numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StepStats {
    /// The step.
    pub step_id: String,
    /// Messages sent (free-form and templates).
    pub sent: i64,
    /// Of those, sent as the WhatsApp template (window closed).
    pub templates: i64,
    /// Runs skipped (overdue, or no template for a closed window).
    pub skipped: i64,
    /// Messages that reached the device (or were read).
    pub delivered: i64,
    /// Messages read.
    pub read: i64,
    /// Messages the provider refused.
    pub failed: i64,
    /// Runs the person replied to.
    pub replied: i64,
    /// Median seconds from the send to the reply.
    pub median_reply_seconds: Option<i64>,
}

/// One channel kind's numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ChannelStats {
    /// `whatsapp`, `telegram`, `web_widget`...
    pub kind: String,
    /// Enrollments on it.
    pub enrolled: i64,
    /// Messages sent.
    pub sent: i64,
    /// Messages delivered.
    pub delivered: i64,
    /// Messages read.
    pub read: i64,
    /// Runs replied to.
    pub replied: i64,
}

/// Compute a program's analytics from its enrollment counts, step runs and progress.
pub fn compute(
    program: &ProgramRecord,
    counts: &[(String, String, i64)],
    facts: &[RunFact],
    progress: &ProgressLog,
    today: NaiveDate,
) -> Analytics {
    let mut a = Analytics {
        program_id: program.id,
        ..Analytics::default()
    };
    let mut channels: BTreeMap<String, ChannelStats> = BTreeMap::new();
    for (state, kind, n) in counts {
        a.enrolled += n;
        match EnrollmentState::parse(state) {
            Some(EnrollmentState::Active) => a.active += n,
            Some(EnrollmentState::Completed) => a.completed += n,
            Some(EnrollmentState::OptedOut) => a.opted_out += n,
            Some(EnrollmentState::Cancelled) | None => a.cancelled += n,
        }
        channel(&mut channels, kind).enrolled += n;
    }
    let mut steps: Vec<StepStats> = program
        .definition
        .steps
        .iter()
        .map(|s| StepStats {
            step_id: s.id.clone(),
            ..StepStats::default()
        })
        .collect();
    let mut reply_times: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for f in facts {
        let index = match steps.iter().position(|s| s.step_id == f.step_id) {
            Some(i) => i,
            // A step of an earlier version.
            None => {
                steps.push(StepStats {
                    step_id: f.step_id.clone(),
                    ..StepStats::default()
                });
                steps.len() - 1
            }
        };
        let s = &mut steps[index];
        if f.mode == "skipped" {
            s.skipped += 1;
            continue;
        }
        let c = channel(&mut channels, &f.channel_kind);
        s.sent += 1;
        c.sent += 1;
        if f.mode == "template" {
            s.templates += 1;
        }
        let status = f.status_rank.and_then(DeliveryStatus::from_rank);
        match status {
            Some(DeliveryStatus::Delivered) => {
                s.delivered += 1;
                c.delivered += 1;
            }
            Some(DeliveryStatus::Read) => {
                s.delivered += 1;
                s.read += 1;
                c.delivered += 1;
                c.read += 1;
            }
            Some(DeliveryStatus::Failed) => s.failed += 1,
            _ => {}
        }
        if let Some(replied) = f.replied_at {
            s.replied += 1;
            c.replied += 1;
            reply_times
                .entry(f.step_id.clone())
                .or_default()
                .push((replied - f.sent_at).num_seconds().max(0));
        }
    }
    for s in &mut steps {
        if let Some(times) = reply_times.get_mut(&s.step_id) {
            times.sort_unstable();
            let mid = times.len() / 2;
            s.median_reply_seconds = match times.len() {
                0 => None,
                n if n % 2 == 1 => Some(times[mid]),
                _ => Some((times[mid - 1] + times[mid]) / 2),
            };
        }
    }
    a.funnel = funnel(&steps, facts, a.completed);
    a.steps = steps;
    a.channels = channels.into_values().collect();
    a.progress = progress_stats(progress, today);
    a
}

fn funnel(steps: &[StepStats], facts: &[RunFact], completed: i64) -> Vec<FunnelStage> {
    let mut reached: HashMap<&str, BTreeSet<uuid::Uuid>> = HashMap::new();
    for f in facts.iter().filter(|f| f.mode != "skipped") {
        reached
            .entry(f.step_id.as_str())
            .or_default()
            .insert(f.enrollment_id);
    }
    let mut out: Vec<FunnelStage> = steps
        .iter()
        .map(|s| FunnelStage {
            stage: s.step_id.clone(),
            reached: reached
                .get(s.step_id.as_str())
                .map_or(0, |e| i64::try_from(e.len()).unwrap_or(i64::MAX)),
        })
        .collect();
    out.push(FunnelStage {
        stage: "completed".into(),
        reached: completed,
    });
    out
}

fn progress_stats(log: &ProgressLog, today: NaiveDate) -> Vec<ProgressStats> {
    let mut keys: BTreeMap<&str, ProgressStats> = BTreeMap::new();
    let mut days: BTreeMap<(&str, uuid::Uuid), Vec<NaiveDate>> = BTreeMap::new();
    for e in &log.entries {
        let k = keys.entry(e.key.as_str()).or_insert_with(|| ProgressStats {
            key: e.key.clone(),
            ..ProgressStats::default()
        });
        k.answers += 1;
        let d = days.entry((e.key.as_str(), e.contact_id)).or_default();
        if e.counts {
            k.counted += 1;
            d.push(e.local_date);
        }
    }
    for ((key, _), d) in &days {
        let Some(k) = keys.get_mut(key) else { continue };
        k.contacts += 1;
        let tally = crate::programs::progress::tally(d);
        k.best_streak = k.best_streak.max(tally.best);
        let streak = crate::programs::progress::current_streak(d, today);
        let bucket = match streak {
            0 => 0,
            1..=2 => 1,
            3..=6 => 2,
            _ => 3,
        };
        if k.streaks.is_empty() {
            k.streaks = ["0", "1-2", "3-6", "7+"]
                .iter()
                .map(|d| StreakBucket {
                    days: (*d).to_owned(),
                    contacts: 0,
                })
                .collect();
        }
        k.streaks[bucket].contacts += 1;
    }
    for m in &log.milestones {
        let key = m.milestone.split(':').next().unwrap_or_default();
        if let Some(k) = keys.get_mut(key) {
            k.milestones += 1;
        }
    }
    keys.into_values().collect()
}

fn channel<'a>(
    channels: &'a mut BTreeMap<String, ChannelStats>,
    kind: &str,
) -> &'a mut ChannelStats {
    channels
        .entry(kind.to_owned())
        .or_insert_with(|| ChannelStats {
            kind: kind.to_owned(),
            ..ChannelStats::default()
        })
}
