//! The chat export (seed 002): its formats, columns, rows, and the analytics
//! accumulated while the rows pass ([`ChatStats`]). The reads are in
//! [`crate::source`]; the documents (JSON with summary, Excel with a Summary sheet,
//! the ZIP of both) are in [`document`].

pub mod document;

use std::{
    collections::{HashMap, HashSet},
    hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher},
    net::IpAddr,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::DateRange;
use crate::{
    export::{Cell, Column, Row},
    model::{ChatMessage, Text, string_enum},
};

string_enum!(
    /// Formats of the chat export, named as the seed names them.
    ChatFormat { Json => "json", Excel => "excel", Both => "both", Csv => "csv", Jsonl => "jsonl", Parquet => "parquet" }
);

impl ChatFormat {
    /// The file's extension.
    pub fn extension(self) -> &'static str {
        match self {
            ChatFormat::Json => "json",
            ChatFormat::Excel => "xlsx",
            ChatFormat::Both => "zip",
            ChatFormat::Csv => "csv",
            ChatFormat::Jsonl => "jsonl",
            ChatFormat::Parquet => "parquet",
        }
    }

    pub fn family(self) -> crate::export::compress::FileFamily {
        use crate::export::compress::FileFamily;
        match self {
            ChatFormat::Csv => FileFamily::Csv,
            ChatFormat::Parquet => FileFamily::Parquet,
            ChatFormat::Json | ChatFormat::Excel | ChatFormat::Both | ChatFormat::Jsonl => FileFamily::Other,
        }
    }
}

/// The start of the file's name: `chat-export-YYYY-MM-DD.<ext>`.
pub const FILE_STEM: &str = "chat-export";

/// The names of the two documents in the ZIP of format `both`: the JSON and the
/// Excel document of the export made at `as_of`, as each would be named alone.
pub fn zip_entries(as_of: DateTime<Utc>) -> (String, String) {
    let day = as_of.format("%Y-%m-%d");
    (format!("{FILE_STEM}-{day}.json"), format!("{FILE_STEM}-{day}.xlsx"))
}

pub const BASE_COLUMNS: [Column; 12] = [
    Column::new("ID", "id").width(14.0),
    Column::new("From Name", "from_name").width(16.0),
    Column::new("Message", "message").width(50.0),
    Column::new("Reply", "reply").width(50.0),
    Column::new("Timestamp", "timestamp").time().width(20.0),
    Column::new("Conversation ID", "conversation_id").width(16.0),
    Column::new("Token Cost", "token_cost").unsigned(),
    Column::new("User IP", "user_ip").width(18.0),
    Column::new("User Agent", "user_agent").width(40.0),
    Column::new("Referrer", "referrer").width(30.0),
    Column::new("Session ID", "session_id").width(16.0),
    Column::new("Embed User", "is_embed_user").boolean(),
];

/// Nested under `geo_data` in JSON (the key's prefix names the object).
pub const GEO_COLUMNS: [Column; 11] = [
    Column::new("Country", "geo_data.country").width(16.0),
    Column::new("Country Code", "geo_data.country_code"),
    Column::new("Region", "geo_data.region"),
    Column::new("Region Name", "geo_data.region_name").width(16.0),
    Column::new("City", "geo_data.city").width(16.0),
    Column::new("Latitude", "geo_data.latitude").float(),
    Column::new("Longitude", "geo_data.longitude").float(),
    Column::new("Timezone", "geo_data.timezone").width(20.0),
    Column::new("ISP", "geo_data.isp").width(20.0),
    Column::new("Organization", "geo_data.organization").width(20.0),
    Column::new("IP Type", "geo_data.ip_type"),
];

/// Nested under `meta_data` in JSON.
pub const META_COLUMNS: [Column; 5] = [
    Column::new("Created At", "meta_data.created_at").time().width(20.0),
    Column::new("Client ID", "meta_data.client_id").width(16.0),
    Column::new("From User ID", "meta_data.from_user_id").width(26.0),
    Column::new("User Name", "meta_data.user_name").width(16.0),
    Column::new("User Email", "meta_data.user_email").width(24.0),
];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatOptions {
    pub include_geo: bool,
    pub include_meta: bool,
    /// Non-admin callers see IP addresses anonymised (decided when the spec is built
    /// from the caller, so a queued or replayed spec keeps it).
    pub anonymize_ips: bool,
}

pub fn columns(opts: ChatOptions) -> Vec<Column> {
    let mut cols = BASE_COLUMNS.to_vec();
    if opts.include_geo {
        cols.extend(GEO_COLUMNS);
    }
    if opts.include_meta {
        cols.extend(META_COLUMNS);
    }
    cols
}

/// IPv4: last octet zeroed (`203.0.113.77` -> `203.0.113.0`). IPv6: kept to its /48
/// (`2001:db8:1:2::5` -> `2001:db8:1::`). Anything that is not an IP address is
/// dropped rather than shown.
pub fn anonymize_ip(ip: &str) -> Option<Text> {
    use compact_str::ToCompactString;
    match ip.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(std::net::Ipv4Addr::new(a, b, c, 0).to_compact_string())
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0).to_compact_string())
        }
    }
}

pub(super) fn text(v: Option<Text>) -> Cell {
    v.map_or(Cell::Empty, Cell::Text)
}

/// The row of a message, moved out of it: no text is copied on the way to the file.
pub fn row(m: ChatMessage, opts: ChatOptions) -> Row {
    let ip = match (m.user_ip, opts.anonymize_ips) {
        (Some(ip), true) => text(anonymize_ip(&ip)),
        (ip, false) => text(ip),
        (None, true) => Cell::Empty,
    };
    let mut row = Vec::with_capacity(BASE_COLUMNS.len() + GEO_COLUMNS.len() + META_COLUMNS.len());
    row.extend([
        Cell::Text(m.id),
        Cell::Text(m.from_name),
        Cell::Text(m.message),
        text(m.reply),
        Cell::Time(m.timestamp),
        Cell::Text(m.conversation_id),
        Cell::Int(m.token_cost.into()),
        ip,
        text(m.user_agent),
        text(m.referrer),
        text(m.session_id),
        Cell::Bool(m.is_embed_user),
    ]);
    if opts.include_geo {
        let g = m.geo_data.unwrap_or_default();
        let float = |v: Option<f64>| v.map_or(Cell::Empty, Cell::Float);
        row.extend([
            text(g.country),
            text(g.country_code),
            text(g.region),
            text(g.region_name),
            text(g.city),
            float(g.latitude),
            float(g.longitude),
            text(g.timezone),
            text(g.isp),
            text(g.organization),
            text(g.ip_type),
        ]);
    }
    if opts.include_meta {
        row.extend([
            Cell::Time(m.created_at),
            Cell::Text(m.client_id),
            text(m.from_user_id),
            text(m.user_name),
            text(m.user_email),
        ]);
    }
    row
}

/// Who a message counts as for `unique_users`: its `from_user_id`, unless that is
/// absent or the all-zero id of anonymous embed users, then its `session_id`, then
/// its IP address.
pub fn user_key(m: &ChatMessage) -> Option<&str> {
    m.from_user_id
        .as_deref()
        .filter(|id| !id.is_empty() && !id.bytes().all(|b| b == b'0'))
        .or(m.session_id.as_deref().filter(|s| !s.is_empty()))
        .or(m.user_ip.as_deref().filter(|s| !s.is_empty()))
}

fn hash64(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// Hashes the sets' keys, which are [`hash64`] values already, to themselves: hashing
/// them a second time was a few tenths of a per cent of a chat export's CPU.
#[derive(Clone, Copy, Debug, Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }

    // Only `u64` keys use this hasher; any other input is still hashed, just slowly.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
}

type ByHash = BuildHasherDefault<Prehashed>;

/// Analytics accumulated while rows pass. Memory grows with the number of distinct
/// users and conversations (8-byte hashes), never with the number of messages.
#[derive(Debug, Default)]
pub struct ChatStats {
    pub total_messages: u64,
    /// A sum of `u64` token costs: it cannot wrap.
    pub total_tokens: u128,
    users: HashSet<u64, ByHash>,
    conversations: HashMap<u64, u64, ByHash>,
    countries: HashMap<String, u64>,
    isps: HashMap<String, u64>,
    ip_types: HashMap<String, u64>,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
}

pub type SharedStats = Arc<Mutex<ChatStats>>;

/// The stats, even if a panic elsewhere poisoned the lock: they are plain counters,
/// always in a consistent state between two `observe` calls.
pub fn stats_of(shared: &SharedStats) -> std::sync::MutexGuard<'_, ChatStats> {
    shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CountryCount {
    pub country: String,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IspCount {
    pub isp: String,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConversationStats {
    pub total_conversations: u64,
    pub avg_messages_per_conversation: f64,
    pub longest_conversation: u64,
}

/// The `summary` object of the JSON export (and the Excel "Summary" sheet).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub total_messages: u64,
    pub total_tokens: u128,
    pub unique_users: u64,
    pub date_range: String,
    pub top_countries: Vec<CountryCount>,
    pub top_isps: Vec<IspCount>,
    pub ip_type_breakdown: std::collections::BTreeMap<String, u64>,
    pub conversation_stats: ConversationStats,
}

/// How many entries `top_countries` and `top_isps` list.
pub const TOP_N: usize = 10;

/// The `n` largest counts, ties by name.
fn top(counts: &HashMap<String, u64>, n: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts.iter().map(|(k, c)| (k.clone(), *c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// `2024-01-01 to 2024-01-15`, or empty when there is nothing.
pub fn day_range(first: Option<DateTime<Utc>>, last: Option<DateTime<Utc>>) -> String {
    match (first, last) {
        (Some(a), Some(b)) => format!("{} to {}", a.format("%Y-%m-%d"), b.format("%Y-%m-%d")),
        (Some(a), None) => format!("{} to", a.format("%Y-%m-%d")),
        (None, Some(b)) => format!("to {}", b.format("%Y-%m-%d")),
        (None, None) => String::new(),
    }
}

impl ChatStats {
    pub fn observe(&mut self, m: &ChatMessage) {
        self.total_messages += 1;
        self.total_tokens += u128::from(m.token_cost);
        if let Some(user) = user_key(m) {
            self.users.insert(hash64(user));
        }
        *self.conversations.entry(hash64(&m.conversation_id)).or_default() += 1;
        if let Some(g) = &m.geo_data {
            for (map, value) in [
                (&mut self.countries, &g.country),
                (&mut self.isps, &g.isp),
                (&mut self.ip_types, &g.ip_type),
            ] {
                if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                    // Looked up by `&str`: a key is copied only the first time it is seen.
                    match map.get_mut(v) {
                        Some(count) => *count += 1,
                        None => {
                            map.insert(v.to_owned(), 1);
                        }
                    }
                }
            }
        }
        self.first = Some(self.first.map_or(m.timestamp, |f| f.min(m.timestamp)));
        self.last = Some(self.last.map_or(m.timestamp, |l| l.max(m.timestamp)));
    }

    pub fn summary(&self) -> Summary {
        let total_conversations = self.conversations.len() as u64;
        let avg = if total_conversations == 0 {
            0.0
        } else {
            (self.total_messages as f64 / total_conversations as f64 * 100.0).round() / 100.0
        };
        Summary {
            total_messages: self.total_messages,
            total_tokens: self.total_tokens,
            unique_users: self.users.len() as u64,
            date_range: day_range(self.first, self.last),
            top_countries: top(&self.countries, TOP_N)
                .into_iter()
                .map(|(country, count)| CountryCount { country, count })
                .collect(),
            top_isps: top(&self.isps, TOP_N)
                .into_iter()
                .map(|(isp, count)| IspCount { isp, count })
                .collect(),
            ip_type_breakdown: self.ip_types.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            conversation_stats: ConversationStats {
                total_conversations,
                avg_messages_per_conversation: avg,
                longest_conversation: self.conversations.values().copied().max().unwrap_or(0),
            },
        }
    }
}

/// Which chat messages to export.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatFilter {
    /// `None`: every client (admins only).
    pub client_id: Option<String>,
    pub conversation_id: Option<String>,
    pub range: DateRange,
    pub limit: u32,
}

impl ChatFilter {
    pub fn matches(&self, m: &ChatMessage) -> bool {
        self.client_id.as_ref().is_none_or(|c| *c == m.client_id)
            && self.conversation_id.as_ref().is_none_or(|c| *c == m.conversation_id)
            && self.range.contains(&m.timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_are_anonymised() {
        assert_eq!(anonymize_ip("203.0.113.77").as_deref(), Some("203.0.113.0"));
        assert_eq!(anonymize_ip("2001:db8:1:2:3:4:5:6").as_deref(), Some("2001:db8:1::"));
        assert_eq!(anonymize_ip("::1").as_deref(), Some("::"));
        assert_eq!(anonymize_ip("not an ip"), None);
    }
}
