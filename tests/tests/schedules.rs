//! Scheduled exports and email delivery against the local DynamoDB, S3, SQS and SES
//! emulators: the schedules API, the scheduler's tick driven at fixed instants,
//! duplicate and concurrent ticks, missed runs, windows (time zones, DST,
//! incremental), emails with download links, recipient rules, tenancy, pause, resume
//! and delete, operator-defined exports.

use std::{collections::BTreeSet, sync::Arc};

use common::{AppContext, auth::Role, clock::FixedClock, jobs::worker, load::Record, schedules::tick};
use integration_tests::{scheduling::*, *};
use serde_json::{Value, json};

fn events_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

#[tokio::test]
async fn duplicate_and_concurrent_ticks_make_one_job_per_window_and_missed_days_run_in_order() {
    let stack = TestStack::new("sched_ticks").await;
    let (ctx, clock) = at(&stack, "2026-12-01T00:00:00Z");
    let admin = stack.admin_token();
    let s = create(
        &ctx,
        &admin,
        json!({"name": "daily", "export": {"kind": "leads", "format": "csv"}, "cron": "0 2 * * *",
               "window": "previous_period"}),
    )
    .await;
    assert_eq!(s["next_run_at"], "2026-12-01T02:00:00.000Z");
    let id = s["id"].as_str().unwrap();

    // Three days later: four ticks at once, then the same tick again.
    clock.set(t("2026-12-03T02:00:30Z"));
    let reports = futures::future::join_all((0..4).map(|_| tick::tick(&ctx, t("2026-12-03T02:00:30Z")))).await;
    let again = tick::tick(&ctx, t("2026-12-03T02:00:30Z")).await;
    assert!(again.created.is_empty(), "{again:?}");
    let created: Vec<&String> = reports.iter().flat_map(|r| &r.created).collect();
    let unique: BTreeSet<&String> = created.iter().copied().collect();
    assert_eq!(created.len(), 3, "one job per window, whoever made it: {reports:?}");
    assert_eq!(unique.len(), 3);

    let schedule = get(&ctx, &admin, id).await;
    assert_eq!(schedule["next_run_at"], "2026-12-04T02:00:00.000Z");
    let runs = schedule["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    // Newest first; oldest first they are the three days before each run, contiguous.
    let windows: Vec<(String, String)> = runs
        .iter()
        .rev()
        .map(|r| {
            (
                r["window_start"].as_str().unwrap().into(),
                r["window_end"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        windows,
        [
            (
                "2026-11-30T00:00:00.000Z".to_string(),
                "2026-12-01T00:00:00.000Z".to_string()
            ),
            ("2026-12-01T00:00:00.000Z".into(), "2026-12-02T00:00:00.000Z".into()),
            ("2026-12-02T00:00:00.000Z".into(), "2026-12-03T00:00:00.000Z".into()),
        ]
    );
    let run_ats: Vec<&str> = runs.iter().rev().map(|r| r["run_at"].as_str().unwrap()).collect();
    assert_eq!(
        run_ats,
        [
            "2026-12-01T02:00:00.000Z",
            "2026-12-02T02:00:00.000Z",
            "2026-12-03T02:00:00.000Z"
        ]
    );
}

#[tokio::test]
async fn previous_period_windows_follow_the_time_zone_across_a_dst_change() {
    let stack = TestStack::new("sched_dst").await;
    let company = "comp-dst";
    // Berlin midnight is 23:00Z in winter; DST starts on 2027-03-28 (a 23-hour day).
    let rows = [
        "2027-03-26T22:59:59.999Z", // 26 March, Berlin
        "2027-03-26T23:00:00.000Z", // 27 March
        "2027-03-27T22:59:59.999Z", // 27 March
        "2027-03-27T23:00:00.000Z", // 28 March (23 hours)
        "2027-03-28T21:59:59.999Z", // 28 March
        "2027-03-28T22:00:00.000Z", // 29 March
    ];
    let (ctx, clock) = at(&stack, "2027-03-26T12:00:00Z");
    load_with(
        &ctx,
        rows.iter().enumerate().map(|(i, r)| lead(i, company, t(r))).collect(),
    )
    .await;
    let user = stack.token(Role::User, "dst-user", None, Some(company));
    let s = create(
        &ctx,
        &user,
        json!({"name": "berlin", "export": {"kind": "leads", "format": "csv"}, "cron": "0 2 * * *",
               "time_zone": "Europe/Berlin", "window": "previous_period"}),
    )
    .await;
    // 02:00 Berlin: 01:00Z in winter, 00:00Z in summer.
    let report = tick_and_run(&ctx, &clock, "2027-03-29T06:00:00Z").await;
    assert_eq!(report.created.len(), 3);
    let schedule = get(&ctx, &user, s["id"].as_str().unwrap()).await;
    assert_eq!(schedule["next_run_at"], "2027-03-30T00:00:00.000Z");
    let mut got = Vec::new();
    for run in schedule["runs"].as_array().unwrap().iter().rev() {
        assert_eq!(run["status"], "succeeded", "{run}");
        let csv = download(&ctx, &user, run["job_id"].as_str().unwrap()).await;
        got.push((
            run["window_start"].as_str().unwrap().to_string(),
            run["window_end"].as_str().unwrap().to_string(),
            ids(&csv),
        ));
    }
    let id = |i: usize| format!("lead-{company}-{i:04}");
    assert_eq!(
        got,
        [
            (
                "2027-03-25T23:00:00.000Z".to_string(),
                "2027-03-26T23:00:00.000Z".to_string(),
                vec![id(0)]
            ),
            (
                "2027-03-26T23:00:00.000Z".into(),
                "2027-03-27T23:00:00.000Z".into(),
                vec![id(1), id(2)]
            ),
            (
                "2027-03-27T23:00:00.000Z".into(),
                "2027-03-28T22:00:00.000Z".into(),
                vec![id(3), id(4)]
            ),
        ]
    );
}

#[tokio::test]
async fn incremental_runs_export_every_row_exactly_once() {
    let stack = TestStack::new("sched_incr").await;
    let client = "client-incr";
    let (ctx, clock) = at(&stack, "2026-12-01T00:10:00Z");
    let user = stack.token(Role::User, "incr-user", Some(client), None);
    let s = create(
        &ctx,
        &user,
        json!({"name": "hourly", "export": {"kind": "chats", "format": "jsonl"}, "rate": "1 hour",
               "window": "incremental", "start_at": "2026-12-01T00:00:00Z"}),
    )
    .await;
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["cursor"], "2026-12-01T00:00:00.000Z");
    assert_eq!(s["lag_seconds"], 120);

    let mut all = Vec::new();
    let mut n = 0;
    let mut add = |times: &[&str]| {
        let records: Vec<Record> = times
            .iter()
            .map(|at| {
                n += 1;
                message(n, client, t(at))
            })
            .collect();
        all.extend(records.iter().map(|r| match r {
            Record::ChatMessage(m) => m.id.clone(),
            _ => unreachable!(),
        }));
        records
    };
    let first = add(&[
        "2026-12-01T00:00:00.000Z",
        "2026-12-01T00:30:00Z",
        "2026-12-01T00:57:59.999Z",
    ]);
    load_with(&ctx, first).await;
    // 01:00 run: [00:00, 00:58).
    let r1 = tick_and_run(&ctx, &clock, "2026-12-01T01:00:05Z").await;
    assert_eq!(r1.created.len(), 1);
    // Rows of the lag before 01:00 arrive late, and more after.
    let late = add(&[
        "2026-12-01T00:58:00.000Z",
        "2026-12-01T00:59:59.999Z",
        "2026-12-01T01:30:00Z",
    ]);
    load_with(&ctx, late).await;
    let r2 = tick_and_run(&ctx, &clock, "2026-12-01T02:00:05Z").await;
    assert_eq!(r2.created.len(), 1);
    // The third run is cancelled while queued: its window is exported by the next.
    let more = add(&["2026-12-01T02:10:00Z", "2026-12-01T03:20:00Z", "2026-12-01T04:40:00Z"]);
    load_with(&ctx, more).await;
    clock.set(t("2026-12-01T03:00:05Z"));
    let r3 = tick::tick(&ctx, t("2026-12-01T03:00:05Z")).await;
    assert_eq!(r3.created.len(), 1);
    let cancelled = call(
        &ctx,
        "POST",
        &format!("/api/exports/{}/cancel", r3.created[0]),
        Some(&user),
        None,
    )
    .await;
    assert_eq!(cancelled.status(), 202);
    // An outage until 06:30. The cancelled window waits for the next firing (07:00),
    // then it and the windows behind run one per tick (one in flight), a period each.
    assert!(
        tick_and_run(&ctx, &clock, "2026-12-01T06:30:00Z")
            .await
            .created
            .is_empty()
    );
    let mut later = Vec::new();
    for _ in 0..7 {
        later.extend(tick_and_run(&ctx, &clock, "2026-12-01T07:00:05Z").await.created);
    }
    assert_eq!(later.len(), 5, "{later:?}");

    let schedule = get(&ctx, &user, &id).await;
    assert_eq!(schedule["cursor"], "2026-12-01T06:58:00.000Z");
    assert_eq!(schedule["next_run_at"], "2026-12-01T08:00:00.000Z");
    let runs: Vec<&Value> = schedule["runs"].as_array().unwrap().iter().rev().collect();
    let windows: Vec<(&str, &str, &str)> = runs
        .iter()
        .map(|r| {
            (
                r["window_start"].as_str().unwrap(),
                r["window_end"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        windows,
        [
            ("2026-12-01T00:00:00.000Z", "2026-12-01T00:58:00.000Z", "succeeded"),
            ("2026-12-01T00:58:00.000Z", "2026-12-01T01:58:00.000Z", "succeeded"),
            ("2026-12-01T01:58:00.000Z", "2026-12-01T02:58:00.000Z", "cancelled"),
            // The same window again (another job), then the ones behind.
            ("2026-12-01T01:58:00.000Z", "2026-12-01T02:58:00.000Z", "succeeded"),
            ("2026-12-01T02:58:00.000Z", "2026-12-01T03:58:00.000Z", "succeeded"),
            ("2026-12-01T03:58:00.000Z", "2026-12-01T04:58:00.000Z", "succeeded"),
            ("2026-12-01T04:58:00.000Z", "2026-12-01T05:58:00.000Z", "succeeded"),
            ("2026-12-01T05:58:00.000Z", "2026-12-01T06:58:00.000Z", "succeeded"),
        ]
    );
    let mut exported = Vec::new();
    for run in runs.iter().filter(|r| r["status"] == "succeeded") {
        exported.extend(line_ids(&download(&ctx, &user, run["job_id"].as_str().unwrap()).await));
    }
    let unique: BTreeSet<&String> = exported.iter().collect();
    assert_eq!(unique.len(), exported.len(), "no row twice: {exported:?}");
    let expected: BTreeSet<String> = all.iter().map(ToString::to_string).collect();
    let unique: BTreeSet<String> = unique.into_iter().cloned().collect();
    assert_eq!(unique, expected, "every row once");
}

#[tokio::test]
async fn emails_carry_links_that_download_the_file_and_bad_links_are_refused() {
    let stack = TestStack::new("sched_mail").await;
    let company = "comp-mail";
    let (ctx, clock) = at(&stack, "2026-12-01T12:00:00Z");
    load_with(
        &ctx,
        (0..5).map(|i| lead(i, company, t("2026-12-01T10:00:00Z"))).collect(),
    )
    .await;
    let me = unique_address("me");
    let user = stack.token_with_email(Role::User, "mail-user", None, Some(company), Some(&me));
    let s = create(
        &ctx,
        &user,
        json!({"name": "mailed", "export": {"kind": "leads", "format": "csv"}, "rate": "1 day",
               "notify": {"emails": [me.to_uppercase()]}}),
    )
    .await;
    assert_eq!(s["notify"]["emails"], json!([me]));
    let report = tick_and_run(&ctx, &clock, "2026-12-02T00:00:10Z").await;
    let job_id = report.created[0].clone();

    let mails = mail_to(&me).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(mail["subject"], "Your leads export (csv) is ready: 5 rows");
    let text = mail["body"]["text"].as_str().unwrap();
    assert!(
        text.contains("Rows: 5") && text.contains(company) && text.contains(&job_id),
        "{text}"
    );
    let path = link_of(mail);
    assert!(
        path.starts_with(&format!("/api/exports/{job_id}/download?link=")),
        "{path}"
    );

    // The link works without a token, every time, and gives the job's file.
    let by_token = download(&ctx, &user, &job_id).await;
    for _ in 0..2 {
        let resp = call(&ctx, "GET", &path, None, None).await;
        assert_eq!(resp.status(), 303, "{}", String::from_utf8_lossy(&body_bytes(&resp)));
        assert_eq!(fetch(header(&resp, "location")).await, by_token);
    }
    assert_eq!(ids(&by_token).len(), 5);

    // Tampered, truncated or foreign links name nothing.
    let token = path.split("link=").nth(1).unwrap();
    let mut tampered = token.to_string();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for (bad, status, code) in [
        (
            format!("/api/exports/{job_id}/download?link={tampered}"),
            401,
            "invalid_link",
        ),
        (
            format!("/api/exports/{job_id}/download?link={}", &token[..20]),
            401,
            "invalid_link",
        ),
        (
            format!("/api/exports/{}/download?link={token}", "0".repeat(32)),
            404,
            "not_found",
        ),
    ] {
        let resp = call(&ctx, "GET", &bad, None, None).await;
        assert_eq!(resp.status(), status, "{bad}");
        let body = body_json(&resp);
        assert_eq!(body["error_code"], code);
        assert!(!body.to_string().contains(token), "the link is never echoed");
    }
    // A link stands on its own: a token of another tenant beside it changes nothing.
    let stranger = stack.token(Role::User, "stranger", None, Some("comp-other"));
    let resp = call(&ctx, "GET", &path, Some(&stranger), None).await;
    assert_eq!(resp.status(), 303);
    let resp = call(
        &ctx,
        "GET",
        &format!("/api/exports/{job_id}/download"),
        Some(&stranger),
        None,
    )
    .await;
    assert_eq!(resp.status(), 404, "without the link the stranger sees nothing");

    // Expired: the link lives 7 days (DOWNLOAD_LINK_DAYS).
    clock.set(t("2026-12-09T00:00:10Z"));
    let resp = call(&ctx, "GET", &path, None, None).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(body_json(&resp)["error_code"], "link_expired");
    clock.set(t("2026-12-02T00:00:10Z"));

    // Deleting the job revokes the link (and deletes the file).
    let resp = call(&ctx, "DELETE", &format!("/api/exports/{job_id}"), Some(&user), None).await;
    assert_eq!(resp.status(), 204);
    let resp = call(&ctx, "GET", &path, None, None).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(body_json(&resp)["error_code"], "not_found");

    // An empty run emails unless the schedule says otherwise.
    let quiet = unique_address("quiet");
    let admin = stack.token_with_email(Role::Admin, "mail-admin", None, None, Some("boss@corp.io"));
    create(
        &ctx,
        &admin,
        json!({"name": "quiet", "export": {"kind": "leads", "format": "csv", "params": {"companyId": "comp-none"}},
               "rate": "1 day", "notify": {"emails": [quiet], "on_empty": false}}),
    )
    .await;
    let loud = unique_address("loud");
    create(
        &ctx,
        &admin,
        json!({"name": "loud", "export": {"kind": "leads", "format": "csv", "params": {"companyId": "comp-none"}},
               "rate": "1 day", "notify": {"emails": [loud]}}),
    )
    .await;
    let report = tick_and_run(&ctx, &clock, "2026-12-03T00:00:10Z").await;
    assert_eq!(report.created.len(), 3, "the two new schedules and the first one");
    assert!(mail_to(&quiet).await.is_empty());
    let loud_mail = mail_to(&loud).await;
    assert_eq!(loud_mail.len(), 1);
    assert_eq!(loud_mail[0]["subject"], "Your leads export (csv) is ready: 0 rows");
}

#[tokio::test]
async fn a_job_started_with_recipients_emails_them_and_recipient_rules_hold() {
    let stack = TestStack::new("sched_rcpt").await;
    let client = "client-rcpt";
    stack
        .load((0..3).map(|i| message(i, client, t("2026-11-01T10:00:00Z"))).collect())
        .await;
    let me = unique_address("rcpt");
    let user = stack.token_with_email(Role::User, "rcpt-user", Some(client), None, Some(&me));
    let no_email = stack.token(Role::User, "rcpt-none", Some(client), None);
    let admin = stack.token_with_email(Role::Admin, "rcpt-admin", None, None, Some("boss@corp.io"));
    let ctx = stack.ctx.clone();
    let job = |emails: Value| json!({"kind": "chats", "format": "csv", "notify": {"emails": emails}});
    let schedule = |emails: Value| json!({"name": "r", "export": {"kind": "chats", "format": "csv"}, "rate": "1 hour", "notify": {"emails": emails}});
    // A malformed list is 400; a well-formed address the caller may not use is 403.
    for (token, emails, status) in [
        (&user, json!([me]), 200),
        (&user, json!(["someone@example.com"]), 403),
        (&user, json!([me, "x@example.com"]), 403),
        (&no_email, json!([me]), 403),
        (&user, json!(["not an address"]), 400),
        (&user, json!([format!("{me}\r\nBcc: x@evil.io")]), 400),
        (&admin, json!(["ops@example.com", "boss@corp.io"]), 200),
        (&admin, json!(["ops@evil.io"]), 403),
        (&admin, json!(["ops@example.com.evil.io"]), 403),
        (&user, json!((0..11).map(|_| me.clone()).collect::<Vec<_>>()), 400),
    ] {
        let ok = status == 200;
        let resp = call(
            &ctx,
            "POST",
            "/api/schedules/preview",
            Some(token),
            Some(schedule(emails.clone())),
        )
        .await;
        assert_eq!(
            resp.status(),
            status,
            "{emails} {}",
            String::from_utf8_lossy(&body_bytes(&resp))
        );
        if !ok {
            let body = body_json(&resp);
            let code = if status == 400 { "invalid_request" } else { "forbidden" };
            assert_eq!(body["error_code"], code);
            assert!(body["message"].as_str().unwrap().contains("notify.emails"), "{body}");
        }
        let resp = call(&ctx, "POST", "/api/exports", Some(token), Some(job(emails.clone()))).await;
        assert_eq!(
            resp.status() == 202,
            ok,
            "{emails}: {}",
            String::from_utf8_lossy(&body_bytes(&resp))
        );
    }
    // The job the user started emails the user when it is done.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(common::jobs::queue::poll(ctx.clone(), stopped));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut mails = mail_to(&me).await;
    while mails.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        mails = mail_to(&me).await;
    }
    stop.send(true).unwrap();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0]["subject"], "Your chats export (csv) is ready: 3 rows");
    let path = link_of(&mails[0]);
    let resp = call(&ctx, "GET", &path, None, None).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(ids(&fetch(header(&resp, "location")).await).len(), 3);
}

#[tokio::test]
async fn a_users_schedule_is_theirs_and_exports_their_scope_only() {
    let stack = TestStack::new("sched_tenancy").await;
    let (ctx, clock) = at(&stack, "2026-12-01T00:00:00Z");
    load_with(
        &ctx,
        vec![
            message(1, "client-a", t("2026-11-20T10:00:00Z")),
            message(2, "client-b", t("2026-11-20T10:00:00Z")),
        ],
    )
    .await;
    let alice = stack.token(Role::User, "alice", Some("client-a"), None);
    let bob = stack.token(Role::User, "bob", Some("client-b"), None);
    let alice_moved = stack.token(Role::User, "alice", Some("client-b"), None);
    let admin = stack.admin_token();
    // A user cannot schedule another client's export.
    let resp = call(
        &ctx,
        "POST",
        "/api/schedules",
        Some(&alice),
        Some(
            json!({"name": "x", "export": {"kind": "chats", "format": "csv", "params": {"client_id": "client-b"}},
                    "rate": "1 day"}),
        ),
    )
    .await;
    assert_eq!(resp.status(), 403);
    let s = create(
        &ctx,
        &alice,
        json!({"name": "mine", "export": {"kind": "chats", "format": "csv"}, "rate": "1 day"}),
    )
    .await;
    let id = s["id"].as_str().unwrap();
    for (method, body) in [
        ("GET", None),
        ("PATCH", Some(json!({"enabled": false}))),
        ("DELETE", None),
    ] {
        let resp = call(&ctx, method, &format!("/api/schedules/{id}"), Some(&bob), body).await;
        assert_eq!(resp.status(), 404, "{method}");
        assert_eq!(body_json(&resp)["error_code"], "not_found");
    }
    let list = body_json(&call(&ctx, "GET", "/api/schedules", Some(&bob), None).await);
    assert_eq!(list["schedules"], json!([]));
    let resp = call(&ctx, "GET", "/api/schedules?owner=alice", Some(&bob), None).await;
    assert_eq!(resp.status(), 403);
    let listed = body_json(&call(&ctx, "GET", "/api/schedules", Some(&admin), None).await);
    assert_eq!(listed["schedules"][0]["id"], id);
    let listed = body_json(&call(&ctx, "GET", "/api/schedules?owner=alice", Some(&admin), None).await);
    assert_eq!(listed["schedules"].as_array().unwrap().len(), 1);
    let mine = body_json(&call(&ctx, "GET", "/api/schedules", Some(&alice), None).await);
    assert_eq!(mine["schedules"][0]["id"], id);

    // Its run exports client-a's rows only, and only alice (or an admin) sees it.
    let report = tick_and_run(&ctx, &clock, "2026-12-02T00:00:05Z").await;
    let job_id = &report.created[0];
    let csv = download(&ctx, &alice, job_id).await;
    assert_eq!(ids(&csv), ["msg-client-a-0001"]);
    let resp = call(&ctx, "GET", &format!("/api/exports/{job_id}"), Some(&bob), None).await;
    assert_eq!(resp.status(), 404);
    let resp = call(&ctx, "GET", &format!("/api/exports/{job_id}"), Some(&admin), None).await;
    assert_eq!(body_json(&resp)["trigger"], "schedule");

    // Alice moved to client-b: she still sees her schedule, paused and without its
    // data, and nothing of it runs any more (tests/tests/rights.rs has the rest).
    let seen = get(&ctx, &alice_moved, id).await;
    assert_eq!(seen["access"], "revoked");
    assert_eq!(seen["paused_reason"], "owner_access_changed");
    assert_eq!((&seen["export"], &seen["runs"]), (&Value::Null, &json!([])));
    let resp = call(&ctx, "GET", &format!("/api/exports/{job_id}"), Some(&alice_moved), None).await;
    assert_eq!(resp.status(), 404);
    let report = tick_and_run(&ctx, &clock, "2026-12-03T00:00:05Z").await;
    assert!(report.created.is_empty(), "{report:?}");
}

#[tokio::test]
async fn pause_resume_patch_and_delete() {
    let stack = TestStack::new("sched_pause").await;
    let (ctx, clock) = at(&stack, "2026-12-01T00:00:00Z");
    let user = stack.token(Role::User, "pauser", None, Some("comp-p"));
    let s = create(
        &ctx,
        &user,
        json!({"name": "p", "export": {"kind": "leads", "format": "json"}, "cron": "30 * * * *"}),
    )
    .await;
    let id = s["id"].as_str().unwrap();
    let path = format!("/api/schedules/{id}");
    assert_eq!(s["next_run_at"], "2026-12-01T00:30:00.000Z");
    assert_eq!(s["next_runs"].as_array().unwrap().len(), 5);

    let paused = body_json(&call(&ctx, "PATCH", &path, Some(&user), Some(json!({"enabled": false}))).await);
    assert_eq!(paused["enabled"], false);
    assert_eq!(paused["next_run_at"], Value::Null);
    assert!(
        tick_and_run(&ctx, &clock, "2026-12-01T05:00:00Z")
            .await
            .created
            .is_empty()
    );

    // Resumed: from the next due time after now; the paused hours are not run.
    let resumed = body_json(&call(&ctx, "PATCH", &path, Some(&user), Some(json!({"enabled": true}))).await);
    assert_eq!(resumed["next_run_at"], "2026-12-01T05:30:00.000Z");
    assert_eq!(
        tick_and_run(&ctx, &clock, "2026-12-01T05:31:00Z").await.created.len(),
        1
    );

    // Cadence, zone and name change; a cron and a rate together do not.
    let resp = call(
        &ctx,
        "PATCH",
        &path,
        Some(&user),
        Some(json!({"rate": "2 hours", "name": "every two hours"})),
    )
    .await;
    let patched = body_json(&resp);
    assert_eq!(patched["rate"], "2 hours");
    assert_eq!(patched["cron"], Value::Null);
    assert_eq!(patched["next_run_at"], "2026-12-01T06:00:00.000Z");
    for bad in [
        json!({"rate": "1 hour", "cron": "0 * * * *"}),
        json!({"time_zone": "Nowhere/City"}),
        json!({"window": "incremental"}),
        json!({"name": ""}),
    ] {
        let resp = call(&ctx, "PATCH", &path, Some(&user), Some(bad.clone())).await;
        assert_eq!(resp.status(), 400, "{bad}");
    }
    // A well-formed change this schedule's state does not take: 409, naming the field.
    let resp = call(&ctx, "PATCH", &path, Some(&user), Some(json!({"lag_seconds": 10}))).await;
    assert_eq!(resp.status(), 409);
    let body = body_json(&resp);
    assert_eq!(body["error_code"], "not_incremental");
    assert!(body["message"].as_str().unwrap().starts_with("lag_seconds: "), "{body}");

    let resp = call(&ctx, "DELETE", &path, Some(&user), None).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(call(&ctx, "GET", &path, Some(&user), None).await.status(), 404);
    assert!(
        tick_and_run(&ctx, &clock, "2026-12-02T00:00:00Z")
            .await
            .created
            .is_empty()
    );
}

#[tokio::test]
async fn bad_schedules_are_400_naming_the_field() {
    let stack = TestStack::new("sched_bad").await;
    let user = stack.token(Role::User, "bad", Some("client-x"), Some("comp-x"));
    let admin = stack.admin_token();
    let ok = json!({"name": "n", "export": {"kind": "leads", "format": "csv"}, "cron": "0 2 * * *"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let cases = [
        (without("name"), "name"),
        (with("name", json!("x".repeat(101))), "name"),
        (without("export"), "export"),
        (without("cron"), "cron"),
        (with("cron", json!("0 2 * *")), "cron"),
        (with("cron", json!("99 2 * * *")), "cron"),
        (with("cron", json!(42)), "cron"),
        (with("rate", json!("1 hour")), "cron"),
        (
            without("cron")
                .as_object()
                .cloned()
                .map(|mut o| {
                    o.insert("rate".into(), json!("1 fortnight"));
                    Value::Object(o)
                })
                .unwrap(),
            "rate",
        ),
        (with("time_zone", json!("Mars/Olympus")), "time_zone"),
        (with("window", json!("weekly")), "window"),
        (with("lag_seconds", json!(10)), "lag_seconds"),
        (
            with("window", json!("incremental"))
                .as_object()
                .cloned()
                .map(|mut o| {
                    o.insert("start_at".into(), json!("0001-01-01T00:00:00Z"));
                    Value::Object(o)
                })
                .unwrap(),
            "start_at",
        ),
        (
            with("window", json!("incremental"))
                .as_object()
                .cloned()
                .map(|mut o| {
                    o.insert("start_at".into(), json!("9999-12-31T23:59:59Z"));
                    Value::Object(o)
                })
                .unwrap(),
            "start_at",
        ),
        (with("enabled", json!("yes")), "enabled"),
        (with("surprise", json!(1)), "surprise"),
        (with("export", json!({"kind": "invoices"})), "export"),
        (
            with("export", json!({"kind": "leads", "params": {"nope": 1}})),
            "export",
        ),
        (
            with("window", json!("previous_period"))
                .as_object()
                .cloned()
                .map(|mut o| {
                    o.insert(
                        "export".into(),
                        json!({"kind": "leads", "format": "csv", "params": {"startDate": "2026-01-01"}}),
                    );
                    Value::Object(o)
                })
                .unwrap(),
            "export.params.startDate",
        ),
        (with("notify", json!({"emails": ["a@b.c"], "bcc": []})), "notify"),
    ];
    for (body, field) in cases {
        for route in ["/api/schedules", "/api/schedules/preview"] {
            let resp = call(&stack.ctx, "POST", route, Some(&user), Some(body.clone())).await;
            let text = String::from_utf8_lossy(&body_bytes(&resp)).to_string();
            assert_eq!(resp.status(), 400, "{body} -> {text}");
            let json = body_json(&resp);
            assert_error_shape(&json, false);
            assert!(json["message"].as_str().unwrap().contains(field), "{field}: {text}");
        }
    }
    // Sessions have no date to window; only admins export them at all.
    let sessions = json!({"name": "s", "export": {"kind": "sessions", "format": "csv"}, "rate": "1 day",
                          "window": "incremental"});
    let resp = call(
        &stack.ctx,
        "POST",
        "/api/schedules",
        Some(&admin),
        Some(sessions.clone()),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert!(body_json(&resp)["message"].as_str().unwrap().contains("window"));
    let resp = call(
        &stack.ctx,
        "POST",
        "/api/schedules",
        Some(&user),
        Some(json!({"name": "s",
        "export": {"kind": "sessions", "format": "csv"}, "rate": "1 day"})),
    )
    .await;
    assert_eq!(resp.status(), 403);
    // No token, a bad id, another method.
    assert_eq!(
        call(&stack.ctx, "GET", "/api/schedules", None, None).await.status(),
        401
    );
    assert_eq!(
        call(&stack.ctx, "GET", "/api/schedules/..%2F", Some(&user), None)
            .await
            .status(),
        404
    );
    assert_eq!(
        call(&stack.ctx, "GET", "/api/schedules?limit=0", Some(&user), None)
            .await
            .status(),
        400
    );
    assert_eq!(
        call(&stack.ctx, "GET", "/api/schedules?sort=x", Some(&user), None)
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn operator_exports_run_once_per_firing_and_the_scheduler_lambda_ticks() {
    let stack = TestStack::new("sched_operator").await;
    stack
        .load((0..4).map(|i| lead(i, "comp-op", t("2026-11-01T10:00:00Z"))).collect())
        .await;
    let event: Value =
        serde_json::from_str(&std::fs::read_to_string(events_dir().join("worker/operator-export.json")).unwrap())
            .unwrap();
    let mut event = event;
    event["operator_export"]["export"] = json!({"kind": "leads", "format": "csv", "params": {"companyId": "comp-op"}});
    let first = export_worker::handle_any(&stack.ctx, event.clone()).await.unwrap();
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["rows"], 4);
    assert_eq!(first["created"], true);
    let again = export_worker::handle_any(&stack.ctx, event.clone()).await.unwrap();
    assert_eq!(again["job_id"], first["job_id"]);
    assert_eq!(again["created"], false);
    // Anything else is refused without running.
    assert!(
        export_worker::handle_any(&stack.ctx, json!({"hello": 1}))
            .await
            .is_err()
    );
    let mut bad = event.clone();
    bad["operator_export"]["notify"] = json!({"emails": ["someone@evil.io"]});
    assert!(export_worker::handle_any(&stack.ctx, bad).await.is_err());
    // Webhooks need a user's secret: an operator export refuses them, saying so.
    let mut hooked = event.clone();
    hooked["operator_export"]["notify"] =
        json!({"webhooks": [{"url": "https://hooks.example.com/x", "secret_id": "0".repeat(32)}]});
    let refused = export_worker::handle_any(&stack.ctx, hooked).await.unwrap_err();
    assert!(
        format!("{refused:?}").contains("not available to operator exports"),
        "{refused:?}"
    );

    // The scheduler Lambda's handler with its sample event.
    let tick_event: Value =
        serde_json::from_str(&std::fs::read_to_string(events_dir().join("scheduler/tick.json")).unwrap()).unwrap();
    let report = export_scheduler::handle(&stack.ctx, tick_event).await;
    assert_eq!(report.tick.failed, 0);
    assert_eq!(report.sweep.failed, 0);
}

#[tokio::test]
async fn an_email_that_cannot_be_sent_leaves_the_export_succeeded() {
    let stack = TestStack::new("sched_ses_down").await;
    // SES unreachable: nothing listens on port 9.
    let ses_config = stack
        .ctx
        .aws
        .ses
        .config()
        .to_builder()
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let mut aws = stack.ctx.aws.clone();
    aws.ses = aws_sdk_sesv2::Client::from_conf(ses_config);
    let clock = Arc::new(FixedClock::new(t("2026-12-01T00:00:00Z")));
    let ctx = AppContext::new((*stack.ctx.config).clone(), aws).with_clock(clock.clone());
    load_with(
        &ctx,
        (0..2).map(|i| lead(i, "comp-ses", t("2026-11-01T10:00:00Z"))).collect(),
    )
    .await;
    let admin = stack.token_with_email(Role::Admin, "ses-admin", None, None, Some("boss@corp.io"));
    let address = unique_address("down");
    create(
        &ctx,
        &admin,
        json!({"name": "down", "export": {"kind": "leads", "format": "csv", "params": {"companyId": "comp-ses"}},
               "rate": "1 day", "notify": {"emails": [address]}}),
    )
    .await;
    let report = tick_and_run(&ctx, &clock, "2026-12-02T00:00:10Z").await;
    let job = body_json(
        &call(
            &ctx,
            "GET",
            &format!("/api/exports/{}", report.created[0]),
            Some(&admin),
            None,
        )
        .await,
    );
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["rows"], 2);
    assert!(mail_to(&address).await.is_empty());
}

#[tokio::test]
async fn an_incremental_schedule_starts_one_run_per_window_under_concurrent_ticks_and_catches_up_after_a_pause() {
    let stack = TestStack::new("sched_incr_pause").await;
    let (ctx, clock) = at(&stack, "2026-12-01T00:00:00Z");
    let user = stack.token(Role::User, "incr-pauser", None, Some("comp-ip"));
    let s = create(
        &ctx,
        &user,
        json!({"name": "inc", "export": {"kind": "leads", "format": "csv"}, "rate": "1 hour",
               "window": "incremental", "lag_seconds": 60}),
    )
    .await;
    let id = s["id"].as_str().unwrap().to_string();
    let path = format!("/api/schedules/{id}");
    assert_eq!(s["next_run_at"], "2026-12-01T01:00:00.000Z");
    assert_eq!(s["next_runs"][0]["window_end"], "2026-12-01T00:59:00.000Z");

    clock.set(t("2026-12-01T01:00:10Z"));
    let reports = futures::future::join_all((0..4).map(|_| tick::tick(&ctx, t("2026-12-01T01:00:10Z")))).await;
    let created: Vec<&String> = reports.iter().flat_map(|r| &r.created).collect();
    assert_eq!(created.len(), 1, "{reports:?}");
    worker::process(&ctx, created[0]).await.unwrap();

    // Paused over three firings, then resumed: the windows behind run one per tick.
    let paused = body_json(&call(&ctx, "PATCH", &path, Some(&user), Some(json!({"enabled": false}))).await);
    assert_eq!(paused["next_run_at"], Value::Null);
    assert!(
        tick_and_run(&ctx, &clock, "2026-12-01T04:30:00Z")
            .await
            .created
            .is_empty()
    );
    let resumed = body_json(&call(&ctx, "PATCH", &path, Some(&user), Some(json!({"enabled": true}))).await);
    assert_eq!(resumed["next_run_at"], "2026-12-01T05:00:00.000Z");
    let mut later = Vec::new();
    for _ in 0..8 {
        later.extend(tick_and_run(&ctx, &clock, "2026-12-01T05:00:10Z").await.created);
    }
    assert_eq!(
        later.len(),
        4,
        "the windows ending 01:59, 02:59, 03:59 and 04:59: {later:?}"
    );
    let schedule = get(&ctx, &user, &id).await;
    let ends: Vec<&str> = schedule["runs"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|r| r["window_end"].as_str().unwrap())
        .collect();
    assert_eq!(
        ends,
        [
            "2026-12-01T00:59:00.000Z",
            "2026-12-01T01:59:00.000Z",
            "2026-12-01T02:59:00.000Z",
            "2026-12-01T03:59:00.000Z",
            "2026-12-01T04:59:00.000Z",
        ]
    );
    assert_eq!(schedule["cursor"], "2026-12-01T04:59:00.000Z");
}

#[tokio::test]
async fn a_parquet_schedule_delivers_parquet_with_its_codec() {
    let stack = TestStack::new("sched_parquet").await;
    let company = "comp-parquet";
    let (ctx, clock) = at(&stack, "2026-12-01T12:00:00Z");
    load_with(
        &ctx,
        (0..7).map(|i| lead(i, company, t("2026-12-01T10:00:00Z"))).collect(),
    )
    .await;
    let user = stack.token(Role::User, "parquet-user", None, Some(company));
    let s = create(
        &ctx,
        &user,
        json!({"name": "typed", "export": {"kind": "leads", "format": "parquet", "params": {"compression": "snappy"}},
               "rate": "1 day"}),
    )
    .await;
    assert_eq!(s["export"]["format"], "parquet", "{s}");
    let report = tick_and_run(&ctx, &clock, "2026-12-02T00:00:10Z").await;
    let job_id = report.created[0].clone();
    let job = body_json(&call(&ctx, "GET", &format!("/api/exports/{job_id}"), Some(&user), None).await);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(job["file_name"].as_str().unwrap().ends_with(".parquet"), "{job}");
    let file = download(&ctx, &user, &job_id).await;
    assert_parquet(&file, "the schedule's file");
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(bytes::Bytes::from(file)).unwrap();
    assert_eq!(reader.metadata().file_metadata().num_rows(), 7);
    assert_eq!(
        reader.metadata().row_group(0).column(0).compression(),
        parquet::basic::Compression::SNAPPY
    );
}
