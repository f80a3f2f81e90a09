//! GET /api/admin/sessions/export: every chat session with its messages as CSV (or
//! JSON, Excel), admins only. This file only declares the route's policy; the
//! pipeline in `common::http` does the rest.

use chrono::{DateTime, Utc};
use common::{
    AppContext,
    auth::Caller,
    error::Error,
    http::{self, ErrorStyle, ExportRoute, Policy, RawRequest},
    params::sessions::SessionsParams,
    spec::ExportSpec,
};
use lambda_http::{Body, Request, Response};

pub const PATH: &str = "/api/admin/sessions/export";

pub struct SessionsExport;

impl ExportRoute for SessionsExport {
    type Params = SessionsParams;

    fn policy(&self) -> Policy {
        Policy::query("GET /api/admin/sessions/export", "sessions").admin_only()
    }

    fn error_style(&self, _req: &RawRequest) -> ErrorStyle {
        ErrorStyle::Code {
            failure: "Failed to export chat sessions",
            invalid: None,
        }
    }

    fn spec(
        &self,
        _ctx: &AppContext,
        _caller: &Caller,
        params: SessionsParams,
        now: DateTime<Utc>,
    ) -> Result<ExportSpec, Error> {
        params.into_spec(now)
    }
}

pub async fn handle(ctx: &AppContext, req: Request) -> Response<Body> {
    if req.method() != lambda_http::http::Method::GET {
        return http::pipeline::refuse_method(req, &SessionsExport, "GET");
    }
    http::handle(ctx, req, &SessionsExport).await
}
