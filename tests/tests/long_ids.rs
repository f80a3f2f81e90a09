//! Ids as long as DynamoDB accepts them (1,000 to 2,048 bytes, with `#`, `%` and
//! multi-byte characters) in every id field, through every export. A derived sort
//! key holds such an id as its first bytes and a digest (common::keys), so these
//! records check that:
//! - `exportctl load` accepts them (DynamoDB does);
//! - every export has each record once, with its ids byte for byte;
//! - records at one instant whose ids share their first 1,500 bytes, which the
//!   digests put in another order, still come in id order;
//! - two clients (conversations) whose ids share their first bytes stay apart.

// The route futures are deep (clippy computes their layout).
#![recursion_limit = "256"]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use common::{keys::time_id_key, load::Record, synth};
use integration_tests::*;

const SESSIONS: &str = sessions_export::PATH;
const LEADS: &str = leads_export::PATH;
const CHATS: &str = chats_export::DOWNLOAD_PATH;
const CONVERSATIONS: &str = chats_export::CONVERSATIONS_PATH;

/// An id of exactly `bytes` bytes (or one less, at a character boundary): `tag`,
/// then a fill with the characters keys escape or cut.
fn long(tag: &str, bytes: usize) -> String {
    let mut id = tag.to_string();
    while id.len() < bytes {
        id.push_str(["#", "%", "é", "x", "🎉"][id.len() % 5]);
    }
    while id.len() > bytes {
        id.pop();
    }
    id
}

/// `n` ids of `bytes` bytes sharing all but their last characters, in an order
/// their keys at one instant do not keep: the digests decide the key order there.
fn ties(tag: &str, bytes: usize, n: usize, at: DateTime<Utc>) -> Vec<String> {
    let base = long(tag, bytes - 4);
    // The first suffixes whose digests misorder them, or the test checks nothing.
    (0..)
        .map(|k| (0..n).map(|i| format!("{base}{:04}", k * n + i)).collect::<Vec<_>>())
        .find(|ids| {
            let mut by_key = ids.clone();
            by_key.sort_by_key(|id| time_id_key(&at, id));
            by_key != *ids
        })
        .unwrap()
}

/// Ids too long to print: where two lists differ, by position and first bytes.
#[track_caller]
fn same<T: PartialEq + std::fmt::Debug>(got: &[T], want: &[T], what: &str) {
    if got == want {
        return;
    }
    let at = first_difference(got, want);
    let short = |v: Option<&T>| format!("{v:?}").chars().take(80).collect::<String>();
    panic!(
        "{what}: {} items, {} expected; first difference at {at}: {} instead of {}",
        got.len(),
        want.len(),
        short(got.get(at)),
        short(want.get(at))
    );
}

fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("{name} in {header:?}"))
}

struct Data {
    records: Vec<Record>,
    /// Per session, its message ids in (time, id) order.
    session_messages: BTreeMap<String, Vec<String>>,
    /// Lead ids in (created, id) order; the short company's, the long chatbot's.
    leads: Vec<String>,
    company_leads: Vec<String>,
    chatbot_leads: Vec<String>,
    /// Message ids in (time, id) order; the short client's.
    messages: Vec<String>,
    client_messages: Vec<String>,
    /// (client, conversation) → message count.
    conversations: BTreeMap<(String, String), usize>,
}

const SHORT_CLIENT: &str = "client-short";
const SHORT_COMPANY: &str = "company-short";

fn data(now: DateTime<Utc>) -> Data {
    let at = now - Duration::days(3);
    let mut records = Vec::new();

    // Sessions: long session ids, long message ids, four messages at one instant.
    let mut session_messages = BTreeMap::new();
    let templates: Vec<Record> = synth::sessions(41, 20).collect();
    let session = templates.iter().find_map(|r| match r {
        Record::Session(s) => Some(s.clone()),
        _ => None,
    });
    let message = templates.iter().find_map(|r| match r {
        Record::Message(m) => Some(m.clone()),
        _ => None,
    });
    let (session, message) = (session.unwrap(), message.unwrap());
    let tied = ties("m-tie-", 1600, 4, at);
    for (s, (id_bytes, count)) in [(1000, 6), (2048, 3)].into_iter().enumerate() {
        let session_id = long(&format!("s{s}-"), id_bytes);
        let mut session = session.clone();
        session.session_id = session_id.as_str().into();
        records.push(Record::Session(session));
        for n in 0..count {
            let mut m = message.clone();
            m.session_id = session_id.as_str().into();
            match tied.get(n).filter(|_| s == 0) {
                Some(id) => {
                    m.message_id = id.as_str().into();
                    m.timestamp = at;
                }
                None => {
                    m.message_id = long(&format!("m{s}{n}-"), 1000 + n * 209).into();
                    m.timestamp = at + Duration::seconds(n as i64);
                }
            }
            records.push(Record::Message(m));
        }
    }
    for r in &records {
        if let Record::Message(m) = r {
            session_messages
                .entry(m.session_id.to_string())
                .or_insert_with(Vec::new)
                .push((m.timestamp, m.message_id.to_string()));
        }
    }
    let session_messages = session_messages
        .into_iter()
        .map(|(s, mut v): (String, Vec<_>)| {
            v.sort();
            (s, v.into_iter().map(|(_, id)| id).collect())
        })
        .collect();

    // Leads: long lead, company and chatbot ids; three leads at one instant.
    let tied = ties("l-tie-", 2048, 3, at);
    let long_company = long("company-", 2048);
    let long_bot = long("bot-", 1500);
    let mut leads = Vec::new();
    for (i, record) in synth::leads(42, 8).enumerate() {
        let Record::Lead(mut l) = record else { unreachable!() };
        l.lead_id = match tied.get(i) {
            Some(id) => id.as_str().into(),
            None => long(&format!("lead{i}-"), 1000 + i * 131).into(),
        };
        l.created_at = if i < tied.len() {
            at
        } else {
            at + Duration::minutes(i as i64)
        };
        l.updated_at = l.created_at;
        l.company_id = if i % 2 == 0 {
            SHORT_COMPANY
        } else {
            long_company.as_str()
        }
        .into();
        l.chatbot_id = if i % 3 == 0 { long_bot.as_str() } else { "bot-short" }.into();
        leads.push(l.clone());
        records.push(Record::Lead(l));
    }
    let ordered = |mut v: Vec<common::model::Lead>| {
        v.sort_by(|a, b| (a.created_at, a.lead_id.as_bytes()).cmp(&(b.created_at, b.lead_id.as_bytes())));
        v.into_iter().map(|l| l.lead_id.to_string()).collect::<Vec<_>>()
    };
    let company_leads = ordered(
        leads
            .iter()
            .filter(|l| &*l.company_id == SHORT_COMPANY)
            .cloned()
            .collect(),
    );
    let chatbot_leads = ordered(
        leads
            .iter()
            .filter(|l| &*l.chatbot_id == "bot-short")
            .cloned()
            .collect(),
    );
    let leads = ordered(leads);

    // Chat messages: two long clients sharing their first 1,900 bytes, and a short
    // one; long conversations; five messages of one conversation at one instant.
    let client_base = long("client-", 1900);
    let clients = [
        format!("{client_base}-a"),
        format!("{client_base}-b"),
        SHORT_CLIENT.to_string(),
    ];
    let conversations_ids = [long("conv-", 2048), long("conv-", 1200), "conv-short".to_string()];
    let tied = ties("c-tie-", 1800, 5, at);
    let mut messages = Vec::new();
    for (i, record) in synth::chat_messages(43, 30).enumerate() {
        let Record::ChatMessage(mut m) = record else {
            unreachable!()
        };
        m.client_id = clients[i % 3].as_str().into();
        m.conversation_id = conversations_ids[(i / 3) % 3].as_str().into();
        if i < 3 * tied.len() && i % 3 == 0 {
            m.id = tied[i / 3].as_str().into();
            m.conversation_id = conversations_ids[0].as_str().into();
            m.timestamp = at;
        } else {
            m.id = long(&format!("msg{i}-"), 1000 + i * 53 % 1048).into();
            m.timestamp = at + Duration::seconds(i as i64);
        }
        m.created_at = m.timestamp;
        messages.push(m.clone());
        records.push(Record::ChatMessage(m));
    }
    let order = |mut v: Vec<&common::model::ChatMessage>| {
        v.sort_by(|a, b| (a.timestamp, a.id.as_bytes()).cmp(&(b.timestamp, b.id.as_bytes())));
        v.into_iter().map(|m| m.id.to_string()).collect::<Vec<_>>()
    };
    let client_messages = order(messages.iter().filter(|m| &*m.client_id == SHORT_CLIENT).collect());
    let mut conversations = BTreeMap::new();
    for m in &messages {
        *conversations
            .entry((m.client_id.to_string(), m.conversation_id.to_string()))
            .or_insert(0) += 1;
    }
    let messages = order(messages.iter().collect());

    Data {
        records,
        session_messages,
        leads,
        company_leads,
        chatbot_leads,
        messages,
        client_messages,
        conversations,
    }
}

async fn csv(stack: &TestStack, query: &str) -> (Vec<String>, Vec<Vec<String>>) {
    parse_csv(&stack.admin_body(query).await)
}

async fn ids(stack: &TestStack, query: &str, name: &str) -> Vec<String> {
    let (header, rows) = csv(stack, query).await;
    let c = column(&header, name);
    rows.into_iter().map(|mut r| r.swap_remove(c)).collect()
}

#[tokio::test]
async fn ids_up_to_2048_bytes_export_exactly_in_every_export() {
    let stack = TestStack::with_config("long-ids", |c| {
        c.chat.per_user_per_minute = 10_000;
        c.chat.per_client_per_hour = 10_000;
    })
    .await;
    let data = data(stack.ctx.clock.now());
    for record in &data.records {
        record.check().expect("DynamoDB accepts it, so load does");
        for (name, value) in record.derived() {
            assert!(value.len() <= 1024, "{name} is {} bytes", value.len());
        }
    }
    stack.load(data.records.clone()).await;

    // Sessions: every message once, in (time, id) order within its session.
    let (header, rows) = csv(&stack, &format!("{SESSIONS}?format=csv")).await;
    let (s, m) = (column(&header, "SessionID"), column(&header, "MessageID"));
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows {
        got.entry(row[s].clone()).or_default().push(row[m].clone());
    }
    same(
        &got.into_iter().collect::<Vec<_>>(),
        &data.session_messages.clone().into_iter().collect::<Vec<_>>(),
        "sessions",
    );

    // Leads: every company (by_created), a company, a chatbot.
    same(
        &ids(&stack, &format!("{LEADS}?format=csv"), "Lead ID").await,
        &data.leads,
        "leads",
    );
    same(
        &ids(
            &stack,
            &format!("{LEADS}?format=csv&companyId={SHORT_COMPANY}"),
            "Lead ID",
        )
        .await,
        &data.company_leads,
        "a company's leads",
    );
    same(
        &ids(&stack, &format!("{LEADS}?format=csv&chatbotId=bot-short"), "Lead ID").await,
        &data.chatbot_leads,
        "a chatbot's leads",
    );

    // Chats: every client (by_time), a client (the table), a conversation.
    same(
        &ids(&stack, &format!("{CHATS}?format=csv&limit=100000"), "ID").await,
        &data.messages,
        "every client's messages",
    );
    same(
        &ids(&stack, &format!("{CHATS}?format=csv&client_id={SHORT_CLIENT}"), "ID").await,
        &data.client_messages,
        "a client's messages",
    );
    let short_conversation: Vec<String> = ids(
        &stack,
        &format!("{CHATS}?format=csv&limit=100000&conversation_id=conv-short"),
        "ID",
    )
    .await;
    assert_eq!(
        short_conversation.len(),
        data.conversations
            .iter()
            .filter(|((_, v), _)| v == "conv-short")
            .map(|(_, n)| n)
            .sum::<usize>()
    );

    // Conversations: every client's, and one client's, each conversation once with
    // its own count, apart from the client that shares 1,900 bytes of its id.
    let conversations = |rows: (Vec<String>, Vec<Vec<String>>)| {
        let (header, rows) = rows;
        let (c, v, n) = (
            column(&header, "Client ID"),
            column(&header, "Conversation ID"),
            column(&header, "Message Count"),
        );
        let got: Vec<((String, String), usize)> = rows
            .into_iter()
            .map(|r| ((r[c].clone(), r[v].clone()), r[n].parse().unwrap()))
            .collect();
        got
    };
    let all = conversations(csv(&stack, &format!("{CONVERSATIONS}?format=csv")).await);
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup_by(|a, b| a.0 == b.0);
    assert_eq!(sorted.len(), all.len(), "each conversation once");
    same(
        &sorted,
        &data.conversations.clone().into_iter().collect::<Vec<_>>(),
        "conversations",
    );
    let one = conversations(csv(&stack, &format!("{CONVERSATIONS}?format=csv&client_id={SHORT_CLIENT}")).await);
    let want: BTreeMap<_, _> = data
        .conversations
        .iter()
        .filter(|((c, _), _)| c == SHORT_CLIENT)
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    let mut one = one;
    one.sort();
    same(&one, &want.into_iter().collect::<Vec<_>>(), "a client's conversations");
}
