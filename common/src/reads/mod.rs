//! DynamoDB Query and Scan pages whose items this crate parses itself.
//!
//! The SDK turns a page's JSON into `HashMap<String, AttributeValue>` items through its
//! own tokenizer, and `serde_dynamo` then rebuilds each map before decoding the model:
//! measured end to end, that was about a third of an export's CPU. Here the SDK still
//! signs, sends, retries and checks the request, but an interceptor takes a successful
//! answer's body, reads its items straight into records ([`direct`]), and hands the SDK
//! only the rest of the answer (`Count`, `ScannedCount`, `LastEvaluatedKey`). Errors
//! (4xx, 5xx) go to the SDK untouched, so its error handling and retries are unchanged.
//!
//! A page the direct reader does not take (an attribute of a type it does not read, a
//! misfit) is read again the long way: parsed into `serde_dynamo` items, each decoded
//! with [`decode`]. That answer, a record or an error naming the item,
//! is the reference; the direct one is only ever the same, sooner.

pub mod direct;
pub mod pages;

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::{
    config::{ConfigBag, Intercept, RuntimeComponents},
    error::BoxError,
    operation::{query::builders::QueryFluentBuilder, scan::builders::ScanFluentBuilder},
};
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use futures::{StreamExt, stream, stream::BoxStream};
use http_body_util::BodyExt;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde::{
    Deserialize, Deserializer, Serialize,
    de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor},
};
use serde_json::value::RawValue;

use crate::{error::Error, timefmt};

/// An item as this crate reads it the long way (`serde_dynamo`'s attribute values).
pub type ReadItem = serde_dynamo::Item;

/// A record read, with the value of the attribute its read is sorted by (the key of
/// a merge; empty when the read does not name one).
#[derive(Debug)]
pub struct Read<T> {
    pub record: T,
    pub sort: String,
}

/// How a read's items become records: the snapshot cut (items written after `as_of`
/// are left out), the attribute it is sorted by, and the attributes that name an item
/// in an error.
#[derive(Clone, Copy, Debug)]
pub struct Decoding {
    pub as_of: DateTime<Utc>,
    pub sort_attr: Option<&'static str>,
    pub key_attrs: &'static [&'static str],
}

/// One page: its records, and where the next page starts (`None`: the last page).
pub type Page<T> = (Vec<Read<T>>, Option<Item>);

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(rename = "Items", default)]
    items: Vec<ReadItem>,
    #[serde(rename = "Count", default)]
    count: Option<i64>,
    #[serde(rename = "ScannedCount", default)]
    scanned_count: Option<i64>,
    #[serde(rename = "LastEvaluatedKey", borrow, default)]
    last_evaluated_key: Option<&'a RawValue>,
}

/// What the SDK is left to parse: the answer without its items.
#[derive(Serialize)]
struct Rest<'a> {
    #[serde(rename = "Count", skip_serializing_if = "Option::is_none")]
    count: Option<i64>,
    #[serde(rename = "ScannedCount", skip_serializing_if = "Option::is_none")]
    scanned_count: Option<i64>,
    #[serde(rename = "LastEvaluatedKey", skip_serializing_if = "Option::is_none")]
    last_evaluated_key: Option<&'a RawValue>,
}

/// Parses a whole answer the long way: its items, and the rest for the SDK.
fn split_answer(body: &[u8]) -> Result<(Vec<ReadItem>, Bytes), BoxError> {
    let answer: Answer<'_> = serde_json::from_slice(body)?;
    let rest = serde_json::to_vec(&Rest {
        count: answer.count,
        scanned_count: answer.scanned_count,
        last_evaluated_key: answer.last_evaluated_key,
    })?;
    Ok((answer.items, Bytes::from(rest)))
}

/// A page's records written by `as_of`, or the error of the first one that does not
/// fit its record.
type Records<T> = Result<Vec<Read<T>>, Error>;

/// Parses a whole answer into records (directly, else the long way), and the rest
/// for the SDK. `Err` only when the answer is not DynamoDB's JSON.
fn split_records<T: DeserializeOwned>(body: &[u8], how: &Decoding) -> Result<(Records<T>, Bytes), BoxError> {
    if let Ok(split) = direct_answer(body, how) {
        return Ok(split);
    }
    let (items, rest) = split_answer(body)?;
    Ok((decode_items(items, how), rest))
}

fn direct_answer<T: DeserializeOwned>(body: &[u8], how: &Decoding) -> Result<(Records<T>, Bytes), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(direct::utf8(body)?);
    let answer = AnswerSeed::<T> {
        how,
        record: PhantomData,
    }
    .deserialize(&mut de)?;
    de.end()?;
    let rest = serde_json::to_vec(&answer.rest)?;
    Ok((Ok(answer.items), Bytes::from(rest)))
}

/// The long way: each item written by `as_of` decoded with `serde_dynamo`.
fn decode_items<T: DeserializeOwned>(items: Vec<ReadItem>, how: &Decoding) -> Records<T> {
    items
        .into_iter()
        .filter(|item| written_by(item, &how.as_of))
        .map(|item| {
            let sort = how
                .sort_attr
                .map(|a| sort_value(&item, a).to_owned())
                .unwrap_or_default();
            Ok(Read {
                record: decode(item, how.key_attrs)?,
                sort,
            })
        })
        .collect()
}

/// A string attribute's value, `""` when it is missing or not a string.
pub fn sort_value<'a>(item: &'a ReadItem, attr: &str) -> &'a str {
    match item.get(attr) {
        Some(serde_dynamo::AttributeValue::S(s)) => s,
        _ => "",
    }
}

/// An answer read directly.
struct DirectAnswer<'de, T> {
    items: Vec<Read<T>>,
    rest: Rest<'de>,
}

struct AnswerSeed<'a, T> {
    how: &'a Decoding,
    record: PhantomData<T>,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for AnswerSeed<'_, T> {
    type Value = DirectAnswer<'de, T>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for AnswerSeed<'_, T> {
    type Value = DirectAnswer<'de, T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Query or Scan answer")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut items = None;
        let mut rest = Rest {
            count: None,
            scanned_count: None,
            last_evaluated_key: None,
        };
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "Items" if items.is_none() => {
                    items = Some(map.next_value_seed(ItemsSeed::<T> {
                        how: self.how,
                        record: PhantomData,
                    })?)
                }
                "Items" => return Err(de::Error::duplicate_field("Items")),
                "Count" => rest.count = map.next_value()?,
                "ScannedCount" => rest.scanned_count = map.next_value()?,
                "LastEvaluatedKey" => rest.last_evaluated_key = map.next_value()?,
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(DirectAnswer {
            items: items.unwrap_or_default(),
            rest,
        })
    }
}

struct ItemsSeed<'a, T> {
    how: &'a Decoding,
    record: PhantomData<T>,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for ItemsSeed<'_, T> {
    type Value = Vec<Read<T>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for ItemsSeed<'_, T> {
    type Value = Vec<Read<T>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            let mut aside = direct::Aside {
                sort_attr: self.how.sort_attr,
                ..Default::default()
            };
            let Some(record) = seq.next_element_seed(direct::ItemSeed::<T> {
                aside: &mut aside,
                record: PhantomData,
            })?
            else {
                return Ok(out);
            };
            if stamped_by(aside.written_at.as_deref(), &self.how.as_of) {
                out.push(Read {
                    record,
                    sort: aside.sort.unwrap_or_default(),
                });
            }
        }
    }
}

/// Parses a successful answer's body; what it returns is the SDK's part of it.
type Parse = dyn Fn(&[u8]) -> Result<Bytes, BoxError> + Send + Sync;

struct TakeItems(Arc<Parse>);

impl std::fmt::Debug for TakeItems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TakeItems")
    }
}

impl Intercept for TakeItems {
    fn name(&self) -> &'static str {
        "TakeItems"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response_mut();
        if !response.status().is_success() {
            return Ok(());
        }
        let body = response.take_body();
        let parse = self.0.clone();
        // Read when the SDK reads the body (on the reading task), parsed once complete.
        let rest = stream::once(async move {
            let bytes = body.collect().await?.to_bytes();
            parse(&bytes).map(http_body::Frame::data)
        });
        *response.body_mut() = SdkBody::from_body_1_x(http_body_util::StreamBody::new(rest));
        Ok(())
    }
}

/// Sends one request with a [`TakeItems`] of its own and returns the records it left,
/// with the key `next` finds in the SDK's answer.
async fn read_page<T, O, E, Fut>(
    send: impl FnOnce(TakeItems) -> Fut,
    next: impl FnOnce(O) -> Option<Item>,
    how: Decoding,
) -> Result<Page<T>, Error>
where
    T: DeserializeOwned + Send + 'static,
    Fut: Future<Output = Result<O, E>>,
    E: Into<BoxError>,
{
    let slot = Arc::new(Mutex::new(None::<Records<T>>));
    let into = slot.clone();
    let parse = move |body: &[u8]| {
        let (records, rest) = split_records::<T>(body, &how)?;
        *into.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(records);
        Ok(rest)
    };
    let out = send(TakeItems(Arc::new(parse))).await.map_err(Error::database)?;
    let records = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
        .ok_or_else(|| Error::internal("database error", "a page's items were not read"))??;
    Ok((records, next(out).filter(|k| !k.is_empty())))
}

/// One Query page from `start`.
pub async fn query_page<T: DeserializeOwned + Send + 'static>(
    req: QueryFluentBuilder,
    start: Option<Item>,
    how: Decoding,
) -> Result<Page<T>, Error> {
    let req = req.set_exclusive_start_key(start);
    read_page(
        |take| req.customize().interceptor(take).send(),
        |out| out.last_evaluated_key,
        how,
    )
    .await
}

/// One Scan page from `start`.
pub async fn scan_page<T: DeserializeOwned + Send + 'static>(
    req: ScanFluentBuilder,
    start: Option<Item>,
    how: Decoding,
) -> Result<Page<T>, Error> {
    let req = req.set_exclusive_start_key(start);
    read_page(
        |take| req.customize().interceptor(take).send(),
        |out| out.last_evaluated_key,
        how,
    )
    .await
}

/// Every page of a read, in order, until one has no `LastEvaluatedKey`.
pub fn all_pages<T, F, Fut>(mut read: F) -> BoxStream<'static, Result<Vec<Read<T>>, Error>>
where
    T: Send + 'static,
    F: FnMut(Option<Item>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Page<T>, Error>> + Send + 'static,
{
    // `None`: done; `Some(start)`: the next page starts at `start`.
    stream::try_unfold(Some(None), move |state: Option<Option<Item>>| {
        let next = state.map(&mut read);
        async move {
            let Some(next) = next else { return Ok(None) };
            let (items, start) = next.await?;
            Ok(Some((items, start.map(Some))))
        }
    })
    .boxed()
}

/// An item as the SDK holds it: what is written, and where a read continues.
pub type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// Deserialises an item read (a page's, or a DynamoDB export's line) into its model. A
/// misfit names the item's key (never its contents) so the export fails loudly instead
/// of skipping or mangling a row.
pub fn decode<T: DeserializeOwned>(item: ReadItem, key_attrs: &[&str]) -> Result<T, Error> {
    // Only the key's values are kept aside (decoding consumes the item); the message
    // is made only for an item that does not fit.
    let key: Vec<Option<serde_dynamo::AttributeValue>> = key_attrs.iter().map(|k| item.get(*k).cloned()).collect();
    serde_dynamo::from_item(item).map_err(|e| Error::MalformedItem {
        key: describe_key(key_attrs, &key),
        reason: e.to_string(),
    })
}

/// `lead_id=...`: what names an item in an error, never its contents.
fn describe_key(key_attrs: &[&str], values: &[Option<serde_dynamo::AttributeValue>]) -> String {
    key_attrs
        .iter()
        .zip(values)
        .map(|(k, v)| match v {
            Some(serde_dynamo::AttributeValue::S(v) | serde_dynamo::AttributeValue::N(v)) => format!("{k}={v}"),
            Some(_) => format!("{k}=<non-string>"),
            None => format!("{k}=<missing>"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The snapshot cut: whether an item was written at or before `as_of`. Items carry
/// `written_at` (stamped by [`crate::load::write_records`]); an item without one (or
/// with one that is not a timestamp) was written by another writer and is kept.
/// (A page's item or a DynamoDB export's line: both are read the same way.)
pub(crate) fn written_by(item: &ReadItem, as_of: &DateTime<Utc>) -> bool {
    match item.get("written_at") {
        Some(serde_dynamo::AttributeValue::S(s)) => stamped_by(Some(s), as_of),
        _ => true,
    }
}

/// [`written_by`] of an item whose `written_at` string (if any) was read aside.
pub(crate) fn stamped_by(written_at: Option<&str>, as_of: &DateTime<Utc>) -> bool {
    written_at.is_none_or(|s| timefmt::parse_rfc3339(s).is_none_or(|w| w <= *as_of))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_split_into_items_and_the_rest_exactly() {
        let body = br#"{"Count":2,"Items":[{"id":{"S":"a\u00e9\"\\"},"n":{"N":"12345678901234567890.5"},"l":{"L":[{"BOOL":true},{"NULL":true}]}},{"id":{"S":"b"},"m":{"M":{"x":{"SS":["p","q"]}}}}],"ScannedCount":3,"LastEvaluatedKey":{"id":{"S":"b"},"n":{"N":"7"}},"ConsumedCapacity":{"TableName":"t","CapacityUnits":1.5}}"#;
        let (items, rest) = split_answer(body).unwrap();
        assert_eq!(
            std::str::from_utf8(&rest).unwrap(),
            r#"{"Count":2,"ScannedCount":3,"LastEvaluatedKey":{"id":{"S":"b"},"n":{"N":"7"}}}"#
        );
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].get("id"),
            Some(&serde_dynamo::AttributeValue::S("a\u{e9}\"\\".into()))
        );
        assert_eq!(
            items[0].get("n"),
            Some(&serde_dynamo::AttributeValue::N("12345678901234567890.5".into()))
        );
        let (items, last) = split_answer(br#"{"Count":0,"Items":[],"ScannedCount":0}"#).unwrap();
        assert_eq!(&last[..], br#"{"Count":0,"ScannedCount":0}"#);
        assert!(items.is_empty());
        assert!(split_answer(b"{\"Items\":[{\"id\":{\"Q\":1}}]}").is_err());
        assert!(split_answer(b"{\"Items\":[").is_err());
    }

    mod direct_equals_long {
        use std::collections::HashMap;

        use proptest::prelude::*;
        use serde_dynamo::AttributeValue as Av;

        use super::*;
        use crate::{
            load::Record,
            model::{ChatMessage, Lead, Session, SessionMessage},
            timefmt,
        };

        fn item_of(record: &Record, written_at: &str) -> ReadItem {
            let mut map: HashMap<String, Av> = record
                .to_item()
                .unwrap()
                .into_iter()
                .map(|(k, v)| (k, v.into()))
                .collect();
            map.insert("written_at".into(), Av::S(written_at.into()));
            ReadItem::from(map)
        }

        fn body(items: &[ReadItem]) -> Vec<u8> {
            serde_json::to_vec(&serde_json::json!({
                "Count": items.len(),
                "Items": items,
                "ScannedCount": items.len() + 1,
                "LastEvaluatedKey": {"id": {"S": "a\"b"}, "n": {"N": "12345678901234567890"}},
            }))
            .unwrap()
        }

        /// Both readers on one answer: the direct one, when it reads the page, must
        /// give exactly the long way's records (compared as `Debug` text, so that a
        /// NaN equals a NaN), sort keys and rest. Returns whether it read the page.
        fn same_both_ways<T: DeserializeOwned + std::fmt::Debug>(body: &[u8], how: &Decoding) -> bool {
            let long = split_answer(body).map(|(items, rest)| (decode_items::<T>(items, how), rest));
            let shown = |records: &Records<T>| match records {
                Ok(reads) => format!("{:?}", reads.iter().map(|r| (&r.record, &r.sort)).collect::<Vec<_>>()),
                // Which misfit an item with several is reported for follows the
                // long way's map order, which is random: the item is what must agree.
                Err(Error::MalformedItem { key, .. }) => format!("malformed item {key}"),
                Err(e) => format!("error {}", e.cause_chain()),
            };
            match direct_answer::<T>(body, how) {
                Ok((records, rest)) => {
                    let (long_records, long_rest) = long.expect("the direct reader read what the long way refuses");
                    let (a, b) = (shown(&records), shown(&long_records));
                    if a != b {
                        let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
                        let at = a.floor_char_boundary(at.saturating_sub(80));
                        panic!("direct: {}\nlong:   {}", &a[at..], &b[b.floor_char_boundary(at)..]);
                    }
                    assert_eq!(rest, long_rest);
                    true
                }
                Err(_) => {
                    // The page is read the long way, with the long way's answer.
                    let split = split_records::<T>(body, how);
                    match (split, long) {
                        (Ok((records, _)), Ok((long_records, _))) => assert_eq!(shown(&records), shown(&long_records)),
                        (Err(_), Err(_)) => {}
                        (a, b) => panic!("differ: {:?} / {:?}", a.is_ok(), b.is_ok()),
                    }
                    false
                }
            }
        }

        fn how(sort_attr: Option<&'static str>, as_of: DateTime<Utc>) -> Decoding {
            Decoding {
                as_of,
                sort_attr,
                key_attrs: &["id"],
            }
        }

        #[test]
        fn every_kind_of_record_is_read_directly_and_exactly() {
            let stamp = "2024-01-15T10:30:00.000Z";
            let late = timefmt::parse_rfc3339("2024-01-15T10:29:59.999Z").unwrap();
            let on_time = timefmt::parse_rfc3339(stamp).unwrap();
            let records: Vec<Record> = crate::synth::sessions(3, 20)
                .chain(crate::synth::leads(3, 200))
                .chain(crate::synth::chat_messages(3, 200))
                .collect();
            let of = |pick: fn(&Record) -> bool| -> Vec<ReadItem> {
                records.iter().filter(|r| pick(r)).map(|r| item_of(r, stamp)).collect()
            };
            for as_of in [on_time, late] {
                let sessions = body(&of(|r| matches!(r, Record::Session(_))));
                assert!(same_both_ways::<Session>(&sessions, &how(None, as_of)));
                let messages = body(&of(|r| matches!(r, Record::Message(_))));
                assert!(same_both_ways::<SessionMessage>(
                    &messages,
                    &how(Some("msg_key"), as_of)
                ));
                let leads = body(&of(|r| matches!(r, Record::Lead(_))));
                assert!(same_both_ways::<Lead>(&leads, &how(Some("created_key"), as_of)));
                let chats = body(&of(|r| matches!(r, Record::ChatMessage(_))));
                assert!(same_both_ways::<ChatMessage>(&chats, &how(Some("ts_id"), as_of)));
                assert!(same_both_ways::<ChatMessage>(&chats, &how(Some("conv_key"), as_of)));
            }
            // Written after the cut: left out, both ways.
            let (records, _) =
                direct_answer::<Lead>(&body(&of(|r| matches!(r, Record::Lead(_)))), &how(None, late)).unwrap();
            assert!(records.unwrap().is_empty());
        }

        /// Text fields are kept inline up to 24 bytes (`model::Text`): texts on both
        /// sides of that length, with escapes and characters of several bytes across
        /// it, come back exactly as written, both ways.
        #[test]
        fn texts_of_every_length_around_the_inline_limit_read_back_exactly() {
            let as_of = DateTime::<Utc>::MAX_UTC;
            let texts: Vec<String> = [0, 1, 22, 23, 24, 25, 26, 47, 48, 300]
                .iter()
                .flat_map(|&n| {
                    [
                        "a".repeat(n),
                        format!("{}é", "b".repeat(n.saturating_sub(1))),
                        format!("{}😀\"\\\n\u{1}", "c".repeat(n.saturating_sub(8))),
                    ]
                })
                .collect();
            let Record::ChatMessage(base) = crate::synth::chat_messages(9, 1).next().unwrap() else {
                unreachable!()
            };
            let messages: Vec<ChatMessage> = texts
                .iter()
                .map(|t| {
                    let mut m = base.clone();
                    m.id = t.as_str().into();
                    m.client_id = t.as_str().into();
                    m.message = t.as_str().into();
                    m.user_name = Some(t.as_str().into());
                    let geo = m.geo_data.get_or_insert_with(Default::default);
                    geo.city = Some(t.as_str().into());
                    m
                })
                .collect();
            let items: Vec<ReadItem> = messages
                .iter()
                .map(|m| item_of(&Record::ChatMessage(m.clone()), "2024-01-15T10:30:00.000Z"))
                .collect();
            let page = body(&items);
            assert!(same_both_ways::<ChatMessage>(&page, &how(None, as_of)));
            let (records, _) = direct_answer::<ChatMessage>(&page, &how(None, as_of)).unwrap();
            let read: Vec<ChatMessage> = records.unwrap().into_iter().map(|r| r.record).collect();
            assert_eq!(read, messages);
        }

        #[test]
        fn pages_the_direct_reader_does_not_take_are_read_the_long_way() {
            let record = crate::synth::chat_messages(5, 1).next().unwrap();
            let base = item_of(&record, "2024-01-15T10:30:00.000Z");
            let as_of = DateTime::<Utc>::MAX_UTC;
            let with = |name: &str, value: Av| {
                let mut map: HashMap<String, Av> = base.clone().into();
                map.insert(name.into(), value);
                ReadItem::from(map)
            };
            for (item, direct) in [
                (with("extra", Av::B(vec![1, 2])), false),
                (with("extra", Av::Ns(vec!["1".into()])), false),
                (with("token_cost", Av::S("7".into())), false),
                (with("token_cost", Av::N("-1".into())), false),
                (with("reply", Av::Null(false)), false),
                (with("written_at", Av::N("1".into())), false),
                (with("ts_id", Av::N("1".into())), false),
                (with("message", Av::Null(true)), false),
                (with("reply", Av::Null(true)), true),
                (with("geo_data", Av::Null(true)), true),
                (
                    with(
                        "extra",
                        Av::M(HashMap::from([("x".to_string(), Av::L(vec![Av::Bool(true)]))])),
                    ),
                    true,
                ),
                (with("token_cost", Av::N("00042".into())), true),
            ] {
                let page = body(&[item]);
                assert_eq!(
                    same_both_ways::<ChatMessage>(&page, &how(Some("ts_id"), as_of)),
                    direct,
                    "{}",
                    String::from_utf8_lossy(&page)
                );
            }
            // Not DynamoDB's JSON: refused both ways.
            for bad in [
                &b"{\"Items\":[{\"id\":{\"Q\":1}}]}"[..],
                b"{\"Items\":[",
                b"{\"Items\":[{\"id\":{\"S\":1}}]}",
            ] {
                assert!(split_records::<ChatMessage>(bad, &how(None, as_of)).is_err());
            }
        }

        fn number_text() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<u32>().prop_map(|n| n.to_string()),
                any::<i64>().prop_map(|n| n.to_string()),
                any::<f64>().prop_map(|f| f.to_string()),
                "[-+]?[0-9]{0,22}(\\.[0-9]{0,6})?([eE][-+]?[0-9]{1,3})?",
            ]
        }

        fn value() -> impl Strategy<Value = Av> {
            let leaf = prop_oneof![
                any::<String>().prop_map(Av::S),
                "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,3})?Z".prop_map(Av::S),
                prop_oneof!["high", "low", "new", "lost", "hot", "demo_request"].prop_map(|s| Av::S(s.to_string())),
                number_text().prop_map(Av::N),
                any::<bool>().prop_map(Av::Bool),
                any::<bool>().prop_map(Av::Null),
                prop::collection::vec(any::<String>(), 0..3).prop_map(Av::Ss),
            ];
            leaf.prop_recursive(2, 12, 3, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..3).prop_map(Av::L),
                    prop::collection::hash_map("[a-z_]{1,12}", inner, 0..4).prop_map(Av::M),
                ]
            })
        }

        const NAMES: &[&str] = &[
            "id",
            "client_id",
            "message",
            "reply",
            "token_cost",
            "is_embed_user",
            "geo_data",
            "timestamp",
            "created_at",
            "written_at",
            "ts_id",
            "lead_id",
            "lead_score",
            "confidence",
            "category",
            "status",
            "tags",
            "detected_languages",
            "ai_confidence_score",
            "conversion_value",
            "session_duration",
            "updated_at",
            "converted_at",
            "latitude",
            "country",
            "session_id",
            "started_at",
            "user_id",
            "other",
        ];

        fn changes() -> impl Strategy<Value = Vec<(usize, Option<Av>)>> {
            prop::collection::vec((0..NAMES.len(), prop::option::weighted(0.85, value())), 0..4)
        }

        fn changed(record: &Record, changes: &[(usize, Option<Av>)]) -> ReadItem {
            let mut map: HashMap<String, Av> = item_of(record, "2024-01-15T10:30:00.000Z").into();
            for (name, value) in changes {
                match value {
                    Some(v) => map.insert(NAMES[*name].to_string(), v.clone()),
                    None => map.remove(NAMES[*name]),
                };
            }
            ReadItem::from(map)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(400))]

            #[test]
            fn any_item_reads_the_same_both_ways(seed in 0u64..1000, changes in changes(), sort in 0usize..NAMES.len()) {
                let sort_attr = Some(NAMES[sort]);
                let as_of = timefmt::parse_rfc3339("2024-01-15T10:30:00.000Z").unwrap();
                let lead = crate::synth::leads(seed, 1).next().unwrap();
                let chat = crate::synth::chat_messages(seed, 1).next().unwrap();
                let sessions: Vec<Record> = crate::synth::sessions(seed, 20).collect();
                let session = sessions.iter().find(|r| matches!(r, Record::Session(_))).unwrap();
                let message = sessions.iter().find(|r| matches!(r, Record::Message(_))).unwrap();
                same_both_ways::<Lead>(&body(&[changed(&lead, &changes), changed(&lead, &[])]), &how(sort_attr, as_of));
                same_both_ways::<ChatMessage>(&body(&[changed(&chat, &changes)]), &how(sort_attr, as_of));
                same_both_ways::<Session>(&body(&[changed(session, &changes)]), &how(sort_attr, as_of));
                same_both_ways::<SessionMessage>(&body(&[changed(message, &changes)]), &how(sort_attr, as_of));
            }
        }
    }
}
