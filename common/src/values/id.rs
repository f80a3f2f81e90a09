//! Ids as every id of this project is: the platform's ids (clients, conversations,
//! companies, chatbots: 1 to 128 letters, digits or `-_.:@`), and the ids this
//! project makes for its own records (jobs and schedules: 32 lowercase hex).

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

/// Whether `s` is 32 lowercase hex characters: the form of every id this project
/// makes for its records (a random UUID's hex, or a SHA-256 prefix).
fn is_record_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

macro_rules! record_id {
    ($(#[$m:meta])* $name:ident, $what:literal) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// `s` when it is 32 lowercase hex characters. Anything else names no
            /// record: the routes answer it as they answer an id that does not exist.
            pub fn parse(s: &str) -> Option<Self> {
                is_record_id(s).then(|| Self(s.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(s: String) -> Result<Self, String> {
                if is_record_id(&s) {
                    Ok(Self(s))
                } else {
                    Err(format!(
                        concat!($what, " must be 32 lowercase hex characters; got '{}'"),
                        sanitize(&s)
                    ))
                }
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

record_id!(
    /// The id of an export job: 32 lowercase hex characters.
    JobId,
    "job_id"
);

record_id!(
    /// The id of a schedule: 32 lowercase hex characters.
    ScheduleId,
    "schedule id"
);

record_id!(
    /// The id of a webhook secret: 32 lowercase hex characters.
    SecretId,
    "secret_id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_are_32_lowercase_hex() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(JobId::parse(id).unwrap().as_str(), id);
        assert!(ScheduleId::parse(id).is_some());
        for bad in [
            "",
            &id[1..],
            &id.to_uppercase(),
            &format!("{id}0"),
            "g123456789abcdef0123456789abcdef",
        ] {
            assert!(JobId::parse(bad).is_none(), "{bad}");
        }
        let err = JobId::try_from("x".to_string()).unwrap_err();
        assert_eq!(err, "job_id must be 32 lowercase hex characters; got 'x'");
        assert_eq!(
            serde_json::to_string(&JobId::parse(id).unwrap()).unwrap(),
            format!("\"{id}\"")
        );
    }
}
