//! GET /api/hybrid-leads/export: leads as CSV, Excel or JSON, with filters and
//! custom columns. Non-admin callers only ever export their own company (decided in
//! `common::params::leads`). This file only declares the route's policy.

use chrono::{DateTime, Utc};
use common::{
    AppContext,
    auth::Caller,
    error::Error,
    http::{
        self, ErrorStyle, ExportRoute, Planned, Policy, RawRequest,
        pipeline::{Answer, Input},
    },
    leads,
    params::{
        TextEnum,
        leads::{LeadsFormat, LeadsParams},
    },
};
use lambda_http::{Body, Request, Response};

pub const PATH: &str = "/api/hybrid-leads/export";

pub struct LeadsExport;

impl ExportRoute for LeadsExport {
    type Params = LeadsParams;

    fn policy(&self) -> Policy {
        Policy {
            route: "GET /api/hybrid-leads/export",
            kind: "leads",
            input: Input::Query,
            answer: Answer::File,
            admin_only: false,
            rate_limited: false,
            audited: false,
        }
    }

    /// The seed's error shape names the format asked for ("Failed to export leads
    /// Excel"); an unreadable format counts as the default, CSV.
    fn error_style(&self, req: &RawRequest) -> ErrorStyle {
        let format = req
            .peek_query("format")
            .and_then(|f| LeadsFormat::parse_ignore_case(&f))
            .unwrap_or(LeadsFormat::Csv);
        ErrorStyle::SuccessFlag {
            message: format!("Failed to export leads {}", format.display_name()),
        }
    }

    fn plan(
        &self,
        ctx: &AppContext,
        caller: &Caller,
        params: LeadsParams,
        _now: DateTime<Utc>,
    ) -> Result<Planned, Error> {
        let label = params.format().as_str();
        let spec = params.into_spec(caller)?;
        let scope = match spec.filter.companies.as_deref() {
            Some([one]) => format!("company#{one}"),
            Some(_) => "companies".into(),
            None => "all".into(),
        };
        Ok(Planned {
            job: leads::job(ctx, spec),
            tenant: scope.clone(),
            scope,
            label,
        })
    }
}

pub async fn handle(ctx: &AppContext, req: Request) -> Response<Body> {
    http::handle(ctx, req, &LeadsExport).await
}
