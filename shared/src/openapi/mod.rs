//! The OpenAPI 3.1 document of every route of the route table, built from the code: its paths,
//! methods, security and error formats come from [`ROUTES`], list parameters from each family's
//! `ListSpec`, and each operation's statuses, parameters and bodies from [`operation`], which has
//! an arm for every function (a route without one fails `every_route_is_documented`). Each
//! family's schemas (and operations of its own) are in its module here: `bills`, `bill_runs`,
//! `billing_runs`, `api_keys`, and `tmf`, whose schemas are TMF678's official ones
//! (`shared/reference/`), converted from Swagger 2.0; this module holds what they share. The tests
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

mod api_keys;
mod bill_runs;
mod billing_runs;
mod bills;
mod events;
mod tmf;

use api_keys::*;
use bill_runs::*;
use billing_runs::*;
use bills::*;
use events::*;
use tmf::*;

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
    for (name, schema) in own_schemas().into_iter().chain(api_key_schemas()).chain(event_schemas()) {
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
            {"name": EVENTS_TAG, "description": "What happened: every committed change, kept 30 days (billing:read)"},
            {"name": WEBHOOKS_TAG, "description": "Signed webhooks (Standard Webhooks v1), managed by administrators (billing:admin)"},
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
        .or_else(|| api_key_operation(route.function))
        .or_else(|| event_operation(route.function))?;
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
        "list-billing-run-actions" => billing_run_actions_operation(),
        "delete-billing-run" => Op::new("Delete a draft or cancelled billing run", "billing runs")
            .ok(204, json!({"description": "Deleted", "headers": request_id_header()}))
            .errors(&[404, 409, 412])
            .if_match(),
        _ => return None,
    })
}

/// `limit` and `exclusiveStartKey` of a `{Count, Items, LastEvaluatedKey}` list.
fn page_params() -> Vec<Value> {
    vec![
        json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}),
        json!({"name": "exclusiveStartKey", "in": "query", "description": "A page's `LastEvaluatedKey`, as it was given",
            "schema": {"type": "string"}}),
    ]
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
