//! `make bench-lists`: the list requests of a tenant of 1,000 and of 20,000 bills and rates, on
//! DynamoDB Local: the default order, each documented single filter, a deep page, a page past
//! the end, an order no index serves and a TMF filter on an attribute no index holds. For each:
//! the status, the median time of `--runs` calls in-process through the handler, the items and
//! index keys the store read for one call (counted by the store), and the ratio of the medians.
//!
//! Each size gets a table of its own with one tenant (`acme`) and a second tenant of 1,000 bills
//! beside it, so that what one tenant holds is seen not to cost another. Items are seeded through
//! the store in batches (the resource JSON is the handlers' own, changed per item).
//!
//! Usage: `bench-lists [--dynamodb] [--runs N] SIZES...` (DynamoDB Local from `DYNAMODB_ENDPOINT`).

use std::time::Instant;

use billflow_tests::lambda::event;
use billflow_tests::{fresh_store, Backend};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use shared::domain::bill::Bill;
use shared::domain::bill_run::BillRun;
use shared::domain::customer_bill::{new_id, AppliedRate};
use shared::domain::key::TenantId;
use shared::domain::resource::Resource;
use shared::http::{bill_runs, bills, customer_bills, Deps};
use shared::store::repo::Tenant;
use shared::store::{AuditEvent, SharedRepository, Write};

/// Accounts the seeded items are spread over (in runs of consecutive items, so that a batch's
/// counts stay few).
const ACCOUNTS: usize = 20;
/// Creates per seeding transaction.
const BATCH: usize = 30;

/// The requests measured: (family, what, query string).
const CASES: &[(&str, &str, &str)] = &[
    ("bills", "default order", ""),
    ("bills", "status (single filter)", "status=ISSUED"),
    ("bills", "billRunId (single filter)", "billRunId=1"),
    ("bills", "accountId (single filter)", "accountId=3"),
    ("bills", "calculationMethod (single filter)", "calculationMethod=LINE_ITEMS"),
    ("bills", "includeArchived=true (whole list)", "includeArchived=true"),
    ("bills", "id descending", "sort=id:desc"),
    ("bills", "page 10 (offset 900)", "page=10"),
    ("bills", "page past the end", "page=1000000"),
    ("bills", "sort=amount (no index: bounded)", "sort=amount"),
    ("rates", "default order (newest first)", ""),
    ("rates", "billingAccount.id (single filter)", "billingAccount.id=ACC-3"),
    ("rates", "offset 900", "offset=900"),
    ("rates", "isBilled (not indexed: bounded)", "isBilled=false"),
];

fn request(name: &str, query: &str) -> Request {
    let mut event = event(name);
    let params: serde_json::Map<String, Value> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), json!(v)))
        .collect();
    event["rawQueryString"] = json!(query);
    event["queryStringParameters"] = if params.is_empty() { Value::Null } else { Value::Object(params) };
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
}

fn body_of(response: &Response<Body>) -> Value {
    serde_json::from_slice(response.body().as_ref()).unwrap_or(Value::Null)
}

/// The account of the `i`th of `n` items.
fn account_of(i: usize, n: usize) -> usize {
    i * ACCOUNTS / n.max(1) + 1
}

/// `n` bills in `tenant`: the handler's bill, each with its own id, number, account and status
/// (one in ten ISSUED).
async fn seed_bills(store: &SharedRepository, tenant: &str, n: usize) {
    let deps = Deps::new(store.clone());
    let in_tenant = |name: &str| {
        let mut event = event(name);
        event["requestContext"]["authorizer"]["lambda"]["tenants"] = json!([tenant]);
        lambda_http::request::from_str(&event.to_string()).unwrap()
    };
    let run = bill_runs::create::<BillRun>(&deps, in_tenant("create-bill-run")).await;
    assert_eq!(run.status().as_u16(), 201, "the bills' run: {}", body_of(&run));
    let template = body_of(&bills::create(&deps, in_tenant("create-bill")).await);
    assert!(template["id"].is_u64(), "a bill to copy: {template}");
    let tenant = Tenant::new(store.as_ref(), TenantId::parse(tenant).unwrap());
    let repo = tenant.repo::<Bill>();
    for start in (1..n).step_by(BATCH) {
        let count = BATCH.min(n - start);
        let last = tenant.next_ids(Bill::KIND.name, count as u64).await.unwrap();
        let mut writes = Vec::with_capacity(count);
        for (k, id) in (last + 1 - count as u64..=last).enumerate() {
            let i = start + k;
            let mut bill = template.clone();
            bill["id"] = json!(id);
            bill["billNumber"] = json!(id);
            bill["account"]["id"] = json!(account_of(i, n));
            bill["status"] = json!(if i % 10 == 0 { "ISSUED" } else { "DRAFT" });
            let bill: Bill = serde_json::from_value(bill).unwrap();
            writes.push(Write::Create(repo.new_item(&bill, AuditEvent::new(None, "seed")).unwrap()));
        }
        tenant.write(writes).await.unwrap();
    }
}

/// `n` rates in the bench tenant, over [`ACCOUNTS`] accounts, none billed.
async fn seed_rates(store: &SharedRepository, n: usize) {
    let deps = Deps::new(store.clone());
    let response = customer_bills::create_rate(&deps, request("create-applied-customer-billing-rate", "")).await;
    let template = body_of(&response);
    assert!(template["id"].is_string(), "a rate to copy: {template}");
    let tenant = Tenant::new(store.as_ref(), TenantId::parse("acme").unwrap());
    let repo = tenant.repo::<AppliedRate>();
    for start in (1..n).step_by(BATCH) {
        let mut writes = Vec::new();
        for i in start..(start + BATCH).min(n) {
            let id = new_id();
            let mut rate = template.clone();
            rate["id"] = json!(id);
            rate["href"] = json!(format!("/brm/customerBillManagement/v4/appliedCustomerBillingRate/{id}"));
            rate["billingAccount"]["id"] = json!(format!("ACC-{}", account_of(i, n)));
            let rate: AppliedRate = serde_json::from_value(rate).unwrap();
            writes.push(Write::Create(repo.new_item(&rate, AuditEvent::new(None, "seed")).unwrap()));
        }
        tenant.write(writes).await.unwrap();
    }
}

/// One measured case: its status, median milliseconds and the store's reads for one call.
struct Measured {
    status: u16,
    median_ms: f64,
    items_read: u64,
}

async fn call(deps: &Deps, family: &str, query: &str) -> Response<Body> {
    match family {
        "bills" => bills::list(deps, request("list-bills", query)).await,
        _ => customer_bills::list_rates(deps, request("list-applied-customer-billing-rates", query)).await,
    }
}

async fn measure(store: &SharedRepository, family: &str, query: &str, runs: usize) -> Measured {
    let deps = Deps::new(store.clone());
    let before = store.items_read();
    let status = call(&deps, family, query).await.status().as_u16();
    let items_read = store.items_read() - before;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        call(&deps, family, query).await;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Measured { status, median_ms: times[times.len() / 2], items_read }
}

async fn sized(backend: Backend, n: usize, runs: usize) -> Vec<Measured> {
    let store = fresh_store(backend).await.expect("DynamoDB Local (DYNAMODB_ENDPOINT)");
    let started = Instant::now();
    seed_bills(&store, "acme", n).await;
    seed_bills(&store, "neighbour", 1000).await;
    seed_rates(&store, n).await;
    eprintln!(
        "seeded {n} bills and rates (and 1,000 bills of another tenant) in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let mut measured = Vec::new();
    for (family, _, query) in CASES {
        measured.push(measure(&store, family, query, runs).await);
    }
    measured
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut backend = Backend::Memory;
    let mut runs = 15;
    let mut sizes = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dynamodb" => backend = Backend::Dynamo,
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).expect("--runs N"),
            n => sizes.push(n.parse::<usize>().unwrap_or_else(|_| panic!("not a size: {n}"))),
        }
    }
    if sizes.len() != 2 {
        sizes = vec![1000, 20000];
    }
    let (small, large) = (sizes[0], sizes[1]);
    let a = sized(backend, small, runs).await;
    let b = sized(backend, large, runs).await;
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("\n{backend:?} store, {build} build, median of {runs} calls in-process; items read: items and index keys the store read for one call\n");
    println!("| family | request | status ({small} / {large}) | {small}: ms | {small}: items read | {large}: ms | {large}: items read | time ratio |");
    println!("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |");
    for ((family, what, query), (a, b)) in CASES.iter().zip(a.iter().zip(b.iter())) {
        let what = if query.is_empty() { (*what).to_owned() } else { format!("{what}: `?{query}`") };
        println!(
            "| {family} | {what} | {} / {} | {:.2} | {} | {:.2} | {} | {:.2} |",
            a.status,
            b.status,
            a.median_ms,
            a.items_read,
            b.median_ms,
            b.items_read,
            b.median_ms / a.median_ms
        );
    }
}
