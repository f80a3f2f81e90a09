//! The export-at-scale function ([`common::scale`]): Step Functions invokes it with
//! one externally tagged event per step, and it answers the step's JSON:
//!
//! - `{"start": {"name", "export": {"kind", "format", "params"}, "manifest": "s3://.../manifest-summary.json"}}`
//!   -> `{"job_id", "bucket", "items_key", "files"}`
//! - `{"convert": {"job_id", "index", "data_file"}}` (each item of `items.json`)
//!   -> `{"index", "rows", "bytes"}`
//! - `{"assemble": {"job_id", "files"}}` -> `{"job_id", "rows", "bytes", "s3_key"}`
//! - `{"fail": {"job_id", "error", "cause"}}` -> `{"job_id", "status"}`
//!
//! A failure is answered as a Lambda error whose type is the error's code
//! (`invalid_request`, `export_failed`, `part_missing`, `job_cancelled`, ...), so the
//! state machine can retry what may pass on a retry and catch the rest.

use common::{
    AppContext,
    scale::{self, ScaleEvent},
};
use lambda_runtime::Diagnostic;
use serde_json::Value;

fn diagnostic(error_type: &str, message: String) -> Diagnostic {
    Diagnostic {
        error_type: error_type.to_string(),
        error_message: message,
    }
}

/// Handles one invocation. An event that is none of the four is refused
/// (`invalid_request`); nothing runs.
pub async fn handle(ctx: &AppContext, event: Value) -> Result<Value, Diagnostic> {
    let event: ScaleEvent = serde_json::from_value(event).map_err(|e| {
        diagnostic(
            "invalid_request",
            format!("expected {{\"start\"|\"convert\"|\"assemble\"|\"fail\": {{...}}}}: {e}"),
        )
    })?;
    // Boxed: the converter's future is deep.
    Box::pin(scale::handle(ctx, event)).await.map_err(|e| {
        tracing::error!(error = %e.cause_chain(), code = e.code().as_str(), "export-scale step failed");
        diagnostic(e.code().as_str(), e.to_string())
    })
}
