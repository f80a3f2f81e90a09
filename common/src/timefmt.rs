//! Timestamps: stored and exported as RFC 3339 UTC with exactly three fractional
//! digits, so that string order is time order (DynamoDB sort keys compare strings).

use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `2024-01-15T10:30:00.000Z`: fixed width, sorts lexically in time order.
pub fn format(ts: &DateTime<Utc>) -> String {
    let mut buf = MillisBuf::default();
    match write_millis(ts, &mut buf) {
        Some(s) => s.to_owned(),
        None => ts.to_rfc3339_opts(SecondsFormat::Millis, true),
    }
}

/// Room for one [`write_millis`] text.
pub type MillisBuf = [u8; 24];

/// [`format()`] without allocating, for the encoders (a timestamp per cell was a few
/// per cent of every export in perf). `None` for what the fast path does not cover
/// (years outside 0000-9999, a leap second): callers then use [`format()`], which falls
/// back to chrono. The unit tests compare both on every kind of instant.
pub fn write_millis<'a>(ts: &DateTime<Utc>, buf: &'a mut MillisBuf) -> Option<&'a str> {
    let (year, month, day) = (ts.year(), ts.month(), ts.day());
    let secs = ts.num_seconds_from_midnight();
    let nanos = ts.nanosecond();
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return None;
    }
    let (h, m, s, ms) = (secs / 3600, secs / 60 % 60, secs % 60, nanos / 1_000_000);
    let digits = |out: &mut [u8], mut v: u32| {
        for b in out.iter_mut().rev() {
            *b = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    *buf = *b"0000-00-00T00:00:00.000Z";
    digits(&mut buf[0..4], year as u32);
    digits(&mut buf[5..7], month);
    digits(&mut buf[8..10], day);
    digits(&mut buf[11..13], h);
    digits(&mut buf[14..16], m);
    digits(&mut buf[17..19], s);
    digits(&mut buf[20..23], ms);
    std::str::from_utf8(buf).ok()
}

/// A time cut to the millisecond: the precision every stored and exported time has.
pub fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// The same instant in a zone, with its offset: `2024-01-15T11:30:00.000+01:00`. In
/// UTC itself it is [`format()`] (`...Z`).
pub fn format_in(ts: &DateTime<Utc>, zone: TimeZone) -> String {
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
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(ts))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        d.deserialize_str(TimeVisitor)
    }

    /// Reads a timestamp from the text as it is handed over (borrowed when it can be)
    /// rather than from a `String` made for it: two allocations per chat row.
    struct TimeVisitor;

    impl serde::de::Visitor<'_> for TimeVisitor {
        type Value = DateTime<Utc>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an RFC 3339 timestamp")
        }

        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<DateTime<Utc>, E> {
            parse_rfc3339(s).ok_or_else(|| E::custom(format_args!("invalid RFC 3339 timestamp {s:?}")))
        }
    }
}

/// serde adapter for `Option<DateTime<Utc>>` fields in the fixed-width format.
pub mod serde_ts_opt {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match ts {
            Some(ts) => s.serialize_str(&format(ts)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        d.deserialize_option(MaybeTime)
    }

    struct MaybeTime;

    impl<'de> serde::de::Visitor<'de> for MaybeTime {
        type Value = Option<DateTime<Utc>>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an RFC 3339 timestamp or null")
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            super::serde_ts::deserialize(d).map(Some)
        }
    }
}

/// An IANA time zone (`Europe/Berlin`); `UTC` by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeZone(pub Tz);

impl TimeZone {
    pub const UTC: TimeZone = TimeZone(Tz::UTC);

    /// Longest zone name accepted (the longest IANA name has 32 characters).
    pub const MAX_NAME_CHARS: usize = 64;

    /// Every name [`TimeZone::parse`] knows, as the IANA database (chrono-tz) spells
    /// them: openapi.yaml's `TimeZone` enum (tests/tests/openapi.rs keeps them equal).
    pub fn names() -> impl Iterator<Item = &'static str> {
        chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())
    }

    /// An IANA name, matched ignoring ASCII case (`europe/berlin` is `Europe/Berlin`).
    pub fn parse(name: &str) -> Result<Self, String> {
        let found = (name.len() <= Self::MAX_NAME_CHARS)
            .then(|| {
                Tz::from_str(name).ok().or_else(|| {
                    chrono_tz::TZ_VARIANTS
                        .iter()
                        .copied()
                        .find(|tz| tz.name().eq_ignore_ascii_case(name))
                })
            })
            .flatten();
        found.map(TimeZone).ok_or_else(|| {
            format!(
                "must be an IANA time zone such as UTC or Europe/Berlin; got '{}'",
                crate::values::text::sanitize(name)
            )
        })
    }

    /// UTC itself (times are written with `Z`); other zones write their offset.
    pub fn is_utc(self) -> bool {
        matches!(
            self.0.name(),
            "UTC" | "Etc/UTC" | "Etc/UCT" | "UCT" | "Etc/Universal" | "Universal" | "Zulu" | "Etc/Zulu"
        )
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

impl Default for TimeZone {
    fn default() -> Self {
        Self::UTC
    }
}

impl Serialize for TimeZone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        TimeZone::parse(&name).map_err(serde::de::Error::custom)
    }
}

impl FromStr for TimeZone {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Times {
        #[serde(with = "serde_ts")]
        at: DateTime<Utc>,
        #[serde(with = "serde_ts_opt", default)]
        until: Option<DateTime<Utc>>,
    }

    #[test]
    fn timestamps_read_from_borrowed_escaped_null_and_missing_text() {
        let t = parse_rfc3339("2024-01-15T10:30:00.123Z").unwrap();
        let read = |text: &str| serde_json::from_str::<Times>(text);
        let both = Times { at: t, until: Some(t) };
        assert_eq!(
            read(r#"{"at":"2024-01-15T10:30:00.123Z","until":"2024-01-15T11:30:00.123+01:00"}"#).unwrap(),
            both
        );
        // An escape makes serde_json hand over a copy instead of a borrow.
        assert_eq!(
            read(r#"{"at":"2024-01-15T10:30:00.123\u005a","until":"2024-01-15T10:30:00.123Z"}"#).unwrap(),
            both
        );
        let none = Times { at: t, until: None };
        assert_eq!(read(r#"{"at":"2024-01-15T10:30:00.123Z","until":null}"#).unwrap(), none);
        assert_eq!(read(r#"{"at":"2024-01-15T10:30:00.123Z"}"#).unwrap(), none);
        let from_value = serde_json::from_value::<Times>(serde_json::json!({"at": "2024-01-15T10:30:00.123Z"}));
        assert_eq!(from_value.unwrap(), none);
        for bad in [
            r#"{"at":"yesterday"}"#,
            r#"{"at":17}"#,
            r#"{"at":"2024-01-15T10:30:00.123Z","until":"soon"}"#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
        let dynamo: serde_dynamo::Item =
            serde_json::from_str(r#"{"at":{"S":"2024-01-15T10:30:00.123Z"},"until":{"NULL":true}}"#).unwrap();
        assert_eq!(serde_dynamo::from_item::<_, Times>(dynamo).unwrap(), none);
    }

    #[test]
    fn the_fast_path_writes_what_chrono_writes() {
        let chrono_text = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut buf = MillisBuf::default();
        // Every year's boundaries, leap days, sub-millisecond parts (cut, not rounded).
        let mut instants: Vec<DateTime<Utc>> = [
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
            "2024-02-29T23:59:59.9999Z",
            "1970-01-01T00:00:00.0005Z",
            "2000-03-01T12:34:56.789Z",
        ]
        .iter()
        .map(|s| parse_rfc3339(s).unwrap())
        .collect();
        let mut x: i64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let millis = x.rem_euclid(253_402_300_800_000 + 62_167_219_200_000) - 62_167_219_200_000;
            let nanos = (x >> 3).rem_euclid(1_000_000);
            instants.push(DateTime::from_timestamp_millis(millis).unwrap() + chrono::Duration::nanoseconds(nanos));
        }
        for t in &instants {
            assert_eq!(
                write_millis(t, &mut buf).map(str::to_owned),
                Some(chrono_text(t)),
                "{t:?}"
            );
            assert_eq!(format(t), chrono_text(t));
        }
        // Outside the fast path, format still answers chrono's text.
        let far = parse_rfc3339("+10000-01-01T00:00:00Z").or_else(|| {
            chrono::NaiveDate::from_ymd_opt(10000, 1, 1).map(|d| d.and_hms_opt(0, 0, 0).unwrap().and_utc())
        });
        if let Some(far) = far {
            assert!(write_millis(&far, &mut buf).is_none());
            assert_eq!(format(&far), chrono_text(&far));
        }
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_milli_opt(23, 59, 59, 1_500)
            .unwrap()
            .and_utc();
        assert!(write_millis(&leap, &mut buf).is_none());
        assert_eq!(format(&leap), chrono_text(&leap));
    }

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
