//! `exportctl native-export` and `exportctl convert`: exports at scale on the local
//! stack. `native-export` writes a table in DynamoDB's export-to-S3 format (what
//! `ExportTableToPointInTime` writes in AWS); `convert` runs what the state machine
//! runs in AWS, in-process: [`scale::start`], the converters of every data file
//! (concurrently: the same functions the `export-scale` Lambda calls), then
//! [`scale::assemble()`] (or [`scale::fail()`] when a converter failed).

use std::time::Instant;

use common::{
    AppContext, Error,
    config::TableNames,
    jobs::{api::JobRequest, store::JobStore},
    scale::{
        self, AssembleRequest, ConvertRequest, FailRequest, FileCount, JobId, Location, StartRequest, Tuning,
        native::{WrittenExport, write_export},
    },
};
use futures::{StreamExt, stream::FuturesUnordered};
use serde_json::{Map, Value, json};

use crate::progress::{Bars, One};

/// A table's real name from its logical name (`leads`, `chat_messages`, ...), or the
/// name itself.
pub fn table_name(tables: &TableNames, name: &str) -> String {
    match name.replace('-', "_").as_str() {
        "sessions" => tables.sessions.clone(),
        "session_messages" => tables.session_messages.clone(),
        "leads" => tables.leads.clone(),
        "chat_messages" | "chats" => tables.chat_messages.clone(),
        "rate_limits" => tables.rate_limits.clone(),
        "audit" => tables.audit.clone(),
        "jobs" => tables.jobs.clone(),
        "schedules" => tables.schedules.clone(),
        _ => name.to_string(),
    }
}

/// Writes `table` in DynamoDB's export format under `s3://bucket/prefix/AWSDynamoDB/<id>/`.
pub async fn native_export(
    ctx: &AppContext,
    table: &str,
    bucket: &str,
    prefix: &str,
    items_per_file: u64,
    segments: u32,
    bars: &Bars,
) -> Result<WrittenExport, Error> {
    let parts = bars.parts("segment", segments.clamp(1, 64), "items");
    let written = write_export(
        &ctx.aws.dynamodb,
        &ctx.aws.s3,
        &table_name(&ctx.config.tables, table),
        bucket,
        prefix,
        items_per_file,
        segments,
        ctx.config.delivery.part_bytes,
        ctx.clock.now(),
        &parts,
    )
    .await;
    parts.finish();
    written
}

/// The export parameters of `exportctl convert`: a `--params` JSON object, then each
/// `--param key=value` (`true`/`false` become booleans, anything else stays text, as
/// in a query string).
pub fn export_params(params_json: Option<&str>, pairs: &[String]) -> Result<Map<String, Value>, String> {
    let mut params = match params_json {
        None => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            _ => return Err("--params must be a JSON object".into()),
        },
    };
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--param takes key=value; got '{pair}'"))?;
        let value = match value {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            v => Value::String(v.to_string()),
        };
        params.insert(key.to_string(), value);
    }
    Ok(params)
}

/// What `exportctl convert` converts.
pub struct Conversion {
    pub manifest: String,
    pub kind: String,
    pub format: Option<String>,
    pub name: String,
    pub params: Map<String, Value>,
    /// Converters running at once.
    pub concurrency: usize,
    pub tuning: Tuning,
}

/// Runs an export at scale to the end, as the state machine does: start, convert
/// every data file, assemble (or fail). Answers the finished job.
pub async fn convert(ctx: &AppContext, c: Conversion, bars: &Bars) -> Result<Value, Error> {
    let clock = Instant::now();
    let export: JobRequest = serde_json::from_value(json!({"kind": c.kind, "format": c.format, "params": c.params}))
        .map_err(|e| Error::bad_request(format!("export: {e}")))?;
    let manifest = Location::try_from(c.manifest).map_err(|e| Error::bad_request(format!("--manifest {e}")))?;
    let started = scale::start(
        ctx,
        StartRequest {
            name: c.name,
            export,
            manifest,
        },
    )
    .await?;
    // The items as the state machine's item reader sees them.
    let bytes = common::scale::format::get(&ctx.aws.s3, &started.bucket, &started.items_key)
        .await?
        .ok_or_else(|| Error::internal("export error", "start wrote no items"))?;
    let items: Vec<ConvertRequest> = serde_json::from_slice(&bytes).map_err(|e| Error::internal("export error", e))?;
    let job_id = JobId::try_from(started.job_id.clone()).map_err(|e| Error::internal("export error", e))?;
    let tuning = c.tuning;
    // After a failure no converter starts, but those running finish (as in a
    // Distributed Map): none is cut off between writing its part and counting it.
    let converted = bars.counter("data files", Some(items.len() as u64), "files");
    let mut waiting = items.into_iter();
    let mut running = FuturesUnordered::new();
    let mut failure: Option<Error> = None;
    loop {
        while failure.is_none() && running.len() < c.concurrency.max(1) {
            let Some(item) = waiting.next() else { break };
            running.push(scale::convert_with(ctx, item, &tuning));
        }
        match running.next().await {
            None => break,
            Some(Ok(_)) => converted.inc(1),
            Some(Err(e)) => {
                if failure.is_none() {
                    failure = Some(e);
                }
            }
        }
    }
    converted.finish();
    let convert_seconds = clock.elapsed().as_secs_f64();
    if let Some(e) = failure {
        // What the state machine's catch does.
        let failed = scale::fail(
            ctx,
            FailRequest {
                job_id: job_id.clone(),
                error: Some(e.code().to_string()),
                cause: Some(e.cause_chain()),
            },
        )
        .await;
        if let Err(f) = failed {
            tracing::error!(error = %f.cause_chain(), "could not record the failure");
        }
        return Err(e);
    }
    let assembling = One(bars.counter("parts", None, "parts"));
    let (assembled, plan) = scale::assemble_watched(
        ctx,
        AssembleRequest {
            job_id,
            files: FileCount(started.files),
        },
        &tuning,
        &assembling,
    )
    .await?;
    assembling.0.finish();
    let job = JobStore::of(ctx)
        .get(&assembled.job_id)
        .await?
        .ok_or_else(|| Error::NotFound("no such export job".into()))?;
    let seconds = clock.elapsed().as_secs_f64();
    Ok(json!({
        "job_id": assembled.job_id,
        "status": job.status.as_str(),
        "rows": assembled.rows,
        "bytes": assembled.bytes,
        "s3_key": assembled.s3_key,
        "file_name": job.file_name,
        "files": started.files,
        "plan": plan,
        "convert_seconds": convert_seconds,
        "seconds": seconds,
        "rows_per_second": (assembled.rows as f64 / seconds.max(1e-9)).round(),
        "job": scale::job_view(ctx, &job),
    }))
}
