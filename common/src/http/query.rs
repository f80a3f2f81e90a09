//! Query strings decoded straight into a route's typed parameters.
//!
//! The raw query string (API Gateway's `rawQueryString`, which keeps repeats, unlike
//! `queryStringParameters`) is split into pairs, checked (no parameter twice, no
//! value over [`MAX_VALUE_CHARS`], nothing unknown to the target type) and handed to
//! the type's own `Deserialize` through a small serde `Deserializer`. A value is
//! text; the target type decides what it must parse as (integer, boolean, id, date),
//! so a JSON body and a query string decode into the same `deny_unknown_fields` type.

use std::fmt;

use serde::{
    de::{self, DeserializeOwned, IntoDeserializer, MapAccess, Visitor},
    forward_to_deserialize_any,
};

use super::{MAX_QUERY_BYTES, MAX_VALUE_CHARS, field_error, sanitize};
use crate::error::Error;

/// Parses a raw query string into `(name, value)` pairs, rejecting repeats (identical
/// or not), names that are empty and oversized values. Values are trimmed; an empty
/// value is kept here (its name must still be known, [`decode`]) and counts as absent
/// once the names are checked (the seed's dashboard drops empty parameters, other
/// clients send them).
pub fn pairs(raw: &str) -> Result<Vec<(String, String)>, Error> {
    if raw.len() > MAX_QUERY_BYTES {
        return Err(Error::uri_too_long(format!(
            "the query string is longer than {MAX_QUERY_BYTES} bytes"
        )));
    }
    let mut out: Vec<(String, String)> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        // `a=1&&b=2` and a trailing `&` are no pairs at all (form_urlencoded skips
        // them); `=1` or a bare `=` is a parameter without a name.
        if key.is_empty() {
            return Err(Error::bad_request("a query parameter has no name"));
        }
        if seen.iter().any(|k| *k == key) {
            return Err(Error::bad_request(format!(
                "query parameter '{}' is given more than once",
                sanitize(&key)
            )));
        }
        seen.push(key.to_string());
        if value.chars().count() > MAX_VALUE_CHARS {
            return Err(Error::bad_request(format!(
                "query parameter '{}' is longer than {MAX_VALUE_CHARS} characters",
                sanitize(&key)
            )));
        }
        out.push((key.into_owned(), value.trim().to_string()));
    }
    Ok(out)
}

/// The pairs whose value is not empty: an empty value counts as absent.
fn present(pairs: Vec<(String, String)>) -> std::vec::IntoIter<(String, String)> {
    pairs
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect::<Vec<_>>()
        .into_iter()
}

/// Decodes a raw query string into `T` (a struct with `deny_unknown_fields`).
pub fn decode<T: DeserializeOwned>(raw: &str) -> Result<T, Error> {
    let pairs = pairs(raw)?;
    T::deserialize(QueryDeserializer { pairs }).map_err(|e| Error::bad_request(e.0))
}

/// A decoding failure, already phrased for the client.
#[derive(Debug)]
pub struct DecodeError(String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

impl de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DecodeError(msg.to_string())
    }
}

struct QueryDeserializer {
    pairs: Vec<(String, String)>,
}

impl<'de> de::Deserializer<'de> for QueryDeserializer {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_map(Pairs {
            pairs: present(self.pairs),
            current: None,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        // Every name is checked, an empty value's too: `?foo=` is an unknown parameter.
        if let Some((key, _)) = self.pairs.iter().find(|(k, _)| !fields.contains(&k.as_str())) {
            let allowed = if fields.is_empty() {
                "none".to_string()
            } else {
                fields.join(", ")
            };
            return Err(DecodeError(format!(
                "unknown query parameter '{}'; allowed: {allowed}",
                sanitize(key)
            )));
        }
        self.deserialize_any(visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

struct Pairs {
    pairs: std::vec::IntoIter<(String, String)>,
    current: Option<(String, String)>,
}

impl<'de> MapAccess<'de> for Pairs {
    type Error = DecodeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DecodeError> {
        let Some((key, value)) = self.pairs.next() else {
            return Ok(None);
        };
        let k = seed.deserialize(key.as_str().into_deserializer())?;
        self.current = Some((key, value));
        Ok(Some(k))
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DecodeError> {
        let (key, value) = self
            .current
            .take()
            .ok_or_else(|| DecodeError("a value without its parameter".into()))?;
        seed.deserialize(Value(&value))
            .map_err(|e| DecodeError(field_error(&key, &e.0)))
    }
}

/// One query value: text that the target type parses.
struct Value<'a>(&'a str);

impl Value<'_> {
    fn number<T: std::str::FromStr>(&self, what: &str) -> Result<T, DecodeError> {
        self.0
            .parse()
            .map_err(|_| DecodeError(format!("must be {what}, got '{}'", sanitize(self.0))))
    }
}

/// `true`/`false`, `1`/`0`, `yes`/`no` (any case): what people type in URLs.
pub fn parse_flag(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

macro_rules! numbers {
    ($($method:ident $visit:ident $ty:ty, $what:literal;)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            visitor.$visit(self.number::<$ty>($what)?)
        })*
    };
}

impl<'de> de::Deserializer<'de> for Value<'_> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_str(self.0)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match parse_flag(self.0) {
            Some(b) => visitor.visit_bool(b),
            None => Err(DecodeError(format!(
                "must be true or false, got '{}'",
                sanitize(self.0)
            ))),
        }
    }

    numbers! {
        deserialize_i8 visit_i8 i8, "an integer";
        deserialize_i16 visit_i16 i16, "an integer";
        deserialize_i32 visit_i32 i32, "an integer";
        deserialize_i64 visit_i64 i64, "an integer";
        deserialize_u8 visit_u8 u8, "a non-negative integer";
        deserialize_u16 visit_u16 u16, "a non-negative integer";
        deserialize_u32 visit_u32 u32, "a non-negative integer";
        deserialize_u64 visit_u64 u64, "a non-negative integer";
        deserialize_f32 visit_f32 f32, "a number";
        deserialize_f64 visit_f64 f64, "a number";
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

/// No parameters at all: what a body route accepts in its query string.
#[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct P {
        name: Option<String>,
        n: Option<i64>,
        flag: Option<bool>,
    }

    fn d(raw: &str) -> Result<P, String> {
        decode::<P>(raw).map_err(|e| e.to_string())
    }

    #[test]
    fn decodes_typed_values() {
        assert_eq!(
            d("name=a%20b&n=-3&flag=yes").unwrap(),
            P {
                name: Some("a b".into()),
                n: Some(-3),
                flag: Some(true)
            }
        );
        assert_eq!(d("").unwrap(), P::default());
        assert_eq!(d("name=&n=%20").unwrap(), P::default(), "empty values are absent");
    }

    #[test]
    fn every_repeat_is_refused_even_an_identical_one() {
        for raw in ["flag=true&flag=true", "n=1&n=2", "name=&name=x", "x=1&x=1"] {
            let err = d(raw).unwrap_err();
            assert!(err.contains("more than once"), "{raw}: {err}");
        }
    }

    #[test]
    fn unknown_and_badly_typed_parameters_name_the_parameter() {
        assert!(
            d("nope=1")
                .unwrap_err()
                .starts_with("unknown query parameter 'nope'; allowed: name, n, flag")
        );
        assert_eq!(d("n=ten").unwrap_err(), "n must be an integer, got 'ten'");
        assert_eq!(d("flag=maybe").unwrap_err(), "flag must be true or false, got 'maybe'");
        let long = format!("name={}", "x".repeat(MAX_VALUE_CHARS + 1));
        assert!(d(&long).unwrap_err().contains("longer than"));
        let huge = "x".repeat(MAX_QUERY_BYTES + 1);
        assert!(matches!(decode::<P>(&huge), Err(Error::TooLarge { status: 414, .. })));
        assert!(!d("%3Cb%3E=1").unwrap_err().contains('<'));
    }

    #[test]
    fn an_unknown_name_is_refused_whatever_its_value() {
        for raw in ["foo=", "%22", "%27", ";", "%%%", "name=a&foo", "foo=%20"] {
            let err = d(raw).unwrap_err();
            assert!(err.starts_with("unknown query parameter"), "{raw}: {err}");
        }
        for raw in ["=", "=1", "name=a&=", "%20=1"] {
            let err = d(raw).unwrap_err();
            assert!(
                err == "a query parameter has no name" || err.starts_with("unknown query parameter"),
                "{raw}: {err}"
            );
        }
        // Empty segments are no parameters at all.
        assert_eq!(d("&&name=a&").unwrap().name.as_deref(), Some("a"));
    }
}
