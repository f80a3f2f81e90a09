//! The indexer (functions/export-indexer) against the local DynamoDB: items written
//! the way the platform writes them, with none of the derived attributes the exports
//! read by, are invisible to the all-tenant and conversation exports until the real
//! handler has seen their stream records; after it, every export is byte for byte
//! the export of the same data written by `exportctl load`. Its own writes, duplicate
//! and out-of-order records change nothing, and a deleted item stays deleted.

// The route futures are deep (clippy computes their layout).
#![recursion_limit = "256"]

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_sdk_dynamodb::types::AttributeValue;
use common::{index::Table, load::Record, reads::Item, synth};
use integration_tests::*;

const LEADS: &str = leads_export::PATH;
const CHATS: &str = chats_export::DOWNLOAD_PATH;
const CONVERSATIONS: &str = chats_export::CONVERSATIONS_PATH;

/// Many exports in one test: the chat routes' rate limits out of the way.
fn unlimited(c: &mut common::config::Config) {
    c.chat.per_user_per_minute = 10_000;
    c.chat.per_client_per_hour = 10_000;
}

/// Synthetic leads and messages, and some whose ids are as long as DynamoDB allows
/// (their derived sort keys hold digests: the indexer must write the same ones).
fn records() -> Vec<Record> {
    let long = |tag: String, bytes: usize| {
        let mut id = tag;
        while id.len() < bytes {
            id.push_str(if id.len().is_multiple_of(3) { "#%" } else { "é" });
        }
        while id.len() > bytes {
            id.pop();
        }
        id
    };
    let mut records: Vec<Record> = synth::leads(7, 60).chain(synth::chat_messages(7, 120)).collect();
    let long_ones: Vec<Record> = synth::leads(8, 4)
        .chain(synth::chat_messages(8, 12))
        .enumerate()
        .map(|(i, record)| match record {
            Record::Lead(mut l) => {
                l.lead_id = long(format!("lead-{i}-"), 1000 + i * 300).into();
                Record::Lead(l)
            }
            Record::ChatMessage(mut m) => {
                m.id = long(format!("msg-{i}-"), 1000 + i * 80).into();
                m.conversation_id = long(format!("conv-{}-", i % 3), 2048 - i % 3 * 400).into();
                Record::ChatMessage(m)
            }
            other => other,
        })
        .collect();
    records.extend(long_ones);
    records
}

fn table_of<'a>(stack: &'a TestStack, record: &Record) -> &'a str {
    record.table(&stack.ctx.config.tables)
}

async fn put(stack: &TestStack, table: &str, item: Item) {
    stack
        .ctx
        .aws
        .dynamodb
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

/// A stream record of `table` as Lambda delivers it (`NEW_AND_OLD_IMAGES`).
fn stream_record(
    table: &str,
    name: &str,
    image: &Item,
    sequence: usize,
    at: chrono::DateTime<chrono::Utc>,
) -> EventRecord {
    let mut record = EventRecord::default();
    record.event_name = name.into();
    record.event_source_arn = Some(format!(
        "arn:aws:dynamodb:us-east-1:000000000000:table/{table}/stream/2024-01-01T00:00:00.000"
    ));
    record.change.new_image = serde_dynamo::Item::from(image.clone());
    record.change.approximate_creation_date_time = at;
    record.change.sequence_number = Some(format!("{sequence:021}"));
    record
}

fn event(records: Vec<EventRecord>) -> Event {
    let mut event = Event::default();
    event.records = records;
    event
}

async fn csv(stack: &TestStack, query: &str) -> Vec<u8> {
    stack.admin_body(query).await
}

/// The exports the derived attributes serve: every company's leads (`by_created`),
/// every client's messages (`by_time`), and one client's conversations
/// (`by_conversation_group`).
async fn exports(stack: &TestStack) -> Vec<Vec<u8>> {
    let mut files = vec![
        csv(stack, &format!("{LEADS}?format=csv")).await,
        csv(stack, &format!("{CHATS}?format=csv&limit=100000")).await,
    ];
    for client in synth::CLIENTS {
        files.push(csv(stack, &format!("{CONVERSATIONS}?client_id={client}")).await);
    }
    files
}

async fn stored(stack: &TestStack, table: &str, key: &Item) -> Option<Item> {
    stack
        .ctx
        .aws
        .dynamodb
        .get_item()
        .table_name(table)
        .set_key(Some(key.clone()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

fn key_of(record: &Record, item: &Item) -> Item {
    Table::of(record).key_of(item)
}

#[tokio::test]
async fn bare_items_export_exactly_as_loaded_ones_once_indexed_and_indexing_again_changes_nothing() {
    let records = records();
    let loaded = TestStack::with_config("indexer-loaded", unlimited).await;
    loaded.load(records.clone()).await;
    let bare = TestStack::with_config("indexer-bare", unlimited).await;
    let written = bare.ctx.clock.now() - chrono::Duration::seconds(1);
    let mut stream = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let item = bare_item(record);
        put(&bare, table_of(&bare, record), item.clone()).await;
        stream.push(stream_record(table_of(&bare, record), "INSERT", &item, i, written));
    }

    // Before the indexer: no all-tenant export and no conversation sees them.
    let before = exports(&bare).await;
    let expected = exports(&loaded).await;
    for (b, e) in before.iter().zip(&expected) {
        assert!(parse_csv(b).1.is_empty(), "an unindexed item is exported");
        assert!(!parse_csv(e).1.is_empty());
    }

    // Indexed in batches, as the event source mapping delivers them.
    for batch in stream.chunks(100) {
        let response = export_indexer::handle(&bare.ctx, event(batch.to_vec())).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    assert_eq!(exports(&bare).await, expected, "indexed exports are the loaded exports");

    // The indexer's own writes come back as MODIFY records: nothing to do. The same
    // INSERTs delivered again: nothing to do either.
    let mut again = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let key = key_of(record, &bare_item(record));
        let now = stored(&bare, table_of(&bare, record), &key).await.unwrap();
        again.push(stream_record(table_of(&bare, record), "MODIFY", &now, i, written));
    }
    again.extend(stream.iter().cloned());
    let (report, failed) = common::index::index_records(
        &bare.ctx.aws.dynamodb,
        &bare.ctx.config.tables,
        again,
        bare.ctx.clock.now(),
    )
    .await;
    assert!(failed.is_none());
    let n = records.len() as u64;
    assert_eq!(
        (report.fixed, report.unchanged, report.skipped),
        (0, n, n),
        "{report:?}"
    );
    assert_eq!(exports(&bare).await, expected);
}

#[tokio::test]
async fn an_older_record_never_overwrites_a_newer_write_nor_brings_back_a_deleted_item() {
    let stack = TestStack::new("indexer-order").await;
    let leads: Vec<Record> = synth::leads(9, 2).collect();
    let (Record::Lead(first), Record::Lead(second)) = (&leads[0], &leads[1]) else {
        panic!("leads")
    };
    let table = stack.ctx.config.tables.leads.clone();
    let at = stack.ctx.clock.now() - chrono::Duration::seconds(1);

    // The writer stores a lead, then rewrites it with another creation time.
    let old = Record::Lead(first.clone());
    let old_item = bare_item(&old);
    put(&stack, &table, old_item.clone()).await;
    let mut moved = first.clone();
    moved.created_at -= chrono::Duration::days(3);
    let new = Record::Lead(moved);
    let new_item = bare_item(&new);
    put(&stack, &table, new_item.clone()).await;

    // Its records arrive out of order: the older image is skipped, and the newer one
    // gets the keys of what is stored.
    let (report, failed) = common::index::index_records(
        &stack.ctx.aws.dynamodb,
        &stack.ctx.config.tables,
        vec![
            stream_record(&table, "MODIFY", &new_item, 2, at),
            stream_record(&table, "INSERT", &old_item, 1, at),
        ],
        stack.ctx.clock.now(),
    )
    .await;
    assert!(failed.is_none());
    assert_eq!(
        (report.fixed, report.unchanged, report.skipped),
        (1, 0, 1),
        "{report:?}"
    );
    let now = stored(&stack, &table, &key_of(&new, &new_item)).await.unwrap();
    let mut expected = new.to_item().unwrap();
    expected.insert("written_at".into(), AttributeValue::S(common::timefmt::format(&at)));
    assert_eq!(now, expected, "the stored lead has the newer write's keys");

    // A lead deleted before its INSERT is indexed stays deleted.
    let gone = Record::Lead(second.clone());
    let gone_item = bare_item(&gone);
    put(&stack, &table, gone_item.clone()).await;
    stack
        .ctx
        .aws
        .dynamodb
        .delete_item()
        .table_name(&table)
        .set_key(Some(key_of(&gone, &gone_item)))
        .send()
        .await
        .unwrap();
    let response = export_indexer::handle(
        &stack.ctx,
        event(vec![stream_record(&table, "INSERT", &gone_item, 3, at)]),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(stored(&stack, &table, &key_of(&gone, &gone_item)).await, None);
}

/// Every sample in events/indexer/ is a stream event the real handler indexes: its
/// items, stored as the platform would store them, get the attributes `exportctl load`
/// derives, and nothing else of them changes.
#[tokio::test]
async fn the_sample_stream_events_are_indexed() {
    let stack = TestStack::new("indexer-events").await;
    let dir = format!("{}/../events/indexer", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty());
    let tables = stack.ctx.config.tables.clone();
    for path in files {
        let mut event: Event = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut expected = Vec::new();
        for record in &mut event.records {
            // The samples name the default tables; this stack's have a prefix.
            let arn = record.event_source_arn.clone().unwrap();
            let default_table = common::index::table_of_arn(&arn).unwrap().to_string();
            let table = match default_table.as_str() {
                "chat-export-leads" => tables.leads.clone(),
                "chat-export-chat-messages" => tables.chat_messages.clone(),
                "chat-export-session-messages" => tables.session_messages.clone(),
                other => panic!("{}: unknown table {other}", path.display()),
            };
            record.event_source_arn = Some(arn.replace(&format!("/{default_table}/"), &format!("/{table}/")));
            let image: Item = record.change.new_image.clone().into();
            put(&stack, &table, image.clone()).await;
            let record_of = Table::named(&tables, &table).unwrap().decode(&image).unwrap();
            // What was stored, plus what the loader derives: nothing else changes.
            let mut item = image.clone();
            for (name, value) in record_of.derived() {
                item.insert(name.into(), AttributeValue::S(value));
            }
            item.insert(
                "written_at".into(),
                AttributeValue::S(common::timefmt::format(&record.change.approximate_creation_date_time)),
            );
            expected.push((table, key_of(&record_of, &image), item));
        }
        let response = export_indexer::handle(&stack.ctx, event).await;
        assert!(
            response.batch_item_failures.is_empty(),
            "{}: {response:?}",
            path.display()
        );
        for (table, key, item) in expected {
            assert_eq!(stored(&stack, &table, &key).await, Some(item), "{}", path.display());
        }
    }
}

/// Items stored before the streams were on: `check-index` finds exactly them, the
/// backfill gives them what the loader writes (the exports are the loaded ones), and
/// afterwards the check finds nothing and a second backfill has nothing to do.
#[tokio::test]
async fn the_backfill_indexes_what_the_check_finds_and_nothing_else() {
    use common::backfill::{self, Mode};

    let records = records();
    let loaded = TestStack::with_config("backfill-loaded", unlimited).await;
    loaded.load(records.clone()).await;
    let stack = TestStack::with_config("backfill-bare", unlimited).await;
    // Half as loaded, half bare: the check must find exactly the bare half.
    let mut bare = 0;
    for (i, record) in records.iter().enumerate() {
        if i % 2 == 0 {
            put(&stack, table_of(&stack, record), bare_item(record)).await;
            bare += 1;
        } else {
            let mut item = record.to_item().unwrap();
            item.insert(
                "written_at".into(),
                AttributeValue::S(common::timefmt::format(&stack.ctx.clock.now())),
            );
            put(&stack, table_of(&stack, record), item).await;
        }
    }
    let tables = &stack.ctx.config.tables;
    let db = &stack.ctx.aws.dynamodb;
    let run = |mode: Mode| async move {
        let mut total = backfill::Counts::default();
        for (_, table) in Table::INDEXED {
            let c = backfill::run(
                db,
                table,
                table.name(tables),
                &tables.jobs,
                mode,
                backfill::Scan {
                    segments: 3,
                    rate: Some(10_000.0),
                    page_items: None,
                },
                &|_| {},
            )
            .await
            .unwrap();
            total.scanned += c.scanned;
            total.wrong += c.wrong;
            total.failed += c.failed;
            total.resumed_done += c.resumed_done;
            total.keys.extend(c.keys);
        }
        total
    };
    let check = run(Mode::Check).await;
    assert_eq!(
        (check.scanned, check.wrong, check.failed),
        (records.len() as u64, bare, 0),
        "{check:?}"
    );
    assert!(!check.keys.is_empty() && check.keys.len() <= 3 * backfill::MAX_REPORTED_KEYS);
    assert!(
        check
            .keys
            .iter()
            .all(|k| k.starts_with("lead_id=") || k.starts_with("client_id=")),
        "{:?}",
        check.keys
    );

    let fixed = run(Mode::Fix).await;
    assert_eq!((fixed.wrong, fixed.failed), (bare, 0), "{fixed:?}");
    // The bare items carry no written_at (the backfill does not invent one), so the
    // snapshot cut keeps them: the exports are the loaded ones.
    assert_eq!(exports(&stack).await, exports(&loaded).await);
    assert_eq!(run(Mode::Check).await.wrong, 0);

    // Run again: every segment of every table is finished (its checkpoint says so).
    let again = run(Mode::Fix).await;
    assert_eq!((again.wrong, again.scanned, again.resumed_done), (0, 0, 9), "{again:?}");
}

/// A backfill killed between pages goes on from its checkpoints: what it had done is
/// not read again, and after the second run every item is in its indexes.
#[tokio::test]
async fn a_killed_backfill_resumes_from_its_checkpoints() {
    use common::backfill::{self, Mode};

    let stack = TestStack::new("backfill-resume").await;
    let leads: Vec<Record> = synth::leads(11, 40).collect();
    for record in &leads {
        put(&stack, table_of(&stack, record), bare_item(record)).await;
    }
    let tables = stack.ctx.config.tables.clone();
    let scan = backfill::Scan {
        segments: 2,
        rate: None,
        page_items: Some(5),
    };
    let table = Table::Leads;
    // The first run dies after its third checkpointed page (a panic stands in for
    // the kill: nothing after it runs).
    let first = {
        let ctx = stack.ctx.clone();
        let tables = tables.clone();
        tokio::spawn(async move {
            let pages = std::sync::atomic::AtomicU32::new(0);
            let die = |_| {
                if pages.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 2 {
                    panic!("killed");
                }
            };
            backfill::run(
                &ctx.aws.dynamodb,
                table,
                &tables.leads,
                &tables.jobs,
                Mode::Fix,
                scan,
                &die,
            )
            .await
        })
        .await
    };
    assert!(first.is_err(), "the first run was killed");
    let second = backfill::run(
        &stack.ctx.aws.dynamodb,
        table,
        &tables.leads,
        &tables.jobs,
        Mode::Fix,
        scan,
        &|_| {},
    )
    .await
    .unwrap();
    assert!(
        second.scanned < leads.len() as u64,
        "the second run starts where the first stopped: {second:?}"
    );
    let check = backfill::run(
        &stack.ctx.aws.dynamodb,
        table,
        &tables.leads,
        &tables.jobs,
        Mode::Check,
        scan,
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!((check.scanned, check.wrong), (leads.len() as u64, 0), "{check:?}");
}

/// The operator's check through the real binary: exit 1 while items are unindexed
/// (their keys printed, never their contents), 0 once the backfill has run.
#[tokio::test]
async fn check_index_exits_1_on_a_finding_and_0_after_the_backfill() {
    let stack = TestStack::new("indexer-exit").await;
    let records: Vec<Record> = synth::leads(12, 5).collect();
    for record in &records {
        put(&stack, table_of(&stack, record), bare_item(record)).await;
    }
    let run = |args: &[&str]| {
        std::process::Command::new(server::exportctl_path())
            .args(args)
            .envs(server::stack_env(&stack))
            .output()
            .expect("exportctl runs")
    };
    let found = run(&["check-index", "--table", "leads"]);
    let out = String::from_utf8_lossy(&found.stdout).into_owned() + &String::from_utf8_lossy(&found.stderr);
    assert_eq!(found.status.code(), Some(1), "{out}");
    let Record::Lead(first) = &records[0] else {
        unreachable!()
    };
    assert!(out.contains(&*first.lead_id), "the keys are named: {out}");
    assert!(!out.contains(&*first.company_name), "never the contents: {out}");
    assert!(run(&["backfill", "--table", "leads"]).status.success());
    let clean = run(&["check-index"]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
}
