//! The bill-run family's job: carry out a requested stage over the run's bills in batches, then
//! walk the system stages to FINALIZED. Each step reads its batch with one query that starts
//! after its cursor (plus the run and, at a stage's start, the bill count), and writes the run and
//! the bills it changed in one transaction conditional on every version it read.

use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::{Job, STEP_BYTES};
use crate::domain::bill::{stage_effect, Bill, Report};
use crate::domain::bill_run::{AdhocBillRun, BillRun, Changes, Progress, Run, SummaryStatus};
use crate::domain::key::{Id, Kind};
use crate::retry::with_retries;
use crate::store::repo::{encode, Repo, Tenant, Versioned};
use crate::store::{AuditEvent, Change, Page, StoreError, StoreResult, Stored, Update, Write};

/// Bills per step: each step writes them and the run in one transaction.
pub const BATCH: usize = 40;

/// The stage job of both kinds of run.
pub fn jobs() -> Vec<Arc<dyn Job>> {
    vec![Arc::new(StageJob::<BillRun>(PhantomData)), Arc::new(StageJob::<AdhocBillRun>(PhantomData))]
}

struct StageJob<R>(PhantomData<fn() -> R>);

#[async_trait]
impl<R: Run> Job for StageJob<R> {
    fn kind(&self) -> Kind {
        R::KIND
    }

    async fn step(&self, tenant: &Tenant<'_>, change: &Change) -> StoreResult<bool> {
        Ok(step::<R>(tenant, change.key.id(), Some(change.version)).await?.is_some())
    }
}

/// Where a running stage stands, kept beside the run (never shown to clients).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageState {
    pub stage: String,
    /// The id of the last bill processed: bills are walked in id order (0: none yet).
    pub cursor: u64,
    pub total: u64,
    pub done: u64,
    pub report: Report,
}

/// The worker's step on one run of `tenant`, as a system write: `None` when there was nothing to
/// do. It reads and writes that tenant's run and bills only.
/// `seen_version` is the version a stream record reported: an older record than the item is
/// skipped (the newer write has its own record). A lost race is retried only while the run itself
/// is unchanged (a bill moved under us); a client's concurrent write always wins.
pub async fn step<R: Run>(tenant: &Tenant<'_>, id: &Id, seen_version: Option<u64>) -> StoreResult<Option<Stored>> {
    let runs = &tenant.repo::<R>();
    with_retries(move || async move {
        let Some(current) = runs.get(id.clone()).await? else { return Ok(None) };
        if seen_version.is_some_and(|seen| seen < current.version) {
            return Ok(None);
        }
        let Some(writes) = plan(runs, &current).await? else { return Ok(None) };
        match tenant.write(writes.into_iter().map(Write::Update).collect()).await {
            Ok(mut saved) => Ok(Some(saved.swap_remove(0))),
            Err(StoreError::Conflict) => match tenant.get(&current.key).await? {
                Some(run) if run.version == current.version => Err(StoreError::Conflict),
                _ => Ok(None),
            },
            Err(e) => Err(e),
        }
    })
    .await
}

/// The writes of one step: the run first, then the bills it changes.
/// Applies `stage` to the first bills of `page` (at most [`BATCH`], and about [`STEP_BYTES`] of
/// writes): the updates of the bills it changed, and how many it took; `at` moves past each.
fn step_bills(
    bills: &Repo<'_, Bill>,
    page: &[Versioned<Bill>],
    stage: SummaryStatus,
    invoice_date: Date,
    at: &mut StageState,
) -> StoreResult<(usize, Vec<Update>)> {
    let now = OffsetDateTime::now_utc();
    let (mut taken, mut bytes, mut writes) = (0, 0, Vec::new());
    for bill in page.iter().take(BATCH) {
        if taken > 0 && bytes >= STEP_BYTES {
            break;
        }
        match stage_effect(stage, &bill.value, invoice_date, now) {
            Some(changed) => {
                at.report.add(&changed);
                let update =
                    bills.update_of(bill, &changed, AuditEvent::new(None, format!("worker {}", stage.name())))?;
                bytes += update.body.len();
                writes.push(update);
            }
            None => at.report.add(&bill.value),
        }
        at.cursor = bill.value.id;
        taken += 1;
    }
    at.done += taken as u64;
    Ok((taken, writes))
}

async fn plan<R: Run>(runs: &Repo<'_, R>, current: &Versioned<R>) -> StoreResult<Option<Vec<Update>>> {
    let mut run = current.value.clone();
    let before = run.progress();
    if !before.work_pending() {
        return Ok(None);
    }
    let mut bill_writes = Vec::new();
    let mut state = None;
    let next = if before.summary_status_percentage >= 100 || !before.summary_status.walks_bills() {
        // A stage that changes no bill completes at once; a finished DISTRIBUTION walks the
        // system stages.
        match before.worker_step() {
            Some(next) => next,
            None => return Ok(None),
        }
    } else {
        let stage = before.summary_status;
        let bills = runs.tenant().repo::<Bill>();
        let group = R::RUN_KIND.bill_group(run.run_id());
        let mut at = match current.state::<StageState>().filter(|s| s.stage == stage.name()) {
            Some(at) => at,
            None => StageState {
                stage: stage.name().to_owned(),
                total: bills.group_count(&group).await?,
                ..Default::default()
            },
        };
        let after = (at.cursor > 0).then(|| Id::Int(at.cursor).sort_key());
        let index = Page { group: Some(&group), after: after.as_deref(), limit: BATCH + 1, ..Page::default() };
        let page = bills.page(&index).await?;
        let (taken, changed) = step_bills(&bills, &page, stage, run.invoice_date(), &mut at)?;
        bill_writes = changed;
        if taken == page.len() {
            run.finish_stage(stage, &at.report);
            before.worker_step().unwrap_or(before)
        } else {
            let pct = (at.done.saturating_mul(100) / at.total.max(1)).min(99) as u8;
            state = Some(encode(&at)?);
            Progress { summary_status_percentage: pct, ..before }
        }
    };
    run.set_progress(next);
    let event = AuditEvent::new(None, "worker").with_changes(Changes::between(&before, &next, Vec::new()));
    let mut update = runs.update_of(current, &run, event)?;
    update.state = state;
    let mut writes = vec![update];
    writes.extend(bill_writes);
    Ok(Some(writes))
}
