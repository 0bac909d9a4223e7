//! The five billing-run endpoints (docs/billing-runs.md): tenant-scoped, UUID-keyed, full
//! replacement by PUT with `sys_version`. The path's tenant must be among the caller's tenants
//! (403), and it is the tenant of every key and list partition read, so no request can reach
//! another tenant's runs.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::Value;
use time::OffsetDateTime;

use super::caller::acting_in_path;
use super::cursor::{page_body, page_limit, start_after, Cursor};
use super::error::{ApiError, ApiResult, ErrorFormat};
use super::handler::{self, Create, TenantFrom};
use super::idempotency::create_or_replay;
use super::request::{check_if_match, json_body, path_id, unknown_parameters};
use super::response::{no_content, resource_response, respond_to, text_response};
use super::Deps;
use crate::domain::billing_run::execution::{self, targets_group, ActionTarget, Execution};
use crate::domain::billing_run::{
    self, apply_put, parse_request, recurring_group, BillingRun, Mode, Put, PutOutcome, Status,
};
use crate::domain::identity::{SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE};
use crate::domain::key::Id;
use crate::domain::resource::Resource;
use crate::retry::with_retries;
use crate::store::repo::{Repo, Versioned};
use crate::store::{AuditEvent, Page};

/// Billing runs answer errors as problem+json.
const FORMAT: ErrorFormat = ErrorFormat::Problem;
const ID_PARAM: &str = "id";
const RECURRING_PARAM: &str = "recurring_billing_run_id";

async fn load(repo: &Repo<'_, BillingRun>, id: &Id) -> ApiResult<Versioned<BillingRun>> {
    handler::load(repo, id, "billing run").await
}

fn run_event(by: u64, action: &str, before: Option<Status>, after: Option<Status>, fields: Vec<String>) -> AuditEvent {
    let name = |s: Option<Status>| s.map(|s| s.name().to_owned());
    AuditEvent::new(Some(by), action).with_change(name(before), name(after), fields)
}

fn query<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.query_string_parameters_ref().and_then(|q| q.first(name))
}

/// `GET /billingRuns/{tenantId}/{id}` (`fields` = a projection; `id` always included).
pub async fn get(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (_, tenant) = acting_in_path(deps, &req, SCOPE_READ)?;
        let id = path_id(&req, ID_PARAM, BillingRun::KIND.ids)?;
        unknown_parameters(&req, &["fields"])?;
        let fields = billing_run::parse_fields(query(&req, "fields"))?;
        let run = load(&tenant.repo(), &id).await?;
        let Some(fields) = fields else { return Ok(resource_response(StatusCode::OK, &run.body, run.version)) };
        let mut body: serde_json::Map<String, Value> = serde_json::from_str(&run.body).map_err(ApiError::internal)?;
        body.retain(|name, _| name == "id" || fields.contains(&name.as_str()));
        Ok(resource_response(StatusCode::OK, &Value::Object(body).to_string(), run.version))
    })
    .await
}

/// `POST /billingRuns/{tenantId}`: 201 with Location; `Idempotency-Key` scoped by tenant.
pub async fn create(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let Create { principal, tenant, body, idempotency } =
            match Create::begin(deps, &req, TenantFrom::Path, "/billingRuns").await? {
                Ok(create) => create,
                Err(replay) => return Ok(replay),
            };
        let repo = tenant.repo::<BillingRun>();
        let request = parse_request(&body, Mode::Create)?;
        let id = uuid::Uuid::new_v4();
        let run = BillingRun::create(request, id, &principal.user_id.to_string(), OffsetDateTime::now_utc());
        let location = format!("/billingRuns/{}/{id}", tenant.id());
        let (repo, run, idempotency, location) = (&repo, &run, &idempotency, &location);
        with_retries(move || async move {
            let event = run_event(principal.user_id, "create", None, Some(run.status), Vec::new());
            create_or_replay(repo.tenant(), repo.new_item(run, event)?, Vec::new(), idempotency.as_ref(), location)
                .await
        })
        .await
    })
    .await
}

/// `PUT /billingRuns/{tenantId}/{id}`: full replacement under the PUT semantics of docs/billing-runs.md. Refusals
/// in its order: 401, 403, 404, 400, 412, 409.
pub async fn update(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (principal, tenant) = acting_in_path(deps, &req, SCOPE_WRITE)?;
        let id = path_id(&req, ID_PARAM, BillingRun::KIND.ids)?;
        let repo = tenant.repo::<BillingRun>();
        let by = principal.user_id.to_string();
        let admin = principal.has_scope(SCOPE_ADMIN);
        let (repo, req, id, by, user) = (&repo, &req, &id, &by, principal.user_id);
        with_retries(move || async move {
            let current = load(repo, id).await?;
            let request = parse_request(&json_body(req)?, Mode::Put)?;
            if request.id.map(Id::Uuid).as_ref() != Some(id) {
                return Err(ApiError::field("/id", "must be the id in the path"));
            }
            request.check_status(&current.value)?;
            check_if_match(req, current.version)?;
            let put = Put { request: &request, admin, by, now: OffsetDateTime::now_utc() };
            match apply_put(&current.value, &put)? {
                PutOutcome::Unchanged => Ok(resource_response(StatusCode::OK, &current.body, current.version)),
                PutOutcome::Changed { run, fields } => {
                    let event = run_event(user, "put", Some(current.value.status), Some(run.status), fields);
                    let mut update = repo.update_of(&current, &run, event)?;
                    update.state.clone_from(&current.state); // the scheduler's record of its preprocessing
                    let saved = repo.tenant().update(update).await?;
                    Ok(resource_response(StatusCode::OK, &saved.body, saved.version))
                }
            }
        })
        .await
    })
    .await
}

/// `DELETE /billingRuns/{tenantId}/{id}`: a draft or cancelled run is deleted (204); any other,
/// or a locked one, is 409.
pub async fn delete(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (principal, tenant) = acting_in_path(deps, &req, SCOPE_WRITE)?;
        let id = path_id(&req, ID_PARAM, BillingRun::KIND.ids)?;
        let repo = tenant.repo::<BillingRun>();
        let (repo, req, id, user) = (&repo, &req, &id, principal.user_id);
        with_retries(move || async move {
            let current = load(repo, id).await?;
            check_if_match(req, current.version)?;
            current.value.check_delete()?;
            let event = run_event(user, "delete", Some(current.value.status), None, Vec::new());
            repo.tenant().delete(repo.delete_of(&current, event)?).await?;
            Ok(no_content())
        })
        .await
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Lists

/// `GET /billingRuns/{tenantId}` and `GET /billingRuns/{tenantId}/recurringBillingRun/{id}`:
/// `{Count, Items, LastEvaluatedKey}`, newest first. Each page is one Query of `limit + 1` items
/// on an index partitioned by tenant; the `status` filter applies to the first `limit` of them,
/// so a filtered page may hold fewer than `limit` items, and `LastEvaluatedKey` is there exactly
/// when more items remain.
pub async fn list(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (_, tenant) = acting_in_path(deps, &req, SCOPE_READ)?;
        unknown_parameters(&req, &["limit", "status", "exclusiveStartKey"])?;
        let limit = page_limit(&req)?;
        let statuses = billing_run::parse_status_filter(query(&req, "status"))?;
        let recurring = req.path_parameters_ref().and_then(|p| p.first(RECURRING_PARAM)).map(str::to_owned);
        billing_run::check_recurring_id(recurring.as_deref())?;
        let list = recurring.as_deref().map_or_else(|| "all".to_owned(), |r| format!("recurring:{r}"));
        let after = start_after(&req, tenant.id(), &list)?;
        let group = recurring.as_deref().map(recurring_group);
        let index = Page {
            group: group.as_deref(),
            after: after.as_deref(),
            limit: limit + 1,
            descending: true,
            ..Page::default()
        };
        let page = tenant.repo::<BillingRun>().page(&index).await?;
        Ok(page_response(tenant.id(), &list, &page, limit, |run| {
            statuses.as_ref().is_none_or(|s| s.contains(&run.status))
        }))
    })
    .await
}

/// `GET /billingRuns/{tenantId}/{id}/actions`: the targets of the run's last preprocessing, by
/// account, paged as the lists are (`limit`, `exclusiveStartKey`, a `status` filter); a run never
/// preprocessed has none. A key of an earlier preprocessing is 400.
pub async fn actions(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (_, tenant) = acting_in_path(deps, &req, SCOPE_READ)?;
        let id = path_id(&req, ID_PARAM, BillingRun::KIND.ids)?;
        unknown_parameters(&req, &["limit", "status", "exclusiveStartKey"])?;
        let limit = page_limit(&req)?;
        let statuses = execution::parse_target_status(query(&req, "status"))?;
        let run = load(&tenant.repo(), &id).await?;
        let generation = run.state::<Execution>().map_or(0, |record| record.generation);
        let list = format!("actions:{}:{generation}", run.value.id);
        let after = start_after(&req, tenant.id(), &list)?;
        let group = targets_group(run.value.id, generation);
        let index = Page { group: Some(&group), after: after.as_deref(), limit: limit + 1, ..Page::default() };
        let page = if generation == 0 { Vec::new() } else { tenant.repo::<ActionTarget>().page(&index).await? };
        let page = page.into_iter().map(|target| shown(target, run.value.status)).collect::<ApiResult<Vec<_>>>()?;
        Ok(page_response(tenant.id(), &list, &page, limit, |target| {
            statuses.as_ref().is_none_or(|s| s.contains(&target.status))
        }))
    })
    .await
}

/// A target as the actions list shows it while its run is `status` ([`ActionTarget::shown`]).
fn shown(mut target: Versioned<ActionTarget>, status: Status) -> ApiResult<Versioned<ActionTarget>> {
    if let Some(value) = target.value.shown(status) {
        target.body = crate::store::repo::encode(&value)?;
        target.value = value;
    }
    Ok(target)
}

/// A list's page from `limit + 1` items read: the first `limit` that `keep` keeps, and
/// `LastEvaluatedKey` exactly when more items remain.
fn page_response<R: Resource>(
    tenant: &crate::domain::key::TenantId,
    list: &str,
    page: &[Versioned<R>],
    limit: usize,
    keep: impl Fn(&R) -> bool,
) -> Response<Body> {
    let more = page.len() > limit;
    let evaluated = &page[..page.len().min(limit)];
    let items = evaluated.iter().filter(|item| keep(&item.value)).map(|item| item.body.as_str());
    let next = more.then(|| evaluated.last()).flatten().map(|last| Cursor::new(tenant, list, last.value.order()));
    text_response(StatusCode::OK, page_body(items, next), "application/json")
}
