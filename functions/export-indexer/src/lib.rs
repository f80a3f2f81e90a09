//! The indexer: invoked by the event source mappings on the DynamoDB Streams of the
//! session-messages, leads and chat-messages tables, it gives every item a writer
//! stored the derived key attributes and `written_at` the exports read by
//! ([`common::index`]; docs/data-model.md, "How items get their export keys").
//!
//! Records are indexed in order. A failure answers the failed record's sequence
//! number as the batch's one failure (`ReportBatchItemFailures`): the records before
//! it are done, and it and those after are delivered again (then, past the mapping's
//! retries, to its on-failure destination).

use aws_lambda_events::{
    event::dynamodb::Event,
    streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse},
};
use common::{AppContext, index, metrics};

/// Indexes one batch of stream records.
pub async fn handle(ctx: &AppContext, event: Event) -> DynamoDbEventResponse {
    let now = ctx.clock.now();
    let records = event.records.len();
    let (report, failed) = index::index_records(&ctx.aws.dynamodb, &ctx.config.tables, event.records, now).await;
    metrics::emit_indexed(report.fixed, now);
    let mut response = DynamoDbEventResponse::default();
    match failed {
        Some((sequence, error)) => {
            tracing::error!(records, ?report, error = %error.cause_chain(), "indexing stopped at a record; it is delivered again");
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence);
            response.batch_item_failures.push(failure);
        }
        None => tracing::info!(records, ?report, "stream records indexed"),
    }
    response
}
