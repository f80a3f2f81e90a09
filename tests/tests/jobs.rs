//! Export jobs against the local DynamoDB, S3 and SQS emulators: the job API, the
//! worker (through the real queue and called directly), progress, cancel, duplicate
//! deliveries and racing workers, a killed worker, idempotency, the cache, the
//! active-job cap, `Prefer: respond-async`, the history and the metrics.

use std::{sync::Arc, time::Duration};

use common::{
    AppContext,
    auth::Role,
    jobs::{self, queue},
    synth,
};
use exportctl::bench::BenchStore;
use integration_tests::*;
use lambda_http::{Body, Response};
use serde_json::{Value, json};

async fn call(
    ctx: &AppContext,
    method: &str,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response<Body> {
    let auth = format!("Bearer {token}");
    let mut all: Vec<(&str, &str)> = vec![("authorization", auth.as_str())];
    all.extend_from_slice(headers);
    if !body.is_empty() {
        all.push(("content-type", "application/json"));
    }
    exportctl::serve::route(ctx, request_with_body(method, path, &all, body)).await
}

async fn post_job(ctx: &AppContext, token: &str, body: Value, headers: &[(&str, &str)]) -> Response<Body> {
    call(ctx, "POST", "/api/exports", token, headers, body.to_string().as_bytes()).await
}

async fn get_job(ctx: &AppContext, token: &str, id: &str) -> Response<Body> {
    call(ctx, "GET", &format!("/api/exports/{id}"), token, &[], b"").await
}

/// Polls a job until `done` holds (or panics after `secs`).
async fn wait_job(ctx: &AppContext, token: &str, id: &str, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let resp = get_job(ctx, token, id).await;
        assert_eq!(resp.status(), 200, "{}", String::from_utf8_lossy(&body_bytes(&resp)));
        let job = body_json(&resp);
        if done(&job) {
            return job;
        }
        assert!(tokio::time::Instant::now() < deadline, "job did not get there: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn is_final(job: &Value) -> bool {
    matches!(job["status"].as_str(), Some("succeeded" | "failed" | "cancelled"))
}

/// The worker loop on the stack's own queue, asked to stop when the guard drops (it
/// finishes its receive in flight, as `exportctl serve` does on SIGTERM).
struct Worker(tokio::sync::watch::Sender<bool>);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

fn worker(ctx: &AppContext) -> Worker {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(queue::poll(ctx.clone(), stopped));
    Worker(stop)
}

async fn download(ctx: &AppContext, token: &str, id: &str) -> Vec<u8> {
    let resp = call(ctx, "GET", &format!("/api/exports/{id}/download"), token, &[], b"").await;
    assert_eq!(resp.status(), 303, "{}", String::from_utf8_lossy(&body_bytes(&resp)));
    let got = reqwest::get(header(&resp, "location")).await.unwrap();
    assert_eq!(got.status(), 200);
    got.bytes().await.unwrap().to_vec()
}

async fn loaded_stack(name: &str) -> TestStack {
    loaded_stack_with(name, |_| {}).await
}

async fn loaded_stack_with(name: &str, configure: impl FnOnce(&mut common::config::Config)) -> TestStack {
    let stack = TestStack::with_config(name, configure).await;
    stack
        .load(
            synth::sessions(3, 15)
                .chain(synth::leads(3, 40))
                .chain(synth::chat_messages(3, 150))
                .collect(),
        )
        .await;
    stack
}

fn slow(stack: &TestStack, records: usize, delay_ms: u64) -> AppContext {
    stack.ctx.clone().with_store(Arc::new(SlowStore {
        inner: Arc::new(BenchStore { records, seed: 5 }),
        delay: Duration::from_millis(delay_ms),
    }))
}

#[tokio::test]
async fn a_job_of_each_kind_makes_the_same_file_as_the_synchronous_export() {
    let stack = loaded_stack("job_each_kind").await;
    let ctx = &stack.ctx;
    let _worker = worker(ctx);
    let admin = stack.admin_token();
    let user = stack.token(Role::User, "u-alpha", Some("client-alpha"), Some("comp-acme"));
    let cases = [
        (
            &admin,
            json!({"kind": "sessions", "format": "csv"}),
            "/api/admin/sessions/export?format=csv",
        ),
        (
            &user,
            json!({"kind": "leads", "format": "csv", "params": {"confidence": "high"}}),
            "/api/hybrid-leads/export?format=csv&confidence=high",
        ),
        (
            &user,
            json!({"kind": "chats", "format": "csv", "params": {"include_geo": true}}),
            "/client/export/chats/download?format=csv&include_geo=true",
        ),
        (
            &user,
            json!({"kind": "conversations", "params": {"format": "csv", "limit": 5}}),
            "/client/export/conversations?format=csv&limit=5",
        ),
        (
            &admin,
            json!({"kind": "chats", "format": "csv", "params": {"client_id": "client-beta"}}),
            "/client/export/chats/download?format=csv&client_id=client-beta",
        ),
    ];
    for (token, body, sync_path) in cases {
        let resp = post_job(ctx, token, body.clone(), &[]).await;
        assert_eq!(
            resp.status(),
            202,
            "{body}: {}",
            String::from_utf8_lossy(&body_bytes(&resp))
        );
        let job = body_json(&resp);
        let id = job["id"].as_str().unwrap().to_string();
        assert_eq!(header(&resp, "location"), format!("/api/exports/{id}"));
        assert_eq!(job["status"], "queued");
        assert_eq!(job["kind"], body["kind"]);
        assert_eq!(job["download_url"], Value::Null);
        let done = wait_job(ctx, token, &id, 30, is_final).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert!(done["download_url"].as_str().unwrap().starts_with("http"));
        assert_eq!(done["rows"], done["rows_done"]);
        let file = download(ctx, token, &id).await;
        assert_eq!(done["size_bytes"].as_u64(), Some(file.len() as u64));

        let sync = call(ctx, "GET", sync_path, token, &[], b"").await;
        assert_eq!(sync.status(), 200, "{sync_path}");
        assert_eq!(
            body_bytes(&sync),
            file,
            "{body}: the job's file differs from the synchronous export"
        );
        assert_eq!(done["rows"].as_str().map(|_| ()), None);
        assert_eq!(header(&sync, "x-export-rows"), done["rows"].to_string(), "{body}");
    }
}

#[tokio::test]
async fn json_and_excel_jobs_hold_the_same_rows_as_the_synchronous_export() {
    // Twelve chat exports and jobs in a minute: more than the default rate allows.
    let stack = loaded_stack_with("job_json_xlsx", |c| c.chat.per_user_per_minute = 100).await;
    let ctx = &stack.ctx;
    let _worker = worker(ctx);
    let user = stack.token(Role::User, "u-beta", Some("client-beta"), Some("comp-globex"));
    for (body, sync_path) in [
        (
            json!({"kind": "chats", "format": "json", "params": {"include_meta": true}}),
            "/client/export/chats/download?format=json&include_meta=true",
        ),
        (
            json!({"kind": "leads", "format": "json"}),
            "/api/hybrid-leads/export?format=json",
        ),
        (
            json!({"kind": "conversations", "format": "json"}),
            "/client/export/conversations?format=json",
        ),
    ] {
        let resp = post_job(ctx, &user, body.clone(), &[]).await;
        assert_eq!(resp.status(), 202);
        let id = body_json(&resp)["id"].as_str().unwrap().to_string();
        let done = wait_job(ctx, &user, &id, 30, is_final).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        let file: Value = serde_json::from_slice(&download(ctx, &user, &id).await).unwrap();
        let sync: Value =
            serde_json::from_slice(&body_bytes(&call(ctx, "GET", sync_path, &user, &[], b"").await)).unwrap();
        // The documents differ only in when they were made.
        let rows = |v: &Value| match v {
            Value::Array(_) => v.clone(),
            Value::Object(o) => o
                .iter()
                .filter(|(_, v)| v.is_array())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
            _ => panic!("{v}"),
        };
        assert_eq!(rows(&file), rows(&sync), "{body}");
    }
    // JSON Lines and Parquet jobs: the synchronous export's file, byte for byte (the
    // chats lines carry no summary, and a Parquet file no time, so nothing in them
    // depends on when they were made).
    for (kind, format, sync_path) in [
        (
            "chats",
            "jsonl",
            "/client/export/chats/download?format=jsonl&include_meta=true",
        ),
        ("leads", "jsonl", "/api/hybrid-leads/export?format=jsonl"),
        ("conversations", "jsonl", "/client/export/conversations?format=jsonl"),
        (
            "chats",
            "parquet",
            "/client/export/chats/download?format=parquet&include_meta=true",
        ),
        ("leads", "parquet", "/api/hybrid-leads/export?format=parquet"),
        (
            "conversations",
            "parquet",
            "/client/export/conversations?format=parquet&compression=snappy",
        ),
    ] {
        let params = match (kind, format) {
            ("chats", _) => json!({"include_meta": true}),
            ("conversations", "parquet") => json!({"compression": "snappy"}),
            _ => json!({}),
        };
        let resp = post_job(
            ctx,
            &user,
            json!({"kind": kind, "format": format, "params": params}),
            &[],
        )
        .await;
        assert_eq!(resp.status(), 202);
        let id = body_json(&resp)["id"].as_str().unwrap().to_string();
        let done = wait_job(ctx, &user, &id, 30, is_final).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert!(
            done["file_name"].as_str().unwrap().ends_with(&format!(".{format}")),
            "{done}"
        );
        let file = download(ctx, &user, &id).await;
        let sync = body_bytes(&call(ctx, "GET", sync_path, &user, &[], b"").await);
        assert!(!file.is_empty());
        assert_same_bytes(&file, &sync, kind);
    }
    let resp = post_job(
        ctx,
        &user,
        json!({"kind": "leads", "format": "xlsx", "params": {"compression": "zip"}}),
        &[],
    )
    .await;
    let id = body_json(&resp)["id"].as_str().unwrap().to_string();
    let done = wait_job(ctx, &user, &id, 30, is_final).await;
    assert_eq!(done["status"], "succeeded");
    assert!(done["file_name"].as_str().unwrap().ends_with(".zip"));
    let file = download(ctx, &user, &id).await;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(file)).unwrap();
    assert!(archive.by_index(0).unwrap().name().unwrap().ends_with(".xlsx"));
}

#[tokio::test]
async fn job_requests_are_validated_and_scoped_like_their_routes() {
    let stack = loaded_stack("job_validation").await;
    let ctx = &stack.ctx;
    let user = stack.token(Role::User, "u-alpha", Some("client-alpha"), Some("comp-acme"));
    let bad = [
        json!({}),
        json!({"kind": "nope"}),
        json!({"kind": "leads", "format": "pdf"}),
        json!({"kind": "leads", "params": {"nope": "1"}}),
        json!({"kind": "leads", "params": {"confidence": ["high"]}}),
        json!({"kind": "leads", "format": "csv", "params": {"format": "json"}}),
        json!({"kind": "chats", "params": {"limit": 0}}),
        json!({"kind": "chats", "params": {"date_from": "yesterday"}}),
        json!({"kind": "conversations", "params": {"bom": "true", "format": "json"}}),
        json!({"kind": "leads", "extra": 1}),
    ];
    for body in bad {
        let resp = post_job(ctx, &user, body.clone(), &[]).await;
        assert_eq!(resp.status(), 400, "{body}");
        let b = body_json(&resp);
        assert_eq!(b["error_code"], "invalid_request", "{body}: {b}");
    }
    for body in [
        b"[1,2]".as_slice(),
        b"\"leads\"",
        b"{\"kind\":\"leads\",\"kind\":\"chats\"}",
    ] {
        let resp = call(
            ctx,
            "POST",
            "/api/exports",
            &user,
            &[("content-type", "application/json")],
            body,
        )
        .await;
        assert_eq!(resp.status(), 400, "{}", String::from_utf8_lossy(body));
    }
    // Sessions are for admins; a user naming another client or company gets 403, as
    // on the synchronous routes.
    let resp = post_job(ctx, &user, json!({"kind": "sessions"}), &[]).await;
    assert_eq!(resp.status(), 403);
    for body in [
        json!({"kind": "chats", "params": {"client_id": "client-beta"}}),
        json!({"kind": "conversations", "params": {"client_id": "client-beta"}}),
    ] {
        let resp = post_job(ctx, &user, body.clone(), &[]).await;
        let sync_status = call(
            ctx,
            "GET",
            "/client/export/conversations?client_id=client-beta",
            &user,
            &[],
            b"",
        )
        .await
        .status();
        assert_eq!(resp.status(), sync_status, "{body}");
        assert!(resp.status().is_client_error(), "{body}");
    }
    let resp = call(ctx, "POST", "/api/exports", "not-a-token", &[], b"{}").await;
    assert_eq!(resp.status(), 401);
    assert_error_shape(&body_json(&resp), false);
    let resp = call(ctx, "GET", "/api/exports", "not-a-token", &[], b"").await;
    assert_eq!(resp.status(), 401);
    // A user's leads job only ever holds their own company's leads.
    let _worker = worker(ctx);
    let resp = post_job(
        ctx,
        &user,
        json!({"kind": "leads", "format": "csv", "params": {"companyId": "comp-globex"}}),
        &[],
    )
    .await;
    if resp.status() == 202 {
        let id = body_json(&resp)["id"].as_str().unwrap().to_string();
        wait_job(ctx, &user, &id, 30, is_final).await;
        let (_, rows) = parse_csv(&download(ctx, &user, &id).await);
        assert!(
            rows.iter().all(|r| r[2] == "Acme, Inc."),
            "another company's lead in a user's job"
        );
    } else {
        assert!(resp.status().is_client_error());
    }
}

#[tokio::test]
async fn another_callers_job_does_not_exist_for_them() {
    let stack = loaded_stack("job_tenancy").await;
    let ctx = &stack.ctx;
    let alice = stack.token(Role::User, "alice", Some("client-alpha"), None);
    let bob = stack.token(Role::User, "bob", Some("client-alpha"), None);
    let admin = stack.admin_token();
    let resp = post_job(ctx, &alice, json!({"kind": "chats", "format": "json"}), &[]).await;
    let id = body_json(&resp)["id"].as_str().unwrap().to_string();
    for (method, path) in [
        ("GET", format!("/api/exports/{id}")),
        ("GET", format!("/api/exports/{id}/download")),
        ("DELETE", format!("/api/exports/{id}")),
        ("POST", format!("/api/exports/{id}/cancel")),
        ("GET", "/api/exports/0123456789abcdef0123456789abcdef".to_string()),
        ("GET", "/api/exports/..%2F..%2Fetc".to_string()),
        ("GET", format!("/api/exports/{}", id.to_uppercase())),
    ] {
        let resp = call(ctx, method, &path, &bob, &[], b"").await;
        assert_eq!(resp.status(), 404, "{method} {path}");
        assert_eq!(body_json(&resp)["error_code"], "not_found");
    }
    let list = body_json(&call(ctx, "GET", "/api/exports", &bob, &[], b"").await);
    assert_eq!(list["exports"].as_array().unwrap().len(), 0);
    let resp = call(ctx, "GET", "/api/exports?owner=alice", &bob, &[], b"").await;
    assert_eq!(resp.status(), 403);
    // The same user, once their token names another client, no longer sees it.
    let moved = stack.token(Role::User, "alice", Some("client-beta"), None);
    assert_eq!(get_job(ctx, &moved, &id).await.status(), 404);
    let list = body_json(&call(ctx, "GET", "/api/exports", &moved, &[], b"").await);
    assert_eq!(list["exports"].as_array().unwrap().len(), 0, "{list}");
    assert_eq!(get_job(ctx, &alice, &id).await.status(), 200);
    // Admins see anyone's job and history.
    assert_eq!(get_job(ctx, &admin, &id).await.status(), 200);
    // An admin's export of every tenant is not visible to the same person once their
    // token is a user's.
    let resp = post_job(ctx, &admin, json!({"kind": "sessions"}), &[]).await;
    let all_tenants = body_json(&resp)["id"].as_str().unwrap().to_string();
    let demoted = stack.token(Role::User, "admin-test", Some("client-alpha"), None);
    assert_eq!(get_job(ctx, &demoted, &all_tenants).await.status(), 404);
    let list = body_json(&call(ctx, "GET", "/api/exports", &demoted, &[], b"").await);
    assert!(
        list["exports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["id"] != all_tenants.as_str()),
        "{list}"
    );
    let list = body_json(&call(ctx, "GET", "/api/exports?owner=alice", &admin, &[], b"").await);
    assert_eq!(list["exports"][0]["id"], id.as_str());
}

#[tokio::test]
async fn progress_grows_while_a_multi_page_job_runs_and_the_audit_and_metrics_record_it() {
    let stack = TestStack::with_config("job_progress", |c| c.jobs.progress_secs = 0).await;
    let ctx = slow(&stack, 12_000, 150);
    common::metrics::capture();
    let _worker = worker(&ctx);
    let admin = stack.admin_token();
    let resp = post_job(&ctx, &admin, json!({"kind": "leads", "format": "csv"}), &[]).await;
    let id = body_json(&resp)["id"].as_str().unwrap().to_string();
    let mut seen = Vec::new();
    let done = loop {
        let job = body_json(&get_job(&ctx, &admin, &id).await);
        if job["status"] == "running" {
            seen.push(job["rows_done"].as_u64().unwrap());
            assert!(job["started_at"].is_string());
            let resp = call(&ctx, "GET", &format!("/api/exports/{id}/download"), &admin, &[], b"").await;
            assert_eq!(resp.status(), 409);
            assert_eq!(body_json(&resp)["error_code"], "job_not_ready");
        }
        if is_final(&job) {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    };
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["rows"], 12_000);
    seen.dedup();
    assert!(seen.len() >= 3, "progress seen: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert!(seen.iter().any(|&r| r > 0 && r < 12_000), "{seen:?}");

    let audit = audit_records(&stack).await;
    let run = audit
        .iter()
        .find(|r| r.route == "worker" && r.job_id.as_deref() == Some(id.as_str()))
        .expect("worker audited");
    assert_eq!((run.outcome.as_str(), run.records), ("success", Some(12_000)));
    assert!(
        audit
            .iter()
            .any(|r| r.route == "POST /api/exports" && r.job_id.as_deref() == Some(id.as_str()) && r.status == 202)
    );

    let metric: Value = common::metrics::captured()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|m| m["id"] == id.as_str())
        .expect("an EMF line for the job");
    assert_eq!(metric["_aws"]["CloudWatchMetrics"][0]["Namespace"], "ChatExport");
    assert_eq!(
        (
            metric["kind"].as_str(),
            metric["format"].as_str(),
            metric["outcome"].as_str()
        ),
        (Some("leads"), Some("csv"), Some("succeeded"))
    );
    assert_eq!(metric["Rows"], 12_000);
    assert!(metric["QueueWaitMs"].is_u64() && metric["DurationMs"].is_u64());
}

#[tokio::test]
async fn cancelling_a_running_job_leaves_no_object_and_a_finished_job_cannot_be_cancelled() {
    let stack = TestStack::with_config("job_cancel", |c| c.jobs.progress_secs = 0).await;
    let ctx = slow(&stack, 40_000, 100);
    let _worker = worker(&ctx);
    let admin = stack.admin_token();
    let resp = post_job(&ctx, &admin, json!({"kind": "chats", "format": "json"}), &[]).await;
    let id = body_json(&resp)["id"].as_str().unwrap().to_string();
    wait_job(&ctx, &admin, &id, 30, |j| j["rows_done"].as_u64().unwrap_or(0) > 0).await;
    let resp = call(&ctx, "POST", &format!("/api/exports/{id}/cancel"), &admin, &[], b"").await;
    assert_eq!(resp.status(), 202);
    assert_eq!(body_json(&resp)["status"], "cancelled");
    // The worker notices at its next page and aborts its upload.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let audit = audit_records(&stack).await;
        if audit.iter().any(|r| r.route == "worker" && r.outcome == "cancelled") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "worker did not stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stack.object_keys().await, Vec::<String>::new());
    let job = body_json(&get_job(&ctx, &admin, &id).await);
    assert_eq!(
        (job["status"].as_str(), &job["download_url"]),
        (Some("cancelled"), &Value::Null)
    );
    let resp = call(&ctx, "POST", &format!("/api/exports/{id}/cancel"), &admin, &[], b"").await;
    assert_eq!(resp.status(), 409);
    assert_eq!(body_json(&resp)["error_code"], "job_finished");
    let resp = call(&ctx, "GET", &format!("/api/exports/{id}/download"), &admin, &[], b"").await;
    assert_eq!(
        (resp.status().as_u16(), body_json(&resp)["error_code"].clone()),
        (409, json!("job_not_succeeded"))
    );
    // A queued job is cancelled before any worker sees it; its message is then ignored.
    let quiet = TestStack::new("job_cancel_queued").await;
    let resp = post_job(&quiet.ctx, &admin, json!({"kind": "sessions"}), &[]).await;
    let id = body_json(&resp)["id"].as_str().unwrap().to_string();
    assert_eq!(
        call(
            &quiet.ctx,
            "POST",
            &format!("/api/exports/{id}/cancel"),
            &admin,
            &[],
            b""
        )
        .await
        .status(),
        202
    );
    jobs::worker::process(&quiet.ctx, &id).await.unwrap();
    assert_eq!(
        body_json(&get_job(&quiet.ctx, &admin, &id).await)["status"],
        "cancelled"
    );
    assert!(quiet.object_keys().await.is_empty());
}

#[tokio::test]
async fn duplicate_deliveries_and_racing_workers_make_one_file_and_one_run() {
    let stack = loaded_stack("job_race").await;
    let ctx = &stack.ctx;
    let admin = stack.admin_token();
    let resp = post_job(ctx, &admin, json!({"kind": "chats", "format": "csv"}), &[]).await;
    let id = body_json(&resp)["id"].as_str().unwrap().to_string();
    // The same message delivered four times, to workers running at once.
    let (a, b, c, d) = tokio::join!(
        jobs::worker::process(ctx, &id),
        jobs::worker::process(ctx, &id),
        jobs::worker::process(ctx, &id),
        jobs::worker::process(ctx, &id),
    );
    let deliveries: Vec<_> = [a, b, c, d].into_iter().map(Result::unwrap).collect();
    assert!(deliveries.contains(&jobs::worker::Delivery::Done), "{deliveries:?}");
    // And once more after it finished: nothing to do, the message is done.
    assert_eq!(
        jobs::worker::process(ctx, &id).await.unwrap(),
        jobs::worker::Delivery::Done
    );
    let job = body_json(&get_job(ctx, &admin, &id).await);
    assert_eq!(job["status"], "succeeded");
    assert_eq!(stack.object_keys().await.len(), 1);
    let runs = audit_records(&stack)
        .await
        .into_iter()
        .filter(|r| r.route == "worker")
        .count();
    assert_eq!(runs, 1);
    // The worker Lambda's handler: a batch with the job's message and an unreadable
    // one reports no failure (neither can succeed by being retried).
    let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(json!({"Records": [
        {"messageId": "m1", "body": json!({"job_id": id}).to_string()},
        {"messageId": "m2", "body": "not json"}
    ]}))
    .unwrap();
    let out = export_worker::handle(ctx, event).await;
    assert!(out.batch_item_failures.is_empty());
}

#[tokio::test]
async fn a_job_whose_worker_died_is_run_again_or_failed_never_stuck() {
    let stack = TestStack::with_config("job_killed", |c| {
        c.jobs.lease_secs = 3;
        c.jobs.progress_secs = 0;
    })
    .await;
    let ctx = slow(&stack, 8_000, 200);
    let admin = stack.admin_token();
    let resp = post_job(&ctx, &admin, json!({"kind": "leads", "format": "json"}), &[]).await;
    let id = body_json(&resp)["id"].as_str().unwrap().to_string();
    // A worker that dies mid-job (the task is dropped: no abort, no final write).
    let doomed = tokio::spawn({
        let (ctx, id) = (ctx.clone(), id.clone());
        async move { jobs::worker::process(&ctx, &id).await }
    });
    wait_job(&ctx, &admin, &id, 30, |j| j["rows_done"].as_u64().unwrap_or(0) > 0).await;
    doomed.abort();
    let _ = doomed.await;
    // While its lease lasts nobody else takes the job (the delivery stays queued);
    // after it, the redelivered message runs it again from the start.
    assert_eq!(
        jobs::worker::process(&ctx, &id).await.unwrap(),
        jobs::worker::Delivery::Busy
    );
    tokio::time::sleep(Duration::from_millis(4100)).await;
    let fast = stack.ctx.clone().with_store(Arc::new(BenchStore {
        records: 8_000,
        seed: 5,
    }));
    // The lease is whole seconds: on a loaded machine the redelivery may come a
    // little early and find the job still held, as SQS would, and come back.
    let redelivered = tokio::time::Instant::now();
    while jobs::worker::process(&fast, &id).await.unwrap() == jobs::worker::Delivery::Busy {
        assert!(
            redelivered.elapsed() < Duration::from_secs(5),
            "the dead worker's lease never ran out"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let job = body_json(&get_job(&ctx, &admin, &id).await);
    assert_eq!(
        (job["status"].as_str(), job["rows"].as_u64()),
        (Some("succeeded"), Some(8_000)),
        "{job}"
    );
    assert_eq!(stack.object_keys().await.len(), 1);

    // Out of attempts: the job fails (visibly), whether a delivery or a reader finds it.
    let stack = TestStack::with_config("job_exhausted", |c| {
        c.jobs.lease_secs = 1;
        c.jobs.max_attempts = 1;
        c.jobs.progress_secs = 0;
    })
    .await;
    let ctx = slow(&stack, 8_000, 200);
    let resp = post_job(&ctx, &admin, json!({"kind": "leads"}), &[]).await;
    let id = body_json(&resp)["id"].as_str().unwrap().to_string();
    let doomed = tokio::spawn({
        let (ctx, id) = (ctx.clone(), id.clone());
        async move { jobs::worker::process(&ctx, &id).await }
    });
    wait_job(&ctx, &admin, &id, 30, |j| j["status"] == "running").await;
    doomed.abort();
    let _ = doomed.await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let job = wait_job(&ctx, &admin, &id, 5, is_final).await;
    assert_eq!(
        (job["status"].as_str(), job["error"]["error_code"].as_str()),
        (Some("failed"), Some("worker_lost"))
    );
    jobs::worker::process(&ctx, &id).await.unwrap();
    assert_eq!(body_json(&get_job(&ctx, &admin, &id).await)["status"], "failed");
    // Its slot was given back.
    let resp = post_job(&ctx, &admin, json!({"kind": "sessions"}), &[]).await;
    assert_eq!(resp.status(), 202);
}

#[tokio::test]
async fn idempotency_keys_and_the_cache_return_the_same_job() {
    let stack = loaded_stack("job_idempotency").await;
    let ctx = &stack.ctx;
    let user = stack.token(Role::User, "u-alpha", Some("client-alpha"), Some("comp-acme"));
    let other = stack.token(Role::User, "u-other", Some("client-alpha"), Some("comp-acme"));
    let body = json!({"kind": "conversations", "format": "csv"});
    let key = [("idempotency-key", "order-42")];
    let first = post_job(ctx, &user, body.clone(), &key).await;
    assert_eq!(first.status(), 202);
    let id = body_json(&first)["id"].clone();
    let again = post_job(ctx, &user, body.clone(), &key).await;
    assert_eq!(again.status(), 200);
    assert_eq!(body_json(&again)["id"], id);
    let conflict = post_job(ctx, &user, json!({"kind": "conversations", "format": "json"}), &key).await;
    assert_eq!(conflict.status(), 409);
    assert_eq!(body_json(&conflict)["error_code"], "idempotency_key_reused");
    // Keys belong to their caller.
    let theirs = post_job(ctx, &other, body.clone(), &key).await;
    assert_eq!(theirs.status(), 202);
    assert_ne!(body_json(&theirs)["id"], id);
    for bad in ["", "has space", &"x".repeat(129), "ключ"] {
        let resp = post_job(ctx, &user, body.clone(), &[("idempotency-key", bad)]).await;
        assert_eq!(resp.status(), 400, "{bad:?}");
    }

    // Without a key, the same export while the first is queued is that job, cached.
    let cached = post_job(ctx, &user, body.clone(), &[]).await;
    assert_eq!(cached.status(), 200);
    let cached = body_json(&cached);
    assert_eq!((&cached["id"], &cached["cached"]), (&id, &json!(true)));
    let fresh = post_job(ctx, &user, body.clone(), &[("cache-control", "no-cache")]).await;
    assert_eq!(fresh.status(), 202);
    assert_ne!(body_json(&fresh)["id"], id);
    // A different spec is different work.
    let other_spec = post_job(
        ctx,
        &user,
        json!({"kind": "conversations", "format": "csv", "params": {"limit": 3}}),
        &[],
    )
    .await;
    assert_eq!(other_spec.status(), 202);

    // After it succeeded, the cache still answers within EXPORT_CACHE_SECONDS.
    let _worker = worker(ctx);
    wait_job(ctx, &user, id.as_str().unwrap(), 30, is_final).await;
    wait_job(ctx, &user, body_json(&fresh)["id"].as_str().unwrap(), 30, is_final).await;
    let cached = body_json(
        &post_job(
            ctx,
            &user,
            json!({"kind": "conversations", "params": {"format": "csv"}}),
            &[],
        )
        .await,
    );
    assert_eq!(cached["cached"], true);
    assert_eq!(cached["status"], "succeeded");
    assert!(cached["id"] == id || cached["id"] == body_json(&fresh)["id"]);
    // The same request as a synchronous route with Prefer: respond-async is cached too.
    let resp = call(
        ctx,
        "GET",
        "/client/export/conversations?format=csv",
        &user,
        &[("prefer", "respond-async")],
        b"",
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(body_json(&resp)["cached"], true);
}

#[tokio::test]
async fn each_synchronous_route_becomes_a_job_with_prefer_respond_async() {
    let stack = loaded_stack("job_prefer").await;
    let ctx = &stack.ctx;
    let _worker = worker(ctx);
    let admin = stack.admin_token();
    let cases: [(&str, &str, &[u8], &str); 5] = [
        ("GET", "/api/admin/sessions/export?format=json", b"", "sessions"),
        ("GET", "/api/hybrid-leads/export?format=xlsx", b"", "leads"),
        (
            "POST",
            "/client/export/chats",
            br#"{"format":"both","client_id":"client-alpha"}"#,
            "chats",
        ),
        ("GET", "/client/export/chats/download?format=csv", b"", "chats"),
        ("GET", "/client/export/conversations?format=json", b"", "conversations"),
    ];
    for (method, path, body, kind) in cases {
        let resp = call(ctx, method, path, &admin, &[("prefer", "respond-async, wait=10")], body).await;
        assert_eq!(
            resp.status(),
            202,
            "{path}: {}",
            String::from_utf8_lossy(&body_bytes(&resp))
        );
        let job = body_json(&resp);
        assert_eq!(job["kind"], kind);
        let id = job["id"].as_str().unwrap();
        assert_eq!(header(&resp, "location"), format!("/api/exports/{id}"));
        let done = wait_job(ctx, &admin, id, 30, is_final).await;
        assert_eq!(done["status"], "succeeded", "{path}: {done}");
    }
    // Errors of a job request are the job API's, whatever the route's own shape.
    let resp = call(
        ctx,
        "GET",
        "/api/hybrid-leads/export?format=pdf",
        &admin,
        &[("prefer", "respond-async")],
        b"",
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(body_json(&resp)["error_code"], "invalid_request");
}

#[tokio::test]
async fn the_active_job_cap_answers_429_with_retry_after_even_under_concurrency() {
    let stack = TestStack::with_config("job_cap", |c| c.jobs.max_active_per_caller = 2).await;
    let ctx = &stack.ctx;
    let admin = stack.admin_token();
    // Six different exports at once: exactly two are accepted.
    let bodies: Vec<Value> = (1..=6)
        .map(|n| json!({"kind": "chats", "params": {"limit": n}}))
        .collect();
    let answers = futures::future::join_all(bodies.iter().map(|b| post_job(ctx, &admin, b.clone(), &[]))).await;
    let accepted: Vec<_> = answers.iter().filter(|r| r.status() == 202).collect();
    let refused: Vec<_> = answers.iter().filter(|r| r.status() == 429).collect();
    assert_eq!((accepted.len(), refused.len()), (2, 4));
    for r in refused {
        assert_eq!(body_json(r)["error_code"], "too_many_jobs");
        assert!(header(r, "retry-after").parse::<u64>().unwrap() > 0);
    }
    // Finishing one frees a slot.
    let id = body_json(accepted[0])["id"].as_str().unwrap().to_string();
    assert_eq!(
        call(ctx, "POST", &format!("/api/exports/{id}/cancel"), &admin, &[], b"")
            .await
            .status(),
        202
    );
    let resp = post_job(ctx, &admin, json!({"kind": "chats", "params": {"limit": 7}}), &[]).await;
    assert_eq!(resp.status(), 202);
    // The chat rate limit counts jobs too: a user's 11th chat export in a minute is 429.
    let stack = TestStack::with_config("job_rate", |c| c.jobs.max_active_per_caller = 50).await;
    let user = stack.token(Role::User, "u-rate", Some("client-alpha"), None);
    let mut statuses = Vec::new();
    for n in 1..=11 {
        let resp = post_job(
            &stack.ctx,
            &user,
            json!({"kind": "conversations", "params": {"limit": n}}),
            &[],
        )
        .await;
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 202).count(), 10, "{statuses:?}");
    assert_eq!(statuses[10], 429);
}

#[tokio::test]
async fn the_history_lists_jobs_and_synchronous_exports_newest_first_page_by_page() {
    let stack = loaded_stack("job_history").await;
    let ctx = &stack.ctx;
    let admin = stack.admin_token();
    let mut made = Vec::new();
    for n in 1..=3 {
        let resp = post_job(ctx, &admin, json!({"kind": "chats", "params": {"limit": n}}), &[]).await;
        made.push(body_json(&resp)["id"].as_str().unwrap().to_string());
    }
    // Two synchronous exports: recorded as finished jobs.
    assert_eq!(
        call(ctx, "GET", "/api/hybrid-leads/export", &admin, &[], b"")
            .await
            .status(),
        200
    );
    assert_eq!(
        call(ctx, "GET", "/api/admin/sessions/export?format=json", &admin, &[], b"")
            .await
            .status(),
        200
    );
    let mut seen: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/exports?limit=2&cursor={c}"),
            None => "/api/exports?limit=2".to_string(),
        };
        let page = body_json(&call(ctx, "GET", &path, &admin, &[], b"").await);
        let items = page["exports"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let created: Vec<&str> = seen.iter().map(|j| j["created_at"].as_str().unwrap()).collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");
    let sync: Vec<&Value> = seen.iter().filter(|j| j["trigger"] == "sync").collect();
    assert_eq!(sync.len(), 2);
    assert!(sync.iter().all(|j| j["status"] == "succeeded" && j["rows"].is_u64()));
    // An inline synchronous export was never stored: nothing to download.
    let inline = sync[0]["id"].as_str().unwrap();
    let resp = call(ctx, "GET", &format!("/api/exports/{inline}/download"), &admin, &[], b"").await;
    assert_eq!(
        (resp.status().as_u16(), body_json(&resp)["error_code"].clone()),
        (410, json!("file_gone"))
    );
    // Filters.
    let queued = body_json(&call(ctx, "GET", "/api/exports?status=queued&kind=chats", &admin, &[], b"").await);
    let ids: Vec<&str> = queued["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, made.iter().rev().map(String::as_str).collect::<Vec<_>>());
    // Bad parameters and tampered cursors.
    for q in [
        "limit=0",
        "limit=101",
        "limit=x",
        "status=done",
        "kind=x",
        "cursor=abc",
        "cursor=eyJpZCI6IngifQ",
        "nope=1",
        "limit=1&limit=2",
    ] {
        let resp = call(ctx, "GET", &format!("/api/exports?{q}"), &admin, &[], b"").await;
        assert_eq!(resp.status(), 400, "{q}");
    }
    for bad in [
        "2024-01-01T00:00:00.000Z~x",
        "2024-01-01T00:00:00Z~0123456789abcdef0123456789abcdef",
    ] {
        let resp = call(ctx, "GET", &format!("/api/exports?cursor={bad}"), &admin, &[], b"").await;
        assert_eq!(resp.status(), 400, "{bad}");
    }
    // Any cursor of the documented form is a position in the history the request
    // names: from the end of time, the whole history; in someone else's hands, only
    // their own history.
    let end = "9999-12-31T23:59:59.999Z~ffffffffffffffffffffffffffffffff";
    let all = body_json(
        &call(
            ctx,
            "GET",
            &format!("/api/exports?limit=100&cursor={end}"),
            &admin,
            &[],
            b"",
        )
        .await,
    );
    assert_eq!(all["exports"].as_array().unwrap().len(), 5);
    let stranger = stack.token(Role::User, "stranger", None, Some("comp-x"));
    let cursor = seen[1]["created_at"].as_str().unwrap().to_string() + "~" + seen[1]["id"].as_str().unwrap();
    let theirs = body_json(
        &call(
            ctx,
            "GET",
            &format!("/api/exports?cursor={cursor}"),
            &stranger,
            &[],
            b"",
        )
        .await,
    );
    assert_eq!(
        theirs["exports"],
        json!([]),
        "a cursor moves within the caller's own history"
    );
}

#[tokio::test]
async fn a_file_that_expired_answers_410_and_a_fresh_link_is_minted_on_every_read() {
    let stack = loaded_stack("job_expired").await;
    let ctx = &stack.ctx;
    let _worker = worker(ctx);
    let admin = stack.admin_token();
    let resp = post_job(ctx, &admin, json!({"kind": "sessions"}), &[]).await;
    let id = body_json(&resp)["id"].as_str().unwrap().to_string();
    let first = wait_job(ctx, &admin, &id, 30, is_final).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = body_json(&get_job(ctx, &admin, &id).await);
    assert_ne!(
        first["download_url"], second["download_url"],
        "links are minted per read"
    );
    assert!(first["file_expires_at"].is_string());
    // The bucket's lifecycle rule removed the file.
    for key in stack.object_keys().await {
        ctx.aws
            .s3
            .delete_object()
            .bucket(&ctx.config.delivery.bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    }
    let resp = call(ctx, "GET", &format!("/api/exports/{id}/download"), &admin, &[], b"").await;
    assert_eq!(resp.status(), 410);
    assert_eq!(body_json(&resp)["error_code"], "file_gone");
}

#[tokio::test]
async fn injected_faults_fail_a_job_visibly_and_leave_nothing_behind() {
    // S3 cuts the connection on the second part: the job fails, no object, no upload.
    let stack = TestStack::with_config("job_s3_fault", |c| {
        c.delivery.part_bytes = common::config::MIN_PART_BYTES
    })
    .await;
    let upstream = std::env::var("AWS_ENDPOINT_URL_S3").unwrap();
    let proxy = integration_tests::proxy::start(upstream, |method, path| {
        method == "PUT" && path.contains("partNumber=2")
    })
    .await;
    let ctx = stack.with_s3_endpoint(&proxy.url).with_store(Arc::new(BenchStore {
        records: 60_000,
        seed: 9,
    }));
    let admin = stack.admin_token();
    let resp = post_job(&ctx, &admin, json!({"kind": "sessions", "format": "csv"}), &[]).await;
    let id = body_json(&resp)["id"].as_str().unwrap().to_string();
    jobs::worker::process(&ctx, &id).await.unwrap();
    let job = body_json(&get_job(&ctx, &admin, &id).await);
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["error_code"], "export_failed");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(
        !message.to_lowercase().contains("dispatch") && !message.contains("127.0.0.1"),
        "{message}"
    );
    assert!(stack.object_keys().await.is_empty());
    // Its slot was given back: the caller can start MAX_ACTIVE_JOBS_PER_CALLER more.
    let quiet = stack.ctx.clone();
    for n in 1..=3 {
        let resp = post_job(&quiet, &admin, json!({"kind": "chats", "params": {"limit": n}}), &[]).await;
        assert_eq!(resp.status(), 202);
    }

    // The queue is unreachable: the start answers 500 in the job API's shape, and the
    // job it recorded is failed (never a job that nothing will run), its slot returned.
    let stack = TestStack::new("job_queue_fault").await;
    let mut config = (*stack.ctx.config).clone();
    config.jobs.queue_url = format!("{}-missing", config.jobs.queue_url);
    let broken = AppContext::new(config, stack.ctx.aws.clone());
    let resp = post_job(&broken, &admin, json!({"kind": "sessions"}), &[]).await;
    assert_eq!(resp.status(), 500);
    let body = body_json(&resp);
    assert_eq!(body["error_code"], "export_failed");
    assert!(!body["message"].as_str().unwrap().contains("missing"), "{body}");
    let history = body_json(&call(&broken, "GET", "/api/exports", &admin, &[], b"").await);
    assert_eq!(history["exports"][0]["status"], "failed");
    for n in 1..=3 {
        let resp = post_job(
            &stack.ctx,
            &admin,
            json!({"kind": "chats", "params": {"limit": n}}),
            &[],
        )
        .await;
        assert_eq!(resp.status(), 202, "slot {n}");
    }
}

#[tokio::test]
async fn a_job_that_outgrows_one_worker_run_fails_with_export_too_large() {
    let stack = TestStack::with_config("job_too_large", |c| c.jobs.max_run_secs = 1).await;
    let ctx = slow(&stack, 20_000, 150);
    let admin = stack.admin_token();
    let resp = post_job(&ctx, &admin, json!({"kind": "leads", "format": "xlsx"}), &[]).await;
    let id = body_json(&resp)["id"].as_str().unwrap().to_string();
    jobs::worker::process(&ctx, &id).await.unwrap();
    let job = body_json(&get_job(&ctx, &admin, &id).await);
    assert_eq!(
        (job["status"].as_str(), job["error"]["error_code"].as_str()),
        (Some("failed"), Some("export_too_large")),
        "{job}"
    );
    assert!(job["error"]["message"].as_str().unwrap().contains("narrow it"));
    assert!(stack.object_keys().await.is_empty());
}

#[tokio::test]
async fn the_worker_lambda_handles_the_sample_sqs_event() {
    // events/sqs/export-worker-job.json, as `sam local invoke ExportWorkerFunction`
    // or `cargo lambda invoke export-worker` would send it.
    let stack = TestStack::new("job_sqs_event").await;
    let text = std::fs::read_to_string(format!(
        "{}/../events/sqs/export-worker-job.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut event: aws_lambda_events::sqs::SqsEvent = serde_json::from_str(&text).unwrap();
    // An unknown job: nothing to do, the message is done.
    let out = export_worker::handle(&stack.ctx, event.clone()).await;
    assert!(out.batch_item_failures.is_empty());
    // A real job, and a delivery while its state cannot be read (the jobs table is
    // unreachable): that message is reported as a failure, to come back.
    let admin = stack.admin_token();
    let resp = post_job(&stack.ctx, &admin, json!({"kind": "sessions"}), &[]).await;
    let id = body_json(&resp)["id"].as_str().unwrap().to_string();
    event.records[0].body = Some(json!({"job_id": id}).to_string());
    let mut config = (*stack.ctx.config).clone();
    config.tables.jobs = "no-such-table".into();
    let broken = AppContext::new(config, stack.ctx.aws.clone());
    let out = export_worker::handle(&broken, event.clone()).await;
    assert_eq!(out.batch_item_failures.len(), 1);
    assert_eq!(
        out.batch_item_failures[0].item_identifier,
        "059f36b4-87a3-44ab-83d2-661975830a7d"
    );
    let out = export_worker::handle(&stack.ctx, event).await;
    assert!(out.batch_item_failures.is_empty());
    assert_eq!(
        body_json(&get_job(&stack.ctx, &admin, &id).await)["status"],
        "succeeded"
    );
}
