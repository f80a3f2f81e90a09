//! Table definitions, shared by `exportctl setup`, the tests and (by hand) template.yaml.
//! docs/data-model.md explains every key and index and which Query serves which filter.

use aws_sdk_dynamodb::{
    Client,
    error::ProvideErrorMetadata,
    types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
        ScalarAttributeType, TableStatus,
    },
};

use crate::{config::TableNames, error::Error};

pub const LEADS_BY_COMPANY: &str = "by_company_created";
pub const LEADS_BY_CHATBOT: &str = "by_chatbot_created";
/// Every lead in `Created At` order, spread over [`SHARDS`] partitions.
pub const LEADS_BY_CREATED: &str = "by_created";
pub const CHATS_BY_CONVERSATION: &str = "by_conversation";
/// Every chat message in time order, spread over [`SHARDS`] partitions.
pub const CHATS_BY_TIME: &str = "by_time";
/// Chat messages grouped by (client, conversation), over [`SHARDS`] partitions.
pub const CHATS_BY_CONVERSATION_GROUP: &str = "by_conversation_group";
/// A caller's jobs, newest first: the export history.
pub const JOBS_BY_OWNER: &str = "by_owner";
/// A schedule's runs (jobs with a `schedule_id`), newest first.
pub const JOBS_BY_SCHEDULE: &str = "by_schedule";
/// Queued and running jobs, oldest first, in [`JOB_ACTIVE_SHARDS`] partitions
/// (`active_shard`, which a job carries only until it is final): what the sweeper reads.
pub const JOBS_BY_ACTIVE: &str = "by_active";
/// Partitions of the jobs' `by_active` index.
pub const JOB_ACTIVE_SHARDS: u32 = 8;
/// Enabled schedules by next run time, in [`SCHEDULE_SHARDS`] partitions (`due_shard`);
/// a paused schedule has no `due_shard`, so it is not in this index.
pub const SCHEDULES_BY_DUE: &str = "by_due";
/// A caller's schedules, newest first.
pub const SCHEDULES_BY_OWNER: &str = "by_owner";
/// Every schedule, in [`SCHEDULE_SHARDS`] partitions (`shard`): the admins' list.
pub const SCHEDULES_BY_SHARD: &str = "by_shard";
/// Partitions of the schedules' indexes: the scheduler reads each due partition.
pub const SCHEDULE_SHARDS: u32 = 8;

/// Partitions of the all-tenant time indexes (`by_created`, `by_time`). An item's
/// `shard` is a fixed hash of its id ([`crate::keys::shard_of`]), so writes spread
/// over this many partitions, and a read of every tenant over a time range is one
/// Query per shard, merged in key order. Changing it means rewriting every item.
pub const SHARDS: u32 = 16;

pub struct TableDef {
    pub name: String,
    pub hash: &'static str,
    pub range: Option<&'static str>,
    /// (index name, hash, range)
    pub indexes: Vec<(&'static str, &'static str, &'static str)>,
}

pub fn tables(names: &TableNames) -> Vec<TableDef> {
    vec![
        TableDef {
            name: names.sessions.clone(),
            hash: "session_id",
            range: None,
            indexes: vec![],
        },
        TableDef {
            name: names.session_messages.clone(),
            hash: "session_id",
            range: Some("msg_key"),
            indexes: vec![],
        },
        TableDef {
            name: names.leads.clone(),
            hash: "lead_id",
            range: None,
            indexes: vec![
                (LEADS_BY_COMPANY, "company_id", "created_at"),
                (LEADS_BY_CHATBOT, "chatbot_id", "created_at"),
                (LEADS_BY_CREATED, "shard", "created_key"),
            ],
        },
        TableDef {
            name: names.chat_messages.clone(),
            hash: "client_id",
            range: Some("ts_id"),
            indexes: vec![
                (CHATS_BY_CONVERSATION, "conversation_id", "ts_id"),
                (CHATS_BY_TIME, "shard", "ts_id"),
                (CHATS_BY_CONVERSATION_GROUP, "conv_shard", "conv_key"),
            ],
        },
        TableDef {
            name: names.rate_limits.clone(),
            hash: "bucket",
            range: None,
            indexes: vec![],
        },
        TableDef {
            name: names.audit.clone(),
            hash: "client_scope",
            range: Some("at_request"),
            indexes: vec![],
        },
        TableDef {
            name: names.jobs.clone(),
            hash: "id",
            range: None,
            indexes: vec![
                (JOBS_BY_OWNER, "owner", "created_key"),
                (JOBS_BY_SCHEDULE, "schedule_id", "created_key"),
                (JOBS_BY_ACTIVE, "active_shard", "created_key"),
            ],
        },
        TableDef {
            name: names.schedules.clone(),
            hash: "id",
            range: None,
            indexes: vec![
                (SCHEDULES_BY_DUE, "due_shard", "next_run_at"),
                (SCHEDULES_BY_OWNER, "owner", "created_key"),
                (SCHEDULES_BY_SHARD, "shard", "created_key"),
            ],
        },
    ]
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("key schema element has all required fields")
}

fn string_attr(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("attribute definition has all required fields")
}

/// Creates every table that does not exist yet and waits until all are ACTIVE.
pub async fn create_tables(client: &Client, names: &TableNames) -> Result<Vec<String>, Error> {
    let mut created = Vec::new();
    for def in tables(names) {
        let mut attrs = vec![def.hash];
        attrs.extend(def.range);
        for (_, h, r) in &def.indexes {
            attrs.push(h);
            attrs.push(r);
        }
        attrs.sort_unstable();
        attrs.dedup();
        let mut req = client
            .create_table()
            .table_name(&def.name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(def.hash, KeyType::Hash))
            .set_attribute_definitions(Some(attrs.iter().map(|a| string_attr(a)).collect()));
        if let Some(range) = def.range {
            req = req.key_schema(key(range, KeyType::Range));
        }
        for (index, h, r) in &def.indexes {
            req = req.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(*index)
                    .key_schema(key(h, KeyType::Hash))
                    .key_schema(key(r, KeyType::Range))
                    .projection(Projection::builder().projection_type(ProjectionType::All).build())
                    .build()
                    .map_err(|e| Error::internal("schema error", e))?,
            );
        }
        match req.send().await {
            Ok(_) => {
                tracing::debug!(table = %def.name, "created table");
                created.push(def.name.clone())
            }
            Err(e) if e.code() == Some("ResourceInUseException") => {
                wait_active(client, &def.name).await?;
                check_indexes(client, &def).await?;
            }
            Err(e) => return Err(Error::database(e)),
        }
        wait_active(client, &def.name).await?;
    }
    Ok(created)
}

/// A table made by an older version may lack an index added since. Local emulators
/// cannot add one to an existing table (dynalite accepts the update and then loses
/// the index), so setup stops with what to do instead of serving half a schema.
async fn check_indexes(client: &Client, def: &TableDef) -> Result<(), Error> {
    let out = client
        .describe_table()
        .table_name(&def.name)
        .send()
        .await
        .map_err(Error::database)?;
    let existing: Vec<String> = out
        .table()
        .map(|t| t.global_secondary_indexes())
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i.index_name().map(String::from))
        .collect();
    match def
        .indexes
        .iter()
        .find(|(index, _, _)| !existing.iter().any(|e| e == index))
    {
        None => Ok(()),
        Some((index, _, _)) => Err(Error::internal(
            "schema error",
            format!(
                "table {} was made by an older version and lacks index {index}; delete the table \
                 (locally: `make stack-reset` wipes the emulators' data) and run setup again",
                def.name
            ),
        )),
    }
}

async fn wait_active(client: &Client, table: &str) -> Result<(), Error> {
    for _ in 0..600 {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(Error::database)?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(Error::internal(
        "database error",
        format!("table {table} did not become ACTIVE"),
    ))
}

/// Creates the export bucket if it does not exist.
pub async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<bool, Error> {
    match s3.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.code(), Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")) => Ok(false),
        Err(e) => Err(Error::storage(e)),
    }
}

/// The last path segment of a queue URL: its name.
pub fn queue_name(url: &str) -> &str {
    url.trim_end_matches('/').rsplit('/').next().unwrap_or(url)
}

/// Creates the jobs queue and its dead-letter queue (after `max_receives` receives a
/// message moves there), as template.yaml does. Returns the queue's URL.
pub async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    visibility_secs: u64,
    max_receives: u32,
) -> Result<String, Error> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .map_err(Error::queue)?;
    let dlq_url = dlq.queue_url().unwrap_or_default().to_string();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(Error::queue)?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives.to_string()});
    let out = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, visibility_secs.to_string())
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .map_err(Error::queue)?;
    Ok(out.queue_url().unwrap_or_default().to_string())
}
