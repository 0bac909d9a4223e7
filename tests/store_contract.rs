//! One contract suite for the repository, run on the embedded store and on DynamoDB Local. It
//! uses an integer-id kind and a UUID kind, each in more than one tenant, so that tenancy is part
//! of the contract both stores keep.

use std::time::Duration;

use billflow_tests::{fresh_store, on_both_stores, Backend};
use serde_json::{json, Value};
use shared::domain::identity::Principal;
use shared::domain::key::{Id, IdType, Key, Kind, TenantId};
use shared::domain::list::{facets, filter, ListQuery, ListSpec, Values};
use shared::domain::resource::Resource;
use shared::domain::WORKER_HEADROOM;
use shared::store::repo::{Listed, Tenant};
use shared::store::{
    guard_key, ApiKeyRecord, AuditEvent, Delete, IdempotencyRecord, NewItem, Page, SharedRepository, StoreError,
    Update, VersionCheck, Write, MAX_CLIENT_ITEM_BYTES, MAX_ITEM_BYTES,
};

const RUN: Kind = Kind::new("RUN", IdType::Counter);
const OTHER: Kind = Kind::new("OTHER", IdType::Counter);
const TENANT_RUN: Kind = Kind::new("TENANT_RUN", IdType::Uuid);

const SPEC: ListSpec = ListSpec {
    sortable: &["id", "name"],
    filters: &[filter("status", "/status", Values::Names(|| vec!["OPEN", "CLOSED", "draft"]))],
    fields: &["id", "name", "status"],
    archived: None,
};

/// A kind's items as the suite writes them: JSON documents listed by [`SPEC`].
macro_rules! document_kind {
    ($name:ident, $kind:expr, $id:expr) => {
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        struct $name(Value);
        impl Resource for $name {
            const KIND: Kind = $kind;
            const LIST: Option<&'static ListSpec> = Some(&SPEC);
            fn id(&self) -> Id {
                $id(&self.0["id"])
            }
        }
    };
}
document_kind!(RunDoc, RUN, |id: &Value| Id::Int(id.as_u64().unwrap_or(0)));
document_kind!(OtherDoc, OTHER, |id: &Value| Id::Int(id.as_u64().unwrap_or(0)));
document_kind!(TenantDoc, TENANT_RUN, |id: &Value| Id::Uuid(
    id.as_str().and_then(|s| s.parse().ok()).unwrap_or_default()
));

/// The groups of a document in `group`, by slot: its group, then its facets by [`SPEC`].
fn groups_of(group: Option<&str>, body: &Value) -> Vec<Option<String>> {
    std::iter::once(group.map(str::to_owned)).chain(facets(&SPEC, body)).collect()
}

/// A page of kind `R` of `tenant` and the number of matches, through the tenant's `Repo`.
async fn list<R: Resource>(store: &SharedRepository, tenant: &TenantId, pairs: &[(&str, &str)]) -> (Vec<Value>, u64) {
    let query = ListQuery::parse(pairs.iter().copied(), &SPEC).unwrap();
    match Tenant::new(store.as_ref(), tenant.clone()).repo::<R>().list(&query).await.unwrap() {
        Listed::Page(page, total) => (page, total),
        Listed::TooBroad(count) => panic!("refused: {count} items"),
    }
}

fn event(action: &str) -> AuditEvent {
    AuditEvent {
        at: "2024-01-01T00:00:00Z".into(),
        by: Some(1),
        action: action.into(),
        from_status: None,
        to_status: None,
        ..AuditEvent::new(Some(1), action)
    }
}

/// The tenant most of the suite writes in.
fn home() -> TenantId {
    tenant("home")
}

fn run_key(id: u64) -> Key {
    Key::new(RUN, home(), Id::Int(id)).unwrap()
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

fn tenant_key(name: &str, id: uuid::Uuid) -> Key {
    Key::new(TENANT_RUN, tenant(name), Id::Uuid(id)).unwrap()
}

fn new_item(key: Key, body: Value, group: Option<&str>) -> NewItem {
    NewItem {
        order: key.id().sort_key(),
        key,
        body: body.to_string(),
        groups: groups_of(group, &body),
        state: None,
        work_pending: false,
        lease_ms: None,
        guard: None,
        check: None,
        event: event("create"),
        idempotency: None,
    }
}

fn item(id: u64, name: &str, group: Option<&str>) -> NewItem {
    new_item(run_key(id), json!({"id": id, "name": name, "status": "OPEN", "tags": [], "note": null}), group)
}

/// A change of item `id` to `body`, whose groups stay as they were (a test that moves an item
/// between groups sets `previous_groups`).
fn update(id: u64, expected_version: u64, body: Value) -> Update {
    let groups = groups_of(None, &body);
    Update {
        key: run_key(id),
        order: Id::Int(id).sort_key(),
        expected_version,
        body: body.to_string(),
        previous_groups: groups.clone(),
        previous_size: 0,
        groups,
        work_pending: true,
        lease_ms: None,
        guard: None,
        check: None,
        state: None,
        event: event("patch"),
    }
}

fn body(stored: &shared::store::Stored) -> Value {
    serde_json::from_str(&stored.body).unwrap()
}

async fn store(backend: Backend) -> Option<SharedRepository> {
    fresh_store(backend).await
}

async fn ids_come_from_a_per_kind_counter_in_each_scope(backend: Backend) {
    let Some(store) = store(backend).await else {
        return;
    };
    assert_eq!(store.next_ids(&home(), RUN.name, 1).await.unwrap(), 1);
    assert_eq!(store.next_ids(&home(), RUN.name, 1).await.unwrap(), 2);
    assert_eq!(store.next_ids(&home(), OTHER.name, 1).await.unwrap(), 1);
    assert_eq!(store.next_ids(&tenant("a"), RUN.name, 1).await.unwrap(), 1, "a tenant's counter is its own");
    assert_eq!(store.next_ids(&home(), RUN.name, 1).await.unwrap(), 3);
}

async fn create_then_get_returns_the_body_at_version_1(backend: Backend) {
    let Some(store) = store(backend).await else {
        return;
    };
    assert_eq!(store.get(&run_key(1)).await.unwrap(), None);
    let created = store.create(item(1, "a", None)).await.unwrap();
    assert_eq!(created.version, 1);
    let got = store.get(&run_key(1)).await.unwrap().unwrap();
    assert_eq!((&got.key, got.version, &got.body), (&run_key(1), 1, &created.body));
    let other = Key::new(OTHER, home(), Id::Int(1)).unwrap();
    assert_eq!(store.get(&other).await.unwrap(), None, "kinds do not share ids");
    assert!(matches!(store.create(item(1, "again", None)).await, Err(StoreError::Conflict)));
    assert_eq!(body(&store.get(&run_key(1)).await.unwrap().unwrap())["name"], "a");
}

async fn resource_fields_never_collide_with_store_attributes(backend: Backend) {
    let Some(store) = store(backend).await else {
        return;
    };
    // Parsed from text, as a request body is: the amount keeps all 18 digits.
    let doc: Value = serde_json::from_str(
        r#"{"id": 1, "version": "v-mine", "PK": "x", "SK": "y", "entity": 7, "workPending": "no",
            "GSI1PK": null, "body": {"deep": [1, 2]}, "amount": 999999999999.123456}"#,
    )
    .unwrap();
    store.create(new_item(run_key(1), doc.clone(), None)).await.unwrap();
    let got = store.get(&run_key(1)).await.unwrap().unwrap();
    assert_eq!((got.version, body(&got)), (1, doc.clone()));
    assert_eq!(got.body, doc.to_string(), "numbers keep every digit");
    assert!(got.body.contains("999999999999.123456"));
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
    let got = store.get(&run_key(1)).await.unwrap().unwrap();
    assert_eq!((got.version, body(&got)["name"].clone(), body(&got)["tags"].clone()), (2, json!("b"), json!([2])));
    let events = store.events(&run_key(1)).await.unwrap();
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
    assert_eq!(store.get(&run_key(1)).await.unwrap().unwrap().version, 2);
    assert_eq!(store.events(&run_key(1)).await.unwrap().len(), 2);
}

async fn guards_refuse_writes_that_read_a_stale_group(backend: Backend) {
    let Some(store) = store(backend).await else {
        return;
    };
    let key = guard_key(RUN, &home(), "CYCLE#1");
    let seen = store.guard(&key).await.unwrap();
    assert_eq!(seen.version, 0);
    let mut first = item(1, "a", Some("CYCLE#1"));
    first.guard = Some(seen.clone());
    store.create(first).await.unwrap();
    let mut second = item(2, "b", Some("CYCLE#1"));
    second.guard = Some(seen);
    assert!(matches!(store.create(second.clone()).await, Err(StoreError::Conflict)));
    assert_eq!(store.get(&run_key(2)).await.unwrap(), None, "a refused transaction writes nothing");
    second.guard = Some(store.guard(&key).await.unwrap());
    assert_eq!(second.guard.as_ref().map(|g| g.version), Some(1));
    store.create(second).await.unwrap();
    let members = store.group(RUN, &home(), "CYCLE#1").await.unwrap();
    assert_eq!(members.iter().map(|m| m.key.clone()).collect::<Vec<_>>(), vec![run_key(1), run_key(2)]);
    assert!(store.group(RUN, &home(), "CYCLE#2").await.unwrap().is_empty());
}

async fn group_pages_start_after_a_cursor_and_counts_follow_creates_and_deletes(backend: Backend) {
    let Some(store) = store(backend).await else {
        return;
    };
    for id in 1..=12 {
        store.create(item(id, "m", Some(if id % 2 == 0 { "EVEN" } else { "ODD" }))).await.unwrap();
    }
    let ids = |page: &[shared::store::Stored]| page.iter().map(|s| s.key.id().as_int().unwrap()).collect::<Vec<_>>();
    let scope = home();
    fn even(after: Option<&str>, limit: usize) -> Page<'_> {
        Page { group: Some("EVEN"), after, limit, ..Page::default() }
    }
    let page = store.page(RUN, &scope, &even(None, 4)).await.unwrap();
    assert_eq!(ids(&page), vec![2, 4, 6, 8], "a page stops at its limit, in id order (10 after 8 and 9)");
    let page = store.page(RUN, &scope, &even(Some(&Id::Int(8).sort_key()), 4)).await.unwrap();
    assert_eq!(ids(&page), vec![10, 12], "and starts after its cursor");
    assert!(store.page(RUN, &scope, &even(Some(&Id::Int(12).sort_key()), 4)).await.unwrap().is_empty());
    // Descending over the whole kind (GSI1), and over a group, from a cursor.
    let newest = Page { limit: 3, descending: true, ..Page::default() };
    assert_eq!(ids(&store.page(RUN, &scope, &newest).await.unwrap()), vec![12, 11, 10]);
    let after_ten = Id::Int(10).sort_key();
    let older = Page { after: Some(&after_ten), ..newest };
    assert_eq!(ids(&store.page(RUN, &scope, &older).await.unwrap()), vec![9, 8, 7]);
    let odd_older = Page { group: Some("ODD"), ..older };
    assert_eq!(ids(&store.page(RUN, &scope, &odd_older).await.unwrap()), vec![9, 7, 5]);
    let other_scope = store.page(RUN, &tenant("a"), &newest).await.unwrap();
    assert!(other_scope.is_empty(), "a page never leaves its scope");
    assert_eq!(store.group_count(RUN, &scope, "EVEN").await.unwrap(), 6);
    assert_eq!(store.group_count(RUN, &scope, "NONE").await.unwrap(), 0);
    let delete = Delete {
        key: run_key(4),
        order: Id::Int(4).sort_key(),
        expected_version: 1,
        groups: vec![Some("EVEN".into())],
        check: None,
        event: event("delete"),
    };
    store.delete(delete).await.unwrap();
    assert_eq!(store.group_count(RUN, &scope, "EVEN").await.unwrap(), 5);
    assert_eq!(ids(&store.page(RUN, &scope, &even(None, 3)).await.unwrap()), vec![2, 6, 8]);
    assert_eq!(store.group_count(RUN, &tenant("a"), "EVEN").await.unwrap(), 0, "a group lives in its scope");
    // An update that changes an item's group moves it, and both counts follow.
    let mut moved = update(6, 1, json!({"id": 6}));
    (moved.previous_groups, moved.groups) = (vec![Some("EVEN".into())], vec![Some("ODD".into())]);
    store.update(moved).await.unwrap();
    assert_eq!(ids(&store.page(RUN, &scope, &even(None, 10)).await.unwrap()), vec![2, 8, 10, 12]);
    let odd = Page { group: Some("ODD"), limit: 10, ..Page::default() };
    assert_eq!(ids(&store.page(RUN, &scope, &odd).await.unwrap()), vec![1, 3, 5, 6, 7, 9, 11]);
    assert_eq!(
        (store.group_count(RUN, &scope, "EVEN").await.unwrap(), store.group_count(RUN, &scope, "ODD").await.unwrap()),
        (4, 7)
    );
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
    assert_eq!(store.idempotency(&home(), "k").await.unwrap(), Some(record("k", now + 60)));
    let mut second = item(2, "b", None);
    second.idempotency = Some(record("k", now + 60));
    assert!(matches!(store.create(second).await, Err(StoreError::IdempotencyKeyTaken)));
    assert_eq!(store.get(&run_key(2)).await.unwrap(), None);
    // An expired record is void: it reads as absent and may be replaced.
    let mut third = item(3, "c", None);
    third.idempotency = Some(record("old", now - 1));
    store.create(third).await.unwrap();
    assert_eq!(store.idempotency(&home(), "old").await.unwrap(), None);
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
    let current = store.get(&run_key(4)).await.unwrap().unwrap();
    let closed = json!({"id": 4, "name": "c", "status": "CLOSED"});
    let mut change = update(4, current.version, closed.clone());
    (change.previous_groups, change.groups) = (groups_of(None, &body(&current)), groups_of(None, &closed));
    store.update(change).await.unwrap();
    let ids = |items: &[Value]| items.iter().map(|i| i["id"].as_u64().unwrap()).collect::<Vec<_>>();
    let reads = store.items_read();
    let (page, total) = list::<RunDoc>(&store, &home(), &[("pageSize", "2"), ("page", "2")]).await;
    assert_eq!((ids(&page), total), (vec![3, 4], 5));
    assert!(store.items_read() - reads <= 2 + 2 + 1, "a page reads the offset's keys, its items and a count");
    let (page, total) = list::<RunDoc>(&store, &home(), &[("pageSize", "2"), ("page", "4")]).await;
    assert_eq!((ids(&page), total), (vec![], 5));
    let (page, total) = list::<RunDoc>(&store, &home(), &[("sort", "id:desc"), ("pageSize", "2")]).await;
    assert_eq!((ids(&page), total), (vec![5, 4], 5));
    let (page, _) = list::<RunDoc>(&store, &home(), &[("sort", "name:desc")]).await;
    assert_eq!(ids(&page), vec![5, 1, 4, 2, 3]);
    // A filter reads its own index partition: the count moved with the change.
    let reads = store.items_read();
    let (page, total) = list::<RunDoc>(&store, &home(), &[("status", "CLOSED")]).await;
    assert_eq!((ids(&page), total), (vec![4], 1));
    assert!(store.items_read() - reads <= 2, "one count and one item");
    let (page, total) = list::<RunDoc>(&store, &home(), &[("status", "OPEN"), ("pageSize", "3"), ("page", "2")]).await;
    assert_eq!((ids(&page), total), (vec![5], 4));
    let (page, total) = list::<RunDoc>(&store, &home(), &[("status", "in:OPEN,CLOSED"), ("sort", "name")]).await;
    assert_eq!((ids(&page), total), (vec![3, 2, 4, 1, 5], 5));
    let (page, total) = list::<OtherDoc>(&store, &home(), &[]).await;
    assert_eq!((page.len(), total), (0, 0));
}

async fn counters_reserve_ranges(backend: Backend) {
    let Some(store) = store(backend).await else { return };
    assert_eq!(store.next_ids(&home(), "LINE_ITEM", 3).await.unwrap(), 3);
    assert_eq!(store.next_ids(&home(), "LINE_ITEM", 2).await.unwrap(), 5);
    assert_eq!(store.next_ids(&home(), "BILL_NUMBER", 1).await.unwrap(), 1);
}

async fn batch_writes_are_all_or_nothing(backend: Backend) {
    let Some(store) = store(backend).await else { return };
    for id in 1..=3 {
        store.create(item(id, "a", None)).await.unwrap();
    }
    let doc = |id: u64, name: &str| json!({"id": id, "name": name});
    // One stale version spoils the whole batch.
    let stale = vec![update(1, 1, doc(1, "x")), update(2, 1, doc(2, "x")), update(3, 7, doc(3, "x"))];
    assert!(matches!(store.write(stale.into_iter().map(Write::Update).collect()).await, Err(StoreError::Conflict)));
    for id in 1..=3 {
        assert_eq!(store.get(&run_key(id)).await.unwrap().unwrap().version, 1, "nothing of a failed batch lands");
    }
    let mut first = update(1, 1, doc(1, "y"));
    first.state = Some(json!({"cursor": 7, "stage": "REPORTING"}).to_string());
    let saved = store.write(vec![Write::Update(first), Write::Update(update(2, 1, doc(2, "y")))]).await.unwrap();
    assert_eq!(saved.iter().map(|s| s.version).collect::<Vec<_>>(), vec![2, 2]);
    let got = store.get(&run_key(1)).await.unwrap().unwrap();
    assert_eq!(body(&got)["name"], "y");
    assert_eq!(
        got.state.as_deref().map(|s| serde_json::from_str::<Value>(s).unwrap()),
        Some(json!({"cursor": 7, "stage": "REPORTING"}))
    );
    assert!(body(&got).get("cursor").is_none(), "worker state never shows in the body");
    let cleared = store.update(update(1, 2, doc(1, "z"))).await.unwrap();
    assert_eq!(cleared.state, None);
    assert_eq!(store.get(&run_key(1)).await.unwrap().unwrap().state, None);
}

async fn version_checks_tie_a_write_to_another_item(backend: Backend) {
    let Some(store) = store(backend).await else { return };
    store.create(item(1, "run", None)).await.unwrap();
    let check = VersionCheck { key: run_key(1), version: 1 };
    let bill_key = |id: u64| Key::new(OTHER, home(), Id::Int(id)).unwrap();
    let mut bill = new_item(bill_key(1), json!({"id": 1}), None);
    bill.check = Some(check.clone());
    store.create(bill.clone()).await.unwrap();
    store.update(update(1, 1, json!({"id": 1, "name": "closed"}))).await.unwrap();
    let mut late = new_item(bill_key(2), json!({"id": 2}), None);
    late.check = Some(check.clone());
    assert!(matches!(store.create(late).await, Err(StoreError::Conflict)), "the run moved on");
    assert_eq!(store.get(&bill_key(2)).await.unwrap(), None);
    let mut change = update(1, 1, json!({"id": 1, "name": "bill v2"}));
    change.key = bill_key(1);
    change.check = Some(check);
    assert!(matches!(store.update(change).await, Err(StoreError::Conflict)));
}

async fn deletes_are_conditional_and_keep_the_trail(backend: Backend) {
    let Some(store) = store(backend).await else { return };
    for id in 1..=2 {
        store.create(item(id, "a", None)).await.unwrap();
    }
    let delete = |id: u64, version: u64| Delete {
        key: run_key(id),
        order: Id::Int(id).sort_key(),
        expected_version: version,
        groups: Vec::new(),
        check: None,
        event: event("delete"),
    };
    assert!(matches!(store.delete(delete(1, 5)).await, Err(StoreError::Conflict)));
    store.delete(delete(1, 1)).await.unwrap();
    assert_eq!(store.get(&run_key(1)).await.unwrap(), None);
    assert!(matches!(store.delete(delete(1, 1)).await, Err(StoreError::Conflict)), "already gone");
    let actions: Vec<String> = store.events(&run_key(1)).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, vec!["create", "delete"]);
    let (page, total) = list::<RunDoc>(&store, &home(), &[]).await;
    assert_eq!((page.len(), total), (1, 1), "the count follows deletes");
}

async fn api_keys_are_found_by_hash_listed_per_tenant_and_revoked(backend: Backend) {
    let Some(store) = store(backend).await else { return };
    assert_eq!(store.api_key("abc").await.unwrap(), None);
    let record = |key_id: &str, hash: &str, tenants: &[&str]| ApiKeyRecord {
        key_id: key_id.into(),
        hash: hash.into(),
        caller: Principal {
            user_id: 5,
            tenants: tenants.iter().map(|t| (*t).to_owned()).collect(),
            scopes: vec!["billing:read".into()],
        },
        description: Some("ci".into()),
        created_at: 1_700_000_000,
        expires_at: Some(1_900_000_000),
        revoked_at: None,
    };
    store.put_api_key(&record("key_b", "abc", &["t"])).await.unwrap();
    store.put_api_key(&record("key_a", "def", &["t", "u"])).await.unwrap();
    store.put_api_key(&record("key_c", "ghi", &["u"])).await.unwrap();
    assert_eq!(store.api_key("abc").await.unwrap(), Some(record("key_b", "abc", &["t"])));
    assert_eq!(store.api_key("abd").await.unwrap(), None);
    assert!(
        matches!(store.put_api_key(&record("key_d", "abc", &["t"])).await, Err(StoreError::Conflict)),
        "a hash is stored once"
    );
    assert!(
        matches!(store.put_api_key(&record("key_a", "xyz", &["v"])).await, Err(StoreError::Conflict)),
        "an id is used once"
    );
    for refused in [record("key_e", "e", &[]), record("key_f", "f", &["a b"]), record("key_g", "g", &["t"; 17])] {
        assert!(store.put_api_key(&refused).await.is_err(), "{:?}", refused.caller.tenants);
        assert_eq!(store.api_key(&refused.hash).await.unwrap(), None, "nothing of a refused key is stored");
    }
    let ids = |keys: Vec<ApiKeyRecord>| keys.into_iter().map(|k| k.key_id).collect::<Vec<_>>();
    assert_eq!(ids(store.api_keys().await.unwrap()), vec!["key_a", "key_b", "key_c"]);
    assert_eq!(ids(store.tenant_api_keys(&tenant("t"), None, 10).await.unwrap()), vec!["key_a", "key_b"]);
    assert_eq!(ids(store.tenant_api_keys(&tenant("t"), None, 1).await.unwrap()), vec!["key_a"]);
    assert_eq!(ids(store.tenant_api_keys(&tenant("t"), Some("key_a"), 10).await.unwrap()), vec!["key_b"]);
    assert_eq!(ids(store.tenant_api_keys(&tenant("u"), None, 10).await.unwrap()), vec!["key_a", "key_c"]);
    assert!(store.tenant_api_keys(&tenant("tt"), None, 10).await.unwrap().is_empty(), "no prefix match");
    assert_eq!(store.tenant_api_key(&tenant("t"), "key_c").await.unwrap(), None, "another tenant's key");
    assert_eq!(store.api_key_by_id("key_c").await.unwrap().map(|k| k.hash), Some("ghi".to_owned()));
    let key_a = store.tenant_api_key(&tenant("u"), "key_a").await.unwrap().expect("a key of two tenants");
    store.revoke_api_key(&key_a, 1_800_000_000).await.unwrap();
    store.revoke_api_key(&key_a, 1_850_000_000).await.unwrap();
    for revoked in [
        store.api_key("def").await.unwrap().unwrap(),
        store.tenant_api_key(&tenant("t"), "key_a").await.unwrap().unwrap(),
        store.tenant_api_keys(&tenant("u"), None, 1).await.unwrap().remove(0),
    ] {
        assert_eq!(revoked.revoked_at, Some(1_800_000_000), "revoked everywhere, and again keeps the first time");
        assert!(!revoked.valid_at(1_800_000_001));
    }
    let active = store.api_key("abc").await.unwrap().unwrap();
    assert!(active.valid_at(1_800_000_000) && !active.valid_at(1_900_000_000), "expiry");
}

/// A transaction, a checked item, a guard or a delete that reaches into a second tenant is
/// refused before anything is written, on both stores.
async fn no_write_spans_two_tenants(backend: Backend) {
    let Some(store) = store(backend).await else { return };
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let doc = json!({"name": "x"});
    store.create(new_item(tenant_key("a", a), doc.clone(), None)).await.unwrap();
    let two = vec![
        Write::Create(new_item(tenant_key("a", b), doc.clone(), None)),
        Write::Create(new_item(tenant_key("b", b), doc.clone(), None)),
    ];
    assert!(matches!(store.write(two).await, Err(StoreError::Internal(_))));
    let mut checked = new_item(tenant_key("b", b), doc.clone(), None);
    checked.check = Some(VersionCheck { key: tenant_key("a", a), version: 1 });
    assert!(matches!(store.create(checked).await, Err(StoreError::Internal(_))));
    let mut guarded = new_item(tenant_key("b", b), doc.clone(), Some("G"));
    guarded.guard = Some(store.guard(&guard_key(TENANT_RUN, &tenant("a"), "G")).await.unwrap());
    assert!(matches!(store.create(guarded).await, Err(StoreError::Internal(_))));
    let delete = Delete {
        key: tenant_key("b", b),
        order: Id::Uuid(b).sort_key(),
        expected_version: 1,
        groups: Vec::new(),
        check: Some(VersionCheck { key: tenant_key("a", a), version: 1 }),
        event: event("delete"),
    };
    assert!(matches!(store.delete(delete).await, Err(StoreError::Internal(_))));
    assert_eq!(store.get(&tenant_key("a", b)).await.unwrap(), None, "nothing of the refused writes landed");
    assert_eq!(store.get(&tenant_key("b", b)).await.unwrap(), None);
    assert_eq!(store.count(TENANT_RUN, &tenant("b")).await.unwrap(), 0);
}

async fn the_same_id_in_two_tenants_is_two_items_and_nothing_crosses_a_tenant(backend: Backend) {
    let Some(store) = store(backend).await else { return };
    let id = uuid::Uuid::new_v4();
    let doc =
        |tenant: &str, name: &str| json!({"id": id.to_string(), "tenant": tenant, "name": name, "status": "draft"});
    store.create(new_item(tenant_key("a", id), doc("a", "same name"), None)).await.unwrap();
    store.create(new_item(tenant_key("b", id), doc("b", "same name"), None)).await.unwrap();
    assert_eq!(body(&store.get(&tenant_key("a", id)).await.unwrap().unwrap())["tenant"], "a");
    assert_eq!(body(&store.get(&tenant_key("b", id)).await.unwrap().unwrap())["tenant"], "b");
    assert_eq!(store.get(&tenant_key("c", id)).await.unwrap(), None, "no get crosses a tenant");
    // Writes are per tenant too: b's item moves on, a's stays.
    let mut change = update(0, 1, doc("b", "renamed"));
    change.key = tenant_key("b", id);
    store.update(change).await.unwrap();
    assert_eq!(store.get(&tenant_key("a", id)).await.unwrap().unwrap().version, 1);
    assert_eq!(store.events(&tenant_key("a", id)).await.unwrap().len(), 1, "audit trails are per tenant");

    // Lists and their paging stay inside the scope.
    for n in 0..5 {
        let other = uuid::Uuid::new_v4();
        store
            .create(new_item(tenant_key("a", other), json!({"id": other.to_string(), "tenant": "a", "n": n}), None))
            .await
            .unwrap();
    }
    let tenants_in =
        |items: &[Value]| items.iter().map(|i| i["tenant"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let (page, total) = list::<TenantDoc>(&store, &tenant("a"), &[]).await;
    assert_eq!((tenants_in(&page), total), (vec!["a".to_owned(); 6], 6));
    let (page, total) = list::<TenantDoc>(&store, &tenant("b"), &[("pageSize", "2"), ("page", "1")]).await;
    assert_eq!((tenants_in(&page), total), (vec!["b".to_owned()], 1));
    let (page, _) = list::<TenantDoc>(&store, &tenant("a"), &[("pageSize", "4"), ("page", "2")]).await;
    assert_eq!(tenants_in(&page), vec!["a".to_owned(); 2], "the second page of a holds a's items only");
    let (page, total) = list::<TenantDoc>(&store, &tenant("b"), &[("status", "draft")]).await;
    assert_eq!((tenants_in(&page), total), (vec!["b".to_owned()], 1), "filter partitions are per tenant");
    let (page, total) = list::<TenantDoc>(&store, &tenant("c"), &[]).await;
    assert_eq!((page.len(), total), (0, 0));
}

async fn idempotency_replays_never_cross_a_tenant(backend: Backend) {
    let Some(store) = store(backend).await else { return };
    let record = IdempotencyRecord {
        key: "1:/things:k".into(),
        fingerprint: "f".into(),
        status: 201,
        body: "{}".into(),
        location: None,
        expires_at: shared::store::now_epoch() + 60,
    };
    let mut in_a = new_item(tenant_key("a", uuid::Uuid::new_v4()), json!({}), None);
    in_a.idempotency = Some(record.clone());
    store.create(in_a).await.unwrap();
    assert_eq!(store.idempotency(&tenant("a"), &record.key).await.unwrap(), Some(record.clone()));
    assert_eq!(store.idempotency(&tenant("b"), &record.key).await.unwrap(), None);
    assert_eq!(store.idempotency(&home(), &record.key).await.unwrap(), None);
    let mut in_b = new_item(tenant_key("b", uuid::Uuid::new_v4()), json!({}), None);
    in_b.idempotency = Some(record.clone());
    store.create(in_b).await.expect("the same key in another tenant is another key");
}

async fn resources_over_the_size_bound_are_refused_by_both_stores(backend: Backend) {
    let Some(store) = store(backend).await else { return };
    let big = |bytes: usize| json!({"id": 1, "blob": "x".repeat(bytes)});
    // A client's write is held to the client bound ...
    let too_big = new_item(run_key(1), big(MAX_CLIENT_ITEM_BYTES), None);
    let refused = store.create(too_big).await;
    assert!(matches!(refused, Err(StoreError::TooLarge { limit: MAX_CLIENT_ITEM_BYTES, .. })), "{refused:?}");
    assert_eq!(store.get(&run_key(1)).await.unwrap(), None);
    store
        .create(new_item(run_key(1), big(MAX_CLIENT_ITEM_BYTES - 100), None))
        .await
        .expect("just under the bound fits");
    let grown = update(1, 1, big(MAX_CLIENT_ITEM_BYTES));
    assert!(matches!(store.update(grown).await, Err(StoreError::TooLarge { .. })));
    assert_eq!(store.get(&run_key(1)).await.unwrap().unwrap().version, 1);
    // ... and the worker's (an event by nobody) to the item bound, the headroom above it.
    let mut by_worker = update(1, 1, big(MAX_CLIENT_ITEM_BYTES + WORKER_HEADROOM - 100));
    by_worker.event.by = None;
    assert_eq!(store.update(by_worker).await.expect("the worker's change fits its headroom").version, 2);
    let mut past = update(1, 2, big(MAX_ITEM_BYTES));
    past.event.by = None;
    let refused = store.update(past).await;
    assert!(matches!(refused, Err(StoreError::TooLarge { limit: MAX_ITEM_BYTES, .. })), "{refused:?}");
}

/// An item with pending work is in the work index with a lease of its write's time plus the
/// work lease, across tenants; each write renews it; a write without pending work, or a delete,
/// takes it out; only the kinds asked for are found.
async fn pending_work_is_in_the_work_index_by_lease_until_it_is_done(backend: Backend) {
    let Some(store) = store(backend).await else { return };
    let lease = u64::try_from(shared::store::work_lease().as_millis()).unwrap();
    let before = shared::store::now_ms();
    let mut pending = new_item(run_key(1), json!({"id": 1}), None);
    pending.work_pending = true;
    store.create(pending).await.unwrap();
    let mut elsewhere = new_item(tenant_key("b", uuid::Uuid::from_u128(7)), json!({"id": 7}), None);
    elsewhere.work_pending = true;
    store.create(elsewhere).await.unwrap();
    store.create(new_item(run_key(2), json!({"id": 2}), None)).await.unwrap();
    let kinds = [RUN, TENANT_RUN];
    // Not yet due; due once its lease has passed, with its version, oldest lease first.
    assert_eq!(store.overdue(&kinds, before, 10).await.unwrap(), Vec::new());
    let later = shared::store::now_ms() + lease + 1;
    let due = store.overdue(&kinds, later, 10).await.unwrap();
    let keys: Vec<(Key, u64)> = due.iter().map(|(_, c)| (c.key.clone(), c.version)).collect();
    assert_eq!(keys, vec![(run_key(1), 1), (tenant_key("b", uuid::Uuid::from_u128(7)), 1)]);
    assert!(due[0].0 <= due[1].0 && due[1].0 < later, "oldest lease first, each past: {due:?}");
    assert_eq!(store.overdue(&kinds, later, 1).await.unwrap().len(), 1, "at most the limit");
    assert_eq!(store.overdue(&[OTHER], later, 10).await.unwrap(), Vec::new(), "only the kinds asked for");
    // A write with pending work renews the lease; one without takes the item out.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let renewed = store.update(update(1, 1, json!({"id": 1, "step": 1}))).await.unwrap();
    assert_eq!(renewed.version, 2);
    assert_eq!(store.overdue(&[RUN], later, 10).await.unwrap(), Vec::new(), "renewed past the old lease");
    let later = shared::store::now_ms() + lease + 1;
    let due = store.overdue(&[RUN], later, 10).await.unwrap();
    assert_eq!(due.iter().map(|(_, c)| c.version).collect::<Vec<_>>(), vec![2], "the renewed lease, the new version");
    // The sweeper's back-off: a renewal at another version changes nothing; at the version, it
    // moves the lease on.
    store.renew_lease(&run_key(1), 1).await.unwrap();
    assert_eq!(store.overdue(&[RUN], later, 10).await.unwrap().len(), 1, "a stale renewal is nothing");
    tokio::time::sleep(Duration::from_millis(5)).await;
    store.renew_lease(&run_key(1), 2).await.unwrap();
    assert_eq!(store.overdue(&[RUN], later, 10).await.unwrap(), Vec::new(), "renewed past `later`");
    let later = shared::store::now_ms() + lease + 1;
    assert_eq!(store.overdue(&[RUN], later, 10).await.unwrap().len(), 1);
    let mut done = update(1, 2, json!({"id": 1, "done": true}));
    done.work_pending = false;
    store.update(done).await.unwrap();
    assert_eq!(store.overdue(&[RUN], later + lease, 10).await.unwrap(), Vec::new(), "done work leaves the index");
}

/// One transaction of creates and changes: it lands whole or not at all, and many items moving
/// between the same two groups move both counts once (DynamoDB takes each count item once).
async fn creates_and_changes_share_one_transaction(backend: Backend) {
    let Some(store) = store(backend).await else { return };
    let scope = home();
    for id in 1..=30 {
        store.create(item(id, "rate", Some("UNBILLED"))).await.unwrap();
    }
    store.create(item(40, "taken", None)).await.unwrap();
    let moved = |id: u64| {
        let mut change = update(id, 1, json!({"id": id, "name": "billed"}));
        (change.previous_groups, change.groups) = (vec![Some("UNBILLED".into())], vec![Some("BILLED".into())]);
        Write::Update(change)
    };
    // A create that collides spoils the whole transaction.
    let mut writes: Vec<Write> = (1..=30).map(moved).collect();
    writes.push(Write::Create(item(40, "again", None)));
    assert!(matches!(store.write(writes).await, Err(StoreError::Conflict)));
    assert_eq!(store.group_count(RUN, &scope, "UNBILLED").await.unwrap(), 30, "nothing moved");
    assert_eq!(store.count(RUN, &scope).await.unwrap(), 31);
    // An item named twice is refused before anything is written.
    let twice = vec![moved(1), moved(1)];
    assert!(matches!(store.write(twice).await, Err(StoreError::Internal(_))));
    let mut writes: Vec<Write> = (1..=30).map(moved).collect();
    writes.push(Write::Create(item(31, "bill", Some("BILLS"))));
    let saved = store.write(writes).await.unwrap();
    assert_eq!(saved.len(), 31);
    assert_eq!(saved[30].version, 1, "the create comes back in its place");
    assert_eq!(store.group_count(RUN, &scope, "UNBILLED").await.unwrap(), 0);
    assert_eq!(store.group_count(RUN, &scope, "BILLED").await.unwrap(), 30);
    assert_eq!(store.count(RUN, &scope).await.unwrap(), 32);
    let billed = store.page(RUN, &scope, &Page { group: Some("BILLED"), limit: 100, ..Page::default() }).await;
    assert_eq!(billed.unwrap().len(), 30);
    assert_eq!(store.events(&run_key(7)).await.unwrap().len(), 2, "each change writes its event");
}

on_both_stores!(
    creates_and_changes_share_one_transaction,
    ids_come_from_a_per_kind_counter_in_each_scope,
    create_then_get_returns_the_body_at_version_1,
    resource_fields_never_collide_with_store_attributes,
    updates_are_conditional_on_the_version_and_write_an_event,
    concurrent_updates_from_one_version_let_exactly_one_win,
    guards_refuse_writes_that_read_a_stale_group,
    group_pages_start_after_a_cursor_and_counts_follow_creates_and_deletes,
    idempotency_records_are_taken_once_and_expire,
    lists_page_sort_filter_and_count,
    counters_reserve_ranges,
    batch_writes_are_all_or_nothing,
    version_checks_tie_a_write_to_another_item,
    deletes_are_conditional_and_keep_the_trail,
    api_keys_are_found_by_hash_listed_per_tenant_and_revoked,
    no_write_spans_two_tenants,
    the_same_id_in_two_tenants_is_two_items_and_nothing_crosses_a_tenant,
    idempotency_replays_never_cross_a_tenant,
    resources_over_the_size_bound_are_refused_by_both_stores,
    pending_work_is_in_the_work_index_by_lease_until_it_is_done,
);
