//! GET /api/admin/sessions/export against the local DynamoDB and S3 emulators.

use std::time::Duration;

use chrono::TimeZone;
use common::{
    auth::Role,
    export::csv::is_formula_like,
    load::Record,
    model::{Session, SessionMessage},
    synth,
};
use integration_tests::*;
use sessions_export::handle;

const HEADER: &str = "SessionID,UserID,MessageID,MessageContent,Sender,Timestamp";

fn at(secs: i64, millis: u32) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc
        .timestamp_opt(1_704_067_200 + secs, millis * 1_000_000)
        .unwrap()
}

/// Hand-written hard cases on top of the generator's: every awkward character, ties
/// on timestamp, a session without messages, messages written out of order.
fn hard_records() -> Vec<Record> {
    let mut r = vec![
        Record::Session(Session {
            session_id: "s-hard".into(),
            user_id: "u-1, \"quoted\"".into(),
            started_at: at(0, 0),
        }),
        Record::Session(Session {
            session_id: "s-empty".into(),
            user_id: "u-2".into(),
            started_at: at(5, 0),
        }),
    ];
    let texts = [
        "comma, here",
        "\"double\" quotes \"\"",
        "CRLF\r\ninside\nand LF",
        "emoji 😀👍🏽 and ünïcödé 日本語",
        "=cmd|' /C calc'!A0",
        "-42",
        "x".repeat(100_000).leak(),
        "",
    ];
    // Written in reverse so the export's ordering, not the load order, is tested.
    for (i, text) in texts.iter().enumerate().rev() {
        r.push(Record::Message(SessionMessage {
            session_id: "s-hard".into(),
            message_id: format!("m-{i}").into(),
            content: text.to_string().into(),
            sender: if i % 2 == 0 { "user".into() } else { "bot".into() },
            // Two messages share a timestamp: ties are broken by message id.
            timestamp: at(10 + (i as i64).min(5), 250),
        }));
    }
    r
}

#[tokio::test]
async fn admin_export_contains_every_session_and_message_exactly() {
    let stack = TestStack::new("sessions-exact").await;
    let mut records: Vec<Record> = synth::sessions(11, 150).collect();
    records.extend(hard_records());
    stack.load(records.clone()).await;

    let before = chrono::Utc::now();
    let resp = handle(&stack.ctx, event_file("sessions-export-admin-raw.json")).await;
    assert_eq!(resp.status(), 200, "{:?}", String::from_utf8_lossy(&body_bytes(&resp)));
    assert_eq!(header(&resp, "content-type"), "text/csv; charset=utf-8");
    let disposition = header(&resp, "content-disposition");
    assert!(
        days_since(before)
            .iter()
            .any(|day| disposition == format!("attachment; filename=\"chat-sessions-export-{day}.csv\"")),
        "{disposition}"
    );
    let body = body_bytes(&resp);
    assert!(body.starts_with(format!("{HEADER}\r\n").as_bytes()));
    let (head, rows) = parse_csv(&body);
    assert_eq!(head.join(","), HEADER);
    assert_eq!(header(&resp, "x-export-rows"), rows.len().to_string());

    let expected = expected_session_rows(&records, str::to_string);
    let got = group_rows_by_session(rows);
    assert_eq!(got.len(), expected.len(), "every session is in the file");
    for (sid, rows) in &expected {
        assert_eq!(got.get(sid), Some(rows), "rows of session {sid}");
    }
    assert_eq!(got["s-empty"], vec![vec!["s-empty", "u-2", "", "", "", ""]]);
}

#[tokio::test]
async fn formula_like_cells_are_neutralised_by_default() {
    let stack = TestStack::new("sessions-guard").await;
    let records = hard_records();
    stack.load(records.clone()).await;

    let resp = handle(&stack.ctx, event_file("sessions-export-admin.json")).await;
    assert_eq!(resp.status(), 200);
    let (_, rows) = parse_csv(&body_bytes(&resp));
    let guard = |s: &str| {
        if is_formula_like(s) {
            format!("'{s}")
        } else {
            s.to_string()
        }
    };
    let expected = expected_session_rows(&records, guard);
    assert_eq!(group_rows_by_session(rows), expected);
    let hard = &expected["s-hard"];
    assert!(hard.iter().any(|r| r[3] == "'=cmd|' /C calc'!A0"));
    assert!(hard.iter().any(|r| r[3] == "-42"), "plain numbers are not touched");
}

fn bearer_request(token: &str) -> lambda_http::Request {
    request(
        "GET",
        sessions_export::PATH,
        &[("authorization", &format!("Bearer {token}"))],
    )
}

#[tokio::test]
async fn without_token_401_and_non_admin_403_in_the_error_shape() {
    let stack = TestStack::new("sessions-auth").await;
    let cases = [
        (event_file("sessions-export-no-token.json"), 401, "unauthorized"),
        (event_file("sessions-export-user.json"), 403, "forbidden"),
        (
            request("GET", sessions_export::PATH, &[("authorization", "Bearer not.a.jwt")]),
            401,
            "unauthorized",
        ),
        (
            request(
                "GET",
                sessions_export::PATH,
                &[("authorization", "Basic YWRtaW46YWRtaW4=")],
            ),
            401,
            "unauthorized",
        ),
    ];
    for (req, status, code) in cases {
        let token = req
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string());
        let resp = handle(&stack.ctx, req).await;
        assert_eq!(resp.status(), status);
        assert_eq!(header(&resp, "content-type"), "application/json");
        let body = body_json(&resp);
        assert_eq!(body["error_code"], code);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(
            body.as_object().unwrap().len(),
            2,
            "exactly error_code and message: {body}"
        );
        if let Some(token) = token {
            let raw = String::from_utf8(body_bytes(&resp)).unwrap();
            let secret = token.split_whitespace().last().unwrap();
            assert!(!raw.contains(secret), "the token is never echoed");
        }
    }

    // An expired token and one signed with another secret.
    let mut expired = common::auth::Claims {
        sub: "a".into(),
        role: Role::Admin,
        client_id: None,
        company_id: None,
        email: None,
        exp: common::auth::now_secs() - 3600,
        iat: None,
        nbf: None,
        iss: None,
        aud: None,
    };
    let t = common::auth::mint(&stack.ctx.config.jwt, &expired);
    let resp = handle(&stack.ctx, bearer_request(&t)).await;
    assert_eq!(
        (resp.status().as_u16(), body_json(&resp)["message"].as_str().unwrap()),
        (401, "Token has expired")
    );
    expired.exp = common::auth::now_secs() + 3600;
    let mut other = stack.ctx.config.jwt.clone();
    other.secret = b"some-other-secret-some-other-secret".to_vec();
    let t = common::auth::mint(&other, &expired);
    let resp = handle(&stack.ctx, bearer_request(&t)).await;
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn bad_parameters_get_400() {
    let stack = TestStack::new("sessions-params").await;
    let resp = handle(&stack.ctx, event_file("sessions-export-bad-param.json")).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(body_json(&resp)["error_code"], "invalid_request");
    let admin = format!("Bearer {}", stack.admin_token());
    for q in [
        "spreadsheet_safe=maybe",
        "spreadsheet_safe=true&spreadsheet_safe=false",
        "x=%00%01",
    ] {
        let resp = handle(
            &stack.ctx,
            request(
                "GET",
                &format!("{}?{q}", sessions_export::PATH),
                &[("authorization", &admin)],
            ),
        )
        .await;
        assert_eq!(resp.status(), 400, "{q}");
        let msg = body_json(&resp)["message"].as_str().unwrap().to_string();
        assert!(!msg.chars().any(char::is_control), "sanitised: {msg:?}");
    }
}

#[tokio::test]
async fn exportctl_serve_answers_the_same_bytes_over_http() {
    let stack = TestStack::new("sessions-serve").await;
    stack.load(synth::sessions(3, 40).collect()).await;
    let direct = body_bytes(&handle(&stack.ctx, event_file("sessions-export-admin.json")).await);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(exportctl::serve::serve(stack.ctx.clone(), listener));
    let http = reqwest::Client::new();
    let url = format!("http://{addr}{}", sessions_export::PATH);
    let resp = http.get(&url).bearer_auth(stack.admin_token()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"chat-sessions-export-")
    );
    assert_eq!(resp.bytes().await.unwrap().to_vec(), direct);

    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = http
        .get(&url)
        .bearer_auth(stack.token(Role::User, "u", Some("client-alpha"), None))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = http.get(format!("http://{addr}/nope")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    server.abort();
}

/// Enough data for two 5 MiB multipart parts.
fn big_records() -> Vec<Record> {
    let mut records = Vec::new();
    for i in 0..400 {
        let sid = format!("big-{i:04}");
        records.push(Record::Session(Session {
            session_id: sid.clone().into(),
            user_id: format!("u{i}").into(),
            started_at: at(i, 0),
        }));
        for j in 0..6 {
            records.push(Record::Message(SessionMessage {
                session_id: sid.clone().into(),
                message_id: format!("m{j}").into(),
                content: format!("{i}/{j} ünï, \"q\"\n").repeat(300).into(),
                sender: "user".into(),
                timestamp: at(i * 10 + j, 0),
            }));
        }
    }
    records
}

#[tokio::test]
async fn large_export_goes_to_s3_and_answers_303_to_a_working_presigned_url() {
    let stack = TestStack::with_config("sessions-large", |c| {
        c.delivery.inline_max_bytes = 64 * 1024;
        c.delivery.part_bytes = 5 * 1024 * 1024;
    })
    .await;
    let records = big_records();
    stack.load(records.clone()).await;

    let resp = handle(&stack.ctx, event_file("sessions-export-admin.json")).await;
    assert_eq!(resp.status(), 303);
    let location = header(&resp, "location").to_string();
    let info = body_json(&resp);
    assert_eq!(info["download_url"], location.as_str());
    let size = info["size_bytes"].as_u64().unwrap();
    assert!(size > 5 * 1024 * 1024, "multipart with more than one part: {size}");

    let download = reqwest::get(&location).await.unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(
        download.headers()["content-disposition"].to_str().unwrap(),
        format!("attachment; filename=\"{}\"", info["file_name"].as_str().unwrap())
    );
    let bytes = download.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, size);
    let (_, rows) = parse_csv(&bytes);
    assert_eq!(info["rows"].as_u64().unwrap(), rows.len() as u64);
    assert_eq!(
        group_rows_by_session(rows),
        expected_session_rows(&records, str::to_string)
    );

    // A tampered URL is refused by the signature-checking emulator.
    let tampered = location.replace("X-Amz-Expires=900", "X-Amz-Expires=9000");
    assert_eq!(reqwest::get(&tampered).await.unwrap().status(), 403);
}

#[tokio::test]
async fn accept_json_answers_a_link_whatever_the_size_and_links_expire() {
    // S3 signs in whole seconds (X-Amz-Date), so a link may live up to a second less
    // than its TTL: 3 s leaves the first fetch, on a loaded machine, its time.
    let stack = TestStack::with_config("sessions-link", |c| c.delivery.presign_ttl = Duration::from_secs(3)).await;
    stack.load(hard_records()).await;
    let resp = handle(&stack.ctx, event_file("sessions-export-admin-json.json")).await;
    assert_eq!(resp.status(), 200);
    let info = body_json(&resp);
    for field in ["download_url", "expires_at", "file_name", "size_bytes", "rows"] {
        assert!(!info[field].is_null(), "{field} in {info}");
    }
    assert_eq!(info["rows"], 9);
    let url = info["download_url"].as_str().unwrap();
    let (head, rows) = parse_csv(&reqwest::get(url).await.unwrap().bytes().await.unwrap());
    assert_eq!((head.join(","), rows.len()), (HEADER.to_string(), 9));
    tokio::time::sleep(Duration::from_millis(4100)).await;
    assert_eq!(
        reqwest::get(url).await.unwrap().status(),
        403,
        "expired links are refused"
    );
}

#[tokio::test]
async fn s3_fault_mid_upload_answers_json_500_and_leaves_no_object() {
    let stack = TestStack::with_config("sessions-fault", |c| {
        c.delivery.inline_max_bytes = 64 * 1024;
        c.delivery.part_bytes = 5 * 1024 * 1024;
    })
    .await;
    stack.load(big_records()).await;
    let upstream = std::env::var("AWS_ENDPOINT_URL_S3").unwrap();
    // Cut the connection of every attempt at the second part, mid-upload.
    let proxy = proxy::start(upstream, |method, path| {
        method == "PUT" && path.contains("partNumber=2")
    })
    .await;
    let ctx = stack.with_s3_endpoint(&proxy.url);

    let resp = handle(&ctx, event_file("sessions-export-admin.json")).await;
    assert_eq!(resp.status(), 500);
    let body = body_json(&resp);
    assert_eq!(body["error_code"], "export_failed");
    assert_eq!(body["message"], "Failed to export chat sessions: storage error");
    assert!(
        proxy.cut.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the fault was injected"
    );
    assert_eq!(
        stack.object_keys().await,
        Vec::<String>::new(),
        "nothing downloadable is left"
    );
}

#[tokio::test]
async fn a_malformed_item_fails_the_export_naming_its_key() {
    let stack = TestStack::new("sessions-malformed").await;
    stack.load(hard_records()).await;
    use aws_sdk_dynamodb::types::AttributeValue;
    stack
        .ctx
        .aws
        .dynamodb
        .put_item()
        .table_name(&stack.ctx.config.tables.sessions)
        .item("session_id", AttributeValue::S("s-broken".into()))
        .item("started_at", AttributeValue::S("2024-01-01T00:00:00.000Z".into()))
        .send()
        .await
        .unwrap();
    for event in ["sessions-export-admin.json", "sessions-export-admin-json.json"] {
        let resp = handle(&stack.ctx, event_file(event)).await;
        assert_eq!(resp.status(), 500);
        let body = body_json(&resp);
        assert_eq!(body["error_code"], "export_failed");
        let msg = body["message"].as_str().unwrap();
        assert!(msg.contains("session_id=s-broken") && msg.contains("user_id"), "{msg}");
    }
    assert!(stack.object_keys().await.is_empty());
}

#[tokio::test]
async fn a_session_with_more_than_one_page_of_messages_is_complete_and_ordered() {
    let stack = TestStack::new("sessions-pages").await;
    // ~2.5 MB of messages in one session: DynamoDB pages at 1 MB.
    let mut records = vec![Record::Session(Session {
        session_id: "long".into(),
        user_id: "u".into(),
        started_at: at(0, 0),
    })];
    for j in 0..1200 {
        records.push(Record::Message(SessionMessage {
            session_id: "long".into(),
            message_id: format!("m{j:05}").into(),
            content: format!("{j} ").repeat(500).into(),
            sender: "bot".into(),
            timestamp: at(j, 0),
        }));
    }
    stack.load(records.clone()).await;
    let resp = handle(&stack.ctx, event_file("sessions-export-admin-raw.json")).await;
    let (_, rows) = parse_csv(&body_bytes(&resp));
    assert_eq!(
        group_rows_by_session(rows),
        expected_session_rows(&records, str::to_string)
    );
}
