//! The converter: one data file of a DynamoDB export -> one part of the export.
//!
//! A data file is read through [`FileStore`], an implementation of [`Store`], so the
//! part is made by the same [`compile`] as every live export: the kind's tenant scope
//! and filters (`LeadFilter::matches`, `ChatFilter::matches`), the `written_by(as_of)`
//! snapshot cut, the columns and the encoders. Rows come out in file order: a DynamoDB
//! export has no order, so neither has the file made from it (a live export is in
//! time order).
//!
//! Parts are framed so that their concatenation (by the assembler) is one valid file:
//! - CSV: the header (and BOM) only in part 0;
//! - JSON: part 0 opens the array; a later part starts with a comma before its first
//!   object (the assembler drops it when no earlier part has a row, and closes the
//!   array);
//! - Excel: complete STORED zip entries, one workbook of at most
//!   [`EXCEL_MAX_DATA_ROWS`] rows each (`leads-00003-1.xlsx`, ...); part 0 always has one,
//!   so an export without rows is still an archive holding a workbook with the header.
//!
//! Each part's sidecar (`<part>.json`, [`Sidecar`]) records its rows, bytes, the data
//! file's lines and MD5, and (Excel) its entries.

use std::{
    io::{Read, Seek, SeekFrom, Write},
    sync::{Arc, atomic::Ordering},
};

use aws_sdk_s3::Client as S3;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::{
    Shape,
    format::{LineParse, ReadStats, S3Url, data_file_lines, record_of_line},
    zipfmt::{self, Entry, Zip64},
};
use crate::{
    compile::compile,
    error::Error,
    export::{self, ByteSink, Encoder, Pipeline, S3Sink, sink::ObjectTarget, xlsx::EXCEL_MAX_DATA_ROWS},
    kinds::{chats::ChatFilter, leads::LeadFilter},
    model::{ChatMessage, Lead},
    reads::Decoding,
    source::{Pages, SessionLine, Store},
    spec::ExportSpec,
};

/// One data file as a [`Store`]: its items decoded into the kind's records, cut at
/// `as_of` and filtered exactly as the DynamoDB store does. No data file (`None`) is an
/// empty store: what an export without data files, and the preludes, are made from.
pub struct FileStore {
    s3: S3,
    source: Option<S3Url>,
    page_items: usize,
    stats: Arc<ReadStats>,
}

impl FileStore {
    pub fn new(s3: S3, source: Option<S3Url>, page_items: usize) -> Self {
        Self {
            s3,
            source,
            page_items,
            stats: Arc::new(ReadStats::default()),
        }
    }

    /// What reading the file saw so far.
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    /// The records of the file that were written by `as_of` and that `keep` keeps,
    /// each line read straight into its record ([`record_of_line`]).
    fn records<T, F>(&self, as_of: DateTime<Utc>, key_attrs: &'static [&'static str], keep: F) -> Pages<T>
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(&T) -> bool + Send + 'static,
    {
        let Some(url) = &self.source else {
            return stream::empty().boxed();
        };
        let how = Decoding {
            as_of,
            sort_attr: None,
            key_attrs,
        };
        let parse: LineParse<Option<T>> = Arc::new(move |text: &[u8]| record_of_line::<T>(text, &how));
        data_file_lines(
            self.s3.clone(),
            url.clone(),
            self.page_items,
            Arc::clone(&self.stats),
            parse,
        )
        .map_ok(move |page| {
            page.into_iter()
                .filter_map(|line| line.item)
                .filter(|record| keep(record))
                .collect()
        })
        .boxed()
    }
}

fn not_from_one_file<T: Send + 'static>(what: &'static str) -> Pages<T> {
    stream::once(async move {
        Err(Error::bad_request(format!(
            "{what} cannot be made from one data file of a DynamoDB export"
        )))
    })
    .boxed()
}

impl Store for FileStore {
    fn session_lines(&self, _as_of: DateTime<Utc>) -> Pages<SessionLine> {
        not_from_one_file("the sessions export (a join of two tables)")
    }

    fn leads(&self, filter: &LeadFilter, as_of: DateTime<Utc>) -> Pages<Lead> {
        let filter = filter.clone();
        self.records(as_of, &["lead_id"], move |lead: &Lead| filter.matches(lead))
    }

    fn chat_messages(&self, filter: &ChatFilter, as_of: DateTime<Utc>) -> Pages<ChatMessage> {
        let filter = filter.clone();
        self.records(as_of, &["client_id", "ts_id"], move |m: &ChatMessage| filter.matches(m))
    }

    fn conversation_messages(&self, _filter: &ChatFilter, _as_of: DateTime<Utc>) -> Pages<ChatMessage> {
        not_from_one_file("the conversations export (messages grouped by conversation)")
    }
}

/// What a part holds, stored next to it as `<part>.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    pub index: u32,
    /// Rows exported into the part.
    pub rows: u64,
    /// Size of the part object.
    pub bytes: u64,
    /// The data file converted (`None`: the empty part of an export without data files).
    pub data_file: Option<String>,
    /// Items (lines) the data file held, and the base64 MD5 of its bytes: checked
    /// against the export's manifest when the parts are assembled.
    pub items: u64,
    pub md5: Option<String>,
    /// Excel: the part's zip entries, offsets within the part.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<Entry>,
}

/// Knobs of a conversion; the defaults are what the Lambda uses.
#[derive(Clone, Copy, Debug)]
pub struct PartTuning {
    /// Items decoded per page of the data file.
    pub page_items: usize,
    /// Data rows per workbook (at most Excel's limit).
    pub rows_per_workbook: u32,
    /// Multipart part size of the part's own upload.
    pub upload_part_bytes: usize,
}

impl Default for PartTuning {
    fn default() -> Self {
        Self {
            page_items: 1000,
            rows_per_workbook: EXCEL_MAX_DATA_ROWS,
            upload_part_bytes: crate::config::DEFAULT_PART_BYTES,
        }
    }
}

/// A part's text output with the framing of its position (see the module docs).
struct TextPart {
    sink: S3Sink,
    /// What the encoder writes before any row (BOM and header, `[`): part 0 keeps it.
    prelude: Vec<u8>,
    /// Bytes of the prelude still to drop from the encoder's output.
    skip: usize,
    /// Written before the part's first byte after the prelude (JSON: `,`).
    continuation: &'static [u8],
    continued: bool,
}

impl TextPart {
    async fn emit(&mut self, mut out: Vec<u8>) -> Result<(), Error> {
        if self.skip > 0 {
            let n = self.skip.min(out.len());
            let at = self.prelude.len() - self.skip;
            if out[..n] != self.prelude[at..at + n] {
                return Err(Error::internal(
                    "export error",
                    "the encoder's output does not start with its prelude",
                ));
            }
            out.drain(..n);
            self.skip -= n;
        }
        if out.is_empty() {
            return Ok(());
        }
        if !self.continued {
            self.continued = true;
            if !self.continuation.is_empty() {
                self.sink.write(self.continuation.to_vec()).await?;
            }
        }
        self.sink.write(out).await
    }
}

/// A fresh encoder of the spec's document (nothing written yet).
fn fresh_encoder(ctx_s3: &S3, spec: &ExportSpec) -> Result<Box<dyn Encoder>, Error> {
    Ok(compile(spec, &FileStore::new(ctx_s3.clone(), None, 1))?.encoder)
}

fn check_width(row: &[crate::export::Cell], width: usize) -> Result<(), Error> {
    if row.len() == width {
        Ok(())
    } else {
        Err(Error::internal(
            "export error",
            format!("row has {} cells, expected {width}", row.len()),
        ))
    }
}

/// Where a part comes from and goes to.
pub struct PartSpec {
    pub index: u32,
    /// The data file (`None`: no data file, an empty part).
    pub source: Option<S3Url>,
    /// The part object.
    pub target: ObjectTarget,
    pub sidecar_key: String,
}

/// Writes part `part.index` of `spec` (already checked to be `shape`) from its data
/// file to its object, and its sidecar. A retried part overwrites its own objects; on
/// failure its upload is aborted.
pub async fn convert_part(
    s3: &S3,
    spec: &ExportSpec,
    shape: Shape,
    part: PartSpec,
    tuning: &PartTuning,
) -> Result<Sidecar, Error> {
    let PartSpec {
        index,
        source,
        target,
        sidecar_key,
    } = part;
    let store = FileStore::new(s3.clone(), source.clone(), tuning.page_items);
    let pipeline = compile(spec, &store)?;
    let bucket = target.bucket.clone();
    let sink = S3Sink::new(s3.clone(), target, None, tuning.upload_part_bytes);
    let (rows, bytes, entries) = match shape {
        Shape::Lines | Shape::Json => {
            let prelude = fresh_encoder(s3, spec)?.take_output()?;
            let first = index == 0;
            let part = TextPart {
                sink,
                skip: if first { 0 } else { prelude.len() },
                prelude,
                continuation: if shape == Shape::Json && !first { b"," } else { b"" },
                continued: first,
            };
            let (rows, bytes) = text_part(pipeline, part).await?;
            (rows, bytes, Vec::new())
        }
        Shape::Workbooks => workbooks(s3, spec, index, pipeline, sink, tuning).await?,
    };
    let stats = store.stats();
    let sidecar = Sidecar {
        index,
        rows,
        bytes,
        data_file: source.map(|s| s.to_string()),
        items: stats.lines.load(Ordering::Relaxed),
        md5: stats.md5(),
        entries,
    };
    let body = serde_json::to_vec(&sidecar).map_err(|e| Error::internal("encoding error", e))?;
    super::format::put(s3, &bucket, &sidecar_key, body, "application/json").await?;
    Ok(sidecar)
}

/// The document's encoder with its ending left off: the assembler closes the
/// document once, after the last part (JSON's `]`).
struct Unfinished(Box<dyn Encoder>);

impl Encoder for Unfinished {
    fn write_row(&mut self, row: &[crate::export::Cell]) -> Result<(), Error> {
        self.0.write_row(row)
    }

    fn write_batch(&mut self, rows: &[crate::export::Row]) -> Result<(), Error> {
        self.0.write_batch(rows)
    }

    fn finish(&mut self) -> Result<(), Error> {
        Ok(())
    }

    fn take_output(&mut self) -> Result<Vec<u8>, Error> {
        self.0.take_output()
    }
}

/// A text part is a sink over the part's upload that frames what it is given.
impl ByteSink for TextPart {
    type Output = ();

    async fn write(&mut self, chunk: Vec<u8>) -> Result<(), Error> {
        self.emit(chunk).await
    }

    fn bytes_written(&self) -> u64 {
        self.sink.bytes_written()
    }

    async fn finish(self) -> Result<(), Error> {
        self.sink.finish().await.map(drop)
    }

    async fn abort(self) {
        self.sink.abort().await
    }
}

/// Drives the rows through the engine (its stages overlap as for any export) into a
/// text part; the document is left open for the assembler.
async fn text_part(pipeline: Pipeline, part: TextPart) -> Result<(u64, u64), Error> {
    let pipeline = Pipeline {
        encoder: Box::new(Unfinished(pipeline.encoder)),
        ..pipeline
    };
    let (summary, ()) = export::run(pipeline, part).await?;
    Ok((summary.rows, summary.bytes))
}

/// `leads-00003-1.xlsx`: the kind, the part, the workbook's number within the part.
pub fn workbook_name(spec: &ExportSpec, index: u32, number: u32) -> String {
    format!("{}-{index:05}-{number}.xlsx", spec.kind())
}

/// The rows as workbooks of at most `rows_per_workbook` rows, each a STORED zip entry.
async fn workbooks(
    s3: &S3,
    spec: &ExportSpec,
    index: u32,
    pipeline: Pipeline,
    mut sink: S3Sink,
    tuning: &PartTuning,
) -> Result<(u64, u64, Vec<Entry>), Error> {
    let per_workbook = tuning.rows_per_workbook.clamp(1, EXCEL_MAX_DATA_ROWS);
    let dos = zipfmt::dos_time(spec.as_of());
    let Pipeline { rows, encoder, width } = pipeline;
    // Rows are made on their own task while workbooks are written.
    let mut rows = crate::reads::pages::read_ahead(rows);
    let mut entries = Vec::new();
    let result = async {
        let mut workbook = encoder;
        let (mut number, mut on_workbook, mut count) = (1u32, 0u32, 0u64);
        while let Some(batch) = rows.try_next().await? {
            for row in &batch {
                check_width(row, width)?;
                if on_workbook == per_workbook {
                    let done = std::mem::replace(&mut workbook, fresh_encoder(s3, spec)?);
                    let entry = store_workbook(done, workbook_name(spec, index, number), dos, &mut sink).await?;
                    entries.push(entry);
                    number += 1;
                    on_workbook = 0;
                }
                workbook.write_row(row)?;
                on_workbook += 1;
            }
            count += batch.len() as u64;
        }
        if on_workbook > 0 || (index == 0 && entries.is_empty()) {
            let entry = store_workbook(workbook, workbook_name(spec, index, number), dos, &mut sink).await?;
            entries.push(entry);
        }
        Ok::<_, Error>(count)
    }
    .await;
    match result {
        Ok(count) => {
            let bytes = sink.bytes_written();
            sink.finish().await?;
            Ok((count, bytes, entries))
        }
        Err(e) => {
            sink.abort().await;
            Err(e)
        }
    }
}

fn io_error(e: std::io::Error) -> Error {
    Error::internal("export error", e)
}

/// Finishes a workbook into a temporary file (so its CRC-32 and size are known before
/// its local header is written), then writes header and workbook to the part.
async fn store_workbook(
    mut encoder: Box<dyn Encoder>,
    name: String,
    dos: (u16, u16),
    sink: &mut S3Sink,
) -> Result<Entry, Error> {
    encoder.finish()?;
    let mut file = tempfile::tempfile().map_err(io_error)?;
    let mut crc = crc32fast::Hasher::new();
    let mut size = 0u64;
    loop {
        let chunk = encoder.take_output()?;
        if chunk.is_empty() {
            break;
        }
        crc.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk).map_err(io_error)?;
    }
    drop(encoder);
    let crc32 = crc.finalize();
    let offset = sink.bytes_written();
    sink.write(zipfmt::local_header(&name, crc32, size, dos, Zip64::Auto))
        .await?;
    file.seek(SeekFrom::Start(0)).map_err(io_error)?;
    const CHUNK: u64 = 4 * 1024 * 1024;
    loop {
        let mut chunk = Vec::with_capacity(CHUNK as usize);
        (&mut file).take(CHUNK).read_to_end(&mut chunk).map_err(io_error)?;
        if chunk.is_empty() {
            break;
        }
        sink.write(chunk).await?;
    }
    Ok(Entry {
        name,
        crc32,
        size,
        offset,
    })
}
