//! What a creator writes: a program's steps, their timing, branches and WhatsApp template
//! fallbacks, validated as a whole before anything is stored (`validate.rs`).

mod validate;

use std::collections::BTreeMap;

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};

use super::progress::{Milestone, Progress};

/// The variables every program can use in messages and template parameters.
pub const BUILT_IN_VARIABLES: &[&str] = &["first_name", "name", "day", "program", "goal"];

/// The longest a step's message may be (WhatsApp's free-form limit).
const MAX_MESSAGE: usize = 4096;
/// Steps in one program.
const MAX_STEPS: usize = 200;
/// The longest wait between two steps.
const MAX_AFTER_MINUTES: u32 = 366 * 24 * 60;

/// A program: a sequence of steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// Shown to creators.
    pub name: String,
    /// What the program helps people achieve; given to the coach when it answers replies.
    #[serde(default)]
    pub goal: String,
    /// Words that enroll whoever writes one of them (on Telegram also `/start <word>`).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Custom variables with their defaults; an enrollment may give its own values.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// What to do with a step found overdue (after downtime).
    #[serde(default)]
    pub catch_up: CatchUp,
    /// The steps; the first one starts the program.
    pub steps: Vec<Step>,
    /// Messages sent once when a progress streak or total reaches a value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub milestones: Vec<Milestone>,
}

/// How late a step may still be sent, and what happens to one later than that.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatchUp {
    /// Minutes after its due time a step is still sent as planned.
    #[serde(default = "default_tolerance")]
    pub tolerance_minutes: u32,
    /// `skip` (go on with the next step) or `delay` (send it now, late).
    #[serde(default)]
    pub policy: CatchUpPolicy,
}

fn default_tolerance() -> u32 {
    180
}

impl Default for CatchUp {
    fn default() -> Self {
        Self {
            tolerance_minutes: default_tolerance(),
            policy: CatchUpPolicy::Skip,
        }
    }
}

/// What happens to a step overdue by more than its tolerance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatchUpPolicy {
    /// It is recorded as skipped and the program goes on.
    #[default]
    Skip,
    /// It is sent now.
    Delay,
}

/// One message of a program.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Unique within the program (letters, digits, `-`, `_`).
    pub id: String,
    /// The text, with `{variables}`.
    pub message: String,
    /// Quick-reply buttons (at most 3).
    #[serde(default)]
    pub buttons: Vec<Button>,
    /// When it is sent.
    #[serde(default)]
    pub timing: Timing,
    /// Where a reply leads: the first branch whose `on` matches wins.
    #[serde(default)]
    pub branches: Vec<Branch>,
    /// The step after this one when no branch matched; by default the one listed next.
    /// `"end"` ends the program.
    #[serde(default)]
    pub next: Option<String>,
    /// The approved WhatsApp template sent instead when the 24-hour window is closed.
    #[serde(default)]
    pub template: Option<Template>,
    /// Wait this many minutes for a reply: without one by then, `no_reply_goto` is sent; with
    /// one, the step the reply leads to (branch or `next`) follows, timed from the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_no_reply_after: Option<u32>,
    /// The step sent when no reply came within `if_no_reply_after` minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_reply_goto: Option<String>,
    /// A question whose answer is recorded as the contact's progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// A file of the tenant's library (`/v1/files`) sent with the step, its text as the
    /// caption; such a step has no buttons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub file: Option<uuid::Uuid>,
}

impl Step {
    /// The silence branch: minutes to wait and the step sent when no reply came.
    pub fn silence(&self) -> Option<(u32, &str)> {
        Some((self.if_no_reply_after?, self.no_reply_goto.as_deref()?))
    }
}

/// A quick-reply button.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Button {
    /// What the reply carries back (branch on it).
    pub id: String,
    /// What the person sees (at most 20 characters).
    pub title: String,
}

/// A branch: replies matching `on` (a button id, or a keyword, case-insensitive) go to `goto`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    /// Button ids or keywords.
    pub on: Vec<String>,
    /// The step to go to.
    pub goto: String,
}

/// An approved WhatsApp message template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// The template's name.
    pub name: String,
    /// Its language code, e.g. `en_US`.
    pub language: String,
    /// Body parameters, with `{variables}`.
    #[serde(default)]
    pub parameters: Vec<String>,
}

/// When a step is sent: `after_minutes` after the previous one (or the enrollment), or on
/// `day` N of the program (day 1 is the day of enrollment) `at` a local time of day.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// Minutes after the previous step was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_minutes: Option<u32>,
    /// The program day (1 = the day of enrollment, in the contact's time zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<u32>,
    /// The local time of day, `HH:MM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// A parsed timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Minutes after the previous step.
    After(u32),
    /// Day N at a local time.
    DayAt(u32, NaiveTime),
}

impl Timing {
    /// The timing, or what is wrong with it.
    pub fn when(&self) -> Result<When, String> {
        match (self.after_minutes, self.day, &self.at) {
            (None, None, None) => Ok(When::After(0)),
            (Some(m), None, None) if m <= MAX_AFTER_MINUTES => Ok(When::After(m)),
            (Some(_), None, None) => Err(format!(
                "after_minutes: at most {MAX_AFTER_MINUTES} (a year)"
            )),
            (None, Some(day), Some(at)) => {
                if day == 0 || day > 3660 {
                    return Err("day: 1 (the day of enrollment) to 3660".into());
                }
                let time = NaiveTime::parse_from_str(at, "%H:%M")
                    .map_err(|_| format!("at: {at:?} is not a time of day as HH:MM"))?;
                Ok(When::DayAt(day, time))
            }
            (None, Some(_), None) | (None, None, Some(_)) => {
                Err("give both day and at (e.g. day 3 at 08:30)".into())
            }
            _ => Err("give either after_minutes, or day and at".into()),
        }
    }
}

impl Definition {
    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The step that follows `id` when the reply (if any) matched no branch; `None` ends.
    pub fn next_after(&self, id: &str) -> Option<&Step> {
        let index = self.steps.iter().position(|s| s.id == id)?;
        match self.steps[index].next.as_deref() {
            Some("end") => None,
            Some(next) => self.step(next),
            None => self.steps.get(index + 1),
        }
    }

    /// The branch target of a reply to step `id`: a button id or a keyword (whole reply,
    /// case-insensitive).
    pub fn branch(&self, id: &str, button: Option<&str>, text: Option<&str>) -> Option<&Step> {
        let step = self.step(id)?;
        let text = text.map(|t| t.trim().to_lowercase());
        step.branches
            .iter()
            .find(|b| {
                b.on.iter().any(|on| {
                    button == Some(on.as_str()) || text.as_deref() == Some(&on.to_lowercase())
                })
            })
            .and_then(|b| self.step(&b.goto))
    }

    /// Whether a keyword enrolls in this program.
    pub fn has_keyword(&self, word: &str) -> bool {
        self.keywords.iter().any(|k| k.eq_ignore_ascii_case(word))
    }
}

#[cfg(test)]
mod tests;
