//! `exportctl bench`: pushes synthetic records through the real compile, rows, encoders
//! and sink, with DynamoDB replaced by an in-process [`Store`], and reports throughput
//! and peak memory. Not a test: run it in release (`make bench`).
//!
//! One concern past 600 lines: the in-process source, the specs it runs and the
//! three ways it is measured (the engine alone, a job through the worker, and end to
//! end through the local stack) share the same store, records and report.

use std::{sync::Arc, time::Instant};

use chrono::{DateTime, Utc};
use common::{
    AppContext, Error,
    compile::compile,
    export::{self, S3Sink, sink::CountingSink, sink::ObjectTarget},
    kinds::chats::{ChatFilter, ChatFormat, ChatOptions},
    load::Record,
    model::{ChatMessage, Lead, Session, SessionMessage},
    source::{Pages, SessionLine, Store},
    spec::{ChatsSpec, ConversationsSpec, ExportSpec, FileOptions, LeadsSpec, SessionsSpec, TableFormat},
    synth,
};
use futures::{StreamExt, stream};
use serde::Serialize;

use crate::progress::{Bars, One};

/// Records per batch, about one DynamoDB page.
const BATCH: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SinkKind {
    /// Count bytes only: measures source + encoder.
    Null,
    /// Real S3 multipart upload to the configured endpoint (the local emulator).
    S3,
    /// The export worker's code path: a job record in the jobs table, claimed and
    /// run by `worker::process` (heartbeats, progress, S3 multipart upload, outcome),
    /// with the in-process source. Needs the local stack.
    Job,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchExport {
    /// Chat-session messages (6 columns).
    Sessions,
    /// Leads, every column (32 columns).
    Leads,
    /// Chat messages with geo and meta data (28 columns) and the summary.
    Chats,
    /// Conversations folded from chat messages (`--rows` messages; the report counts
    /// the conversations written).
    Conversations,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchFormat {
    Csv,
    Json,
    /// JSON Lines.
    Jsonl,
    Xlsx,
    /// The chat export's ZIP of JSON + Excel (chats only).
    Zip,
    /// Parquet (zstd unless `--compression` names its codec).
    Parquet,
}

/// The export's `compression` option: the whole file's, or a Parquet file's codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchCompression {
    None,
    Gzip,
    Zip,
    Snappy,
    Zstd,
}

impl From<BenchCompression> for common::spec::Compression {
    fn from(c: BenchCompression) -> Self {
        match c {
            BenchCompression::None => Self::None,
            BenchCompression::Gzip => Self::Gzip,
            BenchCompression::Zip => Self::Zip,
            BenchCompression::Snappy => Self::Snappy,
            BenchCompression::Zstd => Self::Zstd,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub export: &'static str,
    pub format: &'static str,
    pub sink: String,
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub rows_per_sec: f64,
    pub mb_per_sec: f64,
    pub peak_rss_mb: f64,
}

/// Synthetic records instead of DynamoDB, generated lazily one batch at a time, so
/// the benchmark runs the production compile, rows and encoders.
pub struct BenchStore {
    pub records: usize,
    pub seed: u64,
}

/// Records the in-process sources have made in this process, for the progress bar.
static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Records the in-process sources have made so far (every [`BenchStore`] of this
/// process counts into it).
pub fn records_made() -> u64 {
    MADE.load(std::sync::atomic::Ordering::Relaxed)
}

/// Batches of an iterator's items, made a page ahead on their own task as DynamoDB's
/// pages are fetched and parsed in production (`reads::pages::read_ahead`).
fn batches<T: Send + 'static>(mut items: impl Iterator<Item = T> + Send + 'static) -> Pages<T> {
    common::reads::pages::read_ahead(
        stream::iter(std::iter::from_fn(move || {
            let batch: Vec<T> = items.by_ref().take(BATCH).collect();
            MADE.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
            (!batch.is_empty()).then_some(Ok::<_, Error>(batch))
        }))
        .boxed(),
    )
}

fn chat_messages(seed: u64, count: usize) -> impl Iterator<Item = ChatMessage> + Send + 'static {
    synth::chat_messages(seed, count).filter_map(|r| match r {
        Record::ChatMessage(m) => Some(m),
        _ => None,
    })
}

impl Store for BenchStore {
    /// Sessions of 1-12 messages each.
    fn session_lines(&self, _as_of: DateTime<Utc>) -> Pages<SessionLine> {
        let mut rng = synth::Rng::new(self.seed);
        let total = self.records;
        let mut produced = 0usize;
        let mut session_no = 0usize;
        let lines = std::iter::from_fn(move || {
            if produced >= total {
                return None;
            }
            session_no += 1;
            let session = Arc::new(Session {
                session_id: compact_str::format_compact!("sess-{session_no:08}"),
                user_id: compact_str::format_compact!("user-{:05}", rng.below(50_000)),
                started_at: synth::epoch() + chrono::Duration::seconds(session_no as i64 * 60),
            });
            let n = (1 + rng.below(12) as usize).min(total - produced);
            produced += n;
            let lines: Vec<SessionLine> = (0..n)
                .map(|j| SessionLine {
                    session: session.clone(),
                    message: Some(SessionMessage {
                        session_id: session.session_id.clone(),
                        message_id: compact_str::format_compact!("msg-{session_no:08}-{j:02}"),
                        content: synth::message_text(&mut rng).into(),
                        sender: if j % 2 == 0 { "user" } else { "bot" }.into(),
                        timestamp: session.started_at + chrono::Duration::seconds(j as i64 * 7),
                    }),
                })
                .collect();
            Some(lines)
        });
        batches(lines.flatten())
    }

    fn leads(&self, _filter: &common::kinds::leads::LeadFilter, _as_of: DateTime<Utc>) -> Pages<Lead> {
        batches(synth::leads(self.seed, self.records).filter_map(|r| match r {
            Record::Lead(l) => Some(l),
            _ => None,
        }))
    }

    fn chat_messages(&self, _filter: &ChatFilter, _as_of: DateTime<Utc>) -> Pages<ChatMessage> {
        batches(chat_messages(self.seed, self.records))
    }

    /// The generator writes each conversation's messages one after the other.
    fn conversation_messages(&self, _filter: &ChatFilter, _as_of: DateTime<Utc>) -> Pages<ChatMessage> {
        batches(chat_messages(self.seed, self.records))
    }
}

fn table_format(format: BenchFormat) -> Result<TableFormat, Error> {
    match format {
        BenchFormat::Csv => Ok(TableFormat::Csv),
        BenchFormat::Json => Ok(TableFormat::Json),
        BenchFormat::Jsonl => Ok(TableFormat::Jsonl),
        BenchFormat::Xlsx => Ok(TableFormat::Xlsx),
        BenchFormat::Parquet => Ok(TableFormat::Parquet),
        BenchFormat::Zip => Err(Error::bad_request("--format zip is for --export chats")),
    }
}

/// The spec the benchmark runs: every row, every column, geo and meta for chats.
pub fn spec(which: BenchExport, format: BenchFormat, rows: usize) -> Result<ExportSpec, Error> {
    spec_with(which, format, rows, FileOptions::default())
}

/// [`spec`] with file options (compression).
pub fn spec_with(
    which: BenchExport,
    format: BenchFormat,
    rows: usize,
    options: FileOptions,
) -> Result<ExportSpec, Error> {
    let as_of = common::timefmt::to_millis(Utc::now());
    let every = ChatFilter {
        limit: u32::try_from(rows).unwrap_or(u32::MAX),
        ..ChatFilter::default()
    };
    Ok(match which {
        BenchExport::Sessions => ExportSpec::Sessions(SessionsSpec {
            as_of,
            format: table_format(format)?,
            options,
        }),
        BenchExport::Leads => ExportSpec::Leads(LeadsSpec {
            as_of,
            format: table_format(format)?,
            options,
            filter: Default::default(),
            columns: common::kinds::leads::LeadColumn::all().collect(),
        }),
        BenchExport::Chats => ExportSpec::Chats(ChatsSpec {
            as_of,
            format: match format {
                BenchFormat::Csv => ChatFormat::Csv,
                BenchFormat::Json => ChatFormat::Json,
                BenchFormat::Jsonl => ChatFormat::Jsonl,
                BenchFormat::Xlsx => ChatFormat::Excel,
                BenchFormat::Zip => ChatFormat::Both,
                BenchFormat::Parquet => ChatFormat::Parquet,
            },
            options,
            filter: every,
            chat: ChatOptions {
                include_geo: true,
                include_meta: true,
                anonymize_ips: false,
            },
        }),
        BenchExport::Conversations => ExportSpec::Conversations(ConversationsSpec {
            as_of,
            format: table_format(format)?,
            options,
            filter: every,
            anonymize_ips: true,
        }),
    })
}

/// Runs a spec as a job through the worker (and deletes its file afterwards).
pub async fn run_job(ctx: &AppContext, spec: &ExportSpec) -> Result<export::Summary, Error> {
    use common::jobs::{Job, JobStatus, Trigger, store::JobStore, worker};
    // The report is the one line on stdout.
    common::metrics::silence();
    let owner = common::auth::Caller {
        sub: "bench".into(),
        role: common::auth::Role::Admin,
        client_id: None,
        company_id: None,
        email: None,
    };
    let job = Job::new(spec, &owner, Trigger::Api, Utc::now(), ctx.config.jobs.retention_days);
    let store = JobStore::of(ctx);
    store.put_new(&job).await?;
    worker::process(ctx, &job.id).await?;
    let done = finished_job(ctx, &job.id).await?;
    if done.status != JobStatus::Succeeded {
        return Err(Error::internal(
            "bench error",
            format!("the job {}: {:?}", done.status.as_str(), done.error_message),
        ));
    }
    Ok(export::Summary {
        rows: done.rows.unwrap_or(0),
        bytes: done.size_bytes.unwrap_or(0),
    })
}

/// A job the benchmark ran, read back; its file is deleted (only the figures matter).
async fn finished_job(ctx: &AppContext, id: &str) -> Result<common::jobs::Job, Error> {
    let done = common::jobs::store::JobStore::of(ctx)
        .get(id)
        .await?
        .ok_or_else(|| Error::internal("bench error", "the job vanished"))?;
    if let Some(key) = &done.s3_key {
        let _ = ctx
            .aws
            .s3
            .delete_object()
            .bucket(&ctx.config.delivery.bucket)
            .key(key)
            .send()
            .await;
    }
    Ok(done)
}

/// CPU time (user + system) this process used so far, in seconds.
pub fn cpu_seconds() -> f64 {
    // /proc/self/stat fields 14 and 15 (utime, stime), in clock ticks (100 per second
    // on Linux x86_64), after the command name in parentheses.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(0.0)
}

/// Peak resident set size of this process (VmHWM), in MiB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

pub async fn run(
    which: BenchExport,
    format: BenchFormat,
    rows: usize,
    sink: SinkKind,
    compression: Option<BenchCompression>,
    ctx: Option<&AppContext>,
) -> Result<Report, Error> {
    let mut spec = spec_with(which, format, rows, FileOptions::default())?;
    // The format's default when none is named, as a request's.
    let compression = compression.map_or(spec.family().default_compression(), Into::into);
    spec.options_mut().compression = compression;
    let store = BenchStore {
        records: rows,
        seed: 42,
    };
    let pipeline = compile(&spec, &store)?;
    let started = Instant::now();
    let (summary, sink_name) = match (sink, ctx) {
        (SinkKind::Null, _) => (
            export::run(pipeline, CountingSink::default()).await?.0,
            "null".to_string(),
        ),
        (SinkKind::S3, Some(ctx)) => {
            let d = &ctx.config.delivery;
            let target = ObjectTarget {
                bucket: d.bucket.clone(),
                key: format!("{}bench/{}-{}", d.key_prefix, uuid::Uuid::new_v4(), spec.file_name()),
                content_type: spec.content_type().into(),
                content_disposition: "attachment".into(),
            };
            let sink = S3Sink::new(ctx.aws.s3.clone(), target.clone(), None, d.part_bytes);
            let (summary, _) = export::run(pipeline, sink).await?;
            let _ = ctx
                .aws
                .s3
                .delete_object()
                .bucket(&target.bucket)
                .key(&target.key)
                .send()
                .await;
            (
                summary,
                format!("s3 multipart ({} MiB parts)", d.part_bytes / (1024 * 1024)),
            )
        }
        (SinkKind::Job, Some(ctx)) => {
            let ctx = ctx.clone().with_store(Arc::new(BenchStore {
                records: rows,
                seed: 42,
            }));
            let summary = run_job(&ctx, &spec).await?;
            (
                summary,
                format!(
                    "job (worker, s3 multipart {} MiB parts)",
                    ctx.config.delivery.part_bytes / (1024 * 1024)
                ),
            )
        }
        (SinkKind::S3 | SinkKind::Job, None) => {
            return Err(Error::bad_request(
                "--sink s3 and --sink job need the AWS configuration (local.env)",
            ));
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    Ok(Report {
        export: spec.kind(),
        format: match format {
            BenchFormat::Csv => "csv",
            BenchFormat::Json => "json",
            BenchFormat::Jsonl => "jsonl",
            BenchFormat::Xlsx => "xlsx",
            BenchFormat::Zip => "zip",
            BenchFormat::Parquet => "parquet",
        },
        sink: sink_name,
        rows: summary.rows,
        bytes: summary.bytes,
        seconds,
        rows_per_sec: summary.rows as f64 / seconds,
        mb_per_sec: summary.bytes as f64 / seconds / 1e6,
        peak_rss_mb: peak_rss_mb(),
    })
}

impl Report {
    /// One line for people.
    pub fn summary(&self) -> String {
        format!(
            "{} {} -> {}: {} rows, {:.1} MB in {:.2} s: {:.0} rows/s, {:.1} MB/s, peak RSS {:.1} MB",
            self.export,
            self.format,
            self.sink,
            self.rows,
            self.bytes as f64 / 1e6,
            self.seconds,
            self.rows_per_sec,
            self.mb_per_sec,
            self.peak_rss_mb
        )
    }
}

#[derive(Debug, Serialize)]
pub struct EndToEndReport {
    pub export: &'static str,
    pub format: &'static str,
    pub path: &'static str,
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub rows_per_sec: f64,
    /// CPU time of this process (handler + worker), excluding the emulators'.
    pub cpu_seconds: f64,
    pub cpu_us_per_row: f64,
    pub peak_rss_mb: f64,
}

impl EndToEndReport {
    /// One line for people.
    pub fn summary(&self) -> String {
        format!(
            "{} {} ({}): {} rows, {:.1} MB in {:.2} s: {:.0} rows/s, {:.2} s CPU ({:.1} us/row), peak RSS {:.1} MB",
            self.export,
            self.format,
            self.path,
            self.rows,
            self.bytes as f64 / 1e6,
            self.seconds,
            self.rows_per_sec,
            self.cpu_seconds,
            self.cpu_us_per_row,
            self.peak_rss_mb
        )
    }

    /// The report of `rows` exported in `seconds` wall time and `cpu` seconds of CPU.
    fn new(
        export: &'static str,
        format: &'static str,
        path: &'static str,
        (rows, bytes): (u64, u64),
        seconds: f64,
        cpu: f64,
    ) -> Self {
        Self {
            export,
            format,
            path,
            rows,
            bytes,
            seconds,
            rows_per_sec: rows as f64 / seconds,
            cpu_seconds: cpu,
            cpu_us_per_row: cpu * 1e6 / rows.max(1) as f64,
            peak_rss_mb: peak_rss_mb(),
        }
    }
}

/// Records in every page of a read.
async fn drain<T>(mut pages: Pages<T>) -> Result<u64, Error> {
    let mut read = 0u64;
    while let Some(page) = pages.next().await {
        read += page?.len() as u64;
    }
    Ok(read)
}

/// `bench-e2e --read-only`: the export's reads alone, timed like the whole export.
async fn read_only_report(ctx: &AppContext, which: BenchExport, rows: usize) -> Result<EndToEndReport, Error> {
    let store = common::source::DynamoStore {
        client: ctx.aws.dynamodb.clone(),
        tables: ctx.config.tables.clone(),
    };
    let chats = common::kinds::chats::ChatFilter {
        limit: u32::try_from(rows).unwrap_or(u32::MAX),
        ..Default::default()
    };
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let as_of = Utc::now();
    let read = match which {
        BenchExport::Sessions => drain(store.session_lines(as_of)).await?,
        BenchExport::Leads => drain(store.leads(&Default::default(), as_of)).await?,
        BenchExport::Chats => drain(store.chat_messages(&chats, as_of)).await?,
        BenchExport::Conversations => drain(store.conversation_messages(&chats, as_of)).await?,
    };
    Ok(EndToEndReport::new(
        spec(which, BenchFormat::Csv, 1)?.kind(),
        "records",
        "DynamoDB (dynalite) -> records (read only: no rows, encoder, S3 or job)",
        (read, 0),
        started.elapsed().as_secs_f64(),
        cpu_seconds() - cpu_before,
    ))
}

/// Records in a table (a COUNT Scan).
async fn count_items(ctx: &AppContext, table: &str) -> Result<u64, Error> {
    let mut pages = ctx
        .aws
        .dynamodb
        .scan()
        .table_name(table)
        .select(aws_sdk_dynamodb::types::Select::Count)
        .into_paginator()
        .send();
    let mut n = 0u64;
    while let Some(page) = pages.next().await {
        n += page.map_err(Error::database)?.count as u64;
    }
    Ok(n)
}

/// `exportctl bench-e2e`: `rows` synthetic records loaded once into bench tables of
/// the local stack (`<table>-bench`), then one export job started through the job
/// API's handler and run by the worker against DynamoDB and S3, timed from the
/// request to the recorded outcome.
///
/// With `read_only`, the same bench table is only read: its pages fetched and decoded
/// into the records, as an admin export of everything reads them, and dropped. That
/// is the read side's share of the export's CPU (no rows, encoder, S3 or job).
pub async fn end_to_end(
    ctx: &AppContext,
    which: BenchExport,
    format: BenchFormat,
    rows: usize,
    read_only: bool,
    bars: &Bars,
) -> Result<EndToEndReport, Error> {
    let mut config = (*ctx.config).clone();
    let t = &mut config.tables;
    for name in [
        &mut t.sessions,
        &mut t.session_messages,
        &mut t.leads,
        &mut t.chat_messages,
        &mut t.rate_limits,
        &mut t.audit,
        &mut t.jobs,
    ] {
        name.push_str("-bench");
    }
    common::schema::create_tables(&ctx.aws.dynamodb, &config.tables).await?;
    let ctx = AppContext::new(config, ctx.aws.clone());
    let (table, records): (&str, Box<dyn Iterator<Item = Record> + Send>) = match which {
        BenchExport::Leads => (&ctx.config.tables.leads, Box::new(synth::leads(42, rows))),
        BenchExport::Chats | BenchExport::Conversations => (
            &ctx.config.tables.chat_messages,
            Box::new(synth::chat_messages(42, rows)),
        ),
        BenchExport::Sessions => {
            return Err(Error::bad_request("bench-e2e measures leads, chats or conversations"));
        }
    };
    if count_items(&ctx, table).await? != rows as u64 {
        bars.note(&format!("loading {rows} records into {table} (once)"));
        let loading = One(bars.counter("loading", Some(rows as u64), "records"));
        crate::load::write_chunked(&ctx, records, &loading).await?;
        loading.0.finish();
    }
    if read_only {
        return read_only_report(&ctx, which, rows).await;
    }
    common::metrics::silence();
    let token = common::auth::mint(
        &ctx.config.jwt,
        &common::auth::Claims {
            sub: "bench".into(),
            role: common::auth::Role::Admin,
            client_id: None,
            company_id: None,
            email: None,
            exp: common::auth::now_secs() + 3600,
            iat: None,
            nbf: None,
            iss: ctx.config.jwt.issuer.clone(),
            aud: ctx.config.jwt.audience.clone(),
        },
    );
    let format_name = match (which, format) {
        (BenchExport::Chats, BenchFormat::Xlsx) => "excel",
        (BenchExport::Chats, BenchFormat::Zip) => "both",
        (_, BenchFormat::Csv) => "csv",
        (_, BenchFormat::Json) => "json",
        (_, BenchFormat::Jsonl) => "jsonl",
        (_, BenchFormat::Xlsx) => "xlsx",
        (_, BenchFormat::Parquet) => "parquet",
        (_, BenchFormat::Zip) => return Err(Error::bad_request("zip is a chats format")),
    };
    let mut params = serde_json::json!({});
    if which == BenchExport::Chats {
        params = serde_json::json!({"include_geo": true, "include_meta": true, "limit": rows});
    }
    let kind = spec(which, format, 1)?.kind();
    let body = serde_json::json!({"kind": kind, "format": format_name, "params": params});
    let headers = vec![
        ("authorization".to_string(), format!("Bearer {token}")),
        ("content-type".to_string(), "application/json".to_string()),
        ("cache-control".to_string(), "no-cache".to_string()),
    ];
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let event = crate::serve::api_gateway_event(
        "POST",
        "/api/exports",
        "",
        &headers,
        body.to_string().as_bytes(),
        "127.0.0.1",
    );
    let req = lambda_http::request::from_str(&event.to_string()).map_err(|e| Error::internal("bench error", e))?;
    let resp = crate::serve::route(&ctx, req).await;
    let answer: serde_json::Value = match resp.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or_default(),
        _ => serde_json::Value::Null,
    };
    let id = answer["id"]
        .as_str()
        .ok_or_else(|| Error::internal("bench error", format!("no job: {answer}")))?
        .to_string();
    let exporting = bars.counter("exporting", Some(rows as u64), "rows");
    let watch = {
        // The job's own progress (rows_done, written every JOB_PROGRESS_SECONDS).
        let (ctx, id, bar) = (ctx.clone(), id.clone(), exporting.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                if let Ok(Some(job)) = common::jobs::store::JobStore::of(&ctx).get(&id).await {
                    bar.set_position(job.rows_done);
                }
            }
        })
    };
    let processed = common::jobs::worker::process(&ctx, &id).await;
    watch.abort();
    processed?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let done = finished_job(&ctx, &id).await?;
    exporting.set_position(done.rows.unwrap_or(0));
    exporting.finish();
    Ok(EndToEndReport::new(
        kind,
        format_name,
        "POST /api/exports -> worker -> DynamoDB (dynalite) -> S3 (s3s-fs)",
        (done.rows.unwrap_or(0), done.size_bytes.unwrap_or(0)),
        seconds,
        cpu,
    ))
}
