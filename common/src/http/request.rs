//! The parts of an API Gateway request the pipeline reads, taken once.

use lambda_http::{
    Request, RequestExt,
    http::{HeaderMap, Method, header::ACCEPT},
    request::RequestContext,
};

/// A request as received: nothing in it is trusted yet.
#[derive(Debug)]
pub struct RawRequest {
    pub method: Method,
    pub path: String,
    /// The raw query string, repeats included (API Gateway's `rawQueryString`).
    pub query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub request_id: String,
}

/// Request ids are echoed in logs and audit records: keep them short and printable.
const MAX_REQUEST_ID_CHARS: usize = 128;

impl RawRequest {
    pub fn from_lambda(req: Request) -> Self {
        let request_id = request_id(&req);
        let query = match req.uri().query() {
            Some(q) => q.to_string(),
            // An event without `rawQueryString` (hand-written, or from a REST API):
            // rebuild one from the parsed parameters, every value of every name.
            None => {
                let params = req.query_string_parameters();
                let mut out = form_urlencoded::Serializer::new(String::new());
                for (key, _) in params.iter() {
                    for value in params.all(key).unwrap_or_default() {
                        out.append_pair(key, value);
                    }
                }
                out.finish()
            }
        };
        let (parts, body) = req.into_parts();
        Self {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query,
            headers: parts.headers,
            body: AsRef::<[u8]>::as_ref(&body).to_vec(),
            request_id,
        }
    }

    /// The client asked for a JSON answer (`Accept: application/json`).
    pub fn wants_json(&self) -> bool {
        self.headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim().starts_with("application/json")))
    }

    /// The first value of a query parameter, without any checks: only for choosing
    /// the shape of an error answer before the query is decoded.
    pub fn peek_query(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
    }
}

fn request_id(req: &Request) -> String {
    let id = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    }
    .or_else(|| req.lambda_context_ref().map(|c| c.request_id.clone()))
    .unwrap_or_else(|| "-".into());
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(MAX_REQUEST_ID_CHARS)
        .collect();
    if id.is_empty() { "-".into() } else { id }
}
