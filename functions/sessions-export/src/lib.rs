//! GET /api/admin/sessions/export: every chat session with its messages as CSV
//! (admins only). This file only declares the route's policy; the pipeline in
//! `common::http` does the rest.

use chrono::{DateTime, Utc};
use common::{
    AppContext,
    auth::Caller,
    error::Error,
    http::{
        self, ErrorStyle, ExportRoute, Planned, Policy, RawRequest,
        pipeline::{Answer, Input},
    },
    params::sessions::SessionsParams,
    sessions,
};
use lambda_http::{Body, Request, Response};

pub const PATH: &str = "/api/admin/sessions/export";

pub struct SessionsExport;

impl ExportRoute for SessionsExport {
    type Params = SessionsParams;

    fn policy(&self) -> Policy {
        Policy {
            route: "GET /api/admin/sessions/export",
            kind: "sessions",
            input: Input::Query,
            answer: Answer::File,
            admin_only: true,
            rate_limited: false,
            audited: false,
        }
    }

    fn error_style(&self, _req: &RawRequest) -> ErrorStyle {
        ErrorStyle::Code {
            failure: "Failed to export chat sessions",
            invalid: None,
        }
    }

    fn plan(
        &self,
        ctx: &AppContext,
        _caller: &Caller,
        params: SessionsParams,
        _now: DateTime<Utc>,
    ) -> Result<Planned, Error> {
        Ok(Planned {
            job: sessions::job(ctx, params.options()),
            scope: "all".into(),
            tenant: "sessions#*".into(),
            label: "csv",
        })
    }
}

pub async fn handle(ctx: &AppContext, req: Request) -> Response<Body> {
    http::handle(ctx, req, &SessionsExport).await
}
