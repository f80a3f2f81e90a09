//! DynamoDB Query and Scan pages whose items this crate parses itself.
//!
//! The SDK turns a page's JSON into `HashMap<String, AttributeValue>` items through its
//! own tokenizer, and `serde_dynamo` then rebuilds each map before decoding the model:
//! measured end to end, that was about a third of an export's CPU. Here the SDK still
//! signs, sends, retries and checks the request, but an interceptor takes a successful
//! answer's body, parses its items once with `serde_json` into `serde_dynamo`'s form
//! (what the models decode from), and hands the SDK only the rest of the answer
//! (`Count`, `ScannedCount`, `LastEvaluatedKey`). Errors (4xx, 5xx) go to the SDK
//! untouched, so its error handling and retries are unchanged.

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
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{error::Error, store::Item};

/// An item as this crate reads it (`serde_dynamo`'s attribute values).
pub type ReadItem = serde_dynamo::Item;

/// One page: its items, and where the next page starts (`None`: the last page).
pub type Page = (Vec<ReadItem>, Option<Item>);

/// Where the interceptor leaves the items of the attempt that succeeded.
type Slot = Arc<Mutex<Option<Vec<ReadItem>>>>;

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

/// Parses a whole answer: its items go to `slot`, the rest is returned for the SDK.
fn split_answer(body: &[u8], slot: &Slot) -> Result<Bytes, BoxError> {
    let answer: Answer<'_> = serde_json::from_slice(body)?;
    let rest = serde_json::to_vec(&Rest {
        count: answer.count,
        scanned_count: answer.scanned_count,
        last_evaluated_key: answer.last_evaluated_key,
    })?;
    *slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(answer.items);
    Ok(Bytes::from(rest))
}

#[derive(Debug)]
struct TakeItems(Slot);

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
        let slot = self.0.clone();
        // Read when the SDK reads the body (on the reading task), parsed once complete.
        let rest = stream::once(async move {
            let bytes = body.collect().await?.to_bytes();
            split_answer(&bytes, &slot).map(http_body::Frame::data)
        });
        *response.body_mut() = SdkBody::from_body_1_x(http_body_util::StreamBody::new(rest));
        Ok(())
    }
}

/// Sends one request with a [`TakeItems`] of its own and returns the items it left,
/// with the key `next` finds in the SDK's answer.
async fn read_page<O, E, Fut>(
    send: impl FnOnce(TakeItems) -> Fut,
    next: impl FnOnce(O) -> Option<Item>,
) -> Result<Page, Error>
where
    Fut: Future<Output = Result<O, E>>,
    E: Into<BoxError>,
{
    let slot = Slot::default();
    let out = send(TakeItems(slot.clone())).await.map_err(Error::database)?;
    let items = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
        .ok_or_else(|| Error::internal("database error", "a page's items were not read"))?;
    Ok((items, next(out).filter(|k| !k.is_empty())))
}

/// One Query page from `start`.
pub async fn query_page(req: QueryFluentBuilder, start: Option<Item>) -> Result<Page, Error> {
    let req = req.set_exclusive_start_key(start);
    read_page(
        |take| req.customize().interceptor(take).send(),
        |out| out.last_evaluated_key,
    )
    .await
}

/// One Scan page from `start`.
pub async fn scan_page(req: ScanFluentBuilder, start: Option<Item>) -> Result<Page, Error> {
    let req = req.set_exclusive_start_key(start);
    read_page(
        |take| req.customize().interceptor(take).send(),
        |out| out.last_evaluated_key,
    )
    .await
}

/// Every page of a read, in order, until one has no `LastEvaluatedKey`.
pub fn all_pages<F, Fut>(mut read: F) -> BoxStream<'static, Result<Vec<ReadItem>, Error>>
where
    F: FnMut(Option<Item>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Page, Error>> + Send + 'static,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_split_into_items_and_the_rest_exactly() {
        let body = br#"{"Count":2,"Items":[{"id":{"S":"a\u00e9\"\\"},"n":{"N":"12345678901234567890.5"},"l":{"L":[{"BOOL":true},{"NULL":true}]}},{"id":{"S":"b"},"m":{"M":{"x":{"SS":["p","q"]}}}}],"ScannedCount":3,"LastEvaluatedKey":{"id":{"S":"b"},"n":{"N":"7"}},"ConsumedCapacity":{"TableName":"t","CapacityUnits":1.5}}"#;
        let slot = Slot::default();
        let rest = split_answer(body, &slot).unwrap();
        assert_eq!(
            std::str::from_utf8(&rest).unwrap(),
            r#"{"Count":2,"ScannedCount":3,"LastEvaluatedKey":{"id":{"S":"b"},"n":{"N":"7"}}}"#
        );
        let items = slot.lock().unwrap().take().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].get("id"),
            Some(&serde_dynamo::AttributeValue::S("a\u{e9}\"\\".into()))
        );
        assert_eq!(
            items[0].get("n"),
            Some(&serde_dynamo::AttributeValue::N("12345678901234567890.5".into()))
        );
        let last = split_answer(br#"{"Count":0,"Items":[],"ScannedCount":0}"#, &slot).unwrap();
        assert_eq!(&last[..], br#"{"Count":0,"ScannedCount":0}"#);
        assert!(slot.lock().unwrap().take().unwrap().is_empty());
        assert!(split_answer(b"{\"Items\":[{\"id\":{\"Q\":1}}]}", &slot).is_err());
        assert!(split_answer(b"{\"Items\":[", &slot).is_err());
    }
}
