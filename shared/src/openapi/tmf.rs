//! The TMF678 family: its operations, and the official TMF678 schemas as billflow states them
//! (closed references and money, each create's `@type`, the customer bill's PATCH).

use super::*;

/// The official TMF678 v4.0.0 document (Swagger 2.0), with the one extension
/// docs/customer-bills.md documents (`inProgress` in `stateValue`: a bill being built).
pub(super) const TMF678_REFERENCE: &str = include_str!("../../reference/TMF678-CustomerBill-v4.0.0.swagger.json");

/// The TMF678 reads and the customer bill's PATCH.
pub(super) fn customer_bill_operation(function: &str) -> Option<Op> {
    Some(match function {
        "list-customer-bills" => tmf_list("List customer bills", "CustomerBill", BILL_SHAPE),
        "get-customer-bill" => tmf_get("Get a customer bill", "CustomerBill", BILL_SHAPE),
        "patch-customer-bill" => Op::new("Put a customer bill on hold, or back in progress", TMF_TAG)
            .body(json!({"required": true, "content": {
                "application/merge-patch+json": {"schema": schema_ref("CustomerBill_Update"),
                    "example": {"state": "onHold"}},
                "application/json": {"schema": schema_ref("CustomerBill_Update")},
                "application/json-patch+json": {"schema": schema_ref("CustomerBill_JsonPatch"),
                    "example": [{"op": "replace", "path": "/state", "value": "inProgress"}]},
            }}))
            .ok(200, resource("CustomerBill"))
            .errors(CHANGE)
            .if_match(),
        "list-customer-bill-on-demand" => {
            tmf_list("List on-demand bill requests", "CustomerBillOnDemand", ON_DEMAND_SHAPE)
        }
        "get-customer-bill-on-demand" => {
            tmf_get("Get an on-demand bill request", "CustomerBillOnDemand", ON_DEMAND_SHAPE)
        }
        "list-applied-customer-billing-rates" => {
            tmf_list("List applied customer billing rates", "AppliedCustomerBillingRate", RATE_SHAPE)
        }
        "get-applied-customer-billing-rate" => {
            tmf_get("Get an applied customer billing rate", "AppliedCustomerBillingRate", RATE_SHAPE)
        }
        _ => return None,
    })
}

pub(super) const TMF_TAG: &str = "customer bills (TMF678)";

pub(super) fn tmf_list(summary: &'static str, schema: &'static str, shape: TmfShape) -> Op {
    Op::new(summary, TMF_TAG)
        .query(vec![
            json!({"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": u32::MAX, "default": 0}}),
            json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}),
            fields_param(&attributes(shape)),
        ])
        .ok(
            200,
            json!({
                "description": "The page, newest first. Any attribute of the resource, top-level or dotted, filters (`attribute=v1,v2`).",
                "headers": {
                    "x-request-id": {"schema": {"type": "string"}},
                    "X-Result-Count": {"schema": {"type": "integer"}},
                    "X-Total-Count": {"schema": {"type": "integer"}},
                },
                "content": {"application/json": {"schema": {"type": "array", "items": schema_ref(schema)}}},
            }),
        )
}

pub(super) fn tmf_get(summary: &'static str, schema: &'static str, shape: TmfShape) -> Op {
    Op::new(summary, TMF_TAG).query(vec![fields_param(&attributes(shape))]).ok(200, resource(schema)).errors(READ)
}

type TmfShape = &'static [(&'static str, crate::domain::tmf_query::Shape)];

/// The top-level attributes of a TMF resource (what `fields` may name).
pub(super) fn attributes(shape: TmfShape) -> Vec<&'static str> {
    shape.iter().map(|(name, _)| *name).collect()
}

/// The TMF678 definitions, as OpenAPI 3.1 component schemas.
pub(super) fn tmf_schemas() -> Map<String, Value> {
    let reference: Value = serde_json::from_str(TMF678_REFERENCE).expect("the TMF678 reference is JSON");
    let text = reference["definitions"].to_string().replace("#/definitions/", "#/components/schemas/");
    let Ok(Value::Object(mut definitions)) = serde_json::from_str::<Value>(&text) else {
        unreachable!("the definitions are an object")
    };
    use crate::domain::customer_bill::{ON_DEMAND_SERVER_OWNED, ON_DEMAND_TYPE, RATE_SERVER_OWNED, RATE_TYPE};
    // Our own: how rated charges enter (TMF678 v4 leaves rating out).
    let required = ["billingAccount", "taxExcludedAmount"];
    let mut rate = request_of(&definitions["AppliedCustomerBillingRate"], RATE_SERVER_OWNED, &required, RATE_TYPE);
    rate["description"] = json!("A rated charge to record: AppliedCustomerBillingRate without what the server owns");
    // Money as a charge must state it: a unit and a value.
    rate["properties"]["taxExcludedAmount"] = json!({"allOf": [schema_ref("Money")], "required": ["unit", "value"]});
    definitions.insert("AppliedCustomerBillingRate_Create".into(), rate);
    // An on-demand request names its account.
    let on_demand = &definitions["CustomerBillOnDemand_Create"];
    let on_demand = request_of(on_demand, ON_DEMAND_SERVER_OWNED, &["billingAccount"], ON_DEMAND_TYPE);
    definitions.insert("CustomerBillOnDemand_Create".into(), on_demand);
    close_parts(&mut definitions);
    definitions.insert("JsonPatch".into(), json_patch_schema());
    definitions.extend(customer_bill_patches());
    // TMF678's hub and attachment definitions no operation here uses: left out, so that the
    // document holds no schema nothing refers to.
    for unused in [
        "Attachment",
        "AttachmentRef",
        "Characteristic",
        "EntityRef",
        "EventSubscription",
        "EventSubscriptionInput",
        "Reference",
    ] {
        definitions.remove(unused);
    }
    definitions
}

/// A create request of TMF678's `definition`: without what the server owns, requiring
/// `required`, no other member, and `@type` its one value.
fn request_of(definition: &Value, server_owned: &[&str], required: &[&str], at_type: &str) -> Value {
    let mut request = definition.clone();
    if let Some(properties) = request["properties"].as_object_mut() {
        for owned in server_owned {
            properties.remove(*owned);
        }
    }
    request["required"] = json!(required);
    request["additionalProperties"] = json!(false);
    // Text as billflow bounds it anywhere in a body.
    for text in ["name", "description", "type"] {
        if request["properties"][text]["type"] == "string" {
            request["properties"][text]["maxLength"] = json!(crate::domain::customer_bill::MAX_TEXT);
        }
    }
    request["properties"]["@type"] = json!({"const": at_type});
    request
}

/// The parts of a request billflow reads member by member, as it reads them: what TMF678 lists
/// and nothing else (TMF678 leaves them open; an unknown member of one is 400 here), money as an
/// ISO 4217 code and a value within the money bounds, a reference's id of 1 to 256 characters,
/// and a tax as an amount.
fn close_parts(definitions: &mut Map<String, Value>) {
    for closed in [
        "BillingAccountRef",
        "ProductRef",
        "RelatedPartyRef",
        "Money",
        "AppliedBillingTaxRate",
        "TimePeriod",
        "AppliedBillingRateCharacteristic",
    ] {
        definitions[closed]["additionalProperties"] = json!(false);
    }
    definitions["Money"]["properties"]["unit"]["pattern"] = json!("^[A-Z]{3}$");
    definitions["Money"]["properties"]["value"] = decimal(MONEY);
    definitions["AppliedBillingTaxRate"]["properties"]["taxRate"] = decimal(QUANTITY);
    definitions["AppliedBillingTaxRate"]["required"] = json!(["taxAmount"]);
    for reference in ["BillingAccountRef", "ProductRef", "RelatedPartyRef"] {
        definitions[reference]["properties"]["id"] =
            json!({"type": "string", "minLength": 1, "maxLength": crate::domain::customer_bill::MAX_ID});
    }
}

/// What a PATCH of a customer bill may say: its state, on hold or back in progress (TMF678's
/// CustomerBill_Update lists every attribute, but the rest are the server's), as a merge patch or
/// a JSON Patch of `/state`.
pub(super) fn customer_bill_patches() -> [(String, Value); 2] {
    let state = json!({"enum": ["inProgress", "onHold", "InProgress", "OnHold"]});
    let update = (
        "CustomerBill_Update".to_owned(),
        json!({"type": "object", "additionalProperties": false, "properties": {
            "state": state, "@type": {"const": "CustomerBill"}, "@baseType": {"type": "string"},
            "@schemaLocation": {"type": "string", "format": "uri"},
        }}),
    );
    let json_patch = (
        "CustomerBill_JsonPatch".to_owned(),
        json!({"type": "array", "maxItems": crate::domain::patch::MAX_OPERATIONS, "items": {
            "type": "object", "required": ["op", "path", "value"],
            "properties": {"op": {"enum": ["replace", "add"]}, "path": {"const": "/state"}, "value": state},
        }}),
    );
    [update, json_patch]
}
