//! Structured JSON logs. One line per request is written by [`crate::http::pipeline`]; nothing
//! here ever logs tokens, secrets or message contents.

use tracing_subscriber::{EnvFilter, fmt};

/// Installs a JSON subscriber honouring `RUST_LOG` (default `info`), writing to
/// stdout (Lambda sends it to CloudWatch Logs). Safe to call twice.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .try_init();
}

/// The same logs on stderr: for `exportctl`, whose stdout carries its output (tokens,
/// benchmark reports).
pub fn init_stderr() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .try_init();
}
