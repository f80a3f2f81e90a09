//! JSON request bodies decoded into a route's typed parameters.
//!
//! A body is a JSON object or nothing at all: an array (which serde would happily
//! read as positional struct fields), a string, a number or `null` is refused. The
//! object is read straight into the target type, so duplicate keys, unknown keys and
//! wrong types are errors naming the field.

use serde::de::DeserializeOwned;

use super::{MAX_BODY_BYTES, clean_message, field_error};
use crate::error::Error;

pub fn decode<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, Error> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Error::body_too_large(format!(
            "the request body is larger than {MAX_BODY_BYTES} bytes"
        )));
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => return Ok(T::default()),
        Some(b'{') => {}
        Some(_) => return Err(Error::bad_request("the request body must be a JSON object")),
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let message = clean(e.inner());
        if path.is_empty() || path == "." || path == "?" {
            Error::bad_request(clean_message(&message, 300))
        } else {
            Error::bad_request(field_error(&path, &message))
        }
    })?;
    de.end()
        .map_err(|e| Error::bad_request(clean_message(&clean(&e), 300)))?;
    Ok(value)
}

fn clean(e: &serde_json::Error) -> String {
    without_position(&without_quoted(&e.to_string()))
}

/// serde_json appends " at line L column C"; the client's body is one line anyway.
fn without_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Cuts double-quoted input out of serde's messages (`invalid type: string "...",
/// expected ...`) so a client's value is never echoed back at length; field names
/// (in backticks) stay.
fn without_quoted(msg: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in msg.chars() {
        if c == '"' {
            quoted = !quoted;
            if quoted {
                out.push_str("(value omitted)");
            }
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct P {
        format: Option<String>,
        limit: Option<i64>,
        flag: Option<bool>,
    }

    fn d(body: &str) -> Result<P, String> {
        decode::<P>(body.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn objects_and_empty_bodies_are_accepted() {
        assert_eq!(d("").unwrap(), P::default());
        assert_eq!(d("  \n").unwrap(), P::default());
        assert_eq!(d(r#"{"limit": 5}"#).unwrap().limit, Some(5));
    }

    #[test]
    fn anything_but_an_object_is_refused() {
        for body in [r#"["json",null,null]"#, "null", "42", r#""json""#, "true", "[]"] {
            assert_eq!(d(body).unwrap_err(), "the request body must be a JSON object", "{body}");
        }
    }

    #[test]
    fn errors_name_the_field_and_never_echo_values() {
        assert!(
            d(r#"{"limit":"<script>"}"#)
                .unwrap_err()
                .starts_with("limit: invalid type")
        );
        assert!(!d(r#"{"limit":"<script>"}"#).unwrap_err().contains("script"));
        assert!(
            d(r#"{"format":"a","format":"b"}"#)
                .unwrap_err()
                .contains("duplicate field")
        );
        assert!(d(r#"{"nope":1}"#).unwrap_err().contains("unknown field"));
        assert!(d(r#"{"limit":1} x"#).is_err(), "trailing characters");
        assert!(d("{").is_err());
        let big = format!(r#"{{"format":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
        assert!(matches!(
            decode::<P>(big.as_bytes()),
            Err(Error::TooLarge { status: 413, .. })
        ));
    }
}
