//! The repository: what the handlers and the worker need from storage, shaped by the domain.
//! Two implementations with the same semantics: [`memory::MemoryStore`] (embedded, for the dev
//! server and tests) and [`dynamo::DynamoStore`] (one DynamoDB table, single-table design).
//! `tests/store_contract.rs` runs one contract suite against both. Handlers and the worker use
//! the typed facade [`repo::Repo`] on top, never raw JSON.
//!
//! Every item is addressed by a typed [`Key`] that carries its tenant; every index partition,
//! counter, guard and idempotency record starts with its tenant ([`TenantId::prefix`]), and a
//! transaction never spans two tenants ([`Write::check_all`]). Handlers and the worker reach the
//! store only through [`repo::Tenant`], one tenant's view of it, so no call site can name another
//! tenant's items. API keys are the one record found without a tenant (by the hash of the key,
//! as the authorizer looks it up), and each is listed under each tenant it carries. A resource is stored as its JSON text in one attribute
//! (`body`), apart from the store's own attributes, so no field of a resource can collide with
//! `version`, the keys or the kind; and the size bound is checked on that same text by both
//! stores ([`check_size`]).

pub mod dynamo;
pub mod faults;
pub mod memory;
pub mod repo;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::identity::Principal;
use crate::domain::key::{Key, Kind, TenantId};

/// A resource as stored: its key, the version every write is conditional on, its JSON text, and
/// the worker's private state beside it (never shown to clients).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub key: Key,
    pub version: u64,
    pub body: String,
    pub state: Option<String>,
}

/// A write that also depends on another item staying at the version that was read (a bill
/// joins a run only while the run is still as it was read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionCheck {
    pub key: Key,
    pub version: u64,
}

/// A lock item guarding a group invariant (no overlapping runs in a billing cycle): a write that
/// depends on what it read of the group carries the lock's version and bumps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    pub key: String,
    pub version: u64,
}

/// The guard key of one group of one kind, within its tenant.
pub fn guard_key(kind: Kind, tenant: &TenantId, group: &str) -> String {
    format!("{}{}#{group}", tenant.prefix(), kind.name)
}

/// Who did what to a resource; written in the same transaction as the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// RFC 3339 time of the change.
    pub at: String,
    /// The user, or `None` for the system (the worker).
    pub by: Option<u64>,
    pub action: String,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub fields: Vec<String>,
    /// The published event's type, when the change is one ([`crate::domain::event::event_type`];
    /// set by [`repo::Repo`] as it builds the write): the event publisher's stream filter matches
    /// on it, and `GET /events` lists only these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// A published event's resource, JSON text, after the change (before it, for a deletion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// A published change's old values of the fields it changed, JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

impl AuditEvent {
    /// An event now, by `by` (`None`: the system).
    pub fn new(by: Option<u64>, action: impl Into<String>) -> Self {
        Self {
            at: now_rfc3339(),
            by,
            action: action.into(),
            from_status: None,
            to_status: None,
            fields: Vec::new(),
            event_type: None,
            object: None,
            previous: None,
        }
    }

    /// The bytes the published event adds to its audit event's item.
    pub fn published_bytes(&self) -> usize {
        self.object.as_ref().map_or(0, String::len) + self.previous.as_ref().map_or(0, String::len)
    }

    /// The event as it is published, when it is one: of the item `key` at `version`.
    pub fn told<'a>(&'a self, key: &'a Key, version: u64) -> Option<crate::domain::event::Told<'a>> {
        Some(crate::domain::event::Told {
            kind: key.kind(),
            tenant: key.tenant(),
            id: key.id(),
            version,
            event_type: self.event_type.as_deref()?,
            time: &self.at,
            object: self.object.as_deref()?,
            previous: self.previous.as_deref(),
        })
    }

    pub fn with_change(mut self, from_status: Option<String>, to_status: Option<String>, fields: Vec<String>) -> Self {
        self.from_status = from_status;
        self.to_status = to_status;
        self.fields = fields;
        self
    }

    /// With what a run's write changed.
    pub fn with_changes(self, changes: crate::domain::bill_run::Changes) -> Self {
        self.with_change(Some(changes.from_status), Some(changes.to_status), changes.fields)
    }
}

/// A published event as stored: the audit event of version `version` of the item `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub key: Key,
    pub version: u64,
    pub event: AuditEvent,
}

impl Recorded {
    /// The event's JSON ([`crate::domain::event::Told::to_json`]); `None` for an audit event that
    /// is not published.
    pub fn to_json(&self) -> Option<serde_json::Value> {
        self.event.told(&self.key, self.version).map(|told| told.to_json())
    }

    /// Its place in a tenant's event lists: its time in epoch milliseconds (15 digits), then its
    /// version and key, so that events of one millisecond keep one order.
    pub fn order(&self) -> String {
        event_order(&self.event.at, &self.key, self.version)
    }
}

/// The order key of the event of `key` at `version`, written at `at` (RFC 3339).
pub fn event_order(at: &str, key: &Key, version: u64) -> String {
    let ms = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(0);
    format!("{ms:015}#{}#{version:020}", key.partition())
}

/// Which of a tenant's published events a [`Repository::published`] reads, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// One resource's events (its own partition), or else all of the tenant's.
    pub resource: Option<Key>,
    pub event_type: Option<String>,
    /// Only events at or after this many epoch milliseconds.
    pub after_ms: Option<u64>,
    /// Only events before this many epoch milliseconds.
    pub before_ms: Option<u64>,
    /// The [`Recorded::order`] to start after (a cursor).
    pub start_after: Option<String>,
    pub limit: usize,
}

impl EventQuery {
    /// Whether an event passes the type and time filters (those the query's index does not serve).
    pub fn admits(&self, recorded: &Recorded) -> bool {
        let order = recorded.order();
        let ms: u64 = order[..15].parse().unwrap_or(0);
        recorded.event.event_type.is_some()
            && self.event_type.as_ref().is_none_or(|t| recorded.event.event_type.as_ref() == Some(t))
            && self.after_ms.is_none_or(|after| ms >= after)
            && self.before_ms.is_none_or(|before| ms < before)
            && self.start_after.as_ref().is_none_or(|cursor| order < *cursor)
    }
}

/// How long published events are kept at least (their audit items' TTL): `EVENT_RETENTION_DAYS`,
/// default 30.
pub fn event_retention_secs() -> i64 {
    static DAYS: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let days = DAYS.get_or_init(|| {
        std::env::var("EVENT_RETENTION_DAYS").ok().and_then(|v| v.parse().ok()).filter(|d| *d >= 30).unwrap_or(30)
    });
    days * 86_400
}

/// A create's response, kept for `Idempotency-Key` replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdempotencyRecord {
    /// The key, scoped by caller and route (the store adds the item's tenant).
    pub key: String,
    /// SHA-256 of the request body: the same key with another body is 422.
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
    /// Unix seconds after which the record is void (the table's TTL attribute).
    pub expires_at: i64,
}

/// A new resource, written with its audit event, its counters, its guard and its idempotency
/// record (in the item's tenant) in one transaction.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub key: Key,
    /// Its place in the kind's list and group indexes (`Resource::order`).
    pub order: String,
    pub body: String,
    /// Private state kept beside it (an endpoint's secrets), never shown.
    pub state: Option<String>,
    /// The groups it is in, by slot ([`Resource::groups`](crate::domain::resource::Resource::groups)):
    /// slot `i` is the table's GSI`i+2`, each group with a kept count.
    pub groups: Vec<Option<String>>,
    pub work_pending: bool,
    /// When its pending work is due, where not now plus the work lease ([`Resource::lease_ms`](crate::domain::resource::Resource::lease_ms)).
    pub lease_ms: Option<u64>,
    pub guard: Option<Guard>,
    pub check: Option<VersionCheck>,
    pub event: AuditEvent,
    pub idempotency: Option<IdempotencyRecord>,
}

/// One change of a transaction: a new resource or a change to an existing one.
#[derive(Debug, Clone)]
pub enum Write {
    Create(NewItem),
    Update(Update),
}

impl Write {
    pub fn key(&self) -> &Key {
        match self {
            Self::Create(item) => &item.key,
            Self::Update(update) => &update.key,
        }
    }

    /// The stored form the size bound applies to.
    fn stored_form(&self) -> (&str, Option<&str>) {
        match self {
            Self::Create(item) => (&item.body, item.state.as_deref()),
            Self::Update(update) => (&update.body, update.state.as_deref()),
        }
    }

    fn event(&self) -> &AuditEvent {
        match self {
            Self::Create(item) => &item.event,
            Self::Update(update) => &update.event,
        }
    }

    fn guard(&self) -> Option<&Guard> {
        match self {
            Self::Create(item) => item.guard.as_ref(),
            Self::Update(update) => update.guard.as_ref(),
        }
    }

    fn check(&self) -> Option<&VersionCheck> {
        match self {
            Self::Create(item) => item.check.as_ref(),
            Self::Update(update) => update.check.as_ref(),
        }
    }

    /// Refuses an empty or oversized transaction, one that names an item twice (DynamoDB refuses
    /// those too), one that reaches into a second tenant (an item, a checked item or a guard of
    /// another tenant than the first item's) and one whose resource would pass the size bound,
    /// before anything is written.
    pub fn check_all(writes: &[Write]) -> StoreResult<()> {
        let items = transaction_items(writes);
        if writes.is_empty() || items > MAX_TRANSACTION_ITEMS {
            return Err(StoreError::Internal(format!(
                "a write takes 1 to {MAX_TRANSACTION_ITEMS} items, not {items} ({} changes)",
                writes.len()
            )));
        }
        let tenant = writes[0].key().tenant();
        let prefix = tenant.prefix();
        let foreign = writes.iter().any(|w| {
            w.key().tenant() != tenant
                || w.check().is_some_and(|c| c.key.tenant() != tenant)
                || w.guard().is_some_and(|g| !g.key.starts_with(&prefix))
        });
        if foreign {
            return Err(StoreError::Internal("a write reaches into a second tenant".into()));
        }
        let mut keys: Vec<&Key> = writes.iter().map(Write::key).collect();
        keys.sort();
        if keys.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(StoreError::Internal("a write names one item twice".into()));
        }
        for write in writes {
            let (body, state) = write.stored_form();
            let previous = match write {
                Write::Create(_) => 0,
                Write::Update(update) => update.previous_size,
            };
            check_size(body, state, write.event().by.is_some().then_some(previous))?;
        }
        Ok(())
    }
}

/// A change to an existing resource, conditional on `expected_version`.
#[derive(Debug, Clone)]
pub struct Update {
    pub key: Key,
    /// Its place in the indexes, as it was created.
    pub order: String,
    pub expected_version: u64,
    pub body: String,
    /// The item's groups after the change, by slot.
    pub groups: Vec<Option<String>>,
    /// Its groups before: where one differs, the store moves the item and both groups' counts.
    pub previous_groups: Vec<Option<String>>,
    /// The length of the stored form it replaces (its body and state): a client's change may keep
    /// an item the worker took past the client bound at that size, but not grow it.
    pub previous_size: usize,
    pub work_pending: bool,
    /// As [`NewItem::lease_ms`].
    pub lease_ms: Option<u64>,
    pub guard: Option<Guard>,
    pub check: Option<VersionCheck>,
    /// The worker's private state to keep with the item (`None` clears it).
    pub state: Option<String>,
    pub event: AuditEvent,
}

impl Update {
    /// The bytes it writes: the resource's stored form and what its published event carries (a
    /// step keeps the sum within [`crate::worker::STEP_BYTES`]).
    pub fn bytes(&self) -> usize {
        self.body.len() + self.state.as_ref().map_or(0, String::len) + self.event.published_bytes()
    }
}

/// The removal of a resource, conditional on `expected_version`, with its audit event.
#[derive(Debug, Clone)]
pub struct Delete {
    pub key: Key,
    /// Its place in the indexes, so that the embedded store can drop it there.
    pub order: String,
    pub expected_version: u64,
    /// The item's groups, by slot, so that their counts follow.
    pub groups: Vec<Option<String>>,
    pub check: Option<VersionCheck>,
    pub event: AuditEvent,
}

impl Delete {
    /// Refuses a removal whose checked item is another tenant's.
    pub fn check_tenant(&self) -> StoreResult<()> {
        match &self.check {
            Some(check) if check.key.tenant() != self.key.tenant() => {
                Err(StoreError::Internal("a delete reaches into a second tenant".into()))
            }
            _ => Ok(()),
        }
    }
}

/// A committed write, as the table's stream (or the dev server's channel) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: Key,
    pub version: u64,
    pub work_pending: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A condition failed: another writer changed the item (or the guard) first.
    #[error("conditional write lost to a concurrent change")]
    Conflict,
    /// The idempotency key was stored by a concurrent request first.
    #[error("idempotency key already used")]
    IdempotencyKeyTaken,
    /// The resource's stored form would pass its bound (413): [`MAX_CLIENT_ITEM_BYTES`] for a
    /// client's write, [`MAX_ITEM_BYTES`] for the worker's.
    #[error("the stored resource would be {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    /// The store throttles the request (429 with Retry-After).
    #[error("store throttled: {0}")]
    Throttled(String),
    /// The store cannot be reached (503 with Retry-After).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a corrupt item (500, the cause logged only).
    #[error("store failure: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The largest stored form of a resource ([`crate::domain::MAX_RESOURCE_BYTES`]): the bound of
/// the worker's writes.
pub const MAX_ITEM_BYTES: usize = crate::domain::MAX_RESOURCE_BYTES;
/// The bound of a client's writes ([`crate::domain::MAX_CLIENT_BYTES`]): the worker's headroom
/// below [`MAX_ITEM_BYTES`].
pub const MAX_CLIENT_ITEM_BYTES: usize = crate::domain::MAX_CLIENT_BYTES;

/// Slack for a client's change of an item already past the client bound: what its timestamps'
/// digits may add (a change that keeps the item's content still rewrites `updatedAt`).
const CLIENT_CHANGE_SLACK: usize = 64;

/// Refuses a resource whose stored form would pass its bound: [`MAX_ITEM_BYTES`] when the worker
/// writes it; when a client does (its event names a user; `client` is the size the write
/// replaces, 0 for a create), [`MAX_CLIENT_ITEM_BYTES`], or for an item the worker already took
/// past it, its size then (and a few bytes of timestamps): a client never grows an item into the
/// worker's headroom, and can still change one that is in it. Both stores call this, so they
/// agree on every size.
pub fn check_size(body: &str, state: Option<&str>, client: Option<usize>) -> StoreResult<()> {
    let size = body.len() + state.map_or(0, str::len);
    let limit = match client {
        Some(previous) => MAX_CLIENT_ITEM_BYTES.max(previous.saturating_add(CLIENT_CHANGE_SLACK)).min(MAX_ITEM_BYTES),
        None => MAX_ITEM_BYTES,
    };
    if size > limit {
        return Err(StoreError::TooLarge { size, limit });
    }
    Ok(())
}

#[async_trait]
pub trait Repository: Send + Sync {
    /// Reserves `n` (at least 1) fresh numbers of a named counter of `tenant` (1, 2, 3, ...; never
    /// handed out twice) and returns the last: the range is `last - n + 1 ..= last`.
    async fn next_ids(&self, tenant: &TenantId, counter: &str, n: u64) -> StoreResult<u64>;
    async fn get(&self, key: &Key) -> StoreResult<Option<Stored>>;
    /// Several creates and changes of one tenant in one transaction (at most [`MAX_WRITE`], each
    /// item once): all or none; what was stored comes back in the order of `writes`. Conflict when
    /// a created key exists, a stored version is not the expected one, a guard moved or a checked
    /// item changed; IdempotencyKeyTaken when a create's key is taken in its tenant; TooLarge over
    /// the bound.
    async fn write(&self, writes: Vec<Write>) -> StoreResult<Vec<Stored>>;
    /// One create: [`Repository::write`] of one.
    async fn create(&self, item: NewItem) -> StoreResult<Stored> {
        self.write(vec![Write::Create(item)]).await?.pop().ok_or_else(|| StoreError::Internal("empty write".into()))
    }
    /// One change: [`Repository::write`] of one.
    async fn update(&self, update: Update) -> StoreResult<Stored> {
        self.write(vec![Write::Update(update)]).await?.pop().ok_or_else(|| StoreError::Internal("empty write".into()))
    }
    /// Removes a resource (its audit trail stays). Conflict as for `write`.
    async fn delete(&self, delete: Delete) -> StoreResult<()>;
    /// How many items of `kind` `tenant` has (kept by creates and deletes; one read).
    async fn count(&self, kind: Kind, tenant: &TenantId) -> StoreResult<u64>;
    /// Every member of a small group (e.g. the runs of one billing cycle), in index order.
    async fn group(&self, kind: Kind, tenant: &TenantId, group: &str) -> StoreResult<Vec<Stored>>;
    /// At most `limit` items of `kind` of `tenant` (of one `group`, or all), in index order
    /// (descending if asked), starting after the order key `after` and past `skip` items (whose
    /// keys alone are read): the items and keys it reads are those and no others.
    async fn page(&self, kind: Kind, tenant: &TenantId, index: &Page<'_>) -> StoreResult<Vec<Stored>>;
    /// How many members a group has (kept by creates and deletes; one read).
    async fn group_count(&self, kind: Kind, tenant: &TenantId, group: &str) -> StoreResult<u64>;
    /// The current version of a guard (0 when it was never written).
    async fn guard(&self, key: &str) -> StoreResult<Guard>;
    /// A live (unexpired) idempotency record of `tenant`.
    async fn idempotency(&self, tenant: &TenantId, key: &str) -> StoreResult<Option<IdempotencyRecord>>;
    /// How many items and index keys this store has read since it was made (what the bench
    /// reports per request).
    fn items_read(&self) -> u64;
    /// Write units the store reported for the transactions it has written (DynamoDB's
    /// `ReturnConsumedCapacity`, what the bench reports per bill); 0 where it reports none (the
    /// embedded store).
    fn write_units(&self) -> f64 {
        0.0
    }
    /// The audit trail of one resource, oldest first.
    async fn events(&self, key: &Key) -> StoreResult<Vec<AuditEvent>>;
    /// The audit event of version `version` of `key` (one read by key), when it is still kept.
    async fn event(&self, key: &Key, version: u64) -> StoreResult<Option<AuditEvent>>;
    /// At most `query.limit` of `tenant`'s published events, newest first: one Query of the
    /// resource's partition, of the tenant's events of one type, or of all its events.
    async fn published(&self, tenant: &TenantId, query: &EventQuery) -> StoreResult<Vec<Recorded>>;
    /// At most `limit` items of `kinds` with pending work whose lease passed before `now_ms`
    /// (epoch milliseconds), oldest lease first, each as the change that re-drives it: from the
    /// work index (every write of an item with pending work sets its lease to the write's time
    /// plus [`work_lease`]; an item without pending work is not in it), across tenants, never a
    /// Scan. Each with its lease (epoch ms).
    async fn overdue(&self, kinds: &[Kind], now_ms: u64, limit: usize) -> StoreResult<Vec<(u64, Change)>>;
    /// Pushes the lease of an item still at `version` with pending work to now plus
    /// [`work_lease`] (the sweeper's back-off for work it could not move); nothing otherwise.
    async fn renew_lease(&self, key: &Key, version: u64) -> StoreResult<()>;
    /// Stores an API key (its hash, never the key), listed under each of its tenants (at most
    /// [`MAX_KEY_TENANTS`], each a [`TenantId`]); Conflict when the hash or id exists.
    async fn put_api_key(&self, record: &ApiKeyRecord) -> StoreResult<()>;
    /// The key with this hash, revoked and expired ones included (the authorizer's lookup).
    async fn api_key(&self, hash: &str) -> StoreResult<Option<ApiKeyRecord>>;
    /// The key with this id, whatever its tenants (the operator's tool).
    async fn api_key_by_id(&self, key_id: &str) -> StoreResult<Option<ApiKeyRecord>>;
    /// The key with this id when it is one of `tenant`'s.
    async fn tenant_api_key(&self, tenant: &TenantId, key_id: &str) -> StoreResult<Option<ApiKeyRecord>>;
    /// Every API key, in key id order (a Query of their index partition; the operator's tool).
    async fn api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>>;
    /// At most `limit` of `tenant`'s keys in key id order, after the key id `after` (one Query).
    async fn tenant_api_keys(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ApiKeyRecord>>;
    /// Revokes `key` at `at` (unix seconds) everywhere it is listed; revoking again keeps the first
    /// time.
    async fn revoke_api_key(&self, key: &ApiKeyRecord, at: i64) -> StoreResult<()>;
}

/// Where a [`Repository::page`] reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Page<'a> {
    /// One group's members (of `slot`'s index), or else every item of the kind of the tenant
    /// (GSI1).
    pub group: Option<&'a str>,
    /// The group slot (0: the resource's own group, GSI2; `i`: GSI`i+2`).
    pub slot: usize,
    /// Items to pass over first (their keys only are read).
    pub skip: u64,
    /// The order key to start after.
    pub after: Option<&'a str>,
    pub limit: usize,
    pub descending: bool,
}

/// An API key as stored: never the key, only its SHA-256 hash, with a separate random id to
/// name it by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRecord {
    pub key_id: String,
    pub hash: String,
    pub caller: Principal,
    pub description: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which the key fails; `None`: never. Stored as `keyExpiresAt`, not the
    /// table's TTL attribute, so that an expired key stays listable.
    #[serde(rename = "keyExpiresAt")]
    pub expires_at: Option<i64>,
    /// Unix seconds it was revoked at; a revoked key fails.
    pub revoked_at: Option<i64>,
}

impl ApiKeyRecord {
    /// Whether the key is accepted at `now` (unix seconds).
    pub fn valid_at(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }
}

/// Most tenants one API key may carry: each is an index item written with the key.
pub const MAX_KEY_TENANTS: usize = 16;

impl ApiKeyRecord {
    /// The key's tenants, each a valid [`TenantId`], at least one and at most
    /// [`MAX_KEY_TENANTS`]: the store lists the key under each.
    /// Each once, in order.
    pub fn tenant_ids(&self) -> StoreResult<Vec<TenantId>> {
        let tenants = &self.caller.tenants;
        if tenants.is_empty() || tenants.len() > MAX_KEY_TENANTS {
            return Err(StoreError::Internal(format!("an API key has 1 to {MAX_KEY_TENANTS} tenants")));
        }
        let mut ids = tenants
            .iter()
            .map(|t| TenantId::parse(t).ok_or_else(|| StoreError::Internal(format!("{t:?} is not a tenant id"))))
            .collect::<StoreResult<Vec<_>>>()?;
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}

/// The groups an item leaves (-1) and enters (+1) when its groups, by slot, go from `before` to
/// `after` (a create from none, a delete to none).
pub fn group_moves(before: &[Option<String>], after: &[Option<String>]) -> Vec<(String, i64)> {
    let at = |groups: &[Option<String>], slot: usize| groups.get(slot).cloned().flatten();
    let mut moves = Vec::new();
    for slot in 0..before.len().max(after.len()) {
        let (was, is) = (at(before, slot), at(after, slot));
        if was != is {
            moves.extend(was.map(|group| (group, -1)));
            moves.extend(is.map(|group| (group, 1)));
        }
    }
    moves
}

/// Most items one transaction may write: DynamoDB's limit ([`transaction_items`] counts them).
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// The items a transaction of `writes` puts in DynamoDB: each change's item and its event, a
/// create's idempotency record, each guard and version check, and one count item per kind counter
/// and per group whose count it changes. Both stores refuse a write past
/// [`MAX_TRANSACTION_ITEMS`]; the worker fills a step up to it.
pub fn transaction_items(writes: &[Write]) -> usize {
    let mut counts: std::collections::BTreeMap<(Kind, &TenantId, Option<String>), i64> =
        std::collections::BTreeMap::new();
    let mut items = 0;
    for write in writes {
        let key = write.key();
        items += 2 + usize::from(write.guard().is_some()) + usize::from(write.check().is_some());
        let moves = match write {
            Write::Create(item) => {
                items += usize::from(item.idempotency.is_some());
                *counts.entry((key.kind(), key.tenant(), None)).or_default() += 1;
                group_moves(&[], &item.groups)
            }
            Write::Update(update) => group_moves(&update.previous_groups, &update.groups),
        };
        for (group, by) in moves {
            *counts.entry((key.kind(), key.tenant(), Some(group))).or_default() += by;
        }
    }
    items + counts.values().filter(|by| **by != 0).count()
}
/// Group slots a resource may have: GSI2 to GSI7.
pub const GROUP_SLOTS: usize = 6;

pub type SharedRepository = Arc<dyn Repository>;

/// Unix seconds now.
/// How long a step of async work may take before the sweeper re-drives it: `WORK_LEASE_MS`
/// (default 30,000), read once per process.
pub fn work_lease() -> std::time::Duration {
    static LEASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let ms = LEASE.get_or_init(|| std::env::var("WORK_LEASE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(30_000));
    std::time::Duration::from_millis(*ms)
}

/// Now, in epoch milliseconds.
pub fn now_ms() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// The lease an item with pending work gets when it is written now, unless its resource names
/// one (`due`).
pub fn lease_from_now(due: Option<u64>) -> u64 {
    due.unwrap_or_else(|| now_ms().saturating_add(u64::try_from(work_lease().as_millis()).unwrap_or(u64::MAX)))
}

pub fn now_epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// RFC 3339 now, for audit events.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The index partitions both stores derive from keys, so that they agree on every one.
pub(crate) mod partition {
    use super::*;

    /// The list partition of a kind of a tenant.
    pub fn list(kind: Kind, tenant: &TenantId) -> String {
        format!("{}{}", tenant.prefix(), kind.name)
    }

    /// The partition of one group of a kind of a tenant.
    pub fn group(kind: Kind, tenant: &TenantId, group: &str) -> String {
        format!("{}{}#{group}", tenant.prefix(), kind.name)
    }

    /// A named counter of a tenant.
    pub fn counter(tenant: &TenantId, name: &str) -> String {
        format!("{}{name}", tenant.prefix())
    }

    /// An idempotency key of a tenant.
    pub fn idempotency(tenant: &TenantId, key: &str) -> String {
        format!("{}{key}", tenant.prefix())
    }

    /// A tenant's published events (all, or of one type).
    pub fn events(tenant: &TenantId, event_type: Option<&str>) -> String {
        match event_type {
            Some(t) => format!("{}EVENT#{t}", tenant.prefix()),
            None => format!("{}EVENT", tenant.prefix()),
        }
    }

    /// The list partition of a tenant's API keys.
    pub fn api_keys(tenant: &TenantId) -> String {
        format!("{}APIKEY", tenant.prefix())
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::resource::Resource;

    /// The store's own records take these names in a tenant's keys (`T#t#APIKEY#<key id>`): no
    /// resource kind may be named so, and no two kinds alike.
    #[test]
    fn kind_names_are_unique_and_never_the_stores_own() {
        use crate::domain::{bill, bill_run, billing_run, customer_bill, webhook};
        let mut names = vec![
            bill_run::BillRun::KIND.name,
            bill_run::AdhocBillRun::KIND.name,
            bill::Bill::KIND.name,
            billing_run::BillingRun::KIND.name,
            customer_bill::CustomerBill::KIND.name,
            customer_bill::OnDemand::KIND.name,
            customer_bill::AppliedRate::KIND.name,
            customer_bill::AccountBilling::KIND.name,
            crate::domain::segment::Segment::KIND.name,
            webhook::WebhookEndpoint::KIND.name,
            webhook::HubSubscription::KIND.name,
            webhook::Delivery::KIND.name,
        ];
        let own = ["APIKEY", "APIKEYID", "COUNTER", "GROUP", "GUARD", "IDEMPOTENCY", "EVENT", "WORK"];
        assert!(names.iter().all(|n| !own.contains(n)));
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
    }
}
