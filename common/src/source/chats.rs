//! The reads of the chat export (docs/data-model.md, "Which read serves which
//! filter"): the narrowest Query the filter allows, the date range always in the key
//! condition, messages in time order.

use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};

use super::Pages;
use crate::{
    keys::shards,
    kinds::{DateRange, chats::ChatFilter},
    model::ChatMessage,
    reads::pages::{KeyCondition, ReadPages, merge_sorted, query_pages, shard_page_limit},
    reads::{Decoding, Read},
    schema::{CHATS_BY_CONVERSATION, CHATS_BY_TIME},
    timefmt,
};

/// What names a chat message in an error: its table key.
pub(super) const KEY_ATTRS: &[&str] = &["client_id", "ts_id"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatRead {
    /// Query the table: `client_id = :k [AND ts_id BETWEEN ...]`.
    Client(String),
    /// Query `by_conversation`: `conversation_id = :k [AND ts_id BETWEEN ...]`.
    Conversation(String),
    /// Query `by_time` once per shard (`shard = :s [AND ts_id BETWEEN ...]`), merged
    /// by `ts_id`: every client, in time order.
    AllClients,
}

/// The read covering every message the filter can match, in time order. Its cost
/// follows the messages in the range, never the length of the range.
pub fn plan(filter: &ChatFilter) -> ChatRead {
    if let Some(conv) = &filter.conversation_id {
        return ChatRead::Conversation(conv.clone());
    }
    match &filter.client_id {
        Some(client) => ChatRead::Client(client.clone()),
        None => ChatRead::AllClients,
    }
}

/// Items per page when the export is short: no read fetches far more than `limit`.
pub(super) fn page_limit(limit: u32) -> Option<i32> {
    (limit < 1000).then_some(limit.max(1) as i32)
}

fn key_condition<'a>(
    index: Option<&'a str>,
    attr: &'a str,
    value: String,
    range: &DateRange,
    limit: u32,
) -> KeyCondition<'a> {
    KeyCondition {
        index,
        partition_attr: attr,
        partition: value,
        sort_attr: "ts_id",
        from: range.from.map(|f| timefmt::format(&f)),
        // `~` sorts after `#`, so `<to>~` covers every id at the last instant.
        to: range.to.map(|t| format!("{}~", timefmt::format(&t))),
        page_limit: page_limit(limit),
        prefix: None,
    }
}

fn pages(client: &Client, table: &str, filter: &ChatFilter, as_of: DateTime<Utc>) -> ReadPages<ChatMessage> {
    let (range, limit) = (&filter.range, filter.limit);
    let how = Decoding {
        as_of,
        sort_attr: None,
        key_attrs: KEY_ATTRS,
    };
    match plan(filter) {
        ChatRead::Client(c) => query_pages(client, table, key_condition(None, "client_id", c, range, limit), how),
        ChatRead::Conversation(c) => query_pages(
            client,
            table,
            key_condition(Some(CHATS_BY_CONVERSATION), "conversation_id", c, range, limit),
            how,
        ),
        ChatRead::AllClients => {
            let how = Decoding {
                sort_attr: Some("ts_id"),
                ..how
            };
            let reads = shards()
                .map(|shard| {
                    let mut condition = key_condition(Some(CHATS_BY_TIME), "shard", shard, range, limit);
                    condition.page_limit = shard_page_limit(condition.page_limit);
                    query_pages(client, table, condition, how)
                })
                .collect();
            merge_sorted(reads, 1000)
        }
    }
}

/// The messages of a page (written by the export's `as_of`) that match.
pub(super) fn matching(reads: Vec<Read<ChatMessage>>, filter: &ChatFilter) -> Vec<ChatMessage> {
    reads
        .into_iter()
        .map(|read| read.record)
        .filter(|m| filter.matches(m))
        .collect()
}

/// One batch per page of matching messages, in time order. Nothing is read beyond
/// what the consumer pulls, so a `limit` stops the reads.
pub fn messages(client: Client, table: String, filter: ChatFilter, as_of: DateTime<Utc>) -> Pages<ChatMessage> {
    let read_pages = pages(&client, &table, &filter, as_of);
    stream::unfold(read_pages, move |mut pages| {
        let filter = filter.clone();
        async move {
            let page = pages.next().await?;
            Some((page.map(|reads| matching(reads, &filter)), pages))
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_follow_the_narrowest_key() {
        let mut f = ChatFilter {
            range: DateRange {
                from: timefmt::parse_rfc3339("0001-01-01T00:00:00Z"),
                to: None,
            },
            ..Default::default()
        };
        assert_eq!(
            plan(&f),
            ChatRead::AllClients,
            "any span: one Query per shard, never per day"
        );
        f.client_id = Some("c".into());
        assert_eq!(plan(&f), ChatRead::Client("c".into()));
        f.conversation_id = Some("v".into());
        assert_eq!(plan(&f), ChatRead::Conversation("v".into()));
    }

    #[test]
    fn an_open_end_is_no_end() {
        let range = DateRange {
            from: timefmt::parse_rfc3339("2024-01-01T00:00:00Z"),
            to: None,
        };
        let k = key_condition(None, "client_id", "c".into(), &range, 10);
        assert_eq!((k.from.as_deref(), k.to), (Some("2024-01-01T00:00:00.000Z"), None));
        assert_eq!(k.page_limit, Some(10));
        assert_eq!(page_limit(1_000_000), None);
    }
}
