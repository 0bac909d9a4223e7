//! One contract suite for the repository, run on the embedded store and on DynamoDB Local.

use std::time::Duration;

use billflow_tests::{fresh_store, on_both_stores, Backend};
use serde_json::{json, Value};
use shared::domain::list::{filter, ListQuery, ListSpec};
use shared::store::{
    AuditEvent, Delete, Entity, Guard, IdempotencyRecord, NewItem, SharedRepository, StoreError, Update, VersionCheck,
};

const SPEC: ListSpec = ListSpec {
    sortable: &["id", "name"],
    filters: &[filter("status", "/status", |_| true)],
    fields: &["id", "name", "status"],
    archived: None,
};

fn event(action: &str) -> AuditEvent {
    AuditEvent {
        at: "2024-01-01T00:00:00Z".into(),
        by: Some(1),
        action: action.into(),
        from_status: None,
        to_status: None,
        fields: vec![],
    }
}

fn item(id: u64, name: &str, group: Option<&str>) -> NewItem {
    NewItem {
        entity: Entity::BillRun,
        id,
        doc: json!({"id": id, "name": name, "status": "OPEN", "tags": [], "note": null}),
        group: group.map(str::to_owned),
        work_pending: false,
        guard: None,
        check: None,
        event: event("create"),
        idempotency: None,
    }
}

fn update(id: u64, expected_version: u64, doc: Value) -> Update {
    Update {
        entity: Entity::BillRun,
        id,
        expected_version,
        doc,
        group: None,
        work_pending: true,
        guard: None,
        check: None,
        state: None,
        event: event("patch"),
    }
}

async fn store(backend: Backend) -> Option<SharedRepository> {
    fresh_store(backend).await
}

async fn ids_come_from_a_per_entity_counter(backend: Backend) {
    let Some(store) = store(backend).await else {
        return;
    };
    assert_eq!(store.next_id(Entity::BillRun).await.unwrap(), 1);
    assert_eq!(store.next_id(Entity::BillRun).await.unwrap(), 2);
    assert_eq!(store.next_id(Entity::AdhocBillRun).await.unwrap(), 1);
    assert_eq!(store.next_id(Entity::BillRun).await.unwrap(), 3);
}

async fn create_then_get_returns_the_document_at_version_1(backend: Backend) {
    let Some(store) = store(backend).await else {
        return;
    };
    assert_eq!(store.get(Entity::BillRun, 1).await.unwrap(), None);
    let created = store.create(item(1, "a", None)).await.unwrap();
    assert_eq!(created.version, 1);
    let got = store.get(Entity::BillRun, 1).await.unwrap().unwrap();
    assert_eq!((got.id, got.version, &got.doc), (1, 1, &created.doc));
    assert_eq!(store.get(Entity::AdhocBillRun, 1).await.unwrap(), None, "entities do not share ids");
    assert!(matches!(store.create(item(1, "again", None)).await, Err(StoreError::Conflict)));
    assert_eq!(store.get(Entity::BillRun, 1).await.unwrap().unwrap().doc["name"], "a");
}

async fn updates_are_conditional_on_the_version_and_write_an_event(backend: Backend) {
    let Some(store) = store(backend).await else {
        return;
    };
    store.create(item(1, "a", None)).await.unwrap();
    let saved = store
        .update(update(1, 1, json!({"id": 1, "name": "b", "status": "CLOSED", "tags": [2], "note": "x"})))
        .await
        .unwrap();
    assert_eq!(saved.version, 2);
    let lost =
        store.update(update(1, 1, json!({"id": 1, "name": "stale", "status": "OPEN", "tags": [], "note": null}))).await;
    assert!(matches!(lost, Err(StoreError::Conflict)), "a stale version must lose");
    assert!(matches!(store.update(update(9, 1, json!({"id": 9}))).await, Err(StoreError::Conflict)), "no such item");
    let got = store.get(Entity::BillRun, 1).await.unwrap().unwrap();
    assert_eq!((got.version, got.doc["name"].as_str(), got.doc["tags"].clone()), (2, Some("b"), json!([2])));
    let events = store.events(Entity::BillRun, 1).await.unwrap();
    assert_eq!(events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), vec!["create", "patch"]);
}

async fn concurrent_updates_from_one_version_let_exactly_one_win(backend: Backend) {
    let Some(store) = store(backend).await else {
        return;
    };
    store.create(item(1, "a", None)).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(
                async move { store.update(update(1, 1, json!({"id": 1, "name": format!("w{i}")}))).await.is_ok() },
            )
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert_eq!(store.get(Entity::BillRun, 1).await.unwrap().unwrap().version, 2);
    assert_eq!(store.events(Entity::BillRun, 1).await.unwrap().len(), 2);
}

async fn guards_refuse_writes_that_read_a_stale_group(backend: Backend) {
    let Some(store) = store(backend).await else {
        return;
    };
    let seen = store.guard("BILL_RUN#CYCLE#1").await.unwrap();
    assert_eq!(seen.version, 0);
    let mut first = item(1, "a", Some("CYCLE#1"));
    first.guard = Some(seen.clone());
    store.create(first).await.unwrap();
    let mut second = item(2, "b", Some("CYCLE#1"));
    second.guard = Some(seen);
    assert!(matches!(store.create(second.clone()).await, Err(StoreError::Conflict)));
    assert_eq!(store.get(Entity::BillRun, 2).await.unwrap(), None, "a refused transaction writes nothing");
    second.guard = Some(store.guard("BILL_RUN#CYCLE#1").await.unwrap());
    assert_eq!(second.guard, Some(Guard { key: "BILL_RUN#CYCLE#1".into(), version: 1 }));
    store.create(second).await.unwrap();
    let members = store.group(Entity::BillRun, "CYCLE#1").await.unwrap();
    assert_eq!(members.iter().map(|m| m.id).collect::<Vec<_>>(), vec![1, 2]);
    assert!(store.group(Entity::BillRun, "CYCLE#2").await.unwrap().is_empty());
}

async fn idempotency_records_are_taken_once_and_expire(backend: Backend) {
    let Some(store) = store(backend).await else {
        return;
    };
    let record = |key: &str, expires_at: i64| IdempotencyRecord {
        key: key.into(),
        fingerprint: "f".into(),
        status: 201,
        body: "{\"id\":1}".into(),
        location: Some("/bill-runs/1".into()),
        expires_at,
    };
    let now = shared::store::now_epoch();
    let mut first = item(1, "a", None);
    first.idempotency = Some(record("k", now + 60));
    store.create(first).await.unwrap();
    assert_eq!(store.idempotency("k").await.unwrap(), Some(record("k", now + 60)));
    let mut second = item(2, "b", None);
    second.idempotency = Some(record("k", now + 60));
    assert!(matches!(store.create(second).await, Err(StoreError::IdempotencyKeyTaken)));
    assert_eq!(store.get(Entity::BillRun, 2).await.unwrap(), None);
    // An expired record is void: it reads as absent and may be replaced.
    let mut third = item(3, "c", None);
    third.idempotency = Some(record("old", now - 1));
    store.create(third).await.unwrap();
    assert_eq!(store.idempotency("old").await.unwrap(), None);
    let mut fourth = item(4, "d", None);
    fourth.idempotency = Some(record("old", now + 60));
    store.create(fourth).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
}

async fn lists_page_sort_filter_and_count(backend: Backend) {
    let Some(store) = store(backend).await else {
        return;
    };
    for (id, name) in [(1, "d"), (2, "b"), (3, "a"), (4, "c"), (5, "e")] {
        store.create(item(id, name, None)).await.unwrap();
    }
    let current = store.get(Entity::BillRun, 4).await.unwrap().unwrap();
    store.update(update(4, current.version, json!({"id": 4, "name": "c", "status": "CLOSED"}))).await.unwrap();
    let query = |pairs: &[(&str, &str)]| ListQuery::parse(pairs.iter().copied(), &SPEC).unwrap();
    let ids = |items: &[Value]| items.iter().map(|i| i["id"].as_u64().unwrap()).collect::<Vec<_>>();

    let (page, total) = store.list(Entity::BillRun, &query(&[("pageSize", "2"), ("page", "2")])).await.unwrap();
    assert_eq!((ids(&page), total), (vec![3, 4], 5));
    let (page, total) = store.list(Entity::BillRun, &query(&[("pageSize", "2"), ("page", "4")])).await.unwrap();
    assert_eq!((ids(&page), total), (vec![], 5));
    let (page, _) = store.list(Entity::BillRun, &query(&[("sort", "name:desc")])).await.unwrap();
    assert_eq!(ids(&page), vec![5, 1, 4, 2, 3]);
    let (page, total) = store.list(Entity::BillRun, &query(&[("status", "CLOSED")])).await.unwrap();
    assert_eq!((ids(&page), total), (vec![4], 1));
    let (page, total) = store.list(Entity::AdhocBillRun, &query(&[])).await.unwrap();
    assert_eq!((page.len(), total), (0, 0));
}

async fn counters_reserve_ranges(backend: Backend) {
    let Some(store) = store(backend).await else { return };
    assert_eq!(store.next_ids("LINE_ITEM", 3).await.unwrap(), 3);
    assert_eq!(store.next_ids("LINE_ITEM", 2).await.unwrap(), 5);
    assert_eq!(store.next_ids("BILL_NUMBER", 1).await.unwrap(), 1);
    assert_eq!(store.next_id(Entity::Bill).await.unwrap(), 1);
}

async fn batch_writes_are_all_or_nothing(backend: Backend) {
    let Some(store) = store(backend).await else { return };
    for id in 1..=3 {
        store.create(item(id, "a", None)).await.unwrap();
    }
    let doc = |id: u64, name: &str| json!({"id": id, "name": name});
    // One stale version spoils the whole batch.
    let stale = vec![update(1, 1, doc(1, "x")), update(2, 1, doc(2, "x")), update(3, 7, doc(3, "x"))];
    assert!(matches!(store.write(stale).await, Err(StoreError::Conflict)));
    for id in 1..=3 {
        assert_eq!(
            store.get(Entity::BillRun, id).await.unwrap().unwrap().version,
            1,
            "nothing of a failed batch lands"
        );
    }
    let mut first = update(1, 1, doc(1, "y"));
    first.state = Some(json!({"cursor": 7, "stage": "REPORTING"}));
    let saved = store.write(vec![first, update(2, 1, doc(2, "y"))]).await.unwrap();
    assert_eq!(saved.iter().map(|s| s.version).collect::<Vec<_>>(), vec![2, 2]);
    let got = store.get(Entity::BillRun, 1).await.unwrap().unwrap();
    assert_eq!((got.doc["name"].as_str(), got.state), (Some("y"), Some(json!({"cursor": 7, "stage": "REPORTING"}))));
    assert!(got.doc.get("cursor").is_none(), "worker state never shows in the document");
    let cleared = store.update(update(1, 2, doc(1, "z"))).await.unwrap();
    assert_eq!(cleared.state, None);
    assert_eq!(store.get(Entity::BillRun, 1).await.unwrap().unwrap().state, None);
}

async fn version_checks_tie_a_write_to_another_item(backend: Backend) {
    let Some(store) = store(backend).await else { return };
    store.create(item(1, "run", None)).await.unwrap();
    let check = VersionCheck { entity: Entity::BillRun, id: 1, version: 1 };
    let mut bill = item(1, "bill", None);
    bill.entity = Entity::Bill;
    bill.check = Some(check);
    store.create(bill.clone()).await.unwrap();
    store.update(update(1, 1, json!({"id": 1, "name": "closed"}))).await.unwrap();
    let mut late = bill.clone();
    late.id = 2;
    late.doc = json!({"id": 2});
    assert!(matches!(store.create(late).await, Err(StoreError::Conflict)), "the run moved on");
    assert_eq!(store.get(Entity::Bill, 2).await.unwrap(), None);
    let mut change = update(1, 1, json!({"id": 1, "name": "bill v2"}));
    change.entity = Entity::Bill;
    change.check = Some(check);
    assert!(matches!(store.update(change).await, Err(StoreError::Conflict)));
}

async fn deletes_are_conditional_and_keep_the_trail(backend: Backend) {
    let Some(store) = store(backend).await else { return };
    for id in 1..=2 {
        store.create(item(id, "a", None)).await.unwrap();
    }
    let delete = |id: u64, version: u64| Delete {
        entity: Entity::BillRun,
        id,
        expected_version: version,
        check: None,
        event: event("delete"),
    };
    assert!(matches!(store.delete(delete(1, 5)).await, Err(StoreError::Conflict)));
    store.delete(delete(1, 1)).await.unwrap();
    assert_eq!(store.get(Entity::BillRun, 1).await.unwrap(), None);
    assert!(matches!(store.delete(delete(1, 1)).await, Err(StoreError::Conflict)), "already gone");
    let actions: Vec<String> = store.events(Entity::BillRun, 1).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, vec!["create", "delete"]);
    let query = ListQuery::parse(std::iter::empty(), &SPEC).unwrap();
    let (page, total) = store.list(Entity::BillRun, &query).await.unwrap();
    assert_eq!((page.len(), total), (1, 1), "the count follows deletes");
}

async fn api_keys_are_found_by_hash(backend: Backend) {
    let Some(store) = store(backend).await else { return };
    assert_eq!(store.api_key("abc").await.unwrap(), None);
    let caller = json!({"userId": 5, "tenants": ["t"], "scopes": ["billing:read"]});
    store.put_api_key("abc", caller.clone()).await.unwrap();
    assert_eq!(store.api_key("abc").await.unwrap(), Some(caller));
    assert_eq!(store.api_key("abd").await.unwrap(), None);
}

on_both_stores!(
    ids_come_from_a_per_entity_counter,
    create_then_get_returns_the_document_at_version_1,
    updates_are_conditional_on_the_version_and_write_an_event,
    concurrent_updates_from_one_version_let_exactly_one_win,
    guards_refuse_writes_that_read_a_stale_group,
    idempotency_records_are_taken_once_and_expire,
    lists_page_sort_filter_and_count,
    counters_reserve_ranges,
    batch_writes_are_all_or_nothing,
    version_checks_tie_a_write_to_another_item,
    deletes_are_conditional_and_keep_the_trail,
    api_keys_are_found_by_hash,
);
