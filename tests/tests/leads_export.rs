//! GET /api/hybrid-leads/export against the local DynamoDB and S3 emulators.
//! Expected results are computed here from the loaded data, independently of the
//! export's own filter code.

use std::{collections::BTreeSet, io::Cursor};

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use chrono::{DateTime, SecondsFormat, Utc};
use common::{
    auth::Role,
    load::Record,
    model::{Confidence, Lead, LeadCategory, LeadStatus, Text},
    synth,
};
use integration_tests::*;
use lambda_http::{Body, Response};
use leads_export::{PATH, handle};

const HEADERS: [&str; 32] = [
    "Lead ID",
    "Chatbot Name",
    "Company Name",
    "Session ID",
    "Email",
    "Phone",
    "Lead Score",
    "Interest Level",
    "Confidence",
    "Category",
    "Primary Language",
    "Detected Languages",
    "AI Legitimate",
    "AI Confidence Score",
    "AI Verification Reasons",
    "Status",
    "Created At",
    "Updated At",
    "User Agent",
    "IP Address",
    "Location Country",
    "Location City",
    "Message Count",
    "Session Duration",
    "First Interest Detected",
    "Last Interest Detected",
    "Conversation Summary",
    "Tags",
    "Notes Count",
    "Converted At",
    "Conversion Value",
    "Conversion Source",
];

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Leads that stress every column: leading zeros, formula-like text, commas and
/// quotes in lists, unicode, a lead at the last millisecond of a day, a bare lead.
fn hard_leads() -> Vec<Lead> {
    let full = Lead {
        lead_id: "007".into(),
        company_id: "comp-hard".into(),
        company_name: "Hard, \"Quoted\" Ünïcode 🚀".into(),
        chatbot_id: "comp-hard-bot".into(),
        chatbot_name: "=Bot".into(),
        session_id: Some("00123".into()),
        email: Some("John.DOE@Example.com".into()),
        phone: Some("0044 20 7946 0000".into()),
        lead_score: Some(0),
        interest_level: Some(common::model::InterestLevel::Hot),
        confidence: Confidence::High,
        category: LeadCategory::DemoRequest,
        primary_language: Some("en".into()),
        detected_languages: vec!["es".into(), "fr".into()],
        ai_legitimate: Some(false),
        ai_confidence_score: Some(99.5),
        ai_verification_reasons: vec!["reason; with semicolon".into(), "second".into()],
        status: LeadStatus::Converted,
        created_at: ts("2024-01-31T23:59:59.500Z"),
        updated_at: ts("2024-02-01T08:00:00Z"),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
        ip_address: Some("2001:db8::1".into()),
        location_country: Some("Côte d'Ivoire".into()),
        location_city: Some("Abidjan".into()),
        message_count: Some(12),
        session_duration: Some(3605),
        first_interest_detected: Some(ts("2024-01-31T23:00:00Z")),
        last_interest_detected: Some(ts("2024-01-31T23:30:00Z")),
        conversation_summary: Some("=HYPERLINK(\"http://x\")\nline 2, \"quoted\"".into()),
        tags: vec!["a,b".into(), "ünï".into(), "Needle-Tag".into()],
        notes_count: Some(3),
        converted_at: Some(ts("2024-02-02T00:00:00Z")),
        conversion_value: Some(1234567.89),
        conversion_source: Some("chatbot".into()),
    };
    let bare = Lead {
        lead_id: "bare-1".into(),
        company_id: "comp-hard".into(),
        company_name: "Hard".into(),
        chatbot_id: "comp-hard-bot".into(),
        chatbot_name: "Bot".into(),
        session_id: None,
        email: None,
        phone: None,
        lead_score: None,
        interest_level: None,
        confidence: Confidence::Low,
        category: LeadCategory::GeneralInquiry,
        primary_language: None,
        detected_languages: vec![],
        ai_legitimate: None,
        ai_confidence_score: None,
        ai_verification_reasons: vec![],
        status: LeadStatus::New,
        created_at: ts("2024-02-01T00:00:00Z"),
        updated_at: ts("2024-02-01T00:00:00Z"),
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
    };
    vec![full, bare]
}

fn all_leads() -> Vec<Lead> {
    let mut leads: Vec<Lead> = synth::leads(5, 240)
        .map(|r| match r {
            Record::Lead(l) => l,
            _ => unreachable!(),
        })
        .collect();
    leads.extend(hard_leads());
    leads
}

async fn stack_with_leads(name: &str) -> (TestStack, Vec<Lead>) {
    let stack = TestStack::new(name).await;
    let leads = all_leads();
    stack.load(leads.iter().cloned().map(Record::Lead).collect()).await;
    (stack, leads)
}

async fn get(stack: &TestStack, token: &str, query: &str) -> Response<Body> {
    let auth = format!("Bearer {token}");
    handle(
        &stack.ctx,
        request("GET", &format!("{PATH}?{query}"), &[("authorization", &auth)]),
    )
    .await
}

fn ids_in_csv(resp: &Response<Body>) -> BTreeSet<String> {
    assert_eq!(resp.status(), 200, "{}", String::from_utf8_lossy(&body_bytes(resp)));
    let (header, rows) = parse_csv(&body_bytes(resp));
    assert_eq!(header, HEADERS);
    let ids: BTreeSet<String> = rows.iter().map(|r| r[0].clone()).collect();
    assert_eq!(ids.len(), rows.len(), "no lead twice");
    ids
}

fn ids_where(leads: &[Lead], keep: impl Fn(&Lead) -> bool) -> BTreeSet<String> {
    leads
        .iter()
        .filter(|l| keep(l))
        .map(|l| l.lead_id.to_string())
        .collect()
}

fn opt(v: &Option<Text>) -> String {
    v.as_deref().unwrap_or_default().to_string()
}

fn t(v: &DateTime<Utc>) -> String {
    v.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The CSV row of a lead, as the seed describes it (spreadsheet guard off).
fn csv_row(l: &Lead) -> Vec<String> {
    let num = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_default();
    vec![
        l.lead_id.to_string(),
        l.chatbot_name.to_string(),
        l.company_name.to_string(),
        opt(&l.session_id),
        opt(&l.email),
        opt(&l.phone),
        num(l.lead_score),
        l.interest_level.map(|v| v.as_str().to_string()).unwrap_or_default(),
        l.confidence.as_str().into(),
        l.category.as_str().into(),
        opt(&l.primary_language),
        l.detected_languages.join(";"),
        l.ai_legitimate
            .map(|b| if b { "Yes" } else { "No" }.to_string())
            .unwrap_or_default(),
        l.ai_confidence_score.map(|f| f.to_string()).unwrap_or_default(),
        l.ai_verification_reasons.join(";"),
        l.status.as_str().into(),
        t(&l.created_at),
        t(&l.updated_at),
        opt(&l.user_agent),
        opt(&l.ip_address),
        opt(&l.location_country),
        opt(&l.location_city),
        num(l.message_count),
        l.session_duration.map(|n| n.to_string()).unwrap_or_default(),
        l.first_interest_detected.as_ref().map(t).unwrap_or_default(),
        l.last_interest_detected.as_ref().map(t).unwrap_or_default(),
        opt(&l.conversation_summary),
        l.tags.join(","),
        num(l.notes_count),
        l.converted_at.as_ref().map(t).unwrap_or_default(),
        l.conversion_value.map(|f| f.to_string()).unwrap_or_default(),
        opt(&l.conversion_source),
    ]
}

#[tokio::test]
async fn every_column_round_trips_exactly_in_csv() {
    let (stack, leads) = stack_with_leads("leads-csv").await;
    let before = Utc::now();
    let resp = get(&stack, &stack.admin_token(), "spreadsheet_safe=false").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "text/csv; charset=utf-8");
    let disposition = header(&resp, "content-disposition");
    assert!(
        days_since(before)
            .iter()
            .any(|day| disposition == format!("attachment; filename=\"leads-export-{day}.csv\"")),
        "{disposition}"
    );
    let (head, rows) = parse_csv(&body_bytes(&resp));
    assert_eq!(head, HEADERS);
    let mut got: Vec<Vec<String>> = rows;
    let mut want: Vec<Vec<String>> = leads.iter().map(csv_row).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let raw = String::from_utf8(body_bytes(&resp)).unwrap();
    assert!(!raw.contains("null") && !raw.contains("undefined"));

    // Default: spreadsheet guard on formula-like text only.
    let resp = get(&stack, &stack.admin_token(), "companyId=comp-hard").await;
    let (_, rows) = parse_csv(&body_bytes(&resp));
    let hard = rows.iter().find(|r| r[0] == "007").unwrap();
    assert_eq!(hard[1], "'=Bot");
    assert!(hard[26].starts_with("'=HYPERLINK"));
    assert_eq!(hard[5], "0044 20 7946 0000");
}

#[tokio::test]
async fn every_filter_alone_and_combined() {
    let (stack, leads) = stack_with_leads("leads-filters").await;
    let admin = stack.admin_token();
    let day_end = ts("2024-01-31T23:59:59.999Z");
    let jan = ts("2024-01-20T00:00:00Z");
    type Case = (&'static str, Box<dyn Fn(&Lead) -> bool>);
    let cases: Vec<Case> = vec![
        ("", Box::new(|_| true)),
        ("companyId=comp-acme", Box::new(|l| l.company_id == "comp-acme")),
        (
            "companyId=comp-acme,comp-0042",
            Box::new(|l| ["comp-acme", "comp-0042"].contains(&l.company_id.as_str())),
        ),
        (
            "chatbotId=comp-globex-bot-1",
            Box::new(|l| l.chatbot_id == "comp-globex-bot-1"),
        ),
        ("confidence=high", Box::new(|l| l.confidence == Confidence::High)),
        (
            "category=pricing_inquiry",
            Box::new(|l| l.category == LeadCategory::PricingInquiry),
        ),
        (
            "language=fr",
            Box::new(|l| l.primary_language.as_deref() == Some("fr") || l.detected_languages.iter().any(|x| x == "fr")),
        ),
        (
            "language=hi_transliterated",
            Box::new(|l| {
                l.primary_language.as_deref() == Some("hi_transliterated")
                    || l.detected_languages.iter().any(|x| x == "hi_transliterated")
            }),
        ),
        ("status=converted", Box::new(|l| l.status == LeadStatus::Converted)),
        ("startDate=2024-01-20T00:00:00Z", Box::new(move |l| l.created_at >= jan)),
        ("endDate=2024-01-31", Box::new(move |l| l.created_at <= day_end)),
        (
            "startDate=2024-01-20&endDate=2024-01-31",
            Box::new(move |l| l.created_at >= jan && l.created_at <= day_end),
        ),
        (
            "search=NEEDLE-tag",
            Box::new(|l| l.tags.iter().any(|t| t.to_lowercase().contains("needle-tag"))),
        ),
        (
            "search=john.doe@EXAMPLE",
            Box::new(|l| {
                l.email
                    .as_deref()
                    .is_some_and(|e| e.to_lowercase().contains("john.doe@example"))
            }),
        ),
        (
            "search=7946%200000",
            Box::new(|l| l.phone.as_deref().is_some_and(|p| p.contains("7946 0000"))),
        ),
        (
            "search=globex%20bot",
            Box::new(|l| l.chatbot_name.to_lowercase().contains("globex bot")),
        ),
        (
            "search=%C3%BCnited",
            Box::new(|l| l.company_name.to_lowercase().contains("ünited")),
        ),
        (
            "search=pricing%20plans",
            Box::new(|l| {
                l.conversation_summary
                    .as_deref()
                    .is_some_and(|s| s.to_lowercase().contains("pricing plans"))
            }),
        ),
        (
            "companyId=comp-acme&confidence=medium&status=new&startDate=2024-01-05&endDate=2024-01-25",
            Box::new(move |l| {
                l.company_id == "comp-acme"
                    && l.confidence == Confidence::Medium
                    && l.status == LeadStatus::New
                    && l.created_at >= ts("2024-01-05T00:00:00Z")
                    && l.created_at <= ts("2024-01-25T23:59:59.999Z")
            }),
        ),
        (
            "chatbotId=comp-hard-bot&language=es&category=demo_request&search=hard",
            Box::new(|l| l.chatbot_id == "comp-hard-bot" && l.lead_id == "007"),
        ),
        (
            "companyId=comp-umbrella&category=buying_intent&language=en",
            Box::new(|l| {
                l.company_id == "comp-umbrella"
                    && l.category == LeadCategory::BuyingIntent
                    && (l.primary_language.as_deref() == Some("en") || l.detected_languages.iter().any(|x| x == "en"))
            }),
        ),
    ];
    for (query, keep) in cases {
        let expected = ids_where(&leads, keep);
        let got = ids_in_csv(&get(&stack, &admin, query).await);
        assert_eq!(got, expected, "query {query:?}");
        assert!(
            !expected.is_empty() || query.is_empty(),
            "case {query:?} should select something"
        );
    }
}

#[tokio::test]
async fn a_user_only_ever_sees_its_own_company() {
    let (stack, leads) = stack_with_leads("leads-tenancy").await;
    let user = stack.token(Role::User, "u-acme", None, Some("comp-acme"));
    let own = ids_where(&leads, |l| l.company_id == "comp-acme");
    assert_eq!(ids_in_csv(&get(&stack, &user, "").await), own);
    assert_eq!(ids_in_csv(&get(&stack, &user, "companyId=comp-acme").await), own);
    // Filters that point at another company's data find nothing outside the scope.
    for q in [
        "chatbotId=comp-globex-bot-0",
        "search=globex",
        "search=007",
        "chatbotId=comp-hard-bot&search=hard",
    ] {
        let got = ids_in_csv(&get(&stack, &user, q).await);
        assert!(got.is_subset(&own), "{q}: {got:?}");
    }
    for fmt in ["json", "xlsx"] {
        let resp = get(&stack, &user, &format!("format={fmt}&chatbotId=comp-globex-bot-0")).await;
        assert_eq!(resp.status(), 200);
        if fmt == "json" {
            assert_eq!(body_json(&resp), serde_json::json!([]));
        }
    }
    for q in [
        "companyId=comp-globex",
        "companyId=comp-acme,comp-globex",
        "companyId=comp-globex,comp-acme",
    ] {
        let resp = get(&stack, &user, q).await;
        assert_eq!(resp.status(), 403, "{q}");
        let body = body_json(&resp);
        assert_eq!(body["success"], false);
        assert_eq!(body["message"], "Failed to export leads CSV");
    }
    let no_company = stack.token(Role::User, "u-none", Some("client-alpha"), None);
    let resp = get(&stack, &no_company, "").await;
    assert_eq!(resp.status(), 403);
    assert!(body_json(&resp)["error"].as_str().unwrap().contains("no company"));
}

#[tokio::test]
async fn every_validation_error_gets_400_in_the_seed_shape() {
    let stack = TestStack::new("leads-validation").await;
    let admin = stack.admin_token();
    let cases = [
        ("confidence=extreme", "CSV"),
        ("category=spam", "CSV"),
        ("language=de", "CSV"),
        ("status=won", "CSV"),
        ("startDate=2024-02-30", "CSV"),
        ("endDate=last%20week", "CSV"),
        ("startDate=2024-03-01&endDate=2024-02-01", "CSV"),
        ("format=pdf", "CSV"),
        ("format=xlsx&columns=Lead%20ID,Nope", "Excel"),
        ("format=json&columns=Email,email", "JSON"),
        ("companyId=a,,b", "CSV"),
        ("companyId=%3Cscript%3E", "CSV"),
        ("bogus=1", "CSV"),
        ("spreadsheet_safe=perhaps", "CSV"),
    ];
    for (query, format_name) in cases {
        let resp = get(&stack, &admin, query).await;
        assert_eq!(resp.status(), 400, "{query}");
        let body = body_json(&resp);
        assert_eq!(body["success"], false, "{query}");
        assert_eq!(
            body["message"],
            format!("Failed to export leads {format_name}"),
            "{query}"
        );
        let error = body["error"].as_str().unwrap();
        assert!(!error.is_empty() && !error.contains('<'), "{query}: {error}");
        assert_eq!(body.as_object().unwrap().len(), 3);
    }
    let resp = handle(&stack.ctx, request("GET", PATH, &[])).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(body_json(&resp)["success"], false);
}

fn xlsx_rows(bytes: &[u8], sheet: &str) -> Vec<Vec<Data>> {
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.to_vec())).expect("a valid xlsx");
    let range = wb.worksheet_range(sheet).expect("sheet");
    range.rows().map(|r| r.to_vec()).collect()
}

fn excel_time(d: &Data) -> Option<DateTime<Utc>> {
    match d {
        Data::DateTime(dt) => dt.as_datetime().map(|n| n.and_utc()),
        Data::Empty => None,
        other => panic!("expected a date, got {other:?}"),
    }
}

fn excel_text(d: &Data) -> String {
    match d {
        Data::String(s) => s.clone(),
        Data::Empty => String::new(),
        other => panic!("expected text, got {other:?}"),
    }
}

fn excel_number(d: &Data) -> Option<f64> {
    match d {
        Data::Float(f) => Some(*f),
        Data::Int(i) => Some(*i as f64),
        Data::Empty => None,
        other => panic!("expected a number, got {other:?}"),
    }
}

#[tokio::test]
async fn every_column_round_trips_in_excel_with_real_types() {
    let (stack, leads) = stack_with_leads("leads-xlsx").await;
    let resp = get(&stack, &stack.admin_token(), "format=xlsx").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "content-type"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(header(&resp, "content-disposition").ends_with(".xlsx\""));
    assert!(matches!(resp.body(), Body::Binary(_)));
    let rows = xlsx_rows(&body_bytes(&resp), "Leads");
    assert_eq!(rows[0].iter().map(excel_text).collect::<Vec<_>>(), HEADERS);
    assert_eq!(rows.len() - 1, leads.len());
    let millis = |t: DateTime<Utc>| t.timestamp_millis();
    for row in &rows[1..] {
        let l = leads
            .iter()
            .find(|l| l.lead_id == excel_text(&row[0]))
            .expect("known lead");
        // Text stays text: ids and phones keep their leading zeros.
        for (i, v) in [
            (0, Some(&l.lead_id)),
            (1, Some(&l.chatbot_name)),
            (2, Some(&l.company_name)),
        ] {
            assert_eq!(excel_text(&row[i]), *v.unwrap());
        }
        assert_eq!(excel_text(&row[3]), opt(&l.session_id));
        assert_eq!(excel_text(&row[4]), opt(&l.email));
        assert_eq!(excel_text(&row[5]), opt(&l.phone));
        assert_eq!(excel_number(&row[6]), l.lead_score.map(f64::from));
        assert_eq!(excel_text(&row[11]), l.detected_languages.join(";"));
        assert_eq!(
            excel_text(&row[12]),
            l.ai_legitimate
                .map(|b| if b { "Yes" } else { "No" }.to_string())
                .unwrap_or_default()
        );
        assert_eq!(excel_number(&row[13]), l.ai_confidence_score);
        assert_eq!(excel_text(&row[15]), l.status.as_str());
        assert_eq!(excel_time(&row[16]).map(millis), Some(millis(l.created_at)));
        assert_eq!(excel_time(&row[24]).map(millis), l.first_interest_detected.map(millis));
        assert_eq!(excel_number(&row[22]), l.message_count.map(f64::from));
        assert_eq!(excel_number(&row[23]), l.session_duration.map(|s| s as f64));
        assert_eq!(
            excel_text(&row[26]),
            opt(&l.conversation_summary),
            "no CSV guard in Excel: cells are typed text"
        );
        assert_eq!(excel_text(&row[27]), l.tags.join(","));
        assert_eq!(excel_time(&row[29]).map(millis), l.converted_at.map(millis));
        assert_eq!(excel_number(&row[30]), l.conversion_value);
    }
}

#[tokio::test]
async fn json_has_stable_snake_case_keys_and_typed_values() {
    let (stack, leads) = stack_with_leads("leads-json").await;
    let resp = get(&stack, &stack.admin_token(), "format=json&companyId=comp-hard").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "application/json; charset=utf-8");
    let arr = body_json(&resp);
    let arr = arr.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    let full = arr.iter().find(|o| o["lead_id"] == "007").unwrap();
    let l = &leads.iter().find(|l| l.lead_id == "007").unwrap();
    let keys: Vec<&str> = full.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 32);
    assert_eq!(full["phone"], "0044 20 7946 0000");
    assert_eq!(full["lead_score"], 0);
    assert_eq!(full["ai_legitimate"], false);
    assert_eq!(full["ai_confidence_score"], 99.5);
    assert_eq!(full["detected_languages"], serde_json::json!(["es", "fr"]));
    assert_eq!(full["tags"], serde_json::json!(["a,b", "ünï", "Needle-Tag"]));
    assert_eq!(full["created_at"], "2024-01-31T23:59:59.500Z");
    assert_eq!(full["conversation_summary"], l.conversation_summary.as_deref().unwrap());
    assert_eq!(full["conversion_value"], 1234567.89);
    let bare = arr.iter().find(|o| o["lead_id"] == "bare-1").unwrap();
    assert!(bare["email"].is_null() && bare["converted_at"].is_null());
    assert_eq!(bare["tags"], serde_json::json!([]));
}

#[tokio::test]
async fn custom_columns_in_the_order_given() {
    let (stack, leads) = stack_with_leads("leads-columns").await;
    let admin = stack.admin_token();
    let resp = get(
        &stack,
        &admin,
        "columns=Email,lead%20id,Tags,created_at&companyId=comp-hard&spreadsheet_safe=false",
    )
    .await;
    let (head, mut rows) = parse_csv(&body_bytes(&resp));
    assert_eq!(head, ["Email", "Lead ID", "Tags", "Created At"]);
    rows.sort();
    let mut want: Vec<Vec<String>> = leads
        .iter()
        .filter(|l| l.company_id == "comp-hard")
        .map(|l| vec![opt(&l.email), l.lead_id.to_string(), l.tags.join(","), t(&l.created_at)])
        .collect();
    want.sort();
    assert_eq!(rows, want);

    let resp = get(
        &stack,
        &admin,
        "format=json&columns=Phone,Lead%20ID&companyId=comp-hard",
    )
    .await;
    let raw = String::from_utf8(body_bytes(&resp)).unwrap();
    let first_object = raw.lines().nth(1).unwrap();
    assert!(
        first_object.starts_with("{\"phone\":") && first_object.contains(",\"lead_id\":"),
        "{first_object}"
    );
    assert_eq!(body_json(&resp)[0].as_object().unwrap().len(), 2);
    let resp = get(
        &stack,
        &admin,
        "format=xlsx&columns=Phone,Lead%20ID&companyId=comp-hard",
    )
    .await;
    let rows = xlsx_rows(&body_bytes(&resp), "Leads");
    assert_eq!(rows[0].iter().map(excel_text).collect::<Vec<_>>(), ["Phone", "Lead ID"]);
}

#[tokio::test]
async fn a_large_result_goes_to_s3_in_every_format() {
    let stack = TestStack::with_config("leads-large", |c| c.delivery.inline_max_bytes = 16 * 1024).await;
    let leads: Vec<Lead> = synth::leads(9, 400)
        .map(|r| match r {
            Record::Lead(l) => l,
            _ => unreachable!(),
        })
        .collect();
    stack.load(leads.iter().cloned().map(Record::Lead).collect()).await;
    let admin = stack.admin_token();
    for format in ["csv", "json", "xlsx"] {
        let resp = get(&stack, &admin, &format!("format={format}")).await;
        assert_eq!(resp.status(), 303, "{format}");
        let url = header(&resp, "location").to_string();
        let download = reqwest::get(&url).await.unwrap();
        assert_eq!(download.status(), 200);
        assert!(
            download.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .ends_with(&format!(".{format}\""))
        );
        let bytes = download.bytes().await.unwrap();
        let count = match format {
            "csv" => parse_csv(&bytes).1.len(),
            "json" => serde_json::from_slice::<serde_json::Value>(&bytes)
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            _ => xlsx_rows(&bytes, "Leads").len() - 1,
        };
        assert_eq!(count, leads.len(), "{format}");
        assert_eq!(body_json(&resp)["rows"], leads.len());
    }
}

#[tokio::test]
async fn event_files_drive_the_real_handler() {
    let (stack, leads) = stack_with_leads("leads-events").await;
    let acme = ids_where(&leads, |l| l.company_id == "comp-acme");
    assert_eq!(
        ids_in_csv(&handle(&stack.ctx, event_file("leads-export-user.json")).await),
        acme
    );

    let resp = handle(&stack.ctx, event_file("leads-export-user-filtered-xlsx.json")).await;
    assert_eq!(resp.status(), 200);
    let rows = xlsx_rows(&body_bytes(&resp), "Leads");
    let want = ids_where(&leads, |l| {
        l.company_id == "comp-acme"
            && l.confidence == Confidence::High
            && l.created_at >= ts("2024-01-01T00:00:00Z")
            && l.created_at <= ts("2024-01-31T23:59:59.999Z")
            && [&l.email, &l.phone, &l.conversation_summary]
                .iter()
                .any(|f| f.as_deref().is_some_and(|s| s.to_lowercase().contains("example")))
    });
    assert_eq!(
        rows[1..].iter().map(|r| excel_text(&r[0])).collect::<BTreeSet<_>>(),
        want
    );

    let resp = handle(&stack.ctx, event_file("leads-export-admin-bulk-json.json")).await;
    let arr = body_json(&resp);
    let got: BTreeSet<String> = arr
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["lead_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        got,
        ids_where(&leads, |l| l.company_id == "comp-acme" || l.company_id == "comp-globex")
    );

    for (event, status) in [
        ("leads-export-user-other-company.json", 403),
        ("leads-export-bad-enum.json", 400),
        ("leads-export-no-token.json", 401),
    ] {
        let resp = handle(&stack.ctx, event_file(event)).await;
        assert_eq!(resp.status(), status, "{event}");
        assert_eq!(body_json(&resp)["message"], "Failed to export leads CSV");
    }
    let resp = handle(&stack.ctx, event_file("leads-export-admin-link.json")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(body_json(&resp)["rows"], leads.len());
}
