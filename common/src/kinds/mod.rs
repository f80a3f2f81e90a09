//! What each export kind is made of: its columns, its filters, how a stored record
//! becomes a row, and (for chats) the summary accumulated while rows pass. The
//! DynamoDB reads that feed them are in [`crate::source`].

pub mod chats;
pub mod conversations;
pub mod leads;
pub mod sessions;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::timefmt::serde_ts_opt;

/// An inclusive time range; either end may be open (an open end means no end).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateRange {
    #[serde(default, with = "serde_ts_opt")]
    pub from: Option<DateTime<Utc>>,
    #[serde(default, with = "serde_ts_opt")]
    pub to: Option<DateTime<Utc>>,
}

impl DateRange {
    pub fn contains(&self, t: &DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| *t >= f) && self.to.is_none_or(|to| *t <= to)
    }
}
