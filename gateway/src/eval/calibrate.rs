//! `gateway eval answers --calibrate`: choosing the settings that decide whether the coach
//! answers, from one run on a dev split. The run answers every question (no relevance or
//! coverage floor, no decline by probability) and records each one's signals: the best
//! passage's similarity, the share of the question's terms found in the passages, how likely the
//! model was to open with "I don't know", and whether it did. Every combination of settings is
//! then scored exactly as the chat path would decide with it, without asking again: a question
//! is declined when its similarity or coverage is under its floor, its decline probability at or
//! above the threshold, or the model said it did not know; an answerable question counts when it
//! was not declined and the reply held a gold answer.
//!
//! Declining everything scores a mean of 0.50, so the sweep also reports how well each signal
//! alone separates unanswerable from answerable questions (ROC AUC; 0.5 is chance).

use std::io::Write as _;
use std::path::Path;

use super::answers::{AnswerReport, Grounding, Judged, SUPPORT_FLOORS};

/// The relevance floors tried (`brain.relevance_floor`).
const FLOORS: &[f32] = &[0.0, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5];

/// The coverage floors tried (`brain.coverage_floor`).
const COVERAGE: &[f32] = &[0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// The thresholds tried (`brain.abstain_threshold`; above 1: only a reply that says so).
const THRESHOLDS: &[f32] = &[0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.01];

/// One combination of settings and its scores.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    /// `brain.support_floor` (an index into [`SUPPORT_FLOORS`]).
    pub support: usize,
    /// `brain.relevance_floor`.
    pub floor: f32,
    /// `brain.coverage_floor`.
    pub coverage: f32,
    /// `brain.abstain_threshold`.
    pub threshold: f32,
    /// Answerable questions answered with a gold answer.
    pub answerable: f64,
    /// Unanswerable questions declined.
    pub declined: f64,
}

impl Setting {
    /// The mean of the two parts.
    pub fn mean(&self) -> f64 {
        f64::midpoint(self.answerable, self.declined)
    }
}

/// The reply at the setting's support floor (as generated when it was not recorded).
fn grounded(j: &Judged, s: &Setting) -> Grounding {
    j.grounded.get(s.support).copied().unwrap_or(Grounding {
        answered: true,
        holds: j.holds,
    })
}

fn declines(j: &Judged, s: &Setting) -> bool {
    j.signals.relevance < s.floor
        || j.signals.coverage < s.coverage
        || j.signals.said_decline
        || j.signals.abstain.is_some_and(|p| p >= s.threshold)
        || !grounded(j, s).answered
}

/// Every setting's scores, in the order tried.
pub fn sweep(report: &AnswerReport) -> Vec<Setting> {
    let mut out = Vec::new();
    for support in 0..SUPPORT_FLOORS.len() {
        for &floor in FLOORS {
            for &coverage in COVERAGE {
                for &threshold in THRESHOLDS {
                    let mut s = Setting {
                        support,
                        floor,
                        coverage,
                        threshold,
                        answerable: 0.0,
                        declined: 0.0,
                    };
                    s.answerable =
                        report.share(true, |j| grounded(j, &s).holds && !declines(j, &s));
                    s.declined = report.share(false, |j| declines(j, &s));
                    out.push(s);
                }
            }
        }
    }
    out
}

/// The setting with the best mean; among equals, the one with the better worse part.
pub fn best(settings: &[Setting]) -> Option<Setting> {
    settings.iter().copied().max_by(|a, b| {
        a.mean().total_cmp(&b.mean()).then(
            a.answerable
                .min(a.declined)
                .total_cmp(&b.answerable.min(b.declined)),
        )
    })
}

/// How well `score` (higher: more likely unanswerable) ranks unanswerable questions above
/// answerable ones: the probability that a random unanswerable one scores higher (ties half).
pub fn auc(report: &AnswerReport, score: impl Fn(&Judged) -> f64) -> f64 {
    let pos: Vec<f64> = report
        .judged
        .iter()
        .filter(|j| !j.answerable)
        .map(&score)
        .collect();
    let neg: Vec<f64> = report
        .judged
        .iter()
        .filter(|j| j.answerable)
        .map(&score)
        .collect();
    if pos.is_empty() || neg.is_empty() {
        return 0.5;
    }
    let mut wins = 0.0;
    for p in &pos {
        for n in &neg {
            wins += match p.total_cmp(n) {
                std::cmp::Ordering::Greater => 1.0,
                std::cmp::Ordering::Equal => 0.5,
                std::cmp::Ordering::Less => 0.0,
            };
        }
    }
    wins / (pos.len() * neg.len()) as f64
}

/// Prints each signal's AUC, the ten best settings with both parts, and the best one.
pub fn print(report: &AnswerReport) {
    println!(
        "calibration: AUC (unanswerable vs answerable) of low relevance {:.3}, low coverage {:.3}, \
         decline probability {:.3}, low support of the reply {:.3}",
        auc(report, |j| -f64::from(j.signals.relevance)),
        auc(report, |j| -f64::from(j.signals.coverage)),
        auc(report, |j| f64::from(j.signals.abstain.unwrap_or(0.0))),
        auc(report, |j| -f64::from(j.support)),
    );
    let mut settings = sweep(report);
    // Each support floor at today's other defaults (relevance 0.35, threshold 0.1).
    println!(
        "support_floor (relevance_floor 0.35, abstain_threshold 0.1): answerable declined mean"
    );
    for s in settings
        .iter()
        .filter(|s| s.floor == 0.35 && s.coverage == 0.0 && s.threshold == 0.1)
    {
        println!(
            "{:.2}: {:.2} {:.2} {:.2}",
            SUPPORT_FLOORS[s.support],
            s.answerable,
            s.declined,
            s.mean()
        );
    }
    settings.sort_by(|a, b| b.mean().total_cmp(&a.mean()));
    println!(
        "support_floor relevance_floor coverage_floor abstain_threshold: answerable declined mean"
    );
    for s in settings.iter().take(10) {
        println!(
            "{:.2} {:.2} {:.2} {:.3}: {:.2} {:.2} {:.2}",
            SUPPORT_FLOORS[s.support],
            s.floor,
            s.coverage,
            s.threshold,
            s.answerable,
            s.declined,
            s.mean()
        );
    }
    if let Some(b) = best(&settings) {
        println!(
            "best: support_floor {:.2}, relevance_floor {:.2}, coverage_floor {:.2}, \
             abstain_threshold {:.3}: answerable {:.2}, unanswerable declined {:.2}, mean {:.2}",
            SUPPORT_FLOORS[b.support],
            b.floor,
            b.coverage,
            b.threshold,
            b.answerable,
            b.declined,
            b.mean()
        );
    }
}

/// Writes each question's signals and outcome as one JSON line (for analysis elsewhere).
pub fn trace(report: &AnswerReport, path: &Path) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for j in &report.judged {
        let line = serde_json::json!({
            "id": j.id, "answerable": j.answerable, "holds": j.holds, "confident": j.confident,
            "relevance": j.signals.relevance, "coverage": j.signals.coverage,
            "abstain": j.signals.abstain, "said_decline": j.signals.said_decline,
            "support": j.support,
            "grounded": j.grounded.iter().map(|g| [g.answered, g.holds]).collect::<Vec<_>>(),
            "total_ms": j.total.as_millis() as u64,
        });
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::knowledge::answer::Signals;

    fn judged(answerable: bool, holds: bool, relevance: f32, abstain: f32) -> Judged {
        Judged {
            id: String::new(),
            answerable,
            confident: true,
            correct: holds,
            repeats: false,
            holds,
            signals: Signals {
                relevance,
                abstain: Some(abstain),
                said_decline: false,
                coverage: 1.0,
            },
            support: 1.0,
            dropped: 0,
            grounded: Vec::new(),
            first_token: Duration::ZERO,
            total: Duration::ZERO,
        }
    }

    #[test]
    fn each_setting_decides_as_the_chat_path_would() {
        let report = AnswerReport {
            judged: vec![
                judged(true, true, 0.6, 0.05), // answered right at any threshold above 0.05
                judged(true, false, 0.5, 0.01), // answered wrong
                judged(false, false, 0.5, 0.3), // declined from a threshold of 0.3 down
                judged(false, false, 0.12, 0.0), // declined by a floor above 0.12
            ],
        };
        let settings = sweep(&report);
        let at = |floor: f32, threshold: f32| {
            *settings
                .iter()
                .find(|s| {
                    s.support == 0
                        && s.floor == floor
                        && s.coverage == 0.0
                        && s.threshold == threshold
                })
                .unwrap()
        };
        let loose = at(0.0, 1.01);
        assert_eq!((loose.answerable, loose.declined), (0.5, 0.0));
        let strict = at(0.2, 0.2);
        assert_eq!((strict.answerable, strict.declined), (0.5, 1.0));
        let too_strict = at(0.2, 0.05);
        assert_eq!((too_strict.answerable, too_strict.declined), (0.0, 1.0));
        let b = best(&settings).unwrap();
        assert!((b.mean() - 0.75).abs() < 1e-9, "{b:?}");
        assert!(
            b.floor > 0.12 && b.threshold > 0.05 && b.threshold <= 0.3,
            "{b:?}"
        );
        // Each signal catches one of the two unanswerable questions: each ranks half the pairs.
        let by_abstain = auc(&report, |j| f64::from(j.signals.abstain.unwrap()));
        assert!((by_abstain - 0.5).abs() < 1e-9, "{by_abstain}");
        let by_relevance = auc(&report, |j| -f64::from(j.signals.relevance));
        assert!((by_relevance - 0.875).abs() < 1e-9, "{by_relevance}");
    }
}
