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

use super::{
    PausedReason, Schedule, SkipReason, SkippedRun, WindowKind,
    store::{Handled, ScheduleStore},
};
use crate::{
    AppContext,
    error::Error,
    jobs::{
        Job, JobStatus, Trigger, queue,
        store::{JobStore, Lookup},
    },
    schema::SCHEDULE_SHARDS,
};

/// Due schedules read from one partition per tick.
const DUE_PER_SHARD: usize = 100;
/// Writes one incremental schedule may take in one tick (see [`run_incremental`]).
const INCREMENTAL_STEPS_PER_TICK: usize = 4;

/// What one tick did.
#[derive(Debug, Default, Serialize)]
pub struct TickReport {
    pub at: String,
    /// Due schedules found.
    pub due: usize,
    /// Jobs this tick created, in order.
    pub created: Vec<String>,
    /// Due runs that made no job: their window was exported before.
    pub skipped: usize,
    /// Schedules paused because their owner's access changed.
    pub paused: usize,
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
        for listed in due {
            report.due += 1;
            let id = listed.id.clone();
            // The index is eventually consistent: act on the schedule as it is now (it
            // may have been paused, changed or deleted since the index saw it).
            let current = match store.get(&id).await {
                Ok(Some(current)) => current,
                Ok(None) => continue,
                Err(e) => {
                    report.failed += 1;
                    tracing::error!(schedule_id = %id, error = %e.cause_chain(), "schedule not read");
                    continue;
                }
            };
            match run_due(ctx, &store, current, now, &mut report).await {
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
    s: Schedule,
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> Result<(), Error> {
    // A run exports only what its owner may export now (crate::rights).
    if !crate::rights::still_granted(ctx, &s.owner, &s.owner_tenant).await? {
        store.pause(&s.id, PausedReason::OwnerAccessChanged, now).await?;
        report.paused += 1;
        tracing::warn!(schedule_id = %s.id, "schedule paused: its owner's access changed");
        return Ok(());
    }
    if s.window == WindowKind::Incremental {
        return run_incremental(ctx, store, s, now, &mut report.created).await;
    }
    let cadence = s.cadence()?;
    let jobs = JobStore::of(ctx);
    let mut s = s;
    for _ in 0..ctx.config.schedules.max_runs_per_tick {
        let Some(run_at) = s.next_run_at.filter(|t| *t <= now && s.enabled) else {
            return Ok(());
        };
        let made = match s.due_run(&cadence, run_at) {
            Ok(run) => start_run(ctx, &jobs, &s, &run, s.job_id(&run, 0), now, &mut report.created)
                .await
                .map(|made| (run, made))?,
            Err(run) => (run, Made::Taken),
        };
        let handled = match made {
            (run, Made::Created | Made::Found) => Handled::Exported {
                window_end: run.window_end,
            },
            (run, Made::Taken) => {
                // Never twice the same window, and never a run left out silently.
                report.skipped += 1;
                tracing::info!(schedule_id = %s.id, run_at = %crate::timefmt::format(&run_at), "scheduled run skipped: its window was exported before");
                Handled::Skipped {
                    run: SkippedRun {
                        run_at,
                        window_start: run.window_start,
                        window_end: run.window_end,
                        reason: SkipReason::WindowExportedBefore,
                    },
                    before: &s.skipped,
                }
            }
        };
        let next = cadence.next_after(run_at, s.time_zone);
        let moved = store.advance_after(&s.id, run_at, next, now, handled).await?;
        s = match moved {
            Some(updated) => updated,
            None => match reread(store, &s.id).await? {
                Some(current) => current,
                None => return Ok(()),
            },
        };
    }
    Ok(())
}

/// An incremental schedule: one run in flight at a time. Each tick that finds the
/// schedule due looks at the run in flight; once it ended, the cursor moves (success)
/// or the window waits for the next firing (failure), and the next window starts.
/// After an outage or a pause the windows behind run one per tick, each a period long.
async fn run_incremental(
    ctx: &AppContext,
    store: &ScheduleStore,
    mut s: Schedule,
    now: DateTime<Utc>,
    created: &mut Vec<String>,
) -> Result<(), Error> {
    let cadence = s.cadence()?;
    let jobs = JobStore::of(ctx);
    // One run per tick: at most resolve the run in flight, move to the next window's
    // firing, and start it (the next pass finds it in flight).
    for _ in 0..INCREMENTAL_STEPS_PER_TICK {
        let moved = if let Some(pending) = s.pending.clone() {
            let window = s.pending_start.zip(s.pending_end);
            let status = match jobs.lookup(&pending).await? {
                Lookup::Live(job) => Some(job.status),
                // Deleted: as if cancelled, the window runs again as a new job.
                Lookup::Deleted => Some(JobStatus::Cancelled),
                Lookup::Absent => None,
            };
            let (succeeded_until, next) = match status {
                Some(JobStatus::Queued | JobStatus::Running) => return Ok(()),
                None if window.is_some() => {
                    // The tick that recorded the run stopped before making its job.
                    let (start, end) = window.unwrap_or_default();
                    let run = super::Run {
                        run_at: end + s.lag(),
                        window_start: Some(start),
                        window_end: Some(end),
                    };
                    start_run(ctx, &jobs, &s, &run, pending, now, created).await?;
                    return Ok(());
                }
                Some(JobStatus::Succeeded) => {
                    let until = s.pending_end;
                    // The next window is due at its own firing (at once when behind).
                    let next = until.and_then(|c| s.incremental_run(&cadence, c)).map(|r| r.run_at);
                    (until, next)
                }
                // Failed or cancelled: the same window again at the next firing.
                _ => (None, cadence.next_after(now, s.time_zone)),
            };
            store
                .resolve_pending(&s.id, &pending, succeeded_until, next, now)
                .await?
        } else {
            let (Some(due), Some(cursor)) = (s.next_run_at.filter(|t| *t <= now && s.enabled), s.cursor) else {
                return Ok(());
            };
            let Some(run) = s.incremental_run(&cadence, cursor) else {
                return Ok(());
            };
            if run.run_at > now {
                // Not due yet (the schedule was resumed or changed): wait for it.
                store.advance(&s.id, due, Some(run.run_at), now).await?
            } else {
                let job_id = s.job_id(&run, s.attempt);
                let window = (cursor, run.window_end.unwrap_or(cursor));
                match store.start_pending(&s.id, due, &job_id, window, now).await? {
                    Some(updated) => {
                        start_run(ctx, &jobs, &updated, &run, job_id, now, created).await?;
                        Some(updated)
                    }
                    None => None,
                }
            }
        };
        s = match moved {
            Some(updated) => updated,
            None => match reread(store, &s.id).await? {
                Some(current) => current,
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

/// What [`start_run`] found.
enum Made {
    /// This tick made the run's job.
    Created,
    /// Another tick made it (the same run, due at the same time).
    Found,
    /// The id is another run's, or a deleted job's: the window was exported before.
    Taken,
}

/// Creates a run's job (unless a tick already did) and queues it.
async fn start_run(
    ctx: &AppContext,
    jobs: &JobStore,
    s: &Schedule,
    run: &super::Run,
    job_id: String,
    now: DateTime<Utc>,
    created: &mut Vec<String>,
) -> Result<Made, Error> {
    let spec = s.spec_for(run, now)?;
    let mut job = Job::owned(
        job_id,
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
    job.webhooks = s.webhooks.clone();
    if !jobs.put_if_absent(&job).await? {
        return Ok(match jobs.lookup(&job.id).await? {
            Lookup::Live(found) if found.run_at == job.run_at => Made::Found,
            Lookup::Live(_) | Lookup::Deleted => Made::Taken,
            // Gone between the write and the read (expired): nothing to redo now.
            Lookup::Absent => Made::Found,
        });
    }
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
    Ok(Made::Created)
}
