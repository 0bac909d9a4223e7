//! What every handler's creates and loads share, so that a handler is its own logic only: the
//! caller and its tenant, the body and its `Idempotency-Key` (a replay answered before anything
//! else), and a resource by id or the 404 that names it.

use lambda_http::{Body, Request, Response};
use serde_json::Value;

use super::caller::{acting, acting_in_path};
use super::error::{ApiError, ApiResult};
use super::idempotency::Idempotency;
use super::request::json_body;
use super::Deps;
use crate::domain::identity::{Principal, SCOPE_WRITE};
use crate::domain::key::Id;
use crate::domain::resource::Resource;
use crate::store::repo::{Repo, Tenant, Versioned};

/// The resource `id` of `repo`, or 404 "no {noun} {id}" (another tenant's answers so too).
pub async fn load<R: Resource>(repo: &Repo<'_, R>, id: &Id, noun: &str) -> ApiResult<Versioned<R>> {
    repo.get(id.clone()).await?.ok_or_else(|| ApiError::NotFound(format!("no {noun} {id}")))
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
