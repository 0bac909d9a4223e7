//! The nine bill-run endpoints, written once for both kinds of run.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::Value;
use time::Date;

use super::{
    backoff, caller, check_if_match, json_body, json_patch_body, path_id, resource_response, respond_to, store_new,
    with_header, ApiError, ApiResult, Deps, Idempotency, Principal, ATTEMPTS, SCOPE_READ, SCOPE_WRITE,
};
use crate::domain::bill::{BillRunKind, Report};
use crate::domain::bill_run::{
    self, apply_patch, AdhocBillRun, BillRun, Changes, NewAdhocBillRun, NewBillRun, Patched, Run, SummaryStatus,
};
use crate::domain::list::{filter, ListQuery, ListSpec};
use crate::domain::patch::Patch;
use crate::domain::{dates, DomainError};
use crate::store::{now_rfc3339, AuditEvent, Entity, Guard, NewItem, StoreError, Stored, Update};

/// What the edge and the store need to know of a kind of run, beyond its domain rules.
pub trait RunResource: Run {
    const ENTITY: Entity;
    /// The collection path, e.g. `/bill-runs`.
    const PATH: &'static str;
    /// The path parameter of the id, as the route table names it.
    const ID_PARAM: &'static str;
    const LIST: ListSpec;
    /// Validates a create body into a run (id 0 until one is allocated).
    fn parse_new(body: &Value, created: Date) -> Result<Self, DomainError>;
    fn set_id(&mut self, id: u64);
    /// The group whose members must not overlap (the billing cycle), if any.
    fn group(&self) -> Option<String>;
    /// Whether `self` may not coexist with another member of its group.
    fn collides_with(&self, other: &Self) -> bool;
    /// How bills name this kind of run.
    const BILL_RUN_KIND: BillRunKind;
    /// The date shown on the run's invoices.
    fn invoice_date(&self) -> Date;
    /// Records REPORTING's figures.
    fn set_report(&mut self, report: &Report);
}

fn is_bill_run_status(v: &str) -> bool {
    bill_run::BillRunStatus::parse(v).is_some()
}

fn is_summary_status(v: &str) -> bool {
    SummaryStatus::parse(v).is_some()
}

pub(crate) fn is_positive_integer(v: &str) -> bool {
    v.parse::<u64>().is_ok_and(|n| n > 0)
}

impl RunResource for BillRun {
    const ENTITY: Entity = Entity::BillRun;
    const PATH: &'static str = "/bill-runs";
    const ID_PARAM: &'static str = "bill_run_id";
    const LIST: ListSpec = ListSpec {
        sortable: &["id", "name", "created", "invoiceDate", "periodStartDate"],
        filters: &[
            filter("billRunStatus", "/billRunStatus", is_bill_run_status),
            filter("summaryStatus", "/summaryStatus", is_summary_status),
            filter("billingCycleId", "/billingCycleId", is_positive_integer),
        ],
        fields: &[
            "id",
            "name",
            "sortableName",
            "billingCycleId",
            "created",
            "periodStartDate",
            "periodEndDate",
            "invoiceDate",
            "includeUsageUntilDate",
            "billRunStatus",
            "summaryStatus",
            "summaryStatusPercentage",
            "billingUserAdminId",
            "parallel",
            "paused",
            "revenueInMajorCurrency",
            "usageSuspenseCount",
            "rentalSuspenseCount",
            "maxInvoiceValue",
            "maxInvoiceCustomerId",
        ],
        archived: None,
    };

    fn parse_new(body: &Value, created: Date) -> Result<Self, DomainError> {
        Ok(NewBillRun::parse(body)?.into_run(0, created))
    }

    fn set_id(&mut self, id: u64) {
        self.id = id;
    }

    fn group(&self) -> Option<String> {
        Some(format!("CYCLE#{}", self.billing_cycle_id))
    }

    fn collides_with(&self, other: &Self) -> bool {
        self.id != other.id && bill_run::overlaps(self, other)
    }

    const BILL_RUN_KIND: BillRunKind = BillRunKind::Regular;

    fn invoice_date(&self) -> Date {
        self.invoice_date
    }

    fn set_report(&mut self, report: &Report) {
        self.revenue_in_major_currency = report.revenue_in_major_currency();
        self.max_invoice_value = report.max_invoice_value;
        self.max_invoice_customer_id = report.max_invoice_customer_id;
    }
}

impl RunResource for AdhocBillRun {
    const ENTITY: Entity = Entity::AdhocBillRun;
    const PATH: &'static str = "/adhoc-bill-runs";
    const ID_PARAM: &'static str = "adhoc_bill_run_id";
    const LIST: ListSpec = ListSpec {
        sortable: &["id", "name", "created", "invoiceDate"],
        filters: &[
            filter("billRunStatus", "/billRunStatus", is_bill_run_status),
            filter("summaryStatus", "/summaryStatus", is_summary_status),
        ],
        fields: &[
            "id",
            "name",
            "nickname",
            "created",
            "invoiceDate",
            "billRunStatus",
            "summaryStatus",
            "summaryStatusPercentage",
            "billingUserAdminId",
            "revenueInMajorCurrency",
            "adhocProductInventoryIds",
            "rentalProductInventoryIds",
        ],
        archived: None,
    };

    fn parse_new(body: &Value, created: Date) -> Result<Self, DomainError> {
        Ok(NewAdhocBillRun::parse(body)?.into_run(0, created))
    }

    fn set_id(&mut self, id: u64) {
        self.id = id;
    }

    fn group(&self) -> Option<String> {
        None
    }

    fn collides_with(&self, _other: &Self) -> bool {
        false
    }

    const BILL_RUN_KIND: BillRunKind = BillRunKind::Adhoc;

    fn invoice_date(&self) -> Date {
        self.invoice_date
    }

    fn set_report(&mut self, report: &Report) {
        self.revenue_in_major_currency = report.revenue_in_major_currency();
    }
}

pub(crate) fn to_doc<R: RunResource>(run: &R) -> ApiResult<Value> {
    serde_json::to_value(run).map_err(|e| ApiError::Internal(format!("serialising a {}: {e}", R::KIND.noun())))
}

fn from_stored<R: RunResource>(stored: &Stored) -> ApiResult<R> {
    serde_json::from_value(stored.doc.clone())
        .map_err(|e| ApiError::Internal(format!("stored {} {} is unreadable: {e}", R::KIND.noun(), stored.id)))
}

async fn load<R: RunResource>(deps: &Deps, id: u64) -> ApiResult<Stored> {
    deps.store
        .get(R::ENTITY, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no {} with id {id}", R::KIND.noun())))
}

fn guard_key<R: RunResource>(group: &str) -> String {
    format!("{}#{group}", R::ENTITY.name())
}

/// Reads the run's group guard and refuses (409) when another member of the group collides.
async fn check_group<R: RunResource>(deps: &Deps, run: &R) -> ApiResult<Option<Guard>> {
    let Some(group) = run.group() else {
        return Ok(None);
    };
    let guard = deps.store.guard(&guard_key::<R>(&group)).await?;
    for member in deps.store.group(R::ENTITY, &group).await? {
        let other: R = from_stored(&member)?;
        if run.collides_with(&other) {
            return Err(ApiError::Conflict(format!(
                "the period overlaps {} {} of the same billing cycle",
                R::KIND.noun(),
                other.id()
            )));
        }
    }
    Ok(Some(guard))
}

pub(crate) fn event(by: Option<u64>, action: &str, changes: Option<Changes>) -> AuditEvent {
    let (from_status, to_status, fields) = match changes {
        Some(c) => (Some(c.from_status), Some(c.to_status), c.fields),
        None => (None, None, Vec::new()),
    };
    AuditEvent { at: now_rfc3339(), by, action: action.to_owned(), from_status, to_status, fields }
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// `GET /bill-runs`, `GET /adhoc-bill-runs`
pub async fn list<R: RunResource>(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, async {
        caller(&req, SCOPE_READ)?;
        let params = req.query_string_parameters_ref();
        let query = ListQuery::parse(params.into_iter().flat_map(|p| p.iter()), &R::LIST)?;
        let (items, total) = deps.store.list(R::ENTITY, &query).await?;
        let items: Vec<Value> = items.into_iter().map(|i| query.project(i)).collect();
        Ok(with_header(super::json_response(StatusCode::OK, &items), "x-total-count", &total.to_string()))
    })
    .await
}

/// `GET /bill-runs/{bill_run_id}`, `GET /adhoc-bill-runs/{adhoc_bill_run_id}`
pub async fn get<R: RunResource>(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, async {
        caller(&req, SCOPE_READ)?;
        let stored = load::<R>(deps, path_id(&req, R::ID_PARAM)?).await?;
        Ok(resource_response(StatusCode::OK, &stored.doc, stored.version))
    })
    .await
}

/// `POST /bill-runs`, `POST /adhoc-bill-runs`: 201 with Location; honours `Idempotency-Key`.
pub async fn create<R: RunResource>(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, async {
        let principal = caller(&req, SCOPE_WRITE)?;
        let body = json_body(&req)?;
        let idempotency = Idempotency::from_request(&req, &principal, R::PATH, &body)?;
        if let Some(idem) = &idempotency {
            if let Some(record) = deps.store.idempotency(&idem.key).await? {
                return idem.replay(&record);
            }
        }
        let mut run = R::parse_new(&body, dates::today())?;
        let mut id = None;
        for attempt in 0..ATTEMPTS {
            backoff(attempt).await;
            let guard = check_group(deps, &run).await?;
            let new_id = match id {
                Some(id) => id,
                None => deps.store.next_id(R::ENTITY).await?,
            };
            id = Some(new_id);
            run.set_id(new_id);
            let doc = to_doc(&run)?;
            let location = format!("{}/{new_id}", R::PATH);
            let item = NewItem {
                entity: R::ENTITY,
                id: new_id,
                group: run.group(),
                work_pending: run.progress().work_pending(),
                guard,
                check: None,
                event: event(Some(principal.user_id), "create", None),
                idempotency: idempotency.as_ref().map(|i| i.record(StatusCode::CREATED, &doc, Some(location.clone()))),
                doc,
            };
            if let Some(response) = store_new(deps, item, idempotency.as_ref(), &location).await? {
                return Ok(response);
            }
        }
        Err(StoreError::Conflict.into())
    })
    .await
}

/// `PATCH /bill-runs/{bill_run_id}`, `PATCH /adhoc-bill-runs/{adhoc_bill_run_id}` (JSON Patch).
pub async fn update<R: RunResource>(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, async {
        let principal = caller(&req, SCOPE_WRITE)?;
        let id = path_id(&req, R::ID_PARAM)?;
        let patch = Patch::parse(&json_patch_body(&req)?)?;
        for attempt in 0..ATTEMPTS {
            backoff(attempt).await;
            let stored = load::<R>(deps, id).await?;
            check_if_match(&req, stored.version)?;
            let current: R = from_stored(&stored)?;
            let (run, changes) = match apply_patch(&current, &patch, principal.user_id)? {
                Patched::Unchanged => return Ok(resource_response(StatusCode::OK, &stored.doc, stored.version)),
                Patched::Changed { run, changes } => (run, changes),
            };
            match write(deps, &principal, &stored, &run, None, "patch", changes).await {
                Err(ApiError::Conflict(_)) => continue,
                other => return other,
            }
        }
        Err(StoreError::Conflict.into())
    })
    .await
}

/// `POST /adjust-bill-run-schedule/{bill_run_id}?periods=N`
pub async fn adjust_schedule(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, async {
        let principal = caller(&req, SCOPE_WRITE)?;
        let id = path_id(&req, BillRun::ID_PARAM)?;
        let periods = bill_run::parse_periods(req.query_string_parameters_ref().and_then(|q| q.first("periods")))?;
        for attempt in 0..ATTEMPTS {
            backoff(attempt).await;
            let stored = load::<BillRun>(deps, id).await?;
            check_if_match(&req, stored.version)?;
            let current: BillRun = from_stored(&stored)?;
            let moved = bill_run::shift_schedule(&current, periods)?;
            let guard = check_group(deps, &moved).await?;
            let changes = Changes::between(
                &current.progress(),
                &moved.progress(),
                vec![
                    "periodStartDate".into(),
                    "periodEndDate".into(),
                    "invoiceDate".into(),
                    "includeUsageUntilDate".into(),
                ],
            );
            match write(deps, &principal, &stored, &moved, guard, "adjust-schedule", changes).await {
                Err(ApiError::Conflict(_)) => continue,
                other => return other,
            }
        }
        Err(StoreError::Conflict.into())
    })
    .await
}

/// The conditional write of a changed run with its audit event.
async fn write<R: RunResource>(
    deps: &Deps,
    principal: &Principal,
    stored: &Stored,
    run: &R,
    guard: Option<Guard>,
    action: &str,
    changes: Changes,
) -> ApiResult {
    let update = Update {
        entity: R::ENTITY,
        id: stored.id,
        expected_version: stored.version,
        doc: to_doc(run)?,
        group: run.group(),
        work_pending: run.progress().work_pending(),
        guard,
        check: None,
        // A new stage (or a re-run) starts the worker afresh; other changes keep its place.
        state: (changes.from_status == changes.to_status).then(|| stored.state.clone()).flatten(),
        event: event(Some(principal.user_id), action, Some(changes)),
    };
    let saved = deps.store.update(update).await?;
    Ok(resource_response(StatusCode::OK, &saved.doc, saved.version))
}
