//! `exportctl serve --streams`: the DynamoDB Streams event source mapping, locally.
//! It reads the streams of the indexed tables (session messages, leads, chat
//! messages) shard by shard from the oldest record (`TRIM_HORIZON`), turns each page
//! into the event Lambda would deliver, and hands it to the real indexer handler
//! (`export_indexer::handle`). A record the handler reports failed is read again from
//! there on the next round, as `ReportBatchItemFailures` does.
//!
//! Locally that needs a DynamoDB with streams (moto_server, `STREAMS_ENDPOINT` in
//! local.env): dynalite has none. [`enable_streams`] turns them on for tables made
//! without (`exportctl setup` makes them, like dynalite, without).

use std::collections::BTreeMap;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_sdk_dynamodb::types::{StreamSpecification, StreamViewType};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use common::{AppContext, Error, index::Table};

/// Records per GetRecords (and so per event): the template's `BatchSize`.
const BATCH: i32 = 100;

/// Turns on `NEW_IMAGE` streams on the indexed tables that have none, as template.yaml
/// declares them.
pub async fn enable_streams(ctx: &AppContext) -> Result<(), Error> {
    let client = &ctx.aws.dynamodb;
    for (_, table) in Table::INDEXED {
        let name = table.name(&ctx.config.tables);
        let described = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(Error::database)?;
        let enabled = described
            .table()
            .and_then(|t| t.stream_specification())
            .is_some_and(|s| s.stream_enabled());
        if enabled {
            continue;
        }
        let spec = StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::NewImage)
            .build()
            .map_err(|e| Error::internal("database error", e))?;
        client
            .update_table()
            .table_name(name)
            .stream_specification(spec)
            .send()
            .await
            .map_err(Error::database)?;
    }
    Ok(())
}

/// What one round read and what the handler made of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Records delivered to the handler (a record delivered again counts again).
    pub delivered: usize,
    /// Records the handler reported failed: they are delivered again next round.
    pub failed: usize,
}

/// A shard being read: where its next page starts.
enum Position {
    Iterator(String),
    /// Read from this sequence number on (after a failure).
    At(String),
    /// Closed and read to its end.
    Done,
}

/// Follows the streams of the indexed tables.
pub struct Follower {
    ctx: AppContext,
    streams: aws_sdk_dynamodbstreams::Client,
    /// Per (stream ARN, shard id).
    shards: BTreeMap<(String, String), Position>,
}

impl Follower {
    pub fn new(ctx: &AppContext, streams: aws_sdk_dynamodbstreams::Client) -> Self {
        Self {
            ctx: ctx.clone(),
            streams,
            shards: BTreeMap::new(),
        }
    }

    /// A follower with the streams client of the standard configuration
    /// (`AWS_ENDPOINT_URL_DYNAMODB_STREAMS` locally).
    pub async fn from_env(ctx: &AppContext) -> Self {
        let shared = common::aws::shared_config().await;
        Self::new(ctx, aws_sdk_dynamodbstreams::Client::new(&shared))
    }

    /// The streams' current shards, added to those being read (new ones from their
    /// oldest record).
    async fn discover(&mut self) -> Result<(), Error> {
        for (_, table) in Table::INDEXED {
            let name = table.name(&self.ctx.config.tables);
            let described = self
                .ctx
                .aws
                .dynamodb
                .describe_table()
                .table_name(name)
                .send()
                .await
                .map_err(Error::database)?;
            let Some(arn) = described.table().and_then(|t| t.latest_stream_arn()).map(String::from) else {
                return Err(Error::internal(
                    "the table has no stream",
                    format!("{name}: no stream (dynalite has none: use STREAMS_ENDPOINT)"),
                ));
            };
            let mut start: Option<String> = None;
            loop {
                let stream = self
                    .streams
                    .describe_stream()
                    .stream_arn(&arn)
                    .set_exclusive_start_shard_id(start.clone())
                    .send()
                    .await
                    .map_err(|e| Error::internal("stream error", e))?;
                let Some(description) = stream.stream_description else {
                    break;
                };
                for shard in description.shards() {
                    let Some(id) = shard.shard_id() else { continue };
                    if !self.shards.contains_key(&(arn.clone(), id.to_string())) {
                        let iterator = self.iterator(&arn, id, None).await?;
                        self.shards.insert((arn.clone(), id.to_string()), iterator);
                    }
                }
                start = description.last_evaluated_shard_id;
                if start.is_none() {
                    break;
                }
            }
        }
        Ok(())
    }

    async fn iterator(&self, arn: &str, shard: &str, at: Option<&str>) -> Result<Position, Error> {
        let kind = match at {
            Some(_) => ShardIteratorType::AtSequenceNumber,
            None => ShardIteratorType::TrimHorizon,
        };
        let out = self
            .streams
            .get_shard_iterator()
            .stream_arn(arn)
            .shard_id(shard)
            .shard_iterator_type(kind)
            .set_sequence_number(at.map(String::from))
            .send()
            .await
            .map_err(|e| Error::internal("stream error", e))?;
        Ok(out.shard_iterator.map_or(Position::Done, Position::Iterator))
    }

    /// Reads every shard until it has nothing more now, delivering each page to the
    /// indexer handler.
    pub async fn poll(&mut self) -> Result<Round, Error> {
        self.discover().await?;
        let mut round = Round::default();
        let keys: Vec<(String, String)> = self.shards.keys().cloned().collect();
        for key in keys {
            loop {
                let position = match self.shards.get(&key) {
                    Some(Position::Iterator(i)) => i.clone(),
                    Some(Position::At(sequence)) => {
                        let sequence = sequence.clone();
                        let next = self.iterator(&key.0, &key.1, Some(&sequence)).await?;
                        self.shards.insert(key.clone(), next);
                        continue;
                    }
                    Some(Position::Done) | None => break,
                };
                let page = self
                    .streams
                    .get_records()
                    .shard_iterator(position)
                    .limit(BATCH)
                    .send()
                    .await
                    .map_err(|e| Error::internal("stream error", e))?;
                let records: Vec<EventRecord> = page.records().iter().map(|r| event_record(&key.0, r)).collect();
                let next = page.next_shard_iterator.map_or(Position::Done, Position::Iterator);
                if records.is_empty() {
                    // Nothing more now: an open shard is read again next round.
                    self.shards.insert(key.clone(), next);
                    break;
                }
                round.delivered += records.len();
                let mut event = Event::default();
                event.records = records;
                let response = export_indexer::handle(&self.ctx, event).await;
                match response
                    .batch_item_failures
                    .first()
                    .and_then(|f| f.item_identifier.clone())
                {
                    Some(sequence) => {
                        round.failed += 1;
                        self.shards.insert(key.clone(), Position::At(sequence));
                        break; // retried next round, as the event source mapping does
                    }
                    None => {
                        self.shards.insert(key.clone(), next);
                    }
                }
            }
        }
        Ok(round)
    }
}

/// A stream record as Lambda delivers it in a DynamoDB event.
fn event_record(stream_arn: &str, record: &aws_sdk_dynamodbstreams::types::Record) -> EventRecord {
    let mut event = EventRecord::default();
    event.event_name = record.event_name().map(|n| n.as_str().to_string()).unwrap_or_default();
    event.event_source = Some("aws:dynamodb".into());
    event.event_source_arn = Some(stream_arn.to_string());
    if let Some(change) = record.dynamodb() {
        if let Some(image) = change.new_image.clone() {
            event.change.new_image = serde_dynamo::Item::from(image);
        }
        if let Some(keys) = change.keys.clone() {
            event.change.keys = serde_dynamo::Item::from(keys);
        }
        if let Some(at) = change.approximate_creation_date_time() {
            event.change.approximate_creation_date_time =
                chrono::DateTime::from_timestamp_millis(at.to_millis().unwrap_or_default()).unwrap_or_default();
        }
        event.change.sequence_number = change.sequence_number.clone();
    }
    event
}

/// Polls the streams every `every` until the process ends; a failed round is
/// logged and tried again.
pub async fn follow(mut follower: Follower, every: std::time::Duration) {
    loop {
        match follower.poll().await {
            Ok(round) if round.delivered > 0 => {
                tracing::info!(delivered = round.delivered, failed = round.failed, "streams read")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e.cause_chain(), "reading the streams failed"),
        }
        tokio::time::sleep(every).await;
    }
}
