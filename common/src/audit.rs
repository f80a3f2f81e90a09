//! The audit log of chat exports: one item per attempt, whatever its outcome.
//! Table `AUDIT_TABLE`: partition key `client_scope` (`client#<id>`, `all` for an
//! admin export of every client, `none` when the request never got that far), sort key
//! `at_request` (`<timestamp>#<request id>`), so one Query lists a client's exports in
//! time order.

use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{error::Error, timefmt::serde_ts};

/// How an audited attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// Answered 2xx or 3xx; a job that succeeded.
    Success,
    /// Refused with a 4xx.
    Rejected,
    /// A 5xx; a job that failed.
    Failed,
    /// A job that was cancelled.
    Cancelled,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// So that an outcome compares with the text the table holds.
impl PartialEq<&str> for AuditOutcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AuditRecord {
    pub client_scope: String,
    pub at_request: String,
    pub request_id: String,
    #[serde(with = "serde_ts")]
    pub at: DateTime<Utc>,
    /// `POST /client/export/chats` or `GET /client/export/chats/download`.
    pub route: String,
    /// `sub` of the caller; absent when authentication failed.
    pub caller: Option<String>,
    pub role: Option<String>,
    /// The parsed request (format, dates, client, conversation, limit, flags) as JSON.
    pub parameters: Option<String>,
    pub outcome: AuditOutcome,
    pub status: u16,
    pub error_code: Option<String>,
    pub records: Option<u64>,
    pub bytes: Option<u64>,
    pub duration_ms: u64,
    pub s3_key: Option<String>,
    /// The export job this record is about (job API, worker, or a synchronous export
    /// recorded in the history).
    #[serde(default)]
    pub job_id: Option<String>,
}

impl AuditRecord {
    pub fn new(request_id: &str, route: &str, at: DateTime<Utc>) -> Self {
        Self {
            client_scope: "none".into(),
            at_request: format!("{}#{request_id}", crate::timefmt::format(&at)),
            request_id: request_id.into(),
            at,
            route: route.into(),
            caller: None,
            role: None,
            parameters: None,
            outcome: AuditOutcome::Failed,
            status: 500,
            error_code: None,
            records: None,
            bytes: None,
            duration_ms: 0,
            s3_key: None,
            job_id: None,
        }
    }
}

pub async fn write(client: &Client, table: &str, record: &AuditRecord) -> Result<(), Error> {
    let item = serde_dynamo::to_item(record).map_err(|e| Error::internal("audit log error", e))?;
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .map_err(|e| Error::internal("audit log error", e))?;
    Ok(())
}
