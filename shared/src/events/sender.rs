//! The `webhook-sender`'s job: one step on a pending delivery. A delivery of one resource's event
//! waits while an earlier event of that resource to the same endpoint is pending (its lane), so
//! a later version never overtakes an earlier one; the head of a lane is sent when it is due, and
//! its outcome written: delivered, retried after the schedule's next delay (its lease), failed, or
//! skipped (the endpoint is gone or disabled). A finished delivery wakes the next of its lane in
//! the same transaction. A `410 Gone` disables the endpoint at once, and so does failing every
//! attempt for the whole schedule (about three days), each a `webhook_endpoint.disabled` event.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::domain::event::tmf_event;
use crate::domain::key::{Id, Key, Kind};
use crate::domain::resource::Resource;
use crate::domain::webhook::{
    failing_limit, outcome, retry_after, retry_schedule, signature, Attempt, Delivery, DeliveryStatus, Destination,
    HubSubscription, Outcome, Secrets, WebhookEndpoint, MAX_LOGGED_ATTEMPTS,
};
use crate::outbound::{Answer, Outbound};
use crate::retry::with_retries;
use crate::store::repo::{Repo, Tenant, Versioned};
use crate::store::{now_epoch, now_ms, now_rfc3339, AuditEvent, Change, Page, StoreError, StoreResult, Write};
use crate::worker::Job;

/// The delivery job (the `webhook-sender`'s only one).
pub fn jobs() -> Vec<Arc<dyn Job>> {
    vec![Arc::new(Deliveries)]
}

struct Deliveries;

#[async_trait]
impl Job for Deliveries {
    fn kind(&self) -> Kind {
        Delivery::KIND
    }

    async fn step(&self, tenant: &Tenant<'_>, change: &Change) -> StoreResult<bool> {
        let repo = tenant.repo::<Delivery>();
        let Some(delivery) = repo.get(change.key.id().clone()).await? else { return Ok(false) };
        if delivery.value.status != DeliveryStatus::Pending
            || delivery.value.next_attempt_at.is_some_and(|at| at > now_ms())
        {
            return Ok(false);
        }
        let lane = lane(&repo, &delivery.value).await?;
        if lane.iter().any(|other| other.value.resource_version < delivery.value.resource_version) {
            return Ok(false); // an earlier event of its resource goes first; it wakes this one
        }
        let Some(claimed) = claim(&repo, &delivery).await? else { return Ok(false) };
        let next = attempt(tenant, &claimed.value).await?;
        finish(&repo, &claimed, next, &lane).await?;
        Ok(true)
    }
}

/// How long a claimed attempt holds its delivery: the attempt's time and a margin. A sender that
/// dies mid-attempt leaves it due again then.
const CLAIM_MS: u64 = 30_000;

/// Claims a due delivery for one attempt (a write conditional on the version read, which pushes
/// its next attempt past the attempt's time): a concurrent step of the same delivery (its stream
/// record and a wake, or the sweep) loses, so an attempt is made once. `None`: another step has it.
async fn claim(repo: &Repo<'_, Delivery>, delivery: &Versioned<Delivery>) -> StoreResult<Option<Versioned<Delivery>>> {
    let mut next = delivery.value.clone();
    next.next_attempt_at = Some(now_ms().saturating_add(CLAIM_MS));
    match repo.tenant().update(repo.update_of(delivery, &next, AuditEvent::new(None, "claim"))?).await {
        Ok(stored) => crate::store::repo::decode(stored).map(Some),
        Err(StoreError::Conflict) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The other pending deliveries of its resource to its endpoint.
async fn lane(repo: &Repo<'_, Delivery>, delivery: &Delivery) -> StoreResult<Vec<Versioned<Delivery>>> {
    let lane = delivery.lane();
    let index = Page { group: Some(&lane), slot: 1, limit: 1000, ..Page::default() };
    let members = repo.page(&index).await?;
    // The index may lag its table: the lane's count, kept in the same transactions as its members
    // and read strongly consistent, says whether every member is there (an earlier version not
    // yet indexed must not be overtaken).
    if (members.len() as u64) < repo.group_count(&lane).await? {
        return Err(StoreError::Unavailable(format!("the index of lane {lane} lags its table")));
    }
    Ok(members.into_iter().filter(|m| m.value.id != delivery.id && m.value.status == DeliveryStatus::Pending).collect())
}

/// Writes the delivery as `next`; when it is no longer pending, wakes the earliest other
/// delivery of its lane (a write of it as it is, which the stream steps).
async fn finish(
    repo: &Repo<'_, Delivery>,
    current: &Versioned<Delivery>,
    next: Delivery,
    lane: &[Versioned<Delivery>],
) -> StoreResult<()> {
    let action = format!("attempt: {:?}", next.status);
    let done = next.status != DeliveryStatus::Pending;
    let mut writes = vec![Write::Update(repo.update_of(current, &next, AuditEvent::new(None, action))?)];
    if let Some(waiting) = lane.iter().filter(|_| done).min_by_key(|m| m.value.resource_version) {
        writes.push(Write::Update(repo.update_of(waiting, &waiting.value, AuditEvent::new(None, "wake"))?));
    }
    match repo.tenant().write(writes).await {
        // A lane member moved meanwhile: the delivery's own outcome is written alone, and the lane
        // goes on from that member's own step.
        Err(StoreError::Conflict) if done => {
            repo.tenant().update(repo.update_of(current, &next, AuditEvent::new(None, "attempt"))?).await.map(|_| ())
        }
        other => other.map(|_| ()),
    }
}

/// One attempt of a due delivery (or none, when its endpoint is gone or disabled, or its event
/// no longer kept): the delivery as it is after it.
async fn attempt(tenant: &Tenant<'_>, delivery: &Delivery) -> StoreResult<Delivery> {
    let mut next = delivery.clone();
    let Some(request) = request(tenant, delivery).await? else {
        next.status = DeliveryStatus::Skipped;
        next.next_attempt_at = None;
        return Ok(next);
    };
    let outbound = Outbound::shared().map_err(StoreError::Internal)?;
    let at = now_rfc3339();
    let answer = outbound.post(&request.url, &request.headers, request.body).await;
    log_attempt(&mut next, &at, &answer);
    let schedule = retry_schedule();
    let asked = answer.retry_after.as_deref().and_then(|v| retry_after(v, time::OffsetDateTime::now_utc()));
    let result = outcome(answer.status, delivery.tries, asked, schedule);
    next.tries += 1;
    (next.status, next.next_attempt_at) = match result {
        Outcome::Delivered => (DeliveryStatus::Delivered, None),
        Outcome::Gone | Outcome::Retry(None) => (DeliveryStatus::Failed, None),
        Outcome::Retry(Some(delay)) => (
            DeliveryStatus::Pending,
            Some(now_ms().saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))),
        ),
    };
    if delivery.destination == Destination::Webhook {
        let first = next.attempts.first().map_or(at.as_str(), |a| a.at.as_str());
        health(tenant, delivery.endpoint_id, result, (&at, first)).await?;
    }
    Ok(next)
}

fn log_attempt(delivery: &mut Delivery, at: &str, answer: &Answer) {
    delivery.attempts.push(Attempt {
        at: at.to_owned(),
        status_code: answer.status,
        error: answer.error.clone(),
        duration_ms: answer.duration_ms,
    });
    let extra = delivery.attempts.len().saturating_sub(MAX_LOGGED_ATTEMPTS);
    delivery.attempts.drain(..extra);
}

/// What an attempt sends.
struct Request {
    url: String,
    headers: Vec<(&'static str, String)>,
    body: String,
}

/// The request of a delivery: the event signed for its endpoint, or TMF's envelope for its hub
/// subscription's listener. `None` when there is nothing to send to (the endpoint deleted or
/// disabled, the subscription deleted, the event expired).
async fn request(tenant: &Tenant<'_>, delivery: &Delivery) -> StoreResult<Option<Request>> {
    let Some((kind, id, version)) = crate::domain::event::parse_event_id(&delivery.event_id, tenant.id()) else {
        return Ok(None);
    };
    let Some(id) = Id::parse(kind.ids, id) else { return Ok(None) };
    let key = Key::new(kind, tenant.id().clone(), id).map_err(|e| StoreError::Internal(e.to_string()))?;
    let Some(event) = tenant.event(&key, version).await?.and_then(|e| e.to_json()) else { return Ok(None) };
    let endpoint_id = Id::Uuid(delivery.endpoint_id);
    match delivery.destination {
        Destination::Webhook => {
            let Some(endpoint) = tenant.repo::<WebhookEndpoint>().get(endpoint_id).await? else { return Ok(None) };
            if endpoint.value.disabled {
                return Ok(None);
            }
            let secrets: Secrets = endpoint.state().unwrap_or(Secrets { secrets: Vec::new() });
            if secrets.signing(now_epoch()).is_empty() {
                tracing::error!(endpoint = %delivery.endpoint_id, "an endpoint without a secret is never sent to");
                return Ok(None);
            }
            Ok(Some(signed(endpoint.value.url, &delivery.event_id, &secrets, event.to_string())))
        }
        Destination::Hub => {
            let Some(hub) = tenant.repo::<HubSubscription>().get(endpoint_id).await? else { return Ok(None) };
            Ok(tmf_request(&hub.value.callback, &event))
        }
    }
}

/// A Standard Webhooks v1 request: `webhook-id`, `webhook-timestamp` (now) and
/// `webhook-signature` under every secret that signs now.
fn signed(url: String, event_id: &str, secrets: &Secrets, body: String) -> Request {
    let timestamp = now_epoch();
    let headers = vec![
        ("content-type", "application/json".to_owned()),
        ("user-agent", "billflow-webhooks/1".to_owned()),
        ("webhook-id", event_id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature(&secrets.signing(timestamp), event_id, timestamp, &body)),
    ];
    Request { url, headers, body }
}

/// TMF678's notification: POST `{callback}/listener/{eventName}` of `{eventId, eventTime,
/// eventType, event: {customerBill | customerBillOnDemand}}`.
fn tmf_request(callback: &str, event: &Value) -> Option<Request> {
    let (tmf_type, field) = tmf_event(event["type"].as_str()?)?;
    let mut name = tmf_type.to_owned();
    name[..1].make_ascii_lowercase();
    let body = json!({
        "eventId": event["id"],
        "eventTime": event["time"],
        "eventType": tmf_type,
        "event": {field: event["data"]["object"]},
    });
    let url = format!("{}/listener/{name}", callback.trim_end_matches('/'));
    Some(Request { url, headers: vec![("content-type", "application/json".to_owned())], body: body.to_string() })
}

/// An endpoint's health after an attempt at `at.0` of a delivery first tried at `at.1`: a failure starts
/// its failing streak; a `410 Gone`, or failing for the whole schedule, disables it; a success ends
/// the streak. Written only when it changes, re-read when it lost a race.
async fn health(tenant: &Tenant<'_>, endpoint_id: uuid::Uuid, result: Outcome, at: (&str, &str)) -> StoreResult<()> {
    let repo = tenant.repo::<WebhookEndpoint>();
    let repo = &repo;
    with_retries(move || async move {
        let Some(current) = repo.get(Id::Uuid(endpoint_id)).await? else { return Ok(()) };
        let Some(next) = judged(&current.value, result, at) else { return Ok(()) };
        let mut update = repo.update_of(&current, &next, AuditEvent::new(None, "delivery health"))?;
        update.state = current.state.clone();
        repo.tenant().update(update).await.map(|_| ())
    })
    .await
}

/// The endpoint after an attempt's outcome, when that changes it. It has failed every attempt for
/// the whole schedule when its streak is as long as the schedule, or when a delivery spent the
/// schedule and the streak began no later than that delivery's first attempt.
fn judged(endpoint: &WebhookEndpoint, result: Outcome, (at, first): (&str, &str)) -> Option<WebhookEndpoint> {
    let mut next = endpoint.clone();
    let now = now_rfc3339();
    match result {
        Outcome::Delivered => next.failing_since = None,
        Outcome::Gone => {
            next.disabled = true;
            next.disabled_reason = Some("the endpoint answered 410 Gone".into());
        }
        Outcome::Retry(_) => {
            let since = next.failing_since.get_or_insert_with(|| at.to_owned()).clone();
            let fmt = &time::format_description::well_known::Rfc3339;
            let started = time::OffsetDateTime::parse(&since, fmt).ok()?;
            let first = time::OffsetDateTime::parse(first, fmt).ok()?;
            let limit = failing_limit(retry_schedule());
            let spent = result == Outcome::Retry(None) && started <= first;
            if !next.disabled && (spent || time::OffsetDateTime::now_utc() - started >= limit) {
                next.disabled = true;
                next.disabled_reason =
                    Some(format!("every delivery failed since {since}, for the whole retry schedule"));
            }
        }
    }
    (next != *endpoint).then(|| {
        next.updated_at = now;
        next
    })
}
