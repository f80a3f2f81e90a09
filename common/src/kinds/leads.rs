//! The leads export (seed 001): every column the seed lists, in the seed's order, and
//! the filters. The reads that serve them are in [`crate::source`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::DateRange;
use crate::{
    export::{Cell, Column},
    model::{Confidence, Lead, LeadCategory, LeadStatus, Text},
};

/// The start of the file's name: `leads-export-YYYY-MM-DD.<ext>`.
pub const FILE_STEM: &str = "leads-export";

/// The Excel document's sheet.
pub const SHEET: &str = "Leads";

/// Every column, with the seed's header names, in the seed's order.
pub const COLUMNS: [Column; 32] = [
    Column::new("Lead ID", "lead_id").width(14.0),
    Column::new("Chatbot Name", "chatbot_name").width(18.0),
    Column::new("Company Name", "company_name").width(22.0),
    Column::new("Session ID", "session_id").width(16.0),
    Column::new("Email", "email").width(30.0),
    Column::new("Phone", "phone").width(18.0),
    Column::new("Lead Score", "lead_score").unsigned(),
    Column::new("Interest Level", "interest_level"),
    Column::new("Confidence", "confidence"),
    Column::new("Category", "category").width(18.0),
    Column::new("Primary Language", "primary_language"),
    Column::new("Detected Languages", "detected_languages").list_sep(";"),
    Column::new("AI Legitimate", "ai_legitimate").boolean(),
    Column::new("AI Confidence Score", "ai_confidence_score").float(),
    Column::new("AI Verification Reasons", "ai_verification_reasons")
        .list_sep(";")
        .width(40.0),
    Column::new("Status", "status"),
    Column::new("Created At", "created_at").time().width(20.0),
    Column::new("Updated At", "updated_at").time().width(20.0),
    Column::new("User Agent", "user_agent").width(40.0),
    Column::new("IP Address", "ip_address").width(18.0),
    Column::new("Location Country", "location_country"),
    Column::new("Location City", "location_city"),
    Column::new("Message Count", "message_count").unsigned(),
    Column::new("Session Duration", "session_duration").unsigned(),
    Column::new("First Interest Detected", "first_interest_detected")
        .time()
        .width(22.0),
    Column::new("Last Interest Detected", "last_interest_detected")
        .time()
        .width(22.0),
    Column::new("Conversation Summary", "conversation_summary").width(50.0),
    Column::new("Tags", "tags").list_sep(",").width(24.0),
    Column::new("Notes Count", "notes_count").unsigned(),
    Column::new("Converted At", "converted_at").time().width(20.0),
    Column::new("Conversion Value", "conversion_value").float(),
    Column::new("Conversion Source", "conversion_source"),
];

fn text(v: &mut Option<Text>) -> Cell {
    v.take().map_or(Cell::Empty, Cell::Text)
}

fn owned(v: &mut Text) -> Cell {
    Cell::Text(std::mem::take(v))
}

fn list(v: &mut Vec<String>) -> Cell {
    Cell::List(std::mem::take(v))
}

fn int(v: Option<impl Into<i128>>) -> Cell {
    v.map_or(Cell::Empty, |n| Cell::Int(n.into()))
}

fn time(v: Option<DateTime<Utc>>) -> Cell {
    v.map_or(Cell::Empty, Cell::Time)
}

fn float(v: Option<f64>) -> Cell {
    v.map_or(Cell::Empty, Cell::Float)
}

/// One of the leads export's [`COLUMNS`]: made only from a known name, so it always
/// names a column. A spec lists its columns as these (stored as their keys), so no
/// column name is parsed twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeadColumn(usize);

impl LeadColumn {
    /// Every column, in the seed's order.
    pub fn all() -> impl Iterator<Item = LeadColumn> {
        (0..COLUMNS.len()).map(LeadColumn)
    }

    /// The column whose JSON key is `key` (`lead_id`).
    pub fn of_key(key: &str) -> Option<Self> {
        COLUMNS.iter().position(|c| c.key == key).map(LeadColumn)
    }

    /// The column a request names: its header in any case (`Lead ID`, `lead id`) or
    /// its JSON key.
    pub fn named(name: &str) -> Option<Self> {
        COLUMNS
            .iter()
            .position(|c| c.header.eq_ignore_ascii_case(name) || c.key == name)
            .map(LeadColumn)
    }

    pub fn column(self) -> Column {
        COLUMNS[self.0]
    }

    pub fn key(self) -> &'static str {
        COLUMNS[self.0].key
    }

    pub fn header(self) -> &'static str {
        COLUMNS[self.0].header
    }

    /// This column's cell, moved out of the lead: no text is copied on the way to
    /// the file. Each column is taken once per lead (a spec names a column at most
    /// once); a second take of the same text column would be empty.
    pub fn take(self, lead: &mut Lead) -> Cell {
        take_cell(lead, self.0)
    }
}

impl Serialize for LeadColumn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.key())
    }
}

impl<'de> Deserialize<'de> for LeadColumn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let key = String::deserialize(d)?;
        LeadColumn::of_key(&key).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown leads column '{}'",
                crate::values::text::sanitize(&key)
            ))
        })
    }
}

fn take_cell(lead: &mut Lead, index: usize) -> Cell {
    match index {
        0 => owned(&mut lead.lead_id),
        1 => owned(&mut lead.chatbot_name),
        2 => owned(&mut lead.company_name),
        3 => text(&mut lead.session_id),
        4 => text(&mut lead.email),
        5 => text(&mut lead.phone),
        6 => int(lead.lead_score),
        7 => lead
            .interest_level
            .map_or(Cell::Empty, |v| Cell::Text(v.as_str().into())),
        8 => Cell::Text(lead.confidence.as_str().into()),
        9 => Cell::Text(lead.category.as_str().into()),
        10 => text(&mut lead.primary_language),
        11 => list(&mut lead.detected_languages),
        12 => lead.ai_legitimate.map_or(Cell::Empty, Cell::Bool),
        13 => float(lead.ai_confidence_score),
        14 => list(&mut lead.ai_verification_reasons),
        15 => Cell::Text(lead.status.as_str().into()),
        16 => Cell::Time(lead.created_at),
        17 => Cell::Time(lead.updated_at),
        18 => text(&mut lead.user_agent),
        19 => text(&mut lead.ip_address),
        20 => text(&mut lead.location_country),
        21 => text(&mut lead.location_city),
        22 => int(lead.message_count),
        23 => int(lead.session_duration),
        24 => time(lead.first_interest_detected),
        25 => time(lead.last_interest_detected),
        26 => text(&mut lead.conversation_summary),
        27 => list(&mut lead.tags),
        28 => int(lead.notes_count),
        29 => time(lead.converted_at),
        30 => float(lead.conversion_value),
        31 => text(&mut lead.conversion_source),
        // A LeadColumn is only made from an index of COLUMNS.
        _ => Cell::Empty,
    }
}

/// Which leads to export: the tenant scope plus every filter, combined with AND.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// Lower-cased; matched case-insensitively as a substring of the fields [`search_matches`] looks in.
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
        .map(|field| field.as_str())
        .chain(lead.tags.iter().map(String::as_str))
        .any(|field| contains_ci(field, needle_lower))
}

impl LeadFilter {
    pub fn matches(&self, lead: &Lead) -> bool {
        self.companies
            .as_ref()
            .is_none_or(|c| c.iter().any(|c| *c == lead.company_id))
            && self.chatbot_id.as_ref().is_none_or(|b| *b == lead.chatbot_id)
            && self.confidence.is_none_or(|c| c == lead.confidence)
            && self.category.is_none_or(|c| c == lead.category)
            && self.status.is_none_or(|s| s == lead.status)
            && self.language.as_ref().is_none_or(|l| {
                lead.primary_language.as_deref() == Some(l.as_str()) || lead.detected_languages.contains(l)
            })
            && self.created.contains(&lead.created_at)
            && self.search.as_ref().is_none_or(|s| search_matches(lead, s))
    }
}
