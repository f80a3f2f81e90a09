//! The export job API:
//! - POST /api/exports: start a job (`{"kind", "format", "params"}`; the kind's own
//!   parameters, validated and scoped as its synchronous route does);
//! - GET /api/exports: the caller's export history, newest first;
//! - GET /api/exports/{id}, GET /api/exports/{id}/download (also with an emailed
//!   `?link=`), POST /api/exports/{id}/cancel, DELETE /api/exports/{id} (deletes the
//!   job, its file and its links);
//! - the schedules API: /api/schedules, /api/schedules/preview, /api/schedules/{id};
//! - webhook secrets: POST /api/webhook-secrets, GET and DELETE /api/webhook-secrets/{id}.
//!
//! This file only declares the routes' policies; `common::jobs` does the work.

use chrono::{DateTime, Utc};
use common::{
    AppContext,
    auth::Caller,
    error::Error,
    http::{self, ErrorStyle, ExportRoute, Policy, RawRequest, errors::not_found, pipeline::JOB_ERRORS},
    jobs::api::{JOBS_PATH, JobRequest, JobRoute},
    notify::{Notify, check_recipients},
    schedules::api::{SCHEDULE_ERRORS, ScheduleRoute},
    spec::ExportSpec,
    webhooks::api::SecretRoute,
};
use lambda_http::{Body, Request, Response, http::Method};

/// POST /api/exports: every export becomes a job. The chat rate limits apply to
/// chats and conversations jobs as to their synchronous routes.
pub struct StartJob;

impl ExportRoute for StartJob {
    type Params = JobRequest;

    fn policy(&self) -> Policy {
        Policy::body_job("POST /api/exports", "jobs").rate_limited()
    }

    fn error_style(&self, _req: &RawRequest) -> ErrorStyle {
        JOB_ERRORS
    }

    fn spec(
        &self,
        ctx: &AppContext,
        caller: &Caller,
        params: JobRequest,
        now: DateTime<Utc>,
    ) -> Result<ExportSpec, Error> {
        params.into_spec(ctx, caller, now)
    }

    fn notify(&self, ctx: &AppContext, caller: &Caller, params: &JobRequest) -> Result<Notify, Error> {
        check_recipients(&ctx.config.notify, caller, params.notify.clone(), "notify")
    }
}

/// Every route of the function.
pub async fn handle(ctx: &AppContext, req: Request) -> Response<Body> {
    let path = req.uri().path().to_string();
    if req.method() == Method::POST && path == JOBS_PATH {
        return http::handle(ctx, req, &StartJob).await;
    }
    if let Some(route) = ScheduleRoute::matching(req.method().as_str(), &path) {
        return http::pipeline::handle_route(ctx, req, &route).await;
    }
    if let Some(route) = JobRoute::matching(req.method().as_str(), &path) {
        return http::pipeline::handle_route(ctx, req, &route).await;
    }
    if let Some(route) = SecretRoute::matching(req.method().as_str(), &path) {
        return http::pipeline::handle_route(ctx, req, &route).await;
    }
    match (
        JobRoute::allowed(&path),
        ScheduleRoute::allowed(&path),
        SecretRoute::allowed(&path),
    ) {
        (Some(allow), _, _) => http::errors::wrong_method(req.method(), allow, &JOB_ERRORS),
        (None, Some(allow), _) => http::errors::wrong_method(req.method(), allow, &SCHEDULE_ERRORS),
        (None, None, Some(allow)) => http::errors::wrong_method(req.method(), allow, &JOB_ERRORS),
        (None, None, None) => not_found(&path),
    }
}
