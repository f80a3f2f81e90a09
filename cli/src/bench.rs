//! `exportctl bench`: pushes synthetic records through the real compile, rows, encoders
//! and sink, with DynamoDB replaced by an in-process [`Store`], and reports throughput
//! and peak memory. Not a test: run it in release (`make bench`).

use std::{sync::Arc, time::Instant};

use chrono::{DateTime, Utc};
use common::{
    AppContext, Error,
    compile::compile,
    export::{self, S3Sink, sink::CountingSink, sink::ObjectTarget},
    kinds::chats::{ChatFilter, ChatFormat, ChatOptions},
    model::{ChatMessage, Lead, Session, SessionMessage},
    source::{Pages, SessionLine, Store},
    spec::{ChatsSpec, ConversationsSpec, ExportSpec, FileOptions, LeadsSpec, SessionsSpec, TableFormat},
    store::Record,
    synth,
};
use futures::{StreamExt, stream};
use serde::Serialize;

/// Records per batch, about one DynamoDB page.
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
    /// Conversations folded from chat messages (`--rows` messages; the report counts
    /// the conversations written).
    Conversations,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchFormat {
    Csv,
    Json,
    Xlsx,
    /// The chat export's ZIP of JSON + Excel (chats only).
    Zip,
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

/// Batches of an iterator's items.
fn batches<T: Send + 'static>(mut items: impl Iterator<Item = T> + Send + 'static) -> Pages<T> {
    stream::iter(std::iter::from_fn(move || {
        let batch: Vec<T> = items.by_ref().take(BATCH).collect();
        (!batch.is_empty()).then_some(Ok::<_, Error>(batch))
    }))
    .boxed()
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
                session_id: format!("sess-{session_no:08}"),
                user_id: format!("user-{:05}", rng.below(50_000)),
                started_at: synth::epoch() + chrono::Duration::seconds(session_no as i64 * 60),
            });
            let n = (1 + rng.below(12) as usize).min(total - produced);
            produced += n;
            let lines: Vec<SessionLine> = (0..n)
                .map(|j| SessionLine {
                    session: session.clone(),
                    message: Some(SessionMessage {
                        session_id: session.session_id.clone(),
                        message_id: format!("msg-{session_no:08}-{j:02}"),
                        content: synth::message_text(&mut rng),
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
        BenchFormat::Xlsx => Ok(TableFormat::Xlsx),
        BenchFormat::Zip => Err(Error::bad_request("--format zip is for --export chats")),
    }
}

/// The spec the benchmark runs: every row, every column, geo and meta for chats.
pub fn spec(which: BenchExport, format: BenchFormat, rows: usize) -> Result<ExportSpec, Error> {
    let as_of = common::timefmt::to_millis(Utc::now());
    let options = FileOptions::default();
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
            columns: common::kinds::leads::COLUMNS
                .iter()
                .map(|c| c.key.to_string())
                .collect(),
        }),
        BenchExport::Chats => ExportSpec::Chats(ChatsSpec {
            as_of,
            format: match format {
                BenchFormat::Csv => ChatFormat::Csv,
                BenchFormat::Json => ChatFormat::Json,
                BenchFormat::Xlsx => ChatFormat::Excel,
                BenchFormat::Zip => ChatFormat::Both,
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
    let spec = spec(which, format, rows)?;
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
        (SinkKind::S3, None) => return Err(Error::bad_request("--sink s3 needs the AWS configuration (local.env)")),
    };
    let seconds = started.elapsed().as_secs_f64();
    Ok(Report {
        export: spec.kind(),
        format: match format {
            BenchFormat::Csv => "csv",
            BenchFormat::Json => "json",
            BenchFormat::Xlsx => "xlsx",
            BenchFormat::Zip => "zip",
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
