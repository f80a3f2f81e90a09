//! Admission: the chat exports' rate limits, which a route declares in its policy
//! and the pipeline applies only when new work is about to be created (a cached or
//! idempotent answer is not counted).

use chrono::{DateTime, Utc};

use crate::{
    AppContext,
    auth::Caller,
    error::Error,
    ratelimit::{self, Limit},
    spec::ExportSpec,
};

/// The chat export's rate limits (per user per minute, per client per hour), for
/// routes that declare them and specs with a tenant to count against.
pub async fn admit(
    ctx: &AppContext,
    caller: &Caller,
    spec: &ExportSpec,
    rate_limited: bool,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let Some(tenant) = spec.rate_tenant().filter(|_| rate_limited) else {
        return Ok(());
    };
    let c = &ctx.config.chat;
    let limits = [
        Limit {
            key: format!("user#{}", caller.sub),
            max: c.per_user_per_minute,
            window_secs: 60,
        },
        Limit {
            key: tenant,
            max: c.per_client_per_hour,
            window_secs: 3600,
        },
    ];
    ratelimit::admit(
        &ctx.aws.dynamodb,
        &ctx.config.tables.rate_limits,
        &limits,
        now.timestamp().max(0) as u64,
    )
    .await
}
