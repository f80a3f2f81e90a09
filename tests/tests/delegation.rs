//! What acts for an owner while the owner is not calling, against the local stack:
//! emailed links live for one generation of one job, schedules follow their owner's
//! rights as the API last saw them, the job cache answers only under the same
//! tenants, and nothing a caller writes can forge a line of the email.

#![recursion_limit = "256"]

use std::sync::Arc;

use chrono::Duration;
use common::{auth::Role, jobs::worker, schedules::tick, synth};
use integration_tests::{scheduling::*, *};
use serde_json::{Value, json};

/// The status and error code an emailed link answers now.
async fn click(ctx: &common::AppContext, path: &str) -> (u16, Value) {
    let resp = call(ctx, "GET", path, None, None).await;
    let status = resp.status().as_u16();
    let body = if status == 303 {
        Value::Null
    } else {
        body_json(&resp)["error_code"].clone()
    };
    (status, body)
}

async fn patch(ctx: &common::AppContext, token: &str, id: &str, body: Value) -> (u16, Value) {
    let resp = call(ctx, "PATCH", &format!("/api/schedules/{id}"), Some(token), Some(body)).await;
    (resp.status().as_u16(), body_json(&resp))
}

async fn delete_job(ctx: &common::AppContext, token: &str, id: &str) {
    let resp = call(ctx, "DELETE", &format!("/api/exports/{id}"), Some(token), None).await;
    assert_eq!(resp.status(), 204);
}

#[tokio::test]
async fn an_incremental_runs_deleted_job_never_brings_its_links_back() {
    let stack = TestStack::new("deleg_incr").await;
    let (ctx, clock) = at(&stack, "2026-12-01T12:00:00Z");
    let company = "comp-incr";
    load_with(
        &ctx,
        (0..4)
            .map(|i| lead(i, company, t("2026-12-01T09:10:00Z") + Duration::minutes(i as i64 * 20)))
            .collect(),
    )
    .await;
    let me = unique_address("incr");
    let user = stack.token_with_email(Role::User, "incr-user", None, Some(company), Some(&me));
    let s = create(
        &ctx,
        &user,
        json!({"name": "incr", "export": {"kind": "leads", "format": "csv"}, "rate": "1 hour",
               "window": "incremental", "lag_seconds": 0, "start_at": "2026-12-01T09:00:00Z",
               "notify": {"emails": [me]}}),
    )
    .await;
    let id = s["id"].as_str().unwrap().to_string();

    let first = tick_and_run(&ctx, &clock, "2026-12-01T12:00:10Z").await.created;
    assert_eq!(first.len(), 1);
    let old_link = link_of(&mail_to(&me).await[0]);
    assert_eq!(click(&ctx, &old_link).await.0, 303);
    delete_job(&ctx, &user, &first[0]).await;
    assert_eq!(click(&ctx, &old_link).await, (404, json!("not_found")));

    // The tick finds the run's job deleted: its window runs again, as another job,
    // and the old link stays dead whatever the schedule does next.
    let mut made = Vec::new();
    for when in ["2026-12-01T12:00:20Z", "2026-12-01T13:00:10Z", "2026-12-01T13:00:20Z"] {
        made.extend(tick_and_run(&ctx, &clock, when).await.created);
        assert_eq!(click(&ctx, &old_link).await.0, 404, "after the tick at {when}");
    }
    assert!(!made.contains(&first[0]), "{made:?}");
    let runs = get(&ctx, &user, &id).await["runs"].clone();
    let windows: Vec<&Value> = runs.as_array().unwrap().iter().map(|r| &r["window_start"]).collect();
    assert!(
        windows.contains(&&json!("2026-12-01T09:00:00.000Z")),
        "the deleted window ran again: {runs}"
    );

    // Pause, delete, resume: still one generation per link.
    let mails = mail_to(&me).await;
    let second_link = link_of(mails.last().unwrap());
    let second_job = second_link.split('/').nth(3).unwrap().to_string();
    assert_eq!(click(&ctx, &second_link).await.0, 303);
    assert_eq!(patch(&ctx, &user, &id, json!({"enabled": false})).await.0, 200);
    delete_job(&ctx, &user, &second_job).await;
    assert_eq!(patch(&ctx, &user, &id, json!({"enabled": true})).await.0, 200);
    for when in ["2026-12-01T14:00:10Z", "2026-12-01T15:00:10Z", "2026-12-01T15:00:20Z"] {
        tick_and_run(&ctx, &clock, when).await;
        assert_eq!(click(&ctx, &second_link).await.0, 404, "after the tick at {when}");
        assert_eq!(click(&ctx, &old_link).await.0, 404);
    }
}

#[tokio::test]
async fn a_cadence_change_exports_no_window_twice_and_leaves_none_out() {
    let stack = TestStack::new("deleg_cadence").await;
    let (ctx, clock) = at(&stack, "2026-12-01T22:30:00Z");
    let company = "comp-cad";
    load_with(
        &ctx,
        (0..70)
            .map(|i| lead(i, company, t("2026-12-01T00:10:00Z") + Duration::minutes(i as i64 * 30)))
            .collect(),
    )
    .await;
    let me = unique_address("cadence");
    let user = stack.token_with_email(Role::User, "cad-user", None, Some(company), Some(&me));
    let body = json!({"name": "hourly", "export": {"kind": "leads", "format": "csv"}, "cron": "0 * * * *",
                      "window": "previous_period", "notify": {"emails": [me]}});
    let kept = create(&ctx, &user, body.clone()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let purged = create(&ctx, &user, body).await["id"].as_str().unwrap().to_string();

    let report = tick_and_run(&ctx, &clock, "2026-12-01T23:00:10Z").await;
    assert_eq!(report.created.len(), 2);
    let links: Vec<String> = mail_to(&me).await.iter().map(link_of).collect();
    let purged_run = get(&ctx, &user, &purged).await["runs"][0]["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let purged_link = links.iter().find(|l| l.contains(&purged_run)).unwrap().clone();
    delete_job(&ctx, &user, &purged_run).await;

    // Both move from the hour to half past: the 23:30 run's window (22:00-23:00) was
    // exported at 23:00, so the next run is at 00:30 and exports 23:00-00:00.
    clock.set(t("2026-12-01T23:10:00Z"));
    for id in [&kept, &purged] {
        let (status, s) = patch(&ctx, &user, id, json!({"cron": "30 * * * *"})).await;
        assert_eq!(status, 200, "{s}");
        assert_eq!(s["next_run_at"], "2026-12-02T00:30:00.000Z", "{s}");
        assert_eq!(s["next_runs"][0]["window_start"], "2026-12-01T23:00:00.000Z");
        assert_eq!(s["next_runs"][0]["window_end"], "2026-12-02T00:00:00.000Z");
        assert_eq!(s["next_runs"][1]["window_start"], "2026-12-02T00:00:00.000Z");
    }
    let report = tick_and_run(&ctx, &clock, "2026-12-01T23:30:10Z").await;
    assert!(report.created.is_empty(), "{report:?}");
    assert_eq!(click(&ctx, &purged_link).await.0, 404);
    let report = tick_and_run(&ctx, &clock, "2026-12-02T00:30:10Z").await;
    assert_eq!(report.created.len(), 2);
    for id in [&kept, &purged] {
        let runs = get(&ctx, &user, id).await["runs"].clone();
        let windows: Vec<(&str, &str)> = runs
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["window_start"].as_str().unwrap(), r["window_end"].as_str().unwrap()))
            .collect();
        assert!(
            windows.contains(&("2026-12-01T23:00:00.000Z", "2026-12-02T00:00:00.000Z")),
            "{runs}"
        );
        assert!(!runs.as_array().unwrap().iter().any(|r| r["job_id"] == purged_run));
    }
    assert_eq!(click(&ctx, &purged_link).await.0, 404);

    // Daily to hourly: the first hourly window starts where the last daily one
    // ended, so the hours between are not left out.
    let daily = create(
        &ctx,
        &user,
        json!({"name": "daily", "export": {"kind": "leads", "format": "csv"}, "cron": "0 2 * * *",
               "window": "previous_period"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    tick_and_run(&ctx, &clock, "2026-12-02T02:00:10Z").await;
    clock.set(t("2026-12-02T10:05:00Z"));
    let (_, s) = patch(&ctx, &user, &daily, json!({"cron": "0 * * * *"})).await;
    assert_eq!(s["next_run_at"], "2026-12-02T11:00:00.000Z");
    assert_eq!(s["next_runs"][0]["window_start"], "2026-12-02T00:00:00.000Z");
    tick_and_run(&ctx, &clock, "2026-12-02T11:00:10Z").await;
    let runs = get(&ctx, &user, &daily).await["runs"].clone();
    assert_eq!(runs[0]["window_start"], "2026-12-02T00:00:00.000Z", "{runs}");
    assert_eq!(runs[0]["window_end"], "2026-12-02T11:00:00.000Z");
    assert_eq!(runs[1]["window_end"], "2026-12-02T00:00:00.000Z");
    // ...and the rows of those hours are in it, each once across the two files.
    assert_eq!(runs[0]["rows"], 22, "{runs}");
    assert_eq!(runs[1]["rows"], 48);
}

#[tokio::test]
async fn a_window_found_exported_at_tick_time_is_skipped_visibly() {
    // A schedule stored before windows were tracked: the collision is found by the
    // tick, which skips the run and says so.
    let stack = TestStack::new("deleg_skip").await;
    let (ctx, clock) = at(&stack, "2026-12-01T22:30:00Z");
    let user = stack.token(Role::User, "skip-user", None, Some("comp-skip"));
    let id = create(
        &ctx,
        &user,
        json!({"name": "hourly", "export": {"kind": "leads", "format": "csv"}, "cron": "0 * * * *",
               "window": "previous_period"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    tick_and_run(&ctx, &clock, "2026-12-01T23:00:10Z").await;
    ctx.aws
        .dynamodb
        .update_item()
        .table_name(&ctx.config.tables.schedules)
        .key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.clone()))
        .update_expression("REMOVE last_window_end")
        .send()
        .await
        .unwrap();
    clock.set(t("2026-12-01T23:10:00Z"));
    let (status, s) = patch(&ctx, &user, &id, json!({"cron": "30 * * * *"})).await;
    assert_eq!((status, &s["next_run_at"]), (200, &json!("2026-12-01T23:30:00.000Z")));
    let report = tick_and_run(&ctx, &clock, "2026-12-01T23:30:10Z").await;
    assert!(report.created.is_empty());
    let s = get(&ctx, &user, &id).await;
    assert_eq!(
        s["skipped_runs"],
        json!([{"run_at": "2026-12-01T23:30:00.000Z", "window_start": "2026-12-01T22:00:00.000Z",
                "window_end": "2026-12-01T23:00:00.000Z", "reason": "window_exported_before"}])
    );
    assert_eq!(s["next_run_at"], "2026-12-02T00:30:00.000Z");
    assert_eq!(s["runs"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_schedule_exports_only_what_its_owner_may_export_at_each_run() {
    let stack = TestStack::new("deleg_rights").await;
    let (ctx, clock) = at(&stack, "2026-12-01T00:00:00Z");
    load_with(&ctx, synth::sessions(5, 20).collect()).await;
    let boss_mail = unique_address("boss");
    let boss = stack.token_with_email(Role::Admin, "boss", None, None, Some(&boss_mail));
    let boss_demoted = stack.token_with_email(Role::User, "boss", Some("client-x"), None, Some(&boss_mail));
    let other_admin = stack.admin_token();
    let sessions = json!({"name": "all sessions", "export": {"kind": "sessions", "format": "csv"},
                          "rate": "1 hour", "notify": {"emails": [boss_mail]}});
    let id = create(&ctx, &boss, sessions.clone()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    tick_and_run(&ctx, &clock, "2026-12-01T01:00:10Z").await;
    let link = link_of(&mail_to(&boss_mail).await[0]);
    assert_eq!(click(&ctx, &link).await.0, 303);

    // The same sub with a user token: any request records it, and the schedule is
    // paused at once; the owner still sees it, without its data, and may delete it.
    let mine = body_json(&call(&ctx, "GET", "/api/schedules", Some(&boss_demoted), None).await);
    let listed = &mine["schedules"][0];
    assert_eq!(listed["id"], id.as_str(), "{mine}");
    assert_eq!(
        (&listed["access"], &listed["enabled"], &listed["paused_reason"]),
        (&json!("revoked"), &json!(false), &json!("owner_access_changed"))
    );
    assert_eq!((&listed["export"], &listed["notify"]), (&Value::Null, &Value::Null));
    assert!(!mine.to_string().contains(&boss_mail));
    assert_eq!(click(&ctx, &link).await, (401, json!("link_revoked")));
    let report = tick_and_run(&ctx, &clock, "2026-12-01T02:00:10Z").await;
    assert!(report.created.is_empty(), "{report:?}");
    assert_eq!(mail_to(&boss_mail).await.len(), 1);
    let (status, body) = patch(&ctx, &boss_demoted, &id, json!({"enabled": true})).await;
    assert_eq!((status, &body["error_code"]), (403, &json!("forbidden")));

    // Admins find it among the orphaned schedules; resuming it is the owner's.
    let orphaned = body_json(&call(&ctx, "GET", "/api/schedules?orphaned=true", Some(&other_admin), None).await);
    let ids: Vec<&Value> = orphaned["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["id"])
        .collect();
    assert_eq!(ids, [&json!(id)]);
    assert_eq!(orphaned["schedules"][0]["access"], "full");
    let resp = call(&ctx, "GET", "/api/schedules?orphaned=true", Some(&boss_demoted), None).await;
    assert_eq!(resp.status(), 403);
    let theirs = body_json(
        &call(
            &ctx,
            "GET",
            "/api/schedules?orphaned=true&owner=boss",
            Some(&other_admin),
            None,
        )
        .await,
    );
    assert_eq!(theirs["schedules"].as_array().unwrap().len(), 1, "{theirs}");
    let (status, body) = patch(&ctx, &other_admin, &id, json!({"enabled": true})).await;
    assert_eq!((status, &body["error_code"]), (409, &json!("owner_access_changed")));
    let resp = call(
        &ctx,
        "DELETE",
        &format!("/api/schedules/{id}"),
        Some(&boss_demoted),
        None,
    )
    .await;
    assert_eq!(resp.status(), 204);

    // A run queued before the owner's rights changed does not run after.
    let id = create(&ctx, &boss, sessions).await["id"].as_str().unwrap().to_string();
    clock.set(t("2026-12-01T03:00:10Z"));
    let queued = tick::tick(&ctx, t("2026-12-01T03:00:10Z")).await.created;
    assert_eq!(queued.len(), 1);
    call(&ctx, "GET", "/api/schedules", Some(&boss_demoted), None).await;
    worker::process(&ctx, &queued[0]).await.unwrap();
    let job = body_json(
        &call(
            &ctx,
            "GET",
            &format!("/api/exports/{}", queued[0]),
            Some(&other_admin),
            None,
        )
        .await,
    );
    assert_eq!(
        (&job["status"], &job["error"]["error_code"]),
        (&json!("failed"), &json!("owner_access_changed"))
    );
    assert_eq!(mail_to(&boss_mail).await.len(), 1, "no email for it");
    assert_eq!(
        get(&ctx, &other_admin, &id).await["paused_reason"],
        "owner_access_changed"
    );
}

#[tokio::test]
async fn a_user_who_moves_tenant_stops_their_schedules_until_they_resume_them() {
    let stack = TestStack::new("deleg_move").await;
    let (ctx, clock) = at(&stack, "2026-12-01T00:00:00Z");
    load_with(
        &ctx,
        vec![
            message(1, "client-a", t("2026-11-30T10:00:00Z")),
            message(2, "client-b", t("2026-11-30T10:00:00Z")),
        ],
    )
    .await;
    let mail = unique_address("mover");
    let alice = stack.token_with_email(Role::User, "mover", Some("client-a"), None, Some(&mail));
    let alice_b = stack.token_with_email(Role::User, "mover", Some("client-b"), None, Some(&mail));
    let id = create(
        &ctx,
        &alice,
        json!({"name": "mine", "export": {"kind": "chats", "format": "csv"}, "rate": "1 day",
               "notify": {"emails": [mail]}}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    call(&ctx, "GET", "/api/exports", Some(&alice_b), None).await;
    let report = tick_and_run(&ctx, &clock, "2026-12-02T00:00:10Z").await;
    assert!(report.created.is_empty());
    assert!(mail_to(&mail).await.is_empty());
    // Back under client-a: the schedule is whole again, but paused until resumed.
    let s = get(&ctx, &alice, &id).await;
    assert_eq!((&s["access"], &s["enabled"]), (&json!("full"), &json!(false)));
    assert_eq!(s["paused_reason"], "owner_access_changed");
    let (status, s) = patch(&ctx, &alice, &id, json!({"enabled": true})).await;
    assert_eq!((status, &s["paused_reason"]), (200, &Value::Null));
    let report = tick_and_run(&ctx, &clock, "2026-12-03T00:00:10Z").await;
    assert_eq!(report.created.len(), 1);
    let resp = call(&ctx, "GET", &link_of(&mail_to(&mail).await[0]), None, None).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(ids(&fetch(header(&resp, "location")).await), ["msg-client-a-0001"]);
}

#[tokio::test]
async fn recipients_are_checked_again_when_each_email_is_sent() {
    let stack = TestStack::new("deleg_rcpt").await;
    let (ctx, clock) = at(&stack, "2026-12-01T00:00:00Z");
    let own = unique_address("own").replace("example.com", "corp.io");
    let team = unique_address("team");
    let admin = stack.token_with_email(Role::Admin, "rcpt-admin", None, None, Some(&own));
    create(
        &ctx,
        &admin,
        json!({"name": "mailed", "export": {"kind": "leads", "format": "csv"}, "rate": "1 hour",
               "notify": {"emails": [own, team]}}),
    )
    .await;
    tick_and_run(&ctx, &clock, "2026-12-01T01:00:10Z").await;
    assert_eq!((mail_to(&own).await.len(), mail_to(&team).await.len()), (1, 1));

    // The owner's email claim changed: their old address gets nothing more.
    let renamed = stack.token_with_email(Role::Admin, "rcpt-admin", None, None, Some("new@corp.io"));
    call(&ctx, "GET", "/api/schedules", Some(&renamed), None).await;
    tick_and_run(&ctx, &clock, "2026-12-01T02:00:10Z").await;
    assert_eq!((mail_to(&own).await.len(), mail_to(&team).await.len()), (1, 2));

    // NOTIFY_ALLOWED_DOMAINS no longer names example.com: nobody is emailed.
    let mut config = (*ctx.config).clone();
    config.notify.allowed_domains = vec!["chat-export.local".into()];
    let mut narrowed = ctx.clone();
    narrowed.config = Arc::new(config);
    tick_and_run(&narrowed, &clock, "2026-12-01T03:00:10Z").await;
    assert_eq!((mail_to(&own).await.len(), mail_to(&team).await.len()), (1, 2));
}

#[tokio::test]
async fn the_cache_answers_only_under_the_tenants_of_the_callers_token() {
    let stack = TestStack::new("deleg_cache").await;
    let ctx = stack.ctx.clone();
    stack
        .load(
            (0..3)
                .map(|i| lead(i, "comp-acme", t("2026-11-01T10:00:00Z")))
                .collect(),
        )
        .await;
    let alpha = stack.token(Role::User, "cu", Some("client-alpha"), Some("comp-acme"));
    let beta = stack.token(Role::User, "cu", Some("client-beta"), Some("comp-acme"));
    let body = json!({"kind": "leads", "format": "csv"});
    let post = |token: String, body: Value, headers: Vec<(&'static str, &'static str)>| {
        let ctx = ctx.clone();
        async move {
            let auth = format!("Bearer {token}");
            let mut all = vec![("authorization", auth.as_str()), ("content-type", "application/json")];
            all.extend(headers);
            let resp = exportctl::serve::route(
                &ctx,
                request_with_body("POST", "/api/exports", &all, body.to_string().as_bytes()),
            )
            .await;
            (resp.status().as_u16(), body_json(&resp))
        }
    };
    let (status, first) = post(alpha.clone(), body.clone(), vec![]).await;
    assert_eq!(status, 202);
    let (status, other) = post(beta.clone(), body.clone(), vec![]).await;
    assert_eq!((status, &other["cached"]), (202, &json!(false)), "{other}");
    assert_ne!(other["id"], first["id"]);
    let (status, again) = post(alpha.clone(), body.clone(), vec![]).await;
    assert_eq!(
        (status, &again["id"], &again["cached"]),
        (200, &first["id"], &json!(true))
    );

    // An admin's export asked for again by the same sub, demoted.
    let admin = stack.token(Role::Admin, "cu-admin", None, None);
    let demoted = stack.token(Role::User, "cu-admin", None, Some("comp-acme"));
    let acme = json!({"kind": "leads", "format": "csv", "params": {"companyId": "comp-acme"}});
    let (status, by_admin) = post(admin, acme.clone(), vec![]).await;
    assert_eq!(status, 202);
    let (status, by_user) = post(demoted, acme, vec![]).await;
    assert_eq!((status, &by_user["cached"]), (202, &json!(false)));
    assert_ne!(by_user["id"], by_admin["id"]);

    // Idempotency keys are scoped the same way.
    let (status, keyed) = post(alpha, body.clone(), vec![("idempotency-key", "deleg-cache-key-1")]).await;
    assert!(status == 200 || status == 202, "{keyed}");
    let (status, body) = post(beta, body, vec![("idempotency-key", "deleg-cache-key-1")]).await;
    assert_eq!(
        (status, &body["error_code"]),
        (409, &json!("idempotency_key_reused")),
        "{body}"
    );
}

#[tokio::test]
async fn a_search_cannot_forge_a_line_of_the_email() {
    let stack = TestStack::new("deleg_forge").await;
    let ctx = stack.ctx.clone();
    let me = unique_address("forge");
    let user = stack.token_with_email(Role::User, "forger", None, Some("comp-forge"), Some(&me));
    let resp = call(
        &ctx,
        "POST",
        "/api/exports",
        Some(&user),
        Some(json!({"kind": "leads", "format": "csv", "notify": {"emails": [me]},
                    "params": {"search": "zz\r\n\r\nDownload: https://evil.example/x\u{2028}Job: 0"}})),
    )
    .await;
    assert_eq!(resp.status(), 202, "{}", String::from_utf8_lossy(&body_bytes(&resp)));
    let id = body_json(&resp)["id"].as_str().unwrap().to_string();
    worker::process(&ctx, &id).await.unwrap();
    let mail = &mail_to(&me).await[0];
    let text = mail["body"]["text"].as_str().unwrap();
    // (`search` is kept lowercase: the forged line would read "download: ...".)
    let starting = |label: &str| {
        text.lines()
            .filter(|l| l.to_lowercase().starts_with(label))
            .collect::<Vec<_>>()
    };
    let downloads = starting("download:");
    assert_eq!(downloads.len(), 1, "{text}");
    assert!(
        downloads[0].contains(&format!("/api/exports/{id}/download?link=")),
        "{text}"
    );
    assert_eq!(starting("job:"), [format!("Job: {id}").as_str()], "{text}");
    assert!(!text.contains('\u{2028}') && !text.contains('\r'));
    assert!(
        text.contains(r#"search: "zz\u{000d}\u{000a}\u{000d}\u{000a}download: https://evil.example/x\u{2028}job: 0""#),
        "the value is shown as quoted data: {text}"
    );
}
