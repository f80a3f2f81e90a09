//! The sweeper: the jobs table, not the queue, is the source of truth.
//!
//! A job's message can be lost between `SendMessage` and a worker: a receive whose
//! answer never reached its poller (a process killed mid long-poll, a network
//! failure) leaves the message invisible for the queue's visibility timeout (90
//! minutes in AWS), and a worker that died mid-job leaves its message invisible as
//! long. The sweeper reads every queued and running job (the sparse `by_active`
//! index, never a scan) and sends to the queue again each job that
//!
//! - has been `queued` for `JOB_REQUEUE_SECONDS` without being claimed, or
//! - is `running` with its lease run out (its worker died),
//!
//! at most once per `JOB_REQUEUE_SECONDS` per job (a conditional write on the job's
//! last requeue, so concurrent sweepers send one message). A duplicate message is
//! harmless: the worker's claim is one conditional write, so however many messages
//! name a job it runs once. A running job that cannot be run again (its attempts
//! used up) is settled instead: failed with `worker_lost`, as its next read would
//! have failed it. Exports at scale are not the queue's: their state machine runs
//! them, and their readers settle them (docs/scale.md).
//!
//! It runs in the scheduler's minute tick in AWS (`functions/export-scheduler`) and
//! beside the poller locally (`exportctl serve`, `exportctl worker`); so a lost
//! delivery delays a job by at most `JOB_REQUEUE_SECONDS` plus one sweep interval.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Job, JobStatus, queue, store::JobStore, worker};
use crate::{AppContext, metrics, schema::JOB_ACTIVE_SHARDS};

/// What one sweep did.
#[derive(Debug, Default, Serialize)]
pub struct SweepReport {
    /// Queued and running jobs read.
    pub active: usize,
    /// Jobs sent to the queue again, by id.
    pub requeued: Vec<String>,
    /// Running jobs failed with `worker_lost` (no attempt left, or at scale).
    pub settled: Vec<String>,
    /// Partitions or jobs that could not be handled (logged; the next sweep retries).
    pub failed: usize,
}

/// Why a job is sent to the queue again (the `reason` of the `Requeued` metric).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Queued for `JOB_REQUEUE_SECONDS` without a claim: its message was lost.
    Unclaimed,
    /// Running with its lease run out: its worker died.
    LeaseExpired,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unclaimed => "unclaimed",
            Reason::LeaseExpired => "lease_expired",
        }
    }
}

/// What the sweeper does with one active job at `now`.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Nothing,
    Requeue(Reason),
    Settle,
}

/// The decision for one job, from its record alone.
pub fn action(job: &Job, now: DateTime<Utc>, requeue_secs: u64, max_attempts: u32) -> Action {
    let period = chrono::Duration::seconds(requeue_secs as i64);
    // Never more often than once a period per job, whatever its state.
    if job.requeued_at.is_some_and(|at| now - at < period) {
        return Action::Nothing;
    }
    match job.status {
        JobStatus::Queued if now - job.created_at >= period => Action::Requeue(Reason::Unclaimed),
        JobStatus::Running if job.at_scale() => Action::Nothing,
        JobStatus::Running if job.lease_until.is_some_and(|l| l < now.timestamp()) => {
            if job.attempts >= max_attempts {
                Action::Settle
            } else {
                Action::Requeue(Reason::LeaseExpired)
            }
        }
        _ => Action::Nothing,
    }
}

/// One sweep as of `now`.
pub async fn sweep(ctx: &AppContext, now: DateTime<Utc>) -> SweepReport {
    let store = JobStore::of(ctx);
    let cfg = &ctx.config.jobs;
    let mut report = SweepReport::default();
    for shard in 0..JOB_ACTIVE_SHARDS {
        let jobs = match store.active(&format!("{shard:02}")).await {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::error!(shard, error = %e.cause_chain(), "active jobs not read");
                report.failed += 1;
                continue;
            }
        };
        report.active += jobs.len();
        for job in jobs {
            match action(&job, now, cfg.requeue_secs, cfg.max_attempts) {
                Action::Nothing => {}
                Action::Settle => match worker::settle(ctx, job, now).await {
                    Ok(settled) if settled.status == JobStatus::Failed => report.settled.push(settled.id),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e.cause_chain(), "lapsed job not settled");
                        report.failed += 1;
                    }
                },
                Action::Requeue(reason) => match requeue(ctx, &store, &job, reason, now).await {
                    Ok(true) => report.requeued.push(job.id),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(job_id = %job.id, error = %e.cause_chain(), "job not requeued");
                        report.failed += 1;
                    }
                },
            }
        }
    }
    if !report.requeued.is_empty() || !report.settled.is_empty() || report.failed > 0 {
        tracing::info!(
            active = report.active,
            requeued = report.requeued.len(),
            settled = report.settled.len(),
            failed = report.failed,
            "sweep"
        );
    } else {
        tracing::debug!(active = report.active, "sweep: nothing to do");
    }
    report
}

/// Marks the job requeued (one sweeper wins) and sends its message again: `false`
/// when another sweeper, a claim or a cancel moved it first.
async fn requeue(
    ctx: &AppContext,
    store: &JobStore,
    job: &Job,
    reason: Reason,
    now: DateTime<Utc>,
) -> Result<bool, crate::Error> {
    if store.mark_requeued(job, now).await?.is_none() {
        return Ok(false);
    }
    queue::enqueue(ctx, &job.id).await?;
    let waited_ms = (now - job.created_at).num_milliseconds().max(0) as u64;
    tracing::warn!(
        job_id = %job.id,
        reason = reason.as_str(),
        waited_ms,
        requeues = job.requeues + 1,
        "job sent to the queue again"
    );
    metrics::emit_requeued(&job.id, &job.kind, reason.as_str(), waited_ms, now);
    Ok(true)
}

/// Sweeps every `every` until `stop` turns true (`exportctl serve` and `exportctl
/// worker`; in AWS the scheduler's minute tick sweeps).
pub async fn sweep_every(ctx: AppContext, every: std::time::Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        sweep(&ctx, ctx.clock.now()).await;
    }
}

/// How often the local loops sweep: half the requeue period, between 1 and 30 s.
pub fn local_interval(requeue_secs: u64) -> std::time::Duration {
    std::time::Duration::from_secs((requeue_secs / 2).clamp(1, 30))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{jobs::Trigger, spec::ExportSpec};

    fn job(status: JobStatus) -> Job {
        let spec: ExportSpec = serde_json::from_value(serde_json::json!({
            "kind": "sessions", "as_of": "2024-01-15T10:30:00.000Z", "format": "csv",
            "options": {"compression": "none", "bom": false, "time_zone": "UTC", "spreadsheet_safe": true}
        }))
        .unwrap();
        let mut job = Job::owned("0".repeat(32), &spec, "me", String::new(), Trigger::Api, t(0), 7);
        job.status = status;
        job
    }

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn a_queued_job_is_requeued_once_a_period_after_it_was_made_or_last_requeued() {
        let mut j = job(JobStatus::Queued);
        assert_eq!(action(&j, t(59), 60, 3), Action::Nothing);
        assert_eq!(action(&j, t(60), 60, 3), Action::Requeue(Reason::Unclaimed));
        j.requeued_at = Some(t(60));
        assert_eq!(action(&j, t(119), 60, 3), Action::Nothing);
        assert_eq!(action(&j, t(120), 60, 3), Action::Requeue(Reason::Unclaimed));
    }

    #[test]
    fn a_running_job_is_requeued_only_once_its_lease_ran_out_and_settled_without_attempts_left() {
        let mut j = job(JobStatus::Running);
        j.attempts = 1;
        j.lease_until = Some(t(100).timestamp());
        assert_eq!(action(&j, t(100), 60, 3), Action::Nothing);
        assert_eq!(action(&j, t(101), 60, 3), Action::Requeue(Reason::LeaseExpired));
        j.attempts = 3;
        assert_eq!(action(&j, t(101), 60, 3), Action::Settle);
        j.attempts = 1;
        j.worker = Some(crate::jobs::Worker::Scale.as_str().into());
        assert_eq!(
            action(&j, t(101), 60, 3),
            Action::Nothing,
            "exports at scale are not the queue's"
        );
        for status in [JobStatus::Succeeded, JobStatus::Failed, JobStatus::Cancelled] {
            assert_eq!(action(&job(status), t(10_000), 60, 3), Action::Nothing);
        }
    }
}
