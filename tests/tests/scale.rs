//! Exports at scale (`common::scale`) against the local DynamoDB and S3 emulators:
//! a table written in DynamoDB's export format (`exportctl native-export`), converted
//! data file by data file and assembled (`exportctl convert`, the functions of the
//! export-scale Lambda) with S3's part sizes lowered, so that ranged `UploadPartCopy`,
//! small-part buffering and the top-up of a buffer are all used. Every file holds the
//! live export's rows (in file order), an empty export is the live empty file, scopes
//! and filters hold, the job ends as a worker's does, and failures leave nothing.

use std::io::{Cursor, Read};

use base64::Engine as _;
use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use common::{
    AppContext,
    compile::compile,
    export,
    jobs::{JobStatus, store::JobStore},
    load::Record,
    scale::{
        self, AssembleRequest, ConvertRequest, FileCount, ScaleEvent, StartRequest, Tuning,
        assemble::{Limits, PlanStats},
        convert::PartTuning,
        format::{S3Url, manifest_files, read_summary},
        native::WrittenExport,
    },
    spec::{Compression, ExportSpec},
    synth,
};
use exportctl::{
    progress::Bars,
    scale::{Conversion, convert, native_export},
};
use futures::TryStreamExt;
use integration_tests::*;
use md5::{Digest as _, Md5};
use serde_json::{Value, json};

/// Small pages and workbooks, so a few thousand rows make many of them. The part
/// sizes are S3's own: the S3 emulator refuses a non-last part below 5 MiB, as S3 does.
fn tuning() -> Tuning {
    Tuning {
        part: PartTuning {
            page_items: 64,
            rows_per_workbook: 400,
            ..PartTuning::default()
        },
        limits: Limits::default(),
        concurrency: 3,
    }
}

/// Leads of every synthetic company, with awkward values in many of them; with
/// `pad`, each summary is that many characters longer (rows of a few KB, so data
/// files of a thousand items make parts of several MiB).
fn awkward_leads(count: usize, pad: usize) -> Vec<Record> {
    let words = ["lorem", "ipsum", "dolor", "sit", "amet", "ünï", "中文", "x,y", "\"q\""];
    let mut records: Vec<Record> = synth::leads(11, count)
        .enumerate()
        .map(|(i, r)| match r {
            Record::Lead(mut l) => {
                match i % 6 {
                    0 => l.conversation_summary = Some("one, two\n\"three\"\r\nfour 😀 ü ß 中文".into()),
                    1 => {
                        l.email = None;
                        l.phone = Some(String::new().into());
                        l.tags = vec![];
                        l.session_duration = Some(u64::MAX);
                    }
                    2 => {
                        l.conversation_summary = Some("=HYPERLINK(\"http://x\",\"y\")".into());
                        l.tags = vec!["+cmd".into(), "a,b".into(), "@at".into()];
                    }
                    3 => {
                        l.session_duration = Some(1_000_000_000_000_000);
                        l.conversion_value = Some(0.1 + 0.2);
                        l.user_agent = Some("-2+3".into());
                    }
                    4 => l.location_city = Some(String::new().into()),
                    _ => {}
                }
                if pad > 0 {
                    let mut filler = l.conversation_summary.take().unwrap_or_default();
                    let mut n = i as u64;
                    while filler.len() < pad {
                        n = n
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1_442_695_040_888_963_407);
                        filler.push_str(words[(n >> 33) as usize % words.len()]);
                        filler.push(' ');
                    }
                    l.conversation_summary = Some(filler);
                }
                Record::Lead(l)
            }
            other => other,
        })
        .collect();
    // One lead far larger than the others (a summary of 180,000 characters).
    if let Some(Record::Lead(first)) = records.first().cloned() {
        let mut big = first;
        big.lead_id = "lead-big".into();
        big.conversation_summary = Some("é,\"".repeat(60_000).into());
        records.push(Record::Lead(big));
    }
    records
}

async fn stack_with(name: &str, records: Vec<Record>) -> TestStack {
    let stack = TestStack::new(name).await;
    stack.load(records).await;
    stack
}

async fn export_table(stack: &TestStack, table: &str, items_per_file: u64) -> WrittenExport {
    let ctx = &stack.ctx;
    native_export(
        ctx,
        table,
        &ctx.config.delivery.bucket,
        "dyn",
        items_per_file,
        4,
        &Bars::hidden(),
    )
    .await
    .expect("native export")
}

/// An export at scale, run as the state machine runs it.
async fn at_scale(
    ctx: &AppContext,
    manifest: &str,
    kind: &str,
    format: &str,
    params: Value,
) -> Result<Value, common::Error> {
    convert(
        ctx,
        Conversion {
            manifest: manifest.into(),
            kind: kind.into(),
            format: Some(format.into()),
            name: "scale-test".into(),
            params: params.as_object().cloned().unwrap_or_default(),
            concurrency: 3,
            tuning: tuning(),
        },
        &Bars::hidden(),
    )
    .await
}

/// The live export of the job's spec (the same spec, run from DynamoDB in one go).
async fn live(ctx: &AppContext, job_id: &str) -> Vec<u8> {
    let job = JobStore::of(ctx).get(job_id).await.unwrap().unwrap();
    let spec = match job.spec().unwrap() {
        ExportSpec::Leads(mut s) => {
            s.options.compression = Compression::None;
            ExportSpec::Leads(s)
        }
        other => other,
    };
    let pipeline = compile(&spec, ctx.store.as_ref()).unwrap();
    export::run(pipeline, Collect::default()).await.unwrap().1
}

fn same_csv(got: &[u8], want: &[u8]) -> usize {
    let (gh, mut gr) = parse_csv(got);
    let (wh, mut wr) = parse_csv(want);
    assert_eq!(gh, wh, "headers");
    assert_eq!(gr.len(), wr.len(), "rows");
    gr.sort();
    wr.sort();
    assert!(gr == wr, "the rows differ from the live export's");
    gr.len()
}

/// The lines of a JSON Lines file, each checked to be one JSON object, sorted.
fn same_lines(got: &[u8], want: &[u8]) -> usize {
    fn lines(bytes: &[u8]) -> Vec<&str> {
        json_lines(bytes); // each line is one JSON object
        let mut lines: Vec<&str> = std::str::from_utf8(bytes).unwrap().split_terminator('\n').collect();
        lines.sort_unstable();
        lines
    }
    let (got, want) = (lines(got), lines(want));
    assert!(got == want, "the lines differ from the live export's");
    got.len()
}

fn json_rows(bytes: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(bytes).expect("valid JSON");
    let mut rows: Vec<String> = v.as_array().expect("an array").iter().map(Value::to_string).collect();
    rows.sort();
    rows
}

/// Header and rows (as text) of the first sheet of a workbook.
fn workbook(bytes: Vec<u8>) -> (Vec<String>, Vec<String>) {
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).expect("a valid workbook");
    let names = wb.sheet_names();
    assert_eq!(names, ["Leads"], "one sheet per workbook");
    let range = wb.worksheet_range("Leads").unwrap();
    let mut rows = range.rows();
    let header = rows
        .next()
        .map(|r| r.iter().map(|c: &Data| c.to_string()).collect())
        .unwrap_or_default();
    (header, rows.map(|r| format!("{r:?}")).collect())
}

/// Every workbook of an archive: names, headers, all rows sorted.
fn archive(bytes: Vec<u8>) -> (Vec<String>, Vec<Vec<String>>, Vec<String>) {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).expect("a valid ZIP");
    let (mut names, mut headers, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        assert_eq!(f.compression(), zip::CompressionMethod::Stored);
        names.push(f.name().unwrap().to_string());
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        let (h, r) = workbook(data);
        headers.push(h);
        rows.extend(r);
    }
    rows.sort();
    (names, headers, rows)
}

fn add(total: &mut PlanStats, plan: &Value) {
    let p: PlanStats = PlanStats {
        upload_parts: plan["upload_parts"].as_u64().unwrap() as usize,
        copies: plan["copies"].as_u64().unwrap() as usize,
        ranged_copies: plan["ranged_copies"].as_u64().unwrap() as usize,
        uploads: plan["uploads"].as_u64().unwrap() as usize,
        top_ups: plan["top_ups"].as_u64().unwrap() as usize,
        remainders: plan["remainders"].as_u64().unwrap() as usize,
        buffered_parts: plan["buffered_parts"].as_u64().unwrap() as usize,
    };
    total.copies += p.copies;
    total.ranged_copies += p.ranged_copies;
    total.top_ups += p.top_ups;
    total.buffered_parts += p.buffered_parts;
    total.uploads += p.uploads;
}

async fn objects_under(stack: &TestStack, prefix: &str) -> Vec<String> {
    stack
        .object_keys()
        .await
        .into_iter()
        .filter(|k| k.starts_with(prefix))
        .collect()
}

/// What an export at scale keeps while it runs (parts, sidecars, item lists).
async fn scale_objects(stack: &TestStack) -> Vec<String> {
    objects_under(stack, "scale/").await
}

/// Exported files.
async fn export_objects(stack: &TestStack) -> Vec<String> {
    objects_under(stack, "exports/").await
}

#[tokio::test]
async fn leads_at_scale_hold_the_live_rows_in_every_format() {
    let stack = stack_with("scale_leads", awkward_leads(6000, 4000)).await;
    let ctx = &stack.ctx;
    let written = export_table(&stack, "leads", 1400).await;
    assert_eq!(written.items, 6001);
    assert!(written.files >= 8, "{written:?}");
    let admin = stack.admin_token();
    let mut plans = PlanStats::default();
    for format in ["csv", "json", "jsonl", "xlsx"] {
        let done = at_scale(ctx, &written.manifest, "leads", format, json!({}))
            .await
            .expect(format);
        eprintln!("{format}: {}", done["plan"]);
        add(&mut plans, &done["plan"]);
        let id = done["job_id"].as_str().unwrap().to_string();
        let key = done["s3_key"].as_str().unwrap();
        let file = object(ctx, key).await;
        let want = live(ctx, &id).await;
        let rows = match format {
            "csv" => same_csv(&file, &want),
            "jsonl" => same_lines(&file, &want),
            "json" => {
                let (got, want) = (json_rows(&file), json_rows(&want));
                assert!(got == want, "the JSON rows differ from the live export's");
                assert!(file.starts_with(b"[\n{") && file.ends_with(b"}\n]\n"), "framed as live");
                got.len()
            }
            _ => {
                let (names, headers, got) = archive(file.clone());
                let (live_header, mut live_rows) = workbook(want);
                live_rows.sort();
                assert!(
                    headers.iter().all(|h| *h == live_header),
                    "every workbook has the header"
                );
                assert!(got == live_rows, "the Excel rows differ from the live export's");
                assert!(names.iter().all(|n| n.starts_with("leads-") && n.ends_with(".xlsx")));
                assert!(names.contains(&"leads-00000-1.xlsx".to_string()));
                assert!(
                    names.iter().any(|n| n.ends_with("-3.xlsx")),
                    "several workbooks in a part: {names:?}"
                );
                assert!(key.ends_with(".zip"));
                got.len()
            }
        };
        assert_eq!(rows, 6001, "{format}");
        // The job ends as a worker's job does, and the download route serves its file.
        let job = JobStore::of(ctx).get(&id).await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Succeeded);
        assert_eq!(job.rows, Some(6001));
        assert_eq!(job.rows_done, 6001, "every part counted once");
        assert_eq!(job.size_bytes, Some(file.len() as u64));
        assert_eq!(job.owner, "operator-scale-test");
        assert_eq!(done["job"]["trigger"], "event");
        let auth = format!("Bearer {admin}");
        let resp = exportctl::serve::route(
            ctx,
            request(
                "GET",
                &format!("/api/exports/{id}/download"),
                &[("authorization", auth.as_str())],
            ),
        )
        .await;
        assert_eq!(resp.status(), 303, "{}", String::from_utf8_lossy(&body_bytes(&resp)));
        let got = reqwest::get(header(&resp, "location")).await.unwrap();
        assert_eq!(got.status(), 200);
        let disposition = got.headers()["content-disposition"].to_str().unwrap().to_string();
        assert!(disposition.contains(&job.file_name), "{disposition}");
        assert_eq!(
            got.bytes().await.unwrap().to_vec(),
            file,
            "{format}: the download is the file"
        );
        assert!(scale_objects(&stack).await.is_empty(), "{format}: parts left behind");
    }
    assert!(plans.copies > 0, "{plans:?}");
    assert!(plans.ranged_copies > 0, "{plans:?}");
    assert!(plans.top_ups > 0, "{plans:?}");
    assert!(plans.buffered_parts > 0, "{plans:?}");
}

#[tokio::test]
async fn tenant_scopes_and_filters_hold_at_scale() {
    let mut records = awkward_leads(1200, 0);
    records.extend(synth::chat_messages(5, 1500));
    let stack = stack_with("scale_scope", records).await;
    let ctx = &stack.ctx;
    let leads = export_table(&stack, "leads", 60).await;
    let params = json!({"companyId": "comp-acme", "confidence": "high"});
    let done = at_scale(ctx, &leads.manifest, "leads", "csv", params).await.unwrap();
    let id = done["job_id"].as_str().unwrap();
    let file = object(ctx, done["s3_key"].as_str().unwrap()).await;
    let rows = same_csv(&file, &live(ctx, id).await);
    let (header, parsed) = parse_csv(&file);
    let company = header.iter().position(|h| h == "Company Name").unwrap();
    let confidence = header.iter().position(|h| h == "Confidence").unwrap();
    assert!(rows > 10 && rows < 1200, "{rows}");
    assert!(
        parsed
            .iter()
            .all(|r| r[company] == "Acme, Inc." && r[confidence] == "high")
    );

    let chats = export_table(&stack, "chat_messages", 80).await;
    assert_eq!(chats.items, 1500);
    let params =
        json!({"client_id": "client-beta", "include_meta": true, "include_geo": true, "date_from": "2024-01-03"});
    let done = at_scale(ctx, &chats.manifest, "chats", "csv", params.clone())
        .await
        .unwrap();
    let id = done["job_id"].as_str().unwrap();
    let file = object(ctx, done["s3_key"].as_str().unwrap()).await;
    let rows = same_csv(&file, &live(ctx, id).await);
    let (header, parsed) = parse_csv(&file);
    let client = header.iter().position(|h| h == "Client ID").unwrap();
    assert!(rows > 10 && rows < 1500, "{rows}");
    assert!(parsed.iter().all(|r| r[client] == "client-beta"));
    // The same messages as JSON Lines.
    let done = at_scale(ctx, &chats.manifest, "chats", "jsonl", params).await.unwrap();
    let id = done["job_id"].as_str().unwrap();
    let file = object(ctx, done["s3_key"].as_str().unwrap()).await;
    assert_eq!(same_lines(&file, &live(ctx, id).await), rows);
    assert!(done["s3_key"].as_str().unwrap().ends_with(".jsonl"));
    // Every client, every message.
    let done = at_scale(ctx, &chats.manifest, "chats", "csv", json!({"bom": true}))
        .await
        .unwrap();
    let id = done["job_id"].as_str().unwrap();
    let file = object(ctx, done["s3_key"].as_str().unwrap()).await;
    assert!(file.starts_with("\u{feff}".as_bytes()));
    assert_eq!(
        file.windows(3).filter(|w| *w == "\u{feff}".as_bytes()).count(),
        1,
        "one BOM"
    );
    let live_file = live(ctx, id).await;
    let strip = |b: &[u8]| b[3..].to_vec();
    assert_eq!(same_csv(&strip(&file), &strip(&live_file)), 1500);
}

#[tokio::test]
async fn an_empty_export_is_the_live_empty_file() {
    let stack = stack_with("scale_empty", awkward_leads(300, 0)).await;
    let ctx = &stack.ctx;
    let leads = export_table(&stack, "leads", 50).await;
    // A table without any item: DynamoDB's export has no data file at all.
    let empty = export_table(&stack, "sessions", 50).await;
    assert_eq!((empty.items, empty.files), (0, 0));
    for manifest in [&leads.manifest, &empty.manifest] {
        for (format, params) in [
            ("csv", json!({"companyId": "comp-nobody", "bom": true})),
            ("json", json!({"companyId": "comp-nobody"})),
            ("csv", json!({"search": "no lead has this"})),
        ] {
            let done = at_scale(ctx, manifest, "leads", format, params.clone()).await.unwrap();
            assert_eq!(done["rows"], 0);
            let id = done["job_id"].as_str().unwrap();
            let file = object(ctx, done["s3_key"].as_str().unwrap()).await;
            assert_eq!(
                file,
                live(ctx, id).await,
                "{format} {params}: byte for byte the live empty file"
            );
        }
        let done = at_scale(ctx, manifest, "leads", "xlsx", json!({"companyId": "comp-nobody"}))
            .await
            .unwrap();
        let id = done["job_id"].as_str().unwrap();
        let (names, headers, rows) = archive(object(ctx, done["s3_key"].as_str().unwrap()).await);
        let (live_header, live_rows) = workbook(live(ctx, id).await);
        assert_eq!(names, ["leads-00000-1.xlsx"], "one workbook with the header");
        assert_eq!((headers, rows.len()), (vec![live_header], live_rows.len()));
    }
    assert!(scale_objects(&stack).await.is_empty());
}

/// The data files of an export, in the manifest's order.
async fn data_files(ctx: &AppContext, manifest: &str) -> Vec<(S3Url, common::scale::format::ManifestFile)> {
    let url = S3Url::parse(manifest).unwrap();
    let summary = read_summary(&ctx.aws.s3, &url).await.unwrap();
    manifest_files(&ctx.aws.s3, &summary, &url).try_collect().await.unwrap()
}

async fn put(ctx: &AppContext, key: &str, body: Vec<u8>) {
    ctx.aws
        .s3
        .put_object()
        .bucket(&ctx.config.delivery.bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .unwrap();
}

fn gzip(text: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(text).unwrap();
    e.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

#[tokio::test]
async fn the_native_export_is_dynamodbs_format() {
    let stack = stack_with("scale_native", awkward_leads(500, 0)).await;
    let ctx = &stack.ctx;
    let written = export_table(&stack, "leads", 45).await;
    let url = S3Url::parse(&written.manifest).unwrap();
    assert!(url.key.starts_with("dyn/AWSDynamoDB/") && url.key.ends_with("/manifest-summary.json"));
    let summary: Value = serde_json::from_slice(&object(ctx, &url.key).await).unwrap();
    for field in [
        "version",
        "exportArn",
        "startTime",
        "endTime",
        "tableArn",
        "tableId",
        "exportTime",
        "s3Bucket",
        "s3Prefix",
        "s3SseAlgorithm",
        "s3SseKmsKeyId",
        "manifestFilesS3Key",
        "billedSizeBytes",
        "itemCount",
        "outputFormat",
    ] {
        assert!(summary.get(field).is_some(), "{field}: {summary}");
    }
    assert_eq!(summary["outputFormat"], "DYNAMODB_JSON");
    assert_eq!(summary["itemCount"], 501);
    assert_eq!(summary["s3SseAlgorithm"], Value::Null);
    let files = data_files(ctx, &written.manifest).await;
    assert_eq!(files.len(), written.files);
    let mut ids = std::collections::BTreeSet::new();
    for (data, file) in &files {
        assert!(data.key.contains("/data/") && data.key.ends_with(".json.gz"), "{data}");
        assert!(file.item_count <= 45 && file.item_count > 0);
        let bytes = object(ctx, &data.key).await;
        let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&bytes));
        assert_eq!(file.md5_checksum, md5);
        let text = String::from_utf8(gunzip(&bytes)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() as u64, file.item_count);
        for line in lines {
            let v: Value = serde_json::from_str(line).unwrap();
            let item = v.as_object().unwrap();
            assert_eq!(item.keys().collect::<Vec<_>>(), ["Item"]);
            ids.insert(v["Item"]["lead_id"]["S"].as_str().unwrap().to_string());
            assert!(
                v["Item"]["written_at"]["S"].is_string(),
                "the derived attributes are exported too"
            );
        }
    }
    assert_eq!(ids.len(), 501, "every item once");
}

#[tokio::test]
async fn a_corrupt_data_file_fails_the_job_and_leaves_nothing_behind() {
    let stack = stack_with("scale_corrupt", awkward_leads(400, 0)).await;
    let ctx = &stack.ctx;
    let written = export_table(&stack, "leads", 50).await;
    let files = data_files(ctx, &written.manifest).await;
    let (victim, _) = &files[2];
    let original = object(ctx, &victim.key).await;
    let text = gunzip(&original);
    let mut lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    lines[6] = b"{\"Item\": {\"lead_id\": {\"S\": \"secret-value\"}, ";
    let broken = lines.join(&b"\n"[..]);
    let truncated = original[..original.len() / 2].to_vec();
    for (what, bytes, expect) in [
        ("a malformed line", gzip(&broken), "line 7 of data file"),
        ("a truncated gzip stream", truncated, "not a valid gzip stream"),
    ] {
        put(ctx, &victim.key, bytes).await;
        let before = export_objects(&stack).await;
        let e = at_scale(ctx, &written.manifest, "leads", "csv", json!({}))
            .await
            .unwrap_err();
        assert!(e.is_server_error(), "{what}: {e}");
        let jobs = ctx
            .aws
            .dynamodb
            .scan()
            .table_name(&ctx.config.tables.jobs)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default();
        let failed: Vec<common::jobs::Job> = jobs
            .into_iter()
            .filter_map(|i| serde_dynamo::from_item(i).ok())
            .filter(|j: &common::jobs::Job| j.status == JobStatus::Failed)
            .collect();
        assert!(!failed.is_empty(), "{what}: the job failed");
        let job = failed.iter().max_by_key(|j| j.created_at).unwrap();
        assert_eq!(job.error_code.as_deref(), Some("export_failed"), "{what}");
        assert!(job.s3_key.is_none());
        let message = job.error_message.clone().unwrap_or_default();
        assert!(!message.contains("secret"), "{what}: {message}");
        let cause = e.to_string().to_lowercase() + &e.cause_chain();
        assert!(cause.contains(expect), "{what}: {}", e.cause_chain());
        assert!(!e.to_string().contains("secret-value"), "no contents in errors");
        assert_eq!(export_objects(&stack).await, before, "{what}: no file");
        assert!(scale_objects(&stack).await.is_empty(), "{what}: parts left behind");
    }
    put(ctx, &victim.key, original).await;
    assert_eq!(
        at_scale(ctx, &written.manifest, "leads", "csv", json!({}))
            .await
            .unwrap()["rows"],
        401
    );
}

#[tokio::test]
async fn unsupported_kinds_formats_and_options_are_refused_up_front() {
    let stack = stack_with("scale_refused", awkward_leads(20, 0)).await;
    let ctx = &stack.ctx;
    let written = export_table(&stack, "leads", 50).await;
    for (export, needle) in [
        (
            json!({"kind": "sessions", "format": "csv"}),
            "sessions cannot run at scale",
        ),
        (
            json!({"kind": "conversations", "format": "csv"}),
            "conversations cannot run at scale",
        ),
        (json!({"kind": "chats", "format": "json"}), "chats in json"),
        (json!({"kind": "chats", "format": "excel"}), "chats in excel"),
        (json!({"kind": "chats", "format": "both"}), "chats in both"),
        (
            json!({"kind": "leads", "format": "csv", "params": {"compression": "gzip"}}),
            "compression",
        ),
        (
            json!({"kind": "leads", "format": "xlsx", "params": {"compression": "zip"}}),
            "compression",
        ),
        (
            json!({"kind": "chats", "format": "csv", "params": {"limit": 10}}),
            "limit is not supported",
        ),
        (json!({"kind": "leads", "format": "pdf"}), "format"),
        (
            json!({"kind": "leads", "format": "parquet"}),
            "the parquet format cannot run at scale",
        ),
        (
            json!({"kind": "leads", "format": "csv",
                   "notify": {"webhooks": [{"url": "https://hooks.example.com/x", "secret_id": "0".repeat(32)}]}}),
            "not available to exports at scale",
        ),
    ] {
        let event = json!({"start": {"name": "refused", "export": export, "manifest": written.manifest}});
        let event: ScaleEvent = serde_json::from_value(event).unwrap();
        let e = scale::handle(ctx, event).await.unwrap_err();
        assert_eq!(e.http_status(), 400, "{export}: {e}");
        assert!(e.to_string().contains(needle), "{export}: {e}");
        if needle.contains("cannot run") || needle.contains("chats in") || needle == "compression" {
            assert!(
                e.to_string()
                    .contains("leads (csv, json, jsonl, xlsx) and chats (csv, jsonl)"),
                "{e}"
            );
        }
        // Through the Lambda's handler: an error typed by its code.
        let lambda = export_scale::handle(
            ctx,
            json!({"start": {"name": "refused", "export": export, "manifest": written.manifest}}),
        )
        .await
        .unwrap_err();
        assert_eq!(lambda.error_type, "invalid_request");
    }
    let bad_manifest = json!({"start": {"name": "x", "export": {"kind": "leads"}, "manifest": "s3://nope-bucket/x"}});
    let e = scale::handle(ctx, serde_json::from_value(bad_manifest).unwrap())
        .await
        .unwrap_err();
    assert!(e.is_server_error() || e.http_status() == 400, "{e}");
    let not_an_event = export_scale::handle(ctx, json!({"convert": {"job_id": "x"}}))
        .await
        .unwrap_err();
    assert_eq!(not_an_event.error_type, "invalid_request");
    // Nothing was started.
    let jobs = ctx
        .aws
        .dynamodb
        .scan()
        .table_name(&ctx.config.tables.jobs)
        .send()
        .await
        .unwrap();
    assert_eq!(jobs.count, 0);
    assert!(scale_objects(&stack).await.is_empty());
}

#[tokio::test]
async fn parts_are_idempotent_and_a_missing_part_fails_the_assembly() {
    let stack = stack_with("scale_parts", awkward_leads(300, 0)).await;
    let ctx = &stack.ctx;
    let written = export_table(&stack, "leads", 40).await;
    let start = |name: &str| {
        serde_json::from_value::<StartRequest>(json!({
            "name": name, "export": {"kind": "leads", "format": "json"}, "manifest": written.manifest
        }))
        .unwrap()
    };
    let started = scale::start(ctx, start("parts")).await.unwrap();
    let items: Vec<ConvertRequest> = serde_json::from_slice(&object(ctx, &started.items_key).await).unwrap();
    assert_eq!(items.len() as u32, started.files);
    assert_eq!(items[1].index.0, 1);
    let job = JobStore::of(ctx).get(&started.job_id).await.unwrap().unwrap();
    assert_eq!((job.status, job.rows_done), (JobStatus::Running, 0));
    // A retried part overwrites itself and is counted once.
    let first = scale::convert_with(ctx, items[0].clone(), &tuning()).await.unwrap();
    let again = scale::convert_with(ctx, items[0].clone(), &tuning()).await.unwrap();
    assert_eq!(first, again);
    let job = JobStore::of(ctx).get(&started.job_id).await.unwrap().unwrap();
    assert_eq!((job.rows_done, job.bytes_done), (first.rows, first.bytes));
    for item in &items[1..items.len() - 1] {
        scale::convert_with(ctx, item.clone(), &tuning()).await.unwrap();
    }
    let e = scale::assemble_with(
        ctx,
        AssembleRequest {
            job_id: items[0].job_id.clone(),
            files: FileCount(started.files),
        },
        &tuning(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "part_missing", "{e}");
    let job = JobStore::of(ctx).get(&started.job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.error_code.as_deref(), Some("part_missing"));
    assert!(export_objects(&stack).await.is_empty(), "no file");
    assert!(scale_objects(&stack).await.is_empty(), "parts cleaned up");
    // A converter that finishes after the job failed deletes its own part.
    let last = items.last().unwrap().clone();
    let e = scale::convert_with(ctx, last, &tuning()).await.unwrap_err();
    assert_eq!(e.code(), "job_cancelled");
    assert!(scale_objects(&stack).await.is_empty());

    // The state machine's catch: the job fails with an opaque message.
    let started = scale::start(ctx, start("caught")).await.unwrap();
    let fail: ScaleEvent = serde_json::from_value(json!({"fail": {
        "job_id": started.job_id, "error": "States.Timeout", "cause": "{\"errorMessage\": \"secret row contents\"}"
    }}))
    .unwrap();
    let answer = scale::handle(ctx, fail).await.unwrap();
    assert_eq!(answer["status"], "failed");
    let job = JobStore::of(ctx).get(&started.job_id).await.unwrap().unwrap();
    assert_eq!(job.error_code.as_deref(), Some("export_failed"));
    let message = job.error_message.unwrap();
    assert!(
        message.contains("States.Timeout") && !message.contains("secret"),
        "{message}"
    );
    assert!(scale_objects(&stack).await.is_empty());
    // A cancelled job (POST /api/exports/{id}/cancel) stops its converters.
    let started = scale::start(ctx, start("cancelled")).await.unwrap();
    let auth = format!("Bearer {}", stack.admin_token());
    let resp = exportctl::serve::route(
        ctx,
        request(
            "POST",
            &format!("/api/exports/{}/cancel", started.job_id),
            &[("authorization", auth.as_str())],
        ),
    )
    .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    let items: Vec<ConvertRequest> = serde_json::from_slice(&object(ctx, &started.items_key).await).unwrap();
    let e = scale::convert_with(ctx, items[0].clone(), &tuning()).await.unwrap_err();
    assert_eq!(e.code(), "job_cancelled");
}

#[test]
fn the_sample_events_are_scale_events() {
    let dir = format!("{}/../events/scale", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["assemble.json", "convert.json", "fail.json", "start.json"]);
    for name in names {
        let text = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
        let event: ScaleEvent = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let step = name.trim_end_matches(".json");
        let matches = matches!(
            (&event, step),
            (ScaleEvent::Start(_), "start")
                | (ScaleEvent::Convert(_), "convert")
                | (ScaleEvent::Assemble(_), "assemble")
                | (ScaleEvent::Fail(_), "fail")
        );
        assert!(matches, "{name}");
    }
}

#[tokio::test]
async fn a_retried_start_finds_its_job_and_a_failed_one_may_run_again() {
    let stack = stack_with("scale_restart", awkward_leads(20, 0)).await;
    let ctx = &stack.ctx;
    let written = export_table(&stack, "leads", 50).await;
    let request = || -> StartRequest {
        serde_json::from_value(json!({
            "name": "restart",
            "export": {"kind": "leads", "format": "csv"},
            "manifest": written.manifest.to_string(),
        }))
        .unwrap()
    };
    // Step Functions retrying a start whose answer was lost: the same job.
    let first = scale::start(ctx, request()).await.unwrap();
    let again = scale::start(ctx, request()).await.unwrap();
    assert_eq!(again.job_id, first.job_id);
    assert_eq!((again.items_key, again.files), (first.items_key, first.files));
    // Once it failed, the same export starts again as a new job.
    let failed: scale::FailRequest = serde_json::from_value(json!({"job_id": first.job_id})).unwrap();
    scale::fail(ctx, failed).await.unwrap();
    let rerun = scale::start(ctx, request()).await.unwrap();
    assert_ne!(rerun.job_id, first.job_id);
    // A succeeded one is not exported twice.
    for (index, (url, _)) in data_files(ctx, &written.manifest).await.into_iter().enumerate() {
        let part: ConvertRequest = serde_json::from_value(json!({
            "job_id": rerun.job_id, "index": index, "data_file": url.to_string(),
        }))
        .unwrap();
        scale::convert(ctx, part).await.unwrap();
    }
    let assembled: AssembleRequest =
        serde_json::from_value(json!({"job_id": rerun.job_id, "files": rerun.files})).unwrap();
    scale::assemble(ctx, assembled).await.unwrap();
    let e = scale::start(ctx, request()).await.unwrap_err();
    assert_eq!(e.code(), "already_exported", "{e}");
}

/// A state machine that was stopped (or timed out, or lost) runs no catch: its job's
/// lease runs out and the next reader fails it, deleting its parts. A part counted in
/// time renews the lease.
#[tokio::test]
async fn an_abandoned_state_machine_fails_its_job_when_its_lease_runs_out() {
    let stack = stack_with("scale_abandoned", awkward_leads(120, 0)).await;
    let start_at = chrono::Utc::now();
    let clock = std::sync::Arc::new(common::clock::FixedClock::new(start_at));
    let ctx = &stack.ctx.clone().with_clock(clock.clone());
    let written = export_table(&stack, "leads", 40).await;
    let start: StartRequest = serde_json::from_value(json!({
        "name": "abandoned", "export": {"kind": "leads", "format": "csv"}, "manifest": written.manifest
    }))
    .unwrap();
    let started = scale::start(ctx, start).await.unwrap();
    let items: Vec<ConvertRequest> = serde_json::from_slice(&object(ctx, &started.items_key).await).unwrap();
    let auth = format!("Bearer {}", stack.admin_token());
    let status = |at: chrono::DateTime<chrono::Utc>| {
        clock.set(at);
        let path = format!("/api/exports/{}", started.job_id);
        let auth = auth.clone();
        async move {
            let resp = exportctl::serve::route(ctx, request("GET", &path, &[("authorization", auth.as_str())])).await;
            assert!(resp.status().is_success(), "{}", resp.status());
            body_json(&resp)
        }
    };
    let hours = |h: i64, s: i64| start_at + chrono::Duration::hours(h) + chrono::Duration::seconds(s);
    clock.set(hours(1, 0));
    scale::convert_with(ctx, items[0].clone(), &tuning()).await.unwrap();
    // Two hours after start, but one after the part: still running.
    assert_eq!(status(hours(2, 30)).await["status"], "running");
    assert!(!scale_objects(&stack).await.is_empty());
    // Two hours after the last part: failed, and nothing of it is left.
    let job = status(hours(3, 1)).await;
    assert_eq!(
        (job["status"].as_str(), job["error"]["error_code"].as_str()),
        (Some("failed"), Some("worker_lost")),
        "{job}"
    );
    assert!(scale_objects(&stack).await.is_empty(), "parts deleted");
    assert!(export_objects(&stack).await.is_empty(), "no file");
    // A converter still running somewhere stops, and so does the assembly.
    let e = scale::convert_with(ctx, items[1].clone(), &tuning()).await.unwrap_err();
    assert_eq!(e.code(), "job_cancelled");
    let assembled = AssembleRequest {
        job_id: items[0].job_id.clone(),
        files: FileCount(started.files),
    };
    assert!(scale::assemble_with(ctx, assembled, &tuning()).await.is_err());
    assert!(scale_objects(&stack).await.is_empty());
}
