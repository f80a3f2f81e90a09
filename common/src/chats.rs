//! Rows and analytics of the chat export (seed 002).
//!
//! The source reads chat messages with the narrowest Query the request allows
//! (docs/data-model.md), applies the scope and filters, feeds every exported message
//! to [`ChatStats`] (the summary is accumulated while rows pass) and stops at `limit`.

use std::{
    collections::{HashMap, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    net::IpAddr,
    sync::{Arc, Mutex},
};

use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use serde::Serialize;

use crate::{
    AppContext,
    chat_document::{ChatDocumentInfo, ChatJsonEncoder, ChatXlsxEncoder, ZipEncoder},
    error::Error,
    export::{Cell, Column, EncodeOptions, Encoder, ExportJob, Format, Row, RowBatches},
    leads::DateRange,
    model::{ChatMessage, string_enum},
    schema::{CHATS_BY_CONVERSATION, CHATS_BY_TIME},
    store::{ItemPages, KeyCondition, decode, merge_sorted, query_pages, shards},
    timefmt,
};

string_enum!(
    /// Formats of the chat export, named as the seed names them.
    ChatFormat { Json => "json", Excel => "excel", Both => "both", Csv => "csv" }
);

impl ChatFormat {
    pub fn file_format(self) -> Format {
        match self {
            ChatFormat::Json => Format::Json,
            ChatFormat::Excel => Format::Xlsx,
            ChatFormat::Both => Format::Zip,
            ChatFormat::Csv => Format::Csv,
        }
    }
}

/// A chat export request, parsed and scoped to what the caller may see.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatSpec {
    pub format: ChatFormat,
    pub filter: ChatFilter,
    pub options: ChatOptions,
}

pub const BASE_COLUMNS: [Column; 12] = [
    Column::new("ID", "id").width(14.0),
    Column::new("From Name", "from_name").width(16.0),
    Column::new("Message", "message").width(50.0),
    Column::new("Reply", "reply").width(50.0),
    Column::new("Timestamp", "timestamp").width(20.0),
    Column::new("Conversation ID", "conversation_id").width(16.0),
    Column::new("Token Cost", "token_cost"),
    Column::new("User IP", "user_ip").width(18.0),
    Column::new("User Agent", "user_agent").width(40.0),
    Column::new("Referrer", "referrer").width(30.0),
    Column::new("Session ID", "session_id").width(16.0),
    Column::new("Embed User", "is_embed_user"),
];

/// Nested under `geo_data` in JSON (the key's prefix names the object).
pub const GEO_COLUMNS: [Column; 11] = [
    Column::new("Country", "geo_data.country").width(16.0),
    Column::new("Country Code", "geo_data.country_code"),
    Column::new("Region", "geo_data.region"),
    Column::new("Region Name", "geo_data.region_name").width(16.0),
    Column::new("City", "geo_data.city").width(16.0),
    Column::new("Latitude", "geo_data.latitude"),
    Column::new("Longitude", "geo_data.longitude"),
    Column::new("Timezone", "geo_data.timezone").width(20.0),
    Column::new("ISP", "geo_data.isp").width(20.0),
    Column::new("Organization", "geo_data.organization").width(20.0),
    Column::new("IP Type", "geo_data.ip_type"),
];

/// Nested under `meta_data` in JSON.
pub const META_COLUMNS: [Column; 5] = [
    Column::new("Created At", "meta_data.created_at").width(20.0),
    Column::new("Client ID", "meta_data.client_id").width(16.0),
    Column::new("From User ID", "meta_data.from_user_id").width(26.0),
    Column::new("User Name", "meta_data.user_name").width(16.0),
    Column::new("User Email", "meta_data.user_email").width(24.0),
];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChatOptions {
    pub include_geo: bool,
    pub include_meta: bool,
    /// Non-admin callers see IP addresses anonymised.
    #[serde(skip)]
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
pub fn anonymize_ip(ip: &str) -> Option<String> {
    match ip.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(std::net::Ipv4Addr::new(a, b, c, 0).to_string())
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0).to_string())
        }
    }
}

fn text(v: &Option<String>) -> Cell {
    v.clone().map_or(Cell::Empty, Cell::Text)
}

pub fn row(m: &ChatMessage, opts: ChatOptions) -> Row {
    let ip = match (&m.user_ip, opts.anonymize_ips) {
        (Some(ip), true) => anonymize_ip(ip).map_or(Cell::Empty, Cell::Text),
        (ip, false) => text(ip),
        (None, true) => Cell::Empty,
    };
    let mut row = vec![
        Cell::Text(m.id.clone()),
        Cell::Text(m.from_name.clone()),
        Cell::Text(m.message.clone()),
        text(&m.reply),
        Cell::Time(m.timestamp),
        Cell::Text(m.conversation_id.clone()),
        Cell::Int(m.token_cost.into()),
        ip,
        text(&m.user_agent),
        text(&m.referrer),
        text(&m.session_id),
        Cell::Bool(m.is_embed_user),
    ];
    if opts.include_geo {
        let g = m.geo_data.clone().unwrap_or_default();
        let float = |v: Option<f64>| v.map_or(Cell::Empty, Cell::Float);
        row.extend([
            text(&g.country),
            text(&g.country_code),
            text(&g.region),
            text(&g.region_name),
            text(&g.city),
            float(g.latitude),
            float(g.longitude),
            text(&g.timezone),
            text(&g.isp),
            text(&g.organization),
            text(&g.ip_type),
        ]);
    }
    if opts.include_meta {
        row.extend([
            Cell::Time(m.created_at),
            Cell::Text(m.client_id.clone()),
            text(&m.from_user_id),
            text(&m.user_name),
            text(&m.user_email),
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

/// Analytics accumulated while rows pass. Memory grows with the number of distinct
/// users and conversations (8-byte hashes), never with the number of messages.
#[derive(Debug, Default)]
pub struct ChatStats {
    pub total_messages: u64,
    /// A sum of `u64` token costs: it cannot wrap.
    pub total_tokens: u128,
    users: HashSet<u64>,
    conversations: HashMap<u64, u64>,
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
                if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
                    *map.entry(v.clone()).or_default() += 1;
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
#[derive(Clone, Debug, Default, PartialEq)]
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

    /// The read covering every message the filter can match, in time order. Its
    /// cost follows the messages in the range, never the length of the range.
    pub fn plan(&self) -> ChatRead {
        if let Some(conv) = &self.conversation_id {
            return ChatRead::Conversation(conv.clone());
        }
        match &self.client_id {
            Some(client) => ChatRead::Client(client.clone()),
            None => ChatRead::AllClients,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatRead {
    /// Query the table: `client_id = :k [AND ts_id BETWEEN ...]`.
    Client(String),
    /// Query `by_conversation`: `conversation_id = :k [AND ts_id BETWEEN ...]`.
    Conversation(String),
    /// Query `by_time` once per shard (`shard = :s [AND ts_id BETWEEN ...]`), merged
    /// by `ts_id`: every client, in time order.
    AllClients,
}

/// Items per page when the export is short: no read fetches far more than `limit`.
fn page_limit(limit: u32) -> Option<i32> {
    (limit < 1000).then_some(limit.max(1) as i32)
}

fn key_condition<'a>(
    index: Option<&'a str>,
    attr: &'a str,
    value: String,
    range: &DateRange,
    limit: u32,
) -> KeyCondition<'a> {
    KeyCondition {
        index,
        partition_attr: attr,
        partition: value,
        sort_attr: "ts_id",
        from: range.from.map(|f| timefmt::format(&f)),
        // `~` sorts after `#`, so `<to>~` covers every id at the last instant.
        to: range.to.map(|t| format!("{}~", timefmt::format(&t))),
        page_limit: page_limit(limit),
    }
}

fn pages(client: &Client, table: &str, filter: &ChatFilter) -> ItemPages {
    let (range, limit) = (&filter.range, filter.limit);
    match filter.plan() {
        ChatRead::Client(c) => query_pages(client, table, key_condition(None, "client_id", c, range, limit)),
        ChatRead::Conversation(c) => query_pages(
            client,
            table,
            key_condition(Some(CHATS_BY_CONVERSATION), "conversation_id", c, range, limit),
        ),
        ChatRead::AllClients => {
            let reads = shards()
                .map(|shard| {
                    query_pages(
                        client,
                        table,
                        key_condition(Some(CHATS_BY_TIME), "shard", shard, range, limit),
                    )
                })
                .collect();
            merge_sorted(reads, "ts_id", 1000)
        }
    }
}

/// One batch per page of matching messages, at most `filter.limit` rows in all (no
/// page is read once the limit is reached); every exported message is also observed
/// by `stats`.
pub fn rows(client: Client, table: String, filter: ChatFilter, opts: ChatOptions, stats: SharedStats) -> RowBatches {
    let item_pages = pages(&client, &table, &filter);
    let remaining = u64::from(filter.limit);
    stream::try_unfold((item_pages, remaining), move |(mut pages, mut remaining)| {
        let filter = filter.clone();
        let stats = stats.clone();
        async move {
            if remaining == 0 {
                return Ok(None);
            }
            let Some(page) = pages.try_next().await? else {
                return Ok(None);
            };
            let mut batch = Vec::new();
            for item in page {
                if remaining == 0 {
                    break;
                }
                let m: ChatMessage = decode(item, &["client_id", "ts_id"])?;
                if filter.matches(&m) {
                    stats_of(&stats).observe(&m);
                    batch.push(row(&m, opts));
                    remaining -= 1;
                }
            }
            Ok(Some((batch, (pages, remaining))))
        }
    })
    .boxed()
}

/// The export job of a spec: source, columns and the document encoder. `now` is
/// the export date the documents state.
pub fn job(ctx: &AppContext, spec: &ChatSpec, now: DateTime<Utc>) -> Result<ExportJob, Error> {
    let stats = SharedStats::default();
    let columns = columns(spec.options);
    let options = EncodeOptions::default();
    let info = ChatDocumentInfo {
        export_date: now,
        requested: spec.filter.range.clone(),
        client_id: spec.filter.client_id.clone(),
        format: spec.format.as_str().to_string(),
        include_geo: spec.options.include_geo,
        include_meta: spec.options.include_meta,
    };
    let day = now.format("%Y-%m-%d");
    let json = || ChatJsonEncoder::new(&columns, stats.clone(), info.clone());
    let xlsx = || ChatXlsxEncoder::new(&columns, options, stats.clone(), info.clone());
    let encoder: Option<Box<dyn Encoder>> = match spec.format {
        ChatFormat::Json => Some(Box::new(json())),
        ChatFormat::Excel => Some(Box::new(xlsx()?)),
        ChatFormat::Both => Some(Box::new(ZipEncoder::new(
            json(),
            xlsx()?,
            &format!("chat-export-{day}.json"),
            &format!("chat-export-{day}.xlsx"),
        )?)),
        ChatFormat::Csv => None,
    };
    Ok(ExportJob {
        kind: "chats",
        file_stem: "chat-export",
        sheet: "Chat Messages",
        format: spec.format.file_format(),
        columns: columns.clone(),
        options,
        rows: rows(
            ctx.aws.dynamodb.clone(),
            ctx.config.tables.chat_messages.clone(),
            spec.filter.clone(),
            spec.options,
            stats.clone(),
        ),
        encoder,
    })
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

    #[test]
    fn plans_follow_the_narrowest_key() {
        let mut f = ChatFilter {
            range: DateRange {
                from: timefmt::parse_rfc3339("0001-01-01T00:00:00Z"),
                to: None,
            },
            ..Default::default()
        };
        assert_eq!(
            f.plan(),
            ChatRead::AllClients,
            "any span: one Query per shard, never per day"
        );
        f.client_id = Some("c".into());
        assert_eq!(f.plan(), ChatRead::Client("c".into()));
        f.conversation_id = Some("v".into());
        assert_eq!(f.plan(), ChatRead::Conversation("v".into()));
    }

    #[test]
    fn an_open_end_is_no_end() {
        let k = key_condition(
            None,
            "client_id",
            "c".into(),
            &DateRange {
                from: timefmt::parse_rfc3339("2024-01-01T00:00:00Z"),
                to: None,
            },
            10,
        );
        assert_eq!((k.from.as_deref(), k.to), (Some("2024-01-01T00:00:00.000Z"), None));
        assert_eq!(k.page_limit, Some(10));
        assert_eq!(page_limit(1_000_000), None);
    }
}
