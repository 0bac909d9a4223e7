//! The stage worker at scale, shared by `bench-scale` and `bench`: a bill run of N bills created
//! over HTTP through the dev server (worker in-process) on a fresh store, driven through every
//! stage, each timed from the PATCH that requests it to the GET that sees it done, with the write
//! units the store reported for it (DynamoDB's `ReturnConsumedCapacity`; 0 on the embedded store).
//! A step delay models AWS: each step there waits a stream hop (about 250 ms).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{spawn_app_with, Backend, TestApp, API_KEY};

/// Stages in order: the PATCH that requests each, and the state that means it is done.
pub const STAGES: [(&str, &str); 4] = [
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

/// What to run: a run of `bills` bills, `parallel` or not, each worker step after `step_delay_ms`.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub bills: usize,
    pub parallel: bool,
    pub step_delay_ms: u64,
}

pub struct Measured {
    pub bills: usize,
    /// Seconds per stage, in [`STAGES`] order (DISTRIBUTION runs on to FINALIZED).
    pub seconds: Vec<f64>,
    /// Write units the store reported per stage, in [`STAGES`] order.
    pub write_units: Vec<f64>,
}

/// Bills each stage of [`STAGES`] changes, of a run [`measure`] makes: FULL_INVOICES issues every
/// bill; the others change none (the bills are priced right when created).
pub const CHANGED_PER_BILL: [f64; 4] = [0.0, 0.0, 1.0, 0.0];

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

/// A run of `bills` bills, sequential, with no step delay.
pub async fn measure(backend: Backend, bills: usize) -> Measured {
    measure_scenario(backend, Scenario { bills, parallel: false, step_delay_ms: 0 }).await
}

pub async fn measure_scenario(backend: Backend, scenario: Scenario) -> Measured {
    let Scenario { bills, parallel, step_delay_ms } = scenario;
    let app = spawn_app_with(backend, true, step_delay_ms).await.expect("a store to run on");
    let run = json!({"name": "Scale", "billingCycleId": 1, "periodStartDate": "2024-03-01", "periodEndDate": "2024-03-31",
        "invoiceDate": "2024-03-31", "parallel": parallel});
    assert_eq!(app.post("/bill-runs", &run).await.status, 201);
    let created = Instant::now();
    create_bills(&app, bills).await;
    eprintln!("{backend:?}: {bills} bills created in {:.1} s", created.elapsed().as_secs_f64());
    let (mut seconds, mut write_units) = (Vec::new(), Vec::new());
    for (stage, patch) in STAGES {
        let units = app.store.write_units();
        seconds.push(run_stage(&app, stage, patch).await);
        write_units.push(app.store.write_units() - units);
    }
    let issued = app.send(app.keyed("GET", "/bills?status=ISSUED&pageSize=1", API_KEY)).await;
    assert_eq!(issued.header("x-total-count"), Some(bills.to_string().as_str()), "every bill was issued");
    let report: Value = app.get("/bill-runs/1").await.body;
    assert_eq!(report["revenueInMajorCurrency"], json!(bills * 20), "each bill is 20.00");
    app.stop().await;
    Measured { bills, seconds, write_units }
}
