//! Jobs never stall (issue 22): the jobs table, not the queue, is the source of
//! truth. A job whose message was lost is sent again by the sweeper, and the race of
//! that message with a late original delivery runs one export into one file; a job
//! whose worker died is taken over once its lease ran out, and failed when no attempt
//! is left. Then the real binaries: `exportctl serve` restarted right after SIGTERM
//! runs the next job at once (its receive in flight was answered before it exited),
//! and `exportctl worker` recovers a job whose delivery was lost.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use common::{
    AppContext,
    auth::Role,
    clock::FixedClock,
    jobs::{
        queue::{self, Disposition},
        store::{Claim, JobStore},
        sweep,
    },
    metrics, synth,
};
use integration_tests::{server::Server, *};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

async fn call(ctx: &AppContext, method: &str, path: &str, token: &str, body: &[u8]) -> Response<Body> {
    let auth = format!("Bearer {token}");
    // Every start is a new job (never the cache's).
    let mut headers: Vec<(&str, &str)> = vec![("authorization", auth.as_str()), ("cache-control", "no-cache")];
    if !body.is_empty() {
        headers.push(("content-type", "application/json"));
    }
    exportctl::serve::route(ctx, request_with_body(method, path, &headers, body)).await
}

async fn start_job(ctx: &AppContext, token: &str) -> String {
    let body = json!({"kind": "leads", "format": "csv"}).to_string();
    let resp = call(ctx, "POST", "/api/exports", token, body.as_bytes()).await;
    assert_eq!(resp.status(), 202, "{}", String::from_utf8_lossy(&body_bytes(&resp)));
    body_json(&resp)["id"].as_str().unwrap().to_string()
}

async fn job(ctx: &AppContext, token: &str, id: &str) -> Value {
    let resp = call(ctx, "GET", &format!("/api/exports/{id}"), token, b"").await;
    assert_eq!(resp.status(), 200);
    body_json(&resp)
}

/// The messages on the stack's queue now (each received: invisible for 30 s).
async fn receive(ctx: &AppContext) -> Vec<(String, String)> {
    let mut got = Vec::new();
    for _ in 0..3 {
        let out = ctx
            .aws
            .sqs
            .receive_message()
            .queue_url(&ctx.config.jobs.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            got.push((m.body.unwrap_or_default(), m.receipt_handle.unwrap_or_default()));
        }
        if !got.is_empty() {
            break;
        }
    }
    got
}

fn secs(t: DateTime<Utc>, s: i64) -> DateTime<Utc> {
    t + chrono::Duration::seconds(s)
}

/// The stack with 12 leads of comp-sweep, and a context whose clock is fixed at the
/// real now (read after the load, so the rows are in every export's snapshot).
async fn stack_at_now(
    name: &str,
    adjust: impl FnOnce(&mut common::config::Config),
) -> (TestStack, AppContext, Arc<FixedClock>, DateTime<Utc>) {
    let stack = TestStack::with_config(name, adjust).await;
    let leads = synth::leads(4, 12).map(|r| match r {
        common::load::Record::Lead(mut l) => {
            l.company_id = "comp-sweep".into();
            common::load::Record::Lead(l)
        }
        other => other,
    });
    stack.load(leads.collect()).await;
    let t0 = Utc::now();
    let clock = Arc::new(FixedClock::new(t0));
    let ctx = stack.ctx.clone().with_clock(clock.clone());
    (stack, ctx, clock, t0)
}

#[tokio::test]
async fn a_lost_message_is_sent_again_and_racing_its_late_delivery_runs_one_export_into_one_file() {
    metrics::capture();
    let (stack, ctx, clock, t0) = stack_at_now("sweep_lost", |c| c.jobs.requeue_secs = 60).await;
    let user = stack.token(Role::User, "sweep-user", None, Some("comp-sweep"));
    let id = start_job(&ctx, &user).await;

    // The original delivery is received by a poller whose answer never arrives: the
    // message stays invisible (30 s here; 90 minutes in AWS).
    let original = receive(&ctx).await;
    assert_eq!(original.len(), 1);

    // Before JOB_REQUEUE_SECONDS, nothing; after, four sweepers at once send it once.
    let early = sweep::sweep(&ctx, secs(t0, 59)).await;
    assert_eq!((early.active, early.requeued.len()), (1, 0), "{early:?}");
    clock.set(secs(t0, 61));
    let reports = futures::future::join_all((0..4).map(|_| sweep::sweep(&ctx, secs(t0, 61)))).await;
    let requeued: Vec<&String> = reports.iter().flat_map(|r| &r.requeued).collect();
    assert_eq!(requeued, [&id], "{reports:?}");
    assert!(reports.iter().all(|r| r.failed == 0));
    // Not again within the period.
    assert!(sweep::sweep(&ctx, secs(t0, 100)).await.requeued.is_empty());

    // The late original delivery and the sweeper's message, handled at once.
    let resent = receive(&ctx).await;
    assert_eq!(resent.len(), 1, "one message sent again");
    let bodies = [original[0].0.clone(), resent[0].0.clone()];
    let dispositions = futures::future::join_all(bodies.iter().map(|b| queue::handle_message(&ctx, b))).await;
    assert!(dispositions.contains(&Disposition::Delete), "{dispositions:?}");

    let done = job(&ctx, &user, &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["rows"], 12);
    let stored = JobStore::of(&ctx).get(&id).await.unwrap().unwrap();
    assert_eq!(stored.attempts, 1, "one run");
    assert_eq!(stored.requeues, 1);
    assert!(stored.active_shard.is_none(), "a final job leaves the sweeper's index");
    assert_eq!(stack.object_keys().await.len(), 1, "one file");
    // The file is the synchronous export's.
    let resp = call(&ctx, "GET", &format!("/api/exports/{id}/download"), &user, b"").await;
    let file = reqwest::get(header(&resp, "location"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let sync = call(&ctx, "GET", "/api/hybrid-leads/export?format=csv", &user, b"").await;
    assert_eq!(sync.status(), 200);
    assert_eq!(file.as_ref(), body_bytes(&sync).as_slice());

    // Nothing is left to sweep.
    let after = sweep::sweep(&ctx, secs(t0, 10_000)).await;
    assert_eq!((after.active, after.requeued.len()), (0, 0), "{after:?}");

    // One Requeued line (reason unclaimed) and one finished export for the job.
    let lines: Vec<Value> = metrics::captured()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &Value| l["id"] == id.as_str())
        .collect();
    let requeued: Vec<&Value> = lines.iter().filter(|l| l.get("Requeued").is_some()).collect();
    assert_eq!(requeued.len(), 1, "{lines:?}");
    assert_eq!(requeued[0]["reason"], "unclaimed");
    assert_eq!(requeued[0]["WaitedMs"], 61_000);
    assert_eq!(
        lines.iter().filter(|l| l.get("Exports").is_some()).count(),
        1,
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_job_whose_worker_died_is_taken_over_after_its_lease_and_failed_when_no_attempt_is_left() {
    let (stack, ctx, clock, t0) = stack_at_now("sweep_lease", |c| {
        c.jobs.requeue_secs = 60;
        c.jobs.lease_secs = 120;
        c.jobs.max_attempts = 2;
    })
    .await;
    let user = stack.token(Role::User, "lease-user", None, Some("comp-sweep"));
    let store = JobStore::of(&ctx);

    // A worker claims the job and dies (its message is never deleted).
    let id = start_job(&ctx, &user).await;
    receive(&ctx).await;
    assert!(matches!(
        store.claim(&id, "dead", t0, 120, 2).await.unwrap(),
        Claim::Claimed(_)
    ));
    assert!(
        sweep::sweep(&ctx, secs(t0, 120)).await.requeued.is_empty(),
        "its lease still runs"
    );
    clock.set(secs(t0, 121));
    let report = sweep::sweep(&ctx, secs(t0, 121)).await;
    assert_eq!(report.requeued, std::slice::from_ref(&id), "{report:?}");
    let resent = receive(&ctx).await;
    assert_eq!(queue::handle_message(&ctx, &resent[0].0).await, Disposition::Delete);
    let done = job(&ctx, &user, &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(store.get(&id).await.unwrap().unwrap().attempts, 2);

    // Its last attempt's worker dies too: the sweeper fails it (worker_lost).
    clock.set(t0);
    let id = start_job(&ctx, &user).await;
    for at in [0, 121] {
        assert!(matches!(
            store
                .claim(&id, &format!("dead-{at}"), secs(t0, at), 120, 2)
                .await
                .unwrap(),
            Claim::Claimed(_)
        ));
    }
    clock.set(secs(t0, 242));
    let report = sweep::sweep(&ctx, secs(t0, 242)).await;
    assert_eq!(
        (report.requeued.len(), report.settled.clone()),
        (0, vec![id.clone()]),
        "{report:?}"
    );
    let failed = job(&ctx, &user, &id).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["error_code"], "worker_lost");
}

/// A worker asked to stop mid-job (its process got SIGTERM, and the grace period
/// ran out) gives the job back: `queued` again, not counted as an attempt, and the
/// next delivery runs it from the start; its unfinished upload leaves no object.
#[tokio::test]
async fn a_job_interrupted_by_a_stopping_worker_is_given_back_and_runs_again() {
    let stack = TestStack::new("sweep_release").await;
    let admin = stack.admin_token();
    let slow = stack.ctx.clone().with_store(Arc::new(SlowStore {
        inner: Arc::new(exportctl::bench::BenchStore { records: 8000, seed: 5 }),
        delay: Duration::from_millis(150),
    }));
    let id = start_job(&slow, &admin).await;
    let message = receive(&slow).await.remove(0).0;
    let interrupt = tokio::time::sleep(Duration::from_millis(300));
    let disposition = queue::handle_message_until(&slow, &message, interrupt).await;
    assert_eq!(disposition, Disposition::Release);
    let stored = JobStore::of(&slow).get(&id).await.unwrap().unwrap();
    assert_eq!(stored.status.as_str(), "queued");
    assert_eq!(
        (stored.attempts, stored.worker.clone(), stored.started_at),
        (0, None, None)
    );
    assert!(stored.active_shard.is_some());
    assert!(stack.object_keys().await.is_empty());
    // The next delivery runs it to the end.
    assert_eq!(queue::handle_message(&slow, &message).await, Disposition::Delete);
    let done = job(&slow, &admin, &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(JobStore::of(&slow).get(&id).await.unwrap().unwrap().attempts, 1);
}

/// What the issue reproduced in 2 of 6 tries: `exportctl serve` stopped with SIGTERM
/// about 2 s after it started, started again, and a job posted at once stayed
/// queued for the queue's visibility timeout. Now the stop waits for the receive in
/// flight, so the next process gets the message. The sweeper is out of the way
/// (JOB_REQUEUE_SECONDS is an hour), and the queue's visibility timeout is 30 s.
#[tokio::test]
async fn serve_restarted_right_after_sigterm_runs_the_next_job_at_once() {
    let stack = TestStack::new("sweep_restart").await;
    stack.load(synth::leads(4, 5).collect()).await;
    let admin = stack.admin_token();
    let env = [("JOB_REQUEUE_SECONDS", "3600"), ("SCHEDULER_TICK_SECONDS", "0")];
    for round in 0..4 {
        let first = Server::start(&stack, &env).await;
        tokio::time::sleep(Duration::from_millis(1500 + 250 * round)).await;
        let took = first.terminate().await;
        assert!(took < Duration::from_secs(8), "SIGTERM took {took:?}");
        let server = Server::start(&stack, &env).await;
        // Within 10 s of being posted (the queue's visibility timeout is 30 s).
        let id = server
            .start_job(&admin, &json!({"kind": "leads", "format": "json"}))
            .await;
        let job = server.final_job(&admin, &id, 10).await;
        assert_eq!(job["status"], "succeeded", "round {round}: {job}");
        server.terminate().await;
    }
}

/// A delivery lost for good (received by nobody who runs it) is recovered by the
/// sweeper of `exportctl worker`, and says so in its `Requeued` metric line.
#[tokio::test]
async fn exportctl_worker_recovers_a_job_whose_delivery_was_lost() {
    let stack = TestStack::new("sweep_worker").await;
    stack.load(synth::leads(4, 5).collect()).await;
    let admin = stack.admin_token();
    let id = start_job(&stack.ctx, &admin).await;
    // The message is taken and lost: invisible for the queue's 30 s.
    assert_eq!(receive(&stack.ctx).await.len(), 1);
    let worker = Server::worker(&stack, &[("JOB_REQUEUE_SECONDS", "2")]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let job = job(&stack.ctx, &admin, &id).await;
        if job["status"] == "succeeded" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not recovered: {job}\n{}",
            worker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = worker.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("\"Requeued\":1") && l.contains(&id) && l.contains("\"reason\":\"unclaimed\"")),
        "{log}"
    );
    assert!(worker.terminate().await < Duration::from_secs(8));
}
