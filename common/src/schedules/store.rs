//! The schedules table. Every change the scheduler makes is one conditional write on
//! what it read (`next_run_at`, `pending`), so duplicate and concurrent ticks agree;
//! the API writes a whole schedule on its `version`.

use aws_sdk_dynamodb::types::{AttributeValue, Select};
use chrono::{DateTime, Utc};

use super::Schedule;
use crate::{
    dynamo::{Records, n, s},
    error::Error,
    schema::{SCHEDULE_SHARDS, SCHEDULES_BY_DUE, SCHEDULES_BY_OWNER, SCHEDULES_BY_SHARD},
    timefmt,
};

/// What a due run did, written with the move to the next due time.
pub enum Handled<'a> {
    Nothing,
    /// Its job was made: it exported the window ending at `window_end`.
    Exported {
        window_end: Option<DateTime<Utc>>,
    },
    /// It made no job; `before` are the skipped runs the schedule kept already.
    Skipped {
        run: super::SkippedRun,
        before: &'a [super::SkippedRun],
    },
}

#[derive(Clone, Debug)]
pub struct ScheduleStore {
    records: Records,
}

impl ScheduleStore {
    pub fn of(ctx: &crate::AppContext) -> Self {
        Self {
            records: Records {
                client: ctx.aws.dynamodb.clone(),
                table: ctx.config.tables.schedules.clone(),
                what: "schedule",
            },
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Schedule>, Error> {
        self.records.get(id).await
    }

    /// Writes a whole schedule: a new one (`expected_version` `None`), or over the
    /// version it was read at. `Ok(false)`: someone wrote it meanwhile.
    pub async fn put(&self, schedule: &Schedule, expected_version: Option<u64>) -> Result<bool, Error> {
        match expected_version {
            None => self.records.put(schedule, "attribute_not_exists(id)", vec![]).await,
            Some(v) => self.records.put(schedule, "#version = :v", vec![(":v", n(v))]).await,
        }
    }

    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        self.records.delete(id).await
    }

    /// A Query of an owner's schedules (index `by_owner`).
    fn by_owner(&self, owner: &str) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.records
            .client
            .query()
            .table_name(&self.records.table)
            .index_name(SCHEDULES_BY_OWNER)
            .key_condition_expression("#o = :o")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":o", s(owner))
    }

    /// How many schedules an owner has, counting up to `cap`.
    pub async fn count_of(&self, owner: &str, cap: u32) -> Result<u32, Error> {
        let out = self
            .by_owner(owner)
            .select(Select::Count)
            .limit(cap as i32)
            .send()
            .await
            .map_err(Error::database)?;
        Ok(out.count.max(0) as u32)
    }

    /// An owner's schedules, newest first (at most `limit`), optionally only those
    /// made under `tenant`.
    pub async fn list_of(&self, owner: &str, tenant: Option<&str>, limit: usize) -> Result<Vec<Schedule>, Error> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let mut req = self
                .by_owner(owner)
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take());
            if let Some(t) = tenant {
                req = req
                    .filter_expression("#t = :t")
                    .expression_attribute_names("#t", "owner_tenant")
                    .expression_attribute_values(":t", s(t));
            }
            let out = req.send().await.map_err(Error::database)?;
            for item in out.items.unwrap_or_default() {
                found.push(self.records.decode(item)?);
            }
            start = out.last_evaluated_key;
            if found.len() >= limit || start.is_none() {
                found.truncate(limit);
                return Ok(found);
            }
        }
    }

    /// Every schedule, newest first (at most `limit`), or only those paused for
    /// `paused_for`: the newest `limit` (matching) of each partition, merged.
    pub async fn list_all(
        &self,
        limit: usize,
        paused_for: Option<super::PausedReason>,
    ) -> Result<Vec<Schedule>, Error> {
        let mut all: Vec<Schedule> = Vec::new();
        for shard in 0..SCHEDULE_SHARDS {
            let mut start = None;
            let mut kept = 0;
            loop {
                let mut req = self
                    .records
                    .client
                    .query()
                    .table_name(&self.records.table)
                    .index_name(SCHEDULES_BY_SHARD)
                    .key_condition_expression("#s = :s")
                    .expression_attribute_names("#s", "shard")
                    .expression_attribute_values(":s", s(format!("{shard:02}")))
                    .scan_index_forward(false)
                    .limit(limit as i32)
                    .set_exclusive_start_key(start.take());
                if let Some(reason) = paused_for {
                    // A filter reads past what it drops: pages follow until enough match.
                    req = req
                        .filter_expression("paused_reason = :why")
                        .expression_attribute_values(":why", s(reason.as_str()));
                }
                let out = req.send().await.map_err(Error::database)?;
                for item in out.items.unwrap_or_default() {
                    all.push(self.records.decode(item)?);
                    kept += 1;
                }
                start = out.last_evaluated_key;
                if kept >= limit || start.is_none() {
                    break;
                }
            }
        }
        all.sort_by(|a, b| b.created_key.cmp(&a.created_key));
        all.truncate(limit);
        Ok(all)
    }

    /// Enabled schedules of one partition due at `now` (at most `limit`), earliest first.
    pub async fn due(&self, shard: u32, now: DateTime<Utc>, limit: usize) -> Result<Vec<Schedule>, Error> {
        let out = self
            .records
            .client
            .query()
            .table_name(&self.records.table)
            .index_name(SCHEDULES_BY_DUE)
            .key_condition_expression("due_shard = :s AND next_run_at <= :now")
            .expression_attribute_values(":s", s(format!("{shard:02}")))
            .expression_attribute_values(":now", s(timefmt::format(&now)))
            .limit(limit as i32)
            .send()
            .await
            .map_err(Error::database)?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|item| self.records.decode(item))
            .collect()
    }

    async fn update(
        &self,
        id: &str,
        expression: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Option<Schedule>, Error> {
        self.records.update(id, expression, condition, values).await
    }

    /// Moves `next_run_at` from the run just handled to the next one (or removes it
    /// from the due index when the cadence never fires again). `None`: another tick
    /// moved it first.
    pub async fn advance(
        &self,
        id: &str,
        handled: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Option<Schedule>, Error> {
        self.advance_after(id, handled, next, now, Handled::Nothing).await
    }

    /// [`ScheduleStore::advance`], recording in the same write what the run did.
    pub async fn advance_after(
        &self,
        id: &str,
        handled: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        what: Handled<'_>,
    ) -> Result<Option<Schedule>, Error> {
        let mut values = vec![
            (":handled", s(timefmt::format(&handled))),
            (":now", s(timefmt::format(&now))),
            (":one", n(1)),
        ];
        let mut set = vec!["updated_at = :now"];
        let mut remove = Vec::new();
        match next {
            Some(next) => {
                values.push((":next", s(timefmt::format(&next))));
                set.push("next_run_at = :next");
            }
            None => remove.extend(["next_run_at", "due_shard"]),
        }
        match what {
            Handled::Nothing => {}
            Handled::Exported { window_end } => {
                // The window is exported: the next one follows on from it.
                remove.push("resume_from");
                if let Some(end) = window_end {
                    values.push((":lwe", s(timefmt::format(&end))));
                    set.push("last_window_end = :lwe");
                }
            }
            Handled::Skipped { run, before } => {
                let mut kept = vec![run];
                kept.extend(before.iter().cloned());
                kept.truncate(super::SKIPPED_KEPT);
                let list = serde_dynamo::to_attribute_value(&kept).map_err(|e| Error::internal("record error", e))?;
                values.push((":skipped", list));
                set.push("skipped = :skipped");
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        expression.push_str(" ADD #version :one");
        self.update(id, &expression, "next_run_at = :handled", values).await
    }

    /// Pauses a schedule for `reason`, whatever else changed meanwhile (a pause
    /// always wins; a PATCH racing it fails on the version and reads it paused).
    pub async fn pause(
        &self,
        id: &str,
        reason: super::PausedReason,
        now: DateTime<Utc>,
    ) -> Result<Option<Schedule>, Error> {
        self.update(
            id,
            "SET enabled = :no, paused_reason = :why, updated_at = :now REMOVE next_run_at, due_shard ADD #version :one",
            "attribute_exists(id)",
            vec![
                (":no", AttributeValue::Bool(false)),
                (":why", s(reason.as_str())),
                (":now", s(timefmt::format(&now))),
                (":one", n(1)),
            ],
        )
        .await
    }

    /// Incremental: records the run about to be created as the one in flight, if no
    /// other tick did first. `next_run_at` stays as it is (due), so every tick looks
    /// at the run until it ends.
    pub async fn start_pending(
        &self,
        id: &str,
        due: DateTime<Utc>,
        job_id: &str,
        window: (DateTime<Utc>, DateTime<Utc>),
        now: DateTime<Utc>,
    ) -> Result<Option<Schedule>, Error> {
        self.update(
            id,
            "SET pending = :job, pending_start = :start, pending_end = :end, updated_at = :now ADD #version :one",
            "next_run_at = :due AND attribute_not_exists(pending)",
            vec![
                (":due", s(timefmt::format(&due))),
                (":now", s(timefmt::format(&now))),
                (":job", s(job_id)),
                (":start", s(timefmt::format(&window.0))),
                (":end", s(timefmt::format(&window.1))),
                (":one", n(1)),
            ],
        )
        .await
    }

    /// Incremental: the run in flight ended. A success moves the cursor to its
    /// window's end and starts over at 0 attempts; a failure counts one more attempt
    /// of the same window. Either way the next run is due at `next`.
    pub async fn resolve_pending(
        &self,
        id: &str,
        job_id: &str,
        succeeded_until: Option<DateTime<Utc>>,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Option<Schedule>, Error> {
        let mut values = vec![(":job", s(job_id)), (":now", s(timefmt::format(&now))), (":one", n(1))];
        let mut set = vec!["updated_at = :now"];
        let mut remove = vec!["pending", "pending_start", "pending_end"];
        match next {
            Some(next) => {
                values.push((":next", s(timefmt::format(&next))));
                set.push("next_run_at = :next");
            }
            None => remove.extend(["next_run_at", "due_shard"]),
        }
        let add = match succeeded_until {
            Some(c) => {
                values.push((":c", s(timefmt::format(&c))));
                values.push((":zero", n(0)));
                set.push("#cursor = :c");
                set.push("#attempt = :zero");
                "ADD #version :one".to_string()
            }
            None => "ADD #version :one, #attempt :one".to_string(),
        };
        let expression = format!("SET {} REMOVE {} {add}", set.join(", "), remove.join(", "));
        self.update(id, &expression, "pending = :job", values).await
    }
}
