//! Records of any table as `exportctl load` accepts them and `exportctl seed` writes
//! them: checked against DynamoDB's limits, stamped with `written_at`, written in
//! batches.

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, PutRequest, WriteRequest},
};
use futures::{StreamExt, TryFutureExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};

use crate::{
    config::TableNames,
    error::Error,
    keys::{MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES, conversation_key, conversation_shard, shard_of, time_id_key},
    model::{ChatMessage, Lead, Session, SessionMessage},
    reads::Item,
    timefmt,
};

/// One record of any table, as accepted by `exportctl load` (a `type` field names
/// the kind) and written by `exportctl seed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Session(Session),
    Message(SessionMessage),
    Lead(Lead),
    ChatMessage(ChatMessage),
}

impl Record {
    pub fn table<'a>(&self, names: &'a TableNames) -> &'a str {
        match self {
            Record::Session(_) => &names.sessions,
            Record::Message(_) => &names.session_messages,
            Record::Lead(_) => &names.leads,
            Record::ChatMessage(_) => &names.chat_messages,
        }
    }

    /// The stored item, including derived key attributes ([`Record::derived`]).
    pub fn to_item(&self) -> Result<Item, Error> {
        let encode = |e: serde_dynamo::Error| Error::internal("encoding error", e);
        let mut item: Item = match self {
            Record::Session(s) => serde_dynamo::to_item(s),
            Record::Message(m) => serde_dynamo::to_item(m),
            Record::Lead(l) => serde_dynamo::to_item(l),
            Record::ChatMessage(c) => serde_dynamo::to_item(c),
        }
        .map_err(encode)?;
        for (name, value) in self.derived() {
            item.insert(name.into(), AttributeValue::S(value));
        }
        Ok(item)
    }

    /// The derived key attributes of this record: the one derivation, which the
    /// loader writes with the item and the indexer ([`crate::index`]) writes onto an
    /// item some other writer stored without them (docs/data-model.md).
    pub fn derived(&self) -> Vec<(&'static str, String)> {
        match self {
            Record::Session(_) => vec![],
            Record::Message(m) => vec![("msg_key", time_id_key(&m.timestamp, &m.message_id))],
            Record::Lead(l) => vec![
                ("shard", shard_of(&l.lead_id)),
                ("created_key", time_id_key(&l.created_at, &l.lead_id)),
            ],
            Record::ChatMessage(c) => vec![
                ("ts_id", time_id_key(&c.timestamp, &c.id)),
                ("shard", shard_of(&c.id)),
                ("conv_shard", conversation_shard(&c.client_id, &c.conversation_id)),
                ("conv_key", conversation_key(c)),
            ],
        }
    }
}

/// DynamoDB's limit on one item's size. Its limits on key attributes (in the table
/// and in every index) are in [`crate::keys`]: the derived sort keys always fit them.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// DynamoDB numbers: at most 38 significant digits, magnitude from 1e-130 to below 1e126.
const MAX_NUMBER_DIGITS: usize = 38;

/// An item's size as DynamoDB counts it (attribute names plus values), rounded up
/// where DynamoDB's count is approximate.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(items) => 3 + items.iter().map(|i| 1 + value_size(i)).sum::<usize>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(k, i)| 1 + k.len() + value_size(i)).sum::<usize>(),
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        _ => 0,
    }
}

/// Whether DynamoDB can store a number (as written by `serde_dynamo`: plain decimal).
pub fn number_fits(n: &str) -> Result<(), String> {
    let digits = n.trim_start_matches(['-', '+']);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if (int.is_empty() && frac.is_empty()) || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return Err(format!("{n} is not a plain decimal number"));
    }
    let all: String = format!("{int}{frac}");
    let Some(first) = all.find(|c: char| c != '0') else {
        return Ok(()); // zero
    };
    let last = all.rfind(|c: char| c != '0').unwrap_or(first);
    if last - first + 1 > MAX_NUMBER_DIGITS {
        return Err(format!("{n} has more than {MAX_NUMBER_DIGITS} significant digits"));
    }
    // Decimal exponent of the first significant digit.
    let exponent = int.len() as i64 - 1 - first as i64;
    if exponent >= 126 {
        return Err(format!(
            "{} is too large for DynamoDB (at most 9.99e125)",
            crate::values::text::sanitize(n)
        ));
    }
    if exponent < -130 {
        return Err(format!(
            "{} is too small for DynamoDB (at least 1e-130)",
            crate::values::text::sanitize(n)
        ));
    }
    Ok(())
}

fn check_numbers(name: &str, v: &AttributeValue, notes: &mut Vec<String>) -> Result<(), String> {
    match v {
        AttributeValue::N(n) => {
            number_fits(n).map_err(|e| format!("{name}: {e}"))?;
            if n.starts_with('-') && n.trim_start_matches(['-', '0', '.']).is_empty() {
                notes.push(format!("{name}: -0 is stored as 0 (DynamoDB has no negative zero)"));
            }
            Ok(())
        }
        AttributeValue::M(map) => map
            .iter()
            .try_for_each(|(k, i)| check_numbers(&format!("{name}.{k}"), i, notes)),
        AttributeValue::L(items) => items.iter().try_for_each(|i| check_numbers(name, i, notes)),
        _ => Ok(()),
    }
}

impl Record {
    /// Key attributes of the item in its table and indexes (see `schema::tables`):
    /// partition keys, then sort keys.
    fn key_attributes(&self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Record::Session(_) => (&["session_id"], &[]),
            Record::Message(_) => (&["session_id"], &["msg_key"]),
            Record::Lead(_) => (
                &["lead_id", "company_id", "chatbot_id", "shard"],
                &["created_at", "created_key"],
            ),
            Record::ChatMessage(_) => (
                &["client_id", "conversation_id", "shard", "conv_shard"],
                &["ts_id", "conv_key"],
            ),
        }
    }

    /// Every timestamp of the record, by field name.
    fn timestamps(&self) -> Vec<(&'static str, chrono::DateTime<chrono::Utc>)> {
        match self {
            Record::Session(s) => vec![("started_at", s.started_at)],
            Record::Message(m) => vec![("timestamp", m.timestamp)],
            Record::Lead(l) => [
                ("created_at", Some(l.created_at)),
                ("updated_at", Some(l.updated_at)),
                ("first_interest_detected", l.first_interest_detected),
                ("last_interest_detected", l.last_interest_detected),
                ("converted_at", l.converted_at),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect(),
            Record::ChatMessage(c) => vec![("timestamp", c.timestamp), ("created_at", c.created_at)],
        }
    }

    /// Checks that DynamoDB will store this record exactly as given: timestamps with
    /// four-digit years, numbers in DynamoDB's range, keys and item within DynamoDB's
    /// sizes. Returns notes on what is stored in a normalised form (sub-millisecond
    /// precision, negative zero), or what is wrong.
    pub fn check(&self) -> Result<Vec<String>, String> {
        self.checked_item().map(|(_, notes)| notes)
    }

    /// [`Record::check`], with the item it checked (so a caller needs not build it
    /// again).
    pub fn checked_item(&self) -> Result<(Item, Vec<String>), String> {
        let mut notes = Vec::new();
        for (field, t) in self.timestamps() {
            if !timefmt::in_range(&t) {
                return Err(format!("{field}: the UTC time is outside the years 0000-9999"));
            }
            if t.timestamp_subsec_nanos() % 1_000_000 != 0 {
                notes.push(format!(
                    "{field}: stored with millisecond precision ({})",
                    timefmt::format(&t)
                ));
            }
        }
        let item = self.to_item().map_err(|e| e.cause_chain())?;
        for (name, v) in &item {
            check_numbers(name, v, &mut notes)?;
        }
        let (partitions, sorts) = self.key_attributes();
        for (attrs, max) in [(partitions, MAX_PARTITION_KEY_BYTES), (sorts, MAX_SORT_KEY_BYTES)] {
            for attr in attrs {
                if let Some(AttributeValue::S(v)) = item.get(*attr)
                    && v.is_empty()
                {
                    return Err(format!("{attr} is empty; DynamoDB refuses an empty key"));
                }
                if let Some(AttributeValue::S(v)) = item.get(*attr)
                    && v.len() > max
                {
                    return Err(format!(
                        "{attr} is {} bytes; as a DynamoDB key it may be at most {max}",
                        v.len()
                    ));
                }
            }
        }
        // `written_at` is added when the item is written.
        let size = item_size(&item) + "written_at".len() + "2024-01-15T10:30:00.000Z".len();
        if size > MAX_ITEM_BYTES {
            return Err(format!(
                "the item is {size} bytes; DynamoDB stores at most {MAX_ITEM_BYTES}"
            ));
        }
        Ok((item, notes))
    }
}

const BATCH: usize = 25;
const CONCURRENT_BATCHES: usize = 8;

/// Writes records with BatchWriteItem, retrying unprocessed items with backoff, and
/// stamps each with `written_at` (the snapshot cut of exports compares it with their
/// `as_of`). Returns how many were written.
pub async fn write_records(
    client: &Client,
    names: &TableNames,
    records: Vec<Record>,
    written_at: chrono::DateTime<chrono::Utc>,
) -> Result<usize, Error> {
    write_records_watched(client, names, records, written_at, &crate::progress::Unwatched).await
}

/// [`write_records`], telling `progress` how many items each batch wrote once it is
/// written (all in part 0).
pub async fn write_records_watched(
    client: &Client,
    names: &TableNames,
    records: Vec<Record>,
    written_at: chrono::DateTime<chrono::Utc>,
    progress: &dyn crate::progress::Progress,
) -> Result<usize, Error> {
    let total = records.len();
    let stamp = timefmt::format(&written_at);
    let mut requests = Vec::with_capacity(total);
    for r in &records {
        let mut item = r.to_item()?;
        item.insert("written_at".into(), AttributeValue::S(stamp.clone()));
        let put = PutRequest::builder()
            .set_item(Some(item))
            .build()
            .map_err(|e| Error::internal("encoding error", e))?;
        requests.push((
            r.table(names).to_string(),
            WriteRequest::builder().put_request(put).build(),
        ));
    }
    drop(records);
    let mut chunks = Vec::new();
    let mut iter = requests.into_iter().peekable();
    while iter.peek().is_some() {
        let mut batch: HashMap<String, Vec<WriteRequest>> = HashMap::new();
        for (table, req) in iter.by_ref().take(BATCH) {
            batch.entry(table).or_default().push(req);
        }
        chunks.push(batch);
    }
    stream::iter(chunks)
        .map(|batch| {
            let n = batch.values().map(Vec::len).sum::<usize>() as u64;
            write_batch(client, batch).map_ok(move |()| progress.advance(0, n))
        })
        .buffer_unordered(CONCURRENT_BATCHES)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(total)
}

async fn write_batch(client: &Client, mut pending: HashMap<String, Vec<WriteRequest>>) -> Result<(), Error> {
    let mut delay = std::time::Duration::from_millis(20);
    for _ in 0..12 {
        let out = client
            .batch_write_item()
            .set_request_items(Some(pending))
            .send()
            .await
            .map_err(Error::database)?;
        pending = out.unprocessed_items.unwrap_or_default();
        if pending.values().all(Vec::is_empty) {
            return Ok(());
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(2));
    }
    Err(Error::internal(
        "database error",
        "BatchWriteItem left unprocessed items after retries",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_outside_dynamodb_are_caught() {
        for ok in [
            "0",
            "-0",
            "18446744073709551615",
            "0.5",
            &format!("1{}", "0".repeat(125)),
            "-1.25",
        ] {
            assert!(number_fits(ok).is_ok(), "{ok}");
        }
        for bad in [
            format!("1{}", "0".repeat(126)),
            format!("0.{}1", "0".repeat(130)),
            "123456789012345678901234567890123456789".to_string(),
            "1e5".to_string(),
        ] {
            assert!(number_fits(&bad).is_err(), "{bad}");
        }
        assert!(number_fits(&format!("0.{}1", "0".repeat(129))).is_ok());
        assert!(number_fits(&1e-131_f64.to_string()).is_err());
        assert!(number_fits(&1.7976931348623157e308_f64.to_string()).is_err());
    }

    #[test]
    fn key_attributes_match_the_schema() {
        let names = crate::config::TableNames {
            sessions: "s".into(),
            session_messages: "m".into(),
            leads: "l".into(),
            chat_messages: "c".into(),
            rate_limits: "r".into(),
            audit: "a".into(),
            jobs: "j".into(),
            schedules: "x".into(),
        };
        let records: Vec<Record> = crate::synth::sessions(1, 2)
            .chain(crate::synth::leads(1, 1))
            .chain(crate::synth::chat_messages(1, 1))
            .collect();
        for record in records {
            let def = crate::schema::tables(&names)
                .into_iter()
                .find(|t| t.name == record.table(&names))
                .unwrap();
            let (partitions, sorts) = record.key_attributes();
            let mut want_p: Vec<&str> = vec![def.hash];
            let mut want_s: Vec<&str> = def.range.into_iter().collect();
            for (_, h, r) in &def.indexes {
                want_p.push(h);
                want_s.push(r);
            }
            want_p.sort_unstable();
            want_s.sort_unstable();
            want_p.dedup();
            want_s.dedup();
            let (mut p, mut s) = (partitions.to_vec(), sorts.to_vec());
            p.sort_unstable();
            s.sort_unstable();
            assert_eq!((p, s), (want_p, want_s), "{}", def.name);
        }
    }
}
