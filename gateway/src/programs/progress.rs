//! Progress: a program step may ask a question whose answer is recorded per contact (a yes/no, a
//! number, a point on a scale); answers on consecutive local days make a streak, and the
//! program's milestones (a streak of 7, 30 answers...) send a configured message once. A
//! coachee writing "progress" (in their language) gets their summary on any channel.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A question whose answer is recorded as progress (`progress` on a step).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// What is measured (`move`, `sleep_hours`): answers with one key form one history.
    pub key: String,
    /// `yes_no`, `number` or `scale`.
    pub kind: ProgressKind,
    /// The lowest accepted answer (number, scale; a scale starts at 1 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The highest accepted answer (number, scale; a scale ends at 10 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// A number or scale answer counts towards a streak from this value on (any answer counts
    /// without one); a yes/no answer counts when it is yes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// Shown after numbers in summaries (`hours`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// What kind of answer a progress question takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProgressKind {
    /// Yes (1) or no (0): buttons with ids `yes` and `no`, or the words in en/es/pt.
    YesNo,
    /// Any number in the reply ("about 7.5 hours").
    Number,
    /// A whole number from `min` to `max`.
    Scale,
}

impl ProgressKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::YesNo => "yes_no",
            Self::Number => "number",
            Self::Scale => "scale",
        }
    }
}

/// A message sent once per enrollment when a key's streak or number of answers reaches a value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Milestone {
    /// The progress key it watches.
    pub key: String,
    /// Reached at this many consecutive days with an answer that counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streak: Option<u32>,
    /// Reached at this many answers that count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u32>,
    /// What is sent, with `{variables}` and `{streak}`, `{total}`.
    pub message: String,
}

impl Milestone {
    /// Its stable name within the program (what "sent once" is keyed on).
    pub fn id(&self) -> String {
        match (self.streak, self.total) {
            (Some(n), _) => format!("{}:streak:{n}", self.key),
            (None, Some(n)) => format!("{}:total:{n}", self.key),
            (None, None) => format!("{}:none", self.key),
        }
    }

    /// Whether `tally` reaches it.
    pub fn reached(&self, tally: Tally) -> bool {
        match (self.streak, self.total) {
            (Some(n), _) => tally.streak >= n,
            (None, Some(n)) => tally.total >= n,
            (None, None) => false,
        }
    }
}

/// The longest accepted unit.
const MAX_UNIT: usize = 20;

impl Progress {
    fn bounds(&self) -> (Option<f64>, Option<f64>) {
        match self.kind {
            ProgressKind::Scale => (
                Some(self.min.unwrap_or(1.0)),
                Some(self.max.unwrap_or(10.0)),
            ),
            ProgressKind::Number => (self.min, self.max),
            ProgressKind::YesNo => (None, None),
        }
    }

    /// Every problem with the question, as `path: what is wrong`.
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut out = Vec::new();
        if !is_key(&self.key) {
            out.push(format!(
                "{at}.progress.key: 1 to 64 letters, digits or _ (e.g. move, sleep_hours)"
            ));
        }
        let (min, max) = self.bounds();
        if self.kind == ProgressKind::YesNo
            && (self.min.is_some() || self.max.is_some() || self.target.is_some())
        {
            out.push(format!(
                "{at}.progress: min, max and target are for number and scale questions"
            ));
        }
        if let (Some(min), Some(max)) = (min, max)
            && !(min < max && min.is_finite() && max.is_finite())
        {
            out.push(format!("{at}.progress: min must be below max"));
        }
        if self.kind == ProgressKind::Scale
            && let (Some(min), Some(max)) = (min, max)
            && (min.fract() != 0.0 || max.fract() != 0.0 || max - min > 100.0)
        {
            out.push(format!(
                "{at}.progress: a scale runs between whole numbers, at most 100 apart"
            ));
        }
        if self
            .unit
            .as_ref()
            .is_some_and(|u| u.chars().count() > MAX_UNIT)
        {
            out.push(format!("{at}.progress.unit: at most {MAX_UNIT} characters"));
        }
        out
    }

    /// The value of a reply (a tapped button's id, else its text), if it answers the question.
    pub fn parse(&self, button: Option<&str>, text: Option<&str>) -> Option<f64> {
        if self.kind == ProgressKind::YesNo {
            return button
                .and_then(yes_no)
                .or_else(|| text.and_then(yes_no))
                .map(|yes| if yes { 1.0 } else { 0.0 });
        }
        let value = button
            .and_then(first_number)
            .or_else(|| text.and_then(first_number))?;
        let (min, max) = self.bounds();
        if min.is_some_and(|m| value < m) || max.is_some_and(|m| value > m) {
            return None;
        }
        if self.kind == ProgressKind::Scale && value.fract() != 0.0 {
            return None;
        }
        Some(value)
    }

    /// Whether an answer counts towards streaks and totals.
    pub fn counts(&self, value: f64) -> bool {
        match self.kind {
            ProgressKind::YesNo => value >= 1.0,
            _ => self.target.is_none_or(|t| value >= t),
        }
    }
}

/// How an answer is shown: ✓ or ✗ for yes/no, else the number (with its unit).
pub fn display(kind: &str, value: f64, unit: Option<&str>) -> String {
    if kind == ProgressKind::YesNo.as_str() {
        return if value >= 1.0 { "✓" } else { "✗" }.to_owned();
    }
    let number = if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value:.1}")
    };
    match unit.map(str::trim).filter(|u| !u.is_empty()) {
        Some(unit) => format!("{number} {unit}"),
        None => number,
    }
}

fn is_key(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Yes or no, from a button id or a short reply in English, Spanish or Portuguese.
fn yes_no(text: &str) -> Option<bool> {
    const YES: &[&str] = &[
        "yes",
        "y",
        "yeah",
        "yep",
        "yup",
        "done",
        "did it",
        "of course",
        "sure",
        "sí",
        "si",
        "claro",
        "hecho",
        "sim",
        "feito",
        "✓",
        "✔",
        "✔️",
        "✅",
        "👍",
    ];
    const NO: &[&str] = &[
        "no",
        "n",
        "nope",
        "not yet",
        "not today",
        "didn't",
        "todavía no",
        "hoy no",
        "não",
        "nao",
        "ainda não",
        "hoje não",
        "✗",
        "❌",
        "👎",
    ];
    let word = super::keyword_form(text);
    let word = word.trim_end_matches([',', ';']);
    // "Yes, 20 minutes!" answers yes: the first word decides when the whole reply is no word.
    let first = word.split([' ', ',']).next().unwrap_or_default();
    for candidate in [word, first] {
        if YES.contains(&candidate) {
            return Some(true);
        }
        if NO.contains(&candidate) {
            return Some(false);
        }
    }
    None
}

/// The first number in a reply (`7`, `7.5`, `7,5`, `-2`), if any.
fn first_number(text: &str) -> Option<f64> {
    let chars: Vec<char> = text.chars().collect();
    let start = chars.iter().position(|c| c.is_ascii_digit())?;
    let negative = start > 0 && chars[start - 1] == '-';
    let mut end = start;
    let mut seen_point = false;
    while end < chars.len() {
        let c = chars[end];
        if c.is_ascii_digit() {
            end += 1;
        } else if (c == '.' || c == ',')
            && !seen_point
            && chars.get(end + 1).is_some_and(char::is_ascii_digit)
        {
            seen_point = true;
            end += 1;
        } else {
            break;
        }
    }
    let number: String = chars[start..end]
        .iter()
        .map(|c| if *c == ',' { '.' } else { *c })
        .collect();
    let value: f64 = number.parse().ok()?;
    Some(if negative { -value } else { value })
}

/// A key's numbers for one enrollment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Tally {
    /// Consecutive local days with an answer that counts, ending on the latest such day.
    pub streak: u32,
    /// The longest such run.
    pub best: u32,
    /// Answers that count.
    pub total: u32,
}

/// The tally of the days on which an answer that counts was given (`days` in any order, with
/// repeats): the streak ends on the latest day.
pub fn tally(days: &[NaiveDate]) -> Tally {
    let days: BTreeSet<NaiveDate> = days.iter().copied().collect();
    let (mut run, mut best, mut previous) = (0u32, 0u32, None::<NaiveDate>);
    for day in &days {
        run = match previous {
            Some(p) if p.succ_opt() == Some(*day) => run + 1,
            _ => 1,
        };
        best = best.max(run);
        previous = Some(*day);
    }
    Tally {
        streak: run,
        best,
        total: u32::try_from(days.len()).unwrap_or(u32::MAX),
    }
}

/// The streak still alive on `today`: the tally's, when its last day is today or yesterday.
pub fn current_streak(days: &[NaiveDate], today: NaiveDate) -> u32 {
    let Some(last) = days.iter().max() else {
        return 0;
    };
    if *last == today || last.succ_opt() == Some(today) {
        tally(days).streak
    } else {
        0
    }
}

/// Whole messages that ask for one's progress, with the language they are in.
const ASKS: &[(&str, &str)] = &[
    ("progress", "en"),
    ("my progress", "en"),
    ("progreso", "es"),
    ("mi progreso", "es"),
    ("progresso", "pt"),
    ("meu progresso", "pt"),
];

/// Whether a message (in keyword form) asks for one's progress.
pub fn asks_for_progress(word: &str) -> bool {
    ASKS.iter().any(|(w, _)| *w == word)
}

/// The language of a request for progress that only one language uses ("progress" is
/// English, but an English word in a Spanish chat is answered in the contact's language).
pub fn language_of_request(word: &str) -> Option<&'static str> {
    ASKS.iter()
        .find(|(w, lang)| *w == word && *lang != "en")
        .map(|(_, lang)| *lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(kind: ProgressKind) -> Progress {
        Progress {
            key: "move".into(),
            kind,
            min: None,
            max: None,
            target: None,
            unit: None,
        }
    }

    #[test]
    fn answers_are_read_from_buttons_and_words() {
        let yes_no = question(ProgressKind::YesNo);
        assert_eq!(yes_no.parse(Some("yes"), Some("Yes")), Some(1.0));
        assert_eq!(yes_no.parse(None, Some("Sí!")), Some(1.0));
        assert_eq!(yes_no.parse(None, Some("Yes, 20 minutes")), Some(1.0));
        assert_eq!(yes_no.parse(None, Some("não")), Some(0.0));
        assert_eq!(yes_no.parse(None, Some("Not today")), Some(0.0));
        assert_eq!(yes_no.parse(None, Some("What do you mean?")), None);
        let hours = Progress {
            min: Some(0.0),
            max: Some(24.0),
            ..question(ProgressKind::Number)
        };
        assert_eq!(hours.parse(None, Some("about 7,5 hours")), Some(7.5));
        assert_eq!(hours.parse(None, Some("30")), None);
        assert_eq!(hours.parse(None, Some("none")), None);
        let scale = question(ProgressKind::Scale);
        assert_eq!(scale.parse(None, Some("8/10")), Some(8.0));
        assert_eq!(scale.parse(None, Some("0")), None);
        assert_eq!(scale.parse(None, Some("7.5")), None);
        assert!(yes_no.counts(1.0) && !yes_no.counts(0.0));
        let target = Progress {
            target: Some(7.0),
            ..hours.clone()
        };
        assert!(target.counts(7.5) && !target.counts(6.0));
        assert_eq!(display("number", 7.5, Some("hours")), "7.5 hours");
        assert_eq!(display("scale", 8.0, None), "8");
        assert_eq!(display("yes_no", 0.0, None), "✗");
    }

    #[test]
    fn streaks_are_consecutive_local_days() {
        let d = |day: u32| NaiveDate::from_ymd_opt(2026, 12, day).unwrap();
        let days = [d(1), d(2), d(2), d(3), d(5), d(6)];
        assert_eq!(
            tally(&days),
            Tally {
                streak: 2,
                best: 3,
                total: 5
            }
        );
        assert_eq!(current_streak(&days, d(7)), 2);
        assert_eq!(current_streak(&days, d(8)), 0);
        assert_eq!(tally(&[]), Tally::default());
        let m = Milestone {
            key: "move".into(),
            streak: Some(3),
            total: None,
            message: "Three!".into(),
        };
        assert_eq!(m.id(), "move:streak:3");
        assert!(!m.reached(tally(&days)));
        assert!(m.reached(tally(&days[..4])));
    }

    #[test]
    fn questions_are_checked() {
        let bad = Progress {
            key: "my key".into(),
            min: Some(5.0),
            max: Some(1.0),
            unit: Some("x".repeat(30)),
            ..question(ProgressKind::Scale)
        };
        let problems = bad.problems("steps[0] (q)").join("\n");
        assert!(problems.contains("steps[0] (q).progress.key"), "{problems}");
        assert!(problems.contains("min must be below max"), "{problems}");
        assert!(problems.contains("progress.unit"), "{problems}");
        let yes_no = Progress {
            target: Some(1.0),
            ..question(ProgressKind::YesNo)
        };
        assert_eq!(yes_no.problems("s").len(), 1);
        assert!(question(ProgressKind::Number).problems("s").is_empty());
    }
}
