//! No request value silently ignored (issue 22): a declared header that cannot be
//! read is 400 naming it, never "absent"; a query parameter the route does not know is
//! 400 whatever its value (an empty one too), on every route; a body where the route
//! takes none, a body that says it is not JSON, and an empty body where one is required
//! are 400; a declared path's other methods are 405 with `Allow`.

use common::{auth::Role, synth};
use integration_tests::{server::Server, *};
use lambda_http::{Body, Response};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const JOB: &str = "0123456789abcdef0123456789abcdef";

/// Every route, as (method, path, body): the body routes with a valid body.
fn routes() -> Vec<(&'static str, String, &'static [u8])> {
    vec![
        ("GET", "/api/admin/sessions/export".into(), b""),
        ("GET", "/api/hybrid-leads/export".into(), b""),
        ("POST", "/client/export/chats".into(), b"{}"),
        ("GET", "/client/export/chats/download".into(), b""),
        ("GET", "/client/export/conversations".into(), b""),
        ("POST", "/api/exports".into(), br#"{"kind":"leads"}"#),
        ("GET", "/api/exports".into(), b""),
        ("GET", format!("/api/exports/{JOB}"), b""),
        ("DELETE", format!("/api/exports/{JOB}"), b""),
        ("POST", format!("/api/exports/{JOB}/cancel"), b""),
        ("GET", format!("/api/exports/{JOB}/download"), b""),
        (
            "POST",
            "/api/schedules".into(),
            br#"{"name":"n","export":{"kind":"leads"},"rate":"1 day"}"#,
        ),
        ("GET", "/api/schedules".into(), b""),
        (
            "POST",
            "/api/schedules/preview".into(),
            br#"{"name":"n","export":{"kind":"leads"},"rate":"1 day"}"#,
        ),
        ("GET", format!("/api/schedules/{JOB}"), b""),
        ("PATCH", format!("/api/schedules/{JOB}"), br#"{"enabled":true}"#),
        ("DELETE", format!("/api/schedules/{JOB}"), b""),
    ]
}

async fn send(stack: &TestStack, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response<Body> {
    exportctl::serve::route(&stack.ctx, request_with_body(method, path, headers, body)).await
}

/// The message of an error answer, whichever shape the route uses.
fn message(resp: &Response<Body>) -> String {
    let body = body_json(resp);
    format!(
        "{} {}",
        body["message"].as_str().unwrap_or(""),
        body["error"].as_str().unwrap_or("")
    )
}

#[tokio::test]
async fn an_unknown_parameter_is_400_whatever_its_value_on_every_route() {
    let stack = TestStack::new("strict_unknown").await;
    let admin = format!("Bearer {}", stack.admin_token());
    for (method, path, body) in routes() {
        for query in ["foo=", "%22", "%27", ";", "=", "%%%", "foo", "format=csv&foo="] {
            let target = format!("{path}?{query}");
            let mut headers = vec![("authorization", admin.as_str())];
            if !body.is_empty() {
                headers.push(("content-type", "application/json"));
            }
            let resp = send(&stack, method, &target, &headers, body).await;
            assert_eq!(
                resp.status(),
                400,
                "{method} {target}: {}",
                String::from_utf8_lossy(&body_bytes(&resp))
            );
            let text = message(&resp);
            assert!(
                text.contains("unknown query parameter")
                    || text.contains("no name")
                    || text.contains("no query parameters")
                    || text.contains("allowed: none"),
                "{method} {target}: {text}"
            );
        }
    }
    // A known name with an empty value is absent.
    let resp = send(
        &stack,
        "GET",
        "/api/admin/sessions/export?format=&bom=",
        &[("authorization", admin.as_str())],
        b"",
    )
    .await;
    assert_eq!(resp.status(), 200);
    // In a job's params, a null is absent too, but only for a known name.
    let resp = send(
        &stack,
        "POST",
        "/api/exports",
        &[("authorization", admin.as_str()), ("content-type", "application/json")],
        br#"{"kind":"leads","params":{"foo":null}}"#,
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert!(
        message(&resp).contains("unknown query parameter 'foo'"),
        "{}",
        message(&resp)
    );
}

#[tokio::test]
async fn an_unreadable_header_is_400_naming_it_never_absent() {
    let stack = TestStack::new("strict_headers").await;
    stack.load(synth::leads(4, 3).collect()).await;
    let admin = format!("Bearer {}", stack.admin_token());
    let json = ("content-type", "application/json");
    // What the black-box suite saw: an unreadable key answered from the cache.
    let first = send(
        &stack,
        "POST",
        "/api/exports",
        &[("authorization", &admin), json],
        br#"{"kind":"leads","format":"json","params":{}}"#,
    )
    .await;
    assert_eq!(first.status(), 202);
    for (name, value) in [
        ("idempotency-key", "été"),
        ("idempotency-key", "a b"),
        ("idempotency-key", ""),
        ("prefer", "été"),
        ("prefer", "respond async"),
        ("cache-control", "nö-cache"),
        ("cache-control", "K/,"),
        ("accept", "application/jsön"),
        ("accept", "json"),
    ] {
        let resp = send(
            &stack,
            "POST",
            "/api/exports",
            &[("authorization", &admin), json, (name, value)],
            br#"{"kind":"leads","format":"json","params":{}}"#,
        )
        .await;
        assert_eq!(resp.status(), 400, "{name}: {value}");
        let body = body_json(&resp);
        assert_eq!(body["error_code"], "invalid_request");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains(&format!("header {name}")),
            "{name}: {body}"
        );
        assert!(
            !body.to_string().contains(value) || value.is_empty() || value == "json",
            "never echoed: {body}"
        );
    }
    // The same on a synchronous route, in its own error shape (the leads route's seed shape).
    let resp = send(
        &stack,
        "GET",
        "/api/hybrid-leads/export",
        &[("authorization", &admin), ("idempotency-key", "été")],
        b"",
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert!(message(&resp).contains("header Idempotency-Key"), "{}", message(&resp));
    // Authorization that cannot be read: 400 naming it (readable but wrong: 401).
    let resp = send(&stack, "GET", "/api/exports", &[("authorization", "Bearer été")], b"").await;
    assert_eq!(resp.status(), 400);
    assert!(message(&resp).contains("header Authorization"), "{}", message(&resp));
    let resp = send(&stack, "GET", "/api/exports", &[("authorization", "Bearer nope")], b"").await;
    assert_eq!(resp.status(), 401);
    // A body is read only as JSON, required where the API says, refused where it takes none.
    for (method, path, headers, body, says) in [
        (
            "POST",
            "/api/exports",
            vec![("content-type", "text/plain")],
            &br#"{"kind":"leads"}"#[..],
            "Content-Type",
        ),
        (
            "POST",
            "/api/exports",
            vec![("content-type", "application/json; charset=latin1")],
            br#"{"kind":"leads"}"#,
            "Content-Type",
        ),
        ("POST", "/api/exports", vec![], b"", "required"),
        (
            "PATCH",
            "/api/schedules/0123456789abcdef0123456789abcdef",
            vec![json],
            b"",
            "required",
        ),
        ("GET", "/api/exports", vec![], b"{}", "no request body"),
        ("GET", "/api/admin/sessions/export", vec![], b"x", "no request body"),
    ] {
        let mut all = vec![("authorization", admin.as_str())];
        all.extend(headers);
        let resp = send(&stack, method, path, &all, body).await;
        assert_eq!(resp.status(), 400, "{method} {path}");
        assert!(message(&resp).contains(says), "{method} {path}: {}", message(&resp));
    }
    // Preferences and directives we do not act on are ignored, as their RFCs say, and
    // the preference we applied is named.
    let user = stack.token(Role::User, "strict-user", None, Some("comp-x"));
    let resp = send(
        &stack,
        "GET",
        "/api/hybrid-leads/export",
        &[
            ("authorization", &format!("Bearer {user}")),
            ("prefer", "wait=5, respond-async"),
            ("cache-control", "max-age=0"),
        ],
        b"",
    )
    .await;
    assert_eq!(resp.status(), 202);
    assert_eq!(header(&resp, "preference-applied"), "respond-async");
}

#[tokio::test]
async fn a_declared_paths_other_methods_are_405_with_allow() {
    let stack = TestStack::new("strict_methods").await;
    let admin = format!("Bearer {}", stack.admin_token());
    for (method, path, allow) in [
        ("TRACE", "/api/schedules".to_string(), "GET, POST"),
        ("PUT", "/api/schedules/preview".into(), "POST"),
        ("GET", "/api/schedules/preview".into(), "POST"),
        ("POST", format!("/api/schedules/{JOB}"), "GET, PATCH, DELETE"),
        ("DELETE", "/api/exports".into(), "GET, POST"),
        ("PATCH", format!("/api/exports/{JOB}"), "GET, DELETE"),
        ("GET", format!("/api/exports/{JOB}/cancel"), "POST"),
        ("POST", format!("/api/exports/{JOB}/download"), "GET"),
        ("POST", "/api/admin/sessions/export".into(), "GET"),
        ("DELETE", "/api/hybrid-leads/export".into(), "GET"),
        ("GET", "/client/export/chats".into(), "POST"),
        ("PUT", "/client/export/chats/download".into(), "GET"),
        ("HEAD", "/client/export/conversations".into(), "GET"),
    ] {
        let resp = send(&stack, method, &path, &[("authorization", &admin)], b"").await;
        assert_eq!(resp.status(), 405, "{method} {path}");
        assert_eq!(header(&resp, "allow"), allow, "{method} {path}");
        if method != "HEAD" {
            let body: Value = body_json(&resp);
            let code = body["error_code"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| body["error"].to_string());
            assert!(
                code.contains("method_not_allowed") || code.contains("not allowed"),
                "{body}"
            );
        }
        // OPTIONS (a CORS preflight, which API Gateway's ANY route brings here): 204.
        let resp = send(&stack, "OPTIONS", &path, &[], b"").await;
        assert_eq!(
            (resp.status().as_u16(), header(&resp, "allow")),
            (204, allow),
            "OPTIONS {path}"
        );
    }
    // An unknown path stays 404.
    let resp = send(&stack, "TRACE", "/api/nothing", &[("authorization", &admin)], b"").await;
    assert_eq!(resp.status(), 404);
}

/// Through the real server: the bytes of a non-ASCII header reach the handler (and are
/// refused there), as they reach a function through API Gateway.
#[tokio::test]
async fn exportctl_serve_hands_an_unreadable_header_to_the_handler() {
    let stack = TestStack::new("strict_serve").await;
    let admin = stack.admin_token();
    let server = Server::start(&stack, &[("SCHEDULER_TICK_SECONDS", "0")]).await;
    let body = json!({"kind": "leads"}).to_string();
    let mut request = format!(
        "POST /api/exports HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {admin}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nIdempotency-Key: ",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice("été".as_bytes());
    request.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    request.extend_from_slice(body.as_bytes());
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    stream.write_all(&request).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("header Idempotency-Key"), "{answer}");
    server.terminate().await;
}
