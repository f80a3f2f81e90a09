//! Every kind in every format through its route, and the options every route takes:
//! `compression` (read back by decompressing), `bom`, `time_zone` (read back in CSV
//! and Excel); the snapshot cut at `as_of`; every kind audited.

use std::{
    io::{Cursor, Read},
    sync::Arc,
};

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use chrono::{DateTime, Utc};
use common::{
    clock::FixedClock,
    load::Record,
    model::{ChatMessage, Lead},
    synth,
};
use integration_tests::*;
use lambda_http::{Body, Response};
use parquet::{
    basic::Compression,
    file::reader::{FileReader, SerializedFileReader},
};
use serde_json::Value;

const SESSIONS: &str = sessions_export::PATH;
const LEADS: &str = leads_export::PATH;
const CHATS: &str = chats_export::DOWNLOAD_PATH;
const CONVERSATIONS: &str = chats_export::CONVERSATIONS_PATH;

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn stack(name: &str) -> TestStack {
    let stack = TestStack::with_config(name, |c| c.chat.per_user_per_minute = 1000).await;
    let records: Vec<Record> = synth::sessions(4, 20)
        .chain(synth::leads(4, 30))
        .chain(synth::chat_messages(4, 60))
        .collect();
    stack.load(records).await;
    stack
}

async fn get(stack: &TestStack, query: &str) -> Response<Body> {
    let auth = format!("Bearer {}", stack.admin_token());
    exportctl::serve::route(&stack.ctx, request("GET", query, &[("authorization", &auth)])).await
}

fn ok(resp: &Response<Body>) -> Vec<u8> {
    assert_eq!(resp.status(), 200, "{}", String::from_utf8_lossy(&body_bytes(resp)));
    body_bytes(resp)
}

fn file_name(resp: &Response<Body>) -> String {
    let cd = header(resp, "content-disposition");
    cd.split("filename=\"")
        .nth(1)
        .unwrap()
        .trim_end_matches('"')
        .to_string()
}

fn workbook_rows(bytes: &[u8], sheet: &str) -> Vec<Vec<Data>> {
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.to_vec())).expect("a workbook");
    wb.worksheet_range(sheet)
        .expect("sheet")
        .rows()
        .map(|r| r.to_vec())
        .collect()
}

fn parquet_file(bytes: &[u8]) -> SerializedFileReader<bytes::Bytes> {
    assert_parquet(bytes, "a Parquet file");
    SerializedFileReader::new(bytes::Bytes::from(bytes.to_vec())).expect("a readable Parquet file")
}

/// The number of records a document holds, whatever its format.
fn count(format: &str, bytes: &[u8], sheet: &str) -> usize {
    match format {
        "csv" => parse_csv(bytes).1.len(),
        "json" => {
            let v: Value = serde_json::from_slice(bytes).unwrap();
            v.get("messages").unwrap_or(&v).as_array().unwrap().len()
        }
        "jsonl" => json_lines(bytes).len(),
        "xlsx" | "excel" => workbook_rows(bytes, sheet).len() - 1,
        "parquet" => parquet_file(bytes).metadata().file_metadata().num_rows() as usize,
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn every_kind_comes_in_every_format() {
    let stack = stack("opts-formats").await;
    let kinds = [
        (
            SESSIONS,
            "Chat Sessions",
            vec!["csv", "json", "jsonl", "xlsx", "parquet"],
            "chat-sessions-export-",
        ),
        (
            LEADS,
            "Leads",
            vec!["csv", "json", "jsonl", "xlsx", "parquet"],
            "leads-export-",
        ),
        (
            CHATS,
            "Chat Messages",
            vec!["csv", "json", "jsonl", "excel", "xlsx", "parquet"],
            "chat-export-",
        ),
        (
            CONVERSATIONS,
            "Conversations",
            vec!["csv", "json", "jsonl", "xlsx", "parquet"],
            "conversations-export-",
        ),
    ];
    for (path, sheet, formats, stem) in kinds {
        let mut counts = Vec::new();
        for format in formats {
            // The chat routes default to 10,000 records: ask for all of them.
            let limit = if path == CHATS || path == CONVERSATIONS {
                "&limit=100000"
            } else {
                ""
            };
            let resp = get(&stack, &format!("{path}?format={format}{limit}")).await;
            let name = file_name(&resp);
            let ext = if format == "excel" { "xlsx" } else { format };
            assert!(name.starts_with(stem) && name.ends_with(&format!(".{ext}")), "{name}");
            counts.push(count(format, &ok(&resp), sheet));
        }
        assert!(counts.iter().all(|c| *c == counts[0] && *c > 0), "{path}: {counts:?}");
    }
}

#[tokio::test]
async fn compression_wraps_the_same_document() {
    let stack = stack("opts-compression").await;
    let plain = ok(&get(&stack, &format!("{LEADS}?format=csv")).await);

    let resp = get(&stack, &format!("{LEADS}?format=csv&compression=gzip")).await;
    assert_eq!(header(&resp, "content-type"), "application/gzip");
    assert!(file_name(&resp).ends_with(".csv.gz"));
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&ok(&resp)[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain);

    let resp = get(&stack, &format!("{LEADS}?format=csv&compression=zip")).await;
    assert_eq!(header(&resp, "content-type"), "application/zip");
    let name = file_name(&resp);
    assert!(name.starts_with("leads-export-") && name.ends_with(".zip"));
    let mut zip = zip::ZipArchive::new(Cursor::new(ok(&resp))).unwrap();
    assert_eq!(zip.len(), 1);
    let mut entry = zip.by_index(0).unwrap();
    assert_eq!(entry.name().unwrap(), name.replace(".zip", ".csv"));
    let mut inner = Vec::new();
    entry.read_to_end(&mut inner).unwrap();
    assert_eq!(inner, plain);

    // Binary documents too: a gzipped workbook and a gzipped ZIP of both chat files.
    let resp = get(&stack, &format!("{SESSIONS}?format=xlsx&compression=gzip")).await;
    let mut xlsx = Vec::new();
    flate2::read::GzDecoder::new(&ok(&resp)[..])
        .read_to_end(&mut xlsx)
        .unwrap();
    let sessions_csv = ok(&get(&stack, SESSIONS).await);
    assert_eq!(
        workbook_rows(&xlsx, "Chat Sessions").len() - 1,
        parse_csv(&sessions_csv).1.len()
    );
    let resp = get(&stack, &format!("{CHATS}?format=both&compression=gzip&limit=100000")).await;
    assert!(file_name(&resp).ends_with(".zip.gz"));
    let mut both = Vec::new();
    flate2::read::GzDecoder::new(&ok(&resp)[..])
        .read_to_end(&mut both)
        .unwrap();
    assert_eq!(zip::ZipArchive::new(Cursor::new(both)).unwrap().len(), 2);
}

/// A Parquet file's `compression` is its codec (zstd by default); the whole-file
/// compressions and the spreadsheet options do not apply to it, nor the codecs to the
/// other formats: each is a 400 that says why.
#[tokio::test]
async fn parquet_takes_its_codec_and_refuses_what_does_not_apply() {
    let stack = stack("opts-parquet").await;
    let mut rows = Vec::new();
    for (option, codec) in [
        ("", Compression::ZSTD(Default::default())),
        ("&compression=zstd", Compression::ZSTD(Default::default())),
        ("&compression=snappy", Compression::SNAPPY),
        ("&compression=none", Compression::UNCOMPRESSED),
    ] {
        let resp = get(&stack, &format!("{LEADS}?format=parquet{option}")).await;
        assert_eq!(header(&resp, "content-type"), "application/vnd.apache.parquet");
        let name = file_name(&resp);
        assert!(
            name.starts_with("leads-export-") && name.ends_with(".parquet"),
            "{name}"
        );
        let file = parquet_file(&ok(&resp));
        let meta = file.metadata();
        let group = meta.row_group(0);
        // zstd's level is not in the file: compare the codec only.
        assert_eq!(
            std::mem::discriminant(&group.column(0).compression()),
            std::mem::discriminant(&codec),
            "{option}"
        );
        rows.push(meta.file_metadata().num_rows());
    }
    assert!(rows.iter().all(|n| *n == rows[0] && *n > 0), "{rows:?}");

    for (query, says) in [
        (
            format!("{LEADS}?format=parquet&compression=gzip"),
            "compression gzip does not apply to the parquet format",
        ),
        (
            format!("{SESSIONS}?format=parquet&compression=zip"),
            "compression zip does not apply to the parquet format",
        ),
        (
            format!("{LEADS}?format=csv&compression=zstd"),
            "compression zstd applies to the parquet format only",
        ),
        (
            format!("{CHATS}?format=both&compression=snappy"),
            "compression snappy applies to the parquet format only",
        ),
        (
            format!("{CONVERSATIONS}?format=parquet&bom=true"),
            "bom applies to the csv format only",
        ),
        (
            format!("{CHATS}?format=parquet&spreadsheet_safe=false"),
            "spreadsheet_safe applies to csv and Excel files only",
        ),
    ] {
        let resp = get(&stack, &query).await;
        let body = String::from_utf8_lossy(&body_bytes(&resp)).to_string();
        assert_eq!(resp.status(), 400, "{query}: {body}");
        // Each route's documented error shape (the leads route puts the reason in `error`).
        let error: Value = serde_json::from_str(&body).unwrap();
        let reason = format!("{} {}", error["message"], error["error"]);
        assert!(reason.contains(says), "{query}: {body}");
    }
}

#[tokio::test]
async fn a_bom_starts_the_csv_and_is_refused_elsewhere() {
    let stack = stack("opts-bom").await;
    for path in [SESSIONS, LEADS, CHATS, CONVERSATIONS] {
        let query = if path == CHATS {
            format!("{path}?format=csv&bom=true")
        } else {
            format!("{path}?bom=true")
        };
        let bytes = ok(&get(&stack, &query).await);
        assert!(bytes.starts_with("\u{feff}".as_bytes()), "{path}");
        let without = &bytes[3..];
        assert!(!parse_csv(without).1.is_empty());
        let resp = get(&stack, &format!("{path}?format=json&bom=true")).await;
        assert_eq!(resp.status(), 400, "{path}");
    }
}

#[tokio::test]
async fn time_zones_show_the_same_instants_in_csv_and_excel() {
    let stack = TestStack::new("opts-zones").await;
    let lead = |id: &str, at: &str| -> Lead {
        let Record::Lead(mut l) = synth::leads(9, 1).next().unwrap() else {
            unreachable!()
        };
        l.lead_id = id.into();
        l.company_id = "comp-z".into();
        l.created_at = ts(at);
        l.updated_at = ts(at);
        l.first_interest_detected = None;
        l.last_interest_detected = None;
        l.converted_at = None;
        l
    };
    // Winter and summer time in Berlin, and a lead on 2024-03-31 22:30 UTC, which is
    // already April 1st in Berlin.
    let leads = vec![
        lead("z1", "2024-01-15T10:30:00.250Z"),
        lead("z2", "2024-07-15T10:30:00Z"),
        lead("z3", "2024-03-31T22:30:00Z"),
    ];
    stack.load(leads.into_iter().map(Record::Lead).collect()).await;
    let columns = "columns=lead_id,created_at";
    let csv = ok(&get(&stack, &format!("{LEADS}?{columns}&time_zone=Europe/Berlin")).await);
    let (_, rows) = parse_csv(&csv);
    let got: Vec<(String, String)> = rows.into_iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    assert_eq!(
        got,
        [
            ("z1".to_string(), "2024-01-15T11:30:00.250+01:00".to_string()),
            ("z3".to_string(), "2024-04-01T00:30:00.000+02:00".to_string()),
            ("z2".to_string(), "2024-07-15T12:30:00.000+02:00".to_string()),
        ]
    );
    for (_, value) in &got {
        assert!(
            DateTime::parse_from_rfc3339(value).is_ok(),
            "an exact RFC 3339 instant: {value}"
        );
    }
    // Date-only bounds are days in the zone: April 1st in Berlin holds z3.
    let csv = ok(&get(
        &stack,
        &format!("{LEADS}?{columns}&time_zone=europe/berlin&startDate=2024-04-01&endDate=2024-04-01"),
    )
    .await);
    assert_eq!(
        parse_csv(&csv).1.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
        ["z3"]
    );
    let csv = ok(&get(
        &stack,
        &format!("{LEADS}?{columns}&startDate=2024-04-01&endDate=2024-04-01"),
    )
    .await);
    assert!(parse_csv(&csv).1.is_empty(), "in UTC, z3 is on March 31st");
    // Excel holds the wall-clock time, and its header names the zone.
    let xlsx = ok(&get(&stack, &format!("{LEADS}?{columns}&format=xlsx&time_zone=Asia/Kolkata")).await);
    let rows = workbook_rows(&xlsx, "Leads");
    assert_eq!(rows[0][1], Data::String("Created At (Asia/Kolkata)".into()));
    let Data::DateTime(d) = &rows[1][1] else {
        panic!("{:?}", rows[1][1])
    };
    assert_eq!(d.as_datetime().unwrap().to_string(), "2024-01-15 16:00:00.250");
    // A zone that does not exist is refused by name.
    let resp = get(&stack, &format!("{LEADS}?time_zone=Mars/Olympus")).await;
    assert_eq!(resp.status(), 400);
    assert!(
        body_json(&resp)["error"]
            .as_str()
            .unwrap()
            .starts_with("time_zone must be an IANA time zone")
    );
}

#[tokio::test]
async fn rows_written_after_as_of_are_not_exported_and_future_timestamps_are() {
    let stack = TestStack::new("opts-as-of").await;
    let msg = |id: &str, at: &str| ChatMessage {
        id: id.into(),
        timestamp: ts(at),
        created_at: ts(at),
        ..match synth::chat_messages(5, 1).next().unwrap() {
            Record::ChatMessage(m) => ChatMessage {
                client_id: "client-z".into(),
                ..m
            },
            _ => unreachable!(),
        }
    };
    let written_at = ts("2026-01-01T00:00:00Z");
    common::load::write_records(
        &stack.ctx.aws.dynamodb,
        &stack.ctx.config.tables,
        vec![
            Record::ChatMessage(msg("past", "2024-01-01T00:00:00Z")),
            Record::ChatMessage(msg("future", "2099-01-01T00:00:00Z")),
        ],
        written_at,
    )
    .await
    .unwrap();
    let ids = |resp: Response<Body>| -> Vec<String> {
        body_json(&resp)["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    // Asked for before the messages were written: none of them is in the file.
    let clock = Arc::new(FixedClock::new(ts("2025-12-31T23:59:59.999Z")));
    let before = TestStack {
        ctx: stack.ctx.clone().with_clock(clock.clone()),
    };
    assert!(ids(get(&before, &format!("{CHATS}?client_id=client-z")).await).is_empty());
    // Asked for when (or after) they were written: all of them, the one timestamped
    // in 2099 included (an item's own timestamps never cut it).
    clock.set(written_at);
    assert_eq!(
        ids(get(&before, &format!("{CHATS}?client_id=client-z&date_from=2020-01-01")).await),
        ["past", "future"]
    );
    // The file is named after as_of's day.
    let resp = get(&before, &format!("{CHATS}?client_id=client-z")).await;
    assert_eq!(file_name(&resp), "chat-export-2026-01-01.json");
    assert_eq!(body_json(&resp)["export_info"]["export_date"], "2026-01-01T00:00:00Z");
}

#[tokio::test]
async fn every_kind_is_audited() {
    let stack = stack("opts-audit").await;
    assert_eq!(get(&stack, SESSIONS).await.status(), 200);
    assert_eq!(
        get(&stack, &format!("{LEADS}?companyId=comp-acme,comp-globex"))
            .await
            .status(),
        200
    );
    assert_eq!(get(&stack, &format!("{LEADS}?companyId=comp-acme")).await.status(), 200);
    assert_eq!(
        get(&stack, &format!("{CONVERSATIONS}?client_id=client-alpha"))
            .await
            .status(),
        200
    );
    assert_eq!(get(&stack, &format!("{LEADS}?confidence=wrong")).await.status(), 400);
    let records = audit_records(&stack).await;
    let seen: Vec<(&str, &str, u16)> = records
        .iter()
        .map(|r| (r.route.as_str(), r.client_scope.as_str(), r.status))
        .collect();
    assert_eq!(
        seen,
        [
            ("GET /api/admin/sessions/export", "all", 200),
            ("GET /api/hybrid-leads/export", "companies", 200),
            ("GET /api/hybrid-leads/export", "company#comp-acme", 200),
            ("GET /client/export/conversations", "client#client-alpha", 200),
            ("GET /api/hybrid-leads/export", "none", 400),
        ]
    );
    assert!(records[0].records.unwrap() > 0 && records[0].parameters.is_some());
}
