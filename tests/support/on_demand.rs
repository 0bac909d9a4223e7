//! On-demand customer bills at size, shared by `bench-on-demand` and `bench`: the time from the
//! POST of an on-demand request to the GET that sees it `done`, for an account with N unbilled
//! rates recorded over HTTP through the dev server (worker in-process, no step delay) on a fresh
//! store. The bill is checked to hold every rate once.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::{spawn_app, Backend};

const BASE: &str = "/brm/customerBillManagement/v4";
/// Rates recorded at once.
const CONCURRENCY: usize = 8;

pub async fn measure(backend: Backend, rates: usize) -> f64 {
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
