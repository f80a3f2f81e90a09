//! Typed items of every table. Items are read with `serde_dynamo`; an item that does
//! not fit its struct fails the export with [`crate::Error::MalformedItem`] naming its key.
//! Derived key attributes (`msg_key`, `ts_id`, `created_key`, `shard`) are added by [`crate::keys`] (through [`crate::load`]) on
//! write and ignored on read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::timefmt::{serde_ts, serde_ts_opt};

/// Text that is usually short (ids, names, places): kept inline up to 24 bytes, so
/// reading a record allocates only for its long texts.
pub type Text = compact_str::CompactString;

/// A chat session (seed 000). Table `SESSIONS_TABLE`, key `session_id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub session_id: Text,
    pub user_id: Text,
    #[serde(with = "serde_ts")]
    pub started_at: DateTime<Utc>,
}

/// One message of a chat session (seed 000). Table `SESSION_MESSAGES_TABLE`,
/// key `session_id` + `msg_key` (`<timestamp>#<message_id>`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionMessage {
    pub session_id: Text,
    pub message_id: Text,
    pub content: Text,
    /// `user`, `bot` or `agent` in the sample data; exported as stored.
    pub sender: Text,
    #[serde(with = "serde_ts")]
    pub timestamp: DateTime<Utc>,
}

pub(crate) use crate::values::enums::string_enum;

string_enum!(
    /// Lead confidence.
    Confidence { High => "high", Medium => "medium", Low => "low" }
);
string_enum!(
    /// Lead interest level.
    InterestLevel { Hot => "hot", High => "high", Medium => "medium", Low => "low" }
);
string_enum!(
    /// Lead category.
    LeadCategory {
        BuyingIntent => "buying_intent",
        PricingInquiry => "pricing_inquiry",
        DemoRequest => "demo_request",
        GeneralInquiry => "general_inquiry",
    }
);
string_enum!(
    /// Lead pipeline status.
    LeadStatus {
        New => "new",
        Contacted => "contacted",
        Qualified => "qualified",
        Converted => "converted",
        Lost => "lost",
    }
);

/// A sales lead (seed 001). Table `LEADS_TABLE`, key `lead_id`; GSIs
/// `by_company_created` (`company_id`, `created_at`), `by_chatbot_created`
/// (`chatbot_id`, `created_at`) and `by_created` (`shard`, `created_key`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lead {
    pub lead_id: Text,
    pub company_id: Text,
    pub company_name: Text,
    pub chatbot_id: Text,
    pub chatbot_name: Text,
    #[serde(default)]
    pub session_id: Option<Text>,
    #[serde(default)]
    pub email: Option<Text>,
    #[serde(default)]
    pub phone: Option<Text>,
    #[serde(default)]
    pub lead_score: Option<u32>,
    #[serde(default)]
    pub interest_level: Option<InterestLevel>,
    pub confidence: Confidence,
    pub category: LeadCategory,
    #[serde(default)]
    pub primary_language: Option<Text>,
    #[serde(default)]
    pub detected_languages: Vec<String>,
    #[serde(default)]
    pub ai_legitimate: Option<bool>,
    #[serde(default)]
    pub ai_confidence_score: Option<f64>,
    #[serde(default)]
    pub ai_verification_reasons: Vec<String>,
    pub status: LeadStatus,
    #[serde(with = "serde_ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "serde_ts")]
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub user_agent: Option<Text>,
    #[serde(default)]
    pub ip_address: Option<Text>,
    #[serde(default)]
    pub location_country: Option<Text>,
    #[serde(default)]
    pub location_city: Option<Text>,
    #[serde(default)]
    pub message_count: Option<u32>,
    /// Seconds.
    #[serde(default)]
    pub session_duration: Option<u64>,
    #[serde(default, with = "serde_ts_opt")]
    pub first_interest_detected: Option<DateTime<Utc>>,
    #[serde(default, with = "serde_ts_opt")]
    pub last_interest_detected: Option<DateTime<Utc>>,
    #[serde(default)]
    pub conversation_summary: Option<Text>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub notes_count: Option<u32>,
    #[serde(default, with = "serde_ts_opt")]
    pub converted_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub conversion_value: Option<f64>,
    #[serde(default)]
    pub conversion_source: Option<Text>,
}

/// Geolocation of a chat message's sender (seed 002).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct GeoData {
    #[serde(default)]
    pub country: Option<Text>,
    #[serde(default)]
    pub country_code: Option<Text>,
    #[serde(default)]
    pub region: Option<Text>,
    #[serde(default)]
    pub region_name: Option<Text>,
    #[serde(default)]
    pub city: Option<Text>,
    #[serde(default)]
    pub latitude: Option<f64>,
    #[serde(default)]
    pub longitude: Option<f64>,
    #[serde(default)]
    pub timezone: Option<Text>,
    #[serde(default)]
    pub isp: Option<Text>,
    #[serde(default)]
    pub organization: Option<Text>,
    /// `Residential`, `Mobile`, `Datacenter`, `VPN`, ...
    #[serde(default)]
    pub ip_type: Option<Text>,
}

/// One chat message with its reply (seed 002). Table `CHAT_MESSAGES_TABLE`, key
/// `client_id` + `ts_id` (`<timestamp>#<id>`); GSIs `by_conversation`
/// (`conversation_id`, `ts_id`) and `by_time` (`shard`, `ts_id`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub id: Text,
    pub client_id: Text,
    pub conversation_id: Text,
    #[serde(default)]
    pub session_id: Option<Text>,
    pub from_name: Text,
    #[serde(default)]
    pub from_user_id: Option<Text>,
    #[serde(default)]
    pub user_name: Option<Text>,
    #[serde(default)]
    pub user_email: Option<Text>,
    pub message: Text,
    #[serde(default)]
    pub reply: Option<Text>,
    #[serde(with = "serde_ts")]
    pub timestamp: DateTime<Utc>,
    #[serde(with = "serde_ts")]
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub token_cost: u64,
    #[serde(default)]
    pub user_ip: Option<Text>,
    #[serde(default)]
    pub user_agent: Option<Text>,
    #[serde(default)]
    pub referrer: Option<Text>,
    #[serde(default)]
    pub is_embed_user: bool,
    #[serde(default)]
    pub geo_data: Option<GeoData>,
}
