//! The HTTP edge shared by every function: query parsing, the one error-to-response
//! mapping, delivery of a finished export as a response, and the per-request log line.

use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use lambda_http::{
    Body, Request, RequestExt, Response,
    http::{
        HeaderValue, StatusCode,
        header::{ACCEPT, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, LOCATION},
    },
    request::RequestContext,
};
use serde_json::json;

use crate::{
    AppContext,
    auth::Caller,
    error::Error,
    export::{self, Delivered, ExportJob, S3Sink, sink::ObjectTarget},
};

/// How a route shapes its error bodies.
#[derive(Clone, Debug)]
pub enum ErrorStyle {
    /// `{"error_code": "...", "message": "..."}` (sessions and chat exports).
    /// `failure` prefixes 5xx messages, e.g. "Failed to export chat sessions".
    Code { failure: &'static str },
    /// `{"success": false, "message": "...", "error": "..."}` (leads export).
    SuccessFlag { message: String },
}

/// The single mapping from [`Error`] to an HTTP response. Client text is the error's
/// own (safe) message; the cause chain of a 5xx goes to the log only.
pub fn error_response(err: &Error, style: &ErrorStyle) -> Response<Body> {
    let status = StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match style {
        ErrorStyle::Code { failure } => {
            let message = if err.is_server_error() {
                format!("{failure}: {err}")
            } else {
                err.to_string()
            };
            json!({ "error_code": err.code(), "message": message })
        }
        ErrorStyle::SuccessFlag { message } => {
            json!({ "success": false, "message": message, "error": err.to_string() })
        }
    };
    let mut resp = json_response(status, &body);
    if let Error::RateLimited { retry_after_secs } = err {
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from(*retry_after_secs));
    }
    resp
}

pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .header(CACHE_CONTROL, "no-store")
        .body(Body::Text(body.to_string()))
        .expect("static headers are valid")
}

/// Query parameters, parsed strictly: every parameter must be known and appear once.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn from_request(req: &Request) -> Self {
        let map = req.query_string_parameters();
        let mut pairs = Vec::new();
        for (key, _) in map.iter() {
            for value in map.all(key).unwrap_or_default() {
                pairs.push((key.to_string(), value.to_string()));
            }
        }
        pairs.sort();
        pairs.dedup();
        Self { pairs }
    }

    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            pairs: pairs.into_iter().collect(),
        }
    }

    /// Rejects parameters outside `allowed` and repeated parameters.
    pub fn expect_only(&self, allowed: &[&str]) -> Result<(), Error> {
        for (i, (key, _)) in self.pairs.iter().enumerate() {
            if !allowed.contains(&key.as_str()) {
                return Err(Error::bad_request(format!(
                    "unknown query parameter '{}'; allowed: {}",
                    sanitize(key),
                    allowed.join(", ")
                )));
            }
            if self.pairs[..i].iter().any(|(k, _)| k == key) {
                return Err(Error::bad_request(format!(
                    "query parameter '{key}' given more than once"
                )));
            }
        }
        Ok(())
    }

    /// The trimmed value of a parameter; an empty value counts as absent.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn bool(&self, key: &str, default: bool) -> Result<bool, Error> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_bool(v)
                .ok_or_else(|| Error::bad_request(format!("{key} must be true or false, got '{}'", sanitize(v)))),
        }
    }
}

pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Makes user input safe to echo in an error: no control or markup characters, at
/// most 64 characters.
pub fn sanitize(s: &str) -> String {
    sanitize_to(s, 64)
}

/// [`sanitize`] with another length limit.
pub fn sanitize_to(s: &str, max_chars: usize) -> String {
    let clean: String = s
        .chars()
        .take(max_chars)
        .map(|c| {
            if c.is_control() || "<>&\"'\\".contains(c) {
                '?'
            } else {
                c
            }
        })
        .collect();
    if s.chars().count() > 64 {
        format!("{clean}...")
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_markup_and_control_characters_and_truncates() {
        assert_eq!(sanitize("<script>\u{0}"), "?script??");
        assert_eq!(sanitize(&"x".repeat(70)), format!("{}...", "x".repeat(64)));
        assert_eq!(sanitize("Lead ID"), "Lead ID");
    }
}

/// Ids are short printable tokens (letters, digits, `-_.:@`, at most 128); anything
/// else is rejected before it reaches a query.
pub fn parse_id(name: &str, value: &str) -> Result<String, Error> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c));
    if ok {
        Ok(value.to_string())
    } else {
        Err(Error::bad_request(format!(
            "{name} '{}' is not a valid id",
            sanitize(value)
        )))
    }
}

/// What the per-request log line records.
#[derive(Default)]
struct Outcome {
    sub: Option<String>,
    rows: Option<u64>,
    bytes: Option<u64>,
    delivery: Option<&'static str>,
}

pub fn request_id(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    }
    .or_else(|| req.lambda_context_ref().map(|c| c.request_id.clone()))
    .unwrap_or_else(|| "-".into())
}

pub fn wants_json(req: &Request) -> bool {
    req.headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().starts_with("application/json")))
}

/// Authenticates, asks `plan` for the job, runs it and answers; logs one line.
/// `kind` names the export in logs and object keys; `errors` picks the error body
/// shape from the query (the leads export names the format asked for).
pub async fn handle_export<F>(
    ctx: &AppContext,
    req: Request,
    kind: &'static str,
    errors: fn(&Query) -> ErrorStyle,
    plan: F,
) -> Response<Body>
where
    F: FnOnce(&AppContext, &Caller, &Query) -> Result<ExportJob, Error>,
{
    let started = Instant::now();
    let request_id = request_id(&req);
    let mut outcome = Outcome::default();
    let query = Query::from_request(&req);
    let errors = errors(&query);
    let result = async {
        let caller = ctx.auth.authenticate(req.headers())?;
        outcome.sub = Some(caller.sub.clone());
        let job = plan(ctx, &caller, &query)?;
        deliver(ctx, job, wants_json(&req), &mut outcome).await
    }
    .await;
    let response = match &result {
        Ok(_) => None,
        Err(e) => Some(error_response(e, &errors)),
    };
    let status = response.as_ref().map_or(200, |r| r.status().as_u16());
    let duration_ms = started.elapsed().as_millis() as u64;
    match &result {
        Err(e) if e.is_server_error() => tracing::error!(
            request_id, sub = outcome.sub.as_deref(), kind, status,
            duration_ms, error = %e.cause_chain(), "export failed"
        ),
        Err(e) => tracing::warn!(
            request_id, sub = outcome.sub.as_deref(), kind, status,
            duration_ms, error = %e, "export rejected"
        ),
        Ok(resp) => tracing::info!(
            request_id,
            sub = outcome.sub.as_deref(),
            kind,
            status = resp.status().as_u16(),
            rows = outcome.rows,
            bytes = outcome.bytes,
            delivery = outcome.delivery,
            duration_ms,
            "export done"
        ),
    }
    match result {
        Ok(resp) => resp,
        Err(_) => response.expect("error response built above"),
    }
}

/// `exports/<kind>/<YYYY>/<MM>/<DD>/<uuid>/<file name>`: unguessable, sortable by date,
/// easy to expire by prefix.
fn object_key(prefix: &str, kind: &str, file_name: &str) -> String {
    format!(
        "{prefix}{kind}/{}/{}/{file_name}",
        Utc::now().format("%Y/%m/%d"),
        uuid::Uuid::new_v4()
    )
}

/// A finished export: where it is and what it holds.
#[derive(Debug)]
pub struct Finished {
    pub file_name: String,
    pub content_type: String,
    pub content_disposition: String,
    pub rows: u64,
    pub bytes: u64,
    pub location: Location,
}

#[derive(Debug)]
pub enum Location {
    Inline {
        body: Vec<u8>,
        text: bool,
    },
    Stored {
        bucket: String,
        key: String,
        url: String,
        expires_at: DateTime<Utc>,
    },
}

impl Finished {
    pub fn s3_key(&self) -> Option<&str> {
        match &self.location {
            Location::Stored { key, .. } => Some(key),
            Location::Inline { .. } => None,
        }
    }

    /// Deletes a stored export, e.g. when it cannot be recorded. Best effort: the
    /// bucket's lifecycle rule removes what this cannot.
    pub async fn discard(&self, ctx: &AppContext) {
        if let Location::Stored { bucket, key, .. } = &self.location
            && let Err(e) = ctx.aws.s3.delete_object().bucket(bucket).key(key).send().await
        {
            tracing::error!(key, error = %Error::storage(e).cause_chain(), "could not delete a discarded export");
        }
    }
}

/// Runs a job into the inline buffer (when `inline` and it fits) or S3, and presigns
/// stored results.
pub async fn run_job(ctx: &AppContext, job: ExportJob, inline: bool) -> Result<Finished, Error> {
    let d = &ctx.config.delivery;
    let file_name = job.file_name();
    let format = job.format;
    let target = ObjectTarget {
        bucket: d.bucket.clone(),
        key: object_key(&d.key_prefix, job.kind, &file_name),
        content_type: format.content_type().to_string(),
        content_disposition: format!("attachment; filename=\"{file_name}\""),
    };
    let inline_max = inline.then_some(d.inline_max_bytes);
    let sink = S3Sink::new(ctx.aws.s3.clone(), target.clone(), inline_max, d.part_bytes);
    let (summary, delivered) = export::run(job, sink).await?;
    let location = match delivered {
        Delivered::Inline(body) => Location::Inline {
            body,
            text: format.is_text(),
        },
        Delivered::Stored { bucket, key } => {
            let (url, expires) = export::sink::presign_download(&ctx.aws.s3, &target, d.presign_ttl).await?;
            Location::Stored {
                bucket,
                key,
                url,
                expires_at: expires.into(),
            }
        }
    };
    Ok(Finished {
        file_name,
        content_type: target.content_type,
        content_disposition: target.content_disposition,
        rows: summary.rows,
        bytes: summary.bytes,
        location,
    })
}

/// The answer for a finished export: the file (200), or for a stored one a `303` to
/// its presigned URL, or the JSON link answer when the caller asked for JSON.
pub fn finished_response(finished: Finished, wants_json: bool) -> Result<Response<Body>, Error> {
    match finished.location {
        Location::Inline { body, text } => {
            let body = if text {
                Body::Text(String::from_utf8(body).map_err(|e| Error::internal("encoding error", e))?)
            } else {
                Body::Binary(body)
            };
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header(CONTENT_TYPE, &finished.content_type)
                .header(CONTENT_DISPOSITION, &finished.content_disposition)
                .header(CACHE_CONTROL, "no-store")
                .header("x-export-rows", finished.rows)
                .body(body)
                .expect("headers are valid"))
        }
        Location::Stored { url, expires_at, .. } => {
            let body = json!({
                "download_url": url,
                "expires_at": expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                "file_name": finished.file_name,
                "size_bytes": finished.bytes,
                "rows": finished.rows,
            });
            if wants_json {
                Ok(json_response(StatusCode::OK, &body))
            } else {
                let mut resp = json_response(StatusCode::SEE_OTHER, &body);
                resp.headers_mut().insert(
                    LOCATION,
                    HeaderValue::from_str(&url).map_err(|e| Error::internal("storage error", e))?,
                );
                Ok(resp)
            }
        }
    }
}

async fn deliver(
    ctx: &AppContext,
    job: ExportJob,
    wants_json: bool,
    outcome: &mut Outcome,
) -> Result<Response<Body>, Error> {
    let finished = run_job(ctx, job, !wants_json).await?;
    outcome.rows = Some(finished.rows);
    outcome.bytes = Some(finished.bytes);
    outcome.delivery = Some(match (&finished.location, wants_json) {
        (Location::Inline { .. }, _) => "inline",
        (Location::Stored { .. }, true) => "link",
        (Location::Stored { .. }, false) => "redirect",
    });
    finished_response(finished, wants_json)
}

/// 404 for paths no function serves (used by `exportctl serve`).
pub fn not_found(path: &str) -> Response<Body> {
    error_response(
        &Error::NotFound(format!("no route for {}", sanitize(path))),
        &ErrorStyle::Code {
            failure: "Request failed",
        },
    )
}
