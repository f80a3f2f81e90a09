//! Starting a job: what `POST /api/exports` and every `Prefer: respond-async`
//! route do once the spec is scoped. An idempotency key names the job it made
//! before; the cache answers an equal job of the same caller and tenants; otherwise
//! the caller's active-job slot is taken, the job written and its id queued. Also
//! the history record of a synchronous export.

use chrono::{DateTime, Utc};
use lambda_http::{
    Body, Response,
    http::{HeaderValue, StatusCode, header::LOCATION},
};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{JOBS_PATH, Job, JobStatus, Trigger, hex, queue, resource, store::JobStore, worker};
use crate::{
    AppContext,
    auth::Caller,
    error::{Error, ErrorCode},
    http::{RawRequest, response::json_response},
    notify::Notify,
    spec::ExportSpec,
};

/// How long an idempotency key is remembered.
const IDEMPOTENCY_KEY_TTL_SECS: i64 = 24 * 3600;
/// What a caller over the active-job cap is told to wait.
const TOO_MANY_JOBS_RETRY_SECS: u64 = 10;
/// How far back the cache looks for a queued or running job of the same spec.
const CACHE_LOOK_BACK_SECS: i64 = 24 * 3600;

/// What identifies "the same request" for an idempotency key: route, query, body.
fn request_fingerprint(route: &str, raw: &RawRequest) -> String {
    let mut h = Sha256::new();
    h.update(route.as_bytes());
    h.update([0]);
    h.update(raw.query.as_bytes());
    h.update([0]);
    h.update(&raw.body);
    hex(&h.finalize())
}

pub(crate) fn job_response(status: StatusCode, ctx: &AppContext, job: &Job, cached: bool) -> Response<Body> {
    let mut body = resource(job, None, ctx.config.jobs.retention_days);
    body["cached"] = json!(cached);
    let mut resp = json_response(status, &body);
    if let Ok(location) = HeaderValue::from_str(&format!("{JOBS_PATH}/{}", job.id)) {
        resp.headers_mut().insert(LOCATION, location);
    }
    resp
}

/// What [`start`] did, for the pipeline's audit record and log line.
pub struct Started {
    pub job: Job,
    pub response: Response<Body>,
}

/// What a new job is asked to do: the scoped spec, and who to email when it ends.
pub struct Order<'a> {
    pub spec: &'a ExportSpec,
    pub notify: Notify,
}

/// Starts a job for a scoped spec (or returns the job an idempotency key or the
/// cache names). `admit` applies the route's rate limits; it runs only when new
/// work is created.
pub async fn start<F, Fut>(
    ctx: &AppContext,
    raw: &RawRequest,
    route: &str,
    caller: &Caller,
    Order { spec, notify }: Order<'_>,
    now: DateTime<Utc>,
    admit: F,
) -> Result<Started, Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let store = JobStore::of(ctx);
    let cfg = &ctx.config.jobs;
    let headers = raw.typed_headers()?;
    let key = headers.idempotency_key.as_ref().map(|k| k.as_str().to_string());
    let fingerprint = request_fingerprint(route, raw);
    let mut job = Job::new(spec, caller, Trigger::Api, now, cfg.retention_days);
    job.webhooks = crate::webhooks::vet(ctx, &caller.sub, &notify.webhooks, "notify").await?;
    job.notify = notify.emails;
    job.notify_on_empty = notify.on_empty;

    if let Some(key) = &key {
        let ttl = now.timestamp() + IDEMPOTENCY_KEY_TTL_SECS;
        if let Some((job_id, used_for)) = store
            .claim_idempotency_key(&caller.sub, key, &fingerprint, &job.id, ttl)
            .await?
        {
            if used_for != fingerprint {
                return Err(Error::conflict(
                    ErrorCode::IdempotencyKeyReused,
                    "this Idempotency-Key was used for another request",
                ));
            }
            // A key used under other tenants (the token changed) names nothing here.
            let existing = store
                .get(&job_id)
                .await?
                .filter(|j| j.owner_tenant == caller.tenant() || caller.is_admin());
            let existing = existing.ok_or_else(|| {
                Error::conflict(
                    ErrorCode::IdempotencyKeyReused,
                    "the request with this Idempotency-Key is still being processed; retry shortly",
                )
            })?;
            let existing = worker::settle(ctx, existing, now).await?;
            return Ok(Started {
                response: job_response(StatusCode::OK, ctx, &existing, false),
                job: existing,
            });
        }
    }
    let result = create(ctx, raw, caller, &mut job, now, admit).await;
    match (&result, &key) {
        (Ok(started), Some(key)) if started.job.id != job.id => {
            // The cache answered: the key names the cached job from now on.
            let ttl = now.timestamp() + IDEMPOTENCY_KEY_TTL_SECS;
            store
                .point_idempotency_key(&caller.sub, key, &fingerprint, &started.job.id, ttl)
                .await?;
        }
        (Err(_), Some(key)) => store.drop_idempotency_key(&caller.sub, key).await,
        _ => {}
    }
    result
}

async fn create<F, Fut>(
    ctx: &AppContext,
    raw: &RawRequest,
    caller: &Caller,
    job: &mut Job,
    now: DateTime<Utc>,
    admit: F,
) -> Result<Started, Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let store = JobStore::of(ctx);
    let cfg = &ctx.config.jobs;
    // A job that emails its recipients or calls webhooks is never answered from the
    // cache: the cached job would not tell them.
    if cfg.cache_secs > 0 && !raw.typed_headers()?.no_cache && job.notify.is_empty() && job.webhooks.is_empty() {
        let fresh_since = now - chrono::Duration::seconds(cfg.cache_secs as i64);
        let look_back = now - chrono::Duration::seconds(CACHE_LOOK_BACK_SECS.max(cfg.cache_secs as i64));
        if let Some(cached) = store
            .find_cached(&caller.sub, &caller.tenant(), &job.spec_hash, fresh_since, look_back)
            .await?
        {
            let cached = worker::settle(ctx, cached, now).await?;
            if !matches!(cached.status, JobStatus::Failed | JobStatus::Cancelled) {
                return Ok(Started {
                    response: job_response(StatusCode::OK, ctx, &cached, true),
                    job: cached,
                });
            }
        }
    }
    admit().await?;
    if !store.acquire_slot(&caller.sub, cfg.max_active_per_caller).await? {
        return Err(Error::TooManyJobs {
            max: cfg.max_active_per_caller,
            retry_after_secs: TOO_MANY_JOBS_RETRY_SECS,
        });
    }
    if let Err(e) = store.put_new(job).await {
        store.release_slot(&caller.sub).await;
        return Err(e);
    }
    if let Err(e) = queue::enqueue(ctx, &job.id).await {
        // Never a job that nothing will run: it fails at once, visibly.
        if store
            .finish_failed(&job.id, None, now, e.code(), "The export could not be queued")
            .await
            .ok()
            .flatten()
            .is_some()
        {
            store.release_slot(&caller.sub).await;
        }
        return Err(e);
    }
    Ok(Started {
        response: job_response(StatusCode::ACCEPTED, ctx, job, false),
        job: job.clone(),
    })
}

/// Records a synchronous export that ran (succeeded or failed) as a finished job,
/// so the history is complete. Best effort: the audit record is the export's
/// authoritative trace; a failure here is logged.
pub async fn record_sync(
    ctx: &AppContext,
    caller: &Caller,
    spec: &ExportSpec,
    now: DateTime<Utc>,
    outcome: Result<(u64, u64, Option<String>), &Error>,
) -> Option<String> {
    let mut job = Job::new(spec, caller, Trigger::Sync, now, ctx.config.jobs.retention_days);
    job.started_at = Some(now);
    job.finished_at = Some(ctx.clock.now());
    match outcome {
        Ok((rows, bytes, s3_key)) => {
            job.status = JobStatus::Succeeded;
            job.rows = Some(rows);
            job.size_bytes = Some(bytes);
            job.rows_done = rows;
            job.bytes_done = bytes;
            job.s3_key = s3_key;
        }
        Err(e) => {
            job.status = JobStatus::Failed;
            job.error_code = Some(e.code().to_string());
            job.error_message = Some(e.to_string());
        }
    }
    match JobStore::of(ctx).put_new(&job).await {
        Ok(()) => Some(job.id),
        Err(e) => {
            tracing::error!(error = %e.cause_chain(), "synchronous export not recorded in the history");
            None
        }
    }
}
