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

/// A response handed to the Lambda runtime exactly as built. lambda_http's own
/// conversion (`IntoResponse for Response<B>`) decodes every `text/*` body with
/// encoding_rs, which drops a leading byte-order mark (so a CSV asked for with
/// `bom=true` lost it in Lambda, found by running the real binaries) and would
/// replace invalid UTF-8. Here a text body stays text and a binary body is sent
/// base64-encoded, byte for byte.
pub struct Exact(pub Response<Body>);

impl lambda_http::IntoResponse for Exact {
    fn into_response(self) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>> {
        Box::pin(std::future::ready(self.0))
    }
}

#[cfg(test)]
mod tests {
    use lambda_http::IntoResponse;

    use super::*;

    fn csv_with_bom() -> Response<Body> {
        let mut resp = Response::new(Body::Binary(b"\xEF\xBB\xBFLead ID\r\n".to_vec()));
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
        resp
    }

    fn bytes(body: &Body) -> Vec<u8> {
        match body {
            Body::Text(t) => t.as_bytes().to_vec(),
            Body::Binary(b) => b.clone(),
            _ => vec![],
        }
    }

    #[tokio::test]
    async fn the_runtime_gets_the_body_byte_for_byte() {
        let exact = Exact(csv_with_bom()).into_response().await;
        assert_eq!(bytes(exact.body()), b"\xEF\xBB\xBFLead ID\r\n");
        // What lambda_http would send without it: the byte-order mark gone.
        let converted = csv_with_bom().into_response().await;
        assert_eq!(bytes(converted.body()), b"Lead ID\r\n");
    }
}
