//! Parameters of `POST /client/export/chats` (JSON body),
//! `GET /client/export/chats/download` and `GET /client/export/conversations` (query
//! strings), and their scoping: a user only ever gets the client in its token.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Choice, DateParam, Flag, Id, TextEnum, TextVisitor, date_range, file_options};
use crate::{
    auth::Caller,
    error::Error,
    kinds::chats::{ChatFilter, ChatFormat, ChatOptions},
    spec::{ChatsSpec, Compression, ExportSpec, FileFamily, FileOptions, TimeZone},
    values::text::sanitize,
};

/// The chat export's format: `json`, `excel` (or `xlsx`), `both`, `csv`, `jsonl` or `parquet`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChatFormatParam(pub ChatFormat);

impl ChatFormatParam {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("xlsx") {
            return Ok(Self(ChatFormat::Excel));
        }
        ChatFormat::parse_ignore_case(s).map(Self).ok_or_else(|| {
            format!(
                "must be one of: json, excel (or xlsx), both, csv, jsonl, parquet; got '{}'",
                sanitize(s)
            )
        })
    }
}

impl<'de> Deserialize<'de> for ChatFormatParam {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor(ChatFormatParam::parse, "a format"))
    }
}

impl Serialize for ChatFormatParam {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

/// A format parameter, for the checks of the file options.
pub trait FormatParam {
    fn family(&self) -> FileFamily;
}

impl FormatParam for ChatFormatParam {
    fn family(&self) -> FileFamily {
        self.0.family()
    }
}

impl FormatParam for Choice<crate::spec::TableFormat> {
    fn family(&self) -> FileFamily {
        self.0.family()
    }
}

/// Messages exported when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 10_000;

/// The parameters of the chat-data routes; `F` is the route's format.
#[derive(Debug, Deserialize, Serialize, PartialEq)]
#[serde(
    deny_unknown_fields,
    bound(deserialize = "F: Deserialize<'de>", serialize = "F: Serialize")
)]
pub struct ChatDataParams<F> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<F>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_from: Option<DateParam>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_to: Option<DateParam>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<super::Int>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_geo: Option<Flag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_meta: Option<Flag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Choice<Compression>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bom: Option<Flag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<TimeZone>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spreadsheet_safe: Option<Flag>,
}

impl<F> Default for ChatDataParams<F> {
    fn default() -> Self {
        Self {
            format: None,
            date_from: None,
            date_to: None,
            client_id: None,
            conversation_id: None,
            limit: None,
            include_geo: None,
            include_meta: None,
            compression: None,
            bom: None,
            time_zone: None,
            spreadsheet_safe: None,
        }
    }
}

/// `POST /client/export/chats` and `GET /client/export/chats/download`.
pub type ChatsParams = ChatDataParams<ChatFormatParam>;

impl<F: FormatParam> ChatDataParams<F> {
    /// The file options, checked against the format (`default` when the request
    /// names none: the family of the route's default format).
    pub fn file_options(&self, default: FileFamily) -> Result<FileOptions, Error> {
        let family = self.format.as_ref().map_or(default, FormatParam::family);
        file_options(
            self.compression,
            self.bom,
            self.time_zone,
            self.spreadsheet_safe,
            family,
        )
    }

    /// The messages this caller may export, and whether it sees IP addresses
    /// anonymised. `max_records` bounds `limit`.
    pub fn scope(&self, caller: &Caller, max_records: u32, zone: TimeZone) -> Result<(ChatFilter, bool), Error> {
        let range = date_range(self.date_from, self.date_to, zone, ("date_from", "date_to"))?;
        let limit = match self.limit.map(|n| n.0) {
            None => DEFAULT_LIMIT.min(max_records),
            Some(n) if n >= 1 && n <= i64::from(max_records) => n as u32,
            Some(_) => {
                return Err(Error::bad_request(format!("limit must be between 1 and {max_records}")));
            }
        };
        let requested = self.client_id.clone().map(Id::into_string);
        let client_id = if caller.is_admin() {
            requested
        } else {
            let own = caller
                .client_id
                .clone()
                .ok_or_else(|| Error::Forbidden("Your token has no client, so it cannot export chats".into()))?;
            if requested.as_ref().is_some_and(|r| *r != own) {
                return Err(Error::Forbidden("You can only export your own client's chats".into()));
            }
            Some(own)
        };
        let filter = ChatFilter {
            client_id,
            conversation_id: self.conversation_id.clone().map(Id::into_string),
            range,
            limit,
        };
        Ok((filter, !caller.is_admin()))
    }
}

impl ChatsParams {
    /// The export this caller may run. `max_records` bounds `limit`.
    pub fn into_spec(self, caller: &Caller, max_records: u32, as_of: DateTime<Utc>) -> Result<ExportSpec, Error> {
        let options = self.file_options(FileFamily::Other)?;
        let (filter, anonymize_ips) = self.scope(caller, max_records, options.time_zone)?;
        Ok(ExportSpec::Chats(ChatsSpec {
            as_of,
            format: self.format.map_or(ChatFormat::Json, |f| f.0),
            options,
            filter,
            chat: ChatOptions {
                include_geo: self.include_geo.is_some_and(|f| f.0),
                include_meta: self.include_meta.is_some_and(|f| f.0),
                anonymize_ips,
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        auth::Role,
        http::{body, query},
        timefmt,
    };

    fn caller(role: Role, client: Option<&str>) -> Caller {
        Caller {
            sub: "s".into(),
            role,
            client_id: client.map(Into::into),
            company_id: None,
            email: None,
        }
    }

    fn from_body(json: &str) -> Result<ChatsParams, Error> {
        body::decode(json.as_bytes())
    }

    fn chats(p: ChatsParams, caller: &Caller, max: u32) -> Result<ChatsSpec, Error> {
        match p.into_spec(caller, max, chrono::Utc::now())? {
            ExportSpec::Chats(s) => Ok(s),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bodies_are_strict() {
        assert!(from_body("").is_ok());
        assert!(from_body(r#"{"format":"excel","limit":5,"include_geo":true}"#).is_ok());
        for bad in [
            r#"{"formt":"json"}"#,
            r#"{"limit":"ten"}"#,
            r#"{"include_geo":"yes"}"#,
            r#"{"limit":1.5}"#,
            r#"{"limit":"5"}"#,
            r#"{"limit":1e30}"#,
            r#"[1]"#,
            r#"["json",null,null,null,null,5,true,true]"#,
            r#"{"#,
            r#"{"format":"json","format":"excel"}"#,
            r#"{"client_id":42}"#,
        ] {
            assert!(matches!(from_body(bad), Err(Error::BadRequest(_))), "{bad}");
        }
        let msg = from_body(r#"{"limit":"<script>"}"#).unwrap_err().to_string();
        assert!(!msg.contains("script"), "{msg}");
    }

    #[test]
    fn an_integer_may_be_written_as_a_number_without_fraction() {
        // JSON Schema's integer: 365.0 is the integer 365.
        for body in [r#"{"limit":5}"#, r#"{"limit":5.0}"#, r#"{"limit":0.5e1}"#] {
            assert_eq!(from_body(body).unwrap().limit, Some(crate::params::Int(5)), "{body}");
        }
        assert!(
            query::decode::<ChatsParams>("limit=5.0").is_err(),
            "a query string's integer is its digits"
        );
    }

    #[test]
    fn a_query_decodes_into_the_same_type() {
        let q = query::decode::<ChatsParams>("format=Excel&limit=5&include_geo=1&date_from=2024-01-01").unwrap();
        let b = from_body(r#"{"format":"excel","limit":5,"include_geo":true,"date_from":"2024-01-01"}"#).unwrap();
        assert_eq!(q, b);
    }

    #[test]
    fn scope_and_limits() {
        let user = caller(Role::User, Some("c1"));
        let p = |json: &str| from_body(json).unwrap();
        assert_eq!(
            chats(p("{}"), &user, 100).unwrap().filter.client_id.as_deref(),
            Some("c1")
        );
        assert!(chats(p(r#"{"client_id":"c1"}"#), &user, 100).is_ok());
        assert!(matches!(
            chats(p(r#"{"client_id":"c2"}"#), &user, 100),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            chats(p("{}"), &caller(Role::User, None), 100),
            Err(Error::Forbidden(_))
        ));
        let admin = caller(Role::Admin, None);
        assert_eq!(chats(p("{}"), &admin, 100).unwrap().filter.client_id, None);
        assert_eq!(chats(p("{}"), &admin, 100).unwrap().filter.limit, 100);
        assert_eq!(chats(p("{}"), &admin, 1_000_000).unwrap().filter.limit, DEFAULT_LIMIT);
        for bad in [r#"{"limit":0}"#, r#"{"limit":-1}"#, r#"{"limit":101}"#] {
            assert!(matches!(chats(p(bad), &admin, 100), Err(Error::BadRequest(_))), "{bad}");
        }
        let spec = chats(p(r#"{"date_from":"2024-01-01","date_to":"2024-01-31"}"#), &admin, 100).unwrap();
        assert_eq!(
            timefmt::format(&spec.filter.range.to.unwrap()),
            "2024-01-31T23:59:59.999Z"
        );
        assert!(matches!(
            chats(p(r#"{"date_from":"2024-02-01","date_to":"2024-01-01"}"#), &admin, 100),
            Err(Error::BadRequest(_))
        ));
        for bad in [
            r#"{"date_from":"01/02/2024"}"#,
            r#"{"format":"pdf"}"#,
            r#"{"conversation_id":"a b"}"#,
        ] {
            assert!(matches!(from_body(bad), Err(Error::BadRequest(_))), "{bad}");
        }
        assert!(chats(p("{}"), &user, 100).unwrap().chat.anonymize_ips);
        assert!(!chats(p("{}"), &admin, 100).unwrap().chat.anonymize_ips);
        assert_eq!(
            chats(p(r#"{"format":"xlsx"}"#), &admin, 100).unwrap().format,
            ChatFormat::Excel
        );
        for bad in [
            r#"{"bom":true}"#,
            r#"{"format":"excel","bom":true}"#,
            r#"{"time_zone":"Nowhere"}"#,
        ] {
            assert!(from_body(bad).and_then(|p| chats(p, &admin, 100)).is_err(), "{bad}");
        }
        assert!(chats(p(r#"{"format":"csv","bom":true}"#), &admin, 100).is_ok());
    }
}
