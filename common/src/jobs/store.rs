//! The jobs table: every state change is one conditional write, so concurrent
//! workers, retried deliveries and a cancel racing a finish can never disagree.
//!
//! Past 600 lines, and one concern: each function is one of those writes (or a read
//! of the table's indexes), kept together so that the conditions can be read side by
//! side.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::{Job, JobStatus, Worker};
use crate::{
    dynamo::{Item, Records, conditional_failed, n, s},
    error::{Error, ErrorCode},
    schema::JOBS_BY_OWNER,
};

/// The item of a caller's idempotency key.
fn idempotency_id(owner: &str, key: &str) -> String {
    format!("idem#{owner}#{key}")
}

/// The attribute that makes an item a deleted job's tombstone (its deletion time).
const TOMBSTONE: &str = "deleted_at";

/// What a job's id names.
#[derive(Debug)]
pub enum Lookup {
    Live(Box<Job>),
    /// The job was deleted; its id is not to be used again.
    Deleted,
    Absent,
}

/// The jobs table of one deployment.
#[derive(Clone, Debug)]
pub struct JobStore {
    records: Records,
}

/// What a worker's claim found.
#[derive(Debug)]
pub enum Claim {
    /// The job is this worker's to run.
    Claimed(Box<Job>),
    /// Nothing to do: the job is final (or does not exist).
    Skip(&'static str),
    /// Another worker holds a live claim: this delivery should come back later, in
    /// case that worker dies.
    Busy,
    /// The job was claimed too often (its workers died): it is now failed.
    Exhausted,
}

impl JobStore {
    /// The jobs table of a function's context.
    pub fn of(ctx: &crate::AppContext) -> Self {
        Self {
            records: Records {
                client: ctx.aws.dynamodb.clone(),
                table: ctx.config.tables.jobs.clone(),
                what: "job",
            },
        }
    }

    /// A job, `None` when there is none (never made, expired, or deleted).
    pub async fn get(&self, id: &str) -> Result<Option<Job>, Error> {
        Ok(match self.lookup(id).await? {
            Lookup::Live(job) => Some(*job),
            Lookup::Deleted | Lookup::Absent => None,
        })
    }

    /// A job, or whether its id was deleted (a tombstone stands in its place).
    pub async fn lookup(&self, id: &str) -> Result<Lookup, Error> {
        Ok(match self.records.get_item(id).await? {
            None => Lookup::Absent,
            Some(item) if item.contains_key(TOMBSTONE) => Lookup::Deleted,
            Some(item) => Lookup::Live(Box::new(self.records.decode(item)?)),
        })
    }

    /// Stores a new job; its id is fresh, so the write never overwrites one.
    pub async fn put_new(&self, job: &Job) -> Result<(), Error> {
        if self.put_if_absent(job).await? {
            Ok(())
        } else {
            Err(Error::internal("job error", format!("job {} exists already", job.id)))
        }
    }

    /// Stores a job unless one with its id exists (a schedule's run, whose id is
    /// derived): `true` when this call created it.
    pub async fn put_if_absent(&self, job: &Job) -> Result<bool, Error> {
        // A job that is not final yet is in the sweeper's index until it is.
        let mut job = job.clone();
        job.active_shard = (!job.status.is_final()).then(|| super::active_shard_of(&job.id));
        self.records.put(&job, "attribute_not_exists(id)", vec![]).await
    }

    /// Replaces a job's record by a tombstone (`DELETE /api/exports/{id}`): the id
    /// stays taken until `ttl` (the record's own), so a schedule never makes the
    /// run again under it, and nothing of the job is left. The tombstone carries no
    /// `owner`, `schedule_id` or `active_shard`, so no index lists it, and no
    /// conditional write on a job's state holds on it.
    pub async fn bury(&self, job: &Job, now: DateTime<Utc>) -> Result<(), Error> {
        self.records
            .client
            .put_item()
            .table_name(&self.records.table)
            .item("id", s(&job.id))
            .item(TOMBSTONE, s(crate::timefmt::format(&now)))
            .item("ttl", n(job.ttl))
            .send()
            .await
            .map_err(Error::database)?;
        Ok(())
    }

    /// A schedule's runs, newest first (index `by_schedule`).
    pub async fn runs_of(&self, schedule_id: &str, limit: usize) -> Result<Vec<Job>, Error> {
        let out = self
            .records
            .client
            .query()
            .table_name(&self.records.table)
            .index_name(crate::schema::JOBS_BY_SCHEDULE)
            .key_condition_expression("schedule_id = :s")
            .expression_attribute_values(":s", s(schedule_id))
            .scan_index_forward(false)
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
    ) -> Result<Option<Job>, Error> {
        self.records.update(id, expression, condition, values).await
    }

    /// queued -> running, or running with an expired lease -> running again (its
    /// worker died). Exactly one worker wins; a job claimed `max_attempts` times
    /// already is failed instead. `token` is the queue worker's claim
    /// ([`Worker::Queue`]); exports at scale are never claimed.
    pub async fn claim(
        &self,
        id: &str,
        token: &str,
        now: DateTime<Utc>,
        lease_secs: u64,
        max_attempts: u32,
    ) -> Result<Claim, Error> {
        let Some(job) = self.get(id).await? else {
            return Ok(Claim::Skip("no such job"));
        };
        if job.status.is_final() {
            return Ok(Claim::Skip("job already finished"));
        }
        let lease_live = job.lease_until.is_some_and(|l| l >= now.timestamp());
        if job.status == JobStatus::Running && lease_live {
            return Ok(Claim::Busy);
        }
        if job.attempts >= max_attempts {
            let failed = self
                .finish_failed(
                    id,
                    None,
                    now,
                    ErrorCode::WorkerLost,
                    "The export stopped unexpectedly too many times; start it again",
                )
                .await?;
            return Ok(match failed {
                Some(_) => Claim::Exhausted,
                None => Claim::Skip("job already finished"),
            });
        }
        let claimed = self
            .update(
                id,
                "SET #status = :running, #worker = :w, #lease_until = :lease, #started_at = if_not_exists(#started_at, :now), \
                 #rows_done = :zero, #bytes_done = :zero ADD #attempts :one",
                "(#status = :queued) OR (#status = :running AND #lease_until < :now_secs)",
                vec![
                    (":running", s(JobStatus::Running.as_str())),
                    (":queued", s(JobStatus::Queued.as_str())),
                    (":w", s(token)),
                    (":lease", n(now.timestamp() + lease_secs as i64)),
                    (":now", s(crate::timefmt::format(&now))),
                    (":now_secs", n(now.timestamp())),
                    (":zero", n(0)),
                    (":one", n(1)),
                ],
            )
            .await?;
        Ok(match claimed {
            Some(job) => Claim::Claimed(Box::new(job)),
            None => Claim::Busy,
        })
    }

    /// Progress, and a renewed lease. `None` when the claim is lost (cancelled, or
    /// taken over after this worker stalled): the worker must stop.
    pub async fn heartbeat(
        &self,
        id: &str,
        worker: &Worker,
        rows: u64,
        bytes: u64,
        now: DateTime<Utc>,
        lease_secs: u64,
    ) -> Result<Option<Job>, Error> {
        self.update(
            id,
            "SET #rows_done = :r, #bytes_done = :b, #lease_until = :lease",
            "#status = :running AND #worker = :w",
            vec![
                (":r", n(rows)),
                (":b", n(bytes)),
                (":lease", n(now.timestamp() + lease_secs as i64)),
                (":running", s(JobStatus::Running.as_str())),
                (":w", s(worker.as_str())),
            ],
        )
        .await
    }

    /// A renewed lease, progress unchanged. `None` when the claim is lost.
    pub async fn renew_lease(&self, id: &str, worker: &Worker, until: i64) -> Result<Option<Job>, Error> {
        self.update(
            id,
            "SET #lease_until = :lease",
            "#status = :running AND #worker = :w",
            vec![
                (":lease", n(until)),
                (":running", s(JobStatus::Running.as_str())),
                (":w", s(worker.as_str())),
            ],
        )
        .await
    }

    /// A finished job's webhook deliveries as they stand (after every attempt). Only
    /// the job's own record: never a tombstone (a deleted job).
    pub async fn record_webhooks(&self, id: &str, hooks: &[crate::values::webhook::Webhook]) -> Result<(), Error> {
        let value = serde_dynamo::to_attribute_value(hooks).map_err(|e| Error::internal("job error", e))?;
        self.update(
            id,
            "SET #webhooks = :w",
            "attribute_exists(#status)",
            vec![(":w", value)],
        )
        .await
        .map(drop)
    }

    /// running (held by `worker`) -> succeeded. `None` when the claim was lost.
    pub async fn finish_succeeded(
        &self,
        id: &str,
        worker: &Worker,
        now: DateTime<Utc>,
        rows: u64,
        bytes: u64,
        s3_key: &str,
    ) -> Result<Option<Job>, Error> {
        self.update(
            id,
            "SET #status = :done, #finished_at = :now, #rows_done = :r, #bytes_done = :b, #rows = :r, #size_bytes = :b, \
             #s3_key = :k REMOVE #lease_until, #worker, #active_shard",
            "#status = :running AND #worker = :w",
            vec![
                (":done", s(JobStatus::Succeeded.as_str())),
                (":now", s(crate::timefmt::format(&now))),
                (":r", n(rows)),
                (":b", n(bytes)),
                (":k", s(s3_key)),
                (":running", s(JobStatus::Running.as_str())),
                (":w", s(worker.as_str())),
            ],
        )
        .await
        .map(|j| j.filter(|j| j.status == JobStatus::Succeeded))
    }

    /// queued or running (held by `worker` when given) -> failed.
    pub async fn finish_failed(
        &self,
        id: &str,
        worker: Option<&Worker>,
        now: DateTime<Utc>,
        code: ErrorCode,
        message: &str,
    ) -> Result<Option<Job>, Error> {
        // DynamoDB refuses values the expressions do not use.
        let (condition, values) = match worker {
            Some(w) => ("#status = :running AND #worker = :w", vec![(":w", s(w.as_str()))]),
            None => (
                "#status IN (:queued, :running)",
                vec![(":queued", s(JobStatus::Queued.as_str()))],
            ),
        };
        self.fail_if(id, now, code, message, condition, values).await
    }

    /// running, its lease run out before `now` (and held by `worker`, when it names
    /// one) -> failed. `None` when the job moved on meanwhile: finished, claimed again,
    /// or its lease renewed by a heartbeat or a counted part.
    pub async fn fail_lapsed(
        &self,
        id: &str,
        worker: Option<&Worker>,
        now: DateTime<Utc>,
        code: ErrorCode,
        message: &str,
    ) -> Result<Option<Job>, Error> {
        let mut values = vec![(":now_secs", n(now.timestamp()))];
        let condition = match worker {
            Some(w) => {
                values.push((":w", s(w.as_str())));
                "#status = :running AND #lease_until < :now_secs AND #worker = :w"
            }
            None => "#status = :running AND #lease_until < :now_secs",
        };
        self.fail_if(id, now, code, message, condition, values).await
    }

    /// -> failed with `code` and `message` when `condition` holds (`values` are its
    /// own; `:running` is always given). `None` when it did not.
    async fn fail_if(
        &self,
        id: &str,
        now: DateTime<Utc>,
        code: ErrorCode,
        message: &str,
        condition: &str,
        mut values: Vec<(&str, AttributeValue)>,
    ) -> Result<Option<Job>, Error> {
        values.extend([
            (":failed", s(JobStatus::Failed.as_str())),
            (":now", s(crate::timefmt::format(&now))),
            (":code", s(code.as_str())),
            (":msg", s(message)),
            (":running", s(JobStatus::Running.as_str())),
        ]);
        self.update(
            id,
            "SET #status = :failed, #finished_at = :now, #error_code = :code, #error_message = :msg \
             REMOVE #lease_until, #worker, #active_shard",
            condition,
            values,
        )
        .await
    }

    /// queued or running -> cancelled. `None` when the job was already final.
    pub async fn cancel(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Job>, Error> {
        self.update(
            id,
            "SET #status = :cancelled, #finished_at = :now REMOVE #lease_until, #worker, #active_shard",
            "#status IN (:queued, :running)",
            vec![
                (":cancelled", s(JobStatus::Cancelled.as_str())),
                (":now", s(crate::timefmt::format(&now))),
                (":running", s(JobStatus::Running.as_str())),
                (":queued", s(JobStatus::Queued.as_str())),
            ],
        )
        .await
    }

    /// running (held by `worker`) -> queued again: a worker that stops before the job
    /// is done (its process is shutting down) gives the job back, so the next delivery
    /// runs it at once instead of after the lease. The claim is not counted as an
    /// attempt. `None` when the claim was lost meanwhile.
    pub async fn release(&self, id: &str, worker: &Worker) -> Result<Option<Job>, Error> {
        self.update(
            id,
            "SET #status = :queued REMOVE #lease_until, #worker, #started_at ADD #attempts :minus",
            "#status = :running AND #worker = :w",
            vec![
                (":queued", s(JobStatus::Queued.as_str())),
                (":running", s(JobStatus::Running.as_str())),
                (":w", s(worker.as_str())),
                (":minus", n(-1)),
            ],
        )
        .await
    }

    /// The queued and running jobs of one partition of the `by_active` index, oldest
    /// first (every page: active jobs are few, bounded by the callers' caps and the
    /// schedules). The index is eventually consistent: act on a job only through a
    /// conditional write.
    pub async fn active(&self, shard: &str) -> Result<Vec<Job>, Error> {
        let mut jobs = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .records
                .client
                .query()
                .table_name(&self.records.table)
                .index_name(crate::schema::JOBS_BY_ACTIVE)
                .key_condition_expression("active_shard = :s")
                .expression_attribute_values(":s", s(shard))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(Error::database)?;
            for item in out.items.unwrap_or_default() {
                jobs.push(self.records.decode(item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(jobs);
            }
        }
    }

    /// Records that the sweeper sends `job` to the queue again, on the condition that
    /// nothing moved it since it was read (same status, same last requeue, and for a
    /// running job a lease still run out): of concurrent sweepers, one wins.
    pub async fn mark_requeued(&self, job: &Job, now: DateTime<Utc>) -> Result<Option<Job>, Error> {
        let mut values = vec![
            (":status", s(job.status.as_str())),
            (":now", s(crate::timefmt::format(&now))),
            (":one", n(1)),
        ];
        let mut condition = String::from("#status = :status");
        match job.requeued_at {
            Some(prev) => {
                condition.push_str(" AND #requeued_at = :prev");
                values.push((":prev", s(crate::timefmt::format(&prev))));
            }
            None => condition.push_str(" AND attribute_not_exists(#requeued_at)"),
        }
        if job.status == JobStatus::Running {
            condition.push_str(" AND #lease_until < :now_secs");
            values.push((":now_secs", n(now.timestamp())));
        }
        self.update(
            &job.id,
            "SET #requeued_at = :now ADD #requeues :one",
            &condition,
            values,
        )
        .await
    }

    /// A part of an export at scale finished: adds its rows and bytes to the job's
    /// progress and renews the lease, once per part (the job remembers the parts it
    /// counted). `false`: not counted now (counted before, or the job no longer runs at
    /// scale).
    pub async fn count_scale_part(
        &self,
        id: &str,
        index: u32,
        rows: u64,
        bytes: u64,
        lease_until: i64,
    ) -> Result<bool, Error> {
        let counted = self
            .update(
                id,
                "SET #lease_until = :lease ADD #rows_done :r, #bytes_done :b, #scale_parts :p",
                "#status = :running AND #worker = :w AND NOT contains(#scale_parts, :i)",
                vec![
                    (":lease", n(lease_until)),
                    (":r", n(rows)),
                    (":b", n(bytes)),
                    (":p", AttributeValue::Ss(vec![index.to_string()])),
                    (":i", s(index.to_string())),
                    (":running", s(JobStatus::Running.as_str())),
                    (":w", s(Worker::Scale.as_str())),
                ],
            )
            .await?;
        Ok(counted.is_some())
    }

    /// Takes one of the caller's active-job slots, or says there is none left.
    pub async fn acquire_slot(&self, owner: &str, max: u32) -> Result<bool, Error> {
        let out = self
            .records
            .client
            .update_item()
            .table_name(&self.records.table)
            .key("id", s(format!("active#{owner}")))
            .update_expression("ADD active :one")
            .condition_expression("attribute_not_exists(active) OR active < :max")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(max))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(Error::database(e)),
        }
    }

    /// Gives a job's slot back, if it holds one ([`Job::holds_slot`]).
    pub async fn release_slot_of(&self, job: &Job) {
        if job.holds_slot() {
            self.release_slot(&job.owner).await;
        }
    }

    /// Gives a slot back: once per job, after the write that made it final.
    pub async fn release_slot(&self, owner: &str) {
        let out = self
            .records
            .client
            .update_item()
            .table_name(&self.records.table)
            .key("id", s(format!("active#{owner}")))
            .update_expression("ADD active :minus")
            .condition_expression("active > :zero")
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        if let Err(e) = out
            && !conditional_failed(&e)
        {
            tracing::error!(error = %Error::database(e).cause_chain(), "active-job slot not released");
        }
    }

    /// Records an idempotency key for a job about to be created. `Ok(None)`: the key
    /// is new and now points at `job_id`; `Ok(Some((job_id, body_hash)))`: it was
    /// used before.
    pub async fn claim_idempotency_key(
        &self,
        owner: &str,
        key: &str,
        body_hash: &str,
        job_id: &str,
        ttl: i64,
    ) -> Result<Option<(String, String)>, Error> {
        let out = self
            .idempotency_item(owner, key, body_hash, job_id, ttl)
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        match out {
            Ok(_) => Ok(None),
            Err(e) if conditional_failed(&e) => {
                let item = self
                    .records
                    .get_item(&idempotency_id(owner, key))
                    .await?
                    .unwrap_or_default();
                let text = |k: &str| match item.get(k) {
                    Some(AttributeValue::S(v)) => v.clone(),
                    _ => String::new(),
                };
                Ok(Some((text("job_id"), text("body_hash"))))
            }
            Err(e) => Err(Error::database(e)),
        }
    }

    /// Points a key this request claimed at another job (the one the cache returned).
    pub async fn point_idempotency_key(
        &self,
        owner: &str,
        key: &str,
        body_hash: &str,
        job_id: &str,
        ttl: i64,
    ) -> Result<(), Error> {
        self.idempotency_item(owner, key, body_hash, job_id, ttl)
            .send()
            .await
            .map_err(Error::database)?;
        Ok(())
    }

    fn idempotency_item(
        &self,
        owner: &str,
        key: &str,
        body_hash: &str,
        job_id: &str,
        ttl: i64,
    ) -> aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
        self.records
            .client
            .put_item()
            .table_name(&self.records.table)
            .item("id", s(idempotency_id(owner, key)))
            .item("job_id", s(job_id))
            .item("body_hash", s(body_hash))
            .item("ttl", n(ttl))
    }

    /// Forgets an idempotency key whose job could not be created.
    pub async fn drop_idempotency_key(&self, owner: &str, key: &str) {
        let _ = self.records.delete(&idempotency_id(owner, key)).await;
    }

    /// One page of a caller's jobs, newest first, optionally filtered. Reads pages
    /// until `limit` jobs matched or the index ends, so a filter never makes a short
    /// page with more to come unless `next` says so.
    pub async fn list(
        &self,
        owner: &str,
        limit: usize,
        start: Option<Item>,
        status: Option<JobStatus>,
        kind: Option<&str>,
        tenant: Option<&str>,
    ) -> Result<(Vec<Job>, Option<Item>), Error> {
        let mut jobs = Vec::new();
        let mut start = start;
        loop {
            let mut req = self
                .records
                .client
                .query()
                .table_name(&self.records.table)
                .index_name(JOBS_BY_OWNER)
                .key_condition_expression("#o = :o")
                .expression_attribute_names("#o", "owner")
                .expression_attribute_values(":o", s(owner))
                .scan_index_forward(false)
                .limit((limit - jobs.len()) as i32)
                .set_exclusive_start_key(start.take());
            let mut filters = Vec::new();
            if let Some(st) = status {
                filters.push("#s = :s");
                req = req
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(":s", s(st.as_str()));
            }
            if let Some(k) = kind {
                filters.push("#k = :k");
                req = req
                    .expression_attribute_names("#k", "kind")
                    .expression_attribute_values(":k", s(k));
            }
            if let Some(t) = tenant {
                filters.push("#t = :t");
                req = req
                    .expression_attribute_names("#t", "owner_tenant")
                    .expression_attribute_values(":t", s(t));
            }
            if !filters.is_empty() {
                req = req.filter_expression(filters.join(" AND "));
            }
            let out = req.send().await.map_err(Error::database)?;
            for item in out.items.unwrap_or_default() {
                jobs.push(self.records.decode(item)?);
            }
            start = out.last_evaluated_key;
            if jobs.len() >= limit || start.is_none() {
                return Ok((jobs, start));
            }
        }
    }

    /// The caller's newest job with this spec hash, made under the same tenants
    /// (`owner_tenant`: what [`super::api`]'s visibility checks), that is queued,
    /// running, or succeeded at or after `fresh_since` (with its file still stored).
    pub async fn find_cached(
        &self,
        owner: &str,
        owner_tenant: &str,
        spec_hash: &str,
        fresh_since: DateTime<Utc>,
        look_back_from: DateTime<Utc>,
    ) -> Result<Option<Job>, Error> {
        let mut start = None;
        // Bounded: at most this many index pages are read.
        for _ in 0..10 {
            let out = self
                .records
                .client
                .query()
                .table_name(&self.records.table)
                .index_name(JOBS_BY_OWNER)
                .key_condition_expression("#o = :o AND created_key >= :from")
                .filter_expression("spec_hash = :h AND #t = :api AND owner_tenant = :tenant")
                .expression_attribute_names("#o", "owner")
                .expression_attribute_names("#t", "trigger")
                .expression_attribute_values(":tenant", s(owner_tenant))
                .expression_attribute_values(":o", s(owner))
                .expression_attribute_values(":from", s(crate::timefmt::format(&look_back_from)))
                .expression_attribute_values(":h", s(spec_hash))
                .expression_attribute_values(":api", s(super::Trigger::Api.as_str()))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(Error::database)?;
            for item in out.items.unwrap_or_default() {
                let job: Job = self.records.decode(item)?;
                let usable = match job.status {
                    JobStatus::Queued | JobStatus::Running => true,
                    JobStatus::Succeeded => job.finished_at.is_some_and(|f| f >= fresh_since) && job.s3_key.is_some(),
                    _ => false,
                };
                if usable {
                    return Ok(Some(job));
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(None)
    }
}
