//! `exportctl backfill` and `exportctl check-index`: the indexer's derivation over the
//! items already in the data tables ([`common::backfill`]), with a bar per Scan
//! segment on a terminal.

use crate::progress::Bars;
use common::{
    AppContext, Error,
    backfill::{self, Counts, Mode},
    index::Table,
};

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

/// Runs `mode` over each table, one after another, with a bar per Scan segment on
/// a terminal. Answers each table's counts.
pub async fn run(
    ctx: &AppContext,
    table: Option<&str>,
    mode: Mode,
    segments: u32,
    rate: Option<f64>,
    bars: &Bars,
) -> Result<Vec<(String, Counts)>, Error> {
    let mut out = Vec::new();
    for (kind, name) in tables(ctx, table)? {
        let parts = bars.parts(&name, segments.max(1), "items");
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
            &parts,
        )
        .await?;
        parts.finish();
        out.push((name, counts));
    }
    Ok(out)
}

/// One line per table, for people.
pub fn summary(mode: Mode, counts: &[(String, Counts)]) -> String {
    counts
        .iter()
        .map(|(name, c)| match mode {
            Mode::Fix => format!(
                "{name}: {} items read, {} written, {} skipped (written meanwhile), {} failed{}",
                c.scanned,
                c.wrong,
                c.skipped,
                c.failed,
                if c.resumed_done > 0 {
                    format!(", {} segments finished before", c.resumed_done)
                } else {
                    String::new()
                }
            ),
            Mode::Check => {
                let mut line = format!(
                    "{name}: {} items read, {} missing from or stale in an index, {} failed",
                    c.scanned, c.wrong, c.failed
                );
                if !c.keys.is_empty() {
                    line.push_str(&format!("; keys: {}", c.keys.join(", ")));
                }
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
