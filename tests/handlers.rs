//! Handler tests on real API Gateway HTTP API (v2) event payloads from `tests/events/`, called
//! in-process on the embedded store, exactly as the Lambda runtime would call them.

use std::sync::Arc;

use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use shared::domain::bill::Bill;
use shared::domain::bill_run::{AdhocBillRun, BillRun, RunKind};
use shared::domain::key::{Id, Key, Kind, TenantId};
use shared::domain::resource::Resource;
use shared::domain::segment::{Segment, SEGMENTS};
use shared::http::{bill_runs, bills, Deps};
use shared::store::memory::MemoryStore;
use shared::store::repo::Tenant;
use shared::store::{AuditEvent, SharedRepository};
use shared::worker::{self, StreamEvent, Worker};

fn event_text(name: &str) -> String {
    let path = format!("{}/events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn event(name: &str) -> Request {
    lambda_http::request::from_str(&event_text(name)).expect("a valid API Gateway v2 event")
}

/// The handlers' dependencies, and the store behind them for what a test reads directly.
#[derive(Clone)]
struct TestDeps {
    deps: Deps,
    store: SharedRepository,
}

impl std::ops::Deref for TestDeps {
    type Target = Deps;

    fn deref(&self) -> &Deps {
        &self.deps
    }
}

fn deps_on(store: SharedRepository) -> TestDeps {
    TestDeps { deps: Deps::new(store.clone()), store }
}

fn deps() -> TestDeps {
    deps_on(Arc::new(MemoryStore::new()))
}

/// The tenant of the events' callers.
fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn key(kind: Kind, id: u64) -> Key {
    Key::new(kind, acme(), Id::Int(id)).unwrap()
}

/// An item's version and JSON, as stored.
async fn stored(deps: &TestDeps, kind: Kind, id: u64) -> (u64, Value) {
    let item = deps.store.get(&key(kind, id)).await.unwrap().expect("the item exists");
    (item.version, serde_json::from_str(&item.body).unwrap())
}

async fn events(deps: &TestDeps, kind: Kind, id: u64) -> Vec<AuditEvent> {
    deps.store.events(&key(kind, id)).await.unwrap()
}

async fn handle_stream(deps: &TestDeps, event: StreamEvent) -> Vec<Option<String>> {
    let response = Worker::standard(deps.store.clone()).handle_stream(event).await;
    response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
}

/// Steps run 1's segments until none moves, each step delivered twice at the same moment (as a
/// stream may deliver a record): how many steps moved.
async fn drain_segments(deps: &TestDeps) -> usize {
    let tenant = Tenant::new(deps.store.as_ref(), acme());
    let mut moved = 0;
    loop {
        let mut any = false;
        for index in 0..SEGMENTS {
            let id = Id::Int(Segment::id_of(RunKind::Regular, 1, index).unwrap());
            let Some(seen) = deps.store.get(&key(Segment::KIND, id.as_int().unwrap())).await.unwrap() else { continue };
            let (a, b) = tokio::join!(
                worker::bill_runs::step_segment(&tenant, &id, Some(seen.version)),
                worker::bill_runs::step_segment(&tenant, &id, Some(seen.version))
            );
            let steps = usize::from(a.unwrap().is_some()) + usize::from(b.unwrap().is_some());
            assert!(steps <= 1, "one of two deliveries of segment {index} at once moves it");
            moved += steps;
            any |= steps > 0;
        }
        if !any {
            return moved;
        }
    }
}

/// One worker step on run 1: its percentage afterwards, or `None` when there was nothing to do.
async fn step(deps: &TestDeps) -> Option<u64> {
    let saved = worker::bill_runs::step::<BillRun>(&Tenant::new(deps.store.as_ref(), acme()), &Id::Int(1), None)
        .await
        .unwrap()?;
    let run: Value = serde_json::from_str(&saved.body).unwrap();
    run["summaryStatusPercentage"].as_u64()
}

fn body(response: &Response<Body>) -> Value {
    serde_json::from_slice(response.body().as_ref()).expect("a JSON body")
}

fn header<'a>(response: &'a Response<Body>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn given_v2_events_when_handled_then_runs_are_created_read_closed_and_listed() {
    let deps = deps();
    let created = bill_runs::create::<BillRun>(&deps, event("create-bill-run")).await;
    assert_eq!(created.status(), 201, "{:?}", body(&created));
    assert_eq!(header(&created, "location"), Some("/bill-runs/1"));
    assert_eq!(header(&created, "x-request-id"), Some("req-create"), "the API Gateway request id is echoed");

    let got = bill_runs::get::<BillRun>(&deps, event("get-bill-run")).await;
    assert_eq!((got.status().as_u16(), header(&got, "etag")), (200, Some("\"1\"")));
    assert_eq!(body(&got), body(&created));

    let closed = bill_runs::update::<BillRun>(&deps, event("update-bill-run")).await;
    assert_eq!(closed.status(), 200, "{:?}", body(&closed));
    assert_eq!(body(&closed)["billingUserAdminId"], 7, "the caller comes from the authorizer context");

    let listed = bill_runs::list::<BillRun>(&deps, event("list-bill-runs")).await;
    assert_eq!((listed.status().as_u16(), header(&listed, "x-total-count")), (200, Some("1")));
    assert_eq!(body(&listed), json!([{"id": 1, "name": "Jan 2024"}]));

    let moved = bill_runs::adjust_schedule(&deps, event("adjust-bill-run-schedule")).await;
    assert_eq!(moved.status(), 409, "a CLOSED run does not move");
}

#[tokio::test]
async fn given_v2_events_without_caller_or_with_a_bad_id_then_401_and_400() {
    let deps = deps();
    let anonymous = bill_runs::get::<BillRun>(&deps, event("get-bill-run-anonymous")).await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(header(&anonymous, "content-type"), Some("application/problem+json"));
    let bad = bill_runs::get::<BillRun>(&deps, event("get-bill-run-bad-id")).await;
    assert_eq!(bad.status(), 400);
    assert_eq!(body(&bad)["errors"][0]["pointer"], "/bill_run_id");
    let missing = bill_runs::get::<BillRun>(&deps, event("get-bill-run")).await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn given_adhoc_v2_events_with_a_base64_body_then_the_run_is_created_and_closed() {
    let deps = deps();
    let created = bill_runs::create::<AdhocBillRun>(&deps, event("create-adhoc-bill-run")).await;
    assert_eq!(created.status(), 201, "{:?}", body(&created));
    assert_eq!(body(&created)["adhocProductInventoryIds"], json!([3, 4]));
    let closed = bill_runs::update::<AdhocBillRun>(&deps, event("update-adhoc-bill-run")).await;
    assert_eq!(body(&closed)["billRunStatus"], "CLOSED");
    let got = bill_runs::get::<AdhocBillRun>(&deps, event("get-adhoc-bill-run")).await;
    assert_eq!(body(&got)["summaryStatus"], "REPORTING");
    let listed = bill_runs::list::<AdhocBillRun>(&deps, event("list-adhoc-bill-runs")).await;
    assert_eq!(header(&listed, "x-total-count"), Some("1"));
}

#[tokio::test]
async fn given_a_stream_record_delivered_twice_then_the_worker_steps_once() {
    let deps = deps();
    assert_eq!(bill_runs::create::<BillRun>(&deps, event("create-bill-run")).await.status(), 201);
    assert_eq!(bill_runs::update::<BillRun>(&deps, event("update-bill-run")).await.status(), 200);
    // The record reports version 2: the close.
    let stream: StreamEvent = serde_json::from_str(&event_text("bill-run-worker")).unwrap();
    assert!(handle_stream(&deps, stream).await.is_empty());
    let (version, run) = stored(&deps, BillRun::KIND, 1).await;
    assert_eq!((version, &run["summaryStatusPercentage"]), (3, &json!(100)));
    // The same record again is stale (version 2 < 3): nothing is written twice.
    let again: StreamEvent = serde_json::from_str(&event_text("bill-run-worker")).unwrap();
    assert!(handle_stream(&deps, again).await.is_empty());
    assert_eq!(stored(&deps, BillRun::KIND, 1).await.0, 3);
    let events = events(&deps, BillRun::KIND, 1).await;
    assert_eq!(events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), vec!["create", "patch", "worker"]);
    assert_eq!(events[2].by, None, "the worker writes as the system");
}

#[tokio::test]
async fn given_a_worker_step_racing_a_client_reopen_then_the_reopen_is_kept() {
    let deps = deps();
    assert_eq!(bill_runs::create::<BillRun>(&deps, event("create-bill-run")).await.status(), 201);
    assert_eq!(bill_runs::update::<BillRun>(&deps, event("update-bill-run")).await.status(), 200);
    let stream: StreamEvent = serde_json::from_str(&event_text("bill-run-worker")).unwrap();
    assert!(handle_stream(&deps, stream).await.is_empty());
    // The client reopens (version 4) while a late delivery of the version-2 record arrives.
    let mut reopen = event("update-bill-run");
    *reopen.body_mut() = Body::Text(json!([{"op": "replace", "path": "/billRunStatus", "value": "OPEN"}]).to_string());
    assert_eq!(bill_runs::update::<BillRun>(&deps, reopen).await.status(), 200);
    let late: StreamEvent = serde_json::from_str(&event_text("bill-run-worker")).unwrap();
    handle_stream(&deps, late).await;
    let (version, run) = stored(&deps, BillRun::KIND, 1).await;
    assert_eq!((version, run["billRunStatus"].as_str()), (4, Some("OPEN")));
}

/// The stream record of a write of run 1 at `version` (as the table's stream reports it).
fn stream_record(version: u64) -> StreamEvent {
    let mut record: Value = serde_json::from_str(&event_text("bill-run-worker")).unwrap();
    record["Records"][0]["dynamodb"]["NewImage"]["version"] = json!({"N": version.to_string()});
    serde_json::from_value(record).unwrap()
}

fn with_body(name: &str, body: Value) -> Request {
    let mut request = event(name);
    *request.body_mut() = Body::Text(body.to_string());
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_stage_record_delivered_twice_even_at_once_then_each_bill_changes_once() {
    let deps = deps();
    assert_eq!(bill_runs::create::<BillRun>(&deps, event("create-bill-run")).await.status(), 201);
    for _ in 0..3 {
        assert_eq!(bills::create(&deps, event("create-bill")).await.status(), 201);
    }
    // Close (version 2); REPORTING starts on the record of version 2, delivered twice: the
    // second is stale once the first has started the stage's segment (version 3).
    assert_eq!(bill_runs::update::<BillRun>(&deps, event("update-bill-run")).await.status(), 200);
    for _ in 0..2 {
        handle_stream(&deps, stream_record(2)).await;
    }
    assert_eq!(stored(&deps, BillRun::KIND, 1).await.0, 3);
    assert!(drain_segments(&deps).await >= 1);
    let (version, run) = stored(&deps, BillRun::KIND, 1).await;
    assert_eq!((version, &run["summaryStatusPercentage"]), (4, &json!(100)), "one write when the segment finished");
    assert_eq!(run["revenueInMajorCurrency"], 179, "3 x 59.97 = 179.91, rounded down");
    assert_eq!((&run["maxInvoiceValue"], &run["maxInvoiceCustomerId"]), (&json!(59.97), &json!(42)));

    // FULL_INVOICES (version 5): the same record delivered twice at the same moment, then again.
    let full =
        with_body("update-bill-run", json!([{"op": "replace", "path": "/summaryStatus", "value": "FULL_INVOICES"}]));
    assert_eq!(bill_runs::update::<BillRun>(&deps, full).await.status(), 200);
    // Two tasks on two threads: both may read version 5; the store lets one transaction win.
    let deliveries: Vec<_> = (0..2)
        .map(|_| {
            let deps = deps.clone();
            tokio::spawn(async move { handle_stream(&deps, stream_record(5)).await })
        })
        .collect();
    for delivery in deliveries {
        assert!(delivery.await.unwrap().is_empty());
    }
    handle_stream(&deps, stream_record(5)).await;
    drain_segments(&deps).await;
    let (version, run) = stored(&deps, BillRun::KIND, 1).await;
    assert_eq!(
        (version, &run["summaryStatus"], &run["summaryStatusPercentage"], &run["failedBills"]),
        (7, &json!("FULL_INVOICES"), &json!(100), &json!(0))
    );
    for id in 1..=3 {
        let (version, bill) = stored(&deps, Bill::KIND, id).await;
        assert_eq!((version, &bill["status"]), (2, &json!("ISSUED")), "bill {id} changed exactly once");
        let actions: Vec<String> = events(&deps, Bill::KIND, id).await.into_iter().map(|e| e.action).collect();
        assert_eq!(actions, vec!["create", "worker FULL_INVOICES"]);
    }
}

#[tokio::test]
async fn given_bill_v2_events_then_bills_are_created_read_patched_listed_and_archived() {
    let deps = deps();
    assert_eq!(bill_runs::create::<BillRun>(&deps, event("create-bill-run")).await.status(), 201);
    let created = bills::create(&deps, event("create-bill")).await;
    assert_eq!((created.status().as_u16(), header(&created, "x-request-id")), (201, Some("req-bill-create")));
    assert_eq!(body(&created)["amount"], json!(59.97));
    let patched = bills::update(&deps, event("update-bill")).await;
    assert_eq!(body(&patched)["description"], "March services");
    let listed = bills::list(&deps, event("list-bills")).await;
    assert_eq!(header(&listed, "x-total-count"), Some("1"));
    assert_eq!(bills::delete(&deps, event("delete-bill")).await.status(), 204, "a DRAFT bill is deleted");
    assert_eq!(bills::get(&deps, event("get-bill")).await.status(), 404);
}

#[tokio::test]
async fn given_large_bills_then_a_step_stays_inside_a_transactions_size() {
    let deps = deps();
    assert_eq!(bill_runs::create::<BillRun>(&deps, event("create-bill-run")).await.status(), 201);
    let lines: Vec<Value> = (0..1000)
        .map(|n| json!({"catalogItemId": n + 1, "quantity": 1, "unitPrice": 1.25, "description": "a line item of a large bill"}))
        .collect();
    let large = json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-30T00:00:00Z", "billRunId": 1, "lineItems": lines});
    for _ in 0..20 {
        assert_eq!(bills::create(&deps, with_body("create-bill", large.clone())).await.status(), 201);
    }
    let close = event("update-bill-run");
    assert_eq!(bill_runs::update::<BillRun>(&deps, close).await.status(), 200);
    step(&deps).await;
    drain_segments(&deps).await;
    let full =
        with_body("update-bill-run", json!([{"op": "replace", "path": "/summaryStatus", "value": "FULL_INVOICES"}]));
    assert_eq!(bill_runs::update::<BillRun>(&deps, full).await.status(), 200);
    step(&deps).await;
    let tenant = Tenant::new(deps.store.as_ref(), acme());
    let segment = Id::Int(Segment::id_of(RunKind::Regular, 1, 0).unwrap());
    assert!(worker::bill_runs::step_segment(&tenant, &segment, None).await.unwrap().is_some());
    let mut issued = 0;
    for id in 1..=20 {
        issued += usize::from(stored(&deps, Bill::KIND, id).await.1["status"] == "ISSUED");
    }
    assert!(issued > 0 && issued < 20, "the first step issued {issued} of 20 large bills (2 MiB a step)");
    let got = bill_runs::get::<BillRun>(&deps, event("get-bill-run")).await;
    let pct = body(&got)["summaryStatusPercentage"].as_u64().unwrap();
    assert_eq!(pct, issued as u64 * 100 / 20, "a GET shows the share done so far");
    let steps = drain_segments(&deps).await;
    let issued_all = bills::list(&deps, with_query("list-bills", &[("billRunId", "1"), ("status", "ISSUED")])).await;
    assert_eq!(header(&issued_all, "x-total-count"), Some("20"), "after {steps} more steps every bill is issued");
}

fn with_query(name: &str, pairs: &[(&str, &str)]) -> Request {
    use lambda_http::RequestExt;
    let query: std::collections::HashMap<String, String> =
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    event(name).with_query_string_parameters(query)
}

/// A job that panics on every item of its kind: a bug a record could trigger.
struct Panics;

const BOOM: Kind = Kind::new("BOOM", shared::domain::key::IdType::Counter);

#[async_trait::async_trait]
impl worker::Job for Panics {
    fn kind(&self) -> Kind {
        BOOM
    }

    async fn step(&self, _: &Tenant<'_>, _: &shared::store::Change) -> shared::store::StoreResult<bool> {
        panic!("a bug in a step")
    }
}

fn with_panicking_job() -> Vec<std::sync::Arc<dyn worker::Job>> {
    let mut jobs = worker::jobs();
    jobs.push(std::sync::Arc::new(Panics));
    jobs
}

#[tokio::test]
async fn given_a_record_whose_step_panics_then_only_that_record_fails_and_the_batch_goes_on() {
    let deps = deps();
    assert_eq!(bill_runs::create::<BillRun>(&deps, event("create-bill-run")).await.status(), 201);
    assert_eq!(bill_runs::update::<BillRun>(&deps, event("update-bill-run")).await.status(), 200);
    // Two records in one batch: a BOOM item (its step panics), then run 1's close.
    let mut batch: Value = serde_json::from_str(&event_text("bill-run-worker")).unwrap();
    let mut boom = batch["Records"][0].clone();
    boom["dynamodb"]["NewImage"]["PK"] = json!({"S": "T#acme#BOOM#1"});
    boom["dynamodb"]["SequenceNumber"] = json!("99");
    batch["Records"].as_array_mut().unwrap().insert(0, boom);
    let worker = Worker::new(deps.store.clone(), with_panicking_job());
    let response = worker.handle_stream(serde_json::from_value(batch).unwrap()).await;
    let failed: Vec<_> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
    assert_eq!(failed, vec![Some("99".to_owned())], "only the panicking record is reported for redelivery");
    assert_eq!(stored(&deps, BillRun::KIND, 1).await.1["summaryStatusPercentage"], 100, "the next record was served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_an_in_process_step_that_panics_then_the_worker_keeps_serving_other_runs() {
    let inner: shared::store::SharedRepository = Arc::new(MemoryStore::new());
    let store = worker::in_process(inner, std::time::Duration::ZERO, worker::Timers::default(), with_panicking_job());
    let boom = shared::store::NewItem {
        key: key(BOOM, 1),
        order: Id::Int(1).sort_key(),
        body: "{}".into(),
        state: None,
        groups: Vec::new(),
        work_pending: true,
        lease_ms: None,
        guard: None,
        check: None,
        event: AuditEvent::new(None, "create"),
        idempotency: None,
    };
    store.create(boom).await.unwrap();
    let deps = deps_on(store);
    assert_eq!(bill_runs::create::<BillRun>(&deps, event("create-bill-run")).await.status(), 201);
    assert_eq!(bill_runs::update::<BillRun>(&deps, event("update-bill-run")).await.status(), 200);
    for _ in 0..200 {
        if stored(&deps, BillRun::KIND, 1).await.1["summaryStatusPercentage"] == 100 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("after a panicking step the in-process worker no longer serves other runs");
}

/// A billing-run event for the run `id` (the events name a placeholder id).
fn billing_event(name: &str, id: &str) -> Request {
    let text = event_text(name).replace("00000000-0000-4000-8000-000000000000", id);
    lambda_http::request::from_str(&text).expect("a valid API Gateway v2 event")
}

#[tokio::test]
async fn given_billing_run_v2_events_then_runs_are_created_read_put_listed_and_deleted() {
    use shared::http::billing_runs;
    let deps = deps();
    let created = billing_runs::create(&deps, event("create-billing-run")).await;
    assert_eq!(created.status(), 201, "{:?}", body(&created));
    assert_eq!(header(&created, "x-request-id"), Some("req-create-billing-run"));
    let id = body(&created)["id"].as_str().unwrap().to_owned();
    assert_eq!(header(&created, "location"), Some(format!("/billingRuns/acme/{id}").as_str()));

    let got = billing_runs::get(&deps, billing_event("get-billing-run", &id)).await;
    assert_eq!((got.status().as_u16(), header(&got, "etag")), (200, Some("\"1\"")));
    assert_eq!(body(&got), body(&created));
    let missing = billing_runs::get(&deps, event("get-billing-run")).await;
    assert_eq!(missing.status(), 404, "the placeholder id is no run");

    let listed = billing_runs::list(&deps, event("list-billing-runs")).await;
    assert_eq!((body(&listed)["Count"].clone(), body(&listed)["Items"][0]["id"].clone()), (json!(1), json!(id)));

    let put = billing_runs::update(&deps, billing_event("update-billing-run", &id)).await;
    assert_eq!(put.status(), 200, "{:?}", body(&put));
    assert_eq!((body(&put)["status"].clone(), body(&put)["sys_version"].clone()), (json!("scheduled"), json!(2)));
    let again = billing_runs::update(&deps, billing_event("update-billing-run", &id)).await;
    assert_eq!(again.status(), 409, "the event's sys_version 1 is stale now");
    assert_eq!(header(&again, "content-type"), Some("application/problem+json"));

    let refused = billing_runs::delete(&deps, billing_event("delete-billing-run", &id)).await;
    assert_eq!(refused.status(), 409, "a scheduled run is not deleted");
    let events = deps
        .store
        .events(
            &Key::new(shared::domain::billing_run::BillingRun::KIND, acme(), Id::Uuid(id.parse().unwrap())).unwrap(),
        )
        .await
        .unwrap();
    let audit: Vec<(String, Option<String>, Option<String>)> =
        events.into_iter().map(|e| (e.action, e.from_status, e.to_status)).collect();
    assert_eq!(
        audit,
        vec![
            ("create".to_owned(), None, Some("draft".to_owned())),
            ("put".to_owned(), Some("draft".to_owned()), Some("scheduled".to_owned())),
        ],
        "an audit event per write, none for refusals"
    );

    // Another tenant's caller: 403 before anything is read.
    let mut foreign: Value = serde_json::from_str(&event_text("get-billing-run")).unwrap();
    foreign["requestContext"]["authorizer"]["lambda"]["tenants"] = json!(["globex"]);
    let foreign = lambda_http::request::from_str(&foreign.to_string()).unwrap();
    assert_eq!(billing_runs::get(&deps, foreign).await.status(), 403);
}

/// An event of the customer-bill family, naming the resource `id`.
fn for_id(name: &str, id: &str) -> Request {
    let text = event_text(name).replace("00000000-0000-4000-8000-000000000000", id);
    lambda_http::request::from_str(&text).expect("a valid API Gateway v2 event")
}

#[tokio::test]
async fn given_customer_bill_v2_events_then_rates_become_an_on_demand_bill_that_goes_on_hold() {
    use billflow_tests::tmf::{assert_tmf, assert_tmf_list};
    use shared::http::customer_bills;
    let deps = deps();
    let created = customer_bills::create_rate(&deps, event("create-applied-customer-billing-rate")).await;
    assert_eq!(created.status(), 201, "{:?}", body(&created));
    assert_tmf("AppliedCustomerBillingRate", &body(&created));
    let rate_id = body(&created)["id"].as_str().unwrap().to_owned();
    let got = customer_bills::get_rate(&deps, for_id("get-applied-customer-billing-rate", &rate_id)).await;
    assert_eq!((got.status().as_u16(), body(&got)), (200, body(&created)));
    assert_eq!(header(&got, "x-request-id"), Some("req-get-applied-customer-billing-rate"));

    let requested = customer_bills::create_on_demand(&deps, event("create-customer-bill-on-demand")).await;
    assert_eq!(requested.status(), 201, "{:?}", body(&requested));
    let request_id = body(&requested)["id"].as_str().unwrap().to_owned();
    let again = customer_bills::create_on_demand(&deps, event("create-customer-bill-on-demand")).await;
    assert_eq!(again.status(), 409, "one request per account at a time: {:?}", body(&again));
    assert_tmf("Error", &body(&again));

    // The stream record of the request's insert drives the worker; a second delivery of it
    // changes nothing.
    let record =
        event_text("customer-bill-on-demand-worker").replace("00000000-0000-4000-8000-000000000000", &request_id);
    for _ in 0..2 {
        let stream: StreamEvent = serde_json::from_str(&record).unwrap();
        assert_eq!(handle_stream(&deps, stream).await, Vec::<Option<String>>::new());
    }
    let done = customer_bills::get_on_demand(&deps, for_id("get-customer-bill-on-demand", &request_id)).await;
    let done = body(&done);
    assert_tmf("CustomerBillOnDemand", &done);
    assert_eq!(done["state"], "done", "{done}");
    let bill_id = done["customerBill"]["id"].as_str().unwrap().to_owned();

    let bill = body(&customer_bills::get_bill(&deps, for_id("get-customer-bill", &bill_id)).await);
    assert_tmf("CustomerBill", &bill);
    assert_eq!(bill["taxIncludedAmount"], json!({"unit": "EUR", "value": 0.12}));
    let patched = customer_bills::patch_bill(&deps, for_id("patch-customer-bill", &bill_id)).await;
    assert_eq!((patched.status().as_u16(), &body(&patched)["state"]), (200, &json!("onHold")));

    let bills = customer_bills::list_bills(&deps, event("list-customer-bills")).await;
    assert_eq!((header(&bills, "x-result-count"), header(&bills, "x-total-count")), (Some("1"), Some("1")));
    assert_tmf_list("CustomerBill", &body(&bills));
    assert_eq!(body(&bills)[0].as_object().unwrap().len(), 5, "fields=state,amountDue with id, href and @type");
    let requests = customer_bills::list_on_demand(&deps, event("list-customer-bill-on-demand")).await;
    assert_eq!(body(&requests).as_array().unwrap().len(), 1, "state=done");
    let rates = body(&customer_bills::list_rates(&deps, event("list-applied-customer-billing-rates")).await);
    assert_tmf_list("AppliedCustomerBillingRate", &rates);
    assert_eq!((&rates[0]["isBilled"], &rates[0]["bill"]["id"]), (&json!(true), &json!(bill_id)));
}

#[tokio::test]
async fn given_an_unreadable_rate_then_the_request_ends_terminated_with_error_and_frees_the_account() {
    use shared::domain::customer_bill::{new_id, rate_group, AppliedRate};
    use shared::http::customer_bills;
    use shared::store::NewItem;
    let deps = deps();
    // A rate item whose body is not a rate (a corrupt item no request could write).
    let id = new_id();
    let key = Key::new(AppliedRate::KIND, acme(), Id::Uuid(id)).unwrap();
    let corrupt = NewItem {
        key,
        order: Id::Uuid(id).sort_key(),
        body: json!({"id": id, "garbage": true}).to_string(),
        groups: vec![Some(rate_group("ACC-1", false)), Some(AppliedRate::account_group("ACC-1"))],
        state: None,
        work_pending: false,
        lease_ms: None,
        guard: None,
        check: None,
        event: AuditEvent::new(None, "seed"),
        idempotency: None,
    };
    deps.store.create(corrupt).await.unwrap();
    let requested = customer_bills::create_on_demand(&deps, event("create-customer-bill-on-demand")).await;
    assert_eq!(requested.status(), 201);
    let request_id = body(&requested)["id"].as_str().unwrap().to_owned();
    let record =
        event_text("customer-bill-on-demand-worker").replace("00000000-0000-4000-8000-000000000000", &request_id);
    let stream: StreamEvent = serde_json::from_str(&record).unwrap();
    assert_eq!(
        handle_stream(&deps, stream).await,
        Vec::<Option<String>>::new(),
        "the failure is the request's, not the batch's"
    );
    let ended = body(&customer_bills::get_on_demand(&deps, for_id("get-customer-bill-on-demand", &request_id)).await);
    assert_eq!(ended["state"], "terminatedWithError", "{ended}");
    assert!(!ended["description"].as_str().unwrap().contains("garbage"), "no internals reach the client: {ended}");
    let again = customer_bills::create_on_demand(&deps, event("create-customer-bill-on-demand")).await;
    assert_eq!(again.status(), 201, "the account is free again");
}
