//! Parameters of `POST /client/export/chats` (JSON body) and
//! `GET /client/export/chats/download` (query string), and their scoping: a user
//! only ever gets the client in its token.

use serde::{Deserialize, Serialize};

use super::{Choice, DateParam, Flag, Id};
use crate::{
    auth::Caller,
    chats::{ChatFilter, ChatFormat, ChatOptions, ChatSpec},
    error::Error,
    leads::DateRange,
};

/// Messages exported when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 10_000;

#[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChatsParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Choice<ChatFormat>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_from: Option<DateParam>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_to: Option<DateParam>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_geo: Option<Flag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_meta: Option<Flag>,
}

impl ChatsParams {
    /// The export this caller may run. `max_records` bounds `limit`.
    pub fn into_spec(self, caller: &Caller, max_records: u32) -> Result<ChatSpec, Error> {
        let range = DateRange {
            from: self.date_from.map(DateParam::start),
            to: self.date_to.map(DateParam::end),
        };
        if let (Some(f), Some(t)) = (range.from, range.to)
            && f > t
        {
            return Err(Error::bad_request("date_from must not be after date_to"));
        }
        let limit = match self.limit {
            None => DEFAULT_LIMIT.min(max_records),
            Some(n) if n >= 1 && n <= i64::from(max_records) => n as u32,
            Some(_) => {
                return Err(Error::bad_request(format!("limit must be between 1 and {max_records}")));
            }
        };
        let requested = self.client_id.map(Id::into_string);
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
        Ok(ChatSpec {
            format: self.format.map_or(ChatFormat::Json, |f| f.0),
            filter: ChatFilter {
                client_id,
                conversation_id: self.conversation_id.map(Id::into_string),
                range,
                limit,
            },
            options: ChatOptions {
                include_geo: self.include_geo.is_some_and(|f| f.0),
                include_meta: self.include_meta.is_some_and(|f| f.0),
                anonymize_ips: !caller.is_admin(),
            },
        })
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
        }
    }

    fn from_body(json: &str) -> Result<ChatsParams, Error> {
        body::decode(json.as_bytes())
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
            p("{}").into_spec(&user, 100).unwrap().filter.client_id.as_deref(),
            Some("c1")
        );
        assert!(p(r#"{"client_id":"c1"}"#).into_spec(&user, 100).is_ok());
        assert!(matches!(
            p(r#"{"client_id":"c2"}"#).into_spec(&user, 100),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            p("{}").into_spec(&caller(Role::User, None), 100),
            Err(Error::Forbidden(_))
        ));
        let admin = caller(Role::Admin, None);
        assert_eq!(p("{}").into_spec(&admin, 100).unwrap().filter.client_id, None);
        assert_eq!(p("{}").into_spec(&admin, 100).unwrap().filter.limit, 100);
        assert_eq!(
            p("{}").into_spec(&admin, 1_000_000).unwrap().filter.limit,
            DEFAULT_LIMIT
        );
        for bad in [r#"{"limit":0}"#, r#"{"limit":-1}"#, r#"{"limit":101}"#] {
            assert!(
                matches!(p(bad).into_spec(&admin, 100), Err(Error::BadRequest(_))),
                "{bad}"
            );
        }
        let spec = p(r#"{"date_from":"2024-01-01","date_to":"2024-01-31"}"#)
            .into_spec(&admin, 100)
            .unwrap();
        assert_eq!(
            timefmt::format(&spec.filter.range.to.unwrap()),
            "2024-01-31T23:59:59.999Z"
        );
        assert!(matches!(
            p(r#"{"date_from":"2024-02-01","date_to":"2024-01-01"}"#).into_spec(&admin, 100),
            Err(Error::BadRequest(_))
        ));
        for bad in [
            r#"{"date_from":"01/02/2024"}"#,
            r#"{"format":"pdf"}"#,
            r#"{"conversation_id":"a b"}"#,
        ] {
            assert!(matches!(from_body(bad), Err(Error::BadRequest(_))), "{bad}");
        }
        assert!(p("{}").into_spec(&user, 100).unwrap().options.anonymize_ips);
        assert!(!p("{}").into_spec(&admin, 100).unwrap().options.anonymize_ips);
    }
}
