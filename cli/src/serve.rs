//! `exportctl serve`: a local HTTP server that turns each request into the API
//! Gateway HTTP API (payload 2.0) event the deployed API sends, runs the same handler
//! code as the Lambda binaries, and turns the handler's response back into HTTP.
//!
//! It mirrors API Gateway's request limits (request line plus header values at most
//! 10,240 bytes, payload at most 10 MB) and answers them, like every other refusal,
//! with the route's documented JSON error: the request head is read here (bounded,
//! with a timeout) before hyper sees it, because hyper's own limits answer with an
//! empty body. A body that does not arrive completely is refused, never dispatched.

use std::{
    convert::Infallible,
    io,
    net::SocketAddr,
    panic::AssertUnwindSafe,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use base64::Engine as _;
use bytes::Bytes;
use chats_export::{CHATS_DOWNLOAD, CHATS_EXPORT, ConversationsDownload};
use common::{
    AppContext, Error,
    http::{
        ErrorStyle, ExportRoute, MAX_PAYLOAD_BYTES, MAX_REQUEST_HEAD_BYTES, RawRequest, error_response,
        errors::not_found, pipeline::JOB_ERRORS,
    },
    jobs::api::{JOB_CANCEL_PATH, JOB_DOWNLOAD_PATH, JOB_PATH, JOBS_PATH, JobRoute},
    schedules::api::{PREVIEW_PATH, SCHEDULE_PATH, SCHEDULES_PATH, ScheduleRoute},
    webhooks::api::{SECRET_PATH, SECRETS_PATH, SecretRoute},
};
use futures::FutureExt;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use lambda_http::{Body, Request, Response, http::HeaderMap};
use leads_export::LeadsExport;
use serde_json::{Map, Value, json};
use sessions_export::SessionsExport;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpStream},
};

/// Routes served locally: `(method, path)`. The same list is declared in template.yaml.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", sessions_export::PATH),
    ("GET", leads_export::PATH),
    ("POST", chats_export::EXPORT_PATH),
    ("GET", chats_export::DOWNLOAD_PATH),
    ("GET", chats_export::CONVERSATIONS_PATH),
    ("POST", JOBS_PATH),
    ("GET", JOBS_PATH),
    ("GET", JOB_PATH),
    ("DELETE", JOB_PATH),
    ("GET", JOB_DOWNLOAD_PATH),
    ("POST", JOB_CANCEL_PATH),
    ("POST", SCHEDULES_PATH),
    ("GET", SCHEDULES_PATH),
    ("POST", PREVIEW_PATH),
    ("GET", SCHEDULE_PATH),
    ("PATCH", SCHEDULE_PATH),
    ("DELETE", SCHEDULE_PATH),
    ("POST", SECRETS_PATH),
    ("GET", SECRET_PATH),
    ("DELETE", SECRET_PATH),
];

/// The declared route (`(method, path template)`) a request's method and path match.
pub fn route_of(method: &str, path: &str) -> Option<(&'static str, &'static str)> {
    let template = match (JobRoute::matching(method, path), ScheduleRoute::matching(method, path)) {
        (Some(JobRoute::List), _) => JOBS_PATH,
        (Some(JobRoute::Get(_) | JobRoute::Delete(_)), _) => JOB_PATH,
        (Some(JobRoute::Download(_)), _) => JOB_DOWNLOAD_PATH,
        (Some(JobRoute::Cancel(_)), _) => JOB_CANCEL_PATH,
        (None, Some(ScheduleRoute::Create | ScheduleRoute::List)) => SCHEDULES_PATH,
        (None, Some(ScheduleRoute::Preview)) => PREVIEW_PATH,
        (None, Some(ScheduleRoute::Get(_) | ScheduleRoute::Update(_) | ScheduleRoute::Delete(_))) => SCHEDULE_PATH,
        (None, None) => match SecretRoute::matching(method, path) {
            Some(SecretRoute::Create) => SECRETS_PATH,
            Some(SecretRoute::Get(_) | SecretRoute::Delete(_)) => SECRET_PATH,
            None => path,
        },
    };
    ROUTES.iter().copied().find(|(m, p)| *m == method && *p == template)
}

/// The scheduler's tick every `seconds` (what EventBridge Scheduler does every minute
/// in a deployment), for `exportctl serve`.
pub async fn tick_every(ctx: AppContext, seconds: u64) {
    let mut interval = tokio::time::interval(Duration::from_secs(seconds.max(1)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        common::schedules::tick::tick(&ctx, ctx.clock.now()).await;
    }
}

/// How long a client may take to send its request head, and then its body.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
const BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// The most header lines accepted (hyper's own limit is 100).
const MAX_HEADERS: usize = 100;
/// How much of an oversized head is read before answering (the rest is not read).
const HEAD_READ_LIMIT: usize = 64 * 1024;
/// After refusing a request, how much more of it is read (and dropped) before closing.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Dispatches an API Gateway request to the function that owns its path, as the
/// deployed API does: each path's declared methods, and an `ANY` route for the
/// others, which the function answers `405` with `Allow` (template.yaml).
pub async fn route(ctx: &AppContext, req: Request) -> Response<Body> {
    let path = req.uri().path().to_string();
    match path.as_str() {
        sessions_export::PATH => sessions_export::handle(ctx, req).await,
        leads_export::PATH => leads_export::handle(ctx, req).await,
        chats_export::EXPORT_PATH | chats_export::DOWNLOAD_PATH | chats_export::CONVERSATIONS_PATH => {
            chats_export::handle(ctx, req).await
        }
        p if JobRoute::allowed(p).is_some()
            || ScheduleRoute::allowed(p).is_some()
            || SecretRoute::allowed(p).is_some() =>
        {
            export_jobs::handle(ctx, req).await
        }
        p if req.method() == lambda_http::http::Method::GET => match static_file(p) {
            Some(resp) => resp,
            None => not_found(&path),
        },
        _ => not_found(&path),
    }
}

/// The dashboard's files (`web/`, or `WEB_DIR`), served at `/`: `/` is
/// `index.html`. Only plain file names under the directory are served (no `..`, no
/// hidden files), with a content type by extension; nothing else is ever read.
fn static_file(path: &str) -> Option<Response<Body>> {
    // `WEB_DIR`, else `web/` of the working directory (the repository root), else the
    // repository this binary was built from; decided once.
    static DIR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        std::env::var("WEB_DIR").unwrap_or_else(|_| {
            if std::path::Path::new("web/index.html").exists() {
                "web".into()
            } else {
                concat!(env!("CARGO_MANIFEST_DIR"), "/../web").into()
            }
        })
    });
    let rel = match path.trim_start_matches('/') {
        "" => "index.html",
        rel => rel,
    };
    let safe = rel.split('/').all(|part| {
        !part.is_empty()
            && !part.starts_with('.')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    });
    if !safe {
        return None;
    }
    let content_type = match rel.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("ts") => "text/plain; charset=utf-8",
        _ => return None,
    };
    let bytes = std::fs::read(std::path::Path::new(dir).join(rel)).ok()?;
    let mut resp = Response::new(Body::Binary(bytes));
    let headers = resp.headers_mut();
    headers.insert(
        "content-type",
        lambda_http::http::HeaderValue::from_static(content_type),
    );
    headers.insert("cache-control", lambda_http::http::HeaderValue::from_static("no-cache"));
    // The console loads nothing from anywhere else, and its API is this origin (or
    // the configured one).
    headers.insert(
        "content-security-policy",
        lambda_http::http::HeaderValue::from_static(
            "default-src 'self'; connect-src 'self' http: https:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        "x-content-type-options",
        lambda_http::http::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        "referrer-policy",
        lambda_http::http::HeaderValue::from_static("no-referrer"),
    );
    Some(resp)
}

/// The error shape of the route a path belongs to (for answers given before the
/// request reaches its handler).
fn error_style(raw: &RawRequest) -> ErrorStyle {
    match raw.path.as_str() {
        sessions_export::PATH => SessionsExport.error_style(raw),
        leads_export::PATH => LeadsExport.error_style(raw),
        chats_export::EXPORT_PATH => CHATS_EXPORT.error_style(raw),
        chats_export::DOWNLOAD_PATH => CHATS_DOWNLOAD.error_style(raw),
        chats_export::CONVERSATIONS_PATH => ConversationsDownload.error_style(raw),
        p if p.starts_with(JOBS_PATH) => JOB_ERRORS,
        _ => ErrorStyle::plain(),
    }
}

/// The HTTP API payload 2.0 event for a request, as API Gateway builds it.
pub fn api_gateway_event(
    method: &str,
    path: &str,
    raw_query: &str,
    headers: &[(String, String)],
    body: &[u8],
    source_ip: &str,
) -> Value {
    let mut header_map = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        // API Gateway sets these itself; lambda_http builds a URL from them.
        if name == "x-forwarded-proto" || name == "host" && value.parse::<hyper::http::uri::Authority>().is_err() {
            continue;
        }
        if name == "cookie" {
            cookies.extend(value.split(';').map(|c| Value::String(c.trim().to_string())));
            continue;
        }
        // API Gateway joins repeated headers with commas.
        match header_map.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(value);
            }
            _ => {
                header_map.insert(name, Value::String(value.clone()));
            }
        }
    }
    let mut query = Map::new();
    for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
        // API Gateway joins repeated parameters with commas here; `rawQueryString`
        // keeps them apart, and that is what the handlers read.
        match query.get_mut(k.as_ref()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                query.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
    }
    let now = chrono::Utc::now();
    let route_key = format!("{method} {path}");
    let user_agent = header_map
        .get("user-agent")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    let host = header_map
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or("127.0.0.1")
        .to_string();
    let (body, is_base64) = match std::str::from_utf8(body) {
        Ok(s) => (s.to_string(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    header_map.insert("x-forwarded-proto".into(), Value::String("http".into()));
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": header_map,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": user_agent,
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": is_base64,
    });
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    if !body.is_empty() {
        event["body"] = Value::String(body);
    }
    event
}

/// A request refused before it reaches its handler, in its route's error shape.
fn refusal(method: &str, target: &str, err: &Error) -> Response<Body> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let raw = RawRequest::new(
        method.parse().unwrap_or_default(),
        path.to_string(),
        query.to_string(),
        HeaderMap::new(),
        Vec::new(),
        "-".into(),
    );
    tracing::warn!(path = %common::http::sanitize(path), status = err.http_status(), error = %err, "request refused by the local server");
    error_response(err, &error_style(&raw))
}

fn to_hyper(response: Response<Body>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(s) => Bytes::from(s),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

async fn handle_http(
    ctx: AppContext,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let method = parts.method.as_str().to_string();
    let collected = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_PAYLOAD_BYTES).collect()).await;
    let body = match collected {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            let err = Error::body_too_large(format!("the request body is larger than {MAX_PAYLOAD_BYTES} bytes"));
            return Ok(to_hyper(refusal(&method, &target, &err)));
        }
        Ok(Err(_)) => {
            let err = Error::bad_request("the request body could not be read completely");
            return Ok(to_hyper(refusal(&method, &target, &err)));
        }
        Err(_) => {
            let err = Error::bad_request("the request body did not arrive in time");
            return Ok(to_hyper(refusal(&method, &target, &err)));
        }
    };
    // Every header reaches the handler, one whose value is not ASCII too (as text, as
    // API Gateway's JSON event carries it): the handler refuses what it cannot read
    // rather than never seeing it.
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let event = api_gateway_event(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        &headers,
        &body,
        &peer.ip().to_string(),
    );
    let event = event.to_string();
    let request = std::panic::catch_unwind(|| lambda_http::request::from_str(&event));
    let response = match request {
        Ok(Ok(request)) => match AssertUnwindSafe(route(&ctx, request)).catch_unwind().await {
            Ok(resp) => resp,
            Err(_) => refusal(&method, &target, &Error::internal("internal error", "panic")),
        },
        Ok(Err(_)) | Err(_) => {
            tracing::warn!("could not turn the request into an API Gateway event");
            refusal(&method, &target, &Error::bad_request("the request could not be read"))
        }
    };
    Ok(to_hyper(response))
}

/// What reading a request head found.
enum Head {
    /// The head is complete within the limits. `rewritten` is the head to hand to
    /// hyper when its request target had to be percent-encoded.
    Complete { rewritten: Option<Vec<u8>> },
    /// The client closed before sending a whole head: nothing to answer.
    Closed,
    /// A head to refuse: its request line (as far as read) and the error.
    Refused { request_line: String, error: Error },
}

/// Reads bytes until the end of the request head, refusing what API Gateway would.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Head> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = find_head_end(buf) {
            return Ok(check_head(&buf[..end]));
        }
        if buf.len() >= HEAD_READ_LIMIT {
            let line = String::from_utf8_lossy(buf.split(|b| *b == b'\n').next().unwrap_or_default()).into_owned();
            let error = if line.len() > MAX_REQUEST_HEAD_BYTES {
                Error::uri_too_long(format!(
                    "the request line is longer than {MAX_REQUEST_HEAD_BYTES} bytes"
                ))
            } else {
                Error::headers_too_large(format!(
                    "the request line and headers are larger than {MAX_REQUEST_HEAD_BYTES} bytes"
                ))
            };
            return Ok(Head::Refused {
                request_line: line,
                error,
            });
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Head::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Characters a request target may carry as they are (RFC 3986 unreserved and
/// reserved, and `%`); anything else is percent-encoded, as a browser would.
fn target_byte_ok(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?[]@!$&'()*+,;=%".contains(&b)
}

fn encode_target(target: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(target.len());
    for &b in target {
        if target_byte_ok(b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

/// Checks a complete request head the way API Gateway would: a valid HTTP/1.1 head,
/// the request line plus header values within 10,240 bytes, one unambiguous body
/// length. A request target with characters that must be percent-encoded is
/// encoded rather than refused.
fn check_head(head: &[u8]) -> Head {
    let line_end = head.windows(2).position(|w| w == b"\r\n").unwrap_or(head.len());
    let request_line = String::from_utf8_lossy(&head[..line_end]).into_owned();
    let refused = |error: Error| Head::Refused {
        request_line: request_line.clone(),
        error,
    };
    if line_end > MAX_REQUEST_HEAD_BYTES {
        return refused(Error::uri_too_long(format!(
            "the request line is longer than {MAX_REQUEST_HEAD_BYTES} bytes"
        )));
    }
    let parts: Vec<&[u8]> = head[..line_end].split(|b| *b == b' ').collect();
    if parts.len() != 3 || !parts[1].starts_with(b"/") || !parts[2].starts_with(b"HTTP/1.") {
        return refused(Error::bad_request(
            "the request line is not a valid HTTP/1.1 request line",
        ));
    }
    let target = encode_target(parts[1]);
    let rewritten = (target != parts[1]).then(|| {
        let mut h = Vec::with_capacity(head.len() + target.len());
        h.extend_from_slice(parts[0]);
        h.push(b' ');
        h.extend_from_slice(&target);
        h.push(b' ');
        h.extend_from_slice(parts[2]);
        h.extend_from_slice(&head[line_end..]);
        h
    });
    let parsed_head = rewritten.as_deref().unwrap_or(head);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(parsed_head) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => {
            return refused(Error::headers_too_large(format!("more than {MAX_HEADERS} headers")));
        }
        Ok(httparse::Status::Partial) | Err(_) => {
            return refused(Error::bad_request("the request head is not valid HTTP/1.1"));
        }
    }
    if req.path.is_none_or(|p| p.parse::<hyper::Uri>().is_err()) {
        return refused(Error::bad_request("the request target is not a valid URI"));
    }
    let values: usize = req.headers.iter().map(|h| h.value.len()).sum();
    if line_end + values > MAX_REQUEST_HEAD_BYTES {
        return refused(Error::headers_too_large(format!(
            "the request line and header values are larger than {MAX_REQUEST_HEAD_BYTES} bytes"
        )));
    }
    // One unambiguous body length (no request smuggling, no hyper-made empty 400s).
    let values_of = |name: &str| -> Vec<&[u8]> {
        req.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
            .collect()
    };
    let lengths = values_of("content-length");
    let encodings = values_of("transfer-encoding");
    if lengths
        .iter()
        .any(|v| v.is_empty() || !v.iter().all(u8::is_ascii_digit) || v.len() > 18)
        || lengths.windows(2).any(|w| w[0] != w[1])
    {
        return refused(Error::bad_request("the content-length header is not one valid length"));
    }
    if !encodings.is_empty() {
        let chunked_only = encodings.len() == 1 && encodings[0].eq_ignore_ascii_case(b"chunked");
        if !chunked_only || !lengths.is_empty() {
            return refused(Error::bad_request(
                "only transfer-encoding: chunked is accepted, and never with a content-length",
            ));
        }
    }
    Head::Complete { rewritten }
}

/// Writes a complete HTTP/1.1 response and closes the connection.
async fn write_refusal(stream: &mut TcpStream, response: Response<Body>) -> io::Result<()> {
    let status = response.status();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    for (name, value) in response.headers() {
        out.push_str(&format!("{}: {}\r\n", name, value.to_str().unwrap_or("")));
    }
    let body: Vec<u8> = match response.into_body() {
        Body::Text(s) => s.into_bytes(),
        Body::Binary(b) => b,
        _ => Vec::new(),
    };
    out.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    stream.write_all(out.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.shutdown().await?;
    // Lingering close: read (and drop) what the client is still sending, for a
    // while. Closing with unread input makes the kernel answer with a reset, which
    // can destroy the answer before the client reads it.
    let drain = async {
        let mut sink = [0u8; 16 * 1024];
        let mut drained = 0usize;
        while drained < DRAIN_LIMIT {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
    Ok(())
}

/// One connection: one request (no keep-alive, so every request's head is checked).
async fn connection(ctx: AppContext, mut stream: TcpStream, peer: SocketAddr) -> io::Result<()> {
    let mut buf = Vec::with_capacity(8192);
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream, &mut buf)).await {
        Ok(head) => head?,
        Err(_) => return Ok(()), // nothing complete arrived in time: just close
    };
    match head {
        Head::Closed => Ok(()),
        Head::Refused { request_line, error } => {
            let mut parts = request_line.split(' ');
            let method = parts.next().unwrap_or("GET").to_string();
            let target = parts.next().unwrap_or("/").to_string();
            write_refusal(&mut stream, refusal(&method, &target, &error)).await
        }
        Head::Complete { rewritten } => {
            if let Some(head) = rewritten {
                let end = find_head_end(&buf).unwrap_or(0);
                buf.splice(..end, head);
            }
            let io = TokioIo::new(Replay {
                prefix: buf,
                pos: 0,
                inner: stream,
            });
            let service = service_fn(move |req| handle_http(ctx.clone(), req, peer));
            http1::Builder::new()
                .keep_alive(false)
                // A client may close its sending side once the request is out.
                .half_close(true)
                .serve_connection(io, service)
                .await
                .map_err(io::Error::other)
        }
    }
}

/// Serves until the listener fails. Each connection runs on its own task.
pub async fn serve(ctx: AppContext, listener: TcpListener) -> io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(ctx, stream, peer).await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
}

/// A stream whose first bytes are replayed from a buffer (the head already read).
struct Replay {
    prefix: Vec<u8>,
    pos: usize,
    inner: TcpStream,
}

impl AsyncRead for Replay {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = out.remaining().min(self.prefix.len() - self.pos);
            let start = self.pos;
            out.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, out)
    }
}

impl AsyncWrite for Replay {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_round_trips_through_lambda_http() {
        let event = api_gateway_event(
            "GET",
            "/api/admin/sessions/export",
            "spreadsheet_safe=false&x=a%20b",
            &[
                ("Authorization".into(), "Bearer t".into()),
                ("Accept".into(), "text/csv".into()),
            ],
            b"",
            "127.0.0.1",
        );
        let req = lambda_http::request::from_str(&event.to_string()).unwrap();
        use lambda_http::RequestExt;
        assert_eq!(req.uri().path(), "/api/admin/sessions/export");
        assert_eq!(req.query_string_parameters().first("x"), Some("a b"));
        assert_eq!(req.headers()["authorization"], "Bearer t");
    }

    #[test]
    fn heads_over_api_gateway_limits_are_refused() {
        let ok = b"GET /x?a=1 HTTP/1.1\r\nhost: h\r\n\r\n";
        assert!(matches!(check_head(ok), Head::Complete { rewritten: None }));
        let odd = b"GET /x?a=<b>|{}\xff HTTP/1.1\r\nhost: h\r\n\r\n";
        let Head::Complete { rewritten: Some(head) } = check_head(odd) else {
            panic!("encoded, not refused")
        };
        assert!(head.starts_with(b"GET /x?a=%3Cb%3E%7C%7B%7D%FF HTTP/1.1\r\n"));
        for bad in [
            &b"GET /x HTTP/1.1\r\nbad header\r\n\r\n"[..],
            b"GET /x HTTP/1.1\r\ncontent-length: abc\r\n\r\n",
            b"GET /x HTTP/1.1\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
            b"GET /x HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n",
            b"GET /x HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n",
        ] {
            assert!(
                matches!(check_head(bad), Head::Refused { .. }),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let long_line = format!("GET /x?a={} HTTP/1.1\r\n\r\n", "a".repeat(MAX_REQUEST_HEAD_BYTES));
        assert!(matches!(
            check_head(long_line.as_bytes()),
            Head::Refused {
                error: Error::TooLarge { status: 414, .. },
                ..
            }
        ));
        let big_header = format!("GET /x HTTP/1.1\r\nx-a: {}\r\n\r\n", "a".repeat(MAX_REQUEST_HEAD_BYTES));
        assert!(matches!(
            check_head(big_header.as_bytes()),
            Head::Refused {
                error: Error::TooLarge { status: 431, .. },
                ..
            }
        ));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: 1\r\n")).collect();
        let many = format!("GET /x HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(check_head(many.as_bytes()), Head::Refused { .. }));
        assert!(matches!(check_head(b"NONSENSE\r\n\r\n"), Head::Refused { .. }));
    }

    #[test]
    fn odd_hosts_never_reach_lambda_http() {
        for host in ["a b", "a/b@c", "x\u{7f}"] {
            let event = api_gateway_event(
                "GET",
                "/p",
                "",
                &[("host".into(), host.into()), ("x-forwarded-proto".into(), "a b".into())],
                b"",
                "127.0.0.1",
            );
            let req = lambda_http::request::from_str(&event.to_string()).unwrap();
            assert_eq!(req.uri().path(), "/p", "{host}");
        }
    }
}
