//! The scheduler: invoked every minute by an EventBridge Scheduler schedule, it
//! starts the due runs of every scheduled export as export jobs
//! ([`common::schedules::tick`]). The invocation's payload carries nothing it needs:
//! the time is the function's own clock, and a duplicate or retried invocation
//! finds the runs it would start already started.

use common::{AppContext, jobs::sweep, schedules::tick};
use serde::Serialize;
use serde_json::Value;

/// What one invocation did: the scheduler's tick, then the jobs sweeper's pass
/// ([`common::jobs::sweep`]: jobs whose queue message was lost are sent again).
#[derive(Debug, Serialize)]
pub struct MinuteReport {
    #[serde(flatten)]
    pub tick: tick::TickReport,
    pub sweep: sweep::SweepReport,
}

/// One tick and one sweep. The event is not read (it is whatever `Input` the
/// schedule was given; `{}` by default).
pub async fn handle(ctx: &AppContext, event: Value) -> MinuteReport {
    let _ = event;
    let now = ctx.clock.now();
    let tick = tick::tick(ctx, now).await;
    let sweep = sweep::sweep(ctx, now).await;
    MinuteReport { tick, sweep }
}
