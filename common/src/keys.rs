//! Derived key attributes, written out once: the partition of an item in the
//! all-tenant indexes, a conversation's shard and prefix, the time-and-id sort keys.
//! They are stored, so none of them may ever change.

use crate::{model::ChatMessage, schema::SHARDS, timefmt};

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

/// The shard of a conversation in `by_conversation_group`: all of its messages share it.
pub fn conversation_shard(client_id: &str, conversation_id: &str) -> String {
    shard_of(&format!(
        "{}#{}",
        escape_key_part(client_id),
        escape_key_part(conversation_id)
    ))
}

/// `<client>#<conversation>#`, or `<client>#` without a conversation: the key prefix
/// of a conversation's (or a client's) messages in `by_conversation_group`.
pub fn conversation_prefix(client_id: &str, conversation_id: Option<&str>) -> String {
    match conversation_id {
        Some(v) => format!("{}#{}#", escape_key_part(client_id), escape_key_part(v)),
        None => format!("{}#", escape_key_part(client_id)),
    }
}

/// `<client>#<conversation>#<timestamp>#<id>`: groups a client's messages by
/// conversation, each conversation in time order.
pub fn conversation_key(m: &ChatMessage) -> String {
    format!(
        "{}{}",
        conversation_prefix(&m.client_id, Some(&m.conversation_id)),
        time_id_key(&m.timestamp, &m.id)
    )
}

/// Every shard's partition value, in order.
pub fn shards() -> impl Iterator<Item = String> {
    (0..SHARDS).map(|s| format!("{s:02}"))
}

/// `<timestamp>#<id>`: a sort key that orders by time, ties broken by id.
pub fn time_id_key(ts: &chrono::DateTime<chrono::Utc>, id: &str) -> String {
    format!("{}#{id}", timefmt::format(ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard_of("cm-1"), shard_of("cm-1"));
        let used: std::collections::HashSet<String> = (0..1000).map(|i| shard_of(&format!("id-{i}"))).collect();
        assert_eq!(used.len(), SHARDS as usize);
        assert!(shards().all(|s| s.len() == 2));
    }
}
