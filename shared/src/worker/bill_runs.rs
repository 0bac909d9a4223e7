//! The bill-run family's jobs. A run's job starts a requested stage that walks bills by writing
//! its segments beside it ([`crate::domain::segment`]), and walks the system stages to FINALIZED.
//! A segment's job walks its bill groups in steps: each reads a page of bills after its cursor
//! and writes the segment and the bills it changed in one transaction (as many as DynamoDB's 100
//! items and [`STEP_BYTES`] hold), conditional on every version it read. The run item is written
//! only when a segment finishes, so concurrent segments never contend on it per step.

use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{Job, STEP_BYTES};
use crate::domain::bill::{stage_effect, Bill, Report};
use crate::domain::bill_run::{AdhocBillRun, BillRun, Changes, Progress, Run, RunKind};
use crate::domain::key::{Id, Key, Kind};
use crate::domain::resource::Resource;
use crate::domain::segment::{Rewalk, Segment, StageState, REWALK_PAUSE_MS, SEGMENTS};
use crate::retry::with_retries;
use crate::store::repo::{encode, Repo, Tenant, Unreadable, Versioned};
use crate::store::{
    check_size, transaction_items, AuditEvent, Change, Page, StoreError, StoreResult, Stored, Update, Write,
    MAX_TRANSACTION_ITEMS,
};

/// Bills one step reads: a step that changes them writes at most half as many (each with its
/// audit event) beside the segment.
pub const STEP_READ: usize = 100;

/// Items a segment's own update takes in a step's transaction (the segment and its event).
const SEGMENT_ITEMS: usize = 2;

/// The stage jobs of both kinds of run, and the segments' job.
pub fn jobs() -> Vec<Arc<dyn Job>> {
    vec![
        Arc::new(StageJob::<BillRun>(PhantomData)),
        Arc::new(StageJob::<AdhocBillRun>(PhantomData)),
        Arc::new(SegmentJob),
    ]
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

struct SegmentJob;

#[async_trait]
impl Job for SegmentJob {
    fn kind(&self) -> Kind {
        Segment::KIND
    }

    async fn step(&self, tenant: &Tenant<'_>, change: &Change) -> StoreResult<bool> {
        Ok(step_segment(tenant, change.key.id(), Some(change.version)).await?.is_some())
    }
}

/// The worker's step on one run of `tenant`, as a system write: `None` when there was nothing to
/// do. It reads and writes that tenant's run, segments and bills only.
/// `seen_version` is the version a stream record reported: an older record than the item is
/// skipped (the newer write has its own record).
pub async fn step<R: Run>(tenant: &Tenant<'_>, id: &Id, seen_version: Option<u64>) -> StoreResult<Option<Stored>> {
    let runs = &tenant.repo::<R>();
    with_retries(move || async move {
        let Some(current) = runs.get(id.clone()).await? else { return Ok(None) };
        if seen_version.is_some_and(|seen| seen < current.version) {
            return Ok(None);
        }
        let Some(writes) = plan(runs, &current).await? else { return Ok(None) };
        commit(tenant, &current.key, current.version, writes).await
    })
    .await
}

/// One step of a segment of `tenant`'s (see [`step`]).
pub async fn step_segment(tenant: &Tenant<'_>, id: &Id, seen_version: Option<u64>) -> StoreResult<Option<Stored>> {
    let segments = &tenant.repo::<Segment>();
    with_retries(move || async move {
        let Some(current) = segments.get(id.clone()).await? else { return Ok(None) };
        if seen_version.is_some_and(|seen| seen < current.version) || current.value.complete {
            return Ok(None);
        }
        let writes = plan_segment(tenant, &current).await?;
        commit(tenant, &current.key, current.version, writes).await
    })
    .await
}

/// Writes a step (the stepped item first). A lost race is retried only while the stepped item
/// itself is unchanged (another item moved under us); a newer write of it has its own record.
pub(super) async fn commit(
    tenant: &Tenant<'_>,
    key: &Key,
    version: u64,
    writes: Vec<Write>,
) -> StoreResult<Option<Stored>> {
    match tenant.write(writes).await {
        Ok(mut saved) => Ok(Some(saved.swap_remove(0))),
        Err(StoreError::Conflict) => match tenant.get(key).await? {
            Some(item) if item.version == version => Err(StoreError::Conflict),
            _ => Ok(None),
        },
        Err(e) => Err(e),
    }
}

/// The run's write for a step: its progress moved from `before` to `next`, with `state` beside
/// (pending only when its segments are not under way, [`StageState::run_pending`]).
fn run_update<R: Run>(
    runs: &Repo<'_, R>,
    current: &Versioned<R>,
    mut run: R,
    (before, next): (Progress, Progress),
    state: Option<&StageState>,
) -> StoreResult<Update> {
    run.set_progress(next);
    let event = AuditEvent::new(None, "worker").with_changes(Changes::between(&before, &next, Vec::new()));
    let mut update = runs.update_of(current, &run, event)?;
    update.state = state.map(encode).transpose()?;
    update.work_pending = StageState::run_pending(&next, state);
    Ok(update)
}

async fn plan<R: Run>(runs: &Repo<'_, R>, current: &Versioned<R>) -> StoreResult<Option<Vec<Write>>> {
    let before = current.value.progress();
    if !before.work_pending() {
        return Ok(None);
    }
    let stage = before.summary_status;
    if before.summary_status_percentage >= 100 || !stage.walks_bills() {
        // A stage that changes no bill completes at once; a finished DISTRIBUTION walks the
        // system stages.
        let Some(next) = before.worker_step() else { return Ok(None) };
        return Ok(Some(vec![Write::Update(run_update(runs, current, current.value.clone(), (before, next), None)?)]));
    }
    if StageState::running(current.state(), &before).is_some() {
        return Ok(None); // its segments are under way
    }
    start_stage(runs, current).await.map(Some)
}

/// A stage's start: the run's bills counted group by group, and its segments written beside the
/// run (the same items serve each stage); a stage with no bills completes at once.
async fn start_stage<R: Run>(runs: &Repo<'_, R>, current: &Versioned<R>) -> StoreResult<Vec<Write>> {
    let run = current.value.clone();
    let before = run.progress();
    let stage = before.summary_status;
    let (kind, run_id) = (R::RUN_KIND, run.run_id());
    let bills = runs.tenant().repo::<Bill>();
    let mut totals = Vec::with_capacity(usize::from(SEGMENTS));
    for group in 0..SEGMENTS {
        totals.push(bills.group_count(&kind.bill_group(run_id, group)).await?);
    }
    if totals.iter().all(|&n| n == 0) {
        let mut run = run;
        run.finish_stage(stage, &Report::default());
        let next = before.worker_step().unwrap_or(before);
        return Ok(vec![Write::Update(run_update(runs, current, run, (before, next), None)?)]);
    }
    let now = crate::store::now_ms();
    let segments = Segment::for_stage(kind, run_id, stage, run.invoice_date(), run.parallel(), (&totals, now))
        .ok_or_else(|| StoreError::Internal(format!("run {run_id} is past the segments' id range")))?;
    let repo = runs.tenant().repo::<Segment>();
    let existing = repo.get_many(segments.iter().map(|s| Id::Int(s.id))).await?;
    let state = StageState::start(stage, &segments);
    let mut writes = vec![Write::Update(run_update(runs, current, run, (before, before), Some(&state))?)];
    for (segment, old) in segments.iter().zip(existing) {
        let event = AuditEvent::new(None, format!("worker {}", stage.name()));
        writes.push(match old {
            Some(old) => Write::Update(repo.update_of(&old, segment, event)?),
            None => Write::Create(repo.new_item(segment, event)?),
        });
    }
    Ok(writes)
}

/// A segment's step: the next bills of its group, then, once it has walked every group, the run
/// told (in the same transaction when it fits, else in the next step).
async fn plan_segment(tenant: &Tenant<'_>, current: &Versioned<Segment>) -> StoreResult<Vec<Write>> {
    let mut segment = current.value.clone();
    let bills = tenant.repo::<Bill>();
    let mut writes = Vec::new();
    let (mut read, mut bytes) = (0, 0);
    // A sequential segment walks its groups one after another, in the same step while it has room.
    while let (Some(group), true) = (segment.group(), read < STEP_READ) {
        let after = (segment.cursor > 0).then(|| Id::Int(segment.cursor).sort_key());
        let limit = STEP_READ - read;
        let index = Page { group: Some(&group), after: after.as_deref(), limit: limit + 1, ..Page::default() };
        let page = bills.page_each(&index).await?;
        let taken = step_bills(&bills, &page[..page.len().min(limit)], &mut segment, (&mut writes, &mut bytes))?;
        if taken < page.len() {
            break; // the step is full, or has read its share
        }
        read += taken;
        segment.next_group();
    }
    let segments = tenant.repo::<Segment>();
    let update = |segment: &Segment| {
        segments.update_of(current, segment, AuditEvent::new(None, format!("worker {}", segment.stage.name())))
    };
    if segment.walked() && segment.done < segment.total {
        walk_again_if_short(&bills, &mut segment).await?;
    }
    if segment.walked() {
        let told = match segment.run_kind {
            RunKind::Regular => finish::<BillRun>(tenant, &segment).await?,
            RunKind::Adhoc => finish::<AdhocBillRun>(tenant, &segment).await?,
        };
        let mut done = segment.clone();
        done.complete = true;
        let mut all = vec![Write::Update(update(&done)?)];
        all.extend(writes.iter().cloned());
        all.extend(told.map(Write::Update));
        if transaction_items(&all) <= MAX_TRANSACTION_ITEMS {
            return Ok(all);
        }
    }
    writes.insert(0, Write::Update(update(&segment)?));
    Ok(writes)
}

/// A segment that walked its groups and found fewer bills than counted: its groups are counted
/// again (strongly consistent; bills may have been deleted since the stage began), and if it is
/// still short an index hid some, so it walks again, once an index has had time to catch up
/// (the step waits out the rest of [`REWALK_PAUSE_MS`]), a bounded number of times.
async fn walk_again_if_short(bills: &Repo<'_, Bill>, segment: &mut Segment) -> StoreResult<()> {
    let mut counted = 0;
    for &group in &segment.groups {
        counted += bills.group_count(&segment.run_kind.bill_group(segment.run_id, group)).await?;
    }
    segment.total = counted;
    let mut decision = segment.rewalk(crate::store::now_ms());
    if decision == Rewalk::Later {
        let waited = crate::store::now_ms().saturating_sub(segment.walk_started_ms);
        tokio::time::sleep(std::time::Duration::from_millis(REWALK_PAUSE_MS.saturating_sub(waited))).await;
        decision = segment.rewalk(crate::store::now_ms());
    }
    if decision == Rewalk::Now {
        tracing::warn!(
            run = segment.run_id,
            index = segment.index,
            "a segment found fewer bills than counted: it walks again"
        );
    }
    Ok(())
}

/// Applies the segment's stage to the first bills of `page`, as many as one transaction holds
/// beside the segment (DynamoDB's 100 items) within [`STEP_BYTES`] of changed bills (`bytes`
/// so far in the step): pushes the changed bills' updates to `writes`, moves `segment` past each
/// bill taken, and answers how many it took. A bill the stage cannot process is set aside
/// (counted, and its reason written on it when the bill can still be written).
fn step_bills(
    bills: &Repo<'_, Bill>,
    page: &[Result<Versioned<Bill>, Unreadable>],
    segment: &mut Segment,
    (writes, bytes): (&mut Vec<Write>, &mut usize),
) -> StoreResult<usize> {
    let now = OffsetDateTime::now_utc();
    let mut taken = 0;
    for item in page {
        let bill = match item {
            Ok(bill) => bill,
            Err(unreadable) => {
                // A corrupt item: set aside (no reason can be written on it), the walk goes on.
                tracing::error!(key = %unreadable.key, error = %unreadable.error, "an unreadable bill is set aside");
                segment.failed += 1;
                segment.cursor = unreadable.key.id().as_int().unwrap_or(segment.cursor);
                segment.done += 1;
                taken += 1;
                continue;
            }
        };
        let (changed, mut aside) = stage_effect(segment.stage, &bill.value, segment.run_id, segment.invoice_date, now);
        if let Some(changed) = &changed {
            let update =
                bills.update_of(bill, changed, AuditEvent::new(None, format!("worker {}", segment.stage.name())))?;
            if let Err(error) = check_size(&update.body, None, None) {
                tracing::warn!(key = %bill.key, %error, "a bill the stage would grow past the bound is set aside");
                aside = true;
            } else {
                let size = update.bytes();
                writes.push(Write::Update(update));
                let full = transaction_items(writes) + SEGMENT_ITEMS > MAX_TRANSACTION_ITEMS;
                if full || (writes.len() > 1 && *bytes + size > STEP_BYTES) {
                    writes.pop();
                    break;
                }
                *bytes += size;
            }
        }
        segment.report.add(changed.as_ref().unwrap_or(&bill.value));
        segment.failed += u64::from(aside);
        segment.cursor = bill.value.id;
        segment.done += 1;
        taken += 1;
    }
    Ok(taken)
}

/// The run's write when `segment` has walked its groups: the segment counted once, and the stage
/// completed when it was the last (its set-aside bills then in `failedBills`). `None` when the run
/// has moved on or counted it already (a repeated delivery).
async fn finish<R: Run>(tenant: &Tenant<'_>, segment: &Segment) -> StoreResult<Option<Update>> {
    let runs = tenant.repo::<R>();
    let Some(current) = runs.get(Id::Int(segment.run_id)).await? else { return Ok(None) };
    let before = current.value.progress();
    let running = StageState::running(current.state(), &before).filter(|_| before.summary_status == segment.stage);
    let Some(mut state) = running else { return Ok(None) };
    if !state.finish(segment) {
        return Ok(None);
    }
    let mut run = current.value.clone();
    if state.all_finished() {
        if state.failed > 0 {
            tracing::warn!(run = %current.key, stage = segment.stage.name(), bills = state.failed, "a stage set bills aside");
            println!("{}", set_aside_emf(state.failed, crate::store::now_ms()));
        }
        run.finish_stage(segment.stage, &state.report);
        let next = Progress { failed_bills: state.failed, ..before.worker_step().unwrap_or(before) };
        return run_update(&runs, &current, run, (before, next), None).map(Some);
    }
    let pct = StageState::percentage(state.total, state.done).max(before.summary_status_percentage);
    let next = Progress { summary_status_percentage: pct, ..before };
    run_update(&runs, &current, run, (before, next), Some(&state)).map(Some)
}

/// Bills a stage set aside, as a CloudWatch embedded-metric-format line (namespace `billflow`,
/// metric `BillsSetAside`), logged once per stage that completed with any.
pub fn set_aside_emf(bills: u64, at_ms: u64) -> String {
    serde_json::json!({
        "_aws": {"Timestamp": at_ms, "CloudWatchMetrics": [{"Namespace": "billflow", "Dimensions": [[]],
            "Metrics": [{"Name": "BillsSetAside", "Unit": "Count"}]}]},
        "BillsSetAside": bills,
    })
    .to_string()
}
