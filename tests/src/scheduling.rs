//! What the schedule, link and rights tests share: the API called in process, the
//! scheduler's tick at fixed instants, and the emails the SES emulator holds.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use common::{
    AppContext,
    clock::FixedClock,
    jobs::worker,
    load::Record,
    model::ChatMessage,
    schedules::tick::{self, TickReport},
    synth, timefmt,
};
use lambda_http::{Body, Response};
use serde_json::Value;

use crate::{TestStack, body_bytes, body_json, header, parse_csv, request_with_body};

pub fn t(s: &str) -> DateTime<Utc> {
    timefmt::parse_rfc3339(s).unwrap()
}

/// The stack's context with the clock fixed at `at` (schedules are created, and
/// jobs run, "then").
pub fn at(stack: &TestStack, when: &str) -> (AppContext, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(t(when)));
    (stack.ctx.clone().with_clock(clock.clone()), clock)
}

pub async fn call(
    ctx: &AppContext,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Response<Body> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = &auth {
        headers.push(("authorization", a));
    }
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    if !bytes.is_empty() {
        headers.push(("content-type", "application/json"));
    }
    exportctl::serve::route(ctx, request_with_body(method, path, &headers, &bytes)).await
}

pub async fn create(ctx: &AppContext, token: &str, body: Value) -> Value {
    let resp = call(ctx, "POST", "/api/schedules", Some(token), Some(body)).await;
    assert_eq!(resp.status(), 201, "{}", String::from_utf8_lossy(&body_bytes(&resp)));
    body_json(&resp)
}

pub async fn get(ctx: &AppContext, token: &str, id: &str) -> Value {
    let resp = call(ctx, "GET", &format!("/api/schedules/{id}"), Some(token), None).await;
    assert_eq!(resp.status(), 200, "{}", String::from_utf8_lossy(&body_bytes(&resp)));
    body_json(&resp)
}

/// One tick at `when`, then every job it created run by the worker.
pub async fn tick_and_run(ctx: &AppContext, clock: &FixedClock, when: &str) -> TickReport {
    clock.set(t(when));
    let report = tick::tick(ctx, t(when)).await;
    assert_eq!(report.failed, 0, "{report:?}");
    for id in &report.created {
        worker::process(ctx, id).await.expect("job processed");
    }
    report
}

pub async fn download(ctx: &AppContext, token: &str, job_id: &str) -> Vec<u8> {
    let resp = call(
        ctx,
        "GET",
        &format!("/api/exports/{job_id}/download"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(resp.status(), 303, "{}", String::from_utf8_lossy(&body_bytes(&resp)));
    fetch(header(&resp, "location")).await
}

pub async fn fetch(url: &str) -> Vec<u8> {
    let got = reqwest::get(url).await.unwrap();
    assert_eq!(got.status(), 200);
    got.bytes().await.unwrap().to_vec()
}

/// The first column of every CSV row (the id columns come first).
pub fn ids(csv: &[u8]) -> Vec<String> {
    parse_csv(csv).1.into_iter().map(|r| r[0].clone()).collect()
}

/// The `id` of every line of a JSON Lines file.
pub fn line_ids(jsonl: &[u8]) -> Vec<String> {
    crate::json_lines(jsonl)
        .iter()
        .map(|line| line["id"].as_str().unwrap().to_string())
        .collect()
}

/// Emails the SES emulator holds for an address.
pub async fn mail_to(address: &str) -> Vec<Value> {
    let base = std::env::var("AWS_ENDPOINT_URL_SESV2").expect("AWS_ENDPOINT_URL_SESV2 (local.env)");
    let bytes = reqwest::get(format!("{base}/store?since=0"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let store: Value = serde_json::from_slice(&bytes).unwrap();
    store["emails"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["destination"]["to"].as_array().unwrap().iter().any(|a| a == address))
        .cloned()
        .collect()
}

/// The API path and query of an emailed link.
pub fn link_of(email: &Value) -> String {
    let text = email["body"]["text"].as_str().unwrap();
    let url = text
        .lines()
        .find_map(|l| l.strip_prefix("Download: "))
        .expect("a download link");
    let at = url.find("/api/").unwrap();
    url[at..].to_string()
}

pub fn unique_address(test: &str) -> String {
    format!("{test}-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Lead `i` of `company`, created at `created`.
pub fn lead(i: usize, company: &str, created: DateTime<Utc>) -> Record {
    let Some(Record::Lead(mut l)) = synth::leads(7, i + 1).nth(i) else {
        panic!("a lead")
    };
    l.lead_id = format!("lead-{company}-{i:04}").into();
    l.company_id = company.into();
    l.created_at = created;
    l.updated_at = created;
    Record::Lead(l)
}

pub fn message(i: usize, client: &str, at: DateTime<Utc>) -> Record {
    let m = synth::chat_messages(9, 400)
        .filter_map(|r| match r {
            Record::ChatMessage(m) => Some(m),
            _ => None,
        })
        .nth(i % 400)
        .expect("a message");
    Record::ChatMessage(ChatMessage {
        id: format!("msg-{client}-{i:04}").into(),
        client_id: client.into(),
        timestamp: at,
        created_at: at,
        ..m
    })
}
