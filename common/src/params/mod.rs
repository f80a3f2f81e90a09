//! Request parameters as typed, bounded values ("parse, don't validate").
//!
//! Each export kind has one parameter type (`deny_unknown_fields`) built from the
//! values below. The same type decodes a query string ([`crate::http::query`]) and a
//! JSON body ([`crate::http::body`]); a value that does not fit its type is a 400
//! naming the parameter. Bounds are documented in docs/api.md ("Requests: how every
//! route reads its parameters").

pub mod chats;
pub mod conversations;
pub mod leads;
pub mod sessions;

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{self, Visitor},
};

pub use crate::values::{
    enums::TextEnum,
    id::{Id, MAX_ID_CHARS, TextVisitor},
};
use crate::{
    error::Error,
    kinds::DateRange,
    spec::{Compression, FileFamily, FileOptions, TimeZone},
    timefmt,
    values::text::sanitize,
};

/// Most ids in one `companyId` list.
pub const MAX_IDS: usize = 100;
/// Longest `search` text.
pub const MAX_SEARCH_CHARS: usize = 200;
/// Longest date or date-time.
pub const MAX_DATE_CHARS: usize = 40;

/// `id1,id2,...`: at most [`MAX_IDS`] ids, repeats dropped, order kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdList(Vec<Id>);

impl IdList {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut ids: Vec<Id> = Vec::new();
        for (n, part) in s.split(',').map(str::trim).enumerate() {
            if part.is_empty() {
                return Err("must be a comma-separated list of ids without empty entries".into());
            }
            // Entries are counted as written (a repeat too), as openapi.yaml's pattern does.
            if n == MAX_IDS {
                return Err(format!("must list at most {MAX_IDS} ids"));
            }
            let id = Id::parse(part)?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(Self(ids))
    }

    pub fn ids(&self) -> &[Id] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for IdList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor(IdList::parse, "a comma-separated list of ids"))
    }
}

impl Serialize for IdList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let joined: Vec<&str> = self.0.iter().map(Id::as_str).collect();
        s.serialize_str(&joined.join(","))
    }
}

/// An integer: in JSON any number with no fraction (JSON Schema's `integer`: `365`
/// and `365.0` are both the integer 365); in a query string its decimal digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IntVisitor;
        impl Visitor<'_> for IntVisitor {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int)
                    .map_err(|_| E::custom("must be an integer of at most 19 digits"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Int, E> {
                // 2^63 is the first float past i64::MAX.
                if v.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&v) {
                    Ok(Int(v as i64))
                } else {
                    Err(E::custom(format!("must be an integer, got {v}")))
                }
            }
        }
        // JSON hands its number as it is (an integral float included; a string is a
        // type error); a query string's text is parsed as an i64.
        d.deserialize_i64(IntVisitor)
    }
}

/// A boolean: `true`/`false` in JSON; in a query string also `1`/`0`, `yes`/`no`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        bool::deserialize(d).map(Flag)
    }
}

/// Free text to search for: at most [`MAX_SEARCH_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SearchText(String);

impl SearchText {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.chars().count() > MAX_SEARCH_CHARS {
            Err(format!("must be at most {MAX_SEARCH_CHARS} characters"))
        } else {
            Ok(Self(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SearchText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor(SearchText::parse, "text"))
    }
}

/// A range bound: a calendar day (`2024-01-31`, UTC) or an instant (RFC 3339 with any
/// offset). A day stands for its first millisecond as a start and its last as an end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateParam {
    Day(NaiveDate),
    Instant(DateTime<Utc>),
}

impl DateParam {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "must be YYYY-MM-DD or an RFC 3339 date-time (2024-01-31T23:59:59Z); got '{}'",
                sanitize(s)
            )
        };
        if s.len() > MAX_DATE_CHARS {
            return Err(bad());
        }
        // Any day, any instant (its UTC may fall just outside the years 0000-9999 by
        // its offset: [`date_range`] reads what that bounds).
        if let Some(day) = timefmt::parse_date(s) {
            Ok(DateParam::Day(day))
        } else if let Some(t) = timefmt::parse_rfc3339(s).or_else(|| timefmt::parse_rfc3339(&plus_restored(s))) {
            Ok(DateParam::Instant(t))
        } else {
            Err(bad())
        }
    }

    /// The first instant of the bound in `zone`: a day starts at its local midnight
    /// (or the first local time after a gap); an instant is itself.
    pub fn start_in(self, zone: TimeZone) -> DateTime<Utc> {
        match self {
            DateParam::Day(d) if !zone.is_utc() => day_start(d, zone),
            _ => self.start(),
        }
    }

    /// The last millisecond of the bound in `zone`: a day ends just before the next
    /// day's local midnight; an instant is itself.
    pub fn end_in(self, zone: TimeZone) -> DateTime<Utc> {
        match self {
            DateParam::Day(d) if !zone.is_utc() => match d.succ_opt() {
                Some(next) => day_start(next, zone) - chrono::Duration::milliseconds(1),
                None => self.end(),
            },
            _ => self.end(),
        }
    }

    pub fn start(self) -> DateTime<Utc> {
        match self {
            DateParam::Day(d) => d.and_hms_milli_opt(0, 0, 0, 0).unwrap_or_default().and_utc(),
            DateParam::Instant(t) => t,
        }
    }

    pub fn end(self) -> DateTime<Utc> {
        match self {
            DateParam::Day(d) => d.and_hms_milli_opt(23, 59, 59, 999).unwrap_or_default().and_utc(),
            DateParam::Instant(t) => t,
        }
    }
}

/// Local midnight of a day in a zone, as UTC; where midnight falls in a DST gap, the
/// first local time that exists.
pub fn day_start(day: NaiveDate, zone: TimeZone) -> DateTime<Utc> {
    use chrono::TimeZone as _;
    (0..48)
        .find_map(|quarter| {
            let local = day.and_hms_opt(0, 0, 0)? + chrono::Duration::minutes(15 * quarter);
            zone.0.from_local_datetime(&local).earliest()
        })
        .map_or_else(
            || day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
            |t| t.with_timezone(&Utc),
        )
}

/// A requested range in the caller's zone, checked: not reversed, and not wholly
/// outside the years 0000-9999 (UTC), where every stored time is. A start before
/// the year 0000 or an end after 9999 (a date at the edge, in a zone whose offset
/// moves it over) bounds nothing, and is read as an open end: the same rows.
/// `names` are the parameters' names, for the messages.
pub fn date_range(
    from: Option<DateParam>,
    to: Option<DateParam>,
    zone: TimeZone,
    names: (&str, &str),
) -> Result<DateRange, Error> {
    let from = from.map(|f| f.start_in(zone));
    let to = to.map(|t| t.end_in(zone));
    let after_the_last = |t: &DateTime<Utc>| t.year() > 9999;
    let before_the_first = |t: &DateTime<Utc>| t.year() < 0;
    let nothing = |name: &str| {
        Error::bad_request(format!(
            "{name} is outside the years 0000-9999 in time zone {}: nothing can match",
            zone.name()
        ))
    };
    if from.as_ref().is_some_and(after_the_last) {
        return Err(nothing(names.0));
    }
    if to.as_ref().is_some_and(before_the_first) {
        return Err(nothing(names.1));
    }
    let range = DateRange {
        from: from.filter(|t| !before_the_first(t)),
        to: to.filter(|t| !after_the_last(t)),
    };
    if let (Some(f), Some(t)) = (range.from, range.to)
        && f > t
    {
        return Err(Error::bad_request(format!("{} must not be after {}", names.0, names.1)));
    }
    Ok(range)
}

/// The file options every route takes (`compression`, `bom`, `time_zone`,
/// `spreadsheet_safe`), checked against the file's format: a BOM is for CSV only, a
/// Parquet file takes its codec as `compression` (zstd when none is named) and has no
/// formulas to neutralise.
pub fn file_options(
    compression: Option<Choice<Compression>>,
    bom: Option<Flag>,
    time_zone: Option<TimeZone>,
    spreadsheet_safe: Option<Flag>,
    family: FileFamily,
) -> Result<FileOptions, Error> {
    let bom = bom.is_some_and(|b| b.0);
    if bom && family != FileFamily::Csv {
        return Err(Error::bad_request("bom applies to the csv format only"));
    }
    if family == FileFamily::Parquet && spreadsheet_safe.is_some() {
        return Err(Error::bad_request(
            "spreadsheet_safe applies to csv and Excel files only: a Parquet file holds typed values, never formulas",
        ));
    }
    let compression = compression.map_or(family.default_compression(), |c| c.0);
    family.check_compression(compression)?;
    Ok(FileOptions {
        compression,
        bom,
        time_zone: time_zone.unwrap_or_default(),
        spreadsheet_safe: spreadsheet_safe.is_none_or(|f| f.0),
    })
}

/// In a URL, an unencoded `+` of an offset (`...T10:00:00+02:00`) arrives as a space.
fn plus_restored(s: &str) -> String {
    match s.rfind(' ') {
        Some(i) if s.len() - i == 6 => format!("{}+{}", &s[..i], &s[i + 1..]),
        _ => s.to_string(),
    }
}

impl<'de> Deserialize<'de> for DateParam {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor(DateParam::parse, "a date"))
    }
}

impl Serialize for DateParam {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DateParam::Day(d) => s.serialize_str(&format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())),
            DateParam::Instant(t) => s.serialize_str(&timefmt::format(t)),
        }
    }
}

/// A parameter whose value is one of `T`'s names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice<T>(pub T);

impl<'de, T: TextEnum> Deserialize<'de> for Choice<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        fn parse<T: TextEnum>(s: &str) -> Result<Choice<T>, String> {
            T::parse_ignore_case(s)
                .map(Choice)
                .ok_or_else(|| format!("must be one of: {}; got '{}'", T::choices(), sanitize(s)))
        }
        d.deserialize_str(TextVisitor(parse::<T>, "a name"))
    }
}

impl<T: TextEnum> Serialize for Choice<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_bounded_printable_tokens() {
        assert!(Id::parse("client-alpha_1.x:y@z").is_ok());
        for bad in ["", "a b", "<script>", "é", &"x".repeat(MAX_ID_CHARS + 1)] {
            assert!(Id::parse(bad).is_err(), "{bad}");
        }
        assert!(Id::parse(&"x".repeat(MAX_ID_CHARS)).is_ok());
    }

    #[test]
    fn id_lists_drop_repeats_and_refuse_empty_entries() {
        let l = IdList::parse("a, b,a").unwrap();
        assert_eq!(l.ids().iter().map(Id::as_str).collect::<Vec<_>>(), ["a", "b"]);
        assert!(IdList::parse("a,,b").is_err());
        let many = (0..=MAX_IDS).map(|i| format!("c{i}")).collect::<Vec<_>>().join(",");
        assert!(IdList::parse(&many).is_err());
    }

    #[test]
    fn days_are_days_in_the_requested_zone() {
        let berlin = TimeZone::parse("Europe/Berlin").unwrap();
        let d = DateParam::parse("2024-07-01").unwrap();
        assert_eq!(timefmt::format(&d.start_in(berlin)), "2024-06-30T22:00:00.000Z");
        assert_eq!(timefmt::format(&d.end_in(berlin)), "2024-07-01T21:59:59.999Z");
        assert_eq!(d.start_in(TimeZone::UTC), d.start());
        // A day whose midnight does not exist (DST starts at 00:00 in Santiago).
        let santiago = TimeZone::parse("America/Santiago").unwrap();
        let gap = DateParam::parse("2024-09-08").unwrap();
        assert_eq!(timefmt::format(&gap.start_in(santiago)), "2024-09-08T04:00:00.000Z");
        let edge = date_range(
            DateParam::parse("9999-12-31").ok(),
            None,
            TimeZone::parse("Pacific/Kiritimati").unwrap(),
            ("a", "b"),
        );
        assert!(edge.is_ok());
        // The end of 9999-12-31 at UTC-12 is in the year 10000: after every stored
        // time, so no end at all (the same rows).
        let over = date_range(
            None,
            DateParam::parse("9999-12-31").ok(),
            TimeZone::parse("Etc/GMT+12").unwrap(),
            ("a", "b"),
        )
        .unwrap();
        assert_eq!((over.from, over.to), (None, None));
        // A start after every stored time can match nothing.
        let past_the_end = date_range(
            DateParam::parse("9999-12-31T23:00:00-05:00").ok(),
            None,
            TimeZone::UTC,
            ("a", "b"),
        );
        assert!(past_the_end.unwrap_err().to_string().contains("nothing can match"));
        let before = date_range(
            DateParam::parse("0000-01-01T00:00:00+01:00").ok(),
            DateParam::parse("2024-01-01").ok(),
            TimeZone::UTC,
            ("a", "b"),
        )
        .unwrap();
        assert_eq!(before.from, None, "before the year 0000: no start");
    }

    #[test]
    fn dates_are_days_or_rfc_3339_instants() {
        let d = DateParam::parse("2024-01-31").unwrap();
        assert_eq!(timefmt::format(&d.start()), "2024-01-31T00:00:00.000Z");
        assert_eq!(timefmt::format(&d.end()), "2024-01-31T23:59:59.999Z");
        let t = DateParam::parse("2024-01-31T10:00:00+01:00").unwrap();
        assert_eq!(timefmt::format(&t.end()), "2024-01-31T09:00:00.000Z");
        assert_eq!(
            DateParam::parse("2024-01-31T10:00:00 01:00"),
            Ok(t),
            "a + decoded as a space"
        );
        assert!(DateParam::parse("0001-01-01").is_ok() && DateParam::parse("9999-12-31").is_ok());
        // What JSON Schema's date-time allows is a bound (its UTC may be the year 10000
        // or -1; date_range reads what that bounds).
        for edge in [
            "9999-12-31T23:59:59-01:00",
            "0000-01-01T00:00:00+01:00",
            "2024-01-31t10:00:00z",
        ] {
            assert!(DateParam::parse(edge).is_ok(), "{edge}");
        }
        for bad in [
            "2024-02-30",
            "31/01/2024",
            "2024-01-31T25:00:00Z",
            &"2".repeat(MAX_DATE_CHARS + 1),
        ] {
            assert!(DateParam::parse(bad).is_err(), "{bad}");
        }
    }
}
