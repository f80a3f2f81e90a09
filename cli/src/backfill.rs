//! `exportctl backfill` and `exportctl check-index`: the indexer's derivation over the
//! items already in the data tables ([`common::backfill`]), with a progress bar on a
//! terminal.

use common::{
    AppContext, Error,
    backfill::{self, Counts, Mode},
    index::Table,
};
use indicatif::{ProgressBar, ProgressStyle};

/// The tables a run covers: the one named (logical name or real name), or all three.
pub fn tables(ctx: &AppContext, table: Option<&str>) -> Result<Vec<(Table, String)>, Error> {
    let names = &ctx.config.tables;
    let all: Vec<(Table, String)> = Table::INDEXED
        .iter()
        .map(|(_, t)| (*t, t.name(names).to_string()))
        .collect();
    let Some(wanted) = table else { return Ok(all) };
    Table::INDEXED
        .iter()
        .find(|(logical, t)| *logical == wanted || t.name(names) == wanted)
        .map(|(_, t)| vec![(*t, t.name(names).to_string())])
        .ok_or_else(|| {
            Error::bad_request(format!(
                "--table: '{}' is not one of session_messages, leads, chat_messages (or their table names)",
                common::values::text::sanitize(wanted)
            ))
        })
}

/// Runs `mode` over each table, one after another: one line per table on stderr
/// when done, the counts as JSON on stdout.
pub async fn run(
    ctx: &AppContext,
    table: Option<&str>,
    mode: Mode,
    segments: u32,
    rate: Option<f64>,
) -> Result<Vec<(String, Counts)>, Error> {
    let mut out = Vec::new();
    for (kind, name) in tables(ctx, table)? {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}: {pos} items ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(name.clone());
        let tick = |n: u64| bar.inc(n);
        let counts = backfill::run(
            &ctx.aws.dynamodb,
            kind,
            &name,
            &ctx.config.tables.jobs,
            mode,
            backfill::Scan {
                segments,
                rate,
                page_items: None,
            },
            &tick,
        )
        .await?;
        bar.finish_and_clear();
        match mode {
            Mode::Fix => eprintln!(
                "{name}: {} items read, {} written, {} skipped (written meanwhile), {} failed{}",
                counts.scanned,
                counts.wrong,
                counts.skipped,
                counts.failed,
                if counts.resumed_done > 0 {
                    format!(", {} segments finished before", counts.resumed_done)
                } else {
                    String::new()
                }
            ),
            Mode::Check => eprintln!(
                "{name}: {} items read, {} missing from or stale in an index, {} failed",
                counts.scanned, counts.wrong, counts.failed
            ),
        }
        out.push((name, counts));
    }
    Ok(out)
}
