//! When a schedule runs: a five-field cron expression or a rate, in an IANA time
//! zone. Pure functions of the time they are given (no clock), so the scheduler, the
//! preview and the tests compute the same instants.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone as _, Timelike, Utc};
use chrono_tz::Tz;
use croner::{
    Cron,
    parser::{CronParser, Seconds, Year},
};

use crate::spec::TimeZone;

/// The calendar unit a `previous_period` window is cut to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Minute,
    Hour,
    Day,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateUnit {
    Minutes,
    Hours,
    Days,
}

/// A cron expression or a rate.
#[derive(Clone, Debug)]
pub enum Cadence {
    Cron { text: String, cron: Box<Cron> },
    Rate { count: u32, unit: RateUnit },
}

/// Longest cron or rate text accepted.
const MAX_TEXT: usize = 120;

impl Cadence {
    /// `minute hour day-of-month month day-of-week` (croner's extensions `L`, `#`, `W`
    /// and names allowed; no seconds, no year).
    pub fn cron(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() || text.len() > MAX_TEXT {
            return Err("must be a five-field cron expression such as \"0 2 * * *\"".into());
        }
        let fields = text.split_whitespace().count();
        if !text.starts_with('@') && fields != 5 {
            return Err(format!(
                "must have five fields (minute hour day-of-month month day-of-week); got {fields}"
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(text)
            .map_err(|e| {
                format!(
                    "is not a valid cron expression: {}",
                    crate::values::text::sanitize(&e.to_string())
                )
            })?;
        // A pattern that never fires (30 February) is refused now, not at every tick.
        if cron
            .find_next_occurrence(&Utc::now().with_timezone(&Tz::UTC), false)
            .is_err()
        {
            return Err("never fires".into());
        }
        Ok(Cadence::Cron {
            text: text.to_string(),
            cron: Box::new(cron),
        })
    }

    /// `N minute(s)|hour(s)|day(s)`, also written `rate(N unit)` (EventBridge's form).
    pub fn rate(text: &str) -> Result<Self, String> {
        let bad = || "must be \"N minutes\", \"N hours\" or \"N days\" (also rate(1 hour))".to_string();
        let t = text.trim();
        if t.len() > MAX_TEXT {
            return Err(bad());
        }
        let t = t
            .strip_prefix("rate(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or(t)
            .trim();
        let mut parts = t.split_whitespace();
        let (Some(count), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let count: u32 = count.parse().map_err(|_| bad())?;
        let (unit, max) = match unit.to_ascii_lowercase().as_str() {
            "minute" | "minutes" => (RateUnit::Minutes, 7 * 24 * 60),
            "hour" | "hours" => (RateUnit::Hours, 7 * 24),
            "day" | "days" => (RateUnit::Days, 366),
            _ => return Err(bad()),
        };
        if count == 0 || count > max {
            return Err(format!("must count between 1 and {max} {}", unit.name()));
        }
        Ok(Cadence::Rate { count, unit })
    }

    /// As the API shows it: the cron text, or `N unit(s)`.
    pub fn text(&self) -> String {
        match self {
            Cadence::Cron { text, .. } => text.clone(),
            Cadence::Rate { count, unit } => format!("{count} {}", unit.name_for(*count)),
        }
    }

    /// The unit `previous_period` windows are cut to: a day when the schedule fires at
    /// most once a day, an hour when at most once an hour, else the minute.
    pub fn unit(&self) -> Unit {
        match self {
            Cadence::Rate {
                unit: RateUnit::Days, ..
            } => Unit::Day,
            Cadence::Rate {
                unit: RateUnit::Hours, ..
            } => Unit::Hour,
            Cadence::Rate {
                count,
                unit: RateUnit::Minutes,
            } if count % 60 == 0 => Unit::Hour,
            Cadence::Rate { .. } => Unit::Minute,
            Cadence::Cron { text, .. } => {
                let lower = text.to_ascii_lowercase();
                match lower.as_str() {
                    "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight" => return Unit::Day,
                    "@hourly" => return Unit::Hour,
                    _ => {}
                }
                let single =
                    |f: Option<&str>| f.is_some_and(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()));
                let mut fields = lower.split_whitespace();
                let (minute, hour) = (fields.next(), fields.next());
                match (single(minute), single(hour)) {
                    (true, true) => Unit::Day,
                    (true, false) => Unit::Hour,
                    _ => Unit::Minute,
                }
            }
        }
    }

    /// The first firing strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>, zone: TimeZone) -> Option<DateTime<Utc>> {
        match self {
            // Firings are whole minutes: search from the whole second at or before `t`
            // (croner keeps the start's fraction of a second otherwise).
            Cadence::Cron { cron, .. } => cron
                .find_next_occurrence(&whole_second(t, false).with_timezone(&zone.0), false)
                .ok()
                .map(|d| whole_minute(d.with_timezone(&Utc))),
            Cadence::Rate {
                count,
                unit: RateUnit::Days,
            } => {
                let mut day = epoch_day(t.with_timezone(&zone.0).date_naive());
                day -= day.rem_euclid(i64::from(*count));
                loop {
                    let start = day_start(day_from_epoch(day)?, zone);
                    if start > t {
                        return Some(start);
                    }
                    day += i64::from(*count);
                }
            }
            Cadence::Rate { .. } => {
                let p = self.fixed_secs()?;
                let s = t.timestamp().div_euclid(p) * p + p;
                DateTime::from_timestamp(s, 0)
            }
        }
    }

    /// The last firing strictly before `t`.
    pub fn previous_before(&self, t: DateTime<Utc>, zone: TimeZone) -> Option<DateTime<Utc>> {
        match self {
            Cadence::Cron { cron, .. } => cron
                .find_previous_occurrence(&whole_second(t, true).with_timezone(&zone.0), false)
                .ok()
                .map(|d| whole_minute(d.with_timezone(&Utc)))
                .filter(|d| *d < t),
            Cadence::Rate {
                count,
                unit: RateUnit::Days,
            } => {
                let mut day = epoch_day(t.with_timezone(&zone.0).date_naive()) + 1;
                day -= day.rem_euclid(i64::from(*count));
                loop {
                    let start = day_start(day_from_epoch(day)?, zone);
                    if start < t {
                        return Some(start);
                    }
                    day -= i64::from(*count);
                }
            }
            Cadence::Rate { .. } => {
                let p = self.fixed_secs()?;
                let ms = t.timestamp_millis();
                // The largest multiple of the rate strictly before t.
                let s = (ms - 1).div_euclid(p * 1000) * p;
                DateTime::from_timestamp(s, 0)
            }
        }
    }

    fn fixed_secs(&self) -> Option<i64> {
        match self {
            Cadence::Rate {
                count,
                unit: RateUnit::Minutes,
            } => Some(i64::from(*count) * 60),
            Cadence::Rate {
                count,
                unit: RateUnit::Hours,
            } => Some(i64::from(*count) * 3600),
            _ => None,
        }
    }

    /// A sentence for people: `at 02:00, every day` / `every 2 hours`.
    pub fn describe(&self, zone: TimeZone) -> String {
        let what = match self {
            Cadence::Cron { cron, .. } => cron.describe().trim_end_matches('.').to_string(),
            Cadence::Rate {
                count: 1,
                unit: RateUnit::Days,
            } => "every day at midnight".into(),
            Cadence::Rate {
                count,
                unit: RateUnit::Days,
            } => format!("every {count} days at midnight"),
            Cadence::Rate { count: 1, unit } => format!("every {}", unit.name_for(1)),
            Cadence::Rate { count, unit } => format!("every {count} {}", unit.name_for(*count)),
        };
        format!("{what} ({})", zone.name())
    }
}

impl RateUnit {
    fn name(self) -> &'static str {
        self.name_for(2)
    }

    fn name_for(self, count: u32) -> &'static str {
        match (self, count == 1) {
            (RateUnit::Minutes, true) => "minute",
            (RateUnit::Minutes, false) => "minutes",
            (RateUnit::Hours, true) => "hour",
            (RateUnit::Hours, false) => "hours",
            (RateUnit::Days, true) => "day",
            (RateUnit::Days, false) => "days",
        }
    }
}

/// `t` cut down to the start of its minute, hour or day in `zone` (a day starts at
/// its first instant: local midnight, or the end of a DST gap that swallowed it).
pub fn floor(t: DateTime<Utc>, unit: Unit, zone: TimeZone) -> DateTime<Utc> {
    let local = t.with_timezone(&zone.0);
    match unit {
        Unit::Minute => DateTime::from_timestamp(t.timestamp().div_euclid(60) * 60, 0).unwrap_or(t),
        Unit::Hour => {
            let naive = local.naive_local().date().and_time(NaiveTime::MIN) + Duration::hours(i64::from(local.hour()));
            match zone.0.from_local_datetime(&naive).earliest() {
                // Both instants of a repeated hour map to its first one; the result is
                // never after `t` because the offset only moves by whole hours here.
                Some(d) if d.with_timezone(&Utc) <= t => d.with_timezone(&Utc),
                _ => DateTime::from_timestamp(t.timestamp().div_euclid(3600) * 3600, 0).unwrap_or(t),
            }
        }
        Unit::Day => day_start(local.date_naive(), zone),
    }
}

/// The first instant of a local day.
pub fn day_start(day: NaiveDate, zone: TimeZone) -> DateTime<Utc> {
    crate::params::day_start(day, zone)
}

/// A firing is a whole minute. In a DST gap croner answers the last second before
/// the gap (01:59:59 for a 02:00 that does not exist); the firing is the first
/// instant after it (03:00 summer time), like AWS's schedulers.
fn whole_minute(d: DateTime<Utc>) -> DateTime<Utc> {
    let s = d.timestamp();
    DateTime::from_timestamp((s + 59).div_euclid(60) * 60, 0).unwrap_or(d)
}

/// `t` without its fraction of a second, rounded down (or up).
fn whole_second(t: DateTime<Utc>, up: bool) -> DateTime<Utc> {
    let secs = t.timestamp();
    let has_fraction = t.timestamp_subsec_nanos() > 0;
    DateTime::from_timestamp(if up && has_fraction { secs + 1 } else { secs }, 0).unwrap_or(t)
}

fn epoch_day(d: NaiveDate) -> i64 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")).num_days()
}

fn day_from_epoch(n: i64) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(Duration::days(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        crate::timefmt::parse_rfc3339(s).unwrap()
    }

    fn berlin() -> TimeZone {
        TimeZone::parse("Europe/Berlin").unwrap()
    }

    #[test]
    fn cron_fires_in_its_zone_across_dst() {
        let c = Cadence::cron("0 2 * * *").unwrap();
        assert_eq!(c.unit(), Unit::Day);
        // Berlin is UTC+1 in winter, UTC+2 in summer (from 2026-03-29).
        assert_eq!(
            c.next_after(t("2026-03-27T12:00:00Z"), berlin()),
            Some(t("2026-03-28T01:00:00Z"))
        );
        // 02:00 does not exist on 2026-03-29 in Berlin: croner runs it at 03:00 CEST.
        let gap = c.next_after(t("2026-03-28T12:00:00Z"), berlin()).unwrap();
        assert_eq!(gap, t("2026-03-29T01:00:00Z"));
        assert_eq!(
            c.next_after(t("2026-03-29T12:00:00Z"), berlin()),
            Some(t("2026-03-30T00:00:00Z"))
        );
        assert_eq!(c.previous_before(t("2026-03-30T00:00:00Z"), berlin()), Some(gap));
    }

    #[test]
    fn a_time_repeated_when_dst_ends_fires_once() {
        // 2026-10-25 in Berlin: 03:00 CEST goes back to 02:00 CET, so 02:30 happens twice.
        let c = Cadence::cron("30 2 * * *").unwrap();
        let overlap = c.next_after(t("2026-10-24T12:00:00Z"), berlin()).unwrap();
        assert_eq!(overlap, t("2026-10-25T00:30:00Z"), "the first 02:30 (CEST)");
        assert_eq!(
            c.next_after(overlap, berlin()),
            Some(t("2026-10-26T01:30:00Z")),
            "and only once"
        );
    }

    #[test]
    fn bad_cron_and_rate_are_refused_with_a_reason() {
        for bad in [
            "",
            "0 2 * *",
            "0 2 * * * *",
            "61 * * * *",
            "0 25 * * *",
            "x y z a b",
            "0 0 30 2 *",
        ] {
            assert!(Cadence::cron(bad).is_err(), "{bad}");
        }
        for bad in [
            "",
            "0 hours",
            "1 fortnight",
            "1.5 hours",
            "rate(1 hour",
            "-1 day",
            "367 days",
            "1 2 3",
        ] {
            assert!(Cadence::rate(bad).is_err(), "{bad}");
        }
        assert_eq!(Cadence::rate("rate(1 hour)").unwrap().text(), "1 hour");
        assert_eq!(Cadence::rate("15 Minutes").unwrap().text(), "15 minutes");
    }

    #[test]
    fn fractions_of_a_second_never_reach_a_firing() {
        let c = Cadence::cron("0 2 * * *").unwrap();
        let z = TimeZone::UTC;
        assert_eq!(
            c.next_after(t("2026-01-01T01:59:59.999Z"), z),
            Some(t("2026-01-01T02:00:00Z"))
        );
        assert_eq!(
            c.next_after(t("2026-01-01T02:00:00.001Z"), z),
            Some(t("2026-01-02T02:00:00Z"))
        );
        assert_eq!(
            c.previous_before(t("2026-01-02T02:00:00.001Z"), z),
            Some(t("2026-01-02T02:00:00Z"))
        );
        assert_eq!(
            c.previous_before(t("2026-01-02T02:00:00Z"), z),
            Some(t("2026-01-01T02:00:00Z"))
        );
        assert_eq!(c.describe(z), "At 02:00 (UTC)");
    }

    #[test]
    fn any_text_is_a_cadence_or_a_reason_never_a_panic() {
        let alphabet: Vec<char> = "0123456789*/,-LW#?+ @abcdefghijklmnopqrstuvwxyzJANFEBMONSUN"
            .chars()
            .collect();
        let mut rng = crate::synth::Rng::new(11);
        let zone = TimeZone::parse("America/Santiago").unwrap();
        for i in 0..3000 {
            let len = rng.below(30) as usize;
            let text: String = if i % 3 == 0 {
                // Five fields of plausible tokens.
                (0..5)
                    .map(|_| {
                        let n = 1 + rng.below(4) as usize;
                        (0..n)
                            .map(|_| *rng.pick(&alphabet))
                            .collect::<String>()
                            .replace(' ', "")
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                (0..len).map(|_| *rng.pick(&alphabet)).collect()
            };
            for c in [Cadence::cron(&text), Cadence::rate(&text)].into_iter().flatten() {
                let from = t("2026-12-01T00:00:00Z");
                if let Some(next) = c.next_after(from, zone) {
                    assert!(next > from, "{text}: {next}");
                    assert!(c.previous_before(next, zone).is_none_or(|p| p < next), "{text}");
                }
                let _ = (c.describe(zone), c.unit(), c.text());
            }
        }
    }

    #[test]
    fn rates_are_aligned() {
        let r = Cadence::rate("15 minutes").unwrap();
        let z = TimeZone::UTC;
        assert_eq!(
            r.next_after(t("2026-01-01T10:07:00Z"), z),
            Some(t("2026-01-01T10:15:00Z"))
        );
        assert_eq!(
            r.next_after(t("2026-01-01T10:15:00Z"), z),
            Some(t("2026-01-01T10:30:00Z"))
        );
        assert_eq!(
            r.previous_before(t("2026-01-01T10:15:00Z"), z),
            Some(t("2026-01-01T10:00:00Z"))
        );
        assert_eq!(
            r.previous_before(t("2026-01-01T10:15:00.001Z"), z),
            Some(t("2026-01-01T10:15:00Z"))
        );
        let d = Cadence::rate("1 day").unwrap();
        assert_eq!(
            d.next_after(t("2026-03-28T12:00:00Z"), berlin()),
            Some(t("2026-03-28T23:00:00Z"))
        );
        assert_eq!(
            d.previous_before(t("2026-03-28T23:00:00Z"), berlin()),
            Some(t("2026-03-27T23:00:00Z"))
        );
        assert_eq!(d.unit(), Unit::Day);
    }

    #[test]
    fn units_follow_the_cron_fields() {
        assert_eq!(Cadence::cron("5 * * * *").unwrap().unit(), Unit::Hour);
        assert_eq!(Cadence::cron("*/15 * * * *").unwrap().unit(), Unit::Minute);
        assert_eq!(Cadence::cron("30 14 * * MON").unwrap().unit(), Unit::Day);
        assert_eq!(Cadence::cron("0 0,12 * * *").unwrap().unit(), Unit::Hour);
    }

    #[test]
    fn floors_are_local() {
        let india = TimeZone::parse("Asia/Kolkata").unwrap();
        assert_eq!(
            floor(t("2026-01-01T10:47:00Z"), Unit::Hour, india),
            t("2026-01-01T10:30:00Z")
        );
        assert_eq!(
            floor(t("2026-03-29T10:00:00Z"), Unit::Day, berlin()),
            t("2026-03-28T23:00:00Z")
        );
        assert_eq!(
            floor(t("2026-03-30T10:00:00Z"), Unit::Day, berlin()),
            t("2026-03-29T22:00:00Z")
        );
    }
}
