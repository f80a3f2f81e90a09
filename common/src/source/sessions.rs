//! Every chat session with its messages (seed 000).
//!
//! Sessions come from a Scan of the sessions table (the export is of every session, so
//! a full read is the access pattern). Each session's messages come from a Query on
//! the messages table (`session_id = :id`, sorted by `msg_key` =
//! `<timestamp>#<message_id>`). The first message page of the next [`PREFETCH`]
//! sessions is fetched concurrently; further pages of a long session are read one at
//! a time, so memory stays bounded by `PREFETCH` pages whatever the data.

use std::sync::Arc;

use aws_sdk_dynamodb::{Client, types::AttributeValue};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use tokio_util::task::AbortOnDropHandle;

use super::{Pages, SessionLine};
use crate::{
    error::Error,
    model::{Session, SessionMessage},
    reads::Item,
    reads::pages::scan_pages,
    reads::{Decoding, query_page},
};

const PREFETCH: usize = 16;

struct MessagePage {
    messages: Vec<SessionMessage>,
    next: Option<Item>,
}

async fn message_page(
    client: &Client,
    table: &str,
    session_id: &str,
    start: Option<Item>,
    as_of: DateTime<Utc>,
) -> Result<MessagePage, Error> {
    let req = client
        .query()
        .table_name(table)
        .key_condition_expression("session_id = :sid")
        .expression_attribute_values(":sid", AttributeValue::S(session_id.to_string()));
    let how = Decoding {
        as_of,
        sort_attr: None,
        key_attrs: &["session_id", "msg_key"],
    };
    let (reads, next) = query_page(req, start, how).await?;
    let messages = reads.into_iter().map(|read| read.record).collect();
    Ok(MessagePage { messages, next })
}

/// Every session of the sessions table written by `as_of`, in Scan order.
fn scan_sessions(
    client: &Client,
    table: &str,
    as_of: DateTime<Utc>,
) -> impl futures::Stream<Item = Result<Session, Error>> + Send + use<> {
    let how = Decoding {
        as_of,
        sort_attr: None,
        key_attrs: &["session_id"],
    };
    scan_pages(client, table, how)
        .map_ok(|reads| stream::iter(reads.into_iter().map(|read| Ok(read.record))))
        .try_flatten()
}

struct Continuation {
    session: Arc<Session>,
    next: Item,
    had_messages: bool,
}

/// One batch per message page: all of a session's lines are contiguous, messages in
/// time order (ties by message id).
pub fn lines(
    client: Client,
    sessions_table: String,
    messages_table: String,
    as_of: DateTime<Utc>,
) -> Pages<SessionLine> {
    let first_pages = {
        let client = client.clone();
        let messages_table = messages_table.clone();
        scan_sessions(&client, &sessions_table, as_of)
            .map_ok(move |session| {
                let client = client.clone();
                let table = messages_table.clone();
                // Each on its own task, so answers are parsed on both cores.
                let read = AbortOnDropHandle::new(tokio::spawn(async move {
                    let page = message_page(&client, &table, &session.session_id, None, as_of).await?;
                    Ok::<_, Error>((Arc::new(session), page))
                }));
                async move {
                    read.await
                        .map_err(|e| Error::internal("database error", format!("a read stopped: {e}")))?
                }
            })
            .try_buffered(PREFETCH)
            .boxed()
    };
    let state = (first_pages, None::<Continuation>);
    stream::try_unfold(state, move |(mut firsts, pending)| {
        let client = client.clone();
        let messages_table = messages_table.clone();
        async move {
            let (session, page, had_before) = match pending {
                Some(c) => {
                    let page =
                        message_page(&client, &messages_table, &c.session.session_id, Some(c.next), as_of).await?;
                    (c.session, page, c.had_messages)
                }
                None => match firsts.try_next().await? {
                    Some((session, page)) => (session, page, false),
                    None => return Ok(None),
                },
            };
            let had_messages = had_before || !page.messages.is_empty();
            let line = |m: SessionMessage| SessionLine {
                session: session.clone(),
                message: Some(m),
            };
            let mut batch: Vec<SessionLine> = page.messages.into_iter().map(line).collect();
            let next = match page.next {
                Some(next) => Some(Continuation {
                    session,
                    next,
                    had_messages,
                }),
                None => {
                    if !had_messages {
                        batch.push(SessionLine { session, message: None });
                    }
                    None
                }
            };
            Ok(Some((batch, (firsts, next))))
        }
    })
    .boxed()
}
