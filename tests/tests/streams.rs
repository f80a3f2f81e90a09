//! The indexer on a real DynamoDB stream: items written through the SDK the way the
//! platform writes them (no derived attributes, no `written_at`) into a DynamoDB with
//! Streams (moto_server, `STREAMS_ENDPOINT`), the stream read with
//! aws-sdk-dynamodbstreams by the follower of `exportctl serve --streams`, each batch
//! given to the real indexer handler. Then every export (each kind, every tenant,
//! ranges, all-tenant and conversations) equals, row for row, the export of the same
//! data loaded by `exportctl load` on the default local DynamoDB.

// The route futures are deep (clippy computes their layout).
#![recursion_limit = "256"]

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use common::{load::Record, synth, timefmt};
use exportctl::streams::{Follower, Round};
use integration_tests::*;

/// Many exports in one test: the chat routes' rate limits out of the way.
fn unlimited(c: &mut common::config::Config) {
    c.chat.per_user_per_minute = 10_000;
    c.chat.per_client_per_hour = 10_000;
}

fn records() -> Vec<Record> {
    synth::sessions(21, 12)
        .chain(synth::leads(21, 60))
        .chain(synth::chat_messages(21, 150))
        .collect()
}

/// Writes items as the platform would: BatchWriteItem of bare items.
async fn write_bare(stack: &TestStack, records: &[Record]) {
    for chunk in records.chunks(25) {
        let mut batch: std::collections::HashMap<String, Vec<WriteRequest>> = Default::default();
        for record in chunk {
            let put = PutRequest::builder().set_item(Some(bare_item(record))).build().unwrap();
            batch
                .entry(record.table(&stack.ctx.config.tables).to_string())
                .or_default()
                .push(WriteRequest::builder().put_request(put).build());
        }
        let out = stack
            .ctx
            .aws
            .dynamodb
            .batch_write_item()
            .set_request_items(Some(batch))
            .send()
            .await
            .unwrap();
        assert!(out.unprocessed_items.unwrap_or_default().is_empty());
    }
}

/// Every export the data allows: each kind, every tenant, ranges, all-tenant.
fn queries(records: &[Record]) -> Vec<String> {
    let leads = leads_export::PATH;
    let chats = chats_export::DOWNLOAD_PATH;
    let conversations = chats_export::CONVERSATIONS_PATH;
    let mut companies = BTreeSet::new();
    let mut bots = BTreeSet::new();
    let mut conversation_ids = BTreeSet::new();
    let mut times = Vec::new();
    for r in records {
        match r {
            Record::Lead(l) => {
                companies.insert(l.company_id.to_string());
                bots.insert(l.chatbot_id.to_string());
            }
            Record::ChatMessage(m) => {
                conversation_ids.insert(m.conversation_id.to_string());
                times.push(m.timestamp);
            }
            _ => {}
        }
    }
    times.sort();
    let (from, to) = (times[times.len() / 3], times[2 * times.len() / 3]);
    let (from, to) = (timefmt::format(&from), timefmt::format(&to));
    let mut q = vec![
        format!("{leads}?format=csv"),
        format!("{leads}?format=json"),
        format!("{leads}?format=csv&startDate={}&endDate={}", &from[..10], &to[..10]),
        format!("{chats}?format=csv&limit=100000"),
        format!("{chats}?format=json&limit=100000&include_geo=true&include_meta=true"),
        format!("{chats}?format=csv&limit=100000&date_from={from}&date_to={to}"),
        format!("{conversations}?format=csv"),
    ];
    q.extend(companies.iter().map(|c| format!("{leads}?format=csv&companyId={c}")));
    q.extend(bots.iter().take(3).map(|b| format!("{leads}?format=csv&chatbotId={b}")));
    for client in synth::CLIENTS {
        q.push(format!("{chats}?format=csv&limit=100000&client_id={client}"));
        q.push(format!(
            "{chats}?format=csv&client_id={client}&date_from={from}&date_to={to}"
        ));
        q.push(format!("{conversations}?format=csv&client_id={client}"));
        q.push(format!(
            "{conversations}?format=csv&client_id={client}&date_from={from}"
        ));
    }
    for v in conversation_ids.iter().take(4) {
        q.push(format!("{chats}?format=csv&limit=100000&conversation_id={v}"));
        q.push(format!("{conversations}?format=csv&conversation_id={v}"));
    }
    q
}

/// The chat document says when it was made (`"export_date":"<RFC 3339, seconds>"`):
/// two exports a second apart differ there only.
fn without_export_date(mut body: Vec<u8>) -> Vec<u8> {
    let key = br#""export_date":""#;
    if let Some(at) = body.windows(key.len()).position(|w| w == key) {
        let start = at + key.len();
        body.drain(start..start + "2024-01-01T00:00:00Z".len());
    }
    body
}

async fn drain(follower: &mut Follower) -> Round {
    follower.poll().await.expect("the streams are read")
}

#[tokio::test]
async fn items_written_bare_into_a_real_stream_export_exactly_as_loaded_ones_after_the_indexer() {
    let records = records();
    let loaded = TestStack::with_config("streams-loaded", unlimited).await;
    loaded.load(records.clone()).await;
    let (bare, streams) = TestStack::with_streams("streams-bare", unlimited).await;
    write_bare(&bare, &records).await;

    let queries = queries(&records);
    let sessions_before = parse_csv(&bare.admin_body(&format!("{}?format=csv", sessions_export::PATH)).await).1;
    let all_before = parse_csv(&bare.admin_body(&queries[0]).await).1;
    assert!(
        all_before.is_empty(),
        "unindexed leads are not in the all-company export"
    );

    // A round reads each shard until it is quiet: every INSERT, then the MODIFY that
    // each indexer write makes, which the indexer finds nothing to do with. So the
    // round ends, and the next one finds no record: no loop.
    let mut follower = Follower::new(&bare.ctx, streams);
    let indexed = records.iter().filter(|r| !matches!(r, Record::Session(_))).count();
    let first = drain(&mut follower).await;
    assert_eq!(
        first,
        Round {
            delivered: 2 * indexed,
            failed: 0
        },
        "one INSERT and one MODIFY per item"
    );
    assert_eq!(
        drain(&mut follower).await,
        Round::default(),
        "the indexer's own writes end there"
    );

    for query in &queries {
        let (got, want) = (
            without_export_date(bare.admin_body(query).await),
            without_export_date(loaded.admin_body(query).await),
        );
        assert_same_bytes(&got, &want, query);
    }
    // Sessions come in Scan order, which is the emulator's own: the same rows.
    let sorted = |mut rows: Vec<Vec<String>>| {
        rows.sort();
        rows
    };
    let path = format!("{}?format=csv", sessions_export::PATH);
    let want = sorted(parse_csv(&loaded.admin_body(&path).await).1);
    assert_eq!(sorted(parse_csv(&bare.admin_body(&path).await).1), want);
    assert_eq!(sorted(sessions_before), want, "sessions need no derived key");
}

/// `exportctl serve --streams` follows the streams itself: a lead written bare
/// reaches the all-company export without anything else running.
#[tokio::test]
async fn serve_with_streams_indexes_what_a_writer_stores() {
    let (stack, _) = TestStack::with_streams("streams-serve", |_| {}).await;
    let endpoint = std::env::var("STREAMS_ENDPOINT").unwrap();
    let server = server::Server::start_with(
        &stack,
        &["--streams", "--no-worker", "--tick-seconds", "0"],
        &[
            ("AWS_ENDPOINT_URL_DYNAMODB", &endpoint),
            ("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", &endpoint),
        ],
    )
    .await;
    let leads: Vec<Record> = synth::leads(31, 5).collect();
    write_bare(&stack, &leads).await;
    let want = parse_csv(&{
        let loaded = TestStack::new("streams-serve-loaded").await;
        loaded.load(leads.clone()).await;
        loaded.admin_body(&format!("{}?format=csv", leads_export::PATH)).await
    })
    .1;
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let body = http
            .get(format!("{}{}?format=csv", server.base, leads_export::PATH))
            .bearer_auth(stack.admin_token())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        if parse_csv(&body).1 == want {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the leads were not indexed: {}",
            server.log_text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
