//! exportctl's command line: every subcommand, its flags and, at the end of its
//! `--help`, real examples. Configuration comes from the environment (local.env;
//! docs/configuration.md).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::bench::{BenchCompression, BenchExport, BenchFormat, SinkKind};

/// What ends `exportctl --help`.
const MAIN_EXAMPLES: &str = "\
Examples:
  set -a; . ./local.env; set +a       # the local stack's configuration
  exportctl setup && exportctl seed   # tables, bucket and queue; then sample data
  exportctl --json check-index | jq 'map_values(.wrong)'   # by table name

Output: stdout carries only the result (a short summary, or one JSON document with
--json); logs, notes and progress bars go to stderr. Progress bars draw only when
stderr is a terminal (not in a pipe, under CI, or with --quiet).
Exit codes: 0 success; 1 a finding (check-index) or a failure while running;
2 a usage, configuration or input error (nothing was done).";

#[derive(Parser)]
#[command(
    name = "exportctl",
    version,
    about = "chat-export's local and operations tool",
    after_help = MAIN_EXAMPLES
)]
pub struct Cli {
    /// Print the result as exactly one JSON document on stdout (errors too, as
    /// {"error": {"code", "message"}}).
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars and no notes on stderr; logs at warn unless RUST_LOG says
    /// otherwise.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create the tables (with their indexes), the export bucket and the jobs queue
    /// (with its dead-letter queue); idempotent.
    #[command(after_help = "\
Examples:
  exportctl setup
  exportctl --json setup | jq .tables_created")]
    Setup,
    /// Write deterministic synthetic data for all three exports.
    #[command(after_help = "\
Examples:
  exportctl seed                                   # 200 sessions, 500 leads, 1000 chat messages
  exportctl seed --sessions 300 --leads 500 --chats 2000 --seed 1   # what make demo loads")]
    Seed {
        #[arg(long, default_value_t = 200)]
        sessions: usize,
        #[arg(long, default_value_t = 500)]
        leads: usize,
        #[arg(long, default_value_t = 1000)]
        chats: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Load records from a JSON Lines file (docs/load-format.md); validates the whole
    /// file first, and writes nothing when a line is invalid.
    #[command(after_help = "\
Examples:
  exportctl load docs/sample.jsonl
  exportctl --json load export.jsonl | jq .records")]
    Load { file: PathBuf },
    /// Give the items already in the data tables the derived key attributes the
    /// exports read by (the indexer's derivation; docs/data-model.md). Resumable (a
    /// checkpoint per segment in the jobs table), idempotent, paced by consumed
    /// capacity.
    #[command(after_help = "\
Examples:
  exportctl backfill                               # all three tables, 4 segments, unpaced
  exportctl backfill --table leads --segments 8 --rate 200")]
    Backfill {
        /// session_messages, leads or chat_messages (or a real table name); all three
        /// when absent.
        #[arg(long)]
        table: Option<String>,
        /// Parallel Scan segments.
        #[arg(long, default_value_t = 4)]
        segments: u32,
        /// At most this many capacity units per second (reads and writes); unpaced
        /// when absent.
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Count the items missing from, or stale in, each derived index (a Scan that
    /// compares each item's derived attributes with the derivation). Exits 1 when
    /// any are found, and names up to 20 keys per table (never contents).
    #[command(after_help = "\
Examples:
  exportctl check-index || exportctl backfill
  exportctl --json check-index --table leads | jq '.[].keys'")]
    CheckIndex {
        /// session_messages, leads or chat_messages (or a real table name); all three
        /// when absent.
        #[arg(long)]
        table: Option<String>,
        #[arg(long, default_value_t = 4)]
        segments: u32,
    },
    /// Mint a JWT signed with JWT_SECRET, for local use. Prints the token alone.
    #[command(after_help = "\
Examples:
  ADMIN=$(exportctl token --role admin --sub admin-1)
  exportctl token --role user --sub u-1 --client-id client-alpha --company-id comp-acme --email u@example.com")]
    Token {
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long)]
        sub: String,
        #[arg(long)]
        client_id: Option<String>,
        #[arg(long)]
        company_id: Option<String>,
        /// The `email` claim: where this user may have exports emailed.
        #[arg(long)]
        email: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Serve the API and the console locally, running the same handlers as the
    /// Lambda functions, and the export worker on the local jobs queue. Prints where
    /// it serves once it listens, then runs until SIGTERM or Ctrl-C.
    #[command(after_help = "\
Examples:
  exportctl serve                                  # http://127.0.0.1:$API_PORT, worker and scheduler inside
  exportctl serve --port 3400 --no-worker --tick-seconds 0")]
    Serve {
        #[arg(long, env = "API_PORT", default_value_t = 3000)]
        port: u16,
        /// Do not run the worker (jobs stay queued until `exportctl worker` runs).
        #[arg(long)]
        no_worker: bool,
        /// Run the scheduler's tick this often (0: never; `exportctl schedules tick`
        /// runs one).
        #[arg(long, env = "SCHEDULER_TICK_SECONDS", default_value_t = 5)]
        tick_seconds: u64,
        /// Follow the DynamoDB Streams of the session-messages, leads and chat-messages
        /// tables (turning them on if off) and give each batch to the indexer, as the
        /// event source mapping does deployed. Needs a DynamoDB with streams: locally,
        /// point AWS_ENDPOINT_URL_DYNAMODB and AWS_ENDPOINT_URL_DYNAMODB_STREAMS at
        /// STREAMS_ENDPOINT (moto_server); dynalite has none.
        #[arg(long)]
        streams: bool,
    },
    /// Run the export worker alone: consume the jobs queue and run each job, as the
    /// worker Lambda does. Prints the queue it polls, then runs until stopped.
    #[command(after_help = "\
Examples:
  exportctl worker
  RUST_LOG=info,common::jobs=debug exportctl worker")]
    Worker,
    /// Scheduled exports (docs/schedules.md).
    #[command(after_help = "\
Examples:
  exportctl schedules tick
  exportctl --json schedules tick --at 2026-01-05T09:00:00Z | jq .created")]
    Schedules {
        #[command(subcommand)]
        command: SchedulesCommand,
    },
    /// Benchmark the export engine with an in-process source (run in release).
    #[command(after_help = "\
Examples:
  cargo run --release --bin exportctl -- bench --export leads --format csv --rows 1000000
  exportctl --json bench --export chats --format parquet --compression snappy --rows 100000")]
    Bench {
        #[arg(long, value_enum, default_value = "sessions")]
        export: BenchExport,
        #[arg(long, value_enum, default_value = "csv")]
        format: BenchFormat,
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        #[arg(long, value_enum, default_value = "null")]
        sink: SinkKind,
        /// The export's `compression` option: gzip or zip around the file, or a Parquet
        /// file's codec (snappy, zstd). Default: the format's (none; zstd for parquet).
        #[arg(long, value_enum)]
        compression: Option<BenchCompression>,
    },
    /// Write a table in DynamoDB's export-to-S3 format (what ExportTableToPointInTime
    /// writes: manifests and gzip'd DynamoDB JSON data files) under
    /// `s3://BUCKET/PREFIX/AWSDynamoDB/<id>/`, from parallel Scan segments. Prints the
    /// manifest summary's s3:// URL (what `exportctl convert --manifest` takes).
    #[command(after_help = "\
Examples:
  exportctl native-export --table leads
  M=$(exportctl native-export --table chat_messages --items-per-file 50000 --segments 8)")]
    NativeExport {
        /// A logical name (leads, chat_messages, sessions, ...) or a real table name.
        #[arg(long)]
        table: String,
        #[arg(long, env = "EXPORT_BUCKET")]
        bucket: String,
        #[arg(long, default_value = "dynamodb-exports")]
        prefix: String,
        /// Items per data file at most.
        #[arg(long, default_value_t = 100_000)]
        items_per_file: u64,
        /// Parallel Scan segments (each writes its own data files).
        #[arg(long, default_value_t = 4)]
        segments: u32,
    },
    /// Run an export at scale from a DynamoDB export (docs/scale.md), as the state
    /// machine does in AWS: start the job, convert every data file (concurrently,
    /// in-process: the functions the export-scale Lambda calls) and assemble the
    /// parts into one file. Prints the finished job.
    #[command(after_help = "\
Examples:
  exportctl convert --manifest \"$M\" --kind leads --format csv --param companyId=comp-acme
  exportctl --json convert --manifest \"$M\" --kind chats --params '{\"client_id\": \"client-alpha\"}' | jq .job.download_url")]
    Convert {
        /// s3://bucket/.../manifest-summary.json
        #[arg(long)]
        manifest: String,
        /// leads or chats.
        #[arg(long)]
        kind: String,
        /// leads: csv, json, xlsx; chats: csv.
        #[arg(long)]
        format: Option<String>,
        /// Names the export: its job's owner is `operator-<name>`.
        #[arg(long, default_value = "local")]
        name: String,
        /// An export parameter, as the kind's route takes it (repeatable): --param companyId=comp-acme
        #[arg(long = "param", value_name = "KEY=VALUE")]
        param: Vec<String>,
        /// The export parameters as a JSON object (what a job request's `params` holds).
        #[arg(long = "params", value_name = "JSON")]
        params: Option<String>,
        /// Data files converted at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// Export `--rows` records loaded into the local stack (bench tables, loaded
    /// once) as a job: through the job API's handler and the worker, against the
    /// DynamoDB and S3 emulators. Reports wall time and this process's CPU per row.
    #[command(after_help = "\
Examples:
  cargo run --release --bin exportctl -- bench-e2e --export chats --format json --rows 100000
  exportctl bench-e2e --export leads --rows 20000 --read-only")]
    BenchE2e {
        #[arg(long, value_enum, default_value = "chats")]
        export: BenchExport,
        #[arg(long, value_enum, default_value = "json")]
        format: BenchFormat,
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        /// Only read the records (fetch and decode the pages, then drop them): the
        /// read side's share of the CPU per row.
        #[arg(long)]
        read_only: bool,
    },
    /// Print a shell completion script for exportctl.
    #[command(after_help = "\
Examples:
  source <(exportctl completions bash)
  exportctl completions zsh > \"${fpath[1]}/_exportctl\"
  exportctl completions fish > ~/.config/fish/completions/exportctl.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
pub enum SchedulesCommand {
    /// Run one scheduler tick, as the scheduler Lambda does every minute: start the
    /// runs due at `--at` (default now) as export jobs. Exits 1 when a schedule
    /// could not be handled.
    #[command(after_help = "\
Examples:
  exportctl schedules tick
  exportctl --json schedules tick --at 2026-01-05T09:00:00Z | jq .created")]
    Tick {
        /// The instant to tick at (RFC 3339), to drive time deterministically.
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    Admin,
    User,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    /// Every command and subcommand, by its path (`schedules tick`).
    fn all(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands() {
            let path = format!("{path} {}", sub.get_name()).trim().to_string();
            out.push((path.clone(), sub.clone()));
            all(sub, &path, out);
        }
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Each subcommand's --help ends with examples that run exportctl itself.
    #[test]
    fn every_help_ends_with_examples() {
        let mut commands = Vec::new();
        all(&Cli::command(), "", &mut commands);
        assert!(commands.len() >= 15, "{}", commands.len());
        for (path, mut cmd) in commands {
            let help = cmd.render_help().to_string();
            let tail = help
                .rsplit_once("Examples:")
                .map(|(_, t)| t)
                .unwrap_or_else(|| panic!("`exportctl {path} --help` has no examples:\n{help}"));
            let examples: Vec<&str> = tail.lines().filter(|l| !l.trim().is_empty()).collect();
            assert!(!examples.is_empty(), "{path}");
            let leaf = path.rsplit(' ').next().unwrap_or_default();
            assert!(
                examples.iter().any(|l| l.contains("exportctl") && l.contains(leaf)),
                "`exportctl {path} --help`'s examples do not run it: {examples:?}"
            );
        }
    }
}
