//! GET /client/export/conversations against the local emulators: one row per
//! conversation, compared row by row with an aggregation computed here from what was
//! loaded, in every format, for every scope.

use std::collections::BTreeMap;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use chrono::{DateTime, SecondsFormat, Utc};
use common::{
    auth::Role,
    load::Record,
    model::{ChatMessage, GeoData, Text},
    synth,
};
use integration_tests::*;
use lambda_http::{Body, Response};
use serde_json::Value;

const PATH: &str = chats_export::CONVERSATIONS_PATH;

/// Which loaded messages a request covers.
type Keep = Box<dyn Fn(&ChatMessage) -> bool>;

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn t(v: &DateTime<Utc>) -> String {
    v.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn msg(id: &str, client: &str, conv: &str, at: &str) -> ChatMessage {
    ChatMessage {
        id: id.into(),
        client_id: client.into(),
        conversation_id: conv.into(),
        session_id: None,
        from_name: "n".into(),
        from_user_id: None,
        user_name: None,
        user_email: None,
        message: "m".into(),
        reply: None,
        timestamp: ts(at),
        created_at: ts(at),
        token_cost: 7,
        user_ip: None,
        user_agent: None,
        referrer: None,
        is_embed_user: false,
        geo_data: None,
    }
}

/// Conversation ids that would collide in a naive `client#conversation` key, a
/// conversation id shared by two clients, values that only appear on later messages.
fn hard_messages() -> Vec<ChatMessage> {
    vec![
        msg("h1", "edge", "a#b", "2024-03-01T00:00:00Z"),
        ChatMessage {
            session_id: Some("s-late".into()),
            from_user_id: Some("".into()),
            user_name: Some("Late Name".into()),
            user_ip: Some("203.0.113.200".into()),
            geo_data: Some(GeoData {
                country: Some("Japan".into()),
                ..Default::default()
            }),
            token_cost: u64::MAX,
            ..msg("h2", "edge", "a#b", "2024-03-01T00:00:01Z")
        },
        ChatMessage {
            token_cost: u64::MAX,
            ..msg("h3", "edge", "a#b", "2024-03-02T00:00:00Z")
        },
        msg("h4", "edge#a", "b", "2024-03-01T12:00:00Z"),
        msg("h5", "edge", "a%23b", "2024-03-01T06:00:00Z"),
        msg("h6", "other", "a#b", "2024-03-01T03:00:00Z"),
        msg("h7", "edge", "zz", "2030-01-01T00:00:00Z"),
        msg("h8", "edge", "shared", "2024-04-01T00:00:00Z"),
        msg("h9", "other", "shared", "2024-04-01T00:00:01Z"),
        msg("h10", "edge", "shared", "2024-04-01T00:00:02Z"),
    ]
}

fn all_messages() -> Vec<ChatMessage> {
    let mut v: Vec<ChatMessage> = synth::chat_messages(31, 300)
        .map(|r| match r {
            Record::ChatMessage(m) => m,
            _ => unreachable!(),
        })
        .collect();
    v.extend(hard_messages());
    v
}

/// The expected row of every conversation, keyed by (client, conversation), computed
/// from the messages independently of the export.
fn expected(
    msgs: &[ChatMessage],
    keep: impl Fn(&ChatMessage) -> bool,
    anonymize: bool,
) -> BTreeMap<(String, String), Vec<Value>> {
    let mut groups: BTreeMap<(String, String), Vec<&ChatMessage>> = BTreeMap::new();
    for m in msgs.iter().filter(|m| keep(m)) {
        groups
            .entry((m.client_id.to_string(), m.conversation_id.to_string()))
            .or_default()
            .push(m);
    }
    groups
        .into_iter()
        .map(|(key, mut ms)| {
            ms.sort_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
            let first = |f: &dyn Fn(&ChatMessage) -> Option<Text>| -> Value {
                ms.iter()
                    .find_map(|m| f(m).filter(|v| !v.is_empty()))
                    .map_or(Value::Null, |v| Value::String(v.to_string()))
            };
            let ip = first(&|m| m.user_ip.clone());
            let ip = match (ip, anonymize) {
                (Value::String(s), true) => {
                    let o: Vec<&str> = s.split('.').collect();
                    Value::String(format!("{}.{}.{}.0", o[0], o[1], o[2]))
                }
                (v, _) => v,
            };
            let tokens: u128 = ms.iter().map(|m| u128::from(m.token_cost)).sum();
            let row = vec![
                Value::String(key.0.clone()),
                Value::String(key.1.clone()),
                first(&|m| m.session_id.clone()),
                Value::String(t(&ms[0].timestamp)),
                Value::String(t(&ms[ms.len() - 1].timestamp)),
                Value::from(ms.len()),
                Value::String(tokens.to_string()),
                first(&|m| m.from_user_id.clone()),
                first(&|m| m.user_name.clone()),
                first(&|m| m.geo_data.as_ref().and_then(|g| g.country.clone())),
                ip,
            ];
            (key, row)
        })
        .collect()
}

const KEYS: [&str; 11] = [
    "client_id",
    "conversation_id",
    "session_id",
    "first_message_at",
    "last_message_at",
    "message_count",
    "total_tokens",
    "user_id",
    "user_name",
    "country",
    "user_ip",
];

async fn get(stack: &TestStack, token: &str, query: &str) -> Response<Body> {
    let auth = format!("Bearer {token}");
    chats_export::handle(
        &stack.ctx,
        request("GET", &format!("{PATH}?{query}"), &[("authorization", &auth)]),
    )
    .await
}

/// The rows of a JSON answer. `total_tokens` may exceed what `serde_json::Value`
/// holds exactly, so it is read from the raw text (objects come in order).
fn json_rows(resp: &Response<Body>) -> Vec<Vec<Value>> {
    let raw = String::from_utf8(body_bytes(resp)).unwrap();
    assert_eq!(resp.status(), 200, "{raw}");
    let mut tokens = raw.split("\"total_tokens\":").skip(1).map(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        Value::String(digits)
    });
    body_json(resp)
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let mut row: Vec<Value> = KEYS.iter().map(|k| o[*k].clone()).collect();
            row[6] = tokens.next().unwrap();
            row
        })
        .collect()
}

fn keyed(rows: Vec<Vec<Value>>) -> BTreeMap<(String, String), Vec<Value>> {
    let n = rows.len();
    let map: BTreeMap<_, _> = rows
        .into_iter()
        .map(|r| {
            (
                (r[0].as_str().unwrap().to_string(), r[1].as_str().unwrap().to_string()),
                r,
            )
        })
        .collect();
    assert_eq!(map.len(), n, "no conversation twice");
    map
}

async fn stack() -> (TestStack, Vec<ChatMessage>) {
    let stack = TestStack::with_config("conversations", |c| c.chat.per_user_per_minute = 1000).await;
    let msgs = all_messages();
    stack
        .load(msgs.iter().cloned().map(Record::ChatMessage).collect())
        .await;
    (stack, msgs)
}

#[tokio::test]
async fn every_conversation_matches_an_independent_aggregation() {
    let (stack, msgs) = stack().await;
    let admin = stack.admin_token();
    // Every client, one client, one conversation (of one client, or of every client
    // that has it), a date range.
    let d_from = ts("2024-01-02T00:00:00Z");
    let cases: Vec<(&str, Keep)> = vec![
        ("limit=100000&format=json", Box::new(|_| true)),
        (
            "client_id=client-alpha&limit=100000&format=json",
            Box::new(|m| m.client_id == "client-alpha"),
        ),
        (
            "client_id=edge&limit=100000&format=json",
            Box::new(|m| m.client_id == "edge"),
        ),
        (
            "client_id=edge&conversation_id=shared&format=json",
            Box::new(|m| m.client_id == "edge" && m.conversation_id == "shared"),
        ),
        (
            "conversation_id=shared&format=json",
            Box::new(|m| m.conversation_id == "shared"),
        ),
        (
            "date_from=2024-01-02&limit=100000&format=json",
            Box::new(move |m| m.timestamp >= d_from),
        ),
    ];
    for (query, keep) in cases {
        let got = keyed(json_rows(&get(&stack, &admin, query).await));
        let want = expected(&msgs, keep, false);
        assert_eq!(got.len(), want.len(), "{query}");
        for (key, row) in &want {
            assert_eq!(got.get(key), Some(row), "{query}: {key:?}");
        }
    }
    // JSON Lines: the JSON rows, byte for byte, one per line.
    for query in ["limit=100000", "client_id=edge&conversation_id=shared"] {
        let json = body_bytes(&get(&stack, &admin, &format!("{query}&format=json")).await);
        let resp = get(&stack, &admin, &format!("{query}&format=jsonl")).await;
        assert_eq!(header(&resp, "content-type"), "application/x-ndjson; charset=utf-8");
        assert!(header(&resp, "content-disposition").contains(".jsonl"));
        assert_same_bytes(&body_bytes(&resp), &json_array_as_lines(&json), query);
    }
    // Conversations come grouped, ordered by client, then conversation.
    let rows = json_rows(&get(&stack, &admin, "client_id=client-beta&limit=100000&format=json").await);
    let ids: Vec<String> = rows.iter().map(|r| r[1].as_str().unwrap().to_string()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    // `limit` counts conversations: the first ones in that order.
    let first3 = json_rows(&get(&stack, &admin, "client_id=client-beta&limit=3&format=json").await);
    assert_eq!(first3, rows[..3].to_vec());
}

#[tokio::test]
async fn users_get_their_own_conversations_with_anonymised_addresses() {
    let (stack, msgs) = stack().await;
    let user = stack.token(Role::User, "u-edge", Some("edge"), None);
    let got = keyed(json_rows(&get(&stack, &user, "format=json&limit=100000").await));
    assert_eq!(got, expected(&msgs, |m| m.client_id == "edge", true));
    assert_eq!(got[&("edge".to_string(), "a#b".to_string())][10], "203.0.113.0");
    // Another client's conversation id finds nothing; another client is refused.
    let rows = json_rows(&get(&stack, &user, "conversation_id=b&format=json").await);
    assert!(rows.is_empty(), "edge#a's conversation b is not edge's: {rows:?}");
    let rows = json_rows(&get(&stack, &user, "conversation_id=shared&format=json").await);
    assert_eq!(rows.len(), 1, "only edge's conversation 'shared', not other's");
    assert_eq!(rows[0][5], 2);
    for query in ["client_id=other", "client_id=edge%23a"] {
        let resp = get(&stack, &user, query).await;
        assert!(matches!(resp.status().as_u16(), 400 | 403), "{query}");
    }
}

#[tokio::test]
async fn csv_and_excel_hold_the_same_rows() {
    let (stack, msgs) = stack().await;
    let admin = stack.admin_token();
    let want = expected(&msgs, |m| m.client_id == "edge", false);
    let resp = get(&stack, &admin, "client_id=edge").await;
    assert_eq!(header(&resp, "content-type"), "text/csv; charset=utf-8");
    assert!(header(&resp, "content-disposition").contains("conversations-export-"));
    let (head, rows) = parse_csv(&body_bytes(&resp));
    assert_eq!(
        head,
        [
            "Client ID",
            "Conversation ID",
            "Session ID",
            "First Message At",
            "Last Message At",
            "Message Count",
            "Total Tokens",
            "User ID",
            "User Name",
            "Country",
            "User IP"
        ]
    );
    assert_eq!(rows.len(), want.len());
    for row in &rows {
        let w = &want[&(row[0].clone(), row[1].clone())];
        let as_text = |v: &Value| match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(row, &w.iter().map(as_text).collect::<Vec<_>>());
    }
    let resp = get(&stack, &admin, "client_id=edge&format=xlsx").await;
    let mut wb: Xlsx<_> = open_workbook_from_rs(std::io::Cursor::new(body_bytes(&resp))).unwrap();
    let sheet: Vec<Vec<Data>> = wb
        .worksheet_range("Conversations")
        .unwrap()
        .rows()
        .map(|r| r.to_vec())
        .collect();
    assert_eq!(sheet.len() - 1, want.len());
    let tokens = sheet[1..]
        .iter()
        .find(|r| r[1] == Data::String("a#b".into()))
        .map(|r| r[6].clone())
        .unwrap();
    assert_eq!(
        tokens,
        Data::String((2 * u128::from(u64::MAX) + 7).to_string()),
        "beyond 15 digits: exact text"
    );
}
