//! The chat data routes, rate limited and audited:
//! - POST /client/export/chats: chat messages as the seed's JSON, Excel, a ZIP of
//!   both, or CSV, stored in S3 and answered with the seed's JSON;
//! - GET /client/export/chats/download: the same file as the answer;
//! - GET /client/export/conversations: one row per conversation, CSV/JSON/Excel.
//!
//! Admins export any client (or all); users only their own (decided in
//! `common::params::chats`). This file only declares the routes' policies.

use chrono::{DateTime, SecondsFormat, Utc};
use common::{
    AppContext,
    auth::Caller,
    delivery::{Finished, Location},
    error::Error,
    http::{self, ErrorStyle, ExportRoute, Policy, RawRequest, errors::not_found},
    params::{chats::ChatsParams, conversations::ConversationsParams},
    spec::ExportSpec,
};
use lambda_http::{Body, Request, Response, http::Method};
use serde_json::json;

pub const EXPORT_PATH: &str = "/client/export/chats";
pub const DOWNLOAD_PATH: &str = "/client/export/chats/download";
pub const CONVERSATIONS_PATH: &str = "/client/export/conversations";

const ERRORS: ErrorStyle = ErrorStyle::Code {
    failure: "Failed to export chats",
    invalid: Some("Invalid export request"),
};

/// A chat export route: POST (stored, answered with the seed's JSON) or GET (the file).
pub struct ChatsRoute {
    policy: Policy,
}

pub const CHATS_EXPORT: ChatsRoute = ChatsRoute {
    policy: Policy::body_stored("POST /client/export/chats", "chats").rate_limited(),
};

pub const CHATS_DOWNLOAD: ChatsRoute = ChatsRoute {
    policy: Policy::query("GET /client/export/chats/download", "chats").rate_limited(),
};

impl ExportRoute for ChatsRoute {
    type Params = ChatsParams;

    fn policy(&self) -> Policy {
        self.policy
    }

    fn error_style(&self, _req: &RawRequest) -> ErrorStyle {
        ERRORS
    }

    fn spec(
        &self,
        ctx: &AppContext,
        caller: &Caller,
        params: ChatsParams,
        now: DateTime<Utc>,
    ) -> Result<ExportSpec, Error> {
        params.into_spec(caller, ctx.config.chat.max_records, now)
    }

    /// The seed's answer, plus where to fetch the file.
    fn stored_answer(&self, format: &str, finished: &Finished) -> serde_json::Value {
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
            "format": format,
            "file_name": finished.file_name,
            "download_url": url,
            "expires_at": expires_at,
        })
    }
}

/// GET /client/export/conversations.
pub struct ConversationsDownload;

impl ExportRoute for ConversationsDownload {
    type Params = ConversationsParams;

    fn policy(&self) -> Policy {
        Policy::query("GET /client/export/conversations", "conversations").rate_limited()
    }

    fn error_style(&self, _req: &RawRequest) -> ErrorStyle {
        ErrorStyle::Code {
            failure: "Failed to export conversations",
            invalid: Some("Invalid export request"),
        }
    }

    fn spec(
        &self,
        ctx: &AppContext,
        caller: &Caller,
        params: ConversationsParams,
        now: DateTime<Utc>,
    ) -> Result<ExportSpec, Error> {
        params.into_spec(caller, ctx.config.chat.max_records, now)
    }
}

/// Every route of the function.
pub async fn handle(ctx: &AppContext, req: Request) -> Response<Body> {
    match (req.method(), req.uri().path()) {
        (&Method::POST, EXPORT_PATH) => http::handle(ctx, req, &CHATS_EXPORT).await,
        (&Method::GET, DOWNLOAD_PATH) => http::handle(ctx, req, &CHATS_DOWNLOAD).await,
        (&Method::GET, CONVERSATIONS_PATH) => http::handle(ctx, req, &ConversationsDownload).await,
        (_, EXPORT_PATH) => http::pipeline::refuse_method(req, &CHATS_EXPORT, "POST"),
        (_, DOWNLOAD_PATH) => http::pipeline::refuse_method(req, &CHATS_DOWNLOAD, "GET"),
        (_, CONVERSATIONS_PATH) => http::pipeline::refuse_method(req, &ConversationsDownload, "GET"),
        (_, path) => not_found(path),
    }
}
