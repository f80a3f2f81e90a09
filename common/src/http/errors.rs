//! The single mapping from [`Error`] to an HTTP response, in the shape a route
//! documents. Client text is the error's own (safe) message; the cause chain of a
//! 5xx goes to the log only.

use lambda_http::{
    Body, Response,
    http::{HeaderValue, StatusCode},
};
use serde_json::json;

use super::response::json_response;
use crate::error::Error;

/// How a route shapes its error bodies.
#[derive(Clone, Debug)]
pub enum ErrorStyle {
    /// `{"error_code": "...", "message": "..."}` (sessions and chat exports).
    Code {
        /// Prefixes 5xx messages, e.g. "Failed to export chat sessions".
        failure: &'static str,
        /// Prefixes `invalid_request` messages, e.g. "Invalid export request".
        invalid: Option<&'static str>,
    },
    /// `{"success": false, "message": "...", "error": "..."}` (leads export).
    SuccessFlag { message: String },
}

impl ErrorStyle {
    /// The plain `{error_code, message}` shape, for answers outside any route.
    pub const fn plain() -> Self {
        ErrorStyle::Code {
            failure: "Request failed",
            invalid: None,
        }
    }
}

pub fn error_response(err: &Error, style: &ErrorStyle) -> Response<Body> {
    let status = StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match style {
        ErrorStyle::Code { failure, invalid } => {
            let message = match (err, invalid) {
                _ if err.is_server_error() => format!("{failure}: {err}"),
                (Error::BadRequest(m), Some(prefix)) => format!("{prefix}: {m}"),
                _ => err.to_string(),
            };
            json!({ "error_code": err.code(), "message": message })
        }
        ErrorStyle::SuccessFlag { message } => {
            json!({ "success": false, "message": message, "error": err.to_string() })
        }
    };
    let mut resp = json_response(status, &body);
    if let Error::RateLimited { retry_after_secs } | Error::TooManyJobs { retry_after_secs, .. } = err {
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from(*retry_after_secs));
    }
    resp
}

/// 404 for paths no function serves (used by `exportctl serve`).
pub fn not_found(path: &str) -> Response<Body> {
    error_response(
        &Error::NotFound(format!("no route for {}", super::sanitize(path))),
        &ErrorStyle::plain(),
    )
}
