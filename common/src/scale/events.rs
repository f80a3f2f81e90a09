//! What the `export-scale` function is invoked with and answers (the state
//! machine's contract, checked by scripts/check_template.py), and the checked values
//! its fields are.

use serde::{Deserialize, Serialize};

use super::{MAX_DATA_FILES, format::S3Url};
use crate::jobs::request::JobRequest;

pub use crate::values::id::JobId;

/// `s3://bucket/key` in requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Location(pub S3Url);

impl TryFrom<String> for Location {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        S3Url::parse(&s).map(Location)
    }
}

impl From<Location> for String {
    fn from(l: Location) -> String {
        l.0.to_string()
    }
}

/// A part's index: below [`MAX_DATA_FILES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u32")]
pub struct Index(pub u32);

impl TryFrom<u64> for Index {
    type Error = String;

    fn try_from(v: u64) -> Result<Self, String> {
        u32::try_from(v)
            .ok()
            .filter(|v| *v < MAX_DATA_FILES)
            .map(Index)
            .ok_or_else(|| format!("must be below {MAX_DATA_FILES}"))
    }
}

impl From<Index> for u32 {
    fn from(i: Index) -> u32 {
        i.0
    }
}

/// A count of data files: at most [`MAX_DATA_FILES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u32")]
pub struct FileCount(pub u32);

impl TryFrom<u64> for FileCount {
    type Error = String;

    fn try_from(v: u64) -> Result<Self, String> {
        u32::try_from(v)
            .ok()
            .filter(|v| *v <= MAX_DATA_FILES)
            .map(FileCount)
            .ok_or_else(|| format!("must be at most {MAX_DATA_FILES}"))
    }
}

impl From<FileCount> for u32 {
    fn from(c: FileCount) -> u32 {
        c.0
    }
}

/// `{"start": {"name", "export": {"kind", "format", "params", "notify"}, "manifest": "s3://.../manifest-summary.json"}}`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// Names the export: its job's owner is `operator-<name>`.
    pub name: String,
    /// What to export, as an operator export gives it (jobs/request.rs, `JobRequest`).
    pub export: JobRequest,
    /// The DynamoDB export's `manifest-summary.json`.
    pub manifest: Location,
}

/// `{"convert": {"job_id", "index", "data_file"}}`: also the shape of each item of
/// `items.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvertRequest {
    pub job_id: JobId,
    pub index: Index,
    pub data_file: Location,
}

/// `{"assemble": {"job_id", "files"}}`: `files` is the count [`super::start`] answered.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssembleRequest {
    pub job_id: JobId,
    pub files: FileCount,
}

/// `{"fail": {"job_id", "error", "cause"}}`: the state machine's catch (`$.Error`,
/// `$.Cause`). The cause goes to the log only.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    pub job_id: JobId,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
}

/// Any invocation of the `export-scale` function (externally tagged).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ScaleEvent {
    Start(StartRequest),
    Convert(ConvertRequest),
    Assemble(AssembleRequest),
    Fail(FailRequest),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartResponse {
    pub job_id: String,
    /// Where `items.json` is (the exports bucket).
    pub bucket: String,
    pub items_key: String,
    pub files: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvertResponse {
    pub index: u32,
    pub rows: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssembleResponse {
    pub job_id: String,
    pub rows: u64,
    pub bytes: u64,
    pub s3_key: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailResponse {
    pub job_id: String,
    /// The job's status now (`failed`, or the final status it already had).
    pub status: String,
}
