//! The real Lambda binaries, run as Lambda runs them: the Runtime API emulator
//! (`billflow_tests::lambda`) hands each one API Gateway v2 events (from `tests/events/`) and
//! stream records, against DynamoDB Local. Binaries come from beside the test executable, wherever
//! cargo's target directory is (`BILLFLOW_BIN_DIR` points elsewhere, e.g. a release build).

use std::time::Duration;

use billflow_tests::lambda::{self, authorizer_event, binary, event, response, Outcome};
use billflow_tests::{dynamodb_endpoint, fresh_dynamo};
use serde_json::{json, Value};

/// Starts the function's binary against a fresh emulator and DynamoDB Local's `table`, sends
/// `events` one at a time and returns its answers and its cold start.
async fn invoke(function: &str, endpoint: &str, table: &str, events: Vec<Value>) -> (Vec<Outcome>, Duration) {
    let (outcomes, cold, _) = invoke_timed(function, endpoint, table, events).await;
    (outcomes, cold)
}

/// As [`invoke`], also timing process start to the first answer.
async fn invoke_timed(
    function: &str,
    endpoint: &str,
    table: &str,
    events: Vec<Value>,
) -> (Vec<Outcome>, Duration, Duration) {
    invoke_with(function, endpoint, table, &[], events).await
}

/// As [`invoke_timed`], with more environment (`extra`).
async fn invoke_with(
    function: &str,
    endpoint: &str,
    table: &str,
    extra: &[(&str, &str)],
    events: Vec<Value>,
) -> (Vec<Outcome>, Duration, Duration) {
    let mut env = vec![
        ("TABLE_NAME", table),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_REGION", "us-east-1"),
        ("AUTH_JWT_SECRET", AUTHORIZER_SECRET),
    ];
    env.extend_from_slice(extra);
    let run = lambda::start(function, &env, events).await;
    (run.outcomes, run.cold, run.first_response)
}

/// The real `sweeper` binary on its scheduled event: a stage whose stream record never reached
/// the worker (here: no worker was invoked; the stage was written with a lease of 0 ms) is found
/// past its lease through the work index and stepped; a second tick finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_sweeper_redrives_work_past_its_lease() {
    let Some(endpoint) = dynamodb_endpoint() else {
        return;
    };
    let store = fresh_dynamo(&endpoint).await;
    let table = store.table().to_owned();
    let (out, _) = invoke("create-bill-run", &endpoint, &table, vec![event("create-bill-run")]).await;
    assert_eq!(response(&out[0]).0, 201);
    let no_lease = [("WORK_LEASE_MS", "0")];
    let (out, _, _) =
        invoke_with("update-bill-run", &endpoint, &table, &no_lease, vec![event("update-bill-run")]).await;
    assert_eq!(response(&out[0]).2["summaryStatusPercentage"], 0);
    let (out, _, _) =
        invoke_with("sweeper", &endpoint, &table, &no_lease, vec![event("sweeper"), event("sweeper")]).await;
    let answers: Vec<&Value> = out
        .iter()
        .map(|o| match o {
            Outcome::Response(r) => r,
            Outcome::Error(e) => panic!("the sweeper failed: {e}"),
        })
        .collect();
    // The step it made was written with a lease of 0 ms too, but the stage is done: nothing pends.
    let counts = |answer: &Value| {
        let mut answer = answer.clone();
        let age = answer.as_object_mut().unwrap().remove("oldestLeaseAgeMs").and_then(|a| a.as_u64());
        (answer, age)
    };
    let (first, age) = counts(answers[0]);
    assert_eq!(first, json!({"overdue": 1, "redriven": 1, "idle": 0, "failed": 0}));
    assert!(age.is_some(), "how late the oldest lease is");
    assert_eq!(counts(answers[1]), (json!({"overdue": 0, "redriven": 0, "idle": 0, "failed": 0}), Some(0)));
    let (out, _) = invoke("get-bill-run", &endpoint, &table, vec![event("get-bill-run")]).await;
    assert_eq!(response(&out[0]).2["summaryStatusPercentage"], 100, "the sweeper carried the stage through");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_binaries_serve_api_gateway_v2_events_and_stream_records() {
    let Some(endpoint) = dynamodb_endpoint() else {
        return;
    };
    let store = fresh_dynamo(&endpoint).await;
    let table = store.table().to_owned();

    let (out, cold) = invoke("create-bill-run", &endpoint, &table, vec![event("create-bill-run")]).await;
    let (status, headers, body) = response(&out[0]);
    assert_eq!((status, &headers["location"], &body["id"]), (201, &json!("/bill-runs/1"), &json!(1)), "{body}");
    assert_eq!(headers["x-request-id"], "req-create");
    eprintln!("cold start of create-bill-run (debug build): {} ms", cold.as_millis());

    // A bill joins the OPEN run, is patched and listed, through the bill binaries.
    let (out, _) = invoke("create-bill", &endpoint, &table, vec![event("create-bill")]).await;
    let (status, headers, body) = response(&out[0]);
    assert_eq!((status, &headers["location"], &body["amount"]), (201, &json!("/bills/1"), &json!(59.97)), "{body}");
    let (out, _) = invoke("update-bill", &endpoint, &table, vec![event("update-bill")]).await;
    assert_eq!(response(&out[0]).2["description"], "March services");
    let (out, _) = invoke("list-bills", &endpoint, &table, vec![event("list-bills")]).await;
    assert_eq!(response(&out[0]).1["x-total-count"], "1");
    let (out, _) = invoke("get-bill", &endpoint, &table, vec![event("get-bill")]).await;
    assert_eq!(response(&out[0]).2["billRunId"], 1);

    let (out, _) = invoke(
        "get-bill-run",
        &endpoint,
        &table,
        vec![event("get-bill-run"), event("get-bill-run-anonymous"), event("get-bill-run-bad-id")],
    )
    .await;
    let statuses: Vec<u64> = out.iter().map(|o| response(o).0).collect();
    assert_eq!(statuses, vec![200, 401, 400]);
    assert_eq!(response(&out[0]).2["name"], "Jan 2024");

    let (out, _) = invoke("update-bill-run", &endpoint, &table, vec![event("update-bill-run")]).await;
    let (status, _, body) = response(&out[0]);
    assert_eq!((status, &body["billRunStatus"], &body["summaryStatusPercentage"]), (200, &json!("CLOSED"), &json!(0)));

    // The stream record of that write, delivered twice: one step (the stage starts, writing its
    // segment, run 1's segment 0: id 64), then nothing; then the segment's record, twice: one
    // step (it walks the run's bill and completes the stage), then nothing.
    let twice = |name| vec![event(name), event(name)];
    for record in ["bill-run-worker", "segment-worker"] {
        let (out, _) = invoke("bill-run-worker", &endpoint, &table, twice(record)).await;
        for outcome in &out {
            match outcome {
                Outcome::Response(r) => assert_eq!(r, &json!({"batchItemFailures": []}), "{record}"),
                Outcome::Error(e) => panic!("worker failed on {record}: {e}"),
            }
        }
    }
    let (out, _) = invoke("list-bill-runs", &endpoint, &table, vec![event("list-bill-runs")]).await;
    let (status, headers, body) = response(&out[0]);
    assert_eq!((status, &headers["x-total-count"], body), (200, &json!("1"), json!([{"id": 1, "name": "Jan 2024"}])));
    let (out, _) = invoke("get-bill-run", &endpoint, &table, vec![event("get-bill-run")]).await;
    let (_, headers, body) = response(&out[0]);
    assert_eq!(
        (&body["summaryStatusPercentage"], &headers["etag"]),
        (&json!(100), &json!("\"4\"")),
        "the stage's start and its segment's one step, each once"
    );
    assert_eq!(body["revenueInMajorCurrency"], 59, "REPORTING summed the run's bill");
    let (out, _) = invoke("delete-bill", &endpoint, &table, vec![event("delete-bill")]).await;
    assert_eq!(response(&out[0]).0, 204);

    let (out, _) = invoke("adjust-bill-run-schedule", &endpoint, &table, vec![event("adjust-bill-run-schedule")]).await;
    assert_eq!(response(&out[0]).0, 409, "a CLOSED run does not move");

    let (out, _) = invoke("create-adhoc-bill-run", &endpoint, &table, vec![event("create-adhoc-bill-run")]).await;
    assert_eq!(response(&out[0]).0, 201);
    let (out, _) = invoke("update-adhoc-bill-run", &endpoint, &table, vec![event("update-adhoc-bill-run")]).await;
    assert_eq!(response(&out[0]).2["billRunStatus"], "CLOSED");
    let (out, _) = invoke("get-adhoc-bill-run", &endpoint, &table, vec![event("get-adhoc-bill-run")]).await;
    assert_eq!(response(&out[0]).2["adhocProductInventoryIds"], json!([3, 4]));
    let (out, _) = invoke("list-adhoc-bill-runs", &endpoint, &table, vec![event("list-adhoc-bill-runs")]).await;
    assert_eq!(response(&out[0]).1["x-total-count"], "1");
}

/// The HS256 secret the functions run with (only the authorizer reads it).
const AUTHORIZER_SECRET: &str = "emulator-secret";

/// Runs `billflow-admin` against the table with the dev server's variables alone (the endpoint and
/// the table: the region and credentials DynamoDB Local takes are filled in); its exit status and
/// standard output.
async fn admin(endpoint: &str, table: &str, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(binary("billflow-admin"))
        .args(args)
        .env_clear()
        .env("TABLE_NAME", table)
        .env("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
        .output()
        .await
        .expect("billflow-admin runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billflow_admin_manages_keys_that_the_real_authorizer_accepts_until_revoked() {
    let Some(endpoint) = dynamodb_endpoint() else {
        return;
    };
    let (ok, _, err) = admin(&endpoint, "no-such-table", &["api-key", "list"]).await;
    assert!(!ok && err.contains("no table \"no-such-table\"") && err.contains("table create"), "{err}");
    let (ok, _, err) = admin("http://127.0.0.1:1", "billflow", &["api-key", "list"]).await;
    assert!(!ok && err.contains("does not answer"), "an endpoint that is down is said so: {err}");
    let made = format!("billflow-admin-{}", uuid::Uuid::new_v4());
    let (ok, out, err) = admin(&endpoint, &made, &["table", "create"]).await;
    assert!(ok && out.contains(&made), "{err}");
    let (ok, listed, err) = admin(&endpoint, &made, &["api-key", "list"]).await;
    assert!(ok && listed.starts_with("key_id"), "the table it made is usable: {err}");
    let store = fresh_dynamo(&endpoint).await;
    let table = store.table().to_owned();
    let create =
        ["api-key", "create", "--user-id", "42", "--tenants", "acme", "--scopes", "billing:read,billing:write"];
    let (ok, out, err) =
        admin(&endpoint, &table, &[&create[..], &["--expires-in", "90d", "--description", "ci key"]].concat()).await;
    assert!(ok, "{err}");
    let line = |name: &str| out.lines().find_map(|l| l.strip_prefix(name)).map(str::to_owned).unwrap();
    let (key_id, key) = (line("key_id: "), line("api_key: "));
    assert!(key.starts_with("bfk_") && key.len() >= 36 && !key.contains(&key_id[4..]), "a separate random id");
    let (ok, listed, _) = admin(&endpoint, &table, &["api-key", "list"]).await;
    assert!(ok && listed.contains(&key_id) && listed.contains("ci key") && listed.contains("active"), "{listed}");
    assert!(
        !listed.contains(&key) && !listed.contains(&shared::http::caller::api_key_hash(&key)),
        "never the key or its hash"
    );

    // The real authorizer: a token on a bearer route, the key on a bills route, junk denied.
    let token = shared::dev::Auth::new(AUTHORIZER_SECRET, None, None).token(
        &shared::domain::identity::Principal {
            user_id: 7,
            tenants: vec!["acme".into()],
            scopes: vec!["billing:read".into()],
        },
        Duration::from_secs(300),
    );
    let events = vec![
        authorizer_event("GET /bill-runs/{bill_run_id}", ("authorization", &format!("Bearer {token}"))),
        authorizer_event("GET /bills/{billId}", ("x-api-key", &key)),
        authorizer_event("GET /bills/{billId}", ("x-api-key", "bfk_not-a-key")),
        authorizer_event("GET /bills/{billId}", ("authorization", &format!("Bearer {token}"))),
    ];
    let (out, cold) = invoke("authorizer", &endpoint, &table, events).await;
    eprintln!("cold start of the authorizer (debug build): {} ms", cold.as_millis());
    let answers: Vec<Value> = out
        .iter()
        .map(|o| match o {
            Outcome::Response(r) => r.clone(),
            Outcome::Error(e) => panic!("the authorizer failed: {e}"),
        })
        .collect();
    assert_eq!(answers[0]["isAuthorized"], true);
    assert_eq!(
        answers[0]["context"],
        json!({"userId": 7, "tenants": ["acme"], "scopes": ["billing:read"], "authType": "jwt"})
    );
    assert_eq!(
        answers[1]["context"],
        json!({"userId": 42, "tenants": ["acme"], "scopes": ["billing:read", "billing:write"], "authType": "apiKey"})
    );
    assert_eq!((&answers[2]["isAuthorized"], &answers[3]["isAuthorized"]), (&json!(false), &json!(false)));

    let (ok, out, _) = admin(&endpoint, &table, &["api-key", "revoke", &key_id]).await;
    assert!(ok && out.contains(&key_id));
    let (out, _) =
        invoke("authorizer", &endpoint, &table, vec![authorizer_event("GET /bills/{billId}", ("x-api-key", &key))])
            .await;
    assert!(matches!(&out[0], Outcome::Response(r) if r["isAuthorized"] == false), "revoked: {out:?}");
    let (_, listed, _) = admin(&endpoint, &table, &["api-key", "list"]).await;
    assert!(listed.contains("revoked"), "{listed}");
    let (ok, _, err) = admin(&endpoint, &table, &["api-key", "revoke", "key_nope"]).await;
    assert!(!ok && err.contains("key_nope"));
}

/// A billing-run event for the run `id` (the events name a placeholder id).
fn for_run(name: &str, id: &str) -> Value {
    let text = event(name).to_string().replace("00000000-0000-4000-8000-000000000000", id);
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_billing_run_binaries_serve_their_family() {
    let Some(endpoint) = dynamodb_endpoint() else {
        return;
    };
    let store = fresh_dynamo(&endpoint).await;
    let table = store.table().to_owned();
    let (out, _) = invoke("create-billing-run", &endpoint, &table, vec![event("create-billing-run")]).await;
    let (status, headers, body) = response(&out[0]);
    assert_eq!((status, &body["status"], &body["sys_version"]), (201, &json!("draft"), &json!(1)), "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(headers["location"], json!(format!("/billingRuns/acme/{id}")));
    let (out, _) = invoke("get-billing-run", &endpoint, &table, vec![for_run("get-billing-run", &id)]).await;
    let (status, headers, body) = response(&out[0]);
    assert_eq!((status, &headers["etag"], &body["name"]), (200, &json!("\"1\""), &json!("November statements")));
    let (out, _) = invoke("list-billing-runs", &endpoint, &table, vec![event("list-billing-runs")]).await;
    let (_, _, body) = response(&out[0]);
    assert_eq!((&body["Count"], &body["Items"][0]["id"]), (&json!(1), &json!(id)));
    assert!(body.get("LastEvaluatedKey").is_none());
    let (out, _) = invoke("update-billing-run", &endpoint, &table, vec![for_run("update-billing-run", &id)]).await;
    let (status, _, body) = response(&out[0]);
    assert_eq!((status, &body["status"], &body["sys_version"]), (200, &json!("scheduled"), &json!(2)), "{body}");
    let (out, _) = invoke("update-billing-run", &endpoint, &table, vec![for_run("update-billing-run", &id)]).await;
    assert_eq!(response(&out[0]).0, 409, "sys_version 1 is stale now");
    let (out, _) = invoke("delete-billing-run", &endpoint, &table, vec![for_run("delete-billing-run", &id)]).await;
    assert_eq!(response(&out[0]).0, 409, "a scheduled run is not deleted");
}

/// An event of `name` whose JSON body is `edit`ed.
fn with_body(name: &str, id: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut event = for_run(name, id);
    let mut body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    edit(&mut body);
    event["body"] = Value::String(body.to_string());
    event
}

/// The scheduler's answers to `ticks` scheduled events (a work lease of 0 ms: what it moved is
/// due again at once, as the stream would step it).
async fn ticks(endpoint: &str, table: &str, ticks: usize) -> Vec<Value> {
    let events = vec![event("billing-run-scheduler"); ticks];
    let (out, _, _) = invoke_with("billing-run-scheduler", endpoint, table, &[("WORK_LEASE_MS", "0")], events).await;
    out.iter()
        .map(|o| match o {
            Outcome::Response(r) => r.clone(),
            Outcome::Error(e) => panic!("the scheduler failed: {e}"),
        })
        .collect()
}

/// The real `billing-run-scheduler` binary on its scheduled events: a run scheduled in the past
/// is found through the work index, preprocessed into one statement target and, once the client
/// schedules it for execution, run to completed; the real actions function lists the statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_billing_run_scheduler_preprocesses_and_runs_a_due_run() {
    let Some(endpoint) = dynamodb_endpoint() else {
        return;
    };
    let store = fresh_dynamo(&endpoint).await;
    let table = store.table().to_owned();
    let bill = with_body("create-bill", "-", |b| {
        b.as_object_mut().unwrap().remove("billRunId");
        b["issueDate"] = json!("2026-12-01T00:00:00Z");
        b["status"] = json!("ISSUED");
        b["dueDate"] = json!("2026-12-31T00:00:00Z");
    });
    let (out, _) = invoke("create-bill", &endpoint, &table, vec![bill]).await;
    assert_eq!(response(&out[0]).0, 201, "{:?}", response(&out[0]).2);
    let (out, _) = invoke("create-billing-run", &endpoint, &table, vec![event("create-billing-run")]).await;
    let id = response(&out[0]).2["id"].as_str().unwrap().to_owned();
    let scheduled = with_body("update-billing-run", &id, |b| b["send_statements"] = json!(true));
    let (out, _) = invoke("update-billing-run", &endpoint, &table, vec![scheduled]).await;
    assert_eq!(response(&out[0]).2["status"], "scheduled");
    let answers = ticks(&endpoint, &table, 3).await;
    assert_eq!(answers[0], json!({"due": 1, "moved": 1, "idle": 0, "failed": 0}), "scheduled -> preprocessing");
    assert_eq!(answers[1]["moved"], 1, "preprocessing -> ready for execution");
    assert_eq!(answers[2]["due"], 0, "a run ready for execution waits for its client");
    let (out, _) = invoke("get-billing-run", &endpoint, &table, vec![for_run("get-billing-run", &id)]).await;
    let ready = response(&out[0]).2;
    assert_eq!(
        (&ready["status"], &ready["statistics"][0]["total"]),
        (&json!("ready for execution"), &json!(1)),
        "{ready}"
    );
    let put = with_body("update-billing-run", &id, |b| {
        *b = ready.clone();
        b["status"] = json!("scheduled for execution");
    });
    let (out, _) = invoke("update-billing-run", &endpoint, &table, vec![put]).await;
    assert_eq!(response(&out[0]).0, 200, "{:?}", response(&out[0]).2);
    let answers = ticks(&endpoint, &table, 3).await;
    assert_eq!((answers[0]["moved"].as_u64(), answers[1]["moved"].as_u64()), (Some(1), Some(1)), "{answers:?}");
    let (out, _) = invoke("get-billing-run", &endpoint, &table, vec![for_run("get-billing-run", &id)]).await;
    let done = response(&out[0]).2;
    assert_eq!((&done["status"], &done["statistics"][0]["successful"]), (&json!("completed"), &json!(1)), "{done}");
    let (out, _) =
        invoke("list-billing-run-actions", &endpoint, &table, vec![for_run("list-billing-run-actions", &id)]).await;
    let (status, _, page) = response(&out[0]);
    assert_eq!((status, &page["Items"][0]["target"]["id"]), (200, &json!(42)), "{page}");
    assert_eq!(page["Items"][0]["statement"]["total_balance"].to_string(), "59.97");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_customer_bill_binaries_serve_their_family_and_the_worker_bills_on_demand() {
    use billflow_tests::tmf::{assert_tmf, assert_tmf_list};
    let Some(endpoint) = dynamodb_endpoint() else {
        return;
    };
    let store = fresh_dynamo(&endpoint).await;
    let table = store.table().to_owned();
    let call = |function: &'static str, event: Value| {
        let (endpoint, table) = (endpoint.clone(), table.clone());
        async move {
            let (out, _) = invoke(function, &endpoint, &table, vec![event]).await;
            response(&out[0])
        }
    };
    let (status, headers, rate) =
        call("create-applied-customer-billing-rate", event("create-applied-customer-billing-rate")).await;
    assert_eq!(status, 201, "{rate}");
    assert_tmf("AppliedCustomerBillingRate", &rate);
    assert_eq!(headers["location"], rate["href"]);
    let rate_id = rate["id"].as_str().unwrap();
    let (status, _, got) =
        call("get-applied-customer-billing-rate", for_run("get-applied-customer-billing-rate", rate_id)).await;
    assert_eq!((status, &got), (200, &rate));

    let (status, _, request) = call("create-customer-bill-on-demand", event("create-customer-bill-on-demand")).await;
    assert_eq!((status, &request["state"]), (201, &json!("inProgress")), "{request}");
    let request_id = request["id"].as_str().unwrap();
    let (status, _, refused) = call("create-customer-bill-on-demand", event("create-customer-bill-on-demand")).await;
    assert_eq!((status, &refused["code"]), (409, &json!("INVALID_STATE")), "{refused}");

    // The worker binary, on the stream record of the request's insert.
    let record = for_run("customer-bill-on-demand-worker", request_id);
    let (out, _) = invoke("bill-run-worker", &endpoint, &table, vec![record]).await;
    match &out[0] {
        Outcome::Response(r) => assert_eq!(r["batchItemFailures"], json!([]), "{r}"),
        Outcome::Error(e) => panic!("the worker failed: {e}"),
    }
    let (_, _, done) = call("get-customer-bill-on-demand", for_run("get-customer-bill-on-demand", request_id)).await;
    assert_tmf("CustomerBillOnDemand", &done);
    assert_eq!(done["state"], "done", "{done}");
    let bill_id = done["customerBill"]["id"].as_str().unwrap();
    let (status, headers, bill) = call("get-customer-bill", for_run("get-customer-bill", bill_id)).await;
    assert_eq!((status, &headers["etag"]), (200, &json!("\"1\"")));
    assert_tmf("CustomerBill", &bill);
    assert_eq!(bill["taxIncludedAmount"], json!({"unit": "EUR", "value": 0.12}));
    let (status, _, held) = call("patch-customer-bill", for_run("patch-customer-bill", bill_id)).await;
    assert_eq!((status, &held["state"]), (200, &json!("onHold")), "{held}");
    let (status, headers, bills) = call("list-customer-bills", event("list-customer-bills")).await;
    assert_eq!((status, &headers["x-total-count"]), (200, &json!("1")));
    assert_tmf_list("CustomerBill", &bills);
    let (_, _, requests) = call("list-customer-bill-on-demand", event("list-customer-bill-on-demand")).await;
    assert_eq!(requests.as_array().map(Vec::len), Some(1));
    let (_, _, rates) = call("list-applied-customer-billing-rates", event("list-applied-customer-billing-rates")).await;
    assert_eq!((&rates[0]["isBilled"], &rates[0]["bill"]["id"]), (&json!(true), &json!(bill_id)));
}

/// `event` as a caller of `tenants`, naming `tenant` in `X-Tenant-Id` when given.
fn as_tenants(mut event: Value, tenants: &[&str], tenant: Option<&str>) -> Value {
    event["requestContext"]["authorizer"]["lambda"]["tenants"] = json!(tenants);
    if let Some(tenant) = tenant {
        event["headers"]["x-tenant-id"] = json!(tenant);
    }
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_binaries_keep_tenants_apart_and_manage_a_tenants_api_keys() {
    let Some(endpoint) = dynamodb_endpoint() else {
        return;
    };
    let store = fresh_dynamo(&endpoint).await;
    let table = store.table().to_owned();
    let mut globex = as_tenants(event("create-bill-run"), &["globex"], None);
    globex["body"] = json!(globex["body"].as_str().unwrap().replace("Jan 2024", "Globex Jan"));
    let (out, _) = invoke("create-bill-run", &endpoint, &table, vec![event("create-bill-run"), globex]).await;
    let created: Vec<Value> = out.iter().map(|o| response(o).2).collect();
    assert_eq!((&created[0]["id"], &created[1]["id"]), (&json!(1), &json!(1)), "ids count per tenant");
    let both = ["acme", "globex"];
    let reads = vec![
        as_tenants(event("get-bill-run"), &both, None),
        as_tenants(event("get-bill-run"), &both, Some("globex")),
        as_tenants(event("get-bill-run"), &both, Some("initech")),
        as_tenants(event("get-bill-run"), &["initech"], None),
        as_tenants(event("get-bill-run"), &[], None),
    ];
    let (out, _) = invoke("get-bill-run", &endpoint, &table, reads).await;
    let answers: Vec<(u64, Value)> = out.iter().map(|o| (response(o).0, response(o).2)).collect();
    assert_eq!(answers[0].0, 400, "several tenants and no X-Tenant-Id: {}", answers[0].1);
    assert_eq!((answers[1].0, &answers[1].1["name"]), (200, &json!("Globex Jan")));
    assert_eq!((answers[2].0, answers[3].0, answers[4].0), (403, 404, 403));

    // create-api-key, list-api-keys and revoke-api-key: a key of acme alone, never listed in globex.
    let (out, _) = invoke("create-api-key", &endpoint, &table, vec![event("create-api-key")]).await;
    let (status, headers, key) = response(&out[0]);
    assert_eq!(
        (status, &key["tenants"], &key["scopes"]),
        (201, &json!(["acme"]), &json!(["billing:read", "billing:write"]))
    );
    let key_id = key["keyId"].as_str().unwrap().to_owned();
    assert_eq!(headers["location"], json!(format!("/api-keys/{key_id}")));
    let lists = vec![event("list-api-keys"), as_tenants(event("list-api-keys"), &["globex"], None)];
    let (out, _) = invoke("list-api-keys", &endpoint, &table, lists).await;
    assert_eq!(response(&out[0]).2["Items"][0]["keyId"], json!(key_id));
    assert_eq!(response(&out[1]).2["Count"], 0);
    let revoke = |tenants: &[&str]| {
        let text = event("revoke-api-key").to_string().replace("key_00000000000000000000", &key_id);
        as_tenants(serde_json::from_str(&text).unwrap(), tenants, None)
    };
    let (out, _) = invoke("revoke-api-key", &endpoint, &table, vec![revoke(&["globex"]), revoke(&["acme"])]).await;
    assert_eq!((response(&out[0]).0, response(&out[1]).0), (404, 204), "another tenant's key is 404");
    let (out, _) = invoke(
        "authorizer",
        &endpoint,
        &table,
        vec![authorizer_event("GET /bills/{billId}", ("x-api-key", key["apiKey"].as_str().unwrap()))],
    )
    .await;
    assert!(matches!(&out[0], Outcome::Response(r) if r["isAuthorized"] == false), "revoked: {out:?}");
}

/// The stream record DynamoDB would send of the item (pk, sk) as it is now.
async fn stream_record(store: &shared::store::dynamo::DynamoStore, pk: &str, sk: &str, name: &str) -> Value {
    use aws_sdk_dynamodb::types::AttributeValue;
    let out = store
        .client()
        .get_item()
        .table_name(store.table())
        .key("PK", AttributeValue::S(pk.into()))
        .key("SK", AttributeValue::S(sk.into()))
        .send()
        .await
        .unwrap();
    let item: serde_dynamo::Item = out.item.expect("the item exists").into();
    json!({"Records": [{"eventID": "1", "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1", "dynamodb": {"Keys": {"PK": {"S": pk}, "SK": {"S": sk}}, "NewImage": item,
        "SequenceNumber": "100", "SizeBytes": 100, "StreamViewType": "NEW_AND_OLD_IMAGES"}}]})
}

/// The real `event-publisher` and `webhook-sender` binaries: a bill's create, from its event
/// item's stream record, is put on the bus (a stand-in for EventBridge's PutEvents on loopback)
/// with the fields rules match on, and becomes a delivery; the delivery's record makes the sender
/// POST the signed event to the endpoint, which the Standard Webhooks library verifies; the
/// sender's scheduled sweep finds nothing left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_event_publisher_and_webhook_sender_deliver_a_signed_event() {
    let Some(endpoint) = dynamodb_endpoint() else {
        return;
    };
    let store = fresh_dynamo(&endpoint).await;
    let table = store.table().to_owned();
    let receiver = billflow_tests::receiver::Receiver::start().await;
    let bus = receiver.url("");
    let loopback = [("WEBHOOK_ALLOW_LOOPBACK", "true")];
    let mut create = event("create-api-key");
    create["routeKey"] = json!("POST /webhook-endpoints");
    create["rawPath"] = json!("/webhook-endpoints");
    create["requestContext"]["http"]["path"] = json!("/webhook-endpoints");
    create["body"] = json!(json!({"url": receiver.url("/hook"), "enabledEvents": ["bill.*"]}).to_string());
    let (out, _, _) = invoke_with("create-webhook-endpoint", &endpoint, &table, &loopback, vec![create]).await;
    let (status, _, body) = response(&out[0]);
    assert_eq!(status, 201, "{body}");
    let secret = body["secret"].as_str().unwrap().to_owned();
    // A bill of no run (the event's names run 1, which this table does not have).
    let mut bill = event("create-bill");
    let mut body: Value = serde_json::from_str(bill["body"].as_str().unwrap()).unwrap();
    body.as_object_mut().unwrap().remove("billRunId");
    bill["body"] = json!(body.to_string());
    let (out, _) = invoke("create-bill", &endpoint, &table, vec![bill]).await;
    assert_eq!(response(&out[0]).0, 201, "{:?}", response(&out[0]).2);

    let record = stream_record(&store, "T#acme#BILL#1", &format!("EVENT#{:020}", 1), "INSERT").await;
    let env = [("EVENT_BUS_NAME", "billflow-events"), ("AWS_ENDPOINT_URL_EVENTBRIDGE", bus.as_str())];
    let (out, _, _) = invoke_with("event-publisher", &endpoint, &table, &env, vec![record]).await;
    match &out[0] {
        Outcome::Response(r) => assert_eq!(r, &json!({"batchItemFailures": []})),
        Outcome::Error(e) => panic!("the publisher failed: {e}"),
    }
    let put = receiver.at("/")[0].clone();
    assert_eq!(put.headers["x-amz-target"], "AWSEvents.PutEvents");
    let entry = &serde_json::from_str::<Value>(&put.body).unwrap()["Entries"][0];
    assert_eq!(
        (&entry["Source"], &entry["DetailType"], &entry["EventBusName"]),
        (&json!("billflow"), &json!("bill.created"), &json!("billflow-events"))
    );
    assert_eq!(entry["Resources"], json!(["/bills/1"]));
    let detail: Value = serde_json::from_str(entry["Detail"].as_str().unwrap()).unwrap();
    let event_id = shared::domain::event::event_id(
        <shared::domain::bill::Bill as shared::domain::resource::Resource>::KIND,
        &shared::domain::key::TenantId::parse("acme").unwrap(),
        &shared::domain::key::Id::Int(1),
        1,
    )
    .unwrap();
    assert_eq!(detail["id"], event_id.as_str());

    let deliveries = store
        .client()
        .query()
        .table_name(&table)
        .index_name("GSI1")
        .key_condition_expression("GSI1PK = :pk")
        .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S("T#acme#DELIVERY".into()))
        .send()
        .await
        .unwrap();
    let items = deliveries.items.unwrap_or_default();
    assert_eq!(items.len(), 1, "one delivery for the one endpoint");
    let pk = items[0]["PK"].as_s().unwrap().clone();
    let record = stream_record(&store, &pk, "ITEM", "INSERT").await;
    let (out, _, _) = invoke_with("webhook-sender", &endpoint, &table, &loopback, vec![record, json!({})]).await;
    match &out[0] {
        Outcome::Response(r) => assert_eq!(r, &json!({"batchItemFailures": []})),
        Outcome::Error(e) => panic!("the sender failed: {e}"),
    }
    let hook = receiver.at("/hook")[0].clone();
    let mut map = lambda_http::http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        map.insert(name, hook.headers[name].parse().unwrap());
    }
    standardwebhooks::Webhook::new(&secret).unwrap().verify(hook.body.as_bytes(), &map).expect("a verified delivery");
    assert_eq!(hook.headers["webhook-id"], event_id);
    match &out[1] {
        Outcome::Response(r) => assert_eq!(r["overdue"], 0, "{r}"),
        Outcome::Error(e) => panic!("the sender's sweep failed: {e}"),
    }
}
