//! Compression of a whole file, streamed: the document's bytes go through gzip or
//! into a one-entry ZIP as the encoder produces them, so nothing is held beyond the
//! compressor's own window. After the document is finished, what the encoder still
//! has (a workbook assembled on disk, read in chunks) is compressed chunk by chunk.

use std::io::Write;

use flate2::{Compression as Level, write::GzEncoder};
use zip::{CompressionMethod, ZipWriter, write::SimpleFileOptions, write::StreamWriter};

use super::{Cell, Encoder, Row, SharedBuf, in_parallel, parquet::ParquetCodec};
use crate::{error::Error, values::enums::string_enum};

string_enum!(
    /// Compression: of the whole file (`gzip`, `zip`), or a Parquet file's codec
    /// (`none`, `snappy`, `zstd`), which compresses its pages inside the file.
    Compression { None => "none", Gzip => "gzip", Zip => "zip", Snappy => "snappy", Zstd => "zstd" }
);

impl Compression {
    /// The Parquet codec this names; `None` for `gzip` and `zip`, which wrap a whole file.
    pub fn parquet_codec(self) -> Option<ParquetCodec> {
        match self {
            Compression::None => Some(ParquetCodec::None),
            Compression::Snappy => Some(ParquetCodec::Snappy),
            Compression::Zstd => Some(ParquetCodec::Zstd),
            Compression::Gzip | Compression::Zip => None,
        }
    }
}

/// What decides which file options a format takes: a BOM is for CSV only, and a
/// Parquet file's `compression` is its codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFamily {
    Csv,
    Parquet,
    Other,
}

impl FileFamily {
    /// The `compression` a file of this family gets when the request names none:
    /// zstd inside a Parquet file, nothing around any other.
    pub fn default_compression(self) -> Compression {
        match self {
            FileFamily::Parquet => Compression::Zstd,
            FileFamily::Csv | FileFamily::Other => Compression::None,
        }
    }

    /// Refuses a `compression` that does not apply to this family's files.
    pub fn check_compression(self, compression: Compression) -> Result<(), Error> {
        let parquet_codec = compression.parquet_codec();
        match self {
            FileFamily::Parquet if parquet_codec.is_none() => Err(Error::bad_request(format!(
                "compression {} does not apply to the parquet format: a Parquet file compresses its pages \
                 itself; use none, snappy or zstd (the default)",
                compression.as_str()
            ))),
            FileFamily::Csv | FileFamily::Other if matches!(compression, Compression::Snappy | Compression::Zstd) => {
                Err(Error::bad_request(format!(
                    "compression {} applies to the parquet format only; use none, gzip or zip",
                    compression.as_str()
                )))
            }
            _ => Ok(()),
        }
    }
}

/// Deflate level of a gzip'd file and of a ZIP's compressed entries (flate2's default
/// is 6). Measured on 1M leads as CSV, null sink (docs/performance.md, "gzip and ZIP
/// compression"): level 3 runs 1.24-1.30x faster than 6 for a file 9% larger; 1 is
/// faster again but half as large again. The same choice as the workbooks'
/// (`xlsx::XLSX_ZIP_LEVEL`).
pub const DEFLATE_LEVEL: u32 = 3;

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
    /// The last batch's document bytes, compressed while the next batch is encoded.
    pending: Vec<u8>,
    out: SharedBuf,
    stage: Stage,
}

/// Wraps `inner` in `compression`; a ZIP holds one entry named `entry_name`.
pub fn wrap(inner: Box<dyn Encoder>, compression: Compression, entry_name: &str) -> Result<Box<dyn Encoder>, Error> {
    let out = SharedBuf::default();
    let writer = match compression {
        Compression::None => return Ok(inner),
        // Compile gives a Parquet encoder its codec, and its file no wrapper.
        Compression::Snappy | Compression::Zstd => {
            return Err(Error::internal(
                "encoding error",
                format!("{} is a Parquet codec, not a file's compression", compression.as_str()),
            ));
        }
        Compression::Gzip => Writer::Gzip(Box::new(GzEncoder::new(out.clone(), Level::new(DEFLATE_LEVEL)))),
        Compression::Zip => {
            let mut zip = ZipWriter::new_stream(out.clone());
            // A workbook or an archive is compressed already: store it as it is.
            let method = if [".csv", ".json", ".jsonl"].iter().any(|ext| entry_name.ends_with(ext)) {
                CompressionMethod::Deflated
            } else {
                CompressionMethod::Stored
            };
            let options = SimpleFileOptions::default().compression_method(method);
            let options = if method == CompressionMethod::Deflated {
                options.compression_level(Some(i64::from(DEFLATE_LEVEL)))
            } else {
                options
            };
            zip.start_file(entry_name, options).map_err(compress_error)?;
            Writer::Zip(Box::new(zip))
        }
    };
    Ok(Box::new(Compressed {
        inner,
        writer: Some(writer),
        pending: Vec::new(),
        out,
        stage: Stage::Rows,
    }))
}

impl Compressed {
    fn compress_pending(&mut self) -> Result<(), Error> {
        let pending = std::mem::take(&mut self.pending);
        if !pending.is_empty() {
            self.writer()?.write_all(&pending)?;
        }
        Ok(())
    }

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

    /// Compresses the previous batch's bytes on a second thread while this batch is
    /// encoded on this one; this batch's bytes wait for the next batch (or the end).
    fn write_batch(&mut self, rows: &[Row]) -> Result<(), Error> {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            // Nothing to overlap with (a workbook's bytes all come at the end).
            self.inner.write_batch(rows)?;
            self.pending = self.inner.take_output()?;
            return Ok(());
        }
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| Error::internal("encoding error", "compressed stream already closed"))?;
        let inner = &mut self.inner;
        let (compressed, encoded) = in_parallel(|| writer.write_all(&pending), || inner.write_batch(rows));
        compressed?;
        encoded?;
        self.pending = self.inner.take_output()?;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.compress_pending()?;
        self.inner.finish()?;
        self.stage = Stage::Draining;
        Ok(())
    }

    /// Empty only when everything is out: while draining it keeps reading the
    /// document until the compressor has produced bytes or is closed.
    fn take_output(&mut self) -> Result<Vec<u8>, Error> {
        match self.stage {
            // Rows written one by one (not by batch) are compressed here, in order.
            Stage::Rows => {
                let bytes = self.inner.take_output()?;
                if !bytes.is_empty() {
                    self.compress_pending()?;
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

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::export::{Column, json::JsonEncoder};

    fn drain(encoder: &mut dyn Encoder, into: &mut Vec<u8>) {
        loop {
            let chunk = encoder.take_output().unwrap();
            if chunk.is_empty() {
                break;
            }
            into.extend_from_slice(&chunk);
        }
    }

    /// Batches (compressed a batch behind, on a second thread) and single rows
    /// (compressed at once) come out in order, byte for byte.
    #[test]
    fn batches_and_rows_are_compressed_in_order() {
        let columns = [Column::new("N", "n"), Column::new("T", "t")];
        let row = |i: usize| vec![Cell::Int(i as i128), Cell::Text(format!("row {i} \u{e9}").into())];
        let batch = |from: usize| (from..from + 500).map(row).collect::<Vec<Row>>();
        let mut plain = JsonEncoder::new(&columns);
        let mut gz = wrap(Box::new(JsonEncoder::new(&columns)), Compression::Gzip, "x.json").unwrap();
        let (mut want, mut got) = (Vec::new(), Vec::new());
        for step in 0..6 {
            if step == 3 {
                for i in 3000..3010 {
                    plain.write_row(&row(i)).unwrap();
                    gz.write_row(&row(i)).unwrap();
                    want.extend(plain.take_output().unwrap());
                    got.extend(gz.take_output().unwrap());
                }
            }
            plain.write_batch(&batch(step * 500)).unwrap();
            gz.write_batch(&batch(step * 500)).unwrap();
            want.extend(plain.take_output().unwrap());
            got.extend(gz.take_output().unwrap());
        }
        plain.finish().unwrap();
        gz.finish().unwrap();
        drain(&mut plain, &mut want);
        drain(gz.as_mut(), &mut got);
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&got[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, want);
        assert!(serde_json::from_slice::<serde_json::Value>(&want).is_ok());
    }
}
