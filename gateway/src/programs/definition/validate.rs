//! Checking a definition as a whole before anything is stored: every problem at once, named by
//! its path, with how to fix it.

use std::collections::{HashSet, VecDeque};

use super::{
    BUILT_IN_VARIABLES, Definition, MAX_AFTER_MINUTES, MAX_MESSAGE, MAX_STEPS, Step, When,
};
use crate::programs::text::variables_in;

impl Definition {
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
        if step.file.is_some() && !step.buttons.is_empty() {
            out.push(format!(
                "{at}.file: a step that sends a file has no buttons (send the question as the next step)"
            ));
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
