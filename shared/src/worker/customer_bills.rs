//! The customer-bill family's job: carry out an on-demand bill request. The request holds its
//! billing account (no other request bills it meanwhile, see `http::customer_bills`), then:
//!
//! 1. **Scan** the account's unbilled rates in pages, reading only: no rates, or rates in more
//!    than one currency, reject the request before any rate is touched.
//! 2. **Bill** them from the first to the last the scan saw, in steps of [`BILL_BATCH`]: each
//!    step marks its rates billed (each conditional on the version read) together with the
//!    request's progress, in one transaction.
//! 3. **Publish**: the last step creates the bill, marks the request `done` and releases the
//!    account, in the same transaction as its rates. An account with at most [`BILL_BATCH`]
//!    unbilled rates is billed in this one step.
//!
//! A rate marked billed has left the account's unbilled group, so a repeated or stale delivery
//! can never bill it twice; a rate that arrives during the walk either falls after the scan's end
//! (it waits for the next request) or is billed like the others when its currency matches. An
//! unexpected failure (a corrupt item, a bill past the size bound, a panic), or a request that
//! has not moved for [`STUCK_LEASES`] leases and at least [`STUCK_FLOOR_MS`] (the sweeper
//! re-drives it), is undone: the rates it billed are unbilled, then it ends
//! `terminatedWithError` and releases the account. A transient failure (throttling, a lost race)
//! is retried.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Job, STEP_BYTES};
use crate::domain::customer_bill::{
    datetime, new_id, rate_group, AccountBilling, AppliedRate, CustomerBill, NewBill, OnDemand, Refusal, RequestState,
    Tally,
};
use crate::domain::key::{Id, Kind};
use crate::domain::resource::Resource;
use crate::retry::with_retries;
use crate::store::repo::{encode, Tenant, Versioned};
use crate::store::{AuditEvent, Change, Page, StoreError, StoreResult, Write, MAX_ITEM_BYTES};

/// Rates read per scanning step (reads only).
pub const SCAN_BATCH: usize = 200;
/// Rates billed per step: with the request, the account and the bill, one transaction stays
/// within DynamoDB's 100 items (each rate is its item and its audit event); a step also stops at
/// [`STEP_BYTES`] of rates, so that one of large rates stays within its 4 MB.
pub const BILL_BATCH: usize = 40;

/// The counter bill numbers come from.
pub const BILL_NUMBERS: &str = "CUSTOMER_BILL_NO";

pub fn jobs() -> Vec<Arc<dyn Job>> {
    vec![Arc::new(OnDemandJob)]
}

struct OnDemandJob;

#[async_trait]
impl Job for OnDemandJob {
    fn kind(&self) -> Kind {
        OnDemand::KIND
    }

    async fn step(&self, tenant: &Tenant<'_>, change: &Change) -> StoreResult<bool> {
        step(tenant, change.key.id(), Some(change.version)).await
    }
}

/// Where a request stands, kept beside it (never shown to clients).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Progress {
    /// The bill's id once billing has begun (the scan is over).
    bill: Option<Uuid>,
    /// The order key of the last rate scanned or billed.
    cursor: Option<String>,
    /// The order key of the last rate the scan saw: billing stops there.
    end: Option<String>,
    tally: Tally,
    /// Why the request cannot finish, once it is undoing what it billed.
    #[serde(default)]
    undoing: Option<String>,
    /// When a step last moved it (epoch ms): a request that has not moved for long ([`stuck`]) is
    /// given up.
    #[serde(default)]
    stepped_at_ms: u64,
    /// Rates the scan counted, and billing walks started again because fewer were billed (an
    /// index that lagged its table hid some).
    #[serde(default)]
    scanned: u64,
    #[serde(default)]
    rewalks: u8,
}

/// Billing walks a request starts again before it bills what it found.
const MAX_REWALKS: u8 = 5;

/// Leases without a step after which a request counts as stuck: it is undone and ended
/// `terminatedWithError`, and its account released, by the next step the sweeper re-drives.
pub const STUCK_LEASES: u32 = 10;

/// The least time without a step after which a request counts as stuck, whatever the lease: twice
/// the worker function's timeout (60 s), so that a step still running (slow, but alive) is never
/// taken for a stuck one by a concurrent step the sweeper re-drove.
pub const STUCK_FLOOR_MS: u64 = 120_000;

/// Whether the request has not moved for [`STUCK_LEASES`] leases (and [`STUCK_FLOOR_MS`]).
fn stuck(request: &OnDemand, at: &Progress) -> bool {
    let requested = u64::try_from(request.last_update.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let moved = at.stepped_at_ms.max(requested);
    let leases = crate::store::work_lease().as_millis().saturating_mul(u128::from(STUCK_LEASES));
    u128::from(crate::store::now_ms().saturating_sub(moved)) > leases.max(u128::from(STUCK_FLOOR_MS))
}

/// One step on a request of `tenant` (it bills that tenant's rates of the account only): `false`
/// when there was nothing to do (it is no longer in progress, or the delivery is older than the
/// request).
pub async fn step(store: &Tenant<'_>, id: &Id, seen_version: Option<u64>) -> StoreResult<bool> {
    let requests = &store.repo::<OnDemand>();
    with_retries(move || async move {
        let Some(current) = requests.get(id.clone()).await? else { return Ok(false) };
        if seen_version.is_some_and(|seen| seen < current.version) || !current.value.work_pending() {
            return Ok(false);
        }
        let at: Progress = current.state().unwrap_or_default();
        let undoing = at.undoing.clone().or_else(|| {
            stuck(&current.value, &at).then(|| failure(&current, &"the request stopped moving for too long"))
        });
        let planned = match undoing {
            Some(reason) => AssertUnwindSafe(undo(store, &current, at.clone(), reason)).catch_unwind().await,
            None => AssertUnwindSafe(plan(store, &current)).catch_unwind().await,
        };
        let writes = match planned {
            Ok(Ok(writes)) => writes,
            Ok(Err(e @ (StoreError::Conflict | StoreError::Throttled(_) | StoreError::Unavailable(_)))) => {
                return Err(e)
            }
            // Undoing fails only as the store does: tried again (the sweeper re-drives it).
            _ if at.undoing.is_some() => return Err(StoreError::Unavailable("undoing a request failed".into())),
            Ok(Err(error)) => undo(store, &current, at.clone(), failure(&current, &error)).await?,
            Err(_) => undo(store, &current, at.clone(), failure(&current, &"the step panicked")).await?,
        };
        match store.write(writes).await {
            Ok(_) => Ok(true),
            // Retried only while the request itself is unchanged (a rate moved under us).
            Err(StoreError::Conflict) => match requests.get(id.clone()).await? {
                Some(now) if now.version == current.version => Err(StoreError::Conflict),
                _ => Ok(false),
            },
            Err(StoreError::TooLarge { size, .. }) => {
                let reason = failure(&current, &format!("the bill would be {size} bytes, over the item bound"));
                store.write(undo(store, &current, at, reason).await?).await?;
                Ok(true)
            }
            Err(e) => Err(e),
        }
    })
    .await
}

/// One step of undoing a request that cannot finish (`reason` says why): the rates it billed on
/// its bill, which was never made, are unbilled a page a step (within [`STEP_BYTES`]); with none
/// left the request ends `terminatedWithError` and its account is released. So every rate is
/// either unbilled or on a bill that exists.
async fn undo(
    store: &Tenant<'_>,
    current: &Versioned<OnDemand>,
    mut at: Progress,
    reason: String,
) -> StoreResult<Vec<Write>> {
    let Some(bill) = at.bill else {
        return end(store, current, RequestState::TerminatedWithError, &reason).await;
    };
    let rates = store.repo::<AppliedRate>();
    let group = AppliedRate::bill_group(&bill.to_string());
    let index = Page { group: Some(&group), slot: AppliedRate::BILL_SLOT, limit: BILL_BATCH, ..Page::default() };
    let page = rates.page(&index).await?;
    if page.is_empty() {
        // None left, unless the index lags its table: the group's count says.
        let left = rates.group_count(&group).await?;
        if left > 0 {
            return Err(StoreError::Unavailable(format!("the index hides {left} rates billed on {bill}")));
        }
        return end(store, current, RequestState::TerminatedWithError, &reason).await;
    }
    at.undoing = Some(reason);
    let mut writes = vec![progress(store, current, &at, "undo")?];
    let mut bytes = 0;
    for rate in &page {
        if bytes >= STEP_BYTES {
            break;
        }
        let event = AuditEvent::new(None, format!("unbilled: bill {bill} was never made"));
        let update = rates.update_of(rate, &rate.value.unbilled(), event)?;
        bytes += update.bytes();
        writes.push(Write::Update(update));
    }
    Ok(writes)
}

/// The reason a request failed, as its description tells the client (the cause is logged).
fn failure(request: &Versioned<OnDemand>, cause: &dyn std::fmt::Display) -> String {
    tracing::error!(request = %request.key, cause = %cause, "on-demand billing failed");
    "billing failed unexpectedly; no bill was made".to_owned()
}

/// The scan: tallies one page of the account's unbilled rates, and at their end checks that the
/// bill will fit an item before any rate is touched, then starts billing. `Err` holds the step's
/// writes when the step ends here (the next page, or the request refused).
async fn scan(
    store: &Tenant<'_>,
    current: &Versioned<OnDemand>,
    unbilled: &str,
    mut at: Progress,
) -> StoreResult<Result<Progress, Vec<Write>>> {
    let rates = store.repo::<AppliedRate>();
    let account = &current.value.billing_account.id;
    // The group's count (kept with the rates, read strongly consistent) before the page: every
    // rate it counts was written before the page was read.
    let counted = rates.group_count(unbilled).await?;
    let index = Page { group: Some(unbilled), after: at.cursor.as_deref(), limit: SCAN_BATCH + 1, ..Page::default() };
    let page = rates.page(&index).await?;
    for rate in page.iter().take(SCAN_BATCH) {
        if let Err(refusal) = at.tally.add(&rate.value) {
            return end(store, current, RequestState::Rejected, &refusal.to_string()).await.map(Err);
        }
        at.cursor = Some(rate.value.order());
    }
    if page.len() > SCAN_BATCH {
        return Ok(Err(vec![progress(store, current, &at, "scan")?]));
    }
    // The index may lag its table: the scan must have seen at least every rate counted before its
    // last page, else it is tried again (a rate written since waits for the next request).
    if at.tally.count < counted {
        return Err(StoreError::Unavailable(format!("the scan saw {} of {counted} unbilled rates", at.tally.count)));
    }
    if at.tally.count == 0 {
        let reason = Refusal::NoRates(account.clone()).to_string();
        return end(store, current, RequestState::Rejected, &reason).await.map(Err);
    }
    // The bill, and the tally kept beside the request, must fit an item: known before any
    // rate is touched (tax items are at most 1,000, but their categories may be long).
    let now = datetime::now();
    let preview = NewBill { id: new_id(), document: new_id(), bill_no: u64::MAX, request: &current.value, now };
    let size = match at.tally.bill(preview) {
        Ok(bill) => encode(&bill)?.len(),
        Err(refusal) => return end(store, current, RequestState::Rejected, &refusal.to_string()).await.map(Err),
    };
    if size > MAX_ITEM_BYTES / 2 {
        let reason = format!("the bill would be {size} bytes, too large to store: too many or too long tax items");
        return end(store, current, RequestState::Rejected, &reason).await.map(Err);
    }
    Ok(Ok(Progress {
        bill: Some(new_id()),
        cursor: None,
        end: at.cursor,
        scanned: at.tally.count,
        ..Progress::default()
    }))
}

/// The writes of one step.
async fn plan(store: &Tenant<'_>, current: &Versioned<OnDemand>) -> StoreResult<Vec<Write>> {
    let rates = store.repo::<AppliedRate>();
    let account = &current.value.billing_account.id;
    let unbilled = rate_group(account, false);
    let mut at: Progress = current.state().unwrap_or_default();
    if at.bill.is_none() {
        at = match scan(store, current, &unbilled, at).await? {
            Ok(at) => at,
            Err(writes) => return Ok(writes),
        };
    }
    let bill = at.bill.unwrap_or_else(new_id);
    let index = Page { group: Some(&unbilled), after: at.cursor.as_deref(), limit: BILL_BATCH + 1, ..Page::default() };
    let page = rates.page(&index).await?;
    let last = at.end.clone().unwrap_or_default();
    let (mut writes, mut bytes, mut more) = (Vec::new(), 0, false);
    for (i, rate) in page.iter().enumerate() {
        let order = rate.value.order();
        if order > last {
            break;
        }
        // At most BILL_BATCH rates, and about STEP_BYTES of them: large rates take more steps.
        if i == BILL_BATCH || bytes >= STEP_BYTES {
            more = true;
            break;
        }
        // A rate that arrived during the walk in another currency stays unbilled.
        if at.tally.add(&rate.value).is_ok() {
            let event = AuditEvent::new(None, format!("billed on {bill}"));
            let update = rates.update_of(rate, &rate.value.billed_on(bill), event)?;
            bytes += update.bytes();
            writes.push(Write::Update(update));
        }
        at.cursor = Some(order);
    }
    // Fewer billed than scanned: an index that lagged hid some; billing walks again from the
    // start (what it billed has left the unbilled group), a bounded number of times.
    let rewalk = !more && at.tally.count < at.scanned && at.rewalks < MAX_REWALKS;
    if rewalk {
        (at.cursor, at.rewalks) = (None, at.rewalks + 1);
    }
    if more || rewalk {
        writes.insert(0, progress(store, current, &at, "bill")?);
        return Ok(writes);
    }
    publish(store, current, &at, bill, writes).await
}

/// The last step: the bill made from what was billed, the request `done` and its account released,
/// with the step's rates.
async fn publish(
    store: &Tenant<'_>,
    current: &Versioned<OnDemand>,
    at: &Progress,
    bill: Uuid,
    writes: Vec<Write>,
) -> StoreResult<Vec<Write>> {
    let now = datetime::now();
    let bill_no = store.next_ids(BILL_NUMBERS, 1).await?;
    let new = NewBill { id: bill, document: new_id(), bill_no, request: &current.value, now };
    let bill = match at.tally.bill(new) {
        Ok(bill) => bill,
        // Rates were billed on it in earlier steps: they are undone first.
        Err(refusal) => return undo(store, current, at.clone(), refusal.to_string()).await,
    };
    let done = current.value.done(&bill, now);
    let event = AuditEvent::new(None, "worker").with_change(Some("inProgress".into()), Some("done".into()), Vec::new());
    let mut published = vec![
        Write::Create(store.repo::<CustomerBill>().new_item(&bill, AuditEvent::new(None, "on demand"))?),
        Write::Update(store.repo::<OnDemand>().update_of(current, &done, event)?),
    ];
    published.extend(release(store, &current.value).await?);
    published.extend(writes);
    Ok(published)
}

/// The request's progress, written with the step's rates.
fn progress(store: &Tenant<'_>, current: &Versioned<OnDemand>, at: &Progress, phase: &str) -> StoreResult<Write> {
    let event = AuditEvent::new(None, format!("worker {phase}"));
    let mut update = store.repo::<OnDemand>().update_of(current, &current.value, event)?;
    let at = Progress { stepped_at_ms: crate::store::now_ms(), ..at.clone() };
    update.state = Some(encode(&at)?);
    Ok(Write::Update(update))
}

/// The request ended without a bill, and its account released.
async fn end(
    store: &Tenant<'_>,
    current: &Versioned<OnDemand>,
    state: RequestState,
    reason: &str,
) -> StoreResult<Vec<Write>> {
    let next = current.value.ended(state, reason, datetime::now());
    let event =
        AuditEvent::new(None, "worker").with_change(Some("inProgress".into()), Some(state.name().into()), Vec::new());
    let mut writes = vec![Write::Update(store.repo::<OnDemand>().update_of(current, &next, event)?)];
    writes.extend(release(store, &current.value).await?);
    Ok(writes)
}

/// Releases the request's hold on its account (nothing when it holds none).
async fn release(store: &Tenant<'_>, request: &OnDemand) -> StoreResult<Option<Write>> {
    let accounts = store.repo::<AccountBilling>();
    let Some(held) = accounts.get(Id::Uuid(AccountBilling::id_of(&request.billing_account.id))).await? else {
        return Ok(None);
    };
    if held.value.on_demand != Some(request.id) {
        return Ok(None);
    }
    let free = AccountBilling { on_demand: None, ..held.value.clone() };
    let event = AuditEvent::new(None, format!("released by {}", request.id));
    Ok(Some(Write::Update(accounts.update_of(&held, &free, event)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::customer_bill::parse_on_demand;

    #[test]
    fn a_request_is_stuck_once_it_has_not_moved_for_ten_leases_and_two_minutes() {
        let patience =
            (crate::store::work_lease() * STUCK_LEASES).max(std::time::Duration::from_millis(STUCK_FLOOR_MS));
        let at = |ago: std::time::Duration| datetime::now() - ago;
        let request =
            |ago| parse_on_demand(&serde_json::json!({"billingAccount": {"id": "A1"}}), new_id(), at(ago)).unwrap();
        let fresh = Progress::default();
        assert!(!stuck(&request(std::time::Duration::ZERO), &fresh));
        assert!(!stuck(&request(patience / 2), &fresh));
        assert!(stuck(&request(patience * 2), &fresh), "asked long ago and never stepped");
        let stepped = Progress { stepped_at_ms: crate::store::now_ms(), ..Progress::default() };
        assert!(!stuck(&request(patience * 2), &stepped), "a request that moves is never stuck");
        let long_ago =
            Progress { stepped_at_ms: crate::store::now_ms() - 2 * patience.as_millis() as u64, ..Progress::default() };
        assert!(stuck(&request(patience * 3), &long_ago));
    }
}
