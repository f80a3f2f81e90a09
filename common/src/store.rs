//! DynamoDB item encoding/decoding and bulk writes.

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, PutRequest, WriteRequest},
};
use futures::{StreamExt, TryStreamExt, stream, stream::BoxStream};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    config::TableNames,
    error::Error,
    model::{ChatMessage, Lead, Session, SessionMessage},
    timefmt,
};

pub type Item = HashMap<String, AttributeValue>;

/// Deserialises an item into its model. A misfit names the item's key (never its
/// contents) so the export fails loudly instead of skipping or mangling a row.
pub fn decode<T: DeserializeOwned>(item: Item, key_attrs: &[&str]) -> Result<T, Error> {
    let key = describe_key(&item, key_attrs);
    serde_dynamo::from_item(item).map_err(|e| Error::MalformedItem {
        key,
        reason: e.to_string(),
    })
}

fn describe_key(item: &Item, key_attrs: &[&str]) -> String {
    key_attrs
        .iter()
        .map(|k| {
            let v = match item.get(*k) {
                Some(AttributeValue::S(s)) => s.clone(),
                Some(AttributeValue::N(n)) => n.clone(),
                Some(_) => "<non-string>".into(),
                None => "<missing>".into(),
            };
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `<timestamp>#<id>`: a sort key that orders by time, ties broken by id.
pub fn time_id_key(ts: &chrono::DateTime<chrono::Utc>, id: &str) -> String {
    format!("{}#{id}", timefmt::format(ts))
}

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

    /// The stored item, including derived key attributes.
    pub fn to_item(&self) -> Result<Item, Error> {
        let encode = |e: serde_dynamo::Error| Error::internal("encoding error", e);
        let item = match self {
            Record::Session(s) => serde_dynamo::to_item(s).map_err(encode)?,
            Record::Message(m) => {
                let mut item: Item = serde_dynamo::to_item(m).map_err(encode)?;
                item.insert(
                    "msg_key".into(),
                    AttributeValue::S(time_id_key(&m.timestamp, &m.message_id)),
                );
                item
            }
            Record::Lead(l) => serde_dynamo::to_item(l).map_err(encode)?,
            Record::ChatMessage(c) => {
                let mut item: Item = serde_dynamo::to_item(c).map_err(encode)?;
                item.insert("ts_id".into(), AttributeValue::S(time_id_key(&c.timestamp, &c.id)));
                item.insert(
                    "day".into(),
                    AttributeValue::S(c.timestamp.format("%Y-%m-%d").to_string()),
                );
                item
            }
        };
        Ok(item)
    }
}

const BATCH: usize = 25;
const CONCURRENT_BATCHES: usize = 8;

/// Writes records with BatchWriteItem, retrying unprocessed items with backoff.
/// Returns how many were written.
pub async fn write_records(client: &Client, names: &TableNames, records: Vec<Record>) -> Result<usize, Error> {
    let total = records.len();
    let mut requests = Vec::with_capacity(total);
    for r in &records {
        let put = PutRequest::builder()
            .set_item(Some(r.to_item()?))
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
        .map(|batch| write_batch(client, batch))
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

/// Pages of items, one DynamoDB page at a time.
pub type ItemPages = BoxStream<'static, Result<Vec<Item>, Error>>;

/// Every page of a table Scan.
pub fn scan_pages(client: &Client, table: &str) -> ItemPages {
    let p = client.scan().table_name(table).into_paginator().send();
    stream::unfold(p, |mut p| async move { p.next().await.map(|r| (r, p)) })
        .map(|page| page.map(|out| out.items.unwrap_or_default()).map_err(Error::database))
        .boxed()
}

/// A key condition: `partition = value` and an optional inclusive range on the sort key.
pub struct KeyCondition<'a> {
    /// `None` queries the table itself.
    pub index: Option<&'a str>,
    pub partition_attr: &'a str,
    pub partition: String,
    pub sort_attr: &'a str,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Every page of a Query. Attribute names go through placeholders, so reserved words
/// (`day`, ...) are safe.
pub fn query_pages(client: &Client, table: &str, key: KeyCondition<'_>) -> ItemPages {
    let mut condition = "#pk = :pk".to_string();
    let mut req = client
        .query()
        .table_name(table)
        .set_index_name(key.index.map(String::from))
        .expression_attribute_names("#pk", key.partition_attr)
        .expression_attribute_values(":pk", AttributeValue::S(key.partition));
    if key.from.is_some() || key.to.is_some() {
        req = req.expression_attribute_names("#sk", key.sort_attr);
    }
    match (key.from, key.to) {
        (Some(f), Some(t)) => {
            condition.push_str(" AND #sk BETWEEN :from AND :to");
            req = req
                .expression_attribute_values(":from", AttributeValue::S(f))
                .expression_attribute_values(":to", AttributeValue::S(t));
        }
        (Some(f), None) => {
            condition.push_str(" AND #sk >= :from");
            req = req.expression_attribute_values(":from", AttributeValue::S(f));
        }
        (None, Some(t)) => {
            condition.push_str(" AND #sk <= :to");
            req = req.expression_attribute_values(":to", AttributeValue::S(t));
        }
        (None, None) => {}
    }
    let p = req.key_condition_expression(condition).into_paginator().send();
    stream::unfold(p, |mut p| async move { p.next().await.map(|r| (r, p)) })
        .map(|page| page.map(|out| out.items.unwrap_or_default()).map_err(Error::database))
        .boxed()
}
