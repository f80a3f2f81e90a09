//! The worker: claims a job, runs its spec through the engine into S3 while writing
//! progress, and records the outcome.
//!
//! Exactly one worker runs a job: the claim is a conditional write (queued ->
//! running), and every later write (heartbeat, outcome) is conditional on still
//! holding the claim. A worker that lost its claim (the job was cancelled, or its
//! lease expired and another worker took over) stops at its next heartbeat and
//! aborts its upload, so it never leaves an object behind; an upload that completed
//! just before the claim was lost is deleted.

use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt, TryStreamExt};

use super::{
    Job, JobStatus, Worker,
    store::{Claim, JobStore},
};
use crate::{
    AppContext,
    audit::{self, AuditOutcome, AuditRecord},
    compile::compile,
    delivery,
    error::{Error, ErrorCode},
    export::{self, ByteSink, Delivered, S3Sink},
    metrics::{self, ExportMetric},
};

/// The error that stops a worker whose claim is gone.
fn claim_lost() -> Error {
    Error::conflict(ErrorCode::JobCancelled, "the job was cancelled or taken over")
}

/// The error of work whose owner no longer has the rights it was made under.
pub fn owner_access_changed() -> Error {
    Error::conflict(
        ErrorCode::OwnerAccessChanged,
        "The owner of this export no longer has access to its data",
    )
}

/// What a delivery of a job's message came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The job ran here, or there was nothing to do: the message is done.
    Done,
    /// Another worker is running the job: keep the message, so that if that worker
    /// dies the job is run again when the message comes back.
    Busy,
    /// This worker was interrupted (its process is stopping) and gave the job back
    /// (`queued` again): the message should be delivered again at once.
    Released,
}

/// Handles one delivery of a job's message. `Err` only when the job's state could
/// not be read or written (the message should come back); a failed export is an
/// outcome, recorded on the job.
pub async fn process(ctx: &AppContext, job_id: &str) -> Result<Delivery, Error> {
    process_until(ctx, job_id, std::future::pending()).await
}

/// [`process`], unless `interrupt` completes first: then the run stops (its upload
/// is never completed) and the job is given back, `queued`, for the next delivery
/// ([`JobStore::release`]). The local poller interrupts a job still running a grace
/// period after its process was asked to stop.
pub async fn process_until(
    ctx: &AppContext,
    job_id: &str,
    interrupt: impl Future<Output = ()>,
) -> Result<Delivery, Error> {
    let store = JobStore::of(ctx);
    let cfg = &ctx.config.jobs;
    let worker = Worker::claim();
    let now = ctx.clock.now();
    let job = match store
        .claim(job_id, worker.as_str(), now, cfg.lease_secs, cfg.max_attempts)
        .await?
    {
        Claim::Claimed(job) => *job,
        Claim::Skip(why) => {
            tracing::info!(job_id = %crate::values::text::sanitize(job_id), why, "job message ignored");
            return Ok(Delivery::Done);
        }
        Claim::Busy => {
            tracing::info!(job_id = %crate::values::text::sanitize(job_id), "another worker is running the job");
            return Ok(Delivery::Busy);
        }
        Claim::Exhausted => {
            if let Some(job) = store.get(job_id).await? {
                store.release_slot_of(&job).await;
                finished(ctx, &job, None, Duration::ZERO, None).await;
            }
            return Ok(Delivery::Done);
        }
    };
    let queue_wait = (now - job.created_at).to_std().unwrap_or_default();
    let started = Instant::now();
    let running = AssertUnwindSafe(run(ctx, &store, &job, &worker)).catch_unwind();
    let result = tokio::select! {
        result = running => {
            result.unwrap_or_else(|_| Err(Error::internal("internal error", "panic in the export worker")))
        }
        () = interrupt => {
            let released = store.release(&job.id, &worker).await?.is_some();
            tracing::warn!(job_id = %job.id, released, "job interrupted: its worker is stopping");
            return Ok(if released { Delivery::Released } else { Delivery::Done });
        }
    };
    let end = ctx.clock.now();
    let final_job = match result {
        Ok((rows, bytes, key)) => match store.finish_succeeded(&job.id, &worker, end, rows, bytes, &key).await? {
            Some(done) => Some(done),
            None => {
                // Cancelled (or taken over) after the upload completed: no file stays.
                delivery::discard(ctx, &key).await;
                None
            }
        },
        Err(e) if e.code() == ErrorCode::JobCancelled => None,
        Err(e) => {
            tracing::error!(job_id = %job.id, error = %e.cause_chain(), "export job failed");
            let message = if e.is_server_error() {
                format!("Export failed: {e}")
            } else {
                e.to_string()
            };
            store
                .finish_failed(&job.id, Some(&worker), end, e.code(), &message)
                .await?
        }
    };
    match final_job {
        Some(done) => {
            store.release_slot_of(&done).await;
            finished(ctx, &done, Some(&worker), started.elapsed(), Some(queue_wait)).await;
        }
        None => {
            // The claim was lost: whoever made the job final (a cancel) released its slot.
            if let Some(now_job) = store.get(&job.id).await?
                && now_job.status == JobStatus::Cancelled
            {
                finished(ctx, &now_job, Some(&worker), started.elapsed(), Some(queue_wait)).await;
            }
        }
    }
    Ok(Delivery::Done)
}

/// Audit record, metrics and log line of a job that reached a final state.
pub(crate) async fn finished(
    ctx: &AppContext,
    job: &Job,
    worker: Option<&Worker>,
    took: Duration,
    queue_wait: Option<Duration>,
) {
    let now = ctx.clock.now();
    let scope = job.spec().map(|s| s.audit_scope()).unwrap_or_else(|_| "none".into());
    let mut record = AuditRecord::new(&job.id, "worker", now);
    record.client_scope = scope;
    record.caller = Some(job.owner.clone());
    record.job_id = Some(job.id.clone());
    record.outcome = match job.status {
        JobStatus::Succeeded => AuditOutcome::Success,
        JobStatus::Cancelled => AuditOutcome::Cancelled,
        _ => AuditOutcome::Failed,
    };
    record.status = match job.status {
        JobStatus::Succeeded => 200,
        JobStatus::Cancelled => 409,
        _ => 500,
    };
    record.error_code = job.error_code.clone();
    record.records = job.rows.or(Some(job.rows_done));
    record.bytes = job.size_bytes.or(Some(job.bytes_done));
    record.s3_key = job.s3_key.clone();
    record.duration_ms = took.as_millis() as u64;
    if let Err(e) = audit::write(&ctx.aws.dynamodb, &ctx.config.tables.audit, &record).await {
        tracing::error!(job_id = %job.id, error = %e.cause_chain(), "audit record of a job not written");
    }
    metrics::emit(
        &ExportMetric {
            kind: &job.kind,
            format: &job.format,
            outcome: match job.status {
                JobStatus::Succeeded => metrics::Outcome::Succeeded,
                JobStatus::Cancelled => metrics::Outcome::Cancelled,
                _ => metrics::Outcome::Failed,
            },
            trigger: metrics::Ran::Job,
            rows: record.records.unwrap_or(0),
            bytes: record.bytes.unwrap_or(0),
            duration_ms: record.duration_ms,
            queue_wait_ms: queue_wait.map(|w| w.as_millis() as u64),
            error_code: job.error_code.as_deref(),
            id: &job.id,
        },
        now,
    );
    tracing::info!(
        job_id = %job.id,
        worker = worker.map(Worker::as_str),
        kind = %job.kind,
        status = job.status.as_str(),
        rows = record.records,
        bytes = record.bytes,
        duration_ms = record.duration_ms,
        "export job finished"
    );
    crate::notify::email::send_for(ctx, job).await;
    crate::webhooks::deliver_for(ctx, job, &JobWebhooks { ctx, job_id: &job.id }).await;
}

/// Writes a job's webhook deliveries on its record as they progress.
struct JobWebhooks<'a> {
    ctx: &'a AppContext,
    job_id: &'a str,
}

impl crate::webhooks::Recorder for JobWebhooks<'_> {
    fn record<'a>(&'a self, hooks: &'a [crate::values::webhook::Webhook]) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(e) = JobStore::of(self.ctx).record_webhooks(self.job_id, hooks).await {
                tracing::error!(job_id = %self.job_id, error = %e.cause_chain(), "webhook deliveries not recorded");
            }
        })
    }
}

/// Writes progress and renews the lease at most every `JOB_PROGRESS_SECONDS`, and
/// learns there whether the job is still this worker's.
struct Heartbeat {
    store: JobStore,
    job_id: String,
    worker: Worker,
    rows: AtomicU64,
    bytes: Arc<AtomicU64>,
    last: Mutex<Instant>,
    every: Duration,
    lease_secs: u64,
    clock: Arc<dyn crate::clock::Clock>,
    /// When the run must stop (`JOB_MAX_SECONDS` after it started).
    deadline: Instant,
}

impl Heartbeat {
    async fn page(&self, rows: usize) -> Result<(), Error> {
        self.rows.fetch_add(rows as u64, Ordering::Relaxed);
        if Instant::now() >= self.deadline {
            return Err(Error::conflict(
                ErrorCode::ExportTooLarge,
                "The export did not finish within one worker run (15 minutes); narrow it (dates, limit, filters) \
                 and start it again",
            ));
        }
        let due = {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() >= self.every {
                *last = Instant::now();
                true
            } else {
                false
            }
        };
        if due {
            self.beat().await?;
        }
        Ok(())
    }

    async fn beat(&self) -> Result<(), Error> {
        let held = self
            .store
            .heartbeat(
                &self.job_id,
                &self.worker,
                self.rows.load(Ordering::Relaxed),
                self.bytes.load(Ordering::Relaxed),
                self.clock.now(),
                self.lease_secs,
            )
            .await?;
        if held.is_none() {
            return Err(claim_lost());
        }
        Ok(())
    }
}

/// A sink that publishes how many bytes went through it.
struct Counted<S> {
    inner: S,
    bytes: Arc<AtomicU64>,
}

impl<S: ByteSink> ByteSink for Counted<S> {
    type Output = S::Output;

    async fn write(&mut self, chunk: Vec<u8>) -> Result<(), Error> {
        self.inner.write(chunk).await?;
        self.bytes.store(self.inner.bytes_written(), Ordering::Relaxed);
        Ok(())
    }

    fn bytes_written(&self) -> u64 {
        self.inner.bytes_written()
    }

    async fn finish(self) -> Result<Self::Output, Error> {
        self.inner.finish().await
    }

    async fn abort(self) {
        self.inner.abort().await
    }
}

/// Runs a claimed job's export into S3: `(rows, bytes, object key)`.
async fn run(ctx: &AppContext, store: &JobStore, job: &Job, worker: &Worker) -> Result<(u64, u64, String), Error> {
    // A job runs with its owner's rights as they are now (crate::rights): a job
    // queued before its owner lost its scope exports nothing.
    if !crate::rights::still_granted(ctx, &job.owner, &job.owner_tenant).await? {
        return Err(owner_access_changed());
    }
    let spec = job.spec()?;
    let mut pipeline = compile(&spec, ctx.store.as_ref())?;
    let bytes = Arc::new(AtomicU64::new(0));
    let heartbeat = Arc::new(Heartbeat {
        store: store.clone(),
        job_id: job.id.clone(),
        worker: worker.clone(),
        rows: AtomicU64::new(0),
        bytes: Arc::clone(&bytes),
        last: Mutex::new(Instant::now()),
        every: Duration::from_secs(ctx.config.jobs.progress_secs),
        lease_secs: ctx.config.jobs.lease_secs,
        clock: Arc::clone(&ctx.clock),
        deadline: Instant::now() + Duration::from_secs(ctx.config.jobs.max_run_secs),
    });
    let beat = Arc::clone(&heartbeat);
    pipeline.rows = pipeline
        .rows
        .and_then(move |page| {
            let beat = Arc::clone(&beat);
            async move {
                beat.page(page.len()).await?;
                Ok(page)
            }
        })
        .boxed();
    let target = delivery::target(ctx, &spec);
    let sink = Counted {
        inner: S3Sink::new(ctx.aws.s3.clone(), target, None, ctx.config.delivery.part_bytes),
        bytes,
    };
    let (summary, delivered) = export::run(pipeline, sink).await?;
    let key = match delivered {
        Delivered::Stored { key, .. } => key,
        Delivered::Inline(_) => return Err(Error::internal("export error", "a job's file was not stored")),
    };
    Ok((summary.rows, summary.bytes, key))
}

/// A running job whose worker vanished after its last allowed attempt (its message
/// went to the dead-letter queue) would stay `running` forever: readers settle it. So
/// does a job at scale whose state machine stopped making progress (stopped, timed
/// out, lost): its lease ran out, and its parts are deleted.
pub async fn settle(ctx: &AppContext, job: Job, now: DateTime<Utc>) -> Result<Job, Error> {
    let cfg = &ctx.config.jobs;
    let lease_over = job.lease_until.is_some_and(|l| l < now.timestamp());
    let at_scale = job.at_scale();
    let holder = job.held_by();
    if job.status != JobStatus::Running || !lease_over || (!at_scale && job.attempts < cfg.max_attempts) {
        return Ok(job);
    }
    let message = if at_scale {
        "The export at scale stopped making progress; start it again"
    } else {
        "The export stopped unexpectedly too many times; start it again"
    };
    let store = JobStore::of(ctx);
    // Conditional on the lease still being out and on the same holder: a heartbeat, a
    // counted part or a new claim meanwhile keeps the job alive.
    match store
        .fail_lapsed(&job.id, holder.as_ref(), now, ErrorCode::WorkerLost, message)
        .await?
    {
        Some(failed) => {
            store.release_slot_of(&failed).await;
            finished(ctx, &failed, at_scale.then_some(&Worker::Scale), Duration::ZERO, None).await;
            if at_scale {
                crate::scale::layout::cleanup(ctx, &failed.id).await;
            }
            Ok(failed)
        }
        None => Ok(store.get(&job.id).await?.unwrap_or(job)),
    }
}
