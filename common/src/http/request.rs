//! The parts of an API Gateway request the pipeline reads, taken once.

use lambda_http::{
    Request, RequestExt,
    http::{HeaderMap, Method},
    request::RequestContext,
};

use super::headers::Headers;
use crate::error::Error;

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
    /// The declared headers, decoded once ([`RawRequest::typed_headers`]); the
    /// message of the refusal when one could not be read.
    decoded: Result<Headers, String>,
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
        Self::new(
            parts.method,
            parts.uri.path().to_string(),
            query,
            parts.headers,
            AsRef::<[u8]>::as_ref(&body).to_vec(),
            request_id,
        )
    }

    pub fn new(
        method: Method,
        path: String,
        query: String,
        headers: HeaderMap,
        body: Vec<u8>,
        request_id: String,
    ) -> Self {
        let decoded = Headers::decode(&headers).map_err(|e| e.to_string());
        Self {
            method,
            path,
            query,
            headers,
            body,
            request_id,
            decoded,
        }
    }

    /// The declared headers as typed values, or `400` naming the one that could not
    /// be read (step "decoding" of the pipeline).
    pub fn typed_headers(&self) -> Result<&Headers, Error> {
        self.decoded.as_ref().map_err(|m| Error::bad_request(m.clone()))
    }

    /// `Prefer: respond-async`, for choosing the error shape before anything is
    /// decoded (an unreadable `Prefer` is refused in the route's own shape).
    pub fn prefers_async(&self) -> bool {
        self.decoded.as_ref().is_ok_and(|h| h.respond_async)
    }

    /// The JSON object body of a body route, read only when it says it is JSON
    /// (`Content-Type`); `required`: an empty body is refused too.
    pub fn json_body<T: serde::de::DeserializeOwned + Default>(&self, required: bool) -> Result<T, Error> {
        self.typed_headers()?.check_body(&self.body)?;
        if required && self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::bad_request("the request body is required: a JSON object"));
        }
        super::body::decode(&self.body)
    }

    /// Routes without a body refuse one rather than ignore it.
    pub fn no_body(&self) -> Result<(), Error> {
        if self.body.is_empty() {
            Ok(())
        } else {
            Err(Error::bad_request("this route takes no request body"))
        }
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
