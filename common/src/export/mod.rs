//! The export engine: row batches -> encoder -> sink.
//!
//! Memory is bounded by one source page, the encoder's pending output and one
//! multipart part: nothing ever holds a whole export.

pub mod csv;
pub mod json;
pub mod sink;
pub mod xlsx;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::{TryStreamExt, stream::BoxStream};

use crate::error::Error;
pub use sink::{ByteSink, Delivered, S3Sink};

/// One cell of a row, typed so every encoder can render it natively.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    /// Any integer a model holds (`i64`, `u64`), exactly.
    Int(i128),
    Float(f64),
    /// Yes/No in tabular formats, true/false in JSON.
    Bool(bool),
    Time(DateTime<Utc>),
    /// Several values: joined with the column's separator in tabular formats, an
    /// array in JSON.
    List(Vec<String>),
}

impl From<Option<String>> for Cell {
    fn from(v: Option<String>) -> Self {
        v.map_or(Cell::Empty, Cell::Text)
    }
}

impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Text(v)
    }
}

pub type Row = Vec<Cell>;

/// A `Write` destination shared with its owner, so encoded bytes can be taken out
/// between batches while a writer (`csv::Writer`, `zip::ZipWriter`) keeps it.
#[derive(Clone, Default)]
pub struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    /// The buffer, even after a panic poisoned the lock: bytes are only appended.
    fn bytes(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.bytes())
    }

    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }
}

impl std::io::Write for SharedBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.bytes().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A batch stream of rows, usually one DynamoDB page per batch.
pub type RowBatches = BoxStream<'static, Result<Vec<Row>, Error>>;

/// A column of an export: its header in tabular formats and its key in JSON.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Column {
    pub header: &'static str,
    pub key: &'static str,
    /// Width in Excel, in characters; 0 picks one from the header.
    pub width: f64,
    /// Separator of [`Cell::List`] values in tabular formats.
    pub list_sep: &'static str,
}

impl Column {
    pub const fn new(header: &'static str, key: &'static str) -> Self {
        Self {
            header,
            key,
            width: 0.0,
            list_sep: ";",
        }
    }

    pub const fn width(mut self, width: f64) -> Self {
        self.width = width;
        self
    }

    pub const fn list_sep(mut self, sep: &'static str) -> Self {
        self.list_sep = sep;
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Xlsx,
    /// A ZIP archive (the chat export's JSON + Excel pair).
    Zip,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Xlsx => "xlsx",
            Format::Zip => "zip",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Zip => "application/zip",
        }
    }

    /// Whether the encoded bytes are UTF-8 text (sent unencoded inline).
    pub fn is_text(self) -> bool {
        matches!(self, Format::Csv | Format::Json)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EncodeOptions {
    /// Neutralise text cells a spreadsheet would evaluate as formulas (OWASP CSV injection).
    pub spreadsheet_safe: bool,
    /// Data rows per Excel sheet before the rows continue on a new sheet.
    pub sheet_row_limit: u32,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            spreadsheet_safe: true,
            sheet_row_limit: xlsx::EXCEL_MAX_DATA_ROWS,
        }
    }
}

/// Everything needed to run one export: what the HTTP layer builds from a request.
pub struct ExportJob {
    /// Short name for logs and object keys, e.g. `sessions`.
    pub kind: &'static str,
    /// File name without date and extension, e.g. `chat-sessions-export`.
    pub file_stem: &'static str,
    /// Name of the (first) sheet in Excel output.
    pub sheet: &'static str,
    pub format: Format,
    pub columns: Vec<Column>,
    pub options: EncodeOptions,
    pub rows: RowBatches,
    /// A document-specific encoder (e.g. the chat export's JSON with its summary);
    /// `None` uses the plain encoder of `format`.
    pub encoder: Option<Box<dyn Encoder>>,
}

impl ExportJob {
    /// `<stem>-YYYY-MM-DD.<ext>`, dated `now` (UTC).
    pub fn file_name(&self, now: DateTime<Utc>) -> String {
        format!(
            "{}-{}.{}",
            self.file_stem,
            now.format("%Y-%m-%d"),
            self.format.extension()
        )
    }
}

/// Turns rows into bytes. Output accumulates inside the encoder and is handed to the
/// sink after every batch through [`Encoder::take_output`].
pub trait Encoder: Send {
    fn write_row(&mut self, row: &[Cell]) -> Result<(), Error>;
    /// Writes whatever closes the document.
    fn finish(&mut self) -> Result<(), Error>;
    /// Bytes produced and not yet taken; empty when there is nothing pending.
    fn take_output(&mut self) -> Result<Vec<u8>, Error>;
}

pub fn encoder_for(job: &mut ExportJob) -> Result<Box<dyn Encoder>, Error> {
    if let Some(custom) = job.encoder.take() {
        return Ok(custom);
    }
    Ok(match job.format {
        Format::Csv => Box::new(csv::CsvEncoder::new(&job.columns, job.options)?),
        Format::Json => Box::new(json::JsonEncoder::new(&job.columns)),
        Format::Xlsx => Box::new(xlsx::XlsxEncoder::new(job.sheet, &job.columns, job.options)?),
        Format::Zip => return Err(Error::internal("export error", "a ZIP export needs its own encoder")),
    })
}

#[derive(Debug)]
pub struct Summary {
    pub rows: u64,
    pub bytes: u64,
}

/// Runs a job into a sink. On any failure the sink is aborted (no partial object is
/// left behind) and the error returned.
pub async fn run<S: ByteSink>(job: ExportJob, mut sink: S) -> Result<(Summary, S::Output), Error> {
    let result = drive(job, &mut sink).await;
    match result {
        Ok(rows) => {
            let bytes = sink.bytes_written();
            match sink.finish().await {
                Ok(out) => Ok((Summary { rows, bytes }, out)),
                Err(e) => Err(e),
            }
        }
        Err(e) => {
            sink.abort().await;
            Err(e)
        }
    }
}

async fn drive<S: ByteSink>(mut job: ExportJob, sink: &mut S) -> Result<u64, Error> {
    let mut encoder = encoder_for(&mut job)?;
    let width = job.columns.len();
    let mut rows = job.rows;
    let mut count = 0u64;
    while let Some(batch) = rows.try_next().await? {
        for row in &batch {
            if row.len() != width {
                return Err(Error::internal(
                    "export error",
                    format!("row has {} cells, expected {width}", row.len()),
                ));
            }
            encoder.write_row(row)?;
        }
        count += batch.len() as u64;
        let out = encoder.take_output()?;
        if !out.is_empty() {
            sink.write(out).await?;
        }
    }
    encoder.finish()?;
    loop {
        let out = encoder.take_output()?;
        if out.is_empty() {
            break;
        }
        sink.write(out).await?;
    }
    Ok(count)
}
