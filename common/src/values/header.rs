//! One request header's value as text: readable (visible ASCII), and given once
//! where it may be given once. What [`crate::auth`] reads the `Authorization`
//! header with, and [`crate::http::headers`] every other one.

use lambda_http::http::{HeaderMap, HeaderValue};

use crate::error::Error;

pub(crate) fn bad(name: &str, what: &str) -> Error {
    Error::bad_request(format!("header {name}: {what}"))
}

/// A header value as text: visible ASCII, spaces and tabs only (RFC 9110's
/// field-value without obsolete text). Never echoed: the client knows what it sent.
pub fn readable<'a>(name: &str, value: &'a HeaderValue) -> Result<&'a str, Error> {
    let bytes = value.as_bytes();
    if bytes.iter().all(|&b| b == b'\t' || (b' '..=b'~').contains(&b)) {
        // Visible ASCII is UTF-8.
        Ok(std::str::from_utf8(bytes).unwrap_or_default().trim())
    } else {
        Err(bad(name, "the value is not readable (visible ASCII characters only)"))
    }
}

/// The one value of a header that may be given once.
pub fn single<'a>(map: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, Error> {
    let mut values = map.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(bad(name, "is given more than once"));
    }
    readable(name, first).map(Some)
}
