//! Boundary values of every typed field, loaded through `exportctl load`'s parser and
//! compared, cell by cell, with every format each export writes: no value may
//! change on its way to a file (numbers, text, time). Expectations are built here
//! from the loaded records, independently of the export code.

use std::io::{Cursor, Read};

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use chrono::{DateTime, SecondsFormat, Utc};
use common::{
    auth::Role,
    load::Record,
    model::{
        ChatMessage, Confidence, GeoData, InterestLevel, Lead, LeadCategory, LeadStatus, Session, SessionMessage, Text,
    },
};
use integration_tests::*;
use serde_json::Value;

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn t(v: &DateTime<Utc>) -> String {
    v.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A value as loaded, and how each format must show it.
#[derive(Clone, Debug)]
enum V {
    Absent,
    Text(String),
    Int(i128),
    Float(f64),
    Bool(bool),
    Time(DateTime<Utc>),
    List(Vec<String>, &'static str),
}

fn text(v: &Option<Text>) -> V {
    v.as_ref().map_or(V::Absent, |v| V::Text(v.to_string()))
}

fn int<T: Into<i128>>(v: Option<T>) -> V {
    v.map_or(V::Absent, |n| V::Int(n.into()))
}

fn float(v: Option<f64>) -> V {
    v.map_or(V::Absent, V::Float)
}

fn time(v: Option<DateTime<Utc>>) -> V {
    v.map_or(V::Absent, V::Time)
}

/// The CSV cell (spreadsheet guard off: machine consumers need the exact text).
fn csv_cell(v: &V) -> String {
    match v {
        V::Absent => String::new(),
        V::Text(s) => s.clone(),
        V::Int(i) => i.to_string(),
        V::Float(f) => f.to_string(),
        V::Bool(b) => if *b { "Yes" } else { "No" }.into(),
        V::Time(x) => t(x),
        V::List(items, sep) => items.join(sep),
    }
}

fn check_json(v: &V, got: &Value, what: &str) {
    match v {
        V::Absent => assert!(got.is_null(), "{what}: {got}"),
        V::Text(s) => assert_eq!(got.as_str(), Some(s.as_str()), "{what}"),
        // Integers are compared as written: JSON holds any integer exactly.
        V::Int(i) => assert_eq!(got.to_string(), i.to_string(), "{what}"),
        V::Float(f) => assert_eq!(got.as_f64().map(f64::to_bits), Some(f.to_bits()), "{what}: {got}"),
        V::Bool(b) => assert_eq!(got.as_bool(), Some(*b), "{what}"),
        V::Time(x) => assert_eq!(got.as_str(), Some(t(x).as_str()), "{what}"),
        V::List(items, _) => assert_eq!(got, &serde_json::json!(items), "{what}"),
    }
}

/// Excel: numbers it holds exactly are numbers, others exact text; times in its
/// calendar are date-times to the millisecond, others RFC 3339 text; text is cut at
/// 32,767 UTF-16 units.
/// A value as tests/readers/check.py expects it (pyarrow and DuckDB read the file).
fn reader_value(v: &V) -> Value {
    match v {
        V::Absent => serde_json::json!(["null"]),
        V::Text(s) => serde_json::json!(["text", s]),
        V::Int(i) => serde_json::json!(["int", i.to_string()]),
        V::Float(f) => serde_json::json!(["float", f]),
        V::Bool(b) => serde_json::json!(["bool", b]),
        V::Time(x) => serde_json::json!(["time", t(x), x.timestamp_millis()]),
        V::List(items, _) => serde_json::json!(["list", items]),
    }
}

/// What check.py compares a file with: every row (its keys and typed values), found by `id`.
fn reader_rows<'a>(id: &str, rows: impl IntoIterator<Item = Vec<(&'a str, V)>>) -> Value {
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|row| Value::Object(row.iter().map(|(k, v)| (k.to_string(), reader_value(v))).collect()))
        .collect();
    serde_json::json!({"id": id, "rows": rows})
}

fn check_excel(v: &V, got: &Data, what: &str) {
    let excel_text = |s: &str| -> String {
        let mut units = 0;
        s.chars()
            .take_while(|c| {
                units += c.len_utf16();
                units <= 32_767
            })
            .collect()
    };
    match (v, got) {
        (V::Absent, Data::Empty) => {}
        (V::Text(s), Data::String(g)) => assert_eq!(*g, excel_text(s), "{what}"),
        (V::Text(s), Data::Empty) if s.is_empty() => {}
        (V::Int(i), Data::Float(f)) if i.unsigned_abs() < 10u128.pow(15) => assert_eq!(*f, *i as f64, "{what}"),
        (V::Int(i), Data::String(g)) if i.unsigned_abs() >= 10u128.pow(15) => assert_eq!(*g, i.to_string(), "{what}"),
        (V::Float(f), Data::Float(g)) => assert_eq!(g.to_bits(), f.to_bits(), "{what}"),
        (V::Float(f), Data::String(g)) => assert_eq!(*g, f.to_string(), "{what}: more than 15 digits"),
        (V::Bool(b), Data::String(g)) => assert_eq!(g, if *b { "Yes" } else { "No" }, "{what}"),
        (V::Time(x), Data::DateTime(d)) => {
            let got = d.as_datetime().unwrap_or_else(|| panic!("{what}: {d:?}")).and_utc();
            assert_eq!(t(&got), t(x), "{what}");
        }
        (V::Time(x), Data::String(g)) => {
            assert!(
                !(1900..=9999).contains(&chrono::Datelike::year(x)),
                "{what}: a date Excel holds"
            );
            assert_eq!(*g, t(x), "{what}");
        }
        (V::List(items, sep), Data::String(g)) => assert_eq!(*g, excel_text(&items.join(sep)), "{what}"),
        (V::List(items, _), Data::Empty) if items.iter().all(String::is_empty) && items.len() <= 1 => {}
        (v, got) => panic!("{what}: loaded {v:?}, Excel has {got:?}"),
    }
}

fn sheet(bytes: &[u8], name: &str) -> Vec<Vec<Data>> {
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.to_vec())).expect("a valid workbook");
    wb.worksheet_range(name)
        .expect("sheet")
        .rows()
        .map(|r| r.to_vec())
        .collect()
}

/// Loads records the way `exportctl load` does: JSON Lines, parsed and checked.
async fn load(stack: &TestStack, records: &[Record]) {
    let text: String = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    let loaded =
        exportctl::load::parse(text.as_bytes(), "boundary.jsonl").expect("the loader accepts every boundary value");
    assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);
    stack.load(loaded.records).await;
}

/// Text that stresses every format: quotes, separators, line ends, control
/// characters, Excel's own escapes, formula-like text, emoji.
const NASTY: &str = "=1+2, \"q\";\r\n\t\u{1}\u{1f}\u{7f} _x0041_ _x005F_ 😀 \u{fffd}";

fn lead(id: &str) -> Lead {
    Lead {
        lead_id: id.into(),
        company_id: "comp-edge".into(),
        company_name: NASTY.into(),
        chatbot_id: "bot-edge".into(),
        chatbot_name: "".into(),
        session_id: None,
        email: None,
        phone: None,
        lead_score: None,
        interest_level: None,
        confidence: Confidence::Medium,
        category: LeadCategory::PricingInquiry,
        primary_language: None,
        detected_languages: vec![],
        ai_legitimate: None,
        ai_confidence_score: None,
        ai_verification_reasons: vec![],
        status: LeadStatus::Qualified,
        created_at: ts("2024-01-01T00:00:00Z"),
        updated_at: ts("2024-01-01T00:00:00Z"),
        user_agent: None,
        ip_address: None,
        location_country: None,
        location_city: None,
        message_count: None,
        session_duration: None,
        first_interest_detected: None,
        last_interest_detected: None,
        conversation_summary: None,
        tags: vec![],
        notes_count: None,
        converted_at: None,
        conversion_value: None,
        conversion_source: None,
    }
}

fn boundary_leads() -> Vec<Lead> {
    let max = Lead {
        session_id: Some("".into()),
        email: Some(NASTY.into()),
        phone: Some("000123456789012345678".into()),
        lead_score: Some(u32::MAX),
        interest_level: Some(InterestLevel::Low),
        primary_language: Some("hi_transliterated".into()),
        detected_languages: vec!["".into(), "en".into()],
        ai_legitimate: Some(true),
        ai_confidence_score: Some(0.1 + 0.2),
        ai_verification_reasons: vec![NASTY.into()],
        created_at: ts("0000-01-01T00:00:00Z"),
        updated_at: ts("9999-12-31T23:59:59.999Z"),
        user_agent: Some("x".repeat(40_000).into()),
        ip_address: Some("::".into()),
        location_country: Some("Ünïcode 🚀".into()),
        location_city: Some("".into()),
        message_count: Some(u32::MAX),
        session_duration: Some(u64::MAX),
        first_interest_detected: Some(ts("1899-12-31T23:59:59.999Z")),
        last_interest_detected: Some(ts("1900-01-01T00:00:00Z")),
        conversation_summary: Some("😀".repeat(20_000).into()),
        tags: vec!["a,b".into(), "".into(), "=x".into()],
        notes_count: Some(0),
        converted_at: Some(ts("1900-03-01T00:00:00.001Z")),
        conversion_value: Some(9.99e125),
        conversion_source: Some("-42".into()),
        ..lead("edge-max")
    };
    let wrap = Lead {
        lead_score: Some(0),
        ai_confidence_score: Some(0.0),
        session_duration: Some(1 << 63),
        message_count: Some(0),
        conversion_value: Some(-1e-130),
        created_at: ts("2024-06-30T12:00:00.123+05:30"),
        ..lead("edge-wrap")
    };
    let digits15 = Lead {
        session_duration: Some(999_999_999_999_999),
        conversion_value: Some(123_456_789_012_345.0),
        ai_confidence_score: Some(1_234_567_890_123_456.0),
        ..lead("edge-15")
    };
    let digits16 = Lead {
        session_duration: Some(1_000_000_000_000_000),
        conversion_value: Some(-0.000_123),
        ..lead("edge-16")
    };
    // Close to DynamoDB's 400 KB item limit.
    let big = Lead {
        conversation_summary: Some("é".repeat(195_000).into()),
        ..lead("edge-big")
    };
    vec![max, wrap, digits15, digits16, big, lead("edge-bare")]
}

/// Every column of the leads export, in the seed's order.
fn lead_values(l: &Lead) -> Vec<V> {
    vec![
        V::Text(l.lead_id.to_string()),
        V::Text(l.chatbot_name.to_string()),
        V::Text(l.company_name.to_string()),
        text(&l.session_id),
        text(&l.email),
        text(&l.phone),
        int(l.lead_score),
        l.interest_level.map_or(V::Absent, |v| V::Text(v.as_str().into())),
        V::Text(l.confidence.as_str().into()),
        V::Text(l.category.as_str().into()),
        text(&l.primary_language),
        V::List(l.detected_languages.clone(), ";"),
        l.ai_legitimate.map_or(V::Absent, V::Bool),
        float(l.ai_confidence_score),
        V::List(l.ai_verification_reasons.clone(), ";"),
        V::Text(l.status.as_str().into()),
        V::Time(l.created_at),
        V::Time(l.updated_at),
        text(&l.user_agent),
        text(&l.ip_address),
        text(&l.location_country),
        text(&l.location_city),
        int(l.message_count),
        int(l.session_duration),
        time(l.first_interest_detected),
        time(l.last_interest_detected),
        text(&l.conversation_summary),
        V::List(l.tags.clone(), ","),
        int(l.notes_count),
        time(l.converted_at),
        float(l.conversion_value),
        text(&l.conversion_source),
    ]
}

const LEAD_KEYS: [&str; 32] = [
    "lead_id",
    "chatbot_name",
    "company_name",
    "session_id",
    "email",
    "phone",
    "lead_score",
    "interest_level",
    "confidence",
    "category",
    "primary_language",
    "detected_languages",
    "ai_legitimate",
    "ai_confidence_score",
    "ai_verification_reasons",
    "status",
    "created_at",
    "updated_at",
    "user_agent",
    "ip_address",
    "location_country",
    "location_city",
    "message_count",
    "session_duration",
    "first_interest_detected",
    "last_interest_detected",
    "conversation_summary",
    "tags",
    "notes_count",
    "converted_at",
    "conversion_value",
    "conversion_source",
];

/// The leads file's Parquet schema, as docs/api.md ("Parquet") documents it.
const LEAD_PARQUET: [(&str, &str); 32] = {
    use parquet_type::*;
    [
        ("lead_id", TEXT),
        ("chatbot_name", TEXT),
        ("company_name", TEXT),
        ("session_id", TEXT),
        ("email", TEXT),
        ("phone", TEXT),
        ("lead_score", UNSIGNED),
        ("interest_level", TEXT),
        ("confidence", TEXT),
        ("category", TEXT),
        ("primary_language", TEXT),
        ("detected_languages", LIST),
        ("ai_legitimate", BOOL),
        ("ai_confidence_score", FLOAT),
        ("ai_verification_reasons", LIST),
        ("status", TEXT),
        ("created_at", TIME),
        ("updated_at", TIME),
        ("user_agent", TEXT),
        ("ip_address", TEXT),
        ("location_country", TEXT),
        ("location_city", TEXT),
        ("message_count", UNSIGNED),
        ("session_duration", UNSIGNED),
        ("first_interest_detected", TIME),
        ("last_interest_detected", TIME),
        ("conversation_summary", TEXT),
        ("tags", LIST),
        ("notes_count", UNSIGNED),
        ("converted_at", TIME),
        ("conversion_value", FLOAT),
        ("conversion_source", TEXT),
    ]
};

/// The chat messages file's Parquet schema with geo and meta data.
const CHAT_PARQUET: [(&str, &str); 28] = {
    use parquet_type::*;
    [
        ("id", TEXT),
        ("from_name", TEXT),
        ("message", TEXT),
        ("reply", TEXT),
        ("timestamp", TIME),
        ("conversation_id", TEXT),
        ("token_cost", UNSIGNED),
        ("user_ip", TEXT),
        ("user_agent", TEXT),
        ("referrer", TEXT),
        ("session_id", TEXT),
        ("is_embed_user", BOOL),
        ("geo_data.country", TEXT),
        ("geo_data.country_code", TEXT),
        ("geo_data.region", TEXT),
        ("geo_data.region_name", TEXT),
        ("geo_data.city", TEXT),
        ("geo_data.latitude", FLOAT),
        ("geo_data.longitude", FLOAT),
        ("geo_data.timezone", TEXT),
        ("geo_data.isp", TEXT),
        ("geo_data.organization", TEXT),
        ("geo_data.ip_type", TEXT),
        ("meta_data.created_at", TIME),
        ("meta_data.client_id", TEXT),
        ("meta_data.from_user_id", TEXT),
        ("meta_data.user_name", TEXT),
        ("meta_data.user_email", TEXT),
    ]
};

/// The conversations file's Parquet schema.
const CONVERSATION_PARQUET: [(&str, &str); 11] = {
    use parquet_type::*;
    [
        ("client_id", TEXT),
        ("conversation_id", TEXT),
        ("session_id", TEXT),
        ("first_message_at", TIME),
        ("last_message_at", TIME),
        ("message_count", UNSIGNED),
        ("total_tokens", WIDE_INTEGER),
        ("user_id", TEXT),
        ("user_name", TEXT),
        ("country", TEXT),
        ("user_ip", TEXT),
    ]
};

/// The leads in export order (Created At, then id) with their expected values.
fn expected_leads(leads: &[Lead]) -> Vec<(String, Vec<V>)> {
    let mut sorted: Vec<&Lead> = leads.iter().collect();
    sorted.sort_by(|a, b| (a.created_at, &a.lead_id).cmp(&(b.created_at, &b.lead_id)));
    sorted
        .into_iter()
        .map(|l| (l.lead_id.to_string(), lead_values(l)))
        .collect()
}

async fn fetch(stack: &TestStack, token: &str, path_and_query: &str) -> Vec<u8> {
    let auth = format!("Bearer {token}");
    let resp = exportctl::serve::route(&stack.ctx, request("GET", path_and_query, &[("authorization", &auth)])).await;
    assert_eq!(
        resp.status(),
        200,
        "{path_and_query}: {}",
        String::from_utf8_lossy(&body_bytes(&resp))
    );
    body_bytes(&resp)
}

#[tokio::test]
async fn every_lead_value_survives_every_format() {
    let stack = TestStack::new("rt-leads").await;
    let leads = boundary_leads();
    load(&stack, &leads.iter().cloned().map(Record::Lead).collect::<Vec<_>>()).await;
    let admin = stack.admin_token();
    // Through the company index and through the all-company time index; Parquet with
    // its default codec (zstd) in one and snappy in the other.
    for (scope, codec) in [("companyId=comp-edge&", ""), ("", "&compression=snappy")] {
        let want = expected_leads(&leads);
        let path = leads_export::PATH;

        let csv = fetch(&stack, &admin, &format!("{path}?{scope}spreadsheet_safe=false")).await;
        let (_, rows) = parse_csv(&csv);
        let mut rows_sorted = rows.clone();
        if !scope.is_empty() {
            // A company's leads come in Created At order too (ties by id here).
            rows_sorted.sort_by_key(|r| want.iter().position(|(id, _)| *id == r[0]));
        }
        assert_eq!(rows_sorted.len(), want.len());
        for (row, (id, values)) in rows_sorted.iter().zip(&want) {
            for (i, v) in values.iter().enumerate() {
                assert_eq!(row[i], csv_cell(v), "CSV {id} {}", LEAD_KEYS[i]);
            }
        }

        let json: Value =
            serde_json::from_slice(&fetch(&stack, &admin, &format!("{path}?{scope}format=json")).await).unwrap();
        for (id, values) in &want {
            let obj = json
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["lead_id"] == id.as_str())
                .unwrap();
            for (i, v) in values.iter().enumerate() {
                check_json(v, &obj[LEAD_KEYS[i]], &format!("JSON {id} {}", LEAD_KEYS[i]));
            }
        }

        // JSON Lines: the same objects in the same order, one per line; and the
        // readers no one here wrote see every value as loaded.
        let raw = fetch(&stack, &admin, &format!("{path}?{scope}format=jsonl")).await;
        assert_eq!(
            json_lines(&raw),
            *json.as_array().unwrap(),
            "JSON Lines rows are the JSON rows"
        );
        let expected = reader_rows(
            "lead_id",
            want.iter()
                .map(|(_, values)| LEAD_KEYS.iter().copied().zip(values.iter().cloned()).collect()),
        );
        readers_agree(&raw, "jsonl", &expected, &format!("leads JSON Lines ({scope})"));

        // Parquet: typed columns, read back by the same readers, with its schema.
        let raw = fetch(&stack, &admin, &format!("{path}?{scope}format=parquet{codec}")).await;
        assert_parquet(&raw, "leads Parquet");
        let expected = with_parquet_schema(expected, &LEAD_PARQUET);
        readers_agree(&raw, "parquet", &expected, &format!("leads Parquet ({scope}{codec})"));

        let xlsx = fetch(&stack, &admin, &format!("{path}?{scope}format=xlsx")).await;
        let rows = sheet(&xlsx, "Leads");
        assert_eq!(rows.len() - 1, want.len());
        for (id, values) in &want {
            let row = rows[1..].iter().find(|r| r[0] == Data::String(id.clone())).unwrap();
            for (i, v) in values.iter().enumerate() {
                check_excel(v, &row[i], &format!("Excel {id} {}", LEAD_KEYS[i]));
            }
        }
    }
}

fn chat(id: &str) -> ChatMessage {
    ChatMessage {
        id: id.into(),
        client_id: "client-edge".into(),
        conversation_id: "conv-edge".into(),
        session_id: None,
        from_name: "".into(),
        from_user_id: None,
        user_name: None,
        user_email: None,
        message: "".into(),
        reply: None,
        timestamp: ts("2024-01-01T00:00:00Z"),
        created_at: ts("2024-01-01T00:00:00Z"),
        token_cost: 0,
        user_ip: None,
        user_agent: None,
        referrer: None,
        is_embed_user: false,
        geo_data: None,
    }
}

fn boundary_chats() -> Vec<ChatMessage> {
    vec![
        ChatMessage {
            from_name: NASTY.into(),
            from_user_id: Some("000000".into()),
            user_name: Some("".into()),
            user_email: Some(NASTY.into()),
            message: "m".repeat(40_000).into(),
            reply: Some(NASTY.into()),
            timestamp: ts("0001-01-01T00:00:00Z"),
            created_at: ts("9999-12-31T23:59:59.999Z"),
            token_cost: u64::MAX,
            user_ip: Some("203.0.113.77".into()),
            user_agent: Some("".into()),
            referrer: Some("https://example.com/?a=1&b=<2>".into()),
            is_embed_user: true,
            geo_data: Some(GeoData {
                country: Some("".into()),
                country_code: Some("US".into()),
                latitude: Some(-90.0),
                longitude: Some(0.1 + 0.2),
                isp: Some(NASTY.into()),
                ip_type: Some("Residential".into()),
                ..Default::default()
            }),
            ..chat("edge-1")
        },
        ChatMessage {
            timestamp: ts("9999-12-31T23:59:59.999Z"),
            created_at: ts("1899-12-31T23:59:59.999Z"),
            token_cost: 1 << 63,
            session_id: Some("sess".into()),
            geo_data: Some(GeoData {
                latitude: Some(1e-130),
                longitude: Some(-9.99e125),
                ..Default::default()
            }),
            ..chat("edge-2")
        },
        ChatMessage {
            message: "é".repeat(190_000).into(),
            timestamp: ts("2024-02-29T23:59:59.999Z"),
            token_cost: 999_999_999_999_999,
            ..chat("edge-3")
        },
        chat("edge-4"),
    ]
}

fn chat_values(m: &ChatMessage) -> Vec<(&'static str, V)> {
    let g = m.geo_data.clone().unwrap_or_default();
    vec![
        ("id", V::Text(m.id.to_string())),
        ("from_name", V::Text(m.from_name.to_string())),
        ("message", V::Text(m.message.to_string())),
        ("reply", text(&m.reply)),
        ("timestamp", V::Time(m.timestamp)),
        ("conversation_id", V::Text(m.conversation_id.to_string())),
        ("token_cost", V::Int(m.token_cost.into())),
        ("user_ip", text(&m.user_ip)),
        ("user_agent", text(&m.user_agent)),
        ("referrer", text(&m.referrer)),
        ("session_id", text(&m.session_id)),
        ("is_embed_user", V::Bool(m.is_embed_user)),
        ("geo_data.country", text(&g.country)),
        ("geo_data.country_code", text(&g.country_code)),
        ("geo_data.region", text(&g.region)),
        ("geo_data.region_name", text(&g.region_name)),
        ("geo_data.city", text(&g.city)),
        ("geo_data.latitude", float(g.latitude)),
        ("geo_data.longitude", float(g.longitude)),
        ("geo_data.timezone", text(&g.timezone)),
        ("geo_data.isp", text(&g.isp)),
        ("geo_data.organization", text(&g.organization)),
        ("geo_data.ip_type", text(&g.ip_type)),
        ("meta_data.created_at", V::Time(m.created_at)),
        ("meta_data.client_id", V::Text(m.client_id.to_string())),
        ("meta_data.from_user_id", text(&m.from_user_id)),
        ("meta_data.user_name", text(&m.user_name)),
        ("meta_data.user_email", text(&m.user_email)),
    ]
}

fn json_at<'a>(obj: &'a Value, key: &str) -> &'a Value {
    match key.split_once('.') {
        Some((group, leaf)) => &obj[group][leaf],
        None => &obj[key],
    }
}

#[tokio::test]
async fn every_chat_value_survives_every_format() {
    let stack = TestStack::with_config("rt-chats", |c| c.chat.per_user_per_minute = 1000).await;
    let msgs = boundary_chats();
    load(
        &stack,
        &msgs.iter().cloned().map(Record::ChatMessage).collect::<Vec<_>>(),
    )
    .await;
    let admin = stack.admin_token();
    let mut want: Vec<&ChatMessage> = msgs.iter().collect();
    want.sort_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
    let path = chats_export::DOWNLOAD_PATH;
    let common = "include_geo=true&include_meta=true";
    for scope in [
        "client_id=client-edge&",
        "",
        "conversation_id=conv-edge&",
        "date_from=0001-01-01&date_to=9999-12-31&",
    ] {
        // JSON: every message field, and the summary's token total beyond u64.
        let raw = fetch(&stack, &admin, &format!("{path}?{scope}{common}")).await;
        let doc: Value = serde_json::from_slice(&raw).unwrap();
        let got = doc["messages"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{scope}");
        for (obj, m) in got.iter().zip(&want) {
            for (key, v) in chat_values(m) {
                check_json(&v, json_at(obj, key), &format!("JSON {} {key} ({scope})", m.id));
            }
        }
        let total: u128 = msgs.iter().map(|m| u128::from(m.token_cost)).sum();
        let text = String::from_utf8(raw).unwrap();
        assert!(
            text.contains(&format!("\"total_tokens\":{total}")),
            "exact token total {total}"
        );
        assert_eq!(doc["summary"]["date_range"], "0001-01-01 to 9999-12-31");

        // JSON Lines: the document's messages, one per line, without its summary.
        let raw = fetch(&stack, &admin, &format!("{path}?{scope}{common}&format=jsonl")).await;
        assert_eq!(
            json_lines(&raw),
            *got,
            "JSON Lines are the document's messages ({scope})"
        );
        let expected = reader_rows("id", want.iter().map(|m| chat_values(m)));
        readers_agree(&raw, "jsonl", &expected, &format!("chats JSON Lines ({scope})"));

        // Parquet: one message per row, geo and meta data as groups.
        let raw = fetch(&stack, &admin, &format!("{path}?{scope}{common}&format=parquet")).await;
        assert_parquet(&raw, "chats Parquet");
        let expected = with_parquet_schema(expected, &CHAT_PARQUET);
        readers_agree(&raw, "parquet", &expected, &format!("chats Parquet ({scope})"));

        // CSV: the flat columns, exactly (guard off is not a chat option: compare
        // texts that are not formula-like, and the guarded ones with their quote).
        let csv = fetch(&stack, &admin, &format!("{path}?{scope}{common}&format=csv")).await;
        let (header, rows) = parse_csv(&csv);
        assert_eq!(header.len(), 28);
        for (row, m) in rows.iter().zip(&want) {
            for (i, (key, v)) in chat_values(m).into_iter().enumerate() {
                let cell = csv_cell(&v);
                let guarded = if cell.starts_with(['=', '@', '\t', '\r']) {
                    format!("'{cell}")
                } else {
                    cell
                };
                assert_eq!(row[i], guarded, "CSV {} {key}", m.id);
            }
        }

        // Excel: typed cells, the total on the Summary sheet as exact text.
        let xlsx = fetch(&stack, &admin, &format!("{path}?{scope}{common}&format=excel")).await;
        let rows = sheet(&xlsx, "Chat Messages");
        assert_eq!(rows.len() - 1, want.len());
        for (row, m) in rows[1..].iter().zip(&want) {
            for (i, (key, v)) in chat_values(m).into_iter().enumerate() {
                check_excel(&v, &row[i], &format!("Excel {} {key}", m.id));
            }
        }
        let summary = sheet(&xlsx, "Summary");
        let tokens = summary
            .iter()
            .find(|r| r[0] == Data::String("Total tokens".into()))
            .unwrap();
        assert_eq!(tokens[1], Data::String(total.to_string()));
    }
    // The ZIP holds the same two documents.
    let zip_bytes = fetch(&stack, &admin, &format!("{path}?{common}&format=both")).await;
    let mut zip = zip::ZipArchive::new(Cursor::new(zip_bytes)).unwrap();
    let mut json = String::new();
    zip.by_index(0).unwrap().read_to_string(&mut json).unwrap();
    let doc: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["messages"].as_array().unwrap().len(), want.len());
    // A user sees the same values, with its IP address anonymised.
    let user = stack.token(Role::User, "u-edge", Some("client-edge"), None);
    let doc: Value = serde_json::from_slice(&fetch(&stack, &user, &format!("{path}?{common}")).await).unwrap();
    assert_eq!(doc["messages"][0]["user_ip"], "203.0.113.0");
    assert_eq!(doc["messages"][0]["token_cost"].to_string(), u64::MAX.to_string());

    // Conversations as Parquet hold what their JSON holds: the token totals past u64
    // as DECIMAL(38,0), counts as UINT64, times as TIMESTAMP(MILLIS).
    let conversations = chats_export::CONVERSATIONS_PATH;
    let json: Value =
        serde_json::from_slice(&fetch(&stack, &admin, &format!("{conversations}?format=json")).await).unwrap();
    let json = json.as_array().unwrap();
    assert!(
        json.iter().any(|c| c["total_tokens"].as_u64().is_none()),
        "a total beyond u64 is in the data: {json:?}"
    );
    let rows = json.iter().map(|c| {
        CONVERSATION_PARQUET
            .iter()
            .map(|(key, kind)| {
                let value = &c[*key];
                let v = match (value, *kind) {
                    (Value::Null, _) => V::Absent,
                    (_, parquet_type::TIME) => V::Time(ts(value.as_str().unwrap())),
                    // A total past u64 is a float to serde_json here: summed from the loaded messages.
                    (Value::Number(_), parquet_type::WIDE_INTEGER) => V::Int(
                        msgs.iter()
                            .filter(|m| m.conversation_id.as_str() == c["conversation_id"].as_str().unwrap())
                            .map(|m| i128::from(m.token_cost))
                            .sum(),
                    ),
                    (Value::Number(n), _) => V::Int(n.as_u64().unwrap().into()),
                    (Value::String(s), _) => V::Text(s.clone()),
                    other => panic!("{other:?}"),
                };
                (*key, v)
            })
            .collect()
    });
    let expected = with_parquet_schema(reader_rows("conversation_id", rows), &CONVERSATION_PARQUET);
    let raw = fetch(&stack, &admin, &format!("{conversations}?format=parquet")).await;
    assert_parquet(&raw, "conversations Parquet");
    readers_agree(&raw, "parquet", &expected, "conversations Parquet");
}

#[tokio::test]
async fn every_session_value_survives_the_csv() {
    let stack = TestStack::new("rt-sessions").await;
    let records = vec![
        Record::Session(Session {
            session_id: "s-edge".into(),
            user_id: NASTY.into(),
            started_at: ts("0000-01-01T00:00:00Z"),
        }),
        Record::Message(SessionMessage {
            session_id: "s-edge".into(),
            message_id: "m-1".into(),
            content: "".into(),
            sender: NASTY.into(),
            timestamp: ts("0000-01-01T00:00:00Z"),
        }),
        Record::Message(SessionMessage {
            session_id: "s-edge".into(),
            message_id: "m-2".into(),
            content: "ü".repeat(195_000).into(),
            sender: "bot".into(),
            timestamp: ts("9999-12-31T23:59:59.999Z"),
        }),
    ];
    load(&stack, &records).await;
    let csv = fetch(
        &stack,
        &stack.admin_token(),
        &format!("{}?spreadsheet_safe=false", sessions_export::PATH),
    )
    .await;
    let (_, rows) = parse_csv(&csv);
    // JSON Lines, read back by pyarrow and DuckDB.
    let raw = fetch(
        &stack,
        &stack.admin_token(),
        &format!("{}?format=jsonl", sessions_export::PATH),
    )
    .await;
    let session = |id: &str, content: String, sender: &str, at: &str| {
        vec![
            ("session_id", V::Text("s-edge".into())),
            ("user_id", V::Text(NASTY.into())),
            ("message_id", V::Text(id.into())),
            ("message_content", V::Text(content)),
            ("sender", V::Text(sender.into())),
            ("timestamp", V::Time(ts(at))),
        ]
    };
    let expected = reader_rows(
        "message_id",
        [
            session("m-1", String::new(), NASTY, "0000-01-01T00:00:00Z"),
            session("m-2", "ü".repeat(195_000), "bot", "9999-12-31T23:59:59.999Z"),
        ],
    );
    assert_eq!(json_lines(&raw).len(), 2);
    readers_agree(&raw, "jsonl", &expected, "sessions JSON Lines");
    let parquet = fetch(
        &stack,
        &stack.admin_token(),
        &format!("{}?format=parquet&compression=none", sessions_export::PATH),
    )
    .await;
    assert_parquet(&parquet, "sessions Parquet");
    let schema = {
        use parquet_type::*;
        [
            ("session_id", TEXT),
            ("user_id", TEXT),
            ("message_id", TEXT),
            ("message_content", TEXT),
            ("sender", TEXT),
            ("timestamp", TIME),
        ]
    };
    readers_agree(
        &parquet,
        "parquet",
        &with_parquet_schema(expected, &schema),
        "sessions Parquet",
    );
    assert_eq!(
        rows,
        vec![
            vec![
                "s-edge".to_string(),
                NASTY.into(),
                "m-1".into(),
                "".into(),
                NASTY.into(),
                "0000-01-01T00:00:00.000Z".into()
            ],
            vec![
                "s-edge".to_string(),
                NASTY.into(),
                "m-2".into(),
                "ü".repeat(195_000),
                "bot".into(),
                "9999-12-31T23:59:59.999Z".into()
            ],
        ]
    );
}
