//! bill-run-worker: carries out requested stages. In AWS the table's stream (filtered to items
//! with `workPending`) invokes it with batches of records; in the dev server a [`Notifying`] store
//! feeds it the same changes in-process. Either way every step is one conditional write of the
//! run's progress with its audit event.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::domain::bill_run::Changes;
use crate::domain::bill_run::{AdhocBillRun, BillRun};
use crate::domain::list::ListQuery;
use crate::http::bill_runs::{event, RunResource};
use crate::http::Deps;
use crate::store::dynamo::parse_item_pk;
use crate::store::{
    AuditEvent, Change, Entity, Guard, IdempotencyRecord, NewItem, Repository, SharedRepository, StoreError,
    StoreResult, Stored, Update,
};

/// How many times a write that lost a race is re-read and re-applied.
const ATTEMPTS: usize = 8;

/// Advances the run a change names by one step. `None` when there was nothing to do.
pub async fn advance(deps: &Deps, change: Change) -> StoreResult<Option<Stored>> {
    match change.entity {
        Entity::BillRun => worker_step::<BillRun>(deps, change.id, Some(change.version)).await,
        Entity::AdhocBillRun => worker_step::<AdhocBillRun>(deps, change.id, Some(change.version)).await,
    }
}

/// The stage worker's step on one run, as a system write: `None` when there was nothing to do.
/// `seen_version` is the version a stream record reported: an older record than the item is
/// skipped (the newer write has its own record), so repeated deliveries never step twice.
pub async fn worker_step<R: RunResource>(
    deps: &Deps,
    id: u64,
    seen_version: Option<u64>,
) -> Result<Option<Stored>, StoreError> {
    for _ in 0..ATTEMPTS {
        let Some(stored) = deps.store.get(R::ENTITY, id).await? else {
            return Ok(None);
        };
        if seen_version.is_some_and(|seen| seen < stored.version) {
            return Ok(None);
        }
        let mut run: R = serde_json::from_value(stored.doc.clone()).map_err(|e| StoreError::Internal(e.to_string()))?;
        let before = run.progress();
        let Some(next) = before.worker_step() else {
            return Ok(None);
        };
        run.set_progress(next);
        let update = Update {
            entity: R::ENTITY,
            id,
            expected_version: stored.version,
            doc: serde_json::to_value(&run).map_err(|e| StoreError::Internal(e.to_string()))?,
            group: run.group(),
            work_pending: next.work_pending(),
            guard: None,
            event: event(None, "worker", Some(Changes::between(&before, &next, Vec::new()))),
        };
        match deps.store.update(update).await {
            Ok(saved) => return Ok(Some(saved)),
            // A client (or another delivery) wrote first; with a stream record, that write has its
            // own record, so this one is done. Without one, look again.
            Err(StoreError::Conflict) if seen_version.is_some() => return Ok(None),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------------
// The DynamoDB stream (only the parts the worker reads)

#[derive(Debug, Deserialize)]
pub struct StreamEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<StreamRecord>,
}

#[derive(Debug, Deserialize)]
pub struct StreamRecord {
    #[serde(default)]
    pub dynamodb: Option<StreamPayload>,
}

#[derive(Debug, Deserialize)]
pub struct StreamPayload {
    #[serde(rename = "SequenceNumber", default)]
    pub sequence_number: Option<String>,
    #[serde(rename = "NewImage", default)]
    pub new_image: Option<std::collections::HashMap<String, Value>>,
}

/// The partial-batch response: failed records are delivered again, the others are not.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct BatchItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

impl StreamPayload {
    /// The change a record reports, when it is a resource the worker handles.
    pub fn change(&self) -> Option<Change> {
        let image = self.new_image.as_ref()?;
        let text = |name: &str, kind: &str| image.get(name)?.get(kind)?.as_str().map(str::to_owned);
        let (entity, id) = parse_item_pk(&text("PK", "S")?)?;
        let version = text("version", "N")?.parse().ok()?;
        let work_pending = image.get("workPending")?.get("BOOL")?.as_bool()?;
        Some(Change { entity, id, version, work_pending })
    }
}

/// Handles one batch of stream records; records whose step failed are reported for redelivery.
pub async fn handle_stream(deps: &Deps, event: StreamEvent) -> BatchResponse {
    let mut response = BatchResponse::default();
    for record in event.records {
        let Some(payload) = record.dynamodb else {
            continue;
        };
        let Some(change) = payload.change().filter(|c| c.work_pending) else {
            continue;
        };
        if let Err(error) = advance(deps, change).await {
            tracing::warn!(entity = change.entity.name(), id = change.id, %error, "worker step failed; will be retried");
            if let Some(sequence) = payload.sequence_number.clone() {
                response.batch_item_failures.push(BatchItemFailure { item_identifier: sequence });
            }
        }
    }
    response
}

// ---------------------------------------------------------------------------------------------
// In-process: the dev server's stand-in for the stream

/// A store that reports each committed write with pending work, as the table's stream does.
pub struct Notifying {
    inner: SharedRepository,
    changes: mpsc::UnboundedSender<Change>,
}

/// Wraps `store` so that its writes drive the worker in this process, and starts the worker.
pub fn in_process(store: SharedRepository) -> SharedRepository {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let notifying: SharedRepository = Arc::new(Notifying { inner: store, changes: tx });
    let deps = Deps { store: notifying.clone() };
    tokio::spawn(async move {
        while let Some(change) = rx.recv().await {
            if let Err(error) = advance(&deps, change).await {
                tracing::warn!(entity = change.entity.name(), id = change.id, %error, "worker step failed");
            }
        }
    });
    notifying
}

impl Notifying {
    fn report(&self, entity: Entity, stored: &Stored, work_pending: bool) {
        if work_pending {
            let _ = self.changes.send(Change { entity, id: stored.id, version: stored.version, work_pending });
        }
    }
}

#[async_trait]
impl Repository for Notifying {
    async fn next_id(&self, entity: Entity) -> StoreResult<u64> {
        self.inner.next_id(entity).await
    }
    async fn get(&self, entity: Entity, id: u64) -> StoreResult<Option<Stored>> {
        self.inner.get(entity, id).await
    }
    async fn create(&self, item: NewItem) -> StoreResult<Stored> {
        let (entity, pending) = (item.entity, item.work_pending);
        let stored = self.inner.create(item).await?;
        self.report(entity, &stored, pending);
        Ok(stored)
    }
    async fn update(&self, update: Update) -> StoreResult<Stored> {
        let (entity, pending) = (update.entity, update.work_pending);
        let stored = self.inner.update(update).await?;
        self.report(entity, &stored, pending);
        Ok(stored)
    }
    async fn list(&self, entity: Entity, query: &ListQuery) -> StoreResult<(Vec<Value>, u64)> {
        self.inner.list(entity, query).await
    }
    async fn group(&self, entity: Entity, group: &str) -> StoreResult<Vec<Stored>> {
        self.inner.group(entity, group).await
    }
    async fn guard(&self, key: &str) -> StoreResult<Guard> {
        self.inner.guard(key).await
    }
    async fn idempotency(&self, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        self.inner.idempotency(key).await
    }
    async fn events(&self, entity: Entity, id: u64) -> StoreResult<Vec<AuditEvent>> {
        self.inner.events(entity, id).await
    }
}
