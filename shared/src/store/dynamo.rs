//! The DynamoDB store: one table, single-table design. Every key below starts with the item's
//! tenant (`T#<tenant>#`, see [`Key`]), but for the API key's own record, which the authorizer
//! finds by the key's hash before it knows a tenant.
//!
//! | item            | PK                          | SK                | GSI1PK / GSI1SK            | GSI2PK / GSI2SK              |
//! |-----------------|-----------------------------|-------------------|----------------------------|------------------------------|
//! | resource        | `T#t#KIND#<id>`             | `ITEM`            | `T#t#KIND` / sort id       | `T#t#KIND#<group>` / sort id |
//! | audit event     | `T#t#KIND#<id>`             | `EVENT#<version>` |                            |                              |
//! | counter         | `COUNTER#T#t#<name>`        | `COUNTER`         |                            |                              |
//! | group count     | `GROUP#T#t#KIND#<group>`    | `COUNT`           |                            |                              |
//! | group guard     | `GUARD#T#t#KIND#<group>`    | `GUARD`           |                            |                              |
//! | idempotency key | `IDEMPOTENCY#T#t#<key>`     | `IDEMPOTENCY`     |                            |                              |
//! | API key         | `APIKEY#<sha-256>`          | `APIKEY`          | `APIKEY` / key id          |                              |
//! | API key id      | `APIKEYID#<key id>`         | `APIKEYID`        |                            |                              |
//! | tenant's key    | `T#t#APIKEY#<key id>`       | `APIKEY`          | `T#t#APIKEY` / key id      |                              |
//!
//! A resource item holds the store's attributes (`entity`, `version`, `workPending`, what the
//! worker's stream filter matches) and the resource as JSON text in `body`, with the worker's state
//! in `workerState`. Audit events, idempotency records and API keys are typed records mapped with
//! `serde_dynamo` ([`to_attributes`], [`from_attributes`]). Lists query GSI1 (never Scan); sort ids
//! are zero-padded integers or UUIDs ([`Id::sort_key`]). A tenant's key item is a copy of the key's
//! record (never the key itself: only its hash), written and revoked in the same transaction as
//! the record, so that a tenant's list is one Query.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete as DynamoDelete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, ReturnValue, ScalarAttributeType, StreamSpecification,
    StreamViewType, TransactWriteItem, Update as DynamoUpdate,
};
use aws_sdk_dynamodb::Client;

use super::{
    group_moves, now_epoch, partition, ApiKeyRecord, AuditEvent, Change, Delete, EventQuery, Guard, IdempotencyRecord,
    NewItem, Page, Recorded, Repository, StoreError, StoreResult, Stored, Update, VersionCheck, Write,
    MAX_TRANSACTION_ITEMS,
};
use crate::domain::key::{Key, Kind, TenantId};

type Item = HashMap<String, AttributeValue>;

/// Where in an index partition a query reads.
#[derive(Debug, Clone, Copy)]
struct Range<'a> {
    after: Option<&'a str>,
    skip: u64,
    limit: usize,
    descending: bool,
}

/// What one change of a write leaves: the item as stored, and the guard and check it carries.
type Written = (Stored, Option<Guard>, Option<VersionCheck>);

/// A transaction being built. Counts move by the sum of its changes (DynamoDB takes each item
/// once), added last.
#[derive(Default)]
struct Transaction {
    items: Vec<TransactWriteItem>,
    counts: BTreeMap<(String, &'static str), i64>,
    /// Where the idempotency records are (a failed condition there is IdempotencyKeyTaken).
    idempotency_at: Vec<usize>,
}

impl Transaction {
    fn count(&mut self, pk: String, sk: &'static str, by: i64) {
        *self.counts.entry((pk, sk)).or_default() += by;
    }

    /// The counts of an item's move from the groups `before` to `after`, slot by slot.
    fn move_groups(&mut self, key: &Key, before: &[Option<String>], after: &[Option<String>]) {
        for (group, by) in group_moves(before, after) {
            self.count(group_pk(key.kind(), key.tenant(), &group), "COUNT", by);
        }
    }
}

/// The table's indexes: GSI1 lists a kind, GSI2 to GSI7 are the group slots, GSI8 is the work
/// index (items with pending work, by lease), GSI9 and GSI10 a tenant's published events by time
/// (all, and of one type).
pub const INDEXES: [&str; 10] = ["GSI1", "GSI2", "GSI3", "GSI4", "GSI5", "GSI6", "GSI7", "GSI8", "GSI9", "GSI10"];

/// Partitions of the work index per kind: an item's is its kind and a stable hash of its key, so
/// that many items with pending work spread their index writes, and what one sweep reads (the
/// sweeper's kinds, the scheduler's billing runs, the webhook-sender's deliveries) is never crowded
/// out by another's backlog.
const WORK_SHARDS: u64 = 16;

/// The work-index partition of an item (its kind, and FNV-1a of its partition key).
fn work_shard(key: &Key) -> String {
    let pk = key.partition();
    let hash = pk.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    work_partition(key.kind(), hash % WORK_SHARDS)
}

fn work_partition(kind: Kind, shard: u64) -> String {
    format!("WORK#{}#{shard:02}", kind.name)
}

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Items and index keys read (see [`Repository::items_read`]).
    reads: Arc<AtomicU64>,
    /// Write units the table reported for its transactions, in thousandths
    /// ([`Repository::write_units`]).
    write_milli_units: Arc<AtomicU64>,
}

/// The root certificates of Amazon Trust Services (Amazon Root CA 1 to 4 and Starfield Services
/// Root Certificate Authority - G2, as <https://www.amazontrust.com/repository/> lists them), which
/// every AWS service endpoint's certificate chains to.
const AMAZON_TRUST_SERVICES: &[u8] = include_bytes!("amazon-trust-services.pem");

/// The SDK's HTTP client (hyper and rustls, with ring for crypto) trusting the Amazon Trust
/// Services roots, and the system's roots as well only when `https_endpoint` says that a custom
/// HTTPS endpoint is configured. The SDK's default trusts the system's roots: it reads and parses
/// every certificate of the system store (about 150) when a client is built, which was most of a
/// function's init; five roots parse in microseconds.
pub fn http_client(https_endpoint: bool) -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
    let trust = TrustStore::empty().with_native_roots(https_endpoint).with_pem_certificate(AMAZON_TRUST_SERVICES);
    let context = TlsContext::builder().with_trust_store(trust).build().expect("a TLS context builds without fail");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https()
}

/// Whether `AWS_ENDPOINT_URL_DYNAMODB` or `AWS_ENDPOINT_URL` names an HTTPS endpoint (one that is
/// not AWS's, whose certificate may chain to any root the system trusts).
fn custom_https_endpoint() -> bool {
    ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"]
        .iter()
        .filter_map(std::env::var_os)
        .any(|url| url.to_string_lossy().trim().to_ascii_lowercase().starts_with("https://"))
}

/// Every store call's time bounds, shorter than a function's 10 s: a connection within 1 s, an
/// attempt within 2 s, and a call (the SDK's retries of throttles and transient errors included)
/// within 5 s; then it is `Unavailable` (503 with Retry-After), never a function timed out.
pub fn timeouts() -> aws_sdk_dynamodb::config::timeout::TimeoutConfig {
    use std::time::Duration;
    aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build()
}

/// The table the operator's tools use (the dev server, `billflow-admin`): `TABLE_NAME`, or
/// `billflow` when it is unset or empty. Functions require `TABLE_NAME` (`runtime`).
pub fn tool_table_name() -> String {
    std::env::var("TABLE_NAME").ok().filter(|t| !t.is_empty()).unwrap_or_else(|| "billflow".into())
}

/// The local endpoint `AWS_ENDPOINT_URL_DYNAMODB` names, if any; with one, the region and
/// credentials DynamoDB Local accepts (any) are set where they are not given, so that the dev
/// server, `billflow-admin` and `make watch` need nothing but the endpoint. Call it before any
/// thread starts (it sets environment variables).
pub fn local_endpoint_defaults() -> Option<String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok().filter(|e| !e.trim().is_empty())?;
    for (name, value) in
        [("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local"), ("AWS_REGION", "us-east-1")]
    {
        if std::env::var_os(name).is_none_or(|v| v.is_empty()) {
            std::env::set_var(name, value);
        }
    }
    Some(endpoint)
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), reads: Arc::default(), write_milli_units: Arc::default() }
    }

    /// A client from the standard AWS SDK environment and its whole credential chain (profiles,
    /// SSO, web identity, containers, instance metadata), with [`http_client`]'s trust store: for
    /// the tools that run on an operator's machine (`billflow-dev`, `billflow-admin`).
    pub async fn from_env(table: impl Into<String>) -> Self {
        Self::new(Client::new(&Self::env_config().await), table)
    }

    /// The standard AWS SDK environment and credential chain, with [`http_client`]'s trust store
    /// (what [`Self::from_env`] builds its client from; `billflow-admin` checks its region and
    /// credentials before it calls anything).
    pub async fn env_config() -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http_client(custom_https_endpoint()))
            .timeout_config(timeouts())
            .load()
            .await
    }

    /// A client configured from what Lambda puts in a function's environment, built once per
    /// process without I/O: the region (`AWS_REGION`, else `AWS_DEFAULT_REGION`), the function
    /// role's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), the
    /// endpoint settings (`AWS_ENDPOINT_URL_DYNAMODB`, else `AWS_ENDPOINT_URL`;
    /// `AWS_USE_FIPS_ENDPOINT`, `AWS_USE_DUALSTACK_ENDPOINT`), and [`http_client`]'s trust store.
    /// The SDK's default chain ([`Self::from_env`]) also looks for profile files and builds an STS
    /// client for web identity at start-up; a function never needs them, and leaving them out
    /// leaves them out of every function's binary.
    pub fn for_lambda(table: impl Into<String>) -> Self {
        use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
        let env = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
        let flag = |name: &str| env(name).is_some_and(|value| value.trim().eq_ignore_ascii_case("true"));
        let endpoint = env("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| env("AWS_ENDPOINT_URL"));
        let mut config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).map(Region::new))
            .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new())
            .use_fips(flag("AWS_USE_FIPS_ENDPOINT"))
            .use_dual_stack(flag("AWS_USE_DUALSTACK_ENDPOINT"))
            .timeout_config(timeouts())
            .http_client(http_client(custom_https_endpoint()));
        config.set_endpoint_url(endpoint);
        Self::new(Client::from_conf(config.build()), table)
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
            // The work index holds what the sweeper reads, as the template declares it.
            let projection = match name {
                "GSI8" => Projection::builder()
                    .projection_type(ProjectionType::Include)
                    .non_key_attributes("version")
                    .non_key_attributes("entity")
                    .build(),
                "GSI9" | "GSI10" => Projection::builder().projection_type(ProjectionType::KeysOnly).build(),
                _ => Projection::builder().projection_type(ProjectionType::All).build(),
            };
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(&format!("{name}PK"), KeyType::Hash).map_err(internal)?)
                .key_schema(key(&format!("{name}SK"), KeyType::Range).map_err(internal)?)
                .projection(projection)
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
            .set_global_secondary_indexes(Some(INDEXES.iter().map(|name| gsi(name)).collect::<StoreResult<_>>()?))
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .map_err(internal)?,
            );
        for name in ["PK".to_owned(), "SK".to_owned()]
            .into_iter()
            .chain(INDEXES.iter().flat_map(|index| [format!("{index}PK"), format!("{index}SK")]))
        {
            request = request.attribute_definitions(attr(&name).map_err(internal)?);
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
            .key("PK", s(check.key.partition()))
            .key("SK", s("ITEM"))
            .condition_expression("version = :seen")
            .expression_attribute_values(":seen", number(check.version))
            .build()
            .map_err(internal)?;
        Ok(TransactWriteItem::builder().condition_check(condition).build())
    }

    /// Adds `by` to a count kept in `attribute` of the item (pk, sk).
    fn count(&self, pk: String, sk: &str, by: i64) -> StoreResult<TransactWriteItem> {
        let update = DynamoUpdate::builder()
            .table_name(&self.table)
            .key("PK", s(pk))
            .key("SK", s(sk))
            .update_expression("ADD itemCount :by")
            .expression_attribute_values(":by", number(by))
            .build()
            .map_err(internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// An audit event's item, kept for [`super::event_retention_secs`] (the table's TTL); a
    /// published one is also in the tenant's event indexes (GSI9: all, GSI10: by type), whose
    /// keys alone are projected.
    fn event_put(&self, key: &Key, version: u64, event: &AuditEvent) -> StoreResult<TransactWriteItem> {
        let mut item = to_attributes(event)?;
        item.insert("PK".into(), s(key.partition()));
        item.insert("SK".into(), s(event_sk(version)));
        item.insert("expiresAt".into(), number(now_epoch() + super::event_retention_secs()));
        if let Some(event_type) = &event.event_type {
            let order = super::event_order(&event.at, key, version);
            item.insert("GSI9PK".into(), s(partition::events(key.tenant(), None)));
            item.insert("GSI9SK".into(), s(&order));
            item.insert("GSI10PK".into(), s(partition::events(key.tenant(), Some(event_type))));
            item.insert("GSI10SK".into(), s(order));
        }
        self.put(item, "attribute_not_exists(PK)", Item::new())
    }

    #[allow(clippy::too_many_arguments)]
    fn resource_item(
        key: &Key,
        order: &str,
        version: u64,
        body: &str,
        groups: &[Option<String>],
        lease: Option<u64>,
        state: &Option<String>,
    ) -> Item {
        let (kind, tenant) = (key.kind(), key.tenant());
        let mut item = Item::from([
            ("PK".to_owned(), s(key.partition())),
            ("SK".to_owned(), s("ITEM")),
            ("entity".to_owned(), s(kind.name)),
            ("version".to_owned(), number(version)),
            ("workPending".to_owned(), AttributeValue::Bool(lease.is_some())),
            ("body".to_owned(), s(body)),
            ("GSI1PK".to_owned(), s(partition::list(kind, tenant))),
            ("GSI1SK".to_owned(), s(order)),
        ]);
        if let Some(state) = state {
            item.insert("workerState".into(), s(state));
        }
        if let Some(lease) = lease {
            item.insert("GSI8PK".into(), s(work_shard(key)));
            item.insert("GSI8SK".into(), s(format!("{lease:015}")));
        }
        for (slot, group) in groups.iter().enumerate() {
            if let Some(group) = group {
                item.insert(format!("GSI{}PK", slot + 2), s(partition::group(kind, tenant, group)));
                item.insert(format!("GSI{}SK", slot + 2), s(order));
            }
        }
        item
    }

    /// A create's items: the resource, its event, its idempotency record; its counts to `tx`.
    fn add_create(&self, tx: &mut Transaction, item: NewItem) -> StoreResult<Written> {
        let (key, tenant) = (&item.key, item.key.tenant());
        let lease = item.work_pending.then(|| super::lease_from_now(item.lease_ms));
        let resource = Self::resource_item(key, &item.order, 1, &item.body, &item.groups, lease, &item.state);
        tx.items.push(self.put(resource, "attribute_not_exists(PK)", Item::new())?);
        tx.items.push(self.event_put(key, 1, &item.event)?);
        tx.count(counter_pk(tenant, key.kind().name), "COUNTER", 1);
        tx.move_groups(key, &[], &item.groups);
        if let Some(record) = &item.idempotency {
            let mut attributes = to_attributes(record)?;
            let pk = format!("IDEMPOTENCY#{}", partition::idempotency(tenant, &record.key));
            attributes.insert("PK".into(), s(pk));
            attributes.insert("SK".into(), s("IDEMPOTENCY"));
            tx.idempotency_at.push(tx.items.len());
            tx.items.push(self.put(
                attributes,
                "attribute_not_exists(PK) OR expiresAt < :now",
                Item::from([(":now".to_owned(), number(now_epoch()))]),
            )?);
        }
        Ok((Stored { key: item.key, version: 1, body: item.body, state: item.state }, item.guard, item.check))
    }

    /// A change's items: the resource if still at the version read, and its event; the counts of
    /// the groups it moves between to `tx`.
    fn add_update(&self, tx: &mut Transaction, update: Update) -> StoreResult<Written> {
        let version = update.expected_version + 1;
        let resource = Self::resource_item(
            &update.key,
            &update.order,
            version,
            &update.body,
            &update.groups,
            update.work_pending.then(|| super::lease_from_now(update.lease_ms)),
            &update.state,
        );
        let seen = Item::from([(":seen".to_owned(), number(update.expected_version))]);
        tx.items.push(self.put(resource, "version = :seen", seen)?);
        tx.items.push(self.event_put(&update.key, version, &update.event)?);
        tx.move_groups(&update.key, &update.previous_groups, &update.groups);
        let stored = Stored { key: update.key, version, body: update.body, state: update.state };
        Ok((stored, update.guard, update.check))
    }

    /// Adds the transaction's counts and writes it.
    async fn commit(&self, mut tx: Transaction) -> StoreResult<()> {
        for ((pk, sk), by) in std::mem::take(&mut tx.counts) {
            if by != 0 {
                tx.items.push(self.count(pk, sk, by)?);
            }
        }
        if tx.items.len() > MAX_TRANSACTION_ITEMS {
            return Err(internal(format!("a transaction of {} items, over {MAX_TRANSACTION_ITEMS}", tx.items.len())));
        }
        self.transact(tx.items, &tx.idempotency_at).await
    }

    async fn transact(&self, items: Vec<TransactWriteItem>, idempotency_at: &[usize]) -> StoreResult<()> {
        // A token per transaction: when the SDK retries one whose first attempt committed (a timeout
        // after the commit), DynamoDB answers the retry with that success instead of failing its
        // conditions against what the first attempt wrote.
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(uuid::Uuid::new_v4().to_string())
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await;
        let error = match result {
            Ok(out) => {
                let units: f64 = out.consumed_capacity().iter().filter_map(|c| c.capacity_units()).sum();
                self.write_milli_units.fetch_add((units * 1000.0) as u64, Ordering::Relaxed);
                return Ok(());
            }
            Err(error) => error,
        };
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
                return Err(if idempotency_at.iter().any(|i| failed.contains(i)) {
                    StoreError::IdempotencyKeyTaken
                } else {
                    StoreError::Conflict
                });
            }
            // TransactionConflict: another transaction touched the same items at the same moment.
            if e.cancellation_reasons().iter().any(|r| r.code() == Some("TransactionConflict")) {
                return Err(StoreError::Conflict);
            }
            if e.cancellation_reasons().iter().any(|r| r.code().is_some_and(is_throttling)) {
                return Err(StoreError::Throttled(format!("{e:?}")));
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
        self.read(1);
        Ok(out.item)
    }

    /// Every item of one index partition.
    async fn query_all(&self, index: &str, partition: String) -> StoreResult<Vec<Item>> {
        self.query_index(index, partition, Range { after: None, skip: 0, limit: usize::MAX, descending: false }).await
    }

    /// A query of one partition of the index `name` in sort-key order (descending if asked),
    /// after the sort key `after` when there is one.
    fn index_query(&self, name: &str, partition: &str, after: Option<&str>, descending: bool) -> QueryFluentBuilder {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(name)
            .expression_attribute_names("#pk", format!("{name}PK"))
            .expression_attribute_values(":pk", s(partition))
            .scan_index_forward(!descending);
        match after {
            Some(after) => query
                .key_condition_expression(if descending {
                    "#pk = :pk AND #sk < :after"
                } else {
                    "#pk = :pk AND #sk > :after"
                })
                .expression_attribute_names("#sk", format!("{name}SK"))
                .expression_attribute_values(":after", s(after)),
            None => query.key_condition_expression("#pk = :pk"),
        }
    }

    /// At most `range.limit` items of one partition of the index `name` (GSI1 to GSI7), past
    /// `range.skip` items whose keys alone are read (at most 1,000 a query). A response stops at
    /// 1 MB: it is followed until the limit or the partition's end.
    async fn query_index(&self, name: &str, partition: String, range: Range<'_>) -> StoreResult<Vec<Item>> {
        let mut start = None;
        let mut to_skip = range.skip;
        while to_skip > 0 {
            let out = self
                .index_query(name, &partition, range.after, range.descending)
                .projection_expression("PK")
                .limit(i32::try_from(to_skip.min(1000)).unwrap_or(1000))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk)?;
            self.read(out.count());
            to_skip = to_skip.saturating_sub(u64::try_from(out.count()).unwrap_or(0));
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(Vec::new()),
            }
        }
        let mut found = Vec::new();
        loop {
            let wanted = range.limit.saturating_sub(found.len());
            let out = self
                .index_query(name, &partition, range.after, range.descending)
                .limit(i32::try_from(wanted).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk)?;
            self.read(out.count());
            found.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if found.len() < range.limit => start = Some(key),
                _ => return Ok(found),
            }
        }
    }

    /// One resource's published events, newest first: its own partition below the cursor, followed
    /// until `limit` of them pass the query's filters (a resource's trail is its own writes).
    async fn resource_events(&self, key: &Key, query: &EventQuery) -> StoreResult<Vec<Recorded>> {
        // A cursor's version (the end of its order key) bounds the query: a page starts below it.
        let below = query.start_after.as_ref().and_then(|c| c.rsplit('#').next()?.parse::<u64>().ok());
        let high = below.map_or_else(|| "EVENT#~".to_owned(), |v| event_sk(v.saturating_sub(1)));
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND SK BETWEEN :low AND :high")
                .filter_expression("attribute_exists(eventType)")
                .expression_attribute_values(":pk", s(key.partition()))
                .expression_attribute_values(":low", s("EVENT#"))
                .expression_attribute_values(":high", s(&high))
                .scan_index_forward(false)
                .limit(100)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk)?;
            self.read(out.scanned_count());
            for item in out.items.unwrap_or_default() {
                let recorded = recorded(key.clone(), item)?;
                if query.admits(&recorded) && found.len() < query.limit {
                    found.push(recorded);
                }
            }
            match out.last_evaluated_key {
                Some(next) if found.len() < query.limit => start = Some(next),
                _ => return Ok(found),
            }
        }
    }

    /// A tenant's published events, newest first: one Query of the keys of GSI9 (or GSI10 for one
    /// type) between the time bounds and the cursor, then the events by key.
    async fn tenant_events(&self, tenant: &TenantId, query: &EventQuery) -> StoreResult<Vec<Recorded>> {
        let (index, pk) = match &query.event_type {
            Some(event_type) => ("GSI10", partition::events(tenant, Some(event_type))),
            None => ("GSI9", partition::events(tenant, None)),
        };
        let low = query.after_ms.map_or_else(|| "0".to_owned(), |ms| format!("{ms:015}"));
        let mut high = query.before_ms.map_or_else(|| "~".to_owned(), |ms| format!("{ms:015}"));
        if let Some(cursor) = query.start_after.as_ref().filter(|c| **c < high) {
            high = cursor.clone();
        }
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
            .expression_attribute_names("#pk", format!("{index}PK"))
            .expression_attribute_names("#sk", format!("{index}SK"))
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":low", s(low))
            .expression_attribute_values(":high", s(&high))
            .scan_index_forward(false)
            .limit(i32::try_from(query.limit + 1).unwrap_or(1000))
            .send()
            .await
            .map_err(sdk)?;
        self.read(out.count());
        let kinds = crate::domain::event::kinds();
        let mut keys = Vec::new();
        for item in out.items.unwrap_or_default() {
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            if text(&format!("{index}SK")) >= high {
                continue; // the cursor's own event, or the `before` bound
            }
            let key = Key::parse(&text("PK"), &kinds).filter(|k| k.tenant() == tenant);
            let key = key.ok_or_else(|| internal("foreign item in the event index"))?;
            keys.push((key, text("SK")));
        }
        keys.truncate(query.limit);
        self.events_by_key(keys).await
    }

    /// Audit items by (resource key, sort key), in that order, read in batches of 100 (one that
    /// expired since its index entry was read is left out).
    async fn events_by_key(&self, keys: Vec<(Key, String)>) -> StoreResult<Vec<Recorded>> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut items: HashMap<(String, String), Item> = HashMap::new();
        for chunk in keys.chunks(100) {
            let mut request = KeysAndAttributes::builder().consistent_read(true);
            for (key, sk) in chunk {
                request = request.keys(Item::from([("PK".to_owned(), s(key.partition())), ("SK".to_owned(), s(sk))]));
            }
            let mut pending = Some(HashMap::from([(self.table.clone(), request.build().map_err(internal)?)]));
            while let Some(requests) = pending.take().filter(|r| !r.is_empty()) {
                let out = self.client.batch_get_item().set_request_items(Some(requests)).send().await.map_err(sdk)?;
                for item in out.responses.unwrap_or_default().remove(&self.table).unwrap_or_default() {
                    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                    self.read(1);
                    items.insert((text("PK"), text("SK")), item);
                }
                pending = out.unprocessed_keys;
            }
        }
        let mut found = Vec::with_capacity(keys.len());
        for (key, sk) in keys {
            if let Some(item) = items.remove(&(key.partition(), sk)) {
                found.push(recorded(key, item)?);
            }
        }
        Ok(found)
    }

    /// Counts what a call read.
    fn read(&self, items: i32) {
        self.reads.fetch_add(u64::try_from(items).unwrap_or(0), Ordering::Relaxed);
    }

    async fn count_of(&self, pk: String, sk: &str) -> StoreResult<u64> {
        let item = self.get_item(pk, sk).await?;
        Ok(item.and_then(|i| i.get("itemCount").and_then(as_u64)).unwrap_or(0))
    }
}

#[async_trait]
impl Repository for DynamoStore {
    async fn next_ids(&self, tenant: &TenantId, counter: &str, n: u64) -> StoreResult<u64> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(counter_pk(tenant, counter)))
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

    async fn get(&self, key: &Key) -> StoreResult<Option<Stored>> {
        self.get_item(key.partition(), "ITEM").await?.map(|item| stored(key.clone(), item)).transpose()
    }

    async fn write(&self, writes: Vec<Write>) -> StoreResult<Vec<Stored>> {
        Write::check_all(&writes)?;
        let mut tx = Transaction::default();
        let mut saved = Vec::with_capacity(writes.len());
        for write in writes {
            let (stored, guard, check) = match write {
                Write::Create(item) => self.add_create(&mut tx, item)?,
                Write::Update(update) => self.add_update(&mut tx, update)?,
            };
            if let Some(guard) = &guard {
                tx.items.push(self.guard_write(guard)?);
            }
            if let Some(check) = &check {
                tx.items.push(self.version_check(check)?);
            }
            saved.push(stored);
        }
        self.commit(tx).await?;
        Ok(saved)
    }

    async fn delete(&self, delete: Delete) -> StoreResult<()> {
        delete.check_tenant()?;
        let removal = DynamoDelete::builder()
            .table_name(&self.table)
            .key("PK", s(delete.key.partition()))
            .key("SK", s("ITEM"))
            .condition_expression("version = :seen")
            .expression_attribute_values(":seen", number(delete.expected_version))
            .build()
            .map_err(internal)?;
        let mut tx = Transaction::default();
        tx.items.push(TransactWriteItem::builder().delete(removal).build());
        tx.items.push(self.event_put(&delete.key, delete.expected_version + 1, &delete.event)?);
        tx.count(counter_pk(delete.key.tenant(), delete.key.kind().name), "COUNTER", -1);
        tx.move_groups(&delete.key, &delete.groups, &[]);
        if let Some(check) = &delete.check {
            tx.items.push(self.version_check(check)?);
        }
        self.commit(tx).await
    }

    async fn count(&self, kind: Kind, tenant: &TenantId) -> StoreResult<u64> {
        self.count_of(counter_pk(tenant, kind.name), "COUNTER").await
    }

    fn write_units(&self) -> f64 {
        self.write_milli_units.load(Ordering::Relaxed) as f64 / 1000.0
    }

    fn items_read(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    async fn group(&self, kind: Kind, tenant: &TenantId, group: &str) -> StoreResult<Vec<Stored>> {
        let items = self.query_all("GSI2", partition::group(kind, tenant, group)).await?;
        items.into_iter().map(|item| stored_from_index(kind, tenant, item)).collect()
    }

    async fn page(&self, kind: Kind, tenant: &TenantId, index: &Page<'_>) -> StoreResult<Vec<Stored>> {
        let (name, partition) = match index.group {
            Some(group) => (format!("GSI{}", index.slot + 2), partition::group(kind, tenant, group)),
            None => ("GSI1".to_owned(), partition::list(kind, tenant)),
        };
        let range = Range { after: index.after, skip: index.skip, limit: index.limit, descending: index.descending };
        let items = self.query_index(&name, partition, range).await?;
        items.into_iter().map(|item| stored_from_index(kind, tenant, item)).collect()
    }
    async fn group_count(&self, kind: Kind, tenant: &TenantId, group: &str) -> StoreResult<u64> {
        self.count_of(group_pk(kind, tenant, group), "COUNT").await
    }

    async fn guard(&self, key: &str) -> StoreResult<Guard> {
        let item = self.get_item(format!("GUARD#{key}"), "GUARD").await?;
        let version = item.and_then(|i| i.get("version").and_then(as_u64)).unwrap_or(0);
        Ok(Guard { key: key.to_owned(), version })
    }

    async fn idempotency(&self, tenant: &TenantId, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        let pk = format!("IDEMPOTENCY#{}", partition::idempotency(tenant, key));
        let Some(mut item) = self.get_item(pk, "IDEMPOTENCY").await? else {
            return Ok(None);
        };
        item.remove("PK");
        item.remove("SK");
        let record: IdempotencyRecord = from_attributes(item)?;
        Ok((record.expires_at > now_epoch()).then_some(record))
    }

    async fn events(&self, key: &Key) -> StoreResult<Vec<AuditEvent>> {
        let items: Vec<Item> = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :event)")
            .expression_attribute_values(":pk", s(key.partition()))
            .expression_attribute_values(":event", s("EVENT#"))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(sdk)?;
        items.into_iter().map(audit_event).collect()
    }

    async fn event(&self, key: &Key, version: u64) -> StoreResult<Option<AuditEvent>> {
        self.get_item(key.partition(), &event_sk(version)).await?.map(audit_event).transpose()
    }

    async fn published(&self, tenant: &TenantId, query: &EventQuery) -> StoreResult<Vec<Recorded>> {
        match &query.resource {
            Some(key) if key.tenant() == tenant => self.resource_events(key, query).await,
            Some(_) => Ok(Vec::new()),
            None => self.tenant_events(tenant, query).await,
        }
    }

    async fn overdue(&self, kinds: &[Kind], now_ms: u64, limit: usize) -> StoreResult<Vec<(u64, Change)>> {
        let partitions = kinds.iter().flat_map(|kind| (0..WORK_SHARDS).map(|shard| work_partition(*kind, shard)));
        let queries = partitions.map(|partition| async move {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("GSI8")
                .key_condition_expression("GSI8PK = :pk AND GSI8SK < :now")
                .expression_attribute_values(":pk", s(partition))
                .expression_attribute_values(":now", s(format!("{now_ms:015}")))
                .projection_expression("PK, version, entity, GSI8SK")
                .limit(i32::try_from(limit.min(1000)).unwrap_or(1000))
                .send()
                .await
                .map_err(sdk)?;
            self.read(out.count());
            Ok::<_, StoreError>(out.items.unwrap_or_default())
        });
        let pages = futures_util::future::try_join_all(queries).await?;
        let mut due: Vec<(u64, Change)> =
            pages.iter().flatten().filter_map(|item| overdue_change(kinds, item)).collect();
        due.sort_by_key(|(lease, _)| *lease);
        Ok(due.into_iter().take(limit).collect())
    }

    async fn renew_lease(&self, key: &Key, version: u64) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(key.partition()))
            .key("SK", s("ITEM"))
            .update_expression("SET GSI8SK = :lease")
            .condition_expression("version = :seen AND attribute_exists(GSI8PK)")
            .expression_attribute_values(":lease", s(format!("{:015}", super::lease_from_now(None))))
            .expression_attribute_values(":seen", number(version))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Moved on, or done: its own write set its lease, or took it out.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(sdk(e)),
        }
    }

    async fn put_api_key(&self, record: &ApiKeyRecord) -> StoreResult<()> {
        let tenants = record.tenant_ids()?;
        let copy = to_attributes(record)?;
        let mut key = copy.clone();
        key.insert("PK".into(), s(format!("APIKEY#{}", record.hash)));
        key.insert("SK".into(), s("APIKEY"));
        key.insert("GSI1PK".into(), s("APIKEY"));
        key.insert("GSI1SK".into(), s(&record.key_id));
        // The id item makes key ids unique (a transaction refuses a second one).
        let id = Item::from([
            ("PK".to_owned(), s(format!("APIKEYID#{}", record.key_id))),
            ("SK".to_owned(), s("APIKEYID")),
            ("hash".to_owned(), s(&record.hash)),
        ]);
        let mut writes = vec![
            self.put(key, "attribute_not_exists(PK)", Item::new())?,
            self.put(id, "attribute_not_exists(PK)", Item::new())?,
        ];
        for tenant in &tenants {
            let mut listed = copy.clone();
            listed.insert("PK".into(), s(tenant_key_pk(tenant, &record.key_id)));
            listed.insert("SK".into(), s("APIKEY"));
            listed.insert("GSI1PK".into(), s(partition::api_keys(tenant)));
            listed.insert("GSI1SK".into(), s(&record.key_id));
            writes.push(self.put(listed, "attribute_not_exists(PK)", Item::new())?);
        }
        self.transact(writes, &[]).await
    }

    async fn api_key(&self, hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        self.get_item(format!("APIKEY#{hash}"), "APIKEY").await?.map(api_key_record).transpose()
    }

    async fn api_key_by_id(&self, key_id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let Some(id) = self.get_item(format!("APIKEYID#{key_id}"), "APIKEYID").await? else { return Ok(None) };
        let hash = id.get("hash").and_then(|h| h.as_s().ok()).ok_or_else(|| internal("key id without hash"))?;
        self.api_key(hash).await
    }

    async fn tenant_api_key(&self, tenant: &TenantId, key_id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        self.get_item(tenant_key_pk(tenant, key_id), "APIKEY").await?.map(api_key_record).transpose()
    }

    async fn api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        self.query_all("GSI1", "APIKEY".to_owned()).await?.into_iter().map(api_key_record).collect()
    }

    async fn tenant_api_keys(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ApiKeyRecord>> {
        let range = Range { after, skip: 0, limit, descending: false };
        let items = self.query_index("GSI1", partition::api_keys(tenant), range).await?;
        items.into_iter().map(api_key_record).collect()
    }
    async fn revoke_api_key(&self, key: &ApiKeyRecord, at: i64) -> StoreResult<()> {
        let update = |pk: String, condition: &str, values: Item| -> StoreResult<TransactWriteItem> {
            let update = DynamoUpdate::builder()
                .table_name(&self.table)
                .key("PK", s(pk))
                .key("SK", s("APIKEY"))
                .update_expression("SET revokedAt = :at")
                .condition_expression(condition)
                .set_expression_attribute_values(Some(values))
                .build()
                .map_err(internal)?;
            Ok(TransactWriteItem::builder().update(update).build())
        };
        // The record stores an unset time as NULL: set it only while it is absent or NULL, so that
        // revoking again keeps the first time (the whole transaction is then refused).
        let unrevoked =
            "attribute_exists(PK) AND (attribute_not_exists(revokedAt) OR attribute_type(revokedAt, :null))";
        let values = Item::from([(":at".to_owned(), number(at)), (":null".to_owned(), s("NULL"))]);
        let mut writes = vec![update(format!("APIKEY#{}", key.hash), unrevoked, values)?];
        for tenant in key.tenant_ids()? {
            let values = Item::from([(":at".to_owned(), number(at))]);
            writes.push(update(tenant_key_pk(&tenant, &key.key_id), "attribute_exists(PK)", values)?);
        }
        match self.transact(writes, &[]).await {
            Ok(()) => Ok(()),
            // Refused whole: revoked already (the first time stays), or a lost race to retry.
            Err(StoreError::Conflict) => match self.api_key(&key.hash).await? {
                Some(stored) if stored.revoked_at.is_some() => Ok(()),
                _ => Err(StoreError::Conflict),
            },
            Err(e) => Err(e),
        }
    }
}

fn tenant_key_pk(tenant: &TenantId, key_id: &str) -> String {
    format!("{}#{key_id}", partition::api_keys(tenant))
}

/// The one mapper from a resource item to what the repository returns.
fn stored(key: Key, mut item: Item) -> StoreResult<Stored> {
    let version = item.get("version").and_then(as_u64).ok_or_else(|| internal("item without version"))?;
    let text = |value: AttributeValue| value.as_s().cloned().map_err(|_| internal("a text attribute is not text"));
    let body = item.remove("body").map(text).transpose()?.ok_or_else(|| internal("item without body"))?;
    let state = item.remove("workerState").map(text).transpose()?;
    Ok(Stored { key, version, body, state })
}

/// A resource item read from an index: its key from its PK, which must be of `kind` in `tenant`.
fn stored_from_index(kind: Kind, tenant: &TenantId, item: Item) -> StoreResult<Stored> {
    let pk = item.get("PK").and_then(|v| v.as_s().ok()).ok_or_else(|| internal("item without PK"))?;
    let key =
        Key::parse(pk, &[kind]).filter(|k| k.tenant() == tenant).ok_or_else(|| internal("foreign item in index"))?;
    stored(key, item)
}

/// A work-index entry of one of `kinds` as its lease and the change that re-drives it (an entry
/// of another kind, or one that does not read, is left to the jobs that know it).
fn overdue_change(kinds: &[Kind], item: &Item) -> Option<(u64, Change)> {
    let pk = item.get("PK")?.as_s().ok()?;
    let lease = item.get("GSI8SK")?.as_s().ok()?.parse().ok()?;
    let version = item.get("version").and_then(as_u64)?;
    let key = Key::parse(pk, kinds)?;
    Some((lease, Change { key, version, work_pending: true }))
}

/// The sort key of an item's audit event of `version`.
fn event_sk(version: u64) -> String {
    format!("EVENT#{version:020}")
}

/// An audit event from its item.
fn audit_event(mut item: Item) -> StoreResult<AuditEvent> {
    for name in ["PK", "SK", "expiresAt", "GSI9PK", "GSI9SK", "GSI10PK", "GSI10SK"] {
        item.remove(name);
    }
    from_attributes(item)
}

/// A published event from its audit item, of the resource `key`.
fn recorded(key: Key, item: Item) -> StoreResult<Recorded> {
    let sk = item.get("SK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    let version =
        sk.strip_prefix("EVENT#").and_then(|v| v.parse().ok()).ok_or_else(|| internal("event without version"))?;
    Ok(Recorded { key, version, event: audit_event(item)? })
}

fn api_key_record(mut item: Item) -> StoreResult<ApiKeyRecord> {
    for name in ["PK", "SK", "GSI1PK", "GSI1SK"] {
        item.remove(name);
    }
    from_attributes(item)
}

fn counter_pk(tenant: &TenantId, name: &str) -> String {
    format!("COUNTER#{}", partition::counter(tenant, name))
}

fn group_pk(kind: Kind, tenant: &TenantId, group: &str) -> String {
    format!("GROUP#{}", partition::group(kind, tenant, group))
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

fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "ProvisionedThroughputExceededException"
            | "ProvisionedThroughputExceeded"
            | "ThrottlingException"
            | "ThrottlingError"
            | "RequestLimitExceeded"
    )
}

/// Throttling is "throttled" (429); unreachable endpoints and DynamoDB's own 500s are
/// "unavailable" (503); everything else is internal.
fn sdk<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(error: SdkError<E, R>) -> StoreError {
    if error.code().is_some_and(is_throttling) {
        return StoreError::Throttled(format!("{error:?}"));
    }
    match error {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => StoreError::Unavailable(format!("{error:?}")),
        _ if error.code() == Some("InternalServerError") => StoreError::Unavailable(format!("{error:?}")),
        _ => StoreError::Internal(format!("{error:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::key::{Id, IdType, TenantId};

    #[test]
    fn the_trust_store_holds_the_five_amazon_roots_and_a_client_builds_on_it() {
        let pem = std::str::from_utf8(AMAZON_TRUST_SERVICES).expect("PEM is text");
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 5);
        // Building a client builds its TLS connector, which parses every root (and panics on a
        // broken one): this is what a function's init does.
        for https_endpoint in [false, true] {
            let config = aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .region(aws_sdk_dynamodb::config::Region::new("eu-west-1"))
                .http_client(http_client(https_endpoint))
                .build();
            let _ = Client::from_conf(config);
        }
    }

    #[test]
    fn dynamodb_throttling_codes_are_throttling_and_nothing_else_is() {
        for code in ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"] {
            assert!(is_throttling(code), "{code}");
        }
        for code in ["ConditionalCheckFailedException", "ValidationException", "InternalServerError", ""] {
            assert!(!is_throttling(code), "{code}");
        }
    }

    #[test]
    fn a_resource_item_keeps_its_body_apart_from_the_store_attributes() {
        const KIND: Kind = Kind::new("THING", IdType::Uuid);
        let tenant = TenantId::parse("acme").unwrap();
        let key = Key::new(KIND, tenant.clone(), Id::Uuid(uuid::Uuid::new_v4())).unwrap();
        // A resource with fields named like the store's attributes.
        let body = r#"{"version":"mine","PK":"x","entity":1,"amount":999999999999.123456}"#;
        let item = DynamoStore::resource_item(
            &key,
            "o",
            7,
            body,
            &[Some("G".into()), None, Some("F".into())],
            Some(1),
            &Some("{}".into()),
        );
        assert_eq!(item["version"], number(7));
        assert_eq!(item["PK"], s(key.partition()));
        assert!(item["GSI1PK"].as_s().unwrap().starts_with("T#acme#THING"));
        assert_eq!(item["GSI2PK"], s("T#acme#THING#G"));
        assert!(!item.contains_key("GSI3PK"), "an empty slot leaves its index");
        assert_eq!((&item["GSI4PK"], &item["GSI4SK"]), (&s("T#acme#THING#F"), &s("o")));
        let back = stored_from_index(KIND, &tenant, item).unwrap();
        assert_eq!((back.key, back.version, back.body.as_str(), back.state.as_deref()), (key, 7, body, Some("{}")));
    }
}
