//! `exportctl bench`: pushes synthetic rows (session messages or leads) through the real engine
//! (encoder + sink) with DynamoDB replaced by an in-process source, and reports
//! throughput and peak memory. Not a test: run it in release (`make bench`).

use std::time::Instant;

use common::{
    AppContext, Error,
    chat_document::{ChatDocumentInfo, ChatJsonEncoder, ChatXlsxEncoder, ZipEncoder},
    chats::{self, ChatOptions, SharedStats},
    export::{self, EncodeOptions, ExportJob, Format, Row, S3Sink, sink::CountingSink, sink::ObjectTarget},
    export::{Column, Encoder},
    leads,
    model::{Session, SessionMessage},
    sessions,
    store::Record,
    synth,
};
use futures::{StreamExt, stream};
use serde::Serialize;

/// Rows per batch, about one DynamoDB page of messages.
const BATCH: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SinkKind {
    /// Count bytes only: measures source + encoder.
    Null,
    /// Real S3 multipart upload to the configured endpoint (the local emulator).
    S3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchExport {
    /// Chat-session messages (6 columns).
    Sessions,
    /// Leads, every column (32 columns).
    Leads,
    /// Chat messages with geo and meta data (28 columns) and the summary.
    Chats,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchFormat {
    Csv,
    Json,
    Xlsx,
    /// The chat export's ZIP of JSON + Excel (chats only).
    Zip,
}

impl From<BenchFormat> for Format {
    fn from(f: BenchFormat) -> Self {
        match f {
            BenchFormat::Csv => Format::Csv,
            BenchFormat::Json => Format::Json,
            BenchFormat::Xlsx => Format::Xlsx,
            BenchFormat::Zip => Format::Zip,
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

/// Synthetic sessions of 1-12 messages, generated lazily one batch at a time.
fn session_rows(total: usize, seed: u64) -> export::RowBatches {
    let mut rng = synth::Rng::new(seed);
    let mut produced = 0usize;
    let mut session_no = 0usize;
    stream::iter(std::iter::from_fn(move || {
        if produced >= total {
            return None;
        }
        let mut batch: Vec<Row> = Vec::with_capacity(BATCH);
        while batch.len() < BATCH && produced < total {
            session_no += 1;
            let session = Session {
                session_id: format!("sess-{session_no:08}"),
                user_id: format!("user-{:05}", rng.below(50_000)),
                started_at: synth::epoch() + chrono::Duration::seconds(session_no as i64 * 60),
            };
            let n = (1 + rng.below(12) as usize).min(total - produced);
            for j in 0..n {
                batch.push(sessions::message_row(
                    &session,
                    SessionMessage {
                        session_id: session.session_id.clone(),
                        message_id: format!("msg-{session_no:08}-{j:02}"),
                        content: synth::message_text(&mut rng),
                        sender: if j % 2 == 0 { "user" } else { "bot" }.into(),
                        timestamp: session.started_at + chrono::Duration::seconds(j as i64 * 7),
                    },
                ));
            }
            produced += n;
        }
        Some(Ok::<_, Error>(batch))
    }))
    .boxed()
}

/// Synthetic leads (every column), generated lazily one batch at a time.
fn lead_rows(total: usize, seed: u64) -> export::RowBatches {
    let mut records = synth::leads(seed, total);
    let all: Vec<usize> = (0..leads::COLUMNS.len()).collect();
    stream::iter(std::iter::from_fn(move || {
        let batch: Vec<Row> = records
            .by_ref()
            .take(BATCH)
            .map(|r| match r {
                Record::Lead(lead) => all.iter().map(|&i| leads::cell(&lead, i)).collect(),
                _ => unreachable!("synth::leads yields leads"),
            })
            .collect();
        (!batch.is_empty()).then_some(Ok::<_, Error>(batch))
    }))
    .boxed()
}

/// Synthetic chat messages, every one observed by the summary as in the real source.
fn chat_rows(total: usize, seed: u64, opts: ChatOptions, stats: SharedStats) -> export::RowBatches {
    let mut records = synth::chat_messages(seed, total);
    stream::iter(std::iter::from_fn(move || {
        let batch: Vec<Row> = records
            .by_ref()
            .take(BATCH)
            .map(|r| match r {
                Record::ChatMessage(m) => {
                    chats::stats_of(&stats).observe(&m);
                    chats::row(&m, opts)
                }
                _ => unreachable!("synth::chat_messages yields chat messages"),
            })
            .collect();
        (!batch.is_empty()).then_some(Ok::<_, Error>(batch))
    }))
    .boxed()
}

/// The chat export's document encoder for a format.
fn chat_encoder(format: Format, columns: &[Column], stats: SharedStats) -> Result<Option<Box<dyn Encoder>>, Error> {
    let info = ChatDocumentInfo {
        export_date: chrono::Utc::now(),
        requested: Default::default(),
        client_id: None,
        format: format.extension().into(),
        include_geo: true,
        include_meta: true,
    };
    let json = || ChatJsonEncoder::new(columns, stats.clone(), info.clone());
    let xlsx = || ChatXlsxEncoder::new(columns, EncodeOptions::default(), stats.clone(), info.clone());
    Ok(match format {
        Format::Json => Some(Box::new(json())),
        Format::Xlsx => Some(Box::new(xlsx()?)),
        Format::Zip => Some(Box::new(ZipEncoder::new(json(), xlsx()?, "bench.json", "bench.xlsx")?)),
        Format::Csv => None,
    })
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
    ctx: Option<&AppContext>,
) -> Result<Report, Error> {
    let format = Format::from(format);
    if format == Format::Zip && which != BenchExport::Chats {
        return Err(Error::bad_request("--format zip is for --export chats"));
    }
    let (export_name, columns, source, encoder) = match which {
        BenchExport::Sessions => ("sessions", sessions::COLUMNS.to_vec(), session_rows(rows, 42), None),
        BenchExport::Leads => ("leads", leads::COLUMNS.to_vec(), lead_rows(rows, 42), None),
        BenchExport::Chats => {
            let opts = ChatOptions {
                include_geo: true,
                include_meta: true,
                anonymize_ips: false,
            };
            let stats = SharedStats::default();
            let columns = chats::columns(opts);
            let encoder = chat_encoder(format, &columns, stats.clone())?;
            ("chats", columns, chat_rows(rows, 42, opts, stats), encoder)
        }
    };
    let job = ExportJob {
        kind: "bench",
        file_stem: "bench",
        sheet: "Bench",
        format,
        columns,
        options: EncodeOptions::default(),
        rows: source,
        encoder,
    };
    let started = Instant::now();
    let (summary, sink_name) = match (sink, ctx) {
        (SinkKind::Null, _) => (export::run(job, CountingSink::default()).await?.0, "null".to_string()),
        (SinkKind::S3, Some(ctx)) => {
            let d = &ctx.config.delivery;
            let target = ObjectTarget {
                bucket: d.bucket.clone(),
                key: format!("{}bench/{}.{}", d.key_prefix, uuid::Uuid::new_v4(), format.extension()),
                content_type: format.content_type().into(),
                content_disposition: "attachment".into(),
            };
            let sink = S3Sink::new(ctx.aws.s3.clone(), target.clone(), None, d.part_bytes);
            let (summary, _) = export::run(job, sink).await?;
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
        (SinkKind::S3, None) => return Err(Error::bad_request("--sink s3 needs the AWS configuration (local.env)")),
    };
    let seconds = started.elapsed().as_secs_f64();
    Ok(Report {
        export: export_name,
        format: format.extension(),
        sink: sink_name,
        rows: summary.rows,
        bytes: summary.bytes,
        seconds,
        rows_per_sec: summary.rows as f64 / seconds,
        mb_per_sec: summary.bytes as f64 / seconds / 1e6,
        peak_rss_mb: peak_rss_mb(),
    })
}
