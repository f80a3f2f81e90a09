//! The export engine: row batches -> encoder -> sink.
//!
//! [`crate::compile::compile`] builds the [`Pipeline`] of a spec (its rows and its
//! encoder); [`run`] drives it into a sink. Memory is bounded by one source page, the
//! encoder's pending output and one multipart part: nothing ever holds a whole export.

pub mod compress;
pub mod csv;
pub mod document;
pub mod json;
pub mod sink;
pub mod xlsx;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::{TryStreamExt, stream::BoxStream};

use crate::{error::Error, spec::TimeZone};
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
    /// Holds timestamps: in a zone other than UTC, Excel names the zone in its header.
    pub time: bool,
}

impl Column {
    pub const fn new(header: &'static str, key: &'static str) -> Self {
        Self {
            header,
            key,
            width: 0.0,
            list_sep: ";",
            time: false,
        }
    }

    pub const fn time(mut self) -> Self {
        self.time = true;
        self
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

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EncodeOptions {
    /// Neutralise text cells a spreadsheet would evaluate as formulas (OWASP CSV injection).
    pub spreadsheet_safe: bool,
    /// Data rows per Excel sheet before the rows continue on a new sheet.
    pub sheet_row_limit: u32,
    /// The zone timestamps are shown in (CSV and Excel).
    pub time_zone: TimeZone,
    /// Start a CSV with a UTF-8 byte order mark.
    pub bom: bool,
    /// When the document was made (a workbook's creation time): the export's `as_of`,
    /// so the same spec always makes the same file.
    pub created: DateTime<Utc>,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            spreadsheet_safe: true,
            sheet_row_limit: xlsx::EXCEL_MAX_DATA_ROWS,
            time_zone: TimeZone::UTC,
            bom: false,
            created: DateTime::UNIX_EPOCH,
        }
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

/// A compiled export, ready to run: its rows and the encoder they go through.
pub struct Pipeline {
    pub rows: RowBatches,
    pub encoder: Box<dyn Encoder>,
    /// Cells per row (checked on every row).
    pub width: usize,
}

#[derive(Debug)]
pub struct Summary {
    pub rows: u64,
    pub bytes: u64,
}

/// Runs a pipeline into a sink. On any failure the sink is aborted (no partial object
/// is left behind) and the error returned.
pub async fn run<S: ByteSink>(pipeline: Pipeline, mut sink: S) -> Result<(Summary, S::Output), Error> {
    let result = drive(pipeline, &mut sink).await;
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

async fn drive<S: ByteSink>(pipeline: Pipeline, sink: &mut S) -> Result<u64, Error> {
    let Pipeline {
        mut rows,
        mut encoder,
        width,
    } = pipeline;
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
