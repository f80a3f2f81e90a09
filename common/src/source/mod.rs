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
mod ties;

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

use crate::{
    config::TableNames,
    error::Error,
    kinds::{chats::ChatFilter, leads::LeadFilter},
    model::{ChatMessage, Lead},
};
use ties::{Tie, in_id_order};

/// Pages of records, one DynamoDB page (or so) at a time.
pub type Pages<T> = BoxStream<'static, Result<Vec<T>, Error>>;

pub use crate::kinds::sessions::SessionLine;

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
        let lines = sessions::lines(
            self.client.clone(),
            self.tables.sessions.clone(),
            self.tables.session_messages.clone(),
            as_of,
        );
        in_id_order(lines, |line| {
            line.message.as_ref().map(|m| Tie {
                group: [&line.session.session_id, ""],
                at_ms: m.timestamp.timestamp_millis(),
                id: &m.message_id,
            })
        })
    }

    fn leads(&self, filter: &LeadFilter, as_of: DateTime<Utc>) -> Pages<Lead> {
        let leads = leads::leads(self.client.clone(), self.tables.leads.clone(), filter.clone(), as_of);
        // A list of companies is read company by company; any other read is in one
        // time order.
        if filter.chatbot_id.is_some() || filter.companies.is_none() {
            in_id_order(leads, |l| {
                Some(Tie {
                    group: ["", ""],
                    at_ms: l.created_at.timestamp_millis(),
                    id: &l.lead_id,
                })
            })
        } else {
            in_id_order(leads, |l| {
                Some(Tie {
                    group: [&l.company_id, ""],
                    at_ms: l.created_at.timestamp_millis(),
                    id: &l.lead_id,
                })
            })
        }
    }

    fn chat_messages(&self, filter: &ChatFilter, as_of: DateTime<Utc>) -> Pages<ChatMessage> {
        let messages = chats::messages(
            self.client.clone(),
            self.tables.chat_messages.clone(),
            filter.clone(),
            as_of,
        );
        // Every chat read is in `ts_id` order, whichever clients it spans.
        in_id_order(messages, |m| {
            Some(Tie {
                group: ["", ""],
                at_ms: m.timestamp.timestamp_millis(),
                id: &m.id,
            })
        })
    }

    fn conversation_messages(&self, filter: &ChatFilter, as_of: DateTime<Utc>) -> Pages<ChatMessage> {
        let messages = conversations::messages(
            self.client.clone(),
            self.tables.chat_messages.clone(),
            filter.clone(),
            as_of,
        );
        in_id_order(messages, |m| {
            Some(Tie {
                group: [&m.client_id, &m.conversation_id],
                at_ms: m.timestamp.timestamp_millis(),
                id: &m.id,
            })
        })
    }
}
