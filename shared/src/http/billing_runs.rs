//! The five billing-run endpoints (spec/billing-runs.md): tenant-scoped, UUID-keyed, full
//! replacement by PUT with `sys_version`. The path's tenant must be among the caller's tenants
//! (403), and it is the scope of every key and list partition read, so no request can reach
//! another tenant's runs.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::caller::caller;
use super::error::{ApiError, ApiResult, ErrorFormat};
use super::idempotency::{create_or_replay, Idempotency};
use super::request::{check_if_match, json_body, path_id};
use super::response::{no_content, resource_response, respond_to, text_response};
use super::Deps;
use crate::domain::billing_run::{
    apply_put, parse_request, recurring_group, BillingRun, Mode, Put, PutOutcome, Status, FIELDS,
};
use crate::domain::identity::{Principal, SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE};
use crate::domain::key::{Id, Scope, TenantId};
use crate::domain::resource::Resource;
use crate::retry::with_retries;
use crate::store::repo::{Repo, Versioned};
use crate::store::{AuditEvent, Page};

/// Billing runs answer errors as problem+json.
const FORMAT: ErrorFormat = ErrorFormat::Problem;
const TENANT_PARAM: &str = "tenantId";
const ID_PARAM: &str = "id";
const RECURRING_PARAM: &str = "recurring_billing_run_id";
const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 100;

/// The caller, holding `scope`, and the path's tenant, the scope of everything read (403 when the
/// tenant is not the caller's).
fn tenant_of(req: &Request, scope: &str) -> ApiResult<(Principal, TenantId)> {
    let principal = caller(req, scope)?;
    let raw = req.path_parameters_ref().and_then(|p| p.first(TENANT_PARAM)).unwrap_or_default();
    if !principal.belongs_to(raw) {
        return Err(ApiError::Forbidden(format!("tenant {raw:?} is not among the caller's tenants")));
    }
    let tenant =
        TenantId::parse(raw).ok_or_else(|| ApiError::field("/tenantId", "must be 1 to 64 letters, digits or -_."))?;
    Ok((principal, tenant))
}

fn repo<'a>(deps: &'a Deps, tenant: &TenantId) -> Repo<'a, BillingRun> {
    Repo::new(deps.store.as_ref(), Scope::Tenant(tenant.clone()))
}

async fn load(repo: &Repo<'_, BillingRun>, id: &Id) -> ApiResult<Versioned<BillingRun>> {
    repo.get(id.clone()).await?.ok_or_else(|| ApiError::NotFound(format!("no billing run {id} in this tenant")))
}

fn run_event(by: u64, action: &str, before: Option<Status>, after: Option<Status>, fields: Vec<String>) -> AuditEvent {
    let name = |s: Option<Status>| s.map(|s| s.name().to_owned());
    AuditEvent::new(Some(by), action).with_change(name(before), name(after), fields)
}

/// `fields=a,b`: the projection of a run (`id` always kept); an unknown field is 400.
fn projection(req: &Request) -> ApiResult<Option<Vec<&'static str>>> {
    let Some(raw) = req.query_string_parameters_ref().and_then(|q| q.first("fields")) else { return Ok(None) };
    raw.split(',')
        .map(|name| {
            FIELDS
                .iter()
                .copied()
                .find(|f| *f == name)
                .ok_or_else(|| ApiError::field("/fields", &format!("unknown field {name:?}")))
        })
        .collect::<ApiResult<Vec<_>>>()
        .map(Some)
}

fn unknown_parameters(req: &Request, known: &[&str]) -> ApiResult<()> {
    let params = req.query_string_parameters_ref();
    match params.into_iter().flat_map(|p| p.iter()).find(|(name, _)| !known.contains(name)) {
        Some((name, _)) => Err(ApiError::field(&format!("/{name}"), "unknown query parameter")),
        None => Ok(()),
    }
}

/// `GET /billingRuns/{tenantId}/{id}` (`fields` = a projection; `id` always included).
pub async fn get(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (_, tenant) = tenant_of(&req, SCOPE_READ)?;
        let id = path_id(&req, ID_PARAM, BillingRun::KIND.ids)?;
        unknown_parameters(&req, &["fields"])?;
        let fields = projection(&req)?;
        let run = load(&repo(deps, &tenant), &id).await?;
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
        let (principal, tenant) = tenant_of(&req, SCOPE_WRITE)?;
        let body = json_body(&req)?;
        let repo = repo(deps, &tenant);
        let idempotency = Idempotency::from_request(&req, &principal, "/billingRuns", &body)?;
        if let Some(idem) = &idempotency {
            if let Some(replay) = idem.replay_stored(repo.store(), repo.scope()).await? {
                return Ok(replay);
            }
        }
        let request = parse_request(&body, Mode::Create)?;
        let id = uuid::Uuid::new_v4();
        let run = BillingRun::create(request, id, &principal.user_id.to_string(), OffsetDateTime::now_utc());
        let location = format!("/billingRuns/{}/{id}", tenant.as_str());
        let (repo, run, idempotency, location) = (&repo, &run, &idempotency, &location);
        with_retries(move || async move {
            let event = run_event(principal.user_id, "create", None, Some(run.status), Vec::new());
            create_or_replay(repo.store(), repo.new_item(run, event)?, Vec::new(), idempotency.as_ref(), location).await
        })
        .await
    })
    .await
}

/// `PUT /billingRuns/{tenantId}/{id}`: full replacement under the spec's PUT semantics. Refusals
/// in its order: 401, 403, 404, 400, 412, 409.
pub async fn update(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (principal, tenant) = tenant_of(&req, SCOPE_WRITE)?;
        let id = path_id(&req, ID_PARAM, BillingRun::KIND.ids)?;
        let repo = repo(deps, &tenant);
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
                    let saved = repo.store().update(repo.update_of(&current, &run, event)?).await?;
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
        let (principal, tenant) = tenant_of(&req, SCOPE_WRITE)?;
        let id = path_id(&req, ID_PARAM, BillingRun::KIND.ids)?;
        let repo = repo(deps, &tenant);
        let (repo, req, id, user) = (&repo, &req, &id, principal.user_id);
        with_retries(move || async move {
            let current = load(repo, id).await?;
            check_if_match(req, current.version)?;
            current.value.check_delete()?;
            let event = run_event(user, "delete", Some(current.value.status), None, Vec::new());
            repo.store().delete(repo.delete_of(&current, event)).await?;
            Ok(no_content())
        })
        .await
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Lists

/// A list's position, handed out as `LastEvaluatedKey`: the tenant and list it belongs to, and
/// the order key of the last item given. Opaque (hex) and tamper-evident: it carries a SHA-256
/// checksum, and a key whose checksum, tenant or list does not match is 400. Even a forged key
/// could only position a Query inside the path's own tenant partition.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Cursor {
    t: String,
    l: String,
    k: String,
}

const CURSOR_DOMAIN: &[u8] = b"billflow:billing-runs:cursor:v1:";
const MAX_CURSOR: usize = 2048;

fn checksum(payload: &[u8]) -> String {
    let digest = Sha256::new().chain_update(CURSOR_DOMAIN).chain_update(payload).finalize();
    hex(&digest[..16])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

impl Cursor {
    fn encode(&self) -> String {
        let payload = serde_json::to_vec(self).unwrap_or_default();
        format!("{}.{}", hex(&payload), checksum(&payload))
    }

    /// The order key a cursor points at, if it is one this tenant's `list` handed out.
    fn decode(text: &str, tenant: &str, list: &str) -> ApiResult<String> {
        let refused = || ApiError::field("/exclusiveStartKey", "is not a key this list handed out");
        if text.len() > MAX_CURSOR {
            return Err(refused());
        }
        let (payload, sum) = text.split_once('.').ok_or_else(refused)?;
        let payload = unhex(payload).ok_or_else(refused)?;
        if checksum(&payload) != sum {
            return Err(refused());
        }
        let cursor: Cursor = serde_json::from_slice(&payload).map_err(|_| refused())?;
        if cursor.t != tenant || cursor.l != list {
            return Err(refused());
        }
        Ok(cursor.k)
    }
}

/// The `status` filter: `draft` or `in:draft,scheduled`; an unknown status is 400.
fn status_filter(req: &Request) -> ApiResult<Option<Vec<Status>>> {
    let Some(raw) = req.query_string_parameters_ref().and_then(|q| q.first("status")) else { return Ok(None) };
    raw.strip_prefix("in:")
        .unwrap_or(raw)
        .split(',')
        .map(|s| s.parse::<Status>().map_err(|_| ApiError::field("/status", &format!("unknown status {s:?}"))))
        .collect::<ApiResult<Vec<_>>>()
        .map(Some)
}

/// `GET /billingRuns/{tenantId}` and `GET /billingRuns/{tenantId}/recurringBillingRun/{id}`:
/// `{Count, Items, LastEvaluatedKey}`, newest first. Each page is one Query of `limit + 1` items
/// on an index partitioned by tenant; the `status` filter applies to the first `limit` of them,
/// so a filtered page may hold fewer than `limit` items, and `LastEvaluatedKey` is there exactly
/// when more items remain.
pub async fn list(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (_, tenant) = tenant_of(&req, SCOPE_READ)?;
        unknown_parameters(&req, &["limit", "status", "exclusiveStartKey"])?;
        let query = req.query_string_parameters_ref();
        let limit = match query.and_then(|q| q.first("limit")) {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| ApiError::field("/limit", "must be an integer from 1 to 1000"))?,
        };
        let statuses = status_filter(&req)?;
        let recurring = req.path_parameters_ref().and_then(|p| p.first(RECURRING_PARAM)).map(str::to_owned);
        if recurring.as_ref().is_some_and(|r| !(1..=100).contains(&r.chars().count())) {
            return Err(ApiError::field("/recurring_billing_run_id", "must be 1 to 100 characters"));
        }
        let list = recurring.as_deref().map_or_else(|| "all".to_owned(), |r| format!("recurring:{r}"));
        let after = query
            .and_then(|q| q.first("exclusiveStartKey"))
            .map(|key| Cursor::decode(key, tenant.as_str(), &list))
            .transpose()?;
        let group = recurring.as_deref().map(recurring_group);
        let index = Page { group: group.as_deref(), after: after.as_deref(), limit: limit + 1, descending: true };
        let page = repo(deps, &tenant).page(&index).await?;
        let more = page.len() > limit;
        let evaluated = &page[..page.len().min(limit)];
        let items: Vec<&Versioned<BillingRun>> =
            evaluated.iter().filter(|run| statuses.as_ref().is_none_or(|s| s.contains(&run.value.status))).collect();
        let mut text = format!("{{\"Count\":{},\"Items\":[", items.len());
        for (i, run) in items.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&run.body);
        }
        text.push(']');
        if let (true, Some(last)) = (more, evaluated.last()) {
            let key = Cursor { t: tenant.as_str().to_owned(), l: list, k: last.value.order() }.encode();
            text.push_str(&format!(",\"LastEvaluatedKey\":{}", Value::String(key)));
        }
        text.push('}');
        Ok(text_response(StatusCode::OK, text, "application/json"))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_cursors_then_only_untouched_ones_of_this_tenant_and_list_decode() {
        let cursor = Cursor { t: "acme".into(), l: "all".into(), k: "2026-11-22T10:00:00.000000Z#x".into() };
        let text = cursor.encode();
        assert_eq!(Cursor::decode(&text, "acme", "all").unwrap(), cursor.k);
        assert!(Cursor::decode(&text, "other", "all").is_err(), "another tenant's key");
        assert!(Cursor::decode(&text, "acme", "recurring:r1").is_err(), "another list's key");
        let mut tampered = text.clone().into_bytes();
        tampered[3] = if tampered[3] == b'0' { b'1' } else { b'0' };
        assert!(Cursor::decode(std::str::from_utf8(&tampered).unwrap(), "acme", "all").is_err(), "a changed byte");
        for junk in ["", ".", "zz.zz", "abc", &"a".repeat(5000)] {
            assert!(Cursor::decode(junk, "acme", "all").is_err(), "{junk:?}");
        }
    }
}
