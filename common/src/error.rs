//! The one error type of the project and its classification.
//!
//! Every failure is one of these variants; [`crate::http::error_response`] is the single
//! place that turns it into an HTTP response. Client-facing text is always the
//! variant's own message (written for the client); causes are only logged.

use std::error::Error as StdError;

type Cause = Box<dyn StdError + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed: unknown parameter, bad value, bad date range.
    #[error("{0}")]
    BadRequest(String),
    /// No credentials, or credentials that cannot be verified.
    #[error("{0}")]
    Unauthorized(String),
    /// A credential other than the API token (an emailed download link) that is
    /// refused; `code` is the documented error code (`invalid_link`, `link_expired`).
    #[error("{message}")]
    Denied { code: &'static str, message: String },
    /// Valid credentials that do not allow this request.
    #[error("{0}")]
    Forbidden(String),
    /// Too many requests; retry after the given number of seconds.
    #[error("Too many export requests; retry in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the state of what it names (a job still running, an
    /// idempotency key used for another request). `code` is the documented error code.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The path exists but does not serve this method; `allow` lists the ones it
    /// does (the `Allow` header of the 405).
    #[error("{method} is not allowed on this path; allowed: {allow}")]
    MethodNotAllowed { method: String, allow: &'static str },
    /// What the request names existed but is gone for good (an expired file).
    #[error("{0}")]
    Gone(String),
    /// The caller already has as many queued or running jobs as allowed.
    #[error("Too many export jobs queued or running ({max}); retry in {retry_after_secs} seconds")]
    TooManyJobs { max: u32, retry_after_secs: u64 },
    /// The request exceeds a transport limit: its request line (414), its headers
    /// (431) or its body (413). The limits mirror API Gateway HTTP API's.
    #[error("{message}")]
    TooLarge { status: u16, message: String },
    /// A stored item does not match its model. Names the item's key so an operator
    /// can find it; never carries item contents.
    #[error("stored item {key} is malformed: {reason}")]
    MalformedItem { key: String, reason: String },
    /// A dependency failed (DynamoDB, S3, encoder). `what` is a short, safe
    /// description shown to the client ("database error"); `source` is logged only.
    #[error("{what}")]
    Internal {
        what: &'static str,
        #[source]
        source: Cause,
    },
}

impl Error {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }

    pub fn uri_too_long(message: impl Into<String>) -> Self {
        Self::TooLarge {
            status: 414,
            message: message.into(),
        }
    }

    pub fn headers_too_large(message: impl Into<String>) -> Self {
        Self::TooLarge {
            status: 431,
            message: message.into(),
        }
    }

    pub fn body_too_large(message: impl Into<String>) -> Self {
        Self::TooLarge {
            status: 413,
            message: message.into(),
        }
    }

    pub fn internal(what: &'static str, source: impl Into<Cause>) -> Self {
        Self::Internal {
            what,
            source: source.into(),
        }
    }

    /// Wraps an AWS SDK DynamoDB failure.
    pub fn database(source: impl Into<Cause>) -> Self {
        Self::internal("database error", source)
    }

    pub fn denied(code: &'static str, message: impl Into<String>) -> Self {
        Self::Denied {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    /// Wraps an AWS SDK SQS failure.
    pub fn queue(source: impl Into<Cause>) -> Self {
        Self::internal("queue error", source)
    }

    /// Wraps an AWS SDK S3 failure.
    pub fn storage(source: impl Into<Cause>) -> Self {
        Self::internal("storage error", source)
    }

    pub fn http_status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::Unauthorized(_) | Self::Denied { .. } => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::Conflict { .. } => 409,
            Self::Gone(_) => 410,
            Self::TooManyJobs { .. } => 429,
            Self::TooLarge { status, .. } => *status,
            Self::RateLimited { .. } => 429,
            Self::MalformedItem { .. } | Self::Internal { .. } => 500,
        }
    }

    /// The machine-readable code of the `{error_code, message}` error shape.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "invalid_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Conflict { code, .. } | Self::Denied { code, .. } => code,
            Self::Gone(_) => "file_gone",
            Self::TooManyJobs { .. } => "too_many_jobs",
            Self::TooLarge { .. } => "request_too_large",
            Self::RateLimited { .. } => "rate_limited",
            Self::MalformedItem { .. } | Self::Internal { .. } => "export_failed",
        }
    }

    pub fn is_server_error(&self) -> bool {
        self.http_status() >= 500
    }

    /// The full cause chain, for logs only.
    pub fn cause_chain(&self) -> String {
        let mut out = self.to_string();
        let mut next = self.source();
        while let Some(cause) = next {
            out.push_str(": ");
            out.push_str(&cause.to_string());
            next = cause.source();
        }
        out
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
