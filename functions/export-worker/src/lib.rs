//! The export worker: consumes the jobs queue (batch size 1) and runs each job.
//! A message whose job could not be handled (its state could not be read or
//! written) is reported as a batch item failure, so SQS delivers it again; after
//! three receives it goes to the dead-letter queue. A failed export is not such a
//! failure: it is the job's recorded outcome.
//!
//! It is also invoked directly by operator-defined EventBridge schedules whose
//! `Input` is an export (`{"operator_export": ...}`, [`common::jobs::operator`]).

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use common::{
    AppContext,
    jobs::{
        operator::{self, OperatorEvent},
        queue::{Disposition, handle_message},
    },
};
use serde_json::Value;

pub async fn handle(ctx: &AppContext, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let body = record.body.as_deref().unwrap_or_default();
        // Lambda never interrupts a job (no Release here), but anything not done
        // goes back to the queue.
        if handle_message(ctx, body).await != Disposition::Delete {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// Any invocation: an SQS batch, or an operator-defined export. An event that is
/// neither is refused (an error the invoker sees; nothing runs).
pub async fn handle_any(ctx: &AppContext, event: Value) -> Result<Value, String> {
    if event.get("Records").is_some() {
        let batch: SqsEvent = serde_json::from_value(event).map_err(|e| format!("not an SQS event: {e}"))?;
        return serde_json::to_value(Box::pin(handle(ctx, batch)).await).map_err(|e| e.to_string());
    }
    let op: OperatorEvent = serde_json::from_value(event)
        .map_err(|e| format!("expected an SQS batch or {{\"operator_export\": ...}}: {e}"))?;
    // Boxed: the export's future is deep, and one level of it per event kind is enough.
    Box::pin(operator::run(ctx, op.operator_export)).await.map_err(|e| {
        tracing::error!(error = %e.cause_chain(), "operator export failed");
        e.to_string()
    })
}
