//! Timestamps: stored and exported as RFC 3339 UTC with exactly three fractional
//! digits, so that string order is time order (DynamoDB sort keys compare strings).

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};

/// `2024-01-15T10:30:00.000Z`: fixed width, sorts lexically in time order.
pub fn format(ts: &DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A time cut to the millisecond: the precision every stored and exported time has.
pub fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// The same instant in a zone, with its offset: `2024-01-15T11:30:00.000+01:00`. In
/// UTC itself it is [`format`] (`...Z`).
pub fn format_in(ts: &DateTime<Utc>, zone: crate::spec::TimeZone) -> String {
    if zone.is_utc() {
        format(ts)
    } else {
        ts.with_timezone(&zone.0).format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
    }
}

/// Parses RFC 3339 with any offset and any precision, normalised to UTC.
pub fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// Whether a time has a four-digit UTC year (0000-9999), so that its fixed-width
/// form sorts as time. Loaders and request parameters refuse anything else.
pub fn in_range(t: &DateTime<Utc>) -> bool {
    (0..=9999).contains(&t.year())
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    if s.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// Which end of a range a date-only value stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// `2024-01-31` means `2024-01-31T00:00:00.000Z`.
    Start,
    /// `2024-01-31` means the whole day: up to `2024-01-31T23:59:59.999Z`.
    End,
}

/// Parses an ISO 8601 range bound: RFC 3339 date-time (exact) or `YYYY-MM-DD`
/// (start or end of that day, UTC).
pub fn parse_bound(s: &str, bound: Bound) -> Option<DateTime<Utc>> {
    if let Some(t) = parse_rfc3339(s) {
        return Some(t);
    }
    let day = parse_date(s)?;
    let t = match bound {
        Bound::Start => day.and_hms_milli_opt(0, 0, 0, 0)?,
        Bound::End => day.and_hms_milli_opt(23, 59, 59, 999)?,
    };
    Some(t.and_utc())
}

/// serde adapter for `DateTime<Utc>` fields in the fixed-width format.
pub mod serde_ts {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(ts))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse_rfc3339(&s).ok_or_else(|| D::Error::custom(format_args!("invalid RFC 3339 timestamp {s:?}")))
    }
}

/// serde adapter for `Option<DateTime<Utc>>` fields in the fixed-width format.
pub mod serde_ts_opt {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(ts: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match ts {
            Some(ts) => s.serialize_str(&format(ts)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => parse_rfc3339(&s)
                .map(Some)
                .ok_or_else(|| D::Error::custom(format_args!("invalid RFC 3339 timestamp {s:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_sorts_in_time_order() {
        let a = parse_rfc3339("2024-01-15T10:30:00Z").unwrap();
        let b = parse_rfc3339("2024-01-15T10:30:00.5+00:00").unwrap();
        assert!(format(&a) < format(&b));
        assert_eq!(format(&a), "2024-01-15T10:30:00.000Z");
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        let t = parse_rfc3339("2024-01-15T12:30:00+02:00").unwrap();
        assert_eq!(format(&t), "2024-01-15T10:30:00.000Z");
    }

    #[test]
    fn date_only_bounds_cover_whole_days() {
        assert_eq!(
            format(&parse_bound("2024-01-31", Bound::Start).unwrap()),
            "2024-01-31T00:00:00.000Z"
        );
        assert_eq!(
            format(&parse_bound("2024-01-31", Bound::End).unwrap()),
            "2024-01-31T23:59:59.999Z"
        );
        assert_eq!(
            format(&parse_bound("2024-01-31T10:00:00+01:00", Bound::End).unwrap()),
            "2024-01-31T09:00:00.000Z"
        );
        assert!(parse_bound("2024-01-32", Bound::Start).is_none());
        assert!(parse_bound("31/01/2024", Bound::Start).is_none());
    }

    #[test]
    fn dates_must_be_exact() {
        assert!(parse_date("2024-02-30").is_none());
        assert!(parse_date("2024-2-3").is_none());
        assert!(parse_date("2024-02-03").is_some());
    }
}
