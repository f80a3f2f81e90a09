//! Ids as every id of this project is: 1 to 128 letters, digits or `-_.:@`.

use std::fmt;

use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{self, Visitor},
};

use super::text::sanitize;

/// Longest id (client, conversation, company, chatbot).
pub const MAX_ID_CHARS: usize = 128;

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.:@".contains(c)
}

/// An id: 1 to 128 letters, digits or `-_.:@`. Anything else is refused before it
/// reaches a query or a log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

impl Id {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty() && s.chars().count() <= MAX_ID_CHARS && s.chars().all(is_id_char);
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(format!(
                "must be an id of 1 to {MAX_ID_CHARS} letters, digits or -_.:@; got '{}'",
                sanitize(s)
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A visitor for values given as text, checked by `parse`.
pub struct TextVisitor<T>(pub fn(&str) -> Result<T, String>, pub &'static str);

impl<T> Visitor<'_> for TextVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.1)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor(Id::parse, "an id"))
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}
