//! Exports beyond one Lambda run, from DynamoDB's own export format.
//!
//! A Lambda runs at most 15 minutes. For hundreds of millions of rows, DynamoDB
//! exports the table to S3 (`ExportTableToPointInTime`, [`mod@format`]), and Step
//! Functions (Distributed Map) fans a converter out over its data files:
//!
//! 1. [`start`]: an operator-scoped export job (admin scope, owner `operator-<name>`,
//!    trigger `event`), created `running`; the manifest is read and
//!    `scale/<job_id>/items.json` lists one [`ConvertRequest`] per data file;
//! 2. [`convert()`] (one per data file, concurrently): the data file becomes part
//!    `<index>` of the export through the same [`crate::compile::compile`] as every
//!    live export ([`convert::FileStore`]), and its rows and bytes are added to the
//!    job's progress;
//! 3. [`assemble()`]: the parts become one object (S3 multipart upload copying the
//!    parts, [`assemble::plan`]); the job succeeds with it, exactly as a worker's job
//!    does (download route, presigned links, emails), and the parts are deleted;
//! 4. [`fail`] (the state machine's catch): the job fails and the parts are deleted.
//!
//! Supported at scale: `leads` in csv, json and xlsx (delivered as a ZIP of
//! workbooks of at most 1,048,575 rows each), and `chats` in csv. Every other kind
//! and format needs the whole export at once (sessions join two tables, conversations
//! group messages, the chat documents carry a summary of the whole export) and is
//! refused up front, as are compression options. Rows are in the order of the
//! export's data files, not in time order: a DynamoDB export has no order. A chats
//! export at scale has every matching message: `limit` (the first N in time order)
//! is refused.
//!
//! The same functions serve the `export-scale` Lambda and `exportctl convert`.
//!
//! Past 600 lines, and one concern: the four step handlers and what they share. The
//! events, eligibility, S3 layout, formats, converter and assembler are submodules.

pub mod assemble;
pub mod convert;
pub mod eligibility;
pub mod events;
pub mod format;
pub mod layout;
pub mod native;
pub mod zipfmt;

use sha2::Digest;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use self::layout::cleanup;
use self::{
    assemble::{Limits, PlanStats},
    convert::{PartSpec, PartTuning, Sidecar, convert_part},
    format::{ManifestSummary, S3Url, manifest_files, read_summary},
    layout::{Keys, delete_keys},
};
pub use self::{
    eligibility::{Shape, at_scale},
    events::*,
};
use crate::{
    AppContext,
    auth::{Caller, Role},
    delivery,
    error::{Error, ErrorCode},
    export::{ByteSink, S3Sink, sink::ObjectTarget},
    jobs::{
        Job, JobStatus, Trigger, Worker,
        store::{JobStore, Lookup},
        worker,
    },
    kinds::chats::ChatFormat,
    notify::check_recipients,
    params::Id,
    spec::{Compression, ExportSpec, TableFormat},
    timefmt,
};

/// How long a job at scale stays claimed without progress. Start claims it, and every
/// counted part and the assembly renew it: a state machine that was stopped, timed out
/// or lost leaves a lease that runs out, and the next reader of the job fails it
/// ([`crate::jobs::worker::settle`]). Two hours outlast the slowest live step: a part
/// retried to its limit (three 900 s runs and their backoff) and an assembly's retries.
pub const SCALE_LEASE_SECS: i64 = 2 * 3600;
/// Data files one export may have (a DynamoDB export of terabytes has thousands).
pub const MAX_DATA_FILES: u32 = 100_000;
/// Sidecars read (and part objects checked) at once by the assembler.
const SIDECARS_IN_FLIGHT: usize = 16;

/// What a part is encoded from: the job's spec without the archive Excel is delivered
/// in (each part holds complete workbook entries; the assembler makes the archive).
fn part_spec(job: &Job) -> Result<(ExportSpec, Shape), Error> {
    let mut spec = job.spec()?;
    let shape = match &mut spec {
        ExportSpec::Leads(s) => {
            let shape = match s.format {
                TableFormat::Csv => Shape::Lines,
                TableFormat::Json => Shape::Json,
                TableFormat::Jsonl => Shape::Lines,
                TableFormat::Xlsx => Shape::Workbooks,
                TableFormat::Parquet => {
                    return Err(Error::bad_request(format!("job {} is not an export at scale", job.id)));
                }
            };
            s.options.compression = Compression::None;
            shape
        }
        ExportSpec::Chats(s)
            if matches!(s.format, ChatFormat::Csv | ChatFormat::Jsonl)
                && s.options.compression == Compression::None =>
        {
            Shape::Lines
        }
        _ => return Err(Error::bad_request(format!("job {} is not an export at scale", job.id))),
    };
    Ok((spec, shape))
}

/// Runs of one export from one DynamoDB export (failed or cancelled ones may be
/// started again, up to this many in all).
const MAX_RUNS_PER_EXPORT: u32 = 10;

/// Knobs of the converters and the assembler; the defaults are S3's limits and what
/// the Lambda uses (tests lower the part sizes).
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    pub part: PartTuning,
    pub limits: Limits,
    /// Upload parts copied or uploaded at once by the assembler. Copies run inside
    /// S3, so more in flight is more throughput; a part that is uploaded holds at
    /// most about two minimum part sizes, so 16 bound the assembler to ~160 MiB.
    pub concurrency: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            part: PartTuning::default(),
            limits: Limits::default(),
            concurrency: 16,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRecord {
    manifest: String,
    files: u32,
}

/// Answers one invocation of the `export-scale` function.
pub async fn handle(ctx: &AppContext, event: ScaleEvent) -> Result<Value, Error> {
    let value = match event {
        ScaleEvent::Start(r) => serde_json::to_value(start(ctx, r).await?),
        ScaleEvent::Convert(r) => serde_json::to_value(convert(ctx, r).await?),
        ScaleEvent::Assemble(r) => serde_json::to_value(assemble(ctx, r).await?),
        ScaleEvent::Fail(r) => serde_json::to_value(fail(ctx, r).await?),
    };
    value.map_err(|e| Error::internal("encoding error", e))
}

/// The operator an export at scale runs as: an admin named after the export.
fn operator(name: &str) -> Result<Caller, Error> {
    let name = Id::parse(name)
        .map_err(|m| Error::bad_request(format!("name {m}")))?
        .into_string();
    Ok(Caller {
        sub: format!("operator-{name}"),
        role: Role::Admin,
        client_id: None,
        company_id: None,
        email: None,
    })
}

/// Creates the job of an export at scale and lists its data files for the converters.
pub async fn start(ctx: &AppContext, req: StartRequest) -> Result<StartResponse, Error> {
    let now = timefmt::to_millis(ctx.clock.now());
    let caller = operator(&req.name)?;
    let mut export = req.export;
    if export.params.as_ref().is_some_and(|p| p.contains_key("limit")) {
        return Err(Error::bad_request(
            "limit is not supported at scale: a DynamoDB export has no order, so 'the first N' is not defined; \
             an export at scale has every matching row",
        ));
    }
    let notify = check_recipients(&ctx.config.notify, &caller, export.notify.take(), "export.notify")?;
    if !notify.webhooks.is_empty() {
        return Err(Error::bad_request(
            "export.notify.webhooks: not available to exports at scale: a webhook's secret belongs to a user of \
             the API (POST /api/webhook-secrets); use notify.emails",
        ));
    }
    let spec = export.into_spec(ctx, &caller, now)?;
    let (spec, _) = at_scale(spec)?;
    let manifest = req.manifest.0;
    let summary = read_summary(&ctx.aws.s3, &manifest).await?;
    // The id derives from what is exported, so a `start` that Step Functions retries
    // (its answer lost) finds its running job instead of making a second one. A failed
    // or cancelled run may be started again (its data files repaired, a redrive): the
    // next run takes the next id of the sequence.
    let bucket = ctx.config.delivery.bucket.clone();
    let store = JobStore::of(ctx);
    let mut fresh = None;
    for run in 0..MAX_RUNS_PER_EXPORT {
        let id = crate::jobs::hex(
            &sha2::Sha256::digest(
                format!(
                    "scale|{}|{manifest}|{}|{run}",
                    caller.sub,
                    crate::jobs::spec_hash(&spec)
                )
                .as_bytes(),
            )[..16],
        );
        let existing = match store.lookup(&id).await? {
            Lookup::Absent => {
                fresh = Some(id);
                break;
            }
            // A deleted run's id is not made again: the next of the sequence is.
            Lookup::Deleted => continue,
            Lookup::Live(job) => job.status,
        };
        match existing {
            JobStatus::Running => {
                let keys = Keys::of(&id);
                let record = read_start(ctx, &keys).await?;
                return Ok(StartResponse {
                    job_id: id,
                    bucket,
                    items_key: keys.items(),
                    files: record.files,
                });
            }
            JobStatus::Succeeded => {
                return Err(Error::conflict(
                    ErrorCode::AlreadyExported,
                    format!(
                        "this export of this DynamoDB export already succeeded as job {id}; download it, or export again from a new DynamoDB export"
                    ),
                ));
            }
            _ => {}
        }
    }
    let id = fresh.ok_or_else(|| {
        Error::conflict(
            ErrorCode::TooManyRuns,
            format!("this export of this DynamoDB export failed {MAX_RUNS_PER_EXPORT} times; export again from a new DynamoDB export"),
        )
    })?;
    let keys = Keys::of(&id);
    let result = async {
        let files = write_items(ctx, &id, &keys, &summary, &manifest).await?;
        let record = StartRecord {
            manifest: manifest.to_string(),
            files,
        };
        let body = serde_json::to_vec(&record).map_err(|e| Error::internal("encoding error", e))?;
        format::put(&ctx.aws.s3, &bucket, &keys.start(), body, "application/json").await?;
        let mut job = Job::owned(
            id.clone(),
            &spec,
            &caller.sub,
            caller.tenant(),
            Trigger::Event,
            now,
            ctx.config.jobs.retention_days,
        );
        job.status = JobStatus::Running;
        job.started_at = Some(now);
        job.attempts = 1;
        job.worker = Some(Worker::Scale.as_str().into());
        job.lease_until = Some(now.timestamp() + SCALE_LEASE_SECS);
        job.notify = notify.emails;
        job.notify_on_empty = notify.on_empty;
        JobStore::of(ctx).put_new(&job).await?;
        Ok::<_, Error>(files)
    }
    .await;
    match result {
        Ok(files) => {
            tracing::info!(job_id = %id, kind = spec.kind(), format = spec.format_name(), files, manifest = %manifest, "export at scale started");
            Ok(StartResponse {
                job_id: id,
                bucket,
                items_key: keys.items(),
                files,
            })
        }
        Err(e) => {
            cleanup(ctx, &id).await;
            Err(e)
        }
    }
}

/// Writes `items.json` (a JSON array of [`ConvertRequest`]s, one per data file, in
/// the manifest's order), streamed; answers the number of files.
async fn write_items(
    ctx: &AppContext,
    job_id: &str,
    keys: &Keys,
    summary: &ManifestSummary,
    manifest: &S3Url,
) -> Result<u32, Error> {
    let target = ObjectTarget {
        bucket: ctx.config.delivery.bucket.clone(),
        key: keys.items(),
        content_type: "application/json".into(),
        content_disposition: "attachment".into(),
    };
    let mut sink = S3Sink::new(ctx.aws.s3.clone(), target, None, ctx.config.delivery.part_bytes);
    let job_id = JobId::try_from(job_id.to_string()).map_err(|e| Error::internal("job error", e))?;
    let result = async {
        let mut files = manifest_files(&ctx.aws.s3, summary, manifest);
        let mut count = 0u32;
        let mut out = b"[".to_vec();
        while let Some((data_file, _)) = files.try_next().await? {
            if count >= MAX_DATA_FILES {
                return Err(Error::bad_request(format!(
                    "the export has more than {MAX_DATA_FILES} data files"
                )));
            }
            if count > 0 {
                out.push(b',');
            }
            let item = ConvertRequest {
                job_id: job_id.clone(),
                index: Index(count),
                data_file: Location(data_file),
            };
            serde_json::to_writer(&mut out, &item).map_err(|e| Error::internal("encoding error", e))?;
            count += 1;
            if out.len() >= 1024 * 1024 {
                sink.write(std::mem::take(&mut out)).await?;
            }
        }
        out.push(b']');
        sink.write(out).await?;
        Ok(count)
    }
    .await;
    match result {
        Ok(count) => {
            sink.finish().await?;
            Ok(count)
        }
        Err(e) => {
            sink.abort().await;
            Err(e)
        }
    }
}

/// The job, if it is an export at scale that is still running.
async fn running_job(ctx: &AppContext, id: &JobId) -> Result<Job, Error> {
    let job = JobStore::of(ctx)
        .get(id.as_str())
        .await?
        .ok_or_else(|| Error::NotFound("no such export job".into()))?;
    if !job.at_scale() && job.status == JobStatus::Running {
        return Err(Error::conflict(
            ErrorCode::JobNotAtScale,
            "the job is not an export at scale",
        ));
    }
    if job.status != JobStatus::Running {
        return Err(Error::conflict(
            ErrorCode::JobCancelled,
            format!("the export job is {}", job.status.as_str()),
        ));
    }
    Ok(job)
}

/// Converts one data file into its part (see [`convert()`]).
pub async fn convert(ctx: &AppContext, req: ConvertRequest) -> Result<ConvertResponse, Error> {
    convert_with(ctx, req, &Tuning::default()).await
}

/// [`convert()`] with other knobs (tests, `exportctl convert`).
pub async fn convert_with(ctx: &AppContext, req: ConvertRequest, tuning: &Tuning) -> Result<ConvertResponse, Error> {
    let job = running_job(ctx, &req.job_id).await?;
    let (spec, shape) = part_spec(&job)?;
    let keys = Keys::of(&job.id);
    let index = req.index.0;
    let part = PartSpec {
        index,
        source: Some(req.data_file.0),
        target: part_target(ctx, &keys, index),
        sidecar_key: keys.sidecar(index),
    };
    let sidecar = convert_part(&ctx.aws.s3, &spec, shape, part, &tuning.part).await?;
    if let Err(e) = count_part(ctx, &job.id, &sidecar).await {
        // The job ended while this part was made (failed, cancelled): its cleanup may
        // have run already, so this part deletes itself.
        if e.code() == ErrorCode::JobCancelled {
            delete_keys(ctx, vec![keys.part(index), keys.sidecar(index)]).await;
        }
        return Err(e);
    }
    Ok(ConvertResponse {
        index,
        rows: sidecar.rows,
        bytes: sidecar.bytes,
    })
}

fn part_target(ctx: &AppContext, keys: &Keys, index: u32) -> ObjectTarget {
    ObjectTarget {
        bucket: ctx.config.delivery.bucket.clone(),
        key: keys.part(index),
        content_type: "application/octet-stream".into(),
        content_disposition: "attachment".into(),
    }
}

/// Adds a finished part's rows and bytes to the job's progress, once per part
/// (a retried part is counted once: the job remembers the parts it counted).
async fn count_part(ctx: &AppContext, job_id: &str, part: &Sidecar) -> Result<(), Error> {
    let store = JobStore::of(ctx);
    let lease_until = ctx.clock.now().timestamp() + SCALE_LEASE_SECS;
    if store
        .count_scale_part(job_id, part.index, part.rows, part.bytes, lease_until)
        .await?
    {
        return Ok(());
    }
    // Counted by an earlier attempt, or the job is no longer running.
    match store.get(job_id).await? {
        Some(j) if j.status == JobStatus::Running => Ok(()),
        Some(j) => Err(Error::conflict(
            ErrorCode::JobCancelled,
            format!("the export job is {}", j.status.as_str()),
        )),
        None => Err(Error::NotFound("no such export job".into())),
    }
}

/// Assembles the parts into the export's file (see [`assemble()`]).
pub async fn assemble(ctx: &AppContext, req: AssembleRequest) -> Result<AssembleResponse, Error> {
    Ok(assemble_with(ctx, req, &Tuning::default()).await?.0)
}

/// [`assemble()`] with other knobs; also answers what the plan did.
pub async fn assemble_with(
    ctx: &AppContext,
    req: AssembleRequest,
    tuning: &Tuning,
) -> Result<(AssembleResponse, PlanStats), Error> {
    assemble_watched(ctx, req, tuning, &crate::progress::Unwatched).await
}

/// [`assemble_with`], telling `progress` the upload parts planned and each one done.
pub async fn assemble_watched(
    ctx: &AppContext,
    req: AssembleRequest,
    tuning: &Tuning,
    progress: &dyn crate::progress::Progress,
) -> Result<(AssembleResponse, PlanStats), Error> {
    let store = JobStore::of(ctx);
    let job = store
        .get(req.job_id.as_str())
        .await?
        .ok_or_else(|| Error::NotFound("no such export job".into()))?;
    // A retried assembly of a job that succeeded answers what it made.
    if job.status == JobStatus::Succeeded
        && let Some(key) = &job.s3_key
    {
        return Ok((
            AssembleResponse {
                job_id: job.id.clone(),
                rows: job.rows.unwrap_or(0),
                bytes: job.size_bytes.unwrap_or(0),
                s3_key: key.clone(),
            },
            PlanStats::default(),
        ));
    }
    let job = running_job(ctx, &req.job_id).await?;
    let until = ctx.clock.now().timestamp() + SCALE_LEASE_SECS;
    if store.renew_lease(&job.id, &Worker::Scale, until).await?.is_none() {
        return Err(Error::conflict(
            ErrorCode::JobCancelled,
            "the export job is no longer running",
        ));
    }
    let started = Instant::now();
    let result = assemble_job(ctx, &job, req.files.0, tuning, progress).await;
    let end = ctx.clock.now();
    match result {
        Ok((rows, bytes, key, stats)) => match store
            .finish_succeeded(&job.id, &Worker::Scale, end, rows, bytes, &key)
            .await?
        {
            Some(done) => {
                tracing::info!(job_id = %job.id, rows, bytes, ?stats, "export at scale assembled");
                worker::finished(ctx, &done, Some(&Worker::Scale), started.elapsed(), None).await;
                cleanup(ctx, &job.id).await;
                Ok((
                    AssembleResponse {
                        job_id: job.id,
                        rows,
                        bytes,
                        s3_key: key,
                    },
                    stats,
                ))
            }
            None => {
                // Cancelled while assembling: no file stays.
                delivery::discard(ctx, &key).await;
                cleanup(ctx, &job.id).await;
                Err(Error::conflict(ErrorCode::JobCancelled, "the export job was cancelled"))
            }
        },
        Err(e) => {
            record_failure(ctx, &job.id, &e, started).await;
            Err(e)
        }
    }
}

/// Marks a job failed (it stays failed whatever comes later) and deletes its parts.
async fn record_failure(ctx: &AppContext, job_id: &str, e: &Error, started: Instant) {
    tracing::error!(job_id, error = %e.cause_chain(), "export at scale failed");
    let message = if e.is_server_error() {
        format!("Export failed: {e}")
    } else {
        e.to_string()
    };
    let store = JobStore::of(ctx);
    match store
        .finish_failed(job_id, Some(&Worker::Scale), ctx.clock.now(), e.code(), &message)
        .await
    {
        Ok(Some(failed)) => worker::finished(ctx, &failed, Some(&Worker::Scale), started.elapsed(), None).await,
        Ok(None) => {}
        Err(db) => {
            tracing::error!(job_id, error = %db.cause_chain(), "could not record the failure of an export at scale")
        }
    }
    cleanup(ctx, job_id).await;
}

/// Reads part `index`'s sidecar and checks that its part is there, whole.
async fn read_sidecar(ctx: &AppContext, keys: &Keys, index: u32, files: u32) -> Result<Sidecar, Error> {
    let bucket = &ctx.config.delivery.bucket;
    let missing = || {
        Error::conflict(
            ErrorCode::PartMissing,
            format!("part {index} of {files} was not converted; convert every data file before assembling"),
        )
    };
    let bytes = format::get(&ctx.aws.s3, bucket, &keys.sidecar(index))
        .await?
        .ok_or_else(missing)?;
    let sidecar: Sidecar =
        serde_json::from_slice(&bytes).map_err(|e| Error::internal("export error", format!("sidecar {index}: {e}")))?;
    let head = ctx
        .aws
        .s3
        .head_object()
        .bucket(bucket)
        .key(keys.part(index))
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error().is_some_and(|s| s.is_not_found()) {
                missing()
            } else {
                Error::storage(e)
            }
        })?;
    let size = head.content_length.and_then(|l| u64::try_from(l).ok());
    if sidecar.index != index || size != Some(sidecar.bytes) {
        return Err(Error::conflict(
            ErrorCode::PartMismatch,
            format!("part {index} does not match its sidecar; convert its data file again"),
        ));
    }
    Ok(sidecar)
}

/// What `start` recorded for a job: its manifest and number of data files.
async fn read_start(ctx: &AppContext, keys: &Keys) -> Result<StartRecord, Error> {
    let bytes = format::get(&ctx.aws.s3, &ctx.config.delivery.bucket, &keys.start())
        .await?
        .ok_or_else(|| Error::internal("export error", format!("no start record at {}", keys.start())))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::internal("export error", e))
}

/// Checks the parts against the export's manifest: each part converted the data file
/// the manifest lists at its index, and saw its item count and MD5 checksum.
async fn check_manifest(ctx: &AppContext, keys: &Keys, parts: &[Sidecar]) -> Result<(), Error> {
    let record = read_start(ctx, keys).await?;
    if record.files as usize != parts.len() {
        return Err(Error::conflict(
            ErrorCode::PartMissing,
            format!(
                "the export has {} data files; {} were assembled",
                record.files,
                parts.len()
            ),
        ));
    }
    let manifest = S3Url::parse(&record.manifest).map_err(|e| Error::internal("export error", e))?;
    let summary = read_summary(&ctx.aws.s3, &manifest).await?;
    let mut files = manifest_files(&ctx.aws.s3, &summary, &manifest);
    for part in parts {
        let (url, file) = files.try_next().await?.ok_or_else(|| {
            Error::conflict(
                ErrorCode::DataFileMismatch,
                "the export's manifest lists fewer data files than were converted",
            )
        })?;
        let same_file = part.data_file.as_deref() == Some(url.to_string().as_str());
        let same_items = part.items == file.item_count;
        let same_bytes = part.md5.as_deref() == Some(file.md5_checksum.as_str());
        if !(same_file && same_items && same_bytes) {
            return Err(Error::conflict(
                ErrorCode::DataFileMismatch,
                format!(
                    "data file {} ({}) does not match the export's manifest: {} items read, {} listed{}",
                    part.index,
                    url.file_name(),
                    part.items,
                    file.item_count,
                    if same_bytes { "" } else { "; its MD5 checksum differs" }
                ),
            ));
        }
    }
    Ok(())
}

/// Builds the file from the parts: `(rows, bytes, object key, plan stats)`.
async fn assemble_job(
    ctx: &AppContext,
    job: &Job,
    files: u32,
    tuning: &Tuning,
    progress: &dyn crate::progress::Progress,
) -> Result<(u64, u64, String, PlanStats), Error> {
    let (part_spec, shape) = part_spec(job)?;
    let spec = job.spec()?;
    let keys = Keys::of(&job.id);
    let parts: Vec<Sidecar> = if files == 0 {
        // A table without data files: its one part, made here from nothing, holds
        // what an empty export holds (the header, `[`, an empty workbook).
        let part = PartSpec {
            index: 0,
            source: None,
            target: part_target(ctx, &keys, 0),
            sidecar_key: keys.sidecar(0),
        };
        vec![convert_part(&ctx.aws.s3, &part_spec, shape, part, &tuning.part).await?]
    } else {
        let parts: Vec<Sidecar> = stream::iter(0..files)
            .map(|i| read_sidecar(ctx, &keys, i, files))
            .buffered(SIDECARS_IN_FLIGHT)
            .try_collect()
            .await?;
        check_manifest(ctx, &keys, &parts).await?;
        parts
    };
    let rows: u64 = parts.iter().map(|p| p.rows).sum();
    let (ranges, tail) = assemble::layout(shape, &parts, zipfmt::dos_time(spec.as_of()));
    let bytes = ranges.iter().map(assemble::Range::len).sum::<u64>() + tail.len() as u64;
    let plan = assemble::plan(&ranges, tail.len() as u64, &tuning.limits)?;
    let sizes: Vec<u64> = parts.iter().map(|p| p.bytes).collect();
    let stats = PlanStats::of(&plan, &sizes);
    let target = delivery::target(ctx, &spec);
    let part_keys: Vec<String> = (0..parts.len() as u32).map(|i| keys.part(i)).collect();
    assemble::execute(
        &ctx.aws.s3,
        &target,
        &part_keys,
        plan,
        &tail,
        tuning.concurrency,
        progress,
    )
    .await?;
    Ok((rows, bytes, target.key, stats))
}

/// The state machine's catch: the job fails (its clients see an opaque message; the
/// cause goes to the log only) and its parts are deleted.
pub async fn fail(ctx: &AppContext, req: FailRequest) -> Result<FailResponse, Error> {
    let id = req.job_id.as_str();
    let cause = req.cause.as_deref().map(|c| crate::values::text::sanitize_to(c, 4096));
    tracing::error!(job_id = id, error = ?req.error, cause = ?cause, "export at scale stopped");
    // Step Functions error names (`States.Timeout`, `export_failed`) are safe to show.
    let name = req.error.as_deref().filter(|e| {
        !e.is_empty() && e.len() <= 64 && e.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    });
    let message = match name {
        Some(name) => format!("Export failed: the export at scale stopped ({name})"),
        None => "Export failed: the export at scale stopped".to_string(),
    };
    let store = JobStore::of(ctx);
    let status = match store
        .finish_failed(
            id,
            Some(&Worker::Scale),
            ctx.clock.now(),
            ErrorCode::ExportFailed,
            &message,
        )
        .await?
    {
        Some(failed) => {
            worker::finished(ctx, &failed, Some(&Worker::Scale), std::time::Duration::ZERO, None).await;
            JobStatus::Failed
        }
        None => {
            store
                .get(id)
                .await?
                .ok_or_else(|| Error::NotFound("no such export job".into()))?
                .status
        }
    };
    if status != JobStatus::Succeeded {
        cleanup(ctx, id).await;
    }
    Ok(FailResponse {
        job_id: id.to_string(),
        status: status.as_str().to_string(),
    })
}

/// A job's JSON as the job API shows it (for `exportctl convert`).
pub fn job_view(ctx: &AppContext, job: &Job) -> Value {
    let mut v = crate::jobs::resource(job, None, ctx.config.jobs.retention_days);
    v["s3_key"] = json!(job.s3_key);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_refuse_unknown_fields_and_bad_values() {
        let ok = json!({"convert": {"job_id": "0123456789abcdef0123456789abcdef", "index": 3, "data_file": "s3://bucket/a/data/x.json.gz"}});
        let ScaleEvent::Convert(c) = serde_json::from_value::<ScaleEvent>(ok.clone()).unwrap() else {
            panic!("not a convert")
        };
        assert_eq!(serde_json::to_value(&c).unwrap(), ok["convert"], "items round-trip");
        for bad in [
            json!({"convert": {"job_id": "0123456789abcdef0123456789abcdef", "index": 3, "data_file": "s3://bucket/k", "x": 1}}),
            json!({"convert": {"job_id": "0123456789ABCDEF0123456789ABCDEF", "index": 3, "data_file": "s3://bucket/k"}}),
            json!({"convert": {"job_id": "0123456789abcdef0123456789abcdef", "index": -1, "data_file": "s3://bucket/k"}}),
            json!({"convert": {"job_id": "0123456789abcdef0123456789abcdef", "index": 100000, "data_file": "s3://bucket/k"}}),
            json!({"convert": {"job_id": "0123456789abcdef0123456789abcdef", "index": 1, "data_file": "https://bucket/k"}}),
            json!({"assemble": {"job_id": "0123456789abcdef0123456789abcdef"}}),
            json!({"start": {"name": "n", "manifest": "s3://bucket/k"}}),
            json!({"start": {"name": "n", "export": {"kind": "leads", "nope": 1}, "manifest": "s3://bucket/k"}}),
            json!({"run": {}}),
            json!({"fail": {"job_id": "0123456789abcdef0123456789abcdef"}, "convert": {}}),
        ] {
            assert!(serde_json::from_value::<ScaleEvent>(bad.clone()).is_err(), "{bad}");
        }
        assert!(
            serde_json::from_value::<ScaleEvent>(json!({"fail": {"job_id": "0123456789abcdef0123456789abcdef"}}))
                .is_ok()
        );
    }
}
