//! Events: what happened to a resource, as the outside world is told it (docs/events.md). Pure:
//! which kinds of resource have events, how a change is typed (the most specific thing that
//! happened, from the resource's JSON before and after), what the change's `previous` holds, the
//! event's stable id and its JSON shape, and how an endpoint's `enabledEvents` match a type.
//!
//! The audit event written with every change is the event (the outbox): a change this module
//! types is published; one it does not (progress below 100 %, an unchanged write, the store's own
//! kinds) stays in the audit trail only.

use serde_json::{Map, Value};

use super::bill::Bill;
use super::bill_run::{AdhocBillRun, BillRun};
use super::billing_run::BillingRun;
use super::customer_bill::{AppliedRate, CustomerBill, OnDemand};
use super::key::{Id, Kind, TenantId};
use super::resource::Resource;
use super::webhook::WebhookEndpoint;

/// A family of events: the kinds of resource whose changes are told, their type prefix, and the
/// path of their own GET.
struct Family {
    kind: Kind,
    prefix: &'static str,
    /// The GET path before the id (`{tenant}` is the tenant's id).
    path: &'static str,
}

const FAMILIES: &[Family] = &[
    Family { kind: BillRun::KIND, prefix: "bill_run", path: "/bill-runs/" },
    Family { kind: AdhocBillRun::KIND, prefix: "adhoc_bill_run", path: "/adhoc-bill-runs/" },
    Family { kind: Bill::KIND, prefix: "bill", path: "/bills/" },
    Family { kind: BillingRun::KIND, prefix: "billing_run", path: "/billingRuns/{tenant}/" },
    Family {
        kind: CustomerBill::KIND,
        prefix: "customer_bill",
        path: concat!("/brm/customerBillManagement/v4/", "customerBill/"),
    },
    Family {
        kind: OnDemand::KIND,
        prefix: "customer_bill_on_demand",
        path: concat!("/brm/customerBillManagement/v4/", "customerBillOnDemand/"),
    },
    Family {
        kind: AppliedRate::KIND,
        prefix: "applied_customer_billing_rate",
        path: concat!("/brm/customerBillManagement/v4/", "appliedCustomerBillingRate/"),
    },
    Family { kind: WebhookEndpoint::KIND, prefix: "webhook_endpoint", path: "/webhook-endpoints/" },
];

/// Every event type, as endpoints subscribe to them.
pub const TYPES: &[&str] = &[
    "bill_run.created",
    "bill_run.updated",
    "bill_run.status_changed",
    "bill_run.stage_completed",
    "bill_run.finalized",
    "adhoc_bill_run.created",
    "adhoc_bill_run.updated",
    "adhoc_bill_run.status_changed",
    "adhoc_bill_run.stage_completed",
    "adhoc_bill_run.finalized",
    "bill.created",
    "bill.updated",
    "bill.issued",
    "bill.archived",
    "bill.deleted",
    "billing_run.created",
    "billing_run.updated",
    "billing_run.status_changed",
    "billing_run.deleted",
    "customer_bill.created",
    "customer_bill.updated",
    "customer_bill.state_changed",
    "customer_bill_on_demand.created",
    "customer_bill_on_demand.state_changed",
    "applied_customer_billing_rate.created",
    "applied_customer_billing_rate.updated",
    "applied_customer_billing_rate.billed",
    "webhook_endpoint.disabled",
];

fn family(kind: Kind) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.kind == kind)
}

/// Every kind whose changes are events.
pub fn kinds() -> Vec<Kind> {
    FAMILIES.iter().map(|f| f.kind).collect()
}

/// The type prefix of a kind's events (`resource.kind` of its events), when it has events.
pub fn prefix(kind: Kind) -> Option<&'static str> {
    family(kind).map(|f| f.prefix)
}

/// The kind whose events carry `prefix`.
pub fn kind_of_prefix(prefix: &str) -> Option<Kind> {
    FAMILIES.iter().find(|f| f.prefix == prefix).map(|f| f.kind)
}

/// The path of a resource's own GET (`resource.href`).
pub fn href(kind: Kind, tenant: &TenantId, id: &Id) -> Option<String> {
    family(kind).map(|f| format!("{}{id}", f.path.replace("{tenant}", tenant.as_str())))
}

/// The key of the resource an `href` or `kind:id` names in `tenant` (the events API's `resource`).
pub fn resource_key(text: &str, tenant: &TenantId) -> Option<super::key::Key> {
    let (kind, id) = match text.split_once(':') {
        Some((prefix, id)) => (kind_of_prefix(prefix)?, id),
        None => FAMILIES.iter().find_map(|f| {
            let path = f.path.replace("{tenant}", tenant.as_str());
            Some((f.kind, text.strip_prefix(path.as_str())?))
        })?,
    };
    super::key::Key::new(kind, tenant.clone(), Id::parse(kind.ids, id)?).ok()
}

/// A tenant's part of its event ids: 8 hex digits of a SHA-256 of its id, so that ids of two
/// tenants' resources of one id (counters count per tenant) never meet at a receiver or on the bus.
fn tenant_tag(tenant: &TenantId) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new().chain_update(b"billflow:event-tenant:").chain_update(tenant.as_str()).finalize();
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// The id of the event of version `version` of a resource of `tenant`:
/// `evt_<tenant tag>_<prefix>_<id>_<version>`, the same for the same change always.
pub fn event_id(kind: Kind, tenant: &TenantId, id: &Id, version: u64) -> Option<String> {
    prefix(kind).map(|p| format!("evt_{}_{p}_{id}_{version}", tenant_tag(tenant)))
}

/// The kind, id text and version an event id of `tenant` names (`None`: no id this API handed
/// out to this tenant).
pub fn parse_event_id<'a>(text: &'a str, tenant: &TenantId) -> Option<(Kind, &'a str, u64)> {
    let (tag, rest) = text.strip_prefix("evt_")?.split_once('_')?;
    if tag != tenant_tag(tenant) {
        return None;
    }
    let (rest, version) = rest.rsplit_once('_')?;
    let (prefix, id) = rest.rsplit_once('_')?;
    let version = version.parse().ok().filter(|v| *v > 0 && version.bytes().all(|b| b.is_ascii_digit()))?;
    Some((kind_of_prefix(prefix)?, id, version))
}

/// What a write did to a resource, as its JSON shows it.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    Created(&'a Value),
    Updated { before: &'a Value, after: &'a Value },
    Deleted(&'a Value),
}

/// A field of a resource's JSON (`Null` when absent).
fn field<'a>(value: &'a Value, name: &str) -> &'a Value {
    value.get(name).unwrap_or(&Value::Null)
}

/// Whether `name` differs between `before` and `after`.
fn moved(before: &Value, after: &Value, name: &str) -> bool {
    field(before, name) != field(after, name)
}

/// The most specific type of a change of a resource of `kind`: `None` when it is not an event
/// (a kind without events, an unchanged write, progress below 100 %, an endpoint change other
/// than its disabling).
pub fn event_type(kind: Kind, change: Change<'_>) -> Option<String> {
    let family = family(kind)?;
    let suffix = match change {
        Change::Created(_) if family.prefix == "webhook_endpoint" => return None,
        Change::Created(_) => "created",
        Change::Deleted(_) => match family.prefix {
            "bill" | "billing_run" => "deleted",
            _ => return None,
        },
        Change::Updated { before, after } => {
            if before == after {
                return None;
            }
            update_suffix(family.prefix, before, after)?
        }
    };
    Some(format!("{}.{suffix}", family.prefix))
}

fn update_suffix(prefix: &str, before: &Value, after: &Value) -> Option<&'static str> {
    let became = |name: &str, value: &Value| moved(before, after, name) && field(after, name) == value;
    Some(match prefix {
        "bill_run" | "adhoc_bill_run" => {
            if became("billRunStatus", &Value::from("FINALIZED")) {
                "finalized"
            } else if moved(before, after, "billRunStatus") || moved(before, after, "summaryStatus") {
                "status_changed"
            } else if became("summaryStatusPercentage", &Value::from(100)) {
                "stage_completed"
            } else if changed_fields(before, after).iter().all(|f| PROGRESS.contains(&f.as_str())) {
                return None;
            } else {
                "updated"
            }
        }
        "bill" if became("status", &Value::from("ISSUED")) => "issued",
        "bill" if became("isArchived", &Value::Bool(true)) => "archived",
        "billing_run" if moved(before, after, "status") => "status_changed",
        "billing_run" if changed_fields(before, after).iter().all(|f| RUN_PROGRESS.contains(&f.as_str())) => {
            return None;
        }
        "customer_bill" | "customer_bill_on_demand" if moved(before, after, "state") => "state_changed",
        "customer_bill_on_demand" => return None,
        "applied_customer_billing_rate" if became("isBilled", &Value::Bool(true)) => "billed",
        "webhook_endpoint" if became("disabled", &Value::Bool(true)) => "disabled",
        "webhook_endpoint" => return None,
        _ => "updated",
    })
}

/// A billing run's fields that move while the scheduler preprocesses or runs it: not an event.
const RUN_PROGRESS: &[&str] = &["statistics", "sys_last_modified_at", "sys_last_modified_by_id", "sys_version"];

/// A run's fields that move while a stage runs, below 100 %: not an event.
const PROGRESS: &[&str] = &["summaryStatusPercentage", "updatedAt"];

/// The top-level fields whose values differ, in `after`'s order then `before`'s.
fn changed_fields(before: &Value, after: &Value) -> Vec<String> {
    let empty = Map::new();
    let (b, a) = (before.as_object().unwrap_or(&empty), after.as_object().unwrap_or(&empty));
    let mut names: Vec<String> = a.keys().filter(|k| b.get(*k) != a.get(*k)).cloned().collect();
    names.extend(b.keys().filter(|k| !a.contains_key(*k)).cloned());
    names
}

/// A resource's JSON (or its old values) as its events show it: an endpoint's `url` only as its
/// origin, since a URL may carry a token and events are read with `billing:read`.
pub fn redacted(kind: Kind, text: String) -> String {
    if kind != WebhookEndpoint::KIND {
        return text;
    }
    let Ok(mut value) = serde_json::from_str::<Value>(&text) else { return text };
    if let Some(url) = value.get("url").and_then(Value::as_str) {
        let origin = fluent_uri::Uri::parse(url)
            .ok()
            .and_then(|u| Some(format!("{}://{}", u.scheme().as_str(), u.authority()?.host())))
            .unwrap_or_default();
        value["url"] = Value::String(origin);
    }
    value.to_string()
}

/// The changed fields' old values (Stripe's `previous_attributes`): a field the change added is
/// `null`.
pub fn previous(before: &Value, after: &Value) -> Value {
    let fields = changed_fields(before, after);
    Value::Object(fields.into_iter().map(|f| (f.clone(), field(before, &f).clone())).collect())
}

/// An event's own fields, as the audit event carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Told<'a> {
    pub kind: Kind,
    pub tenant: &'a TenantId,
    pub id: &'a Id,
    pub version: u64,
    pub event_type: &'a str,
    /// RFC 3339 UTC.
    pub time: &'a str,
    /// The resource's JSON text after the change (before it, for a deletion).
    pub object: &'a str,
    /// The changed fields' old values, JSON text.
    pub previous: Option<&'a str>,
}

impl Told<'_> {
    /// The event as every destination receives it and `GET /events/{id}` answers it.
    pub fn to_json(&self) -> Value {
        let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
        let mut data = Map::new();
        data.insert("object".into(), parse(self.object));
        if let Some(previous) = self.previous {
            data.insert("previous".into(), parse(previous));
        }
        serde_json::json!({
            "id": event_id(self.kind, self.tenant, self.id, self.version),
            "type": self.event_type,
            "tenant": self.tenant.as_str(),
            "time": self.time,
            "resource": {
                "kind": prefix(self.kind),
                "id": self.id.to_string(),
                "href": href(self.kind, self.tenant, self.id),
            },
            "data": data,
        })
    }
}

/// Whether an `enabledEvents` entry (`*`, a type, or a prefix such as `bill.*`) matches a type.
pub fn matches(pattern: &str, event_type: &str) -> bool {
    match pattern.strip_suffix(".*") {
        _ if pattern == "*" => true,
        Some(prefix) => event_type.split_once('.').is_some_and(|(p, _)| p == prefix),
        None => pattern == event_type,
    }
}

/// Whether `pattern` is an entry `enabledEvents` takes: `*`, a type of [`TYPES`], or
/// `<prefix>.*` of a family.
pub fn is_pattern(pattern: &str) -> bool {
    pattern == "*"
        || TYPES.contains(&pattern)
        || pattern.strip_suffix(".*").is_some_and(|p| FAMILIES.iter().any(|f| f.prefix == p))
}

/// The TMF678 event a type is, for the hub: its `eventType` and its payload's field. The listener
/// path is the type's name with a lower-case first letter (`/listener/customerBillCreateEvent`).
pub fn tmf_event(event_type: &str) -> Option<(&'static str, &'static str)> {
    Some(match event_type {
        "customer_bill.created" => ("CustomerBillCreateEvent", "customerBill"),
        "customer_bill.state_changed" => ("CustomerBillStateChangeEvent", "customerBill"),
        "customer_bill_on_demand.created" => ("CustomerBillOnDemandCreateEvent", "customerBillOnDemand"),
        "customer_bill_on_demand.state_changed" => ("CustomerBillOnDemandStateChangeEvent", "customerBillOnDemand"),
        _ => return None,
    })
}

/// The TMF678 event types the hub's `query` may name.
pub const TMF_TYPES: &[&str] = &[
    "CustomerBillCreateEvent",
    "CustomerBillStateChangeEvent",
    "CustomerBillOnDemandCreateEvent",
    "CustomerBillOnDemandStateChangeEvent",
];

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::key::IdType;

    const RUN: Kind = BillRun::KIND;
    const BILL: Kind = Bill::KIND;

    fn updated(kind: Kind, before: Value, after: Value) -> Option<String> {
        event_type(kind, Change::Updated { before: &before, after: &after })
    }

    #[test]
    fn a_change_is_typed_by_the_most_specific_thing_that_happened() {
        let run = json!({"billRunStatus": "OPEN", "summaryStatus": "REPORTING", "summaryStatusPercentage": 0});
        let at = |f: &str, v: Value| {
            let mut next = run.clone();
            next[f] = v;
            updated(RUN, run.clone(), next)
        };
        assert_eq!(at("summaryStatusPercentage", json!(40)), None, "progress below 100 % is not an event");
        assert_eq!(at("summaryStatusPercentage", json!(100)).as_deref(), Some("bill_run.stage_completed"));
        assert_eq!(at("summaryStatus", json!("DRAFT_INVOICES")).as_deref(), Some("bill_run.status_changed"));
        assert_eq!(at("billRunStatus", json!("FINALIZED")).as_deref(), Some("bill_run.finalized"));
        assert_eq!(at("name", json!("x")).as_deref(), Some("bill_run.updated"));
        assert_eq!(updated(RUN, run.clone(), run.clone()), None, "an unchanged write is not an event");
        let bill = json!({"status": "DRAFT", "isArchived": false});
        assert_eq!(
            updated(BILL, bill.clone(), json!({"status": "ISSUED", "isArchived": false})).as_deref(),
            Some("bill.issued")
        );
        assert_eq!(
            updated(BILL, bill.clone(), json!({"status": "DRAFT", "isArchived": true})).as_deref(),
            Some("bill.archived")
        );
        assert_eq!(event_type(BILL, Change::Deleted(&bill)).as_deref(), Some("bill.deleted"));
        assert_eq!(event_type(Kind::new("SEGMENT", IdType::Counter), Change::Created(&bill)), None);
        for t in TYPES {
            assert!(is_pattern(t), "{t}");
        }
    }

    #[test]
    fn previous_holds_the_changed_fields_old_values_and_ids_parse_back() {
        let before = json!({"a": 1, "b": 2, "gone": true});
        let after = json!({"a": 1, "b": 3, "new": "x"});
        assert_eq!(previous(&before, &after), json!({"b": 2, "new": null, "gone": true}));
        let tenant = TenantId::parse("acme").unwrap();
        let other = TenantId::parse("other").unwrap();
        let id = event_id(RUN, &tenant, &Id::Int(42), 7).unwrap();
        assert!(id.starts_with("evt_") && id.ends_with("_bill_run_42_7"), "{id}");
        assert_ne!(Some(&id), event_id(RUN, &other, &Id::Int(42), 7).as_ref(), "two tenants' ids never meet");
        assert_eq!(parse_event_id(&id, &tenant), Some((BillRun::KIND, "42", 7)));
        assert_eq!(parse_event_id(&id, &other), None, "another tenant's id names nothing");
        let uuid = uuid::Uuid::new_v4();
        let cb = event_id(CustomerBill::KIND, &tenant, &Id::Uuid(uuid), 1).unwrap();
        assert_eq!(parse_event_id(&cb, &tenant), Some((CustomerBill::KIND, uuid.to_string().as_str(), 1)));
        let key = resource_key(&format!("/brm/customerBillManagement/v4/customerBill/{uuid}"), &tenant).unwrap();
        assert_eq!(key.kind(), CustomerBill::KIND);
        assert_eq!(resource_key("bill:12", &tenant).map(|k| k.id().clone()), Some(Id::Int(12)));
        assert_eq!(resource_key("/billingRuns/acme/x", &tenant), None);
        assert_eq!(resource_key("bill:x", &tenant), None);
        let tag = tenant_tag(&tenant);
        for bad in ["", "evt_", "evt_bill_1", "evt_bill_1_1", "bill_1_1"]
            .into_iter()
            .map(str::to_owned)
            .chain(["nope_1_1", "bill_1_0", "bill_1_+1", "bill_1"].map(|t| format!("evt_{tag}_{t}")))
        {
            assert_eq!(parse_event_id(&bad, &tenant), None, "{bad}");
        }
    }

    #[test]
    fn enabled_events_match_all_a_family_or_one_type() {
        assert!(matches("*", "bill.issued"));
        assert!(matches("bill.*", "bill.issued"));
        assert!(!matches("bill.*", "bill_run.created"), "a prefix is a whole family");
        assert!(matches("bill.issued", "bill.issued"));
        assert!(!matches("bill.issued", "bill.created"));
        assert!(is_pattern("bill_run.*") && !is_pattern("nope.*") && !is_pattern("bill.nope") && !is_pattern(""));
        let endpoint = json!({"url": "https://hooks.example.com/T0/B0/secret-token?x=1", "disabled": true}).to_string();
        let shown: Value = serde_json::from_str(&redacted(WebhookEndpoint::KIND, endpoint)).unwrap();
        assert_eq!(shown["url"], "https://hooks.example.com", "an endpoint's event shows its URL's origin only");
    }
}
