//! Responses: JSON answers, and a finished export as a file, a redirect or a link.
//! Building a response never panics: a header that cannot be encoded is an error,
//! and the error answer itself is built from static parts.

use chrono::SecondsFormat;
use lambda_http::{
    Body, Response,
    http::{
        HeaderValue, StatusCode,
        header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, LOCATION},
    },
};
use serde_json::json;

use crate::{
    delivery::{Finished, Location},
    error::Error,
};

pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body.to_string()));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn header(value: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(value).map_err(|e| Error::internal("response error", e))
}

/// The JSON link answer: `{download_url, expires_at, file_name, size_bytes, rows}`.
pub fn link_body(finished: &Finished) -> Option<serde_json::Value> {
    match &finished.location {
        Location::Stored { url, expires_at, .. } => Some(json!({
            "download_url": url,
            "expires_at": expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "file_name": finished.file_name,
            "size_bytes": finished.bytes,
            "rows": finished.rows,
        })),
        Location::Inline { .. } => None,
    }
}

/// The answer for a finished export: the file (200), or for a stored one a `303` to
/// its presigned URL, or the JSON link answer when the caller asked for JSON.
pub fn file_response(finished: Finished, wants_json: bool) -> Result<Response<Body>, Error> {
    let link = link_body(&finished);
    match finished.location {
        Location::Inline { body, text } => {
            let body = if text {
                Body::Text(String::from_utf8(body).map_err(|e| Error::internal("encoding error", e))?)
            } else {
                Body::Binary(body)
            };
            let mut resp = Response::new(body);
            let headers = resp.headers_mut();
            headers.insert(CONTENT_TYPE, header(&finished.content_type)?);
            headers.insert(CONTENT_DISPOSITION, header(&finished.content_disposition)?);
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert("x-export-rows", HeaderValue::from(finished.rows));
            Ok(resp)
        }
        Location::Stored { url, .. } => {
            let body = link.unwrap_or_default();
            if wants_json {
                Ok(json_response(StatusCode::OK, &body))
            } else {
                let mut resp = json_response(StatusCode::SEE_OTHER, &body);
                resp.headers_mut().insert(LOCATION, header(&url)?);
                Ok(resp)
            }
        }
    }
}
