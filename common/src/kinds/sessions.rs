//! The admin chat-sessions export (seed 000): every session with its messages, one
//! line per message, and one line for a session without messages.

use std::sync::Arc;

use crate::{
    export::{Cell, Column, Row},
    model::{Session, SessionMessage},
};

/// One line of the sessions export: a message of a session, or `None` for a session
/// without messages (every session is in the file).
#[derive(Clone, Debug, PartialEq)]
pub struct SessionLine {
    pub session: Arc<Session>,
    pub message: Option<SessionMessage>,
}

/// The start of the file's name: `chat-sessions-export-YYYY-MM-DD.<ext>`.
pub const FILE_STEM: &str = "chat-sessions-export";

/// The Excel document's sheet.
pub const SHEET: &str = "Chat Sessions";

pub const COLUMNS: [Column; 6] = [
    Column::new("SessionID", "session_id"),
    Column::new("UserID", "user_id"),
    Column::new("MessageID", "message_id"),
    Column::new("MessageContent", "message_content"),
    Column::new("Sender", "sender"),
    Column::new("Timestamp", "timestamp").time(),
];

/// The row of a line: a message with its session, or a session's empty line.
pub fn row(line: SessionLine) -> Row {
    let session = &line.session;
    let mut row = vec![
        Cell::Text(session.session_id.clone()),
        Cell::Text(session.user_id.clone()),
    ];
    match line.message {
        Some(m) => row.extend([
            Cell::Text(m.message_id),
            Cell::Text(m.content),
            Cell::Text(m.sender),
            Cell::Time(m.timestamp),
        ]),
        None => row.extend([Cell::Empty, Cell::Empty, Cell::Empty, Cell::Empty]),
    }
    row
}
