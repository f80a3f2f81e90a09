//! The scheduler: invoked every minute by an EventBridge Scheduler schedule, it
//! starts the due runs of every scheduled export as export jobs
//! ([`common::schedules::tick`]). The invocation's payload carries nothing it needs:
//! the time is the function's own clock, and a duplicate or retried invocation
//! finds the runs it would start already started.

use common::{AppContext, schedules::tick};
use serde_json::Value;

/// One tick. The event is logged by its size only (it is whatever `Input` the
/// schedule was given; `{}` by default).
pub async fn handle(ctx: &AppContext, event: Value) -> tick::TickReport {
    let _ = event;
    tick::tick(ctx, ctx.clock.now()).await
}
