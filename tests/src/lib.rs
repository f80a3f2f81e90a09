//! Harness for integration tests: every test gets its own tables and bucket on the
//! local emulators (so tests run in parallel and compare exact contents), and calls
//! the real handlers with API Gateway v2 events.

use std::collections::BTreeMap;

use common::{
    AppContext,
    auth::{self, Claims, Role},
    aws::{self, AwsClients},
    config::{Config, TableNames},
    load::{self, Record},
    schema,
};
use lambda_http::{Body, Request, Response};

pub mod proxy;
pub mod receiver;
pub mod runtime;
pub mod scheduling;
pub mod server;

pub struct TestStack {
    pub ctx: AppContext,
}

fn require_env() {
    if std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_err() || std::env::var("JWT_SECRET").is_err() {
        panic!(
            "integration tests need the local stack and its environment: run `make test`, or \
             `make stack` then `set -a; . ./local.env; set +a; cargo build --workspace && cargo test --workspace`"
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
        Self::on(test, aws::load().await, adjust).await
    }

    /// Fresh tables on the DynamoDB with Streams (moto_server at `STREAMS_ENDPOINT`,
    /// local.env), streams on as template.yaml declares them; S3, SQS and SES as in
    /// [`TestStack::new`]. Returns the streams client too.
    pub async fn with_streams(test: &str, adjust: impl FnOnce(&mut Config)) -> (Self, aws_sdk_dynamodbstreams::Client) {
        require_env();
        let endpoint = std::env::var("STREAMS_ENDPOINT").expect("STREAMS_ENDPOINT (local.env)");
        let mut aws = aws::load().await;
        let dynamodb = aws.dynamodb.config().to_builder().endpoint_url(&endpoint).build();
        aws.dynamodb = aws_sdk_dynamodb::Client::from_conf(dynamodb);
        let shared = aws::shared_config().await;
        let streams = aws_sdk_dynamodbstreams::config::Builder::from(&shared)
            .endpoint_url(&endpoint)
            .build();
        let stack = Self::on(test, aws, adjust).await;
        exportctl::streams::enable_streams(&stack.ctx)
            .await
            .expect("streams on");
        (stack, aws_sdk_dynamodbstreams::Client::from_conf(streams))
    }

    async fn on(test: &str, aws: AwsClients, adjust: impl FnOnce(&mut Config)) -> Self {
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
            jobs: format!("{prefix}-jobs"),
            schedules: format!("{prefix}-schedules"),
        };
        let bucket: String = prefix.chars().take(63).collect();
        config.delivery.bucket = bucket.trim_end_matches('-').to_string();
        schema::create_tables(&aws.dynamodb, &config.tables)
            .await
            .expect("create tables");
        schema::create_bucket(&aws.s3, &config.delivery.bucket)
            .await
            .expect("create bucket");
        let queue: String = format!("{prefix}-jobs").chars().take(70).collect();
        config.jobs.queue_url = schema::create_queue(&aws.sqs, &queue, 30, config.jobs.max_attempts)
            .await
            .expect("create queue");
        adjust(&mut config);
        config.validate().expect("valid test configuration");
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
                sqs: self.ctx.aws.sqs.clone(),
                ses: self.ctx.aws.ses.clone(),
            },
        )
    }

    /// Writes records as the platform's backend would, stamped `written_at` with the
    /// stack's own (system) clock.
    pub async fn load(&self, records: Vec<Record>) {
        load_with(&self.ctx, records).await;
    }

    pub fn token(&self, role: Role, sub: &str, client_id: Option<&str>, company_id: Option<&str>) -> String {
        self.token_with_email(role, sub, client_id, company_id, None)
    }

    /// A token with an `email` claim (who its holder may have exports emailed to).
    pub fn token_with_email(
        &self,
        role: Role,
        sub: &str,
        client_id: Option<&str>,
        company_id: Option<&str>,
        email: Option<&str>,
    ) -> String {
        let now = auth::now_secs();
        auth::mint(
            &self.ctx.config.jwt,
            &Claims {
                sub: sub.into(),
                role,
                client_id: client_id.map(Into::into),
                company_id: company_id.map(Into::into),
                email: email.map(Into::into),
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

    /// An admin's GET through the real route, which must answer 200: its body.
    pub async fn admin_body(&self, path_and_query: &str) -> Vec<u8> {
        let auth = format!("Bearer {}", self.admin_token());
        let resp =
            exportctl::serve::route(&self.ctx, request("GET", path_and_query, &[("authorization", &auth)])).await;
        let body = body_bytes(&resp);
        assert_eq!(
            resp.status(),
            200,
            "{}: {}",
            path_and_query.chars().take(200).collect::<String>(),
            String::from_utf8_lossy(&body)
        );
        body
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

/// Writes records stamped `written_at` with `ctx`'s clock: a test whose exports run
/// on a fixed clock loads through that same clock, so the snapshot cut (`written_at <=
/// as_of`) sees the rows whatever day the test runs on.
pub async fn load_with(ctx: &AppContext, records: Vec<Record>) {
    load::write_records(&ctx.aws.dynamodb, &ctx.config.tables, records, ctx.clock.now())
        .await
        .expect("load records");
}

/// The UTC days an export asked for since `before` may be named after (its `as_of`
/// is read between `before` and now): two when the test ran across midnight.
pub fn days_since(before: chrono::DateTime<chrono::Utc>) -> Vec<String> {
    let mut days = vec![before.format("%Y-%m-%d").to_string()];
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    if days[0] != today {
        days.push(today);
    }
    days
}

/// An API Gateway v2 request, built exactly as `exportctl serve` builds it.
pub fn request(method: &str, path_and_query: &str, headers: &[(&str, &str)]) -> Request {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let event = exportctl::serve::api_gateway_event(method, path, query, &headers, b"", "127.0.0.1");
    lambda_http::request::from_str(&event.to_string()).expect("valid event")
}

/// A request from a file in `events/`.
/// The API Gateway events in events/ (the other triggers' are in its subfolders), sorted.
pub fn api_event_names() -> Vec<String> {
    let dir = format!("{}/../events", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

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

/// The item a writer that knows nothing of the export keys stores: the model's
/// attributes and the table keys DynamoDB requires, nothing derived, no `written_at`.
pub fn bare_item(record: &Record) -> common::reads::Item {
    let mut item = record.to_item().unwrap();
    for (name, _) in record.derived() {
        if !common::index::Table::of(record).key().contains(&name) {
            item.remove(name);
        }
    }
    item
}

/// Where two sequences first differ: the first unequal position, or the shorter one's length.
pub fn first_difference<T: PartialEq>(got: &[T], want: &[T]) -> usize {
    got.iter()
        .zip(want)
        .position(|(g, w)| g != w)
        .unwrap_or(got.len().min(want.len()))
}

/// The objects of a JSON Lines file, checked: every line ends in `\n` and holds one
/// JSON object.
#[track_caller]
pub fn json_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "the last line ends in a newline"
    );
    text.split_terminator('\n')
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("one JSON value per line");
            assert!(v.is_object(), "{line:.80}");
            v
        })
        .collect()
}

/// Asserts two files are byte for byte the same; when not, says where they first
/// differ and shows the text around it (files too long to print whole).
#[track_caller]
pub fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let at = first_difference(got, want);
    let around = |b: &[u8]| String::from_utf8_lossy(&b[at.saturating_sub(150)..(at + 150).min(b.len())]).into_owned();
    panic!(
        "{what}: {} bytes, {} expected; first difference at byte {at}:\n{}\n---\n{}",
        got.len(),
        want.len(),
        around(got),
        around(want)
    );
}

/// The JSON Lines file that holds the same objects as a JSON array export: our arrays
/// put each object on its own line (`[\n{..},\n{..}\n]\n`), and a raw newline never
/// occurs inside JSON text, so `,\n{` only ever separates two rows.
pub fn json_array_as_lines(array: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(array).expect("UTF-8");
    if text == "[]\n" {
        return Vec::new();
    }
    let inner = text
        .strip_prefix("[\n")
        .and_then(|t| t.strip_suffix("\n]\n"))
        .expect("an array of one object per line");
    format!("{}\n", inner.replace(",\n{", "\n{")).into_bytes()
}

/// Has readers no one here wrote (pyarrow and DuckDB, `tests/readers/check.py`) read
/// `file` (a `.jsonl`) back, and compares every value with `expected`: the rows as
/// loaded, typed as check.py describes. The readers' venv is `.venv-readers`
/// (tools/requirements-readers.txt), which `make unit` installs and names in
/// `READERS_PYTHON`.
#[track_caller]
pub fn readers_agree(file: &[u8], ext: &str, expected: &serde_json::Value, what: &str) {
    let python = std::env::var("READERS_PYTHON").unwrap_or_else(|_| {
        let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv-readers/bin/python");
        assert!(
            std::path::Path::new(venv).exists(),
            "no pyarrow/DuckDB venv: run `make unit` (or `make readers`) to install {venv}"
        );
        venv.to_string()
    });
    let dir = std::env::temp_dir().join(format!("readers-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (file_path, expected_path) = (dir.join(format!("export.{ext}")), dir.join("expected.json"));
    std::fs::write(&file_path, file).unwrap();
    std::fs::write(&expected_path, serde_json::to_vec(expected).unwrap()).unwrap();
    let out = std::process::Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/readers/check.py"))
        .arg(&expected_path)
        .arg(&file_path)
        .output()
        .expect("run tests/readers/check.py");
    let _ = std::fs::remove_dir_all(&dir);
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what}: the readers disagree:\n{report}");
    eprintln!("{what}: {}", report.trim());
}

/// The Parquet types of tests/readers/check.py's schema check ("PHYSICAL LOGICAL"), as
/// the Parquet table of docs/api.md ("Parquet") documents them.
pub mod parquet_type {
    pub const TEXT: &str = "BYTE_ARRAY STRING";
    pub const UNSIGNED: &str = "INT64 INT(64,unsigned)";
    pub const WIDE_INTEGER: &str = "FIXED_LEN_BYTE_ARRAY DECIMAL(38,0)";
    pub const FLOAT: &str = "DOUBLE";
    pub const BOOL: &str = "BOOLEAN";
    pub const TIME: &str = "INT64 TIMESTAMP(MILLIS,UTC)";
    /// A `LIST<STRING>`: its items are the leaf `<key>.list.element`.
    pub const LIST: &str = "LIST";
}

/// `expected` (what check.py compares a file with) with the Parquet schema `columns`
/// ({key, type} in file order; a dotted key is a field of a group).
pub fn with_parquet_schema(mut expected: serde_json::Value, columns: &[(&str, &str)]) -> serde_json::Value {
    let leaves: serde_json::Map<String, serde_json::Value> = columns
        .iter()
        .map(|(key, kind)| match *kind {
            parquet_type::LIST => (format!("{key}.list.element"), parquet_type::TEXT.into()),
            _ => (key.to_string(), (*kind).into()),
        })
        .collect();
    expected["schema"] = serde_json::Value::Object(leaves);
    expected
}

/// A Parquet file: the magic number at both ends.
pub fn assert_parquet(bytes: &[u8], what: &str) {
    assert!(
        bytes.len() >= 12 && bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"),
        "{what}: not a Parquet file ({} bytes)",
        bytes.len()
    );
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
                sessions.insert(s.session_id.to_string(), s.user_id.to_string());
            }
            Record::Message(m) => messages.entry(m.session_id.to_string()).or_default().push(m),
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
                            m.message_id.to_string(),
                            guard(&m.content),
                            m.sender.to_string(),
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

/// An API Gateway v2 request with a body, built exactly as `exportctl serve` builds it.
pub fn request_with_body(method: &str, path_and_query: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let event = exportctl::serve::api_gateway_event(method, path, query, &headers, body, "127.0.0.1");
    lambda_http::request::from_str(&event.to_string()).expect("valid event")
}

/// The bytes of an object in the context's export bucket.
pub async fn object(ctx: &AppContext, key: &str) -> Vec<u8> {
    let out = ctx
        .aws
        .s3
        .get_object()
        .bucket(&ctx.config.delivery.bucket)
        .key(key)
        .send()
        .await
        .expect("object");
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

/// Every audit record of the stack.
pub async fn audit_records(stack: &TestStack) -> Vec<common::audit::AuditRecord> {
    let out = stack
        .ctx
        .aws
        .dynamodb
        .scan()
        .table_name(&stack.ctx.config.tables.audit)
        .send()
        .await
        .expect("scan audit table");
    let mut records: Vec<common::audit::AuditRecord> = out
        .items
        .unwrap_or_default()
        .into_iter()
        .map(|item| serde_dynamo::from_item(item).expect("audit record"))
        .collect();
    records.sort_by(|a, b| a.at_request.cmp(&b.at_request));
    records
}

/// `exportctl serve` on a free loopback port, running until the handle is dropped.
pub struct LocalServer {
    pub addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start_server(ctx: &AppContext) -> LocalServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(exportctl::serve::serve(ctx.clone(), listener));
    LocalServer { addr, task }
}

/// A response read off a raw connection.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("JSON body ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends raw bytes to the server (then closes the writing side, as a client that
/// stops sending does) and reads the whole response.
pub async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> RawResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // A server that answers early may close before everything is written.
    let _ = stream.write_all(request).await;
    let _ = stream.shutdown().await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), stream.read_to_end(&mut out)).await;
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {:?}", String::from_utf8_lossy(&out)));
    let head = String::from_utf8_lossy(&out[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = out[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    RawResponse { status, headers, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..i]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[i + 2..i + 2 + size]);
        data = &data[i + 2 + size + 2..];
    }
    out
}

/// Asserts the documented error shape of a route: `{error_code, message}`, or the
/// leads export's `{success: false, message, error}`.
pub fn assert_error_shape(body: &serde_json::Value, leads: bool) {
    let o = body.as_object().unwrap_or_else(|| panic!("not an object: {body}"));
    if leads {
        assert_eq!(o.len(), 3, "{body}");
        assert_eq!(o["success"], false, "{body}");
        assert!(
            o["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Failed to export leads")),
            "{body}"
        );
        assert!(o["error"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    } else {
        assert_eq!(o.len(), 2, "{body}");
        assert!(o["error_code"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        assert!(o["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
}

/// A sink that keeps every byte: for documents small enough to compare whole.
#[derive(Default)]
pub struct Collect(pub Vec<u8>);

impl common::export::ByteSink for Collect {
    type Output = Vec<u8>;

    async fn write(&mut self, chunk: Vec<u8>) -> Result<(), common::Error> {
        self.0.extend(chunk);
        Ok(())
    }

    fn bytes_written(&self) -> u64 {
        self.0.len() as u64
    }

    async fn finish(self) -> Result<Vec<u8>, common::Error> {
        Ok(self.0)
    }

    async fn abort(self) {}
}

/// A store that waits before each page: long enough jobs to watch, cancel or kill.
pub struct SlowStore {
    pub inner: std::sync::Arc<dyn common::source::Store>,
    pub delay: std::time::Duration,
}

impl SlowStore {
    fn slow<T: Send + 'static>(&self, pages: common::source::Pages<T>) -> common::source::Pages<T> {
        use futures::StreamExt;
        let delay = self.delay;
        pages
            .then(move |page| async move {
                tokio::time::sleep(delay).await;
                page
            })
            .boxed()
    }
}

impl common::source::Store for SlowStore {
    fn session_lines(
        &self,
        as_of: chrono::DateTime<chrono::Utc>,
    ) -> common::source::Pages<common::source::SessionLine> {
        self.slow(self.inner.session_lines(as_of))
    }

    fn leads(
        &self,
        filter: &common::kinds::leads::LeadFilter,
        as_of: chrono::DateTime<chrono::Utc>,
    ) -> common::source::Pages<common::model::Lead> {
        self.slow(self.inner.leads(filter, as_of))
    }

    fn chat_messages(
        &self,
        filter: &common::kinds::chats::ChatFilter,
        as_of: chrono::DateTime<chrono::Utc>,
    ) -> common::source::Pages<common::model::ChatMessage> {
        self.slow(self.inner.chat_messages(filter, as_of))
    }

    fn conversation_messages(
        &self,
        filter: &common::kinds::chats::ChatFilter,
        as_of: chrono::DateTime<chrono::Utc>,
    ) -> common::source::Pages<common::model::ChatMessage> {
        self.slow(self.inner.conversation_messages(filter, as_of))
    }
}

/// Verifies a webhook request (`headers`, `body`) signed with `secret` (`whsec_...`)
/// with the Standard Webhooks reference library (tests/readers/verify_webhook.py, in
/// the readers' venv): `Ok(event type)` or `Err(why)`.
pub fn standard_webhooks_verify(
    secret: &str,
    headers: &std::collections::BTreeMap<String, String>,
    body: &[u8],
) -> Result<String, String> {
    use std::io::Write;
    let python = std::env::var("READERS_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv-readers/bin/python").to_string());
    let mut child = std::process::Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/readers/verify_webhook.py"))
        .arg(secret)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tests/readers/verify_webhook.py (make unit installs its venv)");
    let request = serde_json::json!({"headers": headers, "body": String::from_utf8_lossy(body)});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .trim()
    .to_string();
    if out.status.success() { Ok(said) } else { Err(said) }
}

/// Every `.rs` file under `dir`, recursively (the layers and docs tests read the
/// sources themselves).
pub fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out
}
