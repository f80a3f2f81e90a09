//! The scheduler's tick: find the due schedules (the sharded `by_due` index, never a
//! scan) and start each due run as an export job.
//!
//! Ticks are delivered at least once and may overlap (EventBridge Scheduler and
//! Lambda both retry; `exportctl serve` ticks beside `exportctl schedules tick`), so a
//! tick only ever moves a schedule by conditional writes on what it read, and a run's
//! job has an id derived from the schedule and the run's window: whoever creates it
//! first creates it, everyone else finds it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Schedule, WindowKind, cadence::Cadence, store::ScheduleStore};
use crate::{
    AppContext,
    error::Error,
    jobs::{Job, JobStatus, Trigger, queue, store::JobStore},
    schema::SCHEDULE_SHARDS,
};

/// Due schedules read from one partition per tick.
const DUE_PER_SHARD: usize = 100;

/// What one tick did.
#[derive(Debug, Default, Serialize)]
pub struct TickReport {
    pub at: String,
    /// Due schedules found.
    pub due: usize,
    /// Jobs this tick created, in order.
    pub created: Vec<String>,
    /// Schedules that could not be handled (logged; retried by the next tick).
    pub failed: usize,
}

/// One tick as of `now`.
pub async fn tick(ctx: &AppContext, now: DateTime<Utc>) -> TickReport {
    let now = crate::timefmt::to_millis(now);
    let store = ScheduleStore::of(ctx);
    let mut report = TickReport {
        at: crate::timefmt::format(&now),
        ..TickReport::default()
    };
    for shard in 0..SCHEDULE_SHARDS {
        let due = match store.due(shard, now, DUE_PER_SHARD).await {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(shard, error = %e.cause_chain(), "due schedules not read");
                report.failed += 1;
                continue;
            }
        };
        for schedule in due {
            report.due += 1;
            let id = schedule.id.clone();
            match run_due(ctx, &store, schedule, now, &mut report.created).await {
                Ok(()) => {}
                Err(e) => {
                    report.failed += 1;
                    tracing::error!(schedule_id = %id, error = %e.cause_chain(), "scheduled run not started");
                }
            }
        }
    }
    if report.due > 0 {
        tracing::info!(at = %report.at, due = report.due, created = report.created.len(), failed = report.failed, "scheduler tick");
    }
    report
}

/// Starts the due runs of one schedule, in order, at most
/// `SCHEDULER_MAX_RUNS_PER_TICK`.
async fn run_due(
    ctx: &AppContext,
    store: &ScheduleStore,
    mut s: Schedule,
    now: DateTime<Utc>,
    created: &mut Vec<String>,
) -> Result<(), Error> {
    let cadence = s.cadence()?;
    let jobs = JobStore::of(ctx);
    let max = ctx.config.schedules.max_runs_per_tick;
    let mut steps = 0;
    while steps < max * 2 {
        steps += 1;
        if s.window == WindowKind::Incremental
            && let Some(pending) = s.pending.clone()
        {
            let job = jobs.get(&pending).await?;
            let outcome = match job.as_ref().map(|j| j.status) {
                Some(JobStatus::Queued | JobStatus::Running) => return Ok(()),
                Some(JobStatus::Succeeded) => Some(s.pending_end),
                // Failed, cancelled or gone (purged): the cursor stays.
                _ => None,
            };
            let new_cursor = outcome.flatten();
            s = match store.resolve_pending(&s.id, &pending, new_cursor, now).await? {
                Some(updated) => updated,
                None => match reread(store, &s.id).await? {
                    Some(now) => now,
                    None => return Ok(()),
                },
            };
            continue;
        }
        let Some(run_at) = s.next_run_at.filter(|t| *t <= now && s.enabled) else {
            return Ok(());
        };
        let next = cadence.next_after(run_at, s.time_zone);
        let run = s.run(&cadence, run_at, s.cursor);
        let empty = matches!((run.window_start, run.window_end), (Some(a), Some(b)) if b <= a);
        if empty {
            // An incremental run due before its cursor plus the lag has nothing to
            // export yet: the next one will.
            s = match store.advance(&s.id, run_at, next, now).await? {
                Some(updated) => updated,
                None => match reread(store, &s.id).await? {
                    Some(now) => now,
                    None => return Ok(()),
                },
            };
            continue;
        }
        let job_id = start_run(ctx, &jobs, &s, &run, now, created).await?;
        let moved = if s.window == WindowKind::Incremental {
            let end = run.window_end.unwrap_or(run_at);
            store.start_pending(&s.id, run_at, next, &job_id, end, now).await?
        } else {
            store.advance(&s.id, run_at, next, now).await?
        };
        s = match moved {
            Some(updated) => updated,
            None => match reread(store, &s.id).await? {
                Some(now) => now,
                None => return Ok(()),
            },
        };
    }
    Ok(())
}

/// The schedule as it is now, after another writer moved it; `None` once deleted.
async fn reread(store: &ScheduleStore, id: &str) -> Result<Option<Schedule>, Error> {
    store.get(id).await
}

/// Creates a run's job (unless a tick already did) and queues it.
async fn start_run(
    ctx: &AppContext,
    jobs: &JobStore,
    s: &Schedule,
    run: &super::Run,
    now: DateTime<Utc>,
    created: &mut Vec<String>,
) -> Result<String, Error> {
    let spec = s.spec_for(run, now)?;
    let mut job = Job::owned(
        s.job_id(run),
        &spec,
        &s.owner,
        s.owner_tenant.clone(),
        Trigger::Schedule,
        now,
        ctx.config.jobs.retention_days,
    );
    job.schedule_id = Some(s.id.clone());
    job.run_at = Some(run.run_at);
    job.window_start = run.window_start;
    job.window_end = run.window_end;
    job.notify = s.notify.clone();
    job.notify_on_empty = s.notify_on_empty;
    if jobs.put_if_absent(&job).await? {
        if let Err(e) = queue::enqueue(ctx, &job.id).await {
            // Never a job no message names: the run fails visibly (an incremental
            // schedule's next run covers its window again).
            if let Err(d) = jobs
                .finish_failed(&job.id, None, now, e.code(), "The scheduled export could not be queued")
                .await
            {
                tracing::error!(job_id = %job.id, error = %d.cause_chain(), "unqueued scheduled job not failed");
            }
            return Err(e);
        }
        created.push(job.id.clone());
        tracing::info!(schedule_id = %s.id, job_id = %job.id, run_at = %crate::timefmt::format(&run.run_at), "scheduled run started");
    }
    Ok(job.id)
}

/// The first due time of a schedule created or resumed at `now`.
pub fn first_run(cadence: &Cadence, s: &Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cadence.next_after(now, s.time_zone)
}
