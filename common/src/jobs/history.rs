//! The history's cursor (`GET /api/exports?cursor=`): a position in one owner's
//! history, written `<created_at>~<id>` (`2024-01-15T10:30:00.000Z~<32 hex>`), the job
//! after which the next page starts. Any cursor of that form is a position in the
//! history of the owner the request names (the caller, or the `owner` an admin
//! gives), so a cursor can only move within that history; anything else is 400.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::{error::Error, values::id::JobId};

/// The cursor after `key`, the last item of a page (its `created_key` is
/// `<created_at>#<id>`).
pub fn encode_cursor(key: &HashMap<String, AttributeValue>) -> Option<String> {
    let created_key = key.get("created_key").and_then(|v| v.as_s().ok())?;
    let (at, id) = created_key.split_once('#')?;
    Some(format!("{at}~{id}"))
}

/// `^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$` (the instant of openapi.yaml's
/// cursor pattern): `d` a digit, anything else itself.
fn instant_ok(at: &str) -> bool {
    const FORM: &[u8] = b"dddd-dd-ddTdd:dd:dd.dddZ";
    at.len() == FORM.len()
        && at.bytes().zip(FORM).all(|(c, &f)| match f {
            b'd' => c.is_ascii_digit(),
            _ => c == f,
        })
}

/// The `ExclusiveStartKey` of `owner`'s history page after `cursor`.
pub fn decode_cursor(cursor: &str, owner: &str) -> Result<HashMap<String, AttributeValue>, Error> {
    let position = cursor
        .split_once('~')
        .filter(|(at, _)| instant_ok(at))
        .and_then(|(at, id)| Some((at, JobId::parse(id)?)));
    let Some((at, id)) = position else {
        return Err(Error::bad_request(
            "cursor must be the next_cursor of a page of this history (2024-01-15T10:30:00.000Z~<32 hex>)",
        ));
    };
    Ok([
        ("id".to_string(), AttributeValue::S(id.to_string())),
        ("owner".to_string(), AttributeValue::S(owner.to_string())),
        ("created_key".to_string(), AttributeValue::S(format!("{at}#{id}"))),
    ]
    .into_iter()
    .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_the_key_it_was_made_of() {
        let id = "0123456789abcdef0123456789abcdef";
        let key = decode_cursor(&format!("2024-01-15T10:30:00.000Z~{id}"), "me").unwrap();
        assert_eq!(encode_cursor(&key).unwrap(), format!("2024-01-15T10:30:00.000Z~{id}"));
        assert_eq!(key["owner"], AttributeValue::S("me".into()));
        for bad in [
            "",
            "~",
            &format!("2024-01-15T10:30:00.000Z~{}", id.to_uppercase()),
            &format!("2024-01-15T10:30:00.000~{id}"),
            &format!("2024-01-15T10:30:00.000Z~{id}~"),
            &format!("2024-01-15 10:30:00.000Z~{id}"),
        ] {
            assert!(decode_cursor(bad, "me").is_err(), "{bad}");
        }
    }
}
