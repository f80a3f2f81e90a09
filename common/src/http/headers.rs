//! The request headers the pipeline reads, decoded once into typed values.
//!
//! Each header either decodes to its value or is refused with `400` naming it; a
//! value that cannot be read (bytes outside visible ASCII, a broken list, a second
//! copy of a single-valued header) never counts as absent. Headers the API does not
//! declare (`User-Agent`, ...) are not read at all.
//!
//! | header | decodes to | refused when |
//! |---|---|---|
//! | `Authorization` | the bearer token ([`crate::auth`]) | unreadable, or given twice (`401` when readable but not a valid token) |
//! | `Idempotency-Key` | [`IdempotencyKey`] | unreadable, given twice, or not 1 to 128 of `A-Za-z0-9-_.:` |
//! | `Prefer` | [`Headers::respond_async`] | unreadable, or not a list of RFC 7240 preferences |
//! | `Cache-Control` | [`Headers::no_cache`] | unreadable, or not a list of RFC 9111 directives |
//! | `Accept` | [`Headers::wants_json`] | unreadable, or not a list of media ranges |
//! | `Content-Type` | [`Headers::content_type`] | unreadable, given twice, not a media type; with a body, anything but JSON in UTF-8 |
//!
//! Preferences and cache directives other than the ones we act on are ignored, as
//! RFC 7240 and RFC 9111 require; the answer of a job start says which preference it
//! applied (`Preference-Applied: respond-async`).

use lambda_http::http::HeaderMap;

use crate::error::Error;

/// `Idempotency-Key`: 1 to 128 of `A-Za-z0-9-_.:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_CHARS: usize = 128;

    pub fn parse(value: &str) -> Option<Self> {
        let ok = !value.is_empty()
            && value.len() <= Self::MAX_CHARS
            && value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
        ok.then(|| Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A request body's declared media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentType {
    /// `application/json` (charset, if any, UTF-8).
    Json,
    /// Anything else: refused once a body is there to read ([`Headers::check_body`]).
    Other,
}

/// The typed values of the headers the API declares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    pub idempotency_key: Option<IdempotencyKey>,
    /// `Prefer: respond-async` (RFC 7240): run the export as a job.
    pub respond_async: bool,
    /// `Cache-Control: no-cache` or `no-store`: never answer with a cached job.
    pub no_cache: bool,
    /// `Accept` names `application/json` (with a non-zero `q`): the JSON link answer.
    pub wants_json: bool,
    /// `None` when no `Content-Type` was sent.
    pub content_type: Option<ContentType>,
}

use crate::values::header::bad;
pub use crate::values::header::{readable, single};

/// The elements of a comma-separated list header, over all its lines (RFC 9110:
/// several lines of a list header are one list). Empty elements are skipped.
fn elements<'a>(map: &'a HeaderMap, name: &str) -> Result<Vec<&'a str>, Error> {
    let mut out = Vec::new();
    for value in map.get_all(name) {
        out.extend(
            split_outside_quotes(readable(name, value)?, ',')
                .into_iter()
                .map(str::trim)
                .filter(|e| !e.is_empty()),
        );
    }
    Ok(out)
}

/// Splits at `sep` where it is not inside a quoted string.
fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// RFC 9110 `token`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// RFC 9110 `quoted-string` (the quotes included).
fn is_quoted(s: &str) -> bool {
    s.len() >= 2 && s.starts_with('"') && s.ends_with('"')
}

/// `name[=value]` where value is a token or a quoted string: a preference, a cache
/// directive, a parameter. Returns the lowercased name and the value.
fn name_value(s: &str) -> Option<(String, Option<&str>)> {
    let (name, value) = match s.split_once('=') {
        Some((n, v)) => (n.trim(), Some(v.trim())),
        None => (s.trim(), None),
    };
    if !is_token(name) || value.is_some_and(|v| !is_token(v) && !is_quoted(v)) {
        return None;
    }
    Some((name.to_ascii_lowercase(), value))
}

/// `;` parameters: lowercased names and their values as sent.
type Params<'a> = Vec<(String, Option<&'a str>)>;

/// A media type or range: `type/subtype` (tokens, or `*`) and `;` parameters.
/// Returns the lowercased `type/subtype` and the parameters. A lone `*` is read as
/// `*/*` (some HTTP clients send it).
fn media(s: &str) -> Option<(String, Params<'_>)> {
    let mut parts = split_outside_quotes(s, ';').into_iter();
    let essence = parts.next()?.trim();
    let essence = if essence == "*" {
        "*/*".to_string()
    } else {
        let (ty, sub) = essence.split_once('/')?;
        if !is_token(ty) || !is_token(sub) {
            return None;
        }
        essence.to_ascii_lowercase()
    };
    let params = parts
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(name_value)
        .collect::<Option<Vec<_>>>()?;
    Some((essence, params))
}

/// `q` of a media range (RFC 9110 `weight`): 0 to 1 with at most three decimals.
fn weight(params: &Params<'_>) -> Option<f32> {
    match params.iter().find(|(n, _)| n == "q") {
        None => Some(1.0),
        Some((_, Some(v))) => {
            let ok = v.len() <= 5
                && (v.starts_with('0') || v.starts_with('1') || v.starts_with('.'))
                && v.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            let q: f32 = v.parse().ok().filter(|_| ok)?;
            (0.0..=1.0).contains(&q).then_some(q)
        }
        Some((_, None)) => None,
    }
}

impl Headers {
    /// Decodes every header the API declares (`Authorization` is read by
    /// [`crate::auth`], with [`single`]).
    pub fn decode(map: &HeaderMap) -> Result<Self, Error> {
        let idempotency_key = match single(map, "Idempotency-Key")? {
            None => None,
            Some(v) => Some(IdempotencyKey::parse(v).ok_or_else(|| {
                bad(
                    "Idempotency-Key",
                    "must be 1 to 128 letters, digits or -_.: (one key per request)",
                )
            })?),
        };

        let mut respond_async = false;
        for p in elements(map, "Prefer")? {
            // A preference, then `;` parameters (RFC 7240 section 2).
            let mut parts = split_outside_quotes(p, ';').into_iter();
            let (name, _) = parts
                .next()
                .and_then(name_value)
                .ok_or_else(|| bad("Prefer", "must be a list of preferences such as respond-async"))?;
            if parts.filter(|q| !q.trim().is_empty()).any(|q| name_value(q).is_none()) {
                return Err(bad("Prefer", "must be a list of preferences such as respond-async"));
            }
            respond_async |= name == "respond-async";
        }

        let mut no_cache = false;
        for d in elements(map, "Cache-Control")? {
            let (name, _) =
                name_value(d).ok_or_else(|| bad("Cache-Control", "must be a list of directives such as no-cache"))?;
            no_cache |= name == "no-cache" || name == "no-store";
        }

        let mut wants_json = false;
        for range in elements(map, "Accept")? {
            let (essence, params) =
                media(range).ok_or_else(|| bad("Accept", "must be a list of media ranges such as application/json"))?;
            let q = weight(&params).ok_or_else(|| bad("Accept", "a q weight must be a number from 0 to 1"))?;
            wants_json |= essence == "application/json" && q > 0.0;
        }

        let content_type = match single(map, "Content-Type")? {
            None => None,
            Some(v) => {
                let (essence, params) = media(v).ok_or_else(|| bad("Content-Type", "is not a media type"))?;
                let utf8 = params.iter().all(|(n, v)| {
                    n != "charset" || v.is_some_and(|c| c.trim_matches('"').eq_ignore_ascii_case("utf-8"))
                });
                Some(if essence == "application/json" && utf8 {
                    ContentType::Json
                } else {
                    ContentType::Other
                })
            }
        };

        Ok(Self {
            idempotency_key,
            respond_async,
            no_cache,
            wants_json,
            content_type,
        })
    }

    /// A body is read only as what it says it is: JSON (or undeclared).
    pub fn check_body(&self, body: &[u8]) -> Result<(), Error> {
        if !body.is_empty() && self.content_type == Some(ContentType::Other) {
            return Err(bad("Content-Type", "the request body must be application/json (UTF-8)"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use lambda_http::http::{HeaderName, HeaderValue};

    use super::*;

    fn map(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        m
    }

    fn decode(pairs: &[(&str, &[u8])]) -> Result<Headers, String> {
        Headers::decode(&map(pairs)).map_err(|e| e.to_string())
    }

    #[test]
    fn absent_headers_decode_to_defaults() {
        assert_eq!(decode(&[]).unwrap(), Headers::default());
    }

    #[test]
    fn unreadable_values_are_refused_naming_the_header_never_treated_as_absent() {
        for name in ["idempotency-key", "prefer", "cache-control", "accept", "content-type"] {
            for value in ["été".as_bytes(), b"a\x80b", b"\xff"] {
                let err = decode(&[(name, value)]).unwrap_err();
                assert!(err.starts_with("header "), "{name}: {err}");
                assert!(err.to_ascii_lowercase().contains(name), "{name}: {err}");
                assert!(err.contains("not readable"), "{name}: {err}");
            }
        }
    }

    #[test]
    fn idempotency_keys_follow_their_pattern_and_come_once() {
        let ok = decode(&[("idempotency-key", b"ab-12_.:Z")]).unwrap();
        assert_eq!(ok.idempotency_key.unwrap().as_str(), "ab-12_.:Z");
        for bad in [&b"a b"[..], b"a/b", &[b'a'; 129][..], b"a,b"] {
            assert!(decode(&[("idempotency-key", bad)]).is_err(), "{bad:?}");
        }
        assert!(
            decode(&[("idempotency-key", b"a"), ("idempotency-key", b"a")])
                .unwrap_err()
                .contains("more than once")
        );
        // Blank is not absent.
        assert!(decode(&[("idempotency-key", b"")]).is_err());
    }

    #[test]
    fn preferences_and_directives_are_lists_and_unknown_ones_are_ignored() {
        let h = decode(&[("prefer", b"wait=10, respond-async; foo=\"a,b\"")]).unwrap();
        assert!(h.respond_async);
        assert!(decode(&[("prefer", b"RESPOND-ASYNC")]).unwrap().respond_async);
        assert!(!decode(&[("prefer", b"return=minimal")]).unwrap().respond_async);
        for bad in [&b"respond async"[..], b"=x", b"a=b c", b"respond-async; =1"] {
            assert!(decode(&[("prefer", bad)]).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(decode(&[("cache-control", b"max-age=0, no-cache")]).unwrap().no_cache);
        assert!(decode(&[("cache-control", b"no-store")]).unwrap().no_cache);
        assert!(!decode(&[("cache-control", b"max-age=0")]).unwrap().no_cache);
        assert!(decode(&[("cache-control", b"K/,")]).is_err());
        // Several lines of a list header are one list.
        let two = decode(&[("cache-control", b"max-age=0"), ("cache-control", b"no-cache")]).unwrap();
        assert!(two.no_cache);
    }

    #[test]
    fn accept_is_a_list_of_media_ranges() {
        assert!(decode(&[("accept", b"application/json")]).unwrap().wants_json);
        assert!(
            decode(&[("accept", b"text/csv, Application/JSON;q=0.5")])
                .unwrap()
                .wants_json
        );
        assert!(!decode(&[("accept", b"application/json;q=0")]).unwrap().wants_json);
        assert!(!decode(&[("accept", b"*/*")]).unwrap().wants_json);
        // What java.net.HttpURLConnection sends.
        assert!(
            !decode(&[("accept", b"text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2")])
                .unwrap()
                .wants_json
        );
        for bad in [&b"json"[..], b"application/json;q=2", b"a/b;q=x", b"/"] {
            assert!(decode(&[("accept", bad)]).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn content_type_is_read_when_a_body_comes() {
        let json = decode(&[("content-type", b"application/json; charset=UTF-8")]).unwrap();
        assert_eq!(json.content_type, Some(ContentType::Json));
        json.check_body(b"{}").unwrap();
        let form = decode(&[("content-type", b"application/x-www-form-urlencoded")]).unwrap();
        assert!(form.check_body(b"{}").unwrap_err().to_string().contains("Content-Type"));
        form.check_body(b"").unwrap();
        let latin = decode(&[("content-type", b"application/json; charset=latin1")]).unwrap();
        assert!(latin.check_body(b"{}").is_err());
        assert!(decode(&[("content-type", b"json")]).is_err());
        Headers::default().check_body(b"{}").unwrap();
    }
}
