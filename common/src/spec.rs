//! An export as a value: what to export, for whom, into which file, as of when.
//!
//! An [`ExportSpec`] is built once from a trigger (today an HTTP request, see
//! [`crate::params`]; next a job message or a schedule tick), with the caller's tenant
//! scope already resolved into its filter. It holds no secret and no live resource, so
//! it can be stored, queued, logged and replayed; [`crate::compile::compile`] turns it
//! into the running pipeline. Its JSON form is documented in docs/api.md ("Export specs").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    kinds::{
        chats::{ChatFilter, ChatFormat, ChatOptions},
        leads::{LeadColumn, LeadFilter},
    },
    model::string_enum,
    timefmt::serde_ts,
};

pub use crate::{
    export::compress::{Compression, FileFamily},
    timefmt::TimeZone,
};

string_enum!(
    /// The formats of the tabular kinds (sessions, leads, conversations).
    TableFormat { Csv => "csv", Json => "json", Jsonl => "jsonl", Xlsx => "xlsx", Parquet => "parquet" }
);

impl TableFormat {
    pub fn extension(self) -> &'static str {
        self.as_str()
    }

    pub fn family(self) -> FileFamily {
        match self {
            TableFormat::Csv => FileFamily::Csv,
            TableFormat::Parquet => FileFamily::Parquet,
            TableFormat::Json | TableFormat::Jsonl | TableFormat::Xlsx => FileFamily::Other,
        }
    }
}

/// What every export's file may be asked for, whatever its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOptions {
    /// `gzip` wraps the file (`.csv.gz`); `zip` puts it in an archive (`.zip`).
    pub compression: Compression,
    /// A UTF-8 byte order mark before a CSV (what Excel needs to read UTF-8).
    pub bom: bool,
    /// The zone timestamps are shown in, in CSV and Excel (JSON stays in UTC); also
    /// the zone of date-only range bounds.
    pub time_zone: TimeZone,
    /// Neutralise formula-like text in CSV (OWASP "CSV injection").
    pub spreadsheet_safe: bool,
}

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            compression: Compression::None,
            bom: false,
            time_zone: TimeZone::UTC,
            spreadsheet_safe: true,
        }
    }
}

/// Every chat session with its messages (admins).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsSpec {
    #[serde(with = "serde_ts")]
    pub as_of: DateTime<Utc>,
    pub format: TableFormat,
    pub options: FileOptions,
}

/// Leads of the companies in `filter` (one, several, or every company for admins).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadsSpec {
    #[serde(with = "serde_ts")]
    pub as_of: DateTime<Utc>,
    pub format: TableFormat,
    pub options: FileOptions,
    pub filter: LeadFilter,
    /// The columns, in output order (stored as their keys, `lead_id`, ...).
    pub columns: Vec<LeadColumn>,
}

/// Chat messages of the client in `filter` (or of every client, for admins), with
/// the seed's documents and analytics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatsSpec {
    #[serde(with = "serde_ts")]
    pub as_of: DateTime<Utc>,
    pub format: ChatFormat,
    pub options: FileOptions,
    pub filter: ChatFilter,
    pub chat: ChatOptions,
}

/// One row per conversation of the client in `filter` (or of every client).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationsSpec {
    #[serde(with = "serde_ts")]
    pub as_of: DateTime<Utc>,
    pub format: TableFormat,
    pub options: FileOptions,
    /// `limit` counts conversations.
    pub filter: ChatFilter,
    pub anonymize_ips: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExportSpec {
    Sessions(SessionsSpec),
    Leads(LeadsSpec),
    Chats(ChatsSpec),
    Conversations(ConversationsSpec),
}

impl ExportSpec {
    /// The same export as of another instant (a schedule's run, an operator event).
    pub fn with_as_of(mut self, as_of: DateTime<Utc>) -> Self {
        match &mut self {
            ExportSpec::Sessions(s) => s.as_of = as_of,
            ExportSpec::Leads(s) => s.as_of = as_of,
            ExportSpec::Chats(s) => s.as_of = as_of,
            ExportSpec::Conversations(s) => s.as_of = as_of,
        }
        self
    }

    /// Whether the kind has a time filter a schedule's window can set (sessions have none).
    pub fn has_time_filter(&self) -> bool {
        !matches!(self, ExportSpec::Sessions(_))
    }

    /// The same export limited to the half-open window `[start, end)` of the kind's
    /// own time (leads: `Created At`; chats and conversations: the message time).
    /// Stored times have millisecond precision, so `[start, end)` is the inclusive
    /// range `[start, end - 1 ms]` the filters hold.
    pub fn with_window(mut self, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, String> {
        if end <= start {
            return Err("a window must end after it starts".into());
        }
        let range = crate::kinds::DateRange {
            from: Some(start),
            to: Some(end - chrono::Duration::milliseconds(1)),
        };
        match &mut self {
            ExportSpec::Sessions(_) => return Err("the sessions export has no time filter".into()),
            ExportSpec::Leads(s) => s.filter.created = range,
            ExportSpec::Chats(s) => s.filter.range = range,
            ExportSpec::Conversations(s) => s.filter.range = range,
        }
        Ok(self)
    }

    /// `sessions`, `leads`, `chats` or `conversations`: logs, metrics, object keys.
    pub fn kind(&self) -> &'static str {
        match self {
            ExportSpec::Sessions(_) => "sessions",
            ExportSpec::Leads(_) => "leads",
            ExportSpec::Chats(_) => "chats",
            ExportSpec::Conversations(_) => "conversations",
        }
    }

    /// When the export was asked for: rows written later are not exported, and the
    /// file is named after this day.
    pub fn as_of(&self) -> DateTime<Utc> {
        match self {
            ExportSpec::Sessions(s) => s.as_of,
            ExportSpec::Leads(s) => s.as_of,
            ExportSpec::Chats(s) => s.as_of,
            ExportSpec::Conversations(s) => s.as_of,
        }
    }

    pub fn options(&self) -> &FileOptions {
        match self {
            ExportSpec::Sessions(s) => &s.options,
            ExportSpec::Leads(s) => &s.options,
            ExportSpec::Chats(s) => &s.options,
            ExportSpec::Conversations(s) => &s.options,
        }
    }

    pub fn options_mut(&mut self) -> &mut FileOptions {
        match self {
            ExportSpec::Sessions(s) => &mut s.options,
            ExportSpec::Leads(s) => &mut s.options,
            ExportSpec::Chats(s) => &mut s.options,
            ExportSpec::Conversations(s) => &mut s.options,
        }
    }

    /// The format as the caller named it (`excel`, `csv`, ...).
    pub fn format_name(&self) -> &'static str {
        match self {
            ExportSpec::Sessions(s) => s.format.as_str(),
            ExportSpec::Leads(s) => s.format.as_str(),
            ExportSpec::Chats(s) => s.format.as_str(),
            ExportSpec::Conversations(s) => s.format.as_str(),
        }
    }

    /// The extension of the document before compression.
    fn extension(&self) -> &'static str {
        match self {
            ExportSpec::Sessions(s) => s.format.extension(),
            ExportSpec::Leads(s) => s.format.extension(),
            ExportSpec::Chats(s) => s.format.extension(),
            ExportSpec::Conversations(s) => s.format.extension(),
        }
    }

    fn file_stem(&self) -> &'static str {
        match self {
            ExportSpec::Sessions(_) => crate::kinds::sessions::FILE_STEM,
            ExportSpec::Leads(_) => crate::kinds::leads::FILE_STEM,
            ExportSpec::Chats(_) => crate::kinds::chats::FILE_STEM,
            ExportSpec::Conversations(_) => crate::kinds::conversations::FILE_STEM,
        }
    }

    /// `<stem>-YYYY-MM-DD.<ext>`: the document itself (inside a ZIP, the entry's name).
    pub fn document_name(&self) -> String {
        format!(
            "{}-{}.{}",
            self.file_stem(),
            self.as_of().format("%Y-%m-%d"),
            self.extension()
        )
    }

    /// The file delivered: the document, `.gz` after it, or a `.zip` holding it.
    pub fn file_name(&self) -> String {
        match self.options().compression {
            Compression::Gzip => format!("{}.gz", self.document_name()),
            Compression::Zip => format!("{}-{}.zip", self.file_stem(), self.as_of().format("%Y-%m-%d")),
            // A Parquet codec is inside the file.
            Compression::None | Compression::Snappy | Compression::Zstd => self.document_name(),
        }
    }

    pub fn content_type(&self) -> &'static str {
        match self.options().compression {
            Compression::Gzip => return "application/gzip",
            Compression::Zip => return "application/zip",
            Compression::None | Compression::Snappy | Compression::Zstd => {}
        }
        match self.extension() {
            "csv" => "text/csv; charset=utf-8",
            "json" => "application/json; charset=utf-8",
            "jsonl" => "application/x-ndjson; charset=utf-8",
            "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "parquet" => "application/vnd.apache.parquet",
            _ => "application/zip",
        }
    }

    /// What the file's format decides about its options.
    pub fn family(&self) -> FileFamily {
        match self {
            ExportSpec::Sessions(SessionsSpec { format, .. })
            | ExportSpec::Leads(LeadsSpec { format, .. })
            | ExportSpec::Conversations(ConversationsSpec { format, .. }) => format.family(),
            ExportSpec::Chats(s) => s.format.family(),
        }
    }

    /// Whether the file is UTF-8 text (answered inline without base64).
    pub fn is_text(&self) -> bool {
        self.options().compression == Compression::None && matches!(self.extension(), "csv" | "json" | "jsonl")
    }

    /// The audit record's partition: `client#<id>`, `company#<id>`, `companies` (a
    /// list), or `all` (digested past DynamoDB's 2,048 bytes, [`crate::keys::partition_key`]).
    pub fn audit_scope(&self) -> String {
        crate::keys::partition_key(self.audit_scope_unbounded())
    }

    fn audit_scope_unbounded(&self) -> String {
        match self {
            ExportSpec::Sessions(_) => "all".into(),
            ExportSpec::Leads(s) => match s.filter.companies.as_deref() {
                Some([one]) => format!("company#{one}"),
                Some(_) => "companies".into(),
                None => "all".into(),
            },
            ExportSpec::Chats(ChatsSpec { filter, .. })
            | ExportSpec::Conversations(ConversationsSpec { filter, .. }) => match &filter.client_id {
                Some(c) => format!("client#{c}"),
                None => "all".into(),
            },
        }
    }

    /// The tenant the chat rate limits count against: `client#<id>`, or `client#*`
    /// for an export of every client. `None` for kinds without tenant limits.
    pub fn rate_tenant(&self) -> Option<String> {
        match self {
            ExportSpec::Chats(ChatsSpec { filter, .. })
            | ExportSpec::Conversations(ConversationsSpec { filter, .. }) => {
                Some(format!("client#{}", filter.client_id.as_deref().unwrap_or("*")))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::DateRange;

    fn at() -> DateTime<Utc> {
        crate::timefmt::parse_rfc3339("2024-01-15T10:30:00Z").unwrap()
    }

    fn every_variant() -> Vec<ExportSpec> {
        let options = FileOptions {
            compression: Compression::Gzip,
            bom: true,
            time_zone: TimeZone::parse("Europe/Berlin").unwrap(),
            spreadsheet_safe: false,
        };
        let chat_filter = ChatFilter {
            client_id: Some("c1".into()),
            conversation_id: None,
            range: DateRange {
                from: Some(at()),
                to: None,
            },
            limit: 10,
        };
        vec![
            ExportSpec::Sessions(SessionsSpec {
                as_of: at(),
                format: TableFormat::Xlsx,
                options,
            }),
            ExportSpec::Leads(LeadsSpec {
                as_of: at(),
                format: TableFormat::Csv,
                options: FileOptions::default(),
                filter: LeadFilter {
                    companies: Some(vec!["a".into(), "b".into()]),
                    search: Some("x".into()),
                    ..Default::default()
                },
                columns: ["email", "lead_id"]
                    .into_iter()
                    .filter_map(LeadColumn::of_key)
                    .collect(),
            }),
            ExportSpec::Chats(ChatsSpec {
                as_of: at(),
                format: ChatFormat::Both,
                options,
                filter: chat_filter.clone(),
                chat: ChatOptions {
                    include_geo: true,
                    include_meta: false,
                    anonymize_ips: true,
                },
            }),
            ExportSpec::Conversations(ConversationsSpec {
                as_of: at(),
                format: TableFormat::Json,
                options: FileOptions {
                    compression: Compression::Zip,
                    ..FileOptions::default()
                },
                filter: chat_filter,
                anonymize_ips: false,
            }),
        ]
    }

    #[test]
    fn every_variant_round_trips_through_json() {
        for spec in every_variant() {
            let json = serde_json::to_string(&spec).unwrap();
            assert!(json.starts_with(&format!("{{\"kind\":\"{}\"", spec.kind())), "{json}");
            let back: ExportSpec = serde_json::from_str(&json).unwrap();
            assert_eq!(back, spec, "{json}");
        }
    }

    #[test]
    fn specs_refuse_unknown_fields_and_bad_zones() {
        let json = serde_json::to_value(&every_variant()[0]).unwrap();
        let mut extra = json.clone();
        extra["options"]["nope"] = true.into();
        assert!(serde_json::from_value::<ExportSpec>(extra).is_err());
        let mut zone = json;
        zone["options"]["time_zone"] = "Mars/Olympus".into();
        assert!(serde_json::from_value::<ExportSpec>(zone).is_err());
    }

    #[test]
    fn file_names_and_types_follow_format_and_compression() {
        let specs = every_variant();
        assert_eq!(specs[0].file_name(), "chat-sessions-export-2024-01-15.xlsx.gz");
        assert_eq!(specs[0].content_type(), "application/gzip");
        assert_eq!(specs[1].file_name(), "leads-export-2024-01-15.csv");
        assert!(specs[1].is_text());
        assert_eq!(specs[2].document_name(), "chat-export-2024-01-15.zip");
        assert_eq!(specs[3].file_name(), "conversations-export-2024-01-15.zip");
        assert_eq!(specs[3].document_name(), "conversations-export-2024-01-15.json");
        assert_eq!(specs[1].audit_scope(), "companies");
        assert_eq!(specs[2].rate_tenant().as_deref(), Some("client#c1"));
        assert!(TimeZone::parse("utc").unwrap().is_utc());
    }
}
