//! What exportctl prints, and how it exits. stdout carries only a command's result:
//! a short summary for people, or with `--json` exactly one JSON document. Logs,
//! metric lines, notes and progress bars go to stderr.
//!
//! Exit codes: 0 success; 1 a finding (`check-index` found unindexed items, a
//! tick could not handle a schedule) or a failure while running (an AWS call, an
//! export that failed); 2 a usage, configuration or input error (a bad flag, a
//! missing variable, an invalid file), when nothing was done.

use std::process::ExitCode;

use serde::Serialize;
use serde_json::{Value, json};

/// A command's result.
pub struct Report {
    /// What `--json` prints.
    pub json: Value,
    /// What people read: a line or a few.
    pub human: String,
    /// The command found something wrong (exit 1, the report still printed).
    pub finding: bool,
}

impl Report {
    /// A result read the same way by people and programs.
    pub fn new(json: impl Serialize, human: impl Into<String>) -> Self {
        Self {
            json: serde_json::to_value(json).unwrap_or(Value::Null),
            human: human.into(),
            finding: false,
        }
    }

    pub fn finding(self, finding: bool) -> Self {
        Self { finding, ..self }
    }
}

/// What a command ends with.
pub enum Done {
    /// A result to print.
    Report(Report),
    /// The command printed its result itself, when it was ready (`serve`, `worker`,
    /// which then run until stopped), or prints no document (`completions`).
    Printed,
}

/// Why a command failed, which decides its exit code.
#[derive(Debug)]
pub enum Failure {
    /// A bad flag or value, or an invalid input file: exit 2.
    Usage(String),
    /// A missing or invalid environment variable: exit 2.
    Config(String),
    /// It failed on the way (an AWS call, an export): exit 1.
    Failed(String),
}

impl Failure {
    fn code(&self) -> &'static str {
        match self {
            Self::Usage(_) => "usage",
            Self::Config(_) => "configuration",
            Self::Failed(_) => "failed",
        }
    }

    fn message(&self) -> &str {
        match self {
            Self::Usage(m) | Self::Config(m) | Self::Failed(m) => m,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::Config(_) => 2,
            Self::Failed(_) => 1,
        }
    }
}

impl From<common::config::ConfigError> for Failure {
    fn from(e: common::config::ConfigError) -> Self {
        Self::Config(e.to_string())
    }
}

/// A value the engine refused (a bad request) is a usage error; anything else failed on
/// the way. The message is the full cause chain: an operator reads it.
impl From<common::Error> for Failure {
    fn from(e: common::Error) -> Self {
        if matches!(e, common::Error::BadRequest(_)) {
            Self::Usage(e.cause_chain())
        } else {
            Self::Failed(e.cause_chain())
        }
    }
}

impl From<crate::load::LoadError> for Failure {
    fn from(e: crate::load::LoadError) -> Self {
        Self::Usage(e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self::Failed(e.to_string())
    }
}

/// Prints a result (one JSON document with `json`) and answers the exit code.
pub fn finish(result: Result<Done, Failure>, json: bool) -> ExitCode {
    match result {
        Ok(Done::Printed) => ExitCode::SUCCESS,
        Ok(Done::Report(report)) => {
            print(&report, json);
            if report.finding {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(failure) => fail(&failure, json),
    }
}

/// A result on stdout: its JSON document with `json`, else its summary. `serve` and
/// `worker` print theirs this way when they are ready.
pub fn print(report: &Report, json: bool) {
    if json {
        print_json(&report.json);
    } else if !report.human.is_empty() {
        stdout_line(report.human.trim_end());
    }
}

/// Says why on stderr (and, with `json`, as the one document on stdout) and answers
/// the exit code.
pub fn fail(failure: &Failure, json: bool) -> ExitCode {
    eprintln!("exportctl: {}", failure.message().trim_end());
    if json {
        print_json(&json!({"error": {"code": failure.code(), "message": failure.message()}}));
    }
    ExitCode::from(failure.exit_code())
}

/// One JSON document on one line of stdout.
pub fn print_json(value: &Value) {
    stdout_line(&serde_json::to_string(value).unwrap_or_else(|_| "null".into()));
}

/// A line of stdout, flushed. A reader that went away (`| head -1`) is not an error
/// of the command: what it did is done, and nobody is left to tell.
pub fn stdout_line(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_are_usage_or_failures_by_status() {
        let usage: Failure = common::Error::bad_request("--table: no").into();
        assert_eq!(usage.exit_code(), 2);
        let failed: Failure = common::Error::internal("database error", "unreachable").into();
        assert_eq!(failed.exit_code(), 1);
        assert_eq!(Failure::Config("JWT_SECRET must be set".into()).exit_code(), 2);
    }
}
