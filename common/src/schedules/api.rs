//! The schedules API: `POST /api/schedules`, `POST /api/schedules/preview`,
//! `GET /api/schedules`, `GET|PATCH|DELETE /api/schedules/{id}`. Served inside the
//! request pipeline ([`crate::http::pipeline`]) once the caller is known.
//!
//! Past 600 lines, and one concern: the routes and the parsing of their bodies into
//! a checked [`Schedule`] (the cadence, window and rights rules are in their own
//! modules).

use chrono::{DateTime, Utc};
use lambda_http::{
    Body, Response,
    http::{HeaderValue, StatusCode, header::LOCATION},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    Access, PausedReason, Schedule, WindowKind, cadence::Cadence, resource, resource_for, run_resource, shard_of,
    store::ScheduleStore,
};
use crate::{
    AppContext,
    auth::Caller,
    error::{Error, ErrorCode},
    http::{
        ErrorStyle, Policy, RawRequest,
        pipeline::{Route, Trace, authenticate},
        query,
        query::NoParams,
        response::json_response,
        sanitize,
    },
    jobs::{request::JobRequest, store::JobStore},
    notify::{NotifyRequest, check_recipients},
    spec::TimeZone,
    timefmt,
    values::id::ScheduleId,
};

pub const SCHEDULES_PATH: &str = "/api/schedules";
pub const SCHEDULE_PATH: &str = "/api/schedules/{id}";
pub const PREVIEW_PATH: &str = "/api/schedules/preview";

/// Schedules one owner may have.
pub const MAX_SCHEDULES_PER_OWNER: u32 = super::MAX_OWNED as u32;
/// Runs `GET /api/schedules/{id}` lists.
const RUNS_SHOWN: usize = 20;
const MAX_NAME_CHARS: usize = 100;
const MAX_LAG_SECONDS: i64 = 86_400;
/// How far from now an incremental schedule's `start_at` may be.
const MAX_START_AT_DAYS: i64 = 366;
const DEFAULT_LIST: i64 = 100;
/// Firings a change of cadence looks past for the first one with a window not
/// exported yet (a period of minutes over the day a window may span).
const MAX_RUNS_LOOKED_PAST: usize = 1_500;

/// The routes, once the path is matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduleRoute {
    Create,
    Preview,
    List,
    Get(String),
    Update(String),
    Delete(String),
}

impl ScheduleRoute {
    pub fn matching(method: &str, path: &str) -> Option<Self> {
        let rest = path.strip_prefix(SCHEDULES_PATH)?;
        if rest.is_empty() || rest == "/" {
            return match method {
                "POST" => Some(ScheduleRoute::Create),
                "GET" => Some(ScheduleRoute::List),
                _ => None,
            };
        }
        let id = rest.strip_prefix('/')?;
        if id.is_empty() || id.contains('/') {
            return None;
        }
        match (method, id) {
            ("POST", "preview") => Some(ScheduleRoute::Preview),
            (_, "preview") => None,
            ("GET", _) => Some(ScheduleRoute::Get(id.to_string())),
            ("PATCH", _) => Some(ScheduleRoute::Update(id.to_string())),
            ("DELETE", _) => Some(ScheduleRoute::Delete(id.to_string())),
            _ => None,
        }
    }

    /// The methods a path of the schedules API serves (its `Allow` header); `None`
    /// when it is not one of its paths.
    pub fn allowed(path: &str) -> Option<&'static str> {
        let rest = path.strip_prefix(SCHEDULES_PATH)?;
        if rest.is_empty() || rest == "/" {
            return Some("GET, POST");
        }
        match rest.strip_prefix('/')? {
            "preview" => Some("POST"),
            id if !id.is_empty() && !id.contains('/') => Some("GET, PATCH, DELETE"),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ScheduleRoute::Create => "POST /api/schedules",
            ScheduleRoute::Preview => "POST /api/schedules/preview",
            ScheduleRoute::List => "GET /api/schedules",
            ScheduleRoute::Get(_) => "GET /api/schedules/{id}",
            ScheduleRoute::Update(_) => "PATCH /api/schedules/{id}",
            ScheduleRoute::Delete(_) => "DELETE /api/schedules/{id}",
        }
    }

    /// Routes that change something are audited.
    pub fn audited(&self) -> bool {
        matches!(
            self,
            ScheduleRoute::Create | ScheduleRoute::Update(_) | ScheduleRoute::Delete(_)
        )
    }

    pub fn id(&self) -> Option<&str> {
        match self {
            ScheduleRoute::Get(id) | ScheduleRoute::Update(id) | ScheduleRoute::Delete(id) => Some(id),
            _ => None,
        }
    }
}

/// `POST /api/schedules` (and `/preview`).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<JobRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<crate::params::Int>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifyRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `PATCH /api/schedules/{id}`: what may change. `cron` replaces a rate and `rate` a cron.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulePatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifyRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<crate::params::Int>,
}

/// `GET /api/schedules` parameters.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Admins: whose schedules (default: every one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Admins: only the schedules paused because their owner's access changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orphaned: Option<bool>,
}

fn field(name: &str, message: impl std::fmt::Display) -> Error {
    Error::bad_request(format!("{name}: {message}"))
}

pub fn check_name(name: Option<String>) -> Result<String, Error> {
    let name = name.map(|n| n.trim().to_string()).unwrap_or_default();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(field(
            "name",
            format!("is required: 1 to {MAX_NAME_CHARS} characters, no control characters"),
        ));
    }
    Ok(name)
}

fn cadence_of(cron: Option<&str>, rate: Option<&str>) -> Result<Cadence, Error> {
    match (cron, rate) {
        (Some(_), Some(_)) => Err(field("cron", "give either cron or rate, not both")),
        (None, None) => Err(field(
            "cron",
            "one of cron (\"0 2 * * *\") or rate (\"1 hour\") is required",
        )),
        (Some(c), None) => Cadence::cron(c).map_err(|m| field("cron", m)),
        (None, Some(r)) => Cadence::rate(r).map_err(|m| field("rate", m)),
    }
}

fn zone_of(name: Option<&str>) -> Result<TimeZone, Error> {
    name.map_or(Ok(TimeZone::UTC), |z| {
        TimeZone::parse(z.trim()).map_err(|m| field("time_zone", m))
    })
}

fn lag_of(lag: Option<crate::params::Int>, default: u32) -> Result<u32, Error> {
    let lag = lag.map(|l| l.0);
    match lag {
        None => Ok(default),
        Some(l) if (0..=MAX_LAG_SECONDS).contains(&l) => Ok(l as u32),
        Some(_) => Err(field("lag_seconds", format!("must be between 0 and {MAX_LAG_SECONDS}"))),
    }
}

/// The parameters a windowed schedule sets itself.
const WINDOW_OWNED_PARAMS: [&str; 5] = ["startDate", "endDate", "date_from", "date_to", "limit"];

/// A new schedule from a request, scoped to the caller now.
async fn build(ctx: &AppContext, caller: &Caller, req: ScheduleRequest, now: DateTime<Utc>) -> Result<Schedule, Error> {
    let name = check_name(req.name)?;
    let window = match req.window.as_deref() {
        None => WindowKind::None,
        Some(w) => WindowKind::parse(w.trim())
            .ok_or_else(|| field("window", format!("must be one of {}", WindowKind::choices())))?,
    };
    let cadence = cadence_of(req.cron.as_deref(), req.rate.as_deref())?;
    let time_zone = zone_of(req.time_zone.as_deref())?;
    if window != WindowKind::Incremental && (req.lag_seconds.is_some() || req.start_at.is_some()) {
        return Err(field(
            "lag_seconds",
            "lag_seconds and start_at apply to incremental windows only",
        ));
    }
    let lag_seconds = lag_of(req.lag_seconds, ctx.config.schedules.default_lag_secs)?;
    let cursor = match req.start_at.as_deref() {
        None => now,
        // Within a year of now: the windows behind run one per tick, so a start far
        // back would keep the schedule catching up for ever.
        Some(t) => timefmt::parse_rfc3339(t.trim())
            .map(timefmt::to_millis)
            .filter(|t| (*t - now).num_days().abs() <= MAX_START_AT_DAYS)
            .ok_or_else(|| {
                field(
                    "start_at",
                    format!(
                        "must be an RFC 3339 time within {MAX_START_AT_DAYS} days of now, such as 2026-01-01T00:00:00Z"
                    ),
                )
            })?,
    };
    let mut export = req
        .export
        .ok_or_else(|| field("export", "is required: {\"kind\", \"format\", \"params\"}"))?;
    if export.notify.is_some() {
        return Err(field(
            "export.notify",
            "give the recipients in the schedule's own notify",
        ));
    }
    if window != WindowKind::None {
        let params = export.params.get_or_insert_with(Default::default);
        if let Some(taken) = WINDOW_OWNED_PARAMS.iter().find(|p| params.contains_key(**p)) {
            return Err(field(
                &format!("export.params.{taken}"),
                "a schedule with a window sets the dates itself and exports every row of each window",
            ));
        }
    }
    let shown = serde_json::to_string(&export).map_err(|e| Error::internal("schedule error", e))?;
    let is_chatty = export
        .kind
        .as_ref()
        .is_some_and(|k| matches!(k.0.as_str(), "chats" | "conversations"));
    if window != WindowKind::None && is_chatty {
        // Every row of a window: the largest export a request may ask for.
        export
            .params
            .get_or_insert_with(Default::default)
            .insert("limit".into(), json!(ctx.config.chat.max_records));
    }
    let spec = export.into_spec(ctx, caller, now).map_err(|e| match e {
        Error::BadRequest(m) => Error::BadRequest(format!("export: {m}")),
        other => other,
    })?;
    if window != WindowKind::None && !spec.has_time_filter() {
        return Err(field(
            "window",
            format!("the {} export has no date filter; use \"none\"", spec.kind()),
        ));
    }
    let notify = check_recipients(&ctx.config.notify, caller, req.notify, "notify")?;
    let webhooks = crate::webhooks::vet(ctx, &caller.sub, &notify.webhooks, "notify").await?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut schedule = Schedule {
        created_key: format!("{}#{id}", timefmt::format(&now)),
        shard: shard_of(&id),
        id,
        name,
        owner: caller.sub.clone(),
        owner_tenant: caller.tenant(),
        due_shard: None,
        export: shown,
        kind: spec.kind().to_string(),
        spec: serde_json::to_string(&spec).map_err(|e| Error::internal("schedule error", e))?,
        cron: None,
        rate: None,
        time_zone,
        window,
        lag_seconds,
        notify: notify.emails,
        notify_on_empty: notify.on_empty,
        webhooks,
        enabled: req.enabled.unwrap_or(true),
        next_run_at: None,
        cursor: (window == WindowKind::Incremental).then_some(cursor),
        pending: None,
        pending_start: None,
        pending_end: None,
        attempt: 0,
        created_at: now,
        updated_at: now,
        paused_reason: None,
        last_window_end: None,
        resume_from: None,
        skipped: Vec::new(),
        version: 1,
    };
    set_cadence(&mut schedule, &cadence);
    let first = match schedule.cursor {
        // The first incremental window is due at its own firing (at once when
        // `start_at` is further back than a period: the windows behind run one by one).
        Some(cursor) => schedule.incremental_run(&cadence, cursor).map(|r| r.run_at),
        None => cadence.next_after(now, schedule.time_zone),
    };
    set_next_run(&mut schedule, first);
    Ok(schedule)
}

fn set_cadence(s: &mut Schedule, cadence: &Cadence) {
    match cadence {
        Cadence::Cron { .. } => {
            s.cron = Some(cadence.text());
            s.rate = None;
        }
        Cadence::Rate { .. } => {
            s.rate = Some(cadence.text());
            s.cron = None;
        }
    }
}

/// The next due time (none while paused), and the due index entry with it.
fn set_next_run(s: &mut Schedule, next: Option<DateTime<Utc>>) {
    s.next_run_at = next.filter(|_| s.enabled);
    s.due_shard = s.next_run_at.map(|_| s.shard.clone());
}

/// A schedule the caller may see, and how much of it: any for an admin; its own
/// whole while its token names the tenants it was made under, and, whatever the
/// tenants its token names now, that it exists (to see it paused and delete it).
/// Everything else is "not found".
async fn visible(store: &ScheduleStore, caller: &Caller, id: &str) -> Result<(Schedule, Access), Error> {
    let not_found = || Error::NotFound("no such schedule".into());
    let id = ScheduleId::parse(id).ok_or_else(not_found)?;
    let s = store.get(id.as_str()).await?.ok_or_else(not_found)?;
    let access = access_of(caller, &s).ok_or_else(not_found)?;
    Ok((s, access))
}

fn access_of(caller: &Caller, s: &Schedule) -> Option<Access> {
    if caller.is_admin() || (s.owner == caller.sub && s.owner_tenant == caller.tenant()) {
        Some(Access::Full)
    } else if s.owner == caller.sub {
        Some(Access::Revoked)
    } else {
        None
    }
}

/// The answer to an owner whose access changed, for anything but reading and deleting.
fn access_changed() -> Error {
    Error::Forbidden(
        "your access changed: this schedule exports data your token no longer grants; you may delete it".into(),
    )
}

fn created_response(s: &Schedule) -> Response<Body> {
    let mut resp = json_response(StatusCode::CREATED, &resource(s));
    if let Ok(location) = HeaderValue::from_str(&format!("{SCHEDULES_PATH}/{}", s.id)) {
        resp.headers_mut().insert(LOCATION, location);
    }
    resp
}

/// What a route did, for the audit record.
#[derive(Default)]
struct Outcome {
    pub schedule_id: Option<String>,
}

/// Serves a schedules route for an authenticated caller.
async fn serve(
    ctx: &AppContext,
    raw: &RawRequest,
    route: &ScheduleRoute,
    caller: &Caller,
    now: DateTime<Utc>,
    outcome: &mut Outcome,
) -> Result<Response<Body>, Error> {
    if route != &ScheduleRoute::List {
        query::decode::<NoParams>(&raw.query)?;
    }
    // Create, Preview and Update read their body below; the others take none.
    if matches!(
        route,
        ScheduleRoute::List | ScheduleRoute::Get(_) | ScheduleRoute::Delete(_)
    ) {
        raw.no_body()?;
    }
    let store = ScheduleStore::of(ctx);
    outcome.schedule_id = route.id().map(sanitize);
    match route {
        ScheduleRoute::Create => {
            let req: ScheduleRequest = raw.json_body(true)?;
            let schedule = build(ctx, caller, req, now).await?;
            if store.count_of(&caller.sub, MAX_SCHEDULES_PER_OWNER).await? >= MAX_SCHEDULES_PER_OWNER {
                return Err(Error::conflict(
                    ErrorCode::TooManySchedules,
                    format!("you already have {MAX_SCHEDULES_PER_OWNER} schedules; delete one first"),
                ));
            }
            store.put(&schedule, None).await?;
            outcome.schedule_id = Some(schedule.id.clone());
            Ok(created_response(&schedule))
        }
        ScheduleRoute::Preview => {
            let req: ScheduleRequest = raw.json_body(true)?;
            let schedule = build(ctx, caller, req, now).await?;
            let cadence = schedule.cadence()?;
            let runs: Vec<Value> = schedule
                .upcoming(&cadence, now, super::UPCOMING_RUNS)
                .iter()
                .map(super::run_json)
                .collect();
            Ok(json_response(
                StatusCode::OK,
                &json!({"description": cadence.describe(schedule.time_zone), "next_runs": runs}),
            ))
        }
        ScheduleRoute::List => {
            let p: ListParams = query::decode(&raw.query)?;
            let limit = p.limit.unwrap_or(DEFAULT_LIST);
            if !(1..=100).contains(&limit) {
                return Err(field("limit", "must be between 1 and 100"));
            }
            let orphaned = p.orphaned.unwrap_or(false);
            if orphaned && !caller.is_admin() {
                return Err(Error::Forbidden("Only admins may list orphaned schedules".into()));
            }
            let schedules = match (caller.is_admin(), p.owner) {
                (true, None) => {
                    let paused_for = orphaned.then_some(PausedReason::OwnerAccessChanged);
                    store.list_all(limit as usize, paused_for).await?
                }
                (true, Some(o)) => {
                    crate::auth::check_sub(&o).map_err(|m| field("owner", m))?;
                    // One owner's are few (MAX_OWNED): read them all, keep what is asked.
                    let mut theirs = store.list_of(&o, None, super::MAX_OWNED).await?;
                    if orphaned {
                        theirs.retain(|s| s.paused_reason == Some(PausedReason::OwnerAccessChanged));
                    }
                    theirs.truncate(limit as usize);
                    theirs
                }
                (false, Some(o)) if o != caller.sub => {
                    return Err(Error::Forbidden("Only admins may list another user's schedules".into()));
                }
                // An owner sees every schedule it made, whole where its token grants it.
                (false, _) => store.list_of(&caller.sub, None, limit as usize).await?,
            };
            let items: Vec<Value> = schedules
                .iter()
                .filter_map(|s| access_of(caller, s).map(|a| resource_for(s, a)))
                .collect();
            Ok(json_response(StatusCode::OK, &json!({"schedules": items})))
        }
        ScheduleRoute::Get(id) => {
            let (s, access) = visible(&store, caller, id).await?;
            if access == Access::Revoked {
                let mut body = resource_for(&s, access);
                body["runs"] = json!([]);
                return Ok(json_response(StatusCode::OK, &body));
            }
            let mut runs = JobStore::of(ctx).runs_of(&s.id, RUNS_SHOWN).await?;
            // Runs started by one tick share their creation time: newest due time first.
            runs.sort_by(|a, b| (b.run_at, &b.created_key).cmp(&(a.run_at, &a.created_key)));
            let mut body = resource(&s);
            body["runs"] = Value::Array(runs.iter().map(run_resource).collect());
            Ok(json_response(StatusCode::OK, &body))
        }
        ScheduleRoute::Update(id) => {
            let patch: SchedulePatch = raw.json_body(true)?;
            // Read, change, write on the version read; a tick moving the schedule
            // meanwhile makes us read again.
            for _ in 0..5 {
                let (current, access) = visible(&store, caller, id).await?;
                if access == Access::Revoked {
                    return Err(access_changed());
                }
                // Nobody resumes what its owner may no longer export (an admin neither).
                if patch.enabled == Some(true)
                    && !current.enabled
                    && !crate::rights::still_granted(ctx, &current.owner, &current.owner_tenant).await?
                {
                    return Err(Error::conflict(
                        ErrorCode::OwnerAccessChanged,
                        "the schedule's owner no longer has access to what it exports; only the owner, with a token that grants it, can resume it",
                    ));
                }
                let updated = apply(ctx, caller, current.clone(), &patch, now).await?;
                if store.put(&updated, Some(current.version)).await? {
                    return Ok(json_response(StatusCode::OK, &resource(&updated)));
                }
            }
            Err(Error::conflict(
                ErrorCode::ScheduleBusy,
                "the schedule kept changing while it was updated; retry",
            ))
        }
        ScheduleRoute::Delete(id) => {
            let (s, _) = visible(&store, caller, id).await?;
            store.delete(&s.id).await?;
            Ok(Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Body::Empty)
                .map_err(|e| Error::internal("response error", e))?)
        }
    }
}

/// A schedule with a PATCH applied.
async fn apply(
    ctx: &AppContext,
    caller: &Caller,
    mut s: Schedule,
    patch: &SchedulePatch,
    now: DateTime<Utc>,
) -> Result<Schedule, Error> {
    if let Some(name) = &patch.name {
        s.name = check_name(Some(name.clone()))?;
    }
    let cadence = match (&patch.cron, &patch.rate) {
        (None, None) => s.cadence()?,
        (cron, rate) => cadence_of(cron.as_deref(), rate.as_deref())?,
    };
    if let Some(z) = &patch.time_zone {
        s.time_zone = zone_of(Some(z))?;
    }
    if let Some(lag) = patch.lag_seconds {
        // The request is well formed; this schedule's state does not take it.
        if s.window != WindowKind::Incremental {
            return Err(Error::conflict(
                ErrorCode::NotIncremental,
                format!(
                    "lag_seconds: applies to incremental windows only; this schedule's window is {}",
                    s.window.as_str()
                ),
            ));
        }
        s.lag_seconds = lag_of(Some(lag), s.lag_seconds)?;
    }
    if let Some(notify) = &patch.notify {
        let checked = check_recipients(&ctx.config.notify, caller, Some(notify.clone()), "notify")?;
        // The schedule's owner's secrets, whoever edits it.
        s.webhooks = crate::webhooks::vet(ctx, &s.owner, &checked.webhooks, "notify").await?;
        s.notify = checked.emails;
        s.notify_on_empty = checked.on_empty;
    }
    let timing_changed = patch.cron.is_some() || patch.rate.is_some() || patch.time_zone.is_some();
    let resumed = patch.enabled == Some(true) && !s.enabled;
    if let Some(enabled) = patch.enabled {
        s.enabled = enabled;
        // Paused or resumed by a person: no longer the system's pause.
        s.paused_reason = None;
    }
    if timing_changed && s.window == WindowKind::PreviousPeriod && s.last_window_end.is_some() {
        // The next window starts where the last exported one ended: a change of
        // cadence neither exports a window twice nor leaves one out.
        s.resume_from = s.resume_from.or(s.last_window_end);
    }
    set_cadence(&mut s, &cadence);
    if timing_changed || resumed || !s.enabled {
        let mut next = cadence.next_after(now, s.time_zone);
        // Past the runs whose whole window was exported already (a new cadence's
        // first firings can look back over one): what the answer shows as next is
        // what runs next.
        for _ in 0..MAX_RUNS_LOOKED_PAST {
            match next {
                Some(at) if s.due_run(&cadence, at).is_err() => next = cadence.next_after(at, s.time_zone),
                _ => break,
            }
        }
        set_next_run(&mut s, next);
    }
    s.updated_at = now;
    s.version += 1;
    Ok(s)
}

/// The error shape of the schedules API.
pub const SCHEDULE_ERRORS: ErrorStyle = ErrorStyle::Code {
    failure: "Schedule request failed",
    invalid: Some("Invalid schedule request"),
};

/// The schedules API runs through the one request pipeline; the audit record's job id
/// names the schedule.
impl Route for ScheduleRoute {
    fn policy(&self) -> Policy {
        Policy {
            audited: self.audited(),
            ..Policy::query(self.name(), "schedules")
        }
    }

    fn error_style(&self, _raw: &RawRequest) -> ErrorStyle {
        SCHEDULE_ERRORS
    }

    async fn attempt(
        &self,
        ctx: &AppContext,
        raw: &RawRequest,
        now: DateTime<Utc>,
        trace: &mut Trace,
    ) -> Result<Response<Body>, Error> {
        let caller = authenticate(ctx, raw, now, trace).await?;
        raw.typed_headers()?;
        let sent = if raw.body.is_empty() {
            raw.query.clone()
        } else {
            String::from_utf8_lossy(&raw.body).into_owned()
        };
        trace.keep_parameters(&sent);
        let mut outcome = Outcome::default();
        let result = serve(ctx, raw, self, &caller, now, &mut outcome).await;
        // The audit record's job id names the schedule.
        trace.job_id = outcome.schedule_id;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match() {
        assert_eq!(
            ScheduleRoute::matching("POST", "/api/schedules"),
            Some(ScheduleRoute::Create)
        );
        assert_eq!(
            ScheduleRoute::matching("GET", "/api/schedules/"),
            Some(ScheduleRoute::List)
        );
        assert_eq!(
            ScheduleRoute::matching("POST", "/api/schedules/preview"),
            Some(ScheduleRoute::Preview)
        );
        assert_eq!(
            ScheduleRoute::matching("PATCH", "/api/schedules/abc"),
            Some(ScheduleRoute::Update("abc".into()))
        );
        assert_eq!(ScheduleRoute::matching("PUT", "/api/schedules/abc"), None);
        assert_eq!(ScheduleRoute::matching("GET", "/api/schedules/a/b"), None);
        assert_eq!(ScheduleRoute::matching("GET", "/api/schedulesx"), None);
    }
}
