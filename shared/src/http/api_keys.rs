//! The three API-key endpoints (docs/auth.md, "API keys over HTTP"): a tenant's
//! administrator creates, lists and revokes the tenant's keys. A bearer JWT with `billing:admin`
//! only (an API key cannot manage keys); a key is made for the request's tenant alone, with no
//! scope the caller lacks. Keys are issued as `billflow-admin` issues them ([`crate::api_keys`]).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::Value;

use super::caller::{acting, by_bearer};
use super::cursor::{page_body, page_limit, start_after, Cursor};
use super::error::{ApiError, ApiResult, ErrorFormat};
use super::request::{json_body, unknown_parameters};
use super::response::{no_content, respond_to, text_response, with_header};
use super::Deps;
use crate::api_keys::{is_key_id, parse_request, KeyView};
use crate::domain::identity::{Principal, SCOPE_ADMIN};
use crate::store::repo::Tenant;
use crate::store::{now_epoch, ApiKeyRecord};

const FORMAT: ErrorFormat = ErrorFormat::Problem;
const PATH: &str = "/api-keys";
/// The cursor's list name.
const LIST: &str = "api-keys";

/// The administrator, by bearer token (403 for anything else, an API key included), and the
/// request's tenant.
fn admin<'a>(deps: &'a Deps, req: &Request) -> ApiResult<(Principal, Tenant<'a>)> {
    let acting = acting(deps, req, SCOPE_ADMIN)?;
    if !by_bearer(req) {
        return Err(ApiError::Forbidden("API keys are managed with a bearer token, not an API key".into()));
    }
    Ok(acting)
}

/// A key as the tenant sees it: of the other tenants a key made by `billflow-admin` may carry,
/// nothing is shown.
fn view(record: &ApiKeyRecord, tenant: &Tenant<'_>) -> ApiResult<Value> {
    let mut view = KeyView::of(record, now_epoch());
    view.tenants = vec![tenant.id().as_str().to_owned()];
    serde_json::to_value(view).map_err(ApiError::internal)
}

/// `POST /api-keys`: 201 with `Location` and the key, shown this once. `Idempotency-Key` is
/// refused (400): replaying the answer would mean storing the key.
pub async fn create(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (principal, tenant) = admin(deps, &req)?;
        if req.headers().contains_key("idempotency-key") {
            return Err(ApiError::field(
                "/Idempotency-Key",
                "is not taken here: a new key is shown once and never stored, so it cannot be replayed",
            ));
        }
        let new = parse_request(&json_body(&req)?, &principal, tenant.id())?;
        if let Some(scope) = new.caller.scopes.iter().find(|s| !principal.has_scope(s)) {
            return Err(ApiError::Forbidden(format!("a key cannot carry {scope}, a scope the caller does not have")));
        }
        let issued = new.issue()?;
        tenant.put_api_key(&issued.record).await?;
        let mut body = view(&issued.record, &tenant)?;
        body["apiKey"] = Value::String(issued.key);
        let location = format!("{PATH}/{}", issued.record.key_id);
        let response = text_response(StatusCode::CREATED, body.to_string(), "application/json");
        // The key is in this answer alone: no cache may keep it.
        Ok(with_header(with_header(response, "location", &location), "cache-control", "no-store"))
    })
    .await
}

/// `GET /api-keys`: the tenant's keys in key id order, `{Count, Items, LastEvaluatedKey}` paged
/// by `limit` and `exclusiveStartKey` as billing runs are (one Query of `limit + 1` items).
pub async fn list(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (_, tenant) = admin(deps, &req)?;
        unknown_parameters(&req, &["limit", "exclusiveStartKey"])?;
        let limit = page_limit(&req)?;
        let after = start_after(&req, tenant.id(), LIST)?;
        let mut keys = tenant.api_keys(after.as_deref(), limit + 1).await?;
        let more = keys.len() > limit;
        keys.truncate(limit);
        let texts = keys.iter().map(|k| view(k, &tenant).map(|v| v.to_string())).collect::<ApiResult<Vec<_>>>()?;
        let next = more.then(|| keys.last()).flatten().map(|last| Cursor::new(tenant.id(), LIST, last.key_id.clone()));
        Ok(text_response(StatusCode::OK, page_body(texts.iter().map(String::as_str), next), "application/json"))
    })
    .await
}

/// `DELETE /api-keys/{key_id}`: 204, and the key fails from the next request (plus the
/// authorizer caches' TTL); revoking a revoked key is 204 again. Another tenant's key is 404. A key
/// `billflow-admin` made for several tenants is 409: revoking it would lock the other tenants out,
/// so only the operator's tool revokes it.
pub async fn revoke(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (_, tenant) = admin(deps, &req)?;
        let key_id = req.path_parameters_ref().and_then(|p| p.first("key_id")).unwrap_or_default();
        let not_found = || ApiError::NotFound(format!("no API key {key_id:?} in this tenant"));
        if !is_key_id(key_id) {
            return Err(not_found());
        }
        let key = tenant.api_key(key_id).await?.ok_or_else(not_found)?;
        if key.caller.tenants.iter().any(|t| t != tenant.id().as_str()) {
            return Err(ApiError::Conflict(format!(
                "API key {key_id} also belongs to other tenants; the operator revokes it with billflow-admin"
            )));
        }
        tenant.revoke_api_key(&key, now_epoch()).await?;
        Ok(no_content())
    })
    .await
}
