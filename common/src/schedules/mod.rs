//! Scheduled exports: a stored export request plus a cadence and a window rule. At
//! each due time the scheduler ([`tick`]) turns it into an export job with a
//! deterministic id; the worker runs it like any job and emails the recipients.
//! docs/schedules.md is the reference.
//!
//! Table `SCHEDULES_TABLE`: one item per schedule (key `id`). Indexes: `by_due`
//! (`due_shard`, `next_run_at`; only enabled schedules carry `due_shard`),
//! `by_owner` (`owner`, `created_key`) and `by_shard` (`shard`, `created_key`).

pub mod api;
pub mod cadence;
pub mod owner;
pub mod store;
pub mod tick;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use self::cadence::Cadence;
use crate::{
    error::Error,
    jobs::hex,
    model::string_enum,
    spec::{ExportSpec, TimeZone},
    timefmt::{self, serde_ts, serde_ts_opt},
};

string_enum!(
    /// What each run exports (docs/schedules.md, "Windows").
    WindowKind { None => "none", PreviousPeriod => "previous_period", Incremental => "incremental" }
);

string_enum!(
    /// Why the system (not the owner) paused a schedule: `owner_access_changed`,
    /// the owner's token no longer grants what it exports ([`crate::rights`]).
    PausedReason { OwnerAccessChanged => "owner_access_changed" }
);

string_enum!(
    /// Why a due run made no job: `window_exported_before`, its window was
    /// exported by an earlier run (the cadence or time zone changed since), or that
    /// run's job was deleted. A window is exported once.
    SkipReason { WindowExportedBefore => "window_exported_before" }
);

/// A due run that made no job, as the schedule keeps it (the newest
/// [`SKIPPED_KEPT`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkippedRun {
    #[serde(with = "serde_ts")]
    pub run_at: DateTime<Utc>,
    #[serde(default, with = "serde_ts_opt", skip_serializing_if = "Option::is_none")]
    pub window_start: Option<DateTime<Utc>>,
    #[serde(default, with = "serde_ts_opt", skip_serializing_if = "Option::is_none")]
    pub window_end: Option<DateTime<Utc>>,
    pub reason: SkipReason,
}

/// Schedules one owner may have.
pub const MAX_OWNED: usize = 100;

/// How many skipped runs a schedule keeps.
pub const SKIPPED_KEPT: usize = 10;

/// A schedule as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// 32 lowercase hex characters.
    pub id: String,
    pub name: String,
    /// The JWT `sub` of its creator, and the tenants the creator's token named then.
    pub owner: String,
    pub owner_tenant: String,
    /// `<created_at>#<id>`: the listing indexes' sort key.
    pub created_key: String,
    /// `00`..: the admins' listing partition (fixed).
    pub shard: String,
    /// Present while enabled: the `by_due` partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_shard: Option<String>,
    /// The export as asked for (`{"kind", "format", "params"}`), shown back.
    pub export: String,
    /// The [`ExportSpec`] (JSON) resolved for the creator when the schedule was made:
    /// its tenant scope is what every run exports.
    pub spec: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    pub time_zone: TimeZone,
    pub window: WindowKind,
    pub lag_seconds: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<crate::values::email::EmailAddress>,
    pub notify_on_empty: bool,
    /// Copied onto every run's job ([`crate::webhooks`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<crate::values::webhook::Webhook>,
    pub enabled: bool,
    /// The next due time; `None` while paused.
    #[serde(default, with = "serde_ts_opt", skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<DateTime<Utc>>,
    /// Incremental: the end of the last window that succeeded.
    #[serde(default, with = "serde_ts_opt", skip_serializing_if = "Option::is_none")]
    pub cursor: Option<DateTime<Utc>>,
    /// Incremental: the run in flight, and its window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
    #[serde(default, with = "serde_ts_opt", skip_serializing_if = "Option::is_none")]
    pub pending_start: Option<DateTime<Utc>>,
    #[serde(default, with = "serde_ts_opt", skip_serializing_if = "Option::is_none")]
    pub pending_end: Option<DateTime<Utc>>,
    /// Incremental: failed runs of the window that starts at the cursor (0 after a success).
    #[serde(default)]
    pub attempt: u32,
    #[serde(with = "serde_ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "serde_ts")]
    pub updated_at: DateTime<Utc>,
    /// Set while the system, not the owner, paused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_reason: Option<PausedReason>,
    /// previous_period: the end of the newest window a run exported.
    #[serde(default, with = "serde_ts_opt", skip_serializing_if = "Option::is_none")]
    pub last_window_end: Option<DateTime<Utc>>,
    /// previous_period, after a change of cadence or time zone: where the next
    /// window starts (the end of the last one exported), so that the change neither
    /// exports a window twice nor leaves a gap. Cleared by the next run.
    #[serde(default, with = "serde_ts_opt", skip_serializing_if = "Option::is_none")]
    pub resume_from: Option<DateTime<Utc>>,
    /// Due runs that made no job, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedRun>,
    /// Bumped by every write: PATCH writes the whole item on this condition.
    pub version: u64,
}

/// One run: when it was due, and the window it exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub run_at: DateTime<Utc>,
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
}

impl Schedule {
    pub fn cadence(&self) -> Result<Cadence, Error> {
        let parsed = match (&self.cron, &self.rate) {
            (Some(c), _) => Cadence::cron(c),
            (None, Some(r)) => Cadence::rate(r),
            (None, None) => Err("no cadence".into()),
        };
        parsed.map_err(|m| Error::MalformedItem {
            key: format!("schedule {}", self.id),
            reason: m,
        })
    }

    pub fn spec(&self) -> Result<ExportSpec, Error> {
        serde_json::from_str(&self.spec).map_err(|e| Error::internal("schedule error", e))
    }

    pub fn lag(&self) -> Duration {
        Duration::seconds(i64::from(self.lag_seconds))
    }

    /// An incremental schedule's next window from a cursor: `[cursor, slot - lag)`,
    /// `slot` being the first firing after `cursor + lag`, which is when it is due.
    /// One period at most (`last_end + period`), never past `now - lag` once due.
    pub fn incremental_run(&self, cadence: &Cadence, cursor: DateTime<Utc>) -> Option<Run> {
        let slot = cadence.next_after(cursor + self.lag(), self.time_zone)?;
        Some(Run {
            run_at: slot,
            window_start: Some(cursor),
            window_end: Some(slot - self.lag()),
        })
    }

    /// The run due at `run_at` (an incremental one from the cursor; the scheduler
    /// runs those through [`Schedule::incremental_run`]).
    pub fn run(&self, cadence: &Cadence, run_at: DateTime<Utc>) -> Run {
        let (window_start, window_end) = match self.window {
            WindowKind::None => (None, None),
            WindowKind::PreviousPeriod => {
                let unit = cadence.unit();
                let end = cadence::floor(run_at, unit, self.time_zone);
                let start = cadence
                    .previous_before(run_at, self.time_zone)
                    .map(|p| cadence::floor(p, unit, self.time_zone))
                    .filter(|s| *s < end)
                    .unwrap_or_else(|| {
                        end - match unit {
                            cadence::Unit::Minute => Duration::minutes(1),
                            cadence::Unit::Hour => Duration::hours(1),
                            cadence::Unit::Day => Duration::days(1),
                        }
                    });
                (Some(start), Some(end))
            }
            WindowKind::Incremental => (self.cursor, Some(run_at - self.lag())),
        };
        Run {
            run_at,
            window_start,
            window_end,
        }
    }

    /// The run due at `run_at` as the scheduler makes it: [`Schedule::run`], its
    /// window starting at `resume_from` after a change of cadence (see there).
    /// `Err`: that window was exported already, the run is skipped.
    pub fn due_run(&self, cadence: &Cadence, run_at: DateTime<Utc>) -> Result<Run, Run> {
        let mut run = self.run(cadence, run_at);
        if let (WindowKind::PreviousPeriod, Some(from), Some(end)) = (self.window, self.resume_from, run.window_end) {
            if end <= from {
                return Err(run);
            }
            run.window_start = Some(from);
        }
        Ok(run)
    }

    /// The next `n` runs from `from` (exclusive), with their windows. Incremental
    /// windows are chained from the cursor (or the window in flight) as if every run
    /// succeeded; one already due shows at `from`.
    pub fn upcoming(&self, cadence: &Cadence, from: DateTime<Utc>, n: usize) -> Vec<Run> {
        let mut out = Vec::with_capacity(n);
        if self.window == WindowKind::Incremental {
            let mut cursor = self.pending_end.or(self.cursor);
            let not_before = self.next_run_at.unwrap_or(from).max(from);
            while out.len() < n {
                let Some(mut run) = cursor.and_then(|c| self.incremental_run(cadence, c)) else {
                    break;
                };
                cursor = run.window_end;
                run.run_at = run.run_at.max(not_before);
                out.push(run);
            }
            return out;
        }
        let mut next = cadence.next_after(from, self.time_zone);
        let mut stitched = false;
        while let Some(run_at) = next.filter(|_| out.len() < n) {
            next = cadence.next_after(run_at, self.time_zone);
            if stitched {
                out.push(self.run(cadence, run_at));
                continue;
            }
            // The first run after a change of cadence starts where the last window
            // ended; runs whose window was exported already are skipped.
            if let Ok(run) = self.due_run(cadence, run_at) {
                stitched = true;
                out.push(run);
            }
        }
        out
    }

    /// The id of a run's job: derived from the schedule and the run's window end
    /// (its due time for a window of `none`), so that every tick that sees the run
    /// names the same job and a conditional write makes it once.
    /// `attempt` counts the failed runs of an incremental window before this one.
    pub fn job_id(&self, run: &Run, attempt: u32) -> String {
        let end = run.window_end.unwrap_or(run.run_at);
        let mut key = format!("schedule|{}|{}", self.id, timefmt::format(&end));
        if attempt > 0 {
            key.push_str(&format!("|{attempt}"));
        }
        hex(&Sha256::digest(key.as_bytes())[..16])
    }

    /// The export of one run, as of `now`.
    pub fn spec_for(&self, run: &Run, now: DateTime<Utc>) -> Result<ExportSpec, Error> {
        let spec = self.spec()?.with_as_of(now);
        match (self.window, run.window_start, run.window_end) {
            (WindowKind::None, _, _) => Ok(spec),
            (_, Some(start), Some(end)) => spec.with_window(start, end).map_err(|m| Error::MalformedItem {
                key: format!("schedule {}", self.id),
                reason: m,
            }),
            _ => Err(Error::MalformedItem {
                key: format!("schedule {}", self.id),
                reason: "a windowed run without a window".into(),
            }),
        }
    }
}

/// The partition of a schedule in the sharded indexes.
pub fn shard_of(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    format!("{:02}", u32::from(digest[0]) % crate::schema::SCHEDULE_SHARDS)
}

fn ts(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| json!(timefmt::format(&t)))
}

fn run_json(run: &Run) -> Value {
    json!({
        "run_at": timefmt::format(&run.run_at),
        "window_start": ts(run.window_start),
        "window_end": ts(run.window_end),
    })
}

/// How many upcoming runs a schedule shows.
pub const UPCOMING_RUNS: usize = 5;

fn skipped_json(run: &SkippedRun) -> Value {
    json!({
        "run_at": timefmt::format(&run.run_at),
        "window_start": ts(run.window_start),
        "window_end": ts(run.window_end),
        "reason": run.reason.as_str(),
    })
}

/// What a caller may see of a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Everything: an admin, or its owner under the tenants it was made for.
    Full,
    /// Its owner under other tenants (their access changed): that it exists, that
    /// it is paused and why, and nothing of what it exports or to whom.
    Revoked,
}

/// The schedule resource as `access` allows.
pub fn resource_for(s: &Schedule, access: Access) -> Value {
    match access {
        Access::Full => resource(s),
        Access::Revoked => json!({
            "id": s.id,
            "name": s.name,
            "owner": s.owner,
            "access": "revoked",
            "export": Value::Null,
            "cron": s.cron,
            "rate": s.rate,
            "time_zone": s.time_zone.name(),
            "window": s.window.as_str(),
            "lag_seconds": s.lag_seconds,
            "notify": Value::Null,
            "enabled": s.enabled,
            "paused_reason": s.paused_reason.map(PausedReason::as_str),
            "status": "paused: your access changed",
            "description": Value::Null,
            "next_run_at": Value::Null,
            "next_runs": [],
            "cursor": Value::Null,
            "skipped_runs": [],
            "created_at": timefmt::format(&s.created_at),
            "updated_at": timefmt::format(&s.updated_at),
        }),
    }
}

/// The schedule resource of the API (docs/schedules.md).
pub fn resource(s: &Schedule) -> Value {
    let cadence = s.cadence().ok();
    let next_runs: Vec<Value> = match (&cadence, s.enabled, s.next_run_at) {
        (Some(c), true, Some(next)) => {
            // From just before the next due time, so that it is the first shown.
            s.upcoming(c, next - Duration::milliseconds(1), UPCOMING_RUNS)
                .iter()
                .map(run_json)
                .collect()
        }
        _ => Vec::new(),
    };
    let export: Value = serde_json::from_str(&s.export).unwrap_or(Value::Null);
    json!({
        "id": s.id,
        "name": s.name,
        "owner": s.owner,
        "export": export,
        "cron": s.cron,
        "rate": s.rate,
        "time_zone": s.time_zone.name(),
        "window": s.window.as_str(),
        "lag_seconds": s.lag_seconds,
        "notify": {
            "emails": s.notify,
            "on_empty": s.notify_on_empty,
            "webhooks": s.webhooks.iter().map(|h| json!({"url": h.url, "secret_id": h.secret_id})).collect::<Vec<_>>(),
        },
        "enabled": s.enabled,
        "paused_reason": s.paused_reason.map(PausedReason::as_str),
        "status": match (s.enabled, s.paused_reason) {
            (true, _) => "active",
            (false, None) => "paused",
            (false, Some(_)) => "paused: the owner's access changed",
        },
        "access": "full",
        "description": cadence.map(|c| c.describe(s.time_zone)),
        "next_run_at": ts(s.next_run_at),
        "next_runs": next_runs,
        "cursor": ts(s.cursor),
        "skipped_runs": s.skipped.iter().map(skipped_json).collect::<Vec<_>>(),
        "created_at": timefmt::format(&s.created_at),
        "updated_at": timefmt::format(&s.updated_at),
    })
}

/// A run as `GET /api/schedules/{id}` lists it.
pub fn run_resource(job: &crate::jobs::Job) -> Value {
    let error = job
        .error_code
        .as_ref()
        .map(|c| json!({"error_code": c, "message": job.error_message.clone().unwrap_or_default()}));
    json!({
        "job_id": job.id,
        "run_at": ts(job.run_at),
        "window_start": ts(job.window_start),
        "window_end": ts(job.window_end),
        "status": job.status.as_str(),
        "rows": job.rows,
        "rows_done": job.rows_done,
        "size_bytes": job.size_bytes,
        "file_name": job.file_name,
        "created_at": timefmt::format(&job.created_at),
        "finished_at": ts(job.finished_at),
        "error": error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        timefmt::parse_rfc3339(s).unwrap()
    }

    fn schedule(cron: &str, zone: &str, window: WindowKind) -> Schedule {
        Schedule {
            id: "0123456789abcdef0123456789abcdef".into(),
            name: "n".into(),
            owner: "o".into(),
            owner_tenant: "t".into(),
            created_key: "k".into(),
            shard: "00".into(),
            due_shard: None,
            export: "{}".into(),
            spec: "{}".into(),
            kind: "leads".into(),
            cron: Some(cron.into()),
            rate: None,
            time_zone: TimeZone::parse(zone).unwrap(),
            window,
            lag_seconds: 120,
            notify: vec![],
            notify_on_empty: true,
            webhooks: vec![],
            enabled: true,
            next_run_at: None,
            cursor: Some(t("2026-01-01T00:00:00Z")),
            pending: None,
            pending_start: None,
            pending_end: None,
            attempt: 0,
            created_at: t("2026-01-01T00:00:00Z"),
            updated_at: t("2026-01-01T00:00:00Z"),
            paused_reason: None,
            last_window_end: None,
            resume_from: None,
            skipped: Vec::new(),
            version: 1,
        }
    }

    #[test]
    fn previous_period_is_yesterday_in_the_zone_across_dst() {
        let s = schedule("0 2 * * *", "Europe/Berlin", WindowKind::PreviousPeriod);
        let c = s.cadence().unwrap();
        let runs = s.upcoming(&c, t("2026-03-27T12:00:00Z"), 4);
        let windows: Vec<_> = runs
            .iter()
            .map(|r| {
                (
                    timefmt::format(&r.window_start.unwrap()),
                    timefmt::format(&r.window_end.unwrap()),
                )
            })
            .collect();
        assert_eq!(
            windows,
            [
                ("2026-03-26T23:00:00.000Z".into(), "2026-03-27T23:00:00.000Z".into()),
                // The day DST starts has 23 hours.
                ("2026-03-27T23:00:00.000Z".into(), "2026-03-28T23:00:00.000Z".into()),
                ("2026-03-28T23:00:00.000Z".into(), "2026-03-29T22:00:00.000Z".into()),
                ("2026-03-29T22:00:00.000Z".into(), "2026-03-30T22:00:00.000Z".into()),
            ]
        );
        // Different windows, different jobs; the same window, the same job.
        assert_ne!(s.job_id(&runs[0], 0), s.job_id(&runs[1], 0));
        assert_eq!(s.job_id(&runs[0], 0), s.job_id(&s.run(&c, runs[0].run_at), 0));
        assert_ne!(s.job_id(&runs[0], 0), s.job_id(&runs[0], 1), "a retry is another job");
    }

    #[test]
    fn incremental_windows_chain_from_the_cursor() {
        let s = schedule("0 * * * *", "UTC", WindowKind::Incremental);
        let c = s.cadence().unwrap();
        let runs = s.upcoming(&c, t("2026-01-01T00:30:00Z"), 3);
        assert_eq!(runs[0].window_start, Some(t("2026-01-01T00:00:00Z")));
        assert_eq!(runs[0].window_end, Some(t("2026-01-01T00:58:00Z")));
        assert_eq!(runs[1].window_start, runs[0].window_end);
        assert_eq!(runs[2].window_end, Some(t("2026-01-01T02:58:00Z")));
    }
}
