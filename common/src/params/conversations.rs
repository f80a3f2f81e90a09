//! Parameters of `GET /client/export/conversations`: the chat download's parameters
//! and scoping, with the tabular formats. `include_geo` and `include_meta` are
//! accepted (the same parameters as the chat download) and change nothing: every
//! conversation row has its user and country.

use chrono::{DateTime, Utc};

use super::{Choice, chats::ChatDataParams};
use crate::{
    auth::Caller,
    error::Error,
    spec::{ConversationsSpec, ExportSpec, FileFamily, TableFormat},
};

pub type ConversationsParams = ChatDataParams<Choice<TableFormat>>;

impl ConversationsParams {
    /// The export this caller may run; `limit` counts conversations.
    pub fn into_spec(self, caller: &Caller, max_records: u32, as_of: DateTime<Utc>) -> Result<ExportSpec, Error> {
        let options = self.file_options(FileFamily::Csv)?;
        let (filter, anonymize_ips) = self.scope(caller, max_records, options.time_zone)?;
        Ok(ExportSpec::Conversations(ConversationsSpec {
            as_of,
            format: self.format.map_or(TableFormat::Csv, |f| f.0),
            options,
            filter,
            anonymize_ips,
        }))
    }
}
