//! Rows of the leads export (seed 001): every column the seed lists, filters, and
//! the DynamoDB reads that serve them (docs/data-model.md, "Which read serves which filter").

use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};

use crate::{
    AppContext,
    export::{Cell, Column, EncodeOptions, ExportJob, Format, Row, RowBatches},
    model::{Confidence, Lead, LeadCategory, LeadStatus},
    schema::{LEADS_BY_CHATBOT, LEADS_BY_COMPANY, LEADS_BY_CREATED},
    store::{ItemPages, KeyCondition, decode, merge_sorted, query_pages, shards},
    timefmt,
};

/// A leads request, parsed and scoped.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadsSpec {
    pub filter: LeadFilter,
    pub format: Format,
    /// Indexes into [`COLUMNS`], in output order.
    pub columns: Vec<usize>,
    pub options: EncodeOptions,
}

/// The export job of a spec.
pub fn job(ctx: &AppContext, spec: LeadsSpec) -> ExportJob {
    ExportJob {
        kind: "leads",
        file_stem: "leads-export",
        sheet: "Leads",
        format: spec.format,
        columns: spec.columns.iter().filter_map(|&i| COLUMNS.get(i).copied()).collect(),
        options: spec.options,
        rows: rows(
            ctx.aws.dynamodb.clone(),
            ctx.config.tables.leads.clone(),
            spec.filter,
            spec.columns,
        ),
        encoder: None,
    }
}

/// Every column, with the seed's header names, in the seed's order.
pub const COLUMNS: [Column; 32] = [
    Column::new("Lead ID", "lead_id").width(14.0),
    Column::new("Chatbot Name", "chatbot_name").width(18.0),
    Column::new("Company Name", "company_name").width(22.0),
    Column::new("Session ID", "session_id").width(16.0),
    Column::new("Email", "email").width(30.0),
    Column::new("Phone", "phone").width(18.0),
    Column::new("Lead Score", "lead_score"),
    Column::new("Interest Level", "interest_level"),
    Column::new("Confidence", "confidence"),
    Column::new("Category", "category").width(18.0),
    Column::new("Primary Language", "primary_language"),
    Column::new("Detected Languages", "detected_languages").list_sep(";"),
    Column::new("AI Legitimate", "ai_legitimate"),
    Column::new("AI Confidence Score", "ai_confidence_score"),
    Column::new("AI Verification Reasons", "ai_verification_reasons")
        .list_sep(";")
        .width(40.0),
    Column::new("Status", "status"),
    Column::new("Created At", "created_at").width(20.0),
    Column::new("Updated At", "updated_at").width(20.0),
    Column::new("User Agent", "user_agent").width(40.0),
    Column::new("IP Address", "ip_address").width(18.0),
    Column::new("Location Country", "location_country"),
    Column::new("Location City", "location_city"),
    Column::new("Message Count", "message_count"),
    Column::new("Session Duration", "session_duration"),
    Column::new("First Interest Detected", "first_interest_detected").width(22.0),
    Column::new("Last Interest Detected", "last_interest_detected").width(22.0),
    Column::new("Conversation Summary", "conversation_summary").width(50.0),
    Column::new("Tags", "tags").list_sep(",").width(24.0),
    Column::new("Notes Count", "notes_count"),
    Column::new("Converted At", "converted_at").width(20.0),
    Column::new("Conversion Value", "conversion_value"),
    Column::new("Conversion Source", "conversion_source"),
];

fn text(v: &Option<String>) -> Cell {
    v.clone().map_or(Cell::Empty, Cell::Text)
}

fn int(v: Option<impl Into<i128>>) -> Cell {
    v.map_or(Cell::Empty, |n| Cell::Int(n.into()))
}

fn time(v: &Option<DateTime<Utc>>) -> Cell {
    v.map_or(Cell::Empty, Cell::Time)
}

fn float(v: Option<f64>) -> Cell {
    v.map_or(Cell::Empty, Cell::Float)
}

/// The cell of column `index` (into [`COLUMNS`]) for a lead.
pub fn cell(lead: &Lead, index: usize) -> Cell {
    match index {
        0 => Cell::Text(lead.lead_id.clone()),
        1 => Cell::Text(lead.chatbot_name.clone()),
        2 => Cell::Text(lead.company_name.clone()),
        3 => text(&lead.session_id),
        4 => text(&lead.email),
        5 => text(&lead.phone),
        6 => int(lead.lead_score),
        7 => lead
            .interest_level
            .map_or(Cell::Empty, |v| Cell::Text(v.as_str().into())),
        8 => Cell::Text(lead.confidence.as_str().into()),
        9 => Cell::Text(lead.category.as_str().into()),
        10 => text(&lead.primary_language),
        11 => Cell::List(lead.detected_languages.clone()),
        12 => lead.ai_legitimate.map_or(Cell::Empty, Cell::Bool),
        13 => float(lead.ai_confidence_score),
        14 => Cell::List(lead.ai_verification_reasons.clone()),
        15 => Cell::Text(lead.status.as_str().into()),
        16 => Cell::Time(lead.created_at),
        17 => Cell::Time(lead.updated_at),
        18 => text(&lead.user_agent),
        19 => text(&lead.ip_address),
        20 => text(&lead.location_country),
        21 => text(&lead.location_city),
        22 => int(lead.message_count),
        23 => int(lead.session_duration),
        24 => time(&lead.first_interest_detected),
        25 => time(&lead.last_interest_detected),
        26 => text(&lead.conversation_summary),
        27 => Cell::List(lead.tags.clone()),
        28 => int(lead.notes_count),
        29 => time(&lead.converted_at),
        30 => float(lead.conversion_value),
        31 => text(&lead.conversion_source),
        // Column lists are parsed against COLUMNS, so no other index is ever asked for.
        _ => Cell::Empty,
    }
}

/// A closed date range on `created_at`; either end may be open.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DateRange {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl DateRange {
    pub fn contains(&self, t: &DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| *t >= f) && self.to.is_none_or(|to| *t <= to)
    }
}

/// Which leads to export: the tenant scope plus every filter, combined with AND.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LeadFilter {
    /// `None`: every company (admins only). `Some`: exactly these companies.
    pub companies: Option<Vec<String>>,
    pub chatbot_id: Option<String>,
    pub confidence: Option<Confidence>,
    pub category: Option<LeadCategory>,
    /// Matches the primary language or any detected language.
    pub language: Option<String>,
    pub status: Option<LeadStatus>,
    pub created: DateRange,
    /// Lower-cased; matched case-insensitively as a substring of [`search_text`].
    pub search: Option<String>,
}

/// Does `haystack` contain `needle_lower` (already lower-cased), ignoring case?
fn contains_ci(haystack: &str, needle_lower: &str) -> bool {
    haystack.to_lowercase().contains(needle_lower)
}

/// The fields `search` looks in: lead id, email, phone, chatbot name, company name,
/// conversation summary and tags.
pub fn search_matches(lead: &Lead, needle_lower: &str) -> bool {
    [&lead.email, &lead.phone, &lead.conversation_summary]
        .into_iter()
        .flatten()
        .chain([&lead.lead_id, &lead.chatbot_name, &lead.company_name])
        .chain(lead.tags.iter())
        .any(|field| contains_ci(field, needle_lower))
}

impl LeadFilter {
    pub fn matches(&self, lead: &Lead) -> bool {
        self.companies.as_ref().is_none_or(|c| c.contains(&lead.company_id))
            && self.chatbot_id.as_ref().is_none_or(|b| *b == lead.chatbot_id)
            && self.confidence.is_none_or(|c| c == lead.confidence)
            && self.category.is_none_or(|c| c == lead.category)
            && self.status.is_none_or(|s| s == lead.status)
            && self
                .language
                .as_ref()
                .is_none_or(|l| lead.primary_language.as_ref() == Some(l) || lead.detected_languages.contains(l))
            && self.created.contains(&lead.created_at)
            && self.search.as_ref().is_none_or(|s| search_matches(lead, s))
    }

    /// The reads that cover every lead this filter can match, narrowest first. Each
    /// one's cost follows the leads in the range, not the table.
    pub fn plan(&self) -> Vec<LeadRead> {
        match (&self.chatbot_id, &self.companies) {
            (Some(bot), _) => vec![LeadRead::Chatbot(bot.clone())],
            (None, Some(companies)) => companies.iter().cloned().map(LeadRead::Company).collect(),
            (None, None) => vec![LeadRead::AllCompanies],
        }
    }
}

/// One DynamoDB read of the leads table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeadRead {
    /// Query `by_company_created`: `company_id = :k [AND created_at BETWEEN ...]`.
    Company(String),
    /// Query `by_chatbot_created`: `chatbot_id = :k [AND created_at BETWEEN ...]`.
    Chatbot(String),
    /// Query `by_created` once per shard (`shard = :s [AND created_key BETWEEN ...]`),
    /// merged by `created_key`: every company, in `Created At` order (admins).
    AllCompanies,
}

fn pages(client: &Client, table: &str, read: &LeadRead, range: &DateRange) -> ItemPages {
    let from = range.from.map(|f| timefmt::format(&f));
    let (index, partition_attr, partition) = match read {
        LeadRead::Company(c) => (LEADS_BY_COMPANY, "company_id", c.clone()),
        LeadRead::Chatbot(b) => (LEADS_BY_CHATBOT, "chatbot_id", b.clone()),
        LeadRead::AllCompanies => {
            let reads = shards()
                .map(|shard| {
                    query_pages(
                        client,
                        table,
                        KeyCondition {
                            index: Some(LEADS_BY_CREATED),
                            partition_attr: "shard",
                            partition: shard,
                            sort_attr: "created_key",
                            from: from.clone(),
                            // `~` sorts after `#`: every lead of the last instant.
                            to: range.to.map(|t| format!("{}~", timefmt::format(&t))),
                            page_limit: None,
                        },
                    )
                })
                .collect();
            return merge_sorted(reads, "created_key", 1000);
        }
    };
    query_pages(
        client,
        table,
        KeyCondition {
            index: Some(index),
            partition_attr,
            partition,
            sort_attr: "created_at",
            from,
            to: range.to.map(|t| timefmt::format(&t)),
            page_limit: None,
        },
    )
}

/// One batch per DynamoDB page: the page's leads that match, as rows of the chosen
/// columns (indexes into [`COLUMNS`], in output order).
pub fn rows(client: Client, table: String, filter: LeadFilter, columns: Vec<usize>) -> RowBatches {
    let reads = filter.plan();
    let range = filter.created.clone();
    stream::iter(reads)
        .flat_map(move |read| pages(&client, &table, &read, &range))
        .map(move |page| {
            let mut batch: Vec<Row> = Vec::new();
            for item in page? {
                let lead: Lead = decode(item, &["lead_id"])?;
                if filter.matches(&lead) {
                    batch.push(columns.iter().map(|&i| cell(&lead, i)).collect());
                }
            }
            Ok(batch)
        })
        .boxed()
}
