//! Operator-defined exports: an EventBridge Scheduler schedule in `template.yaml`
//! invokes the worker directly with an export (docs/deploy.md, "Operator-defined exports"):
//!
//! `{"operator_export": {"name": "nightly-sessions", "scheduled_time":
//! "<aws.scheduler.scheduled-time>", "export": {"kind", "format", "params"},
//! "notify": {"emails": [...]}}}`
//!
//! The export is scoped as an admin's (operators write the template), recorded as a
//! job owned by `operator-<name>` (trigger `event`) and run at once. Its id derives
//! from the name and the scheduled time, so the Scheduler's at-least-once delivery
//! runs each firing once.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Job, Trigger, hex, request::JobRequest, store::JobStore, worker};
use crate::{
    AppContext,
    auth::{Caller, Role},
    error::Error,
    notify::{NotifyRequest, check_recipients},
    params::Id,
    timefmt,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorEvent {
    pub operator_export: OperatorExport,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorExport {
    /// Names the export: its jobs' owner is `operator-<name>`.
    pub name: String,
    /// The firing this invocation is for (`<aws.scheduler.scheduled-time>`); without
    /// it, every invocation is a new run.
    #[serde(default)]
    pub scheduled_time: Option<String>,
    pub export: JobRequest,
    #[serde(default)]
    pub notify: Option<NotifyRequest>,
}

/// Creates (once per firing) and runs an operator-defined export; answers its job.
pub async fn run(ctx: &AppContext, event: OperatorExport) -> Result<Value, Error> {
    let now = timefmt::to_millis(ctx.clock.now());
    let name = Id::parse(&event.name)
        .map_err(|m| Error::bad_request(format!("name {m}")))?
        .into_string();
    let caller = Caller {
        sub: format!("operator-{name}"),
        role: Role::Admin,
        client_id: None,
        company_id: None,
        email: None,
    };
    let fired: Option<DateTime<Utc>> = match event.scheduled_time.as_deref() {
        None => None,
        Some(t) => Some(timefmt::parse_rfc3339(t).ok_or_else(|| {
            Error::bad_request("scheduled_time must be an RFC 3339 time (<aws.scheduler.scheduled-time>)")
        })?),
    };
    // The operator's rights are what the email and link checks read later.
    crate::rights::observe(ctx, &caller, now).await?;
    let notify = check_recipients(&ctx.config.notify, &caller, event.notify, "notify")?;
    if !notify.webhooks.is_empty() {
        return Err(Error::bad_request(
            "notify.webhooks: not available to operator exports: a webhook's secret belongs to a user of the API \
             (POST /api/webhook-secrets); start the export through the job API or a schedule instead",
        ));
    }
    let spec = event.export.into_spec(ctx, &caller, now)?;
    let id = match fired {
        Some(at) => hex(&Sha256::digest(format!("event|{name}|{}", timefmt::format(&at)).as_bytes())[..16]),
        None => uuid::Uuid::new_v4().simple().to_string(),
    };
    let mut job = Job::owned(
        id,
        &spec,
        &caller.sub,
        caller.tenant(),
        Trigger::Event,
        now,
        ctx.config.jobs.retention_days,
    );
    job.run_at = fired;
    job.notify = notify.emails;
    job.notify_on_empty = notify.on_empty;
    let store = JobStore::of(ctx);
    let created = store.put_if_absent(&job).await?;
    worker::process(ctx, &job.id).await?;
    let done = store.get(&job.id).await?.unwrap_or(job);
    Ok(json!({
        "job_id": done.id,
        "created": created,
        "status": done.status.as_str(),
        "rows": done.rows,
        "error_code": done.error_code,
    }))
}
