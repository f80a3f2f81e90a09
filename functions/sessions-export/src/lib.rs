//! GET /api/admin/sessions/export: every chat session with its messages as CSV (admins only).

use common::{
    AppContext,
    api::{self, ErrorStyle, Route},
    export::{EncodeOptions, ExportJob, Format},
    sessions,
};
use lambda_http::{Body, Request, Response};

pub const PATH: &str = "/api/admin/sessions/export";

/// Query parameters this route accepts.
pub const PARAMS: &[&str] = &["spreadsheet_safe"];

pub static ROUTE: Route = Route {
    kind: "sessions",
    errors: ErrorStyle::Code {
        failure: "Failed to export chat sessions",
    },
};

pub async fn handle(ctx: &AppContext, req: Request) -> Response<Body> {
    api::handle_export(ctx, req, &ROUTE, |ctx, caller, query| {
        caller.require_admin()?;
        query.expect_only(PARAMS)?;
        let options = EncodeOptions {
            spreadsheet_safe: query.bool("spreadsheet_safe", true)?,
        };
        let tables = &ctx.config.tables;
        Ok(ExportJob {
            kind: ROUTE.kind,
            file_stem: "chat-sessions-export",
            format: Format::Csv,
            columns: sessions::COLUMNS.to_vec(),
            options,
            rows: sessions::rows(
                ctx.aws.dynamodb.clone(),
                tables.sessions.clone(),
                tables.session_messages.clone(),
            ),
        })
    })
    .await
}
