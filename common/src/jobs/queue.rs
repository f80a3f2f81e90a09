//! The jobs queue: a new job's id is sent to SQS; the worker Lambda consumes it
//! (event source mapping, batch size 1), and locally [`poll`] does the same against
//! the emulator.

use std::time::Duration;

use super::{JobMessage, worker};
use crate::{AppContext, error::Error};

pub async fn enqueue(ctx: &AppContext, job_id: &str) -> Result<(), Error> {
    let body = serde_json::to_string(&JobMessage {
        job_id: job_id.to_string(),
    })
    .map_err(|e| Error::internal("queue error", e))?;
    ctx.aws
        .sqs
        .send_message()
        .queue_url(&ctx.config.jobs.queue_url)
        .message_body(body)
        .send()
        .await
        .map_err(Error::queue)?;
    Ok(())
}

/// What to do with a received message.
#[derive(Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Done (or nothing to do): delete the message.
    Delete,
    /// Could not be handled now (a dependency failed): let SQS deliver it again.
    Retry,
}

/// Handles one message body: the worker Lambda and [`poll`] share it.
pub async fn handle_message(ctx: &AppContext, body: &str) -> Disposition {
    let message: JobMessage = match serde_json::from_str(body) {
        Ok(m) => m,
        Err(e) => {
            // Retrying cannot fix it: drop it (after logging what it was not).
            tracing::error!(error = %e, "unreadable job message dropped");
            return Disposition::Delete;
        }
    };
    match worker::process(ctx, &message.job_id).await {
        Ok(worker::Delivery::Done) => Disposition::Delete,
        Ok(worker::Delivery::Busy) => Disposition::Retry,
        Err(e) => {
            tracing::error!(job_id = %crate::http::sanitize(&message.job_id), error = %e.cause_chain(), "job not handled; it will be delivered again");
            Disposition::Retry
        }
    }
}

/// Receives and handles messages until the process ends (`exportctl serve` and
/// `exportctl worker`): the local stand-in for the event source mapping.
pub async fn poll(ctx: AppContext) {
    let url = ctx.config.jobs.queue_url.clone();
    loop {
        let received = ctx
            .aws
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(1)
            .wait_time_seconds(1)
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %Error::queue(e).cause_chain(), "could not receive from the jobs queue");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        if messages.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for m in messages {
            let disposition = handle_message(&ctx, m.body().unwrap_or_default()).await;
            if disposition == Disposition::Delete
                && let Some(handle) = m.receipt_handle()
                && let Err(e) = ctx
                    .aws
                    .sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(handle)
                    .send()
                    .await
            {
                tracing::warn!(error = %Error::queue(e).cause_chain(), "could not delete a handled job message");
            }
        }
    }
}
