//! Rows of the admin chat-sessions export (seed 000): every session with its messages.
//!
//! Sessions come from a Scan of the sessions table (the export is of every session, so a
//! full read is the access pattern). Each session's messages come from a Query on the
//! messages table (`session_id = :id`, sorted by `msg_key` = `<timestamp>#<message_id>`).
//! The first message page of the next [`PREFETCH`] sessions is fetched concurrently;
//! further pages of a long session are read one at a time, so memory stays bounded by
//! `PREFETCH` pages whatever the data.

use aws_sdk_dynamodb::{Client, types::AttributeValue};
use futures::{StreamExt, TryStreamExt, stream};

use crate::{
    AppContext,
    error::Error,
    export::{Cell, Column, EncodeOptions, ExportJob, Format, Row, RowBatches},
    model::{Session, SessionMessage},
    store::{Item, decode, scan_pages},
};

pub const COLUMNS: [Column; 6] = [
    Column::new("SessionID", "session_id"),
    Column::new("UserID", "user_id"),
    Column::new("MessageID", "message_id"),
    Column::new("MessageContent", "message_content"),
    Column::new("Sender", "sender"),
    Column::new("Timestamp", "timestamp"),
];

const PREFETCH: usize = 16;

/// The export job: every session with its messages, as CSV.
pub fn job(ctx: &AppContext, options: EncodeOptions) -> ExportJob {
    let tables = &ctx.config.tables;
    ExportJob {
        kind: "sessions",
        file_stem: "chat-sessions-export",
        sheet: "Chat Sessions",
        format: Format::Csv,
        columns: COLUMNS.to_vec(),
        options,
        rows: rows(
            ctx.aws.dynamodb.clone(),
            tables.sessions.clone(),
            tables.session_messages.clone(),
        ),
        encoder: None,
    }
}

pub fn message_row(session: &Session, m: SessionMessage) -> Row {
    vec![
        Cell::Text(session.session_id.clone()),
        Cell::Text(session.user_id.clone()),
        Cell::Text(m.message_id),
        Cell::Text(m.content),
        Cell::Text(m.sender),
        Cell::Time(m.timestamp),
    ]
}

/// The one row of a session without messages: every session is in the file.
pub fn empty_session_row(session: &Session) -> Row {
    vec![
        Cell::Text(session.session_id.clone()),
        Cell::Text(session.user_id.clone()),
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
    ]
}

struct MessagePage {
    messages: Vec<SessionMessage>,
    next: Option<Item>,
}

async fn message_page(
    client: &Client,
    table: &str,
    session_id: &str,
    start: Option<Item>,
) -> Result<MessagePage, Error> {
    let out = client
        .query()
        .table_name(table)
        .key_condition_expression("session_id = :sid")
        .expression_attribute_values(":sid", AttributeValue::S(session_id.to_string()))
        .set_exclusive_start_key(start)
        .send()
        .await
        .map_err(Error::database)?;
    let messages = out
        .items
        .unwrap_or_default()
        .into_iter()
        .map(|item| decode::<SessionMessage>(item, &["session_id", "msg_key"]))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MessagePage {
        messages,
        next: out.last_evaluated_key.filter(|k| !k.is_empty()),
    })
}

/// Every session of the sessions table, in Scan order.
fn scan_sessions(client: &Client, table: &str) -> impl futures::Stream<Item = Result<Session, Error>> + Send + use<> {
    scan_pages(client, table)
        .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
        .try_flatten()
        .map(|item| item.and_then(|item| decode::<Session>(item, &["session_id"])))
}

struct Continuation {
    session: Session,
    next: Item,
    had_messages: bool,
}

/// One batch per message page: all of a session's rows are contiguous, messages in
/// time order (ties by message id).
pub fn rows(client: Client, sessions_table: String, messages_table: String) -> RowBatches {
    let first_pages = {
        let client = client.clone();
        let messages_table = messages_table.clone();
        scan_sessions(&client, &sessions_table)
            .map_ok(move |session| {
                let client = client.clone();
                let table = messages_table.clone();
                async move {
                    let page = message_page(&client, &table, &session.session_id, None).await?;
                    Ok::<_, Error>((session, page))
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
                    let page = message_page(&client, &messages_table, &c.session.session_id, Some(c.next)).await?;
                    (c.session, page, c.had_messages)
                }
                None => match firsts.try_next().await? {
                    Some((session, page)) => (session, page, false),
                    None => return Ok(None),
                },
            };
            let had_messages = had_before || !page.messages.is_empty();
            let mut batch: Vec<Row> = Vec::with_capacity(page.messages.len().max(1));
            let next = match page.next {
                Some(next) => {
                    batch.extend(page.messages.into_iter().map(|m| message_row(&session, m)));
                    Some(Continuation {
                        session,
                        next,
                        had_messages,
                    })
                }
                None => {
                    if had_messages {
                        batch.extend(page.messages.into_iter().map(|m| message_row(&session, m)));
                    } else {
                        batch.push(empty_session_row(&session));
                    }
                    None
                }
            };
            Ok(Some((batch, (firsts, next))))
        }
    })
    .boxed()
}
