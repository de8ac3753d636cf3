//! Coaching programs: a creator's sequence of check-ins, sent on schedule to each enrolled
//! contact on whatever channel they use.
//!
//! - [`definition`]: what a creator writes, validated as a whole.
//! - [`schedule`]: due times in the contact's time zone, quiet hours, program days.
//! - [`worker`]: the scheduler. Each due step is a `program_step` job on the jobs table (claimed
//!   under a lease, `FOR UPDATE SKIP LOCKED` on PostgreSQL); running it records the run, queues
//!   its message and schedules the next step in one transaction, so a step reaches a contact at
//!   most once however many gateway processes run.
//! - [`inbound`]: what a contact's message does to programs before the coach answers it:
//!   opt-out and opt-in keywords, enrollment keywords, replies that advance a branch.
//! - [`progress`]: questions whose answers are recorded per contact, streaks, milestones.
//! - [`analytics`]: per program, step and channel, the completion funnel and streaks.
//!
//! A tenant's rules for proactive messages ([`Outreach`]) live in its profile.

pub mod analytics;
pub mod definition;
pub mod enroll;
pub mod files;
pub mod inbound;
pub mod progress;
pub mod schedule;
pub mod text;
pub mod tracking;
pub mod worker;

use serde::{Deserialize, Serialize};

use schedule::{Quiet, QuietHours};

/// A tenant's rules for proactive messages (`outreach` in `PATCH /v1/tenant`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Outreach {
    /// The time zone of contacts enrolled without one (IANA name).
    pub time_zone: String,
    /// No proactive message in these local hours.
    pub quiet_hours: QuietHours,
    /// Whole messages that stop every proactive message to the sender (case-insensitive).
    pub opt_out_keywords: Vec<String>,
    /// Whole messages that allow them again after an opt-out.
    pub opt_in_keywords: Vec<String>,
    /// The confirmation of an opt-out (empty: the built-in one, in the keyword's language).
    pub opt_out_reply: String,
    /// The confirmation of an opt-in (empty: the built-in one).
    pub opt_in_reply: String,
    /// A step waits this many minutes after the contact's last message, so a check-in never
    /// cuts into a conversation.
    pub pause_minutes: u32,
}

/// Opt-out words understood by default: the usual English set (STOP, UNSUBSCRIBE...) and their
/// Spanish, Portuguese, French and German counterparts.
const OPT_OUT: &[&str] = &[
    "stop",
    "stopall",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "baja",
    "darme de baja",
    "parar",
    "sair",
    "arret",
    "arrêt",
    "stopp",
    "abmelden",
];
const OPT_OUT_ES: &[&str] = &["baja", "darme de baja", "parar"];
const OPT_IN: &[&str] = &["start", "unstop", "subscribe", "alta", "reanudar"];

impl Default for Outreach {
    fn default() -> Self {
        Self {
            time_zone: "UTC".into(),
            quiet_hours: QuietHours::default(),
            opt_out_keywords: OPT_OUT.iter().map(|s| (*s).to_owned()).collect(),
            opt_in_keywords: OPT_IN.iter().map(|s| (*s).to_owned()).collect(),
            opt_out_reply: String::new(),
            opt_in_reply: String::new(),
            pause_minutes: 30,
        }
    }
}

impl Outreach {
    /// What is wrong with the rules, if anything.
    pub fn validate(&self) -> Result<(), String> {
        schedule::parse_tz(&self.time_zone).map_err(|e| format!("outreach.time_zone: {e}"))?;
        self.quiet_hours
            .parse()
            .map_err(|e| format!("outreach.{e}"))?;
        for (field, words) in [
            ("opt_out_keywords", &self.opt_out_keywords),
            ("opt_in_keywords", &self.opt_in_keywords),
        ] {
            if words
                .iter()
                .any(|w| w.trim().is_empty() || w.chars().count() > 64)
            {
                return Err(format!("outreach.{field}: each 1 to 64 characters"));
            }
        }
        if self.opt_out_keywords.is_empty() {
            return Err(
                "outreach.opt_out_keywords: at least one (people must be able to stop messages)"
                    .into(),
            );
        }
        if self.pause_minutes > 24 * 60 {
            return Err("outreach.pause_minutes: at most 1440".into());
        }
        Ok(())
    }

    /// The quiet hours (none if unreadable, which validation prevents).
    pub fn quiet(&self) -> Quiet {
        self.quiet_hours.parse().unwrap_or(Quiet::NONE)
    }

    /// The default time zone.
    pub fn tz(&self) -> chrono_tz::Tz {
        schedule::parse_tz(&self.time_zone).unwrap_or(chrono_tz::UTC)
    }

    /// The confirmation of an opt-out by `word`: the tenant's `opt_out_reply`, else its
    /// `strings` (or the built-in text) in the keyword's language when it is a Spanish one, else
    /// in the contact's language `lang`, naming the word that turns check-ins on again.
    pub fn opt_out_confirmation(
        &self,
        word: &str,
        strings: &crate::language::Strings,
        lang: &str,
    ) -> String {
        if !self.opt_out_reply.trim().is_empty() {
            return self.opt_out_reply.clone();
        }
        // "parar" is Portuguese too.
        let spanish = OPT_OUT_ES.contains(&word) && !lang.starts_with("pt");
        let lang = if spanish { "es" } else { lang };
        let again = if lang.starts_with("es") {
            "ALTA"
        } else {
            "START"
        };
        crate::language::text(strings, lang, crate::language::Text::OptOut)
            .replace("{keyword}", again)
    }

    /// The confirmation of an opt-in (see [`Outreach::opt_out_confirmation`]).
    pub fn opt_in_confirmation(
        &self,
        word: &str,
        strings: &crate::language::Strings,
        lang: &str,
    ) -> String {
        if !self.opt_in_reply.trim().is_empty() {
            return self.opt_in_reply.clone();
        }
        let lang = if word == "alta" || word == "reanudar" {
            "es"
        } else {
            lang
        };
        crate::language::text(strings, lang, crate::language::Text::OptIn)
    }
}

/// A message reduced to the form keywords are matched in: trimmed, lower-case, without a
/// leading `/` (Telegram commands) or trailing punctuation.
pub fn keyword_form(text: &str) -> String {
    text.trim()
        .trim_start_matches('/')
        .trim_end_matches(['.', '!', '?', '¡', '¿'])
        .trim()
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_whole_messages_loosely() {
        assert_eq!(keyword_form("  STOP! "), "stop");
        assert_eq!(keyword_form("/stop"), "stop");
        assert_eq!(keyword_form("Baja."), "baja");
        let o = Outreach::default();
        assert!(o.opt_out_keywords.contains(&keyword_form("Unsubscribe")));
        assert!(
            !o.opt_out_keywords
                .contains(&keyword_form("stop sending me tips please"))
        );
        let none = crate::language::Strings::new();
        assert!(
            o.opt_out_confirmation("baja", &none, "en")
                .starts_with("Listo")
        );
        assert_eq!(
            o.opt_out_confirmation("stop", &none, ""),
            "Done: you will get no more check-ins. Reply START to get them again."
        );
        assert!(
            o.opt_out_confirmation("stop", &none, "pt-BR")
                .starts_with("Pronto")
        );
        assert!(
            o.opt_in_confirmation("start", &none, "pt")
                .starts_with("Bem-vindo")
        );
        assert!(o.validate().is_ok());
        let bad = Outreach {
            time_zone: "Nowhere/Land".into(),
            ..Outreach::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .starts_with("outreach.time_zone")
        );
    }
}
