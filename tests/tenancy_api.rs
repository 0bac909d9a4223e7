//! The tenant matrix (docs/tenants.md), black-box over HTTP on both stores: two tenants,
//! `a` and `b`, with the same user id, each with a token, an admin token and an API key. For every
//! family and operation, `a`'s resource through `b` is 404 (as an id that does not exist), `b`'s
//! lists, counts, filters and `fields=` never show `a`'s, ids and counters count per tenant, one
//! `Idempotency-Key` is two keys, on-demand bills of one account id in two tenants run side by
//! side, a bill cannot join another tenant's run, and `b`'s worker stage leaves `a`'s bills alone.
//! Then the request's tenant: one implicit, several by `X-Tenant-Id`, none 403; and the API keys a
//! tenant manages over HTTP.

use billflow_tests::tmf::assert_tmf;
use billflow_tests::{on_both_stores, spawn_app, Backend, Reply, TestApp};
use serde_json::{json, Value};
use shared::domain::identity::Principal;

const TMF: &str = "/brm/customerBillManagement/v4";

/// One tenant's callers: a token, an admin token and an API key, all of user 7.
struct Tenant<'a> {
    app: &'a TestApp,
    name: &'static str,
    token: String,
    admin: String,
    key: String,
}

fn principal(tenants: &[&str], admin: bool) -> Principal {
    let mut scopes = vec!["billing:read".to_owned(), "billing:write".to_owned()];
    if admin {
        scopes.push("billing:admin".to_owned());
    }
    Principal { user_id: 7, tenants: tenants.iter().map(|t| (*t).to_owned()).collect(), scopes }
}

async fn tenant<'a>(app: &'a TestApp, name: &'static str) -> Tenant<'a> {
    let key = format!("test-key-of-{name}");
    shared::dev::seed_api_key(&app.store, &key, &principal(&[name], false)).await.expect("seed a key");
    Tenant {
        app,
        name,
        token: app.token_for(&principal(&[name], false)),
        admin: app.token_for(&principal(&[name], true)),
        key,
    }
}

impl Tenant<'_> {
    /// A request with the credential its route takes: the API key for `/bills`, else the token.
    fn request(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        if path.starts_with("/bills") {
            self.app.keyed(method, path, &self.key)
        } else {
            self.app.request_as(&self.token, method, path)
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = match method {
                "PATCH" if !path.starts_with("/bills") && !path.starts_with(TMF) => {
                    request.header("content-type", "application/json-patch+json").body(body.to_string())
                }
                _ => request.json(&body),
            };
        }
        self.app.send(request).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None).await
    }

    async fn created(&self, path: &str, body: Value) -> Value {
        let reply = self.send("POST", path, Some(body)).await;
        assert_eq!(reply.status, 201, "{} POST {path}: {:?}", self.name, reply.body);
        reply.body
    }
}

fn jan(name: &str) -> Value {
    json!({"name": name, "billingCycleId": 1, "periodStartDate": "2024-01-01", "periodEndDate": "2024-01-31",
        "invoiceDate": "2024-01-31"})
}

fn bill(run: Option<u64>) -> Value {
    let mut bill = json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-30T00:00:00Z",
        "account": {"id": 42, "name": "Acme"},
        "lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": 10}, {"catalogItemId": 2, "quantity": 2, "unitPrice": 5}]});
    if let Some(run) = run {
        bill["billRunId"] = json!(run);
    }
    bill
}

fn rate(value: u32) -> Value {
    json!({"billingAccount": {"id": "ACC-1"}, "name": "plan", "taxExcludedAmount": {"unit": "EUR", "value": value}})
}

fn billing_run() -> Value {
    json!({"business_unit_id": "bu-1", "name": "November statements", "recurring_billing_run_id": "monthly",
        "send_statements": true, "expiring_credit_card_reminder_options": {}, "installment_schedule_reminder_options": {},
        "statement_options": {"customer_type": "both", "business_unit_ids": ["bu-1"]},
        "installment_schedule_cancellation_options": {"date_range_start": "2026-11-01", "date_range_end": "2026-11-30"},
        "installment_schedule_options": {"date_range_start": "2026-11-01", "date_range_end": "2026-11-30"}})
}

fn ids(reply: &Reply) -> Vec<Value> {
    reply.body.as_array().expect("a list").iter().map(|item| item["id"].clone()).collect()
}

/// `b` reaching `path` answers exactly as a path that names nothing: 404.
async fn unseen(b: &Tenant<'_>, method: &str, path: &str, body: Option<Value>) {
    let reply = b.send(method, path, body).await;
    assert_eq!(reply.status, 404, "{} {method} {path}: {:?}", b.name, reply.body);
}

/// Bill runs and adhoc runs: ids per tenant, every operation on `a`'s run 404 through `b`, lists
/// and counts of `b`'s own only, and `a`'s runs unchanged by all of it.
async fn bill_runs_stay_in_their_tenant(backend: Backend) {
    let Some(app) = spawn_app(backend, false).await else { return };
    let (a, b) = (tenant(&app, "a").await, tenant(&app, "b").await);
    let a_run = a.created("/bill-runs", jan("A January")).await;
    let a_adhoc = a.created("/adhoc-bill-runs", json!({"name": "A once", "invoiceDate": "2024-02-01"})).await;
    assert_eq!((a_run["id"].clone(), a_adhoc["id"].clone()), (json!(1), json!(1)));
    for (path, other) in [("/bill-runs", "/bill-runs/1"), ("/adhoc-bill-runs", "/adhoc-bill-runs/1")] {
        let listed = b.get(path).await;
        assert_eq!((listed.status, ids(&listed), listed.header("x-total-count")), (200, vec![], Some("0")));
        let filtered = b.get(&format!("{path}?billRunStatus=OPEN&fields=id,name&sort=name")).await;
        assert_eq!((ids(&filtered), filtered.header("x-total-count")), (vec![], Some("0")));
        unseen(&b, "GET", other, None).await;
        unseen(&b, "PATCH", other, Some(json!([{"op": "replace", "path": "/name", "value": "B was here"}]))).await;
    }
    unseen(&b, "POST", "/adjust-bill-run-schedule/1?periods=1", None).await;
    // The same id in both tenants: two runs, the same cycle and period without overlap.
    let b_run = b.created("/bill-runs", jan("B January")).await;
    assert_eq!(b_run["id"], 1, "tenant b counts its own ids");
    assert_eq!(b.get("/bill-runs/1").await.body["name"], "B January");
    let after = a.get("/bill-runs/1").await;
    assert_eq!(after.body, a_run, "a's run is as a made it");
    let listed = a.get("/bill-runs?fields=name").await;
    assert_eq!(
        (listed.body.clone(), listed.header("x-total-count")),
        (json!([{"id": 1, "name": "A January"}]), Some("1"))
    );
    app.stop().await;
}

/// Bills: ids, bill numbers and line item ids per tenant; `a`'s bill 404 through `b`'s key for
/// every operation; a bill of `b` cannot join `a`'s run (answered as a run that does not exist).
async fn bills_stay_in_their_tenant(backend: Backend) {
    let Some(app) = spawn_app(backend, false).await else { return };
    let (a, b) = (tenant(&app, "a").await, tenant(&app, "b").await);
    a.created("/bill-runs", jan("A January")).await;
    let a_bill = a.created("/bills", bill(Some(1))).await;
    a.created("/bills", bill(None)).await;
    unseen(&b, "GET", "/bills/1", None).await;
    unseen(&b, "PATCH", "/bills/1", Some(json!({"description": "B was here"}))).await;
    unseen(&b, "DELETE", "/bills/1", None).await;
    for query in ["", "?billRunId=1", "?accountId=42&fields=id", "?includeArchived=true&sort=amount"] {
        let listed = b.get(&format!("/bills{query}")).await;
        assert_eq!((ids(&listed), listed.header("x-total-count")), (vec![], Some("0")), "{query}");
    }
    let joined_a = b.send("POST", "/bills", Some(bill(Some(1)))).await;
    let joined_none = b.send("POST", "/bills", Some(bill(Some(999)))).await;
    assert_eq!((joined_a.status, joined_none.status), (409, 409), "{:?}", joined_a.body);
    assert_eq!(
        joined_a.body["detail"].as_str().unwrap().replace(" 1 ", " N "),
        joined_none.body["detail"].as_str().unwrap().replace(" 999 ", " N "),
        "another tenant's run answers exactly as one that does not exist"
    );
    let b_bill = b.created("/bills", bill(None)).await;
    assert_eq!((&b_bill["id"], &b_bill["billNumber"]), (&json!(1), &a_bill["billNumber"]), "counted per tenant");
    let line_ids =
        |bill: &Value| bill["lineItems"].as_array().unwrap().iter().map(|l| l["id"].clone()).collect::<Vec<_>>();
    assert_eq!(line_ids(&b_bill), line_ids(&a_bill), "line item ids count per tenant too");
    assert_eq!(a.get("/bills/1").await.body, a_bill);
    let a_list = a.get("/bills?fields=id,billRunId").await;
    assert_eq!(a_list.header("x-total-count"), Some("2"));
    app.stop().await;
}

/// A stage of `b`'s run steps `b`'s bills only: `a`'s bills of its own run 1 stay drafts.
async fn a_stage_of_one_tenant_leaves_the_other_tenants_bills_alone(backend: Backend) {
    let Some(app) = spawn_app(backend, true).await else { return };
    let (a, b) = (tenant(&app, "a").await, tenant(&app, "b").await);
    for t in [&a, &b] {
        t.created("/bill-runs", jan("January")).await;
        for _ in 0..3 {
            t.created("/bills", bill(Some(1))).await;
        }
    }
    let close = json!([{"op": "replace", "path": "/billRunStatus", "value": "CLOSED"},
        {"op": "replace", "path": "/summaryStatus", "value": "REPORTING"}]);
    for (stage, patch) in [
        ("REPORTING", close),
        ("DRAFT_INVOICES", json!([{"op": "replace", "path": "/summaryStatus", "value": "DRAFT_INVOICES"}])),
        ("FULL_INVOICES", json!([{"op": "replace", "path": "/summaryStatus", "value": "FULL_INVOICES"}])),
    ] {
        assert_eq!(b.send("PATCH", "/bill-runs/1", Some(patch)).await.status, 200, "{stage}");
        let done = |run: &Value| run["summaryStatus"] == stage && run["summaryStatusPercentage"] == 100;
        for _ in 0..200 {
            if done(&b.get("/bill-runs/1").await.body) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert!(done(&b.get("/bill-runs/1").await.body), "b's {stage} finished");
    }
    let b_run = b.get("/bill-runs/1").await.body;
    assert_eq!(b_run["revenueInMajorCurrency"], 60, "b's report counts b's three bills of 20");
    assert_eq!(b.get("/bills?status=ISSUED").await.header("x-total-count"), Some("3"));
    assert_eq!(a.get("/bills?status=DRAFT").await.header("x-total-count"), Some("3"), "a's bills are untouched");
    let a_run = a.get("/bill-runs/1").await.body;
    assert_eq!((&a_run["billRunStatus"], &a_run["summaryStatus"]), (&json!("OPEN"), &json!("PROPERTIES")));
    app.stop().await;
}

/// One `Idempotency-Key` with one body in two tenants is two creates, never a replay of the
/// other tenant's resource, in every family that takes one.
async fn one_idempotency_key_in_two_tenants_is_two_keys(backend: Backend) {
    let Some(app) = spawn_app(backend, false).await else { return };
    let (a, b) = (tenant(&app, "a").await, tenant(&app, "b").await);
    let creates = [
        ("/bill-runs".to_owned(), jan("January")),
        ("/adhoc-bill-runs".to_owned(), json!({"name": "once", "invoiceDate": "2024-02-01"})),
        ("/bills".to_owned(), bill(None)),
        (format!("{TMF}/appliedCustomerBillingRate"), rate(10)),
    ];
    for (path, body) in creates {
        let post = |t: &Tenant<'_>| t.request("POST", &path).header("idempotency-key", "same-key").json(&body);
        let first = app.send(post(&a)).await;
        let again = app.send(post(&a)).await;
        let other = app.send(post(&b)).await;
        assert_eq!((first.status, again.header("idempotency-replayed")), (201, Some("true")), "{path}");
        assert_eq!(again.body, first.body, "{path}: a's retry replays a's resource");
        assert_eq!((other.status, other.header("idempotency-replayed")), (201, None), "{path}: {:?}", other.body);
        assert_eq!(b.get(other.header("location").unwrap()).await.status, 200, "{path}: b's own resource");
    }
    for t in [&a, &b] {
        let path = format!("/billingRuns/{}", t.name);
        let post =
            || app.request_as(&t.token, "POST", &path).header("idempotency-key", "same-key").json(&billing_run());
        let (first, again) = (app.send(post()).await, app.send(post()).await);
        assert_eq!((first.status, again.body.clone()), (201, first.body.clone()), "{path}");
    }
    app.stop().await;
}

/// Customer bills: two tenants rate one account id and ask for its bill at once; each bill holds
/// its own tenant's charges only, and every operation on `a`'s resources is 404 through `b`.
async fn on_demand_bills_of_one_account_id_in_two_tenants_run_side_by_side(backend: Backend) {
    let Some(app) = spawn_app(backend, true).await else { return };
    let (a, b) = (tenant(&app, "a").await, tenant(&app, "b").await);
    let a_rate = a.created(&format!("{TMF}/appliedCustomerBillingRate"), rate(10)).await;
    a.created(&format!("{TMF}/appliedCustomerBillingRate"), rate(10)).await;
    b.created(&format!("{TMF}/appliedCustomerBillingRate"), rate(5)).await;
    let ask = |t: &Tenant<'_>| {
        t.request("POST", &format!("{TMF}/customerBillOnDemand")).json(&json!({"billingAccount": {"id": "ACC-1"}}))
    };
    let (a_ask, b_ask) = tokio::join!(app.send(ask(&a)), app.send(ask(&b)));
    assert_eq!((a_ask.status, b_ask.status), (201, 201), "{:?} {:?}", a_ask.body, b_ask.body);
    let a_done = settle(&a, a_ask.body["href"].as_str().unwrap()).await;
    let b_done = settle(&b, b_ask.body["href"].as_str().unwrap()).await;
    assert_eq!((&a_done["state"], &b_done["state"]), (&json!("done"), &json!("done")), "{a_done} {b_done}");
    let a_bill = a.get(a_done["customerBill"]["href"].as_str().unwrap()).await.body;
    let b_bill = b.get(b_done["customerBill"]["href"].as_str().unwrap()).await.body;
    assert_tmf("CustomerBill", &a_bill);
    assert_eq!(a_bill["taxExcludedAmount"]["value"].to_string(), "20", "a's two charges alone");
    assert_eq!(b_bill["taxExcludedAmount"]["value"].to_string(), "5", "b's one charge alone");
    assert_eq!(a_bill["billNo"], b_bill["billNo"], "bill numbers count per tenant");
    let a_bill_path = format!("{TMF}/customerBill/{}", a_bill["id"].as_str().unwrap());
    for path in [
        a_bill_path.clone(),
        format!("{TMF}/customerBillOnDemand/{}", a_done["id"].as_str().unwrap()),
        format!("{TMF}/appliedCustomerBillingRate/{}", a_rate["id"].as_str().unwrap()),
    ] {
        unseen(&b, "GET", &path, None).await;
    }
    unseen(&b, "PATCH", &a_bill_path, Some(json!({"state": "onHold"}))).await;
    assert_eq!(a.get(&a_bill_path).await.body["state"], a_bill["state"], "b's PATCH changed nothing");
    for list in ["customerBill", "customerBillOnDemand", "appliedCustomerBillingRate"] {
        for query in ["", "?billingAccount.id=ACC-1", "?fields=id", &format!("?id={}", a_bill["id"].as_str().unwrap())]
        {
            let listed = b.get(&format!("{TMF}/{list}{query}")).await;
            let mine = listed
                .body
                .as_array()
                .unwrap()
                .iter()
                .all(|item| item["id"] != a_bill["id"] && item["id"] != a_rate["id"]);
            assert!(mine, "{list}{query}: {:?}", listed.body);
        }
        let a_count = a.get(&format!("{TMF}/{list}")).await.header("x-total-count").map(str::to_owned);
        let b_count = b.get(&format!("{TMF}/{list}")).await.header("x-total-count").map(str::to_owned);
        let expected = if list == "appliedCustomerBillingRate" { ("2", "1") } else { ("1", "1") };
        assert_eq!((a_count.as_deref(), b_count.as_deref()), (Some(expected.0), Some(expected.1)), "{list}");
    }
    app.stop().await;
}

/// Polls an on-demand request until it leaves `inProgress`.
async fn settle(t: &Tenant<'_>, href: &str) -> Value {
    for _ in 0..200 {
        let request = t.get(href).await.body;
        if request["state"] != "inProgress" {
            return request;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{href} never settled");
}

/// Billing runs keep the path's tenant: another tenant's path is 403, another tenant's run id in
/// one's own path 404.
async fn billing_runs_keep_the_paths_tenant(backend: Backend) {
    let Some(app) = spawn_app(backend, false).await else { return };
    let (a, b) = (tenant(&app, "a").await, tenant(&app, "b").await);
    let run = a.created("/billingRuns/a", billing_run()).await;
    let id = run["id"].as_str().unwrap();
    assert_eq!(b.get(&format!("/billingRuns/a/{id}")).await.status, 403);
    assert_eq!(b.get("/billingRuns/a").await.status, 403);
    unseen(&b, "GET", &format!("/billingRuns/b/{id}"), None).await;
    unseen(&b, "DELETE", &format!("/billingRuns/b/{id}"), None).await;
    assert_eq!(b.get("/billingRuns/b").await.body["Count"], 0);
    assert_eq!(a.get("/billingRuns/a").await.body["Count"], 1);
    app.stop().await;
}

/// The request's tenant: a credential of one tenant acts in it (and may name it); one of several
/// names it in `X-Tenant-Id` (400 without, 403 for another's); one of none is 403; the header
/// chooses where an API key of two tenants acts too.
async fn the_request_tenant_comes_from_the_credential_and_x_tenant_id(backend: Backend) {
    let Some(app) = spawn_app(backend, false).await else { return };
    let (a, b) = (tenant(&app, "a").await, tenant(&app, "b").await);
    a.created("/bill-runs", jan("A run")).await;
    let both = app.token_for(&principal(&["a", "b"], false));
    let get = |token: &str, tenant: Option<&str>| {
        let request = app.request_as(token, "GET", "/bill-runs/1");
        match tenant {
            Some(t) => request.header("x-tenant-id", t),
            None => request,
        }
    };
    let missing = app.send(get(&both, None)).await;
    assert_eq!(missing.status, 400, "{:?}", missing.body);
    assert_eq!(missing.body["errors"][0]["pointer"], "/X-Tenant-Id");
    assert_eq!(app.send(get(&both, Some("a"))).await.body["name"], "A run");
    assert_eq!(app.send(get(&both, Some("b"))).await.status, 404, "b has no run 1");
    for other in ["c", "A", "", "a,b", "a b", "T#a#"] {
        assert_eq!(app.send(get(&both, Some(other))).await.status, 403, "{other:?}");
    }
    assert_eq!(app.send(get(&a.token, Some("a"))).await.status, 200, "one's own tenant, named");
    let twice = app.send(get(&both, Some("a")).header("x-tenant-id", "b")).await;
    assert_eq!((twice.status, &twice.body["errors"][0]["pointer"]), (400, &json!("/X-Tenant-Id")), "sent twice");
    assert_eq!(app.send(get(&a.token, Some("b"))).await.status, 403, "another tenant, named");
    let none = app.token_for(&principal(&[], false));
    assert_eq!(app.send(get(&none, None)).await.status, 403);
    let invalid = app.token_for(&principal(&["a b"], false));
    assert_eq!(app.send(get(&invalid, None)).await.status, 403, "a tenant that is no tenant id");
    // An API key of two tenants (as `billflow-admin` makes them) names its tenant the same way.
    shared::dev::seed_api_key(&app.store, "key-of-two", &principal(&["a", "b"], false)).await.unwrap();
    b.created("/bills", bill(None)).await;
    let keyed = |tenant: Option<&str>| {
        let request = app.keyed("GET", "/bills/1", "key-of-two");
        tenant.map_or(request.try_clone().unwrap(), |t| request.header("x-tenant-id", t))
    };
    assert_eq!(app.send(keyed(None)).await.status, 400);
    assert_eq!(app.send(keyed(Some("b"))).await.status, 200);
    assert_eq!(app.send(keyed(Some("a"))).await.status, 404);
    app.stop().await;
}

/// API keys over HTTP: an admin of `a` issues, lists and revokes `a`'s keys; `b` never sees or
/// revokes them; no scope escalation; an API key cannot manage keys; a revoked key fails at once.
async fn a_tenant_manages_its_own_api_keys(backend: Backend) {
    let Some(app) = spawn_app(backend, false).await else { return };
    let (a, b) = (tenant(&app, "a").await, tenant(&app, "b").await);
    let admin = |t: &Tenant<'_>, method: &str, path: &str| app.request_as(&t.admin, method, path);
    let made = app
        .send(
            admin(&a, "POST", "/api-keys")
                .json(&json!({"scopes": ["billing:read", "billing:write"], "description": "ci", "expiresIn": "30d"})),
        )
        .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let (key, key_id) =
        (made.body["apiKey"].as_str().unwrap().to_owned(), made.body["keyId"].as_str().unwrap().to_owned());
    assert_eq!(made.header("location"), Some(format!("/api-keys/{key_id}").as_str()));
    assert_eq!(made.header("cache-control"), Some("no-store"), "no cache keeps the key");
    assert_eq!(
        (&made.body["tenants"], &made.body["userId"], &made.body["state"]),
        (&json!(["a"]), &json!(7), &json!("active"))
    );
    // The new key works at once, in tenant a only.
    a.created("/bills", bill(None)).await;
    assert_eq!(app.send(app.keyed("GET", "/bills/1", &key)).await.status, 200);
    let listed = app.send(admin(&a, "GET", "/api-keys")).await;
    assert_eq!(listed.status, 200);
    let listed_ids: Vec<&str> =
        listed.body["Items"].as_array().unwrap().iter().map(|k| k["keyId"].as_str().unwrap()).collect();
    assert_eq!(listed.body["Count"], 2, "the seeded key and the new one: {:?}", listed.body);
    assert!(listed_ids.contains(&key_id.as_str()));
    assert!(!listed.body.to_string().contains(&key), "a list never shows a key");
    let first = app.send(admin(&a, "GET", "/api-keys?limit=1")).await;
    let cursor = first.body["LastEvaluatedKey"].as_str().expect("a second page").to_owned();
    let second = app.send(admin(&a, "GET", &format!("/api-keys?limit=1&exclusiveStartKey={cursor}"))).await;
    assert_eq!((first.body["Count"].clone(), second.body["Count"].clone()), (json!(1), json!(1)));
    assert!(second.body.get("LastEvaluatedKey").is_none());
    let b_cursor = app.send(admin(&b, "GET", &format!("/api-keys?exclusiveStartKey={cursor}"))).await;
    assert_eq!(b_cursor.status, 400, "a's cursor in b");
    let b_listed = app.send(admin(&b, "GET", "/api-keys")).await;
    assert!(!b_listed.body.to_string().contains(&key_id), "b never lists a's keys");
    assert_eq!(app.send(admin(&b, "DELETE", &format!("/api-keys/{key_id}"))).await.status, 404);
    assert_eq!(app.send(app.keyed("GET", "/bills/1", &key)).await.status, 200, "b's DELETE did nothing");
    // Refusals: no escalation, no admin scope, an API key, a bad body, an Idempotency-Key.
    let escalate =
        app.send(admin(&a, "POST", "/api-keys").json(&json!({"scopes": ["billing:admin", "billing:read"]}))).await;
    assert_eq!(escalate.status, 201, "an admin may grant admin");
    let writer = app.token_for(&principal(&["a"], false));
    assert_eq!(app.send(app.request_as(&writer, "GET", "/api-keys")).await.status, 403, "billing:admin only");
    let reader_admin = app.token_for(&Principal { scopes: vec!["billing:admin".into()], ..principal(&["a"], false) });
    let granted =
        app.send(app.request_as(&reader_admin, "POST", "/api-keys").json(&json!({"scopes": ["billing:write"]}))).await;
    assert_eq!(granted.status, 403, "a scope the caller lacks: {:?}", granted.body);
    assert_eq!(app.send(app.keyed("GET", "/api-keys", &key)).await.status, 401, "an API key is not a bearer token");
    for bad in [
        json!({}),
        json!({"scopes": []}),
        json!({"scopes": ["root"]}),
        json!({"scopes": ["billing:read"], "tenants": ["b"]}),
        json!({"scopes": ["billing:read"], "expiresIn": "0d"}),
    ] {
        assert_eq!(app.send(admin(&a, "POST", "/api-keys").json(&bad)).await.status, 400, "{bad}");
    }
    let replayable =
        admin(&a, "POST", "/api-keys").header("idempotency-key", "k").json(&json!({"scopes": ["billing:read"]}));
    assert_eq!(app.send(replayable).await.status, 400);
    // Revoked: the key fails from the next request; revoking again is 204.
    assert_eq!(app.send(admin(&a, "DELETE", &format!("/api-keys/{key_id}"))).await.status, 204);
    assert_eq!(app.send(app.keyed("GET", "/bills/1", &key)).await.status, 401);
    assert_eq!(app.send(admin(&a, "DELETE", &format!("/api-keys/{key_id}"))).await.status, 204);
    for unknown in ["key_00000000000000000000", "nope", "key_%2e%2e"] {
        assert_eq!(app.send(admin(&a, "DELETE", &format!("/api-keys/{unknown}"))).await.status, 404, "{unknown}");
    }
    // A key `billflow-admin` made for both tenants: each sees it as its own alone, and neither may
    // revoke it over HTTP (it would lock the other out).
    shared::dev::seed_api_key(&app.store, "key-of-both", &principal(&["a", "b"], false)).await.unwrap();
    let shared_key = app.store.api_key(&shared::http::caller::api_key_hash("key-of-both")).await.unwrap().unwrap();
    for t in [&a, &b] {
        let listed = app.send(admin(t, "GET", "/api-keys")).await;
        let seen =
            listed.body["Items"].as_array().unwrap().iter().find(|k| k["keyId"] == shared_key.key_id.as_str()).cloned();
        assert_eq!(seen.expect("listed in both tenants")["tenants"], json!([t.name]), "no other tenant is shown");
        let refused = app.send(admin(t, "DELETE", &format!("/api-keys/{}", shared_key.key_id))).await;
        assert_eq!(refused.status, 409, "{:?}", refused.body);
    }
    assert_eq!(app.send(app.keyed("GET", "/bills/1", "key-of-both").header("x-tenant-id", "a")).await.status, 200);
    let states = app.send(admin(&a, "GET", "/api-keys")).await;
    let revoked =
        states.body["Items"].as_array().unwrap().iter().find(|k| k["keyId"] == key_id.as_str()).unwrap().clone();
    assert_eq!(revoked["state"], "revoked");
    app.stop().await;
}

on_both_stores!(
    bill_runs_stay_in_their_tenant,
    bills_stay_in_their_tenant,
    a_stage_of_one_tenant_leaves_the_other_tenants_bills_alone,
    one_idempotency_key_in_two_tenants_is_two_keys,
    on_demand_bills_of_one_account_id_in_two_tenants_run_side_by_side,
    billing_runs_keep_the_paths_tenant,
    the_request_tenant_comes_from_the_credential_and_x_tenant_id,
    a_tenant_manages_its_own_api_keys,
);
