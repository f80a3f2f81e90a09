//! The artifacts AWS runs: the `bootstrap` binaries `cargo lambda build --release`
//! makes (target/lambda/<function>/bootstrap), started under a Lambda Runtime API
//! emulator (integration_tests::runtime) against the local stack, and given every
//! sample event in events/. Each answer is compared with what the same handler
//! answers in process for the same event on a stack loaded with the same data.
//!
//! Ignored by a plain `cargo test`: `make lambda-test` builds the binaries first and
//! runs these (`cargo test --test lambda -- --ignored`).

// The route futures are deep (clippy computes their layout).
#![recursion_limit = "256"]

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use base64::Engine as _;
use common::{load::Record, synth};
use integration_tests::{runtime::Function, runtime::Outcome, *};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Where `cargo lambda build` put a function's binary (`LAMBDA_DIR` overrides).
fn bootstrap(function: &str) -> PathBuf {
    let dir = std::env::var("LAMBDA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(format!("{}/../target/lambda", env!("CARGO_MANIFEST_DIR"))));
    let path = dir.join(function).join("bootstrap");
    assert!(path.exists(), "{} is missing: run `make lambda-test`", path.display());
    path
}

/// The function template.yaml routes a path to.
fn function_of(path: &str) -> &'static str {
    if path == sessions_export::PATH {
        "sessions-export"
    } else if path == leads_export::PATH {
        "leads-export"
    } else if path.starts_with("/client/export/") {
        "chats-export"
    } else {
        "export-jobs"
    }
}

fn events_dir() -> String {
    format!("{}/../events", env!("CARGO_MANIFEST_DIR"))
}

/// Both stacks' settings: no rate limit, job or cache in the way of comparing.
fn settings(c: &mut common::config::Config) {
    c.chat.per_user_per_minute = 10_000;
    c.chat.per_client_per_hour = 10_000;
    c.jobs.max_active_per_caller = 1_000;
    c.jobs.cache_secs = 0;
}

fn env_of(stack: &TestStack) -> Vec<(String, String)> {
    let mut env = server::stack_env(stack);
    for (k, v) in [
        ("RATE_LIMIT_USER_PER_MINUTE", "10000"),
        ("RATE_LIMIT_CLIENT_PER_HOUR", "10000"),
        ("MAX_ACTIVE_JOBS_PER_CALLER", "1000"),
        ("EXPORT_CACHE_SECONDS", "0"),
    ] {
        env.push((k.into(), v.into()));
    }
    env
}

async fn loaded(name: &str) -> TestStack {
    let stack = TestStack::with_config(name, settings).await;
    let records: Vec<Record> = synth::sessions(2, 10)
        .chain(synth::leads(2, 20))
        .chain(synth::chat_messages(2, 40))
        .collect();
    stack.load(records).await;
    stack
}

/// What may differ between two runs of one request: ids, times and links made at
/// the moment (a job's id, `export_date`, presigned URLs).
fn stable(body: &[u8], content_type: &str) -> Value {
    if !content_type.starts_with("application/json") {
        // An Excel document or a compressed file records when it was made.
        return json!({ "non_empty": !body.is_empty() });
    }
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                let volatile = |key: &str| {
                    key.ends_with("_at")
                        || key.starts_with("window_")
                        || key.ends_with("_url")
                        || [
                            "id",
                            "job_id",
                            "export_date",
                            "as_of",
                            "url",
                            "request_id",
                            "links",
                            "location",
                            // A new webhook secret: random, shown once.
                            "secret",
                        ]
                        .contains(&key)
                };
                for value in map.iter_mut().filter(|(k, _)| volatile(k)).map(|(_, v)| v) {
                    *value = Value::Null;
                }
                // An Excel document records when it was made: its size varies by a
                // few bytes of compression.
                let excel = map
                    .get("file_name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.ends_with(".xlsx") || n.ends_with(".zip"));
                if excel {
                    map.insert("file_size".into(), Value::Null);
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    strip(&mut v);
    v
}

/// An API Gateway v2 response the runtime posted: status, content type, content
/// disposition, body.
fn api_response(outcome: Outcome) -> (u16, String, String, Vec<u8>) {
    let Outcome::Response(bytes) = outcome else {
        panic!("the function failed: {outcome:?}")
    };
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    let status = v["statusCode"].as_u64().unwrap() as u16;
    let headers = &v["headers"];
    let named = |name: &str| {
        headers
            .as_object()
            .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .and_then(|(_, v)| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let (content_type, disposition) = (named("content-type"), named("content-disposition"));
    let body = v["body"].as_str().unwrap_or_default();
    let body = if v["isBase64Encoded"].as_bool() == Some(true) {
        base64::engine::general_purpose::STANDARD.decode(body).unwrap()
    } else {
        body.as_bytes().to_vec()
    };
    (status, content_type, disposition, body)
}

#[tokio::test]
#[ignore = "needs the release bootstraps: make lambda-test"]
async fn every_api_event_gets_the_in_process_answer_from_the_real_binaries() {
    let (expected, actual) = (loaded("lambda-in-process").await, loaded("lambda-binary").await);
    let env = env_of(&actual);
    let mut by_function: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for name in api_event_names() {
        let req = event_file(&name);
        by_function.entry(function_of(req.uri().path())).or_default().push(name);
    }
    assert_eq!(by_function.len(), 4, "{:?}", by_function.keys());
    for (function, names) in by_function {
        let f = Function::start(&bootstrap(function), function, &env).await;
        f.ready(TIMEOUT)
            .await
            .unwrap_or_else(|| panic!("{function} never asked for an event"));
        for name in names {
            let raw = std::fs::read(format!("{}/{name}", events_dir())).unwrap();
            let (status, content_type, disposition, body) =
                api_response(f.api.invoke(&raw, TIMEOUT).await.expect(&name));
            let want = exportctl::serve::route(&expected.ctx, event_file(&name)).await;
            let want_header = |name: &str| {
                want.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            let want_type = want_header("content-type");
            let want_body = body_bytes(&want);
            assert_eq!(
                (status, &content_type, &disposition),
                (want.status().as_u16(), &want_type, &want_header("content-disposition")),
                "{function} {name}"
            );
            if content_type.starts_with("text/csv") {
                assert_same_bytes(&body, &want_body, &format!("{function} {name}: the CSV"));
            } else {
                assert_eq!(
                    stable(&body, &content_type),
                    stable(&want_body, &want_type),
                    "{function} {name}"
                );
            }
        }
    }
}

/// The other triggers' sample events: the worker (an SQS delivery and an operator's
/// export), the scheduler's tick, the scale steps and the indexer. The binary answers
/// (or fails) exactly when the handler in process does.
#[tokio::test]
#[ignore = "needs the release bootstraps: make lambda-test"]
async fn the_other_sample_events_run_on_the_real_binaries() {
    let (expected, actual) = (loaded("lambda-in-process-2").await, loaded("lambda-binary-2").await);
    let env = env_of(&actual);
    let read = |path: &str| std::fs::read_to_string(format!("{}/{path}", events_dir())).unwrap();

    let worker = Function::start(&bootstrap("export-worker"), "export-worker", &env).await;
    worker.ready(TIMEOUT).await.expect("the worker starts");
    for path in ["sqs/export-worker-job.json", "worker/operator-export.json"] {
        let event: Value = serde_json::from_str(&read(path)).unwrap();
        let want = export_worker::handle_any(&expected.ctx, event.clone()).await;
        let got = worker
            .api
            .invoke(event.to_string().as_bytes(), TIMEOUT)
            .await
            .expect(path);
        match (got, want) {
            (Outcome::Response(body), Ok(want)) => {
                let got: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(
                    stable(&serde_json::to_vec(&got).unwrap(), "application/json"),
                    stable(&serde_json::to_vec(&want).unwrap(), "application/json"),
                    "{path}"
                );
            }
            (got, want) => panic!("{path}: {got:?} where the handler gave {want:?}"),
        }
    }

    let scheduler = Function::start(&bootstrap("export-scheduler"), "export-scheduler", &env).await;
    scheduler.ready(TIMEOUT).await.expect("the scheduler starts");
    let got = scheduler
        .api
        .invoke(read("scheduler/tick.json").as_bytes(), TIMEOUT)
        .await;
    assert!(matches!(got, Some(Outcome::Response(_))), "{got:?}");

    let scale = Function::start(&bootstrap("export-scale"), "export-scale", &env).await;
    scale.ready(TIMEOUT).await.expect("the scale function starts");
    for step in ["start", "convert", "assemble", "fail"] {
        let path = format!("scale/{step}.json");
        let event: Value = serde_json::from_str(&read(&path)).unwrap();
        let want = export_scale::handle(&expected.ctx, event.clone()).await;
        let got = scale
            .api
            .invoke(event.to_string().as_bytes(), TIMEOUT)
            .await
            .expect(&path);
        assert_eq!(
            matches!(got, Outcome::Response(_)),
            want.is_ok(),
            "{path}: {got:?} where the handler gave {want:?}"
        );
    }

    let indexer = Function::start(&bootstrap("export-indexer"), "export-indexer", &env).await;
    indexer.ready(TIMEOUT).await.expect("the indexer starts");
    let text = read("indexer/insert-bare-items.json")
        .replace("/chat-export-leads/", &format!("/{}/", actual.ctx.config.tables.leads))
        .replace(
            "/chat-export-chat-messages/",
            &format!("/{}/", actual.ctx.config.tables.chat_messages),
        );
    let got = indexer.api.invoke(text.as_bytes(), TIMEOUT).await;
    let Some(Outcome::Response(body)) = got else {
        panic!("{got:?}")
    };
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        answer["batchItemFailures"].as_array().is_some_and(Vec::is_empty),
        "{answer}"
    );
}

/// A handler error is what a real runtime sees: an `/error` post naming it, the
/// process alive, the next event served. A function that cannot start (its
/// configuration is wrong) exits at once instead of waiting for events.
#[tokio::test]
#[ignore = "needs the release bootstraps: make lambda-test"]
async fn a_failed_invocation_is_reported_and_the_next_one_served() {
    let stack = TestStack::with_config("lambda-errors", settings).await;
    let env = env_of(&stack);
    let mut worker = Function::start(&bootstrap("export-worker"), "export-worker", &env).await;
    worker.ready(TIMEOUT).await.expect("the worker starts");
    let got = worker
        .api
        .invoke(br#"{"not":"an event the worker knows"}"#, TIMEOUT)
        .await;
    let Some(Outcome::Error(error)) = got else {
        panic!("{got:?}")
    };
    assert!(error["errorMessage"].as_str().is_some_and(|m| !m.is_empty()), "{error}");
    assert!(worker.alive(), "a failed invocation does not end the process");
    let sqs = std::fs::read(format!("{}/sqs/export-worker-job.json", events_dir())).unwrap();
    let got = worker.api.invoke(&sqs, TIMEOUT).await;
    assert!(matches!(got, Some(Outcome::Response(_))), "{got:?}");

    let broken: Vec<(String, String)> = env
        .iter()
        .cloned()
        .chain([("JWT_SECRET".to_string(), "short".to_string())])
        .collect();
    let mut f = Function::start(&bootstrap("sessions-export"), "sessions-export", &broken).await;
    let deadline = Instant::now() + TIMEOUT;
    while f.alive() {
        assert!(
            Instant::now() < deadline,
            "a misconfigured function must not wait for events"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(f.api.first_next().is_none(), "it never asked for an event");
}

/// Init (spawn to the first `next`), first and second invocation of each binary:
/// the median of 5 cold starts, printed as the table of docs/deploy.md ("Lambda binaries").
#[tokio::test]
#[ignore = "needs the release bootstraps: make lambda-test"]
async fn cold_starts_are_measured() {
    let stack = loaded("lambda-cold").await;
    let env = env_of(&stack);
    let read = |path: &str| std::fs::read(format!("{}/{path}", events_dir())).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("sessions-export", read("sessions-export-admin.json")),
        ("leads-export", read("leads-export-user.json")),
        ("chats-export", read("chats-export-download-user.json")),
        ("export-jobs", read("jobs-list-user.json")),
        ("export-worker", read("sqs/export-worker-job.json")),
        ("export-scheduler", read("scheduler/tick.json")),
        ("export-scale", read("scale/fail.json")),
        ("export-indexer", br#"{"Records":[]}"#.to_vec()),
    ];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("| function | binary | init | first invocation | second invocation |");
    println!("|---|---|---|---|---|");
    for (function, event) in cases {
        let (mut init, mut first, mut second) = (vec![], vec![], vec![]);
        for _ in 0..5 {
            let f = Function::start(&bootstrap(function), function, &env).await;
            init.push(ms(f.ready(TIMEOUT).await.expect(function)));
            for times in [&mut first, &mut second] {
                let at = Instant::now();
                let got = f.api.invoke(&event, TIMEOUT).await;
                assert!(got.is_some(), "{function}: no answer");
                times.push(ms(at.elapsed()));
            }
        }
        let size = std::fs::metadata(bootstrap(function)).unwrap().len() as f64 / 1e6;
        println!(
            "| {function} | {size:.1} MB | {:.1} ms | {:.1} ms | {:.1} ms |",
            median(init),
            median(first),
            median(second)
        );
    }
}
