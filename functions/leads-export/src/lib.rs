//! GET /api/hybrid-leads/export: leads as CSV, Excel or JSON, with filters and
//! custom columns. Non-admin callers only ever export their own company.

use common::{
    AppContext,
    api::{self, ErrorStyle, Query, parse_id, sanitize},
    auth::Caller,
    error::Error,
    export::{EncodeOptions, ExportJob, Format},
    leads::{self, COLUMNS, DateRange, LANGUAGES, LeadFilter},
    model::{Confidence, LeadCategory, LeadStatus},
    timefmt::{self, Bound},
};
use lambda_http::{Body, Request, Response};

pub const PATH: &str = "/api/hybrid-leads/export";

pub const PARAMS: &[&str] = &[
    "companyId",
    "chatbotId",
    "confidence",
    "category",
    "language",
    "startDate",
    "endDate",
    "status",
    "search",
    "format",
    "columns",
    "spreadsheet_safe",
];

const KIND: &str = "leads";
/// Longest accepted `search` term.
const MAX_SEARCH_CHARS: usize = 200;

/// The seed's error message names the format asked for.
fn error_style(query: &Query) -> ErrorStyle {
    let name = match query.get("format").map(str::to_ascii_lowercase).as_deref() {
        Some("xlsx") => "Excel",
        Some("json") => "JSON",
        _ => "CSV",
    };
    ErrorStyle::SuccessFlag {
        message: format!("Failed to export leads {name}"),
    }
}

pub async fn handle(ctx: &AppContext, req: Request) -> Response<Body> {
    api::handle_export(ctx, req, KIND, error_style, |ctx, caller, query| {
        let spec = parse(caller, query)?;
        Ok(ExportJob {
            kind: KIND,
            file_stem: "leads-export",
            sheet: "Leads",
            format: spec.format,
            columns: spec.columns.iter().map(|&i| COLUMNS[i]).collect(),
            options: spec.options,
            rows: leads::rows(
                ctx.aws.dynamodb.clone(),
                ctx.config.tables.leads.clone(),
                spec.filter,
                spec.columns,
            ),
            encoder: None,
        })
    })
    .await
}

/// A leads request, parsed and scoped.
#[derive(Debug)]
pub struct LeadsSpec {
    pub filter: LeadFilter,
    pub format: Format,
    /// Indexes into [`COLUMNS`], in output order.
    pub columns: Vec<usize>,
    pub options: EncodeOptions,
}

fn parse_enum<T>(query: &Query, name: &str, parse: fn(&str) -> Option<T>, choices: &str) -> Result<Option<T>, Error> {
    query
        .get(name)
        .map(|v| {
            parse(v)
                .ok_or_else(|| Error::bad_request(format!("{name} must be one of: {choices}; got '{}'", sanitize(v))))
        })
        .transpose()
}

fn parse_date(query: &Query, name: &str, bound: Bound) -> Result<Option<chrono::DateTime<chrono::Utc>>, Error> {
    query
        .get(name)
        .map(|v| {
            timefmt::parse_bound(v, bound).ok_or_else(|| {
                Error::bad_request(format!(
                    "{name} must be an ISO 8601 date (2024-01-31) or date-time (2024-01-31T23:59:59Z); got '{}'",
                    sanitize(v)
                ))
            })
        })
        .transpose()
}

/// `columns=Lead ID,Email,...`: header names (any case) or snake_case keys.
fn parse_columns(value: Option<&str>) -> Result<Vec<usize>, Error> {
    let Some(value) = value else {
        return Ok((0..COLUMNS.len()).collect());
    };
    let mut out = Vec::new();
    for name in value.split(',').map(str::trim) {
        let index = COLUMNS
            .iter()
            .position(|c| c.header.eq_ignore_ascii_case(name) || c.key == name)
            .ok_or_else(|| {
                Error::bad_request(format!(
                    "unknown column '{}'; columns are: {}",
                    sanitize(name),
                    COLUMNS.iter().map(|c| c.header).collect::<Vec<_>>().join(", ")
                ))
            })?;
        if out.contains(&index) {
            return Err(Error::bad_request(format!(
                "column '{}' is listed twice",
                COLUMNS[index].header
            )));
        }
        out.push(index);
    }
    Ok(out)
}

/// The company scope: admins choose (one, several, or all); everyone else gets
/// exactly the company in their token.
fn company_scope(caller: &Caller, requested: Option<&str>) -> Result<Option<Vec<String>>, Error> {
    let requested = requested
        .map(|v| {
            let mut ids = Vec::new();
            for id in v.split(',').map(str::trim) {
                let id = parse_id("companyId", id)?;
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            Ok::<_, Error>(ids)
        })
        .transpose()?;
    if caller.is_admin() {
        return Ok(requested);
    }
    let own = caller
        .company_id
        .as_ref()
        .ok_or_else(|| Error::Forbidden("Your token has no company, so it cannot export leads".into()))?;
    match requested {
        Some(ids) if ids.iter().any(|id| id != own) => {
            Err(Error::Forbidden("You can only export your own company's leads".into()))
        }
        _ => Ok(Some(vec![own.clone()])),
    }
}

pub fn parse(caller: &Caller, query: &Query) -> Result<LeadsSpec, Error> {
    query.expect_only(PARAMS)?;
    let format = match query.get("format").map(str::to_ascii_lowercase).as_deref() {
        None | Some("csv") => Format::Csv,
        Some("xlsx") => Format::Xlsx,
        Some("json") => Format::Json,
        Some(other) => {
            return Err(Error::bad_request(format!(
                "format must be one of: csv, xlsx, json; got '{}'",
                sanitize(other)
            )));
        }
    };
    let companies = company_scope(caller, query.get("companyId"))?;
    let language = query
        .get("language")
        .map(|l| {
            LANGUAGES
                .iter()
                .find(|x| **x == l)
                .map(|x| x.to_string())
                .ok_or_else(|| {
                    Error::bad_request(format!(
                        "language must be one of: {}; got '{}'",
                        LANGUAGES.join(", "),
                        sanitize(l)
                    ))
                })
        })
        .transpose()?;
    let created = DateRange {
        from: parse_date(query, "startDate", Bound::Start)?,
        to: parse_date(query, "endDate", Bound::End)?,
    };
    if let (Some(f), Some(t)) = (created.from, created.to)
        && f > t
    {
        return Err(Error::bad_request("startDate must not be after endDate"));
    }
    let search = query
        .get("search")
        .map(|s| {
            if s.chars().count() > MAX_SEARCH_CHARS {
                Err(Error::bad_request(format!(
                    "search must be at most {MAX_SEARCH_CHARS} characters"
                )))
            } else {
                Ok(s.to_lowercase())
            }
        })
        .transpose()?;
    let filter = LeadFilter {
        companies,
        chatbot_id: query.get("chatbotId").map(|v| parse_id("chatbotId", v)).transpose()?,
        confidence: parse_enum(query, "confidence", Confidence::parse, &Confidence::choices())?,
        category: parse_enum(query, "category", LeadCategory::parse, &LeadCategory::choices())?,
        language,
        status: parse_enum(query, "status", LeadStatus::parse, &LeadStatus::choices())?,
        created,
        search,
    };
    Ok(LeadsSpec {
        filter,
        format,
        columns: parse_columns(query.get("columns"))?,
        options: EncodeOptions {
            spreadsheet_safe: query.bool("spreadsheet_safe", true)?,
            ..EncodeOptions::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::auth::Role;

    fn caller(role: Role, company: Option<&str>) -> Caller {
        Caller {
            sub: "s".into(),
            role,
            client_id: None,
            company_id: company.map(Into::into),
        }
    }

    fn q(pairs: &[(&str, &str)]) -> Query {
        Query::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn users_are_pinned_to_their_company() {
        let user = caller(Role::User, Some("c1"));
        assert_eq!(
            parse(&user, &q(&[])).unwrap().filter.companies,
            Some(vec!["c1".to_string()])
        );
        assert_eq!(
            parse(&user, &q(&[("companyId", "c1")])).unwrap().filter.companies,
            Some(vec!["c1".to_string()])
        );
        for other in ["c2", "c1,c2", "c2,c1"] {
            assert!(
                matches!(parse(&user, &q(&[("companyId", other)])), Err(Error::Forbidden(_))),
                "{other}"
            );
        }
        assert!(matches!(
            parse(&caller(Role::User, None), &q(&[])),
            Err(Error::Forbidden(_))
        ));
    }

    #[test]
    fn admins_choose_one_many_or_all() {
        let admin = caller(Role::Admin, None);
        assert_eq!(parse(&admin, &q(&[])).unwrap().filter.companies, None);
        assert_eq!(
            parse(&admin, &q(&[("companyId", "a, b,a")])).unwrap().filter.companies,
            Some(vec!["a".to_string(), "b".to_string()])
        );
    }

    #[test]
    fn rejects_bad_values() {
        let admin = caller(Role::Admin, None);
        for pairs in [
            vec![("confidence", "extreme")],
            vec![("category", "spam")],
            vec![("language", "de")],
            vec![("status", "won")],
            vec![("startDate", "2024-13-01")],
            vec![("endDate", "yesterday")],
            vec![("startDate", "2024-02-01"), ("endDate", "2024-01-01")],
            vec![("format", "pdf")],
            vec![("columns", "Lead ID,Nope")],
            vec![("columns", "Email,email")],
            vec![("companyId", "a,,b")],
            vec![("companyId", "bad id")],
            vec![("unknown", "1")],
        ] {
            assert!(
                matches!(parse(&admin, &q(&pairs)), Err(Error::BadRequest(_))),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn a_date_only_end_includes_the_whole_day_and_columns_keep_their_order() {
        let spec = parse(
            &caller(Role::Admin, None),
            &q(&[("endDate", "2024-01-31"), ("columns", "Email,lead_id,TAGS")]),
        )
        .unwrap();
        assert_eq!(
            timefmt::format(&spec.filter.created.to.unwrap()),
            "2024-01-31T23:59:59.999Z"
        );
        assert_eq!(spec.columns, vec![4, 0, 27]);
    }
}
