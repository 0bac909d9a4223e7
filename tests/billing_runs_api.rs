//! Black-box tests of the billing-runs API over HTTP through the dev server, on the embedded store
//! and on DynamoDB Local: tenancy, create/GET/PUT/DELETE, PUT semantics in the contract's order,
//! locking, transitions, lists with opaque keys, and concurrent PUTs with one sys_version.

use billflow_tests::{on_both_stores, spawn_app, Backend, Reply, TestApp};
use serde_json::{json, Value};
use shared::domain::identity::Principal;

/// A caller of both tenants, with `billing:admin` when asked.
fn caller(tenants: &[&str], admin: bool) -> Principal {
    let mut scopes = vec!["billing:read".to_owned(), "billing:write".to_owned()];
    if admin {
        scopes.push("billing:admin".to_owned());
    }
    Principal { user_id: 7, tenants: tenants.iter().map(|t| t.to_string()).collect(), scopes }
}

async fn send(app: &TestApp, who: &Principal, method: &str, path: &str, body: Option<&Value>) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = app.http.request(method, format!("{}{path}", app.base)).bearer_auth(app.token_for(who));
    if let Some(body) = body {
        request = request.json(body);
    }
    app.send(request).await
}

fn new_run(name: &str) -> Value {
    json!({
        "business_unit_id": "bu-1", "name": name,
        "expiring_credit_card_reminder_options": {"reminders": [{"card_expiration_date_start": "2026-12-01", "card_expiration_date_end": "2026-12-31", "notice_id": "n-1"}]},
        "installment_schedule_cancellation_options": {"date_range_start": "2026-11-01", "date_range_end": "2026-11-30"},
        "installment_schedule_options": {"date_range_start": "2026-11-01", "date_range_end": "2026-11-30"},
        "installment_schedule_reminder_options": {},
        "statement_options": {"customer_type": "both"}
    })
}

fn assert_problem(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"), "{:?}", reply.body);
}

/// A PUT body: the run as read, with `changes`.
fn edited(run: &Value, changes: Value) -> Value {
    let mut body = run.clone();
    for (k, v) in changes.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn create(app: &TestApp, who: &Principal, tenant: &str, body: &Value) -> Value {
    let reply = send(app, who, "POST", &format!("/billingRuns/{tenant}"), Some(body)).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body
}

async fn create_get_put_and_delete(backend: Backend) {
    let Some(app) = spawn_app(backend, false).await else { return };
    let me = caller(&["acme"], false);
    let reply = send(&app, &me, "POST", "/billingRuns/acme", Some(&new_run("November"))).await;
    assert_eq!((reply.status, reply.header("etag")), (201, Some("\"1\"")), "{:?}", reply.body);
    let run = reply.body.clone();
    let id = run["id"].as_str().unwrap().to_owned();
    let path = format!("/billingRuns/acme/{id}");
    assert_eq!(reply.header("location"), Some(path.as_str()));
    assert_eq!(run.as_object().unwrap().len(), 47, "every field of the contract is present");
    assert_eq!(
        (&run["status"], &run["sys_created_by_id"], &run["error"]),
        (&json!("draft"), &json!("7"), &Value::Null)
    );

    let got = send(&app, &me, "GET", &path, None).await;
    assert_eq!((got.status, &got.body), (200, &run));
    let projected = send(&app, &me, "GET", &format!("{path}?fields=name,status"), None).await;
    assert_eq!(projected.body, json!({"id": id, "name": "November", "status": "draft"}));
    assert_problem(&send(&app, &me, "GET", &format!("{path}?fields=colour"), None).await, 400);

    // PUT: unchanged writes nothing; a change bumps sys_version and the ETag.
    let same = send(&app, &me, "PUT", &path, Some(&run)).await;
    assert_eq!((same.status, &same.body["sys_version"]), (200, &json!(1)));
    let renamed = send(&app, &me, "PUT", &path, Some(&edited(&run, json!({"name": "Renamed"})))).await;
    assert_eq!((renamed.status, &renamed.body["sys_version"], renamed.header("etag")), (200, &json!(2), Some("\"2\"")));
    assert_eq!(renamed.body["sys_created_at"], run["sys_created_at"], "server-owned fields are kept");
    let stale = send(&app, &me, "PUT", &path, Some(&edited(&run, json!({"name": "Stale"})))).await;
    assert_problem(&stale, 409);
    assert!(stale.body["detail"].as_str().unwrap().contains("sys_version"));
    let if_match = app.send(
        app.http
            .put(format!("{}{path}", app.base))
            .bearer_auth(app.token_for(&me))
            .header("if-match", "\"1\"")
            .json(&renamed.body),
    );
    assert_problem(&if_match.await, 412);
    let other_id = edited(&renamed.body, json!({"id": uuid::Uuid::new_v4().to_string()}));
    assert_problem(&send(&app, &me, "PUT", &path, Some(&other_id)).await, 400);
    let system = send(&app, &me, "PUT", &path, Some(&edited(&renamed.body, json!({"status": "completed"})))).await;
    assert_problem(&system, 400);
    assert_eq!(system.body["errors"][0]["pointer"], "/status");
    let scheduled = send(&app, &me, "PUT", &path, Some(&edited(&renamed.body, json!({"status": "scheduled"})))).await;
    assert_eq!(scheduled.body["errors"][0]["pointer"], "/scheduled_preprocessing_date", "scheduled needs its dates");

    // Transitions: draft -> scheduled -> cancelled (terminal), then delete.
    let dates = json!({"status": "scheduled", "scheduled_preprocessing_date": "2026-11-25", "scheduled_run_date": "2026-11-26T08:00:00Z"});
    let scheduled = send(&app, &me, "PUT", &path, Some(&edited(&renamed.body, dates))).await;
    assert_eq!((scheduled.status, &scheduled.body["scheduled_run_date"]), (200, &json!("2026-11-26T08:00:00Z")));
    assert_problem(&send(&app, &me, "DELETE", &path, None).await, 409);
    let cancelled = send(&app, &me, "PUT", &path, Some(&edited(&scheduled.body, json!({"status": "cancelled"})))).await;
    assert_eq!(cancelled.body["status"], "cancelled");
    let back = send(&app, &me, "PUT", &path, Some(&edited(&cancelled.body, json!({"status": "draft"})))).await;
    assert_problem(&back, 409);
    assert!(back.body["detail"].as_str().unwrap().contains("cancelled"), "{:?}", back.body);
    let content = send(&app, &me, "PUT", &path, Some(&edited(&cancelled.body, json!({"name": "Late"})))).await;
    assert_problem(&content, 409);
    assert_eq!(
        send(&app, &me, "PUT", &path, Some(&cancelled.body)).await.status,
        200,
        "unchanged is 200 even when cancelled"
    );
    assert_eq!(send(&app, &me, "DELETE", &path, None).await.status, 204);
    assert_problem(&send(&app, &me, "GET", &path, None).await, 404);
    app.stop().await;
}

async fn tenants_never_see_each_others_runs(backend: Backend) {
    let Some(app) = spawn_app(backend, false).await else { return };
    let both = caller(&["acme", "globex"], false);
    let acme = create(&app, &both, "acme", &new_run("Same name")).await;
    let globex = create(&app, &both, "globex", &new_run("Same name")).await;
    let (acme_id, globex_id) = (acme["id"].as_str().unwrap(), globex["id"].as_str().unwrap());
    // The other tenant's id under this tenant's path is 404, even for a caller of both.
    assert_problem(&send(&app, &both, "GET", &format!("/billingRuns/acme/{globex_id}"), None).await, 404);
    assert_problem(&send(&app, &both, "PUT", &format!("/billingRuns/acme/{globex_id}"), Some(&globex)).await, 404);
    assert_problem(&send(&app, &both, "DELETE", &format!("/billingRuns/acme/{globex_id}"), None).await, 404);
    for (tenant, id) in [("acme", acme_id), ("globex", globex_id)] {
        let list = send(&app, &both, "GET", &format!("/billingRuns/{tenant}"), None).await;
        assert_eq!((&list.body["Count"], &list.body["Items"][0]["id"]), (&json!(1), &json!(id)), "{tenant}");
    }
    // A caller of acme only: globex is 403, whatever the request.
    let acme_only = caller(&["acme"], false);
    assert_problem(&send(&app, &acme_only, "GET", "/billingRuns/globex", None).await, 403);
    assert_problem(&send(&app, &acme_only, "GET", &format!("/billingRuns/globex/{globex_id}"), None).await, 403);
    assert_problem(&send(&app, &acme_only, "POST", "/billingRuns/globex", Some(&new_run("x"))).await, 403);
    assert_problem(
        &send(&app, &acme_only, "PUT", &format!("/billingRuns/globex/{globex_id}"), Some(&json!({}))).await,
        403,
    );
    let reader = Principal { scopes: vec!["billing:read".into()], ..acme_only.clone() };
    assert_problem(&send(&app, &reader, "POST", "/billingRuns/acme", Some(&new_run("x"))).await, 403);
    let anonymous = app.send(app.http.get(format!("{}/billingRuns/acme", app.base))).await;
    assert_problem(&anonymous, 401);
    assert_problem(&send(&app, &acme_only, "GET", "/billingRuns/acme/not-a-uuid", None).await, 400);

    // Idempotency keys are scoped by tenant: the same key in two tenants makes two runs.
    let keyed = |tenant: &str| {
        app.http
            .post(format!("{}/billingRuns/{tenant}", app.base))
            .bearer_auth(app.token_for(&both))
            .header("idempotency-key", "nov-run")
            .json(&new_run("Keyed"))
    };
    let first = app.send(keyed("acme")).await;
    let replay = app.send(keyed("acme")).await;
    let other = app.send(keyed("globex")).await;
    assert_eq!((first.status, replay.status, other.status), (201, 201, 201));
    assert_eq!((replay.header("idempotency-replayed"), &replay.body["id"]), (Some("true"), &first.body["id"]));
    assert_ne!(other.body["id"], first.body["id"]);
    assert_eq!(other.header("idempotency-replayed"), None);
    app.stop().await;
}

async fn only_an_admin_locks_and_unlocks(backend: Backend) {
    let Some(app) = spawn_app(backend, false).await else { return };
    let (user, admin) = (caller(&["acme"], false), caller(&["acme"], true));
    let run = create(&app, &user, "acme", &new_run("Lockable")).await;
    let path = format!("/billingRuns/acme/{}", run["id"].as_str().unwrap());
    let ignored = send(&app, &user, "PUT", &path, Some(&edited(&run, json!({"sys_locked": true})))).await;
    assert_eq!(
        (ignored.status, &ignored.body["sys_locked"], &ignored.body["sys_version"]),
        (200, &json!(false), &json!(1))
    );
    let locked = send(&app, &admin, "PUT", &path, Some(&edited(&run, json!({"sys_locked": true})))).await;
    assert_eq!((locked.status, &locked.body["sys_locked"]), (200, &json!(true)));
    for who in [&user, &admin] {
        let refused = send(&app, who, "PUT", &path, Some(&edited(&locked.body, json!({"name": "x"})))).await;
        assert_problem(&refused, 409);
        assert!(refused.body["detail"].as_str().unwrap().contains("locked"));
        assert_problem(&send(&app, who, "PUT", &path, Some(&locked.body)).await, 409);
    }
    assert_problem(&send(&app, &user, "DELETE", &path, None).await, 409);
    let unlocked = send(
        &app,
        &admin,
        "PUT",
        &path,
        Some(&edited(&locked.body, json!({"sys_locked": false, "name": "Open again"}))),
    )
    .await;
    assert_eq!(
        (unlocked.status, &unlocked.body["sys_locked"], &unlocked.body["name"]),
        (200, &json!(false), &json!("Open again"))
    );
    assert_eq!(send(&app, &user, "DELETE", &path, None).await.status, 204);
    app.stop().await;
}

async fn lists_page_newest_first_with_opaque_keys(backend: Backend) {
    let Some(app) = spawn_app(backend, false).await else { return };
    let me = caller(&["acme", "globex"], false);
    let mut ids = Vec::new();
    for n in 0..5 {
        let mut body = new_run(&format!("Run {n}"));
        if n % 2 == 0 {
            body["recurring_billing_run_id"] = json!("monthly");
        }
        ids.push(create(&app, &me, "acme", &body).await["id"].as_str().unwrap().to_owned());
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    create(&app, &me, "globex", &new_run("Elsewhere")).await;
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    let page_ids = |body: &Value| {
        body["Items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };

    let mut seen = Vec::new();
    let mut path = "/billingRuns/acme?limit=2".to_owned();
    loop {
        let page = send(&app, &me, "GET", &path, None).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        assert_eq!(page.body["Count"].as_u64().unwrap() as usize, page.body["Items"].as_array().unwrap().len());
        seen.extend(page_ids(&page.body));
        match page.body["LastEvaluatedKey"].as_str() {
            Some(key) => path = format!("/billingRuns/acme?limit=2&exclusiveStartKey={key}"),
            None => break,
        }
    }
    assert_eq!(seen, newest_first, "three pages of 2, 2 and 1, newest first");
    let whole = send(&app, &me, "GET", "/billingRuns/acme?limit=5", None).await;
    assert_eq!(
        (page_ids(&whole.body), whole.body.get("LastEvaluatedKey")),
        (newest_first.clone(), None),
        "no key when nothing remains"
    );

    // Path segments are percent-decoded, as API Gateway decodes them.
    let mut spaced = new_run("Spaced");
    spaced["recurring_billing_run_id"] = json!("monthly plan");
    let spaced_id = create(&app, &me, "globex", &spaced).await["id"].clone();
    let decoded = send(&app, &me, "GET", "/billingRuns/globex/recurringBillingRun/monthly%20plan", None).await;
    assert_eq!((&decoded.body["Count"], &decoded.body["Items"][0]["id"]), (&json!(1), &spaced_id));
    let recurring = send(&app, &me, "GET", "/billingRuns/acme/recurringBillingRun/monthly?limit=2", None).await;
    assert_eq!(page_ids(&recurring.body), vec![ids[4].clone(), ids[2].clone()]);
    let recurring_key = recurring.body["LastEvaluatedKey"].as_str().unwrap().to_owned();
    let rest = send(
        &app,
        &me,
        "GET",
        &format!("/billingRuns/acme/recurringBillingRun/monthly?exclusiveStartKey={recurring_key}"),
        None,
    )
    .await;
    assert_eq!(page_ids(&rest.body), vec![ids[0].clone()]);

    // A key of another list, of another tenant, or changed in any way is 400.
    assert_problem(
        &send(&app, &me, "GET", &format!("/billingRuns/acme?exclusiveStartKey={recurring_key}"), None).await,
        400,
    );
    assert_problem(
        &send(&app, &me, "GET", &format!("/billingRuns/globex?exclusiveStartKey={recurring_key}"), None).await,
        400,
    );
    let mut tampered = recurring_key.clone();
    tampered.replace_range(0..2, if tampered.starts_with("7b") { "7c" } else { "7b" });
    assert_problem(
        &send(
            &app,
            &me,
            "GET",
            &format!("/billingRuns/acme/recurringBillingRun/monthly?exclusiveStartKey={tampered}"),
            None,
        )
        .await,
        400,
    );

    // Status filters, and bad parameters.
    let first = send(&app, &me, "GET", &format!("/billingRuns/acme/{}", ids[0]), None).await.body;
    let dates = json!({"status": "scheduled", "scheduled_preprocessing_date": "2026-11-25", "scheduled_run_date": "2026-11-26"});
    assert_eq!(
        send(&app, &me, "PUT", &format!("/billingRuns/acme/{}", ids[0]), Some(&edited(&first, dates))).await.status,
        200
    );
    let scheduled = send(&app, &me, "GET", "/billingRuns/acme?status=scheduled", None).await;
    assert_eq!(page_ids(&scheduled.body), vec![ids[0].clone()]);
    let both = send(&app, &me, "GET", "/billingRuns/acme?status=in:draft,scheduled", None).await;
    assert_eq!(both.body["Count"], 5);
    for bad in ["status=paused", "limit=0", "limit=1001", "limit=x", "colour=red"] {
        assert_problem(&send(&app, &me, "GET", &format!("/billingRuns/acme?{bad}"), None).await, 400);
    }
    app.stop().await;
}

async fn concurrent_puts_with_one_sys_version_let_exactly_one_win(backend: Backend) {
    let Some(app) = spawn_app(backend, false).await else { return };
    let me = caller(&["acme"], false);
    let run = create(&app, &me, "acme", &new_run("Contended")).await;
    let path = format!("/billingRuns/acme/{}", run["id"].as_str().unwrap());
    let puts = (0..10).map(|n| {
        let body = edited(&run, json!({"name": format!("Writer {n}"), "sys_version": 1}));
        let (app, me, path) = (&app, &me, &path);
        async move { send(app, me, "PUT", path, Some(&body)).await }
    });
    let replies = futures::future::join_all(puts).await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [vec![200], vec![409; 9]].concat(),
        "{:?}",
        replies.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    let winner = replies.iter().find(|r| r.status == 200).unwrap();
    let now = send(&app, &me, "GET", &path, None).await;
    assert_eq!((&now.body["sys_version"], &now.body["name"]), (&json!(2), &winner.body["name"]));
    app.stop().await;
}

async fn refusals_come_in_the_specs_order(backend: Backend) {
    let Some(app) = spawn_app(backend, false).await else { return };
    let me = caller(&["acme"], false);
    let run = create(&app, &me, "acme", &new_run("Ordered")).await;
    let path = format!("/billingRuns/acme/{}", run["id"].as_str().unwrap());
    let missing = format!("/billingRuns/acme/{}", uuid::Uuid::new_v4());
    // 403 before 404; 404 before 400; 400 before 412; 412 before 409.
    assert_problem(&send(&app, &caller(&["globex"], false), "PUT", &missing, Some(&json!({}))).await, 403);
    assert_problem(&send(&app, &me, "PUT", &missing, Some(&json!({"bad": true}))).await, 404);
    let put_if = |body: Value| {
        app.http
            .put(format!("{}{path}", app.base))
            .bearer_auth(app.token_for(&me))
            .header("if-match", "\"9\"")
            .json(&body)
    };
    assert_problem(&app.send(put_if(json!({"bad": true}))).await, 400);
    assert_problem(&app.send(put_if(edited(&run, json!({"sys_version": 5})))).await, 412);
    assert_problem(&send(&app, &me, "PUT", &path, Some(&edited(&run, json!({"sys_version": 5})))).await, 409);
    app.stop().await;
}

/// A bill of the caller of `key`, issued: one line of `quantity` x `unit_price` (exact, from
/// their text), of `account`, with `extra` members.
async fn issued_bill(
    app: &TestApp,
    key: &str,
    account: Value,
    (quantity, unit_price): (&str, &str),
    extra: Value,
) -> u64 {
    let mut body = json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2026-12-31T00:00:00Z",
        "issueDate": "2026-12-01T00:00:00Z", "status": "ISSUED", "account": account});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let line = format!(r#"[{{"catalogItemId": 1, "quantity": {quantity}, "unitPrice": {unit_price}}}]"#);
    body["lineItems"] = serde_json::from_str(&line).unwrap();
    let reply = app.send(app.keyed("POST", "/bills", key).json(&body)).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body["id"].as_u64().unwrap()
}

/// Polls the run until its status is `status` (the scheduler ticks every 200 ms in tests).
async fn wait_for_status(app: &TestApp, path: &str, status: &str) -> Value {
    for _ in 0..600 {
        let run = app.get(path).await.body;
        if run["status"] == status {
            return run;
        }
        assert!(!matches!(run["status"].as_str(), Some("error" | "timed out")), "{run}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{path} never became {status}");
}

fn row<'a>(run: &'a Value, action: &str) -> &'a Value {
    run["statistics"].as_array().unwrap().iter().find(|r| r["action"] == action).unwrap_or_else(|| panic!("{run}"))
}

/// The counts of a statistics row: total, pending, excluded, processing, successful, error.
fn counts(row: &Value) -> [u64; 6] {
    ["total", "pending", "excluded", "processing", "successful", "error"].map(|n| row[n].as_u64().unwrap())
}

/// The dev tenant's bills for a run that sends statements to contacts of business unit bu-1: which
/// accounts get a statement, which are excluded, and what the other tenant's and the closed
/// bills never add.
async fn seed_statement_bills(app: &TestApp) {
    let key = billflow_tests::API_KEY;
    let contact = |id: u64| json!({"id": id, "name": format!("Account {id}"), "type": "contact"});
    issued_bill(app, key, contact(1), ("3", "3.37"), json!({"businessUnitId": "bu-1"})).await; // 10.11
    issued_bill(app, key, contact(1), ("1", "0.2"), json!({"businessUnitId": "bu-1"})).await; // 0.20
    let organization = json!({"id": 2, "name": "Org", "type": "organization"});
    issued_bill(app, key, organization, ("1", "5.55"), json!({})).await; // customer_type leaves it out
    issued_bill(app, key, json!({"id": 3, "name": "Untyped"}), ("1", "7.77"), json!({})).await;
    let archived = issued_bill(app, key, json!({"id": 3, "name": "Untyped"}), ("1", "100"), json!({})).await;
    assert_eq!(app.send(app.keyed("DELETE", &format!("/bills/{archived}"), key)).await.status, 200);
    let draft = json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2026-12-31T00:00:00Z", "account": {"id": 3, "name": "Untyped"},
        "lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": 50}]});
    assert_eq!(app.send(app.keyed("POST", "/bills", key).json(&draft)).await.status, 201);
    issued_bill(app, key, contact(4), ("1", "9.99"), json!({"businessUnitId": "bu-9"})).await; // its unit is left out
    let other = Principal { user_id: 7, tenants: vec!["other".into()], scopes: vec!["billing:write".into()] };
    shared::dev::seed_api_key(&app.store, "test-key-of-other", &other).await.unwrap();
    issued_bill(app, "test-key-of-other", contact(1), ("1", "999.99"), json!({"businessUnitId": "bu-1"})).await;
}

/// A run scheduled in the past preprocesses and, scheduled for execution, runs to completed on
/// the scheduler's own ticks: statistics per action, the targets by account with statements
/// exact to the cent, none with another tenant's bills, and an event for every status change.
async fn a_scheduled_run_preprocesses_and_runs_into_exact_statements(backend: Backend) {
    let Some(app) = spawn_app(backend, true).await else { return };
    seed_statement_bills(&app).await;
    let who = caller(&["dev"], false);
    let mut body = new_run("December statements");
    body["status"] = json!("scheduled");
    body["send_statements"] = json!(true);
    body["process_installment_schedules"] = json!(true);
    body["scheduled_preprocessing_date"] = json!("2026-01-01");
    body["scheduled_run_date"] = json!("2026-01-02T00:00:00Z");
    body["statement_options"] =
        json!({"customer_type": "contact", "business_unit_restriction": "include", "business_unit_ids": ["bu-1"]});
    let id = create(&app, &who, "dev", &body).await["id"].as_str().unwrap().to_owned();
    let path = format!("/billingRuns/dev/{id}");
    let ready = wait_for_status(&app, &path, "ready for execution").await;
    assert_eq!(counts(row(&ready, "send_statements")), [4, 2, 2, 0, 0, 0], "{ready}");
    assert_eq!(counts(row(&ready, "process_installment_schedules")), [0; 6], "no installment schedules: no targets");
    assert!(ready["preprocessing_date"].is_string() && ready["last_refresh_date"].is_string());
    let targets = send(&app, &who, "GET", &format!("{path}/actions"), None).await.body;
    let shown: Vec<(u64, &str)> = targets["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["target"]["id"].as_u64().unwrap(), t["status"].as_str().unwrap()))
        .collect();
    assert_eq!(shown, vec![(1, "pending"), (2, "excluded"), (3, "pending"), (4, "excluded")], "{targets}");

    let moved =
        send(&app, &who, "PUT", &path, Some(&edited(&ready, json!({"status": "scheduled for execution"})))).await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    let done = wait_for_status(&app, &path, "completed").await;
    assert_eq!(counts(row(&done, "send_statements")), [4, 0, 2, 0, 2, 0], "{done}");
    assert!(done["run_date"].is_string());
    let completed = send(&app, &who, "GET", &format!("{path}/actions?status=completed"), None).await.body;
    let statements: Vec<(u64, String, Vec<String>)> = completed["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let lines = t["statement"]["bills"].as_array().unwrap().iter().map(|b| b["balance"].to_string()).collect();
            (t["target"]["id"].as_u64().unwrap(), t["statement"]["total_balance"].to_string(), lines)
        })
        .collect();
    assert_eq!(
        statements,
        vec![(1, "10.31".into(), vec!["10.11".into(), "0.2".into()]), (3, "7.77".into(), vec!["7.77".into()])]
    );
    let first = send(&app, &who, "GET", &format!("{path}/actions?limit=1"), None).await.body;
    assert_eq!(first["Count"], 1);
    let key = first["LastEvaluatedKey"].as_str().unwrap();
    let rest = send(&app, &who, "GET", &format!("{path}/actions?limit=5&exclusiveStartKey={key}"), None).await.body;
    assert_eq!((rest["Count"].as_u64(), rest.get("LastEvaluatedKey")), (Some(3), None));
    let events = app.get(&format!("/events?type=billing_run.status_changed&resource=billing_run:{id}")).await.body;
    let moves: Vec<&str> = events["Items"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| e["data"]["object"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        moves,
        ["preprocessing", "ready for execution", "scheduled for execution", "running", "completed"],
        "{events}"
    );
    app.stop().await;
}

/// The actions list is the path tenant's: another tenant's run is 404 even for a caller of both,
/// a reader may list, and bad parameters are 400.
async fn actions_are_the_path_tenants_only(backend: Backend) {
    let Some(app) = spawn_app(backend, true).await else { return };
    let both = caller(&["dev", "other"], false);
    let id = create(&app, &both, "dev", &new_run("Mine")).await["id"].as_str().unwrap().to_owned();
    let empty = send(&app, &both, "GET", &format!("/billingRuns/dev/{id}/actions"), None).await;
    assert_eq!((empty.status, empty.body["Count"].as_u64()), (200, Some(0)), "never preprocessed: no targets");
    assert_problem(&send(&app, &both, "GET", &format!("/billingRuns/other/{id}/actions"), None).await, 404);
    assert_problem(
        &send(&app, &caller(&["other"], false), "GET", &format!("/billingRuns/dev/{id}/actions"), None).await,
        403,
    );
    assert_problem(
        &send(&app, &both, "GET", &format!("/billingRuns/dev/{id}/actions?status=running"), None).await,
        400,
    );
    assert_problem(&send(&app, &both, "GET", "/billingRuns/dev/not-a-uuid/actions", None).await, 400);
    let reader = Principal { user_id: 2, tenants: vec!["dev".into()], scopes: vec!["billing:read".into()] };
    assert_eq!(send(&app, &reader, "GET", &format!("/billingRuns/dev/{id}/actions"), None).await.status, 200);
    app.stop().await;
}

on_both_stores!(
    a_scheduled_run_preprocesses_and_runs_into_exact_statements,
    actions_are_the_path_tenants_only,
    create_get_put_and_delete,
    tenants_never_see_each_others_runs,
    only_an_admin_locks_and_unlocks,
    lists_page_newest_first_with_opaque_keys,
    concurrent_puts_with_one_sys_version_let_exactly_one_win,
    refusals_come_in_the_specs_order,
);
