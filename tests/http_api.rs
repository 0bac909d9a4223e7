//! Black-box tests: the bill-run API over HTTP through the dev server, on the embedded store and
//! on DynamoDB Local. Every endpoint, every error status docs/api.md names, the whole stage path
//! of both kinds of run, and concurrent PATCHes that must lose no update.

use billflow_tests::{on_both_stores, spawn_app, Backend, TestApp};
use serde_json::{json, Value};
use shared::domain::identity::Principal;

async fn app(backend: Backend) -> Option<TestApp> {
    spawn_app(backend, true).await
}

fn bill_run(name: &str, cycle: u64, start: &str, end: &str) -> Value {
    json!({"name": name, "billingCycleId": cycle, "periodStartDate": start, "periodEndDate": end, "invoiceDate": end})
}

fn jan(cycle: u64) -> Value {
    bill_run("Jan 2024", cycle, "2024-01-01", "2024-01-31")
}

fn replace(path: &str, value: Value) -> Value {
    json!({"op": "replace", "path": path, "value": value})
}

fn stage(name: &str) -> Value {
    json!([replace("/summaryStatus", json!(name))])
}

fn close() -> Value {
    json!([replace("/billRunStatus", json!("CLOSED")), replace("/summaryStatus", json!("REPORTING"))])
}

fn done(stage: &'static str) -> impl Fn(&Value) -> bool {
    move |run| run["summaryStatus"] == stage && run["summaryStatusPercentage"] == 100
}

fn assert_problem(reply: &billflow_tests::Reply, status: u16) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    assert_eq!(reply.body["status"], status);
    assert!(reply.body["title"].is_string() && reply.body["detail"].is_string() && reply.body["type"].is_string());
    assert!(reply.header("x-request-id").is_some_and(|id| !id.is_empty()));
}

fn pointers(reply: &billflow_tests::Reply) -> Vec<String> {
    reply.body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["pointer"].as_str().map(str::to_owned))
        .collect()
}

async fn create_get_and_list(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let created = app.post("/bill-runs", &jan(1)).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.header("location"), Some("/bill-runs/1"));
    assert_eq!(created.header("etag"), Some("\"1\""));
    assert!(created.header("x-request-id").is_some());
    assert_eq!(created.body["id"], 1);
    assert_eq!(
        (created.body["billRunStatus"].as_str(), created.body["summaryStatus"].as_str()),
        (Some("OPEN"), Some("PROPERTIES"))
    );
    assert_eq!(created.body["summaryStatusPercentage"], 100);
    assert_eq!(created.body["includeUsageUntilDate"], Value::Null, "optional fields are present as null");

    let got = app.get("/bill-runs/1").await;
    assert_eq!((got.status, &got.body), (200, &created.body));
    assert_eq!(got.header("etag"), Some("\"1\""));

    let adhoc =
        app.post("/adhoc-bill-runs", &json!({"name": "One-off", "invoiceDate": "2024-02-01", "nickname": "n"})).await;
    assert_eq!(adhoc.status, 201, "{:?}", adhoc.body);
    assert_eq!(adhoc.header("location"), Some("/adhoc-bill-runs/1"));
    assert_eq!(adhoc.body["adhocProductInventoryIds"], json!([]));
    assert_eq!(app.get("/adhoc-bill-runs/1").await.body, adhoc.body);

    let list = app.get("/bill-runs").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.header("x-total-count"), Some("1"));
    assert_eq!(list.body, json!([created.body]));
    let list = app.get("/adhoc-bill-runs").await;
    assert_eq!((list.header("x-total-count"), list.body.as_array().map(Vec::len)), (Some("1"), Some(1)));
    app.stop().await;
}

async fn create_refuses_bad_input(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let mut bad = jan(1);
    bad["name"] = json!("far too long a name for a run");
    bad["periodEndDate"] = json!("2023-12-01");
    bad["sortableName"] = json!("x");
    let reply = app.post("/bill-runs", &bad).await;
    assert_problem(&reply, 400);
    assert_eq!(pointers(&reply), vec!["/name", "/sortableName"]);

    let reply = app.post("/bill-runs", &bill_run("Jan", 1, "2024-02-01", "2024-01-01")).await;
    assert_problem(&reply, 400);
    assert_eq!(pointers(&reply), vec!["/periodEndDate"]);

    let reply =
        app.send(app.request("POST", "/bill-runs").header("content-type", "application/json").body("{\"name\":")).await;
    assert_problem(&reply, 400);
    let reply = app.send(app.request("POST", "/bill-runs").header("content-type", "application/json").body("")).await;
    assert_problem(&reply, 400);
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    let reply = app.send(app.request("POST", "/bill-runs").header("content-type", "application/json").body(deep)).await;
    assert_problem(&reply, 400);
    let reply =
        app.send(app.request("POST", "/bill-runs").header("content-type", "text/plain").body(jan(1).to_string())).await;
    assert_problem(&reply, 415);
    let reply = app.send(app.request("POST", "/bill-runs").body(jan(1).to_string())).await;
    assert_problem(&reply, 415);
    let huge = json!({"name": "x".repeat(1024 * 1024 + 10)});
    let reply = app.post("/bill-runs", &huge).await;
    assert_problem(&reply, 413);
    let reply = app
        .post(
            "/adhoc-bill-runs",
            &json!({"name": "x", "invoiceDate": "2024-01-01", "rentalProductInventoryIds": [1, 1]}),
        )
        .await;
    assert_problem(&reply, 400);
    assert_eq!(pointers(&reply), vec!["/rentalProductInventoryIds/1"]);

    // Overlaps within a billing cycle are 409; other cycles and adjacent periods are fine.
    assert_eq!(app.post("/bill-runs", &jan(1)).await.status, 201);
    let reply = app.post("/bill-runs", &bill_run("Overlap", 1, "2024-01-31", "2024-02-29")).await;
    assert_problem(&reply, 409);
    assert_eq!(app.post("/bill-runs", &bill_run("Feb", 1, "2024-02-01", "2024-02-29")).await.status, 201);
    assert_eq!(app.post("/bill-runs", &jan(2)).await.status, 201);
    assert_eq!(app.get("/bill-runs").await.header("x-total-count"), Some("3"), "refused creates store nothing");
    app.stop().await;
}

async fn callers_need_credentials_and_scopes(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    assert_eq!(app.post("/bill-runs", &jan(1)).await.status, 201);
    let anonymous = app.send(app.http.get(format!("{}/bill-runs/1", app.base))).await;
    assert_problem(&anonymous, 401);
    let forged =
        app.send(app.http.get(format!("{}/bill-runs/1", app.base)).bearer_auth(format!("{}x", app.token))).await;
    assert_problem(&forged, 401);
    let reader =
        app.token_for(&Principal { user_id: 2, tenants: vec!["dev".into()], scopes: vec!["billing:read".into()] });
    let read = app.send(app.http.get(format!("{}/bill-runs/1", app.base)).bearer_auth(&reader)).await;
    assert_eq!(read.status, 200);
    let write = app.send(app.http.post(format!("{}/bill-runs", app.base)).bearer_auth(&reader).json(&jan(2))).await;
    assert_problem(&write, 403);
    let patch = app
        .send(
            app.http
                .patch(format!("{}/bill-runs/1", app.base))
                .bearer_auth(&reader)
                .header("content-type", "application/json-patch+json")
                .body(close().to_string()),
        )
        .await;
    assert_problem(&patch, 403);
    let nobody = app.token_for(&Principal { user_id: 3, tenants: vec![], scopes: vec![] });
    let list = app.send(app.http.get(format!("{}/adhoc-bill-runs", app.base)).bearer_auth(&nobody)).await;
    assert_problem(&list, 403);
    app.stop().await;
}

async fn paths_and_methods(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    for path in [
        "/bill-runs/abc",
        "/bill-runs/0",
        "/bill-runs/-1",
        "/bill-runs/18446744073709551616",
        "/adhoc-bill-runs/1.5",
        "/bill-runs/+1",
        "/bill-runs/%201",
    ] {
        let reply = app.get(path).await;
        assert_problem(&reply, 400);
    }
    assert_problem(&app.get("/bill-runs/999").await, 404);
    assert_problem(&app.get("/adhoc-bill-runs/999").await, 404);
    assert_problem(&app.patch("/bill-runs/999", &close()).await, 404);
    assert_problem(&app.send(app.request("POST", "/adjust-bill-run-schedule/999?periods=1")).await, 404);
    let reply = app.send(app.request("DELETE", "/bill-runs/1")).await;
    assert_problem(&reply, 405);
    assert_eq!(reply.header("allow"), Some("GET, PATCH"));
    let reply = app.send(app.request("PUT", "/adhoc-bill-runs")).await;
    assert_eq!(reply.header("allow"), Some("GET, POST"));
    assert_problem(&app.get("/no-such-thing").await, 404);
    app.stop().await;
}

async fn idempotent_creates(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let post = |body: &Value, key: &str| app.request("POST", "/bill-runs").header("idempotency-key", key).json(body);
    let first = app.send(post(&jan(1), "key-1")).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.header("idempotency-replayed"), None);
    let again = app.send(post(&jan(1), "key-1")).await;
    assert_eq!((again.status, &again.body), (201, &first.body));
    assert_eq!(again.header("idempotency-replayed"), Some("true"));
    assert_eq!(again.header("location"), Some("/bill-runs/1"));
    assert_eq!(app.get("/bill-runs").await.header("x-total-count"), Some("1"), "a replay creates nothing");
    let other = app.send(post(&jan(2), "key-1")).await;
    assert_problem(&other, 422);
    assert_problem(&app.send(post(&jan(2), "bad key with spaces")).await, 400);
    // Keys are per caller and route: the same key on adhoc runs is a different request.
    let adhoc = app
        .send(
            app.request("POST", "/adhoc-bill-runs")
                .header("idempotency-key", "key-1")
                .json(&json!({"name": "x", "invoiceDate": "2024-01-01"})),
        )
        .await;
    assert_eq!(adhoc.status, 201);
    app.stop().await;
}

async fn patch_semantics(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    assert_eq!(app.post("/bill-runs", &jan(1)).await.status, 201);
    let send = |content_type: &str, body: String| {
        app.send(app.request("PATCH", "/bill-runs/1").header("content-type", content_type).body(body))
    };
    assert_problem(&send("text/plain", close().to_string()).await, 415);
    assert_problem(&send("application/json", json!({"op": "replace"}).to_string()).await, 415);
    let as_json = send("application/json", json!([replace("/paused", json!(true))]).to_string()).await;
    assert_eq!(
        (as_json.status, &as_json.body["paused"]),
        (200, &json!(true)),
        "application/json with an array is accepted"
    );
    assert_eq!(as_json.header("etag"), Some("\"2\""));

    let reply =
        app.patch("/bill-runs/1", &json!([replace("/paused", json!(false)), {"op": "jump", "path": "/paused"}])).await;
    assert_problem(&reply, 400);
    assert_eq!(pointers(&reply), vec!["/1/op"]);
    let reply = app.patch("/bill-runs/1", &json!({"op": "replace"})).await;
    assert_problem(&reply, 400);
    let reply = app
        .patch(
            "/bill-runs/1",
            &json!([replace("/paused", json!(false)), {"op": "test", "path": "/name", "value": "other"}]),
        )
        .await;
    assert_problem(&reply, 409);
    assert_eq!(app.get("/bill-runs/1").await.body["paused"], true, "a failed test changes nothing");
    // A path the run does not have: 400 naming the operation (bill-runs.md, PATCH step 2).
    let reply =
        app.patch("/bill-runs/1", &json!([replace("/paused", json!(false)), replace("/nope/deeper", json!(1))])).await;
    assert_problem(&reply, 400);
    assert_eq!(pointers(&reply), vec!["/1"]);
    assert_eq!(app.get("/bill-runs/1").await.body["paused"], true, "nothing of it is applied");
    for (op, pointer) in [
        (replace("/name", json!("Renamed")), "/name"),
        (replace("/billingCycleId", json!(9)), "/billingCycleId"),
        (json!({"op": "add", "path": "/colour", "value": "red"}), "/colour"),
        (replace("/paused", json!("yes")), "/paused"),
        (replace("/summaryStatus", json!("FINISHED")), "/summaryStatus"),
        (replace("/billRunStatus", json!("FINALIZED")), "/billRunStatus"),
    ] {
        let reply = app.patch("/bill-runs/1", &json!([op])).await;
        assert_problem(&reply, 400);
        assert_eq!(pointers(&reply), vec![pointer]);
    }

    let unchanged = app.patch("/bill-runs/1", &json!([replace("/paused", json!(true))])).await;
    assert_eq!((unchanged.status, unchanged.header("etag")), (200, Some("\"2\"")), "a no-op patch writes nothing");

    let stale = app
        .send(
            app.request("PATCH", "/bill-runs/1")
                .header("content-type", "application/json-patch+json")
                .header("if-match", "\"1\"")
                .body(json!([replace("/paused", json!(false))]).to_string()),
        )
        .await;
    assert_problem(&stale, 412);
    let fresh = app
        .send(
            app.request("PATCH", "/bill-runs/1")
                .header("content-type", "application/json-patch+json")
                .header("if-match", "\"2\"")
                .body(json!([replace("/paused", json!(false))]).to_string()),
        )
        .await;
    assert_eq!((fresh.status, fresh.header("etag")), (200, Some("\"3\"")));

    // Closing needs both fields; properties other than invoiceDate freeze once closed.
    assert_problem(&app.patch("/bill-runs/1", &stage("REPORTING")).await, 409);
    assert_problem(&app.patch("/bill-runs/1", &json!([replace("/billRunStatus", json!("CLOSED"))])).await, 409);
    let closed = app.patch("/bill-runs/1", &close()).await;
    assert_eq!((closed.status, &closed.body["billingUserAdminId"]), (200, &json!(1)));
    app.wait_for("/bill-runs/1", done("REPORTING")).await;
    assert_problem(&app.patch("/bill-runs/1", &json!([replace("/paused", json!(true))])).await, 409);
    let moved = app.patch("/bill-runs/1", &json!([replace("/invoiceDate", json!("2024-02-05"))])).await;
    assert_eq!((moved.status, &moved.body["invoiceDate"]), (200, &json!("2024-02-05")));
    app.stop().await;
}

async fn regular_run_goes_all_the_way(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    assert_eq!(app.post("/bill-runs", &jan(1)).await.status, 201);
    let path = "/bill-runs/1";
    assert_problem(&app.patch(path, &stage("FULL_INVOICES")).await, 409);
    let closed = app.patch(path, &close()).await;
    assert_eq!(closed.status, 200);
    assert_eq!(
        (closed.body["billRunStatus"].as_str(), closed.body["summaryStatus"].as_str()),
        (Some("CLOSED"), Some("REPORTING"))
    );
    assert_eq!(closed.body["summaryStatusPercentage"], 0);
    app.wait_for(path, done("REPORTING")).await;
    assert_problem(&app.patch(path, &stage("DISTRIBUTION")).await, 409);
    let rerun = app.patch(path, &stage("REPORTING")).await;
    assert_eq!((rerun.status, &rerun.body["summaryStatusPercentage"]), (200, &json!(0)), "REPORTING again re-runs");
    app.wait_for(path, done("REPORTING")).await;
    assert_eq!(app.patch(path, &stage("DRAFT_INVOICES")).await.status, 200);
    app.wait_for(path, done("DRAFT_INVOICES")).await;
    assert_eq!(app.patch(path, &stage("FULL_INVOICES")).await.status, 200);
    app.wait_for(path, done("FULL_INVOICES")).await;
    assert_problem(&app.patch(path, &json!([replace("/billRunStatus", json!("OPEN"))])).await, 409);
    assert_problem(&app.patch(path, &stage("DRAFT_INVOICES")).await, 409);
    assert_problem(&app.patch(path, &json!([replace("/invoiceDate", json!("2024-03-01"))])).await, 409);
    assert_eq!(app.patch(path, &stage("DISTRIBUTION")).await.status, 200);
    let finished = app.wait_for(path, |r| r["billRunStatus"] == "FINALIZED").await;
    assert_eq!(
        (finished["summaryStatus"].as_str(), &finished["summaryStatusPercentage"]),
        (Some("FINISHED"), &json!(100))
    );
    assert_eq!(finished["billingUserAdminId"], 1);
    let frozen = app.patch(path, &json!([replace("/paused", json!(true))])).await;
    assert_problem(&frozen, 409);
    assert!(frozen.body["detail"].as_str().unwrap().contains("FINALIZED"));
    assert_problem(&app.patch(path, &stage("REPORTING")).await, 409);
    assert_problem(&app.send(app.request("POST", "/adjust-bill-run-schedule/1?periods=1")).await, 409);
    app.stop().await;
}

async fn adhoc_run_goes_all_the_way(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let created = app.post("/adhoc-bill-runs", &json!({"name": "One-off", "invoiceDate": "2024-02-01"})).await;
    assert_eq!(created.status, 201);
    let path = "/adhoc-bill-runs/1";
    let closed = app.patch(path, &stage("REPORTING")).await;
    assert_eq!(
        (closed.status, closed.body["billRunStatus"].as_str()),
        (200, Some("CLOSED")),
        "REPORTING alone closes an adhoc run"
    );
    app.wait_for(path, done("REPORTING")).await;
    let drafts = app.patch(path, &stage("DRAFT_INVOICES")).await;
    assert_problem(&drafts, 400);
    let reopened = app.patch(path, &json!([replace("/billRunStatus", json!("OPEN"))])).await;
    assert_eq!(reopened.status, 200);
    assert_eq!(
        (reopened.body["summaryStatus"].as_str(), &reopened.body["billingUserAdminId"]),
        (Some("PROPERTIES"), &Value::Null)
    );
    let closed = app
        .patch(
            path,
            &json!([replace("/billRunStatus", json!("CLOSED")), replace("/summaryStatus", json!("REPORTING"))]),
        )
        .await;
    assert_eq!(closed.status, 200);
    app.wait_for(path, done("REPORTING")).await;
    assert_eq!(app.patch(path, &stage("FULL_INVOICES")).await.status, 200);
    app.wait_for(path, done("FULL_INVOICES")).await;
    assert_eq!(app.patch(path, &stage("DISTRIBUTION")).await.status, 200);
    let finished = app.wait_for(path, |r| r["billRunStatus"] == "FINALIZED").await;
    assert_eq!(finished["summaryStatus"], "FINISHED");
    assert_problem(&app.patch(path, &json!([replace("/nickname", json!("late"))])).await, 409);
    app.stop().await;
}

async fn stages_still_running_refuse_the_next(backend: Backend) {
    // Without the worker a requested stage stays at 0 percent.
    let Some(app) = spawn_app(backend, false).await else {
        return;
    };
    assert_eq!(app.post("/bill-runs", &jan(1)).await.status, 201);
    assert_eq!(app.patch("/bill-runs/1", &close()).await.status, 200);
    for ops in [stage("FULL_INVOICES"), stage("REPORTING"), json!([replace("/billRunStatus", json!("OPEN"))])] {
        let reply = app.patch("/bill-runs/1", &ops).await;
        assert_problem(&reply, 409);
        assert!(
            reply.body["detail"].as_str().unwrap().contains("stage REPORTING is still running"),
            "{:?}",
            reply.body
        );
    }
    app.stop().await;
}

async fn concurrent_patches_lose_no_update(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    assert_eq!(app.post("/adhoc-bill-runs", &json!({"name": "Busy", "invoiceDate": "2024-02-01"})).await.status, 201);
    let writers = 12u64;
    let patches: Vec<Value> =
        (1..=writers).map(|n| json!([{"op": "add", "path": "/adhocProductInventoryIds/-", "value": n}])).collect();
    let replies = futures::future::join_all(patches.iter().map(|ops| app.patch("/adhoc-bill-runs/1", ops))).await;
    for reply in &replies {
        assert!(reply.status == 200 || reply.status == 409, "{:?}", reply.body);
    }
    let accepted = replies.iter().filter(|r| r.status == 200).count() as u64;
    let run = app.get("/adhoc-bill-runs/1").await;
    let mut ids: Vec<u64> =
        run.body["adhocProductInventoryIds"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len() as u64, accepted, "every accepted PATCH is in the result, none twice");
    assert_eq!(accepted, writers, "re-read and re-apply lets every writer through");
    assert_eq!(run.header("etag"), Some(format!("\"{}\"", accepted + 1).as_str()));
    app.stop().await;
}

async fn lists_page_sort_filter_and_project(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    for (name, cycle, start, end) in [
        ("Charlie", 1, "2024-01-01", "2024-01-31"),
        ("alpha", 2, "2024-01-01", "2024-01-31"),
        ("Bravo", 1, "2024-02-01", "2024-02-29"),
        ("delta", 3, "2024-01-01", "2024-01-31"),
        ("Echo", 2, "2024-02-01", "2024-02-29"),
    ] {
        assert_eq!(app.post("/bill-runs", &bill_run(name, cycle, start, end)).await.status, 201);
    }
    assert_eq!(app.patch("/bill-runs/2", &close()).await.status, 200);
    let ids = |reply: &billflow_tests::Reply| -> Vec<u64> {
        reply.body.as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap()).collect()
    };
    let page = app.get("/bill-runs?page=2&pageSize=2").await;
    assert_eq!((ids(&page), page.header("x-total-count")), (vec![3, 4], Some("5")));
    let page = app.get("/bill-runs?page=9&pageSize=2").await;
    assert_eq!((ids(&page), page.header("x-total-count")), (vec![], Some("5")));
    let sorted = app.get("/bill-runs?sort=name:desc").await;
    assert_eq!(ids(&sorted), vec![5, 4, 1, 3, 2], "names sort case-insensitively");
    let sorted = app.get("/bill-runs?sort=periodStartDate:desc,id:desc").await;
    assert_eq!(ids(&sorted), vec![5, 3, 4, 2, 1]);
    let filtered = app.get("/bill-runs?billingCycleId=in:1,2&sort=id:desc").await;
    assert_eq!((ids(&filtered), filtered.header("x-total-count")), (vec![5, 3, 2, 1], Some("4")));
    let filtered = app.get("/bill-runs?billRunStatus=CLOSED").await;
    assert_eq!((ids(&filtered), filtered.header("x-total-count")), (vec![2], Some("1")));
    let filtered = app.get("/bill-runs?summaryStatus=in:PROPERTIES&billingCycleId=2").await;
    assert_eq!(ids(&filtered), vec![5]);
    let projected = app.get("/bill-runs?fields=name,billRunStatus&pageSize=1").await;
    assert_eq!(projected.body, json!([{"id": 1, "name": "Charlie", "billRunStatus": "OPEN"}]));
    for bad in [
        "page=0",
        "pageSize=1001",
        "pageSize=x",
        "sort=colour",
        "sort=name:up",
        "fields=colour",
        "billRunStatus=LOST",
        "billingCycleId=-1",
        "what=1",
    ] {
        assert_problem(&app.get(&format!("/bill-runs?{bad}")).await, 400);
    }
    assert_problem(&app.get("/adhoc-bill-runs?sort=periodStartDate").await, 400);
    app.stop().await;
}

async fn adjusting_the_schedule(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let mut first = jan(1);
    first["includeUsageUntilDate"] = json!("2024-01-31");
    assert_eq!(app.post("/bill-runs", &first).await.status, 201);
    let adjust =
        |id: u64, query: &str| app.send(app.request("POST", &format!("/adjust-bill-run-schedule/{id}{query}")));
    for query in ["", "?periods=0", "?periods=x", "?periods=1.5", "?periods="] {
        assert_problem(&adjust(1, query).await, 400);
    }
    let moved = adjust(1, "?periods=1").await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    assert_eq!(
        (
            &moved.body["periodStartDate"],
            &moved.body["periodEndDate"],
            &moved.body["invoiceDate"],
            &moved.body["includeUsageUntilDate"]
        ),
        (&json!("2024-02-01"), &json!("2024-02-29"), &json!("2024-02-29"), &json!("2024-02-29"))
    );
    assert_eq!(moved.header("etag"), Some("\"2\""));
    // Run 2 takes January back; moving run 1 onto it is refused.
    assert_eq!(app.post("/bill-runs", &jan(1)).await.status, 201);
    assert_problem(&adjust(1, "?periods=-1").await, 409);
    let back = adjust(2, "?periods=-2").await;
    assert_eq!((back.status, &back.body["periodStartDate"]), (200, &json!("2023-11-01")));
    assert_eq!(app.patch("/bill-runs/2", &close()).await.status, 200);
    assert_problem(&adjust(2, "?periods=1").await, 409);
    app.stop().await;
}

/// A patch bomb (copies of the whole document into itself), too many operations and the extremes
/// of `periods` are each a 400 naming what is wrong; the run is unchanged and the server answers on.
async fn patch_bombs_and_extreme_numbers_are_refused(backend: Backend) {
    let Some(app) = app(backend).await else { return };
    let created = app.post("/bill-runs", &jan(1)).await;
    assert_eq!(created.status, 201);
    let bomb: Vec<Value> = (0..40).map(|i| json!({"op": "copy", "from": "", "path": format!("/x{i}")})).collect();
    let refused = app.patch("/bill-runs/1", &Value::Array(bomb)).await;
    assert_problem(&refused, 400);
    assert!(pointers(&refused)[0].starts_with('/'), "the operation that passed the bound: {:?}", refused.body);
    let many = vec![json!({"op": "test", "path": "/name", "value": "Jan 2024"}); 101];
    let refused = app.patch("/bill-runs/1", &Value::Array(many)).await;
    assert_problem(&refused, 400);
    assert_eq!(pointers(&refused), vec![String::new()]);
    for periods in ["-9223372036854775808", "9223372036854775807", "18446744073709551616", "-0", "1e3", "1201"] {
        let moved = app.send(app.request("POST", &format!("/adjust-bill-run-schedule/1?periods={periods}"))).await;
        assert_problem(&moved, 400);
        assert_eq!(pointers(&moved), vec!["/periods".to_owned()], "{periods}");
    }
    let after = app.get("/bill-runs/1").await;
    assert_eq!((after.status, &after.body), (200, &created.body), "nothing changed");
    app.stop().await;
}

/// Work whose stream records never came (no worker runs here: as if they were lost, or sent to
/// the failure queue after their retries) is found past its lease by the sweeper and carried on:
/// a run's stage, and an on-demand bill from its rates to done. Nothing is left past its lease.
async fn work_past_its_lease_is_redriven_by_the_sweeper(backend: Backend) {
    let Some(app) = billflow_tests::spawn_app_with(backend, false, 0).await else { return };
    let worker = shared::worker::Worker::standard(app.store.clone());
    let lease = u64::try_from(shared::store::work_lease().as_millis()).unwrap();
    let past_lease = || shared::store::now_ms() + lease + 1;
    assert_eq!(app.post("/bill-runs", &jan(1)).await.status, 201);
    assert_eq!(app.patch("/bill-runs/1", &close()).await.status, 200);
    assert_eq!(worker.sweep(shared::store::now_ms(), None).await.unwrap().overdue, 0, "not yet past its lease");
    assert_eq!(app.get("/bill-runs/1").await.body["summaryStatusPercentage"], 0, "no worker: the stage waits");
    let sweep = worker.sweep(past_lease(), None).await.unwrap();
    assert_eq!((sweep.overdue, sweep.redriven, sweep.failed), (1, 1, 0));
    assert!(done("REPORTING")(&app.get("/bill-runs/1").await.body), "the sweeper carried the stage through");

    let base = "/brm/customerBillManagement/v4";
    for value in [1, 2] {
        let rate = json!({"billingAccount": {"id": "SWEPT"}, "taxExcludedAmount": {"unit": "EUR", "value": value}});
        assert_eq!(app.post(&format!("{base}/appliedCustomerBillingRate"), &rate).await.status, 201);
    }
    let request = app.post(&format!("{base}/customerBillOnDemand"), &json!({"billingAccount": {"id": "SWEPT"}})).await;
    assert_eq!(request.status, 201);
    let href = request.body["href"].as_str().unwrap().to_owned();
    let mut sweeps = 0;
    while app.get(&href).await.body["state"] == "inProgress" {
        sweeps += 1;
        assert!(sweeps <= 10, "the request never finished");
        assert_eq!(worker.sweep(past_lease(), None).await.unwrap().failed, 0);
    }
    let ended = app.get(&href).await.body;
    assert_eq!(ended["state"], "done", "{ended}");
    let bill = app.get(&format!("{base}/customerBill?billingAccount.id=SWEPT")).await.body;
    assert_eq!(bill[0]["taxExcludedAmount"]["value"], json!(3));
    assert_eq!(
        worker.sweep(past_lease(), None).await.unwrap(),
        shared::worker::Sweep::default(),
        "nothing left past its lease"
    );
    app.stop().await;
}

on_both_stores!(
    work_past_its_lease_is_redriven_by_the_sweeper,
    patch_bombs_and_extreme_numbers_are_refused,
    create_get_and_list,
    create_refuses_bad_input,
    callers_need_credentials_and_scopes,
    paths_and_methods,
    idempotent_creates,
    patch_semantics,
    regular_run_goes_all_the_way,
    adhoc_run_goes_all_the_way,
    stages_still_running_refuse_the_next,
    concurrent_patches_lose_no_update,
    lists_page_sort_filter_and_project,
    adjusting_the_schedule,
);
