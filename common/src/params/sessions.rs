//! Parameters of `GET /api/admin/sessions/export`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Choice, Flag, file_options};
use crate::{
    error::Error,
    spec::{Compression, ExportSpec, SessionsSpec, TableFormat, TimeZone},
};

#[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SessionsParams {
    /// `csv` (default), `json` or `xlsx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Choice<TableFormat>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Choice<Compression>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bom: Option<Flag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<TimeZone>,
    /// Neutralise formula-like cells (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spreadsheet_safe: Option<Flag>,
}

impl SessionsParams {
    /// The export (admins only: the route checks the role before decoding).
    pub fn into_spec(self, as_of: DateTime<Utc>) -> Result<ExportSpec, Error> {
        let format = self.format.map_or(TableFormat::Csv, |f| f.0);
        Ok(ExportSpec::Sessions(SessionsSpec {
            as_of,
            format,
            options: file_options(
                self.compression,
                self.bom,
                self.time_zone,
                self.spreadsheet_safe,
                format.family(),
            )?,
        }))
    }
}
