//! Parameters of `GET /api/hybrid-leads/export`, and their scoping: a non-admin
//! caller only ever gets the company in its token.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use chrono::{DateTime, Utc};

use super::{Choice, DateParam, Flag, Id, IdList, SearchText, TextVisitor, date_range, file_options};
use crate::{
    auth::Caller,
    error::Error,
    kinds::leads::{COLUMNS, LeadColumn, LeadFilter},
    model::{Confidence, LeadCategory, LeadStatus, string_enum},
    spec::{Compression, ExportSpec, LeadsSpec, TableFormat, TimeZone},
    values::text::sanitize,
};

string_enum!(
    /// Languages the `language` filter accepts.
    Language { En => "en", Es => "es", Fr => "fr", HiTransliterated => "hi_transliterated" }
);

/// How the seed's error message names a format: "Failed to export leads Excel".
pub fn display_name(format: TableFormat) -> &'static str {
    match format {
        TableFormat::Csv => "CSV",
        TableFormat::Xlsx => "Excel",
        TableFormat::Json => "JSON",
        TableFormat::Jsonl => "JSON Lines",
        TableFormat::Parquet => "Parquet",
    }
}

/// `columns=Lead ID,Email,...`: header names (any case) or JSON keys, each once, in
/// output order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnList(pub Vec<LeadColumn>);

impl ColumnList {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for name in s.split(',').map(str::trim) {
            let column = LeadColumn::named(name).ok_or_else(|| {
                format!(
                    "must name known columns; '{}' is not one of: {}",
                    sanitize(name),
                    COLUMNS.iter().map(|c| c.header).collect::<Vec<_>>().join(", ")
                )
            })?;
            if out.contains(&column) {
                return Err(format!(
                    "must name each column once; '{}' is listed twice",
                    column.header()
                ));
            }
            out.push(column);
        }
        Ok(Self(out))
    }
}

impl<'de> Deserialize<'de> for ColumnList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor(ColumnList::parse, "a comma-separated list of columns"))
    }
}

impl Serialize for ColumnList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let keys: Vec<&str> = self.0.iter().map(|c| c.key()).collect();
        s.serialize_str(&keys.join(","))
    }
}

/// Every parameter of the leads export; all optional, combined with AND.
#[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LeadsParams {
    #[serde(rename = "companyId", default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<IdList>,
    #[serde(rename = "chatbotId", default, skip_serializing_if = "Option::is_none")]
    pub chatbot_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Choice<Confidence>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Choice<LeadCategory>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Choice<Language>>,
    #[serde(rename = "startDate", default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<DateParam>,
    #[serde(rename = "endDate", default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<DateParam>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Choice<LeadStatus>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Choice<TableFormat>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<ColumnList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Choice<Compression>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bom: Option<Flag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<TimeZone>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spreadsheet_safe: Option<Flag>,
}

/// The company scope: admins choose (one, several, or all); everyone else gets
/// exactly the company in their token.
fn company_scope(caller: &Caller, requested: Option<&IdList>) -> Result<Option<Vec<String>>, Error> {
    let requested: Option<Vec<String>> = requested.map(|l| l.ids().iter().map(|id| id.as_str().to_string()).collect());
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

impl LeadsParams {
    pub fn format(&self) -> TableFormat {
        self.format.map_or(TableFormat::Csv, |f| f.0)
    }

    /// The export this caller may run: the scope is decided here, once.
    pub fn into_spec(self, caller: &Caller, as_of: DateTime<Utc>) -> Result<ExportSpec, Error> {
        let companies = company_scope(caller, self.company_id.as_ref())?;
        let format = self.format();
        let options = file_options(
            self.compression,
            self.bom,
            self.time_zone,
            self.spreadsheet_safe,
            format.family(),
        )?;
        let created = date_range(
            self.start_date,
            self.end_date,
            options.time_zone,
            ("startDate", "endDate"),
        )?;
        let columns = self.columns.map_or_else(|| LeadColumn::all().collect(), |c| c.0);
        Ok(ExportSpec::Leads(LeadsSpec {
            as_of,
            format,
            options,
            filter: LeadFilter {
                companies,
                chatbot_id: self.chatbot_id.map(Id::into_string),
                confidence: self.confidence.map(|c| c.0),
                category: self.category.map(|c| c.0),
                language: self.language.map(|l| l.0.as_str().to_string()),
                status: self.status.map(|s| s.0),
                created,
                search: self.search.map(|s| s.as_str().to_lowercase()),
            },
            columns,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{auth::Role, http::query, timefmt};

    fn caller(role: Role, company: Option<&str>) -> Caller {
        Caller {
            sub: "s".into(),
            role,
            client_id: None,
            company_id: company.map(Into::into),
            email: None,
        }
    }

    fn spec(caller: &Caller, q: &str) -> Result<LeadsSpec, Error> {
        match query::decode::<LeadsParams>(q)?.into_spec(caller, chrono::Utc::now())? {
            ExportSpec::Leads(s) => Ok(s),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn users_are_pinned_to_their_company() {
        let user = caller(Role::User, Some("c1"));
        assert_eq!(spec(&user, "").unwrap().filter.companies, Some(vec!["c1".to_string()]));
        assert_eq!(
            spec(&user, "companyId=c1").unwrap().filter.companies,
            Some(vec!["c1".to_string()])
        );
        for other in ["c2", "c1,c2", "c2,c1"] {
            assert!(
                matches!(spec(&user, &format!("companyId={other}")), Err(Error::Forbidden(_))),
                "{other}"
            );
        }
        assert!(matches!(spec(&caller(Role::User, None), ""), Err(Error::Forbidden(_))));
    }

    #[test]
    fn admins_choose_one_many_or_all() {
        let admin = caller(Role::Admin, None);
        assert_eq!(spec(&admin, "").unwrap().filter.companies, None);
        assert_eq!(
            spec(&admin, "companyId=a,%20b,a").unwrap().filter.companies,
            Some(vec!["a".to_string(), "b".to_string()])
        );
    }

    #[test]
    fn rejects_bad_values() {
        let admin = caller(Role::Admin, None);
        for q in [
            "confidence=extreme",
            "category=spam",
            "language=de",
            "status=won",
            "startDate=2024-13-01",
            "endDate=yesterday",
            "startDate=2024-02-01&endDate=2024-01-01",
            "format=pdf",
            "columns=Lead%20ID,Nope",
            "columns=Email,email",
            "companyId=a,,b",
            "companyId=bad%20id",
            "unknown=1",
            "spreadsheet_safe=true&spreadsheet_safe=true",
            "format=xlsx&bom=true",
            "time_zone=Mars/Olympus",
            "compression=rar",
        ] {
            assert!(matches!(spec(&admin, q), Err(Error::BadRequest(_))), "{q}");
        }
        let long = format!("search={}", "s".repeat(201));
        assert!(matches!(spec(&admin, &long), Err(Error::BadRequest(_))));
    }

    #[test]
    fn a_date_only_end_includes_the_whole_day_and_columns_keep_their_order() {
        let s = spec(
            &caller(Role::Admin, None),
            "endDate=2024-01-31&columns=Email,lead_id,TAGS&confidence=HIGH",
        )
        .unwrap();
        assert_eq!(
            timefmt::format(&s.filter.created.to.unwrap()),
            "2024-01-31T23:59:59.999Z"
        );
        assert_eq!(
            s.columns.iter().map(|c| c.key()).collect::<Vec<_>>(),
            ["email", "lead_id", "tags"]
        );
        assert_eq!(s.filter.confidence, Some(Confidence::High), "names match in any case");
    }
}
