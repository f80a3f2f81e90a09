//! Which exports can run at scale, and how their parts are framed.

use crate::{
    error::Error,
    kinds::chats::ChatFormat,
    spec::{Compression, ExportSpec, FileFamily, TableFormat},
};

/// How the parts of a supported export are framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Rows as lines after a header written once: CSV, and JSON Lines (no header).
    Lines,
    Json,
    /// Excel: a ZIP of workbooks.
    Workbooks,
}

const SUPPORTED: &str = "exports at scale support leads (csv, json, jsonl, xlsx) and chats (csv, jsonl)";

/// Whether `spec` can run at scale, and how: the spec as the job stores it
/// (Excel is delivered as a ZIP of workbooks, so its file is a `.zip`; a chats export
/// has every matching message) and its shape.
pub fn at_scale(spec: ExportSpec) -> Result<(ExportSpec, Shape), Error> {
    if spec.family() == FileFamily::Parquet {
        return Err(Error::bad_request(format!(
            "the parquet format cannot run at scale: its footer indexes every row group of the file, which \
             parts converted apart cannot share; run it as a job; {SUPPORTED}"
        )));
    }
    if spec.options().compression != Compression::None {
        return Err(Error::bad_request(format!(
            "compression is not supported at scale (the file is delivered uncompressed; Excel as a ZIP of workbooks); {SUPPORTED}"
        )));
    }
    match spec {
        ExportSpec::Leads(mut s) => {
            let shape = match s.format {
                TableFormat::Csv => Shape::Lines,
                TableFormat::Json => Shape::Json,
                TableFormat::Jsonl => Shape::Lines,
                TableFormat::Xlsx => {
                    s.options.compression = Compression::Zip;
                    Shape::Workbooks
                }
                TableFormat::Parquet => {
                    return Err(Error::internal("export error", "parquet reached the scale shapes"));
                }
            };
            Ok((ExportSpec::Leads(s), shape))
        }
        ExportSpec::Chats(mut s) if matches!(s.format, ChatFormat::Csv | ChatFormat::Jsonl) => {
            s.filter.limit = u32::MAX;
            Ok((ExportSpec::Chats(s), Shape::Lines))
        }
        ExportSpec::Chats(s) => Err(Error::bad_request(format!(
            "chats in {} cannot run at scale: its document carries a summary of the whole export; {SUPPORTED}",
            s.format.as_str()
        ))),
        ExportSpec::Sessions(_) => Err(Error::bad_request(format!(
            "sessions cannot run at scale: the export joins two tables; {SUPPORTED}"
        ))),
        ExportSpec::Conversations(_) => Err(Error::bad_request(format!(
            "conversations cannot run at scale: the export groups every message of a conversation; {SUPPORTED}"
        ))),
    }
}
