//! The audit log of chat exports: one item per attempt, whatever its outcome.
//! Table `AUDIT_TABLE`: partition key `client_scope` (`client#<id>`, `all` for an
//! admin export of every client, `none` when the request never got that far), sort key
//! `at_request` (`<timestamp>#<request id>`), so one Query lists a client's exports in
//! time order.

use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{error::Error, timefmt::serde_ts};

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
    /// `success`, `rejected` (4xx) or `failed` (5xx).
    pub outcome: String,
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
            outcome: "failed".into(),
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
