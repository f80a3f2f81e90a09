//! The indexer: items any writer stores get the derived key attributes the exports
//! read by, from the tables' DynamoDB Streams (`functions/export-indexer`).
//!
//! For each INSERT or MODIFY record, the new image is decoded as the exports decode
//! it, and the one derivation ([`Record::derived`], which `exportctl load` also
//! writes) is compared with what the item holds. What is missing or stale is written
//! with one `UpdateItem`, and `written_at` is set from the record's
//! `ApproximateCreationDateTime` when the item has none. The update is conditional:
//! - the item still exists (`attribute_exists` of its partition key): a deleted item
//!   is never brought back;
//! - the attributes the derivation reads (ids, timestamps) still hold the image's
//!   values: a newer write is never given keys derived from an older one (its own
//!   stream record fixes it);
//! - `written_at` is only ever added (`if_not_exists`), never moved;
//! - something is still to write (a derived attribute missing or different, or no
//!   `written_at`): a record delivered again, or after the item was indexed, writes
//!   nothing.
//!
//! The indexer's own write comes back as a MODIFY record whose derived attributes are
//! already right: [`plan`] finds nothing to write, so there is no loop. A table key
//! (`msg_key`, `ts_id`) is written by the writer itself (DynamoDB refuses an item
//! without it); one that differs from the derivation cannot be rewritten in place and
//! is reported, not changed.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use crate::{
    config::TableNames,
    dynamo::conditional_failed,
    error::Error,
    load::Record,
    model::{ChatMessage, Lead, Session, SessionMessage},
    reads::Item,
    timefmt,
};

/// The tables whose items the exports read, and what each item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Sessions,
    SessionMessages,
    Leads,
    ChatMessages,
}

impl Table {
    /// The table a stream record comes from, by its name.
    pub fn named(names: &TableNames, table: &str) -> Option<Self> {
        [
            (&names.sessions, Table::Sessions),
            (&names.session_messages, Table::SessionMessages),
            (&names.leads, Table::Leads),
            (&names.chat_messages, Table::ChatMessages),
        ]
        .into_iter()
        .find_map(|(name, t)| (name == table).then_some(t))
    }

    /// The data tables the exports read through derived attributes, by their
    /// logical names (`exportctl backfill --table`).
    pub const INDEXED: [(&'static str, Table); 3] = [
        ("session_messages", Table::SessionMessages),
        ("leads", Table::Leads),
        ("chat_messages", Table::ChatMessages),
    ];

    /// The table's real name.
    pub fn name(self, names: &TableNames) -> &str {
        match self {
            Table::Sessions => &names.sessions,
            Table::SessionMessages => &names.session_messages,
            Table::Leads => &names.leads,
            Table::ChatMessages => &names.chat_messages,
        }
    }

    /// `lead_id=...`: an item's key for a report, never its contents.
    pub fn describe_key(self, item: &Item) -> String {
        self.key()
            .iter()
            .map(|k| {
                let v = match item.get(*k) {
                    Some(AttributeValue::S(s)) => crate::values::text::sanitize(s),
                    _ => "?".into(),
                };
                format!("{k}={v}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The table a record is stored in.
    pub fn of(record: &Record) -> Self {
        match record {
            Record::Session(_) => Table::Sessions,
            Record::Message(_) => Table::SessionMessages,
            Record::Lead(_) => Table::Leads,
            Record::ChatMessage(_) => Table::ChatMessages,
        }
    }

    /// The item's primary key attributes (partition first).
    pub fn key(self) -> &'static [&'static str] {
        match self {
            Table::Sessions => &["session_id"],
            Table::SessionMessages => &["session_id", "msg_key"],
            Table::Leads => &["lead_id"],
            Table::ChatMessages => &["client_id", "ts_id"],
        }
    }

    /// The attributes the derivation reads: the update holds only while they do.
    fn sources(self) -> &'static [&'static str] {
        match self {
            Table::Sessions => &[],
            Table::SessionMessages => &["message_id", "timestamp"],
            Table::Leads => &["lead_id", "created_at"],
            Table::ChatMessages => &["id", "timestamp", "client_id", "conversation_id"],
        }
    }

    /// The primary key of `item` (the attributes it holds of [`Table::key`]).
    pub fn key_of(self, item: &Item) -> Item {
        self.key()
            .iter()
            .filter_map(|k| item.get(*k).map(|v| ((*k).to_string(), v.clone())))
            .collect()
    }

    /// The record an item of this table holds, decoded as the exports decode it.
    pub fn decode(self, image: &Item) -> Result<Record, Error> {
        fn decode<T: DeserializeOwned>(image: &Item, key: &[&str]) -> Result<T, Error> {
            crate::reads::decode(image.clone().into(), key)
        }
        let key = self.key();
        Ok(match self {
            Table::Sessions => Record::Session(decode::<Session>(image, key)?),
            Table::SessionMessages => Record::Message(decode::<SessionMessage>(image, key)?),
            Table::Leads => Record::Lead(decode::<Lead>(image, key)?),
            Table::ChatMessages => Record::ChatMessage(decode::<ChatMessage>(image, key)?),
        })
    }
}

/// What one item needs: the attributes to set, under the conditions above.
#[derive(Clone, Debug, PartialEq)]
pub struct Fix {
    pub table: Table,
    pub key: Item,
    /// Derived attributes that are missing or stale, with their right values.
    pub set: Vec<(&'static str, String)>,
    /// `written_at` to add when the item has none.
    pub written_at: Option<String>,
    /// The derivation's inputs as the image holds them.
    pub sources: Vec<(&'static str, AttributeValue)>,
}

/// What the indexer decided for one image.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Everything is right already (the indexer's own writes come back as this).
    Nothing,
    Write(Fix),
    /// A table key differs from the derivation (`attribute`): a writer's mistake
    /// that an update cannot mend.
    KeyMismatch {
        attribute: &'static str,
    },
}

/// What the derivation says `image` (an item of `table`) lacks. `written` is when
/// the write happened (the stream record's `ApproximateCreationDateTime`), given to
/// an item without `written_at`; `None` (a backfill: unknown) leaves that out.
pub fn plan(table: Table, image: &Item, written: Option<DateTime<Utc>>) -> Result<Plan, Error> {
    let record = table.decode(image)?;
    let mut set = Vec::new();
    for (name, value) in record.derived() {
        let holds = matches!(image.get(name), Some(AttributeValue::S(v)) if *v == value);
        if holds {
            continue;
        }
        if table.key().contains(&name) {
            return Ok(Plan::KeyMismatch { attribute: name });
        }
        set.push((name, value));
    }
    let written_at = written
        .filter(|_| !image.contains_key("written_at"))
        .map(|at| timefmt::format(&at));
    if set.is_empty() && written_at.is_none() {
        return Ok(Plan::Nothing);
    }
    Ok(Plan::Write(Fix {
        table,
        key: table.key_of(image),
        set,
        written_at,
        sources: table
            .sources()
            .iter()
            .filter_map(|n| image.get(*n).map(|v| (*n, v.clone())))
            .collect(),
    }))
}

/// How an update ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Written,
    /// The condition did not hold: the item was deleted or written again meanwhile
    /// (its own record decides), or it was indexed already.
    Skipped,
}

/// Writes a fix with one conditional `UpdateItem`; also how many capacity units it
/// consumed (a backfill paces itself by them).
pub async fn apply(client: &aws_sdk_dynamodb::Client, table_name: &str, fix: &Fix) -> Result<(Applied, f64), Error> {
    let mut sets = Vec::new();
    let mut request = client
        .update_item()
        .table_name(table_name)
        .set_key(Some(fix.key.clone()));
    for (i, (name, value)) in fix.set.iter().enumerate() {
        sets.push(format!("#d{i} = :d{i}"));
        request = request
            .expression_attribute_names(format!("#d{i}"), *name)
            .expression_attribute_values(format!(":d{i}"), AttributeValue::S(value.clone()));
    }
    if let Some(at) = &fix.written_at {
        sets.push("#w = if_not_exists(#w, :w)".into());
        request = request
            .expression_attribute_names("#w", "written_at")
            .expression_attribute_values(":w", AttributeValue::S(at.clone()));
    }
    let mut needed: Vec<String> = (0..fix.set.len())
        .map(|i| format!("attribute_not_exists(#d{i}) OR #d{i} <> :d{i}"))
        .collect();
    if fix.written_at.is_some() {
        needed.push("attribute_not_exists(#w)".into());
    }
    let mut conditions = vec!["attribute_exists(#k)".to_string(), format!("({})", needed.join(" OR "))];
    request = request.expression_attribute_names("#k", fix.table.key()[0]);
    for (i, (name, value)) in fix.sources.iter().enumerate() {
        conditions.push(format!("#s{i} = :s{i}"));
        request = request
            .expression_attribute_names(format!("#s{i}"), *name)
            .expression_attribute_values(format!(":s{i}"), value.clone());
    }
    let sent = request
        .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
        .update_expression(format!("SET {}", sets.join(", ")))
        .condition_expression(conditions.join(" AND "))
        .send()
        .await;
    match sent {
        Ok(out) => Ok((
            Applied::Written,
            out.consumed_capacity().and_then(|c| c.capacity_units()).unwrap_or(0.0),
        )),
        // A failed condition costs a write too; its figure is not returned.
        Err(e) if conditional_failed(&e) => Ok((Applied::Skipped, 1.0)),
        Err(e) => Err(Error::database(e)),
    }
}

/// What one batch of stream records did, for the log line and the metric.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Items given derived attributes or `written_at`: items a writer stored without.
    pub fixed: u64,
    /// Records whose item was right already (the indexer's own writes among them).
    pub unchanged: u64,
    /// Items deleted or written again before the update (their own records decide),
    /// or indexed already (a record delivered again).
    pub skipped: u64,
    /// Items whose table key differs from the derivation (left as they are).
    pub key_mismatches: u64,
    /// REMOVE records, and records of tables the exports do not read.
    pub ignored: u64,
}

/// The table a stream's ARN (`arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>`)
/// belongs to.
pub fn table_of_arn(arn: &str) -> Option<&str> {
    arn.split_once(":table/")?.1.split('/').next()
}

/// Indexes a batch of stream records in order. On a failure, the records from the
/// failed one on are left for the event source mapping to deliver again
/// (`ReportBatchItemFailures`): the error and the failed record's sequence number
/// come back with what was done before it. Writes are idempotent, so a record
/// delivered twice, or an older one after a newer, changes nothing.
pub async fn index_records(
    client: &aws_sdk_dynamodb::Client,
    names: &TableNames,
    records: Vec<aws_lambda_events::event::dynamodb::EventRecord>,
    now: DateTime<Utc>,
) -> (Report, Option<(String, Error)>) {
    let mut report = Report::default();
    for record in records {
        let table_name = record.table_name.clone().or_else(|| {
            record
                .event_source_arn
                .as_deref()
                .and_then(table_of_arn)
                .map(String::from)
        });
        let table = table_name.as_deref().and_then(|t| Table::named(names, t));
        let (Some(table), Some(table_name), "INSERT" | "MODIFY") = (table, table_name, record.event_name.as_str())
        else {
            report.ignored += 1;
            continue;
        };
        let sequence = record.change.sequence_number.clone().unwrap_or_default();
        // A record without `ApproximateCreationDateTime` reads as the epoch.
        let written = Some(record.change.approximate_creation_date_time)
            .filter(|t| t.timestamp() > 0)
            .unwrap_or(now);
        let image: Item = record.change.new_image.into();
        let outcome = match plan(table, &image, Some(written)) {
            Ok(Plan::Nothing) => {
                report.unchanged += 1;
                Ok(())
            }
            Ok(Plan::KeyMismatch { attribute }) => {
                tracing::warn!(table = %table_name, attribute, "a table key differs from its derivation: left as written");
                report.key_mismatches += 1;
                Ok(())
            }
            Ok(Plan::Write(fix)) => match apply(client, &table_name, &fix).await.map(|(applied, _)| applied) {
                Ok(Applied::Written) => {
                    report.fixed += 1;
                    Ok(())
                }
                Ok(Applied::Skipped) => {
                    report.skipped += 1;
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            return (report, Some((sequence, e)));
        }
    }
    (report, None)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::synth;

    /// The item a writer that knows nothing of the derived attributes stores: only
    /// the table keys DynamoDB requires of them.
    fn stripped(record: &Record) -> Item {
        let mut item = record.to_item().unwrap();
        for (name, _) in record.derived() {
            if !Table::of(record).key().contains(&name) {
                item.remove(name);
            }
        }
        item
    }

    /// What the indexer makes of a bare item: the item with its fix applied.
    fn indexed(record: &Record, at: DateTime<Utc>) -> Item {
        let bare = stripped(record);
        let Plan::Write(fix) = plan(Table::of(record), &bare, Some(at)).unwrap() else {
            panic!("a bare item is fixed")
        };
        let mut fixed = bare;
        for (name, value) in &fix.set {
            fixed.insert((*name).into(), AttributeValue::S(value.clone()));
        }
        fixed.insert("written_at".into(), AttributeValue::S(fix.written_at.unwrap()));
        fixed
    }

    fn loaded(record: &Record, at: DateTime<Utc>) -> Item {
        let mut item = record.to_item().unwrap();
        item.insert("written_at".into(), AttributeValue::S(timefmt::format(&at)));
        item
    }

    /// An id as DynamoDB accepts it: short, or 1,000 to 2,048 bytes (the partition
    /// key's limit), any characters, `#` and `%` included.
    fn any_id() -> impl Strategy<Value = String> {
        let long = ("[#%a-z0-9\\PC]{1,8}", 1000usize..=2048).prop_map(|(unit, bytes)| {
            let mut id = unit.repeat(bytes / unit.len() + 1);
            let mut end = bytes;
            while !id.is_char_boundary(end) {
                end -= 1;
            }
            id.truncate(end);
            id
        });
        prop_oneof!["[#%a-z0-9\\PC]{1,40}", long]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// For any ids (any characters, `#` and `%` included, up to DynamoDB's 2,048
        /// bytes), the indexer's result is exactly what `exportctl load` writes, and
        /// the indexer finds nothing to do on it.
        #[test]
        fn the_indexer_writes_what_the_loader_writes(
            seed in any::<u64>(),
            lead_id in any_id(),
            message_id in any_id(),
            id in any_id(),
            client_id in any_id(),
            conversation_id in any_id(),
        ) {
            let at = timefmt::parse_rfc3339("2024-03-01T00:00:00.000Z").unwrap();
            let mut records: Vec<Record> = synth::leads(seed, 1)
                .chain(synth::chat_messages(seed, 1))
                .chain(synth::sessions(seed, 1))
                .collect();
            for record in &mut records {
                match record {
                    Record::Message(m) => m.message_id = message_id.as_str().into(),
                    Record::Lead(l) => l.lead_id = lead_id.as_str().into(),
                    Record::ChatMessage(c) => {
                        c.id = id.as_str().into();
                        c.client_id = client_id.as_str().into();
                        c.conversation_id = conversation_id.as_str().into();
                    }
                    _ => {}
                }
            }
            for record in &records {
                prop_assert!(record.check().is_ok(), "{:?}", record.check());
                if matches!(record, Record::Session(_)) {
                    continue;
                }
                prop_assert_eq!(indexed(record, at), loaded(record, at));
                prop_assert_eq!(plan(Table::of(record), &loaded(record, at), Some(at)).unwrap(), Plan::Nothing);
            }
        }
    }

    #[test]
    fn an_item_as_loaded_needs_nothing_and_a_bare_one_gets_what_load_writes() {
        let at = timefmt::parse_rfc3339("2024-03-01T00:00:00.000Z").unwrap();
        let records: Vec<Record> = synth::sessions(1, 3)
            .chain(synth::leads(2, 5))
            .chain(synth::chat_messages(3, 5))
            .collect();
        for record in &records {
            let table = Table::of(record);
            assert_eq!(plan(table, &loaded(record, at), Some(at)).unwrap(), Plan::Nothing);
            assert_eq!(indexed(record, at), loaded(record, at), "{table:?}");
        }
    }
}
