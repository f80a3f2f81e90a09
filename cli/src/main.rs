//! exportctl: create tables, seed and load data, mint tokens, serve the API locally,
//! benchmark the engine. Configuration comes from the environment (local.env).

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use common::backfill::Mode;
use common::{
    AppContext,
    auth::{self, Claims, Role},
    config::Config,
    schema, synth,
};

#[derive(Parser)]
#[command(name = "exportctl", version, about = "chat-export local and operations tool")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the tables (with their indexes), the export bucket and the jobs queue
    /// (with its dead-letter queue); idempotent.
    Setup,
    /// Write deterministic synthetic data for all three exports.
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
    /// Load records from a JSON Lines file (docs/load-format.md); validates the whole file first.
    Load { file: PathBuf },
    /// Give the items already in the data tables the derived key attributes the
    /// exports read by (the indexer's derivation; docs/data-model.md). Resumable (a
    /// checkpoint per segment in the jobs table), idempotent, paced by consumed
    /// capacity. Prints the counts as JSON.
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
    /// any are found, and prints the counts (with up to 20 keys) as JSON.
    CheckIndex {
        /// session_messages, leads or chat_messages (or a real table name); all three
        /// when absent.
        #[arg(long)]
        table: Option<String>,
        #[arg(long, default_value_t = 4)]
        segments: u32,
    },
    /// Mint a JWT signed with JWT_SECRET, for local use.
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
    /// Serve the API locally, running the same handlers as the Lambda functions, and
    /// the export worker on the local jobs queue.
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
    /// worker Lambda does.
    Worker,
    /// Scheduled exports (docs/schedules.md).
    Schedules {
        #[command(subcommand)]
        command: SchedulesCommand,
    },
    /// Benchmark the export engine with an in-process source (run in release).
    Bench {
        #[arg(long, value_enum, default_value = "sessions")]
        export: exportctl::bench::BenchExport,
        #[arg(long, value_enum, default_value = "csv")]
        format: exportctl::bench::BenchFormat,
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        #[arg(long, value_enum, default_value = "null")]
        sink: exportctl::bench::SinkKind,
        /// The export's `compression` option: gzip or zip around the file, or a Parquet
        /// file's codec (snappy, zstd). Default: the format's (none; zstd for parquet).
        #[arg(long, value_enum)]
        compression: Option<exportctl::bench::BenchCompression>,
    },
    /// Write a table in DynamoDB's export-to-S3 format (what ExportTableToPointInTime
    /// writes: manifests and gzip'd DynamoDB JSON data files) under
    /// s3://BUCKET/PREFIX/AWSDynamoDB/<id>/, from parallel Scan segments. Prints the
    /// manifest summary's s3:// URL (what `exportctl convert --manifest` takes).
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
    /// Run an export at scale from a DynamoDB export (README, "Exports at scale"), as
    /// the state machine does in AWS: start the job, convert every data file
    /// (concurrently, in-process: the functions the export-scale Lambda calls) and
    /// assemble the parts into one file. Prints the finished job as JSON.
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
        /// Names the export: its job's owner is operator-<name>.
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
    BenchE2e {
        #[arg(long, value_enum, default_value = "chats")]
        export: exportctl::bench::BenchExport,
        #[arg(long, value_enum, default_value = "json")]
        format: exportctl::bench::BenchFormat,
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        /// Only read the records (fetch and decode the pages, then drop them): the
        /// read side's share of the CPU per row.
        #[arg(long)]
        read_only: bool,
    },
}

#[derive(Subcommand)]
enum SchedulesCommand {
    /// Run one scheduler tick, as the scheduler Lambda does every minute: start the
    /// runs due at `--at` (default now) as export jobs. Prints what it did as JSON.
    Tick {
        /// The instant to tick at (RFC 3339), to drive time deterministically.
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    Admin,
    User,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// mimalloc instead of glibc's malloc: the engine allocates per cell, and glibc's
/// malloc and free were about a quarter of a CSV or JSON export's time (README,
/// Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    common::alloc::tune();
    let cli = Cli::parse();
    common::logging::init_stderr();
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("exportctl: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Turns true at SIGTERM or Ctrl-C: the worker stops receiving (its receive in
/// flight answered first), gives back what it holds, and the process exits.
fn stop_on_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(e) => {
                tracing::warn!(error = %e, "SIGTERM cannot be handled; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
                let _ = tx.send(true);
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("stopping: no new job is received");
        let _ = tx.send(true);
    });
    rx
}

/// The export worker on the jobs queue and the sweeper beside it, until `stop`; the
/// returned future ends when both have stopped.
fn spawn_worker(ctx: &AppContext, stop: &tokio::sync::watch::Receiver<bool>) -> impl Future<Output = ()> + use<> {
    let every = common::jobs::sweep::local_interval(ctx.config.jobs.requeue_secs);
    println!(
        "export worker polling {}; sweeping every {} s (jobs queued over {} s are sent again)",
        ctx.config.jobs.queue_url,
        every.as_secs(),
        ctx.config.jobs.requeue_secs
    );
    let poller = tokio::spawn(common::jobs::queue::poll(ctx.clone(), stop.clone()));
    let sweeper = tokio::spawn(common::jobs::sweep::sweep_every(ctx.clone(), every, stop.clone()));
    async move {
        let _ = poller.await;
        let _ = sweeper.await;
    }
}

/// The counts of a backfill or check, by table, as one JSON object.
fn report(counts: &[(String, common::backfill::Counts)]) -> serde_json::Value {
    counts
        .iter()
        .map(|(table, c)| (table.clone(), serde_json::to_value(c).unwrap_or_default()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn explain(e: common::Error) -> BoxError {
    e.cause_chain().into()
}

async fn run(command: Command) -> Result<(), BoxError> {
    match command {
        Command::Setup => {
            let ctx = AppContext::from_env().await?;
            let created = schema::create_tables(&ctx.aws.dynamodb, &ctx.config.tables)
                .await
                .map_err(explain)?;
            let bucket = schema::create_bucket(&ctx.aws.s3, &ctx.config.delivery.bucket)
                .await
                .map_err(explain)?;
            let visibility: u64 = std::env::var("SQS_VISIBILITY_SECONDS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(120);
            let queue = schema::create_queue(
                &ctx.aws.sqs,
                schema::queue_name(&ctx.config.jobs.queue_url),
                visibility,
                ctx.config.jobs.max_attempts,
            )
            .await
            .map_err(explain)?;
            println!("jobs queue ready: {queue}");
            println!(
                "tables ready ({} created{}), bucket {} {}",
                created.len(),
                if created.is_empty() {
                    String::new()
                } else {
                    format!(": {}", created.join(", "))
                },
                ctx.config.delivery.bucket,
                if bucket { "created" } else { "already there" }
            );
        }
        Command::Seed {
            sessions,
            leads,
            chats,
            seed,
        } => {
            let ctx = AppContext::from_env().await?;
            let mut total = 0;
            // Written in chunks so seeding millions of records stays in bounded memory.
            let all = synth::sessions(seed, sessions)
                .chain(synth::leads(seed, leads))
                .chain(synth::chat_messages(seed, chats));
            let mut chunk = Vec::with_capacity(5000);
            for record in all {
                chunk.push(record);
                if chunk.len() == 5000 {
                    total += common::load::write_records(
                        &ctx.aws.dynamodb,
                        &ctx.config.tables,
                        std::mem::take(&mut chunk),
                        ctx.clock.now(),
                    )
                    .await
                    .map_err(explain)?;
                }
            }
            total += common::load::write_records(&ctx.aws.dynamodb, &ctx.config.tables, chunk, ctx.clock.now())
                .await
                .map_err(explain)?;
            println!(
                "seeded {total} records ({sessions} sessions with messages, {leads} leads, {chats} chat messages; seed {seed})"
            );
        }
        Command::Load { file } => {
            let path = file.display().to_string();
            let reader =
                std::io::BufReader::new(std::fs::File::open(&file).map_err(|e| format!("could not open {path}: {e}"))?);
            let loaded = exportctl::load::parse(reader, &path)?;
            for note in loaded.notes.iter().take(20) {
                eprintln!("note: {note}");
            }
            if loaded.notes.len() > 20 {
                eprintln!("note: ... and {} more", loaded.notes.len() - 20);
            }
            let ctx = AppContext::from_env().await?;
            let n = common::load::write_records(&ctx.aws.dynamodb, &ctx.config.tables, loaded.records, ctx.clock.now())
                .await
                .map_err(explain)?;
            println!("loaded {n} records from {path}");
        }
        Command::Backfill { table, segments, rate } => {
            let ctx = AppContext::from_env().await?;
            let counts = exportctl::backfill::run(&ctx, table.as_deref(), Mode::Fix, segments, rate)
                .await
                .map_err(explain)?;
            println!("{}", serde_json::to_string(&report(&counts))?);
        }
        Command::CheckIndex { table, segments } => {
            let ctx = AppContext::from_env().await?;
            let counts = exportctl::backfill::run(&ctx, table.as_deref(), Mode::Check, segments, None)
                .await
                .map_err(explain)?;
            println!("{}", serde_json::to_string(&report(&counts))?);
            if counts.iter().any(|(_, c)| c.wrong > 0 || c.failed > 0) {
                // A finding, not a failure of the command: exit 1 (2 is left to usage).
                use std::io::Write as _;
                let _ = std::io::stdout().flush();
                std::process::exit(1);
            }
        }
        Command::Token {
            role,
            sub,
            client_id,
            company_id,
            email,
            ttl,
        } => {
            let config = Config::from_env()?;
            let now = auth::now_secs();
            let claims = Claims {
                sub,
                role: match role {
                    RoleArg::Admin => Role::Admin,
                    RoleArg::User => Role::User,
                },
                client_id,
                company_id,
                email,
                exp: now + ttl,
                iat: Some(now),
                nbf: None,
                iss: config.jwt.issuer.clone(),
                aud: config.jwt.audience.clone(),
            };
            println!("{}", auth::mint(&config.jwt, &claims));
        }
        Command::Serve {
            port,
            no_worker,
            tick_seconds,
            streams,
        } => {
            let ctx = AppContext::from_env().await?;
            let stop = stop_on_signal();
            if streams {
                exportctl::streams::enable_streams(&ctx).await?;
                let follower = exportctl::streams::Follower::from_env(&ctx).await;
                tokio::spawn(exportctl::streams::follow(follower, std::time::Duration::from_secs(1)));
                println!("following the streams of the indexed tables every second");
            }
            let worker = (!no_worker).then(|| spawn_worker(&ctx, &stop));
            if tick_seconds > 0 {
                tokio::spawn(exportctl::serve::tick_every(ctx.clone(), tick_seconds));
                println!("scheduler ticking every {tick_seconds} s");
            }
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
            println!("serving on http://127.0.0.1:{port}");
            for (method, path) in exportctl::serve::ROUTES {
                println!("  {method} {path}");
            }
            let mut stopped = stop.clone();
            tokio::select! {
                served = exportctl::serve::serve(ctx, listener) => served?,
                _ = stopped.wait_for(|s| *s) => {}
            }
            if let Some(worker) = worker {
                worker.await;
            }
        }
        Command::BenchE2e {
            export,
            format,
            rows,
            read_only,
        } => {
            let ctx = AppContext::from_env().await?;
            let report = exportctl::bench::end_to_end(&ctx, export, format, rows, read_only)
                .await
                .map_err(explain)?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::NativeExport {
            table,
            bucket,
            prefix,
            items_per_file,
            segments,
        } => {
            let ctx = AppContext::from_env().await?;
            let written = exportctl::scale::native_export(&ctx, &table, &bucket, &prefix, items_per_file, segments)
                .await
                .map_err(explain)?;
            eprintln!(
                "exported {} items into {} data files (export {})",
                written.items, written.files, written.export_id
            );
            println!("{}", written.manifest);
        }
        Command::Convert {
            manifest,
            kind,
            format,
            name,
            param,
            params,
            concurrency,
        } => {
            let ctx = AppContext::from_env().await?;
            let params = exportctl::scale::export_params(params.as_deref(), &param)?;
            let job = exportctl::scale::convert(
                &ctx,
                exportctl::scale::Conversion {
                    manifest,
                    kind,
                    format,
                    name,
                    params,
                    concurrency,
                    tuning: common::scale::Tuning::default(),
                },
            )
            .await
            .map_err(explain)?;
            println!("{}", serde_json::to_string(&job)?);
        }
        Command::Schedules {
            command: SchedulesCommand::Tick { at },
        } => {
            let ctx = AppContext::from_env().await?;
            let at = match at {
                None => ctx.clock.now(),
                Some(t) => common::timefmt::parse_rfc3339(&t).ok_or("--at must be an RFC 3339 time")?,
            };
            let report = common::schedules::tick::tick(&ctx, at).await;
            println!("{}", serde_json::to_string(&report)?);
            if report.failed > 0 {
                return Err(format!("{} schedule(s) could not be handled; see the log", report.failed).into());
            }
        }
        Command::Worker => {
            let ctx = AppContext::from_env().await?;
            let stop = stop_on_signal();
            spawn_worker(&ctx, &stop).await;
        }
        Command::Bench {
            export,
            format,
            rows,
            sink,
            compression,
        } => {
            let ctx = match sink {
                exportctl::bench::SinkKind::S3 | exportctl::bench::SinkKind::Job => Some(AppContext::from_env().await?),
                exportctl::bench::SinkKind::Null => None,
            };
            let report = exportctl::bench::run(export, format, rows, sink, compression, ctx.as_ref())
                .await
                .map_err(explain)?;
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    Ok(())
}
