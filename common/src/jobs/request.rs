//! What a job is asked for: `{"kind", "format", "params", "notify"}`, the body of
//! `POST /api/exports`, of a schedule's `export` and of an operator's or a scale
//! export's event. It becomes an [`ExportSpec`] scoped to the caller exactly as the
//! kind's synchronous route scopes it, through the same parameter types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    AppContext,
    auth::Caller,
    error::Error,
    http::{body, query},
    params::{chats::ChatsParams, conversations::ConversationsParams, leads::LeadsParams, sessions::SessionsParams},
    spec::ExportSpec,
    values::text::sanitize,
};

crate::model::string_enum!(
    /// The kinds of export a job can run.
    JobKind { Sessions => "sessions", Leads => "leads", Chats => "chats", Conversations => "conversations" }
);

/// `POST /api/exports`: `{"kind", "format", "params"}`; `params` are the kind's
/// synchronous route's parameters, decoded by the same types.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<crate::params::Choice<JobKind>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Map<String, Value>>,
    /// Who is emailed a download link when the job finishes (docs/schedules.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<crate::notify::NotifyRequest>,
}

impl JobRequest {
    /// The spec this request asks for, scoped to the caller exactly as the kind's
    /// synchronous route scopes it.
    pub fn into_spec(self, ctx: &AppContext, caller: &Caller, now: DateTime<Utc>) -> Result<ExportSpec, Error> {
        let kind = self
            .kind
            .ok_or_else(|| Error::bad_request(format!("kind is required: one of {}", JobKind::choices())))?
            .0;
        let mut params = self.params.unwrap_or_default();
        if let Some(format) = self.format {
            // JSON says "absent" with null, never with "" (only a query string's empty
            // value is absent).
            if format.trim().is_empty() {
                return Err(Error::bad_request("format must name a format, such as csv"));
            }
            if params.get("format").is_some_and(|f| !f.is_null()) {
                return Err(Error::bad_request(
                    "format is given twice (format and params.format); give one of them",
                ));
            }
            params.insert("format".into(), Value::String(format));
        }
        let max = ctx.config.chat.max_records;
        match kind {
            JobKind::Sessions => {
                caller.require_admin()?;
                as_query::<SessionsParams>(&params)?.into_spec(now)
            }
            JobKind::Leads => as_query::<LeadsParams>(&params)?.into_spec(caller, now),
            JobKind::Conversations => as_query::<ConversationsParams>(&params)?.into_spec(caller, max, now),
            JobKind::Chats => {
                let json = serde_json::to_vec(&params).map_err(|e| Error::internal("request error", e))?;
                body::decode::<ChatsParams>(&json)
                    .map_err(prefix_params)?
                    .into_spec(caller, max, now)
            }
        }
    }
}

fn prefix_params(e: Error) -> Error {
    match e {
        Error::BadRequest(m) => Error::BadRequest(format!("params: {m}")),
        other => other,
    }
}

/// The parameters of a query-string route, given as a JSON object: each value is
/// the text the query string would carry (a string, number or boolean).
fn as_query<T: serde::de::DeserializeOwned>(params: &Map<String, Value>) -> Result<T, Error> {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        let text = match value {
            Value::String(s) => s.clone(),
            // An integer (JSON Schema's: 365.0 is 365) within what every JSON reader
            // holds exactly (2^53), as the query string writes it; other numbers have no
            // one text (1e3, 1000.0) and are refused.
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => (f as i64).to_string(),
                _ => {
                    return Err(Error::bad_request(format!(
                        "params.{}: a number must be an integer between -(2^53-1) and 2^53-1",
                        sanitize(name)
                    )));
                }
            },
            Value::Bool(b) => b.to_string(),
            // Absent, like an empty query value; the name must still be known.
            Value::Null => String::new(),
            _ => {
                return Err(Error::bad_request(format!(
                    "params.{} must be a string, number or boolean",
                    sanitize(name)
                )));
            }
        };
        out.append_pair(name, &text);
    }
    query::decode(&out.finish()).map_err(prefix_params)
}
