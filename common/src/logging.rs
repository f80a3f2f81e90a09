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

/// The same logs on stderr, at `default_level` unless `RUST_LOG` says otherwise: for
/// `exportctl`, whose stdout carries only its result. Every line goes through
/// [`stderr_line`]'s writer, so a progress bar can step aside for it.
pub fn init_stderr(default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = fmt()
        .json()
        .with_writer(|| StderrLine(Vec::new()))
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .try_init();
}

type LineWriter = Box<dyn Fn(&[u8]) + Send + Sync>;

static STDERR_WRITER: std::sync::OnceLock<LineWriter> = std::sync::OnceLock::new();

/// Sends every later stderr line (logs, metric lines, notes) through `write`, once:
/// exportctl's progress bars clear themselves around each line.
pub fn set_stderr_writer(write: impl Fn(&[u8]) + Send + Sync + 'static) {
    let _ = STDERR_WRITER.set(Box::new(write));
}

/// Writes one line (a newline is added) to stderr, through the writer set by
/// [`set_stderr_writer`] when there is one.
pub fn stderr_line(line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    write_stderr(&bytes);
}

fn write_stderr(bytes: &[u8]) {
    use std::io::Write as _;
    match STDERR_WRITER.get() {
        Some(write) => write(bytes),
        None => {
            let _ = std::io::stderr().lock().write_all(bytes);
        }
    }
}

/// One log line, gathered, then written in one piece when dropped.
struct StderrLine(Vec<u8>);

impl std::io::Write for StderrLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for StderrLine {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            write_stderr(&self.0);
        }
    }
}
