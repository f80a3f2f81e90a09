//! Property tests: arbitrary query strings, bodies and headers against every real
//! route, with the local stack up and data loaded. Whatever arrives, the answer is a
//! success, or a 4xx in the route's documented JSON shape: never a 5xx, a panic, a
//! non-JSON error, or a leaked internal string, token or secret.
//!
//! `PROPTEST_CASES` sets the number of cases per property (default 256; 12,000 ran clean).

use common::{auth::Role, load::Record, synth};
use integration_tests::*;
use lambda_http::{Body, Response};
use proptest::{prelude::*, test_runner::TestRunner};
use serde_json::Value;

/// Names every route knows, so many cases reach the typed decoders.
const NAMES: &[&str] = &[
    "format",
    "date_from",
    "date_to",
    "client_id",
    "conversation_id",
    "limit",
    "include_geo",
    "include_meta",
    "companyId",
    "chatbotId",
    "confidence",
    "category",
    "language",
    "startDate",
    "endDate",
    "status",
    "search",
    "columns",
    "spreadsheet_safe",
    "compression",
    "bom",
    "time_zone",
    "cursor",
    "owner",
    "kind",
];

/// Values that sit on boundaries of the typed parameters.
const VALUES: &[&str] = &[
    "",
    " ",
    "0",
    "-1",
    "1",
    "1000000",
    "1000001",
    "2147483648",
    "99999999999999999999999",
    "1.5",
    "1e3",
    "NaN",
    "true",
    "FALSE",
    "yes",
    "2024-01-01",
    "0000-01-01",
    "9999-12-31",
    "9999-12-31T23:59:59-01:00",
    "0000-01-01T00:00:00+01:00",
    "2024-02-30",
    "2024-01-01T00:00:00.123456789Z",
    "json",
    "excel",
    "both",
    "csv",
    "xlsx",
    "EXCEL",
    "high",
    "hi_transliterated",
    "Lead ID,Email",
    "lead_id,lead_id",
    "a,,b",
    "client-alpha",
    "client-beta",
    "comp-acme",
    "comp-globex",
    "<script>alert(1)</script>",
    "'; DROP TABLE x; --",
    "\u{0}\u{1}\r\n",
    "😀",
    "gzip",
    "zip",
    "none",
    "UTC",
    "europe/berlin",
    "Pacific/Kiritimati",
    "Etc/GMT+12",
    "America/Santiago",
    "Mars/Olympus",
];

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(NAMES).prop_map(String::from),
        1 => "[a-zA-Z_]{1,12}",
        1 => any::<String>().prop_map(|s| s.chars().take(16).collect()),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(VALUES).prop_map(String::from),
        2 => any::<String>().prop_map(|s| s.chars().take(40).collect()),
        1 => (0i64..2_000_000).prop_map(|n| n.to_string()),
        1 => (1usize..3000).prop_map(|n| "x".repeat(n)),
    ]
}

/// A query string: encoded pairs (repeats included), or raw URI characters.
fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec((name(), value()), 0..6).prop_map(|pairs| {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &pairs {
                s.append_pair(k, v);
            }
            s.finish()
        }),
        1 => "[A-Za-z0-9%&=+._~:@!$'()*,;/?-]{0,80}",
    ]
}

/// Any JSON value, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop::sample::select(VALUES).prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((name(), inner), 0..4).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec((prop::sample::select(NAMES), json_value()), 0..5).prop_map(|kv| {
            let map: serde_json::Map<String, Value> = kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            Value::Object(map).to_string().into_bytes()
        }),
        2 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => (0usize..40_000).prop_map(|n| format!(r#"{{"format":"{}"}}"#, "j".repeat(n)).into_bytes()),
    ]
}

/// A job request: mostly well-formed `{kind, format, params}` with fuzzed contents.
fn job_body() -> impl Strategy<Value = Vec<u8>> {
    let kind = prop_oneof![
        4 => prop::sample::select(&["sessions", "leads", "chats", "conversations"][..]).prop_map(Value::from),
        1 => json_value(),
    ];
    let params = prop::collection::vec((prop::sample::select(NAMES), json_value()), 0..5)
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()));
    prop_oneof![
        4 => (kind, prop::option::of(value()), prop::option::of(params)).prop_map(|(kind, format, params)| {
            let mut o = serde_json::Map::new();
            o.insert("kind".into(), kind);
            if let Some(f) = format {
                o.insert("format".into(), Value::from(f));
            }
            if let Some(p) = params {
                o.insert("params".into(), p);
            }
            Value::Object(o).to_string().into_bytes()
        }),
        1 => body(),
    ]
}

/// Who calls: a valid admin or user token, a token without tenants, or garbage.
#[derive(Clone, Debug)]
enum Auth {
    Admin,
    User,
    UserWithoutTenant,
    Raw(String),
    None,
}

fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        3 => Just(Auth::Admin),
        2 => Just(Auth::User),
        1 => Just(Auth::UserWithoutTenant),
        1 => "[ -~]{0,60}".prop_map(Auth::Raw),
        1 => "Bearer [A-Za-z0-9._-]{0,80}".prop_map(Auth::Raw),
        1 => Just(Auth::None),
    ]
}

fn accept() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/json".to_string())),
        Just(Some("text/csv, */*".to_string())),
        "[ -~]{0,30}".prop_map(Some),
    ]
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    stack: TestStack,
    tokens: [String; 3],
    secret: String,
}

fn fixture(name: &str) -> Fixture {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let stack = rt.block_on(async {
        let stack = TestStack::with_config(name, |c| {
            c.chat.per_user_per_minute = 1_000_000;
            c.chat.per_client_per_hour = 1_000_000;
        })
        .await;
        let records: Vec<Record> = synth::sessions(3, 15)
            .chain(synth::leads(3, 40))
            .chain(synth::chat_messages(3, 80))
            .collect();
        stack.load(records).await;
        stack
    });
    let tokens = [
        stack.admin_token(),
        stack.token(Role::User, "fuzz-user", Some("client-alpha"), Some("comp-acme")),
        stack.token(Role::User, "fuzz-none", None, None),
    ];
    let secret = String::from_utf8(stack.ctx.config.jwt.secret.clone()).expect("utf-8 secret");
    Fixture {
        rt,
        stack,
        tokens,
        secret,
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn runner() -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

impl Fixture {
    fn call(
        &self,
        method: &str,
        path: &str,
        query: &str,
        auth: &Auth,
        accept: &Option<String>,
        body: &[u8],
    ) -> Response<Body> {
        let mut headers: Vec<(String, String)> = Vec::new();
        let bearer = |t: &str| format!("Bearer {t}");
        match auth {
            Auth::Admin => headers.push(("authorization".into(), bearer(&self.tokens[0]))),
            Auth::User => headers.push(("authorization".into(), bearer(&self.tokens[1]))),
            Auth::UserWithoutTenant => headers.push(("authorization".into(), bearer(&self.tokens[2]))),
            Auth::Raw(v) => headers.push(("authorization".into(), v.clone())),
            Auth::None => {}
        }
        if let Some(a) = accept {
            headers.push(("accept".into(), a.clone()));
        }
        let event = exportctl::serve::api_gateway_event(method, path, query, &headers, body, "127.0.0.1");
        let req = lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway event");
        self.rt.block_on(exportctl::serve::route(&self.stack.ctx, req))
    }

    /// The answer is a success, or a 4xx in the route's shape without internals.
    fn check(&self, resp: &Response<Body>, leads: bool, sent: &str) -> Result<(), TestCaseError> {
        let status = resp.status().as_u16();
        let bytes = body_bytes(resp);
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(status < 500, "{sent} -> {status}: {text}");
        for leaked in [self.secret.as_str(), &self.tokens[0], &self.tokens[1], &self.tokens[2]] {
            prop_assert!(!text.contains(leaked), "{sent}: a token or the secret leaked");
        }
        if status >= 400 {
            prop_assert_eq!(header(resp, "content-type"), "application/json");
            let body: Value =
                serde_json::from_slice(&bytes).map_err(|e| TestCaseError::fail(format!("{sent}: {e}: {text}")))?;
            let o = body
                .as_object()
                .ok_or_else(|| TestCaseError::fail(format!("{sent}: {text}")))?;
            if leads {
                prop_assert_eq!(o.len(), 3, "{}: {}", sent, text);
                prop_assert_eq!(&o["success"], &Value::Bool(false));
            } else {
                prop_assert_eq!(o.len(), 2, "{}: {}", sent, text);
                prop_assert!(o["error_code"].is_string());
            }
            let lower = text.to_lowercase();
            for internal in [
                "panic",
                "backtrace",
                "dynamodb",
                "service error",
                "dispatch failure",
                "src/",
                ".rs:",
            ] {
                prop_assert!(!lower.contains(internal), "{sent}: internal text in {text}");
            }
            prop_assert!(bytes.len() < 2048, "{sent}: an error answer of {} bytes", bytes.len());
        }
        Ok(())
    }
}

fn fuzz_get(route_name: &str, path: &str, leads: bool) {
    let f = fixture(route_name);
    let mut runner = runner();
    runner
        .run(&(query(), auth(), accept()), |(query, auth, accept)| {
            let resp = f.call("GET", path, &query, &auth, &accept, b"");
            f.check(&resp, leads, &format!("GET {path}?{query} {auth:?}"))
        })
        .unwrap();
}

#[test]
fn sessions_export_answers_any_request_within_its_contract() {
    fuzz_get("fuzz-sessions", sessions_export::PATH, false);
}

#[test]
fn leads_export_answers_any_request_within_its_contract() {
    fuzz_get("fuzz-leads", leads_export::PATH, true);
}

#[test]
fn chats_download_answers_any_request_within_its_contract() {
    fuzz_get("fuzz-chats-get", chats_export::DOWNLOAD_PATH, false);
}

#[test]
fn conversations_export_answers_any_request_within_its_contract() {
    fuzz_get("fuzz-conversations", chats_export::CONVERSATIONS_PATH, false);
}

#[test]
fn chats_post_answers_any_request_within_its_contract() {
    let f = fixture("fuzz-chats-post");
    let mut runner = runner();
    let query = prop_oneof![4 => Just(String::new()), 1 => query()];
    runner
        .run(&(body(), query, auth(), accept()), |(body, query, auth, accept)| {
            let resp = f.call("POST", chats_export::EXPORT_PATH, &query, &auth, &accept, &body);
            let shown = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
            f.check(&resp, false, &format!("POST ?{query} {shown} {auth:?}"))
        })
        .unwrap();
}

#[test]
fn job_api_answers_any_request_within_its_contract() {
    let f = fixture("fuzz-jobs");
    let mut runner = runner();
    let id = prop_oneof![
        Just("0123456789abcdef0123456789abcdef".to_string()),
        "[0-9a-f]{32}",
        "[ -~]{0,40}".prop_map(|s| s.replace(['/', '?', '#', ' ', '%'], "")),
    ];
    let sub = prop_oneof![Just(""), Just("/download")];
    let method = prop::sample::select(&["GET", "DELETE", "POST"][..]);
    runner
        .run(
            &(job_body(), query(), auth(), accept(), id, sub, method),
            |(body, query, auth, accept, id, sub, method)| {
                let resp = f.call("POST", common::jobs::api::JOBS_PATH, "", &auth, &accept, &body);
                let shown = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
                f.check(&resp, false, &format!("POST /api/exports {shown} {auth:?}"))?;
                let resp = f.call("GET", common::jobs::api::JOBS_PATH, &query, &auth, &accept, b"");
                f.check(&resp, false, &format!("GET /api/exports?{query} {auth:?}"))?;
                let path = format!("{}/{id}{sub}", common::jobs::api::JOBS_PATH);
                let resp = f.call(method, &path, &query, &auth, &accept, b"");
                f.check(&resp, false, &format!("{method} {path}?{query} {auth:?}"))
            },
        )
        .unwrap();
}

/// A schedule request: mostly well-formed, with fuzzed cadences, zones, windows,
/// recipients and exports.
fn schedule_body() -> impl Strategy<Value = Vec<u8>> {
    let cadence = prop_oneof![
        2 => prop::sample::select(&["0 2 * * *", "*/5 * * * *", "0 0 L * *", "0 2 * *", "99 * * * *", "@daily", ""][..])
            .prop_map(|c| ("cron", Value::from(c))),
        2 => prop::sample::select(&["1 hour", "rate(15 minutes)", "0 days", "1 fortnight", "9999999999 days"][..])
            .prop_map(|r| ("rate", Value::from(r))),
        1 => json_value().prop_map(|v| ("cron", v)),
    ];
    let zone = prop_oneof![
        Just(Value::from("Europe/Berlin")),
        Just(Value::from("utc")),
        value().prop_map(Value::from),
        json_value(),
    ];
    let window = prop_oneof![
        prop::sample::select(&["none", "previous_period", "incremental"][..]).prop_map(Value::from),
        json_value(),
    ];
    let emails = prop::collection::vec(
        prop_oneof![
            Just(Value::from("ops@example.com")),
            value().prop_map(Value::from),
            json_value()
        ],
        0..3,
    );
    prop_oneof![
        4 => (job_body(), cadence, prop::option::of(zone), prop::option::of(window), prop::option::of(emails),
              prop::option::of(json_value()))
            .prop_map(|(export, (key, cadence), zone, window, emails, extra)| {
                let mut o = serde_json::Map::new();
                o.insert("name".into(), Value::from("fuzz"));
                let export: Value = serde_json::from_slice(&export).unwrap_or(Value::Null);
                o.insert("export".into(), export);
                o.insert(key.into(), cadence);
                if let Some(z) = zone {
                    o.insert("time_zone".into(), z);
                }
                if let Some(w) = window {
                    o.insert("window".into(), w);
                }
                if let Some(e) = emails {
                    o.insert("notify".into(), serde_json::json!({"emails": e}));
                }
                if let Some(x) = extra {
                    o.insert("lag_seconds".into(), x);
                }
                Value::Object(o).to_string().into_bytes()
            }),
        1 => body(),
    ]
}

#[test]
fn schedules_api_answers_any_request_within_its_contract() {
    let f = fixture("fuzz-schedules");
    let mut runner = runner();
    let id = prop_oneof![
        Just("0123456789abcdef0123456789abcdef".to_string()),
        Just("preview".to_string()),
        "[ -~]{0,40}".prop_map(|s| s.replace(['/', '?', '#', ' ', '%'], "")),
    ];
    let method = prop::sample::select(&["GET", "PATCH", "DELETE", "POST"][..]);
    runner
        .run(
            &(schedule_body(), query(), auth(), accept(), id, method),
            |(body, query, auth, accept, id, method)| {
                let shown = String::from_utf8_lossy(&body[..body.len().min(160)]).into_owned();
                for route in [
                    common::schedules::api::SCHEDULES_PATH,
                    common::schedules::api::PREVIEW_PATH,
                ] {
                    let resp = f.call("POST", route, "", &auth, &accept, &body);
                    f.check(&resp, false, &format!("POST {route} {shown} {auth:?}"))?;
                }
                let resp = f.call(
                    "GET",
                    common::schedules::api::SCHEDULES_PATH,
                    &query,
                    &auth,
                    &accept,
                    b"",
                );
                f.check(&resp, false, &format!("GET /api/schedules?{query} {auth:?}"))?;
                let path = format!("{}/{id}", common::schedules::api::SCHEDULES_PATH);
                let resp = f.call(method, &path, &query, &auth, &accept, &body);
                f.check(&resp, false, &format!("{method} {path}?{query} {shown} {auth:?}"))
            },
        )
        .unwrap();
}

/// A raw HTTP/1.1 request: any method, target bytes, header bytes and body length.
fn raw_request(tokens: [String; 3]) -> impl Strategy<Value = Vec<u8>> {
    let method = prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "OPTIONS", "G=T", ""]);
    let path = prop::sample::select(vec![
        sessions_export::PATH,
        leads_export::PATH,
        chats_export::EXPORT_PATH,
        chats_export::DOWNLOAD_PATH,
        chats_export::CONVERSATIONS_PATH,
        "/",
        "/nope",
    ]);
    let byte = any::<u8>().prop_filter("no line ends or spaces", |b| !b"\r\n ".contains(b));
    let target_tail = prop_oneof![
        2 => query().prop_map(|q| format!("?{q}").into_bytes()),
        1 => prop::collection::vec(byte.clone(), 0..40),
    ];
    let header = (
        prop_oneof![
            prop::sample::select(vec![
                "authorization",
                "accept",
                "content-type",
                "host",
                "x-forwarded-proto",
                "content-length",
                "transfer-encoding"
            ])
            .prop_map(|s| s.as_bytes().to_vec()),
            prop::collection::vec(byte.clone(), 0..12),
        ],
        prop_oneof![
            prop::sample::select(tokens.to_vec()).prop_map(|t| format!("Bearer {t}").into_bytes()),
            prop::collection::vec(byte, 0..40),
        ],
    );
    let body = prop_oneof![Just(None), prop::collection::vec(any::<u8>(), 0..64).prop_map(Some)];
    (method, path, target_tail, prop::collection::vec(header, 0..6), body).prop_map(|(m, p, tail, headers, body)| {
        let mut out = format!("{m} {p}").into_bytes();
        out.extend_from_slice(&tail);
        out.extend_from_slice(b" HTTP/1.1\r\nhost: x\r\n");
        for (name, value) in headers {
            out.extend_from_slice(&name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(&value);
            out.extend_from_slice(b"\r\n");
        }
        if let Some(body) = &body {
            out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body.as_deref().unwrap_or_default());
        out
    })
}

#[test]
fn serve_answers_any_raw_request_in_json() {
    let f = fixture("fuzz-serve");
    let server = f.rt.block_on(start_server(&f.stack.ctx));
    let mut runner = runner();
    runner
        .run(&raw_request(f.tokens.clone()), |request| {
            let resp = f.rt.block_on(raw_exchange(server.addr, &request));
            let shown = String::from_utf8_lossy(&request[..request.len().min(160)]).into_owned();
            prop_assert!(resp.status < 500, "{shown} -> {}", resp.status);
            if resp.status >= 400 && !request.starts_with(b"HEAD") {
                prop_assert_eq!(resp.header("content-type"), Some("application/json"), "{}", shown);
                let body: Value =
                    serde_json::from_slice(&resp.body).map_err(|e| TestCaseError::fail(format!("{shown}: {e}")))?;
                prop_assert!(body.is_object(), "{}", shown);
            }
            Ok(())
        })
        .unwrap();
}
