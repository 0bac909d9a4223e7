//! The five bill endpoints (docs/bills.md). Callers authenticate with `x-api-key`; the
//! authorizer (or the dev server) turns the key into the same caller context as a token.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::Value;
use time::OffsetDateTime;

use super::caller::acting;
use super::error::{ApiError, ApiResult, ErrorFormat};
use super::handler::{self, Create, TenantFrom};
use super::idempotency::create_or_replay;
use super::request::{check_if_match, json_body, path_id};
use super::response::{no_content, resource_response, respond_to};
use super::Deps;
use crate::domain::bill::{apply_update, new_lines_in, Bill, NewBill, Removal};
use crate::domain::bill_run::{AdhocBillRun, BillRun, BillRunStatus, Run, RunKind};
use crate::domain::identity::{SCOPE_READ, SCOPE_WRITE};
use crate::domain::key::Id;
use crate::domain::patch::changed_members;
use crate::domain::resource::Resource;
use crate::retry::with_retries;
use crate::store::repo::{Repo, Tenant, Versioned};
use crate::store::{AuditEvent, VersionCheck};
use tokio::sync::OnceCell;

/// Bills answer errors as problem+json.
const FORMAT: ErrorFormat = ErrorFormat::Problem;
const PATH: &str = "/bills";
const ID_PARAM: &str = "billId";
/// The counters of bill numbers and line item ids (bill ids use the kind's own).
const BILL_NUMBERS: &str = "BILL_NUMBER";
const LINE_ITEMS: &str = "LINE_ITEM";

async fn load(repo: &Repo<'_, Bill>, id: &Id) -> ApiResult<Versioned<Bill>> {
    handler::load(repo, id, "bill").await
}

/// A run's status, with a check that it stays as read, when it exists in the bill's tenant
/// (another tenant's run of that id is never read: it answers as one that does not exist).
async fn run_state<R: Run>(store: &Tenant<'_>, id: u64) -> ApiResult<Option<(VersionCheck, BillRunStatus)>> {
    let run = store.repo::<R>().get(Id::Int(id)).await?;
    Ok(run.map(|run| (run.check(), run.value.progress().bill_run_status)))
}

/// The state of the run of `kind` with `id`, if it exists.
async fn run_of(store: &Tenant<'_>, (kind, id): (RunKind, u64)) -> ApiResult<Option<(VersionCheck, BillRunStatus)>> {
    match kind {
        RunKind::Regular => run_state::<BillRun>(store, id).await,
        RunKind::Adhoc => run_state::<AdhocBillRun>(store, id).await,
    }
}

/// The run a bill belongs to: a version check for the write, and its status.
async fn bill_run_state(store: &Tenant<'_>, bill: &Bill) -> ApiResult<(Option<VersionCheck>, Option<BillRunStatus>)> {
    let Some(run) = bill.run() else { return Ok((None, None)) };
    Ok(run_of(store, run).await?.map_or((None, None), |(check, status)| (Some(check), Some(status))))
}

/// Reserves `n` fresh line item ids.
async fn line_ids(store: &Tenant<'_>, n: usize) -> ApiResult<Vec<u64>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let last = store.next_ids(LINE_ITEMS, n as u64).await?;
    Ok((last + 1 - n as u64..=last).collect())
}

/// The audit event of a bill's change: statuses and the top-level fields that changed.
fn bill_event(by: u64, action: &str, before: Option<&Bill>, after: Option<&Bill>) -> AuditEvent {
    let status = |bill: Option<&Bill>| bill.map(|b| b.status.name().to_owned());
    let object = |bill: Option<&Bill>| match bill.map(serde_json::to_value) {
        Some(Ok(Value::Object(map))) => Some(map),
        _ => None,
    };
    let fields = match (object(before), object(after)) {
        (Some(b), Some(a)) => changed_members(&b, &a),
        _ => Vec::new(),
    };
    AuditEvent::new(Some(by), action).with_change(status(before), status(after), fields)
}

/// `GET /bills`
pub async fn list(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, handler::list::<Bill>(deps, &req)).await
}

/// `GET /bills/{billId}`
pub async fn get(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (_, tenant) = acting(deps, &req, SCOPE_READ)?;
        let bill = load(&tenant.repo(), &path_id(&req, ID_PARAM, Bill::KIND.ids)?).await?;
        Ok(resource_response(StatusCode::OK, &bill.body, bill.version))
    })
    .await
}

/// `POST /bills`: 201 with Location; honours `Idempotency-Key`. A `billRunId` must name an OPEN
/// run, and the bill joins it only while the run stays as it was read.
pub async fn create(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let Create { principal, tenant, body, idempotency } =
            match Create::begin(deps, &req, TenantFrom::Credential, PATH).await? {
                Ok(create) => create,
                Err(replay) => return Ok(replay),
            };
        let repo = tenant.repo::<Bill>();
        let store = &tenant;
        let new = NewBill::parse(&body)?;
        let reserved = OnceCell::new();
        let (repo, new, reserved, idempotency, by) = (&repo, &new, &reserved, &idempotency, principal.user_id);
        with_retries(move || async move {
            let check = match new.bill_run {
                None => None,
                Some((kind, run_id)) => {
                    let (check, status) = run_of(store, (kind, run_id))
                        .await?
                        .ok_or_else(|| ApiError::Conflict(format!("there is no {} {run_id} to join", kind.noun())))?;
                    status.admit_bill(kind.noun(), run_id)?;
                    Some(check)
                }
            };
            let (id, number, lines) = reserved
                .get_or_try_init(|| async {
                    let id =
                        repo.next_id().await?.as_int().ok_or_else(|| ApiError::internal("a bill id is an integer"))?;
                    let number = store.next_ids(BILL_NUMBERS, 1).await?;
                    Ok::<_, ApiError>((id, number, line_ids(store, new.lines.len()).await?))
                })
                .await?;
            let bill = new.clone().into_bill(*id, *number, &mut lines.iter().copied(), OffsetDateTime::now_utc())?;
            let mut item = repo.new_item(&bill, bill_event(by, "create", None, Some(&bill)))?;
            item.check = check;
            create_or_replay(store, item, Vec::new(), idempotency.as_ref(), &format!("{PATH}/{id}")).await
        })
        .await
    })
    .await
}

/// `PATCH /bills/{billId}`: a partial object under the eight rules of `domain::bill::apply_update` (docs/bills.md).
pub async fn update(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (principal, tenant) = acting(deps, &req, SCOPE_WRITE)?;
        let id = path_id(&req, ID_PARAM, Bill::KIND.ids)?;
        let body = json_body(&req)?;
        if !body.is_object() {
            return Err(ApiError::field("", "the body must be a JSON object of the fields to change"));
        }
        let repo = tenant.repo::<Bill>();
        let new_ids = OnceCell::new();
        let (repo, req, id, body, new_ids, by) = (&repo, &req, &id, &body, &new_ids, principal.user_id);
        with_retries(move || async move {
            let current = load(repo, id).await?;
            check_if_match(req, current.version)?;
            let (check, run_status) = bill_run_state(repo.tenant(), &current.value).await?;
            let ids = new_ids.get_or_try_init(|| line_ids(repo.tenant(), new_lines_in(body))).await?;
            let frozen = run_status.is_some_and(BillRunStatus::freezes_bills);
            let now = OffsetDateTime::now_utc();
            let Some(next) = apply_update(&current.value, body, frozen, &mut ids.iter().copied(), now)? else {
                return Ok(resource_response(StatusCode::OK, &current.body, current.version));
            };
            let event = bill_event(by, "patch", Some(&current.value), Some(&next));
            let mut update = repo.update_of(&current, &next, event)?;
            update.check = check;
            let saved = repo.tenant().update(update).await?;
            Ok(resource_response(StatusCode::OK, &saved.body, saved.version))
        })
        .await
    })
    .await
}

/// `DELETE /bills/{billId}`: a DRAFT bill is deleted (204); any other is archived (200 with the
/// bill, `isArchived` true). A bill of a FINALIZED run is frozen (409).
pub async fn delete(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (principal, tenant) = acting(deps, &req, SCOPE_WRITE)?;
        let id = path_id(&req, ID_PARAM, Bill::KIND.ids)?;
        let repo = tenant.repo::<Bill>();
        let (repo, req, id, by) = (&repo, &req, &id, principal.user_id);
        with_retries(move || async move {
            let current = load(repo, id).await?;
            check_if_match(req, current.version)?;
            let (check, run_status) = bill_run_state(repo.tenant(), &current.value).await?;
            match current.value.removal(run_status, OffsetDateTime::now_utc())? {
                Removal::Delete => {
                    let mut delete = repo.delete_of(&current, bill_event(by, "delete", Some(&current.value), None))?;
                    delete.check = check;
                    repo.tenant().delete(delete).await?;
                    Ok(no_content())
                }
                Removal::AlreadyArchived => Ok(resource_response(StatusCode::OK, &current.body, current.version)),
                Removal::Archive(archived) => {
                    let event = bill_event(by, "archive", Some(&current.value), Some(&archived));
                    let mut update = repo.update_of(&current, &archived, event)?;
                    update.check = check;
                    let saved = repo.tenant().update(update).await?;
                    Ok(resource_response(StatusCode::OK, &saved.body, saved.version))
                }
            }
        })
        .await
    })
    .await
}
