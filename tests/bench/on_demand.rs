//! `make bench-on-demand`: the time from an on-demand bill request to `done`, for an account
//! with N unbilled rates (default 500). For each size it starts the dev server (in this process,
//! worker in-process with no step delay) on a fresh store, records the rates over HTTP, requests
//! the bill, and times the POST to the GET that sees the request done. It checks that the one bill
//! holds every rate exactly once, and prints a markdown table.
//!
//! Usage: `bench-on-demand [--dynamodb] RATES...` (DynamoDB Local from `DYNAMODB_ENDPOINT`, as
//! `tests/with-dynamodb-local.sh` sets it). Build it in release.

use std::time::{Duration, Instant};

use billflow_tests::{spawn_app, Backend};
use serde_json::json;

const BASE: &str = "/brm/customerBillManagement/v4";
/// Rates recorded at once.
const CONCURRENCY: usize = 8;

async fn measure(backend: Backend, rates: usize) -> f64 {
    let app = spawn_app(backend, true).await.expect("a store to run on");
    let body = |i: usize| {
        json!({"billingAccount": {"id": "BENCH"}, "name": format!("charge {i}"),
               "taxExcludedAmount": {"unit": "EUR", "value": 1.25},
               "appliedTax": [{"taxCategory": "VAT", "taxRate": 0.2, "taxAmount": {"unit": "EUR", "value": 0.25}}]})
    };
    let mut next = 0;
    while next < rates {
        let batch: Vec<_> = (next..rates.min(next + CONCURRENCY))
            .map(|i| app.send(app.request("POST", &format!("{BASE}/appliedCustomerBillingRate")).json(&body(i))))
            .collect();
        for reply in futures::future::join_all(batch).await {
            assert_eq!(reply.status, 201, "recording a rate: {:?}", reply.body);
        }
        next += CONCURRENCY;
    }
    let started = Instant::now();
    let reply = app.post(&format!("{BASE}/customerBillOnDemand"), &json!({"billingAccount": {"id": "BENCH"}})).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let href = reply.body["href"].as_str().unwrap().to_owned();
    let deadline = started + Duration::from_secs(1800);
    let done = loop {
        let request = app.get(&href).await.body;
        if request["state"] != "inProgress" {
            break request;
        }
        assert!(Instant::now() < deadline, "the request did not finish");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(done["state"], "done", "{done}");
    let bill = app.get(done["customerBill"]["href"].as_str().unwrap()).await.body;
    let total = format!("{:.2}", rates as f64 * 1.5);
    assert_eq!(bill["taxIncludedAmount"]["value"].to_string().parse::<f64>().ok(), total.parse::<f64>().ok(), "{bill}");
    app.stop().await;
    seconds
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut backend = Backend::Memory;
    let mut sizes = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--dynamodb" => backend = Backend::Dynamo,
            n => sizes.push(n.parse::<usize>().unwrap_or_else(|_| panic!("not a size: {n}"))),
        }
    }
    if sizes.is_empty() {
        sizes = vec![500];
    }
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("\n{backend:?} store, {build} build, worker in-process with no step delay, {cores} cores\n");
    println!("| unbilled rates | request to done (s) | rates/s |");
    println!("| ---: | ---: | ---: |");
    for rates in sizes {
        let seconds = measure(backend, rates).await;
        println!("| {rates} | {seconds:.3} | {:.0} |", rates as f64 / seconds);
    }
}
