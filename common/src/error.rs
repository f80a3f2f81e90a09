//! The one error type of the project and its classification.
//!
//! Every failure is one of these variants; [`crate::http::error_response`] is the single
//! place that turns it into an HTTP response. Client-facing text is always the
//! variant's own message (written for the client); causes are only logged.

use std::error::Error as StdError;

type Cause = Box<dyn StdError + Send + Sync + 'static>;

/// The machine-readable `error_code` of the `{error_code, message}` shape, of a failed
/// job's record and of a failed scale step. openapi.yaml's `ErrorCode` lists the ones
/// the API answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed (400).
    InvalidRequest,
    /// No credentials, or credentials that cannot be verified (401).
    Unauthorized,
    /// Valid credentials that do not allow this request (403).
    Forbidden,
    /// What the request names does not exist, or is not the caller's (404).
    NotFound,
    /// The path does not serve this method (405).
    MethodNotAllowed,
    /// The export's file expired (410).
    FileGone,
    /// The caller has as many queued or running jobs as allowed (429).
    TooManyJobs,
    /// Too many export requests (429).
    RateLimited,
    /// A request line, headers or body over the transport limits (413, 414, 431).
    RequestTooLarge,
    /// A dependency or a stored item failed the export (500).
    ExportFailed,
    /// An emailed download link that is not valid (401).
    InvalidLink,
    /// An emailed download link past its expiry (401).
    LinkExpired,
    /// An emailed download link whose owner's rights changed (401).
    LinkRevoked,
    /// An `Idempotency-Key` used before for another request (409).
    IdempotencyKeyReused,
    /// The job has not finished yet (409).
    JobNotReady,
    /// The job finished without a file (409).
    JobNotSucceeded,
    /// The job is final and cannot be cancelled (409).
    JobFinished,
    /// The job was cancelled or taken over by another worker.
    JobCancelled,
    /// A scale step names a job that is not an export at scale.
    JobNotAtScale,
    /// An incremental-only operation on a schedule that is not incremental (409).
    NotIncremental,
    /// The caller has as many schedules as allowed (409).
    TooManySchedules,
    /// Too many runs asked of one schedule at once (409).
    TooManyRuns,
    /// The schedule is being changed by another request (409).
    ScheduleBusy,
    /// The owner's rights no longer allow this work.
    OwnerAccessChanged,
    /// A scale step whose data was exported already.
    AlreadyExported,
    /// A native export's data file is not the one its manifest names.
    DataFileMismatch,
    /// A converted part is not the one the step expected.
    PartMismatch,
    /// A part the assembly needs is missing.
    PartMissing,
    /// The export is over a format's limit.
    ExportTooLarge,
    /// The worker stopped unexpectedly too many times.
    WorkerLost,
}

impl ErrorCode {
    pub const ALL: &'static [ErrorCode] = &[
        Self::InvalidRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::FileGone,
        Self::TooManyJobs,
        Self::RateLimited,
        Self::RequestTooLarge,
        Self::ExportFailed,
        Self::InvalidLink,
        Self::LinkExpired,
        Self::LinkRevoked,
        Self::IdempotencyKeyReused,
        Self::JobNotReady,
        Self::JobNotSucceeded,
        Self::JobFinished,
        Self::JobCancelled,
        Self::JobNotAtScale,
        Self::NotIncremental,
        Self::TooManySchedules,
        Self::TooManyRuns,
        Self::ScheduleBusy,
        Self::OwnerAccessChanged,
        Self::AlreadyExported,
        Self::DataFileMismatch,
        Self::PartMismatch,
        Self::PartMissing,
        Self::ExportTooLarge,
        Self::WorkerLost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::FileGone => "file_gone",
            Self::TooManyJobs => "too_many_jobs",
            Self::RateLimited => "rate_limited",
            Self::RequestTooLarge => "request_too_large",
            Self::ExportFailed => "export_failed",
            Self::InvalidLink => "invalid_link",
            Self::LinkExpired => "link_expired",
            Self::LinkRevoked => "link_revoked",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::JobNotReady => "job_not_ready",
            Self::JobNotSucceeded => "job_not_succeeded",
            Self::JobFinished => "job_finished",
            Self::JobCancelled => "job_cancelled",
            Self::JobNotAtScale => "job_not_at_scale",
            Self::NotIncremental => "not_incremental",
            Self::TooManySchedules => "too_many_schedules",
            Self::TooManyRuns => "too_many_runs",
            Self::ScheduleBusy => "schedule_busy",
            Self::OwnerAccessChanged => "owner_access_changed",
            Self::AlreadyExported => "already_exported",
            Self::DataFileMismatch => "data_file_mismatch",
            Self::PartMismatch => "part_mismatch",
            Self::PartMissing => "part_missing",
            Self::ExportTooLarge => "export_too_large",
            Self::WorkerLost => "worker_lost",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// So that a code compares with the text a client or a record sees.
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

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
    Denied { code: ErrorCode, message: String },
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
    Conflict { code: ErrorCode, message: String },
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

    pub fn denied(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Denied {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
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
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::InvalidRequest,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            Self::Conflict { code, .. } | Self::Denied { code, .. } => *code,
            Self::Gone(_) => ErrorCode::FileGone,
            Self::TooManyJobs { .. } => ErrorCode::TooManyJobs,
            Self::TooLarge { .. } => ErrorCode::RequestTooLarge,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::MalformedItem { .. } | Self::Internal { .. } => ErrorCode::ExportFailed,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_snake_case_words() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(text.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{text}");
            assert_eq!(serde_json::to_string(code).unwrap(), format!("\"{text}\""));
        }
    }
}
