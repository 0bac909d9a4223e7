//! The TMF678 customer-bill endpoints (docs/customer-bills.md), under
//! `/brm/customerBillManagement/v4`: customer bills (list, get, PATCH of `state`), on-demand bill
//! requests (create, list, get) and applied customer billing rates (create, list, get). Every
//! error is a TMF Error. Ids are UUIDs; a path id that is not one is 404 (TMF ids are opaque).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::Value;

use super::caller::acting;
use super::error::{ApiError, ApiResult, ErrorFormat};
use super::handler::{load, Create, TenantFrom};
use super::idempotency::create_or_replay;
use super::request::{body_bytes, check_if_match, media_type, parse_json};
use super::response::{resource_response, respond_to, text_response, with_header};
use super::Deps;
use crate::domain::customer_bill::{
    datetime, new_id, parse_bill_patch, parse_on_demand, parse_rate, AccountBilling, AppliedRate, CustomerBill,
    OnDemand, PatchForm, BILL_SHAPE, ON_DEMAND_SHAPE, RATE_SHAPE,
};
use crate::domain::identity::{SCOPE_READ, SCOPE_WRITE};
use crate::domain::key::Id;
use crate::domain::list::{Source, MAX_BOUNDED_READ};
use crate::domain::resource::Resource;
use crate::domain::tmf_query::{Shape, TmfPlan, TmfQuery};
use crate::retry::with_retries;
use crate::store::{AuditEvent, Write};

/// Customer bills answer errors as TMF Errors.
const FORMAT: ErrorFormat = ErrorFormat::Tmf;

/// The path id as one of ours: a UUID, else no such resource (404).
fn path_uuid(req: &Request, what: &str) -> ApiResult<Id> {
    let raw = req.path_parameters_ref().and_then(|p| p.first("id")).unwrap_or_default();
    uuid::Uuid::try_parse(raw).map(Id::Uuid).map_err(|_| ApiError::NotFound(format!("no {what} {raw:?}")))
}

/// A single resource, or the attributes `fields` selects (with `id`, `href` and `@type`).
fn single(req: &Request, shape: &'static [(&'static str, Shape)], text: &str, version: u64) -> ApiResult {
    let pairs: Vec<(&str, &str)> = req.query_string_parameters_ref().into_iter().flat_map(|p| p.iter()).collect();
    if let Some((name, _)) = pairs.iter().find(|(name, _)| *name != "fields") {
        return Err(ApiError::field(&format!("/{name}"), "a single resource takes only fields"));
    }
    let query = TmfQuery::parse(pairs, shape)?;
    if query.fields.is_none() {
        return Ok(resource_response(StatusCode::OK, text, version));
    }
    let value: Value = serde_json::from_str(text).map_err(ApiError::internal)?;
    Ok(resource_response(StatusCode::OK, &query.project(value).to_string(), version))
}

async fn get<R: Resource>(
    deps: &Deps,
    req: Request,
    shape: &'static [(&'static str, Shape)],
    what: &str,
) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (_, tenant) = acting(deps, &req, SCOPE_READ)?;
        let id = path_uuid(&req, what)?;
        let found = load(&tenant.repo::<R>(), &id, what).await?;
        single(&req, shape, &found.body, found.version)
    })
    .await
}

/// A TMF list: a JSON array, newest first, with `X-Result-Count` and `X-Total-Count`, read as
/// [`TmfQuery::plan`] says: by id, from one account's index partition (a page of keys skipped
/// and one page read, the total a kept count), or from at most
/// [`MAX_BOUNDED_READ`](crate::domain::list::MAX_BOUNDED_READ) items, else 400.
async fn list<R: Resource>(
    deps: &Deps,
    req: Request,
    shape: &'static [(&'static str, Shape)],
    account: fn(&str) -> Source,
) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (_, tenant) = acting(deps, &req, SCOPE_READ)?;
        let params = req.query_string_parameters_ref();
        let query = TmfQuery::parse(params.into_iter().flat_map(|p| p.iter()), shape)?;
        let repo = tenant.repo::<R>();
        let mut items = Vec::new();
        match query.plan(account) {
            TmfPlan::Index(source) => {
                let total = repo.size(&source).await?;
                let offset = u64::try_from(query.offset).unwrap_or(u64::MAX);
                if offset >= total {
                    return Ok(list_response(&query, Vec::new(), total));
                }
                let page = repo.read(&source, offset, query.limit, true).await?;
                let page = page.iter().map(|stored| json_of(&stored.body)).collect::<ApiResult<_>>()?;
                return Ok(list_response(&query, page, total));
            }
            TmfPlan::Ids(ids) => {
                for id in ids.iter().filter_map(|id| uuid::Uuid::try_parse(id).ok()) {
                    items.extend(repo.get(Id::Uuid(id)).await?.map(|found| json_of(&found.body)));
                }
            }
            TmfPlan::Bounded(sources) => {
                let mut count = 0u64;
                for source in &sources {
                    count = count.saturating_add(repo.size(source).await?);
                }
                if count > MAX_BOUNDED_READ {
                    return Err(query.too_broad(count).into());
                }
                for source in &sources {
                    let read = repo.read(source, 0, MAX_BOUNDED_READ as usize, true).await?;
                    items.extend(read.iter().map(|stored| json_of(&stored.body)));
                }
            }
        }
        let (page, total) = matching(&query, items.into_iter().collect::<ApiResult<_>>()?);
        Ok(list_response(&query, page, total))
    })
    .await
}

/// The items that pass the query's filters, newest first (ids are time-ordered), paged, and
/// how many passed.
fn matching(query: &TmfQuery, mut items: Vec<Value>) -> (Vec<Value>, u64) {
    let order = |item: &Value| item.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
    items.sort_by_key(|item| std::cmp::Reverse(order(item)));
    items.dedup_by_key(|item| order(item));
    items.retain(|item| query.matches(item));
    let total = items.len() as u64;
    (items.into_iter().skip(query.offset).take(query.limit).collect(), total)
}

/// A page as a TMF list: the selected attributes of each item, and both counts.
fn list_response(query: &TmfQuery, page: Vec<Value>, total: u64) -> Response<Body> {
    let count = page.len();
    let body: Vec<Value> = page.into_iter().map(|item| query.project(item)).collect();
    let response = text_response(StatusCode::OK, Value::Array(body).to_string(), "application/json");
    let response = with_header(response, "x-result-count", &count.to_string());
    with_header(response, "x-total-count", &total.to_string())
}

/// A stored resource's JSON text as a value.
fn json_of(body: &str) -> ApiResult<Value> {
    serde_json::from_str(body).map_err(ApiError::internal)
}

// ---------------------------------------------------------------------------------------------
// Customer bills

const BILL: &str = "customer bill";

/// `GET /customerBill`
pub async fn list_bills(deps: &Deps, req: Request) -> Response<Body> {
    list::<CustomerBill>(deps, req, BILL_SHAPE, |account| Source::Group(0, account.to_owned())).await
}

/// `GET /customerBill/{id}`
pub async fn get_bill(deps: &Deps, req: Request) -> Response<Body> {
    get::<CustomerBill>(deps, req, BILL_SHAPE, BILL).await
}

/// The body of a PATCH: a merge patch (`application/merge-patch+json` or `application/json`) or
/// a JSON Patch (`application/json-patch+json`); size (413), then type (415), then syntax (400).
fn patch_body(req: &Request) -> ApiResult<(PatchForm, Value)> {
    let bytes = body_bytes(req)?;
    let form = match media_type(req.headers()).as_deref() {
        Some("application/merge-patch+json" | "application/json") => PatchForm::Merge,
        Some("application/json-patch+json") => PatchForm::Json,
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "expected application/merge-patch+json, application/json or application/json-patch+json, got {}",
                other.unwrap_or("none")
            )))
        }
    };
    Ok((form, parse_json(bytes)?))
}

/// `PATCH /customerBill/{id}`: `state` between inProgress and onHold (Oracle's rule). Refusals in
/// order: 401, 403, 404, 415, 400, 412, 409. The same state, or `{}`, is 200 and writes nothing.
pub async fn patch_bill(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (principal, tenant) = acting(deps, &req, SCOPE_WRITE)?;
        let id = path_uuid(&req, BILL)?;
        let bills = tenant.repo::<CustomerBill>();
        load(&bills, &id, BILL).await?;
        let (form, body) = patch_body(&req)?;
        let target = parse_bill_patch(&body, form)?;
        let (bills, req, id, user) = (&bills, &req, &id, principal.user_id);
        with_retries(move || async move {
            let current = load(bills, id, BILL).await?;
            check_if_match(req, current.version)?;
            let from = current.value.state;
            let Some(to) = target.map(|to| from.change_to(to)).transpose()?.flatten() else {
                return Ok(resource_response(StatusCode::OK, &current.body, current.version));
            };
            let next = CustomerBill { state: to, last_update: datetime::now(), ..current.value.clone() };
            let event = AuditEvent::new(Some(user), "patch").with_change(
                Some(from.name().to_owned()),
                Some(to.name().to_owned()),
                vec!["state".to_owned()],
            );
            let saved = bills.tenant().update(bills.update_of(&current, &next, event)?).await?;
            Ok(resource_response(StatusCode::OK, &saved.body, saved.version))
        })
        .await
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// On-demand bills

const ON_DEMAND: &str = "customer bill on demand";

/// `GET /customerBillOnDemand`
pub async fn list_on_demand(deps: &Deps, req: Request) -> Response<Body> {
    list::<OnDemand>(deps, req, ON_DEMAND_SHAPE, |account| Source::Group(0, account.to_owned())).await
}

/// `GET /customerBillOnDemand/{id}`
pub async fn get_on_demand(deps: &Deps, req: Request) -> Response<Body> {
    get::<OnDemand>(deps, req, ON_DEMAND_SHAPE, ON_DEMAND).await
}

/// `POST /customerBillOnDemand`: 201 `inProgress`; the worker bills the account's unbilled rates.
/// One request at a time per account: while one is in progress another is 409. The request and
/// the account's hold are written in one transaction.
pub async fn create_on_demand(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let Create { principal, tenant, body, idempotency } =
            match Create::begin(deps, &req, TenantFrom::Credential, "/customerBillOnDemand").await? {
                Ok(create) => create,
                Err(replay) => return Ok(replay),
            };
        let store = &tenant;
        let request = parse_on_demand(&body, new_id(), datetime::now())?;
        let (request, idempotency, user) = (&request, &idempotency, principal.user_id);
        with_retries(move || async move {
            let requests = store.repo::<OnDemand>();
            let accounts = store.repo::<AccountBilling>();
            let account = &request.billing_account.id;
            let current = accounts.get(Id::Uuid(AccountBilling::id_of(account))).await?;
            let held = AccountBilling::hold_for(current.as_ref().map(|c| &c.value), account, request.id)?;
            let hold = AuditEvent::new(Some(user), format!("hold for {}", request.id));
            let hold = match current {
                Some(current) => Write::Update(accounts.update_of(&current, &held, hold)?),
                None => Write::Create(accounts.new_item(&held, hold)?),
            };
            let event = AuditEvent::new(Some(user), "create").with_change(None, Some("inProgress".into()), Vec::new());
            let item = requests.new_item(request, event)?;
            create_or_replay(store, item, vec![hold], idempotency.as_ref(), &request.href).await
        })
        .await
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Applied customer billing rates

const RATE: &str = "applied customer billing rate";

/// `GET /appliedCustomerBillingRate` (an account's rates, billed or not, are group slot 1)
pub async fn list_rates(deps: &Deps, req: Request) -> Response<Body> {
    list::<AppliedRate>(deps, req, RATE_SHAPE, |account| Source::Group(1, AppliedRate::account_group(account))).await
}

/// `GET /appliedCustomerBillingRate/{id}`
pub async fn get_rate(deps: &Deps, req: Request) -> Response<Body> {
    get::<AppliedRate>(deps, req, RATE_SHAPE, RATE).await
}

/// `POST /appliedCustomerBillingRate`: records a rated charge, unbilled (201 + Location).
pub async fn create_rate(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let Create { principal, tenant, body, idempotency } =
            match Create::begin(deps, &req, TenantFrom::Credential, "/appliedCustomerBillingRate").await? {
                Ok(create) => create,
                Err(replay) => return Ok(replay),
            };
        let store = &tenant;
        let rate = parse_rate(&body, new_id(), datetime::now())?;
        let (rate, idempotency, user) = (&rate, &idempotency, principal.user_id);
        with_retries(move || async move {
            let item = store.repo::<AppliedRate>().new_item(rate, AuditEvent::new(Some(user), "create"))?;
            create_or_replay(store, item, Vec::new(), idempotency.as_ref(), &rate.href).await
        })
        .await
    })
    .await
}
