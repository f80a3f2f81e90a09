//! The single mapping from [`Error`] to an HTTP response, in the shape a route
//! documents. Client text is the error's own (safe) message; the cause chain of a
//! 5xx goes to the log only.

use lambda_http::{
    Body, Response,
    http::{HeaderValue, Method, StatusCode, header::ALLOW},
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
    if let Error::MethodNotAllowed { allow, .. } = err {
        resp.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    }
    resp
}

/// A request whose path a function serves but not with its method: `405` with
/// `Allow` in the route's error shape, and for `OPTIONS` `204` with `Allow` (with a
/// CORS configuration, API Gateway adds its CORS headers to this answer of a
/// preflight that an `ANY` route brought here). A method's name is echoed only when
/// it is one of HTTP's.
pub fn wrong_method(method: &Method, allow: &'static str, style: &ErrorStyle) -> Response<Body> {
    if method == Method::OPTIONS {
        let mut resp = Response::new(Body::Empty);
        *resp.status_mut() = StatusCode::NO_CONTENT;
        resp.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
        return resp;
    }
    let known = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::CONNECT,
        Method::TRACE,
        Method::PATCH,
    ];
    let name = if known.contains(method) {
        method.as_str().to_string()
    } else {
        "this method".to_string()
    };
    error_response(&Error::MethodNotAllowed { method: name, allow }, style)
}

/// 404 for paths no function serves (used by `exportctl serve`).
pub fn not_found(path: &str) -> Response<Body> {
    error_response(
        &Error::NotFound(format!("no route for {}", super::sanitize(path))),
        &ErrorStyle::plain(),
    )
}
