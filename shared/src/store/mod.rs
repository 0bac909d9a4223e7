//! The repository: what the handlers and the worker need from storage, shaped by the domain.
//! Two implementations with the same semantics: [`memory::MemoryStore`] (embedded, for the dev
//! server and tests) and [`dynamo::DynamoStore`] (one DynamoDB table, single-table design).
//! `tests/store_contract.rs` runs one contract suite against both.

pub mod dynamo;
pub mod memory;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::list::ListQuery;

/// The kinds of stored resource. Each has its own id counter, list index partition and events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Entity {
    BillRun,
    AdhocBillRun,
    Bill,
}

impl Entity {
    pub const ALL: [Self; 3] = [Self::BillRun, Self::AdhocBillRun, Self::Bill];

    pub fn name(self) -> &'static str {
        match self {
            Self::BillRun => "BILL_RUN",
            Self::AdhocBillRun => "ADHOC_BILL_RUN",
            Self::Bill => "BILL",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// A resource as stored: its id, the version every write is conditional on, its JSON, and the
/// stage worker's private state beside it (never shown to clients).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub id: u64,
    pub version: u64,
    pub doc: Value,
    pub state: Option<Value>,
}

/// A write that also depends on another item staying at the version that was read (a bill
/// joins a run only while the run is still as it was read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionCheck {
    pub entity: Entity,
    pub id: u64,
    pub version: u64,
}

/// A lock item guarding a group invariant (no overlapping runs in a billing cycle): a write that
/// depends on what it read of the group carries the lock's version and bumps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    pub key: String,
    pub version: u64,
}

/// Who did what to a resource; written in the same transaction as the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// RFC 3339 time of the change.
    pub at: String,
    /// The user, or `None` for the system (the stage worker).
    pub by: Option<u64>,
    pub action: String,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub fields: Vec<String>,
}

/// A create's response, kept for `Idempotency-Key` replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdempotencyRecord {
    /// The key, scoped by caller and route.
    pub key: String,
    /// SHA-256 of the request body: the same key with another body is 422.
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
    /// Unix seconds after which the record is void (the table's TTL attribute).
    pub expires_at: i64,
}

/// A new resource, written with its audit event, its counter, its guard and its idempotency record
/// in one transaction.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub entity: Entity,
    pub id: u64,
    pub doc: Value,
    /// The secondary group it belongs to (e.g. its billing cycle), queried by [`Repository::group`].
    pub group: Option<String>,
    pub work_pending: bool,
    pub guard: Option<Guard>,
    pub check: Option<VersionCheck>,
    pub event: AuditEvent,
    pub idempotency: Option<IdempotencyRecord>,
}

/// A change to an existing resource, conditional on `expected_version`.
#[derive(Debug, Clone)]
pub struct Update {
    pub entity: Entity,
    pub id: u64,
    pub expected_version: u64,
    pub doc: Value,
    pub group: Option<String>,
    pub work_pending: bool,
    pub guard: Option<Guard>,
    pub check: Option<VersionCheck>,
    /// The worker's private state to keep with the item (`None` clears it).
    pub state: Option<Value>,
    pub event: AuditEvent,
}

/// The removal of a resource, conditional on `expected_version`, with its audit event.
#[derive(Debug, Clone)]
pub struct Delete {
    pub entity: Entity,
    pub id: u64,
    pub expected_version: u64,
    pub check: Option<VersionCheck>,
    pub event: AuditEvent,
}

/// A committed write, as the table's stream (or the dev server's channel) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub entity: Entity,
    pub id: u64,
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
    /// The store cannot be reached or throttles (503 with Retry-After).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a corrupt item (500, the cause logged only).
    #[error("store failure: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Repository: Send + Sync {
    /// Reserves `n` (at least 1) fresh numbers of a named counter (1, 2, 3, ...; never handed out
    /// twice) and returns the last: the range is `last - n + 1 ..= last`.
    async fn next_ids(&self, counter: &str, n: u64) -> StoreResult<u64>;
    /// The next id of `entity`'s counter.
    async fn next_id(&self, entity: Entity) -> StoreResult<u64> {
        self.next_ids(entity.name(), 1).await
    }
    async fn get(&self, entity: Entity, id: u64) -> StoreResult<Option<Stored>>;
    /// Conflict when the id exists, the guard moved or the checked item changed;
    /// IdempotencyKeyTaken when the key exists.
    async fn create(&self, item: NewItem) -> StoreResult<Stored>;
    /// Several changes in one transaction (at most 49): all or none. Conflict when any stored
    /// version is not the expected one, a guard moved or a checked item changed.
    async fn write(&self, updates: Vec<Update>) -> StoreResult<Vec<Stored>>;
    /// One change: [`Repository::write`] of one.
    async fn update(&self, update: Update) -> StoreResult<Stored> {
        self.write(vec![update]).await?.pop().ok_or_else(|| StoreError::Internal("empty write".into()))
    }
    /// Removes a resource (its audit trail stays). Conflict as for `update`.
    async fn delete(&self, delete: Delete) -> StoreResult<()>;
    /// One page of `entity` in the query's order, and the number of matches.
    async fn list(&self, entity: Entity, query: &ListQuery) -> StoreResult<(Vec<Value>, u64)>;
    /// Every member of a group (e.g. the runs of one billing cycle).
    async fn group(&self, entity: Entity, group: &str) -> StoreResult<Vec<Stored>>;
    /// The current version of a guard (0 when it was never written).
    async fn guard(&self, key: &str) -> StoreResult<Guard>;
    /// A live (unexpired) idempotency record.
    async fn idempotency(&self, key: &str) -> StoreResult<Option<IdempotencyRecord>>;
    /// The audit trail of one resource, oldest first.
    async fn events(&self, entity: Entity, id: u64) -> StoreResult<Vec<AuditEvent>>;
    /// Stores an API key's caller context under the key's SHA-256 hash (never the key).
    async fn put_api_key(&self, hash: &str, caller: Value) -> StoreResult<()>;
    /// The caller context of the key with this hash.
    async fn api_key(&self, hash: &str) -> StoreResult<Option<Value>>;
}

/// Most items one transaction may touch: DynamoDB allows 100, and each change writes two (the
/// item and its event), plus one guard or check.
pub const MAX_WRITE: usize = 49;

pub type SharedRepository = Arc<dyn Repository>;

/// Unix seconds now.
pub fn now_epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// RFC 3339 now, for audit events.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
