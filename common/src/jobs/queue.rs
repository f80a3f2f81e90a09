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
    /// Could not be handled now (a dependency failed, or another worker holds the
    /// job): let SQS deliver it again after the visibility timeout.
    Retry,
    /// Not handled here (this worker is stopping): make it visible again at once.
    Release,
}

impl Disposition {
    pub fn as_str(&self) -> &'static str {
        match self {
            Disposition::Delete => "delete",
            Disposition::Retry => "retry",
            Disposition::Release => "release",
        }
    }
}

/// Handles one message body: the worker Lambda and [`poll`] share it.
pub async fn handle_message(ctx: &AppContext, body: &str) -> Disposition {
    handle_message_until(ctx, body, std::future::pending()).await
}

/// [`handle_message`], giving the job back if `interrupt` completes before it is
/// done ([`worker::process_until`]).
pub async fn handle_message_until(ctx: &AppContext, body: &str, interrupt: impl Future<Output = ()>) -> Disposition {
    let message: JobMessage = match serde_json::from_str(body) {
        Ok(m) => m,
        Err(e) => {
            // Retrying cannot fix it: drop it (after logging what it was not).
            tracing::error!(error = %e, "unreadable job message dropped");
            return Disposition::Delete;
        }
    };
    let job_id = crate::values::text::sanitize(&message.job_id);
    let disposition = match worker::process_until(ctx, &message.job_id, interrupt).await {
        Ok(worker::Delivery::Done) => Disposition::Delete,
        Ok(worker::Delivery::Busy) => Disposition::Retry,
        Ok(worker::Delivery::Released) => Disposition::Release,
        Err(e) => {
            tracing::error!(%job_id, error = %e.cause_chain(), "job not handled; it will be delivered again");
            Disposition::Retry
        }
    };
    tracing::debug!(%job_id, disposition = disposition.as_str(), "job message handled");
    disposition
}

/// How long a job still running when its process is asked to stop may go on before
/// it is interrupted and given back to the queue.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Receives and handles messages until `stop` turns true (`exportctl serve` and
/// `exportctl worker`): the local stand-in for the event source mapping.
///
/// A receive in flight is never abandoned: a long poll whose connection is dropped
/// may still be handed the next message by the queue, which then stays invisible for
/// the whole visibility timeout (the stall of issue 22). So a stop waits for the
/// receive to answer, gives back what it received at once (visibility 0), lets a job
/// in progress finish for [`STOP_GRACE`], then interrupts it and gives it back.
pub async fn poll(ctx: AppContext, stop: tokio::sync::watch::Receiver<bool>) {
    let url = ctx.config.jobs.queue_url.clone();
    let stopping = || *stop.borrow();
    while !stopping() {
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
        tracing::debug!(messages = messages.len(), "received from the jobs queue");
        if messages.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for m in messages {
            let Some(handle) = m.receipt_handle() else { continue };
            let disposition = if stopping() {
                Disposition::Release
            } else {
                let mut stopped = stop.clone();
                let interrupt = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                    tokio::time::sleep(STOP_GRACE).await;
                };
                handle_message_until(&ctx, m.body().unwrap_or_default(), interrupt).await
            };
            settle_message(&ctx, &url, handle, &disposition).await;
        }
    }
    tracing::info!("export worker stopped polling the jobs queue");
}

/// Deletes a handled message, or makes a released one visible again at once.
async fn settle_message(ctx: &AppContext, url: &str, handle: &str, disposition: &Disposition) {
    let sqs = &ctx.aws.sqs;
    let result = match disposition {
        Disposition::Retry => return,
        Disposition::Delete => sqs
            .delete_message()
            .queue_url(url)
            .receipt_handle(handle)
            .send()
            .await
            .map(|_| ())
            .map_err(Error::queue),
        Disposition::Release => sqs
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(handle)
            .visibility_timeout(0)
            .send()
            .await
            .map(|_| ())
            .map_err(Error::queue),
    };
    if let Err(e) = result {
        tracing::warn!(disposition = disposition.as_str(), error = %e.cause_chain(), "could not settle a job message");
    }
}
