//! The reads of the leads export (docs/data-model.md, "Which read serves which
//! filter"): every read is a Query whose key condition holds the date range.

use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};

use super::Pages;
use crate::{
    keys::shards,
    kinds::{DateRange, leads::LeadFilter},
    model::Lead,
    reads::Decoding,
    reads::pages::{KeyCondition, ReadPages, merge_sorted, query_pages, shard_page_limit},
    schema::{LEADS_BY_CHATBOT, LEADS_BY_COMPANY, LEADS_BY_CREATED},
    timefmt,
};

/// One DynamoDB read of the leads table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeadRead {
    /// Query `by_company_created`: `company_id = :k [AND created_at BETWEEN ...]`.
    Company(String),
    /// Query `by_chatbot_created`: `chatbot_id = :k [AND created_at BETWEEN ...]`.
    Chatbot(String),
    /// Query `by_created` once per shard (`shard = :s [AND created_key BETWEEN ...]`),
    /// merged by `created_key`: every company, in `Created At` order (admins).
    AllCompanies,
}

/// The reads that cover every lead the filter can match, narrowest first. Each
/// one's cost follows the leads in the range, not the table.
pub fn plan(filter: &LeadFilter) -> Vec<LeadRead> {
    match (&filter.chatbot_id, &filter.companies) {
        (Some(bot), _) => vec![LeadRead::Chatbot(bot.clone())],
        (None, Some(companies)) => companies.iter().cloned().map(LeadRead::Company).collect(),
        (None, None) => vec![LeadRead::AllCompanies],
    }
}

fn pages(client: &Client, table: &str, read: &LeadRead, range: &DateRange, as_of: DateTime<Utc>) -> ReadPages<Lead> {
    let from = range.from.map(|f| timefmt::format(&f));
    let how = Decoding {
        as_of,
        sort_attr: None,
        key_attrs: &["lead_id"],
    };
    let (index, partition_attr, partition) = match read {
        LeadRead::Company(c) => (LEADS_BY_COMPANY, "company_id", c.clone()),
        LeadRead::Chatbot(b) => (LEADS_BY_CHATBOT, "chatbot_id", b.clone()),
        LeadRead::AllCompanies => {
            let reads = shards()
                .map(|shard| {
                    query_pages(
                        client,
                        table,
                        KeyCondition {
                            index: Some(LEADS_BY_CREATED),
                            partition_attr: "shard",
                            partition: shard,
                            sort_attr: "created_key",
                            from: from.clone(),
                            // `~` sorts after `#`: every lead of the last instant.
                            to: range.to.map(|t| format!("{}~", timefmt::format(&t))),
                            page_limit: shard_page_limit(None),
                            prefix: None,
                        },
                        Decoding {
                            sort_attr: Some("created_key"),
                            ..how
                        },
                    )
                })
                .collect();
            return merge_sorted(reads, 1000);
        }
    };
    query_pages(
        client,
        table,
        KeyCondition {
            index: Some(index),
            partition_attr,
            partition,
            sort_attr: "created_at",
            from,
            to: range.to.map(|t| timefmt::format(&t)),
            page_limit: None,
            prefix: None,
        },
        how,
    )
}

/// One batch per DynamoDB page: the page's leads that match, written by `as_of`.
pub fn leads(client: Client, table: String, filter: LeadFilter, as_of: DateTime<Utc>) -> Pages<Lead> {
    let reads = plan(&filter);
    let range = filter.created.clone();
    stream::iter(reads)
        .flat_map(move |read| pages(&client, &table, &read, &range, as_of))
        .map(move |page| {
            Ok(page?
                .into_iter()
                .map(|read| read.record)
                .filter(|lead| filter.matches(lead))
                .collect())
        })
        .boxed()
}
