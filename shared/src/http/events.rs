//! The events API (docs/events.md): a tenant's published events, newest first, and one event by
//! id. `billing:read`; the request's tenant only: an event id names a resource and a version, and
//! its key is made in the caller's tenant, so another tenant's event is 404 as one that does not
//! exist.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::caller::acting;
use super::cursor::{page_body, page_limit, start_after, Cursor};
use super::error::{ApiError, ApiResult, ErrorFormat};
use super::request::unknown_parameters;
use super::response::{respond_to, text_response};
use super::Deps;
use crate::domain::event::{self, parse_event_id, resource_key};
use crate::domain::identity::SCOPE_READ;
use crate::domain::key::{Id, Key, TenantId};
use crate::store::EventQuery;

const FORMAT: ErrorFormat = ErrorFormat::Problem;

fn query<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.query_string_parameters_ref().and_then(|q| q.first(name))
}

/// A time bound (`after`, `before`): RFC 3339, as epoch milliseconds.
fn time_bound(req: &Request, name: &str) -> ApiResult<Option<u64>> {
    query(req, name)
        .map(|text| {
            let at = OffsetDateTime::parse(text, &Rfc3339)
                .map_err(|_| ApiError::field(&format!("/{name}"), "must be an RFC 3339 date-time"))?;
            u64::try_from(at.unix_timestamp_nanos() / 1_000_000)
                .map_err(|_| ApiError::field(&format!("/{name}"), "must be after 1970"))
        })
        .transpose()
}

/// The events API's filters, parsed and checked.
fn parse_query(req: &Request, tenant: &TenantId, limit: usize) -> ApiResult<(EventQuery, String)> {
    unknown_parameters(req, &["type", "resource", "after", "before", "limit", "exclusiveStartKey"])?;
    let event_type = query(req, "type").map(str::to_owned);
    if event_type.as_deref().is_some_and(|t| !event::TYPES.contains(&t)) {
        return Err(ApiError::field("/type", "is not an event type (docs/events.md lists them)"));
    }
    let resource = query(req, "resource")
        .map(|text| {
            resource_key(text, tenant).ok_or_else(|| {
                ApiError::field("/resource", "must be a resource's href (/bills/12) or kind:id (bill:12)")
            })
        })
        .transpose()?;
    let (after_ms, before_ms) = (time_bound(req, "after")?, time_bound(req, "before")?);
    // A cursor belongs to the filters it was handed out with.
    let list = format!(
        "events:{}:{}:{}:{}",
        event_type.as_deref().unwrap_or_default(),
        resource.as_ref().map(Key::partition).unwrap_or_default(),
        after_ms.unwrap_or_default(),
        before_ms.unwrap_or_default()
    );
    let start_after = start_after(req, tenant, &list)?;
    Ok((EventQuery { resource, event_type, after_ms, before_ms, start_after, limit: limit + 1 }, list))
}

/// `GET /events`: `{Count, Items, LastEvaluatedKey}`, newest first, filtered by `type`,
/// `resource` (an href or `kind:id`) and the times `after` (inclusive) and `before` (exclusive);
/// paged by `limit` and `exclusiveStartKey` as billing runs are. One Query of the tenant's event
/// index (or of the resource's own trail) and the page's events by key.
pub async fn list(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (_, tenant) = acting(deps, &req, SCOPE_READ)?;
        let limit = page_limit(&req)?;
        let (query, list) = parse_query(&req, tenant.id(), limit)?;
        let mut events = tenant.published(&query).await?;
        let more = events.len() > limit;
        events.truncate(limit);
        let texts: Vec<String> = events.iter().filter_map(|e| e.to_json()).map(|v| v.to_string()).collect();
        let next = more.then(|| events.last()).flatten().map(|last| Cursor::new(tenant.id(), list, last.order()));
        Ok(text_response(StatusCode::OK, page_body(texts.iter().map(String::as_str), next), "application/json"))
    })
    .await
}

/// `GET /events/{event_id}`: the event, as it was delivered.
pub async fn get(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (_, tenant) = acting(deps, &req, SCOPE_READ)?;
        unknown_parameters(&req, &[])?;
        let raw = req.path_parameters_ref().and_then(|p| p.first("event_id")).unwrap_or_default().to_owned();
        let not_found = || ApiError::NotFound(format!("no event {raw:?}"));
        let (kind, id, version) = parse_event_id(&raw, tenant.id()).ok_or_else(not_found)?;
        let id = Id::parse(kind.ids, id).ok_or_else(not_found)?;
        let key = Key::new(kind, tenant.id().clone(), id).map_err(|_| not_found())?;
        let recorded = tenant.event(&key, version).await?.ok_or_else(not_found)?;
        let body = recorded.to_json().ok_or_else(not_found)?;
        Ok(text_response(StatusCode::OK, body.to_string(), "application/json"))
    })
    .await
}
