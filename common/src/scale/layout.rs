//! Where an export at scale keeps its working objects (`scale/<job id>/`: the item
//! list, the start record, the parts and their sidecars), and their cleanup. Below
//! both the steps of [`super`] and the job worker, which cleans up after a failed
//! export at scale without knowing its steps.

use futures::{StreamExt, stream};

use crate::{AppContext, error::Error};

/// The objects of a job at scale, in the exports bucket under `scale/<job_id>/`.
pub(crate) struct Keys(pub(crate) String);

impl Keys {
    pub(crate) fn of(job_id: &str) -> Self {
        Self(format!("scale/{job_id}/"))
    }

    pub(crate) fn items(&self) -> String {
        format!("{}items.json", self.0)
    }

    /// What the assembler checks the parts against: the manifest and the file count.
    pub(crate) fn start(&self) -> String {
        format!("{}start.json", self.0)
    }

    pub(crate) fn part(&self, index: u32) -> String {
        format!("{}part-{index:05}", self.0)
    }

    pub(crate) fn sidecar(&self, index: u32) -> String {
        format!("{}part-{index:05}.json", self.0)
    }
}

/// Deletes every object of a job at scale (`scale/<job_id>/`). Best effort: the
/// bucket's lifecycle rule removes what this cannot.
pub async fn cleanup(ctx: &AppContext, job_id: &str) {
    let bucket = &ctx.config.delivery.bucket;
    let prefix = Keys::of(job_id).0;
    let mut pages = ctx
        .aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(&prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(job_id, error = %Error::storage(e).cause_chain(), "could not list the parts of an export at scale");
                return;
            }
        };
        let keys: Vec<String> = page
            .contents()
            .iter()
            .filter_map(|o| o.key().map(String::from))
            .collect();
        delete_keys(ctx, keys).await;
    }
}

/// Deletes objects of the exports bucket, 16 at a time; failures are logged.
pub(crate) async fn delete_keys(ctx: &AppContext, keys: Vec<String>) {
    let bucket = &ctx.config.delivery.bucket;
    stream::iter(keys)
        .for_each_concurrent(16, |key| async move {
            if let Err(e) = ctx.aws.s3.delete_object().bucket(bucket).key(&key).send().await {
                tracing::error!(key, error = %Error::storage(e).cause_chain(), "could not delete a part of an export at scale");
            }
        })
        .await;
}
