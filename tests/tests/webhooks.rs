//! Webhooks against a receiver on 127.0.0.1 and the local emulators: the signature
//! verified by the Standard Webhooks reference library, retries and their timing, a
//! receiver that always fails, secrets that are their owner's only, and every address
//! the SSRF guard refuses.

use std::time::Duration;

use common::{AppContext, auth::Role, jobs::worker, synth};
use integration_tests::{
    receiver::{Receiver, Reply},
    *,
};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

async fn call(ctx: &AppContext, method: &str, path: &str, token: &str, body: Option<Value>) -> Response<Body> {
    let auth = format!("Bearer {token}");
    let mut headers: Vec<(&str, &str)> = vec![("authorization", auth.as_str())];
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    if !bytes.is_empty() {
        headers.push(("content-type", "application/json"));
    }
    exportctl::serve::route(ctx, request_with_body(method, path, &headers, &bytes)).await
}

fn text(resp: &Response<Body>) -> String {
    String::from_utf8_lossy(&body_bytes(resp)).into_owned()
}

/// A stack whose webhooks retry fast: 200 ms backoff, 4 attempts, 400 ms timeout.
async fn stack(name: &str, allow_loopback: bool) -> TestStack {
    let stack = TestStack::with_config(name, |c| {
        c.webhooks.allow_loopback = allow_loopback;
        c.webhooks.backoff = Duration::from_millis(200);
        c.webhooks.max_delay = Duration::from_secs(2);
        c.webhooks.timeout = Duration::from_millis(400);
        c.webhooks.max_attempts = 4;
    })
    .await;
    stack.load(synth::leads(3, 25).collect()).await;
    stack
}

/// A new secret of `token`'s caller: (id, whsec_...).
async fn secret(ctx: &AppContext, token: &str) -> (String, String) {
    let resp = call(ctx, "POST", "/api/webhook-secrets", token, None).await;
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    let body = body_json(&resp);
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(header(&resp, "location"), format!("/api/webhook-secrets/{id}"));
    (id, body["secret"].as_str().unwrap().to_string())
}

/// Starts a leads job with these webhooks and runs it; the job resource after.
async fn run_job(ctx: &AppContext, token: &str, webhooks: Value) -> Value {
    let resp = call(
        ctx,
        "POST",
        "/api/exports",
        token,
        Some(json!({"kind": "leads", "format": "csv", "notify": {"webhooks": webhooks}})),
    )
    .await;
    assert_eq!(resp.status(), 202, "{}", text(&resp));
    let id = body_json(&resp)["id"].as_str().unwrap().to_string();
    worker::process(ctx, &id).await.unwrap();
    let resp = call(ctx, "GET", &format!("/api/exports/{id}"), token, None).await;
    body_json(&resp)
}

#[tokio::test]
async fn a_finished_job_posts_an_event_the_standard_webhooks_library_verifies() {
    let stack = stack("wh_signed", true).await;
    let ctx = &stack.ctx;
    let user = stack.token(Role::User, "wh-user", None, Some("comp-1"));
    let (secret_id, secret) = secret(ctx, &user).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let receiver = Receiver::start(vec![]).await;
    let job = run_job(ctx, &user, json!([{"url": receiver.url, "secret_id": secret_id}])).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        job["webhooks"],
        json!([{"url": receiver.url, "attempts": 1, "last_status": "200", "delivered": true}])
    );
    assert_eq!(
        job["notify"]["webhooks"],
        json!([{"url": receiver.url, "secret_id": secret_id}])
    );

    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let request = &got[0];
    assert_eq!(request.path, "/hook");
    assert_eq!(
        standard_webhooks_verify(&secret, &request.headers, &request.body),
        Ok("export.succeeded".into())
    );
    let event: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(event["data"]["job"]["id"], job["id"]);
    assert_eq!(event["data"]["job"]["status"], "succeeded");
    assert_eq!(event["data"]["job"]["rows"], job["rows"]);
    // No presigned URL: links the receiver follows with its own credentials.
    assert!(event["data"]["job"]["download_url"].is_null(), "{event}");
    let body = String::from_utf8_lossy(&request.body);
    assert!(
        !body.contains("X-Amz-Signature") && !body.contains("X-Amz-Credential"),
        "{body}"
    );
    assert!(
        event["data"]["links"]["download"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/exports/{}/download", job["id"].as_str().unwrap())),
        "{event}"
    );
    assert!(request.headers["webhook-id"].starts_with("msg_"));

    // The library bites: a changed body, another secret, a stale timestamp.
    let mut changed = request.body.clone();
    changed[10] ^= 1;
    assert!(standard_webhooks_verify(&secret, &request.headers, &changed).is_err());
    let (_, other) = self::secret(ctx, &user).await;
    assert!(standard_webhooks_verify(&other, &request.headers, &request.body).is_err());
    let mut stale = request.headers.clone();
    stale.insert("webhook-timestamp".into(), "1000000000".into());
    assert!(standard_webhooks_verify(&secret, &stale, &request.body).is_err());

    // The secret is nowhere but with its owner: not in the job, not in the table.
    let key = secret.trim_start_matches("whsec_");
    assert!(!job.to_string().contains(key));
    let items = ctx
        .aws
        .dynamodb
        .scan()
        .table_name(&ctx.config.tables.jobs)
        .send()
        .await
        .unwrap();
    let dump = format!("{:?}", items.items());
    assert!(
        dump.contains(&format!("whsec#{secret_id}")),
        "the sealed secret is stored"
    );
    assert!(
        !dump.contains(key) && !dump.contains(&secret),
        "the secret is stored sealed"
    );
    let shown = body_json(&call(ctx, "GET", &format!("/api/webhook-secrets/{secret_id}"), &user, None).await);
    assert_eq!(shown["id"], secret_id.as_str());
    assert!(shown.get("secret").is_none(), "{shown}");
}

#[tokio::test]
async fn failures_are_retried_with_backoff_and_retry_after_then_given_up() {
    let stack = stack("wh_retries", true).await;
    let ctx = &stack.ctx;
    let user = stack.token(Role::User, "wh-retry", None, Some("comp-1"));
    let (secret_id, secret) = secret(ctx, &user).await;

    // 500, then 429 asking for 1 s, then 200.
    let receiver = Receiver::start(vec![Reply::Status(500), Reply::RetryAfter(429, "1")]).await;
    let job = run_job(ctx, &user, json!([{"url": receiver.url, "secret_id": secret_id}])).await;
    assert_eq!(job["webhooks"][0]["attempts"], 3, "{job}");
    assert_eq!(job["webhooks"][0]["delivered"], true);
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    let first_wait = got[1].at - got[0].at;
    let second_wait = got[2].at - got[1].at;
    // The backoff's first wait is 100-200 ms (200 ms, half of it jittered away);
    // the 429's Retry-After is 1 s.
    assert!(
        first_wait >= Duration::from_millis(100) && first_wait < Duration::from_millis(900),
        "{first_wait:?}"
    );
    assert!(second_wait >= Duration::from_millis(1000), "{second_wait:?}");
    // One event: the same id on every attempt, each attempt signed on its own.
    assert!(
        got.iter()
            .all(|r| r.headers["webhook-id"] == got[0].headers["webhook-id"])
    );
    for r in &got {
        assert_eq!(
            standard_webhooks_verify(&secret, &r.headers, &r.body),
            Ok("export.succeeded".into())
        );
    }

    // A receiver that always fails: the limit's attempts, then the job is left as it was.
    let failing = Receiver::answering(vec![], Reply::Status(503)).await;
    let job = run_job(ctx, &user, json!([{"url": failing.url, "secret_id": secret_id}])).await;
    assert_eq!(job["status"], "succeeded");
    assert_eq!(
        job["webhooks"][0],
        json!({"url": failing.url, "attempts": 4, "last_status": "503", "delivered": false})
    );
    assert_eq!(failing.received().len(), 4);

    // A timeout is retried; a redirect is neither followed nor retried; a 400 is final.
    let slow = Receiver::start(vec![Reply::Slow(Duration::from_millis(1500))]).await;
    let job = run_job(ctx, &user, json!([{"url": slow.url, "secret_id": secret_id}])).await;
    assert_eq!(job["webhooks"][0]["attempts"], 2, "{job}");
    assert_eq!(job["webhooks"][0]["delivered"], true);
    let elsewhere = Receiver::start(vec![]).await;
    let redirecting = Receiver::start(vec![Reply::Redirect("/elsewhere")]).await;
    let refusing = Receiver::answering(vec![], Reply::Status(400)).await;
    let job = run_job(
        ctx,
        &user,
        json!([{"url": redirecting.url, "secret_id": secret_id}, {"url": refusing.url, "secret_id": secret_id}]),
    )
    .await;
    assert_eq!(job["webhooks"][0]["last_status"], "302", "{job}");
    assert_eq!(job["webhooks"][0]["attempts"], 1);
    assert_eq!(job["webhooks"][1]["last_status"], "400");
    assert_eq!(job["webhooks"][1]["attempts"], 1);
    assert_eq!(redirecting.received().len(), 1);
    assert!(elsewhere.received().is_empty());
}

#[tokio::test]
async fn a_failed_job_posts_export_failed() {
    let stack = stack("wh_failed", true).await;
    let user = stack.token(Role::User, "wh-fail", None, Some("comp-1"));
    let (secret_id, secret) = secret(&stack.ctx, &user).await;
    let receiver = Receiver::start(vec![]).await;
    // Nothing listens where this context's S3 is: the export cannot be stored.
    let broken = stack.with_s3_endpoint("http://127.0.0.1:9");
    let job = run_job(&broken, &user, json!([{"url": receiver.url, "secret_id": secret_id}])).await;
    assert_eq!(job["status"], "failed", "{job}");
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        standard_webhooks_verify(&secret, &got[0].headers, &got[0].body),
        Ok("export.failed".into())
    );
    let event: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(event["data"]["job"]["error"]["error_code"], "export_failed");
}

#[tokio::test]
async fn a_secret_is_its_owners_only() {
    let stack = stack("wh_tenancy", true).await;
    let ctx = &stack.ctx;
    let alice = stack.token(Role::User, "wh-alice", None, Some("comp-1"));
    let bob = stack.token(Role::User, "wh-bob", None, Some("comp-1"));
    let admin = stack.admin_token();
    let (alices, _) = secret(ctx, &alice).await;
    let receiver = Receiver::start(vec![]).await;
    let hooks = json!([{"url": receiver.url, "secret_id": alices}]);

    // Nobody else can attach it, admins included: the same answer as no secret at all.
    for (token, secret_id) in [
        (&bob, alices.as_str()),
        (&admin, alices.as_str()),
        (&alice, &"0".repeat(32)),
    ] {
        let resp = call(
            ctx,
            "POST",
            "/api/exports",
            token,
            Some(json!({"kind": "leads", "format": "csv", "notify": {"webhooks": [{"url": receiver.url, "secret_id": secret_id}]}})),
        )
        .await;
        assert_eq!(resp.status(), 400, "{}", text(&resp));
        assert!(text(&resp).contains("notify.webhooks[0].secret_id names no webhook secret of yours"));
        let resp = call(
            ctx,
            "POST",
            "/api/schedules",
            token,
            Some(
                json!({"name": "s", "export": {"kind": "leads", "format": "csv"}, "rate": "1 day",
                         "notify": {"webhooks": [{"url": receiver.url, "secret_id": secret_id}]}}),
            ),
        )
        .await;
        assert_eq!(resp.status(), 400, "{}", text(&resp));
    }
    for method in ["GET", "DELETE"] {
        for token in [&bob, &admin] {
            let resp = call(ctx, method, &format!("/api/webhook-secrets/{alices}"), token, None).await;
            assert_eq!(resp.status(), 404, "{method}: {}", text(&resp));
        }
    }
    // An admin editing Alice's schedule cannot attach the admin's own secret either.
    let schedule = body_json(
        &call(
            ctx,
            "POST",
            "/api/schedules",
            &alice,
            Some(
                json!({"name": "s", "export": {"kind": "leads", "format": "csv"}, "rate": "1 day",
                         "notify": {"webhooks": hooks}}),
            ),
        )
        .await,
    );
    assert_eq!(schedule["notify"]["webhooks"], hooks, "{schedule}");
    let (admins, _) = secret(ctx, &admin).await;
    let resp = call(
        ctx,
        "PATCH",
        &format!("/api/schedules/{}", schedule["id"].as_str().unwrap()),
        &admin,
        Some(json!({"notify": {"webhooks": [{"url": receiver.url, "secret_id": admins}]}})),
    )
    .await;
    assert_eq!(resp.status(), 400, "{}", text(&resp));

    // A secret deleted before the job ends signs nothing: the event is not sent.
    let resp = call(
        ctx,
        "POST",
        "/api/exports",
        &alice,
        Some(json!({"kind": "leads", "format": "csv", "notify": {"webhooks": hooks}})),
    )
    .await;
    let id = body_json(&resp)["id"].as_str().unwrap().to_string();
    let resp = call(ctx, "DELETE", &format!("/api/webhook-secrets/{alices}"), &alice, None).await;
    assert_eq!(resp.status(), 204);
    worker::process(ctx, &id).await.unwrap();
    let job = body_json(&call(ctx, "GET", &format!("/api/exports/{id}"), &alice, None).await);
    assert_eq!(
        job["webhooks"][0]["last_status"], "skipped: the secret was deleted",
        "{job}"
    );
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn a_schedules_runs_post_their_events() {
    let stack = stack("wh_schedule", true).await;
    let (ctx, clock) = scheduling::at(&stack, "2026-12-01T12:00:00Z");
    let user = stack.token(Role::User, "wh-sched", None, Some("comp-1"));
    let (secret_id, secret) = secret(&ctx, &user).await;
    let receiver = Receiver::start(vec![]).await;
    let created = scheduling::create(
        &ctx,
        &user,
        json!({"name": "hooked", "export": {"kind": "leads", "format": "jsonl"}, "rate": "1 day",
               "notify": {"webhooks": [{"url": receiver.url, "secret_id": secret_id}]}}),
    )
    .await;
    assert_eq!(created["notify"]["webhooks"][0]["secret_id"], secret_id.as_str());
    let report = scheduling::tick_and_run(&ctx, &clock, "2026-12-02T00:00:10Z").await;
    assert_eq!(report.created.len(), 1);
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    // The fixed clock stamps the attempt: the library checks it against its own.
    let mut headers = got[0].headers.clone();
    let sent_at: i64 = headers["webhook-timestamp"].parse().unwrap();
    assert_eq!(sent_at, scheduling::t("2026-12-02T00:00:10Z").timestamp());
    let event: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(event["data"]["job"]["schedule_id"], created["id"]);
    // Re-signed at the wall clock's now, the same body verifies: the signature covers it.
    let now = chrono::Utc::now().timestamp();
    headers.insert("webhook-timestamp".into(), now.to_string());
    let key = base64_decode(secret.trim_start_matches("whsec_"));
    headers.insert(
        "webhook-signature".into(),
        common::webhooks::deliver::signature(&key, &headers["webhook-id"], now, &got[0].body),
    );
    assert_eq!(
        standard_webhooks_verify(&secret, &headers, &got[0].body),
        Ok("export.succeeded".into())
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[tokio::test]
async fn urls_that_reach_inside_are_refused() {
    // As in AWS: no loopback, https only.
    let stack = stack("wh_ssrf", false).await;
    let ctx = &stack.ctx;
    let user = stack.token(Role::User, "wh-ssrf", None, Some("comp-1"));
    let (secret_id, _) = secret(ctx, &user).await;
    for (url, why) in [
        ("http://93.184.216.34/hook", "must use https"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://2130706433/hook", "loopback"),
        ("https://0x7f000001/hook", "loopback"),
        ("https://0177.0.0.1/hook", "loopback"),
        ("https://localhost/hook", "localhost"),
        ("https://10.0.0.7/hook", "private"),
        ("https://012.0.0.7/hook", "private"),
        ("https://192.168.1.10/hook", "private"),
        ("https://172.31.255.1/hook", "private"),
        ("https://[fd00:ec2::254]/hook", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://user:pass@93.184.216.34/hook", "credentials"),
        ("file:///etc/passwd", "must use https"),
    ] {
        let resp = call(
            ctx,
            "POST",
            "/api/exports",
            &user,
            Some(json!({"kind": "leads", "format": "csv", "notify": {"webhooks": [{"url": url, "secret_id": secret_id}]}})),
        )
        .await;
        let body = text(&resp);
        assert_eq!(resp.status(), 400, "{url}: {body}");
        assert!(
            body.contains("notify.webhooks[0].url") && body.contains(why),
            "{url}: {body}"
        );
    }
    // The dev setting lets loopback through, and nothing else.
    let dev = self::stack("wh_ssrf_dev", true).await;
    let user = dev.token(Role::User, "wh-ssrf", None, Some("comp-1"));
    let (secret_id, _) = secret(&dev.ctx, &user).await;
    for url in ["http://10.0.0.7/hook", "http://169.254.169.254/", "http://192.168.0.1/"] {
        let resp = call(
            &dev.ctx,
            "POST",
            "/api/exports",
            &user,
            Some(json!({"kind": "leads", "format": "csv", "notify": {"webhooks": [{"url": url, "secret_id": secret_id}]}})),
        )
        .await;
        assert_eq!(resp.status(), 400, "{url}: {}", text(&resp));
    }
}
