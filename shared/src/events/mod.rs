//! Events out (docs/events.md): the audit event written with every change is the outbox. The
//! [`Publisher`] takes each published event (in AWS from the table's stream, filtered to event
//! items; in the dev server from [`crate::worker::in_process`]), puts it on the event bus, and
//! creates one [`Delivery`] per matching webhook endpoint and hub subscription of its tenant.
//! Deliveries are async work ([`sender`]): the `webhook-sender` steps them from the stream and
//! its schedule, with the retry schedule kept in each delivery's lease.

pub mod eventbridge;
pub mod sender;

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::DynamoDbEventResponse;
use serde_json::Value;

use crate::domain::event::{self, tmf_event};
use crate::domain::key::Key;
use crate::domain::webhook::{Delivery, Destination, HubSubscription, WebhookEndpoint, MAX_ENDPOINTS};
use crate::http::webhooks::queued;
use crate::store::repo::{Repo, Tenant};
use crate::store::{AuditEvent, Page, Recorded, SharedRepository, StoreError, StoreResult};
use crate::worker::{batch_response, by_item};

/// Where every event is put besides its deliveries: EventBridge in AWS.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Puts the events (each [`Recorded::to_json`]); the ones that failed, by index.
    async fn put(&self, events: &[Value]) -> Vec<usize>;
}

/// The dev server's bus: each event logged at debug level (`RUST_LOG=debug` shows them).
pub struct LogBus;

#[async_trait]
impl Bus for LogBus {
    async fn put(&self, events: &[Value]) -> Vec<usize> {
        for event in events {
            tracing::debug!(id = %event["id"], r#type = %event["type"], "event put on the bus (logged locally)");
        }
        Vec::new()
    }
}

#[derive(Clone)]
pub struct Publisher {
    store: SharedRepository,
    bus: Arc<dyn Bus>,
}

impl Publisher {
    pub fn new(store: SharedRepository, bus: Arc<dyn Bus>) -> Self {
        Self { store, bus }
    }

    /// One event as the dev server publishes it: put on the bus (logged there), then its deliveries
    /// made ([`Publisher::deliver`]).
    pub async fn publish(&self, recorded: &Recorded) -> StoreResult<usize> {
        if let Some(event) = recorded.to_json() {
            if !self.bus.put(std::slice::from_ref(&event)).await.is_empty() {
                return Err(StoreError::Unavailable("the bus refused the event".into()));
            }
        }
        self.deliver(recorded).await
    }

    /// Creates the deliveries of one event: one per endpoint of its tenant that takes its type
    /// and, for the four TMF678 events, one per hub subscription whose query takes it, side by side. A
    /// delivery that exists (a repeated publication) is left as it is. How many were made.
    pub async fn deliver(&self, recorded: &Recorded) -> StoreResult<usize> {
        let Some(event_type) = recorded.event.event_type.as_deref() else { return Ok(0) };
        let Some(event_id) =
            event::event_id(recorded.key.kind(), recorded.key.tenant(), recorded.key.id(), recorded.version)
        else {
            return Ok(0);
        };
        let tenant = Tenant::new(self.store.as_ref(), recorded.key.tenant().clone());
        let mut targets = Vec::new();
        for endpoint in all(&tenant.repo::<WebhookEndpoint>()).await? {
            if endpoint.value.takes(event_type) {
                targets.push((Destination::Webhook, endpoint.value.id));
            }
        }
        if let Some((tmf_type, _)) = tmf_event(event_type) {
            for hub in all(&tenant.repo::<HubSubscription>()).await? {
                if hub.value.takes(tmf_type) {
                    targets.push((Destination::Hub, hub.value.id));
                }
            }
        }
        let deliveries = tenant.repo::<Delivery>();
        let (tenant, deliveries, event_id) = (&tenant, &deliveries, &event_id);
        let made = futures_util::future::try_join_all(targets.into_iter().map(|(destination, id)| async move {
            let delivery = queued(destination, id, event_id, event_type, &recorded.key, recorded.version);
            let item = deliveries.new_item(&delivery, AuditEvent::new(None, "publish"))?;
            match tenant.create(item).await {
                Ok(_) => Ok(1),
                Err(StoreError::Conflict) => Ok(0), // made by an earlier publication of this event
                Err(error) => Err(error),
            }
        }))
        .await?;
        Ok(made.into_iter().sum())
    }

    /// One batch of stream records (event items): each event is put on the bus, then its
    /// deliveries are made; a record whose event failed either is reported for redelivery.
    /// Records of one resource are handled in their order, others side by side.
    pub async fn handle_stream(&self, event: Event) -> DynamoDbEventResponse {
        let records: Vec<(Recorded, Option<String>)> = event
            .records
            .iter()
            .filter_map(|record| Some((recorded_of(record)?, record.change.sequence_number.clone())))
            .collect();
        let bodies: Vec<Value> = records.iter().filter_map(|(r, _)| r.to_json()).collect();
        let mut failed: Vec<Option<String>> = Vec::new();
        for index in self.bus.put(&bodies).await {
            failed.extend(records.get(index).map(|(_, sequence)| sequence.clone()));
        }
        let chains = by_item(records.iter().map(|record| (record.0.key.clone(), record)));
        let outcomes = futures_util::future::join_all(chains.into_iter().map(|chain| async move {
            // A resource's events in turn; once one fails, the later ones fail too, so that none
            // of its deliveries is made before an earlier event's.
            let mut failed = Vec::new();
            for (recorded, sequence) in chain {
                if !failed.is_empty() {
                    failed.push(sequence.clone());
                } else if let Err(error) = self.deliver(recorded).await {
                    tracing::warn!(key = %recorded.key, version = recorded.version, %error, "an event's deliveries were not made");
                    failed.push(sequence.clone());
                }
            }
            failed
        }))
        .await;
        failed.extend(outcomes.into_iter().flatten());
        batch_response(failed)
    }
}

/// Every endpoint (or subscription) of a tenant: at most [`MAX_ENDPOINTS`], one Query after a
/// read of their count (a tenant without any costs one read an event).
async fn all<R: crate::domain::resource::Resource>(
    repo: &Repo<'_, R>,
) -> StoreResult<Vec<crate::store::repo::Versioned<R>>> {
    if repo.count().await? == 0 {
        return Ok(Vec::new());
    }
    repo.page(&Page { limit: MAX_ENDPOINTS as usize + 1, ..Page::default() }).await
}

/// The published event a stream record of an audit item reports (`None` for anything else).
pub fn recorded_of(record: &EventRecord) -> Option<Recorded> {
    use serde_dynamo::AttributeValue;
    let image = &record.change.new_image;
    let text = |name: &str| match image.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    };
    let key = Key::parse(&text("PK")?, &event::kinds())?;
    let version = text("SK")?.strip_prefix("EVENT#")?.parse().ok()?;
    let mut item = image.clone();
    for name in ["PK", "SK", "expiresAt", "GSI9PK", "GSI9SK", "GSI10PK", "GSI10SK"] {
        item.remove(name);
    }
    let event: AuditEvent = serde_dynamo::from_item(item).ok()?;
    event.event_type.is_some().then_some(Recorded { key, version, event })
}
