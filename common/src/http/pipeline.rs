//! The one request pipeline every export route runs through:
//! authenticate, decode, scope, admit, run, answer, audit, log.
//!
//! A route only declares its [`Policy`] and how its parameters become an
//! [`ExportSpec`] ([`ExportRoute::spec`]). Whatever happens inside (an error, a failed
//! dependency, even a panic) the client gets the route's documented JSON error, the
//! attempt is audited with the status actually sent, and one log line records it.

use std::{any::Any, panic::AssertUnwindSafe, time::Instant};

use chrono::{DateTime, Utc};
use futures::FutureExt;
use lambda_http::{Body, Request, Response};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::json;

use super::{RawRequest, error_response, errors::ErrorStyle, query, response, truncate_bytes};
use crate::{
    AppContext,
    audit::{self, AuditOutcome, AuditRecord},
    auth::Caller,
    delivery::{self, Delivery, Finished},
    error::Error,
    jobs::submit::{Order, record_sync, start},
    metrics,
    notify::Notify,
    spec::ExportSpec,
};

/// Where a route's parameters come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// The query string (GET routes).
    Query,
    /// A JSON object body (POST routes); any query parameter is refused.
    JsonBody,
}

/// How a finished export is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The file inline (200), a 303 to its presigned URL when large, or the JSON
    /// link answer with `Accept: application/json`.
    File,
    /// Always stored in S3 and answered with [`ExportRoute::stored_answer`].
    Stored,
    /// Queued as an export job and answered `202` with the job (`POST /api/exports`;
    /// any other route with `Prefer: respond-async`).
    Job,
}

/// What a route declares; the pipeline does the rest. Built with the `const`
/// builders: `Policy::query("GET /x", "kind").admin_only()`.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// `GET /api/admin/sessions/export`: logs and audit records name the route.
    pub route: &'static str,
    /// Names the export in logs and object keys: `sessions`, `leads`, `chats`.
    pub kind: &'static str,
    pub input: Input,
    pub answer: Answer,
    /// Only admins may call it (checked before anything else is read).
    pub admin_only: bool,
    /// Rate limited per user (per minute) and per tenant (per hour).
    pub rate_limited: bool,
    /// Every attempt is written to the audit table.
    pub audited: bool,
}

impl Policy {
    /// A GET route: parameters in the query string, the file as the answer, audited.
    pub const fn query(route: &'static str, kind: &'static str) -> Self {
        Self {
            route,
            kind,
            input: Input::Query,
            answer: Answer::File,
            admin_only: false,
            rate_limited: false,
            audited: true,
        }
    }

    /// A POST route: parameters in a JSON body, the file stored and answered as JSON.
    pub const fn body_stored(route: &'static str, kind: &'static str) -> Self {
        Self {
            input: Input::JsonBody,
            answer: Answer::Stored,
            ..Self::query(route, kind)
        }
    }

    /// A POST route whose export always becomes a job.
    pub const fn body_job(route: &'static str, kind: &'static str) -> Self {
        Self {
            input: Input::JsonBody,
            answer: Answer::Job,
            ..Self::query(route, kind)
        }
    }

    pub const fn admin_only(self) -> Self {
        Self {
            admin_only: true,
            ..self
        }
    }

    pub const fn rate_limited(self) -> Self {
        Self {
            rate_limited: true,
            ..self
        }
    }
}

pub trait ExportRoute: Sync {
    /// The route's parameters: a `deny_unknown_fields` type of bounded values.
    type Params: DeserializeOwned + Serialize + Default + Send;

    fn policy(&self) -> Policy;

    /// The shape of this route's error bodies. It may look at the raw request (the
    /// leads export names the format asked for), which is not decoded yet.
    fn error_style(&self, req: &RawRequest) -> ErrorStyle;

    /// Scope: what this caller may export, as a spec. `now` is the export's one
    /// reading of the clock (its `as_of`).
    fn spec(
        &self,
        ctx: &AppContext,
        caller: &Caller,
        params: Self::Params,
        now: DateTime<Utc>,
    ) -> Result<ExportSpec, Error>;

    /// Who a job of this route emails when it finishes (checked against the
    /// recipient rules). Only the job API takes recipients.
    fn notify(&self, ctx: &AppContext, caller: &Caller, params: &Self::Params) -> Result<Notify, Error> {
        let _ = (ctx, caller, params);
        Ok(Notify::default())
    }

    /// The JSON answer of an [`Answer::Stored`] route.
    fn stored_answer(&self, label: &str, finished: &Finished) -> serde_json::Value {
        let _ = label;
        response::link_body(finished).unwrap_or_else(|| json!({}))
    }
}

pub use super::query::NoParams;

/// The most of a request's parameters an audit record keeps.
const AUDIT_PARAMETERS_BYTES: usize = 4096;

/// What the log line and the audit record learn along the way.
#[derive(Default)]
pub struct Trace {
    /// The authenticated caller: the log line, the audit record and a synchronous
    /// export's history record name it.
    pub(crate) caller: Option<Caller>,
    /// The request's parameters (bounded, a link redacted), for the audit record.
    pub(crate) parameters: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) rows: Option<u64>,
    pub(crate) bytes: Option<u64>,
    pub(crate) delivery: Option<Delivery>,
    /// The file this request made: discarded if the request fails after all.
    pub(crate) s3_key: Option<String>,
    /// The job (or schedule) the request is about.
    pub(crate) job_id: Option<String>,
    /// An object a download route handed out (audited; never this request's own file).
    pub(crate) served_key: Option<String>,
    /// The spec of a synchronous export that ran: recorded in the history.
    pub(crate) ran: Option<ExportSpec>,
}

impl Trace {
    /// The request's parameters for the audit record, bounded.
    pub(crate) fn keep_parameters(&mut self, sent: &str) {
        self.parameters = Some(truncate_bytes(sent, AUDIT_PARAMETERS_BYTES));
    }
}

/// Serves one request of an export route. Never panics and never answers outside
/// the route's documented shapes.
pub async fn handle<R: ExportRoute>(ctx: &AppContext, req: Request, route: &R) -> Response<Body> {
    frame(ctx, RawRequest::from_lambda(req), &Export(route)).await
}

/// A request for an export route's path with a method it does not serve: `405` with
/// `Allow` in the route's error shape (`204` for `OPTIONS`).
pub fn refuse_method<R: ExportRoute>(req: Request, route: &R, allow: &'static str) -> Response<Body> {
    let raw = RawRequest::from_lambda(req);
    super::errors::wrong_method(&raw.method, allow, &route.error_style(&raw))
}

/// Serves one request of any [`Route`] (the job API's resource routes, the
/// schedules API).
pub async fn handle_route<R: Route>(ctx: &AppContext, req: Request, route: &R) -> Response<Body> {
    frame(ctx, RawRequest::from_lambda(req), route).await
}

/// What runs inside the pipeline's frame. The frame gives every route the same
/// guarantees (the documented error shape even on a panic, a failed export's file
/// discarded, the audit record with the status actually sent, one log line); a
/// route says what it is ([`Policy`]), how its errors look, and what one attempt
/// does, noting what it learns in the [`Trace`]. Every [`ExportRoute`] is one; the
/// job API's resource routes ([`crate::jobs::api::JobRoute`]) and the schedules API
/// ([`crate::schedules::api::ScheduleRoute`]) implement it next to their types.
pub trait Route: Sync {
    fn policy(&self) -> Policy;

    /// The shape of this route's error bodies (it may look at the raw request).
    fn error_style(&self, raw: &RawRequest) -> ErrorStyle;

    /// One attempt: authenticate (the pipeline's `authenticate`, which records the caller's rights), decode, serve. `now` is the
    /// request's one reading of the clock.
    fn attempt(
        &self,
        ctx: &AppContext,
        raw: &RawRequest,
        now: DateTime<Utc>,
        trace: &mut Trace,
    ) -> impl Future<Output = Result<Response<Body>, Error>> + Send;
}

struct Export<'r, R>(&'r R);

impl<R: ExportRoute> Route for Export<'_, R> {
    fn policy(&self) -> Policy {
        self.0.policy()
    }

    fn error_style(&self, raw: &RawRequest) -> ErrorStyle {
        // A job answers like the job API, errors included.
        if self.0.policy().answer == Answer::Job || raw.prefers_async() {
            JOB_ERRORS
        } else {
            self.0.error_style(raw)
        }
    }

    async fn attempt(
        &self,
        ctx: &AppContext,
        raw: &RawRequest,
        now: DateTime<Utc>,
        trace: &mut Trace,
    ) -> Result<Response<Body>, Error> {
        attempt(ctx, raw, self.0, now, trace).await
    }
}

/// The error shape of the job API.
pub const JOB_ERRORS: ErrorStyle = ErrorStyle::Code {
    failure: "Export job request failed",
    invalid: Some("Invalid export job request"),
};

async fn frame<W: Route>(ctx: &AppContext, raw: RawRequest, work: &W) -> Response<Body> {
    let style = match std::panic::catch_unwind(AssertUnwindSafe(|| work.error_style(&raw))) {
        Ok(style) => style,
        Err(_) => ErrorStyle::plain(),
    };
    match AssertUnwindSafe(serve(ctx, &raw, work, &style)).catch_unwind().await {
        Ok(resp) => resp,
        Err(panic) => {
            tracing::error!(
                request_id = %raw.request_id,
                route = work.policy().route,
                panic = panic_message(&*panic),
                "request handler panicked"
            );
            error_response(&Error::internal("internal error", "panic"), &style)
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}

async fn serve<W: Route>(ctx: &AppContext, raw: &RawRequest, work: &W, style: &ErrorStyle) -> Response<Body> {
    let started = Instant::now();
    // One reading of the clock, at the precision a spec's `as_of` keeps.
    let now = crate::timefmt::to_millis(ctx.clock.now());
    let policy = work.policy();
    let mut trace = Trace::default();
    let result = AssertUnwindSafe(work.attempt(ctx, raw, now, &mut trace))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            Err(Error::internal(
                "internal error",
                format!("panic: {}", panic_message(&*panic)),
            ))
        });
    let mut answer = match result {
        Ok(response) => Answered { response, error: None },
        Err(e) => Answered {
            response: error_response(&e, style),
            error: Some(e),
        },
    };
    // A failed export leaves no file, whatever failed after it was stored.
    if answer.error.is_some()
        && let Some(key) = trace.s3_key.take()
    {
        delivery::discard(ctx, &key).await;
    }
    let attempt = Attempt {
        raw,
        policy: &policy,
        now,
        started,
    };
    if policy.audited {
        audit_attempt(ctx, &attempt, &trace, &mut answer, style).await;
    }
    record_sync_export(ctx, &attempt, &mut trace, &answer).await;
    log_line(&attempt, &trace, &answer);
    answer.response
}

/// The request being served, as the steps after its attempt see it.
struct Attempt<'a> {
    raw: &'a RawRequest,
    policy: &'a Policy,
    /// The request's one reading of the clock.
    now: DateTime<Utc>,
    started: Instant,
}

/// The response a request gets, and the error it carries when it is one.
struct Answered {
    response: Response<Body>,
    error: Option<Error>,
}

/// The audit record of an attempt, with the status actually sent. Nothing is
/// exported unrecorded: when the record cannot be written, a stored file is deleted
/// and a successful export fails (a request refused anyway keeps its own answer).
async fn audit_attempt(
    ctx: &AppContext,
    attempt: &Attempt<'_>,
    trace: &Trace,
    answer: &mut Answered,
    style: &ErrorStyle,
) {
    let Attempt {
        raw,
        policy,
        now,
        started,
    } = attempt;
    let error = &answer.error;
    let mut record = AuditRecord::new(&raw.request_id, policy.route, *now);
    record.caller = trace.caller.as_ref().map(|c| c.sub.clone());
    record.role = trace
        .caller
        .as_ref()
        .map(|c| if c.is_admin() { "admin" } else { "user" }.to_string());
    record.parameters = trace.parameters.clone();
    if let Some(scope) = &trace.scope {
        record.client_scope = scope.clone();
    }
    record.status = answer.response.status().as_u16();
    record.outcome = match error {
        None => AuditOutcome::Success,
        Some(e) if e.is_server_error() => AuditOutcome::Failed,
        Some(_) => AuditOutcome::Rejected,
    };
    record.error_code = error.as_ref().map(|e| e.code().to_string());
    record.records = trace.rows;
    record.bytes = trace.bytes;
    record.s3_key = trace.s3_key.clone().or_else(|| trace.served_key.clone());
    record.job_id = trace.job_id.clone();
    record.duration_ms = started.elapsed().as_millis() as u64;
    if let Err(audit_error) = audit::write(&ctx.aws.dynamodb, &ctx.config.tables.audit, &record).await {
        tracing::error!(request_id = %raw.request_id, error = %audit_error.cause_chain(), "audit record not written");
        if error.as_ref().is_none_or(|e| e.is_server_error()) {
            if let Some(key) = &trace.s3_key {
                delivery::discard(ctx, key).await;
            }
            if answer.error.is_none() {
                answer.response = error_response(&audit_error, style);
                answer.error = Some(audit_error);
            }
        }
    }
}

/// A synchronous export that ran: one history record and one metric line.
async fn record_sync_export(ctx: &AppContext, attempt: &Attempt<'_>, trace: &mut Trace, answer: &Answered) {
    let Attempt { raw, now, started, .. } = attempt;
    let now = *now;
    let (Some(spec), Some(caller)) = (trace.ran.take(), trace.caller.as_ref()) else {
        return;
    };
    let outcome = match &answer.error {
        None => Ok((trace.rows.unwrap_or(0), trace.bytes.unwrap_or(0), trace.s3_key.clone())),
        Some(e) => Err(e),
    };
    let stored_ok = outcome.is_ok();
    record_sync(ctx, caller, &spec, now, outcome).await;
    metrics::emit(
        &metrics::ExportMetric {
            kind: spec.kind(),
            format: spec.format_name(),
            outcome: if stored_ok {
                metrics::Outcome::Succeeded
            } else {
                metrics::Outcome::Failed
            },
            trigger: metrics::Ran::Sync,
            rows: trace.rows.unwrap_or(0),
            bytes: trace.bytes.unwrap_or(0),
            duration_ms: started.elapsed().as_millis() as u64,
            queue_wait_ms: None,
            error_code: answer.error.as_ref().map(|e| e.code().as_str()),
            id: &raw.request_id,
        },
        now,
    );
}

/// The request's one log line: the full cause chain of a server error, the client's
/// message of a refusal, the figures of a success. Never a secret or a file's content.
fn log_line(attempt: &Attempt<'_>, trace: &Trace, answer: &Answered) {
    let Attempt {
        raw, policy, started, ..
    } = attempt;
    let status = answer.response.status().as_u16();
    let duration_ms = started.elapsed().as_millis() as u64;
    let (route_name, kind, request_id, sub) = (
        policy.route,
        policy.kind,
        &raw.request_id,
        trace.caller.as_ref().map(|c| c.sub.as_str()),
    );
    match &answer.error {
        Some(e) if e.is_server_error() => tracing::error!(
            request_id, route = route_name, sub, kind, status, duration_ms,
            error = %e.cause_chain(), "export failed"
        ),
        Some(e) => tracing::warn!(
            request_id, route = route_name, sub, kind, status, duration_ms,
            error = %e, "export rejected"
        ),
        None => tracing::info!(
            request_id,
            route = route_name,
            sub,
            kind,
            status,
            rows = trace.rows,
            bytes = trace.bytes,
            delivery = trace.delivery.map(Delivery::as_str),
            duration_ms,
            "export done"
        ),
    }
}

/// The caller, remembered for the audit record and the log line. Its rights are
/// recorded (crate::rights) before anything is served: when they changed, the
/// owner's schedules its token no longer grants are paused first.
pub(crate) async fn authenticate(
    ctx: &AppContext,
    raw: &RawRequest,
    now: DateTime<Utc>,
    trace: &mut Trace,
) -> Result<Caller, Error> {
    let caller = ctx.auth.authenticate(&raw.headers)?;
    trace.caller = Some(caller.clone());
    if let Some(rights) = crate::rights::observe(ctx, &caller, now).await? {
        crate::schedules::owner::pause_revoked(ctx, &caller.sub, &rights, now).await?;
    }
    Ok(caller)
}

async fn attempt<R: ExportRoute>(
    ctx: &AppContext,
    raw: &RawRequest,
    route: &R,
    now: DateTime<Utc>,
    trace: &mut Trace,
) -> Result<Response<Body>, Error> {
    let policy = route.policy();
    let caller = authenticate(ctx, raw, now, trace).await?;
    if policy.admin_only {
        caller.require_admin()?;
    }

    // Until the parameters decode, the audit record keeps a bounded copy of them as sent.
    let sent = match policy.input {
        Input::Query => raw.query.clone(),
        Input::JsonBody => String::from_utf8_lossy(&raw.body).into_owned(),
    };
    trace.keep_parameters(&sent);
    raw.typed_headers()?;
    let params: R::Params = match policy.input {
        Input::Query => {
            raw.no_body()?;
            query::decode(&raw.query)?
        }
        Input::JsonBody => {
            query::decode::<NoParams>(&raw.query)?;
            // A job start needs its body; a chat export may be all defaults.
            raw.json_body(policy.answer == Answer::Job)?
        }
    };
    if let Ok(json) = serde_json::to_string(&params) {
        trace.keep_parameters(&json);
    }

    let notify = route.notify(ctx, &caller, &params)?;
    let spec = route.spec(ctx, &caller, params, now)?;
    trace.scope = Some(spec.audit_scope());
    let rate_limited = policy.rate_limited;
    let admit = || super::admission::admit(ctx, &caller, &spec, rate_limited, now);
    if policy.answer == Answer::Job || raw.prefers_async() {
        let started = start(
            ctx,
            raw,
            policy.route,
            &caller,
            Order { spec: &spec, notify },
            now,
            admit,
        )
        .await?;
        trace.job_id = Some(started.job.id.clone());
        trace.delivery = Some(Delivery::Job);
        let mut response = started.response;
        if policy.answer != Answer::Job {
            // RFC 7240: say which preference made this a job.
            response.headers_mut().insert(
                "preference-applied",
                lambda_http::http::HeaderValue::from_static("respond-async"),
            );
        }
        return Ok(response);
    }
    admit().await?;

    let wants_json = raw.typed_headers()?.wants_json;
    let inline = policy.answer == Answer::File && !wants_json;
    trace.ran = Some(spec.clone());
    let finished = delivery::run(ctx, &spec, inline).await?;
    trace.rows = Some(finished.rows);
    trace.bytes = Some(finished.bytes);
    trace.s3_key = finished.s3_key().map(String::from);
    trace.delivery = Some(match (finished.s3_key(), policy.answer, wants_json) {
        (None, _, _) => Delivery::Inline,
        (Some(_), Answer::File, false) => Delivery::Redirect,
        (Some(_), _, _) => Delivery::Link,
    });
    match policy.answer {
        Answer::File => response::file_response(finished, wants_json),
        Answer::Stored | Answer::Job => Ok(response::json_response(
            lambda_http::http::StatusCode::OK,
            &route.stored_answer(spec.format_name(), &finished),
        )),
    }
}
