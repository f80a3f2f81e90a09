//! `exportctl serve`: a local HTTP server that turns each request into the API
//! Gateway HTTP API (payload 2.0) event the deployed API sends, runs the same handler
//! code as the Lambda binaries, and turns the handler's response back into HTTP.

use std::{convert::Infallible, net::SocketAddr};

use base64::Engine as _;
use bytes::Bytes;
use common::AppContext;
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use lambda_http::{Body, Request, Response};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

/// Routes served locally: `(method, path)`. The same list is declared in template.yaml.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", sessions_export::PATH),
    ("GET", leads_export::PATH),
    ("POST", chats_export::EXPORT_PATH),
    ("GET", chats_export::DOWNLOAD_PATH),
];

/// Dispatches an API Gateway request to the function that owns its route.
pub async fn route(ctx: &AppContext, req: Request) -> Response<Body> {
    let path = req.uri().path().to_string();
    match (req.method().as_str(), path.as_str()) {
        ("GET", sessions_export::PATH) => sessions_export::handle(ctx, req).await,
        ("GET", leads_export::PATH) => leads_export::handle(ctx, req).await,
        ("POST", chats_export::EXPORT_PATH) | ("GET", chats_export::DOWNLOAD_PATH) => {
            chats_export::handle(ctx, req).await
        }
        _ => common::api::not_found(&path),
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

async fn handle_http(
    ctx: AppContext,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string())))
        .collect();
    let event = api_gateway_event(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        &headers,
        &body,
        &peer.ip().to_string(),
    );
    let response = match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => route(&ctx, request).await,
        Err(e) => {
            tracing::error!(error = %e, "could not build the API Gateway event");
            common::api::not_found(parts.uri.path())
        }
    };
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(s) => Bytes::from(s),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    Ok(hyper::Response::from_parts(parts, Full::new(bytes)))
}

/// Serves until the listener fails. Each connection runs on its own task.
pub async fn serve(ctx: AppContext, listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle_http(ctx.clone(), req, peer));
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
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
}
