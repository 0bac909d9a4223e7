//! What every handler's creates and loads share, so that a handler is its own logic only: the
//! caller and its tenant, the body and its `Idempotency-Key` (a replay answered before anything
//! else), a resource by id or the 404 that names it, and a page of a list.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::Value;

use super::caller::{acting, acting_in_path};
use super::error::{ApiError, ApiResult};
use super::idempotency::Idempotency;
use super::request::json_body;
use super::response::{json_response, with_header};
use super::Deps;
use crate::domain::identity::{Principal, SCOPE_READ, SCOPE_WRITE};
use crate::domain::key::Id;
use crate::domain::list::ListQuery;
use crate::domain::resource::Resource;
use crate::store::repo::{Listed, Repo, Tenant, Versioned};

/// The resource `id` of `repo`, or 404 "no {noun} {id}" (another tenant's answers so too).
pub async fn load<R: Resource>(repo: &Repo<'_, R>, id: &Id, noun: &str) -> ApiResult<Versioned<R>> {
    repo.get(id.clone()).await?.ok_or_else(|| ApiError::NotFound(format!("no {noun} {id}")))
}

/// `GET` of a kind's list (bill runs, adhoc bill runs, bills): the page of the query string's
/// [`ListQuery`] with the fields asked for, and `X-Total-Count`; a query no index serves over
/// [`MAX_BOUNDED_READ`](crate::domain::list::MAX_BOUNDED_READ) items is 400 naming the parameter.
pub async fn list<R: Resource>(deps: &Deps, req: &Request) -> ApiResult<Response<Body>> {
    let spec = R::LIST.ok_or_else(|| ApiError::internal(format!("{} has no list", R::KIND.name)))?;
    let (_, tenant) = acting(deps, req, SCOPE_READ)?;
    let params = req.query_string_parameters_ref();
    let query = ListQuery::parse(params.into_iter().flat_map(|p| p.iter()), spec)?;
    let (items, total) = match tenant.repo::<R>().list(&query).await? {
        Listed::Page(items, total) => (items, total),
        Listed::TooBroad(count) => return Err(query.too_broad(spec, count).into()),
    };
    let items: Vec<Value> = items.into_iter().map(|i| query.project(i)).collect();
    Ok(with_header(json_response(StatusCode::OK, &items), "x-total-count", &total.to_string()))
}

/// Where a request's tenant comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantFrom {
    /// The credential's, or the one `X-Tenant-Id` names.
    Credential,
    /// The path's `{tenantId}` (billing runs).
    Path,
}

/// A create, begun: the writer and its tenant, the JSON body, and the body's `Idempotency-Key`.
pub struct Create<'a> {
    pub principal: Principal,
    pub tenant: Tenant<'a>,
    pub body: Value,
    pub idempotency: Option<Idempotency>,
}

impl<'a> Create<'a> {
    /// The caller with `billing:write`, its tenant and the body of a create at `route`; or, when
    /// its `Idempotency-Key` was used in the tenant already, the stored answer (`Err`).
    pub async fn begin(
        deps: &'a Deps,
        req: &Request,
        from: TenantFrom,
        route: &str,
    ) -> ApiResult<Result<Self, Response<Body>>> {
        let (principal, tenant) = match from {
            TenantFrom::Credential => acting(deps, req, SCOPE_WRITE)?,
            TenantFrom::Path => acting_in_path(deps, req, SCOPE_WRITE)?,
        };
        let body = json_body(req)?;
        let idempotency = Idempotency::from_request(req, &principal, route, &body)?;
        if let Some(idem) = &idempotency {
            if let Some(replay) = idem.replay_stored(&tenant).await? {
                return Ok(Err(replay));
            }
        }
        Ok(Ok(Self { principal, tenant, body, idempotency }))
    }
}
