//! POST /client/export/chats and GET /client/export/chats/download: chat messages as
//! JSON, Excel, a ZIP of both, or CSV, with analytics. Admins export any client (or
//! all); users only their own (decided in `common::params::chats`). Both routes are
//! rate limited and audited. This file only declares the routes' policies.

use chrono::{DateTime, SecondsFormat, Utc};
use common::{
    AppContext,
    auth::Caller,
    chats,
    delivery::{Finished, Location},
    error::Error,
    http::{
        self, ErrorStyle, ExportRoute, Planned, Policy, RawRequest,
        errors::not_found,
        pipeline::{Answer, Input},
    },
    params::chats::ChatsParams,
};
use lambda_http::{Body, Request, Response, http::Method};
use serde_json::json;

pub const EXPORT_PATH: &str = "/client/export/chats";
pub const DOWNLOAD_PATH: &str = "/client/export/chats/download";

/// POST: the parameters as a JSON body; the file always goes to S3 and the answer is
/// the seed's JSON.
pub struct ChatsExport;

/// GET: the parameters as a query string; the answer is the file itself.
pub struct ChatsDownload;

const ERRORS: ErrorStyle = ErrorStyle::Code {
    failure: "Failed to export chats",
    invalid: Some("Invalid export request"),
};

fn plan(ctx: &AppContext, caller: &Caller, params: ChatsParams, now: DateTime<Utc>) -> Result<Planned, Error> {
    let spec = params.into_spec(caller, ctx.config.chat.max_records)?;
    let (scope, tenant) = match &spec.filter.client_id {
        Some(c) => (format!("client#{c}"), format!("client#{c}")),
        None => ("all".to_string(), "client#*".to_string()),
    };
    Ok(Planned {
        job: chats::job(ctx, &spec, now)?,
        scope,
        tenant,
        label: spec.format.as_str(),
    })
}

impl ExportRoute for ChatsExport {
    type Params = ChatsParams;

    fn policy(&self) -> Policy {
        Policy {
            route: "POST /client/export/chats",
            kind: "chats",
            input: Input::JsonBody,
            answer: Answer::Stored,
            admin_only: false,
            rate_limited: true,
            audited: true,
        }
    }

    fn error_style(&self, _req: &RawRequest) -> ErrorStyle {
        ERRORS
    }

    fn plan(
        &self,
        ctx: &AppContext,
        caller: &Caller,
        params: ChatsParams,
        now: DateTime<Utc>,
    ) -> Result<Planned, Error> {
        plan(ctx, caller, params, now)
    }

    /// The seed's answer, plus where to fetch the file.
    fn stored_answer(&self, label: &str, finished: &Finished) -> serde_json::Value {
        let (url, expires_at) = match &finished.location {
            Location::Stored { url, expires_at, .. } => (
                Some(url.clone()),
                Some(expires_at.to_rfc3339_opts(SecondsFormat::Secs, true)),
            ),
            Location::Inline { .. } => (None, None),
        };
        json!({
            "success": true,
            "message": "Export generated successfully",
            "file_size": finished.bytes,
            "record_count": finished.rows,
            "format": label,
            "file_name": finished.file_name,
            "download_url": url,
            "expires_at": expires_at,
        })
    }
}

impl ExportRoute for ChatsDownload {
    type Params = ChatsParams;

    fn policy(&self) -> Policy {
        Policy {
            route: "GET /client/export/chats/download",
            kind: "chats",
            input: Input::Query,
            answer: Answer::File,
            admin_only: false,
            rate_limited: true,
            audited: true,
        }
    }

    fn error_style(&self, _req: &RawRequest) -> ErrorStyle {
        ERRORS
    }

    fn plan(
        &self,
        ctx: &AppContext,
        caller: &Caller,
        params: ChatsParams,
        now: DateTime<Utc>,
    ) -> Result<Planned, Error> {
        plan(ctx, caller, params, now)
    }
}

/// Both routes of the function.
pub async fn handle(ctx: &AppContext, req: Request) -> Response<Body> {
    match (req.method(), req.uri().path()) {
        (&Method::POST, EXPORT_PATH) => http::handle(ctx, req, &ChatsExport).await,
        (&Method::GET, DOWNLOAD_PATH) => http::handle(ctx, req, &ChatsDownload).await,
        (_, path) => not_found(path),
    }
}
