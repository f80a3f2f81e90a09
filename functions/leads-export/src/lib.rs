//! GET /api/hybrid-leads/export: leads as CSV, Excel or JSON, with filters and
//! custom columns. Non-admin callers only ever export their own company (decided in
//! `common::params::leads`). This file only declares the route's policy.

use chrono::{DateTime, Utc};
use common::{
    AppContext,
    auth::Caller,
    error::Error,
    http::{self, ErrorStyle, ExportRoute, Policy, RawRequest},
    params::{
        TextEnum,
        leads::{LeadsParams, display_name},
    },
    spec::{ExportSpec, TableFormat},
};
use lambda_http::{Body, Request, Response};

pub const PATH: &str = "/api/hybrid-leads/export";

pub struct LeadsExport;

impl ExportRoute for LeadsExport {
    type Params = LeadsParams;

    fn policy(&self) -> Policy {
        Policy::query("GET /api/hybrid-leads/export", "leads")
    }

    /// The seed's error shape names the format asked for ("Failed to export leads
    /// Excel"); an unreadable format counts as the default, CSV.
    fn error_style(&self, req: &RawRequest) -> ErrorStyle {
        let format = req
            .peek_query("format")
            .and_then(|f| TableFormat::parse_ignore_case(&f))
            .unwrap_or(TableFormat::Csv);
        ErrorStyle::SuccessFlag {
            message: format!("Failed to export leads {}", display_name(format)),
        }
    }

    fn spec(
        &self,
        _ctx: &AppContext,
        caller: &Caller,
        params: LeadsParams,
        now: DateTime<Utc>,
    ) -> Result<ExportSpec, Error> {
        params.into_spec(caller, now)
    }
}

pub async fn handle(ctx: &AppContext, req: Request) -> Response<Body> {
    if req.method() != lambda_http::http::Method::GET {
        return http::pipeline::refuse_method(req, &LeadsExport, "GET");
    }
    http::handle(ctx, req, &LeadsExport).await
}
