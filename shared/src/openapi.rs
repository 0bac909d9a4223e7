//! The OpenAPI 3.1 document of every route of the route table, built from the code: its paths,
//! methods, security and error formats come from [`ROUTES`], list parameters from each family's
//! `ListSpec`, and each operation's statuses, parameters and bodies from [`operation`], which has
//! an arm for every function (a route without one fails `every_route_is_documented`). The
//! resource schemas are written here beside the code whose output they describe; the TMF678
//! schemas are the official ones (`shared/reference/`), converted from Swagger 2.0. The tests
//! validate every response of every HTTP test against this document (`tests/support/openapi.rs`)
//! and `make test` runs schemathesis against it.
//!
//! Why written and not derived: request bodies are parsed by hand (their rules are richer than a
//! type's shape), so a derive could describe only the responses; one place for both, checked by
//! the tests against what the handlers do, keeps them honest.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use crate::domain::bill_run::{MAX_INVENTORY_IDS, MAX_PERIODS};
use crate::domain::customer_bill::{BILL_SHAPE, ON_DEMAND_SHAPE, RATE_SHAPE};
use crate::domain::list::{list_pattern, names, ListSpec, Values, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::domain::money::{Bounds, MONEY, QUANTITY};
use crate::http::ErrorFormat;
use crate::routes::{Auth, Route, ROUTES};

/// The official TMF678 v4.0.0 document (Swagger 2.0), with the one extension
/// docs/customer-bills.md documents (`inProgress` in `stateValue`: a bill being built).
const TMF678_REFERENCE: &str = include_str!("../reference/TMF678-CustomerBill-v4.0.0.swagger.json");

/// The document, built once.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

fn build() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let op = operation(route).unwrap_or_else(|| panic!("no OpenAPI operation for {}", route.function));
        let item = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        item[route.method.to_lowercase()] = op;
    }
    let mut schemas = tmf_schemas();
    for (name, schema) in own_schemas().into_iter().chain(api_key_schemas()) {
        schemas.insert(name.to_owned(), schema);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "billflow",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Bill runs, adhoc bill runs, bills, tenant-scoped billing runs and TMF678 customer bills. \
                Problem-family errors are RFC 9457 problem+json; TMF678 errors are TMF Error objects.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        // Relative: the server that serves this document (`make run` on any PORT, or a stage's URL).
        "servers": [{"url": "/", "description": "the server this document is served by"}],
        "tags": [
            {"name": "bill runs", "description": "Runs that close, report, invoice, distribute and finalise a billing period"},
            {"name": "adhoc bill runs", "description": "One-off runs over chosen product inventory"},
            {"name": "bills", "description": "Bills priced from line items or a percentage (x-api-key)"},
            {"name": "billing runs", "description": "A tenant's scheduled runs, replaced whole by PUT with sys_version"},
            {"name": "customer bills (TMF678)", "description": "TMF678 Customer Bill Management v4: rated charges, on-demand bills, customer bills"},
            {"name": API_KEYS_TAG, "description": "A tenant's API keys, managed by its administrators (billing:admin)"},
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "HS256, or RS256/ES256 from the JWKS; scopes billing:read, billing:write, billing:admin"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key",
                    "description": "A key made by `make api-key`"},
            },
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Operations

/// What one operation takes and answers, besides what its route says.
struct Op {
    summary: &'static str,
    tag: &'static str,
    query: Vec<Value>,
    body: Option<Value>,
    /// Success statuses with their response objects.
    ok: Vec<(u16, Value)>,
    /// Error statuses beyond those every operation has (400, 401, 403, 429, 500, 503).
    errors: &'static [u16],
    idempotent_create: bool,
    if_match: bool,
    /// Operations the created resource's id leads to (OpenAPI links of the 201).
    links: &'static [&'static str],
}

impl Op {
    fn new(summary: &'static str, tag: &'static str) -> Self {
        Self {
            summary,
            tag,
            query: Vec::new(),
            body: None,
            ok: Vec::new(),
            errors: &[],
            idempotent_create: false,
            if_match: false,
            links: &[],
        }
    }
    fn query(mut self, params: Vec<Value>) -> Self {
        self.query = params;
        self
    }
    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
    fn ok(mut self, status: u16, response: Value) -> Self {
        self.ok.push((status, response));
        self
    }
    fn errors(mut self, errors: &'static [u16]) -> Self {
        self.errors = errors;
        self
    }
    fn idempotent_create(mut self) -> Self {
        self.idempotent_create = true;
        self
    }
    fn if_match(mut self) -> Self {
        self.if_match = true;
        self
    }
    fn links(mut self, functions: &'static [&'static str]) -> Self {
        self.links = functions;
        self
    }

    /// A change of one resource: its body, 200 with the resource, and the errors of a change.
    fn change(summary: &'static str, tag: &'static str, body: Value, resource_schema: &str) -> Self {
        Self::new(summary, tag).body(body).ok(200, resource(resource_schema)).errors(CHANGE).if_match()
    }

    /// A create: its body, 201 with the resource (and links to what its id leads to), 200 for an
    /// `Idempotency-Key` replayed, and the errors of a create.
    fn create(
        summary: &'static str,
        tag: &'static str,
        body: &str,
        resource: &str,
        links: &'static [&'static str],
    ) -> Self {
        Self::new(summary, tag)
            .links(links)
            .body(json_body(body))
            .ok(201, created(resource))
            .ok(200, replayed(resource))
            .errors(CREATE)
            .idempotent_create()
    }
}

const READ: &[u16] = &[404];
const CREATE: &[u16] = &[409, 413, 415, 422];
const CHANGE: &[u16] = &[404, 409, 412, 413, 415];

/// The creates of every family.
struct Create {
    function: &'static str,
    summary: &'static str,
    tag: &'static str,
    body: &'static str,
    resource: &'static str,
    /// The operations the new id leads to.
    links: &'static [&'static str],
}

const CREATES: &[Create] = &[
    Create {
        function: "create-bill-run",
        summary: "Create a bill run",
        tag: "bill runs",
        body: "BillRunCreate",
        resource: "BillRun",
        links: &["get-bill-run", "update-bill-run", "adjust-bill-run-schedule"],
    },
    Create {
        function: "create-adhoc-bill-run",
        summary: "Create an adhoc bill run",
        tag: "adhoc bill runs",
        body: "AdhocBillRunCreate",
        resource: "AdhocBillRun",
        links: &["get-adhoc-bill-run", "update-adhoc-bill-run"],
    },
    Create {
        function: "create-bill",
        summary: "Create a bill (LINE_ITEMS or PERCENTAGE)",
        tag: "bills",
        body: "BillCreate",
        resource: "Bill",
        links: &["get-bill", "update-bill", "delete-bill"],
    },
    Create {
        function: "create-billing-run",
        summary: "Create a billing run in a tenant",
        tag: "billing runs",
        body: "BillingRunCreate",
        resource: "BillingRun",
        links: &["get-billing-run", "update-billing-run", "delete-billing-run"],
    },
    Create {
        function: "create-customer-bill-on-demand",
        summary: "Request a customer bill of an account's unbilled rates",
        tag: TMF_TAG,
        body: "CustomerBillOnDemand_Create",
        resource: "CustomerBillOnDemand",
        links: &["get-customer-bill-on-demand"],
    },
    Create {
        function: "create-applied-customer-billing-rate",
        summary: "Record a rated charge (not in TMF678 v4, which leaves rating out)",
        tag: TMF_TAG,
        body: "AppliedCustomerBillingRate_Create",
        resource: "AppliedCustomerBillingRate",
        links: &["get-applied-customer-billing-rate"],
    },
];

/// The changes of one resource: function, summary, tag, body, resource schema.
fn change_of(function: &str) -> Option<(&'static str, &'static str, Value, &'static str)> {
    Some(match function {
        "update-bill-run" => (
            "Change a bill run with a JSON Patch (close it, request a stage)",
            "bill runs",
            json_patch_body(),
            "BillRun",
        ),
        "update-adhoc-bill-run" => {
            ("Change an adhoc bill run with a JSON Patch", "adhoc bill runs", json_patch_body(), "AdhocBillRun")
        }
        "update-bill" => {
            ("Change a bill (a partial object, under the eight rules)", "bills", json_body("BillUpdate"), "Bill")
        }
        "update-billing-run" => (
            "Replace a billing run (PUT, with its sys_version)",
            "billing runs",
            json_body("BillingRunPut"),
            "BillingRun",
        ),
        _ => return None,
    })
}

/// The operation of a route, or `None` for a function this module does not know.
fn operation(route: &Route) -> Option<Value> {
    if let Some(c) = CREATES.iter().find(|c| c.function == route.function) {
        return Some(render(route, Op::create(c.summary, c.tag, c.body, c.resource, c.links)));
    }
    if let Some((summary, tag, body, resource)) = change_of(route.function) {
        return Some(render(route, Op::change(summary, tag, body, resource)));
    }
    let op = elevate_operation(route)
        .or_else(|| customer_bill_operation(route.function))
        .or_else(|| api_key_operation(route.function))?;
    Some(render(route, op))
}

/// The reads and deletes of bill runs, adhoc bill runs, bills and billing runs.
fn elevate_operation(route: &Route) -> Option<Op> {
    Some(match route.function {
        "list-bill-runs" => Op::new("List bill runs", "bill runs")
            .query(list_params(&crate::domain::bill_run::RUN_LIST))
            .ok(200, list_of("BillRunFields")),
        "get-bill-run" => Op::new("Get a bill run", "bill runs").ok(200, resource("BillRun")).errors(READ),
        "adjust-bill-run-schedule" => Op::new("Move an OPEN bill run's dates by whole periods", "bill runs")
            .query(vec![periods_param()])
            .ok(200, resource("BillRun"))
            .errors(&[404, 409]),
        "list-adhoc-bill-runs" => Op::new("List adhoc bill runs", "adhoc bill runs")
            .query(list_params(&crate::domain::bill_run::ADHOC_LIST))
            .ok(200, list_of("AdhocBillRunFields")),
        "get-adhoc-bill-run" => {
            Op::new("Get an adhoc bill run", "adhoc bill runs").ok(200, resource("AdhocBillRun")).errors(READ)
        }
        "list-bills" => {
            Op::new("List bills", "bills").query(list_params(&crate::domain::bill::LIST)).ok(200, list_of("BillFields"))
        }
        "get-bill" => Op::new("Get a bill", "bills").ok(200, resource("Bill")).errors(READ),
        "delete-bill" => Op::new("Delete a DRAFT bill, or archive any other", "bills")
            .ok(204, json!({"description": "The DRAFT bill is deleted", "headers": request_id_header()}))
            .ok(200, resource("Bill"))
            .errors(&[404, 409, 412])
            .if_match(),
        "list-billing-runs" => Op::new(
            if route.path.contains("recurringBillingRun") {
                "List a recurring billing run's runs"
            } else {
                "List a tenant's billing runs"
            },
            "billing runs",
        )
        .query(billing_run_list_params())
        .ok(
            200,
            json!({"description": "A page of runs, newest first", "headers": request_id_header(),
            "content": {"application/json": {"schema": schema_ref("BillingRunPage")}}}),
        ),
        "get-billing-run" => Op::new("Get a billing run", "billing runs")
            .query(vec![fields_param(crate::domain::billing_run::FIELDS)])
            .ok(200, resource("BillingRunFields"))
            .errors(READ),
        "delete-billing-run" => Op::new("Delete a draft or cancelled billing run", "billing runs")
            .ok(204, json!({"description": "Deleted", "headers": request_id_header()}))
            .errors(&[404, 409, 412])
            .if_match(),
        _ => return None,
    })
}

/// The TMF678 reads and the customer bill's PATCH.
fn customer_bill_operation(function: &str) -> Option<Op> {
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

const API_KEYS_TAG: &str = "API keys";

/// The API-key operations: a bearer token with `billing:admin` (403 otherwise, and for an API key).
fn api_key_operation(function: &str) -> Option<Op> {
    Some(match function {
        "create-api-key" => Op::new("Issue an API key of the request's tenant (shown once)", API_KEYS_TAG)
            .body(json_body("ApiKeyCreate"))
            .ok(
                201,
                json!({"description": "Created: `apiKey` is shown this once and never again",
                    "headers": {"x-request-id": {"schema": {"type": "string"}}, "Location": {"schema": {"type": "string"}},
                        "Cache-Control": {"schema": {"const": "no-store"}}},
                    "content": {"application/json": {"schema": schema_ref("ApiKeyCreated")}}}),
            )
            .errors(&[413, 415]),
        "list-api-keys" => Op::new("List the tenant's API keys (never a key or its hash)", API_KEYS_TAG)
            .query(page_params())
            .ok(
                200,
                json!({"description": "A page of keys, in key id order", "headers": request_id_header(),
                    "content": {"application/json": {"schema": schema_ref("ApiKeyPage")}}}),
            ),
        "revoke-api-key" => Op::new("Revoke one of the tenant's API keys (again: 204)", API_KEYS_TAG)
            .ok(204, json!({"description": "Revoked: the key fails from the next request, plus the caches' TTL (60 s at most)",
                "headers": request_id_header()}))
            .errors(&[404, 409]),
        _ => return None,
    })
}

fn api_key_schemas() -> Vec<(&'static str, Value)> {
    use crate::api_keys::{MAX_DESCRIPTION, SCOPES};
    let scopes = || json!({"type": "array", "minItems": 1, "items": enumeration(SCOPES)});
    let view = [
        ("keyId", json!({"type": "string", "pattern": "^key_[0-9a-f]{20}$"})),
        ("description", nullable_string()),
        ("userId", integer(0)),
        ("tenants", json!({"type": "array", "items": string()})),
        ("scopes", scopes()),
        ("created", date_time()),
        ("expires", nullable(date_time())),
        ("revoked", nullable(date_time())),
        ("state", enumeration(&["active", "expired", "revoked"])),
    ];
    let mut created = view.to_vec();
    created.push(("apiKey", json!({"type": "string", "pattern": "^bfk_[0-9a-f]{64}$"})));
    let create = open(
        &[
            (
                "userId",
                json!({"type": "integer", "minimum": 1, "maximum": u64::MAX,
                "description": "The user the key stands for; the caller's by default"}),
            ),
            (
                "scopes",
                json!({"type": "array", "minItems": 1, "maxItems": 100, "items": enumeration(SCOPES),
                "description": "Only scopes the caller has (403 otherwise)"}),
            ),
            ("description", json!({"type": "string", "minLength": 1, "maxLength": MAX_DESCRIPTION})),
            (
                "expiresIn",
                json!({"type": "string",
                "pattern": crate::api_keys::DURATION_PATTERN,
                "description": "`<n>s`, `<n>m`, `<n>h` or `<n>d`, more than 0 and at most 3650d"}),
            ),
        ],
        &["scopes"],
    );
    let page = json!({"type": "object", "additionalProperties": false, "required": ["Count", "Items"],
    "properties": {
        "Count": integer(0),
        "Items": {"type": "array", "items": schema_ref("ApiKey")},
        "LastEvaluatedKey": {"type": "string", "description": "Pass back as `exclusiveStartKey` for the next page"},
    }});
    vec![("ApiKey", exact(&view)), ("ApiKeyCreated", exact(&created)), ("ApiKeyCreate", create), ("ApiKeyPage", page)]
}

const TMF_TAG: &str = "customer bills (TMF678)";

fn billing_run_list_params() -> Vec<Value> {
    let mut params = page_params();
    params.insert(1, json!({"name": "status", "in": "query", "description": "`status` or `in:a,b`: the runs of the page read with these statuses",
            "schema": {"type": "string", "pattern": Values::Names(names::<crate::domain::billing_run::Status>).pattern()}}));
    params
}

/// `limit` and `exclusiveStartKey` of a `{Count, Items, LastEvaluatedKey}` list.
fn page_params() -> Vec<Value> {
    vec![
        json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}),
        json!({"name": "exclusiveStartKey", "in": "query", "description": "A page's `LastEvaluatedKey`, as it was given",
            "schema": {"type": "string"}}),
    ]
}

fn periods_param() -> Value {
    json!({
        "name": "periods", "in": "query", "required": true,
        "description": "Periods to move by (negative moves back): whole months when the run covers whole months, \
            else its length in days",
        "schema": {"type": "integer", "minimum": -MAX_PERIODS, "maximum": MAX_PERIODS, "not": {"const": 0}},
    })
}

fn tmf_list(summary: &'static str, schema: &'static str, shape: TmfShape) -> Op {
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

fn tmf_get(summary: &'static str, schema: &'static str, shape: TmfShape) -> Op {
    Op::new(summary, TMF_TAG).query(vec![fields_param(&attributes(shape))]).ok(200, resource(schema)).errors(READ)
}

type TmfShape = &'static [(&'static str, crate::domain::tmf_query::Shape)];

/// The top-level attributes of a TMF resource (what `fields` may name).
fn attributes(shape: TmfShape) -> Vec<&'static str> {
    shape.iter().map(|(name, _)| *name).collect()
}

fn fields_param(fields: &[&str]) -> Value {
    json!({"name": "fields", "in": "query", "description": format!("Comma-separated attributes to return (the id always comes), of: {}", fields.join(", ")),
        "schema": {"type": "string", "pattern": list_pattern(fields, false)}})
}

fn list_params(spec: &ListSpec) -> Vec<Value> {
    let mut params = vec![
        json!({"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}}),
        json!({"name": "pageSize", "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE}}),
        json!({"name": "sort", "in": "query",
            "description": format!("Comma-separated `field` or `field:desc`, of: {}. An order other than id's is served \
                when the narrowest filter given holds at most 1,000 items, else 400", spec.sortable.join(", ")),
            "schema": {"type": "string", "pattern": list_pattern(spec.sortable, true)}}),
        fields_param(spec.fields),
    ];
    for filter in spec.filters {
        params.push(json!({"name": filter.name, "in": "query",
            "description": "A value, or `in:v1,v2` for any of several (served from this filter's index with one value)",
            "schema": {"type": "string", "pattern": filter.values.pattern()}}));
    }
    if let Some(flag) = spec.archived {
        params.push(json!({"name": "includeArchived", "in": "query",
            "description": format!("Include items whose `{flag}` is true"), "schema": {"type": "boolean", "default": false}}));
    }
    params
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn request_id_header() -> Value {
    json!({"x-request-id": {"description": "The request's id, also in the log", "schema": {"type": "string"}}})
}

fn json_body(schema: &str) -> Value {
    let mut media = json!({"schema": schema_ref(schema)});
    if let Some(example) = example(schema) {
        media["example"] = example;
    }
    json!({"required": true, "content": {"application/json": media}})
}

/// A valid request body of each create, as the examples of docs/ send them.
fn example(schema: &str) -> Option<Value> {
    Some(match schema {
        "BillRunCreate" => json!({"name": "Jan 2024", "billingCycleId": 1, "periodStartDate": "2024-01-01",
            "periodEndDate": "2024-01-31", "invoiceDate": "2024-02-01"}),
        "AdhocBillRunCreate" => json!({"name": "Rentals March", "nickname": "one-off rentals",
            "invoiceDate": "2024-03-31", "rentalProductInventoryIds": [11, 12]}),
        "BillCreate" => json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-30T00:00:00Z",
            "account": {"id": 42, "name": "Acme"},
            "lineItems": [{"catalogItemId": 1, "quantity": 3, "unitPrice": 19.99}]}),
        "BillUpdate" => json!({"description": "March services"}),
        "ApiKeyCreate" => json!({"scopes": ["billing:read", "billing:write"], "description": "CI", "expiresIn": "90d"}),
        "BillingRunCreate" => json!({"business_unit_id": "bu-1", "name": "November statements",
            "recurring_billing_run_id": "monthly", "send_statements": true,
            "expiring_credit_card_reminder_options": {}, "installment_schedule_reminder_options": {},
            "statement_options": {"customer_type": "both", "business_unit_ids": ["bu-1"]},
            "installment_schedule_cancellation_options": {"date_range_start": "2026-11-01", "date_range_end": "2026-11-30"},
            "installment_schedule_options": {"date_range_start": "2026-11-01", "date_range_end": "2026-11-30"}}),
        "CustomerBillOnDemand_Create" => json!({"billingAccount": {"id": "ACC-1"}, "name": "November",
            "relatedParty": {"id": "P-1", "role": "payer"}}),
        "AppliedCustomerBillingRate_Create" => json!({"billingAccount": {"id": "ACC-1", "name": "Acme"},
            "name": "Monthly plan", "type": "recurringCharge", "taxExcludedAmount": {"unit": "EUR", "value": 0.1},
            "appliedTax": [{"taxCategory": "VAT", "taxRate": 0.2, "taxAmount": {"unit": "EUR", "value": 0.02}}]}),
        _ => return None,
    })
}

fn json_patch_body() -> Value {
    json!({"required": true, "content": {"application/json-patch+json": {"schema": schema_ref("JsonPatch"),
        "example": [{"op": "replace", "path": "/billRunStatus", "value": "CLOSED"},
                    {"op": "replace", "path": "/summaryStatus", "value": "REPORTING"}]}}})
}

fn resource(schema: &str) -> Value {
    json!({
        "description": "The resource",
        "headers": {"x-request-id": {"schema": {"type": "string"}}, "ETag": {"schema": {"type": "string"}}},
        "content": {"application/json": {"schema": schema_ref(schema)}},
    })
}

fn created(schema: &str) -> Value {
    json!({
        "description": "Created",
        "headers": {"x-request-id": {"schema": {"type": "string"}}, "ETag": {"schema": {"type": "string"}},
            "Location": {"schema": {"type": "string"}}},
        "content": {"application/json": {"schema": schema_ref(schema)}},
    })
}

fn replayed(schema: &str) -> Value {
    json!({
        "description": "The resource an earlier request with the same Idempotency-Key and body created",
        "headers": {"x-request-id": {"schema": {"type": "string"}}},
        "content": {"application/json": {"schema": schema_ref(schema)}},
    })
}

fn list_of(schema: &str) -> Value {
    json!({
        "description": "The page",
        "headers": {"x-request-id": {"schema": {"type": "string"}}, "X-Total-Count": {"schema": {"type": "integer"}}},
        "content": {"application/json": {"schema": {"type": "array", "items": schema_ref(schema)}}},
    })
}

fn error_response(status: u16, format: ErrorFormat) -> Value {
    let reason =
        lambda_http::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
    let (media, schema) = match format {
        ErrorFormat::Problem => ("application/problem+json", schema_ref("Problem")),
        ErrorFormat::Tmf => ("application/json", schema_ref("Error")),
    };
    let mut headers = request_id_header();
    match status {
        401 => headers["WWW-Authenticate"] = json!({"schema": {"type": "string"}}),
        429 | 503 => headers["Retry-After"] = json!({"schema": {"type": "string"}}),
        _ => {}
    }
    json!({"description": reason, "headers": headers, "content": {media: {"schema": schema}}})
}

/// Statuses every operation may answer: a bad request, no or bad credentials, a missing scope (or
/// another tenant), the store throttling or unavailable, and a bug.
const EVERY: &[u16] = &[400, 401, 403, 429, 500, 503];

fn render(route: &Route, op: Op) -> Value {
    let mut parameters: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": path_schema(name)}))
        .collect();
    parameters.extend(op.query);
    if !route.path.contains("{tenantId}") {
        parameters.push(json!({"name": "X-Tenant-Id", "in": "header",
            "description": "The tenant the request acts in: required when the credential belongs to several tenants \
                (400 without it), one of the credential's own (403 otherwise); a credential of one tenant acts in it",
            "schema": path_schema("tenantId")}));
    }
    if op.idempotent_create {
        parameters.push(json!({"name": "Idempotency-Key", "in": "header",
            "description": "The same key with the same body answers the first response again (200); with another body, 422",
            "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"}}));
    }
    if op.if_match {
        parameters.push(json!({"name": "If-Match", "in": "header",
            "description": "The ETag read; another is 412", "schema": {"type": "string"}}));
    }
    let mut responses = Map::new();
    for (status, mut response) in op.ok {
        if status == 201 && !op.links.is_empty() {
            response["links"] = links(op.links);
        }
        responses.insert(status.to_string(), response);
    }
    let mut errors: Vec<u16> = EVERY.iter().chain(op.errors).copied().collect();
    errors.sort_unstable();
    errors.dedup();
    for status in errors {
        responses.insert(status.to_string(), error_response(status, route.errors));
    }
    let security = match route.auth {
        Auth::Bearer => json!([{"bearer": []}]),
        Auth::ApiKey => json!([{"apiKey": []}]),
    };
    let mut operation = json!({
        "operationId": operation_id(route),
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": parameters,
        "responses": responses,
        "security": security,
    });
    if let Some(body) = op.body {
        operation["requestBody"] = body;
    }
    operation
}

/// Links from a created resource to the operations its id leads to: the id from the response,
/// the tenant from the request's path.
fn links(functions: &[&str]) -> Value {
    let mut links = Map::new();
    for function in functions {
        let Some(target) = ROUTES.iter().find(|r| r.function == *function) else { continue };
        let parameters: Map<String, Value> = target
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                let source = if name == "tenantId" { "$request.path.tenantId" } else { "$response.body#/id" };
                (name.to_owned(), json!(source))
            })
            .collect();
        links.insert((*function).to_owned(), json!({"operationId": operation_id(target), "parameters": parameters}));
    }
    Value::Object(links)
}

/// What a path parameter takes: run and bill ids are positive 64-bit integers, billing-run and
/// TMF678 ids UUIDs (another id is 400, or 404 for TMF678), tenants and recurring-run ids text.
fn path_schema(name: &str) -> Value {
    match name {
        "bill_run_id" | "adhoc_bill_run_id" | "billId" => json!({"type": "integer", "minimum": 1, "maximum": u64::MAX}),
        "id" => json!({"type": "string", "format": "uuid"}),
        "tenantId" => json!({"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", "example": "dev"}),
        "key_id" => json!({"type": "string", "minLength": 1, "maxLength": 100, "example": "key_0123456789abcdef0123"}),
        _ => json!({"type": "string", "minLength": 1, "maxLength": 100}),
    }
}

/// The function's name, or for the second route of a function, its name with the route's last
/// literal segment (`list-billing-runs-recurringBillingRun`).
fn operation_id(route: &Route) -> String {
    let first = ROUTES.iter().find(|r| r.function == route.function);
    if first == Some(route) {
        return route.function.to_owned();
    }
    let literal = route.path.split('/').rfind(|s| !s.starts_with('{') && !s.is_empty()).unwrap_or_default();
    format!("{}-{literal}", route.function)
}

// ---------------------------------------------------------------------------------------------
// Schemas

/// The TMF678 definitions, as OpenAPI 3.1 component schemas.
fn tmf_schemas() -> Map<String, Value> {
    let reference: Value = serde_json::from_str(TMF678_REFERENCE).expect("the TMF678 reference is JSON");
    let text = reference["definitions"].to_string().replace("#/definitions/", "#/components/schemas/");
    let Ok(Value::Object(mut definitions)) = serde_json::from_str::<Value>(&text) else {
        unreachable!("the definitions are an object")
    };
    // Our own: how rated charges enter (TMF678 v4 leaves rating out).
    let mut create = definitions["AppliedCustomerBillingRate"].clone();
    if let Some(properties) = create["properties"].as_object_mut() {
        for owned in crate::domain::customer_bill::RATE_SERVER_OWNED {
            properties.remove(*owned);
        }
    }
    create["description"] = json!("A rated charge to record: AppliedCustomerBillingRate without what the server owns");
    create["required"] = json!(["billingAccount", "taxExcludedAmount"]);
    // Money as a charge must state it: a unit and a value.
    create["properties"]["taxExcludedAmount"] = json!({"allOf": [schema_ref("Money")], "required": ["unit", "value"]});
    create["additionalProperties"] = json!(false);
    create["properties"]["@type"] = json!({"const": crate::domain::customer_bill::RATE_TYPE});
    definitions.insert("AppliedCustomerBillingRate_Create".into(), create);
    // An on-demand request names its account; what the server owns stays out.
    let on_demand = &mut definitions["CustomerBillOnDemand_Create"];
    if let Some(properties) = on_demand["properties"].as_object_mut() {
        for owned in crate::domain::customer_bill::ON_DEMAND_SERVER_OWNED {
            properties.remove(*owned);
        }
    }
    on_demand["required"] = json!(["billingAccount"]);
    on_demand["additionalProperties"] = json!(false);
    on_demand["properties"]["@type"] = json!({"const": crate::domain::customer_bill::ON_DEMAND_TYPE});
    // The parts of a request billflow reads member by member: what TMF678 lists, and nothing
    // else (TMF678 leaves them open; an unknown member of one is 400 here).
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
    // Money as billflow reads it: an ISO 4217 code and a value within the money bounds.
    definitions["Money"]["properties"]["unit"]["pattern"] = json!("^[A-Z]{3}$");
    definitions["Money"]["properties"]["value"] = decimal(MONEY);
    definitions["AppliedBillingTaxRate"]["properties"]["taxRate"] = decimal(QUANTITY);
    // A reference's id, as billflow keeps it: 1 to 256 characters.
    for reference in ["BillingAccountRef", "ProductRef", "RelatedPartyRef"] {
        definitions[reference]["properties"]["id"] =
            json!({"type": "string", "minLength": 1, "maxLength": crate::domain::customer_bill::MAX_ID});
    }
    // A tax billflow adds to a rate is an amount.
    definitions["AppliedBillingTaxRate"]["required"] = json!(["taxAmount"]);
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

/// What a PATCH of a customer bill may say: its state, on hold or back in progress (TMF678's
/// CustomerBill_Update lists every attribute, but the rest are the server's), as a merge patch or
/// a JSON Patch of `/state`.
fn customer_bill_patches() -> [(String, Value); 2] {
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

fn json_patch_schema() -> Value {
    // RFC 6901 JSON Pointers; RFC 6902: members an operation does not define are ignored (`from`
    // of an add), so the schema allows them too.
    let pointer = json!({"type": "string", "pattern": "^(/([^/~]|~[01])*)*$"});
    let op = |ops: &[&str], required: &[&str]| {
        let mut properties = json!({"op": {"enum": ops}, "path": pointer, "from": {}, "value": {}});
        if required.contains(&"from") {
            properties["from"] = pointer.clone();
        }
        json!({"type": "object", "required": required, "properties": properties})
    };
    json!({
        "type": "array", "maxItems": crate::domain::patch::MAX_OPERATIONS,
        "description": "RFC 6902 JSON Patch: at most 100 operations, none growing the document past 350 KB",
        "items": {"oneOf": [
            op(&["add", "replace", "test"], &["op", "path", "value"]),
            op(&["remove"], &["op", "path"]),
            op(&["move", "copy"], &["op", "path", "from"]),
        ]},
    })
}

fn nullable(schema: Value) -> Value {
    json!({"anyOf": [schema, {"type": "null"}]})
}

fn string() -> Value {
    json!({"type": "string"})
}

fn nullable_string() -> Value {
    json!({"type": ["string", "null"]})
}

fn integer(minimum: i64) -> Value {
    json!({"type": "integer", "minimum": minimum})
}

/// A decimal within `bounds` (docs/api.md): the integer digits as exclusive limits, the fraction
/// digits in words. Not as `multipleOf`: validators divide in binary floating point, where 0.07
/// is no multiple of 0.000001, so every answer with cents would fail the document.
fn decimal(bounds: Bounds) -> Value {
    let limit = 10_i64.pow(bounds.integer_digits);
    json!({"type": "number", "exclusiveMinimum": -limit, "exclusiveMaximum": limit,
        "description": format!("at most {} fraction digits", bounds.fraction_digits)})
}

/// [`decimal`] above a floor: `exclusive` for "greater than", else "at least".
fn decimal_from(bounds: Bounds, floor: u32, exclusive: bool) -> Value {
    let mut schema = decimal(bounds);
    if let Some(object) = schema.as_object_mut() {
        object.remove("exclusiveMinimum");
        object.insert((if exclusive { "exclusiveMinimum" } else { "minimum" }).into(), json!(floor));
    }
    schema
}

/// 0 to 100, with a money value's fraction digits.
fn percentage() -> Value {
    let mut schema = decimal_from(MONEY, 0, false);
    schema["maximum"] = json!(100);
    schema.as_object_mut().map(|o| o.remove("exclusiveMaximum"));
    schema
}

fn date() -> Value {
    json!({"type": "string", "format": "date"})
}

fn date_time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn enumeration(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

/// An object of exactly these properties, all required.
fn exact(properties: &[(&str, Value)]) -> Value {
    let required: Vec<&str> = properties.iter().map(|(name, _)| *name).collect();
    open(properties, &required)
}

/// An object that may carry these properties, `required` ones always.
fn open(properties: &[(&str, Value)], required: &[&str]) -> Value {
    json!({"type": "object", "additionalProperties": false, "required": required,
        "properties": properties.iter().map(|(n, s)| ((*n).to_owned(), s.clone())).collect::<Map<_, _>>()})
}

/// The same object with only `required` required.
fn requiring(schema: &Value, required: &[&str]) -> Value {
    let mut schema = schema.clone();
    schema["required"] = json!(required);
    schema
}

/// The same object with only `id` required: what a `fields` projection returns.
fn projection(schema: &Value) -> Value {
    let mut schema = schema.clone();
    schema["required"] = json!(["id"]);
    schema
}

fn own_schemas() -> Vec<(&'static str, Value)> {
    let problem = json!({
        "type": "object", "additionalProperties": false, "required": ["type", "title", "status", "detail"],
        "description": "RFC 9457 problem details",
        "properties": {
            "type": {"type": "string"}, "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599}, "detail": {"type": "string"},
            "errors": {"type": "array", "items": exact(&[("pointer", string()), ("detail", string())])},
        },
    });
    let mut schemas = vec![("Problem", problem)];
    schemas.extend(run_schemas());
    schemas.extend(bill_schemas());
    schemas.extend(billing_run_schemas());
    schemas
}

/// Bill runs: the resource, its projection and its create.
fn run_schemas() -> Vec<(&'static str, Value)> {
    use crate::domain::bill_run::{BillRunStatus, SummaryStatus};
    let run_status = enumeration(&names::<BillRunStatus>());
    let summary_status = enumeration(&names::<SummaryStatus>());
    let bill_run = exact(&[
        ("id", integer(1)),
        ("name", string()),
        ("sortableName", string()),
        ("billingCycleId", integer(1)),
        ("created", date()),
        ("periodStartDate", date()),
        ("periodEndDate", date()),
        ("invoiceDate", date()),
        ("includeUsageUntilDate", nullable(date())),
        ("billRunStatus", run_status.clone()),
        ("summaryStatus", summary_status.clone()),
        ("summaryStatusPercentage", json!({"type": "integer", "minimum": 0, "maximum": 100})),
        ("billingUserAdminId", json!({"type": ["integer", "null"]})),
        ("parallel", json!({"type": "boolean"})),
        ("paused", json!({"type": "boolean"})),
        ("revenueInMajorCurrency", json!({"type": "integer"})),
        ("usageSuspenseCount", integer(0)),
        ("rentalSuspenseCount", integer(0)),
        ("maxInvoiceValue", json!({"type": ["number", "null"]})),
        ("maxInvoiceCustomerId", json!({"type": ["integer", "null"]})),
    ]);
    let run_name = json!({"type": "string", "pattern": "^[A-Za-z0-9 _./-]{1,22}$"});
    let bill_run_create = open(
        &[
            ("name", run_name.clone()),
            ("billingCycleId", integer(1)),
            ("periodStartDate", date()),
            ("periodEndDate", date()),
            ("invoiceDate", date()),
            ("includeUsageUntilDate", nullable(date())),
            ("parallel", json!({"type": "boolean"})),
            ("paused", json!({"type": "boolean"})),
        ],
        &["name", "billingCycleId", "periodStartDate", "periodEndDate", "invoiceDate"],
    );
    let mut schemas =
        vec![("BillRunFields", projection(&bill_run)), ("BillRun", bill_run), ("BillRunCreate", bill_run_create)];
    schemas.extend(adhoc_run_schemas(run_status, summary_status, run_name));
    schemas
}

/// Adhoc bill runs: the resource, its projection and its create.
fn adhoc_run_schemas(run_status: Value, summary_status: Value, run_name: Value) -> Vec<(&'static str, Value)> {
    let inventory_ids = json!({"type": "array", "maxItems": MAX_INVENTORY_IDS, "items": integer(1)});
    let adhoc_run = exact(&[
        ("id", integer(1)),
        ("name", string()),
        ("nickname", nullable_string()),
        ("created", date()),
        ("invoiceDate", date()),
        ("billRunStatus", run_status),
        ("summaryStatus", summary_status),
        ("summaryStatusPercentage", json!({"type": "integer", "minimum": 0, "maximum": 100})),
        ("billingUserAdminId", json!({"type": ["integer", "null"]})),
        ("revenueInMajorCurrency", json!({"type": "integer"})),
        ("adhocProductInventoryIds", inventory_ids.clone()),
        ("rentalProductInventoryIds", inventory_ids.clone()),
    ]);
    let adhoc_create = open(
        &[
            ("name", run_name),
            ("nickname", nullable_string()),
            ("invoiceDate", date()),
            ("adhocProductInventoryIds", inventory_ids.clone()),
            ("rentalProductInventoryIds", inventory_ids),
        ],
        &["name", "invoiceDate"],
    );

    vec![
        ("AdhocBillRunFields", projection(&adhoc_run)),
        ("AdhocBillRun", adhoc_run),
        ("AdhocBillRunCreate", adhoc_create),
    ]
}

/// Bills: the resource with its account and lines, its projection, its create and its update.
fn bill_schemas() -> Vec<(&'static str, Value)> {
    use crate::domain::bill::{BillStatus, BillType, CalculationMethod};
    use crate::domain::bill_run::RunKind;
    let account = exact(&[("id", integer(1)), ("name", string())]);
    let line_item = exact(&[
        ("id", integer(1)),
        ("catalogItemId", integer(1)),
        ("description", nullable_string()),
        ("quantity", decimal_from(QUANTITY, 0, true)),
        ("unitPrice", decimal(MONEY)),
        ("unitCost", nullable(decimal_from(MONEY, 0, true))),
        ("amount", decimal(MONEY)),
    ]);
    let bill = exact(&[
        ("id", integer(1)),
        ("billNumber", integer(1)),
        ("status", enumeration(&names::<BillStatus>())),
        ("amount", decimal(MONEY)),
        ("amountPaid", decimal(MONEY)),
        ("calculationMethod", enumeration(&names::<CalculationMethod>())),
        ("createdAt", date_time()),
        ("updatedAt", date_time()),
        ("description", nullable_string()),
        ("type", nullable(enumeration(&names::<BillType>()))),
        ("basedOnId", json!({"type": ["integer", "null"]})),
        ("basedOnUid", json!({"type": ["integer", "null"]})),
        ("dueDate", date_time()),
        ("issueDate", nullable(date_time())),
        ("isArchived", json!({"type": "boolean"})),
        ("percentage", json!({"type": ["number", "null"]})),
        ("baseAmount", json!({"type": ["number", "null"]})),
        ("account", nullable(schema_ref("Account"))),
        ("record", nullable(exact(&[("id", integer(1)), ("title", string())]))),
        ("billRunId", json!({"type": ["integer", "null"]})),
        ("billRunKind", nullable(enumeration(&names::<RunKind>()))),
        ("lineItems", json!({"type": "array", "items": schema_ref("LineItem")})),
    ]);
    // A line as a request sends it: `id` only for a kept line, `amount` ignored (computed).
    let (bill_create, bill_update) = bill_requests(&line_item);
    vec![
        ("Account", account),
        ("LineItem", line_item),
        ("BillFields", projection(&bill)),
        ("Bill", bill),
        ("BillCreate", bill_create),
        ("BillUpdate", bill_update),
    ]
}

/// A bill's create and update, whose lines are `line_item` as a request sends it.
fn bill_requests(line_item: &Value) -> (Value, Value) {
    use crate::domain::bill::{BillStatus, BillType, CalculationMethod};
    use crate::domain::bill_run::RunKind;
    let mut line_input = line_item.clone();
    line_input["properties"]["id"] = nullable(integer(1));
    line_input["required"] = json!(["catalogItemId", "quantity", "unitPrice"]);
    let lines = json!({"type": "array", "minItems": 1, "maxItems": 1000, "items": line_input});
    let bill_create = open(
        &[
            ("calculationMethod", enumeration(&names::<CalculationMethod>())),
            ("dueDate", date_time()),
            ("lineItems", lines.clone()),
            ("percentage", percentage()),
            ("baseAmount", decimal_from(MONEY, 0, false)),
            ("description", nullable(json!({"type": "string", "maxLength": 4000}))),
            ("type", nullable(enumeration(&names::<BillType>()))),
            ("basedOnId", json!({"type": ["integer", "null"]})),
            ("basedOnUid", json!({"type": ["integer", "null"]})),
            ("account", nullable(schema_ref("Account"))),
            ("record", nullable(exact(&[("id", integer(1)), ("title", string())]))),
            ("billRunId", nullable(integer(1))),
            ("billRunKind", nullable(enumeration(&names::<RunKind>()))),
            ("issueDate", nullable(date_time())),
            ("status", enumeration(&names::<BillStatus>())),
        ],
        &["calculationMethod", "dueDate"],
    );
    let bill_update = open(
        &[
            ("calculationMethod", enumeration(&names::<CalculationMethod>())),
            ("lineItems", lines),
            ("percentage", percentage()),
            ("dueDate", date_time()),
            ("issueDate", date_time()),
            ("status", enumeration(&[BillStatus::Issued.name()])),
            ("description", nullable(json!({"type": "string", "maxLength": 4000}))),
        ],
        &[],
    );

    (bill_create, bill_update)
}

/// Billing runs: the resource, its projection, its create, its PUT and a page of a list.
fn billing_run_schemas() -> Vec<(&'static str, Value)> {
    let billing_run = billing_run_resource();
    let (billing_run_create, billing_run_put) = billing_run_requests(&billing_run);
    let page = json!({"type": "object", "additionalProperties": false, "required": ["Count", "Items"],
    "properties": {
        "Count": integer(0),
        "Items": {"type": "array", "items": schema_ref("BillingRun")},
        "LastEvaluatedKey": {"type": "string", "description": "Pass back as `exclusiveStartKey` for the next page"},
    }});
    vec![
        ("BillingRunFields", projection(&billing_run)),
        ("BillingRun", billing_run),
        ("BillingRunCreate", billing_run_create),
        ("BillingRunPut", billing_run_put),
        ("BillingRunPage", page),
    ]
}

/// A billing run as the API answers it.
fn billing_run_resource() -> Value {
    use crate::domain::billing_run::Status;
    let (reminders, cancellation, installments, statements, statistic) = billing_run_options();
    let nullable_bool = json!({"type": ["boolean", "null"]});
    exact(&[
        ("business_unit_id", string()),
        ("cancel_installment_schedules", nullable_bool.clone()),
        ("error", nullable_string()),
        ("error_stack", nullable_string()),
        ("expiring_credit_card_reminder_options", reminders),
        ("id", json!({"type": "string", "format": "uuid"})),
        ("installment_schedule_cancellation_options", cancellation),
        ("installment_schedule_options", installments),
        ("installment_schedule_reminder_options", json!({"type": "object"})),
        ("last_refresh_date", nullable_string()),
        ("name", string()),
        ("notification_email", nullable_string()),
        ("preprocessing_date", nullable_string()),
        ("process_installment_schedules", nullable_bool.clone()),
        ("recurring_billing_run_id", nullable_string()),
        ("run_date", nullable_string()),
        ("scheduled_preprocessing_date", nullable_string()),
        ("scheduled_run_date", nullable_string()),
        ("send_expiring_credit_card_reminders", nullable_bool.clone()),
        ("send_installment_schedule_reminders", nullable_bool.clone()),
        ("send_statements", nullable_bool.clone()),
        ("statement_options", statements),
        ("statistics", json!({"type": "array", "items": statistic})),
        ("status", enumeration(&names::<Status>())),
        ("sys_bulk_load_at", nullable_string()),
        ("sys_bulk_load_id", nullable_string()),
        ("sys_bulk_load_pk", nullable_string()),
        ("sys_bulk_load_record_no", json!({"type": ["integer", "null"], "minimum": 0})),
        ("sys_bulk_load_source_file", nullable_string()),
        ("sys_calculated_field_error", nullable_string()),
        ("sys_calculated_field_errors", json!({"type": "array", "items": exact(&[("field", nullable_string())])})),
        ("sys_configuration_snapshot_id", nullable_string()),
        ("sys_created_at", string()),
        ("sys_created_by_id", string()),
        ("sys_deleted_by_id", nullable_string()),
        ("sys_directive", nullable_string()),
        ("sys_external_id", nullable_string()),
        ("sys_has_files_in_s3", nullable_bool),
        ("sys_last_bulk_data_operation_id", nullable_string()),
        ("sys_last_bulk_data_operation_sys_version", nullable_string()),
        ("sys_last_modified_at", string()),
        ("sys_last_modified_by_id", string()),
        ("sys_last_security_context", json!({"type": ["object", "null"]})),
        ("sys_locked", json!({"type": "boolean"})),
        ("sys_snapshot_base_version", json!({"type": ["integer", "null"], "minimum": 0})),
        ("sys_version", integer(1)),
        ("template_id", nullable_string()),
    ])
}

/// A billing run's options: reminders, cancellations, installments, statements, and a statistic.
fn billing_run_options() -> (Value, Value, Value, Value, Value) {
    use crate::domain::billing_run::{CustomerType, Restriction};
    let restriction = nullable(enumeration(&names::<Restriction>()));
    // Ids as the parser bounds them: 1 to 100 characters.
    let id_text = json!({"type": "string", "minLength": 1, "maxLength": crate::domain::check::MAX_ID});
    let strings = json!({"type": "array", "maxItems": 100, "items": id_text});
    let reminder = exact(&[
        ("card_expiration_date_end", string()),
        ("card_expiration_date_start", string()),
        ("id", integer(0)),
        ("name", nullable_string()),
        ("notice_id", id_text.clone()),
    ]);
    let reminders = exact(&[
        ("order_type_restriction", restriction.clone()),
        ("order_types", strings.clone()),
        ("reminders", json!({"type": "array", "items": reminder})),
    ]);
    // A date `YYYY-MM-DD` or an RFC 3339 date-time, as the parser takes them.
    let day = json!({"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}]});
    let cancellation = exact(&[("date_range_end", day.clone()), ("date_range_start", day.clone())]);
    let installments = exact(&[
        ("card_type_restriction", restriction.clone()),
        ("card_types", strings.clone()),
        ("date_range_end", day.clone()),
        ("date_range_start", day),
        ("do_not_send_standard_email_confirmations", json!({"type": ["boolean", "null"]})),
        ("failure_notice_id", nullable(id_text.clone())),
        ("payment_type_restriction", restriction.clone()),
        ("payment_types", strings.clone()),
        ("success_notice_id", nullable(id_text.clone())),
    ]);
    let statements = exact(&[
        ("business_unit_ids", strings),
        ("business_unit_restriction", restriction),
        ("customer_type", nullable(enumeration(&names::<CustomerType>()))),
        ("statement_template_id", nullable(id_text.clone())),
    ]);
    let count = json!({"type": ["integer", "null"], "minimum": 0});
    let statistic = exact(&[
        ("action", string()),
        ("error", count.clone()),
        ("excluded", count.clone()),
        ("pending", count.clone()),
        ("processing", count.clone()),
        ("successful", count.clone()),
        ("total", count),
    ]);
    (reminders, cancellation, installments, statements, statistic)
}

/// The create and PUT schemas of a billing run: the run's shape, with the content fields required,
/// and on PUT the id, status and sys_version; server-owned fields may be sent back and are
/// ignored. A request's nested options need only what the parser needs (a response always carries
/// every member).
fn billing_run_requests(billing_run: &Value) -> (Value, Value) {
    use crate::domain::check::MAX_ID;
    let mut request_run = billing_run.clone();
    // What the parser bounds: ids of 1 to 100 characters, names of 1 to 255.
    for (name, max) in
        [("business_unit_id", MAX_ID), ("name", 255), ("recurring_billing_run_id", MAX_ID), ("template_id", MAX_ID)]
    {
        let text = json!({"type": "string", "minLength": 1, "maxLength": max});
        let nullable = request_run["properties"][name]["anyOf"].is_array();
        request_run["properties"][name] = if nullable { json!({"anyOf": [text, {"type": "null"}]}) } else { text };
    }
    let nested = |name: &str, required: &[&str]| requiring(&billing_run["properties"][name], required);
    let mut reminder_options = nested("expiring_credit_card_reminder_options", &[]);
    reminder_options["properties"]["reminders"]["items"] = requiring(
        &billing_run["properties"]["expiring_credit_card_reminder_options"]["properties"]["reminders"]["items"],
        &["card_expiration_date_end", "card_expiration_date_start", "notice_id"],
    );
    request_run["properties"]["expiring_credit_card_reminder_options"] = reminder_options;
    request_run["properties"]["installment_schedule_options"] =
        nested("installment_schedule_options", &["date_range_end", "date_range_start"]);
    request_run["properties"]["statement_options"] = nested("statement_options", &[]);
    let mut create = request_run.clone();
    create["required"] = json!([
        "business_unit_id",
        "name",
        "expiring_credit_card_reminder_options",
        "installment_schedule_cancellation_options",
        "installment_schedule_options",
        "installment_schedule_reminder_options",
        "statement_options"
    ]);
    let mut put = request_run;
    let mut required = create["required"].clone();
    if let Some(list) = required.as_array_mut() {
        list.extend([json!("id"), json!("status"), json!("sys_version")]);
    }
    put["required"] = required;
    (create, put)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_its_method_security_and_error_format() {
        let doc = document();
        for route in ROUTES {
            let op = &doc["paths"][route.path][route.method.to_lowercase()];
            assert!(op.is_object(), "{} {} is missing", route.method, route.path);
            let scheme = match route.auth {
                Auth::Bearer => "bearer",
                Auth::ApiKey => "apiKey",
            };
            assert!(op["security"][0].get(scheme).is_some(), "{}", route.function);
            let media = match route.errors {
                ErrorFormat::Problem => "application/problem+json",
                ErrorFormat::Tmf => "application/json",
            };
            assert!(op["responses"]["401"]["content"].get(media).is_some(), "{}", route.function);
        }
        let documented: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(documented, ROUTES.len(), "an operation that is not in the route table");
    }

    #[test]
    fn every_link_names_an_operation_of_the_document() {
        let doc = document();
        let ids: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .map(|op| op["operationId"].as_str().unwrap())
            .collect();
        let mut seen = 0;
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                for link in op["responses"]["201"]["links"].as_object().into_iter().flat_map(|l| l.values()) {
                    assert!(ids.contains(&link["operationId"].as_str().unwrap()), "{link}");
                    seen += 1;
                }
            }
        }
        assert!(seen >= 12, "{seen} links");
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        for (i, _) in text.match_indices("#/components/schemas/") {
            let name: String = text[i + 21..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            assert!(doc["components"]["schemas"].get(&name).is_some(), "no schema {name}");
        }
        assert!(!text.contains("#/definitions/"));
    }
}
