//! The job API: `POST /api/exports` (and `Prefer: respond-async` on every
//! synchronous route), `GET /api/exports` (the history), `GET /api/exports/{id}`,
//! `GET /api/exports/{id}/download` and `DELETE /api/exports/{id}`.
//!
//! Every route runs through the one request pipeline ([`crate::http::pipeline`]):
//! this module decides what a request means once the caller is known. A job is
//! visible to its owner and to admins only; to anyone else it does not exist (404).

use chrono::{DateTime, Utc};
use lambda_http::{
    Body, Response,
    http::{HeaderValue, StatusCode, header::LOCATION},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Job, JobStatus, Link, history, resource, store::JobStore, worker};
use crate::{
    AppContext,
    auth::Caller,
    delivery::{self, Delivery},
    error::{Error, ErrorCode},
    http::{
        ErrorStyle, Policy, RawRequest,
        pipeline::{JOB_ERRORS, Route, Trace, authenticate},
        query,
        response::json_response,
        sanitize,
    },
    notify::link,
    values::id::JobId,
};

pub use super::{
    history::decode_cursor,
    job::{JOB_CANCEL_PATH, JOB_DOWNLOAD_PATH, JOB_PATH, JOBS_PATH},
    request::{JobKind, JobRequest},
    submit::{Order, Started, record_sync, start},
};

/// The resource routes, once the path is matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobRoute {
    List,
    Get(String),
    Download(String),
    /// `POST /api/exports/{id}/cancel` (HubSpot's shape): the job stays, `cancelled`.
    Cancel(String),
    /// `DELETE /api/exports/{id}`: the job, its file and every link to it are gone.
    Delete(String),
}

/// A path of the job API, whatever the method: `None`, not one of its paths;
/// `Some(None)`, the collection; `Some(Some((id, tail)))`, a job's resource.
fn job_path(path: &str) -> Option<Option<(&str, &str)>> {
    let rest = path.strip_prefix(JOBS_PATH)?;
    if rest.is_empty() || rest == "/" {
        return Some(None);
    }
    let rest = rest.strip_prefix('/')?;
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if id.is_empty() || !matches!(tail, "" | "download" | "cancel") {
        return None;
    }
    Some(Some((id, tail)))
}

impl JobRoute {
    /// Matches a method and path of the job API (`None`: not one of its routes).
    /// `POST /api/exports` (starting a job) is an export route, not one of these.
    pub fn matching(method: &str, path: &str) -> Option<Self> {
        match (method, job_path(path)?) {
            ("GET", None) => Some(JobRoute::List),
            (_, None) => None,
            (method, Some((id, tail))) => {
                let id = id.to_string();
                match (method, tail) {
                    ("GET", "") => Some(JobRoute::Get(id)),
                    ("DELETE", "") => Some(JobRoute::Delete(id)),
                    ("GET", "download") => Some(JobRoute::Download(id)),
                    ("POST", "cancel") => Some(JobRoute::Cancel(id)),
                    _ => None,
                }
            }
        }
    }

    /// The methods a path of the job API serves (its `Allow` header); `None` when it
    /// is not one of its paths.
    pub fn allowed(path: &str) -> Option<&'static str> {
        Some(match job_path(path)? {
            None => "GET, POST",
            Some((_, "")) => "GET, DELETE",
            Some((_, "download")) => "GET",
            Some(_) => "POST",
        })
    }

    /// The route as documented (`GET /api/exports/{id}`), for logs and audit records.
    pub fn name(&self) -> &'static str {
        match self {
            JobRoute::List => "GET /api/exports",
            JobRoute::Get(_) => "GET /api/exports/{id}",
            JobRoute::Download(_) => "GET /api/exports/{id}/download",
            JobRoute::Cancel(_) => "POST /api/exports/{id}/cancel",
            JobRoute::Delete(_) => "DELETE /api/exports/{id}",
        }
    }

    pub fn id(&self) -> Option<&str> {
        match self {
            JobRoute::List => None,
            JobRoute::Get(id) | JobRoute::Download(id) | JobRoute::Cancel(id) | JobRoute::Delete(id) => Some(id),
        }
    }
}

/// `GET /api/exports` parameters.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// 1 to 100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<crate::params::Choice<JobStatus>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<crate::params::Choice<JobKind>>,
    /// Admins: whose history (default: the caller's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

const MAX_HISTORY_PAGE: u64 = 100;
const DEFAULT_HISTORY_PAGE: u64 = 20;

/// A job the caller may see: its own, or any for an admin. Everything else,
/// including ids that are not ids, is "not found".
async fn visible(ctx: &AppContext, caller: &Caller, id: &str, now: DateTime<Utc>) -> Result<Job, Error> {
    let not_found = || Error::NotFound("no such export job".into());
    let id = JobId::parse(id).ok_or_else(not_found)?;
    let job = JobStore::of(ctx).get(id.as_str()).await?.ok_or_else(not_found)?;
    // A non-admin sees its own jobs, and only while its token names the tenants it
    // had when it started them: whatever the timing, a file never reaches a caller
    // outside the tenant it was made for.
    if !caller.is_admin() && (job.owner != caller.sub || job.owner_tenant != caller.tenant()) {
        return Err(not_found());
    }
    worker::settle(ctx, job, now).await
}

/// A fresh link to a succeeded job's file, while the file is kept.
async fn link(ctx: &AppContext, job: &Job, now: DateTime<Utc>) -> Result<Option<Link>, Error> {
    let (Some(key), JobStatus::Succeeded) = (&job.s3_key, job.status) else {
        return Ok(None);
    };
    if job
        .file_expires_at(ctx.config.jobs.retention_days)
        .is_some_and(|e| e <= now)
    {
        return Ok(None);
    }
    let spec = job.spec()?;
    let (url, expires_at) = delivery::presign(ctx, &delivery::stored_target(ctx, &spec, key)).await?;
    Ok(Some(Link { url, expires_at }))
}

fn view(ctx: &AppContext, job: &Job, link: Option<&Link>) -> Value {
    resource(job, link, ctx.config.jobs.retention_days)
}

/// What a resource route did, for the audit record and the log line.
#[derive(Default)]
struct Outcome {
    pub job_id: Option<String>,
    pub s3_key: Option<String>,
}

/// Serves a resource route for an authenticated caller.
async fn serve(
    ctx: &AppContext,
    raw: &RawRequest,
    route: &JobRoute,
    caller: &Caller,
    now: DateTime<Utc>,
    outcome: &mut Outcome,
) -> Result<Response<Body>, Error> {
    // List decodes its parameters below; the pipeline decoded Download's (`link`,
    // served by [`serve_link`] before any token is looked at); the others take none.
    if let JobRoute::Get(_) | JobRoute::Cancel(_) | JobRoute::Delete(_) = route {
        query::decode::<crate::http::query::NoParams>(&raw.query)?;
    }
    outcome.job_id = route.id().map(sanitize);
    match route {
        JobRoute::List => {
            let p: HistoryParams = query::decode(&raw.query)?;
            let owner = match p.owner {
                Some(o) if o != caller.sub => {
                    crate::auth::check_sub(&o).map_err(|m| Error::bad_request(format!("owner {m}")))?;
                    caller.require_admin()?;
                    o
                }
                _ => caller.sub.clone(),
            };
            let limit = p.limit.unwrap_or(DEFAULT_HISTORY_PAGE as i64);
            if !(1..=MAX_HISTORY_PAGE as i64).contains(&limit) {
                return Err(Error::bad_request(format!(
                    "limit must be between 1 and {MAX_HISTORY_PAGE}"
                )));
            }
            let start = p.cursor.as_deref().map(|c| decode_cursor(c, &owner)).transpose()?;
            // A non-admin's history holds the jobs started under the tenants its token
            // names now (as `GET /api/exports/{id}` does).
            let tenant = (!caller.is_admin()).then(|| caller.tenant());
            let (jobs, next) = JobStore::of(ctx)
                .list(
                    &owner,
                    limit as usize,
                    start,
                    p.status.map(|s| s.0),
                    p.kind.map(|k| k.0.as_str()),
                    tenant.as_deref(),
                )
                .await?;
            let mut items = Vec::with_capacity(jobs.len());
            for job in jobs {
                let job = worker::settle(ctx, job, now).await?;
                let link = link(ctx, &job, now).await?;
                items.push(view(ctx, &job, link.as_ref()));
            }
            let next_cursor = next.as_ref().and_then(history::encode_cursor);
            Ok(json_response(
                StatusCode::OK,
                &json!({"exports": items, "next_cursor": next_cursor}),
            ))
        }
        JobRoute::Get(id) => {
            let job = visible(ctx, caller, id, now).await?;
            let link = link(ctx, &job, now).await?;
            Ok(json_response(StatusCode::OK, &view(ctx, &job, link.as_ref())))
        }
        JobRoute::Download(id) => {
            let job = visible(ctx, caller, id, now).await?;
            download(ctx, job, now, outcome).await
        }
        JobRoute::Delete(id) => {
            let job = visible(ctx, caller, id, now).await?;
            delete(ctx, job, now).await
        }
        JobRoute::Cancel(id) => {
            let job = visible(ctx, caller, id, now).await?;
            let store = JobStore::of(ctx);
            let finished = || {
                Error::conflict(
                    ErrorCode::JobFinished,
                    format!("the export already {}; there is nothing to cancel", job.status.as_str()),
                )
            };
            if job.status.is_final() {
                return Err(finished());
            }
            let cancelled = store.cancel(&job.id, ctx.clock.now()).await?.ok_or_else(finished)?;
            store.release_slot_of(&cancelled).await;
            Ok(json_response(StatusCode::ACCEPTED, &view(ctx, &cancelled, None)))
        }
    }
}

/// `GET /api/exports/{id}/download` parameters: `link`, an emailed download link
/// (used instead of an Authorization header).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct DownloadParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// `303` to a fresh presigned URL of a succeeded job's file.
async fn download(
    ctx: &AppContext,
    job: Job,
    now: DateTime<Utc>,
    outcome: &mut Outcome,
) -> Result<Response<Body>, Error> {
    match job.status {
        JobStatus::Queued | JobStatus::Running => {
            return Err(Error::conflict(
                ErrorCode::JobNotReady,
                format!("the export is {}; its file is not ready yet", job.status.as_str()),
            ));
        }
        JobStatus::Failed | JobStatus::Cancelled => {
            return Err(Error::conflict(
                ErrorCode::JobNotSucceeded,
                format!("the export {}; it has no file", job.status.as_str()),
            ));
        }
        JobStatus::Succeeded => {}
    }
    let Some(key) = job.s3_key.clone() else {
        return Err(Error::Gone(
            "this export was answered inline and never stored; run it again".into(),
        ));
    };
    let gone = || Error::Gone("the export's file has expired; run the export again".into());
    let head = ctx
        .aws
        .s3
        .head_object()
        .bucket(&ctx.config.delivery.bucket)
        .key(&key)
        .send()
        .await;
    if let Err(e) = head {
        return Err(if e.as_service_error().is_some_and(|s| s.is_not_found()) {
            gone()
        } else {
            Error::storage(e)
        });
    }
    let link = link(ctx, &job, now).await?.ok_or_else(gone)?;
    outcome.s3_key = Some(key);
    let mut resp = json_response(
        StatusCode::SEE_OTHER,
        &json!({"download_url": link.url, "expires_at": link.expires(), "file_name": job.file_name}),
    );
    resp.headers_mut().insert(
        LOCATION,
        HeaderValue::from_str(&link.url).map_err(|e| Error::internal("response error", e))?,
    );
    Ok(resp)
}

/// `GET /api/exports/{id}/download?link=...`: an emailed link, checked on every
/// click against the job as it is now. A link for another job, for a recipient no
/// longer on the job, or for a job deleted since, names nothing (404).
async fn serve_link(
    ctx: &AppContext,
    route: &JobRoute,
    token: &str,
    now: DateTime<Utc>,
    outcome: &mut Outcome,
) -> Result<Response<Body>, Error> {
    let not_found = || Error::NotFound("no such export job".into());
    let JobRoute::Download(id) = route else {
        return Err(not_found());
    };
    let verified = link::verify(&ctx.config.jwt.secret, token, now)?;
    if verified.job_id != *id {
        return Err(not_found());
    }
    outcome.job_id = Some(sanitize(id));
    let job = JobStore::of(ctx).get(id).await?.ok_or_else(not_found)?;
    // Another generation of the job (made again under the same id) is another job.
    if job.generation != verified.generation
        || !job.notify.iter().any(|r| link::recipient_hash(r) == verified.recipient)
    {
        return Err(not_found());
    }
    // A link is its owner's delegation: it works only while the owner still has
    // the rights the job was made under (crate::rights).
    if !crate::rights::still_granted(ctx, &job.owner, &job.owner_tenant).await? {
        return Err(Error::denied(
            ErrorCode::LinkRevoked,
            "This download link no longer works: the access of the person who shared it changed",
        ));
    }
    let job = worker::settle(ctx, job, now).await?;
    download(ctx, job, now, outcome).await
}

/// `DELETE /api/exports/{id}`: cancels the job if it is still active, deletes its
/// file and its record. Every link to it (presigned or emailed) stops working.
async fn delete(ctx: &AppContext, job: Job, now: DateTime<Utc>) -> Result<Response<Body>, Error> {
    let store = JobStore::of(ctx);
    if !job.status.is_final()
        && let Some(cancelled) = store.cancel(&job.id, now).await?
    {
        store.release_slot_of(&cancelled).await;
    }
    if let Some(key) = &job.s3_key {
        ctx.aws
            .s3
            .delete_object()
            .bucket(&ctx.config.delivery.bucket)
            .key(key)
            .send()
            .await
            .map_err(Error::storage)?;
    }
    store.bury(&job, now).await?;
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::Empty)
        .map_err(|e| Error::internal("response error", e))
}

/// The job API's resource routes run through the one request pipeline: an emailed
/// link stands in for the token on the download route.
impl Route for JobRoute {
    fn policy(&self) -> Policy {
        Policy {
            audited: matches!(self, JobRoute::Cancel(_) | JobRoute::Delete(_) | JobRoute::Download(_)),
            ..Policy::query(self.name(), "jobs")
        }
    }

    fn error_style(&self, _raw: &RawRequest) -> ErrorStyle {
        JOB_ERRORS
    }

    async fn attempt(
        &self,
        ctx: &AppContext,
        raw: &RawRequest,
        now: DateTime<Utc>,
        trace: &mut Trace,
    ) -> Result<Response<Body>, Error> {
        let mut outcome = Outcome::default();
        // An emailed link stands in for the token on the download route; the audit
        // record keeps the route, never the link itself.
        let link = match self {
            JobRoute::Download(_) => query::decode::<DownloadParams>(&raw.query)?.link,
            _ => None,
        };
        raw.typed_headers()?;
        raw.no_body()?;
        let result = if let Some(token) = link {
            trace.keep_parameters("link=<redacted>");
            serve_link(ctx, self, &token, now, &mut outcome).await
        } else {
            let caller = authenticate(ctx, raw, now, trace).await?;
            trace.keep_parameters(&raw.query);
            serve(ctx, raw, self, &caller, now, &mut outcome).await
        };
        trace.job_id = outcome.job_id;
        // The audit record of a download names the object it handed out; it is not
        // a file this request made, so it must never be discarded on error.
        if let Some(key) = outcome.s3_key {
            trace.delivery = Some(Delivery::Redirect);
            trace.served_key = Some(key);
        }
        result
    }
}
