//! The billing-run family's job: executes a run (docs/billing-runs.md, "Execution"). The
//! `billing-run-scheduler` ([`super::Worker::schedule`]) finds a run through the work index when
//! its date has come (a scheduled run's lease is its date) and makes its first move; each move's
//! write is a stream record that steps the run again, until it is `ready for execution` or
//! `completed`. A step reads a page (the tenant's open bills while preprocessing, the run's
//! targets while running) and writes the run, with its [`Execution`] record beside it, and the
//! targets it changed in one transaction conditional on every version read, so that two
//! schedulers, a repeated tick or a repeated record never do anything twice.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::bill_runs::commit;
use super::{Job, STEP_BYTES};
use crate::domain::bill::{Account, Bill, BillStatus};
use crate::domain::billing_run::execution::{
    self, is_open, left_out, moved, next, stopped, target_id, targets_group, ActionTarget, Execution, Next,
    TargetStatus, MAX_RESTARTS, MAX_REWALKS, MAX_TARGETS,
};
use crate::domain::billing_run::{BillingRun, Status};
use crate::domain::key::{Id, Kind};
use crate::domain::patch::changed_members;
use crate::domain::resource::Resource;
use crate::retry::with_retries;
use crate::store::repo::{encode, Repo, Tenant, Unreadable, Versioned};
use crate::store::{transaction_items, AuditEvent, Change, Page, StoreResult, Stored, Write, MAX_TRANSACTION_ITEMS};

/// Bills a preprocessing step reads (a bill may be 342 KB: a page of them stays well inside a
/// function's 128 MB).
const BILLS_PER_STEP: usize = 100;
/// Targets one step writes beside the run (each with its audit event: 2 + 2 x 40 + counts).
const TARGETS_PER_STEP: usize = 40;
/// Bills a running step reads for its statements.
const STATEMENT_BILLS_PER_STEP: usize = 2_000;
/// Bills read at once for one statement.
const READ_CONCURRENCY: usize = 32;
/// How long a walk over a run's targets waits before it starts again (an index catching up).
const REWALK_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

pub fn jobs() -> Vec<Arc<dyn Job>> {
    vec![Arc::new(RunJob)]
}

struct RunJob;

#[async_trait]
impl Job for RunJob {
    fn kind(&self) -> Kind {
        BillingRun::KIND
    }

    async fn step(&self, tenant: &Tenant<'_>, change: &Change) -> StoreResult<bool> {
        Ok(step(tenant, change.key.id(), Some(change.version)).await?.is_some())
    }
}

/// A busy run that has not moved for this long is `timed out`: twenty work leases, and a
/// minute at least.
pub fn timeout_ms() -> u64 {
    u64::try_from(crate::store::work_lease().as_millis()).unwrap_or(u64::MAX).saturating_mul(20).max(60_000)
}

/// The scheduler's step on one run of `tenant`: `None` when there was nothing to do (not due,
/// moved on, or an older record than the run).
pub async fn step(tenant: &Tenant<'_>, id: &Id, seen_version: Option<u64>) -> StoreResult<Option<Stored>> {
    let runs = &tenant.repo::<BillingRun>();
    with_retries(move || async move {
        let Some(current) = runs.get(id.clone()).await? else { return Ok(None) };
        if seen_version.is_some_and(|seen| seen < current.version) {
            return Ok(None);
        }
        let now = OffsetDateTime::now_utc();
        let now_ms = crate::store::now_ms();
        let record = current.state::<Execution>();
        let writes = match next(&current.value, record.as_ref(), now_ms, timeout_ms()) {
            Next::Wait => return Ok(None),
            Next::StartPreprocessing => vec![start_preprocessing(runs, &current, false, now)?],
            Next::Refresh => vec![start_preprocessing(runs, &current, true, now)?],
            Next::StartRunning => {
                let record = record.unwrap_or_default().run(now_ms);
                vec![run_write(runs, &current, &moved(&current.value, Status::Running, &record, now), &record)?]
            }
            Next::Preprocess => preprocess(tenant, &current, record.unwrap_or_default(), now).await?,
            Next::Run => run_targets(tenant, &current, record.unwrap_or_default(), now).await?,
            Next::TimeOut => {
                let reason = execution::timed_out_reason(timeout_ms());
                vec![stop(runs, &current, &record.unwrap_or_default(), (Status::TimedOut, &reason), now)?]
            }
            Next::Fail(reason) => {
                vec![stop(runs, &current, &record.unwrap_or_default(), (Status::Error, &reason), now)?]
            }
        };
        commit(tenant, &current.key, current.version, writes).await
    })
    .await
}

/// The run's write: `run` with `record` beside it, its audit event naming its status move and
/// the fields it changed.
fn run_write(
    runs: &Repo<'_, BillingRun>,
    current: &Versioned<BillingRun>,
    run: &BillingRun,
    record: &Execution,
) -> StoreResult<Write> {
    let fields = match (serde_json::to_value(&current.value), serde_json::to_value(run)) {
        (Ok(serde_json::Value::Object(before)), Ok(serde_json::Value::Object(after))) => {
            changed_members(&before, &after)
        }
        _ => Vec::new(),
    };
    let (from, to) = (current.value.status.name().to_owned(), run.status.name().to_owned());
    let event = AuditEvent::new(None, "scheduler").with_change(Some(from), Some(to), fields);
    let mut update = runs.update_of(current, run, event)?;
    update.state = Some(encode(record)?);
    Ok(Write::Update(update))
}

/// A preprocessing's start: the run's next version is its generation; `then_run` when it
/// refreshes a run due to run.
fn start_preprocessing(
    runs: &Repo<'_, BillingRun>,
    current: &Versioned<BillingRun>,
    then_run: bool,
    now: OffsetDateTime,
) -> StoreResult<Write> {
    let record = Execution::start(&current.value, then_run, crate::store::now_ms());
    run_write(runs, current, &moved(&current.value, Status::Preprocessing, &record, now), &record)
}

/// The run stopped by the system, `error` or `timed out`, with the reason.
fn stop(
    runs: &Repo<'_, BillingRun>,
    current: &Versioned<BillingRun>,
    record: &Execution,
    (status, reason): (Status, &str),
    now: OffsetDateTime,
) -> StoreResult<Write> {
    tracing::warn!(run = %current.key, status = status.name(), reason, "the scheduler stopped a billing run");
    run_write(runs, current, &stopped(&current.value, status, record, reason, now), record)
}

/// One preprocessing step: the next open bills of the tenant (ISSUED, not archived, by id),
/// as many as [`TARGETS_PER_STEP`] accounts hold, added to their accounts' targets; the run is
/// `ready for execution` once the walk has passed the last bill.
async fn preprocess(
    tenant: &Tenant<'_>,
    current: &Versioned<BillingRun>,
    mut record: Execution,
    now: OffsetDateTime,
) -> StoreResult<Vec<Write>> {
    let (runs, run) = (&tenant.repo::<BillingRun>(), &current.value);
    record.moved_ms = crate::store::now_ms();
    if !execution::sends_statements(run) {
        let (done, record) = execution::preprocessed(run, &record, now);
        return Ok(vec![run_write(runs, current, &done, &record)?]);
    }
    let group = open_bills_group();
    let index = Page {
        group: Some(&group),
        slot: 1,
        after: record.after.as_deref(),
        limit: BILLS_PER_STEP + 1,
        ..Page::default()
    };
    let page = tenant.repo::<Bill>().page_each(&index).await?;
    let (taken, accounts, walked) = take_bills(&page, &mut record);
    if walked {
        if let Some(again) = again_if_short(tenant, current, &record, now).await? {
            return Ok(vec![again]);
        }
    }
    let targets = tenant.repo::<ActionTarget>();
    let found = with_bills(&targets, run, &accounts, &taken, &mut record, now).await?;
    if record.statements.total > MAX_TARGETS {
        return Ok(vec![stop(runs, current, &record, (Status::Error, &execution::too_many_targets()), now)?]);
    }
    let (next, record) = match walked {
        true => execution::preprocessed(run, &record, now),
        false => (moved(run, Status::Preprocessing, &record, now), record),
    };
    let mut writes = vec![run_write(runs, current, &next, &record)?];
    for (old, target) in found.values() {
        let event = AuditEvent::new(None, "scheduler preprocessing");
        match old {
            Some(old) if old.value == *target => {}
            Some(old) => writes.push(Write::Update(targets.update_of(old, target, event)?)),
            None => writes.push(Write::Create(targets.new_item(target, event)?)),
        }
    }
    Ok(writes)
}

/// The targets of `accounts` (read by key, or new) with the `taken` bills added, each with the
/// version it was read at; the record's tally follows.
async fn with_bills(
    targets: &Repo<'_, ActionTarget>,
    run: &BillingRun,
    accounts: &[u64],
    taken: &[(&Account, &Bill)],
    record: &mut Execution,
    now: OffsetDateTime,
) -> StoreResult<BTreeMap<u64, (Option<Versioned<ActionTarget>>, ActionTarget)>> {
    let generation = record.generation;
    let existing = targets.get_many(accounts.iter().map(|a| Id::Uuid(target_id(run.id, generation, *a)))).await?;
    let mut found = BTreeMap::new();
    for (account, old) in accounts.iter().zip(existing) {
        if let Some(old) = old {
            found.insert(*account, (Some(old.clone()), old.value));
        }
    }
    for (account, bill) in taken {
        let (_, target) = found.entry(account.id).or_insert_with(|| {
            record.statements.total += 1;
            record.statements.excluded += 1;
            (None, ActionTarget::for_account(run.id, generation, account, now))
        });
        target.add(bill, left_out(&run.statement_options, bill), &mut record.statements);
    }
    Ok(found)
}

/// A preprocessing whose walk read fewer bills than the tenant's ISSUED bills count (kept in the
/// same transactions as the bills, read strongly consistent): an index hid some just written, so
/// it starts again, a moment later, as a new preprocessing ([`MAX_RESTARTS`] times at most; a
/// tenant issuing bills all the while is preprocessed with what the last walk found).
async fn again_if_short(
    tenant: &Tenant<'_>,
    current: &Versioned<BillingRun>,
    record: &Execution,
    now: OffsetDateTime,
) -> StoreResult<Option<Write>> {
    let counted = tenant.repo::<Bill>().group_count(&open_bills_group()).await?;
    if record.walked_bills >= counted || record.restarts >= MAX_RESTARTS {
        return Ok(None);
    }
    tracing::warn!(run = %current.key, walked = record.walked_bills, counted, "a preprocessing read fewer bills than counted: it starts again");
    tokio::time::sleep(REWALK_PAUSE).await;
    let mut again = Execution::start(&current.value, record.then_run, crate::store::now_ms());
    again.restarts = record.restarts + 1;
    let run = moved(&current.value, Status::Preprocessing, &again, now);
    run_write(&tenant.repo::<BillingRun>(), current, &run, &again).map(Some)
}

/// The open bills of a page that [`TARGETS_PER_STEP`] accounts hold, with their accounts, the
/// record's cursor moved past them; and whether the walk has passed the last bill.
fn take_bills<'a>(
    page: &'a [Result<Versioned<Bill>, Unreadable>],
    record: &mut Execution,
) -> (Vec<(&'a Account, &'a Bill)>, Vec<u64>, bool) {
    let mut walked = page.len() <= BILLS_PER_STEP;
    let (mut taken, mut accounts) = (Vec::new(), Vec::new());
    for item in page.iter().take(BILLS_PER_STEP) {
        let bill = match item {
            Ok(bill) => bill,
            Err(unreadable) => {
                tracing::error!(key = %unreadable.key, error = %unreadable.error, "an unreadable bill is on no statement");
                record.after = Some(unreadable.key.id().sort_key());
                record.walked_bills += 1;
                continue;
            }
        };
        if let Some(account) = bill.value.account.as_ref().filter(|_| is_open(&bill.value)) {
            if !accounts.contains(&account.id) {
                if accounts.len() == TARGETS_PER_STEP {
                    walked = false;
                    break;
                }
                accounts.push(account.id);
            }
            taken.push((account, &bill.value));
        }
        record.after = Some(bill.value.order());
        record.walked_bills += 1;
    }
    (taken, accounts, walked)
}

/// The group of a tenant's open-bill candidates: its ISSUED bills that are not archived (the
/// `status` filter's slot of `GET /bills`).
fn open_bills_group() -> String {
    crate::domain::list::facet("status", BillStatus::Issued.name(), false)
}

/// One running step: the run's next pending targets, each with its statement from its bills as
/// they are now; the run is `completed` once the walk has passed the last target.
async fn run_targets(
    tenant: &Tenant<'_>,
    current: &Versioned<BillingRun>,
    mut record: Execution,
    now: OffsetDateTime,
) -> StoreResult<Vec<Write>> {
    let (runs, run) = (&tenant.repo::<BillingRun>(), &current.value);
    record.moved_ms = crate::store::now_ms();
    let group = targets_group(run.id, record.generation);
    let index =
        Page { group: Some(&group), after: record.after.as_deref(), limit: TARGETS_PER_STEP + 1, ..Page::default() };
    let targets = tenant.repo::<ActionTarget>();
    let page = if execution::sends_statements(run) { targets.page(&index).await? } else { Vec::new() };
    let mut walked = page.len() <= TARGETS_PER_STEP;
    let (mut updates, mut bills_read, mut bytes) = (Vec::new(), 0, 0);
    for target in page.iter().take(TARGETS_PER_STEP) {
        if target.value.status != TargetStatus::Pending {
            record.after = Some(target.value.order());
            continue;
        }
        let size = target.value.bill_ids.len();
        if !updates.is_empty() && (bills_read + size > STATEMENT_BILLS_PER_STEP || bytes > STEP_BYTES) {
            walked = false;
            break;
        }
        bills_read += size;
        let mut next = target.value.clone();
        next.process(&bills_of(tenant, &next.bill_ids).await?, &mut record.statements, now);
        let update = targets.update_of(target, &next, AuditEvent::new(None, "scheduler running"))?;
        bytes += update.bytes();
        updates.push(Write::Update(update));
        record.after = Some(target.value.order());
    }
    let status = if walked { finish_walk(&mut record).await } else { Status::Running };
    let mut writes = vec![run_write(runs, current, &moved(run, status, &record, now), &record)?];
    writes.extend(updates);
    debug_assert!(transaction_items(&writes) <= MAX_TRANSACTION_ITEMS);
    Ok(writes)
}

/// The end of a walk over the targets: `completed`, unless some counted targets were not seen
/// (an index lagging its table), when the walk starts again after a pause, a few times, and
/// then counts them as errors.
async fn finish_walk(record: &mut Execution) -> Status {
    if record.statements.processing == 0 {
        return Status::Completed;
    }
    if record.rewalks < MAX_REWALKS {
        tracing::warn!(
            missing = record.statements.processing,
            "a billing run's walk found fewer targets than counted: it walks again"
        );
        tokio::time::sleep(REWALK_PAUSE).await;
        record.rewalks += 1;
        record.after = None;
        return Status::Running;
    }
    record.statements.error += record.statements.processing;
    record.statements.processing = 0;
    Status::Completed
}

/// The bills of `ids` that still exist, each read by key (never through an index that may lag),
/// a few at a time, kept without their lines and description (what a statement does not show), so
/// that a statement of large bills stays small in memory.
async fn bills_of(tenant: &Tenant<'_>, ids: &[u64]) -> StoreResult<Vec<Bill>> {
    let bills = tenant.repo::<Bill>();
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(READ_CONCURRENCY) {
        let chunk: Vec<Id> = chunk.iter().map(|id| Id::Int(*id)).collect();
        let read = bills.get_many(chunk).await?.into_iter().flatten();
        found.extend(read.map(|bill| Bill { line_items: Vec::new(), description: None, ..bill.value }));
    }
    Ok(found)
}

#[cfg(test)]
mod tests;
