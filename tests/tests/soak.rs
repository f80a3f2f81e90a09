//! Soak (issue 22): 200 jobs one after another and then 50 at once, through the real
//! `exportctl serve` (its worker and sweeper inside) on the local stack. Every job
//! must finish and none may be left queued. The queue waits (created -> started,
//! from each job's own record) are printed and written to `.stack/soak-summary`,
//! which `make test` prints at its end. Bounded: a few leads per job, one minute or
//! two in a debug build.

use chrono::{DateTime, Utc};
use common::{auth::Role, synth};
use integration_tests::{server::Server, *};
use serde_json::json;

const SEQUENTIAL: usize = 200;
const CONCURRENT: usize = 50;

/// Starts a leads job through the server and waits for it: its queue wait in ms.
async fn run_one(server: &Server, token: &str, id: &str, secs: u64) -> f64 {
    let job = server.final_job(token, id, secs).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let at = |k: &str| {
        DateTime::parse_from_rfc3339(job[k].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    (at("started_at") - at("created_at")).num_milliseconds() as f64
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(phase: &str, waits: &mut [f64]) -> String {
    waits.sort_by(f64::total_cmp);
    format!(
        "soak {phase}: {} jobs, queue wait p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        waits.len(),
        percentile(waits, 50.0),
        percentile(waits, 99.0),
        waits[waits.len() - 1]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_jobs_in_sequence_and_fifty_at_once_all_finish_through_exportctl_serve() {
    let stack = TestStack::new("soak").await;
    stack
        .load(
            synth::leads(8, 10)
                .map(|r| match r {
                    common::load::Record::Lead(mut l) => {
                        l.company_id = "comp-soak".into();
                        common::load::Record::Lead(l)
                    }
                    other => other,
                })
                .collect(),
        )
        .await;
    let server = Server::start(
        &stack,
        &[
            ("SCHEDULER_TICK_SECONDS", "0"),
            ("JOB_REQUEUE_SECONDS", "60"),
            ("RUST_LOG", "warn"),
        ],
    )
    .await;
    let body = json!({"kind": "leads", "format": "csv"});

    let one = stack.token(Role::User, "soak-0", None, Some("comp-soak"));
    let mut sequential = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let id = server.start_job(&one, &body).await;
        sequential.push(run_one(&server, &one, &id, 30).await);
    }

    // 50 callers at once (each may have 3 jobs active; one each here).
    let tokens: Vec<String> = (0..CONCURRENT)
        .map(|i| stack.token(Role::User, &format!("soak-{}", i + 1), None, Some("comp-soak")))
        .collect();
    let ids = futures::future::join_all(tokens.iter().map(|t| server.start_job(t, &body))).await;
    let mut concurrent = Vec::with_capacity(CONCURRENT);
    for (token, id) in tokens.iter().zip(&ids) {
        concurrent.push(run_one(&server, token, id, 120).await);
    }

    // None left behind: the sweeper's index of queued and running jobs is empty.
    let left = common::jobs::sweep::sweep(&stack.ctx, Utc::now()).await;
    assert_eq!((left.active, left.failed), (0, 0), "{left:?}");

    let lines = [
        summary("sequential", &mut sequential),
        summary("50 at once", &mut concurrent),
    ];
    for line in &lines {
        println!("{line}");
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.stack");
    let _ = std::fs::create_dir_all(&dir);
    std::fs::write(dir.join("soak-summary"), lines.join("\n") + "\n").expect("soak summary");
    server.terminate().await;
}
