//! Where encoded bytes go: an in-memory buffer while the result is small, an S3
//! multipart upload (started lazily) once it is not. Parts upload while the next one
//! is being encoded: at most [`PARTS_IN_FLIGHT`] at once, so memory stays bounded
//! (that many parts plus the one being filled).

use std::time::{Duration, SystemTime};

use aws_sdk_s3::{
    Client,
    presigning::PresigningConfig,
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart},
};

use crate::error::Error;

/// Consumes encoded bytes.
pub trait ByteSink: Send {
    type Output: Send;
    fn write(&mut self, chunk: Vec<u8>) -> impl Future<Output = Result<(), Error>> + Send;
    fn bytes_written(&self) -> u64;
    fn finish(self) -> impl Future<Output = Result<Self::Output, Error>> + Send;
    /// Discards everything written; must leave nothing downloadable behind.
    fn abort(self) -> impl Future<Output = ()> + Send;
}

/// Where a finished export ended up.
#[derive(Debug)]
pub enum Delivered {
    Inline(Vec<u8>),
    Stored { bucket: String, key: String },
}

/// Object metadata of a stored export.
#[derive(Clone, Debug)]
pub struct ObjectTarget {
    pub bucket: String,
    pub key: String,
    pub content_type: String,
    pub content_disposition: String,
}

/// Parts uploading at once. The encoder fills the next part meanwhile; waiting for
/// the oldest upload when this many are in flight bounds memory to
/// `(PARTS_IN_FLIGHT + 1) * UPLOAD_PART_BYTES`.
pub const PARTS_IN_FLIGHT: usize = 2;

/// Starts a multipart upload into `target`; returns its upload id.
pub(crate) async fn start_multipart(s3: &Client, target: &ObjectTarget) -> Result<String, Error> {
    let out = s3
        .create_multipart_upload()
        .bucket(&target.bucket)
        .key(&target.key)
        .content_type(&target.content_type)
        .content_disposition(&target.content_disposition)
        .send()
        .await
        .map_err(Error::storage)?;
    out.upload_id
        .ok_or_else(|| Error::internal("storage error", "CreateMultipartUpload returned no upload id"))
}

/// Completes a multipart upload with its parts, in part order: the object appears.
pub(crate) async fn complete_multipart(
    s3: &Client,
    target: &ObjectTarget,
    upload_id: &str,
    parts: Vec<CompletedPart>,
) -> Result<(), Error> {
    s3.complete_multipart_upload()
        .bucket(&target.bucket)
        .key(&target.key)
        .upload_id(upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .map_err(Error::storage)?;
    Ok(())
}

/// Aborts a multipart upload. An incomplete upload is never a downloadable object, and
/// the bucket's lifecycle rule removes its parts: a failure is logged for an operator.
pub(crate) async fn abort_multipart(s3: &Client, target: &ObjectTarget, upload_id: &str) {
    let result = s3
        .abort_multipart_upload()
        .bucket(&target.bucket)
        .key(&target.key)
        .upload_id(upload_id)
        .send()
        .await;
    match result {
        Ok(_) => tracing::info!(key = %target.key, "aborted multipart upload"),
        Err(e) => {
            tracing::error!(key = %target.key, error = %Error::storage(e).cause_chain(), "could not abort multipart upload")
        }
    }
}

struct Upload {
    id: String,
    next_number: i32,
    in_flight: tokio::task::JoinSet<Result<CompletedPart, Error>>,
    parts: Vec<CompletedPart>,
    /// Uploaded parts are freed on other threads: their memory goes back from here.
    release: crate::alloc::Releaser,
}

impl Upload {
    /// Waits for one part in flight; its failure is the upload's.
    async fn settle_one(&mut self) -> Result<(), Error> {
        match self.in_flight.join_next().await {
            None => Ok(()),
            Some(Ok(part)) => {
                self.parts.push(part?);
                self.release.tick();
                Ok(())
            }
            Some(Err(e)) => Err(Error::internal("storage error", format!("part upload stopped: {e}"))),
        }
    }

    /// Every part, uploaded, in order.
    async fn settle_all(&mut self) -> Result<Vec<CompletedPart>, Error> {
        while !self.in_flight.is_empty() {
            self.settle_one().await?;
        }
        let mut parts = std::mem::take(&mut self.parts);
        parts.sort_by_key(|p| p.part_number());
        Ok(parts)
    }
}

pub struct S3Sink {
    s3: Client,
    target: ObjectTarget,
    /// `None`: always store in S3 (the caller asked for a link).
    inline_max: Option<usize>,
    part_bytes: usize,
    buf: Vec<u8>,
    upload: Option<Upload>,
    written: u64,
}

impl S3Sink {
    pub fn new(s3: Client, target: ObjectTarget, inline_max: Option<usize>, part_bytes: usize) -> Self {
        Self {
            s3,
            target,
            inline_max,
            part_bytes,
            buf: Vec::new(),
            upload: None,
            written: 0,
        }
    }

    fn may_stay_inline(&self) -> bool {
        self.inline_max.is_some_and(|max| self.written <= max as u64)
    }

    async fn start_upload(&mut self) -> Result<(), Error> {
        let id = start_multipart(&self.s3, &self.target).await?;
        self.upload = Some(Upload {
            id,
            next_number: 1,
            in_flight: tokio::task::JoinSet::new(),
            release: crate::alloc::Releaser::default(),
            parts: Vec::new(),
        });
        Ok(())
    }

    /// Starts a part's upload, after waiting for room among the parts in flight.
    async fn upload_part(&mut self, body: Vec<u8>) -> Result<(), Error> {
        let upload = self
            .upload
            .as_mut()
            .ok_or_else(|| Error::internal("storage error", "no multipart upload started"))?;
        while upload.in_flight.len() >= PARTS_IN_FLIGHT {
            upload.settle_one().await?;
        }
        let number = upload.next_number;
        upload.next_number += 1;
        let request = self
            .s3
            .upload_part()
            .bucket(&self.target.bucket)
            .key(&self.target.key)
            .upload_id(&upload.id)
            .part_number(number)
            .body(ByteStream::from(body));
        upload.in_flight.spawn(async move {
            // Not a SHA-256 of every byte uploaded (3.6% of an export's CPU end to
            // end): the part keeps the SDK's CRC32 checksum, which S3 verifies, and
            // travels over TLS.
            let out = request
                .customize()
                .disable_payload_signing()
                .send()
                .await
                .map_err(Error::storage)?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag)
                .build())
        });
        Ok(())
    }
}

impl ByteSink for S3Sink {
    type Output = Delivered;

    async fn write(&mut self, chunk: Vec<u8>) -> Result<(), Error> {
        self.written += chunk.len() as u64;
        if self.buf.is_empty() {
            self.buf = chunk;
        } else {
            if self.buf.capacity() < self.buf.len() + chunk.len() {
                // One allocation of a part's size rather than doubling past it: a part
                // grown by doubling held up to twice its size while it uploaded.
                let want = (self.buf.len() + chunk.len()).max(self.part_bytes + chunk.len());
                self.buf.reserve_exact(want - self.buf.len());
            }
            self.buf.extend_from_slice(&chunk);
        }
        if self.may_stay_inline() {
            return Ok(());
        }
        while self.buf.len() >= self.part_bytes {
            if self.upload.is_none() {
                self.start_upload().await?;
            }
            let rest = self.buf.split_off(self.part_bytes);
            let part = std::mem::replace(&mut self.buf, rest);
            self.upload_part(part).await?;
        }
        Ok(())
    }

    fn bytes_written(&self) -> u64 {
        self.written
    }

    async fn finish(mut self) -> Result<Delivered, Error> {
        let bucket = self.target.bucket.clone();
        let key = self.target.key.clone();
        if self.upload.is_none() {
            if self.may_stay_inline() {
                return Ok(Delivered::Inline(std::mem::take(&mut self.buf)));
            }
            let body = std::mem::take(&mut self.buf);
            self.s3
                .put_object()
                .bucket(&bucket)
                .key(&key)
                .content_type(&self.target.content_type)
                .content_disposition(&self.target.content_disposition)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(Error::storage)?;
            return Ok(Delivered::Stored { bucket, key });
        }
        let completed = async {
            if !self.buf.is_empty() {
                let last = std::mem::take(&mut self.buf);
                self.upload_part(last).await?;
            }
            let upload = self
                .upload
                .as_mut()
                .ok_or_else(|| Error::internal("storage error", "no multipart upload started"))?;
            let parts = upload.settle_all().await?;
            complete_multipart(&self.s3, &self.target, &upload.id, parts).await
        }
        .await;
        match completed {
            Ok(()) => Ok(Delivered::Stored { bucket, key }),
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    async fn abort(self) {
        let Some(mut upload) = self.upload else { return };
        // Parts still uploading would land after the abort and keep their storage.
        upload.in_flight.abort_all();
        while upload.in_flight.join_next().await.is_some() {}
        abort_multipart(&self.s3, &self.target, &upload.id).await;
    }
}

/// A presigned GET whose response carries the export's Content-Disposition and type,
/// so a browser starts the download by itself.
pub async fn presign_download(
    s3: &Client,
    target: &ObjectTarget,
    ttl: Duration,
) -> Result<(String, SystemTime), Error> {
    let config = PresigningConfig::builder()
        .expires_in(ttl)
        .build()
        .map_err(|e| Error::internal("storage error", e))?;
    let start = SystemTime::now();
    let req = s3
        .get_object()
        .bucket(&target.bucket)
        .key(&target.key)
        .response_content_disposition(&target.content_disposition)
        .response_content_type(&target.content_type)
        .presigned(config)
        .await
        .map_err(Error::storage)?;
    Ok((req.uri().to_string(), start + ttl))
}

/// A sink that only counts bytes: for benchmarks of the encoders.
#[derive(Default)]
pub struct CountingSink {
    written: u64,
}

impl ByteSink for CountingSink {
    type Output = u64;

    async fn write(&mut self, chunk: Vec<u8>) -> Result<(), Error> {
        self.written += chunk.len() as u64;
        Ok(())
    }

    fn bytes_written(&self) -> u64 {
        self.written
    }

    async fn finish(self) -> Result<u64, Error> {
        Ok(self.written)
    }

    async fn abort(self) {}
}
