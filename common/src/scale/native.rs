//! The writer of DynamoDB's export format ([`super::format`]), for local tooling only
//! (`exportctl native-export`): it scans a table in parallel segments and writes the
//! layout `ExportTableToPointInTime` writes in AWS, so that the converter is
//! exercised on the real format. Nothing on a request path uses it.

use std::io::Write as _;

use aws_sdk_s3::Client as S3;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use md5::{Digest as _, Md5};
use serde::Serialize;

use super::format::{ItemLine, ManifestFile, ManifestSummary, S3Url, put};
use crate::{
    error::Error,
    export::{ByteSink, S3Sink, sink::ObjectTarget},
    progress::Progress,
    reads::Item,
};

/// What [`write_export`] wrote.
#[derive(Clone, Debug, Serialize)]
pub struct WrittenExport {
    /// `s3://.../manifest-summary.json`: what `exportctl convert --manifest` takes.
    pub manifest: String,
    pub export_id: String,
    pub items: u64,
    pub files: usize,
}

/// One data file being written: gzip'd lines streamed into a multipart upload.
struct DataFileWriter {
    sink: S3Sink,
    gzip: flate2::write::GzEncoder<Vec<u8>>,
    md5: Md5,
    items: u64,
    key: String,
}

impl DataFileWriter {
    fn new(s3: &S3, bucket: &str, key: String, part_bytes: usize) -> Self {
        let target = ObjectTarget {
            bucket: bucket.to_string(),
            key: key.clone(),
            content_type: "application/gzip".into(),
            content_disposition: "attachment".into(),
        };
        Self {
            sink: S3Sink::new(s3.clone(), target, None, part_bytes),
            gzip: flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()),
            md5: Md5::new(),
            items: 0,
            key,
        }
    }

    fn push(&mut self, item: Item) -> Result<(), Error> {
        let line = ItemLine {
            item: serde_dynamo::Item::from(item),
        };
        let encode = |e: std::io::Error| Error::internal("encoding error", e);
        serde_json::to_writer(&mut self.gzip, &line).map_err(|e| Error::internal("encoding error", e))?;
        self.gzip.write_all(b"\n").map_err(encode)?;
        self.items += 1;
        Ok(())
    }

    /// Hands what is compressed so far to the upload.
    async fn drain(&mut self) -> Result<(), Error> {
        let out = std::mem::take(self.gzip.get_mut());
        if !out.is_empty() {
            self.md5.update(&out);
            self.sink.write(out).await?;
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<ManifestFile, Error> {
        self.gzip
            .try_finish()
            .map_err(|e| Error::internal("encoding error", e))?;
        self.drain().await?;
        self.sink.finish().await?;
        Ok(ManifestFile {
            item_count: self.items,
            md5_checksum: base64::engine::general_purpose::STANDARD.encode(self.md5.finalize()),
            etag: None,
            data_file_s3_key: self.key,
        })
    }
}

/// Scans one segment of a table into data files of at most `items_per_file` items.
async fn write_segment(
    ddb: aws_sdk_dynamodb::Client,
    s3: S3,
    table: String,
    (segment, total): (i32, i32),
    (bucket, data_prefix): (String, String),
    (items_per_file, part_bytes): (u64, usize),
    progress: &dyn Progress,
) -> Result<Vec<ManifestFile>, Error> {
    let mut files = Vec::new();
    let mut current: Option<DataFileWriter> = None;
    let mut pages = ddb
        .scan()
        .table_name(&table)
        .segment(segment)
        .total_segments(total)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(Error::database)?;
        let items = page.items.unwrap_or_default();
        let n = items.len() as u64;
        for item in items {
            let writer = match current.as_mut() {
                Some(w) => w,
                None => current.insert(DataFileWriter::new(
                    &s3,
                    &bucket,
                    format!("{data_prefix}{}.json.gz", uuid::Uuid::new_v4().simple()),
                    part_bytes,
                )),
            };
            writer.push(item)?;
            if writer.items >= items_per_file
                && let Some(done) = current.take()
            {
                files.push(done.finish().await?);
            }
        }
        if let Some(w) = current.as_mut() {
            w.drain().await?;
        }
        progress.advance(segment.unsigned_abs(), n);
    }
    if let Some(done) = current.take() {
        files.push(done.finish().await?);
    }
    progress.done(segment.unsigned_abs());
    Ok(files)
}

/// `01700000000000-1a2b3c4d`: like DynamoDB's export ids, time-ordered.
fn export_id(now: DateTime<Utc>) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{:014}-{}", now.timestamp_millis(), &random[..8])
}

/// Writes a table in DynamoDB's export format under `s3://bucket/prefix/AWSDynamoDB/<id>/`:
/// `segments` parallel Scan segments, data files of at most `items_per_file` items
/// (each streamed into its own upload, so memory holds one page per segment), then
/// `manifest-files.json` and `manifest-summary.json`. `progress` is told each
/// segment's items, page by page.
#[allow(clippy::too_many_arguments)]
pub async fn write_export(
    ddb: &aws_sdk_dynamodb::Client,
    s3: &S3,
    table: &str,
    bucket: &str,
    prefix: &str,
    items_per_file: u64,
    segments: u32,
    part_bytes: usize,
    now: DateTime<Utc>,
    progress: &dyn Progress,
) -> Result<WrittenExport, Error> {
    if items_per_file == 0 {
        return Err(Error::bad_request("items per file must be at least 1"));
    }
    let segments = i32::try_from(segments.clamp(1, 64)).unwrap_or(1);
    let id = export_id(now);
    let prefix = prefix.trim_matches('/');
    let base = if prefix.is_empty() {
        format!("AWSDynamoDB/{id}/")
    } else {
        format!("{prefix}/AWSDynamoDB/{id}/")
    };
    let data_prefix = format!("{base}data/");
    let started = crate::timefmt::format(&now);
    let per_segment = futures::future::try_join_all((0..segments).map(|segment| {
        write_segment(
            ddb.clone(),
            s3.clone(),
            table.to_string(),
            (segment, segments),
            (bucket.to_string(), data_prefix.clone()),
            (items_per_file, part_bytes),
            progress,
        )
    }))
    .await?;
    let files: Vec<ManifestFile> = per_segment.into_iter().flatten().collect();
    let items: u64 = files.iter().map(|f| f.item_count).sum();
    let mut lines = Vec::new();
    for f in &files {
        serde_json::to_writer(&mut lines, f).map_err(|e| Error::internal("encoding error", e))?;
        lines.push(b'\n');
    }
    let files_key = format!("{base}manifest-files.json");
    put(s3, bucket, &files_key, lines, "application/json").await?;
    let table_arn = format!("arn:aws:dynamodb:local:000000000000:table/{table}");
    let summary = ManifestSummary {
        version: "2020-06-30".into(),
        export_arn: Some(format!("{table_arn}/export/{id}")),
        start_time: Some(started.clone()),
        end_time: Some(crate::timefmt::format(&Utc::now())),
        table_arn: Some(table_arn),
        table_id: Some(table.to_string()),
        export_time: Some(started),
        s3_bucket: Some(bucket.to_string()),
        s3_prefix: (!prefix.is_empty()).then(|| prefix.to_string()),
        s3_sse_algorithm: None,
        s3_sse_kms_key_id: None,
        manifest_files_s3_key: files_key,
        billed_size_bytes: Some(0),
        item_count: Some(items),
        output_format: "DYNAMODB_JSON".into(),
        export_type: None,
    };
    let summary_key = format!("{base}manifest-summary.json");
    let body = serde_json::to_vec(&summary).map_err(|e| Error::internal("encoding error", e))?;
    put(s3, bucket, &summary_key, body, "application/json").await?;
    Ok(WrittenExport {
        manifest: S3Url::new(bucket, summary_key).to_string(),
        export_id: id,
        items,
        files: files.len(),
    })
}
