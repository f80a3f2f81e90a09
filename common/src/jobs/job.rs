//! A job as stored: its record ([`Job`]), its states and triggers, and the job
//! resource the API shows. Below everything that runs or serves jobs (and the emails
//! about them): it knows the spec a job runs, nothing of how.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{model::string_enum, spec::ExportSpec};

string_enum!(
    /// Where a job is in its life. The last three are final.
    JobStatus {
        Queued => "queued",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

impl JobStatus {
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled)
    }
}

string_enum!(
    /// What started a job: the job API (or `Prefer: respond-async`), a synchronous
    /// export recorded in the history, a schedule's run, or an operator-defined
    /// event (an EventBridge schedule invoking the worker with an export).
    Trigger { Api => "api", Sync => "sync", Schedule => "schedule", Event => "event" }
);

/// A job as stored in the jobs table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// 32 lowercase hex characters.
    pub id: String,
    /// The JWT `sub` of the caller who started it.
    pub owner: String,
    /// The tenants the owner's token named ([`crate::auth::Caller::tenant`]).
    #[serde(default)]
    pub owner_tenant: String,
    /// `<created_at>#<id>`: the history index's sort key.
    pub created_key: String,
    pub kind: String,
    pub format: String,
    pub trigger: Trigger,
    pub status: JobStatus,
    /// The [`ExportSpec`] as JSON: what the worker runs.
    pub spec: String,
    /// [`spec_hash`]: equal for equal exports asked for at different times.
    pub spec_hash: String,
    pub created_at: DateTime<Utc>,
    pub as_of: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub rows_done: u64,
    #[serde(default)]
    pub bytes_done: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    pub file_name: String,
    /// Where the file is; `None` until it succeeded, and for inline synchronous exports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Claims so far (deliveries that started running it).
    #[serde(default)]
    pub attempts: u32,
    /// While running: the claim's end (epoch seconds), renewed by every heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<i64>,
    /// While running: the token of the worker holding the claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// DynamoDB TTL (epoch seconds): the record outlives its file.
    pub ttl: i64,
    /// While queued or running: the job's partition of the `by_active` index (the
    /// sweeper's); removed by every write that makes the job final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_shard: Option<String>,
    /// When the sweeper last sent the job to the queue again, and how often it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requeued_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub requeues: u32,
    /// A schedule's run: the schedule (index `by_schedule`), the run's due time and
    /// the window it exports (`None` for a window of `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_end: Option<DateTime<Utc>>,
    /// Who is emailed a link when the job finishes (checked against the recipient
    /// rules when the job was made, and again when the email is sent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<crate::values::email::EmailAddress>,
    /// Whether a run that exported no row still emails.
    #[serde(default = "yes")]
    pub notify_on_empty: bool,
    /// This record's generation: random, made with the record and signed into every
    /// emailed link ([`crate::notify::link`]). A job made again under the same id (a
    /// schedule's run) has another, so links to an earlier one never work for it.
    /// Empty on records made before generations existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub generation: String,
    /// Where the finished job's event is POSTed, and how each delivery went
    /// ([`crate::webhooks`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<crate::values::webhook::Webhook>,
}

fn yes() -> bool {
    true
}

impl Job {
    /// A new job for a spec, `queued` (API) or about to be recorded as finished (sync).
    pub fn new(
        spec: &ExportSpec,
        owner: &crate::auth::Caller,
        trigger: Trigger,
        now: DateTime<Utc>,
        retention_days: u32,
    ) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self::owned(id, spec, &owner.sub, owner.tenant(), trigger, now, retention_days)
    }

    /// A new job with a given id (a schedule's run: derived from the schedule and
    /// its window) for an owner that is not calling now.
    pub fn owned(
        id: String,
        spec: &ExportSpec,
        owner: &str,
        owner_tenant: String,
        trigger: Trigger,
        now: DateTime<Utc>,
        retention_days: u32,
    ) -> Self {
        Self {
            created_key: format!("{}#{id}", crate::timefmt::format(&now)),
            id,
            owner: owner.to_string(),
            owner_tenant,
            kind: spec.kind().to_string(),
            format: spec.format_name().to_string(),
            trigger,
            status: JobStatus::Queued,
            spec: serde_json::to_string(spec).unwrap_or_default(),
            spec_hash: spec_hash(spec),
            created_at: now,
            as_of: spec.as_of(),
            started_at: None,
            finished_at: None,
            rows_done: 0,
            bytes_done: 0,
            rows: None,
            size_bytes: None,
            file_name: spec.file_name(),
            s3_key: None,
            error_code: None,
            error_message: None,
            attempts: 0,
            lease_until: None,
            worker: None,
            ttl: now.timestamp() + 2 * i64::from(retention_days) * 86_400,
            active_shard: None,
            requeued_at: None,
            requeues: 0,
            schedule_id: None,
            run_at: None,
            window_start: None,
            window_end: None,
            notify: Vec::new(),
            notify_on_empty: true,
            generation: uuid::Uuid::new_v4().simple().to_string(),
            webhooks: Vec::new(),
        }
    }

    /// Jobs of the job API count against their owner's active-job cap; scheduled
    /// and operator runs do not (a schedule must not lock its owner out).
    pub fn holds_slot(&self) -> bool {
        self.trigger == Trigger::Api
    }

    /// When the stored file is deleted by the bucket's lifecycle rule.
    pub fn file_expires_at(&self, retention_days: u32) -> Option<DateTime<Utc>> {
        let finished = self.finished_at?;
        self.s3_key.as_ref()?;
        Some(finished + chrono::Duration::days(i64::from(retention_days)))
    }

    pub fn spec(&self) -> Result<ExportSpec, crate::Error> {
        serde_json::from_str(&self.spec).map_err(|e| crate::Error::internal("job error", e))
    }
}

/// A job's partition of the `by_active` index: a fixed hash of its id.
pub fn active_shard_of(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    format!("{:02}", u32::from(digest[0]) % crate::schema::JOB_ACTIVE_SHARDS)
}

/// A hash of a spec without its `as_of`: two requests for the same export (same
/// scope, filters, format and options) at different times hash alike.
pub fn spec_hash(spec: &ExportSpec) -> String {
    let mut value = serde_json::to_value(spec).unwrap_or_default();
    if let Some(o) = value.as_object_mut() {
        o.remove("as_of");
    }
    hex(&Sha256::digest(value.to_string().as_bytes()))
}

pub use crate::values::hex;

/// The `worker` of a job run at scale: every state change is conditional on it, so
/// a queue worker never takes such a job and the scale functions never touch another.
pub const SCALE_WORKER: &str = "export-scale";

/// Who holds a running job: one claim of the queue worker (a random token per claim),
/// or the functions of an export at scale (always [`SCALE_WORKER`]). Stored as its
/// text in the job's `worker`; every write of a running job is conditional on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Worker {
    Queue(String),
    Scale,
}

impl Worker {
    /// A new claim of the queue worker.
    pub fn claim() -> Self {
        Self::Queue(uuid::Uuid::new_v4().simple().to_string())
    }

    /// The holder a stored `worker` names.
    pub fn of(stored: &str) -> Self {
        if stored == SCALE_WORKER {
            Self::Scale
        } else {
            Self::Queue(stored.to_string())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Queue(token) => token,
            Self::Scale => SCALE_WORKER,
        }
    }
}

impl Job {
    /// Who holds this job while it runs.
    pub fn held_by(&self) -> Option<Worker> {
        self.worker.as_deref().map(Worker::of)
    }

    /// Whether it is an export at scale that its step functions hold.
    pub fn at_scale(&self) -> bool {
        self.held_by() == Some(Worker::Scale)
    }
}

fn ts(t: &Option<DateTime<Utc>>) -> serde_json::Value {
    t.map_or(serde_json::Value::Null, |t| json!(crate::timefmt::format(&t)))
}

/// The job API's paths (a job's resource is at `JOBS_PATH/<id>`).
pub const JOBS_PATH: &str = "/api/exports";
pub const JOB_PATH: &str = "/api/exports/{id}";
pub const JOB_DOWNLOAD_PATH: &str = "/api/exports/{id}/download";
pub const JOB_CANCEL_PATH: &str = "/api/exports/{id}/cancel";

/// A freshly presigned download link and when it stops working.
pub struct Link {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

impl Link {
    /// `expires_at` as the API shows it (RFC 3339, seconds).
    pub fn expires(&self) -> String {
        self.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}

/// The job resource of the API (docs/api.md, "Export jobs").
pub fn resource(job: &Job, link: Option<&Link>, retention_days: u32) -> serde_json::Value {
    let error = match (&job.error_code, &job.error_message) {
        (Some(code), message) => json!({"error_code": code, "message": message.clone().unwrap_or_default()}),
        _ => serde_json::Value::Null,
    };
    json!({
        "id": job.id,
        "kind": job.kind,
        "format": job.format,
        "status": job.status.as_str(),
        "trigger": job.trigger.as_str(),
        "owner": job.owner,
        "created_at": crate::timefmt::format(&job.created_at),
        "started_at": ts(&job.started_at),
        "finished_at": ts(&job.finished_at),
        "as_of": crate::timefmt::format(&job.as_of),
        "rows_done": job.rows_done,
        "bytes_done": job.bytes_done,
        "rows": job.rows,
        "size_bytes": job.size_bytes,
        "file_name": job.file_name,
        "error": error,
        "download_url": link.map(|l| l.url.clone()),
        "expires_at": link.map(Link::expires),
        "file_expires_at": ts(&job.file_expires_at(retention_days)),
        "cached": false,
        "schedule_id": job.schedule_id,
        "run_at": ts(&job.run_at),
        "window_start": ts(&job.window_start),
        "window_end": ts(&job.window_end),
        "notify": {
            "emails": job.notify,
            "on_empty": job.notify_on_empty,
            "webhooks": job.webhooks.iter().map(|h| json!({"url": h.url, "secret_id": h.secret_id})).collect::<Vec<_>>(),
        },
        "webhooks": job.webhooks.iter().map(|h| json!({
            "url": h.url,
            "attempts": h.attempts,
            "last_status": h.last_status,
            "delivered": h.delivered,
        })).collect::<Vec<_>>(),
    })
}

/// The message a job's id travels in on the queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobMessage {
    pub job_id: String,
}
