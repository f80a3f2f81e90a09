//! The reads of the conversations export: a client's messages grouped by
//! conversation, from the `by_conversation_group` index (partition `conv_shard`, a
//! hash of client and conversation; sort key `conv_key` = `<client>#<conversation>#
//! <timestamp>#<id>` with `#` and `%` escaped in the ids). A conversation's messages
//! are contiguous and in time order, so they can be folded one conversation at a time.
//!
//! The date range is not part of this key (it groups first), so it is applied to each
//! message: the cost follows the messages of the client (or of the conversation),
//! not the calendar. See docs/data-model.md.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};

use super::{
    Pages,
    chats::{KEY_ATTRS, matching},
};
use crate::{
    error::Error,
    keys::{conversation_prefix, conversation_shard, shards},
    kinds::chats::ChatFilter,
    model::ChatMessage,
    reads::Decoding,
    reads::pages::{KeyCondition, ReadPages, merge_sorted, query_pages, shard_page_limit},
    schema::{CHATS_BY_CONVERSATION, CHATS_BY_CONVERSATION_GROUP},
};

/// One Query of the group index: a shard, optionally narrowed to a key prefix.
fn group_read(
    client: &Client,
    table: &str,
    shard: String,
    prefix: Option<String>,
    as_of: DateTime<Utc>,
) -> ReadPages<ChatMessage> {
    query_pages(
        client,
        table,
        KeyCondition {
            index: Some(CHATS_BY_CONVERSATION_GROUP),
            partition_attr: "conv_shard",
            partition: shard,
            sort_attr: "conv_key",
            from: None,
            to: None,
            page_limit: shard_page_limit(None),
            prefix,
        },
        Decoding {
            as_of,
            sort_attr: Some("conv_key"),
            key_attrs: KEY_ATTRS,
        },
    )
}

/// Every shard, narrowed to `prefix` when given, merged in `conv_key` order.
fn all_shards(client: &Client, table: &str, prefix: Option<String>, as_of: DateTime<Utc>) -> ReadPages<ChatMessage> {
    let reads = shards()
        .map(|shard| group_read(client, table, shard, prefix.clone(), as_of))
        .collect();
    merge_sorted(reads, 1000)
}

/// Of a message, only its client.
#[derive(serde::Deserialize)]
struct ClientOf {
    client_id: String,
}

/// The clients that have a conversation with this id (admins may ask for a
/// conversation without naming its client). Only the ids are kept.
async fn clients_of(client: Client, table: String, conversation_id: String) -> Result<BTreeSet<String>, Error> {
    let pages = query_pages(
        &client,
        &table,
        KeyCondition {
            index: Some(CHATS_BY_CONVERSATION),
            partition_attr: "conversation_id",
            partition: conversation_id,
            sort_attr: "ts_id",
            from: None,
            to: None,
            page_limit: None,
            prefix: None,
        },
        // Every message's client, whenever written: the messages' own reads apply
        // the export's snapshot cut.
        Decoding {
            as_of: DateTime::<Utc>::MAX_UTC,
            sort_attr: None,
            key_attrs: KEY_ATTRS,
        },
    );
    pages
        .try_fold(
            BTreeSet::new(),
            |mut set, reads: Vec<crate::reads::Read<ClientOf>>| async move {
                set.extend(reads.into_iter().map(|read| read.record.client_id));
                Ok(set)
            },
        )
        .await
}

fn read_pages(client: Client, table: String, filter: &ChatFilter, as_of: DateTime<Utc>) -> ReadPages<ChatMessage> {
    match (filter.client_id.clone(), filter.conversation_id.clone()) {
        (Some(c), Some(v)) => group_read(
            &client,
            &table,
            conversation_shard(&c, &v),
            Some(conversation_prefix(&c, Some(&v))),
            as_of,
        ),
        (Some(c), None) => all_shards(&client, &table, Some(conversation_prefix(&c, None)), as_of),
        (None, None) => all_shards(&client, &table, None, as_of),
        (None, Some(v)) => stream::once(clients_of(client.clone(), table.clone(), v.clone()))
            .map_ok(move |clients| {
                let (client, table, v) = (client.clone(), table.clone(), v.clone());
                stream::iter(clients).flat_map(move |c| {
                    group_read(
                        &client,
                        &table,
                        conversation_shard(&c, &v),
                        Some(conversation_prefix(&c, Some(&v))),
                        as_of,
                    )
                })
            })
            .try_flatten()
            .boxed(),
    }
}

/// Pages of matching messages, grouped by (client, conversation), each group in
/// time order.
pub fn messages(client: Client, table: String, filter: ChatFilter, as_of: DateTime<Utc>) -> Pages<ChatMessage> {
    read_pages(client, table, &filter, as_of)
        .map(move |page| page.map(|reads| matching(reads, &filter)))
        .boxed()
}
