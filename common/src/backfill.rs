//! The indexer's derivation over the items already in a table: `exportctl backfill`
//! writes what they lack, and `exportctl check-index` counts what they lack
//! (docs/data-model.md, "How items get their export keys").
//!
//! Both Scan the table in parallel segments and run each item through
//! [`crate::index::plan`], the indexer's own decision. The backfill writes with the
//! indexer's conditional update ([`crate::index::apply`]), so it is idempotent and
//! safe beside live writes and the indexer. It does not invent `written_at`: an item
//! without one is never left out by a snapshot cut, and no time of its write is known.
//!
//! Resumable: after each page, a segment's position (the Scan's `LastEvaluatedKey`)
//! is kept in a small item of the jobs table, `backfill#<table>#<segment>/<segments>`;
//! a backfill started again with the same table and segment count goes on from there,
//! and a finished segment is skipped. Rate-limited: the Scan's and the updates'
//! consumed capacity is paced to `rate` units per second across the segments.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, ReturnConsumedCapacity},
};
use futures::future::try_join_all;
use tokio::sync::Mutex;

use crate::{
    error::Error,
    index::{Applied, Plan, Table, apply, plan},
    progress::Progress,
    reads::Item,
};

/// What a backfill or a check does with the items it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Count the items whose derived attributes are missing or stale.
    Check,
    /// Write what they lack.
    Fix,
}

/// At most this many keys of wrong items are kept for the check's report.
pub const MAX_REPORTED_KEYS: usize = 20;

/// The counts of one run over a table.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub scanned: u64,
    /// Items whose derived attributes are missing or stale (a check), or were
    /// written (a backfill).
    pub wrong: u64,
    /// A backfill's updates whose condition did not hold (written meanwhile).
    pub skipped: u64,
    /// Items whose table key differs from the derivation, or that do not decode.
    pub failed: u64,
    /// Per derived attribute, how many items lacked it or held another value.
    pub by_attribute: std::collections::BTreeMap<String, u64>,
    /// Keys of wrong items (`attr=value`), at most [`MAX_REPORTED_KEYS`].
    pub keys: Vec<String>,
    /// Segments found finished by an earlier run and skipped.
    pub resumed_done: u32,
}

/// Paces consumed capacity to `rate` units per second (None: as fast as DynamoDB lets).
struct Pace {
    rate: Option<f64>,
    started: Instant,
    used: Mutex<f64>,
}

impl Pace {
    async fn spend(&self, units: f64) {
        let Some(rate) = self.rate else { return };
        let total = {
            let mut used = self.used.lock().await;
            *used += units;
            *used
        };
        let due = Duration::from_secs_f64(total / rate);
        let elapsed = self.started.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}

fn checkpoint_id(table_name: &str, segment: u32, segments: u32) -> String {
    format!("backfill#{table_name}#{segment}/{segments}")
}

/// How a run reads a table.
#[derive(Clone, Copy, Debug)]
pub struct Scan {
    /// Parallel Scan segments.
    pub segments: u32,
    /// At most this many capacity units per second; unpaced when `None`.
    pub rate: Option<f64>,
    /// Items per Scan page at most (DynamoDB's 1 MB page when `None`): a smaller page
    /// means a checkpoint more often.
    pub page_items: Option<i32>,
}

/// Runs `mode` over `table` (named `table_name`). `progress` is told how many items
/// each page of each segment held, once that page's checkpoint is kept, and which
/// segments an earlier run had started or finished. A backfill keeps its
/// checkpoints in `checkpoints` (the jobs table); a check always reads everything.
pub async fn run(
    client: &Client,
    table: Table,
    table_name: &str,
    checkpoints: &str,
    mode: Mode,
    scan: Scan,
    progress: &dyn Progress,
) -> Result<Counts, Error> {
    let scan = Scan {
        segments: scan.segments.max(1),
        ..scan
    };
    let run = Run {
        client,
        table,
        table_name,
        checkpoints,
        mode,
        scan,
        pace: Pace {
            rate: scan.rate.filter(|r| *r > 0.0),
            started: Instant::now(),
            used: Mutex::new(0.0),
        },
        counts: std::sync::Mutex::new(Counts::default()),
        progress,
    };
    try_join_all((0..scan.segments).map(|segment| scan_segment(&run, segment))).await?;
    Ok(run.counts.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// What every segment of one run shares.
struct Run<'a> {
    client: &'a Client,
    table: Table,
    table_name: &'a str,
    checkpoints: &'a str,
    mode: Mode,
    scan: Scan,
    pace: Pace,
    counts: std::sync::Mutex<Counts>,
    progress: &'a dyn Progress,
}

impl Run<'_> {
    fn tally(&self, f: impl FnOnce(&mut Counts)) {
        f(&mut self.counts.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

async fn scan_segment(run: &Run<'_>, segment: u32) -> Result<(), Error> {
    let Run {
        client,
        table_name,
        checkpoints,
        mode,
        scan,
        ..
    } = *run;
    let id = checkpoint_id(table_name, segment, scan.segments);
    let mut start: Option<Item> = None;
    if mode == Mode::Fix
        && let Some(saved) = client
            .get_item()
            .table_name(checkpoints)
            .key("id", AttributeValue::S(id.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(Error::database)?
            .item
    {
        match saved.get("next_key") {
            Some(AttributeValue::M(key)) => {
                run.progress.resumed(segment, false);
                start = Some(key.clone());
            }
            _ => {
                run.progress.resumed(segment, true);
                run.tally(|c| c.resumed_done += 1);
                return Ok(());
            }
        }
    }
    loop {
        let page = client
            .scan()
            .table_name(table_name)
            .segment(segment as i32)
            .total_segments(scan.segments as i32)
            .consistent_read(true)
            .set_limit(scan.page_items)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(Error::database)?;
        run.pace
            .spend(page.consumed_capacity().and_then(|c| c.capacity_units()).unwrap_or(0.0))
            .await;
        let items = page.items.unwrap_or_default();
        let n = items.len() as u64;
        for item in items {
            check_item(run, &item).await?;
        }
        let next = page.last_evaluated_key.filter(|k| !k.is_empty());
        if mode == Mode::Fix {
            let mut record = client
                .put_item()
                .table_name(checkpoints)
                .item("id", AttributeValue::S(id.clone()));
            if let Some(key) = &next {
                record = record.item("next_key", AttributeValue::M(key.clone()));
            }
            record.send().await.map_err(Error::database)?;
        }
        run.progress.advance(segment, n);
        match next {
            Some(key) => start = Some(key),
            None => {
                run.progress.done(segment);
                return Ok(());
            }
        }
    }
}

async fn check_item(run: &Run<'_>, item: &Item) -> Result<(), Error> {
    run.tally(|c| c.scanned += 1);
    let fix = match plan(run.table, item, None) {
        Ok(Plan::Write(fix)) if !fix.set.is_empty() => fix,
        Ok(Plan::Write(_) | Plan::Nothing) => return Ok(()),
        Ok(Plan::KeyMismatch { .. }) | Err(_) => {
            run.tally(|c| c.failed += 1);
            return Ok(());
        }
    };
    if run.mode == Mode::Fix {
        let (applied, units) = apply(run.client, run.table_name, &fix).await?;
        run.pace.spend(units).await;
        if applied == Applied::Skipped {
            run.tally(|c| c.skipped += 1);
            return Ok(());
        }
    }
    // Found wrong (a check), or written (a backfill).
    run.tally(|c| {
        c.wrong += 1;
        for (name, _) in &fix.set {
            *c.by_attribute.entry((*name).to_string()).or_default() += 1;
        }
        if run.mode == Mode::Check && c.keys.len() < MAX_REPORTED_KEYS {
            c.keys.push(run.table.describe_key(item));
        }
    });
    Ok(())
}
