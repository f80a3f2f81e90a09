//! `exportctl serve` serves the console's static files at `/`: only plain file names
//! under `web/`, with a strict content security policy; nothing else is ever read.

use integration_tests::*;

async fn get(stack: &TestStack, path: &str) -> lambda_http::Response<lambda_http::Body> {
    exportctl::serve::route(&stack.ctx, request("GET", path, &[])).await
}

#[tokio::test]
async fn the_console_is_served_at_the_root_with_a_strict_policy() {
    let stack = TestStack::new("console").await;
    let resp = get(&stack, "/").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "text/html; charset=utf-8");
    let csp = header(&resp, "content-security-policy");
    assert!(
        csp.contains("default-src 'self'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(
        String::from_utf8_lossy(&body_bytes(&resp))
            .to_lowercase()
            .contains("<!doctype html>")
    );
    for path in ["/index.html", "/export-client.js"] {
        if std::path::Path::new(&format!("{}/../web{path}", env!("CARGO_MANIFEST_DIR"))).exists() {
            assert_eq!(get(&stack, path).await.status(), 200, "{path}");
        }
    }
    // Nothing outside web/, no hidden files, no unknown types: the API's JSON 404.
    for path in [
        "/../Cargo.toml",
        "/..%2FCargo.toml",
        "/.gitignore",
        "/web/../../local.env",
        "/nope.html",
        "/index.html/",
        "//etc/passwd",
        "/README.md",
    ] {
        let resp = get(&stack, path).await;
        assert_eq!(resp.status(), 404, "{path}");
        assert_eq!(header(&resp, "content-type"), "application/json", "{path}");
    }
}
