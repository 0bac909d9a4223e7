//! `make bench-events`: webhooks through the dev server (worker, publisher and sender in-process,
//! release build) to a receiver on loopback: the time from a PATCH's answer to its webhook's
//! arrival (median and p99 of 200 changes), and deliveries per second to 1 and to 16 endpoints.
//! `--dynamodb` runs on DynamoDB Local (`DYNAMODB_ENDPOINT`) instead of the embedded store.

use std::time::{Duration, Instant};

use billflow_tests::receiver::Receiver;
use billflow_tests::{fresh_store, spawn_app_on, Backend, TestApp, API_KEY};
use serde_json::json;

async fn app(backend: Backend) -> TestApp {
    std::env::set_var("WEBHOOK_ALLOW_LOOPBACK", "true");
    spawn_app_on(fresh_store(backend).await.expect("a store"), true, 0, Some(Duration::from_millis(100))).await
}

async fn endpoint(app: &TestApp, url: &str, events: &str) {
    let body = json!({"url": url, "enabledEvents": [events]});
    let reply = app.send(app.request_as(&app.admin_token, "POST", "/webhook-endpoints").json(&body)).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
}

async fn bill(app: &TestApp) -> u64 {
    let body = json!({"calculationMethod": "PERCENTAGE", "dueDate": "2024-04-30T00:00:00Z", "percentage": 30, "baseAmount": 100});
    let reply = app.send(app.keyed("POST", "/bills", API_KEY).json(&body)).await;
    assert_eq!(reply.status, 201);
    reply.body["id"].as_u64().unwrap()
}

/// Milliseconds from each PATCH's answer to its webhook's arrival (0 when it arrived first), and
/// from its sending, each sorted.
async fn latency(backend: Backend, changes: usize) -> (Vec<f64>, Vec<f64>) {
    let app = app(backend).await;
    let receiver = Receiver::start().await;
    endpoint(&app, &receiver.url("/hook"), "bill.updated").await;
    let id = bill(&app).await;
    let (mut sent, mut answered) = (Vec::new(), Vec::new());
    for i in 0..changes {
        sent.push(Instant::now());
        let reply = app
            .send(app.keyed("PATCH", &format!("/bills/{id}"), API_KEY).json(&json!({"description": format!("v{i}")})))
            .await;
        assert_eq!(reply.status, 200);
        answered.push(Instant::now());
        // One change in flight at a time: the latency of a delivery, not of a queue.
        receiver.wait("/hook", i + 1).await;
    }
    let got = receiver.at("/hook");
    let since = |from: &[Instant]| {
        let mut ms: Vec<f64> =
            got.iter().zip(from).map(|(r, at)| r.at.saturating_duration_since(*at).as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        ms
    };
    let measured = (since(&answered), since(&sent));
    app.stop().await;
    measured
}

/// The `q` quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1).min(sorted.len() - 1)]
}

/// Deliveries a second: `bills` creates, each an event to every one of `endpoints` endpoints.
async fn throughput(backend: Backend, endpoints: usize, bills: usize) -> f64 {
    let app = app(backend).await;
    let receiver = Receiver::start().await;
    for _ in 0..endpoints {
        endpoint(&app, &receiver.url("/hook"), "bill.created").await;
    }
    let started = Instant::now();
    for chunk in (0..bills).collect::<Vec<_>>().chunks(8) {
        futures::future::join_all(chunk.iter().map(|_| bill(&app))).await;
    }
    receiver.wait("/hook", endpoints * bills).await;
    let rate = (endpoints * bills) as f64 / started.elapsed().as_secs_f64();
    app.stop().await;
    rate
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let backend = if std::env::args().any(|a| a == "--dynamodb") { Backend::Dynamo } else { Backend::Memory };
    let (answered, sent) = latency(backend, 200).await;
    let first = answered.iter().filter(|ms| **ms == 0.0).count();
    println!(
        "{backend:?}: PATCH answered to webhook received, {} changes: median {:.1} ms, p99 {:.1} ms ({first} arrived before the answer was read)",
        answered.len(),
        quantile(&answered, 0.5),
        quantile(&answered, 0.99)
    );
    println!(
        "{backend:?}: PATCH sent to webhook received: median {:.1} ms, p99 {:.1} ms",
        quantile(&sent, 0.5),
        quantile(&sent, 0.99)
    );
    // DynamoDB Local serves each call in milliseconds, not microseconds: fewer events there.
    let (single, multi) = if backend == Backend::Memory { (1000, 200) } else { (200, 25) };
    let one = throughput(backend, 1, single).await;
    println!("{backend:?}: deliveries to 1 endpoint ({single} events): {one:.0} a second");
    let sixteen = throughput(backend, 16, multi).await;
    println!(
        "{backend:?}: deliveries to 16 endpoints ({multi} events, {} deliveries): {sixteen:.0} a second",
        16 * multi
    );
}
