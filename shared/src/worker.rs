//! bill-run-worker: carries out requested stages. In AWS the table's stream (filtered to items
//! with `workPending`) invokes it with batches of records; in the dev server a [`Notifying`] store
//! feeds it the same changes in-process. Either way every step is one conditional write of the
//! run's progress with its audit event.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::domain::bill::{run_group, stage_effect, Bill, Report};
use crate::domain::bill_run::{AdhocBillRun, BillRun, Changes, Progress, SummaryStatus};
use crate::domain::list::ListQuery;
use crate::http::bill_runs::{event, RunResource};
use crate::http::{Deps, ATTEMPTS};
use crate::store::dynamo::parse_item_pk;
use crate::store::{
    AuditEvent, Change, Delete, Entity, Guard, IdempotencyRecord, NewItem, Repository, SharedRepository, StoreError,
    StoreResult, Stored, Update,
};

/// Bills per step: each step writes them and the run in one transaction.
pub const BATCH: usize = 40;

/// Bytes of changed bills per step, well inside DynamoDB's 4 MB per transaction (a bill may carry
/// up to 1000 lines): a step stops early rather than exceed it.
pub const BATCH_BYTES: usize = 2 * 1024 * 1024;

/// Advances the run a change names by one step. `None` when there was nothing to do.
pub async fn advance(deps: &Deps, change: Change) -> StoreResult<Option<Stored>> {
    match change.entity {
        Entity::BillRun => worker_step::<BillRun>(deps, change.id, Some(change.version)).await,
        Entity::AdhocBillRun => worker_step::<AdhocBillRun>(deps, change.id, Some(change.version)).await,
        Entity::Bill => Ok(None),
    }
}

/// Where a running stage stands, kept beside the run (never shown to clients).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageState {
    pub stage: String,
    /// The id of the last bill processed: bills are walked in id order.
    pub cursor: u64,
    pub total: u64,
    pub done: u64,
    pub report: Report,
}

/// The stage worker's step on one run, as a system write: `None` when there was nothing to do.
/// `seen_version` is the version a stream record reported: an older record than the item is
/// skipped (the newer write has its own record). A step writes the run and the bills it changes
/// in one transaction conditional on every version it read, so a repeated delivery changes no bill
/// twice, and a client's concurrent write always wins.
pub async fn worker_step<R: RunResource>(
    deps: &Deps,
    id: u64,
    seen_version: Option<u64>,
) -> Result<Option<Stored>, StoreError> {
    for _ in 0..ATTEMPTS {
        let Some(stored) = deps.store.get(R::ENTITY, id).await? else { return Ok(None) };
        if seen_version.is_some_and(|seen| seen < stored.version) {
            return Ok(None);
        }
        let Some(writes) = plan::<R>(deps, &stored).await? else { return Ok(None) };
        match deps.store.write(writes).await {
            Ok(mut saved) => return Ok(Some(saved.swap_remove(0))),
            Err(StoreError::Conflict) => {
                // Retry only while the run itself is unchanged (a bill moved under us); a newer
                // run has its own stream record and is stepped from there.
                let now = deps.store.get(R::ENTITY, id).await?;
                if now.is_none_or(|run| run.version != stored.version) {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(e.to_string())
}

/// The writes of one step: the run first, then the bills it changes.
async fn plan<R: RunResource>(deps: &Deps, stored: &Stored) -> StoreResult<Option<Vec<Update>>> {
    let mut run: R = serde_json::from_value(stored.doc.clone()).map_err(corrupt)?;
    let before = run.progress();
    if !before.work_pending() {
        return Ok(None);
    }
    let now = time::OffsetDateTime::now_utc();
    let mut bill_writes = Vec::new();
    let mut state = None;
    let next = if before.summary_status_percentage >= 100 {
        // A finished DISTRIBUTION walks the system stages.
        match before.worker_step() {
            Some(next) => next,
            None => return Ok(None),
        }
    } else {
        let stage = before.summary_status;
        let bills = deps.store.group(Entity::Bill, &run_group(R::BILL_RUN_KIND, stored.id)).await?;
        let mut at: StageState = stored
            .state
            .clone()
            .and_then(|s| serde_json::from_value::<StageState>(s).ok())
            .filter(|s| s.stage == stage.name())
            .unwrap_or_else(|| StageState {
                stage: stage.name().to_owned(),
                total: bills.len() as u64,
                ..Default::default()
            });
        let remaining: Vec<&Stored> = bills.iter().filter(|b| b.id > at.cursor).collect();
        let mut taken = 0;
        let mut bytes = 0;
        for member in remaining.iter().take(BATCH) {
            if taken > 0 && bytes >= BATCH_BYTES {
                break;
            }
            let bill: Bill = serde_json::from_value(member.doc.clone()).map_err(corrupt)?;
            if let Some(changed) = stage_effect(stage, &bill, run.invoice_date(), now) {
                at.report.add(&changed);
                let doc = serde_json::to_value(&changed).map_err(corrupt)?;
                bytes += doc.to_string().len();
                bill_writes.push(Update {
                    entity: Entity::Bill,
                    id: member.id,
                    expected_version: member.version,
                    doc,
                    group: changed.run_group(),
                    work_pending: false,
                    guard: None,
                    check: None,
                    state: None,
                    event: event(None, &format!("worker {}", stage.name()), None),
                });
            } else {
                at.report.add(&bill);
            }
            at.cursor = member.id;
            taken += 1;
        }
        at.done += taken as u64;
        if taken == remaining.len() {
            if stage == SummaryStatus::Reporting {
                run.set_report(&at.report);
            }
            before.worker_step().unwrap_or(before)
        } else {
            let pct = (at.done * 100 / at.total.max(1)).min(99) as u8;
            state = Some(serde_json::to_value(&at).map_err(corrupt)?);
            Progress { summary_status_percentage: pct, ..before }
        }
    };
    run.set_progress(next);
    let mut writes = vec![Update {
        entity: R::ENTITY,
        id: stored.id,
        expected_version: stored.version,
        doc: serde_json::to_value(&run).map_err(corrupt)?,
        group: run.group(),
        work_pending: next.work_pending(),
        guard: None,
        check: None,
        state,
        event: event(None, "worker", Some(Changes::between(&before, &next, Vec::new()))),
    }];
    writes.extend(bill_writes);
    Ok(Some(writes))
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
/// `step_delay` pauses before each step, as the stream's delivery latency does in AWS (and so
/// that a person, or a test, can watch a stage's percentage move).
pub fn in_process(store: SharedRepository, step_delay: std::time::Duration) -> SharedRepository {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let notifying: SharedRepository = Arc::new(Notifying { inner: store, changes: tx });
    let deps = Deps { store: notifying.clone() };
    tokio::spawn(async move {
        while let Some(change) = rx.recv().await {
            if !step_delay.is_zero() {
                tokio::time::sleep(step_delay).await;
            }
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
    async fn next_ids(&self, counter: &str, n: u64) -> StoreResult<u64> {
        self.inner.next_ids(counter, n).await
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
    async fn write(&self, updates: Vec<Update>) -> StoreResult<Vec<Stored>> {
        let reports: Vec<(Entity, bool)> = updates.iter().map(|u| (u.entity, u.work_pending)).collect();
        let saved = self.inner.write(updates).await?;
        for ((entity, pending), stored) in reports.into_iter().zip(&saved) {
            self.report(entity, stored, pending);
        }
        Ok(saved)
    }
    async fn delete(&self, delete: Delete) -> StoreResult<()> {
        self.inner.delete(delete).await
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
    async fn put_api_key(&self, hash: &str, caller: Value) -> StoreResult<()> {
        self.inner.put_api_key(hash, caller).await
    }
    async fn api_key(&self, hash: &str) -> StoreResult<Option<Value>> {
        self.inner.api_key(hash).await
    }
}
