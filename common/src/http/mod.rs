//! The HTTP edge shared by every function: the request as received, decoding of
//! query strings and JSON bodies into typed parameters, the one error-to-response
//! mapping, the responses, and the request pipeline every route runs through.

pub mod admission;
pub mod body;
pub mod errors;
pub mod headers;
pub mod pipeline;
pub mod query;
pub mod request;
pub mod response;

pub use errors::{ErrorStyle, error_response};
pub use pipeline::{ExportRoute, Policy, handle};
pub use request::RawRequest;

/// API Gateway HTTP API's limit on the request line plus all header values
/// (`exportctl serve` enforces it; AWS does in production).
pub const MAX_REQUEST_HEAD_BYTES: usize = 10_240;
/// API Gateway HTTP API's payload limit.
pub const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;
/// Longest raw query string a handler accepts (only reachable by invoking the
/// function directly: API Gateway refuses longer request lines first).
pub const MAX_QUERY_BYTES: usize = MAX_REQUEST_HEAD_BYTES;
/// Largest JSON body of an export request. Real requests are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest value of any single parameter, before its own (tighter) bound applies.
pub const MAX_VALUE_CHARS: usize = 2048;

pub use crate::values::text::{sanitize, sanitize_to};

/// A message for the client: no control or markup characters, at most `max_chars`.
/// Unlike [`sanitize`] it keeps apostrophes, which frame the (already sanitised)
/// values our messages quote.
pub fn clean_message(s: &str, max_chars: usize) -> String {
    crate::values::text::masked(s, max_chars, "<>&\"\\")
}

/// `<field> must be ...` for the messages of typed parameters, `<field>: ...` for
/// anything else serde says; always cleaned and bounded.
pub(crate) fn field_error(field: &str, message: &str) -> String {
    let field = sanitize(field);
    if message.starts_with("must ") {
        clean_message(&format!("{field} {message}"), 300)
    } else {
        clean_message(&format!("{field}: {message}"), 300)
    }
}

/// Cuts a string to at most `max_bytes` bytes on a character boundary, marking the cut.
pub fn truncate_bytes(s: &str, max_bytes: usize) -> String {
    if s.len() <= max_bytes {
        return s.to_string();
    }
    let mut end = max_bytes.saturating_sub(16);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...(truncated)", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_character_boundaries() {
        let s = "é".repeat(100);
        let cut = truncate_bytes(&s, 51);
        assert!(cut.len() <= 51 && cut.ends_with("...(truncated)"));
        assert_eq!(truncate_bytes("short", 51), "short");
    }
}
