//! Black-box tests of the bills API over HTTP through the dev server, on the embedded store and on
//! DynamoDB Local: x-api-key auth, create, the PATCH rules, delete and archive, lists, and bills
//! invoiced by a bill run of 250 bills through every stage.

use std::time::Instant;

use billflow_tests::{on_both_stores, spawn_app, spawn_app_with, Backend, Reply, TestApp, API_KEY, READ_ONLY_API_KEY};
use serde_json::{json, Value};
use shared::store::MAX_CLIENT_ITEM_BYTES;

async fn send(app: &TestApp, method: &str, path: &str, body: Option<&Value>) -> Reply {
    let mut request = app.keyed(method, path, API_KEY);
    if let Some(body) = body {
        request = request.json(body);
    }
    app.send(request).await
}

fn line_items_bill() -> Value {
    json!({
        "calculationMethod": "LINE_ITEMS",
        "dueDate": "2024-04-30T00:00:00Z",
        "description": "March services",
        "account": {"id": 42, "name": "Acme"},
        "lineItems": [
            {"catalogItemId": 1, "quantity": 3, "unitPrice": 19.99, "description": "widgets"},
            {"catalogItemId": 2, "quantity": 1, "unitPrice": -5, "description": "loyalty discount"}
        ]
    })
}

fn percentage_bill() -> Value {
    json!({"calculationMethod": "PERCENTAGE", "dueDate": "2024-04-30T00:00:00Z", "percentage": 30, "baseAmount": 1000.05})
}

fn assert_problem(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
}

fn assert_rule(reply: &Reply, rule: u8) {
    assert_problem(reply, 400);
    let detail = reply.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(&format!("rule {rule}:")), "expected rule {rule}: {detail}");
}

async fn bills_are_created_read_and_listed(backend: Backend) {
    let Some(app) = spawn_app(backend, true).await else { return };
    let created = send(&app, "POST", "/bills", Some(&line_items_bill())).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.header("location"), Some("/bills/1"));
    assert_eq!(created.header("etag"), Some("\"1\""));
    let bill = &created.body;
    assert_eq!((bill["id"].as_u64(), bill["billNumber"].as_u64()), (Some(1), Some(1)));
    assert_eq!(
        (bill["status"].as_str(), &bill["amount"], &bill["amountPaid"]),
        (Some("DRAFT"), &json!(54.97), &json!(0))
    );
    assert_eq!(bill["lineItems"][0]["amount"], json!(59.97));
    assert_eq!(
        bill["lineItems"].as_array().unwrap().iter().map(|l| l["id"].as_u64().unwrap()).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!((bill["issueDate"].clone(), bill["isArchived"].clone()), (Value::Null, json!(false)));
    assert!(bill["createdAt"].as_str().unwrap().ends_with('Z'));

    let pct = send(&app, "POST", "/bills", Some(&percentage_bill())).await;
    assert_eq!((pct.status, &pct.body["amount"], &pct.body["lineItems"]), (201, &json!(300.02), &json!([])));
    assert_eq!(pct.body["billNumber"], 2);

    let got = send(&app, "GET", "/bills/1", None).await;
    assert_eq!((got.status, &got.body), (200, bill));
    let listed = send(&app, "GET", "/bills", None).await;
    assert_eq!((listed.status, listed.header("x-total-count")), (200, Some("2")));
    let read_only = app.send(app.keyed("GET", "/bills/1", READ_ONLY_API_KEY)).await;
    assert_eq!(read_only.status, 200);

    // Idempotent creates: a replay returns the same bill and creates nothing.
    let keyed = || app.keyed("POST", "/bills", API_KEY).header("idempotency-key", "b-1").json(&percentage_bill());
    let first = app.send(keyed()).await;
    let again = app.send(keyed()).await;
    assert_eq!((first.status, again.status, &again.body), (201, 201, &first.body));
    assert_eq!(again.header("idempotency-replayed"), Some("true"));
    assert_eq!(send(&app, "GET", "/bills", None).await.header("x-total-count"), Some("3"));
    app.stop().await;
}

async fn bills_need_an_api_key(backend: Backend) {
    let Some(app) = spawn_app(backend, true).await else { return };
    let no_key = app.send(app.http.get(format!("{}/bills", app.base))).await;
    assert_problem(&no_key, 401);
    let unknown = app.send(app.keyed("GET", "/bills", "not-a-key")).await;
    assert_problem(&unknown, 401);
    let token_only = app.send(app.request("GET", "/bills")).await;
    assert_problem(&token_only, 401);
    let reader = app.send(app.keyed("POST", "/bills", READ_ONLY_API_KEY).json(&line_items_bill())).await;
    assert_problem(&reader, 403);
    // And the key is no token: bill runs still need the bearer token.
    let runs = app.send(app.http.get(format!("{}/bill-runs", app.base)).header("x-api-key", API_KEY)).await;
    assert_problem(&runs, 401);
    app.stop().await;
}

async fn create_refuses_bad_bills(backend: Backend) {
    let Some(app) = spawn_app(backend, true).await else { return };
    for (body, pointer) in [
        (json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-30T00:00:00Z"}), "/lineItems"),
        (
            json!({"calculationMethod": "PERCENTAGE", "dueDate": "2024-04-30T00:00:00Z", "percentage": 30}),
            "/baseAmount",
        ),
        (json!({"calculationMethod": "LINE_ITEMS", "dueDate": "soon", "lineItems": []}), "/dueDate"),
        (
            json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-30T00:00:00Z", "lineItems": [{"catalogItemId": 1, "quantity": -1, "unitPrice": 1}]}),
            "/lineItems/0/quantity",
        ),
        (json!({"id": 5}), "/id"),
    ] {
        let reply = send(&app, "POST", "/bills", Some(&body)).await;
        assert_problem(&reply, 400);
        let pointers: Vec<&str> =
            reply.body["errors"].as_array().unwrap().iter().filter_map(|e| e["pointer"].as_str()).collect();
        assert!(pointers.contains(&pointer), "{body}: {pointers:?}");
    }
    let text = app.send(app.keyed("POST", "/bills", API_KEY).header("content-type", "text/plain").body("{}")).await;
    assert_problem(&text, 415);
    assert_eq!(send(&app, "GET", "/bills", None).await.header("x-total-count"), Some("0"));
    app.stop().await;
}

async fn patches_follow_the_rules(backend: Backend) {
    let Some(app) = spawn_app(backend, true).await else { return };
    assert_eq!(send(&app, "POST", "/bills", Some(&line_items_bill())).await.status, 201);
    assert_eq!(send(&app, "POST", "/bills", Some(&percentage_bill())).await.status, 201);
    let patch = |id: u64, body: Value| {
        let app = &app;
        async move { send(app, "PATCH", &format!("/bills/{id}"), Some(&body)).await }
    };
    // The combinations the contract names.
    assert_rule(&patch(1, json!({"issueDate": "2024-03-31T00:00:00Z"})).await, 4);
    assert_rule(&patch(1, json!({"status": "ISSUED"})).await, 5);
    assert_rule(&patch(1, json!({"status": "DRAFT", "issueDate": "2024-03-31T00:00:00Z"})).await, 4);
    assert_rule(&patch(1, json!({"percentage": 10})).await, 3);
    assert_rule(&patch(2, json!({"lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": 1}]})).await, 2);
    assert_rule(&patch(2, json!({"calculationMethod": "LINE_ITEMS"})).await, 1);
    assert_rule(&patch(2, json!({"percentage": 100.5})).await, 3);
    assert_rule(&patch(1, json!({"issueDate": "2024-05-01T00:00:00Z", "status": "ISSUED"})).await, 6);
    let unknown = patch(1, json!({"amount": 5, "colour": "red"})).await;
    assert_problem(&unknown, 400);
    assert_eq!(unknown.body["errors"].as_array().unwrap().len(), 2);

    let cleared = patch(1, json!({"description": null})).await;
    assert_eq!((cleared.status, &cleared.body["description"]), (200, &Value::Null));
    assert_eq!(cleared.header("etag"), Some("\"2\""));
    let same = patch(1, json!({"description": null})).await;
    assert_eq!((same.status, same.header("etag")), (200, Some("\"2\"")), "nothing changed, nothing written");

    let lines = patch(
        1,
        json!({"lineItems": [
            {"id": 1, "catalogItemId": 1, "quantity": 1, "unitPrice": 19.99},
            {"catalogItemId": 9, "quantity": 2, "unitPrice": 0.005}
        ]}),
    )
    .await;
    assert_eq!(lines.status, 200, "{:?}", lines.body);
    assert_eq!(lines.body["amount"], json!(20), "19.99 + 2 x 0.005 (0.01 to the cent) is exactly 20");
    let line_ids: Vec<u64> =
        lines.body["lineItems"].as_array().unwrap().iter().map(|l| l["id"].as_u64().unwrap()).collect();
    assert_eq!(line_ids[0], 1);
    assert!(line_ids[1] > 2, "a new line gets a fresh id, got {line_ids:?}");

    let switched = patch(2, json!({"calculationMethod": "LINE_ITEMS", "lineItems": [{"catalogItemId": 3, "quantity": 2, "unitPrice": 7.5}]})).await;
    assert_eq!(
        (switched.status, &switched.body["percentage"], &switched.body["amount"]),
        (200, &Value::Null, &json!(15))
    );

    let issued = patch(1, json!({"issueDate": "2024-03-31T00:00:00Z", "status": "ISSUED"})).await;
    assert_eq!((issued.status, issued.body["status"].as_str()), (200, Some("ISSUED")));
    assert_rule(&patch(1, json!({"lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": 1}]})).await, 8);
    let note = patch(1, json!({"description": "paid by card", "dueDate": "2024-05-15T00:00:00+02:00"})).await;
    assert_eq!((note.status, &note.body["dueDate"]), (200, &json!("2024-05-14T22:00:00Z")));
    let redated = patch(1, json!({"issueDate": "2024-04-01T00:00:00Z", "status": "ISSUED"})).await;
    assert_eq!(redated.status, 200, "ISSUED again corrects the date while nothing is paid");

    let stale = app
        .send(app.keyed("PATCH", "/bills/1", API_KEY).header("if-match", "\"1\"").json(&json!({"description": "x"})))
        .await;
    assert_problem(&stale, 412);
    let patch_text =
        app.send(app.keyed("PATCH", "/bills/1", API_KEY).header("content-type", "text/plain").body("{}")).await;
    assert_problem(&patch_text, 415);
    assert_problem(&patch(1, json!([{"op": "replace"}])).await, 400);
    assert_problem(&patch(99, json!({"description": "x"})).await, 404);
    assert_problem(&send(&app, "PATCH", "/bills/abc", Some(&json!({}))).await, 400);
    app.stop().await;
}

async fn deletes_remove_drafts_and_archive_the_rest(backend: Backend) {
    let Some(app) = spawn_app(backend, true).await else { return };
    for _ in 0..3 {
        assert_eq!(send(&app, "POST", "/bills", Some(&line_items_bill())).await.status, 201);
    }
    let issue = json!({"issueDate": "2024-03-31T00:00:00Z", "status": "ISSUED"});
    assert_eq!(send(&app, "PATCH", "/bills/2", Some(&issue)).await.status, 200);

    let deleted = send(&app, "DELETE", "/bills/1", None).await;
    assert_eq!(deleted.status, 204);
    assert_problem(&send(&app, "GET", "/bills/1", None).await, 404);
    assert_problem(&send(&app, "DELETE", "/bills/1", None).await, 404);
    let archived = send(&app, "DELETE", "/bills/2", None).await;
    assert_eq!((archived.status, &archived.body["isArchived"]), (200, &json!(true)));
    let again = send(&app, "DELETE", "/bills/2", None).await;
    assert_eq!((again.status, again.header("etag")), (200, archived.header("etag")), "archiving twice writes once");
    assert_rule(&send(&app, "PATCH", "/bills/2", Some(&json!({"description": "late"}))).await, 8);

    let visible = send(&app, "GET", "/bills", None).await;
    let ids: Vec<u64> = visible.body.as_array().unwrap().iter().map(|b| b["id"].as_u64().unwrap()).collect();
    assert_eq!((ids, visible.header("x-total-count")), (vec![3], Some("1")));
    let all = send(&app, "GET", "/bills?includeArchived=true", None).await;
    assert_eq!(all.header("x-total-count"), Some("2"));
    let forbidden = app.send(app.keyed("DELETE", "/bills/3", READ_ONLY_API_KEY)).await;
    assert_problem(&forbidden, 403);
    app.stop().await;
}

async fn lists_filter_and_page(backend: Backend) {
    let Some(app) = spawn_app(backend, true).await else { return };
    let mut other = line_items_bill();
    other["account"] = json!({"id": 7, "name": "Other"});
    for body in [line_items_bill(), percentage_bill(), other.clone(), line_items_bill(), other] {
        assert_eq!(send(&app, "POST", "/bills", Some(&body)).await.status, 201);
    }
    let issue = json!({"issueDate": "2024-03-31T00:00:00Z", "status": "ISSUED"});
    assert_eq!(send(&app, "PATCH", "/bills/4", Some(&issue)).await.status, 200);
    let ids = |reply: &Reply| -> Vec<u64> {
        reply.body.as_array().unwrap().iter().map(|b| b["id"].as_u64().unwrap()).collect()
    };
    let by_account = send(&app, "GET", "/bills?accountId=7", None).await;
    assert_eq!((ids(&by_account), by_account.header("x-total-count")), (vec![3, 5], Some("2")));
    assert_eq!(ids(&send(&app, "GET", "/bills?calculationMethod=PERCENTAGE", None).await), vec![2]);
    assert_eq!(ids(&send(&app, "GET", "/bills?status=ISSUED", None).await), vec![4]);
    assert_eq!(ids(&send(&app, "GET", "/bills?status=in:DRAFT&accountId=42&sort=id:desc", None).await), vec![1]);
    let page = send(&app, "GET", "/bills?page=2&pageSize=2", None).await;
    assert_eq!((ids(&page), page.header("x-total-count")), (vec![3, 4], Some("5")));
    assert_eq!(ids(&send(&app, "GET", "/bills?billRunId=1", None).await), Vec::<u64>::new());
    for bad in ["status=LOST", "accountId=x", "includeArchived=maybe", "pageSize=0", "colour=red"] {
        assert_problem(&send(&app, "GET", &format!("/bills?{bad}"), None).await, 400);
    }
    app.stop().await;
}

async fn bills_join_open_runs_only(backend: Backend) {
    let Some(app) = spawn_app(backend, false).await else { return };
    let run = json!({"name": "March", "billingCycleId": 1, "periodStartDate": "2024-03-01", "periodEndDate": "2024-03-31", "invoiceDate": "2024-03-31"});
    assert_eq!(app.post("/bill-runs", &run).await.status, 201);
    assert_eq!(app.post("/adhoc-bill-runs", &json!({"name": "Extra", "invoiceDate": "2024-03-31"})).await.status, 201);
    let mut in_run = line_items_bill();
    in_run["billRunId"] = json!(1);
    let joined = send(&app, "POST", "/bills", Some(&in_run)).await;
    assert_eq!((joined.status, &joined.body["billRunKind"]), (201, &json!("REGULAR")));
    in_run["billRunKind"] = json!("ADHOC");
    assert_eq!(send(&app, "POST", "/bills", Some(&in_run)).await.status, 201);
    in_run["billRunId"] = json!(9);
    assert_problem(&send(&app, "POST", "/bills", Some(&in_run)).await, 409);
    let close = json!([{"op": "replace", "path": "/billRunStatus", "value": "CLOSED"}, {"op": "replace", "path": "/summaryStatus", "value": "REPORTING"}]);
    assert_eq!(app.patch("/bill-runs/1", &close).await.status, 200);
    in_run["billRunId"] = json!(1);
    in_run["billRunKind"] = json!("REGULAR");
    let late = send(&app, "POST", "/bills", Some(&in_run)).await;
    assert_problem(&late, 409);
    assert!(late.body["detail"].as_str().unwrap().contains("CLOSED"));
    assert_eq!(send(&app, "GET", "/bills?billRunId=1", None).await.header("x-total-count"), Some("2"));
    app.stop().await;
}

/// Requests a stage and polls the run until it is done, noting every percentage seen strictly
/// between 0 and 100.
async fn run_stage(app: &TestApp, stage: &'static str, ops: Value, seen: &mut Vec<(&'static str, u64)>) -> Value {
    let reply = app.patch("/bill-runs/1", &ops).await;
    assert_eq!(reply.status, 200, "{stage}: {:?}", reply.body);
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let now = app.get("/bill-runs/1").await.body;
        let pct = now["summaryStatusPercentage"].as_u64().unwrap();
        if now["summaryStatus"] == stage && pct > 0 && pct < 100 {
            seen.push((stage, pct));
        }
        if now["summaryStatus"] != stage || pct == 100 {
            return now;
        }
        assert!(Instant::now() < deadline, "{stage} never finished");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// 250 bills through every stage of their run. Prints how long the run took to finalise.
async fn a_run_of_250_bills_goes_all_the_way(backend: Backend) {
    let Some(app) = spawn_app_with(backend, true, 5).await else { return };
    let run = json!({"name": "Big run", "billingCycleId": 1, "periodStartDate": "2024-03-01", "periodEndDate": "2024-03-31", "invoiceDate": "2024-03-31"});
    assert_eq!(app.post("/bill-runs", &run).await.status, 201);
    let mut expected_revenue = rust_decimal::Decimal::ZERO;
    let bodies: Vec<Value> = (1..=250u64)
        .map(|n| {
            let price = format!("{}.{:02}", n, n % 100);
            expected_revenue += price.parse::<rust_decimal::Decimal>().unwrap();
            json!({
                "calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-30T00:00:00Z", "billRunId": 1,
                "account": {"id": n, "name": format!("Customer {n}")},
                "lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": price.parse::<f64>().unwrap()}]
            })
        })
        .collect();
    for chunk in bodies.chunks(25) {
        let replies = futures::future::join_all(chunk.iter().map(|b| send(&app, "POST", "/bills", Some(b)))).await;
        assert!(replies.iter().all(|r| r.status == 201), "every bill is created");
    }
    let pct_bill = json!({"calculationMethod": "PERCENTAGE", "dueDate": "2024-04-30T00:00:00Z", "percentage": 50, "baseAmount": 10, "billRunId": 1});
    assert_eq!(send(&app, "POST", "/bills", Some(&pct_bill)).await.status, 201);
    expected_revenue += rust_decimal::Decimal::from(5);

    let started = Instant::now();
    let mut seen_between = Vec::new();
    let close = json!([{"op": "replace", "path": "/billRunStatus", "value": "CLOSED"}, {"op": "replace", "path": "/summaryStatus", "value": "REPORTING"}]);
    let reported = run_stage(&app, "REPORTING", close, &mut seen_between).await;
    let revenue_major = expected_revenue.floor().to_string().parse::<i64>().unwrap();
    assert_eq!(reported["revenueInMajorCurrency"], json!(revenue_major));
    assert_eq!((&reported["maxInvoiceValue"], &reported["maxInvoiceCustomerId"]), (&json!(250.5), &json!(250)));
    run_stage(
        &app,
        "DRAFT_INVOICES",
        json!([{"op": "replace", "path": "/summaryStatus", "value": "DRAFT_INVOICES"}]),
        &mut seen_between,
    )
    .await;
    run_stage(
        &app,
        "FULL_INVOICES",
        json!([{"op": "replace", "path": "/summaryStatus", "value": "FULL_INVOICES"}]),
        &mut seen_between,
    )
    .await;
    let issued = send(&app, "GET", "/bills?billRunId=1&status=ISSUED&pageSize=1000", None).await;
    assert_eq!(issued.header("x-total-count"), Some("250"), "every LINE_ITEMS bill is issued");
    assert!(issued.body.as_array().unwrap().iter().all(|b| b["issueDate"] == "2024-03-31T00:00:00Z"));
    let drafts = send(&app, "GET", "/bills?billRunId=1&status=DRAFT", None).await;
    assert_eq!(drafts.header("x-total-count"), Some("1"), "the PERCENTAGE bill stays a draft");
    run_stage(
        &app,
        "DISTRIBUTION",
        json!([{"op": "replace", "path": "/summaryStatus", "value": "DISTRIBUTION"}]),
        &mut seen_between,
    )
    .await;
    let finalized = app.wait_for("/bill-runs/1", |r| r["billRunStatus"] == "FINALIZED").await;
    let elapsed = started.elapsed();
    assert_eq!(finalized["summaryStatus"], "FINISHED");
    seen_between.dedup();
    assert!(!seen_between.is_empty(), "the percentage was seen strictly between 0 and 100");
    assert!(seen_between.iter().any(|(s, _)| *s == "REPORTING"), "{seen_between:?}");
    eprintln!(
        "{backend:?}: a run of 251 bills went from close to FINALIZED in {} ms (worker step delay 5 ms); progress seen: {seen_between:?}",
        elapsed.as_millis()
    );

    // Frozen: the run's bills change not at all.
    assert_rule(&send(&app, "PATCH", "/bills/1", Some(&json!({"description": "late"}))).await, 8);
    assert_problem(&send(&app, "DELETE", "/bills/251", None).await, 409);
    let untouched = send(&app, "GET", "/bills/251", None).await;
    assert_eq!(untouched.body["status"], "DRAFT");
    app.stop().await;
}

/// A DRAFT bill whose stored form is exactly the client bound joins a run: FULL_INVOICES issues
/// it (the worker's change fits its headroom, where with no headroom it would pass the bound and
/// stick the stage) with the run's other bills, and the run reaches FINALIZED.
async fn a_bill_at_the_size_bound_is_issued_by_its_run(backend: Backend) {
    let Some(app) = spawn_app_with(backend, true, 0).await else { return };
    let run = json!({"name": "Heavy run", "billingCycleId": 1, "periodStartDate": "2024-03-01", "periodEndDate": "2024-03-31", "invoiceDate": "2024-03-31"});
    assert_eq!(app.post("/bill-runs", &run).await.status, 201);
    // The account's name is bounded only by the resource: one character of it is one byte.
    let bill = |name_len: usize, run: Option<u64>| {
        json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-30T00:00:00Z", "billRunId": run,
            "account": {"id": 7, "name": "a".repeat(name_len)},
            "lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": 5}]})
    };
    let probe = send(&app, "POST", "/bills", Some(&bill(1, None))).await;
    assert_eq!(probe.status, 201);
    assert_eq!(send(&app, "DELETE", &format!("/bills/{}", probe.body["id"]), None).await.status, 204);
    // From a few bytes over the bound down (the timestamps' digits vary), to the first that fits.
    let mut name_len = 1 + MAX_CLIENT_ITEM_BYTES - probe.body.to_string().len() + 24;
    let heavy = loop {
        let reply = send(&app, "POST", "/bills", Some(&bill(name_len, Some(1)))).await;
        if reply.status == 201 {
            break reply.body;
        }
        assert_problem(&reply, 413);
        name_len -= 1;
    };
    let size = heavy.to_string().len();
    assert!(size <= MAX_CLIENT_ITEM_BYTES && size + 8 > MAX_CLIENT_ITEM_BYTES, "at the client bound: {size}");
    for _ in 0..3 {
        assert_eq!(send(&app, "POST", "/bills", Some(&bill(1, Some(1)))).await.status, 201);
    }
    let mut seen = Vec::new();
    let close = json!([{"op": "replace", "path": "/billRunStatus", "value": "CLOSED"}, {"op": "replace", "path": "/summaryStatus", "value": "REPORTING"}]);
    run_stage(&app, "REPORTING", close, &mut seen).await;
    for stage in ["DRAFT_INVOICES", "FULL_INVOICES"] {
        run_stage(&app, stage, json!([{"op": "replace", "path": "/summaryStatus", "value": stage}]), &mut seen).await;
    }
    // Issued, the bill is past the client bound, in the worker's headroom: a client may still
    // change it (an ISSUED bill's dueDate), but not grow it further.
    let path = format!("/bills/{}", heavy["id"]);
    let later = send(&app, "PATCH", &path, Some(&json!({"dueDate": "2024-05-31T00:00:00Z"}))).await;
    assert_eq!(later.status, 200, "{:?}", later.body);
    assert!(later.body.to_string().len() > MAX_CLIENT_ITEM_BYTES);
    assert_problem(&send(&app, "PATCH", &path, Some(&json!({"description": "d".repeat(200)}))).await, 413);
    let stage = "DISTRIBUTION";
    run_stage(&app, stage, json!([{"op": "replace", "path": "/summaryStatus", "value": stage}]), &mut seen).await;
    let finalized = app.wait_for("/bill-runs/1", |r| r["billRunStatus"] == "FINALIZED").await;
    assert_eq!(finalized["revenueInMajorCurrency"], json!(20));
    let issued = send(&app, "GET", &format!("/bills/{}", heavy["id"]), None).await;
    assert_eq!((&issued.body["status"], &issued.body["issueDate"]), (&json!("ISSUED"), &json!("2024-03-31T00:00:00Z")));
    assert!(issued.body.to_string().len() > MAX_CLIENT_ITEM_BYTES, "the worker's change took some headroom");
    let all = send(&app, "GET", "/bills?billRunId=1&status=ISSUED", None).await;
    assert_eq!(all.header("x-total-count"), Some("4"), "every bill of the run is issued");
    app.stop().await;
}

/// A request with a raw JSON text body (numbers exactly as written, not through an f64).
async fn send_text(app: &TestApp, method: &str, path: &str, text: String) -> Reply {
    app.send(app.keyed(method, path, API_KEY).header("content-type", "application/json").body(text)).await
}

fn lines_bill(lines: &[String]) -> String {
    format!(
        r#"{{"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-30T00:00:00Z", "billRunId": 1, "lineItems": [{}]}}"#,
        lines.join(",")
    )
}

fn line(quantity: &str, price: &str) -> String {
    format!(r#"{{"catalogItemId": 1, "quantity": {quantity}, "unitPrice": {price}}}"#)
}

/// The inputs that once crashed a function or the worker, or that the two stores answered
/// differently, answer alike on both: 400 naming the field, 413 for a resource over the size bound,
/// exact money, and a run of the largest bills still finalises.
async fn extreme_input_is_refused_alike_and_money_is_exact(backend: Backend) {
    let Some(app) = spawn_app(backend, true).await else { return };
    let run = json!({"name": "Max", "billingCycleId": 1, "periodStartDate": "2024-03-01", "periodEndDate": "2024-03-31", "invoiceDate": "2024-03-31"});
    assert_eq!(app.post("/bill-runs", &run).await.status, 201);

    let huge = send_text(&app, "POST", "/bills", lines_bill(&[line("1e20", "1e20")])).await;
    assert_problem(&huge, 400);
    assert_eq!(huge.body["errors"][0]["pointer"], "/lineItems/0/quantity");
    let wide = send_text(&app, "POST", "/bills", lines_bill(&[line("1", "5e28"), line("1", "5e28")])).await;
    assert_problem(&wide, 400);
    assert_eq!(wide.body["errors"][0]["pointer"], "/lineItems/0/unitPrice");
    let base = r#"{"calculationMethod": "PERCENTAGE", "dueDate": "2024-04-30T00:00:00Z", "percentage": 30, "baseAmount": 7e28}"#;
    let refused = send_text(&app, "POST", "/bills", base.to_owned()).await;
    assert_problem(&refused, 400);
    assert_eq!(refused.body["errors"][0]["pointer"], "/baseAmount");

    // Exact money end to end: 123456789012345.67 x 2, and an input with six decimals.
    let exact = send_text(
        &app,
        "POST",
        "/bills",
        lines_bill(&[line("2", "123456789012345.67"), line("1", "999999999999.123456")]),
    )
    .await;
    assert_eq!(exact.status, 201, "{:?}", exact.body);
    assert_eq!(exact.body["lineItems"][0]["amount"].to_string(), "246913578024691.34");
    assert_eq!(exact.body["lineItems"][1]["unitPrice"].to_string(), "999999999999.123456");
    assert_eq!(exact.body["amount"].to_string(), "247913578024690.46");
    let patched = send_text(&app, "PATCH", "/bills/1", format!(r#"{{"lineItems": [{}]}}"#, line("1e20", "1e20"))).await;
    assert_problem(&patched, 400);
    let read = send(&app, "GET", "/bills/1", None).await;
    assert_eq!(
        (read.body["amount"].to_string(), read.header("etag")),
        ("247913578024690.46".to_owned(), Some("\"1\""))
    );

    // A bill whose stored form passes 350 KB is 413 on both stores, and nothing is written.
    let description = "d".repeat(400);
    let long_lines: Vec<String> = (1..=1000)
        .map(|n| format!(r#"{{"catalogItemId": {n}, "quantity": 1, "unitPrice": 1, "description": "{description}"}}"#))
        .collect();
    let too_large = send_text(&app, "POST", "/bills", lines_bill(&long_lines)).await;
    assert_problem(&too_large, 413);
    assert_eq!(send(&app, "GET", "/bills", None).await.header("x-total-count"), Some("1"));

    // 100,000 inventory ids are 400 (at most 1,000 per array), not 200 on one store and 500 on the other.
    let ids: Vec<u64> = (1..=100_000).collect();
    let adhoc = app
        .post(
            "/adhoc-bill-runs",
            &json!({"name": "Many", "invoiceDate": "2024-03-31", "adhocProductInventoryIds": ids}),
        )
        .await;
    assert_problem(&adhoc, 400);
    assert_eq!(adhoc.body["errors"][0]["pointer"], "/adhocProductInventoryIds");
    assert_problem(
        &app.send(app.request("POST", "/adjust-bill-run-schedule/1?periods=9223372036854775807")).await,
        400,
    );
    assert_problem(&app.send(app.request("POST", "/adjust-bill-run-schedule/1?periods=1201")).await, 400);

    // Two bills of the largest amount in one run: the stage completes and the figures are exact
    // (247913578024690.46 + 2 x 999999999999999.99 = 2247913578024690.44).
    for _ in 0..2 {
        let max = send_text(&app, "POST", "/bills", lines_bill(&[line("1", "999999999999999.99")])).await;
        assert_eq!((max.status, max.body["amount"].to_string()), (201, "999999999999999.99".to_owned()));
    }
    let close = json!([{"op": "replace", "path": "/billRunStatus", "value": "CLOSED"}, {"op": "replace", "path": "/summaryStatus", "value": "REPORTING"}]);
    assert_eq!(app.patch("/bill-runs/1", &close).await.status, 200);
    let reported = app.wait_for("/bill-runs/1", |r| r["summaryStatusPercentage"] == 100).await;
    assert_eq!(reported["revenueInMajorCurrency"].to_string(), "2247913578024690");
    assert_eq!(reported["maxInvoiceValue"].to_string(), "999999999999999.99");
    app.stop().await;
}

on_both_stores!(
    extreme_input_is_refused_alike_and_money_is_exact,
    bills_are_created_read_and_listed,
    bills_need_an_api_key,
    create_refuses_bad_bills,
    patches_follow_the_rules,
    deletes_remove_drafts_and_archive_the_rest,
    lists_filter_and_page,
    bills_join_open_runs_only,
    a_run_of_250_bills_goes_all_the_way,
    a_bill_at_the_size_bound_is_issued_by_its_run,
);

/// Requests `stage` of the run at `path` and polls it until the stage is done: the run then, and
/// every percentage seen on the way.
async fn stage_of(app: &TestApp, path: &str, stage: &str, ops: Value) -> (Value, Vec<u64>) {
    let reply = app.patch(path, &ops).await;
    assert_eq!(reply.status, 200, "{path} {stage}: {:?}", reply.body);
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    let mut seen = Vec::new();
    loop {
        let now = app.get(path).await.body;
        let pct = now["summaryStatusPercentage"].as_u64().unwrap();
        seen.push(pct);
        if now["summaryStatus"] != stage || pct == 100 {
            return (now, seen);
        }
        assert!(Instant::now() < deadline, "{path}: {stage} never finished");
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
}

fn stage_ops(stage: &str) -> Value {
    match stage {
        "REPORTING" => {
            json!([{"op": "replace", "path": "/billRunStatus", "value": "CLOSED"}, {"op": "replace", "path": "/summaryStatus", "value": "REPORTING"}])
        }
        _ => json!([{"op": "replace", "path": "/summaryStatus", "value": stage}]),
    }
}

/// A `parallel` run and a sequential one of 64 bills each through every stage: each stage's
/// percentage only rises, it completes once, every bill is issued exactly once, the figures are
/// exact, and the run item is written at most twice plus once per segment a stage (never per step).
async fn a_parallel_run_scales_out_over_segments_without_contending_on_its_run(backend: Backend) {
    use shared::domain::key::{Id, Key, TenantId};
    use shared::domain::resource::Resource;
    use shared::domain::segment::SEGMENTS;
    let Some(app) = spawn_app_with(backend, true, 2).await else { return };
    let mut expected = rust_decimal::Decimal::ZERO;
    for (cycle, parallel) in [(1, true), (2, false)] {
        let run = json!({"name": "Run", "billingCycleId": cycle, "periodStartDate": "2024-03-01", "periodEndDate": "2024-03-31", "invoiceDate": "2024-03-31", "parallel": parallel});
        assert_eq!(app.post("/bill-runs", &run).await.status, 201);
    }
    let bodies: Vec<Value> = (1..=128u64)
        .map(|n| {
            let price = format!("{}.{:02}", n % 97, n % 100);
            if n % 2 == 1 {
                expected += price.parse::<rust_decimal::Decimal>().unwrap();
            }
            json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-30T00:00:00Z", "billRunId": 2 - n % 2,
                "account": {"id": n, "name": "C"}, "lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": price.parse::<f64>().unwrap()}]})
        })
        .collect();
    for chunk in bodies.chunks(32) {
        let replies = futures::future::join_all(chunk.iter().map(|b| send(&app, "POST", "/bills", Some(b)))).await;
        assert!(replies.iter().all(|r| r.status == 201), "every bill is created");
    }
    let tenant = TenantId::parse("dev").unwrap();
    for (run, segments) in [(1u64, u64::from(SEGMENTS)), (2, 1)] {
        let path = format!("/bill-runs/{run}");
        let key = Key::new(shared::domain::bill_run::BillRun::KIND, tenant.clone(), Id::Int(run)).unwrap();
        for stage in ["REPORTING", "DRAFT_INVOICES", "FULL_INVOICES"] {
            let writes_before = app.store.events(&key).await.unwrap().len() as u64;
            let (done, seen) = stage_of(&app, &path, stage, stage_ops(stage)).await;
            assert_eq!((&done["summaryStatus"], &done["failedBills"]), (&json!(stage), &json!(0)));
            assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{path} {stage}: the percentage only rises: {seen:?}");
            let writes = app.store.events(&key).await.unwrap().len() as u64 - writes_before;
            assert!(writes <= segments + 2, "{path} {stage}: {writes} writes of the run item for {segments} segments");
            eprintln!("{backend:?} {path} {stage}: {writes} writes of the run item; percentages seen {seen:?}");
            if stage == "REPORTING" && run == 1 {
                let major = expected.floor().to_string();
                assert_eq!(done["revenueInMajorCurrency"].to_string(), major, "the merged segments' revenue is exact");
            }
        }
        let issued = send(&app, "GET", &format!("/bills?billRunId={run}&status=ISSUED"), None).await;
        assert_eq!(issued.header("x-total-count"), Some("64"), "every bill of run {run} is issued");
    }
    for id in 1..=128u64 {
        let key = Key::new(shared::domain::bill::Bill::KIND, tenant.clone(), Id::Int(id)).unwrap();
        let issues =
            app.store.events(&key).await.unwrap().iter().filter(|e| e.action == "worker FULL_INVOICES").count();
        assert_eq!(issues, 1, "bill {id} is issued exactly once");
    }
    app.stop().await;
}

/// A bill whose amount cannot be computed (a stored item no request could make) is set aside by
/// DRAFT_INVOICES and FULL_INVOICES: the stages go on without it, the run counts it and the bill
/// says why; once it is fixed, FULL_INVOICES runs again and issues it.
async fn a_bill_a_stage_cannot_price_is_set_aside_and_the_stage_runs_again(backend: Backend) {
    use shared::domain::bill::Bill;
    use shared::domain::key::{Id, TenantId};
    use shared::store::repo::Tenant;
    use shared::store::AuditEvent;
    let Some(app) = spawn_app_with(backend, true, 0).await else { return };
    let run = json!({"name": "Run", "billingCycleId": 1, "periodStartDate": "2024-03-01", "periodEndDate": "2024-03-31", "invoiceDate": "2024-03-31", "parallel": true});
    assert_eq!(app.post("/bill-runs", &run).await.status, 201);
    let mut bill = line_items_bill();
    bill["billRunId"] = json!(1);
    for _ in 0..5 {
        assert_eq!(send(&app, "POST", "/bills", Some(&bill)).await.status, 201);
    }
    let tenant = Tenant::new(app.store.as_ref(), TenantId::parse("dev").unwrap());
    let bills = tenant.repo::<Bill>();
    let current = bills.get(Id::Int(3)).await.unwrap().unwrap();
    let mut broken = current.value.clone();
    broken.line_items[0].quantity = "999999999999".parse().unwrap();
    broken.line_items[0].unit_price = "999999999999".parse().unwrap();
    tenant.update(bills.update_of(&current, &broken, AuditEvent::new(None, "test")).unwrap()).await.unwrap();
    // Bill 5 becomes unreadable (a corrupt item): the walks go on past it.
    let current = bills.get(Id::Int(5)).await.unwrap().unwrap();
    let mut corrupt = bills.update_of(&current, &current.value, AuditEvent::new(None, "test")).unwrap();
    corrupt.body = r#"{"not": "a bill"}"#.to_owned();
    tenant.update(corrupt).await.unwrap();

    stage_of(&app, "/bill-runs/1", "REPORTING", stage_ops("REPORTING")).await;
    let (drafted, _) = stage_of(&app, "/bill-runs/1", "DRAFT_INVOICES", stage_ops("DRAFT_INVOICES")).await;
    assert_eq!(drafted["failedBills"], 2, "the bill it cannot price, and the unreadable one");
    let (full, _) = stage_of(&app, "/bill-runs/1", "FULL_INVOICES", stage_ops("FULL_INVOICES")).await;
    assert_eq!(full["failedBills"], 2, "the stage went on without the two");
    let aside = send(&app, "GET", "/bills/3", None).await.body;
    assert_eq!(
        (&aside["status"], &aside["setAside"]["stage"], &aside["setAside"]["billRunId"]),
        (&json!("DRAFT"), &json!("FULL_INVOICES"), &json!(1))
    );
    assert!(aside["setAside"]["reason"].as_str().unwrap().contains("/lineItems/0/amount"), "{aside}");
    let issued = send(&app, "GET", "/bills?billRunId=1&status=ISSUED", None).await;
    assert_eq!(issued.header("x-total-count"), Some("3"));

    let fix = json!({"lineItems": [{"catalogItemId": 1, "quantity": 2, "unitPrice": 3}]});
    let fixed = send(&app, "PATCH", "/bills/3", Some(&fix)).await;
    assert_eq!(fixed.status, 200, "{:?}", fixed.body);
    let (again, _) = stage_of(&app, "/bill-runs/1", "FULL_INVOICES", stage_ops("FULL_INVOICES")).await;
    assert_eq!(again["failedBills"], 1, "the unreadable bill only");
    let bill = send(&app, "GET", "/bills/3", None).await.body;
    assert_eq!((&bill["status"], bill.get("setAside")), (&json!("ISSUED"), None), "{bill}");
    stage_of(&app, "/bill-runs/1", "DISTRIBUTION", stage_ops("DISTRIBUTION")).await;
    app.wait_for("/bill-runs/1", |r| r["billRunStatus"] == "FINALIZED").await;
    app.stop().await;
}

on_both_stores!(
    a_parallel_run_scales_out_over_segments_without_contending_on_its_run,
    a_bill_a_stage_cannot_price_is_set_aside_and_the_stage_runs_again,
);
