//! Parameters of `GET /api/admin/sessions/export`.

use serde::{Deserialize, Serialize};

use super::Flag;
use crate::export::EncodeOptions;

#[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SessionsParams {
    /// Neutralise formula-like cells (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spreadsheet_safe: Option<Flag>,
}

impl SessionsParams {
    pub fn options(&self) -> EncodeOptions {
        EncodeOptions {
            spreadsheet_safe: self.spreadsheet_safe.is_none_or(|f| f.0),
            ..EncodeOptions::default()
        }
    }
}
