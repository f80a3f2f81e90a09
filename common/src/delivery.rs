//! Delivery of an export: run it into the inline buffer (when it fits and the
//! caller takes files) or into an S3 object, and presign what was stored.

use chrono::{DateTime, Utc};

use crate::{
    AppContext,
    compile::compile,
    error::Error,
    export::{self, Delivered, S3Sink, sink::ObjectTarget},
    spec::ExportSpec,
};

/// How a synchronous export reached its caller (the `delivery` of the request's log
/// line): in the response, by a 303 to the stored file, as a link in a JSON answer,
/// or as a job the request started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Inline,
    Redirect,
    Link,
    Job,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inline => "inline",
            Self::Redirect => "redirect",
            Self::Link => "link",
            Self::Job => "job",
        }
    }
}

/// A finished export: where it is and what it holds.
#[derive(Debug)]
pub struct Finished {
    pub file_name: String,
    pub content_type: String,
    pub content_disposition: String,
    pub rows: u64,
    pub bytes: u64,
    pub location: Location,
}

#[derive(Debug)]
pub enum Location {
    Inline {
        body: Vec<u8>,
        text: bool,
    },
    Stored {
        bucket: String,
        key: String,
        url: String,
        expires_at: DateTime<Utc>,
    },
}

impl Finished {
    pub fn s3_key(&self) -> Option<&str> {
        match &self.location {
            Location::Stored { key, .. } => Some(key),
            Location::Inline { .. } => None,
        }
    }
}

/// Deletes a stored export, e.g. when it cannot be recorded. Best effort: the
/// bucket's lifecycle rule removes what this cannot.
pub async fn discard(ctx: &AppContext, key: &str) {
    let bucket = &ctx.config.delivery.bucket;
    if let Err(e) = ctx.aws.s3.delete_object().bucket(bucket).key(key).send().await {
        tracing::error!(key, error = %Error::storage(e).cause_chain(), "could not delete a discarded export");
    }
}

/// `exports/<kind>/<YYYY>/<MM>/<DD>/<uuid>/<file name>`: unguessable, sortable by date,
/// easy to expire by prefix.
fn object_key(prefix: &str, kind: &str, now: DateTime<Utc>, file_name: &str) -> String {
    format!(
        "{prefix}{kind}/{}/{}/{file_name}",
        now.format("%Y/%m/%d"),
        uuid::Uuid::new_v4()
    )
}

/// `attachment; filename="..."`. File names are built from fixed stems and dates,
/// but quotes and control characters are kept out in any case.
pub fn content_disposition(file_name: &str) -> String {
    let safe: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("attachment; filename=\"{safe}\"")
}

/// Compiles a spec and runs it into the inline buffer (when `inline` and it fits) or
/// S3, and presigns what was stored. The spec's `as_of` dates the file name and the
/// object key.
/// Where a spec's file is stored: a fresh, unguessable key.
pub fn target(ctx: &AppContext, spec: &ExportSpec) -> ObjectTarget {
    let d = &ctx.config.delivery;
    let file_name = spec.file_name();
    ObjectTarget {
        bucket: d.bucket.clone(),
        key: object_key(&d.key_prefix, spec.kind(), spec.as_of(), &file_name),
        content_type: spec.content_type().to_string(),
        content_disposition: content_disposition(&file_name),
    }
}

/// The target of an object already stored under `key` for `spec`.
pub fn stored_target(ctx: &AppContext, spec: &ExportSpec, key: &str) -> ObjectTarget {
    ObjectTarget {
        key: key.to_string(),
        ..target(ctx, spec)
    }
}

/// A fresh presigned URL of a stored object, valid for `PRESIGN_TTL_SECONDS`.
pub async fn presign(ctx: &AppContext, target: &ObjectTarget) -> Result<(String, DateTime<Utc>), Error> {
    let (url, expires) = export::sink::presign_download(&ctx.aws.s3, target, ctx.config.delivery.presign_ttl).await?;
    Ok((url, expires.into()))
}

pub async fn run(ctx: &AppContext, spec: &ExportSpec, inline: bool) -> Result<Finished, Error> {
    let d = &ctx.config.delivery;
    let file_name = spec.file_name();
    let target = target(ctx, spec);
    let pipeline = compile(spec, ctx.store.as_ref())?;
    let inline_max = inline.then_some(d.inline_max_bytes);
    let sink = S3Sink::new(ctx.aws.s3.clone(), target.clone(), inline_max, d.part_bytes);
    let (summary, delivered) = export::run(pipeline, sink).await?;
    let location = match delivered {
        Delivered::Inline(body) => Location::Inline {
            body,
            text: spec.is_text(),
        },
        Delivered::Stored { bucket, key } => {
            let (url, expires_at) = presign(ctx, &target).await?;
            Location::Stored {
                bucket,
                key,
                url,
                expires_at,
            }
        }
    };
    Ok(Finished {
        file_name,
        content_type: target.content_type,
        content_disposition: target.content_disposition,
        rows: summary.rows,
        bytes: summary.bytes,
        location,
    })
}
