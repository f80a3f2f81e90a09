//! Compression of a whole file, streamed: the document's bytes go through gzip or
//! into a one-entry ZIP as the encoder produces them, so nothing is held beyond the
//! compressor's own window. After the document is finished, what the encoder still
//! has (a workbook assembled on disk, read in chunks) is compressed chunk by chunk.

use std::io::Write;

use flate2::{Compression as Level, write::GzEncoder};
use zip::{CompressionMethod, ZipWriter, write::SimpleFileOptions, write::StreamWriter};

use super::{Cell, Encoder, Row, SharedBuf};
use crate::{error::Error, spec::Compression};

fn compress_error(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::internal("encoding error", e)
}

enum Writer {
    Gzip(Box<GzEncoder<SharedBuf>>),
    Zip(Box<ZipWriter<StreamWriter<SharedBuf>>>),
}

impl Writer {
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Error> {
        match self {
            Writer::Gzip(w) => w.write_all(bytes).map_err(compress_error),
            Writer::Zip(w) => w.write_all(bytes).map_err(compress_error),
        }
    }

    fn close(self) -> Result<(), Error> {
        match self {
            Writer::Gzip(w) => (*w).finish().map(drop).map_err(compress_error),
            Writer::Zip(w) => (*w).finish().map(drop).map_err(compress_error),
        }
    }
}

#[derive(PartialEq)]
enum Stage {
    Rows,
    /// The document is finished; its remaining output is being compressed.
    Draining,
    Done,
}

/// An encoder whose output is compressed.
pub struct Compressed {
    inner: Box<dyn Encoder>,
    writer: Option<Writer>,
    out: SharedBuf,
    stage: Stage,
}

/// Wraps `inner` in `compression`; a ZIP holds one entry named `entry_name`.
pub fn wrap(inner: Box<dyn Encoder>, compression: Compression, entry_name: &str) -> Result<Box<dyn Encoder>, Error> {
    let out = SharedBuf::default();
    let writer = match compression {
        Compression::None => return Ok(inner),
        Compression::Gzip => Writer::Gzip(Box::new(GzEncoder::new(out.clone(), Level::default()))),
        Compression::Zip => {
            let mut zip = ZipWriter::new_stream(out.clone());
            // A workbook or an archive is compressed already: store it as it is.
            let method = if entry_name.ends_with(".csv") || entry_name.ends_with(".json") {
                CompressionMethod::Deflated
            } else {
                CompressionMethod::Stored
            };
            zip.start_file(entry_name, SimpleFileOptions::default().compression_method(method))
                .map_err(compress_error)?;
            Writer::Zip(Box::new(zip))
        }
    };
    Ok(Box::new(Compressed {
        inner,
        writer: Some(writer),
        out,
        stage: Stage::Rows,
    }))
}

impl Compressed {
    fn writer(&mut self) -> Result<&mut Writer, Error> {
        self.writer
            .as_mut()
            .ok_or_else(|| Error::internal("encoding error", "compressed stream already closed"))
    }
}

impl Encoder for Compressed {
    fn write_row(&mut self, row: &[Cell]) -> Result<(), Error> {
        self.inner.write_row(row)
    }

    fn write_batch(&mut self, rows: &[Row]) -> Result<(), Error> {
        self.inner.write_batch(rows)
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.inner.finish()?;
        self.stage = Stage::Draining;
        Ok(())
    }

    /// Empty only when everything is out: while draining it keeps reading the
    /// document until the compressor has produced bytes or is closed.
    fn take_output(&mut self) -> Result<Vec<u8>, Error> {
        match self.stage {
            Stage::Rows => {
                let bytes = self.inner.take_output()?;
                if !bytes.is_empty() {
                    self.writer()?.write_all(&bytes)?;
                }
            }
            Stage::Draining => loop {
                let bytes = self.inner.take_output()?;
                if bytes.is_empty() {
                    if let Some(writer) = self.writer.take() {
                        writer.close()?;
                    }
                    self.stage = Stage::Done;
                    break;
                }
                self.writer()?.write_all(&bytes)?;
                if !self.out.is_empty() {
                    break;
                }
            },
            Stage::Done => {}
        }
        Ok(self.out.take())
    }
}
