//! The conversations export: one row per conversation of a client, aggregated from
//! its messages while they stream past, one conversation at a time (the read returns
//! a client's messages grouped by conversation, see [`crate::source`]), so memory
//! holds one conversation's figures, never the conversations.

use chrono::{DateTime, Utc};

use super::chats::{anonymize_ip, text};
use crate::{
    export::{Cell, Column, Row},
    model::{ChatMessage, Text},
};

/// The start of the file's name: `conversations-export-YYYY-MM-DD.<ext>`.
pub const FILE_STEM: &str = "conversations-export";

/// The Excel document's sheet.
pub const SHEET: &str = "Conversations";

pub const COLUMNS: [Column; 11] = [
    Column::new("Client ID", "client_id").width(16.0),
    Column::new("Conversation ID", "conversation_id").width(18.0),
    Column::new("Session ID", "session_id").width(16.0),
    Column::new("First Message At", "first_message_at").time().width(22.0),
    Column::new("Last Message At", "last_message_at").time().width(22.0),
    Column::new("Message Count", "message_count").unsigned(),
    Column::new("Total Tokens", "total_tokens").wide_integer(),
    Column::new("User ID", "user_id").width(26.0),
    Column::new("User Name", "user_name").width(16.0),
    Column::new("Country", "country").width(16.0),
    Column::new("User IP", "user_ip").width(18.0),
];

/// One conversation's figures, from its messages in time order.
#[derive(Clone, Debug, PartialEq)]
pub struct Conversation {
    pub client_id: Text,
    pub conversation_id: Text,
    /// The first message's session.
    pub session_id: Option<Text>,
    pub first_message_at: DateTime<Utc>,
    pub last_message_at: DateTime<Utc>,
    pub message_count: u64,
    pub total_tokens: u128,
    /// The first non-empty value among the messages, in time order.
    pub user_id: Option<Text>,
    pub user_name: Option<Text>,
    pub country: Option<Text>,
    pub user_ip: Option<Text>,
}

fn first_of(slot: &mut Option<Text>, value: Option<&Text>) {
    if slot.is_none()
        && let Some(v) = value.filter(|v| !v.is_empty())
    {
        *slot = Some(v.clone());
    }
}

impl Conversation {
    pub fn start(m: &ChatMessage) -> Self {
        let mut c = Conversation {
            client_id: m.client_id.clone(),
            conversation_id: m.conversation_id.clone(),
            session_id: None,
            first_message_at: m.timestamp,
            last_message_at: m.timestamp,
            message_count: 0,
            total_tokens: 0,
            user_id: None,
            user_name: None,
            country: None,
            user_ip: None,
        };
        c.add(m);
        c
    }

    /// Whether a message belongs to this conversation.
    pub fn holds(&self, m: &ChatMessage) -> bool {
        self.client_id == m.client_id && self.conversation_id == m.conversation_id
    }

    pub fn add(&mut self, m: &ChatMessage) {
        self.first_message_at = self.first_message_at.min(m.timestamp);
        self.last_message_at = self.last_message_at.max(m.timestamp);
        self.message_count += 1;
        self.total_tokens += u128::from(m.token_cost);
        first_of(&mut self.session_id, m.session_id.as_ref());
        first_of(&mut self.user_id, m.from_user_id.as_ref());
        first_of(&mut self.user_name, m.user_name.as_ref());
        first_of(&mut self.country, m.geo_data.as_ref().and_then(|g| g.country.as_ref()));
        first_of(&mut self.user_ip, m.user_ip.as_ref());
    }

    /// The row; IP addresses anonymised for non-admin callers, as in the chat export.
    pub fn row(self, anonymize_ips: bool) -> Row {
        let ip = match self.user_ip {
            Some(ip) if anonymize_ips => text(anonymize_ip(&ip)),
            ip => text(ip),
        };
        vec![
            Cell::Text(self.client_id),
            Cell::Text(self.conversation_id),
            text(self.session_id),
            Cell::Time(self.first_message_at),
            Cell::Time(self.last_message_at),
            Cell::Int(self.message_count.into()),
            Cell::Int(i128::try_from(self.total_tokens).unwrap_or(i128::MAX)),
            text(self.user_id),
            text(self.user_name),
            text(self.country),
            ip,
        ]
    }
}

/// Folds messages grouped by conversation into conversations: `push` returns a
/// conversation once the next one starts; `finish` returns the last.
#[derive(Debug, Default)]
pub struct Folder {
    current: Option<Conversation>,
}

impl Folder {
    pub fn push(&mut self, m: &ChatMessage) -> Option<Conversation> {
        match &mut self.current {
            Some(c) if c.holds(m) => {
                c.add(m);
                None
            }
            _ => self.current.replace(Conversation::start(m)),
        }
    }

    pub fn finish(&mut self) -> Option<Conversation> {
        self.current.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(client: &str, conv: &str, at: i64, tokens: u64) -> ChatMessage {
        ChatMessage {
            id: format!("{conv}-{at}").into(),
            client_id: client.into(),
            conversation_id: conv.into(),
            session_id: (at > 1).then(|| format!("s{at}").into()),
            from_name: "n".into(),
            from_user_id: None,
            user_name: Some(Text::default()),
            user_email: None,
            message: "m".into(),
            reply: None,
            timestamp: DateTime::from_timestamp(at, 0).unwrap(),
            created_at: DateTime::from_timestamp(at, 0).unwrap(),
            token_cost: tokens,
            user_ip: Some("203.0.113.9".into()),
            user_agent: None,
            referrer: None,
            is_embed_user: false,
            geo_data: None,
        }
    }

    #[test]
    fn folds_one_conversation_at_a_time() {
        let mut f = Folder::default();
        assert!(f.push(&msg("a", "c1", 1, u64::MAX)).is_none());
        assert!(f.push(&msg("a", "c1", 5, u64::MAX)).is_none());
        let c1 = f.push(&msg("a", "c2", 2, 1)).unwrap();
        assert_eq!((c1.message_count, c1.total_tokens), (2, 2 * u128::from(u64::MAX)));
        assert_eq!(c1.session_id.as_deref(), Some("s5"), "the first non-empty session");
        assert_eq!(c1.user_name, None, "empty values are not values");
        let c2 = f.push(&msg("b", "c2", 3, 1)).unwrap();
        assert_eq!((c2.client_id.as_str(), c2.message_count), ("a", 1));
        assert_eq!(f.finish().unwrap().client_id, "b");
        assert!(f.finish().is_none());
        let row = c1.row(true);
        assert_eq!(row[10], Cell::Text("203.0.113.0".into()));
        assert_eq!(row[6], Cell::Int(2 * i128::from(u64::MAX)));
    }
}
