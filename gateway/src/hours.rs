//! Business hours: when the team answers. Outside them, a contact who asks for a person is told
//! that the team is away and when it is back (the tenant's `away_reply`, else the built-in text
//! in their language); the coach itself answers at any hour.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Days, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

/// The day keys of [`BusinessHours::open`], Monday first.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// When the team answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BusinessHours {
    /// The time zone the hours are in (IANA name, e.g. `Europe/Madrid`).
    pub time_zone: String,
    /// Open hours per day (`mon` ... `sun`) as `HH:MM-HH:MM`; a day not listed is closed.
    pub open: BTreeMap<String, String>,
    /// What a contact who asks for a person outside the hours is told; `{back}` becomes when
    /// the team is back ("Monday 09:00"). Empty: the built-in text in their language.
    pub away_reply: String,
}

impl BusinessHours {
    /// What is wrong with them, as a 422.
    pub fn validate(&self) -> Result<(), ApiError> {
        let bad = |msg: String| Err(ApiError::Unprocessable(format!("business_hours.{msg}")));
        if self.time_zone.parse::<Tz>().is_err() {
            return bad(format!(
                "time_zone: {:?} is not an IANA time zone such as Europe/Madrid",
                self.time_zone
            ));
        }
        for (day, hours) in &self.open {
            if !DAYS.contains(&day.as_str()) {
                return bad(format!("open: {day:?} is not one of {}", DAYS.join(", ")));
            }
            if span(hours).is_none() {
                return bad(format!(
                    "open.{day}: {hours:?} is not HH:MM-HH:MM with the start before the end"
                ));
            }
        }
        if self.away_reply.chars().count() > 1000 {
            return bad("away_reply: at most 1000 characters".into());
        }
        Ok(())
    }

    fn hours_on(&self, day: Weekday) -> Option<(NaiveTime, NaiveTime)> {
        let key = DAYS[day.num_days_from_monday() as usize];
        self.open.get(key).and_then(|h| span(h))
    }

    /// `None` while the team is in; else when it is next in (`None` inside: never, no day is
    /// open), in the hours' time zone.
    pub fn away(&self, now: DateTime<Utc>) -> Option<Option<DateTime<Tz>>> {
        let tz: Tz = self.time_zone.parse().unwrap_or(Tz::UTC);
        let local = now.with_timezone(&tz);
        for offset in 0..8 {
            let Some(date) = local.date_naive().checked_add_days(Days::new(offset)) else {
                break;
            };
            let Some((start, end)) = self.hours_on(date.weekday()) else {
                continue;
            };
            if offset == 0 && local.time() >= start && local.time() < end {
                return None;
            }
            if let Some(opens) = local_instant(tz, date, start)
                && opens > local
            {
                return Some(Some(opens));
            }
        }
        Some(None)
    }
}

/// When a local time of day happens on `date`; when daylight saving skips it (a gap), the
/// first local time after the gap (the team opens as the clocks jump, not a week later).
fn local_instant(tz: Tz, date: chrono::NaiveDate, time: NaiveTime) -> Option<DateTime<Tz>> {
    let wanted = date.and_time(time);
    (0..=12).find_map(|quarter| {
        tz.from_local_datetime(&(wanted + chrono::Duration::minutes(15 * quarter)))
            .earliest()
    })
}

/// `HH:MM-HH:MM` with the start before the end.
fn span(hours: &str) -> Option<(NaiveTime, NaiveTime)> {
    let (a, b) = hours.split_once('-')?;
    let start = NaiveTime::parse_from_str(a.trim(), "%H:%M").ok()?;
    let end = NaiveTime::parse_from_str(b.trim(), "%H:%M").ok()?;
    (start < end).then_some((start, end))
}

/// When the team is back, as a contact reads it: "Monday 09:00" / "lunes 09:00" /
/// "segunda-feira 09:00".
pub fn back(lang: &str, at: DateTime<Tz>) -> String {
    const EN: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    const ES: [&str; 7] = [
        "lunes",
        "martes",
        "miércoles",
        "jueves",
        "viernes",
        "sábado",
        "domingo",
    ];
    const PT: [&str; 7] = [
        "segunda-feira",
        "terça-feira",
        "quarta-feira",
        "quinta-feira",
        "sexta-feira",
        "sábado",
        "domingo",
    ];
    let names = match crate::language::primary(lang).as_str() {
        "es" => ES,
        "pt" => PT,
        _ => EN,
    };
    let day = names[at.weekday().num_days_from_monday() as usize];
    format!("{day} {}", at.format("%H:%M"))
}

/// When the team is back if no day is open: "soon", in the contact's language.
pub fn soon(lang: &str) -> &'static str {
    match crate::language::primary(lang).as_str() {
        "es" => "pronto",
        "pt" => "em breve",
        _ => "soon",
    }
}

/// What a contact who asks for a person is told when `hours` say the team is away at `now`
/// (`None` while it is in): the tenant's `away_reply`, else `builtin`, with `{back}` filled in.
pub fn away_reply(
    hours: &BusinessHours,
    now: DateTime<Utc>,
    lang: &str,
    builtin: impl FnOnce() -> String,
) -> Option<String> {
    let back_at = hours.away(now)?;
    let when = back_at.map_or_else(|| soon(lang).to_owned(), |at| back(lang, at));
    let text = if hours.away_reply.trim().is_empty() {
        builtin()
    } else {
        hours.away_reply.clone()
    };
    Some(text.replace("{back}", &when))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekdays() -> BusinessHours {
        let open = DAYS[..5]
            .iter()
            .map(|d| (d.to_string(), "09:00-17:30".to_string()))
            .collect();
        BusinessHours {
            time_zone: "Europe/Madrid".into(),
            open,
            away_reply: String::new(),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_team_is_in_during_its_hours_and_back_at_the_next_opening() {
        let hours = weekdays();
        // Wednesday 2026-12-02, 10:00 in Madrid (09:00 UTC): in.
        assert_eq!(hours.away(at("2026-12-02T09:00:00Z")), None);
        // 17:30 local is closed; back Thursday 09:00.
        let back_at = hours.away(at("2026-12-02T16:30:00Z")).unwrap().unwrap();
        assert_eq!(back("en", back_at), "Thursday 09:00");
        // Friday night: back Monday; in Spanish and Portuguese.
        let monday = hours.away(at("2026-12-04T20:00:00Z")).unwrap().unwrap();
        assert_eq!(back("es", monday), "lunes 09:00");
        assert_eq!(back("pt-BR", monday), "segunda-feira 09:00");
        // Early on a weekday: back the same day.
        let today = hours.away(at("2026-12-02T06:00:00Z")).unwrap().unwrap();
        assert_eq!(back("en", today), "Wednesday 09:00");
        // No open day: away, never back.
        let closed = BusinessHours {
            open: BTreeMap::new(),
            ..weekdays()
        };
        assert_eq!(closed.away(at("2026-12-02T09:00:00Z")), Some(None));
        let told = away_reply(&closed, at("2026-12-02T09:00:00Z"), "es", || {
            "Vuelve: {back}.".into()
        });
        assert_eq!(told.as_deref(), Some("Vuelve: pronto."));
        let own = BusinessHours {
            away_reply: "Back {back}!".into(),
            ..weekdays()
        };
        assert_eq!(
            away_reply(&own, at("2026-12-04T20:00:00Z"), "en", String::new).as_deref(),
            Some("Back Monday 09:00!")
        );
        assert_eq!(
            away_reply(&own, at("2026-12-02T09:00:00Z"), "en", String::new),
            None
        );
    }

    #[test]
    fn an_opening_in_a_daylight_saving_gap_is_when_the_clocks_jump() {
        // Madrid skips 02:00-03:00 on Sunday 2027-03-28; a team opening at 02:30 is back then
        // at 03:00, not a week later.
        let mut open = BTreeMap::new();
        open.insert("sun".to_string(), "02:30-12:00".to_string());
        let hours = BusinessHours { open, ..weekdays() };
        let back_at = hours.away(at("2027-03-27T12:00:00Z")).unwrap().unwrap();
        assert_eq!(back_at.to_rfc3339(), "2027-03-28T03:00:00+02:00");
        assert_eq!(back("en", back_at), "Sunday 03:00");
    }

    #[test]
    fn bad_hours_are_refused_with_the_field_named() {
        assert!(weekdays().validate().is_ok());
        let mut h = weekdays();
        h.time_zone = "Mars/Olympus".into();
        assert!(format!("{:?}", h.validate()).contains("time_zone"));
        let mut h = weekdays();
        h.open.insert("someday".into(), "09:00-17:00".into());
        assert!(format!("{:?}", h.validate()).contains("someday"));
        let mut h = weekdays();
        h.open.insert("sat".into(), "18:00-09:00".into());
        assert!(format!("{:?}", h.validate()).contains("open.sat"));
        let mut h = weekdays();
        h.away_reply = "x".repeat(1001);
        assert!(format!("{:?}", h.validate()).contains("away_reply"));
    }
}
