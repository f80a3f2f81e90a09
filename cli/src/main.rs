//! exportctl: create tables, seed and load data, mint tokens, serve the API locally,
//! benchmark the engine, run exports at scale and keep the indexes. The commands are
//! declared in `args.rs`; this file runs them. stdout carries only each command's
//! result (`output.rs`); everything else goes to stderr.

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};
use common::backfill::Mode;
use common::{
    AppContext,
    auth::{self, Claims, Role},
    config::Config,
    schema, synth,
};
use exportctl::{
    args::{Cli, Command, RoleArg, SchedulesCommand},
    output::{self, Done, Failure, Report},
    progress::{Bars, One},
};
use serde_json::json;

/// mimalloc instead of glibc's malloc: the engine allocates per cell, and glibc's
/// malloc and free were about a quarter of a CSV or JSON export's time
/// (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    common::alloc::tune();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    // Metric lines are for Lambda's stdout; here stdout is the result's.
    common::metrics::to_stderr();
    let bars = Bars::new(cli.quiet);
    common::logging::init_stderr(if cli.quiet { "warn" } else { "info" });
    let result = run(cli.command, &bars, cli.json).await;
    bars.close();
    output::finish(result, cli.json)
}

/// clap's answer to bad arguments: exit 2, and with `--json` the error as the one
/// document on stdout. `--help` and `--version` print and exit 0 as usual.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let json = std::env::args().skip(1).any(|a| a == "--json");
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand && !json {
        // `exportctl` or `exportctl schedules` alone: the help, as a usage error.
        let _ = e.print();
        return ExitCode::from(2);
    }
    let rendered = e.render().to_string();
    let message = rendered.strip_prefix("error: ").unwrap_or(&rendered).to_string();
    output::fail(&Failure::Usage(message), json)
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
/// returned future ends when both have stopped. Answers what it runs, as a result.
fn spawn_worker(
    ctx: &AppContext,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> (Report, impl Future<Output = ()> + use<>) {
    let every = common::jobs::sweep::local_interval(ctx.config.jobs.requeue_secs);
    let queue = &ctx.config.jobs.queue_url;
    let report = Report::new(
        json!({
            "queue_url": queue,
            "sweep_seconds": every.as_secs(),
            "requeue_seconds": ctx.config.jobs.requeue_secs,
        }),
        format!(
            "export worker polling {queue}; sweeping every {} s (jobs queued over {} s are sent again)",
            every.as_secs(),
            ctx.config.jobs.requeue_secs
        ),
    );
    let poller = tokio::spawn(common::jobs::queue::poll(ctx.clone(), stop.clone()));
    let sweeper = tokio::spawn(common::jobs::sweep::sweep_every(ctx.clone(), every, stop.clone()));
    (report, async move {
        let _ = poller.await;
        let _ = sweeper.await;
    })
}

/// The counts of a backfill or check, by table, as one JSON object.
fn counts_json(counts: &[(String, common::backfill::Counts)]) -> serde_json::Value {
    counts
        .iter()
        .map(|(table, c)| (table.clone(), serde_json::to_value(c).unwrap_or_default()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

async fn context() -> Result<AppContext, Failure> {
    Ok(AppContext::from_env().await?)
}

async fn run(command: Command, bars: &Bars, json: bool) -> Result<Done, Failure> {
    let report = match command {
        Command::Setup => {
            let ctx = context().await?;
            let created = schema::create_tables(&ctx.aws.dynamodb, &ctx.config.tables).await?;
            let bucket = schema::create_bucket(&ctx.aws.s3, &ctx.config.delivery.bucket).await?;
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
            .await?;
            let human = format!(
                "jobs queue ready: {queue}\ntables ready ({} created{}), bucket {} {}",
                created.len(),
                if created.is_empty() {
                    String::new()
                } else {
                    format!(": {}", created.join(", "))
                },
                ctx.config.delivery.bucket,
                if bucket { "created" } else { "already there" }
            );
            Report::new(
                json!({
                    "tables_created": created,
                    "bucket": ctx.config.delivery.bucket,
                    "bucket_created": bucket,
                    "queue_url": queue,
                }),
                human,
            )
        }
        Command::Seed {
            sessions,
            leads,
            chats,
            seed,
        } => {
            let ctx = context().await?;
            let written = One(bars.counter("seed", None, "records"));
            let all = synth::sessions(seed, sessions)
                .chain(synth::leads(seed, leads))
                .chain(synth::chat_messages(seed, chats));
            let total = exportctl::load::write_chunked(&ctx, all, &written).await?;
            written.0.finish();
            Report::new(
                json!({"records": total, "sessions": sessions, "leads": leads, "chat_messages": chats, "seed": seed}),
                format!(
                    "seeded {total} records ({sessions} sessions with messages, {leads} leads, {chats} chat messages; seed {seed})"
                ),
            )
        }
        Command::Load { file } => {
            let path = file.display().to_string();
            let opened =
                std::fs::File::open(&file).map_err(|e| Failure::Usage(format!("could not open {path}: {e}")))?;
            let size = opened.metadata().map(|m| m.len()).unwrap_or(0);
            let reading = bars.bytes("reading", size);
            let reader = std::io::BufReader::new(reading.wrap_read(opened));
            let loaded = exportctl::load::parse_watched(reader, &path, |line| {
                if line % 1024 == 0 {
                    reading.set_message(format!("{line} lines"));
                }
            })?;
            reading.set_message(format!("{} records", loaded.records.len()));
            reading.finish();
            for note in loaded.notes.iter().take(20) {
                bars.note(&format!("note: {note}"));
            }
            if loaded.notes.len() > 20 {
                bars.note(&format!("note: ... and {} more", loaded.notes.len() - 20));
            }
            let ctx = context().await?;
            let written = One(bars.counter("writing", Some(loaded.records.len() as u64), "items"));
            let notes = loaded.notes.len();
            let n = common::load::write_records_watched(
                &ctx.aws.dynamodb,
                &ctx.config.tables,
                loaded.records,
                ctx.clock.now(),
                &written,
            )
            .await?;
            written.0.finish();
            Report::new(
                json!({"records": n, "file": path, "notes": notes}),
                format!("loaded {n} records from {path}"),
            )
        }
        Command::Backfill { table, segments, rate } => {
            let ctx = context().await?;
            let counts = exportctl::backfill::run(&ctx, table.as_deref(), Mode::Fix, segments, rate, bars).await?;
            Report::new(counts_json(&counts), exportctl::backfill::summary(Mode::Fix, &counts))
        }
        Command::CheckIndex { table, segments } => {
            let ctx = context().await?;
            let counts = exportctl::backfill::run(&ctx, table.as_deref(), Mode::Check, segments, None, bars).await?;
            // A finding, not a failure of the command: exit 1 (2 is left to usage).
            let found = counts.iter().any(|(_, c)| c.wrong > 0 || c.failed > 0);
            Report::new(counts_json(&counts), exportctl::backfill::summary(Mode::Check, &counts)).finding(found)
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
            let token = auth::mint(&config.jwt, &claims);
            let expires_at = i64::try_from(claims.exp)
                .ok()
                .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
                .map(|t| common::timefmt::format(&t));
            Report::new(
                json!({"token": token, "expires_at": expires_at, "claims": claims}),
                token,
            )
        }
        Command::Serve {
            port,
            no_worker,
            tick_seconds,
            streams,
        } => {
            let ctx = context().await?;
            let stop = stop_on_signal();
            if streams {
                exportctl::streams::enable_streams(&ctx).await?;
                let follower = exportctl::streams::Follower::from_env(&ctx).await;
                tokio::spawn(exportctl::streams::follow(follower, std::time::Duration::from_secs(1)));
                bars.note("following the streams of the indexed tables every second");
            }
            let worker = (!no_worker).then(|| spawn_worker(&ctx, &stop));
            if let Some((report, _)) = &worker {
                bars.note(&report.human);
            }
            if tick_seconds > 0 {
                tokio::spawn(exportctl::serve::tick_every(ctx.clone(), tick_seconds));
                bars.note(&format!("scheduler ticking every {tick_seconds} s"));
            }
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .map_err(|e| Failure::Usage(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
            let url = format!("http://127.0.0.1:{port}");
            let mut human = format!("serving on {url}");
            for (method, path) in exportctl::serve::ROUTES {
                human.push_str(&format!("\n  {method} {path}"));
            }
            let routes: Vec<String> = exportctl::serve::ROUTES
                .iter()
                .map(|(method, path)| format!("{method} {path}"))
                .collect();
            output::print(
                &Report::new(
                    json!({
                        "url": url,
                        "routes": routes,
                        "worker": !no_worker,
                        "tick_seconds": tick_seconds,
                        "streams": streams,
                    }),
                    human,
                ),
                json,
            );
            let mut stopped = stop.clone();
            tokio::select! {
                served = exportctl::serve::serve(ctx, listener) => served.map_err(|e| Failure::Failed(e.to_string()))?,
                _ = stopped.wait_for(|s| *s) => {}
            }
            if let Some((_, worker)) = worker {
                worker.await;
            }
            return Ok(Done::Printed);
        }
        Command::Worker => {
            let ctx = context().await?;
            let stop = stop_on_signal();
            let (report, worker) = spawn_worker(&ctx, &stop);
            output::print(&report, json);
            worker.await;
            return Ok(Done::Printed);
        }
        Command::Schedules {
            command: SchedulesCommand::Tick { at },
        } => {
            let ctx = context().await?;
            let at = match at {
                None => ctx.clock.now(),
                Some(t) => common::timefmt::parse_rfc3339(&t)
                    .ok_or_else(|| Failure::Usage(format!("--at must be an RFC 3339 time, got '{t}'")))?,
            };
            let report = common::schedules::tick::tick(&ctx, at).await;
            if report.failed > 0 {
                bars.note(&format!(
                    "{} schedule(s) could not be handled; see the log",
                    report.failed
                ));
            }
            let human = format!(
                "tick at {}: {} due, {} job(s) started{}, {} skipped (window exported before), {} paused, {} failed",
                report.at,
                report.due,
                report.created.len(),
                if report.created.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", report.created.join(", "))
                },
                report.skipped,
                report.paused,
                report.failed
            );
            let failed = report.failed > 0;
            Report::new(&report, human).finding(failed)
        }
        Command::Bench {
            export,
            format,
            rows,
            sink,
            compression,
        } => {
            let ctx = match sink {
                exportctl::bench::SinkKind::S3 | exportctl::bench::SinkKind::Job => Some(context().await?),
                exportctl::bench::SinkKind::Null => None,
            };
            let bar = bars.counter("bench", Some(rows as u64), "records");
            let ticker = {
                let bar = bar.clone();
                let base = exportctl::bench::records_made();
                tokio::spawn(async move {
                    loop {
                        bar.set_position(exportctl::bench::records_made() - base);
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                })
            };
            let report = exportctl::bench::run(export, format, rows, sink, compression, ctx.as_ref()).await;
            ticker.abort();
            let report = report?;
            bar.set_position(report.rows);
            bar.finish();
            Report::new(&report, report.summary())
        }
        Command::BenchE2e {
            export,
            format,
            rows,
            read_only,
        } => {
            let ctx = context().await?;
            let report = exportctl::bench::end_to_end(&ctx, export, format, rows, read_only, bars).await?;
            Report::new(&report, report.summary())
        }
        Command::NativeExport {
            table,
            bucket,
            prefix,
            items_per_file,
            segments,
        } => {
            let ctx = context().await?;
            let written =
                exportctl::scale::native_export(&ctx, &table, &bucket, &prefix, items_per_file, segments, bars).await?;
            bars.note(&format!(
                "exported {} items into {} data files (export {})",
                written.items, written.files, written.export_id
            ));
            Report::new(
                json!({
                    "manifest": written.manifest,
                    "export_id": written.export_id,
                    "items": written.items,
                    "files": written.files,
                }),
                written.manifest.clone(),
            )
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
            let ctx = context().await?;
            let params = exportctl::scale::export_params(params.as_deref(), &param).map_err(Failure::Usage)?;
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
                bars,
            )
            .await?;
            let human = format!(
                "job {} {}: {} rows, {} bytes in {:.2} s ({} rows/s) from {} data files\nfile {} at s3://{}/{}",
                job["job_id"].as_str().unwrap_or_default(),
                job["status"].as_str().unwrap_or_default(),
                job["rows"],
                job["bytes"],
                job["seconds"].as_f64().unwrap_or_default(),
                job["rows_per_second"],
                job["files"],
                job["file_name"].as_str().unwrap_or_default(),
                ctx.config.delivery.bucket,
                job["s3_key"].as_str().unwrap_or_default(),
            );
            Report::new(job, human)
        }
        Command::Completions { shell } => {
            if json {
                return Err(Failure::Usage(
                    "completions prints a shell script; --json does not apply to it".into(),
                ));
            }
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "exportctl", &mut script);
            output::stdout_line(String::from_utf8_lossy(&script).trim_end());
            return Ok(Done::Printed);
        }
    };
    Ok(Done::Report(report))
}
