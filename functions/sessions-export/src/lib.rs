//! GET /api/admin/sessions/export: every chat session with its messages as CSV (admins only).

use common::{
    AppContext,
    api::{self, ErrorStyle},
    export::{EncodeOptions, ExportJob, Format},
    sessions,
};
use lambda_http::{Body, Request, Response};

pub const PATH: &str = "/api/admin/sessions/export";

/// Query parameters this route accepts.
pub const PARAMS: &[&str] = &["spreadsheet_safe"];

const KIND: &str = "sessions";

const ERRORS: ErrorStyle = ErrorStyle::Code {
    failure: "Failed to export chat sessions",
};

pub async fn handle(ctx: &AppContext, req: Request) -> Response<Body> {
    api::handle_export(
        ctx,
        req,
        KIND,
        |_| ERRORS,
        |ctx, caller, query| {
            caller.require_admin()?;
            query.expect_only(PARAMS)?;
            let options = EncodeOptions {
                spreadsheet_safe: query.bool("spreadsheet_safe", true)?,
                ..EncodeOptions::default()
            };
            let tables = &ctx.config.tables;
            Ok(ExportJob {
                kind: KIND,
                file_stem: "chat-sessions-export",
                sheet: "Chat Sessions",
                format: Format::Csv,
                columns: sessions::COLUMNS.to_vec(),
                options,
                rows: sessions::rows(
                    ctx.aws.dynamodb.clone(),
                    tables.sessions.clone(),
                    tables.session_messages.clone(),
                ),
                encoder: None,
            })
        },
    )
    .await
}
