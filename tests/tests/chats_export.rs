//! POST /client/export/chats and GET /client/export/chats/download against the local
//! emulators. Expected data and summary figures are computed here from what was loaded.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io::{Cursor, Read},
};

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use chats_export::{DOWNLOAD_PATH, EXPORT_PATH, handle};
use chrono::{DateTime, SecondsFormat, Utc};
use common::{
    audit::AuditRecord,
    auth::Role,
    load::Record,
    model::{ChatMessage, GeoData},
    synth,
};
use integration_tests::*;
use lambda_http::{Body, Response};
use serde_json::{Value, json};

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn t(v: &DateTime<Utc>) -> String {
    v.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Hard cases on top of the generator's: a cell over Excel's limit, IPv6, no geo, the
/// last millisecond of a day, formula-like text.
fn hard_messages() -> Vec<ChatMessage> {
    let base = ChatMessage {
        id: "hard-1".into(),
        client_id: "client-alpha".into(),
        conversation_id: "conv-hard".into(),
        session_id: Some("sess-hard".into()),
        from_name: "Zoë \"Z\" O'Neil".into(),
        from_user_id: Some("u-hard".into()),
        user_name: Some("Zoë".into()),
        user_email: Some("zoe@example.com".into()),
        message: "=1+2\nline two, \"quoted\" 😀".into(),
        reply: None,
        timestamp: ts("2024-01-10T23:59:59.999Z"),
        created_at: ts("2024-01-10T23:59:59.999Z"),
        token_cost: 1234,
        user_ip: Some("2001:db8:abcd:12:1:2:3:4".into()),
        user_agent: Some("UA".into()),
        referrer: None,
        is_embed_user: false,
        geo_data: None,
    };
    let long = ChatMessage {
        id: "hard-2".into(),
        conversation_id: "conv-hard".into(),
        message: "x".repeat(40_000).into(),
        timestamp: ts("2024-01-11T00:00:00Z"),
        created_at: ts("2024-01-11T00:00:00Z"),
        user_ip: Some("198.51.100.23".into()),
        geo_data: Some(GeoData {
            country: Some("Japan".into()),
            isp: Some("NTT".into()),
            ip_type: Some("VPN".into()),
            ..Default::default()
        }),
        ..base.clone()
    };
    vec![base, long]
}

fn all_messages() -> Vec<ChatMessage> {
    let mut v: Vec<ChatMessage> = synth::chat_messages(21, 400)
        .map(|r| match r {
            Record::ChatMessage(m) => m,
            _ => unreachable!(),
        })
        .collect();
    v.extend(hard_messages());
    v
}

async fn stack_with_chats(name: &str) -> (TestStack, Vec<ChatMessage>) {
    let stack = TestStack::new(name).await;
    let msgs = all_messages();
    stack
        .load(msgs.iter().cloned().map(Record::ChatMessage).collect())
        .await;
    (stack, msgs)
}

async fn download(stack: &TestStack, token: &str, query: &str) -> Response<Body> {
    let auth = format!("Bearer {token}");
    handle(
        &stack.ctx,
        request("GET", &format!("{DOWNLOAD_PATH}?{query}"), &[("authorization", &auth)]),
    )
    .await
}

async fn post(stack: &TestStack, token: &str, body: &Value) -> Response<Body> {
    let auth = format!("Bearer {token}");
    let headers: Vec<(String, String)> = vec![
        ("authorization".into(), auth),
        ("content-type".into(), "application/json".into()),
    ];
    let event = exportctl::serve::api_gateway_event(
        "POST",
        EXPORT_PATH,
        "",
        &headers,
        body.to_string().as_bytes(),
        "127.0.0.1",
    );
    handle(&stack.ctx, lambda_http::request::from_str(&event.to_string()).unwrap()).await
}

fn anonymized(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>().unwrap() {
        std::net::IpAddr::V4(v) => {
            let o = v.octets();
            format!("{}.{}.{}.0", o[0], o[1], o[2])
        }
        std::net::IpAddr::V6(v) => {
            let s = v.segments();
            std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0).to_string()
        }
    }
}

/// The message object the seed describes, built from the loaded item.
fn expected_message(m: &ChatMessage, geo: bool, meta: bool, anonymize: bool) -> Value {
    let ip = m
        .user_ip
        .as_deref()
        .map(|ip| if anonymize { anonymized(ip) } else { ip.to_string() });
    let mut o = json!({
        "id": m.id, "from_name": m.from_name, "message": m.message, "reply": m.reply,
        "timestamp": t(&m.timestamp), "conversation_id": m.conversation_id, "token_cost": m.token_cost,
        "user_ip": ip, "user_agent": m.user_agent, "referrer": m.referrer, "session_id": m.session_id,
        "is_embed_user": m.is_embed_user,
    });
    if geo {
        let g = m.geo_data.clone().unwrap_or_default();
        o["geo_data"] = json!({
            "country": g.country, "country_code": g.country_code, "region": g.region, "region_name": g.region_name,
            "city": g.city, "latitude": g.latitude, "longitude": g.longitude, "timezone": g.timezone,
            "isp": g.isp, "organization": g.organization, "ip_type": g.ip_type,
        });
    }
    if meta {
        o["meta_data"] = json!({
            "created_at": t(&m.created_at), "client_id": m.client_id, "from_user_id": m.from_user_id,
            "user_name": m.user_name, "user_email": m.user_email,
        });
    }
    o
}

/// The summary, computed independently from the messages.
fn expected_summary(msgs: &[&ChatMessage]) -> Value {
    let user = |m: &ChatMessage| -> Option<String> {
        m.from_user_id
            .clone()
            .filter(|id| !id.is_empty() && id.chars().any(|c| c != '0'))
            .or(m.session_id.clone())
            .or(m.user_ip.clone())
            .map(|id| id.to_string())
    };
    let users: HashSet<String> = msgs.iter().filter_map(|m| user(m)).collect();
    let mut convs: HashMap<&str, u64> = HashMap::new();
    let (mut countries, mut isps, mut types) = (HashMap::new(), HashMap::new(), BTreeMap::new());
    for m in msgs {
        *convs.entry(&m.conversation_id).or_default() += 1;
        if let Some(g) = &m.geo_data {
            if let Some(c) = &g.country {
                *countries.entry(c.to_string()).or_insert(0u64) += 1;
            }
            if let Some(i) = &g.isp {
                *isps.entry(i.to_string()).or_insert(0u64) += 1;
            }
            if let Some(i) = &g.ip_type {
                *types.entry(i.to_string()).or_insert(0u64) += 1;
            }
        }
    }
    let top = |m: HashMap<String, u64>, key: &str| -> Value {
        let mut v: Vec<(String, u64)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(10);
        Value::Array(v.into_iter().map(|(k, c)| json!({key: k, "count": c})).collect())
    };
    let first = msgs.iter().map(|m| m.timestamp).min();
    let last = msgs.iter().map(|m| m.timestamp).max();
    let total = msgs.len() as u64;
    json!({
        "total_messages": total,
        "total_tokens": msgs.iter().map(|m| m.token_cost).sum::<u64>(),
        "unique_users": users.len(),
        "date_range": match (first, last) {
            (Some(a), Some(b)) => format!("{} to {}", a.format("%Y-%m-%d"), b.format("%Y-%m-%d")),
            _ => String::new(),
        },
        "top_countries": top(countries, "country"),
        "top_isps": top(isps, "isp"),
        "ip_type_breakdown": types,
        "conversation_stats": {
            "total_conversations": convs.len(),
            "avg_messages_per_conversation": if convs.is_empty() { 0.0 } else { (total as f64 / convs.len() as f64 * 100.0).round() / 100.0 },
            "longest_conversation": convs.values().copied().max().unwrap_or(0),
        },
    })
}

fn by_time(msgs: &[ChatMessage], keep: impl Fn(&ChatMessage) -> bool) -> Vec<&ChatMessage> {
    let mut v: Vec<&ChatMessage> = msgs.iter().filter(|m| keep(m)).collect();
    v.sort_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
    v
}

#[tokio::test]
async fn json_matches_the_loaded_data_field_by_field_with_its_summary() {
    let (stack, msgs) = stack_with_chats("chats-json").await;
    let admin = stack.admin_token();
    let resp = download(
        &stack,
        &admin,
        "client_id=client-alpha&include_geo=true&include_meta=true&limit=100000",
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "application/json; charset=utf-8");
    assert!(header(&resp, "content-disposition").contains("chat-export-"));
    let doc = body_json(&resp);
    let want = by_time(&msgs, |m| m.client_id == "client-alpha");
    let got = doc["messages"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(*g, expected_message(w, true, true, false), "message {}", w.id);
    }
    assert_eq!(doc["summary"], expected_summary(&want));
    let info = &doc["export_info"];
    assert_eq!(info["total_records"], want.len());
    assert_eq!(
        (info["client_id"].as_str(), info["format"].as_str()),
        (Some("client-alpha"), Some("json"))
    );
    assert_eq!(
        (info["include_geo"].as_bool(), info["include_meta"].as_bool()),
        (Some(true), Some(true))
    );
    assert!(DateTime::parse_from_rfc3339(info["export_date"].as_str().unwrap()).is_ok());
    assert_eq!(info["date_range"], doc["summary"]["date_range"]);

    // Without geo and meta the objects do not have those keys at all.
    let doc = body_json(&download(&stack, &admin, "client_id=client-alpha&limit=5").await);
    let first = doc["messages"][0].as_object().unwrap();
    assert!(!first.contains_key("geo_data") && !first.contains_key("meta_data"));
    assert_eq!(first.len(), 12);
    assert_eq!(doc["export_info"]["total_records"], 5);
    assert_eq!(doc["summary"]["total_messages"], 5);
}

#[tokio::test]
async fn filters_dates_conversation_and_limit() {
    let (stack, msgs) = stack_with_chats("chats-filters").await;
    let admin = stack.admin_token();
    let ids = |doc: &Value| -> Vec<String> {
        doc["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    let want_ids = |v: Vec<&ChatMessage>| -> Vec<String> { v.into_iter().map(|m| m.id.to_string()).collect() };
    let jan10_end = ts("2024-01-10T23:59:59.999Z");
    let jan2 = ts("2024-01-02T00:00:00Z");
    let cases: Vec<(&str, Vec<&ChatMessage>)> = vec![
        (
            "client_id=client-alpha&date_from=2024-01-02&date_to=2024-01-10",
            by_time(&msgs, |m| {
                m.client_id == "client-alpha" && m.timestamp >= jan2 && m.timestamp <= jan10_end
            }),
        ),
        (
            "date_from=2024-01-02&date_to=2024-01-10",
            by_time(&msgs, |m| m.timestamp >= jan2 && m.timestamp <= jan10_end),
        ),
        (
            "date_from=2024-01-02T00:00:00Z&date_to=2024-01-10T23:59:59.999Z",
            by_time(&msgs, |m| m.timestamp >= jan2 && m.timestamp <= jan10_end),
        ),
        (
            "conversation_id=conv-hard",
            by_time(&msgs, |m| m.conversation_id == "conv-hard"),
        ),
        (
            "conversation_id=conv-000003&client_id=client-beta",
            by_time(&msgs, |m| {
                m.conversation_id == "conv-000003" && m.client_id == "client-beta"
            }),
        ),
        (
            "client_id=client-gamma&limit=7",
            by_time(&msgs, |m| m.client_id == "client-gamma")
                .into_iter()
                .take(7)
                .collect(),
        ),
        (
            "date_from=2024-01-01&limit=3",
            by_time(&msgs, |_| true).into_iter().take(3).collect(),
        ),
    ];
    for (query, want) in cases {
        let doc = body_json(&download(&stack, &admin, &format!("{query}&include_geo=true")).await);
        assert_eq!(ids(&doc), want_ids(want.clone()), "{query}");
        assert_eq!(doc["summary"], expected_summary(&want), "{query}");
    }
    // Admin without a client: every client's messages (from the by_time shards), all of them.
    let doc = body_json(&download(&stack, &admin, "limit=100000").await);
    let mut got = ids(&doc);
    got.sort();
    let mut all: Vec<String> = msgs.iter().map(|m| m.id.to_string()).collect();
    all.sort();
    assert_eq!(got, all);
    assert!(doc["export_info"]["client_id"].is_null());
}

#[tokio::test]
async fn users_see_only_their_client_with_anonymised_ips() {
    let (stack, msgs) = stack_with_chats("chats-scope").await;
    let user = stack.token(Role::User, "u-alpha", Some("client-alpha"), None);
    for query in [
        "include_geo=true&limit=100000",
        "client_id=client-alpha&include_geo=true&limit=100000",
    ] {
        let doc = body_json(&download(&stack, &user, query).await);
        let want = by_time(&msgs, |m| m.client_id == "client-alpha");
        let got = doc["messages"].as_array().unwrap();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(*g, expected_message(w, true, false, true), "message {}", w.id);
        }
    }
    let hard = body_json(&download(&stack, &user, "conversation_id=conv-hard").await);
    assert_eq!(hard["messages"][0]["user_ip"], "2001:db8:abcd::");
    assert_eq!(hard["messages"][1]["user_ip"], "198.51.100.0");
    // A conversation of another client yields nothing; another client_id is refused.
    let other_conv = msgs.iter().find(|m| m.client_id != "client-alpha").unwrap();
    let doc = body_json(
        &download(
            &stack,
            &user,
            &format!("conversation_id={}", other_conv.conversation_id),
        )
        .await,
    );
    assert!(doc["messages"].as_array().unwrap().iter().all(|m| {
        msgs.iter()
            .any(|x| m["id"] == x.id.as_str() && x.client_id == "client-alpha")
    }));
    for resp in [
        download(&stack, &user, "client_id=client-beta").await,
        post(&stack, &user, &json!({"client_id": "client-beta"})).await,
        download(&stack, &stack.token(Role::User, "u-none", None, Some("comp-acme")), "").await,
    ] {
        assert_eq!(resp.status(), 403);
        assert_eq!(body_json(&resp)["error_code"], "forbidden");
    }
    // Admins see addresses as stored.
    let doc = body_json(&download(&stack, &stack.admin_token(), "conversation_id=conv-hard").await);
    assert_eq!(doc["messages"][0]["user_ip"], "2001:db8:abcd:12:1:2:3:4");
}

fn sheet(bytes: &[u8], name: &str) -> Vec<Vec<Data>> {
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.to_vec())).expect("valid xlsx");
    wb.worksheet_range(name)
        .expect("sheet")
        .rows()
        .map(|r| r.to_vec())
        .collect()
}

fn summary_value(rows: &[Vec<Data>], label: &str) -> Data {
    rows.iter()
        .find(|r| r.first() == Some(&Data::String(label.into())))
        .unwrap_or_else(|| panic!("no {label}"))[1]
        .clone()
}

#[tokio::test]
async fn excel_has_messages_and_summary_sheets_with_real_types() {
    let (stack, msgs) = stack_with_chats("chats-excel").await;
    let resp = download(
        &stack,
        &stack.admin_token(),
        "format=excel&client_id=client-alpha&include_geo=true&limit=100000",
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, "content-disposition").ends_with(".xlsx\""));
    let bytes = body_bytes(&resp);
    let wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.clone())).unwrap();
    assert_eq!(wb.sheet_names(), ["Chat Messages", "Summary"]);
    let rows = sheet(&bytes, "Chat Messages");
    assert_eq!(rows[0][0], Data::String("ID".into()));
    assert_eq!(rows[0].len(), 23);
    let want = by_time(&msgs, |m| m.client_id == "client-alpha");
    assert_eq!(rows.len() - 1, want.len());
    for (r, m) in rows[1..].iter().zip(&want) {
        assert_eq!(r[0], Data::String(m.id.to_string()));
        let Data::DateTime(dt) = &r[4] else {
            panic!("timestamp is a date: {:?}", r[4])
        };
        assert_eq!(
            dt.as_datetime().unwrap().and_utc().timestamp_millis(),
            m.timestamp.timestamp_millis()
        );
        assert_eq!(r[6], Data::Float(m.token_cost as f64));
        assert_eq!(r[11], Data::String(if m.is_embed_user { "Yes" } else { "No" }.into()));
        let text = match &r[2] {
            Data::String(s) => s.clone(),
            Data::Empty => String::new(),
            other => panic!("message is text: {other:?}"),
        };
        if m.message.chars().count() > 32_767 {
            assert_eq!(text.chars().count(), 32_767, "truncated to Excel's limit");
        } else {
            assert_eq!(text, m.message);
        }
    }
    let summary = sheet(&bytes, "Summary");
    let expected = expected_summary(&want);
    assert_eq!(
        summary_value(&summary, "Total messages"),
        Data::Float(want.len() as f64)
    );
    assert_eq!(
        summary_value(&summary, "Total tokens"),
        Data::Float(expected["total_tokens"].as_f64().unwrap())
    );
    assert_eq!(
        summary_value(&summary, "Unique users"),
        Data::Float(expected["unique_users"].as_f64().unwrap())
    );
    assert_eq!(
        summary_value(&summary, "Cells truncated to 32,767 characters"),
        Data::Float(1.0)
    );
    assert_eq!(summary_value(&summary, "Message sheets"), Data::Float(1.0));
    let top = &expected["top_countries"][0];
    assert_eq!(
        summary_value(&summary, top["country"].as_str().unwrap()),
        Data::Float(top["count"].as_f64().unwrap())
    );
}

#[tokio::test]
async fn both_is_a_zip_of_the_json_and_the_workbook() {
    let (stack, msgs) = stack_with_chats("chats-zip").await;
    let before = Utc::now();
    let resp = post(
        &stack,
        &stack.admin_token(),
        &json!({"format": "both", "client_id": "client-beta", "include_meta": true, "limit": 100000}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let answer = body_json(&resp);
    let want = by_time(&msgs, |m| m.client_id == "client-beta");
    assert_eq!(answer["success"], true);
    assert_eq!(answer["message"], "Export generated successfully");
    assert_eq!(answer["format"], "both");
    assert_eq!(answer["record_count"], want.len());
    let url = answer["download_url"].as_str().unwrap();
    let download = reqwest::get(url).await.unwrap();
    assert_eq!(download.headers()["content-type"], "application/zip");
    let bytes = download.bytes().await.unwrap().to_vec();
    assert_eq!(answer["file_size"], bytes.len());
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let names: Vec<String> = (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().unwrap().to_string())
        .collect();
    assert!(
        days_since(before)
            .iter()
            .any(|day| names == [format!("chat-export-{day}.json"), format!("chat-export-{day}.xlsx")]),
        "{names:?}"
    );
    let mut json_text = String::new();
    zip.by_index(0).unwrap().read_to_string(&mut json_text).unwrap();
    let doc: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(doc["export_info"]["format"], "both");
    let got = doc["messages"].as_array().unwrap();
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(*g, expected_message(w, false, true, false));
    }
    assert_eq!(got.len(), want.len());
    assert_eq!(doc["summary"], expected_summary(&want));
    let mut xlsx = Vec::new();
    zip.by_index(1).unwrap().read_to_end(&mut xlsx).unwrap();
    assert_eq!(sheet(&xlsx, "Chat Messages").len() - 1, want.len());
}

#[tokio::test]
async fn every_validation_error_gets_400() {
    let stack = TestStack::new("chats-validation").await;
    let admin = stack.admin_token();
    for query in [
        "format=pdf",
        "limit=0",
        "limit=-5",
        "limit=1000001",
        "limit=ten",
        "date_from=2024-02-30",
        "date_to=yesterday",
        "date_from=2024-02-01&date_to=2024-01-01",
        "include_geo=maybe",
        "conversation_id=a%20b",
        "clientid=x",
    ] {
        let resp = download(&stack, &admin, query).await;
        assert_eq!(resp.status(), 400, "{query}");
        let body = body_json(&resp);
        assert_eq!(body["error_code"], "invalid_request", "{query}");
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
    for body in [
        json!({"format": "pdf"}),
        json!({"formatt": "json"}),
        json!({"limit": "100"}),
        json!({"limit": 0}),
        json!({"include_geo": "true"}),
        json!({"date_from": "2024-03-01", "date_to": "2024-01-01"}),
        json!({"client_id": 42}),
        json!([]),
    ] {
        let resp = post(&stack, &admin, &body).await;
        assert_eq!(resp.status(), 400, "{body}");
        assert_eq!(body_json(&resp)["error_code"], "invalid_request");
    }
    let resp = handle(&stack.ctx, request("GET", DOWNLOAD_PATH, &[])).await;
    assert_eq!(
        (resp.status().as_u16(), body_json(&resp)["error_code"].as_str()),
        (401, Some("unauthorized"))
    );
}

/// Runs `n` exports at once and counts the statuses; `None` if a rate-limit window
/// boundary fell inside the burst (the counts would then span two windows).
async fn burst(stack: &TestStack, tokens: &[String], window_secs: i64) -> Option<HashMap<u16, usize>> {
    let window = |t: i64| t / window_secs;
    let start = Utc::now().timestamp();
    let responses = futures::future::join_all(tokens.iter().map(|t| download(stack, t, "limit=1"))).await;
    if window(start) != window(Utc::now().timestamp()) {
        return None;
    }
    let mut counts = HashMap::new();
    for r in &responses {
        *counts.entry(r.status().as_u16()).or_insert(0) += 1;
        if r.status() == 429 {
            let retry: u64 = header(r, "retry-after").parse().unwrap();
            assert!((1..=window_secs as u64).contains(&retry));
            assert_eq!(body_json(r)["error_code"], "rate_limited");
        }
    }
    Some(counts)
}

#[tokio::test]
async fn rate_limits_hold_under_concurrency() {
    let (stack, _) = stack_with_chats("chats-ratelimit").await;
    for attempt in 0..3 {
        let user = stack.token(Role::User, &format!("burst-{attempt}"), Some("client-alpha"), None);
        let tokens = vec![user; 30];
        if let Some(counts) = burst(&stack, &tokens, 60).await {
            assert_eq!(counts.get(&200), Some(&10), "{counts:?}");
            assert_eq!(counts.get(&429), Some(&20), "{counts:?}");
            break;
        }
        assert!(attempt < 2, "a minute boundary fell in every burst");
    }

    // 100 per client per hour, across many users (each under its own limit).
    let stack = TestStack::with_config("chats-clientlimit", |c| c.chat.per_client_per_hour = 12).await;
    for attempt in 0..3 {
        let tokens: Vec<String> = (0..30)
            .map(|i| {
                stack.token(
                    Role::User,
                    &format!("u{attempt}-{i}"),
                    Some(&format!("client-{attempt}")),
                    None,
                )
            })
            .collect();
        if let Some(counts) = burst(&stack, &tokens, 3600).await {
            assert_eq!(counts.get(&200), Some(&12), "{counts:?}");
            assert_eq!(counts.get(&429), Some(&18), "{counts:?}");
            break;
        }
    }
}

async fn audit_records(stack: &TestStack) -> Vec<AuditRecord> {
    let out = stack
        .ctx
        .aws
        .dynamodb
        .scan()
        .table_name(&stack.ctx.config.tables.audit)
        .send()
        .await
        .unwrap();
    out.items
        .unwrap_or_default()
        .into_iter()
        .map(|item| serde_dynamo::from_item(item).unwrap())
        .collect()
}

#[tokio::test]
async fn every_attempt_is_audited() {
    let (stack, msgs) = stack_with_chats("chats-audit").await;
    let admin = stack.admin_token();
    let user = stack.token(Role::User, "u-audit", Some("client-alpha"), None);
    let ok = post(&stack, &admin, &json!({"format": "json", "client_id": "client-gamma"})).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(download(&stack, &user, "client_id=client-beta").await.status(), 403);
    assert_eq!(download(&stack, &admin, "limit=0").await.status(), 400);
    assert_eq!(
        handle(&stack.ctx, request("GET", DOWNLOAD_PATH, &[])).await.status(),
        401
    );
    assert_eq!(download(&stack, &user, "limit=2").await.status(), 200);

    let mut records = audit_records(&stack).await;
    records.sort_by_key(|r| r.at);
    assert_eq!(records.len(), 5);
    let gamma = msgs.iter().filter(|m| m.client_id == "client-gamma").count() as u64;
    let r = &records[0];
    assert_eq!(
        (r.outcome.as_str(), r.status, r.route.as_str()),
        ("success", 200, "POST /client/export/chats")
    );
    assert_eq!(
        (r.caller.as_deref(), r.role.as_deref()),
        (Some("admin-test"), Some("admin"))
    );
    assert_eq!(
        (r.client_scope.as_str(), r.records),
        ("client#client-gamma", Some(gamma))
    );
    assert!(r.s3_key.as_deref().is_some_and(|k| k.starts_with("exports/chats/")));
    assert!(r.bytes.unwrap() > 0 && r.parameters.as_deref().unwrap().contains("client-gamma"));
    assert_eq!((records[1].outcome.as_str(), records[1].status), ("rejected", 403));
    assert_eq!(records[1].error_code.as_deref(), Some("forbidden"));
    assert_eq!(
        (records[2].status, records[2].error_code.as_deref()),
        (400, Some("invalid_request"))
    );
    assert_eq!(
        (
            records[3].status,
            records[3].caller.as_deref(),
            records[3].client_scope.as_str()
        ),
        (401, None, "none")
    );
    assert_eq!(
        (records[4].status, records[4].records, records[4].s3_key.as_deref()),
        (200, Some(2), None)
    );
}

#[tokio::test]
async fn a_failed_audit_write_fails_the_export_and_leaves_no_file() {
    let mut stack = TestStack::new("chats-noaudit").await;
    stack
        .load(all_messages().into_iter().map(Record::ChatMessage).collect())
        .await;
    // The audit table disappears (or is unreachable) after the function started.
    let mut config = (*stack.ctx.config).clone();
    config.tables.audit = format!("{}-absent", config.tables.audit);
    stack.ctx = common::AppContext::new(config, stack.ctx.aws.clone());
    let admin = stack.admin_token();
    let resp = post(&stack, &admin, &json!({"format": "excel"})).await;
    assert_eq!(resp.status(), 500);
    assert_eq!(body_json(&resp)["error_code"], "export_failed");
    assert_eq!(body_json(&resp)["message"], "Failed to export chats: audit log error");
    let resp = download(&stack, &admin, "limit=3").await;
    assert_eq!(resp.status(), 500);
    assert!(stack.object_keys().await.is_empty(), "the stored export was deleted");
}

#[tokio::test]
async fn large_downloads_go_through_s3_and_event_files_work() {
    let (stack, msgs) = {
        let stack = TestStack::with_config("chats-large", |c| c.delivery.inline_max_bytes = 8 * 1024).await;
        let msgs = all_messages();
        stack
            .load(msgs.iter().cloned().map(Record::ChatMessage).collect())
            .await;
        (stack, msgs)
    };
    let resp = download(&stack, &stack.admin_token(), "limit=100000&format=json").await;
    assert_eq!(resp.status(), 303);
    let bytes = reqwest::get(header(&resp, "location"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(doc["messages"].as_array().unwrap().len(), msgs.len());

    let resp = handle(&stack.ctx, event_file("chats-export-post-admin.json")).await;
    assert_eq!(resp.status(), 200, "{:?}", body_json(&resp));
    assert_eq!(body_json(&resp)["format"], "excel");
    let resp = handle(&stack.ctx, event_file("chats-export-download-user.json")).await;
    assert_eq!(resp.status(), 303);
    for (event, status) in [
        ("chats-export-download-other-client.json", 403),
        ("chats-export-post-invalid.json", 400),
        ("chats-export-no-token.json", 401),
    ] {
        assert_eq!(handle(&stack.ctx, event_file(event)).await.status(), status, "{event}");
    }
}
