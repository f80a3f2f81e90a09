//! DynamoDB's export-to-S3 format (`ExportTableToPointInTime`, `DYNAMODB_JSON`), written
//! and read. Under `s3://<bucket>/<prefix>/AWSDynamoDB/<exportId>/`:
//!
//! - `manifest-summary.json`: one JSON object ([`ManifestSummary`]);
//! - `manifest-files.json`: JSON Lines, one [`ManifestFile`] per data file;
//! - `data/<name>.json.gz`: gzip'd lines `{"Item":{"attr":{"S":"..."},...}}`.
//!
//! The writer ([`super::native`]) is for local tooling (`exportctl native-export`): it
//! scans a table in parallel segments and writes the same layout DynamoDB writes, so
//! the converter is exercised on the real format. The reader ([`read_summary`],
//! [`manifest_files`], [`data_file_lines`]) streams: a data file is downloaded,
//! gunzipped and split into lines as it is consumed, one page of items at a time. A
//! line that is not a DynamoDB JSON item fails the read, naming the file and the line;
//! nothing is ever skipped.

use std::{
    fmt,
    io::Write as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use aws_sdk_s3::{Client as S3, primitives::ByteStream};
use base64::Engine as _;
use futures::{StreamExt, TryStreamExt, stream, stream::BoxStream};
use md5::{Digest as _, Md5};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::Error;
use crate::reads::Decoding;

/// An `s3://bucket/key` address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    pub key: String,
}

/// Longest `s3://` address accepted (bucket names are at most 63 characters, keys
/// at most 1,024 bytes).
const MAX_S3_URL_CHARS: usize = 1100;

impl S3Url {
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            key: key.into(),
        }
    }

    /// `s3://bucket/key`, with a bucket name S3 allows and a non-empty key.
    pub fn parse(s: &str) -> Result<Self, String> {
        let shown = crate::values::text::sanitize(s);
        let rest = s
            .strip_prefix("s3://")
            .filter(|_| s.len() <= MAX_S3_URL_CHARS)
            .ok_or_else(|| format!("must be an s3://bucket/key address; got '{shown}'"))?;
        let (bucket, key) = rest
            .split_once('/')
            .ok_or_else(|| format!("must name a key after the bucket: '{shown}'"))?;
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(format!("names no valid bucket: '{shown}'"));
        }
        if key.is_empty() || key.chars().any(char::is_control) {
            return Err(format!("names no valid key: '{shown}'"));
        }
        Ok(Self::new(bucket, key))
    }

    /// The last segment of the key: how logs and errors name a data file.
    pub fn file_name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

impl TryFrom<String> for S3Url {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        S3Url::parse(&s)
    }
}

impl From<S3Url> for String {
    fn from(u: S3Url) -> String {
        u.to_string()
    }
}

/// `manifest-summary.json`. Unknown fields are allowed: AWS adds fields over time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSummary {
    pub version: String,
    #[serde(default)]
    pub export_arn: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
    #[serde(default)]
    pub table_arn: Option<String>,
    #[serde(default)]
    pub table_id: Option<String>,
    #[serde(default)]
    pub export_time: Option<String>,
    #[serde(default)]
    pub s3_bucket: Option<String>,
    #[serde(default)]
    pub s3_prefix: Option<String>,
    #[serde(default)]
    pub s3_sse_algorithm: Option<String>,
    #[serde(default)]
    pub s3_sse_kms_key_id: Option<String>,
    pub manifest_files_s3_key: String,
    #[serde(default)]
    pub billed_size_bytes: Option<u64>,
    #[serde(default)]
    pub item_count: Option<u64>,
    pub output_format: String,
    /// `FULL_EXPORT` or `INCREMENTAL_EXPORT` (newer manifests; absent means full).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_type: Option<String>,
}

/// One line of `manifest-files.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFile {
    pub item_count: u64,
    /// Base64 MD5 of the data file's (gzip'd) bytes.
    pub md5_checksum: String,
    #[serde(default)]
    pub etag: Option<String>,
    pub data_file_s3_key: String,
}

/// One line of a data file: `{"Item": {...}}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ItemLine {
    #[serde(rename = "Item")]
    pub(crate) item: serde_dynamo::Item,
}

fn storage_read(what: &'static str, url: &S3Url, e: impl fmt::Display) -> Error {
    Error::internal("storage error", format!("{what} {url}: {e}"))
}

/// Reads a whole small object (a manifest summary).
async fn get_small(s3: &S3, url: &S3Url, max: usize) -> Result<Vec<u8>, Error> {
    let out = s3
        .get_object()
        .bucket(&url.bucket)
        .key(&url.key)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                Error::bad_request(format!("no object at {url}"))
            } else {
                Error::storage(e)
            }
        })?;
    let mut body = out.body;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.try_next().await.map_err(|e| storage_read("reading", url, e))? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > max {
            return Err(Error::bad_request(format!("{url} is larger than {max} bytes")));
        }
    }
    Ok(bytes)
}

/// The manifest summary at `url`, checked to be a full export in DynamoDB JSON.
pub async fn read_summary(s3: &S3, url: &S3Url) -> Result<ManifestSummary, Error> {
    let bytes = get_small(s3, url, 1024 * 1024).await?;
    let summary: ManifestSummary = serde_json::from_slice(&bytes).map_err(|e| {
        Error::bad_request(format!(
            "{url} is not a DynamoDB export manifest summary ({})",
            json_problem(&e)
        ))
    })?;
    if summary.output_format != "DYNAMODB_JSON" {
        return Err(Error::bad_request(format!(
            "{url}: only DYNAMODB_JSON exports can be converted (this one is {})",
            crate::values::text::sanitize(&summary.output_format)
        )));
    }
    if summary.export_type.as_deref().is_some_and(|t| t != "FULL_EXPORT") {
        return Err(Error::bad_request(format!(
            "{url}: only full exports can be converted (an incremental export holds changes, not a table)"
        )));
    }
    Ok(summary)
}

/// What went wrong in a JSON text, without quoting it (it may hold item contents).
fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "could not be read",
        Category::Syntax => "not valid JSON",
        Category::Data => "not the expected shape",
        Category::Eof => "truncated",
    };
    format!("{what} at column {}", e.column())
}

/// The data files a summary lists, in the manifest's order, streamed line by line.
pub fn manifest_files(
    s3: &S3,
    summary: &ManifestSummary,
    summary_url: &S3Url,
) -> BoxStream<'static, Result<(S3Url, ManifestFile), Error>> {
    let bucket = summary
        .s3_bucket
        .clone()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| summary_url.bucket.clone());
    let url = S3Url::new(bucket.clone(), summary.manifest_files_s3_key.clone());
    text_lines(s3.clone(), url.clone())
        .map(move |line| {
            let (number, text) = line?;
            let file: ManifestFile = serde_json::from_slice(&text).map_err(|e| {
                Error::bad_request(format!(
                    "line {number} of {url} is not a manifest entry ({})",
                    json_problem(&e)
                ))
            })?;
            let data = S3Url::new(bucket.clone(), file.data_file_s3_key.clone());
            Ok((data, file))
        })
        .boxed()
}

/// Lines of an uncompressed text object, streamed; blank lines are skipped (a
/// manifest ends with a newline).
fn text_lines(s3: S3, url: S3Url) -> BoxStream<'static, Result<(u64, Vec<u8>), Error>> {
    let body = async move {
        let body = open(&s3, &url.bucket, &url.key)
            .await?
            .ok_or_else(|| Error::bad_request(format!("no object at {url}")))?;
        Ok::<_, Error>((body, url))
    };
    stream::once(body)
        .map_ok(|(body, url)| {
            stream::try_unfold(
                (body, Vec::<u8>::new(), 0u64, false, url),
                |(mut body, mut buf, mut n, mut done, url)| async move {
                    loop {
                        if let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = buf.drain(..=nl).take(nl).collect();
                            n += 1;
                            if line.iter().all(u8::is_ascii_whitespace) {
                                continue;
                            }
                            return Ok(Some(((n, line), (body, buf, n, done, url))));
                        }
                        if done {
                            if buf.iter().all(u8::is_ascii_whitespace) {
                                return Ok(None);
                            }
                            n += 1;
                            let line = std::mem::take(&mut buf);
                            return Ok(Some(((n, line), (body, buf, n, done, url))));
                        }
                        match body.try_next().await.map_err(|e| storage_read("reading", &url, e))? {
                            Some(chunk) => buf.extend_from_slice(&chunk),
                            None => done = true,
                        }
                    }
                },
            )
        })
        .try_flatten()
        .boxed()
}

/// One item of a data file and its line number (from 1): as `serde_dynamo`'s item, or
/// as whatever the reader's [`LineParse`] makes of it (the converter's records).
#[derive(Clone, Debug)]
pub struct Line<I = serde_dynamo::Item> {
    pub number: u64,
    pub item: I,
}

/// What was wrong with a line.
#[derive(Debug)]
pub enum LineProblem {
    /// Not `{"Item": {...}}` in DynamoDB's JSON.
    NotAnItemLine(serde_json::Error),
    /// An item that does not fit its record (`Error::MalformedItem`).
    Record(Error),
}

/// How a reader makes its lines' items from their text.
pub type LineParse<I> = Arc<dyn Fn(&[u8]) -> Result<I, LineProblem> + Send + Sync>;

/// A line as `serde_dynamo`'s item.
fn item_of_line(text: &[u8]) -> Result<serde_dynamo::Item, LineProblem> {
    serde_json::from_slice::<ItemLine>(text)
        .map(|line| line.item)
        .map_err(LineProblem::NotAnItemLine)
}

/// A line as a record of `T`, `None` when written after `how.as_of`: read straight into
/// the record ([`crate::reads::direct`]), else the long way (`serde_dynamo`, the
/// reference, whose answer this always is).
pub fn record_of_line<T: DeserializeOwned>(text: &[u8], how: &Decoding) -> Result<Option<T>, LineProblem> {
    if let Ok(read) = crate::reads::direct::export_line::<T>(text, how) {
        return Ok(read);
    }
    let item = item_of_line(text)?;
    if !crate::reads::written_by(&item, &how.as_of) {
        return Ok(None);
    }
    crate::reads::decode(item, how.key_attrs)
        .map(Some)
        .map_err(LineProblem::Record)
}

/// What reading a data file saw, shared with whoever consumes its lines: the
/// converter records it (the assembler checks it against the manifest).
#[derive(Debug, Default)]
pub struct ReadStats {
    pub lines: AtomicU64,
    pub compressed_bytes: AtomicU64,
    md5: std::sync::Mutex<Option<String>>,
}

impl ReadStats {
    /// Base64 MD5 of the gzip'd bytes, once the whole file was read.
    pub fn md5(&self) -> Option<String> {
        self.md5
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_md5(&self, v: String) {
        *self.md5.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(v);
    }
}

/// Streaming state of one data file: compressed chunks in, lines out.
struct LineReader<I> {
    body: Chunks,
    gunzip: flate2::write::MultiGzDecoder<Vec<u8>>,
    /// Decompressed bytes not yet split into lines; `pos` is where the next line starts.
    pending: Vec<u8>,
    pos: usize,
    line: u64,
    md5: Md5,
    compressed: u64,
    eof: bool,
    name: String,
    stats: Arc<ReadStats>,
    parse: LineParse<I>,
}

impl<I> LineReader<I> {
    fn corrupt(&self, e: impl fmt::Display) -> Error {
        Error::internal(
            "export error",
            format!(
                "data file {} is not a valid gzip stream (after {} compressed bytes): {e}",
                self.name, self.compressed
            ),
        )
    }

    /// Pulls compressed bytes until a whole line is pending or the file ended.
    async fn fill(&mut self) -> Result<(), Error> {
        while !self.eof && !self.pending[self.pos..].contains(&b'\n') {
            if self.pos > 0 && self.pos * 2 >= self.pending.len() {
                self.pending.drain(..self.pos);
                self.pos = 0;
            }
            match self.body.try_next().await {
                Ok(Some(chunk)) => {
                    self.compressed += chunk.len() as u64;
                    self.md5.update(&chunk);
                    if let Err(e) = self.gunzip.write_all(&chunk) {
                        return Err(self.corrupt(e));
                    }
                }
                Ok(None) => {
                    if let Err(e) = self.gunzip.try_finish() {
                        return Err(self.corrupt(e));
                    }
                    self.eof = true;
                    let digest = std::mem::take(&mut self.md5).finalize();
                    self.stats
                        .set_md5(base64::engine::general_purpose::STANDARD.encode(digest));
                    self.stats.compressed_bytes.store(self.compressed, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
            let out = self.gunzip.get_mut();
            self.pending.extend_from_slice(out);
            out.clear();
        }
        Ok(())
    }

    /// The next line's bytes (without its newline), or `None` at the end.
    fn take_line(&mut self) -> Option<(usize, usize)> {
        let rest = &self.pending[self.pos..];
        let (len, skip) = match rest.iter().position(|b| *b == b'\n') {
            Some(nl) => (nl, nl + 1),
            // The last line may lack its newline; an empty tail is no line.
            None if self.eof && !rest.is_empty() => (rest.len(), rest.len()),
            None => return None,
        };
        let start = self.pos;
        self.pos += skip;
        Some((start, start + len))
    }

    fn parse(&mut self, range: (usize, usize)) -> Result<Line<I>, Error> {
        self.line += 1;
        self.stats.lines.store(self.line, Ordering::Relaxed);
        let mut text = &self.pending[range.0..range.1];
        if text.last() == Some(&b'\r') {
            text = &text[..text.len() - 1];
        }
        let item = (self.parse)(text).map_err(|problem| match problem {
            LineProblem::NotAnItemLine(e) => Error::MalformedItem {
                key: format!("at line {} of data file {}", self.line, self.name),
                reason: format!("not a DynamoDB JSON item line: {}", json_problem(&e)),
            },
            LineProblem::Record(Error::MalformedItem { key, reason }) => Error::MalformedItem {
                key: format!("{key} (line {} of data file {})", self.line, self.name),
                reason,
            },
            LineProblem::Record(other) => other,
        })?;
        Ok(Line {
            number: self.line,
            item,
        })
    }

    async fn page(&mut self, max: usize) -> Result<Vec<Line<I>>, Error> {
        let mut page = Vec::with_capacity(max.min(4096));
        while page.len() < max {
            self.fill().await?;
            let Some(range) = self.take_line() else { break };
            page.push(self.parse(range)?);
        }
        Ok(page)
    }
}

/// The compressed bytes of a data file, chunk by chunk as they arrive.
pub type Chunks = BoxStream<'static, Result<Vec<u8>, Error>>;

/// An S3 object's body as [`Chunks`].
pub fn body_chunks(body: ByteStream, name: String) -> Chunks {
    stream::try_unfold((body, name), |(mut body, name)| async move {
        match body.try_next().await {
            Ok(Some(chunk)) => Ok(Some((chunk.to_vec(), (body, name)))),
            Ok(None) => Ok(None),
            Err(e) => Err(Error::internal(
                "storage error",
                format!("reading data file {name}: {e}"),
            )),
        }
    })
    .boxed()
}

/// Pages of at most `page_items` items of one data file, in file order: the body is
/// downloaded, gunzipped and split as the pages are pulled. `name` names the file in
/// errors; `stats` learns the lines read and, at the end, the file's MD5.
pub fn lines_of_body(
    body: Chunks,
    name: String,
    page_items: usize,
    stats: Arc<ReadStats>,
) -> BoxStream<'static, Result<Vec<Line>, Error>> {
    parsed_lines_of_body(body, name, page_items, stats, Arc::new(item_of_line))
}

/// [`lines_of_body`], each line's item made by `parse`.
pub fn parsed_lines_of_body<I: Send + 'static>(
    body: Chunks,
    name: String,
    page_items: usize,
    stats: Arc<ReadStats>,
    parse: LineParse<I>,
) -> BoxStream<'static, Result<Vec<Line<I>>, Error>> {
    let reader = LineReader {
        body,
        gunzip: flate2::write::MultiGzDecoder::new(Vec::new()),
        pending: Vec::new(),
        pos: 0,
        line: 0,
        md5: Md5::new(),
        compressed: 0,
        eof: false,
        name,
        stats,
        parse,
    };
    let page_items = page_items.max(1);
    stream::try_unfold(reader, move |mut reader| async move {
        let page = reader.page(page_items).await?;
        Ok(if page.is_empty() { None } else { Some((page, reader)) })
    })
    .boxed()
}

/// Pages of the items of the data file at `url`, each made by `parse` (see
/// [`lines_of_body`]).
pub fn data_file_lines<I: Send + 'static>(
    s3: S3,
    url: S3Url,
    page_items: usize,
    stats: Arc<ReadStats>,
    parse: LineParse<I>,
) -> BoxStream<'static, Result<Vec<Line<I>>, Error>> {
    let opened = async move {
        let body = open(&s3, &url.bucket, &url.key)
            .await?
            .ok_or_else(|| Error::bad_request(format!("no data file at {url}")))?;
        let name = url.to_string();
        Ok::<_, Error>(parsed_lines_of_body(
            body_chunks(body, name.clone()),
            name,
            page_items,
            stats,
            parse,
        ))
    };
    stream::once(opened).try_flatten().boxed()
}

/// An object's body, streamed; `None` when there is no such object.
pub async fn open(s3: &S3, bucket: &str, key: &str) -> Result<Option<ByteStream>, Error> {
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => Ok(Some(out.body)),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
        Err(e) => Err(Error::storage(e)),
    }
}

/// A small object (a manifest, a sidecar, a start record), read whole; `None` when
/// there is no such object.
pub async fn get(s3: &S3, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, Error> {
    let Some(body) = open(s3, bucket, key).await? else {
        return Ok(None);
    };
    let bytes = body.collect().await.map_err(|e| Error::internal("storage error", e))?;
    Ok(Some(bytes.into_bytes().to_vec()))
}

/// A small object, written whole.
pub(crate) async fn put(s3: &S3, bucket: &str, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), Error> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(Error::storage)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz(text: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    /// A body delivered in small chunks, as a network read would.
    fn chunked(bytes: Vec<u8>, size: usize) -> Chunks {
        let chunks: Vec<Result<Vec<u8>, Error>> = bytes.chunks(size).map(|c| Ok(c.to_vec())).collect();
        stream::iter(chunks).boxed()
    }

    async fn read_all(bytes: Vec<u8>, chunk: usize, page: usize) -> (Result<Vec<Vec<Line>>, Error>, Arc<ReadStats>) {
        let stats = Arc::new(ReadStats::default());
        let pages = lines_of_body(chunked(bytes, chunk), "data/x.json.gz".into(), page, Arc::clone(&stats))
            .try_collect()
            .await;
        (pages, stats)
    }

    #[tokio::test]
    async fn lines_stream_into_pages_of_items_whatever_the_chunking() {
        let mut text = Vec::new();
        for i in 0..25 {
            let big = "é,\"\n".repeat(i * 40);
            text.extend(
                format!(
                    r#"{{"Item":{{"id":{{"S":"i-{i}"}},"n":{{"N":"{i}"}},"t":{{"S":{}}}}}}}"#,
                    serde_json::to_string(&big).unwrap()
                )
                .bytes(),
            );
            text.push(b'\n');
        }
        let file = gz(&text);
        for chunk in [1, 7, 100, 1 << 20] {
            let (pages, stats) = read_all(file.clone(), chunk, 4).await;
            let pages = pages.unwrap();
            assert_eq!(pages.len(), 7, "25 items in pages of 4");
            let lines: Vec<Line> = pages.into_iter().flatten().collect();
            assert_eq!(lines.len(), 25);
            assert_eq!(lines[24].number, 25);
            assert_eq!(
                lines[3].item.get("n"),
                Some(&serde_dynamo::AttributeValue::N("3".into()))
            );
            assert_eq!(stats.lines.load(Ordering::Relaxed), 25);
            let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&file));
            assert_eq!(stats.md5(), Some(md5));
        }
    }

    #[test]
    fn a_line_is_read_straight_into_its_record_as_the_long_way_reads_it() {
        use crate::{load::Record, model::ChatMessage};
        let how = Decoding {
            as_of: crate::timefmt::parse_rfc3339("2024-01-15T10:30:00.000Z").unwrap(),
            sort_attr: None,
            key_attrs: &["client_id", "ts_id"],
        };
        let line_of = |record: &Record, written_at: &str| {
            let mut item = record.to_item().unwrap();
            item.insert(
                "written_at".into(),
                aws_sdk_dynamodb::types::AttributeValue::S(written_at.into()),
            );
            serde_json::to_vec(&ItemLine {
                item: serde_dynamo::Item::from(item),
            })
            .unwrap()
        };
        for record in crate::synth::chat_messages(9, 50) {
            let Record::ChatMessage(want) = &record else {
                unreachable!()
            };
            let text = line_of(&record, "2024-01-15T10:30:00.000Z");
            let direct = crate::reads::direct::export_line::<ChatMessage>(&text, &how).unwrap();
            assert_eq!(direct.as_ref(), Some(want));
            assert_eq!(record_of_line::<ChatMessage>(&text, &how).unwrap().as_ref(), Some(want));
            let late = line_of(&record, "2024-01-15T10:30:00.001Z");
            assert!(record_of_line::<ChatMessage>(&late, &how).unwrap().is_none());
        }
        // Not an item line, and an item that does not fit: the long way's errors.
        let problem = |text: &[u8]| record_of_line::<ChatMessage>(text, &how).unwrap_err();
        assert!(matches!(problem(b"{\"Keys\":{}}"), LineProblem::NotAnItemLine(_)));
        assert!(matches!(
            problem(b"{\"Item\":{},\"More\":1}"),
            LineProblem::NotAnItemLine(_)
        ));
        let misfit = br#"{"Item":{"client_id":{"S":"c"},"ts_id":{"S":"t"},"id":{"N":"1"}}}"#;
        match problem(misfit) {
            LineProblem::Record(Error::MalformedItem { key, .. }) => assert_eq!(key, "client_id=c,ts_id=t"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_malformed_line_fails_naming_the_file_and_line() {
        let text = b"{\"Item\":{\"a\":{\"S\":\"x\"}}}\n{\"Item\":{\"a\":{\"S\":\"secret\"}}\n{\"Item\":{}}\n";
        let (result, _) = read_all(gz(text), 5, 10).await;
        let e = result.unwrap_err().to_string();
        assert!(e.contains("line 2 of data file data/x.json.gz"), "{e}");
        assert!(!e.contains("secret"), "no contents in errors: {e}");
        for bad in [&b"{\"Keys\":{}}\n"[..], b"\n", b"{\"Item\":{\"a\":{\"Q\":1}}}\n"] {
            let (result, _) = read_all(gz(bad), 3, 10).await;
            assert!(result.unwrap_err().to_string().contains("line 1 of"), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_corrupt_or_truncated_gzip_fails() {
        let mut file = gz(b"{\"Item\":{\"a\":{\"S\":\"x\"}}}\n".repeat(200).as_slice());
        let truncated = file[..file.len() - 12].to_vec();
        let (result, _) = read_all(truncated, 64, 10).await;
        assert!(result.unwrap_err().cause_chain().contains("not a valid gzip stream"));
        let n = file.len();
        file[n / 2] ^= 0x55;
        let (result, _) = read_all(file, 64, 1000).await;
        assert!(result.is_err());
        let (result, _) = read_all(b"plain text, not gzip\n".to_vec(), 64, 10).await;
        assert!(result.is_err());
    }

    #[test]
    fn s3_urls_parse_strictly() {
        let u = S3Url::parse("s3://my-bucket/a/b/manifest-summary.json").unwrap();
        assert_eq!(
            (u.bucket.as_str(), u.key.as_str()),
            ("my-bucket", "a/b/manifest-summary.json")
        );
        assert_eq!(u.to_string(), "s3://my-bucket/a/b/manifest-summary.json");
        assert_eq!(u.file_name(), "manifest-summary.json");
        for bad in [
            "http://b/k",
            "s3://bucket",
            "s3://bucket/",
            "s3://B_ad/k",
            "s3://ab/k",
            "s3://bucket/a\nb",
        ] {
            assert!(S3Url::parse(bad).is_err(), "{bad}");
        }
    }
}
