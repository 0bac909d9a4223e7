//! Faults on purpose: the same workload of bill runs (parallel and not) and on-demand bills under
//! injected store faults (a share of writes lost as a race, throttled, timed out before or after
//! committing, or, for the worker's writes, a step that panics before or after its write: the
//! embedded store's test mode, `shared::store::faults`) with two seeds, and without faults on DynamoDB
//! Local. A client retries what it is refused with 429 or 503 (creates with their
//! `Idempotency-Key`), reads where each run stands before asking for its next stage, and never
//! sees a 500. At the end: every run FINALIZED with its exact revenue, every bill issued once,
//! every rate billed once on a bill that exists, no account held.

use std::sync::Arc;
use std::time::{Duration, Instant};

use billflow_tests::{dynamodb_endpoint, fresh_dynamo, spawn_app_on, Reply, TestApp, API_KEY};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use shared::domain::bill::Bill;
use shared::domain::customer_bill::AccountBilling;
use shared::domain::key::{Id, Key, TenantId};
use shared::domain::resource::Resource;
use shared::store::memory::MemoryStore;
use shared::store::SharedRepository;

const TMF: &str = "/brm/customerBillManagement/v4";
const RUNS: u64 = 2;
const BILLS_PER_RUN: u64 = 50;
const ACCOUNTS: [&str; 2] = ["FAULT-A", "FAULT-B"];
const RATES_PER_ACCOUNT: u64 = 90;
const STAGES: [&str; 11] = [
    "PROPERTIES",
    "STARTING",
    "REPORTING",
    "DRAFT_INVOICES",
    "FULL_INVOICES",
    "DISTRIBUTION",
    "COMBINING_INVOICES",
    "PAYMENT",
    "REACTIVATING_RPIS",
    "ARCHIVING",
    "FINISHED",
];

/// A short lease and a quick sweeper, so that work whose in-process retries gave up goes on soon.
async fn app_on(store: SharedRepository) -> TestApp {
    std::env::set_var("WORK_LEASE_MS", "300");
    spawn_app_on(store, true, 0, Some(Duration::from_millis(50))).await
}

/// Sends until the answer is not 429 or 503 (each with `Retry-After`), and returns it.
async fn retried(app: &TestApp, build: impl Fn() -> reqwest::RequestBuilder) -> (Reply, u32) {
    for refused in 0..200 {
        let reply = app.send(build()).await;
        assert_ne!(reply.status, 500, "{:?}", reply.body);
        if reply.status != 429 && reply.status != 503 {
            return (reply, refused);
        }
        assert!(reply.header("retry-after").is_some(), "{} without Retry-After", reply.status);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("refused 200 times in a row")
}

/// What the client saw: requests refused with 429 or 503 and sent again.
#[derive(Default)]
struct Seen {
    retries: u32,
    /// On-demand requests that ended `terminatedWithError` (undone) and were asked again.
    terminated: u32,
}

impl Seen {
    async fn create(&mut self, app: &TestApp, path: &str, body: &Value, key: &str, api_key: bool) -> Value {
        let idempotency = format!("{path}:{key}");
        let (reply, refused) = retried(app, || {
            let request = if api_key { app.keyed("POST", path, API_KEY) } else { app.request("POST", path) };
            request.header("idempotency-key", &idempotency).json(body)
        })
        .await;
        self.retries += refused;
        assert_eq!(reply.status, 201, "{path}: {:?}", reply.body);
        reply.body
    }

    async fn get(&mut self, app: &TestApp, path: &str) -> Value {
        let (reply, refused) = retried(app, || app.request("GET", path)).await;
        self.retries += refused;
        assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
        reply.body
    }

    /// Drives run `id` to FINALIZED: asks for each stage when the one before is done, whatever
    /// a fault did to the last request (a PATCH that timed out after committing, answered 503,
    /// is seen done or under way at the next read).
    async fn drive(&mut self, app: &TestApp, id: u64) -> Value {
        let path = format!("/bill-runs/{id}");
        let deadline = Instant::now() + Duration::from_secs(120);
        for stage in ["REPORTING", "DRAFT_INVOICES", "FULL_INVOICES", "DISTRIBUTION"] {
            let at = |run: &Value| STAGES.iter().position(|s| run["summaryStatus"] == *s).unwrap_or(0);
            let wanted = STAGES.iter().position(|s| *s == stage).unwrap_or(0);
            loop {
                assert!(Instant::now() < deadline, "run {id} stuck before {stage}");
                let run = self.get(app, &path).await;
                if at(&run) > wanted || (at(&run) == wanted && run["summaryStatusPercentage"] == 100) {
                    break;
                }
                if at(&run) < wanted {
                    let mut ops = vec![json!({"op": "replace", "path": "/summaryStatus", "value": stage})];
                    if stage == "REPORTING" {
                        ops.insert(0, json!({"op": "replace", "path": "/billRunStatus", "value": "CLOSED"}));
                    }
                    let reply = app.patch(&path, &json!(ops)).await;
                    assert!([200, 409, 429, 503].contains(&reply.status), "{stage}: {:?}", reply.body);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        loop {
            assert!(Instant::now() < deadline, "run {id} never finalized");
            let run = self.get(app, &path).await;
            if run["billRunStatus"] == "FINALIZED" {
                return run;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The workload and its checks; what the client retried.
async fn workload(app: &TestApp) -> Seen {
    let mut seen = Seen::default();
    let mut revenue = vec![Decimal::ZERO; RUNS as usize];
    // Ids as created: a create refused by a fault and sent again may take a fresh number, so
    // ids have gaps, as on DynamoDB.
    let mut bills = Vec::new();
    for run in 1..=RUNS {
        let body = json!({"name": format!("Faults {run}"), "billingCycleId": run, "periodStartDate": "2024-03-01",
            "periodEndDate": "2024-03-31", "invoiceDate": "2024-03-31", "parallel": run % 2 == 0});
        assert_eq!(seen.create(app, "/bill-runs", &body, &format!("run{run}"), false).await["id"], run);
        for n in 1..=BILLS_PER_RUN {
            let price = format!("{n}.{:02}", (n * 7) % 100);
            revenue[(run - 1) as usize] += price.parse::<Decimal>().unwrap();
            let bill = json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-30T00:00:00Z", "billRunId": run,
                "lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": serde_json::from_str::<Value>(&price).unwrap()}]});
            let created = seen.create(app, "/bills", &bill, &format!("bill{run}-{n}"), true).await;
            bills.push(created["id"].as_u64().unwrap());
        }
    }
    for account in ACCOUNTS {
        for n in 1..=RATES_PER_ACCOUNT {
            let rate = json!({"billingAccount": {"id": account}, "taxExcludedAmount": {"unit": "EUR", "value": n}});
            seen.create(app, &format!("{TMF}/appliedCustomerBillingRate"), &rate, &format!("{account}-{n}"), false)
                .await;
        }
    }
    let mut requests = Vec::new();
    for account in ACCOUNTS {
        let body = json!({"billingAccount": {"id": account}});
        requests.push(seen.create(app, &format!("{TMF}/customerBillOnDemand"), &body, account, false).await);
    }
    for run in 1..=RUNS {
        let finalized = seen.drive(app, run).await;
        let major = revenue[(run - 1) as usize].floor().to_string().parse::<i64>().unwrap();
        assert_eq!(finalized["revenueInMajorCurrency"], json!(major), "run {run}'s revenue");
    }
    for (account, request) in ACCOUNTS.iter().zip(requests) {
        seen.bill_on_demand(app, account, request).await;
    }
    check_bills_issued_once(app, &bills).await;
    for account in ACCOUNTS {
        check_rates_billed_once(&mut seen, app, account).await;
    }
    seen
}

impl Seen {
    /// Waits for `request` to end; a request a panic or a stuck step ended `terminatedWithError`
    /// has undone all it billed (every rate of the account unbilled, no bill, the account free),
    /// and is asked again, until one is done.
    async fn bill_on_demand(&mut self, app: &TestApp, account: &str, mut request: Value) {
        for attempt in 1..=10 {
            let href = request["href"].as_str().unwrap().to_owned();
            let deadline = Instant::now() + Duration::from_secs(60);
            let ended = loop {
                let now = self.get(app, &href).await;
                if now["state"] != "inProgress" {
                    break now;
                }
                assert!(Instant::now() < deadline, "{href} never ended");
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            if ended["state"] == "done" {
                return;
            }
            assert_eq!(ended["state"], "terminatedWithError", "{ended}");
            self.terminated += 1;
            let rates = self
                .get(app, &format!("{TMF}/appliedCustomerBillingRate?billingAccount.id={account}&limit=1000"))
                .await;
            assert!(
                rates.as_array().unwrap().iter().all(|r| r["isBilled"] == false && r.get("bill").is_none()),
                "{account}: all or nothing"
            );
            let bills = self.get(app, &format!("{TMF}/customerBill?billingAccount.id={account}")).await;
            assert_eq!(bills, json!([]), "{account}: no bill");
            let body = json!({"billingAccount": {"id": account}});
            request = self
                .create(app, &format!("{TMF}/customerBillOnDemand"), &body, &format!("{account}-{attempt}"), false)
                .await;
        }
        panic!("{account}: no on-demand request was done in 10")
    }
}

/// Every bill of every run is ISSUED, by exactly one FULL_INVOICES step in its audit trail.
async fn check_bills_issued_once(app: &TestApp, bills: &[u64]) {
    let tenant = TenantId::parse("dev").unwrap();
    assert_eq!(bills.len() as u64, RUNS * BILLS_PER_RUN);
    for &id in bills {
        let key = Key::new(Bill::KIND, tenant.clone(), Id::Int(id)).unwrap();
        let stored = app.store.get(&key).await.unwrap().expect("the bill exists");
        assert!(stored.body.contains(r#""status":"ISSUED""#), "bill {id}: {}", stored.body);
        let events = app.store.events(&key).await.unwrap();
        let issued = events.iter().filter(|e| e.action == "worker FULL_INVOICES").count();
        assert_eq!(issued, 1, "bill {id} issued once: {events:?}");
    }
}

/// Every rate of `account` is billed, on the one bill its request made, whose total is theirs;
/// the account is not held.
async fn check_rates_billed_once(seen: &mut Seen, app: &TestApp, account: &str) {
    let rates =
        seen.get(app, &format!("{TMF}/appliedCustomerBillingRate?billingAccount.id={account}&limit=1000")).await;
    let rates = rates.as_array().unwrap();
    assert_eq!(rates.len() as u64, RATES_PER_ACCOUNT);
    let bills = seen.get(app, &format!("{TMF}/customerBill?billingAccount.id={account}")).await;
    let bills = bills.as_array().unwrap();
    assert_eq!(bills.len(), 1, "{account}: one bill");
    for rate in rates {
        assert_eq!((&rate["isBilled"], &rate["bill"]["id"]), (&json!(true), &bills[0]["id"]), "{rate}");
    }
    let total: u64 = (1..=RATES_PER_ACCOUNT).sum();
    assert_eq!(bills[0]["taxExcludedAmount"]["value"], json!(total), "{account}'s bill holds each rate once");
    let tenant = TenantId::parse("dev").unwrap();
    let held = Key::new(AccountBilling::KIND, tenant, Id::Uuid(AccountBilling::id_of(account))).unwrap();
    let billing: AccountBilling = serde_json::from_str(&app.store.get(&held).await.unwrap().unwrap().body).unwrap();
    assert_eq!(billing.on_demand, None, "{account} is released");
}

async fn under_faults(seed: u64) {
    let faulty = Arc::new(MemoryStore::with_faults(0.2, seed));
    let app = app_on(faulty.clone()).await;
    let seen = workload(&app).await;
    eprintln!(
        "seed {seed}: {RUNS} runs, {} bills, {} rates: {} faults injected, {} index reads that lagged, {} client retries, {} on-demand requests ended terminatedWithError and undone",
        RUNS * BILLS_PER_RUN,
        RATES_PER_ACCOUNT * ACCOUNTS.len() as u64,
        faulty.faults_injected(),
        faulty.lagged_reads(),
        seen.retries,
        seen.terminated
    );
    assert!(faulty.faults_injected() > 0 && seen.retries > 0, "faults were injected and seen");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workload_holds_under_faults_with_seed_1() {
    under_faults(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workload_holds_under_faults_with_seed_2() {
    under_faults(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workload_holds_without_faults_on_dynamodb_local() {
    let Some(endpoint) = dynamodb_endpoint() else { return };
    let app = app_on(Arc::new(fresh_dynamo(&endpoint).await)).await;
    let seen = workload(&app).await;
    assert_eq!((seen.retries, seen.terminated), (0, 0), "no fault, no retry");
    app.stop().await;
}

/// Indexes that lag their table (the test mode's, 100 ms, without write faults) hide from a stage the
/// bills written just before it began; the stage, which knows its bills from their counts, walks
/// again a moment later and misses none: the revenue is exact and every bill is issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_started_as_its_last_bills_are_written_misses_none_behind_a_lagging_index() {
    let lagging = Arc::new(MemoryStore::with_faults(0.0, 3).with_index_lag(100));
    let app = app_on(lagging.clone()).await;
    let mut seen = Seen::default();
    for run in [1, 2] {
        let body = json!({"name": "Lag", "billingCycleId": run, "periodStartDate": "2024-03-01", "periodEndDate": "2024-03-31",
            "invoiceDate": "2024-03-31", "parallel": run == 2});
        seen.create(&app, "/bill-runs", &body, &format!("lag-run{run}"), false).await;
        let bills: Vec<_> = (1..=30)
            .map(|n| {
                let bill = json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-30T00:00:00Z", "billRunId": run,
                    "lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": n}]});
                app.send(app.keyed("POST", "/bills", API_KEY).json(&bill))
            })
            .collect();
        assert!(futures::future::join_all(bills).await.iter().all(|r| r.status == 201));
        let close = json!([{"op": "replace", "path": "/billRunStatus", "value": "CLOSED"}, {"op": "replace", "path": "/summaryStatus", "value": "REPORTING"}]);
        assert_eq!(app.patch(&format!("/bill-runs/{run}"), &close).await.status, 200);
    }
    for run in [1, 2] {
        let reported = app.wait_for(&format!("/bill-runs/{run}"), |r| r["summaryStatusPercentage"] == 100).await;
        assert_eq!(reported["revenueInMajorCurrency"], json!(465), "run {run}: 1 + 2 + ... + 30, every bill counted");
    }
    eprintln!("{} index reads lagged", lagging.lagged_reads());
    assert!(lagging.lagged_reads() > 0, "the index lagged");
    app.stop().await;
}

/// A billing run under faults and a lagging index: 60 ISSUED bills of 7 accounts, a run scheduled
/// in the past, preprocessed and run on the scheduler's ticks while writes fail, time out after
/// committing and steps panic. It ends completed, every account with one statement holding each of
/// its bills once, to the cent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_billing_run_completes_with_exact_statements_under_faults() {
    let faulty = Arc::new(MemoryStore::with_faults(0.2, 7).with_index_lag(50));
    let app = app_on(faulty.clone()).await;
    let mut seen = Seen::default();
    let mut want = std::collections::BTreeMap::<u64, (Vec<u64>, Decimal)>::new();
    for n in 1..=60u64 {
        let account = n % 7 + 1;
        let price = format!("{n}.{:02}", (n * 13) % 100);
        let bill = json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2026-12-31T00:00:00Z", "issueDate": "2026-12-01T00:00:00Z",
            "status": "ISSUED", "account": {"id": account, "name": format!("Account {account}")},
            "lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": serde_json::from_str::<Value>(&price).unwrap()}]});
        let created = seen.create(&app, "/bills", &bill, &format!("statement-bill{n}"), true).await;
        let entry = want.entry(account).or_default();
        entry.0.push(created["id"].as_u64().unwrap());
        entry.1 += price.parse::<Decimal>().unwrap();
    }
    let run = json!({"business_unit_id": "bu-1", "name": "Faults", "status": "scheduled", "send_statements": true,
        "scheduled_preprocessing_date": "2026-01-01", "scheduled_run_date": "2026-01-02",
        "expiring_credit_card_reminder_options": {}, "installment_schedule_reminder_options": {}, "statement_options": {},
        "installment_schedule_cancellation_options": {"date_range_start": "2026-11-01", "date_range_end": "2026-11-30"},
        "installment_schedule_options": {"date_range_start": "2026-11-01", "date_range_end": "2026-11-30"}});
    let path = format!(
        "/billingRuns/dev/{}",
        seen.create(&app, "/billingRuns/dev", &run, "faults-run", false).await["id"].as_str().unwrap()
    );
    let ready = seen.wait_for_run(&app, &path, "ready for execution").await;
    assert_eq!(ready["statistics"][0]["pending"], 7, "{ready}");
    // A PUT that timed out after committing is seen done at the next read.
    while seen.get(&app, &path).await["status"] == "ready for execution" {
        let mut current = seen.get(&app, &path).await;
        current["status"] = json!("scheduled for execution");
        let reply = app.send(app.request("PUT", &path).json(&current)).await;
        assert!([200, 409, 429, 503].contains(&reply.status), "{:?}", reply.body);
    }
    let done = seen.wait_for_run(&app, &path, "completed").await;
    let counts: Vec<&Value> =
        ["total", "successful", "error", "processing"].iter().map(|n| &done["statistics"][0][*n]).collect();
    assert_eq!(counts, [&json!(7), &json!(7), &json!(0), &json!(0)], "{done}");
    // The list reads an index, which may lag the run's last write by a moment.
    let mut targets = seen.get(&app, &format!("{path}/actions?status=completed")).await;
    while targets["Count"] != 7 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        targets = seen.get(&app, &format!("{path}/actions?status=completed")).await;
    }
    let got: std::collections::BTreeMap<u64, (Vec<u64>, Decimal)> = targets["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let bills = t["statement"]["bills"].as_array().unwrap().iter().map(|b| b["id"].as_u64().unwrap()).collect();
            let total = t["statement"]["total_balance"].to_string().parse().unwrap();
            (t["target"]["id"].as_u64().unwrap(), (bills, total))
        })
        .collect();
    assert_eq!(got, want, "each account's bills once, to the cent");
    eprintln!(
        "{} faults injected, {} lagged index reads, {} client retries",
        faulty.faults_injected(),
        faulty.lagged_reads(),
        seen.retries
    );
    assert!(faulty.faults_injected() > 0);
    app.stop().await;
}

impl Seen {
    /// Waits for the billing run at `path` to be `status`; it never becomes error or timed out.
    async fn wait_for_run(&mut self, app: &TestApp, path: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let run = self.get(app, path).await;
            if run["status"] == status {
                return run;
            }
            assert!(!matches!(run["status"].as_str(), Some("error" | "timed out")), "{run}");
            assert!(Instant::now() < deadline, "{path} never became {status}: {run}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
