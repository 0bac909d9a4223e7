//! The scheduler's steps on the embedded store: due runs move once however many ticks race, a
//! run is preprocessed and run to completed with each account's statement, and a run that
//! cannot go on, or has not moved for its timeout, is stopped.

use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::json;

use super::*;
use crate::domain::bill::NewBill;
use crate::domain::billing_run::{parse_request, Mode};
use crate::domain::key::TenantId;
use crate::store::memory::MemoryStore;
use crate::store::{Repository, SharedRepository};
use crate::worker::Worker;

fn tenant_id(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

/// `n` issued bills of `tenant` over `accounts` accounts: bill `i` is of account `i % accounts`
/// and of amount `i` cents more than 10.
async fn seed_bills(store: &dyn Repository, tenant: &TenantId, n: u64, accounts: u64) {
    let tenant = Tenant::new(store, tenant.clone());
    for i in 1..=n {
        let account = i % accounts + 1;
        let body = json!({"calculationMethod": "LINE_ITEMS", "lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": 10 + i}],
            "dueDate": "2026-12-31T00:00:00Z", "issueDate": "2026-12-01T00:00:00Z", "status": "ISSUED",
            "account": {"id": account, "name": format!("Account {account}")}});
        let bill = NewBill::parse(&body).unwrap().into_bill(i, i, &mut (1..), OffsetDateTime::now_utc()).unwrap();
        tenant.create(tenant.repo::<Bill>().new_item(&bill, AuditEvent::new(None, "seed")).unwrap()).await.unwrap();
    }
}

async fn scheduled_run(store: &dyn Repository, tenant: &TenantId) -> uuid::Uuid {
    let mut body = crate::domain::billing_run::tests::body();
    body["status"] = json!("scheduled");
    body["send_statements"] = json!(true);
    body["scheduled_preprocessing_date"] = json!("2026-01-01");
    body["scheduled_run_date"] = json!("2026-01-02");
    body["statement_options"] = json!({});
    let id = uuid::Uuid::new_v4();
    let run = BillingRun::create(parse_request(&body, Mode::Create).unwrap(), id, "7", OffsetDateTime::now_utc());
    let tenant = Tenant::new(store, tenant.clone());
    tenant
        .create(tenant.repo::<BillingRun>().new_item(&run, AuditEvent::new(Some(7), "create")).unwrap())
        .await
        .unwrap();
    id
}

async fn read(store: &dyn Repository, tenant: &TenantId, id: uuid::Uuid) -> Versioned<BillingRun> {
    Tenant::new(store, tenant.clone()).repo::<BillingRun>().get(Id::Uuid(id)).await.unwrap().unwrap()
}

/// Steps the run from two workers at once until neither has anything to do.
async fn drive(store: &dyn Repository, tenant: &TenantId, id: uuid::Uuid) {
    let tenant = Tenant::new(store, tenant.clone());
    let id = Id::Uuid(id);
    loop {
        let (a, b) = tokio::join!(step(&tenant, &id, None), step(&tenant, &id, None));
        if a.unwrap().is_none() && b.unwrap().is_none() {
            return;
        }
    }
}

/// The run put in `status` by the client (as a PUT would), keeping the scheduler's record.
async fn client_moves(store: &dyn Repository, tenant: &TenantId, id: uuid::Uuid, status: Status) {
    let current = read(store, tenant, id).await;
    let tenant = Tenant::new(store, tenant.clone());
    let runs = tenant.repo::<BillingRun>();
    let run = BillingRun { status, sys_version: current.value.sys_version + 1, ..current.value.clone() };
    let mut update = runs.update_of(&current, &run, AuditEvent::new(Some(7), "put")).unwrap();
    update.state.clone_from(&current.state);
    tenant.update(update).await.unwrap();
}

#[tokio::test]
async fn two_scheduler_ticks_at_once_move_a_due_run_once_and_statements_are_exact() {
    let store: SharedRepository = Arc::new(MemoryStore::new());
    let (acme, other) = (tenant_id("acme"), tenant_id("other"));
    seed_bills(store.as_ref(), &acme, 120, 50).await;
    seed_bills(store.as_ref(), &other, 30, 7).await;
    let id = scheduled_run(store.as_ref(), &acme).await;
    let worker = Worker::standard(store.clone());
    let now = crate::store::now_ms();
    let (a, b) = tokio::join!(worker.schedule(now, None), worker.schedule(now, None));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.overdue, b.overdue), (1, 1), "both ticks find the due run");
    assert_eq!(a.redriven + b.redriven, 1, "and one of them moves it");
    let run = read(store.as_ref(), &acme, id).await;
    assert_eq!((run.value.status, run.value.sys_version), (Status::Preprocessing, 2));
    let events = store.events(&run.key).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.to_status.as_deref() == Some("preprocessing")).count(), 1);

    drive(store.as_ref(), &acme, id).await;
    let run = read(store.as_ref(), &acme, id).await;
    assert_eq!(run.value.status, Status::ReadyForExecution);
    let row = &run.value.statistics[0];
    assert_eq!(
        (row.action.as_str(), row.total, row.pending, row.excluded),
        ("send_statements", Some(50), Some(50), Some(0))
    );
    assert!(run.value.preprocessing_date.is_some() && run.value.last_refresh_date.is_some());

    client_moves(store.as_ref(), &acme, id, Status::ScheduledForExecution).await;
    let (a, b) = tokio::join!(worker.schedule(now, None), worker.schedule(now, None));
    assert_eq!(a.unwrap().redriven + b.unwrap().redriven, 1);
    drive(store.as_ref(), &acme, id).await;
    let run = read(store.as_ref(), &acme, id).await;
    assert_eq!(run.value.status, Status::Completed);
    assert!(run.value.run_date.is_some());
    let row = &run.value.statistics[0];
    assert_eq!(
        (row.total, row.successful, row.error, row.processing, row.pending),
        (Some(50), Some(50), Some(0), Some(0), Some(0))
    );

    let record = run.state::<Execution>().unwrap();
    let group = targets_group(id, record.generation);
    let tenant = Tenant::new(store.as_ref(), acme.clone());
    let index = Page { group: Some(&group), limit: 1000, ..Page::default() };
    let targets = tenant.repo::<ActionTarget>().page(&index).await.unwrap();
    assert_eq!(targets.len(), 50);
    for target in &targets {
        let account = target.value.target.id;
        let statement = target.value.statement.as_ref().unwrap();
        let bills: Vec<u64> = (1..=120).filter(|i| i % 50 + 1 == account).collect();
        assert_eq!(statement.bills.iter().map(|l| l.id).collect::<Vec<_>>(), bills, "account {account}");
        let want: u64 = bills.iter().map(|i| 10 + i).sum();
        assert_eq!(statement.total_balance, Decimal::from(want));
    }
    let other_run = scheduled_run(store.as_ref(), &other).await;
    assert_ne!(other_run, id);
}

#[tokio::test]
async fn a_busy_run_that_has_not_moved_for_its_timeout_is_timed_out_and_a_lost_record_is_an_error() {
    let store: SharedRepository = Arc::new(MemoryStore::new());
    let acme = tenant_id("acme");
    let tenant = Tenant::new(store.as_ref(), acme.clone());
    let id = scheduled_run(store.as_ref(), &acme).await;
    step(&tenant, &Id::Uuid(id), None).await.unwrap().expect("it starts preprocessing");
    // Its record says it last moved long ago.
    let current = read(store.as_ref(), &acme, id).await;
    let runs = tenant.repo::<BillingRun>();
    let mut update = runs.update_of(&current, &current.value, AuditEvent::new(None, "test")).unwrap();
    update.state = Some(encode(&Execution { generation: 1, moved_ms: 1, ..Execution::default() }).unwrap());
    tenant.update(update).await.unwrap();
    step(&tenant, &Id::Uuid(id), None).await.unwrap().expect("it is stopped");
    let run = read(store.as_ref(), &acme, id).await.value;
    assert_eq!(run.status, Status::TimedOut);
    assert!(run.error.unwrap().contains("no progress"));
    assert_eq!(step(&tenant, &Id::Uuid(id), None).await.unwrap(), None, "a timed-out run waits for its client");

    let id = scheduled_run(store.as_ref(), &acme).await;
    step(&tenant, &Id::Uuid(id), None).await.unwrap();
    let current = read(store.as_ref(), &acme, id).await;
    let update = runs.update_of(&current, &current.value, AuditEvent::new(None, "test")).unwrap(); // state: none
    tenant.update(update).await.unwrap();
    step(&tenant, &Id::Uuid(id), None).await.unwrap();
    let run = read(store.as_ref(), &acme, id).await.value;
    assert_eq!(run.status, Status::Error);
    assert!(run.error.unwrap().contains("schedule it again"));
}

#[tokio::test]
async fn a_run_scheduled_again_gets_new_targets_and_one_changed_before_it_runs_is_refreshed() {
    let store: SharedRepository = Arc::new(MemoryStore::new());
    let acme = tenant_id("acme");
    seed_bills(store.as_ref(), &acme, 30, 10).await;
    let id = scheduled_run(store.as_ref(), &acme).await;
    drive(store.as_ref(), &acme, id).await;
    let first = read(store.as_ref(), &acme, id).await.state::<Execution>().unwrap().generation;
    client_moves(store.as_ref(), &acme, id, Status::Draft).await;
    client_moves(store.as_ref(), &acme, id, Status::Scheduled).await;
    drive(store.as_ref(), &acme, id).await;
    let run = read(store.as_ref(), &acme, id).await;
    let second = run.state::<Execution>().unwrap();
    assert!(second.generation > first, "{second:?}");
    assert_eq!((run.value.status, run.value.statistics[0].total), (Status::ReadyForExecution, Some(10)), "not 20");

    // Its customer_type changed after preprocessing: the run preprocesses again when it is due,
    // then runs.
    let current = read(store.as_ref(), &acme, id).await;
    let tenant = Tenant::new(store.as_ref(), acme.clone());
    let mut run = BillingRun { status: Status::ScheduledForExecution, ..current.value.clone() };
    run.statement_options.customer_type = Some(crate::domain::billing_run::CustomerType::Organization);
    let mut update = tenant.repo::<BillingRun>().update_of(&current, &run, AuditEvent::new(Some(7), "put")).unwrap();
    update.state.clone_from(&current.state);
    tenant.update(update).await.unwrap();
    drive(store.as_ref(), &acme, id).await;
    let run = read(store.as_ref(), &acme, id).await;
    assert_eq!(run.value.status, Status::Completed);
    assert!(run.state::<Execution>().unwrap().generation > second.generation, "refreshed");
    assert_eq!(run.value.statistics[0].successful, Some(10), "bills without an account type pass customer_type");
    let statuses: Vec<String> = store.events(&run.key).await.unwrap().into_iter().filter_map(|e| e.to_status).collect();
    let tail: Vec<&str> = statuses.iter().rev().take(3).rev().map(String::as_str).collect();
    assert_eq!(tail, ["preprocessing", "running", "completed"], "{statuses:?}");
}
