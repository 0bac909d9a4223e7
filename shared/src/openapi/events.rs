//! Events, webhook endpoints and the TMF678 hub: their operations and schemas (docs/events.md).

use super::*;

pub(super) const EVENTS_TAG: &str = "events";
pub(super) const WEBHOOKS_TAG: &str = "webhook endpoints";

fn json_response(description: &str, schema: &str) -> Value {
    json!({"description": description, "headers": request_id_header(),
        "content": {"application/json": {"schema": schema_ref(schema)}}})
}

fn shown_once(description: &str, schema: &str) -> Value {
    json!({"description": description,
        "headers": {"x-request-id": {"schema": {"type": "string"}}, "Location": {"schema": {"type": "string"}},
            "Cache-Control": {"schema": {"const": "no-store"}}},
        "content": {"application/json": {"schema": schema_ref(schema)}}})
}

fn event_params() -> Vec<Value> {
    let mut params = vec![
        json!({"name": "type", "in": "query", "description": "Only events of this type",
            "schema": enumeration(crate::domain::event::TYPES)}),
        json!({"name": "resource", "in": "query",
            "description": "Only one resource's events: its href (`/bills/12`) or `kind:id` (`bill:12`)",
            "schema": {"type": "string", "minLength": 1, "maxLength": 300}}),
        json!({"name": "after", "in": "query", "description": "Only events at or after this time", "schema": date_time()}),
        json!({"name": "before", "in": "query", "description": "Only events before this time", "schema": date_time()}),
    ];
    params.extend(page_params());
    params
}

/// The operations of the events API, the webhook endpoints and the hub (`billing:admin` for
/// endpoints and the hub, `billing:read` for events).
pub(super) fn event_operation(function: &str) -> Option<Op> {
    Some(match function {
        "list-events" => Op::new("List the tenant's events, newest first", EVENTS_TAG)
            .query(event_params())
            .ok(200, json_response("A page of events", "EventPage")),
        "get-event" => Op::new("Get one event, as it was delivered", EVENTS_TAG)
            .ok(200, json_response("The event", "Event"))
            .errors(&[404]),
        "create-webhook-endpoint" => Op::new("Register a webhook endpoint (its secret shown once)", WEBHOOKS_TAG)
            .body(json_body("WebhookEndpointCreate"))
            .ok(201, shown_once("Created: `secret` is shown this once", "WebhookEndpointWithSecret"))
            .errors(&[409, 413, 415]),
        "list-webhook-endpoints" => Op::new("List the tenant's webhook endpoints (at most 16)", WEBHOOKS_TAG)
            .ok(200, json_response("Every endpoint, oldest first", "WebhookEndpointPage")),
        "get-webhook-endpoint" => Op::new("Get a webhook endpoint", WEBHOOKS_TAG)
            .ok(200, json_response("The endpoint", "WebhookEndpoint"))
            .errors(&[404]),
        "update-webhook-endpoint" => Op::new("Change a webhook endpoint (a merge patch)", WEBHOOKS_TAG)
            .body(json_body("WebhookEndpointUpdate"))
            .ok(200, json_response("The endpoint", "WebhookEndpoint"))
            .errors(&[404, 409, 413, 415]),
        "delete-webhook-endpoint" => {
            Op::new("Delete a webhook endpoint (its pending deliveries are skipped)", WEBHOOKS_TAG)
                .ok(204, json!({"description": "Deleted", "headers": request_id_header()}))
                .errors(&[404, 409])
        }
        "rotate-webhook-secret" => {
            Op::new("Rotate an endpoint's secret (the old one signs beside it for 24 h)", WEBHOOKS_TAG)
                .ok(200, shown_once("The new secret, shown this once", "WebhookEndpointWithSecret"))
                .errors(&[404, 409])
        }
        "list-webhook-deliveries" => {
            Op::new("List an endpoint's deliveries and their attempts, newest first", WEBHOOKS_TAG)
                .query(page_params())
                .ok(200, json_response("A page of deliveries", "DeliveryPage"))
                .errors(&[404])
        }
        "redeliver-event" => Op::new("Queue an event again for an endpoint (the same event id)", WEBHOOKS_TAG)
            .ok(202, json_response("Queued", "Delivery"))
            .errors(&[404, 409]),
        "create-hub-subscription" => {
            Op::new("Subscribe a listener to customer bill events (TMF678 hub)", "customer bills (TMF678)")
                .body(json_body("EventSubscriptionInput"))
                .ok(
                    201,
                    json!({"description": "Subscribed", "headers": {"x-request-id": {"schema": {"type": "string"}},
                "Location": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": schema_ref("EventSubscription")}}}),
                )
                .errors(&[409, 413, 415])
        }
        "delete-hub-subscription" => Op::new("Unsubscribe a listener (TMF678 hub)", "customer bills (TMF678)")
            .ok(204, json!({"description": "Unsubscribed", "headers": request_id_header()}))
            .errors(&[404, 409]),
        _ => return None,
    })
}

fn page(item: &str) -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["Count", "Items"],
    "properties": {
        "Count": integer(0),
        "Items": {"type": "array", "items": schema_ref(item)},
        "LastEvaluatedKey": {"type": "string", "description": "Pass back as `exclusiveStartKey` for the next page"},
    }})
}

pub(super) fn event_schemas() -> Vec<(&'static str, Value)> {
    let event = exact(&[
        ("id", json!({"type": "string", "pattern": "^evt_[0-9a-f]{8}_[a-z_]+_[0-9a-f-]+_[0-9]+$"})),
        ("type", enumeration(crate::domain::event::TYPES)),
        ("tenant", string()),
        ("time", date_time()),
        ("resource", exact(&[("kind", string()), ("id", string()), ("href", string())])),
        ("data", open(&[("object", json!({"type": "object"})), ("previous", json!({"type": "object"}))], &["object"])),
    ]);
    let mut schemas = vec![("Event", event), ("EventPage", page("Event"))];
    schemas.extend(endpoint_schemas());
    schemas.extend(delivery_schemas());
    schemas
}

fn endpoint_schemas() -> Vec<(&'static str, Value)> {
    use crate::domain::webhook::{MAX_DESCRIPTION, MAX_ENABLED, MAX_URL};
    let enabled = json!({"type": "array", "minItems": 1, "maxItems": MAX_ENABLED, "uniqueItems": true,
        "items": {"type": "string", "description": "`*`, an event type, or a family such as `bill.*`"}});
    let url = json!({"type": "string", "maxLength": MAX_URL,
        "description": "https:// (http:// to loopback only where WEBHOOK_ALLOW_LOOPBACK=true); never a private, link-local or metadata address"});
    let description = json!({"type": ["string", "null"], "maxLength": MAX_DESCRIPTION});
    let view = [
        ("id", json!({"type": "string", "format": "uuid"})),
        ("url", string()),
        ("enabledEvents", json!({"type": "array", "items": string()})),
        ("description", nullable_string()),
        ("disabled", json!({"type": "boolean"})),
        ("disabledReason", nullable_string()),
        ("failingSince", nullable(date_time())),
        ("createdAt", date_time()),
        ("updatedAt", date_time()),
    ];
    let mut with_secret = view.to_vec();
    with_secret.push(("secret", json!({"type": "string", "pattern": "^whsec_[A-Za-z0-9+/=]+$"})));
    let create = open(
        &[("url", url.clone()), ("enabledEvents", enabled.clone()), ("description", description.clone())],
        &["url", "enabledEvents"],
    );
    let update = open(
        &[
            ("url", url),
            ("enabledEvents", enabled),
            ("description", description),
            ("disabled", json!({"type": "boolean", "description": "false enables it again"})),
        ],
        &[],
    );
    vec![
        ("WebhookEndpoint", exact(&view)),
        ("WebhookEndpointWithSecret", exact(&with_secret)),
        ("WebhookEndpointCreate", create),
        ("WebhookEndpointUpdate", update),
        ("WebhookEndpointPage", page("WebhookEndpoint")),
    ]
}

fn delivery_schemas() -> Vec<(&'static str, Value)> {
    use crate::domain::webhook::MAX_URL;
    let attempt = exact(&[
        ("at", date_time()),
        ("statusCode", json!({"type": ["integer", "null"]})),
        ("error", nullable_string()),
        ("durationMs", integer(0)),
    ]);
    let delivery = exact(&[
        ("id", json!({"type": "string", "format": "uuid"})),
        ("destination", enumeration(&["webhook", "hub"])),
        ("endpointId", json!({"type": "string", "format": "uuid"})),
        ("eventId", string()),
        ("eventType", string()),
        ("status", enumeration(&["pending", "delivered", "failed", "skipped"])),
        ("attempts", json!({"type": "array", "items": attempt})),
        ("nextAttemptAt", json!({"type": ["integer", "null"], "description": "Epoch milliseconds"})),
        ("createdAt", date_time()),
    ]);
    let subscription = exact(&[
        ("id", json!({"type": "string", "format": "uuid"})),
        ("callback", string()),
        ("query", nullable_string()),
    ]);
    let input = open(
        &[
            ("callback", json!({"type": "string", "maxLength": MAX_URL})),
            (
                "query",
                json!({"type": ["string", "null"], "description": "eventType=CustomerBillCreateEvent,CustomerBillStateChangeEvent,..."}),
            ),
        ],
        &["callback"],
    );
    vec![
        ("Delivery", delivery),
        ("DeliveryPage", page("Delivery")),
        ("EventSubscription", subscription),
        ("EventSubscriptionInput", input),
    ]
}
