//! Sources: the DynamoDB reads behind every export, as streams of typed records.
//!
//! [`Store`] is what [`crate::compile`] reads from. [`DynamoStore`] is the real one:
//! each method chooses the narrowest read for its filter (docs/data-model.md, "Which
//! read serves which filter"), decodes items into models, keeps only the records that
//! match, and drops records written after the export's `as_of` (the snapshot cut).
//! The benchmark implements [`Store`] with synthetic records, so it runs the same
//! compile, rows and encoders.

mod chats;
mod conversations;
mod leads;
mod sessions;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

use crate::{
    config::TableNames,
    error::Error,
    kinds::{chats::ChatFilter, leads::LeadFilter},
    model::{ChatMessage, Lead, Session, SessionMessage},
    reads::ReadItem,
    timefmt,
};

/// Pages of records, one DynamoDB page (or so) at a time.
pub type Pages<T> = BoxStream<'static, Result<Vec<T>, Error>>;

/// One line of the sessions export: a message of a session, or `None` for a session
/// without messages (every session is in the file).
#[derive(Clone, Debug, PartialEq)]
pub struct SessionLine {
    pub session: Arc<Session>,
    pub message: Option<SessionMessage>,
}

/// Where exports read from.
pub trait Store: Send + Sync {
    /// Every session with its messages: a session's lines are contiguous, its
    /// messages in time order (ties by message id).
    fn session_lines(&self, as_of: DateTime<Utc>) -> Pages<SessionLine>;
    /// The leads matching `filter`, in `Created At` order (per company for a list).
    fn leads(&self, filter: &LeadFilter, as_of: DateTime<Utc>) -> Pages<Lead>;
    /// The chat messages matching `filter`, in time order (ties by id).
    fn chat_messages(&self, filter: &ChatFilter, as_of: DateTime<Utc>) -> Pages<ChatMessage>;
    /// The chat messages matching `filter`, grouped by (client, conversation), each
    /// group in time order.
    fn conversation_messages(&self, filter: &ChatFilter, as_of: DateTime<Utc>) -> Pages<ChatMessage>;
}

/// The store in DynamoDB.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    pub client: aws_sdk_dynamodb::Client,
    pub tables: TableNames,
}

impl Store for DynamoStore {
    fn session_lines(&self, as_of: DateTime<Utc>) -> Pages<SessionLine> {
        sessions::lines(
            self.client.clone(),
            self.tables.sessions.clone(),
            self.tables.session_messages.clone(),
            as_of,
        )
    }

    fn leads(&self, filter: &LeadFilter, as_of: DateTime<Utc>) -> Pages<Lead> {
        leads::leads(self.client.clone(), self.tables.leads.clone(), filter.clone(), as_of)
    }

    fn chat_messages(&self, filter: &ChatFilter, as_of: DateTime<Utc>) -> Pages<ChatMessage> {
        chats::messages(
            self.client.clone(),
            self.tables.chat_messages.clone(),
            filter.clone(),
            as_of,
        )
    }

    fn conversation_messages(&self, filter: &ChatFilter, as_of: DateTime<Utc>) -> Pages<ChatMessage> {
        conversations::messages(
            self.client.clone(),
            self.tables.chat_messages.clone(),
            filter.clone(),
            as_of,
        )
    }
}

/// The snapshot cut: whether an item was written at or before `as_of`. Items carry
/// `written_at` (stamped by [`crate::store::write_records`]); an item without one (or
/// with one that is not a timestamp) was written by another writer and is kept.
/// (A page's item or a DynamoDB export's line: both are read the same way.)
pub(crate) fn written_by(item: &ReadItem, as_of: &DateTime<Utc>) -> bool {
    match item.get("written_at") {
        Some(serde_dynamo::AttributeValue::S(s)) => stamped_by(Some(s), as_of),
        _ => true,
    }
}

/// [`written_by`] of an item whose `written_at` string (if any) was read aside.
pub(crate) fn stamped_by(written_at: Option<&str>, as_of: &DateTime<Utc>) -> bool {
    written_at.is_none_or(|s| timefmt::parse_rfc3339(s).is_none_or(|w| w <= *as_of))
}
