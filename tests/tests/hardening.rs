//! Regression tests for the defect classes an outside black-box suite found (issue 7):
//! repeated parameters, non-object bodies, oversized parameters and their audit,
//! read plans whose cost followed the calendar, open ranges that dropped rows, the
//! documented order, audited statuses, panics, and `exportctl serve`'s own limits.
//! Exact values (numbers, text, time) are in `round_trip.rs`; arbitrary input is in
//! `fuzz_routes.rs`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use common::{
    AppContext,
    auth::{Caller, Role},
    error::Error,
    http::{self, ErrorStyle, ExportRoute, Policy, RawRequest, pipeline::NoParams},
    load::Record,
    model::{ChatMessage, Lead, Session, SessionMessage},
    source::{Pages, SessionLine, Store},
    spec::{ExportSpec, FileOptions, SessionsSpec, TableFormat},
    synth,
};
use futures::{StreamExt, stream};
use integration_tests::*;
use lambda_http::{Body, Response};
use serde_json::{Value, json};

const SESSIONS: &str = sessions_export::PATH;
const LEADS: &str = leads_export::PATH;
const CHATS_POST: &str = chats_export::EXPORT_PATH;
const CHATS_GET: &str = chats_export::DOWNLOAD_PATH;

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn chat(id: &str, client: &str, at: &str) -> ChatMessage {
    ChatMessage {
        id: id.into(),
        client_id: client.into(),
        conversation_id: format!("conv-{client}").into(),
        session_id: Some(format!("sess-{id}").into()),
        from_name: "Embed User".into(),
        from_user_id: None,
        user_name: None,
        user_email: None,
        message: format!("message {id}").into(),
        reply: Some("reply".into()),
        timestamp: ts(at),
        created_at: ts(at),
        token_cost: 1,
        user_ip: Some("192.0.2.1".into()),
        user_agent: None,
        referrer: None,
        is_embed_user: true,
        geo_data: None,
    }
}

/// Messages of three clients spread over years, one far in the future.
fn spread_messages() -> Vec<ChatMessage> {
    vec![
        chat("m-07", "client-b", "2024-03-01T12:00:00Z"),
        chat("m-01", "client-a", "1999-12-31T23:59:59.999Z"),
        chat("m-05", "client-c", "2024-01-15T10:30:00Z"),
        chat("m-03", "client-b", "2024-01-15T10:30:00Z"),
        chat("m-02", "client-a", "2010-06-01T00:00:00Z"),
        chat("m-09", "client-a", "2099-01-01T00:00:00Z"),
        chat("m-04", "client-a", "2024-01-15T10:30:00Z"),
        chat("m-08", "client-c", "2030-01-01T00:00:00Z"),
        chat("m-06", "client-b", "2024-02-01T00:00:00Z"),
    ]
}

fn by_time(msgs: &[ChatMessage]) -> Vec<String> {
    let mut v: Vec<&ChatMessage> = msgs.iter().collect();
    v.sort_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
    v.into_iter().map(|m| m.id.to_string()).collect()
}

async fn get(stack: &TestStack, token: &str, path_and_query: &str) -> Response<Body> {
    let auth = format!("Bearer {token}");
    exportctl::serve::route(&stack.ctx, request("GET", path_and_query, &[("authorization", &auth)])).await
}

async fn post(stack: &TestStack, token: &str, path_and_query: &str, body: &[u8]) -> Response<Body> {
    let auth = format!("Bearer {token}");
    let req = request_with_body(
        "POST",
        path_and_query,
        &[("authorization", &auth), ("content-type", "application/json")],
        body,
    );
    exportctl::serve::route(&stack.ctx, req).await
}

fn message_ids(resp: &Response<Body>) -> Vec<String> {
    assert_eq!(resp.status(), 200, "{}", String::from_utf8_lossy(&body_bytes(resp)));
    body_json(resp)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn any_repeated_query_parameter_is_refused_on_every_route() {
    let stack = TestStack::new("hard-repeats").await;
    let admin = stack.admin_token();
    let cases = [
        (SESSIONS, "spreadsheet_safe=true&spreadsheet_safe=true"),
        (SESSIONS, "spreadsheet_safe=true&spreadsheet_safe=false"),
        (LEADS, "spreadsheet_safe=true&spreadsheet_safe=true"),
        (LEADS, "format=csv&format=csv"),
        (LEADS, "companyId=a&companyId=a"),
        (LEADS, "companyId=a&companyId=b"),
        (CHATS_GET, "format=json&format=json"),
        (CHATS_GET, "limit=1&limit=1"),
        (CHATS_GET, "include_geo=true&include_geo=true"),
        (CHATS_GET, "client_id=&client_id="),
    ];
    for (path, query) in cases {
        let resp = get(&stack, &admin, &format!("{path}?{query}")).await;
        assert_eq!(resp.status(), 400, "{path}?{query}");
        let body = body_json(&resp);
        assert_error_shape(&body, path == LEADS);
        let text = if path == LEADS {
            &body["error"]
        } else {
            &body["message"]
        };
        assert!(
            text.as_str().unwrap().contains("more than once"),
            "{path}?{query}: {body}"
        );
    }
    // A POST route takes no query parameters at all.
    let resp = post(&stack, &admin, &format!("{CHATS_POST}?format=json"), b"{}").await;
    assert_eq!(resp.status(), 400);
    assert_error_shape(&body_json(&resp), false);
}

#[tokio::test]
async fn a_request_body_must_be_a_json_object() {
    let stack = TestStack::new("hard-bodies").await;
    stack
        .load(spread_messages().into_iter().map(Record::ChatMessage).collect())
        .await;
    let admin = stack.admin_token();
    let bodies: [&[u8]; 7] = [
        br#"["json",null,null,null,null,5,true,true]"#,
        b"[]",
        b"null",
        br#""json""#,
        b"42",
        b"true",
        b"\xff\xfe",
    ];
    for body in bodies {
        let resp = post(&stack, &admin, CHATS_POST, body).await;
        assert_eq!(resp.status(), 400, "{}", String::from_utf8_lossy(body));
        let json = body_json(&resp);
        assert_error_shape(&json, false);
        assert_eq!(json["error_code"], "invalid_request");
    }
    assert!(stack.object_keys().await.is_empty(), "no export ran");
    let records = audit_records(&stack).await;
    assert_eq!(records.len(), bodies.len());
    assert!(records.iter().all(|r| r.status == 400 && r.outcome == "rejected"));
    // An empty body and an object still work.
    for body in [&b""[..], b"  ", b"{}", br#"{"format":"json"}"#] {
        assert_eq!(post(&stack, &admin, CHATS_POST, body).await.status(), 200);
    }
}

#[tokio::test]
async fn oversized_parameters_get_a_4xx_and_an_audit_record() {
    let stack = TestStack::new("hard-oversized").await;
    let admin = stack.admin_token();
    let mb = "x".repeat(1024 * 1024);
    let posts: Vec<(Value, u16)> = vec![
        (json!({ "format": mb }), 413),
        (json!({ "conversation_id": "c".repeat(450_000) }), 413),
        (json!({ "format": "x".repeat(5000) }), 400),
        (json!({ "conversation_id": "c".repeat(3000) }), 400),
        (json!({ "client_id": "c".repeat(129) }), 400),
        (json!({ "date_from": "2".repeat(1000) }), 400),
    ];
    let gets: Vec<(String, u16)> = vec![
        (format!("format={}", "x".repeat(5000)), 400),
        (format!("conversation_id={}", "c".repeat(2000)), 400),
        (format!("date_to={}", "9".repeat(100)), 400),
        (format!("format={}", "x".repeat(11_000)), 414),
        (format!("{}=1", "k".repeat(3000)), 400),
    ];
    for (body, status) in &posts {
        let resp = post(&stack, &admin, CHATS_POST, body.to_string().as_bytes()).await;
        assert_eq!(resp.status(), *status);
        assert_error_shape(&body_json(&resp), false);
        assert!(body_bytes(&resp).len() < 1024, "the answer does not echo the input");
    }
    for (query, status) in &gets {
        let resp = get(&stack, &admin, &format!("{CHATS_GET}?{query}")).await;
        assert_eq!(resp.status(), *status, "{}", &query[..40]);
        assert_error_shape(&body_json(&resp), false);
        assert!(body_bytes(&resp).len() < 1024);
    }
    // Every attempt is recorded, with its status and a bounded copy of its parameters.
    let records = audit_records(&stack).await;
    assert_eq!(records.len(), posts.len() + gets.len());
    let mut statuses: Vec<u16> = records.iter().map(|r| r.status).collect();
    let mut want: Vec<u16> = posts.iter().map(|p| p.1).chain(gets.iter().map(|g| g.1)).collect();
    statuses.sort_unstable();
    want.sort_unstable();
    assert_eq!(statuses, want);
    for r in &records {
        assert_eq!(
            (r.outcome.as_str(), r.caller.as_deref()),
            ("rejected", Some("admin-test"))
        );
        assert!(r.parameters.as_deref().is_some_and(|p| p.len() <= 4096), "bounded");
    }
    // Other routes bound their parameters too.
    for (path, query) in [
        (LEADS, format!("search={}", "s".repeat(201))),
        (
            LEADS,
            format!(
                "companyId={}",
                (0..101).map(|i| format!("c{i}")).collect::<Vec<_>>().join(",")
            ),
        ),
        (LEADS, format!("columns={}", "Email,".repeat(400))),
        (SESSIONS, format!("spreadsheet_safe={}", "t".repeat(3000))),
    ] {
        let resp = get(&stack, &admin, &format!("{path}?{query}")).await;
        assert_eq!(resp.status(), 400, "{path}");
        assert_error_shape(&body_json(&resp), path == LEADS);
    }
}

#[tokio::test]
async fn a_refused_request_keeps_its_4xx_when_the_audit_table_is_unreachable() {
    let mut stack = TestStack::new("hard-audit-down").await;
    let mut config = (*stack.ctx.config).clone();
    config.tables.audit = format!("{}-absent", config.tables.audit);
    stack.ctx = AppContext::new(config, stack.ctx.aws.clone());
    let admin = stack.admin_token();
    assert_eq!(get(&stack, &admin, &format!("{CHATS_GET}?limit=0")).await.status(), 400);
    assert_eq!(get(&stack, "not-a-token", CHATS_GET).await.status(), 401);
    // A successful export that cannot be recorded is still refused and deleted.
    let resp = post(&stack, &admin, CHATS_POST, b"{}").await;
    assert_eq!(resp.status(), 500);
    assert!(stack.object_keys().await.is_empty());
}

#[tokio::test]
async fn a_range_read_costs_what_it_returns_not_the_calendar() {
    let stack = TestStack::new("hard-ranges").await;
    let msgs = spread_messages();
    stack
        .load(msgs.iter().cloned().map(Record::ChatMessage).collect())
        .await;
    let admin = stack.admin_token();
    let all = by_time(&msgs);
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("date_from=0001-01-01", all.clone()),
        ("date_to=9999-12-31", all.clone()),
        ("date_from=0000-01-01&date_to=9999-12-31", all.clone()),
        ("date_from=0001-01-01&limit=1", all[..1].to_vec()),
        ("date_to=9999-12-31T23:59:59.999Z&limit=2", all[..2].to_vec()),
        ("date_from=2024-01-15&date_to=2024-02-01", all[2..6].to_vec()),
        ("date_from=2100-01-01", vec![]),
    ];
    for (query, want) in cases {
        let started = Instant::now();
        let resp = get(&stack, &admin, &format!("{CHATS_GET}?{query}")).await;
        let took = started.elapsed();
        assert_eq!(message_ids(&resp), want, "{query}");
        // The old plan ran one Query per calendar day: millions for these spans.
        assert!(took < Duration::from_secs(10), "{query} took {took:?}");
    }
    // The leads export over any span reads what matches, in Created At order.
    let leads: Vec<Lead> = synth::leads(5, 60)
        .map(|r| match r {
            Record::Lead(l) => l,
            _ => unreachable!(),
        })
        .collect();
    stack.load(leads.iter().cloned().map(Record::Lead).collect()).await;
    let started = Instant::now();
    let resp = get(
        &stack,
        &admin,
        &format!("{LEADS}?startDate=0001-01-01&endDate=9999-12-31&format=json&columns=lead_id,created_at"),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(10));
    let got: Vec<String> = body_json(&resp)
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["lead_id"].as_str().unwrap().to_string())
        .collect();
    let mut want = leads.clone();
    want.sort_by(|a, b| (a.created_at, &a.lead_id).cmp(&(b.created_at, &b.lead_id)));
    assert_eq!(got, want.iter().map(|l| l.lead_id.clone()).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_open_end_drops_no_row_and_limits_follow_time_order() {
    let stack = TestStack::new("hard-open-end").await;
    let msgs = spread_messages();
    stack
        .load(msgs.iter().cloned().map(Record::ChatMessage).collect())
        .await;
    let admin = stack.admin_token();
    let all = by_time(&msgs);
    // A start without an end reaches the far future (2099), summary included.
    let resp = get(&stack, &admin, &format!("{CHATS_GET}?date_from=2024-01-01")).await;
    let ids = message_ids(&resp);
    assert_eq!(ids, all[2..].to_vec());
    assert!(ids.contains(&"m-09".to_string()));
    let doc = body_json(&resp);
    assert_eq!(doc["summary"]["total_messages"], ids.len());
    assert_eq!(doc["summary"]["date_range"], "2024-01-15 to 2099-01-01");
    // An end without a start reaches the far past.
    let ids = message_ids(&get(&stack, &admin, &format!("{CHATS_GET}?date_to=2010-06-01")).await);
    assert_eq!(ids, ["m-01", "m-02"]);
    // `limit` without dates, for every client: the first messages in time order.
    for n in [1, 3, 5] {
        let ids = message_ids(&get(&stack, &admin, &format!("{CHATS_GET}?limit={n}")).await);
        assert_eq!(ids, all[..n].to_vec(), "limit={n}");
    }
    // Ties at one instant are broken by id, on every plan.
    let ids = message_ids(
        &get(
            &stack,
            &admin,
            &format!("{CHATS_GET}?date_from=2024-01-15T10:30:00Z&limit=3"),
        )
        .await,
    );
    assert_eq!(ids, ["m-03", "m-04", "m-05"]);
    let ids = message_ids(
        &get(
            &stack,
            &admin,
            &format!("{CHATS_GET}?client_id=client-a&date_from=2024-01-01"),
        )
        .await,
    );
    assert_eq!(ids, ["m-04", "m-09"]);
    // The same through a user's own scope.
    let user = stack.token(Role::User, "u-b", Some("client-b"), None);
    let ids = message_ids(&get(&stack, &user, &format!("{CHATS_GET}?date_from=2024-02-01")).await);
    assert_eq!(ids, ["m-06", "m-07"]);
}

#[tokio::test]
async fn the_audit_records_the_status_actually_sent() {
    let stack = TestStack::with_config("hard-audit-status", |c| c.delivery.inline_max_bytes = 64).await;
    stack
        .load(spread_messages().into_iter().map(Record::ChatMessage).collect())
        .await;
    let admin = stack.admin_token();
    let redirect = get(&stack, &admin, CHATS_GET).await;
    assert_eq!(redirect.status(), 303);
    let auth = format!("Bearer {admin}");
    let link = exportctl::serve::route(
        &stack.ctx,
        request(
            "GET",
            CHATS_GET,
            &[("authorization", &auth), ("accept", "application/json")],
        ),
    )
    .await;
    assert_eq!(link.status(), 200);
    assert_eq!(get(&stack, &admin, &format!("{CHATS_GET}?limit=x")).await.status(), 400);
    let records = audit_records(&stack).await;
    let statuses: Vec<(u16, &str)> = records.iter().map(|r| (r.status, r.outcome.as_str())).collect();
    assert_eq!(statuses, [(303, "success"), (200, "success"), (400, "rejected")]);
    assert!(records[0].s3_key.is_some() && records[0].records == Some(9));
}

/// Where the panicking route panics.
#[derive(Clone, Copy, PartialEq)]
enum PanicAt {
    Planning,
    Rows,
    /// After the file was stored in S3: building the answer.
    Answer,
}

/// A route that panics somewhere, to prove the pipeline's boundary.
struct Panicking {
    at: PanicAt,
}

impl ExportRoute for Panicking {
    type Params = NoParams;

    fn policy(&self) -> Policy {
        match self.at {
            PanicAt::Answer => Policy::body_stored("POST /panic", "panic"),
            _ => Policy::query("GET /panic", "panic"),
        }
    }

    fn stored_answer(&self, _format: &str, _finished: &common::delivery::Finished) -> Value {
        panic!("the answer panicked")
    }

    fn error_style(&self, _req: &RawRequest) -> ErrorStyle {
        ErrorStyle::Code {
            failure: "Failed to export panics",
            invalid: None,
        }
    }

    fn spec(&self, _ctx: &AppContext, _caller: &Caller, _p: NoParams, now: DateTime<Utc>) -> Result<ExportSpec, Error> {
        if self.at == PanicAt::Planning {
            panic!("planning panicked");
        }
        Ok(ExportSpec::Sessions(SessionsSpec {
            as_of: now,
            format: TableFormat::Csv,
            options: FileOptions::default(),
        }))
    }
}

/// A store whose session lines panic after ten 1 MiB pages (past a multipart part).
struct PanickingStore;

impl Store for PanickingStore {
    fn session_lines(&self, _as_of: DateTime<Utc>) -> Pages<SessionLine> {
        let session = Arc::new(Session {
            session_id: "s".into(),
            user_id: "u".into(),
            started_at: Utc::now(),
        });
        stream::iter(0..20)
            .map(move |i| {
                if i == 10 {
                    panic!("a row panicked");
                }
                Ok(vec![SessionLine {
                    session: session.clone(),
                    message: Some(SessionMessage {
                        session_id: "s".into(),
                        message_id: format!("m{i}").into(),
                        content: "x".repeat(1024 * 1024).into(),
                        sender: "bot".into(),
                        timestamp: Utc::now(),
                    }),
                }])
            })
            .boxed()
    }

    fn leads(&self, _f: &common::kinds::leads::LeadFilter, _a: DateTime<Utc>) -> Pages<Lead> {
        stream::empty().boxed()
    }

    fn chat_messages(&self, _f: &common::kinds::chats::ChatFilter, _a: DateTime<Utc>) -> Pages<ChatMessage> {
        stream::empty().boxed()
    }

    fn conversation_messages(&self, _f: &common::kinds::chats::ChatFilter, _a: DateTime<Utc>) -> Pages<ChatMessage> {
        stream::empty().boxed()
    }
}

#[tokio::test]
async fn a_panic_answers_the_routes_json_500_and_the_next_request_is_served() {
    let stack = TestStack::new("hard-panic").await;
    let auth = format!("Bearer {}", stack.admin_token());
    let panicking_rows = stack.ctx.clone().with_store(Arc::new(PanickingStore));
    for at in [PanicAt::Planning, PanicAt::Rows, PanicAt::Answer] {
        let ctx = if at == PanicAt::Rows {
            &panicking_rows
        } else {
            &stack.ctx
        };
        let method = if at == PanicAt::Answer { "POST" } else { "GET" };
        let resp = http::handle(
            ctx,
            request(
                method,
                "/panic",
                &[("authorization", &auth), ("accept", "application/json")],
            ),
            &Panicking { at },
        )
        .await;
        assert_eq!(resp.status(), 500);
        let body = body_json(&resp);
        assert_eq!(
            body,
            json!({"error_code": "export_failed", "message": "Failed to export panics: internal error"})
        );
    }
    assert!(stack.object_keys().await.is_empty(), "no object from a panicked export");
    let records = audit_records(&stack).await;
    assert_eq!(records.len(), 3);
    assert!(
        records
            .iter()
            .all(|r| r.status == 500 && r.outcome == "failed" && r.s3_key.is_none())
    );
    // The same process goes on serving.
    let resp = get(&stack, &stack.admin_token(), SESSIONS).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn the_release_profile_unwinds() {
    let manifest = std::fs::read_to_string(format!("{}/../Cargo.toml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let release = manifest.split("[profile.release]").nth(1).unwrap();
    assert!(
        !release.contains("\"abort\""),
        "panic = \"abort\" would kill the runtime"
    );
}

#[tokio::test]
async fn serve_refuses_a_body_cut_short_and_never_dispatches_it() {
    let stack = TestStack::new("hard-cut-body").await;
    stack
        .load(spread_messages().into_iter().map(Record::ChatMessage).collect())
        .await;
    let server = start_server(&stack.ctx).await;
    let token = stack.admin_token();
    let request = format!(
        "POST {CHATS_POST} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{{\"format\":"
    );
    let resp = raw_exchange(server.addr, request.as_bytes()).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let body = resp.json();
    assert_error_shape(&body, false);
    assert_eq!(
        body["message"],
        "Invalid export request: the request body could not be read completely"
    );
    assert!(stack.object_keys().await.is_empty(), "nothing was exported");
    assert!(audit_records(&stack).await.is_empty(), "the handler never ran");
}

#[tokio::test]
async fn serve_answers_its_limits_in_the_routes_json_shape() {
    let stack = TestStack::new("hard-serve-limits").await;
    let server = start_server(&stack.ctx).await;
    let token = stack.admin_token();
    let head = |target: &str, extra: &str| {
        format!("GET {target} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n{extra}\r\n")
    };
    let cases = [
        (
            head(&format!("{CHATS_GET}?format={}", "x".repeat(1024 * 1024)), ""),
            414,
            false,
        ),
        (
            head(&format!("{CHATS_GET}?format={}", "x".repeat(70 * 1024)), ""),
            414,
            false,
        ),
        (
            head(&format!("{LEADS}?search={}", "x".repeat(20 * 1024)), ""),
            414,
            true,
        ),
        (
            head(
                &format!("{SESSIONS}?a={}", "x".repeat(9000)),
                &format!("x-big: {}\r\n", "y".repeat(2000)),
            ),
            431,
            false,
        ),
        (head(LEADS, &format!("x-big: {}\r\n", "y".repeat(11 * 1024))), 431, true),
        (
            head(LEADS, &(0..120).map(|i| format!("x-h{i}: 1\r\n")).collect::<String>()),
            431,
            true,
        ),
        ("BROKEN\r\n\r\n".to_string(), 400, false),
    ];
    for (request, status, leads) in cases {
        let resp = raw_exchange(server.addr, request.as_bytes()).await;
        assert_eq!(resp.status, status, "{}", &request[..60.min(request.len())]);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        let body = resp.json();
        assert_error_shape(&body, leads);
        if !leads && status != 400 {
            assert_eq!(body["error_code"], "request_too_large");
        }
    }
    // A body over API Gateway's 10 MB payload limit.
    let big = vec![b' '; 10 * 1024 * 1024 + 1];
    let mut request = format!(
        "POST {CHATS_POST} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-length: {}\r\n\r\n",
        big.len()
    )
    .into_bytes();
    request.extend_from_slice(&big);
    let resp = raw_exchange(server.addr, &request).await;
    assert_eq!(resp.status, 413);
    assert_error_shape(&resp.json(), false);
    // Within the limits the server answers as before.
    let resp = raw_exchange(server.addr, head(SESSIONS, "").as_bytes()).await;
    assert_eq!(resp.status, 200);
}
