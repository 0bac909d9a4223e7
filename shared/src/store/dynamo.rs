//! The DynamoDB store: one table, single-table design.
//!
//! | item            | PK                      | SK               | GSI1PK / GSI1SK       | GSI2PK / GSI2SK        |
//! |-----------------|-------------------------|------------------|-----------------------|------------------------|
//! | resource        | `BILL_RUN#<id>`         | `ITEM`           | `BILL_RUN` / padded id | group (cycle) / padded id |
//! | audit event     | `BILL_RUN#<id>`         | `EVENT#<version>`|                       |                        |
//! | id counter      | `COUNTER#BILL_RUN`      | `COUNTER`        |                       |                        |
//! | group guard     | `GUARD#<key>`           | `GUARD`          |                       |                        |
//! | idempotency key | `IDEMPOTENCY#<key>`     | `IDEMPOTENCY`    |                       |                        |
//!
//! A resource's fields are stored as top-level attributes beside `version`, `entity` and
//! `workPending` (what the worker's stream filter matches). Items are mapped with `serde_dynamo`
//! in one place ([`to_attributes`], [`from_attributes`]). Lists query GSI1 (never Scan).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete as DynamoDelete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, ReturnValue, ScalarAttributeType, StreamSpecification,
    StreamViewType, TransactWriteItem, Update as DynamoUpdate,
};
use aws_sdk_dynamodb::Client;
use serde_json::Value;

use super::{
    now_epoch, AuditEvent, Delete, Entity, Guard, IdempotencyRecord, NewItem, Repository, StoreError, StoreResult,
    Stored, Update, VersionCheck, MAX_WRITE,
};
use crate::domain::list::ListQuery;

type Item = HashMap<String, AttributeValue>;

const META: [&str; 10] =
    ["PK", "SK", "entity", "version", "workPending", "workerState", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK"];

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// A client from the standard AWS SDK environment (`AWS_ENDPOINT_URL_DYNAMODB` included),
    /// built once per process.
    pub async fn from_env(table: impl Into<String>) -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(Client::new(&config), table)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (as `infra/template.yaml` declares it) unless it exists. For the dev server
    /// and tests against DynamoDB Local; in AWS the template owns the table.
    pub async fn create_table_if_missing(&self) -> StoreResult<()> {
        if self.client.describe_table().table_name(&self.table).send().await.is_ok() {
            return Ok(());
        }
        let attr = |name: &str| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()
        };
        let key = |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
        let gsi = |name: &str| -> Result<GlobalSecondaryIndex, StoreError> {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(&format!("{name}PK"), KeyType::Hash).map_err(internal)?)
                .key_schema(key(&format!("{name}SK"), KeyType::Range).map_err(internal)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(internal)
        };
        let mut request = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("PK", KeyType::Hash).map_err(internal)?)
            .key_schema(key("SK", KeyType::Range).map_err(internal)?)
            .global_secondary_indexes(gsi("GSI1")?)
            .global_secondary_indexes(gsi("GSI2")?)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .map_err(internal)?,
            );
        for name in ["PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK"] {
            request = request.attribute_definitions(attr(name).map_err(internal)?);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ResourceInUseException") => Ok(()),
            Err(e) => Err(sdk(e)),
        }
    }

    fn put(&self, item: Item, condition: &str, values: Item) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .build()
            .map_err(internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn guard_write(&self, guard: &Guard) -> StoreResult<TransactWriteItem> {
        let (condition, mut values) = if guard.version == 0 {
            ("attribute_not_exists(PK)", Item::new())
        } else {
            ("version = :seen", Item::from([(":seen".to_owned(), number(guard.version))]))
        };
        values.insert(":next".to_owned(), number(guard.version + 1));
        let update = DynamoUpdate::builder()
            .table_name(&self.table)
            .key("PK", s(format!("GUARD#{}", guard.key)))
            .key("SK", s("GUARD"))
            .update_expression("SET version = :next")
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn version_check(&self, check: &VersionCheck) -> StoreResult<TransactWriteItem> {
        let condition = ConditionCheck::builder()
            .table_name(&self.table)
            .key("PK", s(item_pk(check.entity, check.id)))
            .key("SK", s("ITEM"))
            .condition_expression("version = :seen")
            .expression_attribute_values(":seen", number(check.version))
            .build()
            .map_err(internal)?;
        Ok(TransactWriteItem::builder().condition_check(condition).build())
    }

    fn count(&self, entity: Entity, by: i64) -> StoreResult<TransactWriteItem> {
        let update = DynamoUpdate::builder()
            .table_name(&self.table)
            .key("PK", s(format!("COUNTER#{}", entity.name())))
            .key("SK", s("COUNTER"))
            .update_expression("ADD itemCount :by")
            .expression_attribute_values(":by", number(by))
            .build()
            .map_err(internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn event_put(&self, entity: Entity, id: u64, version: u64, event: &AuditEvent) -> StoreResult<TransactWriteItem> {
        let mut item = to_attributes(event)?;
        item.insert("PK".into(), s(item_pk(entity, id)));
        item.insert("SK".into(), s(format!("EVENT#{}", pad(version))));
        self.put(item, "attribute_not_exists(PK)", Item::new())
    }

    #[allow(clippy::too_many_arguments)]
    fn resource_item(
        &self,
        entity: Entity,
        id: u64,
        version: u64,
        doc: &Value,
        group: &Option<String>,
        work_pending: bool,
        state: &Option<Value>,
    ) -> StoreResult<Item> {
        let mut item = to_attributes(doc)?;
        if let Some(state) = state {
            item.insert("workerState".into(), serde_dynamo::to_attribute_value(state).map_err(internal)?);
        }
        item.insert("PK".into(), s(item_pk(entity, id)));
        item.insert("SK".into(), s("ITEM"));
        item.insert("entity".into(), s(entity.name()));
        item.insert("version".into(), number(version));
        item.insert("workPending".into(), AttributeValue::Bool(work_pending));
        item.insert("GSI1PK".into(), s(entity.name()));
        item.insert("GSI1SK".into(), s(pad(id)));
        if let Some(group) = group {
            item.insert("GSI2PK".into(), s(format!("{}#{group}", entity.name())));
            item.insert("GSI2SK".into(), s(pad(id)));
        }
        Ok(item)
    }

    async fn transact(&self, items: Vec<TransactWriteItem>, idempotency_at: Option<usize>) -> StoreResult<()> {
        let result = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        let Err(error) = result else { return Ok(()) };
        if let Some(
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(e),
        ) = error.as_service_error()
        {
            let failed: Vec<usize> = e
                .cancellation_reasons()
                .iter()
                .enumerate()
                .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                .map(|(i, _)| i)
                .collect();
            if !failed.is_empty() {
                return Err(if idempotency_at.is_some_and(|i| failed.contains(&i)) {
                    StoreError::IdempotencyKeyTaken
                } else {
                    StoreError::Conflict
                });
            }
            // TransactionConflict: another transaction touched the same items at the same moment.
            if e.cancellation_reasons().iter().any(|r| r.code() == Some("TransactionConflict")) {
                return Err(StoreError::Conflict);
            }
        }
        Err(sdk(error))
    }

    /// One item by key, read strongly consistent.
    async fn get_item(&self, pk: String, sk: &str) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("PK", s(pk))
            .key("SK", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk)?;
        Ok(out.item)
    }

    async fn query_all(&self, index: &str, partition: String) -> StoreResult<Vec<Item>> {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", format!("{index}PK"))
            .expression_attribute_values(":pk", s(partition))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(sdk)
    }
}

#[async_trait]
impl Repository for DynamoStore {
    async fn next_ids(&self, counter: &str, n: u64) -> StoreResult<u64> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(format!("COUNTER#{counter}")))
            .key("SK", s("COUNTER"))
            .update_expression("ADD nextId :n")
            .expression_attribute_values(":n", number(n.max(1)))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(sdk)?;
        out.attributes()
            .and_then(|a| a.get("nextId"))
            .and_then(as_u64)
            .ok_or_else(|| internal("counter without nextId"))
    }

    async fn get(&self, entity: Entity, id: u64) -> StoreResult<Option<Stored>> {
        self.get_item(item_pk(entity, id), "ITEM").await?.map(stored).transpose()
    }

    async fn create(&self, item: NewItem) -> StoreResult<Stored> {
        let resource = self.resource_item(item.entity, item.id, 1, &item.doc, &item.group, item.work_pending, &None)?;
        let mut writes = vec![
            self.put(resource, "attribute_not_exists(PK)", Item::new())?,
            self.event_put(item.entity, item.id, 1, &item.event)?,
            self.count(item.entity, 1)?,
        ];
        if let Some(guard) = &item.guard {
            writes.push(self.guard_write(guard)?);
        }
        if let Some(check) = &item.check {
            writes.push(self.version_check(check)?);
        }
        let mut idempotency_at = None;
        if let Some(record) = &item.idempotency {
            let mut attributes = to_attributes(record)?;
            attributes.insert("PK".into(), s(format!("IDEMPOTENCY#{}", record.key)));
            attributes.insert("SK".into(), s("IDEMPOTENCY"));
            idempotency_at = Some(writes.len());
            writes.push(self.put(
                attributes,
                "attribute_not_exists(PK) OR expiresAt < :now",
                Item::from([(":now".to_owned(), number(now_epoch()))]),
            )?);
        }
        self.transact(writes, idempotency_at).await?;
        Ok(Stored { id: item.id, version: 1, doc: item.doc, state: None })
    }

    async fn write(&self, updates: Vec<Update>) -> StoreResult<Vec<Stored>> {
        if updates.is_empty() || updates.len() > MAX_WRITE {
            return Err(internal(format!("a write takes 1 to {MAX_WRITE} changes, not {}", updates.len())));
        }
        let mut writes = Vec::with_capacity(updates.len() * 2 + 2);
        let mut saved = Vec::with_capacity(updates.len());
        for update in updates {
            let version = update.expected_version + 1;
            let resource = self.resource_item(
                update.entity,
                update.id,
                version,
                &update.doc,
                &update.group,
                update.work_pending,
                &update.state,
            )?;
            writes.push(self.put(
                resource,
                "version = :seen",
                Item::from([(":seen".to_owned(), number(update.expected_version))]),
            )?);
            writes.push(self.event_put(update.entity, update.id, version, &update.event)?);
            if let Some(guard) = &update.guard {
                writes.push(self.guard_write(guard)?);
            }
            if let Some(check) = &update.check {
                writes.push(self.version_check(check)?);
            }
            saved.push(Stored { id: update.id, version, doc: update.doc, state: update.state });
        }
        self.transact(writes, None).await?;
        Ok(saved)
    }

    async fn delete(&self, delete: Delete) -> StoreResult<()> {
        let removal = DynamoDelete::builder()
            .table_name(&self.table)
            .key("PK", s(item_pk(delete.entity, delete.id)))
            .key("SK", s("ITEM"))
            .condition_expression("version = :seen")
            .expression_attribute_values(":seen", number(delete.expected_version))
            .build()
            .map_err(internal)?;
        let mut writes = vec![
            TransactWriteItem::builder().delete(removal).build(),
            self.event_put(delete.entity, delete.id, delete.expected_version + 1, &delete.event)?,
            self.count(delete.entity, -1)?,
        ];
        if let Some(check) = &delete.check {
            writes.push(self.version_check(check)?);
        }
        self.transact(writes, None).await
    }

    async fn list(&self, entity: Entity, query: &ListQuery) -> StoreResult<(Vec<Value>, u64)> {
        if !query.is_plain() {
            // Filters and other orders read the entity's index partition (a Query, never a Scan).
            let items = self.query_all("GSI1", entity.name().to_owned()).await?;
            let docs = items.into_iter().map(|i| stored(i).map(|s| s.doc)).collect::<StoreResult<Vec<_>>>()?;
            return Ok(query.apply(docs));
        }
        // The default order straight from GSI1: skip `offset` index keys, then read one page.
        let counter = self.get_item(format!("COUNTER#{}", entity.name()), "COUNTER").await?;
        let total = counter.and_then(|i| i.get("itemCount").and_then(as_u64)).unwrap_or(0);
        let mut start: Option<Item> = None;
        let mut to_skip = query.offset();
        while to_skip > 0 {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("GSI1")
                .key_condition_expression("GSI1PK = :pk")
                .expression_attribute_values(":pk", s(entity.name()))
                .projection_expression("PK")
                .limit(i32::try_from(to_skip.min(1000)).unwrap_or(1000))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk)?;
            to_skip = to_skip.saturating_sub(out.count() as u64);
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok((Vec::new(), total)),
            }
        }
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI1")
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(entity.name()))
            .limit(i32::try_from(query.page_size).unwrap_or(1000))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(sdk)?;
        let docs =
            out.items.unwrap_or_default().into_iter().map(|i| stored(i).map(|s| s.doc)).collect::<StoreResult<_>>()?;
        Ok((docs, total))
    }

    async fn group(&self, entity: Entity, group: &str) -> StoreResult<Vec<Stored>> {
        let items = self.query_all("GSI2", format!("{}#{group}", entity.name())).await?;
        items.into_iter().map(stored).collect()
    }

    async fn guard(&self, key: &str) -> StoreResult<Guard> {
        let item = self.get_item(format!("GUARD#{key}"), "GUARD").await?;
        let version = item.and_then(|i| i.get("version").and_then(as_u64)).unwrap_or(0);
        Ok(Guard { key: key.to_owned(), version })
    }

    async fn idempotency(&self, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        let Some(mut item) = self.get_item(format!("IDEMPOTENCY#{key}"), "IDEMPOTENCY").await? else {
            return Ok(None);
        };
        item.remove("PK");
        item.remove("SK");
        let record: IdempotencyRecord = from_attributes(item)?;
        Ok((record.expires_at > now_epoch()).then_some(record))
    }

    async fn events(&self, entity: Entity, id: u64) -> StoreResult<Vec<AuditEvent>> {
        let items: Vec<Item> = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :event)")
            .expression_attribute_values(":pk", s(item_pk(entity, id)))
            .expression_attribute_values(":event", s("EVENT#"))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(sdk)?;
        items
            .into_iter()
            .map(|mut i| {
                i.remove("PK");
                i.remove("SK");
                from_attributes(i)
            })
            .collect()
    }

    async fn put_api_key(&self, hash: &str, caller: Value) -> StoreResult<()> {
        let mut item = Item::new();
        item.insert("PK".into(), s(format!("APIKEY#{hash}")));
        item.insert("SK".into(), s("APIKEY"));
        item.insert("caller".into(), serde_dynamo::to_attribute_value(&caller).map_err(internal)?);
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(sdk)?;
        Ok(())
    }

    async fn api_key(&self, hash: &str) -> StoreResult<Option<Value>> {
        let Some(mut item) = self.get_item(format!("APIKEY#{hash}"), "APIKEY").await? else {
            return Ok(None);
        };
        item.remove("caller").map(|c| serde_dynamo::from_attribute_value(c).map_err(internal)).transpose()
    }
}

/// The one mapper from a resource item to what the repository returns.
fn stored(mut item: Item) -> StoreResult<Stored> {
    let version = item.get("version").and_then(as_u64).ok_or_else(|| internal("item without version"))?;
    let state =
        item.remove("workerState").map(|s| serde_dynamo::from_attribute_value(s).map_err(internal)).transpose()?;
    for name in META {
        item.remove(name);
    }
    let doc: Value = from_attributes(item)?;
    let id = doc.get("id").and_then(Value::as_u64).ok_or_else(|| internal("item without id"))?;
    Ok(Stored { id, version, doc, state })
}

/// Parses the key of a stream record's item (`BILL_RUN#42`) back into its entity and id.
pub fn parse_item_pk(pk: &str) -> Option<(Entity, u64)> {
    let (entity, id) = pk.split_once('#')?;
    Some((Entity::parse(entity)?, id.parse().ok()?))
}

pub fn item_pk(entity: Entity, id: u64) -> String {
    format!("{}#{id}", entity.name())
}

fn pad(n: u64) -> String {
    format!("{n:020}")
}

fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn as_u64(value: &AttributeValue) -> Option<u64> {
    value.as_n().ok().and_then(|n| n.parse().ok())
}

pub fn to_attributes<T: serde::Serialize>(value: &T) -> StoreResult<Item> {
    serde_dynamo::to_item(value).map_err(internal)
}

pub fn from_attributes<T: serde::de::DeserializeOwned>(item: Item) -> StoreResult<T> {
    serde_dynamo::from_item(item).map_err(internal)
}

fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(e.to_string())
}

/// Throttling and unreachable endpoints are "unavailable" (503); everything else is internal.
fn sdk<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(error: SdkError<E, R>) -> StoreError {
    let throttled = matches!(
        error.code(),
        Some(
            "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "InternalServerError"
        )
    );
    match error {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => StoreError::Unavailable(format!("{error:?}")),
        _ if throttled => StoreError::Unavailable(format!("{error:?}")),
        _ => StoreError::Internal(format!("{error:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_keys_round_trip() {
        assert_eq!(parse_item_pk(&item_pk(Entity::AdhocBillRun, 42)), Some((Entity::AdhocBillRun, 42)));
        assert_eq!(parse_item_pk("COUNTER#BILL_RUN"), None);
        assert_eq!(parse_item_pk("NOPE#1"), None);
    }

    #[test]
    fn a_resource_maps_to_attributes_and_back_unchanged() {
        let doc = serde_json::json!({"id": 3, "name": "x", "nickname": null, "ids": [], "n": -4, "ok": true});
        let item = to_attributes(&doc).unwrap();
        let mut item = item;
        item.insert("version".into(), number(9));
        let back = stored(item).unwrap();
        assert_eq!((back.id, back.version, back.doc), (3, 9, doc));
    }
}
