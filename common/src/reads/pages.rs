//! Streams of read pages: a table scanned or queried page by page, fetched ahead of
//! its consumer, and the merge of several key-ordered reads into one.

use std::collections::VecDeque;

use aws_sdk_dynamodb::{Client, types::AttributeValue};
use futures::{StreamExt, TryStreamExt, stream, stream::BoxStream};
use serde::de::DeserializeOwned;
use tokio_util::task::AbortOnDropHandle;

use super::{Decoding, Read, all_pages, query_page, scan_page};
use crate::error::Error;

/// Pages of records read, one DynamoDB page at a time.
pub type ReadPages<T> = BoxStream<'static, Result<Vec<Read<T>>, Error>>;

/// Pages each read fetches ahead of its consumer.
const PAGES_AHEAD: usize = 1;

/// A read whose pages are fetched on their own task, `PAGES_AHEAD` ahead: the next
/// DynamoDB request, and the parsing of its answer (most of a page's cost,
/// [`crate::reads`]), run on the other core while this page is decoded and encoded. The task starts at the
/// first poll and stops at the first error or when the consumer goes away.
pub fn read_ahead<T: Send + 'static>(
    pages: BoxStream<'static, Result<Vec<T>, Error>>,
) -> BoxStream<'static, Result<Vec<T>, Error>> {
    stream::once(async move {
        let (tx, rx) = tokio::sync::mpsc::channel(PAGES_AHEAD);
        let reading = AbortOnDropHandle::new(tokio::spawn(async move {
            let mut pages = pages;
            while let Some(page) = pages.next().await {
                let failed = page.is_err();
                if tx.send(page).await.is_err() || failed {
                    break;
                }
            }
        }));
        // The stream owns the task: dropped, it stops the request in flight too.
        stream::unfold((rx, reading), |(mut rx, reading)| async move {
            rx.recv().await.map(|page| (page, (rx, reading)))
        })
    })
    .flatten()
    .boxed()
}

/// Every page of a table Scan, read ahead.
pub fn scan_pages<T: DeserializeOwned + Send + 'static>(client: &Client, table: &str, how: Decoding) -> ReadPages<T> {
    let req = client.scan().table_name(table);
    read_ahead(all_pages(move |start| scan_page(req.clone(), start, how)))
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
    /// Items per page (DynamoDB's `Limit`); `None` reads 1 MB pages.
    pub page_limit: Option<i32>,
    /// `begins_with(sort key, prefix)` instead of a range.
    pub prefix: Option<String>,
}

/// Every page of a Query, read ahead. Attribute names go through placeholders, so
/// reserved words (`day`, ...) are safe.
pub fn query_pages<T: DeserializeOwned + Send + 'static>(
    client: &Client,
    table: &str,
    key: KeyCondition<'_>,
    how: Decoding,
) -> ReadPages<T> {
    let mut condition = "#pk = :pk".to_string();
    let mut req = client
        .query()
        .table_name(table)
        .set_index_name(key.index.map(String::from))
        .expression_attribute_names("#pk", key.partition_attr)
        .expression_attribute_values(":pk", AttributeValue::S(key.partition));
    if key.from.is_some() || key.to.is_some() || key.prefix.is_some() {
        req = req.expression_attribute_names("#sk", key.sort_attr);
    }
    if let Some(prefix) = key.prefix {
        condition.push_str(" AND begins_with(#sk, :prefix)");
        req = req.expression_attribute_values(":prefix", AttributeValue::S(prefix));
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
    let req = req.key_condition_expression(condition).set_limit(key.page_limit);
    read_ahead(all_pages(move |start| query_page(req.clone(), start, how)))
}

/// One sorted read being merged: its pages and the rest of its current page.
struct MergeCursor<T> {
    pages: ReadPages<T>,
    buffered: VecDeque<Read<T>>,
    done: bool,
}

/// Fetches the next non-empty page of every cursor that has run dry, concurrently.
async fn refill<T>(cursors: &mut [MergeCursor<T>]) -> Result<(), Error> {
    let pending = cursors
        .iter_mut()
        .filter(|c| c.buffered.is_empty() && !c.done)
        .map(|c| async move {
            loop {
                match c.pages.try_next().await? {
                    None => {
                        c.done = true;
                        return Ok::<_, Error>(());
                    }
                    // DynamoDB may answer an empty page that still has a next one.
                    Some(page) if page.is_empty() => continue,
                    Some(page) => {
                        c.buffered = page.into();
                        return Ok(());
                    }
                }
            }
        });
    futures::future::try_join_all(pending).await?;
    Ok(())
}

/// Items per page of each shard's read in a merge. A merge holds one page per shard:
/// full 1 MB pages of 16 shards took an export of every client to 166 MB peak RSS;
/// 256-item pages keep it at 54-76 MB, for about 15% more time (more Queries).
pub const SHARD_PAGE_ITEMS: i32 = 256;

/// A shard read's page size: [`SHARD_PAGE_ITEMS`], or less when the export is short.
pub fn shard_page_limit(limit: Option<i32>) -> Option<i32> {
    Some(limit.map_or(SHARD_PAGE_ITEMS, |l| l.min(SHARD_PAGE_ITEMS)))
}

/// Merges reads that are each sorted by their [`Read::sort`] (Queries on an index
/// whose sort key it is, read with it as [`Decoding::sort_attr`]) into one sequence
/// sorted by it, in pages of at most `batch` records. It holds at most one page per
/// read, so memory does not grow with the data; a read is only fetched when its next
/// record is needed.
pub fn merge_sorted<T: Send + 'static>(reads: Vec<ReadPages<T>>, batch: usize) -> ReadPages<T> {
    let cursors: Vec<MergeCursor<T>> = reads
        .into_iter()
        .map(|pages| MergeCursor {
            pages,
            buffered: VecDeque::new(),
            done: false,
        })
        .collect();
    stream::try_unfold(cursors, move |mut cursors| async move {
        let mut out = Vec::new();
        loop {
            if cursors.iter().any(|c| c.buffered.is_empty() && !c.done) {
                if !out.is_empty() {
                    break;
                }
                refill(&mut cursors).await?;
                continue;
            }
            let next = cursors
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.buffered.front().map(|read| (i, read.sort.as_str())))
                .min_by(|a, b| a.1.cmp(b.1))
                .map(|(i, _)| i);
            let Some(i) = next else { break };
            if let Some(item) = cursors[i].buffered.pop_front() {
                out.push(item);
            }
            if out.len() >= batch {
                break;
            }
        }
        Ok(if out.is_empty() { None } else { Some((out, cursors)) })
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(key: &str) -> Read<()> {
        Read {
            record: (),
            sort: key.to_string(),
        }
    }

    fn pages(pages: Vec<Vec<&'static str>>) -> ReadPages<()> {
        stream::iter(pages.into_iter().map(|p| Ok(p.into_iter().map(read).collect()))).boxed()
    }

    #[tokio::test]
    async fn merges_sorted_reads_in_key_order() {
        let merged = merge_sorted(
            vec![
                pages(vec![vec!["a", "d"], vec![], vec!["g"]]),
                pages(vec![]),
                pages(vec![vec!["b", "c"], vec!["e", "h", "i"]]),
                pages(vec![vec!["f"]]),
            ],
            4,
        );
        let batches: Vec<Vec<Read<()>>> = merged.try_collect().await.unwrap();
        assert!(batches.iter().all(|b| !b.is_empty() && b.len() <= 4));
        let keys: Vec<String> = batches.iter().flatten().map(|r| r.sort.clone()).collect();
        assert_eq!(keys, ["a", "b", "c", "d", "e", "f", "g", "h", "i"]);
    }
}
