//! The worker: carries out work that a write left pending (`workPending`). In AWS the table's
//! stream (filtered to items with pending work) invokes it with batches of records; in the dev
//! server a [`Notifying`] store feeds it the same changes in-process. It depends on the store and
//! the domain only. Each family registers its [`Job`]s (one per kind of item it steps); a step
//! is a conditional write, so a repeated or stale delivery changes nothing twice.
//!
//! One record's failure, a panic included, never stops the worker from serving other records:
//! each step runs as its own task. In Lambda a failed record is a batch item failure (retried by
//! the stream, then sent to the on-failure destination); in-process it is retried a few times,
//! then logged and dropped.

pub mod bill_runs;
pub mod billing_runs;
pub mod customer_bills;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
pub use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde_dynamo::AttributeValue;
use tokio::sync::mpsc;

use crate::domain::key::{Key, Kind, TenantId};
use crate::store::repo::Tenant;
use crate::store::{
    ApiKeyRecord, AuditEvent, Change, Delete, EventQuery, Guard, IdempotencyRecord, Page, Recorded, Repository,
    SharedRepository, StoreResult, Stored, Write,
};

/// Bytes of changed items one step writes, at most about: a step stops at the first item past
/// it, and an item is at most [`crate::store::MAX_ITEM_BYTES`], so a step's transaction stays
/// well inside DynamoDB's 4 MB whatever its items' sizes.
pub const STEP_BYTES: usize = 2 * 1024 * 1024;

/// Every family's jobs: the registry the Lambda worker and the dev server run.
pub fn jobs() -> Vec<Arc<dyn Job>> {
    let mut jobs = bill_runs::jobs();
    jobs.extend(customer_bills::jobs());
    jobs.extend(billing_runs::jobs());
    jobs
}

/// The work of one family on one kind of item.
#[async_trait]
pub trait Job: Send + Sync {
    /// The kind of item this job steps.
    fn kind(&self) -> Kind;
    /// One step on the item `change` names, within its tenant (the worker gives the job that
    /// tenant's store only); `false` when there was nothing to do.
    async fn step(&self, tenant: &Tenant<'_>, change: &Change) -> StoreResult<bool>;
}

/// The worker with every registered job.
#[derive(Clone)]
pub struct Worker {
    store: SharedRepository,
    jobs: Arc<Vec<Arc<dyn Job>>>,
}

impl Worker {
    pub fn new(store: SharedRepository, jobs: Vec<Arc<dyn Job>>) -> Self {
        Self { store, jobs: Arc::new(jobs) }
    }

    /// The worker with every family's jobs.
    pub fn standard(store: SharedRepository) -> Self {
        Self::new(store, jobs())
    }

    fn kinds(&self) -> Vec<Kind> {
        self.jobs.iter().map(|j| j.kind()).collect()
    }

    /// One step on the item a change names, by the job of its kind (`false`: nothing to do).
    pub async fn advance(&self, change: &Change) -> StoreResult<bool> {
        match self.jobs.iter().find(|j| j.kind() == change.key.kind()) {
            Some(job) => job.step(&Tenant::new(self.store.as_ref(), change.key.tenant().clone()), change).await,
            None => Ok(false),
        }
    }

    /// [`Worker::advance`] as its own task: an error or a panic is this record's failure only.
    pub async fn advance_isolated(&self, change: Change) -> Result<bool, String> {
        let worker = self.clone();
        let key = change.key.clone();
        let outcome = tokio::spawn(async move { worker.advance(&change).await }).await;
        let failure = match outcome {
            Ok(Ok(done)) => return Ok(done),
            Ok(Err(error)) => error.to_string(),
            Err(join) => format!("the step panicked: {join}"),
        };
        tracing::warn!(key = %key, error = %failure, "worker step failed");
        Err(failure)
    }

    /// The change a stream record reports, when it is an item of a registered kind with pending
    /// work.
    pub fn change_of(&self, record: &EventRecord) -> Option<Change> {
        let image = &record.change.new_image;
        let text = |name: &str| match image.get(name) {
            Some(AttributeValue::S(s)) => Some(s.as_str()),
            _ => None,
        };
        let key = Key::parse(text("PK")?, &self.kinds())?;
        let version = match image.get("version") {
            Some(AttributeValue::N(n)) => n.parse().ok()?,
            _ => return None,
        };
        let work_pending = matches!(image.get("workPending"), Some(AttributeValue::Bool(true)));
        work_pending.then_some(Change { key, version, work_pending })
    }

    /// The sweeper's tick over every kind it steps but billing runs (the scheduler's,
    /// [`Worker::schedule`]): see [`Worker::sweep_of`].
    pub async fn sweep(&self, now_ms: u64, until_ms: Option<u64>) -> StoreResult<Sweep> {
        let kinds: Vec<Kind> = self.kinds().into_iter().filter(|k| *k != SCHEDULED).collect();
        self.sweep_of(&kinds, now_ms, until_ms).await
    }

    /// The billing-run scheduler's tick: every run whose date has come (a scheduled run's lease
    /// is its date) or whose lease passed while it was busy, stepped ([`Worker::sweep_of`]).
    pub async fn schedule(&self, now_ms: u64, until_ms: Option<u64>) -> StoreResult<Sweep> {
        self.sweep_of(&[SCHEDULED], now_ms, until_ms).await
    }

    /// Every item of `kinds` whose lease passed before `now_ms`
    /// (at most [`SWEEP_LIMIT`], oldest first) is stepped as a stream record would step it. Its
    /// step renews its lease, so work whose records were lost, dropped after their retries or
    /// sent to the failure queue goes on; an item it could not move has its lease renewed too, so
    /// that what keeps failing waits a lease and never holds the places of the rest. It stops
    /// stepping when `until_ms` comes near (a Lambda's deadline), leaving the rest to the next
    /// tick. What was found and what became of it.
    pub async fn sweep_of(&self, kinds: &[Kind], now_ms: u64, until_ms: Option<u64>) -> StoreResult<Sweep> {
        use futures_util::StreamExt;
        let overdue = self.store.overdue(kinds, now_ms, SWEEP_LIMIT).await?;
        let oldest_lease_age_ms = overdue.first().map_or(0, |(lease, _)| now_ms.saturating_sub(*lease));
        let sweep = Sweep { overdue: overdue.len(), oldest_lease_age_ms, ..Sweep::default() };
        // Items step side by side, a few at a time (a delivery may wait 15 s on its endpoint):
        // one slow item holds back no other.
        let outcomes: Vec<StoreResult<Option<Result<bool, String>>>> = futures_util::stream::iter(overdue)
            .map(|(_, change)| async move {
                if until_ms.is_some_and(|until| crate::store::now_ms().saturating_add(SWEEP_MARGIN_MS) >= until) {
                    return Ok(None);
                }
                let (key, version) = (change.key.clone(), change.version);
                let outcome = self.advance_isolated(change).await;
                if outcome != Ok(true) {
                    self.store.renew_lease(&key, version).await?;
                }
                Ok(Some(outcome))
            })
            .buffer_unordered(SWEEP_CONCURRENCY)
            .collect()
            .await;
        outcomes.into_iter().try_fold(sweep, |mut sweep, outcome| {
            match outcome? {
                Some(Ok(true)) => sweep.redriven += 1, // its step wrote a newer version, with a lease of its own
                Some(Ok(false)) => sweep.idle += 1,
                Some(Err(_)) => sweep.failed += 1,
                None => {}
            }
            Ok(sweep)
        })
    }

    /// Handles one batch of stream records; records whose step failed are reported for
    /// redelivery. Records of different items are stepped concurrently (a run's segments arrive
    /// together), those of one item in their order.
    pub async fn handle_stream(&self, event: Event) -> DynamoDbEventResponse {
        let changes = event.records.iter().filter_map(|record| {
            let change = self.change_of(record)?;
            Some((change.key.clone(), (change, record.change.sequence_number.clone())))
        });
        let failed = futures_util::future::join_all(by_item(changes).into_iter().map(|chain| async move {
            let mut failed = Vec::new();
            for (change, sequence) in chain {
                if self.advance_isolated(change).await.is_err() {
                    failed.push(sequence);
                }
            }
            failed
        }))
        .await;
        batch_response(failed.into_iter().flatten())
    }
}

/// Stream records grouped by the item they name, each group in the records' order, the groups in
/// the order of their first record: what may run side by side, and what must run in turn.
pub fn by_item<T>(records: impl IntoIterator<Item = (Key, T)>) -> Vec<Vec<T>> {
    let mut chains: Vec<(Key, Vec<T>)> = Vec::new();
    for (key, record) in records {
        match chains.iter_mut().find(|(k, _)| *k == key) {
            Some((_, chain)) => chain.push(record),
            None => chains.push((key, vec![record])),
        }
    }
    chains.into_iter().map(|(_, chain)| chain).collect()
}

/// A partial-batch response reporting the records of these sequence numbers failed.
pub fn batch_response(failed: impl IntoIterator<Item = Option<String>>) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for sequence in failed {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = sequence;
        response.batch_item_failures.push(failure);
    }
    response
}

/// The kind the billing-run scheduler finds when due, and the sweeper leaves to it.
const SCHEDULED: Kind = <crate::domain::billing_run::BillingRun as crate::domain::resource::Resource>::KIND;

/// How many overdue items one sweep steps at once.
const SWEEP_CONCURRENCY: usize = 16;

/// How long before its deadline a sweep stops stepping (a step's retries and transaction fit).
const SWEEP_MARGIN_MS: u64 = 10_000;

/// Most overdue items one sweep steps: the rest wait for the next tick (a minute in AWS), so a
/// tick's work is bounded whatever is stuck.
pub const SWEEP_LIMIT: usize = 100;

/// What one sweep found: items past their lease, and how many of them it moved on, found with
/// nothing to do, or failed to step (those two have their lease renewed: they are tried again a
/// lease later).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sweep {
    pub overdue: usize,
    pub redriven: usize,
    pub idle: usize,
    pub failed: usize,
    /// How long ago the oldest overdue lease passed (0: none overdue).
    pub oldest_lease_age_ms: u64,
}

impl Sweep {
    /// The sweep as a CloudWatch embedded-metric-format log line (namespace `billflow`), its
    /// metrics named after `what` (`Work` for the sweeper, `Deliveries` for the webhook-sender):
    /// `{what}PastLease`, `{what}Redriven`, `{what}Failed`, `{what}OldestLeaseAge`. The alarm on
    /// stuck work reads `WorkPastLease`.
    pub fn emf(&self, at_ms: u64, what: &str) -> String {
        let name = |metric: &str| format!("{what}{metric}");
        let mut line = serde_json::json!({
            "_aws": {"Timestamp": at_ms, "CloudWatchMetrics": [{"Namespace": "billflow", "Dimensions": [[]],
                "Metrics": [{"Name": name("PastLease"), "Unit": "Count"}, {"Name": name("Redriven"), "Unit": "Count"},
                    {"Name": name("Failed"), "Unit": "Count"}, {"Name": name("OldestLeaseAge"), "Unit": "Milliseconds"}]}]},
        });
        line[name("PastLease")] = self.overdue.into();
        line[name("Redriven")] = self.redriven.into();
        line[name("Failed")] = self.failed.into();
        line[name("OldestLeaseAge")] = self.oldest_lease_age_ms.into();
        line.to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// In-process: the dev server's stand-in for the stream

/// How often the in-process worker retries a record whose step failed before dropping it.
const IN_PROCESS_RETRIES: u32 = 3;

/// A store that reports each committed write with pending work, and each published event, as the
/// table's stream does.
pub struct Notifying {
    inner: SharedRepository,
    changes: mpsc::UnboundedSender<(Change, u32)>,
    events: mpsc::UnboundedSender<Recorded>,
}

/// Wraps `store` so that its writes drive a worker with `jobs` ([`jobs`] in the dev server) in
/// this process, and starts it. `step_delay` pauses before each step, as the stream's delivery
/// latency does in AWS (and so that a person, or a test, can watch a stage's percentage move).
/// `timers`: the sweeper's ([`Worker::sweep`], `SWEEPER_INTERVAL_MS` in the dev server), which
/// re-drives what the in-process retries gave up on once its lease has passed, and the billing-run
/// scheduler's ([`Worker::schedule`], `SCHEDULER_INTERVAL_MS`).
pub fn in_process(
    store: SharedRepository,
    step_delay: Duration,
    timers: Timers,
    jobs: Vec<Arc<dyn Job>>,
) -> SharedRepository {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Change, u32)>();
    let (events, published) = mpsc::unbounded_channel::<Recorded>();
    let notifying: SharedRepository = Arc::new(Notifying { inner: store, changes: tx.clone(), events });
    tokio::spawn(publisher(
        crate::events::Publisher::new(notifying.clone(), Arc::new(crate::events::LogBus)),
        published,
    ));
    let worker = Worker::new(notifying.clone(), jobs);
    if let Some(every) = timers.sweep {
        tokio::spawn(sweeper(worker.clone(), every, Tick::Sweep));
    }
    if let Some(every) = timers.schedule {
        tokio::spawn(sweeper(worker.clone(), every, Tick::Schedule));
    }
    tokio::spawn(async move {
        while let Some((change, failures)) = rx.recv().await {
            // Each record is its own task, as the stream's concurrent batches are: a run's
            // segments step side by side.
            let (worker, tx) = (worker.clone(), tx.clone());
            tokio::spawn(async move {
                if !step_delay.is_zero() {
                    tokio::time::sleep(step_delay).await;
                }
                if worker.advance_isolated(change.clone()).await.is_err() && failures + 1 < IN_PROCESS_RETRIES {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let _ = tx.send((change, failures + 1));
                }
            });
        }
    });
    notifying
}

/// The dev server's event publisher: each event in the order its writes committed (those of one
/// resource in the order of its versions), logged as the bus's and its deliveries made, tried a few
/// times.
async fn publisher(publisher: crate::events::Publisher, mut published: mpsc::UnboundedReceiver<Recorded>) {
    while let Some(recorded) = published.recv().await {
        for failures in 0..IN_PROCESS_RETRIES {
            match publisher.publish(&recorded).await {
                Ok(_) => break,
                Err(error) if failures + 1 == IN_PROCESS_RETRIES => {
                    tracing::warn!(key = %recorded.key, version = recorded.version, %error, "an event's deliveries were not made")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

/// The dev server's timers (`None`: not run).
#[derive(Debug, Clone, Copy, Default)]
pub struct Timers {
    pub sweep: Option<Duration>,
    pub schedule: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tick {
    Sweep,
    Schedule,
}

/// The dev server's sweeper or scheduler: a [`Worker::sweep`] or [`Worker::schedule`] every
/// `every`, the sweeper's logged when it found anything.
async fn sweeper(worker: Worker, every: Duration, what: Tick) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = crate::store::now_ms();
        let swept = match what {
            Tick::Sweep => worker.sweep(now, None).await,
            Tick::Schedule => worker.schedule(now, None).await,
        };
        match swept {
            Ok(sweep) if sweep.overdue > 0 && what == Tick::Sweep => {
                tracing::warn!(?sweep, "the sweeper re-drove work past its lease")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "the work index could not be read"),
        }
    }
}

impl Notifying {
    fn report(&self, stored: &Stored, work_pending: bool, event: AuditEvent) {
        if work_pending {
            let change = Change { key: stored.key.clone(), version: stored.version, work_pending };
            let _ = self.changes.send((change, 0));
        }
        self.publish(&stored.key, stored.version, event);
    }

    fn publish(&self, key: &Key, version: u64, event: AuditEvent) {
        if event.event_type.is_some() {
            let _ = self.events.send(Recorded { key: key.clone(), version, event });
        }
    }
}

#[async_trait]
impl Repository for Notifying {
    async fn next_ids(&self, tenant: &TenantId, counter: &str, n: u64) -> StoreResult<u64> {
        self.inner.next_ids(tenant, counter, n).await
    }
    async fn get(&self, key: &Key) -> StoreResult<Option<Stored>> {
        self.inner.get(key).await
    }
    async fn write(&self, writes: Vec<Write>) -> StoreResult<Vec<Stored>> {
        let reported: Vec<(bool, AuditEvent)> = writes
            .iter()
            .map(|w| match w {
                Write::Create(item) => (item.work_pending, item.event.clone()),
                Write::Update(update) => (update.work_pending, update.event.clone()),
            })
            .collect();
        let saved = self.inner.write(writes).await?;
        for (stored, (pending, event)) in saved.iter().zip(reported) {
            self.report(stored, pending, event);
        }
        Ok(saved)
    }
    async fn delete(&self, delete: Delete) -> StoreResult<()> {
        let (key, version, event) = (delete.key.clone(), delete.expected_version + 1, delete.event.clone());
        self.inner.delete(delete).await?;
        self.publish(&key, version, event);
        Ok(())
    }
    fn items_read(&self) -> u64 {
        self.inner.items_read()
    }
    fn write_units(&self) -> f64 {
        self.inner.write_units()
    }
    async fn count(&self, kind: Kind, tenant: &TenantId) -> StoreResult<u64> {
        self.inner.count(kind, tenant).await
    }
    async fn group(&self, kind: Kind, tenant: &TenantId, group: &str) -> StoreResult<Vec<Stored>> {
        self.inner.group(kind, tenant, group).await
    }
    async fn page(&self, kind: Kind, tenant: &TenantId, index: &Page<'_>) -> StoreResult<Vec<Stored>> {
        self.inner.page(kind, tenant, index).await
    }
    async fn group_count(&self, kind: Kind, tenant: &TenantId, group: &str) -> StoreResult<u64> {
        self.inner.group_count(kind, tenant, group).await
    }
    async fn guard(&self, key: &str) -> StoreResult<Guard> {
        self.inner.guard(key).await
    }
    async fn idempotency(&self, tenant: &TenantId, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        self.inner.idempotency(tenant, key).await
    }
    async fn events(&self, key: &Key) -> StoreResult<Vec<AuditEvent>> {
        self.inner.events(key).await
    }
    async fn event(&self, key: &Key, version: u64) -> StoreResult<Option<AuditEvent>> {
        self.inner.event(key, version).await
    }
    async fn published(&self, tenant: &TenantId, query: &EventQuery) -> StoreResult<Vec<Recorded>> {
        self.inner.published(tenant, query).await
    }
    async fn overdue(&self, kinds: &[Kind], now_ms: u64, limit: usize) -> StoreResult<Vec<(u64, Change)>> {
        self.inner.overdue(kinds, now_ms, limit).await
    }
    async fn renew_lease(&self, key: &Key, version: u64) -> StoreResult<()> {
        self.inner.renew_lease(key, version).await
    }
    async fn put_api_key(&self, record: &ApiKeyRecord) -> StoreResult<()> {
        self.inner.put_api_key(record).await
    }
    async fn api_key(&self, hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        self.inner.api_key(hash).await
    }
    async fn api_key_by_id(&self, key_id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        self.inner.api_key_by_id(key_id).await
    }
    async fn tenant_api_key(&self, tenant: &TenantId, key_id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        self.inner.tenant_api_key(tenant, key_id).await
    }
    async fn api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        self.inner.api_keys().await
    }
    async fn tenant_api_keys(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ApiKeyRecord>> {
        self.inner.tenant_api_keys(tenant, after, limit).await
    }
    async fn revoke_api_key(&self, key: &ApiKeyRecord, at: i64) -> StoreResult<()> {
        self.inner.revoke_api_key(key, at).await
    }
}
