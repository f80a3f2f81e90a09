//! What the record stores (jobs, schedules) share: attribute values, the one
//! conditional write each state change is, and typed decoding that names the item.

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    Client,
    error::{ProvideErrorMetadata, SdkError},
    types::{AttributeValue, ReturnValue},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::error::Error;

pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn conditional_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

/// Every `#name` of the expressions: attributes are always aliased, so no name can
/// clash with DynamoDB's long list of reserved words (`status`, `rows`, `owner`...).
pub fn attribute_names(expressions: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for e in expressions {
        for part in e.split('#').skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// A stored record of a model, or an error naming it (`job <id>`), never its contents.
pub fn decode<T: DeserializeOwned>(item: Item, what: &str) -> Result<T, Error> {
    let id = match item.get("id") {
        Some(AttributeValue::S(id)) => id.clone(),
        _ => "?".into(),
    };
    serde_dynamo::from_item(item).map_err(|e| Error::MalformedItem {
        key: format!("{what} {id}"),
        reason: e.to_string(),
    })
}

/// Records of one model keyed by `id`, in one table; `what` names them in errors.
#[derive(Clone, Debug)]
pub struct Records {
    pub client: Client,
    pub table: String,
    pub what: &'static str,
}

impl Records {
    /// A stored record of this table's model.
    pub fn decode<T: DeserializeOwned>(&self, item: Item) -> Result<T, Error> {
        decode(item, self.what)
    }

    /// The record `id`, read consistently.
    pub async fn get<T: DeserializeOwned>(&self, id: &str) -> Result<Option<T>, Error> {
        self.get_item(id).await?.map(|item| self.decode(item)).transpose()
    }

    /// The item `id` as stored (helper items of no model included).
    pub async fn get_item(&self, id: &str) -> Result<Option<Item>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(Error::database)?;
        Ok(out.item)
    }

    /// Writes a record on a condition (`#name`s aliased): `Ok(false)` when it failed.
    pub async fn put<T: Serialize>(
        &self,
        record: &T,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, Error> {
        self.write(record, Some(condition), values).await
    }

    /// Writes a record whatever is stored under its key: the last writer wins.
    pub async fn replace<T: Serialize>(&self, record: &T) -> Result<(), Error> {
        self.write(record, None, vec![]).await.map(|_| ())
    }

    async fn write<T: Serialize>(
        &self,
        record: &T,
        condition: Option<&str>,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, Error> {
        let item = serde_dynamo::to_item(record).map_err(|e| Error::internal("record error", e))?;
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_string));
        for name in attribute_names(&condition.into_iter().collect::<Vec<_>>()) {
            req = req.expression_attribute_names(format!("#{name}"), name);
        }
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(Error::database(e)),
        }
    }

    /// One conditional UpdateItem on record `id` (`#name`s aliased), answering the
    /// record as written; `Ok(None)` when the condition did not hold.
    pub async fn update<T: DeserializeOwned>(
        &self,
        id: &str,
        expression: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Option<T>, Error> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(id))
            .update_expression(expression)
            .condition_expression(condition)
            .return_values(ReturnValue::AllNew);
        for name in attribute_names(&[expression, condition]) {
            req = req.expression_attribute_names(format!("#{name}"), name);
        }
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        match req.send().await {
            Ok(out) => out.attributes.map(|item| self.decode(item)).transpose(),
            Err(e) if conditional_failed(&e) => Ok(None),
            Err(e) => Err(Error::database(e)),
        }
    }

    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("id", s(id))
            .send()
            .await
            .map_err(Error::database)?;
        Ok(())
    }
}
