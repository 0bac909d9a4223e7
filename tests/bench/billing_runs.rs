//! `make bench-billing-runs`: a billing run over a tenant of BILLS open bills of ACCOUNTS accounts
//! (default 10,000 and 1,000). It writes the bills straight to a fresh store, starts the dev
//! server on it (worker in-process with no step delay, the scheduler ticking every 200 ms),
//! creates a run scheduled in the past over HTTP and times it to `ready for execution`
//! (preprocessing), then schedules it for execution and times it to `completed` (running). It
//! checks that every account got one statement and that the statements' balances add up to the
//! bills' to the cent, and prints a markdown row.
//!
//! Usage: `bench-billing-runs [--dynamodb] [BILLS ACCOUNTS]` (DynamoDB Local from
//! `DYNAMODB_ENDPOINT`, as `tests/with-dynamodb-local.sh` sets it). Build it in release.

use std::time::{Duration, Instant};

use billflow_tests::{bench_args, fresh_store, spawn_app_on, TestApp};
use futures::StreamExt;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use shared::domain::bill::{Bill, NewBill};
use shared::domain::billing_run::BillingRun;
use shared::domain::key::Id;
use shared::domain::key::TenantId;
use shared::store::repo::Tenant;
use shared::store::{AuditEvent, SharedRepository};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (backend, sizes) = bench_args();
    let (bills, accounts) = match sizes[..] {
        [bills, accounts] => (bills as u64, accounts as u64),
        _ => (10_000, 1_000),
    };
    let store = fresh_store(backend).await.expect("a store (DYNAMODB_ENDPOINT for --dynamodb)");
    let started = Instant::now();
    let total = seed(&store, bills, accounts).await;
    let seeded = started.elapsed().as_secs_f64();
    let app = spawn_app_on(store, true, 0, None).await;
    let (preprocessing, running, id) = measure(&app, accounts, total).await;
    let (pre_steps, run_steps) = steps(&app, id).await;
    app.stop().await;
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("\n{backend:?} store, {build} build, worker in-process with no step delay, scheduler every 200 ms");
    println!("({bills} bills written in {seeded:.1} s)\n");
    println!("| open bills | accounts | preprocessing (s) | running (s) | bills/s | statements/s | steps | modelled AWS (s) |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    // In AWS each step is a stream hop (about 250 ms) on top of its own work.
    let modelled = (pre_steps + run_steps) as f64 * 0.25 + preprocessing + running;
    println!(
        "| {bills} | {accounts} | {preprocessing:.2} | {running:.2} | {:.0} | {:.0} | {pre_steps} + {run_steps} | {modelled:.0} |",
        bills as f64 / preprocessing,
        accounts as f64 / running
    );
}

/// The run's steps: its writes while preprocessing and while running (its audit trail).
async fn steps(app: &TestApp, id: uuid::Uuid) -> (usize, usize) {
    let tenant = Tenant::new(app.store.as_ref(), TenantId::parse("dev").unwrap());
    let run = tenant.repo::<BillingRun>().get(Id::Uuid(id)).await.unwrap().unwrap();
    let events = app.store.events(&run.key).await.unwrap();
    let from = |status: &str| events.iter().filter(|e| e.from_status.as_deref() == Some(status)).count();
    (from("scheduled") + from("preprocessing"), from("scheduled for execution") + from("running"))
}

/// Writes `n` issued bills of the dev tenant over `accounts` accounts (bill `i` of account
/// `i % accounts + 1`, amount 1 + i/100), 16 at a time; their total amount.
async fn seed(store: &SharedRepository, n: u64, accounts: u64) -> Decimal {
    let tenant = Tenant::new(store.as_ref(), TenantId::parse("dev").unwrap());
    let tenant = &tenant;
    let writes = futures::stream::iter(1..=n).map(|i| async move {
        let account = i % accounts + 1;
        let price = Decimal::new(100 + i64::try_from(i).unwrap(), 2);
        let body = json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2026-12-31T00:00:00Z",
            "issueDate": "2026-12-01T00:00:00Z", "status": "ISSUED",
            "account": {"id": account, "name": format!("Account {account}")},
            "lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": price.to_string().parse::<Value>().unwrap()}]});
        let bill: Bill = NewBill::parse(&body).unwrap().into_bill(i, i, &mut (1..), time::OffsetDateTime::now_utc()).unwrap();
        let amount = bill.amount;
        tenant.create(tenant.repo::<Bill>().new_item(&bill, AuditEvent::new(None, "bench")).unwrap()).await.unwrap();
        amount
    });
    writes.buffer_unordered(16).fold(Decimal::ZERO, |sum, amount| async move { sum + amount }).await
}

/// Seconds to `ready for execution` from the create, and to `completed` from the PUT that
/// schedules it for execution, and the run's id; checks the statements.
async fn measure(app: &TestApp, accounts: u64, total: Decimal) -> (f64, f64, uuid::Uuid) {
    let mut run = json!({
        "business_unit_id": "bu-1", "name": "Bench statements", "status": "scheduled", "send_statements": true,
        "scheduled_preprocessing_date": "2026-01-01", "scheduled_run_date": "2026-01-02",
        "expiring_credit_card_reminder_options": {"reminders": []},
        "installment_schedule_cancellation_options": {"date_range_start": "2026-11-01", "date_range_end": "2026-11-30"},
        "installment_schedule_options": {"date_range_start": "2026-11-01", "date_range_end": "2026-11-30"},
        "installment_schedule_reminder_options": {}, "statement_options": {}
    });
    let started = Instant::now();
    let created = app.post("/billingRuns/dev", &run).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let path = format!("/billingRuns/dev/{}", created.body["id"].as_str().unwrap());
    run = wait(app, &path, "ready for execution").await;
    let preprocessing = started.elapsed().as_secs_f64();
    assert_eq!(run["statistics"][0]["pending"], accounts, "{run}");
    run["status"] = json!("scheduled for execution");
    let started = Instant::now();
    let moved = app.send(app.request("PUT", &path).json(&run)).await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    let done = wait(app, &path, "completed").await;
    let running = started.elapsed().as_secs_f64();
    assert_eq!(done["statistics"][0]["successful"], accounts, "{done}");
    assert_eq!(balances(app, &path).await, total, "the statements add up to the bills to the cent");
    let id = created.body["id"].as_str().unwrap().parse().unwrap();
    (preprocessing, running, id)
}

async fn wait(app: &TestApp, path: &str, status: &str) -> Value {
    loop {
        let run = app.get(path).await.body;
        if run["status"] == status {
            return run;
        }
        assert!(!matches!(run["status"].as_str(), Some("error" | "timed out")), "{run}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The sum of every statement's total balance, over the actions list's pages.
async fn balances(app: &TestApp, path: &str) -> Decimal {
    let (mut sum, mut key) = (Decimal::ZERO, None::<String>);
    loop {
        let start = key.as_ref().map(|k| format!("&exclusiveStartKey={k}")).unwrap_or_default();
        let page = app.get(&format!("{path}/actions?limit=1000{start}")).await.body;
        for target in page["Items"].as_array().unwrap() {
            sum += target["statement"]["total_balance"].to_string().parse::<Decimal>().unwrap();
        }
        match page["LastEvaluatedKey"].as_str() {
            Some(next) => key = Some(next.to_owned()),
            None => return sum,
        }
    }
}
