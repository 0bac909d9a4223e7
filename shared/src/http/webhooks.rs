//! Webhook endpoints and the TMF678 hub (docs/events.md): the eight endpoint functions and the
//! hub's two, per tenant, for `billing:admin` callers. An endpoint's secrets are its item's
//! private state, shown once (at its create and at each rotation) and never again.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::Value;
use uuid::Uuid;

use super::caller::acting;
use super::cursor::{page_body, page_limit, start_after, Cursor};
use super::error::{ApiError, ApiResult, ErrorFormat};
use super::handler::load;
use super::request::{json_body, path_id, unknown_parameters};
use super::response::{no_content, respond_to, text_response, with_header};
use super::Deps;
use crate::domain::event::parse_event_id;
use crate::domain::identity::SCOPE_ADMIN;
use crate::domain::key::{Id, Key};
use crate::domain::resource::Resource;
use crate::domain::webhook::{
    check_hub_query, Delivery, DeliveryStatus, Destination, EndpointFields, HubSubscription, Secrets, UrlRules,
    WebhookEndpoint, MAX_ENDPOINTS,
};
use crate::retry::with_retries;
use crate::store::repo::{encode, Repo, Tenant, Versioned};
use crate::store::{now_ms, now_rfc3339, AuditEvent, Page, Write};

const FORMAT: ErrorFormat = ErrorFormat::Problem;
const PATH: &str = "/webhook-endpoints";
const HUB_PATH: &str = "/brm/customerBillManagement/v4/hub";

fn admin<'a>(deps: &'a Deps, req: &Request) -> ApiResult<(u64, Tenant<'a>)> {
    let (principal, tenant) = acting(deps, req, SCOPE_ADMIN)?;
    Ok((principal.user_id, tenant))
}

/// A new secret: `whsec_` and base64 of 32 random bytes (two v4 UUIDs' 244 random bits).
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    Secrets::secret_from(&bytes)
}

/// Refuses a URL whose host's name resolves to an address the rules refuse (a name that does not
/// resolve now is taken: it is checked again at every delivery).
async fn check_resolved(pointer: &str, url: &str, rules: UrlRules) -> ApiResult<()> {
    let target = rules.check(pointer, url)?;
    if target.host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    if let Ok(Ok(addresses)) = tokio::time::timeout(std::time::Duration::from_secs(2), lookup).await {
        for address in addresses {
            if let Err(why) = rules.address_allowed(address.ip(), target.https) {
                return Err(ApiError::field(pointer, &format!("{}: {why}", target.host)));
            }
        }
    }
    Ok(())
}

/// Refuses a create past [`MAX_ENDPOINTS`] of the kind; the guard it returns makes two creates
/// at once conflict, so that the count cannot be passed.
async fn room<R: Resource>(repo: &Repo<'_, R>, what: &str) -> ApiResult<crate::store::Guard> {
    let guard = repo.guard("ALL").await?;
    if repo.count().await? >= MAX_ENDPOINTS {
        return Err(ApiError::Conflict(format!("a tenant has at most {MAX_ENDPOINTS} {what}; delete one first")));
    }
    Ok(guard)
}

/// An endpoint's JSON, with its secret when it is shown (this once).
fn shown(body: &str, secret: Option<&str>) -> ApiResult<String> {
    let mut value: Value = serde_json::from_str(body).map_err(ApiError::internal)?;
    if let Some(secret) = secret {
        value["secret"] = Value::String(secret.to_owned());
    }
    Ok(value.to_string())
}

fn secret_response(status: StatusCode, text: String) -> Response<Body> {
    with_header(text_response(status, text, "application/json"), "cache-control", "no-store")
}

/// `POST /webhook-endpoints`: 201 with Location, and the secret shown this once.
pub async fn create(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (user, tenant) = admin(deps, &req)?;
        if req.headers().contains_key("idempotency-key") {
            return Err(ApiError::field(
                "/Idempotency-Key",
                "is not taken here: the secret is shown once and never replayed",
            ));
        }
        let rules = crate::outbound::url_rules();
        let fields = EndpointFields::parse(&json_body(&req)?, rules, true)?;
        check_resolved("/url", fields.url.as_deref().unwrap_or_default(), rules).await?;
        let endpoint = fields.create(Uuid::new_v4(), &now_rfc3339());
        let secret = new_secret();
        let state = encode(&Secrets {
            secrets: vec![crate::domain::webhook::Secret { secret: secret.clone(), expires_at: None }],
        })?;
        let repo = tenant.repo::<WebhookEndpoint>();
        let (repo, endpoint, state) = (&repo, &endpoint, &state);
        let saved = with_retries(move || async move {
            let mut item = repo.new_item(endpoint, AuditEvent::new(Some(user), "create"))?;
            item.guard = Some(room(repo, "webhook endpoints").await?);
            item.state = Some(state.clone());
            Ok::<_, ApiError>(repo.tenant().create(item).await?)
        })
        .await?;
        let response = secret_response(StatusCode::CREATED, shown(&saved.body, Some(&secret))?);
        Ok(with_header(response, "location", &format!("{PATH}/{}", endpoint.id)))
    })
    .await
}

/// `GET /webhook-endpoints`: the tenant's endpoints (at most 16), `{Count, Items}`.
pub async fn list(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (_, tenant) = admin(deps, &req)?;
        unknown_parameters(&req, &[])?;
        let index = Page { limit: MAX_ENDPOINTS as usize, ..Page::default() };
        let mut endpoints = tenant.repo::<WebhookEndpoint>().page(&index).await?;
        endpoints.sort_by(|a, b| (&a.value.created_at, a.value.id).cmp(&(&b.value.created_at, b.value.id)));
        let body = page_body(endpoints.iter().map(|e| e.body.as_str()), None);
        Ok(text_response(StatusCode::OK, body, "application/json"))
    })
    .await
}

async fn endpoint<'a>(repo: &Repo<'a, WebhookEndpoint>, req: &Request) -> ApiResult<Versioned<WebhookEndpoint>> {
    let id = path_id(req, "id", WebhookEndpoint::KIND.ids)
        .map_err(|_| ApiError::NotFound("no such webhook endpoint".into()))?;
    load(repo, &id, "webhook endpoint").await
}

/// `GET /webhook-endpoints/{id}`.
pub async fn get(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (_, tenant) = admin(deps, &req)?;
        let found = endpoint(&tenant.repo(), &req).await?;
        Ok(text_response(StatusCode::OK, found.body, "application/json"))
    })
    .await
}

/// `PATCH /webhook-endpoints/{id}`: a merge patch of `url`, `enabledEvents`, `description` and
/// `disabled` (enabling it again clears why it was disabled).
pub async fn update(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (user, tenant) = admin(deps, &req)?;
        let rules = crate::outbound::url_rules();
        let fields = EndpointFields::parse(&json_body(&req)?, rules, false)?;
        if let Some(url) = &fields.url {
            check_resolved("/url", url, rules).await?;
        }
        let repo = tenant.repo::<WebhookEndpoint>();
        let (repo, req, fields) = (&repo, &req, &fields);
        with_retries(move || async move {
            let current = endpoint(repo, req).await?;
            let next = fields.clone().merge(&current.value, &now_rfc3339());
            if next == current.value {
                return Ok(text_response(StatusCode::OK, current.body, "application/json"));
            }
            let mut update = repo.update_of(&current, &next, AuditEvent::new(Some(user), "update"))?;
            update.state = current.state.clone();
            let saved = repo.tenant().update(update).await?;
            Ok(text_response(StatusCode::OK, saved.body, "application/json"))
        })
        .await
    })
    .await
}

/// `DELETE /webhook-endpoints/{id}`: 204; its pending deliveries are skipped.
pub async fn delete(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (user, tenant) = admin(deps, &req)?;
        let repo = tenant.repo::<WebhookEndpoint>();
        let (repo, req) = (&repo, &req);
        with_retries(move || async move {
            let current = endpoint(repo, req).await?;
            repo.tenant().delete(repo.delete_of(&current, AuditEvent::new(Some(user), "delete"))?).await?;
            Ok(no_content())
        })
        .await
    })
    .await
}

/// `POST /webhook-endpoints/{id}/rotate-secret`: a new secret, shown this once; the old one keeps
/// signing beside it for 24 hours.
pub async fn rotate(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (user, tenant) = admin(deps, &req)?;
        let secret = new_secret();
        let repo = tenant.repo::<WebhookEndpoint>();
        let (repo, req, secret_ref) = (&repo, &req, &secret);
        let saved = with_retries(move || async move {
            let current = endpoint(repo, req).await?;
            let secrets: Secrets = current.state().unwrap_or(Secrets { secrets: Vec::new() });
            let mut update = repo.update_of(&current, &current.value, AuditEvent::new(Some(user), "rotate-secret"))?;
            update.state = Some(encode(&secrets.rotated(secret_ref.clone(), crate::store::now_epoch()))?);
            Ok::<_, ApiError>(repo.tenant().update(update).await?)
        })
        .await?;
        Ok(secret_response(StatusCode::OK, shown(&saved.body, Some(&secret))?))
    })
    .await
}

/// A delivery as the log shows it (the store's own fields left out).
fn delivery_view(body: &str) -> ApiResult<String> {
    let mut value: Value = serde_json::from_str(body).map_err(ApiError::internal)?;
    if let Some(object) = value.as_object_mut() {
        for name in ["resource", "resourceVersion", "createdMs", "tries"] {
            object.remove(name);
        }
    }
    Ok(value.to_string())
}

/// `GET /webhook-endpoints/{id}/deliveries`: each delivery with its attempts (status code or
/// error, duration), newest first, `{Count, Items, LastEvaluatedKey}` paged as billing runs are.
pub async fn deliveries(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (_, tenant) = admin(deps, &req)?;
        unknown_parameters(&req, &["limit", "exclusiveStartKey"])?;
        let found = endpoint(&tenant.repo(), &req).await?;
        let limit = page_limit(&req)?;
        let list = format!("deliveries:{}", found.value.id);
        let after = start_after(&req, tenant.id(), &list)?;
        let group = found.value.id.to_string();
        let index = Page {
            group: Some(&group),
            after: after.as_deref(),
            limit: limit + 1,
            descending: true,
            ..Page::default()
        };
        let mut page = tenant.repo::<Delivery>().page(&index).await?;
        let more = page.len() > limit;
        page.truncate(limit);
        let texts = page.iter().map(|d| delivery_view(&d.body)).collect::<ApiResult<Vec<_>>>()?;
        let next = more.then(|| page.last()).flatten().map(|last| Cursor::new(tenant.id(), list, last.value.order()));
        Ok(text_response(StatusCode::OK, page_body(texts.iter().map(String::as_str), next), "application/json"))
    })
    .await
}

/// `POST /webhook-endpoints/{id}/deliveries/{event_id}/redeliver`: 202; the event is queued again
/// for this endpoint with the same event id (a new delivery when it never went there).
pub async fn redeliver(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (user, tenant) = admin(deps, &req)?;
        let found = endpoint(&tenant.repo(), &req).await?;
        let raw = req.path_parameters_ref().and_then(|p| p.first("event_id")).unwrap_or_default().to_owned();
        let not_found = || ApiError::NotFound(format!("no event {raw:?}"));
        let (kind, id, version) = parse_event_id(&raw, tenant.id()).ok_or_else(not_found)?;
        let key = Key::new(kind, tenant.id().clone(), Id::parse(kind.ids, id).ok_or_else(not_found)?)
            .map_err(|_| not_found())?;
        let event = tenant.event(&key, version).await?.ok_or_else(not_found)?;
        let event_type = event.event.event_type.clone().unwrap_or_default();
        let repo = tenant.repo::<Delivery>();
        let (repo, raw, key, event_type, endpoint_id) = (&repo, &raw, &key, &event_type, found.value.id);
        let saved = with_retries(move || async move {
            let id = Delivery::id_for(endpoint_id, raw);
            let audit = AuditEvent::new(Some(user), "redeliver");
            let write = match repo.get(Id::Uuid(id)).await? {
                Some(current) => {
                    let mut next = current.value.clone();
                    (next.status, next.tries, next.next_attempt_at) = (DeliveryStatus::Pending, 0, None);
                    Write::Update(repo.update_of(&current, &next, audit)?)
                }
                None => {
                    let new = queued(Destination::Webhook, endpoint_id, raw, event_type, key, version);
                    Write::Create(repo.new_item(&new, audit)?)
                }
            };
            Ok::<_, ApiError>(repo.tenant().write(vec![write]).await?.swap_remove(0))
        })
        .await?;
        Ok(text_response(StatusCode::ACCEPTED, delivery_view(&saved.body)?, "application/json"))
    })
    .await
}

/// A new pending delivery of an event to one endpoint or hub subscription.
pub fn queued(
    destination: Destination,
    endpoint: Uuid,
    event_id: &str,
    event_type: &str,
    key: &Key,
    version: u64,
) -> Delivery {
    Delivery {
        id: Delivery::id_for(endpoint, event_id),
        destination,
        endpoint_id: endpoint,
        event_id: event_id.to_owned(),
        event_type: event_type.to_owned(),
        status: DeliveryStatus::Pending,
        tries: 0,
        attempts: Vec::new(),
        next_attempt_at: None,
        created_at: now_rfc3339(),
        created_ms: now_ms(),
        resource: key.partition(),
        resource_version: version,
    }
}

// ---------------------------------------------------------------------------------------------
// The TMF678 hub

/// `POST /brm/customerBillManagement/v4/hub`: 201 with the EventSubscription and Location.
pub async fn hub_create(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, ErrorFormat::Tmf, async {
        let (user, tenant) = admin(deps, &req)?;
        let body = json_body(&req)?;
        let object = body.as_object().ok_or_else(|| ApiError::bad_request("the body must be a JSON object"))?;
        if let Some(name) = object.keys().find(|k| !["callback", "query"].contains(&k.as_str())) {
            return Err(ApiError::field(&format!("/{name}"), "is not a field of an EventSubscription"));
        }
        let callback = object
            .get("callback")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::field("/callback", "is required, a URL"))?;
        let query = match object.get("query") {
            None | Some(Value::Null) => None,
            Some(Value::String(q)) => Some(q.clone()),
            Some(_) => return Err(ApiError::field("/query", "must be a string")),
        };
        check_hub_query(query.as_deref())?;
        check_resolved("/callback", callback, crate::outbound::url_rules()).await?;
        let subscription = HubSubscription { id: Uuid::new_v4(), callback: callback.to_owned(), query };
        let repo = tenant.repo::<HubSubscription>();
        let (repo, subscription_ref) = (&repo, &subscription);
        let saved = with_retries(move || async move {
            let mut item = repo.new_item(subscription_ref, AuditEvent::new(Some(user), "create"))?;
            item.guard = Some(room(repo, "hub subscriptions").await?);
            Ok::<_, ApiError>(repo.tenant().create(item).await?)
        })
        .await?;
        let response = text_response(StatusCode::CREATED, saved.body, "application/json");
        Ok(with_header(response, "location", &format!("{HUB_PATH}/{}", subscription.id)))
    })
    .await
}

/// `DELETE /brm/customerBillManagement/v4/hub/{id}`: 204.
pub async fn hub_delete(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, ErrorFormat::Tmf, async {
        let (user, tenant) = admin(deps, &req)?;
        let repo = tenant.repo::<HubSubscription>();
        let (repo, req) = (&repo, &req);
        with_retries(move || async move {
            let id = path_id(req, "id", HubSubscription::KIND.ids)
                .map_err(|_| ApiError::NotFound("no such hub subscription".into()))?;
            let current = load(repo, &id, "hub subscription").await?;
            repo.tenant().delete(repo.delete_of(&current, AuditEvent::new(Some(user), "delete"))?).await?;
            Ok(no_content())
        })
        .await
    })
    .await
}
