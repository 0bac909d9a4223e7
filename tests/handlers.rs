//! Handler tests on real API Gateway HTTP API (v2) event payloads from `tests/events/`, called
//! in-process on the embedded store, exactly as the Lambda runtime would call them.

use std::sync::Arc;

use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use shared::domain::bill_run::{AdhocBillRun, BillRun};
use shared::http::{bill_runs, Deps};
use shared::store::memory::MemoryStore;
use shared::store::Entity;
use shared::worker::{self, StreamEvent};

fn event_text(name: &str) -> String {
    let path = format!("{}/events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn event(name: &str) -> Request {
    lambda_http::request::from_str(&event_text(name)).expect("a valid API Gateway v2 event")
}

fn deps() -> Deps {
    Deps { store: Arc::new(MemoryStore::new()) }
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
    assert!(worker::handle_stream(&deps, stream).await.batch_item_failures.is_empty());
    let run = deps.store.get(Entity::BillRun, 1).await.unwrap().unwrap();
    assert_eq!((run.version, &run.doc["summaryStatusPercentage"]), (3, &json!(100)));
    // The same record again is stale (version 2 < 3): nothing is written twice.
    let again: StreamEvent = serde_json::from_str(&event_text("bill-run-worker")).unwrap();
    assert!(worker::handle_stream(&deps, again).await.batch_item_failures.is_empty());
    assert_eq!(deps.store.get(Entity::BillRun, 1).await.unwrap().unwrap().version, 3);
    let events = deps.store.events(Entity::BillRun, 1).await.unwrap();
    assert_eq!(events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), vec!["create", "patch", "worker"]);
    assert_eq!(events[2].by, None, "the worker writes as the system");
}

#[tokio::test]
async fn given_a_worker_step_racing_a_client_reopen_then_the_reopen_is_kept() {
    let deps = deps();
    assert_eq!(bill_runs::create::<BillRun>(&deps, event("create-bill-run")).await.status(), 201);
    assert_eq!(bill_runs::update::<BillRun>(&deps, event("update-bill-run")).await.status(), 200);
    let stream: StreamEvent = serde_json::from_str(&event_text("bill-run-worker")).unwrap();
    assert!(worker::handle_stream(&deps, stream).await.batch_item_failures.is_empty());
    // The client reopens (version 4) while a late delivery of the version-2 record arrives.
    let mut reopen = event("update-bill-run");
    *reopen.body_mut() = Body::Text(json!([{"op": "replace", "path": "/billRunStatus", "value": "OPEN"}]).to_string());
    assert_eq!(bill_runs::update::<BillRun>(&deps, reopen).await.status(), 200);
    let late: StreamEvent = serde_json::from_str(&event_text("bill-run-worker")).unwrap();
    worker::handle_stream(&deps, late).await;
    let run = deps.store.get(Entity::BillRun, 1).await.unwrap().unwrap();
    assert_eq!((run.version, run.doc["billRunStatus"].as_str()), (4, Some("OPEN")));
}
