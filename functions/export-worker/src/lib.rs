//! The export worker: consumes the jobs queue (batch size 1) and runs each job.
//! A message whose job could not be handled (its state could not be read or
//! written) is reported as a batch item failure, so SQS delivers it again; after
//! three receives it goes to the dead-letter queue. A failed export is not such a
//! failure: it is the job's recorded outcome.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use common::{
    AppContext,
    jobs::queue::{Disposition, handle_message},
};

pub async fn handle(ctx: &AppContext, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let body = record.body.as_deref().unwrap_or_default();
        if handle_message(ctx, body).await == Disposition::Retry {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}
