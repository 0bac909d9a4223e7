//! Black-box tests of the TMF678 customer-bill API over HTTP through the dev server, on the
//! embedded store and on DynamoDB Local. Every response body is validated against the official
//! TMF678 v4 schemas (`shared/reference/`): resources, lists and every error.

use std::collections::HashSet;
use std::time::Duration;

use billflow_tests::tmf::{assert_tmf, assert_tmf_list};
use billflow_tests::{on_both_stores, spawn_app, spawn_app_with, Backend, Reply, TestApp};
use serde_json::{json, Value};
use shared::domain::customer_bill::{new_id, AppliedRate, BillState, CustomerBill};
use shared::domain::identity::Principal;
use shared::domain::key::Id;
use shared::domain::resource::Resource;
use shared::store::{AuditEvent, MAX_CLIENT_ITEM_BYTES};

const BASE: &str = "/brm/customerBillManagement/v4";

fn path(rest: &str) -> String {
    format!("{BASE}{rest}")
}

/// A JSON number with exactly these digits.
fn number(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn charge(account: &str, value: &str, unit: &str) -> Value {
    json!({"billingAccount": {"id": account}, "name": "plan", "taxExcludedAmount": {"unit": unit, "value": number(value)}})
}

fn taxed(account: &str, value: &str, tax_rate: &str, tax: &str) -> Value {
    let mut body = charge(account, value, "EUR");
    body["appliedTax"] = json!([{"taxCategory": "VAT", "taxRate": number(tax_rate), "taxAmount": {"unit": "EUR", "value": number(tax)}}]);
    body
}

async fn post_rate(app: &TestApp, body: &Value) -> Value {
    let reply = app.post(&path("/appliedCustomerBillingRate"), body).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_tmf("AppliedCustomerBillingRate", &reply.body);
    reply.body
}

async fn request_bill(app: &TestApp, account: &str) -> Reply {
    app.post(&path("/customerBillOnDemand"), &json!({"billingAccount": {"id": account}})).await
}

/// Waits until the on-demand request leaves `inProgress`, and returns it.
async fn settled(app: &TestApp, request: &Value) -> Value {
    let href = request["href"].as_str().unwrap();
    let done = app.wait_for(href, |r| r["state"] != "inProgress").await;
    assert_tmf("CustomerBillOnDemand", &done);
    done
}

fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_tmf("Error", &reply.body);
    assert_eq!(reply.body["status"], status.to_string(), "{:?}", reply.body);
    assert_eq!(reply.body["code"], code, "{:?}", reply.body);
    assert_eq!(reply.body["@type"], "Error");
}

#[test]
fn the_schema_checks_refuse_what_the_standard_does_not_allow() {
    let refused = |definition: &'static str, value: Value| {
        std::panic::catch_unwind(move || assert_tmf(definition, &value)).is_err()
    };
    assert_tmf("Money", &json!({"unit": "EUR", "value": 1.5}));
    assert!(refused("Money", json!({"unit": "EUR", "value": "1.5"})), "a string is not a number");
    assert!(refused("Money", json!({"unit": "EUR", "amount": 1})), "an undeclared attribute");
    assert!(refused("CustomerBill", json!({"id": "1", "billingAccount": {"id": "A", "colour": "red"}})));
    assert!(refused("CustomerBill", json!({"id": "1", "state": "paused"})), "a state outside the enum");
    assert!(refused("Error", json!({"code": "X"})), "an Error needs its reason");
    assert_tmf("CustomerBill", &json!({"id": "1", "state": "inProgress"}));
}

async fn rated_charges_become_an_on_demand_bill_that_goes_on_hold(backend: Backend) {
    let Some(app) = spawn_app(backend, true).await else { return };
    let first = post_rate(&app, &taxed("ACC-1", "0.1", "0.2", "0.02")).await;
    assert_eq!(first["taxIncludedAmount"], json!({"unit": "EUR", "value": number("0.12")}));
    assert_eq!((&first["isBilled"], first.get("bill")), (&json!(false), None));
    post_rate(&app, &taxed("ACC-1", "0.2", "0.20", "0.04")).await;
    post_rate(&app, &charge("ACC-OTHER", "5", "EUR")).await;

    let body = json!({"billingAccount": {"id": "ACC-1", "name": "Acme"}, "name": "now", "description": "November",
                      "relatedParty": {"id": "P1", "role": "payer", "@referredType": "Individual"}});
    let reply = app.post(&path("/customerBillOnDemand"), &body).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_tmf("CustomerBillOnDemand", &reply.body);
    assert_eq!(reply.body["state"], "inProgress");
    assert_eq!(reply.header("location"), reply.body["href"].as_str());
    let done = settled(&app, &reply.body).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["description"], "November");
    let bill_href = done["customerBill"]["href"].as_str().unwrap().to_owned();

    let got = app.get(&bill_href).await;
    assert_eq!((got.status, got.header("etag")), (200, Some("\"1\"")));
    let bill = got.body;
    assert_tmf("CustomerBill", &bill);
    for field in [
        "id",
        "href",
        "@type",
        "billNo",
        "billDate",
        "category",
        "runType",
        "state",
        "amountDue",
        "remainingAmount",
        "taxExcludedAmount",
        "taxIncludedAmount",
        "taxItem",
        "billDocument",
        "billingAccount",
        "billingPeriod",
        "paymentDueDate",
        "relatedParty",
        "lastUpdate",
    ] {
        assert!(bill.get(field).is_some(), "a customer bill carries {field}: {bill}");
    }
    let money = |value: &str| json!({"unit": "EUR", "value": number(value)});
    assert_eq!(bill["taxExcludedAmount"], money("0.3"), "0.1 + 0.2 is exactly 0.3");
    assert_eq!(bill["taxItem"], json!([{"taxCategory": "VAT", "taxRate": number("0.2"), "taxAmount": money("0.06")}]));
    assert_eq!(
        (&bill["taxIncludedAmount"], &bill["amountDue"], &bill["remainingAmount"]),
        (&money("0.36"), &money("0.36"), &money("0.36"))
    );
    assert_eq!(
        (&bill["state"], &bill["category"], &bill["runType"], &bill["billNo"]),
        (&json!("inProgress"), &json!("onDemand"), &json!("offCycle"), &json!("1"))
    );
    assert_eq!(bill["billingAccount"], json!({"id": "ACC-1", "name": "Acme"}));
    assert_eq!(bill["relatedParty"], json!([{"id": "P1", "role": "payer", "@referredType": "Individual"}]));
    assert_eq!(bill["billDocument"][0]["mimeType"], "application/pdf");

    // The rates are billed on it; the other account's is not.
    let rates = app.get(&path("/appliedCustomerBillingRate?billingAccount.id=ACC-1")).await;
    assert_tmf_list("AppliedCustomerBillingRate", &rates.body);
    assert_eq!(rates.body.as_array().unwrap().len(), 2);
    for rate in rates.body.as_array().unwrap() {
        assert_eq!((&rate["isBilled"], &rate["bill"]["href"]), (&json!(true), &json!(bill_href)));
    }
    let unbilled = app.get(&path("/appliedCustomerBillingRate?isBilled=false")).await;
    assert_eq!(unbilled.body.as_array().unwrap().len(), 1);
    assert_eq!(unbilled.body[0]["billingAccount"]["id"], "ACC-OTHER");

    // PATCH: to onHold (merge patch, Oracle's spelling), the same again (nothing written), back
    // by JSON Patch, and `{}`.
    let patch = |content_type: &'static str, body: Value| {
        app.send(app.request("PATCH", &bill_href).header("content-type", content_type).body(body.to_string()))
    };
    let held = patch("application/merge-patch+json", json!({"state": "OnHold"})).await;
    assert_eq!((held.status, held.header("etag")), (200, Some("\"2\"")), "{:?}", held.body);
    assert_tmf("CustomerBill", &held.body);
    assert_eq!(held.body["state"], "onHold", "answered in TMF camelCase");
    assert_ne!(held.body["lastUpdate"], bill["lastUpdate"]);
    let again = patch("application/json", json!({"state": "onHold", "@type": "CustomerBill"})).await;
    assert_eq!((again.status, again.header("etag")), (200, Some("\"2\"")), "the same state writes nothing");
    let back =
        patch("application/json-patch+json", json!([{"op": "replace", "path": "/state", "value": "inProgress"}])).await;
    assert_eq!((back.status, &back.body["state"]), (200, &json!("inProgress")));
    let empty = patch("application/merge-patch+json", json!({})).await;
    assert_eq!((empty.status, empty.header("etag")), (200, Some("\"3\"")));
    assert_tmf("CustomerBill", &empty.body);
    let bill_id = uuid::Uuid::parse_str(bill["id"].as_str().unwrap()).unwrap();
    let key = app.dev().repo::<CustomerBill>().key(Id::Uuid(bill_id)).unwrap();
    let events = app.store.events(&key).await.unwrap();
    let moves: Vec<_> = events.iter().map(|e| (e.from_status.as_deref(), e.to_status.as_deref())).collect();
    assert_eq!(
        moves,
        vec![(None, None), (Some("inProgress"), Some("onHold")), (Some("onHold"), Some("inProgress"))],
        "one audit event per change"
    );

    // Every read of the family is a TMF resource.
    assert_tmf_list("CustomerBill", &app.get(&path("/customerBill")).await.body);
    assert_tmf_list("CustomerBillOnDemand", &app.get(&path("/customerBillOnDemand")).await.body);
    assert_tmf("CustomerBillOnDemand", &app.get(done["href"].as_str().unwrap()).await.body);
    assert_tmf("AppliedCustomerBillingRate", &app.get(first["href"].as_str().unwrap()).await.body);
    app.stop().await;
}

async fn every_error_is_a_tmf_error_with_a_stable_code(backend: Backend) {
    let Some(app) = spawn_app(backend, false).await else { return };
    let rate = post_rate(&app, &charge("ACC-1", "10", "EUR")).await;
    let rate_href = rate["href"].as_str().unwrap().to_owned();

    let anonymous = app.send(app.http.get(format!("{}{}", app.base, path("/customerBill")))).await;
    assert_error(&anonymous, 401, "UNAUTHORIZED");
    let reader = Principal { user_id: 3, tenants: vec!["dev".into()], scopes: vec!["billing:read".into()] };
    let as_caller = |who: &Principal, method: reqwest::Method, url: &str| {
        app.http.request(method, format!("{}{url}", app.base)).bearer_auth(app.token_for(who))
    };
    let post = as_caller(&reader, reqwest::Method::POST, &path("/appliedCustomerBillingRate"));
    assert_error(&app.send(post.json(&charge("A", "1", "EUR"))).await, 403, "FORBIDDEN");
    let nobody = Principal { user_id: 4, tenants: vec![], scopes: vec![] };
    assert_error(&app.send(as_caller(&nobody, reqwest::Method::GET, &rate_href)).await, 403, "FORBIDDEN");
    assert_eq!(app.send(as_caller(&reader, reqwest::Method::GET, &rate_href)).await.status, 200);
    let homeless = Principal { tenants: vec![], ..reader.clone() };
    assert_error(&app.send(as_caller(&homeless, reqwest::Method::GET, &rate_href)).await, 403, "FORBIDDEN");

    assert_error(&app.get(&path(&format!("/customerBill/{}", new_id()))).await, 404, "NOT_FOUND");
    assert_error(&app.get(&path("/customerBill/not-a-uuid")).await, 404, "NOT_FOUND");
    assert_error(&app.get(&path("/customerBillOnDemand/42")).await, 404, "NOT_FOUND");
    assert_error(&app.get(&path("/nothing")).await, 404, "NOT_FOUND");

    let deleted = app.send(app.request("DELETE", &rate_href)).await;
    assert_error(&deleted, 405, "METHOD_NOT_ALLOWED");
    assert_eq!(deleted.header("allow"), Some("GET"));
    let put = app.send(app.request("PUT", &path("/customerBill")).json(&json!({}))).await;
    assert_error(&put, 405, "METHOD_NOT_ALLOWED");
    assert_eq!(put.header("allow"), Some("GET"));

    // A bill in a state other than inProgress or onHold (none is made so today: seeded).
    let bill_id = new_id();
    let bill: CustomerBill = serde_json::from_value(json!({
        "id": bill_id, "href": path(&format!("/customerBill/{bill_id}")), "@type": "CustomerBill", "billNo": "9",
        "billDate": "2026-11-01T00:00:00Z", "category": "onDemand", "runType": "offCycle", "state": "settled",
        "amountDue": {"unit": "EUR", "value": 0}, "remainingAmount": {"unit": "EUR", "value": 0},
        "taxExcludedAmount": {"unit": "EUR", "value": 0}, "taxIncludedAmount": {"unit": "EUR", "value": 0},
        "taxItem": [], "billDocument": [], "billingAccount": {"id": "ACC-9"}, "billingPeriod": {},
        "paymentDueDate": "2026-12-01T00:00:00Z", "relatedParty": [], "lastUpdate": "2026-11-01T00:00:00Z"
    }))
    .unwrap();
    assert_eq!(bill.state, BillState::Settled);
    let bills = app.dev().repo::<CustomerBill>();
    app.store.create(bills.new_item(&bill, AuditEvent::new(None, "seed")).unwrap()).await.unwrap();
    let bill_path = path(&format!("/customerBill/{bill_id}"));
    let patch = |body: &str, content_type: &str| {
        app.send(app.request("PATCH", &bill_path).header("content-type", content_type).body(body.to_owned()))
    };
    assert_error(&patch(r#"{"state":"onHold"}"#, "application/merge-patch+json").await, 409, "INVALID_STATE");
    assert_error(&patch(r#"{"state":"sent"}"#, "application/merge-patch+json").await, 400, "INVALID_BODY");
    assert_error(&patch(r#"{"billNo":"1"}"#, "application/json").await, 400, "INVALID_BODY");
    assert_error(&patch(r#"{"state":"onHold"}"#, "text/plain").await, 415, "UNSUPPORTED_MEDIA_TYPE");
    assert_error(&patch(r#"{"state":"#, "application/json").await, 400, "INVALID_BODY");
    let stale = app
        .send(
            app.request("PATCH", &bill_path)
                .header("content-type", "application/json")
                .header("if-match", "\"7\"")
                .body(r#"{"state":"onHold"}"#),
        )
        .await;
    assert_error(&stale, 412, "PRECONDITION_FAILED");
    let huge = format!(r#"{{"state":"onHold","x":"{}"}}"#, "a".repeat(1024 * 1024 + 1));
    assert_error(&patch(&huge, "application/json").await, 413, "PAYLOAD_TOO_LARGE");

    let keyed = |body: Value| {
        app.send(app.request("POST", &path("/appliedCustomerBillingRate")).header("idempotency-key", "k-1").json(&body))
    };
    let once = keyed(charge("ACC-2", "1", "EUR")).await;
    assert_eq!(once.status, 201);
    let replay = keyed(charge("ACC-2", "1", "EUR")).await;
    assert_eq!((replay.status, replay.header("idempotency-replayed"), &replay.body), (201, Some("true"), &once.body));
    assert_error(&keyed(charge("ACC-2", "2", "EUR")).await, 422, "IDEMPOTENCY_KEY_REUSED");

    let mut server_owned = charge("ACC-2", "1", "EUR");
    server_owned["isBilled"] = json!(true);
    let refused = app.post(&path("/appliedCustomerBillingRate"), &server_owned).await;
    assert_error(&refused, 400, "INVALID_BODY");
    assert!(refused.body["message"].as_str().unwrap().contains("/isBilled"), "{:?}", refused.body);
    assert_error(&app.get(&path("/customerBill?colour=red")).await, 400, "INVALID_BODY");
    assert_error(&app.get(&path("/customerBill?limit=0")).await, 400, "INVALID_BODY");
    assert_error(&app.get(&path("/customerBill?fields=colour")).await, 400, "INVALID_BODY");
    assert_error(&app.get(&format!("{rate_href}?limit=2")).await, 400, "INVALID_BODY");
    app.stop().await;
}

/// The ids of a rates list, its two counts and its body (validated as TMF).
async fn listed(app: &TestApp, query: &str) -> (Vec<String>, (Option<String>, Option<String>), Value) {
    let reply = app.get(&path(&format!("/appliedCustomerBillingRate{query}"))).await;
    assert_eq!(reply.status, 200, "{query}: {:?}", reply.body);
    assert_tmf_list("AppliedCustomerBillingRate", &reply.body);
    let found = reply.body.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    let counts = (reply.header("x-result-count").map(str::to_owned), reply.header("x-total-count").map(str::to_owned));
    (found, counts, reply.body)
}

async fn lists_page_filter_and_select_newest_first(backend: Backend) {
    let Some(app) = spawn_app(backend, false).await else { return };
    let mut ids = Vec::new();
    for (i, account) in ["A1", "A1", "A2", "A1", "A2"].iter().enumerate() {
        let rate = post_rate(&app, &charge(account, &format!("{}.50", i + 1), "EUR")).await;
        ids.push(rate["id"].as_str().unwrap().to_owned());
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    let (all, counts, _) = listed(&app, "").await;
    assert_eq!((all, counts), (newest_first.clone(), (Some("5".into()), Some("5".into()))));
    let (page, counts, _) = listed(&app, "?offset=1&limit=2").await;
    assert_eq!((page, counts), (newest_first[1..3].to_vec(), (Some("2".into()), Some("5".into()))));
    let (past, counts, _) = listed(&app, "?offset=9").await;
    assert_eq!((past.len(), counts), (0, (Some("0".into()), Some("5".into()))));
    let (a2, counts, _) = listed(&app, "?billingAccount.id=A2").await;
    assert_eq!((a2, counts.1), (vec![ids[4].clone(), ids[2].clone()], Some("2".into())));
    let (both, _, _) = listed(&app, "?billingAccount.id=A2,A1&limit=1&offset=1").await;
    assert_eq!(both, vec![ids[3].clone()]);
    let (by_id, _, _) = listed(&app, &format!("?id={},{},nonsense", ids[0], ids[1])).await;
    assert_eq!(by_id, vec![ids[1].clone(), ids[0].clone()]);
    let (by_value, _, _) = listed(&app, "?taxExcludedAmount.value=3.5").await;
    assert_eq!(by_value, vec![ids[2].clone()], "numbers compare as numbers: 3.5 finds 3.50");
    let (combined, _, _) = listed(&app, "?billingAccount.id=A1&isBilled=false&name=plan").await;
    assert_eq!(combined.len(), 3);
    let (none, counts, _) = listed(&app, "?isBilled=true").await;
    assert_eq!((none.len(), counts.1), (0, Some("0".into())));
    let (_, _, selected) = listed(&app, "?fields=name&limit=1").await;
    let keys: HashSet<&str> = selected[0].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, HashSet::from(["id", "href", "@type", "name"]));
    let (_, _, just_ids) = listed(&app, "?fields=id&limit=1").await;
    assert!(just_ids[0].get("href").is_some(), "fields=id still carries href");
    let single = app.get(&path(&format!("/appliedCustomerBillingRate/{}?fields=taxExcludedAmount", ids[0]))).await;
    assert_eq!(single.body.as_object().unwrap().len(), 4, "{:?}", single.body);
    for bad in ["?limit=1001", "?offset=-1", "?billingAccount.colour=x", "?fields=billingAccount.id"] {
        assert_error(&app.get(&path(&format!("/appliedCustomerBillingRate{bad}"))).await, 400, "INVALID_BODY");
    }
    app.stop().await;
}

async fn requests_without_one_currency_or_any_rate_are_rejected_and_bill_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend, true).await else { return };
    let body = json!({"billingAccount": {"id": "EMPTY"}, "description": "month end"});
    let empty = app.post(&path("/customerBillOnDemand"), &body).await;
    assert_eq!(empty.status, 201, "{:?}", empty.body);
    let rejected = settled(&app, &empty.body).await;
    assert_eq!(rejected["state"], "rejected");
    assert_eq!(rejected["description"], "month end (no unbilled rates for billing account EMPTY)");

    post_rate(&app, &charge("MIXED", "1", "EUR")).await;
    post_rate(&app, &charge("MIXED", "2", "USD")).await;
    let mixed = settled(&app, &request_bill(&app, "MIXED").await.body).await;
    assert_eq!(mixed["state"], "rejected");
    assert!(mixed["description"].as_str().unwrap().contains("more than one currency"), "{mixed}");
    let unbilled = app.get(&path("/appliedCustomerBillingRate?billingAccount.id=MIXED&isBilled=false")).await;
    assert_eq!(unbilled.body.as_array().unwrap().len(), 2, "no rate was touched");
    assert_eq!(app.get(&path("/customerBill")).await.body, json!([]));
    // The account is free again: another request is accepted.
    assert_eq!(request_bill(&app, "MIXED").await.status, 201);

    // A bill whose tax items would not fit an item is refused before any rate is touched.
    for i in 0..100 {
        let mut body = charge("TAXES", "1", "EUR");
        let category = format!("{i:03}{}", "x".repeat(3990));
        body["appliedTax"] = json!([{"taxCategory": category, "taxAmount": {"unit": "EUR", "value": 0.1}}]);
        post_rate_quiet(&app, body).await;
    }
    let large = settled(&app, &request_bill(&app, "TAXES").await.body).await;
    assert_eq!(large["state"], "rejected");
    assert!(large["description"].as_str().unwrap().contains("too large"), "{large}");
    let unbilled = app.get(&path("/appliedCustomerBillingRate?billingAccount.id=TAXES&isBilled=false&fields=id")).await;
    assert_eq!(unbilled.header("x-total-count"), Some("100"), "no rate was touched");
    app.stop().await;
}

/// Sums the excluded amounts of the account's bills and checks that every rate is billed exactly
/// once, on a bill that exists.
async fn assert_billed_once(app: &TestApp, account: &str, rates: usize, total: &str) {
    let listed = app.get(&path(&format!("/appliedCustomerBillingRate?billingAccount.id={account}&limit=1000"))).await;
    let rates_read: Vec<AppliedRate> = serde_json::from_value(listed.body).unwrap();
    assert_eq!(rates_read.len(), rates);
    let bills = app.get(&path(&format!("/customerBill?billingAccount.id={account}"))).await.body;
    assert_tmf_list("CustomerBill", &bills);
    let bill_ids: HashSet<String> =
        bills.as_array().unwrap().iter().map(|b| b["id"].as_str().unwrap().to_owned()).collect();
    for rate in &rates_read {
        assert!(rate.is_billed, "every rate is billed: {:?}", rate.id);
        assert!(bill_ids.contains(&rate.bill.as_ref().unwrap().id), "on a published bill");
    }
    let sum: rust_decimal::Decimal = bills
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["taxExcludedAmount"]["value"].to_string().parse::<rust_decimal::Decimal>().unwrap())
        .sum();
    assert_eq!(sum, total.parse().unwrap(), "the bills hold every rate once");
}

async fn two_requests_for_one_account_at_once_bill_each_rate_once(backend: Backend) {
    let Some(app) = spawn_app_with(backend, true, 30).await else { return };
    for value in ["0.1", "0.2", "0.3"] {
        post_rate(&app, &charge("RACE", value, "EUR")).await;
    }
    let (a, b) = tokio::join!(request_bill(&app, "RACE"), request_bill(&app, "RACE"));
    let mut statuses = vec![a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, vec![201, 409], "one request bills the account; the other is refused while it runs");
    let (won, lost) = if a.status == 201 { (a, b) } else { (b, a) };
    assert_error(&lost, 409, "INVALID_STATE");
    assert_eq!(settled(&app, &won.body).await["state"], "done");
    assert_billed_once(&app, "RACE", 3, "0.6").await;
    // Afterwards nothing is left to bill.
    let after = settled(&app, &request_bill(&app, "RACE").await.body).await;
    assert_eq!(after["state"], "rejected");
    app.stop().await;
}

async fn an_account_with_more_rates_than_a_step_is_billed_in_steps_into_one_bill(backend: Backend) {
    let Some(app) = spawn_app(backend, true).await else { return };
    let count = 250;
    for chunk in (0..count).collect::<Vec<_>>().chunks(25) {
        let posts = chunk.iter().map(|i| post_rate_quiet(&app, charge("BIG", &format!("0.0{}", i % 10), "EUR")));
        futures::future::join_all(posts).await;
    }
    let done = settled(&app, &request_bill(&app, "BIG").await.body).await;
    assert_eq!(done["state"], "done", "{done}");
    let total: u32 = (0..count).map(|i| i % 10).sum();
    assert_billed_once(&app, "BIG", count as usize, &format!("{}.{:02}", total / 100, total % 100)).await;
    let bills = app.get(&path("/customerBill?billingAccount.id=BIG")).await.body;
    assert_eq!(bills.as_array().unwrap().len(), 1, "one bill, published when every rate is in it");
    app.stop().await;
}

/// A rate whose stored form is exactly the client bound: characteristics of 3,900 characters,
/// the last one cut to fill what is left (measured on probes of another account).
async fn rate_at_the_bound(app: &TestApp, account: &str) -> Value {
    let entry = |i: usize, len: usize| json!({"name": format!("c{i}"), "value": "x".repeat(len)});
    let with = |entries: Vec<Value>, account: &str| {
        let mut body = charge(account, "1", "EUR");
        body["characteristic"] = json!(entries);
        // A date as sent keeps the stored form's size the same from one rate to the next.
        body["date"] = json!("2024-03-01T00:00:00Z");
        body
    };
    let probe = |body: Value| async move { app.post(&path("/appliedCustomerBillingRate"), &body).await };
    let full = (0..80).map(|i| entry(i, 3900)).collect::<Vec<_>>();
    let (mut entries, mut last) = (full.clone(), full.len());
    while probe(with(entries.clone(), "PROBE")).await.status != 413 {
        entries.push(entry(last, 3900));
        last += 1;
    }
    // The most full entries that fit, and a last one of one character (one full entry fewer
    // when even that does not fit), whose value then takes what is left.
    entries.pop();
    entries.push(entry(last, 1));
    let measured = loop {
        let reply = probe(with(entries.clone(), "PROBE")).await;
        if reply.status == 201 {
            break reply.body;
        }
        entries.truncate(entries.len() - 2);
        entries.push(entry(last, 1));
    };
    let fill = 1 + MAX_CLIENT_ITEM_BYTES - measured.to_string().len();
    entries.pop();
    entries.push(entry(last, fill));
    let over = probe(with([entries.clone(), vec![entry(last + 1, 0)]].concat(), account)).await;
    assert_error(&over, 413, "PAYLOAD_TOO_LARGE");
    let body = with(entries, account);
    let reply = app.post(&path("/appliedCustomerBillingRate"), &body).await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body.to_string().len(), MAX_CLIENT_ITEM_BYTES, "exactly at the client bound");
    body
}

/// 40 ordinary rates and 12 at the client bound (4 MB together, past one transaction): the
/// worker's change to each fits its headroom, its steps stop at their byte budget, and every rate
/// is billed once on the one bill.
async fn rates_at_the_size_bound_are_billed_in_steps_that_fit_a_transaction(backend: Backend) {
    let Some(app) = spawn_app(backend, true).await else { return };
    for _ in 0..40 {
        post_rate_quiet(&app, charge("HEAVY", "0.01", "EUR")).await;
    }
    let big = rate_at_the_bound(&app, "HEAVY").await;
    for _ in 1..12 {
        post_rate_quiet(&app, big.clone()).await;
    }
    let done = settled(&app, &request_bill(&app, "HEAVY").await.body).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_billed_once(&app, "HEAVY", 52, "12.40").await;
    let account = app.get(&path("/customerBillOnDemand?billingAccount.id=HEAVY")).await.body;
    assert_eq!(account.as_array().map(Vec::len), Some(1));
    // The hold is released: a second request finds nothing to bill.
    assert_eq!(settled(&app, &request_bill(&app, "HEAVY").await.body).await["state"], "rejected");
    app.stop().await;
}

async fn post_rate_quiet(app: &TestApp, body: Value) {
    let reply = app.post(&path("/appliedCustomerBillingRate"), &body).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
}

#[tokio::test]
async fn ids_are_time_ordered_so_lists_are_newest_first() {
    let first = new_id();
    tokio::time::sleep(Duration::from_millis(2)).await;
    let second = new_id();
    assert!(Id::Uuid(first).sort_key() < Id::Uuid(second).sort_key());
    assert_eq!(CustomerBill::KIND.name, "CBILL");
}

/// A request that fails after billing some rates (a rate past them became unreadable) undoes
/// them: the rates it billed are unbilled, no bill exists, the request ends
/// `terminatedWithError`, and the account is free for the next request.
async fn a_request_that_fails_midway_unbills_what_it_billed(backend: Backend) {
    use shared::domain::customer_bill::AccountBilling;
    use shared::domain::key::TenantId;
    use shared::store::repo::Tenant;
    let Some(app) = spawn_app(backend, false).await else { return };
    for n in 1..=60 {
        post_rate_quiet(&app, charge("MIDWAY", &n.to_string(), "EUR")).await;
    }
    let request = request_bill(&app, "MIDWAY").await.body;
    let id = Id::parse(shared::domain::key::IdType::Uuid, request["id"].as_str().unwrap()).unwrap();
    let tenant = Tenant::new(app.store.as_ref(), TenantId::parse("dev").unwrap());
    // The first step scans all 60 and bills the first 40 (one step's share).
    assert!(shared::worker::customer_bills::step(&tenant, &id, None).await.unwrap());
    let billed = |rates: &Value| rates.as_array().unwrap().iter().filter(|r| r["isBilled"] == true).count();
    let rates = app.get(&path("/appliedCustomerBillingRate?billingAccount.id=MIDWAY&limit=100")).await.body;
    assert_eq!(billed(&rates), 40, "a step billed part of the account");
    // One of the 20 left becomes unreadable: the next step cannot go on.
    let left = rates.as_array().unwrap().iter().find(|r| r["isBilled"] == false).unwrap();
    let key = tenant
        .repo::<AppliedRate>()
        .key(Id::parse(shared::domain::key::IdType::Uuid, left["id"].as_str().unwrap()).unwrap())
        .unwrap();
    let stored = app.store.get(&key).await.unwrap().unwrap();
    let rate: AppliedRate = serde_json::from_str(&stored.body).unwrap();
    let groups = rate.groups().unwrap();
    let corrupt = shared::store::Update {
        key: key.clone(),
        order: rate.order(),
        expected_version: stored.version,
        body: "{\"not\": \"a rate\"}".into(),
        groups: groups.clone(),
        previous_groups: groups,
        previous_size: stored.body.len(),
        work_pending: false,
        lease_ms: None,
        guard: None,
        check: None,
        state: None,
        event: AuditEvent::new(None, "test"),
    };
    app.store.write(vec![shared::store::Write::Update(corrupt)]).await.unwrap();
    let mut steps = 0;
    while shared::worker::customer_bills::step(&tenant, &id, None).await.unwrap() {
        steps += 1;
        assert!(steps < 10, "the request ends");
    }
    let ended = app.get(request["href"].as_str().unwrap()).await.body;
    assert_eq!(ended["state"], "terminatedWithError", "{ended}");
    assert_eq!(app.get(&path("/customerBill?billingAccount.id=MIDWAY")).await.body, json!([]), "no bill");
    let events = app.store.events(&key).await.unwrap();
    assert_eq!(events.len(), 2, "the unreadable rate was never touched (its create and the test's write)");
    let account = tenant.repo::<AppliedRate>();
    let unbilled = account.group_count(&shared::domain::customer_bill::rate_group("MIDWAY", false)).await.unwrap();
    let on_bills = account.group_count(&shared::domain::customer_bill::rate_group("MIDWAY", true)).await.unwrap();
    assert_eq!((unbilled, on_bills), (60, 0), "all or nothing");
    let held = tenant.repo::<AccountBilling>().get(Id::Uuid(AccountBilling::id_of("MIDWAY"))).await.unwrap().unwrap();
    assert_eq!(held.value.on_demand, None, "the account is released");
    app.stop().await;
}

on_both_stores!(
    a_request_that_fails_midway_unbills_what_it_billed,
    rated_charges_become_an_on_demand_bill_that_goes_on_hold,
    every_error_is_a_tmf_error_with_a_stable_code,
    lists_page_filter_and_select_newest_first,
    requests_without_one_currency_or_any_rate_are_rejected_and_bill_nothing,
    two_requests_for_one_account_at_once_bill_each_rate_once,
    an_account_with_more_rates_than_a_step_is_billed_in_steps_into_one_bill,
    rates_at_the_size_bound_are_billed_in_steps_that_fit_a_transaction,
);
