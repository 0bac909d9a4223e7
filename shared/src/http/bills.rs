//! The five bill endpoints (spec/bills.md). Callers authenticate with `x-api-key`; the
//! authorizer (or the dev server) turns the key into the same caller context as a token.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::Value;
use time::OffsetDateTime;

use super::bill_runs::{event, is_positive_integer};
use super::{
    backoff, caller, check_if_match, json_body, path_id, resource_response, respond_to, store_new, with_header,
    ApiError, ApiResult, Deps, Idempotency, ATTEMPTS, SCOPE_READ, SCOPE_WRITE,
};
use crate::domain::bill::{apply_update, new_lines_in, Bill, BillRunKind, BillStatus, CalculationMethod, NewBill};
use crate::domain::bill_run::BillRunStatus;
use crate::domain::list::{filter, ListQuery, ListSpec};
use crate::domain::patch::changed_members;
use crate::store::{AuditEvent, Delete, Entity, NewItem, StoreError, Stored, Update, VersionCheck};

const PATH: &str = "/bills";
const ID_PARAM: &str = "billId";
/// The counters of bill numbers and line item ids (bill ids use the entity's own).
const BILL_NUMBERS: &str = "BILL_NUMBER";
const LINE_ITEMS: &str = "LINE_ITEM";

pub const LIST: ListSpec = ListSpec {
    sortable: &["id", "billNumber", "dueDate", "issueDate", "createdAt", "amount"],
    filters: &[
        filter("status", "/status", |v| BillStatus::parse(v).is_some()),
        filter("billRunId", "/billRunId", is_positive_integer),
        filter("accountId", "/account/id", is_positive_integer),
        filter("calculationMethod", "/calculationMethod", |v| CalculationMethod::parse(v).is_some()),
    ],
    fields: &[
        "id",
        "billNumber",
        "status",
        "amount",
        "amountPaid",
        "calculationMethod",
        "createdAt",
        "updatedAt",
        "description",
        "type",
        "basedOnId",
        "basedOnUid",
        "dueDate",
        "issueDate",
        "isArchived",
        "percentage",
        "baseAmount",
        "account",
        "record",
        "billRunId",
        "billRunKind",
        "lineItems",
    ],
    archived: Some("isArchived"),
};

fn run_entity(kind: BillRunKind) -> Entity {
    match kind {
        BillRunKind::Regular => Entity::BillRun,
        BillRunKind::Adhoc => Entity::AdhocBillRun,
    }
}

fn to_doc(bill: &Bill) -> ApiResult<Value> {
    serde_json::to_value(bill).map_err(|e| ApiError::Internal(format!("serialising a bill: {e}")))
}

fn from_stored(stored: &Stored) -> ApiResult<Bill> {
    serde_json::from_value(stored.doc.clone())
        .map_err(|e| ApiError::Internal(format!("stored bill {} is unreadable: {e}", stored.id)))
}

/// The conditional write of a changed bill with its audit event.
fn bill_write(stored: &Stored, next: &Bill, check: Option<VersionCheck>, by: u64, action: &str) -> ApiResult<Update> {
    let doc = to_doc(next)?;
    Ok(Update {
        entity: Entity::Bill,
        id: stored.id,
        expected_version: stored.version,
        group: next.run_group(),
        work_pending: false,
        guard: None,
        check,
        state: None,
        event: bill_event(by, action, Some(&stored.doc), Some(&doc)),
        doc,
    })
}

async fn load(deps: &Deps, id: u64) -> ApiResult<Stored> {
    deps.store.get(Entity::Bill, id).await?.ok_or_else(|| ApiError::NotFound(format!("no bill with id {id}")))
}

/// The run a bill belongs to, as a version check for the write, and whether it is FINALIZED.
async fn run_of(deps: &Deps, bill: &Bill) -> ApiResult<(Option<VersionCheck>, bool)> {
    let Some(run_id) = bill.bill_run_id else { return Ok((None, false)) };
    let entity = run_entity(bill.bill_run_kind.unwrap_or(BillRunKind::Regular));
    match deps.store.get(entity, run_id).await? {
        Some(run) => {
            let finalized = run.doc["billRunStatus"] == BillRunStatus::Finalized.name();
            Ok((Some(VersionCheck { entity, id: run_id, version: run.version }), finalized))
        }
        None => Ok((None, false)),
    }
}

/// Reserves `n` fresh line item ids.
async fn line_ids(deps: &Deps, n: usize) -> ApiResult<Vec<u64>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let last = deps.store.next_ids(LINE_ITEMS, n as u64).await?;
    Ok((last + 1 - n as u64..=last).collect())
}

fn bill_event(by: u64, action: &str, before: Option<&Value>, after: Option<&Value>) -> AuditEvent {
    let status = |doc: Option<&Value>| doc.and_then(|d| d["status"].as_str()).map(str::to_owned);
    let fields = match (before.and_then(Value::as_object), after.and_then(Value::as_object)) {
        (Some(b), Some(a)) => changed_members(b, a),
        _ => Vec::new(),
    };
    AuditEvent { fields, from_status: status(before), to_status: status(after), ..event(Some(by), action, None) }
}

/// `GET /bills`
pub async fn list(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, async {
        caller(&req, SCOPE_READ)?;
        let params = req.query_string_parameters_ref();
        let query = ListQuery::parse(params.into_iter().flat_map(|p| p.iter()), &LIST)?;
        let (items, total) = deps.store.list(Entity::Bill, &query).await?;
        let items: Vec<Value> = items.into_iter().map(|i| query.project(i)).collect();
        Ok(with_header(super::json_response(StatusCode::OK, &items), "x-total-count", &total.to_string()))
    })
    .await
}

/// `GET /bills/{billId}`
pub async fn get(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, async {
        caller(&req, SCOPE_READ)?;
        let stored = load(deps, path_id(&req, ID_PARAM)?).await?;
        Ok(resource_response(StatusCode::OK, &stored.doc, stored.version))
    })
    .await
}

/// `POST /bills`: 201 with Location; honours `Idempotency-Key`. A `billRunId` must name an OPEN
/// run, and the bill joins it only while the run stays as it was read.
pub async fn create(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, async {
        let principal = caller(&req, SCOPE_WRITE)?;
        let body = json_body(&req)?;
        let idempotency = Idempotency::from_request(&req, &principal, PATH, &body)?;
        if let Some(idem) = &idempotency {
            if let Some(record) = deps.store.idempotency(&idem.key).await? {
                return idem.replay(&record);
            }
        }
        let new = NewBill::parse(&body)?;
        let mut reserved: Option<(u64, u64, Vec<u64>)> = None;
        for attempt in 0..ATTEMPTS {
            backoff(attempt).await;
            let check = match new.bill_run {
                None => None,
                Some((kind, run_id)) => {
                    let entity = run_entity(kind);
                    let run = deps.store.get(entity, run_id).await?;
                    match run {
                        Some(run) if run.doc["billRunStatus"] == BillRunStatus::Open.name() => {
                            Some(VersionCheck { entity, id: run_id, version: run.version })
                        }
                        Some(run) => {
                            return Err(ApiError::Conflict(format!(
                                "bill run {run_id} is {}: bills join OPEN runs only",
                                run.doc["billRunStatus"].as_str().unwrap_or("not OPEN")
                            )))
                        }
                        None => {
                            return Err(ApiError::Conflict(format!("there is no {kind:?} bill run {run_id} to join")))
                        }
                    }
                }
            };
            let (id, number, lines) = match &reserved {
                Some(ids) => ids.clone(),
                None => {
                    let id = deps.store.next_id(Entity::Bill).await?;
                    let number = deps.store.next_ids(BILL_NUMBERS, 1).await?;
                    let lines = line_ids(deps, new.lines.len()).await?;
                    (id, number, lines)
                }
            };
            reserved = Some((id, number, lines.clone()));
            let bill = new.clone().into_bill(id, number, &mut lines.into_iter(), OffsetDateTime::now_utc())?;
            let doc = to_doc(&bill)?;
            let location = format!("{PATH}/{id}");
            let item = NewItem {
                entity: Entity::Bill,
                id,
                group: bill.run_group(),
                work_pending: false,
                guard: None,
                check,
                event: bill_event(principal.user_id, "create", None, Some(&doc)),
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

/// `PATCH /bills/{billId}`: a partial object under the eight rules of spec/bills.md.
pub async fn update(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, async {
        let principal = caller(&req, SCOPE_WRITE)?;
        let id = path_id(&req, ID_PARAM)?;
        let body = json_body(&req)?;
        if !body.is_object() {
            return Err(ApiError::field("", "the body must be a JSON object of the fields to change"));
        }
        let mut new_ids: Option<Vec<u64>> = None;
        for attempt in 0..ATTEMPTS {
            backoff(attempt).await;
            let stored = load(deps, id).await?;
            check_if_match(&req, stored.version)?;
            let current = from_stored(&stored)?;
            let (check, finalized) = run_of(deps, &current).await?;
            if new_ids.is_none() {
                new_ids = Some(line_ids(deps, new_lines_in(&body)).await?);
            }
            let ids = new_ids.clone().unwrap_or_default();
            let Some(next) = apply_update(&current, &body, finalized, &mut ids.into_iter(), OffsetDateTime::now_utc())?
            else {
                return Ok(resource_response(StatusCode::OK, &stored.doc, stored.version));
            };
            match deps.store.update(bill_write(&stored, &next, check, principal.user_id, "patch")?).await {
                Ok(saved) => return Ok(resource_response(StatusCode::OK, &saved.doc, saved.version)),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    })
    .await
}

/// `DELETE /bills/{billId}`: a DRAFT bill is deleted (204); any other is archived (200 with the
/// bill, `isArchived` true). A bill of a FINALIZED run is frozen (409).
pub async fn delete(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, async {
        let principal = caller(&req, SCOPE_WRITE)?;
        let id = path_id(&req, ID_PARAM)?;
        for attempt in 0..ATTEMPTS {
            backoff(attempt).await;
            let stored = load(deps, id).await?;
            check_if_match(&req, stored.version)?;
            let current = from_stored(&stored)?;
            let (check, finalized) = run_of(deps, &current).await?;
            if finalized {
                return Err(ApiError::Conflict("the bill's run is FINALIZED: its bills change not at all".into()));
            }
            let outcome = if current.status == BillStatus::Draft && !current.is_archived {
                let removal = Delete {
                    entity: Entity::Bill,
                    id,
                    expected_version: stored.version,
                    check,
                    event: bill_event(principal.user_id, "delete", Some(&stored.doc), None),
                };
                deps.store.delete(removal).await.map(|()| None)
            } else if current.is_archived {
                return Ok(resource_response(StatusCode::OK, &stored.doc, stored.version));
            } else {
                let archived = Bill { is_archived: true, updated_at: OffsetDateTime::now_utc(), ..current };
                deps.store.update(bill_write(&stored, &archived, check, principal.user_id, "archive")?).await.map(Some)
            };
            match outcome {
                Ok(None) => {
                    let mut response = Response::new(Body::Empty);
                    *response.status_mut() = StatusCode::NO_CONTENT;
                    return Ok(response);
                }
                Ok(Some(saved)) => return Ok(resource_response(StatusCode::OK, &saved.doc, saved.version)),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    })
    .await
}

/// The hash an API key is stored under: SHA-256, hex. The key itself is never stored or logged.
pub fn api_key_hash(key: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(key.as_bytes()))
}
