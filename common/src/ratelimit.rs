//! Fixed-window rate limits kept in DynamoDB, so they hold across concurrent Lambda
//! instances: each admission is one atomic conditional `ADD` on the window's counter,
//! which can never admit more than the limit however many requests race.

use aws_sdk_dynamodb::{Client, error::ProvideErrorMetadata, types::AttributeValue};

use crate::error::Error;

/// One limit: at most `max` admissions per `window_secs` for a key.
#[derive(Clone, Debug)]
pub struct Limit {
    /// e.g. `user#<sub>` or `client#<id>`.
    pub key: String,
    pub max: u32,
    pub window_secs: u64,
}

impl Limit {
    fn bucket(&self, now: u64) -> (String, u64) {
        let window = now / self.window_secs;
        let ends = (window + 1) * self.window_secs;
        // A key holds an id of up to 2,048 bytes: digested where the bucket would
        // exceed DynamoDB's partition key.
        let bucket = crate::keys::partition_key(format!("{}#{}s#{window}", self.key, self.window_secs));
        (bucket, ends)
    }
}

/// Admits one request against every limit, in order, or answers `RateLimited` with the
/// seconds until the exhausted window ends. A request refused by a later limit gives
/// back what it took from the earlier ones.
pub async fn admit(client: &Client, table: &str, limits: &[Limit], now: u64) -> Result<(), Error> {
    let mut taken: Vec<String> = Vec::new();
    for limit in limits {
        let (bucket, window_end) = limit.bucket(now);
        let result = client
            .update_item()
            .table_name(table)
            .key("bucket", AttributeValue::S(bucket.clone()))
            .update_expression("ADD hits :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(hits) OR hits < :max")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":max", AttributeValue::N(limit.max.to_string()))
            // Kept an hour past the window for inspection; DynamoDB TTL removes it.
            .expression_attribute_values(":expires", AttributeValue::N((window_end + 3600).to_string()))
            .send()
            .await;
        match result {
            Ok(_) => taken.push(bucket),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                give_back(client, table, &taken).await;
                return Err(Error::RateLimited {
                    retry_after_secs: (window_end - now).max(1),
                });
            }
            Err(e) => {
                give_back(client, table, &taken).await;
                return Err(Error::database(e));
            }
        }
    }
    Ok(())
}

async fn give_back(client: &Client, table: &str, buckets: &[String]) {
    for bucket in buckets {
        let result = client
            .update_item()
            .table_name(table)
            .key("bucket", AttributeValue::S(bucket.clone()))
            .update_expression("ADD hits :minus")
            .expression_attribute_values(":minus", AttributeValue::N("-1".into()))
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!(bucket, error = %Error::database(e).cause_chain(), "could not give back a rate-limit slot");
        }
    }
}
