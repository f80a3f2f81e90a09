//! Deterministic, realistic synthetic data for all three exports, hard cases
//! included: commas, quotes, CR/LF, unicode and emoji, formula-like text, very long
//! messages, sessions without messages, absent optional fields, several tenants.
//!
//! The generator is a SplitMix64 stream written out here rather than a `rand` RNG,
//! because the same seed must give the same data across crate upgrades.

use chrono::{DateTime, Duration, TimeZone, Utc};
use compact_str::format_compact;

use crate::{
    load::Record,
    model::{ChatMessage, Confidence, GeoData, InterestLevel, Lead, LeadCategory, LeadStatus, Session, SessionMessage},
};

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single().expect("valid date")
}

/// Message texts, hard cases first.
pub const HARD_TEXTS: &[&str] = &[
    "Hello, I need help with my order, please",
    "She said \"it's broken\" twice",
    "line one\nline two\r\nline three",
    "Ünïcödé ñ 日本語 العربية 😀🚀👍🏽",
    "=SUM(A1:A9)",
    "+1 (555) 010-0000",
    "-2+3",
    "@mention me",
    "\tleading tab",
    "   spaces around   ",
    "trailing comma,",
    "\"",
    "-42",
    "",
];

pub const PLAIN_TEXTS: &[&str] = &[
    "How can I contact support?",
    "What are your pricing plans?",
    "Can I get a demo next week?",
    "Thanks, that solved it.",
    "Do you ship to Canada?",
    "I want to upgrade my plan",
    "Is there an API?",
    "My invoice looks wrong",
];

pub fn message_text(rng: &mut Rng) -> String {
    match rng.below(100) {
        0..=24 => rng.pick(HARD_TEXTS).to_string(),
        25..=26 => "long message 📜 ".repeat(600 + rng.below(400) as usize),
        _ => rng.pick(PLAIN_TEXTS).to_string(),
    }
}

/// Sessions and their messages. About one session in eight has no messages.
pub fn sessions(seed: u64, count: usize) -> impl Iterator<Item = Record> {
    let mut rng = Rng::new(seed);
    (0..count).flat_map(move |i| {
        let session = Session {
            session_id: format_compact!("sess-{i:06}"),
            user_id: format_compact!("user-{:04}", rng.below(500)),
            started_at: epoch() + Duration::minutes(i as i64 * 7) + Duration::milliseconds(rng.below(60_000) as i64),
        };
        let n = if rng.chance(12) { 0 } else { 1 + rng.below(8) as usize };
        let mut at = session.started_at;
        let mut records = vec![Record::Session(session.clone())];
        for j in 0..n {
            at += Duration::milliseconds(500 + rng.below(90_000) as i64);
            records.push(Record::Message(SessionMessage {
                session_id: session.session_id.clone(),
                message_id: format_compact!("msg-{i:06}-{j:02}"),
                content: message_text(&mut rng).into(),
                sender: if j % 2 == 0 { "user" } else { "bot" }.into(),
                timestamp: at,
            }));
        }
        records
    })
}

pub const COMPANIES: &[(&str, &str)] = &[
    ("comp-acme", "Acme, Inc."),
    ("comp-globex", "Globex \"Global\" Corp"),
    ("comp-umbrella", "Umbrella Ünited 🌂"),
    ("comp-0042", "0042 Holdings"),
];

const LANGS: &[&str] = &["en", "es", "fr", "hi_transliterated"];
const COUNTRIES: &[(&str, &str, &[&str])] = &[
    ("United States", "US", &["San Francisco", "New York"]),
    ("Canada", "CA", &["Toronto", "Montréal"]),
    ("United Kingdom", "GB", &["London"]),
    ("India", "IN", &["Mumbai", "Bengaluru"]),
    ("Spain", "ES", &["Madrid"]),
];
const ISPS: &[&str] = &["Comcast Cable", "Verizon", "AT&T", "BT", "Jio", "Movistar"];
const IP_TYPES: &[&str] = &["Residential", "Mobile", "Datacenter", "VPN"];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "curl/8.5.0",
];

fn ip(rng: &mut Rng) -> String {
    if rng.chance(20) {
        format!(
            "2001:db8:{:x}:{:x}::{:x}",
            rng.below(0xffff),
            rng.below(0xffff),
            rng.below(0xffff)
        )
    } else {
        format!("203.0.{}.{}", rng.below(256), 1 + rng.below(254))
    }
}

/// Leads spread over [`COMPANIES`], two chatbots each, every enum value used.
pub fn leads(seed: u64, count: usize) -> impl Iterator<Item = Record> {
    let mut rng = Rng::new(seed.wrapping_add(1));
    (0..count).map(move |i| {
        let (company_id, company_name) = COMPANIES[i % COMPANIES.len()];
        let bot = rng.below(2);
        let created_at = epoch() + Duration::minutes(i as i64 * 53) + Duration::milliseconds(rng.below(1000) as i64);
        let status = *rng.pick(LeadStatus::ALL);
        let converted = status == LeadStatus::Converted;
        let (country, _, cities) = *rng.pick(COUNTRIES);
        let primary = rng.pick(LANGS).to_string();
        let mut detected = vec![primary.clone()];
        if rng.chance(40) {
            let other = rng.pick(LANGS).to_string();
            if other != primary {
                detected.push(other);
            }
        }
        let sparse = rng.chance(15);
        Record::Lead(Lead {
            lead_id: format_compact!("lead-{i:06}"),
            company_id: company_id.into(),
            company_name: company_name.into(),
            chatbot_id: format_compact!("{company_id}-bot-{bot}"),
            chatbot_name: format_compact!("{} Bot {}", company_name.split(' ').next().unwrap_or("Chat"), bot + 1),
            session_id: (!sparse).then(|| format_compact!("sess-{:06}", rng.below(100_000))),
            email: (!sparse).then(|| format_compact!("lead{i}+test@example.com")),
            phone: (!sparse).then(|| format_compact!("+44 020 7946 {:04}", rng.below(10_000))),
            lead_score: Some(rng.below(101) as u32),
            interest_level: (!sparse).then(|| *rng.pick(InterestLevel::ALL)),
            confidence: *rng.pick(Confidence::ALL),
            category: *rng.pick(LeadCategory::ALL),
            primary_language: Some(primary.as_str().into()),
            detected_languages: detected,
            ai_legitimate: (!sparse).then(|| rng.chance(80)),
            ai_confidence_score: (!sparse).then(|| rng.below(10_001) as f64 / 100.0),
            ai_verification_reasons: if sparse {
                vec![]
            } else {
                vec![
                    "valid email domain".into(),
                    "consistent intent; repeated questions".into(),
                ]
            },
            status,
            created_at,
            updated_at: created_at + Duration::hours(rng.below(72) as i64),
            user_agent: (!sparse).then(|| (*rng.pick(AGENTS)).into()),
            ip_address: (!sparse).then(|| ip(&mut rng).into()),
            location_country: (!sparse).then(|| country.into()),
            location_city: (!sparse).then(|| (*rng.pick(cities)).into()),
            message_count: Some(1 + rng.below(40) as u32),
            session_duration: Some(rng.below(3600)),
            first_interest_detected: (!sparse).then(|| created_at + Duration::seconds(5)),
            last_interest_detected: (!sparse).then(|| created_at + Duration::seconds(95)),
            conversation_summary: (!sparse).then(|| message_text(&mut rng).into()),
            tags: if sparse {
                vec![]
            } else {
                vec!["vip".into(), "follow-up, urgent".into()]
            },
            notes_count: Some(rng.below(5) as u32),
            converted_at: converted.then(|| created_at + Duration::days(3)),
            conversion_value: converted.then(|| (rng.below(1_000_000) as f64) / 100.0),
            conversion_source: converted.then(|| "chatbot".into()),
        })
    })
}

pub const CLIENTS: &[&str] = &["client-alpha", "client-beta", "client-gamma"];

/// Chat messages with replies, spread over [`CLIENTS`] and conversations of 1-12 messages.
pub fn chat_messages(seed: u64, count: usize) -> impl Iterator<Item = Record> {
    let mut rng = Rng::new(seed.wrapping_add(2));
    let mut conversation = 0usize;
    let mut left_in_conversation = 0u64;
    let mut client = CLIENTS[0];
    (0..count).map(move |i| {
        if left_in_conversation == 0 {
            conversation += 1;
            left_in_conversation = 1 + rng.below(12);
            client = *rng.pick(CLIENTS);
        }
        left_in_conversation -= 1;
        let timestamp = epoch() + Duration::minutes(i as i64 * 3) + Duration::milliseconds(rng.below(1000) as i64);
        let (country, code, cities) = *rng.pick(COUNTRIES);
        let embed = rng.chance(70);
        Record::ChatMessage(ChatMessage {
            id: format_compact!("chat-{i:07}"),
            client_id: client.into(),
            conversation_id: format_compact!("conv-{conversation:06}"),
            session_id: Some(format_compact!("sess-{:06}", conversation)),
            from_name: if embed {
                "Embed User".into()
            } else {
                format_compact!("User {}", rng.below(100))
            },
            from_user_id: Some(if embed {
                "000000000000000000000000".into()
            } else {
                format_compact!("{:024x}", rng.next_u64())
            }),
            user_name: (!embed).then(|| "Jane O'Neil".into()),
            user_email: (!embed).then(|| "jane@example.com".into()),
            message: message_text(&mut rng).into(),
            reply: rng.chance(90).then(|| (*rng.pick(PLAIN_TEXTS)).into()),
            timestamp,
            created_at: timestamp,
            token_cost: 20 + rng.below(300),
            user_ip: Some(ip(&mut rng).into()),
            user_agent: Some((*rng.pick(AGENTS)).into()),
            referrer: rng.chance(60).then(|| "https://example.com/pricing?ref=chat".into()),
            is_embed_user: embed,
            geo_data: rng.chance(90).then(|| GeoData {
                country: Some(country.into()),
                country_code: Some(code.into()),
                region: Some("R1".into()),
                region_name: Some("Region One".into()),
                city: Some((*rng.pick(cities)).into()),
                latitude: Some(37.7749),
                longitude: Some(-122.4194),
                timezone: Some("America/Los_Angeles".into()),
                isp: Some((*rng.pick(ISPS)).into()),
                organization: Some("Example Org".into()),
                ip_type: Some((*rng.pick(IP_TYPES)).into()),
            }),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_data() {
        let a: Vec<_> = sessions(7, 50)
            .chain(leads(7, 20))
            .chain(chat_messages(7, 30))
            .collect();
        let b: Vec<_> = sessions(7, 50)
            .chain(leads(7, 20))
            .chain(chat_messages(7, 30))
            .collect();
        assert_eq!(a, b);
        let c: Vec<_> = sessions(8, 50).collect();
        assert_ne!(a[..c.len().min(a.len())], c[..]);
    }

    #[test]
    fn includes_sessions_without_messages() {
        let records: Vec<_> = sessions(1, 200).collect();
        let empty = records
            .windows(2)
            .filter(|w| matches!((&w[0], &w[1]), (Record::Session(_), Record::Session(_))))
            .count();
        assert!(empty > 0);
    }
}
