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
}

impl Entity {
    pub const ALL: [Self; 2] = [Self::BillRun, Self::AdhocBillRun];

    pub fn name(self) -> &'static str {
        match self {
            Self::BillRun => "BILL_RUN",
            Self::AdhocBillRun => "ADHOC_BILL_RUN",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// A resource as stored: its id, the version every write is conditional on, and its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub id: u64,
    pub version: u64,
    pub doc: Value,
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
    /// The next id of `entity`'s counter (1, 2, 3, ...), never handed out twice.
    async fn next_id(&self, entity: Entity) -> StoreResult<u64>;
    async fn get(&self, entity: Entity, id: u64) -> StoreResult<Option<Stored>>;
    /// Conflict when the id exists or the guard moved; IdempotencyKeyTaken when the key exists.
    async fn create(&self, item: NewItem) -> StoreResult<Stored>;
    /// Conflict when the stored version is not `expected_version` or the guard moved.
    async fn update(&self, update: Update) -> StoreResult<Stored>;
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
}

pub type SharedRepository = Arc<dyn Repository>;

/// Unix seconds now.
pub fn now_epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// RFC 3339 now, for audit events.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
