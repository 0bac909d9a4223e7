//! `make bench-scale`: how the stage worker's cost grows with a run's bills. For each size it
//! starts the dev server (in this process, worker in-process, no step delay) on a fresh store,
//! creates a bill run with that many bills over HTTP, then drives it through every stage and times
//! each one from the PATCH that requests it to the GET that sees it done. Prints one markdown table
//! per store, and the per-bill time of the largest run against the smallest (budget: at most 1.5).
//!
//! Usage: `bench-scale [--dynamodb] SIZE...` (DynamoDB Local from `DYNAMODB_ENDPOINT`, as
//! `tests/with-dynamodb-local.sh` sets it). Build it in release: the numbers are about the release
//! binaries.

use std::time::{Duration, Instant};

use billflow_tests::{spawn_app, Backend, TestApp, API_KEY};
use serde_json::{json, Value};

/// Stages in order: the PATCH that requests each, and the state that means it is done.
const STAGES: [(&str, &str); 4] = [
    (
        "REPORTING",
        r#"[{"op": "replace", "path": "/billRunStatus", "value": "CLOSED"}, {"op": "replace", "path": "/summaryStatus", "value": "REPORTING"}]"#,
    ),
    ("DRAFT_INVOICES", r#"[{"op": "replace", "path": "/summaryStatus", "value": "DRAFT_INVOICES"}]"#),
    ("FULL_INVOICES", r#"[{"op": "replace", "path": "/summaryStatus", "value": "FULL_INVOICES"}]"#),
    ("DISTRIBUTION", r#"[{"op": "replace", "path": "/summaryStatus", "value": "DISTRIBUTION"}]"#),
];

/// Bills created at once.
const CONCURRENCY: usize = 8;

struct Measured {
    bills: usize,
    /// Seconds per stage, in [`STAGES`] order (DISTRIBUTION runs on to FINALIZED).
    seconds: Vec<f64>,
}

async fn create_bills(app: &TestApp, n: usize) {
    let body = |i: usize| {
        json!({
            "calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-30T00:00:00Z", "billRunId": 1,
            "account": {"id": i + 1, "name": format!("Customer {}", i + 1)},
            "lineItems": [{"catalogItemId": 1, "quantity": 2, "unitPrice": 10.5}, {"catalogItemId": 2, "quantity": 1, "unitPrice": -1}]
        })
    };
    let mut next = 0;
    while next < n {
        let batch: Vec<_> = (next..n.min(next + CONCURRENCY))
            .map(|i| app.send(app.keyed("POST", "/bills", API_KEY).json(&body(i))))
            .collect();
        for reply in futures::future::join_all(batch).await {
            assert_eq!(reply.status, 201, "creating a bill: {:?}", reply.body);
        }
        next += CONCURRENCY;
    }
}

/// Requests `stage` and waits until it is done (DISTRIBUTION: until the run is FINALIZED).
async fn run_stage(app: &TestApp, stage: &str, patch: &str) -> f64 {
    let started = Instant::now();
    let request = app.request("PATCH", "/bill-runs/1").header("content-type", "application/json-patch+json");
    let reply = app.send(request.body(patch.to_owned())).await;
    assert_eq!(reply.status, 200, "{stage}: {:?}", reply.body);
    let deadline = started + Duration::from_secs(1800);
    loop {
        let run = app.get("/bill-runs/1").await.body;
        let done = if stage == "DISTRIBUTION" {
            run["billRunStatus"] == "FINALIZED"
        } else {
            run["summaryStatus"] == stage && run["summaryStatusPercentage"] == 100
        };
        if done {
            return started.elapsed().as_secs_f64();
        }
        assert!(Instant::now() < deadline, "{stage} did not finish: {run}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn measure(backend: Backend, bills: usize) -> Measured {
    let app = spawn_app(backend, true).await.expect("a store to run on");
    let run = json!({"name": "Scale", "billingCycleId": 1, "periodStartDate": "2024-03-01", "periodEndDate": "2024-03-31", "invoiceDate": "2024-03-31"});
    assert_eq!(app.post("/bill-runs", &run).await.status, 201);
    let created = Instant::now();
    create_bills(&app, bills).await;
    eprintln!("{backend:?}: {bills} bills created in {:.1} s", created.elapsed().as_secs_f64());
    let mut seconds = Vec::new();
    for (stage, patch) in STAGES {
        seconds.push(run_stage(&app, stage, patch).await);
    }
    let issued = app.send(app.keyed("GET", "/bills?status=ISSUED&pageSize=1", API_KEY)).await;
    assert_eq!(issued.header("x-total-count"), Some(bills.to_string().as_str()), "every bill was issued");
    let report: Value = app.get("/bill-runs/1").await.body;
    assert_eq!(report["revenueInMajorCurrency"], json!(bills * 20), "each bill is 20.00");
    app.stop().await;
    Measured { bills, seconds }
}

fn print_table(backend: Backend, results: &[Measured]) {
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("\n{backend:?} store, {build} build, worker in-process with no step delay, {} cores\n", cores());
    println!("| bills | stage | seconds | bills/s |");
    println!("| ---: | --- | ---: | ---: |");
    for m in results {
        for ((stage, _), s) in STAGES.iter().zip(&m.seconds) {
            let stage = if *stage == "DISTRIBUTION" { "DISTRIBUTION to FINALIZED" } else { stage };
            println!("| {} | {stage} | {s:.3} | {:.0} |", m.bills, m.bills as f64 / s);
        }
        let total: f64 = m.seconds.iter().sum();
        println!("| {} | all stages | {total:.3} | {:.0} |", m.bills, m.bills as f64 / total);
    }
    if let (Some(small), Some(large)) = (results.first(), results.last()) {
        if large.bills > small.bills {
            let per_bill = |m: &Measured, s: f64| s / m.bills as f64;
            println!("\nPer-bill time of {} bills against {} (budget: at most 1.5):\n", large.bills, small.bills);
            println!("| stage | ratio |");
            println!("| --- | ---: |");
            for (i, (stage, _)) in STAGES.iter().enumerate() {
                let ratio = per_bill(large, large.seconds[i]) / per_bill(small, small.seconds[i]);
                println!("| {stage} | {ratio:.2} |");
            }
            let total = |m: &Measured| m.seconds.iter().sum::<f64>();
            let ratio = per_bill(large, total(large)) / per_bill(small, total(small));
            let verdict = if ratio <= 1.5 { "met" } else { "missed" };
            println!("| all stages | {ratio:.2} ({verdict}) |");
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
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
        sizes = vec![1000, 4000, 16000];
    }
    let mut results = Vec::new();
    for bills in sizes {
        let measured = measure(backend, bills).await;
        eprintln!("{backend:?}: {bills} bills, stages {:?} s", measured.seconds);
        results.push(measured);
    }
    print_table(backend, &results);
}
