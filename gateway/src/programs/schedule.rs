//! Time: when a step is due in the contact's time zone (daylight-saving changes included), the
//! tenant's quiet hours, and the program day.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::definition::When;

/// Hours in which no proactive message is sent, in the contact's local time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// Start, `HH:MM` (e.g. `21:00`).
    pub start: String,
    /// End, `HH:MM` (e.g. `08:00`); equal to `start` for none.
    pub end: String,
}

impl Default for QuietHours {
    fn default() -> Self {
        Self {
            start: "21:00".into(),
            end: "08:00".into(),
        }
    }
}

/// Parsed quiet hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quiet {
    start: NaiveTime,
    end: NaiveTime,
}

impl QuietHours {
    /// The parsed hours, or what is wrong.
    pub fn parse(&self) -> Result<Quiet, String> {
        let time = |field: &str, v: &str| {
            NaiveTime::parse_from_str(v, "%H:%M")
                .map_err(|_| format!("quiet_hours.{field}: {v:?} is not a time of day as HH:MM"))
        };
        Ok(Quiet {
            start: time("start", &self.start)?,
            end: time("end", &self.end)?,
        })
    }
}

impl Quiet {
    /// No quiet hours.
    pub const NONE: Self = Self {
        start: NaiveTime::MIN,
        end: NaiveTime::MIN,
    };

    /// Whether a local time of day is quiet.
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start == self.end {
            false
        } else if self.start < self.end {
            t >= self.start && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// The first instant at or after `t` outside quiet hours in `tz`.
    pub fn after(&self, tz: Tz, t: DateTime<Utc>) -> DateTime<Utc> {
        let local = t.with_timezone(&tz);
        if !self.contains(local.time()) {
            return t;
        }
        let date = if local.time() < self.end {
            local.date_naive()
        } else {
            local.date_naive() + Days::new(1)
        };
        local_instant(tz, date, self.end)
    }
}

/// A time-zone name as configured (`Europe/Madrid`), or what is wrong with it.
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!("{name:?} is not an IANA time zone such as Europe/Madrid or America/New_York")
    })
}

/// A local date and time in `tz` as an instant. A time that a daylight-saving change skips
/// becomes the first valid minute after the gap; a time it repeats is the earlier instant.
pub fn local_instant(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let mut local = date.and_time(time);
    // Gaps last at most a few hours; step through them a quarter hour at a time.
    for _ in 0..=16 {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(earlier, _) => return earlier.with_timezone(&Utc),
            LocalResult::None => local += chrono::Duration::minutes(15),
        }
    }
    Utc.from_utc_datetime(&date.and_time(time))
}

/// The program day of `at` (day 1 is the local date of enrollment).
pub fn program_day(tz: Tz, enrolled_at: DateTime<Utc>, at: DateTime<Utc>) -> u32 {
    let start = enrolled_at.with_timezone(&tz).date_naive();
    let today = at.with_timezone(&tz).date_naive();
    let days = today.signed_duration_since(start).num_days();
    u32::try_from(days.max(0) + 1).unwrap_or(u32::MAX)
}

/// When a step with this timing is due: `after` the previous step's run, or on its program day
/// at its local time. A day already past stays in the past unless `roll_forward`, which moves
/// it to the next such time after `previous` (a branch back to an earlier day's step, or a
/// program that delays overdue steps instead of skipping them: no two steps at once).
pub fn due_at(
    when: When,
    tz: Tz,
    enrolled_at: DateTime<Utc>,
    previous: DateTime<Utc>,
    roll_forward: bool,
) -> DateTime<Utc> {
    match when {
        When::After(minutes) => previous + chrono::Duration::minutes(i64::from(minutes)),
        When::DayAt(day, time) => {
            let start = enrolled_at.with_timezone(&tz).date_naive();
            let date = start + Days::new(u64::from(day.saturating_sub(1)));
            let planned = local_instant(tz, date, time);
            if !roll_forward || planned > previous {
                return planned;
            }
            let mut date = previous.with_timezone(&tz).date_naive();
            loop {
                let t = local_instant(tz, date, time);
                if t > previous {
                    return t;
                }
                date = date + Days::new(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn day_and_time_follow_the_local_clock_across_daylight_saving() {
        let madrid = parse_tz("Europe/Madrid").unwrap();
        // Enrolled Friday 2026-03-27 10:00 local (UTC+1); clocks go forward on Sunday the 29th.
        let enrolled = utc("2026-03-27T09:00:00Z");
        let at = NaiveTime::from_hms_opt(8, 30, 0).unwrap();
        // Day 2 (Saturday) at 08:30 is still UTC+1, day 4 (Monday) is UTC+2.
        assert_eq!(
            due_at(When::DayAt(2, at), madrid, enrolled, enrolled, false),
            utc("2026-03-28T07:30:00Z")
        );
        assert_eq!(
            due_at(When::DayAt(4, at), madrid, enrolled, enrolled, false),
            utc("2026-03-30T06:30:00Z")
        );
        // 02:30 does not exist on the 29th: the first minute after the gap.
        let gap = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        assert_eq!(
            due_at(When::DayAt(3, gap), madrid, enrolled, enrolled, false),
            utc("2026-03-29T01:00:00Z")
        );
        // A day already past stays there (it is overdue), or rolls to the next such time.
        let past = due_at(
            When::DayAt(2, at),
            madrid,
            enrolled,
            utc("2026-03-31T12:00:00Z"),
            false,
        );
        assert_eq!(past, utc("2026-03-28T07:30:00Z"));
        let later = utc("2026-03-31T12:00:00Z");
        assert_eq!(
            due_at(When::DayAt(2, at), madrid, enrolled, later, true),
            utc("2026-04-01T06:30:00Z")
        );
        assert_eq!(
            program_day(madrid, enrolled, utc("2026-03-29T22:30:00Z")),
            4
        );
        assert_eq!(
            due_at(When::After(90), madrid, enrolled, later, false),
            utc("2026-03-31T13:30:00Z")
        );
    }

    #[test]
    fn quiet_hours_wrap_midnight_and_end_in_local_time() {
        let quiet = QuietHours::default().parse().unwrap();
        let ny = parse_tz("America/New_York").unwrap();
        // 23:00 in New York (UTC-5 in January) is quiet until 08:00 the next morning.
        assert_eq!(
            quiet.after(ny, utc("2026-01-15T04:00:00Z")),
            utc("2026-01-15T13:00:00Z")
        );
        // 06:00 local: until 08:00 the same day.
        assert_eq!(
            quiet.after(ny, utc("2026-01-15T11:00:00Z")),
            utc("2026-01-15T13:00:00Z")
        );
        // Midday is not quiet.
        assert_eq!(
            quiet.after(ny, utc("2026-01-15T17:00:00Z")),
            utc("2026-01-15T17:00:00Z")
        );
        let none = QuietHours {
            start: "00:00".into(),
            end: "00:00".into(),
        }
        .parse()
        .unwrap();
        assert_eq!(
            none.after(ny, utc("2026-01-15T04:00:00Z")),
            utc("2026-01-15T04:00:00Z")
        );
        assert!(
            QuietHours {
                start: "25:00".into(),
                end: "08:00".into()
            }
            .parse()
            .is_err()
        );
        assert!(parse_tz("Mars/Olympus").is_err());
    }
}
