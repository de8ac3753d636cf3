//! What a creator writes: a program's steps, their timing, branches and WhatsApp template
//! fallbacks, validated as a whole before anything is stored.

use std::collections::{BTreeMap, HashSet, VecDeque};

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};

use super::progress::{Milestone, Progress};
use super::text::variables_in;

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

    /// Every problem with the definition, as `path: what is wrong (how to fix it)`.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            out.push("name: 1 to 100 characters".into());
        }
        if self.steps.is_empty() {
            out.push("steps: a program needs at least one step".into());
            return out;
        }
        if self.steps.len() > MAX_STEPS {
            out.push(format!("steps: at most {MAX_STEPS}"));
        }
        for (i, k) in self.keywords.iter().enumerate() {
            if k.trim().is_empty() || k.contains(char::is_whitespace) || k.len() > 64 {
                out.push(format!("keywords[{i}]: one word of at most 64 characters"));
            }
        }
        for name in self.variables.keys() {
            if BUILT_IN_VARIABLES.contains(&name.as_str()) || !is_identifier(name) {
                out.push(format!(
                    "variables.{name}: custom variables are identifiers (letters, digits, _) other than the built-in {}",
                    BUILT_IN_VARIABLES.join(", ")
                ));
            }
        }
        let mut ids = HashSet::new();
        for (i, step) in self.steps.iter().enumerate() {
            let at = format!("steps[{i}]");
            if !is_step_id(&step.id) {
                out.push(format!(
                    "{at}.id: 1 to 64 letters, digits, '-' or '_' (and not \"end\")"
                ));
            } else if !ids.insert(step.id.as_str()) {
                out.push(format!("{at}.id: {:?} is used by an earlier step", step.id));
            }
        }
        for (i, step) in self.steps.iter().enumerate() {
            let at = format!("steps[{i}] ({})", step.id);
            self.step_problems(i, step, &at, &ids, &mut out);
        }
        let keys: HashSet<&str> = self
            .steps
            .iter()
            .filter_map(|s| s.progress.as_ref().map(|p| p.key.as_str()))
            .collect();
        for (i, m) in self.milestones.iter().enumerate() {
            let at = format!("milestones[{i}]");
            if !keys.contains(m.key.as_str()) {
                out.push(format!("{at}.key: no step asks for progress {:?}", m.key));
            }
            if m.streak.is_some() == m.total.is_some() || m.streak == Some(0) || m.total == Some(0)
            {
                out.push(format!(
                    "{at}: give either streak (days in a row) or total (answers), at least 1"
                ));
            }
            if m.message.trim().is_empty() || m.message.chars().count() > MAX_MESSAGE {
                out.push(format!("{at}.message: 1 to {MAX_MESSAGE} characters"));
            }
            for var in variables_in(&m.message) {
                if !self.knows(&var) && var != "streak" && var != "total" {
                    out.push(format!(
                        "{at}.message: unknown variable {{{var}}}; {} and streak, total",
                        self.known_list()
                    ));
                }
            }
        }
        if out.is_empty() {
            for unreachable in self.unreachable() {
                out.push(format!(
                    "steps ({unreachable}): unreachable from the first step; link it with next or a branch, or remove it"
                ));
            }
        }
        out
    }

    fn step_problems(
        &self,
        i: usize,
        step: &Step,
        at: &str,
        ids: &HashSet<&str>,
        out: &mut Vec<String>,
    ) {
        if step.message.trim().is_empty() || step.message.chars().count() > MAX_MESSAGE {
            out.push(format!("{at}.message: 1 to {MAX_MESSAGE} characters"));
        }
        for var in variables_in(&step.message) {
            if !self.knows(&var) {
                out.push(format!(
                    "{at}.message: unknown variable {{{var}}}; {}",
                    self.known_list()
                ));
            }
        }
        if step.buttons.len() > 3 {
            out.push(format!("{at}.buttons: at most 3 (WhatsApp shows no more)"));
        }
        let mut button_ids = HashSet::new();
        for (b, button) in step.buttons.iter().enumerate() {
            if button.id.trim().is_empty()
                || button.id.len() > 256
                || !button_ids.insert(&button.id)
            {
                out.push(format!("{at}.buttons[{b}].id: unique, 1 to 256 characters"));
            }
            if button.title.trim().is_empty() || button.title.chars().count() > 20 {
                out.push(format!("{at}.buttons[{b}].title: 1 to 20 characters"));
            }
        }
        let when = match step.timing.when() {
            Ok(w) => Some(w),
            Err(e) => {
                out.push(format!("{at}.timing: {e}"));
                None
            }
        };
        for (b, branch) in step.branches.iter().enumerate() {
            if branch.on.is_empty() || branch.on.iter().any(|o| o.trim().is_empty()) {
                out.push(format!(
                    "{at}.branches[{b}].on: one or more button ids or keywords"
                ));
            }
            if !ids.contains(branch.goto.as_str()) {
                out.push(format!(
                    "{at}.branches[{b}].goto: no step {:?}",
                    branch.goto
                ));
            }
        }
        match (step.if_no_reply_after, &step.no_reply_goto) {
            (None, None) => {}
            (Some(minutes), Some(goto)) => {
                if minutes == 0 || minutes > MAX_AFTER_MINUTES {
                    out.push(format!(
                        "{at}.if_no_reply_after: 1 to {MAX_AFTER_MINUTES} minutes"
                    ));
                }
                match self.step(goto) {
                    None => out.push(format!("{at}.no_reply_goto: no step {goto:?}")),
                    Some(target) if target.id == step.id => out.push(format!(
                        "{at}.no_reply_goto: a step cannot follow itself up (it would repeat while they stay silent)"
                    )),
                    Some(target)
                        if target.template.is_none()
                            && may_leave_window(Some(When::After(minutes))) =>
                    {
                        out.push(format!(
                            "{at}.no_reply_goto: step {goto:?} is sent {minutes} minutes after a message left unanswered, maybe outside WhatsApp's 24-hour window; give it a template"
                        ));
                    }
                    Some(_) => {}
                }
            }
            _ => out.push(format!(
                "{at}: give both if_no_reply_after (minutes) and no_reply_goto (the step to send then)"
            )),
        }
        if let Some(progress) = &step.progress {
            out.extend(progress.problems(at));
        }
        if let Some(next) = &step.next
            && next != "end"
            && !ids.contains(next.as_str())
        {
            out.push(format!(
                "{at}.next: no step {next:?} (use \"end\" to end the program)"
            ));
        }
        match &step.template {
            Some(t) => {
                if t.name.trim().is_empty() || t.language.trim().is_empty() {
                    out.push(format!("{at}.template: name and language are required"));
                }
                for p in &t.parameters {
                    for var in variables_in(p) {
                        if !self.knows(&var) {
                            out.push(format!(
                                "{at}.template.parameters: unknown variable {{{var}}}; {}",
                                self.known_list()
                            ));
                        }
                    }
                }
            }
            // The person's last message opens WhatsApp's window for 24 hours; a step sent a
            // day or more after the previous one (or the first step, which an enrollment by
            // API may send to someone who has not written lately) may fall outside it.
            None if i == 0 || may_leave_window(when) => out.push(format!(
                "{at}.template: this step may be sent outside WhatsApp's 24-hour window; give the approved template to send then (name, language, parameters)"
            )),
            None => {}
        }
    }

    fn knows(&self, var: &str) -> bool {
        BUILT_IN_VARIABLES.contains(&var) || self.variables.contains_key(var)
    }

    fn known_list(&self) -> String {
        let mut known: Vec<&str> = BUILT_IN_VARIABLES.to_vec();
        known.extend(self.variables.keys().map(String::as_str));
        format!(
            "known: {} (declare others under variables)",
            known.join(", ")
        )
    }

    /// Steps no path from the first step reaches.
    fn unreachable(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([self.steps[0].id.as_str()]);
        while let Some(id) = queue.pop_front() {
            if !seen.insert(id) {
                continue;
            }
            if let Some(next) = self.next_after(id) {
                queue.push_back(&next.id);
            }
            if let Some(step) = self.step(id) {
                queue.extend(step.branches.iter().map(|b| b.goto.as_str()));
                queue.extend(step.no_reply_goto.as_deref());
            }
        }
        self.steps
            .iter()
            .filter(|s| !seen.contains(s.id.as_str()))
            .map(|s| s.id.clone())
            .collect()
    }
}

fn may_leave_window(when: Option<When>) -> bool {
    match when {
        Some(When::After(minutes)) => minutes >= 24 * 60 - 60,
        Some(When::DayAt(..)) => true,
        None => false,
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_step_id(s: &str) -> bool {
    s != "end"
        && !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(steps: serde_json::Value) -> Definition {
        serde_json::from_value(serde_json::json!({ "name": "Sleep", "steps": steps })).unwrap()
    }

    fn template() -> serde_json::Value {
        serde_json::json!({ "name": "checkin", "language": "en_US", "parameters": ["{first_name}"] })
    }

    #[test]
    fn a_sound_program_has_no_problems_and_follows_its_links() {
        let p = program(serde_json::json!([
            { "id": "hello", "message": "Hi {first_name}, day {day}!", "template": template(),
              "buttons": [{ "id": "yes", "title": "Yes" }, { "id": "no", "title": "No" }],
              "branches": [{ "on": ["no"], "goto": "later" }] },
            { "id": "tips", "message": "Tip", "timing": { "after_minutes": 60 }, "next": "end" },
            { "id": "later", "message": "Tomorrow then", "timing": { "day": 2, "at": "09:00" }, "template": template() },
        ]));
        assert_eq!(p.problems(), Vec::<String>::new());
        assert_eq!(p.next_after("hello").unwrap().id, "tips");
        assert!(p.next_after("tips").is_none());
        assert_eq!(p.branch("hello", Some("no"), None).unwrap().id, "later");
        assert_eq!(p.branch("hello", None, Some(" NO ")).unwrap().id, "later");
        assert!(p.branch("hello", Some("yes"), Some("Yes")).is_none());
    }

    #[test]
    fn problems_name_the_step_and_the_fix() {
        let p = program(serde_json::json!([
            { "id": "a", "message": "Hi {nickname}", "template": template(), "next": "end" },
            { "id": "b", "message": "Orphan", "timing": { "day": 2 } },
            { "id": "c", "message": "Late", "timing": { "after_minutes": 2880 }, "branches": [{ "on": ["x"], "goto": "zz" }] },
        ]));
        let problems = p.problems().join("\n");
        assert!(
            problems.contains("steps[0] (a).message: unknown variable {nickname}"),
            "{problems}"
        );
        assert!(
            problems.contains("steps[1] (b).timing: give both day and at"),
            "{problems}"
        );
        assert!(
            problems.contains("steps[2] (c).branches[0].goto: no step \"zz\""),
            "{problems}"
        );
        assert!(
            problems.contains("steps[2] (c).template: this step may be sent outside"),
            "{problems}"
        );
        let unreachable = program(serde_json::json!([
            { "id": "a", "message": "Hi", "template": template(), "next": "end" },
            { "id": "b", "message": "Never", "timing": { "after_minutes": 5 } },
        ]));
        assert_eq!(
            unreachable.problems(),
            vec!["steps (b): unreachable from the first step; link it with next or a branch, or remove it".to_string()]
        );
    }

    #[test]
    fn silence_branches_and_milestones_are_checked() {
        let mut p = program(serde_json::json!([
            { "id": "ask", "message": "Did you move today?", "template": template(),
              "progress": { "key": "move", "kind": "yes_no" },
              "if_no_reply_after": 240, "no_reply_goto": "nudge", "next": "end" },
            { "id": "nudge", "message": "Just a yes or no is fine.", "next": "end" },
        ]));
        p.milestones = serde_json::from_value(serde_json::json!([
            { "key": "move", "streak": 7, "message": "{streak} days in a row, {first_name}!" },
        ]))
        .unwrap();
        assert_eq!(p.problems(), Vec::<String>::new());
        assert_eq!(p.steps[0].silence(), Some((240, "nudge")));
        p.steps[0].no_reply_goto = Some("ask".into());
        p.steps[0].if_no_reply_after = Some(2000);
        p.milestones[0].key = "sleep".into();
        p.milestones[0].total = Some(3);
        p.milestones[0].message = "{nickname}".into();
        let problems = p.problems().join("\n");
        assert!(
            problems.contains("no_reply_goto: a step cannot follow itself up"),
            "{problems}"
        );
        assert!(
            problems.contains("milestones[0].key: no step asks for progress \"sleep\""),
            "{problems}"
        );
        assert!(
            problems.contains("milestones[0]: give either streak"),
            "{problems}"
        );
        assert!(
            problems.contains("milestones[0].message: unknown variable {nickname}"),
            "{problems}"
        );
        p.steps[0].no_reply_goto = Some("nudge".into());
        let problems = p.problems().join("\n");
        assert!(
            problems.contains("no_reply_goto: step \"nudge\" is sent 2000 minutes"),
            "{problems}"
        );
        p.steps[0].no_reply_goto = None;
        assert!(
            p.problems()
                .join("\n")
                .contains("give both if_no_reply_after")
        );
    }
}
