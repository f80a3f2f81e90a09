//! Harness for integration tests: every test gets its own tables and bucket on the
//! local emulators (so tests run in parallel and compare exact contents), and calls
//! the real handlers with API Gateway v2 events.

use std::collections::BTreeMap;

use common::{
    AppContext,
    auth::{self, Claims, Role},
    aws::{self, AwsClients},
    config::{Config, TableNames},
    schema,
    store::{self, Record},
};
use lambda_http::{Body, Request, Response};

pub mod proxy;

pub struct TestStack {
    pub ctx: AppContext,
}

fn require_env() {
    if std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_err() || std::env::var("JWT_SECRET").is_err() {
        panic!(
            "integration tests need the local stack and its environment: run `make test`, or \
             `make stack` then `set -a; . ./local.env; set +a; cargo test --workspace`"
        );
    }
}

impl TestStack {
    /// Fresh tables and bucket named after the test, configuration from local.env.
    pub async fn new(test: &str) -> Self {
        Self::with_config(test, |_| {}).await
    }

    pub async fn with_config(test: &str, adjust: impl FnOnce(&mut Config)) -> Self {
        require_env();
        let mut config = Config::from_env().expect("local.env configuration");
        let id = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("t{}-{}", &id[..8], test.replace('_', "-"));
        config.tables = TableNames {
            sessions: format!("{prefix}-sessions"),
            session_messages: format!("{prefix}-session-messages"),
            leads: format!("{prefix}-leads"),
            chat_messages: format!("{prefix}-chat-messages"),
            rate_limits: format!("{prefix}-rate-limits"),
            audit: format!("{prefix}-audit"),
        };
        let bucket: String = prefix.chars().take(63).collect();
        config.delivery.bucket = bucket.trim_end_matches('-').to_string();
        adjust(&mut config);
        config.validate().expect("valid test configuration");
        let aws = aws::load().await;
        schema::create_tables(&aws.dynamodb, &config.tables)
            .await
            .expect("create tables");
        schema::create_bucket(&aws.s3, &config.delivery.bucket)
            .await
            .expect("create bucket");
        Self {
            ctx: AppContext::new(config, aws),
        }
    }

    /// The same stack with S3 reached through another endpoint (a fault proxy).
    pub fn with_s3_endpoint(&self, endpoint: &str) -> AppContext {
        let s3_config = self
            .ctx
            .aws
            .s3
            .config()
            .to_builder()
            .endpoint_url(endpoint)
            .force_path_style(true)
            .build();
        AppContext::new(
            (*self.ctx.config).clone(),
            AwsClients {
                dynamodb: self.ctx.aws.dynamodb.clone(),
                s3: aws_sdk_s3::Client::from_conf(s3_config),
            },
        )
    }

    pub async fn load(&self, records: Vec<Record>) {
        store::write_records(&self.ctx.aws.dynamodb, &self.ctx.config.tables, records)
            .await
            .expect("load records");
    }

    pub fn token(&self, role: Role, sub: &str, client_id: Option<&str>, company_id: Option<&str>) -> String {
        let now = auth::now_secs();
        auth::mint(
            &self.ctx.config.jwt,
            &Claims {
                sub: sub.into(),
                role,
                client_id: client_id.map(Into::into),
                company_id: company_id.map(Into::into),
                exp: now + 600,
                iat: Some(now),
                nbf: None,
                iss: self.ctx.config.jwt.issuer.clone(),
                aud: self.ctx.config.jwt.audience.clone(),
            },
        )
    }

    pub fn admin_token(&self) -> String {
        self.token(Role::Admin, "admin-test", None, None)
    }

    /// Every object key in the test's bucket.
    pub async fn object_keys(&self) -> Vec<String> {
        let out = self
            .ctx
            .aws
            .s3
            .list_objects_v2()
            .bucket(&self.ctx.config.delivery.bucket)
            .send()
            .await
            .expect("list objects");
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(String::from))
            .collect()
    }
}

/// An API Gateway v2 request, built exactly as `exportctl serve` builds it.
pub fn request(method: &str, path_and_query: &str, headers: &[(&str, &str)]) -> Request {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let event = exportctl::serve::api_gateway_event(method, path, query, &headers, b"", "127.0.0.1");
    lambda_http::request::from_str(&event.to_string()).expect("valid event")
}

/// A request from a file in `events/`.
pub fn event_file(name: &str) -> Request {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn body_bytes(resp: &Response<Body>) -> Vec<u8> {
    match resp.body() {
        Body::Empty => vec![],
        Body::Text(s) => s.as_bytes().to_vec(),
        Body::Binary(b) => b.clone(),
        _ => vec![],
    }
}

pub fn body_json(resp: &Response<Body>) -> serde_json::Value {
    serde_json::from_slice(&body_bytes(resp)).expect("JSON body")
}

pub fn header<'a>(resp: &'a Response<Body>, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_str()
        .expect("ASCII header")
}

/// Parses CSV strictly (every record must have the header's width).
pub fn parse_csv(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(bytes);
    let header = rdr.headers().expect("header").iter().map(String::from).collect();
    let rows = rdr
        .records()
        .map(|r| r.expect("well-formed CSV record").iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// The rows the sessions export must produce for these records, computed
/// independently of the export code: per session, messages by (timestamp, id);
/// a session without messages is one row with empty message columns.
pub fn expected_session_rows(records: &[Record], guard: impl Fn(&str) -> String) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut sessions = BTreeMap::new();
    let mut messages: BTreeMap<String, Vec<&common::model::SessionMessage>> = BTreeMap::new();
    for r in records {
        match r {
            Record::Session(s) => {
                sessions.insert(s.session_id.clone(), s.user_id.clone());
            }
            Record::Message(m) => messages.entry(m.session_id.clone()).or_default().push(m),
            _ => {}
        }
    }
    sessions
        .into_iter()
        .map(|(sid, uid)| {
            let mut msgs = messages.remove(&sid).unwrap_or_default();
            msgs.sort_by(|a, b| (a.timestamp, &a.message_id).cmp(&(b.timestamp, &b.message_id)));
            let rows = if msgs.is_empty() {
                vec![vec![
                    sid.clone(),
                    uid.clone(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]]
            } else {
                msgs.into_iter()
                    .map(|m| {
                        vec![
                            sid.clone(),
                            uid.clone(),
                            m.message_id.clone(),
                            guard(&m.content),
                            m.sender.clone(),
                            m.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        ]
                    })
                    .collect()
            };
            (sid, rows)
        })
        .collect()
}

/// Groups exported rows by session, asserting each session's rows are contiguous.
pub fn group_rows_by_session(rows: Vec<Vec<String>>) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut grouped: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    let mut last: Option<String> = None;
    for row in rows {
        let sid = row[0].clone();
        if last.as_deref() != Some(sid.as_str()) {
            assert!(!grouped.contains_key(&sid), "rows of session {sid} are not contiguous");
            last = Some(sid.clone());
        }
        grouped.entry(sid).or_default().push(row);
    }
    grouped
}
