//! Export metrics in CloudWatch's embedded metric format (EMF): one JSON line per
//! finished export on stdout, which Lambda sends to CloudWatch Logs, where the
//! metrics are extracted without any API call from the function.
//!
//! Namespace `ChatExport`; dimensions `kind`, `format`, `outcome`, `trigger`
//! (`sync`, `job`); metrics `Exports` (count), `Rows`, `Bytes`, `DurationMs`,
//! `QueueWaitMs` (jobs: from creation to the worker's claim); and, for a failure,
//! `Errors` by `error_code`; and one line per job the sweeper sent to the queue
//! again (`Requeued` by `reason`, [`requeued_document`]). docs/operations.md ("Metrics")
//! lists them.
//!
//! The format is a documented JSON shape; a small writer here is simpler than a
//! `metrics` facade recorder for one line per export.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub const NAMESPACE: &str = "ChatExport";

/// How an export ended: the `outcome` dimension.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Outcome {
    #[default]
    Succeeded,
    Failed,
    Cancelled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// What ran the export: the `trigger` dimension (a request, or the worker).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ran {
    #[default]
    Sync,
    Job,
}

impl Ran {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Job => "job",
        }
    }
}

/// One finished export (or export attempt that ran).
#[derive(Clone, Debug, Default)]
pub struct ExportMetric<'a> {
    pub kind: &'a str,
    pub format: &'a str,
    pub outcome: Outcome,
    pub trigger: Ran,
    pub rows: u64,
    pub bytes: u64,
    pub duration_ms: u64,
    pub queue_wait_ms: Option<u64>,
    pub error_code: Option<&'a str>,
    /// A request id or job id, to find the export's other log lines (not a dimension).
    pub id: &'a str,
}

/// The EMF document of a metric.
pub fn document(m: &ExportMetric<'_>, at: DateTime<Utc>) -> Value {
    let mut metrics = vec![
        json!({"Name": "Exports", "Unit": "Count"}),
        json!({"Name": "Rows", "Unit": "Count"}),
        json!({"Name": "Bytes", "Unit": "Bytes"}),
        json!({"Name": "DurationMs", "Unit": "Milliseconds"}),
    ];
    if m.queue_wait_ms.is_some() {
        metrics.push(json!({"Name": "QueueWaitMs", "Unit": "Milliseconds"}));
    }
    let mut directives = vec![json!({
        "Namespace": NAMESPACE,
        "Dimensions": [["kind", "format", "outcome", "trigger"], ["trigger"]],
        "Metrics": metrics,
    })];
    if m.error_code.is_some() {
        directives.push(json!({
            "Namespace": NAMESPACE,
            "Dimensions": [["error_code"]],
            "Metrics": [{"Name": "Errors", "Unit": "Count"}],
        }));
    }
    let mut doc = json!({
        "_aws": {"Timestamp": at.timestamp_millis(), "CloudWatchMetrics": directives},
        "kind": m.kind,
        "format": m.format,
        "outcome": m.outcome.as_str(),
        "trigger": m.trigger.as_str(),
        "id": m.id,
        "Exports": 1,
        "Rows": m.rows,
        "Bytes": m.bytes,
        "DurationMs": m.duration_ms,
    });
    if let Some(wait) = m.queue_wait_ms {
        doc["QueueWaitMs"] = json!(wait);
    }
    if let Some(code) = m.error_code {
        doc["error_code"] = json!(code);
        doc["Errors"] = json!(1);
    }
    doc
}

/// The EMF document of one job the sweeper sent to the queue again: `Requeued`
/// (count) by (`reason`) and (`trigger`: `job`), beside the finished jobs'
/// `QueueWaitMs`; `WaitedMs` is how long the job had waited since it was created.
pub fn requeued_document(job_id: &str, kind: &str, reason: &str, waited_ms: u64, at: DateTime<Utc>) -> Value {
    json!({
        "_aws": {"Timestamp": at.timestamp_millis(), "CloudWatchMetrics": [{
            "Namespace": NAMESPACE,
            "Dimensions": [["reason"], ["trigger"]],
            "Metrics": [
                {"Name": "Requeued", "Unit": "Count"},
                {"Name": "WaitedMs", "Unit": "Milliseconds"},
            ],
        }]},
        "reason": reason,
        "trigger": Ran::Job.as_str(),
        "kind": kind,
        "id": job_id,
        "Requeued": 1,
        "WaitedMs": waited_ms,
    })
}

/// Writes the `Requeued` line of a job sent to the queue again ([`requeued_document`]).
pub fn emit_requeued(job_id: &str, kind: &str, reason: &str, waited_ms: u64, at: DateTime<Utc>) {
    write_line(requeued_document(job_id, kind, reason, waited_ms, at).to_string());
}

/// The EMF document of one batch of stream records the indexer handled:
/// `IndexFixed`, the items it had to give derived attributes or `written_at` (a
/// writer that does not stamp its items shows up here).
pub fn indexed_document(fixed: u64, at: DateTime<Utc>) -> Value {
    json!({
        "_aws": {"Timestamp": at.timestamp_millis(), "CloudWatchMetrics": [{
            "Namespace": NAMESPACE,
            "Dimensions": [[]],
            "Metrics": [{"Name": "IndexFixed", "Unit": "Count"}],
        }]},
        "IndexFixed": fixed,
    })
}

/// Writes the `IndexFixed` line of a batch of stream records ([`indexed_document`]).
pub fn emit_indexed(fixed: u64, at: DateTime<Utc>) {
    write_line(indexed_document(fixed, at).to_string());
}

static CAPTURE: Mutex<Option<Vec<String>>> = Mutex::new(None);

/// Where metric lines go: Lambda's stdout (which CloudWatch reads), stderr (a command
/// line tool, whose stdout is its result), or nowhere (a benchmark).
const TO_STDOUT: u8 = 0;
const TO_STDERR: u8 = 1;
const NOWHERE: u8 = 2;

static DESTINATION: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(TO_STDOUT);

/// Stops writing metric lines at all (a benchmark, whose own work they would be).
pub fn silence() {
    DESTINATION.store(NOWHERE, std::sync::atomic::Ordering::Relaxed);
}

/// Writes metric lines to stderr instead of stdout: `exportctl`, whose stdout
/// carries only its result. A silenced process stays silent.
pub fn to_stderr() {
    let _ = DESTINATION.compare_exchange(
        TO_STDOUT,
        TO_STDERR,
        std::sync::atomic::Ordering::Relaxed,
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// Writes the metric's EMF line (and to the capture, when one is on).
pub fn emit(m: &ExportMetric<'_>, at: DateTime<Utc>) {
    write_line(document(m, at).to_string());
}

fn write_line(line: String) {
    if let Some(lines) = CAPTURE.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        lines.push(line.clone());
    }
    match DESTINATION.load(std::sync::atomic::Ordering::Relaxed) {
        TO_STDOUT => println!("{line}"),
        TO_STDERR => crate::logging::stderr_line(&line),
        _ => {}
    }
}

/// Starts keeping a copy of every emitted line (tests read them back).
pub fn capture() {
    CAPTURE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(Vec::new);
}

/// The lines emitted since [`capture`].
pub fn captured() -> Vec<String> {
    CAPTURE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_default()
}
