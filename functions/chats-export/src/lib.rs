//! POST /client/export/chats and GET /client/export/chats/download: chat messages as
//! JSON, Excel, a ZIP of both, or CSV, with analytics. Admins export any client (or
//! all); users only their own. Every attempt is rate limited and audited.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use chrono::Utc;
use common::{
    AppContext,
    api::{self, ErrorStyle, Query, sanitize},
    audit::{self, AuditRecord},
    auth::{Caller, Role},
    chat_document::{ChatDocumentInfo, ChatJsonEncoder, ChatXlsxEncoder, ZipEncoder},
    chats::{self, ChatFilter, ChatOptions, ChatStats},
    error::Error,
    export::{EncodeOptions, Encoder, ExportJob, Format},
    leads::DateRange,
    ratelimit::{self, Limit},
    timefmt::{self, Bound},
};
use lambda_http::{
    Body, Request, Response,
    http::{Method, StatusCode},
};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub const EXPORT_PATH: &str = "/client/export/chats";
pub const DOWNLOAD_PATH: &str = "/client/export/chats/download";
const KIND: &str = "chats";
pub const DEFAULT_LIMIT: u32 = 10_000;

const ERRORS: ErrorStyle = ErrorStyle::Code {
    failure: "Failed to export chats",
};

/// The request's parameters, as sent (JSON body or query string). Unknown fields and
/// wrong types are rejected.
#[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChatExportParams {
    pub format: Option<String>,
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    pub client_id: Option<String>,
    pub conversation_id: Option<String>,
    pub limit: Option<i64>,
    pub include_geo: Option<bool>,
    pub include_meta: Option<bool>,
}

const PARAMS: &[&str] = &[
    "format",
    "date_from",
    "date_to",
    "client_id",
    "conversation_id",
    "limit",
    "include_geo",
    "include_meta",
];

impl ChatExportParams {
    pub fn from_query(query: &Query) -> Result<Self, Error> {
        query.expect_only(PARAMS)?;
        let text = |k: &str| query.get(k).map(String::from);
        let limit = query
            .get("limit")
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| Error::bad_request(format!("limit must be an integer, got '{}'", sanitize(v))))
            })
            .transpose()?;
        let flag = |k: &str| query.get(k).map(|_| query.bool(k, false)).transpose();
        Ok(Self {
            format: text("format"),
            date_from: text("date_from"),
            date_to: text("date_to"),
            client_id: text("client_id"),
            conversation_id: text("conversation_id"),
            limit,
            include_geo: flag("include_geo")?,
            include_meta: flag("include_meta")?,
        })
    }

    pub fn from_body(body: &[u8]) -> Result<Self, Error> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        serde_json::from_slice(body).map_err(|e| {
            // serde's message names the field and the expected type; no input is echoed.
            Error::bad_request(format!("Invalid export request: {}", sanitize_serde(&e)))
        })
    }
}

fn sanitize_serde(e: &serde_json::Error) -> String {
    // Cut quoted input out of messages like `invalid type: string "...", expected ...`;
    // field names (in backticks) stay.
    let mut out = String::new();
    let mut quoted = false;
    for c in e.to_string().chars() {
        if c == '"' {
            quoted = !quoted;
            if quoted {
                out.push_str("(value omitted)");
            }
        } else if !quoted {
            out.push(c);
        }
    }
    api::sanitize_to(&out, 200)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatFormat {
    Json,
    Excel,
    Both,
    Csv,
}

impl ChatFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatFormat::Json => "json",
            ChatFormat::Excel => "excel",
            ChatFormat::Both => "both",
            ChatFormat::Csv => "csv",
        }
    }

    fn file_format(self) -> Format {
        match self {
            ChatFormat::Json => Format::Json,
            ChatFormat::Excel => Format::Xlsx,
            ChatFormat::Both => Format::Zip,
            ChatFormat::Csv => Format::Csv,
        }
    }
}

/// A chat export request, parsed and scoped to what the caller may see.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatSpec {
    pub format: ChatFormat,
    pub filter: ChatFilter,
    pub options: ChatOptions,
}

fn parse_id(name: &str, value: &str) -> Result<String, Error> {
    api::parse_id(name, value).map_err(|e| Error::bad_request(format!("Invalid export request: {e}")))
}

fn parse_bound(name: &str, value: Option<&str>, bound: Bound) -> Result<Option<chrono::DateTime<Utc>>, Error> {
    value
        .map(|v| {
            timefmt::parse_bound(v, bound).ok_or_else(|| {
                Error::bad_request(format!(
                    "Invalid export request: {name} must be YYYY-MM-DD or an RFC 3339 date-time, got '{}'",
                    sanitize(v)
                ))
            })
        })
        .transpose()
}

pub fn parse(caller: &Caller, params: &ChatExportParams, max_records: u32) -> Result<ChatSpec, Error> {
    let format = match params.format.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("json") => ChatFormat::Json,
        Some("excel") => ChatFormat::Excel,
        Some("both") => ChatFormat::Both,
        Some("csv") => ChatFormat::Csv,
        Some(other) => {
            return Err(Error::bad_request(format!(
                "Invalid export request: format must be one of [json, excel, both, csv], got '{}'",
                sanitize(other)
            )));
        }
    };
    let range = DateRange {
        from: parse_bound("date_from", params.date_from.as_deref(), Bound::Start)?,
        to: parse_bound("date_to", params.date_to.as_deref(), Bound::End)?,
    };
    if let (Some(f), Some(t)) = (range.from, range.to)
        && f > t
    {
        return Err(Error::bad_request(
            "Invalid export request: date_from must not be after date_to",
        ));
    }
    let limit = match params.limit {
        None => DEFAULT_LIMIT.min(max_records),
        Some(n) if n >= 1 && n <= max_records as i64 => n as u32,
        Some(_) => {
            return Err(Error::bad_request(format!(
                "Invalid export request: limit must be between 1 and {max_records}"
            )));
        }
    };
    let requested = params
        .client_id
        .as_deref()
        .map(|c| parse_id("client_id", c))
        .transpose()?;
    let client_id = if caller.is_admin() {
        requested
    } else {
        let own = caller
            .client_id
            .clone()
            .ok_or_else(|| Error::Forbidden("Your token has no client, so it cannot export chats".into()))?;
        if requested.as_ref().is_some_and(|r| *r != own) {
            return Err(Error::Forbidden("You can only export your own client's chats".into()));
        }
        Some(own)
    };
    Ok(ChatSpec {
        format,
        filter: ChatFilter {
            client_id,
            conversation_id: params
                .conversation_id
                .as_deref()
                .map(|c| parse_id("conversation_id", c))
                .transpose()?,
            range,
            limit,
        },
        options: ChatOptions {
            include_geo: params.include_geo.unwrap_or(false),
            include_meta: params.include_meta.unwrap_or(false),
            anonymize_ips: !caller.is_admin(),
        },
    })
}

/// The export job of a spec (source, columns and the document encoder).
pub fn job(ctx: &AppContext, spec: &ChatSpec) -> Result<ExportJob, Error> {
    let stats = Arc::new(Mutex::new(ChatStats::default()));
    let columns = chats::columns(spec.options);
    let options = EncodeOptions::default();
    let info = ChatDocumentInfo {
        export_date: Utc::now(),
        requested: spec.filter.range.clone(),
        client_id: spec.filter.client_id.clone(),
        format: spec.format.as_str().to_string(),
        include_geo: spec.options.include_geo,
        include_meta: spec.options.include_meta,
    };
    let day = Utc::now().format("%Y-%m-%d");
    let json = || ChatJsonEncoder::new(&columns, stats.clone(), info.clone());
    let xlsx = || ChatXlsxEncoder::new(&columns, options, stats.clone(), info.clone());
    let encoder: Option<Box<dyn Encoder>> = match spec.format {
        ChatFormat::Json => Some(Box::new(json())),
        ChatFormat::Excel => Some(Box::new(xlsx()?)),
        ChatFormat::Both => Some(Box::new(ZipEncoder::new(
            json(),
            xlsx()?,
            &format!("chat-export-{day}.json"),
            &format!("chat-export-{day}.xlsx"),
        )?)),
        ChatFormat::Csv => None,
    };
    Ok(ExportJob {
        kind: KIND,
        file_stem: "chat-export",
        sheet: "Chat Messages",
        format: spec.format.file_format(),
        columns: columns.clone(),
        options,
        rows: chats::rows(
            ctx.aws.dynamodb.clone(),
            ctx.config.tables.chat_messages.clone(),
            spec.filter.clone(),
            spec.options,
            stats.clone(),
        ),
        encoder,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    /// POST: always stored in S3, answered with the seed's JSON.
    Export,
    /// GET: the file itself (inline, or 303 to S3).
    Download,
}

impl Route {
    fn name(self) -> &'static str {
        match self {
            Route::Export => "POST /client/export/chats",
            Route::Download => "GET /client/export/chats/download",
        }
    }
}

fn limits(ctx: &AppContext, caller: &Caller, spec: &ChatSpec) -> Vec<Limit> {
    let c = &ctx.config.chat;
    vec![
        Limit {
            key: format!("user#{}", caller.sub),
            max: c.per_user_per_minute,
            window_secs: 60,
        },
        Limit {
            key: format!("client#{}", spec.filter.client_id.as_deref().unwrap_or("*")),
            max: c.per_client_per_hour,
            window_secs: 3600,
        },
    ]
}

/// Both routes. Order: authenticate, parse and scope (no quota spent on a bad
/// request), rate limit, export, audit, answer. If the audit record cannot be
/// written the export fails and its file is deleted.
pub async fn handle(ctx: &AppContext, req: Request) -> Response<Body> {
    let started = Instant::now();
    let request_id = api::request_id(&req);
    let route = match (req.method(), req.uri().path()) {
        (&Method::POST, EXPORT_PATH) => Route::Export,
        (&Method::GET, DOWNLOAD_PATH) => Route::Download,
        (_, path) => return api::not_found(path),
    };
    let wants_json = api::wants_json(&req);
    let mut record = AuditRecord::new(&request_id, route.name(), Utc::now());
    let result = async {
        let caller = ctx.auth.authenticate(req.headers())?;
        record.caller = Some(caller.sub.clone());
        record.role = Some(if caller.role == Role::Admin { "admin" } else { "user" }.into());
        let params = match route {
            Route::Export => ChatExportParams::from_body(req.body().as_ref())?,
            Route::Download => ChatExportParams::from_query(&Query::from_request(&req))?,
        };
        record.parameters = serde_json::to_string(&params).ok();
        let spec = parse(&caller, &params, ctx.config.chat.max_records)?;
        record.client_scope = match &spec.filter.client_id {
            Some(c) => format!("client#{c}"),
            None => "all".into(),
        };
        ratelimit::admit(
            &ctx.aws.dynamodb,
            &ctx.config.tables.rate_limits,
            &limits(ctx, &caller, &spec),
            Utc::now().timestamp() as u64,
        )
        .await?;
        let finished = api::run_job(ctx, job(ctx, &spec)?, route == Route::Download && !wants_json).await?;
        Ok::<_, Error>((spec, finished))
    }
    .await;

    record.duration_ms = started.elapsed().as_millis() as u64;
    match &result {
        Ok((_, finished)) => {
            record.outcome = "success".into();
            record.status = 200;
            record.records = Some(finished.rows);
            record.bytes = Some(finished.bytes);
            record.s3_key = finished.s3_key().map(String::from);
        }
        Err(e) => {
            record.outcome = if e.is_server_error() { "failed" } else { "rejected" }.into();
            record.status = e.http_status();
            record.error_code = Some(e.code().into());
        }
    }
    let audited = audit::write(&ctx.aws.dynamodb, &ctx.config.tables.audit, &record).await;
    let result = match (result, audited) {
        (Ok((_, finished)), Err(audit_error)) => {
            finished.discard(ctx).await;
            Err(audit_error)
        }
        (Err(e), Err(audit_error)) => {
            tracing::error!(request_id, error = %audit_error.cause_chain(), "audit record not written");
            Err(if e.is_server_error() { e } else { audit_error })
        }
        (result, Ok(())) => result,
    };

    let response = match result {
        Ok((spec, finished)) => match route {
            Route::Download => api::finished_response(finished, wants_json),
            Route::Export => Ok(export_answer(&spec, finished)),
        },
        Err(e) => Err(e),
    };
    let response = response.unwrap_or_else(|e| {
        if e.is_server_error() {
            tracing::error!(request_id, route = route.name(), error = %e.cause_chain(), "chat export failed");
        }
        api::error_response(&e, &ERRORS)
    });
    tracing::info!(
        request_id,
        sub = record.caller.as_deref(),
        kind = KIND,
        route = route.name(),
        status = response.status().as_u16(),
        rows = record.records,
        bytes = record.bytes,
        outcome = record.outcome,
        duration_ms = started.elapsed().as_millis() as u64,
        "chat export"
    );
    response
}

/// The seed's answer to POST, plus where to fetch the file.
fn export_answer(spec: &ChatSpec, finished: api::Finished) -> Response<Body> {
    let (url, expires_at) = match &finished.location {
        api::Location::Stored { url, expires_at, .. } => (
            Some(url.clone()),
            Some(expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        ),
        api::Location::Inline { .. } => (None, None),
    };
    api::json_response(
        StatusCode::OK,
        &json!({
            "success": true,
            "message": "Export generated successfully",
            "file_size": finished.bytes,
            "record_count": finished.rows,
            "format": spec.format.as_str(),
            "file_name": finished.file_name,
            "download_url": url,
            "expires_at": expires_at,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role, client: Option<&str>) -> Caller {
        Caller {
            sub: "s".into(),
            role,
            client_id: client.map(Into::into),
            company_id: None,
        }
    }

    fn body(s: &str) -> Result<ChatExportParams, Error> {
        ChatExportParams::from_body(s.as_bytes())
    }

    #[test]
    fn bodies_are_strict() {
        assert!(body("").is_ok());
        assert!(body(r#"{"format":"excel","limit":5,"include_geo":true}"#).is_ok());
        for bad in [
            r#"{"formt":"json"}"#,
            r#"{"limit":"ten"}"#,
            r#"{"include_geo":"yes"}"#,
            r#"{"limit":1.5}"#,
            r#"[1]"#,
            r#"{"#,
        ] {
            let err = body(bad).unwrap_err();
            assert!(matches!(err, Error::BadRequest(_)), "{bad}");
        }
        let msg = body(r#"{"limit":"<script>"}"#).unwrap_err().to_string();
        assert!(!msg.contains("script"), "{msg}");
    }

    #[test]
    fn scope_and_limits() {
        let user = caller(Role::User, Some("c1"));
        let p = |json: &str| body(json).unwrap();
        assert_eq!(
            parse(&user, &p("{}"), 100).unwrap().filter.client_id.as_deref(),
            Some("c1")
        );
        assert!(parse(&user, &p(r#"{"client_id":"c1"}"#), 100).is_ok());
        assert!(matches!(
            parse(&user, &p(r#"{"client_id":"c2"}"#), 100),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            parse(&caller(Role::User, None), &p("{}"), 100),
            Err(Error::Forbidden(_))
        ));
        let admin = caller(Role::Admin, None);
        assert_eq!(parse(&admin, &p("{}"), 100).unwrap().filter.client_id, None);
        assert_eq!(parse(&admin, &p("{}"), 100).unwrap().filter.limit, 100);
        assert_eq!(parse(&admin, &p("{}"), 1_000_000).unwrap().filter.limit, DEFAULT_LIMIT);
        for bad in [r#"{"limit":0}"#, r#"{"limit":-1}"#, r#"{"limit":101}"#] {
            assert!(
                matches!(parse(&admin, &p(bad), 100), Err(Error::BadRequest(_))),
                "{bad}"
            );
        }
        let spec = parse(&admin, &p(r#"{"date_from":"2024-01-01","date_to":"2024-01-31"}"#), 100).unwrap();
        assert_eq!(
            timefmt::format(&spec.filter.range.to.unwrap()),
            "2024-01-31T23:59:59.999Z"
        );
        for bad in [
            r#"{"date_from":"2024-02-01","date_to":"2024-01-01"}"#,
            r#"{"date_from":"01/02/2024"}"#,
            r#"{"format":"pdf"}"#,
            r#"{"conversation_id":"a b"}"#,
        ] {
            assert!(
                matches!(parse(&admin, &p(bad), 100), Err(Error::BadRequest(_))),
                "{bad}"
            );
        }
        assert!(parse(&user, &p("{}"), 100).unwrap().options.anonymize_ips);
        assert!(!parse(&admin, &p("{}"), 100).unwrap().options.anonymize_ips);
    }
}
