//! Derived key attributes, written out once: the partition of an item in the
//! all-tenant indexes, a conversation's shard and prefix, the time-and-id sort keys.
//! They are stored, so none of them may ever change.
//!
//! DynamoDB accepts ids up to 2,048 bytes (a partition key), but a sort key holds at
//! most 1,024. A derived sort key that would exceed it stores an over-long component
//! as a fixed-width digest instead: its first bytes (at a character boundary), `%~`,
//! and the SHA-256 of the whole component in hex. A key that fits is never changed.
//! `%~` never occurs in an escaped component (every `%` there starts `%25` or
//! `%23`), so a digested component is never equal to, nor the prefix of, another
//! component. The readers compare the full ids on every item (tenant and
//! conversation filters), and sort the ties a digest may misorder by the full id
//! (`source::ties`): grouping, order and tenant prefixes stay exact.

use sha2::{Digest, Sha256};

use crate::{model::ChatMessage, schema::SHARDS, timefmt, values::hex};

/// DynamoDB's limits on a key attribute's value, in bytes.
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
pub const MAX_SORT_KEY_BYTES: usize = 1024;

/// `%~` and 64 hex digits: what a digest adds after the bytes it keeps.
const DIGEST_TAIL_BYTES: usize = 2 + 64;

/// Every digested id keeps at least its first this many bytes (at a character
/// boundary) in the key, so keys whose ids differ in those bytes keep the ids' order.
/// The readers re-sort only records that share them ([`tie_prefix`]).
pub const KEPT_ID_BYTES: usize = 64;

/// `<timestamp>#`: 24 bytes of time and the separator.
const TIME_PART_BYTES: usize = 25;

/// The longest escaped client part of a conversation key, and the longest
/// `<client>#<conversation>#` prefix: what is left of 1,024 bytes always holds the
/// time and a digested id keeping [`KEPT_ID_BYTES`].
const MAX_CLIENT_PART_BYTES: usize = MAX_CONVERSATION_PREFIX_BYTES - 2 - DIGEST_TAIL_BYTES;
const MAX_CONVERSATION_PREFIX_BYTES: usize = MAX_SORT_KEY_BYTES - TIME_PART_BYTES - DIGEST_TAIL_BYTES - KEPT_ID_BYTES;

/// The longest prefix of `s` of at most `max` bytes that ends at a character boundary.
fn floor(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `shown` itself when it has at most `budget` bytes; otherwise its first bytes, `%~`
/// and the SHA-256 of `whole`, `budget` bytes at most.
fn within(shown: &str, whole: &str, budget: usize) -> String {
    if shown.len() <= budget {
        return shown.to_string();
    }
    let kept = floor(shown, budget - DIGEST_TAIL_BYTES);
    format!("{kept}%~{}", hex(&Sha256::digest(whole.as_bytes())))
}

/// A partition key that DynamoDB accepts whatever the ids in it: `key` itself when
/// it fits 2,048 bytes, its digested form otherwise (rate-limit buckets and audit
/// scopes hold an id after a prefix).
pub fn partition_key(key: String) -> String {
    if key.len() <= MAX_PARTITION_KEY_BYTES {
        return key;
    }
    within(&key, &key, MAX_PARTITION_KEY_BYTES)
}

/// The bytes of an id that every key of it holds verbatim (a digest keeps at least
/// [`KEPT_ID_BYTES`] at a character boundary, so at least 3 fewer): records at the
/// same time whose ids differ here are in id order already, and only records that
/// share them can be misordered by a digest (`source::ties` re-sorts those).
pub fn tie_prefix(id: &str) -> &[u8] {
    &id.as_bytes()[..id.len().min(KEPT_ID_BYTES - 3)]
}

/// The partition of an item in the all-tenant time indexes: FNV-1a of its id, modulo
/// [`SHARDS`], as two digits. Written out here (not `DefaultHasher`) because it must
/// never change: it is stored.
pub fn shard_of(id: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:02}", h % u64::from(SHARDS))
}

/// `#` and `%` escaped, so that `#` separates key components unambiguously (an id may
/// hold any character): `a#b` becomes `a%23b`.
fn escape_key_part(s: &str) -> String {
    s.replace('%', "%25").replace('#', "%23")
}

/// The shard of a conversation in `by_conversation_group`: all of its messages share
/// it. A hash of the whole ids, so it needs no digest.
pub fn conversation_shard(client_id: &str, conversation_id: &str) -> String {
    shard_of(&format!(
        "{}#{}",
        escape_key_part(client_id),
        escape_key_part(conversation_id)
    ))
}

/// `<client>#`: the client's part of every conversation key, which depends on the
/// client only (a client-wide read is one prefix).
fn client_part(client_id: &str) -> String {
    within(&escape_key_part(client_id), client_id, MAX_CLIENT_PART_BYTES)
}

/// `<client>#<conversation>#`, or `<client>#` without a conversation: the key prefix
/// of a conversation's (or a client's) messages in `by_conversation_group`. Either
/// part is digested when the prefix would leave too little of 1,024 bytes.
pub fn conversation_prefix(client_id: &str, conversation_id: Option<&str>) -> String {
    let client = client_part(client_id);
    match conversation_id {
        Some(v) => {
            let budget = MAX_CONVERSATION_PREFIX_BYTES - client.len() - 2;
            format!("{client}#{}#", within(&escape_key_part(v), v, budget))
        }
        None => format!("{client}#"),
    }
}

/// `<client>#<conversation>#<timestamp>#<id>`: groups a client's messages by
/// conversation, each conversation in time order.
pub fn conversation_key(m: &ChatMessage) -> String {
    let prefix = conversation_prefix(&m.client_id, Some(&m.conversation_id));
    let tail = time_id_within(&m.timestamp, &m.id, MAX_SORT_KEY_BYTES - prefix.len());
    format!("{prefix}{tail}")
}

/// Every shard's partition value, in order.
pub fn shards() -> impl Iterator<Item = String> {
    (0..SHARDS).map(|s| format!("{s:02}"))
}

/// `<timestamp>#<id>`: a sort key that orders by time, ties broken by id (an id that
/// would take it past 1,024 bytes is digested).
pub fn time_id_key(ts: &chrono::DateTime<chrono::Utc>, id: &str) -> String {
    time_id_within(ts, id, MAX_SORT_KEY_BYTES)
}

fn time_id_within(ts: &chrono::DateTime<chrono::Utc>, id: &str, budget: usize) -> String {
    let time = timefmt::format(ts);
    // 24 bytes in the years 0000-9999, which `exportctl load` holds records to.
    let used = (time.len() + 1).max(TIME_PART_BYTES);
    format!("{time}#{}", within(id, id, budget - used))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard_of("cm-1"), shard_of("cm-1"));
        let used: std::collections::HashSet<String> = (0..1000).map(|i| shard_of(&format!("id-{i}"))).collect();
        assert_eq!(used.len(), SHARDS as usize);
        assert!(shards().all(|s| s.len() == 2));
    }

    fn message(client: &str, conversation: &str, id: &str) -> ChatMessage {
        let mut m = crate::synth::chat_messages(1, 1)
            .find_map(|r| match r {
                crate::load::Record::ChatMessage(m) => Some(m),
                _ => None,
            })
            .unwrap();
        m.client_id = client.into();
        m.conversation_id = conversation.into();
        m.id = id.into();
        m
    }

    #[test]
    fn keys_that_fit_are_unchanged() {
        let ts = Utc.with_ymd_and_hms(2024, 1, 15, 10, 30, 0).unwrap();
        assert_eq!(time_id_key(&ts, "m#1%"), "2024-01-15T10:30:00.000Z#m#1%");
        let m = message("c#1", "v%2", "m-1");
        assert_eq!(
            conversation_key(&m),
            format!("c%231#v%252#{}#m-1", timefmt::format(&m.timestamp))
        );
        let id = "x".repeat(999);
        assert_eq!(time_id_key(&ts, &id).len(), 1024);
        assert!(!time_id_key(&ts, &id).contains("%~"));
        assert_eq!(partition_key("k".repeat(2048)), "k".repeat(2048));
    }

    #[test]
    fn over_long_ids_are_digested_within_the_limit() {
        let ts = Utc.with_ymd_and_hms(2024, 1, 15, 10, 30, 0).unwrap();
        let long = "é".repeat(1024);
        let key = time_id_key(&ts, &long);
        assert!(key.len() <= MAX_SORT_KEY_BYTES);
        assert!(key.starts_with("2024-01-15T10:30:00.000Z#éé"));
        assert!(key.contains("%~"));
        assert_ne!(key, time_id_key(&ts, &format!("{long}x")));
        assert!(partition_key("k".repeat(2049)).len() <= MAX_PARTITION_KEY_BYTES);
        assert_ne!(partition_key("k".repeat(2049)), partition_key("k".repeat(2050)));
    }

    fn id() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-c#%~é]{0,8}",
            (0usize..2049, "[a-c#%é]{0,3}").prop_map(|(n, tail)| format!("{}{tail}", "a".repeat(n))),
            (0usize..700, "[a-c#%é]{1,3}").prop_map(|(n, s)| s.repeat(n).chars().take(2048).collect()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Whatever the ids (up to DynamoDB's 2,048 bytes): every derived sort key fits
        /// 1,024 bytes, the conversation key starts with its conversation's prefix and
        /// that with its client's, and keys at one time keep their ids' order unless
        /// the ids share their [`tie_prefix`].
        #[test]
        fn keys_fit_and_keep_prefixes_and_order(client in id(), conversation in id(), a in id(), b in id()) {
            let m = message(&client, &conversation, &a);
            let key = conversation_key(&m);
            prop_assert!(key.len() <= MAX_SORT_KEY_BYTES, "{}", key.len());
            let prefix = conversation_prefix(&client, Some(&conversation));
            prop_assert!(key.starts_with(&prefix));
            prop_assert!(prefix.starts_with(&conversation_prefix(&client, None)));
            let (ka, kb) = (time_id_key(&m.timestamp, &a), time_id_key(&m.timestamp, &b));
            prop_assert!(ka.len() <= MAX_SORT_KEY_BYTES && kb.len() <= MAX_SORT_KEY_BYTES);
            prop_assert_eq!(ka == kb, a == b);
            let mb = message(&client, &conversation, &b);
            if tie_prefix(&a) != tie_prefix(&b) {
                prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
                prop_assert_eq!(key.cmp(&conversation_key(&mb)), a.cmp(&b));
            }
        }

        /// Two clients (or conversations) never share a prefix unless they are equal.
        #[test]
        fn prefixes_are_exact(c1 in id(), c2 in id(), v in id()) {
            let (p1, p2) = (conversation_prefix(&c1, None), conversation_prefix(&c2, None));
            prop_assert_eq!(p1.starts_with(&p2) || p2.starts_with(&p1), c1 == c2);
            let (q1, q2) = (conversation_prefix(&c1, Some(&v)), conversation_prefix(&c2, Some(&v)));
            prop_assert_eq!(q1.starts_with(&q2) || q2.starts_with(&q1), c1 == c2);
        }
    }
}
