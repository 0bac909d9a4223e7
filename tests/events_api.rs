//! Events out, black-box over HTTP on both stores (docs/events.md): a receiver on loopback gets
//! every delivery, and each is verified with the `standardwebhooks` crate (the Standard Webhooks
//! project's own Rust library) beside billflow's own check. Then: 12 quick changes of one bill
//! arrive in version order, the events API serves the same events, retries follow the schedule
//! and `Retry-After`, `410 Gone` and a dead endpoint disable it (an event each), redelivery
//! repeats the event id, a rotation signs with both secrets, URLs are refused by the rules,
//! redirects are not followed, a slow endpoint delays no other, tenants see only their own, and
//! the TMF678 hub posts TMF's notifications to its listeners.

use std::collections::HashMap;
use std::sync::Once;
use std::time::{Duration, Instant};

use billflow_tests::receiver::{Received, Receiver};
use billflow_tests::tmf::assert_tmf;
use billflow_tests::{fresh_store, on_both_stores, spawn_app_on, Backend, Reply, TestApp, API_KEY};
use serde_json::{json, Value};
use shared::domain::identity::Principal;

/// The local settings a deployed stack never has: loopback endpoints, a schedule of two seconds
/// in all (so that "failing for the whole schedule" takes two seconds), and a short work lease.
fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("WEBHOOK_ALLOW_LOOPBACK", "true");
        std::env::set_var("WEBHOOK_RETRY_SCHEDULE", "500ms,500ms,500ms,500ms");
        std::env::set_var("WORK_LEASE_MS", "2000");
        if std::env::var_os("RUST_LOG").is_some() {
            shared::runtime::init_tracing();
        }
    });
}

async fn app_on(backend: Backend) -> Option<TestApp> {
    setup();
    Some(spawn_app_on(fresh_store(backend).await?, true, 0, Some(Duration::from_millis(100))).await)
}

fn admin(app: &TestApp, method: &str, path: &str) -> reqwest::RequestBuilder {
    app.request_as(&app.admin_token, method, path)
}

async fn endpoint(app: &TestApp, url: &str, events: Value) -> (String, String) {
    let reply =
        app.send(admin(app, "POST", "/webhook-endpoints").json(&json!({"url": url, "enabledEvents": events}))).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    (reply.body["id"].as_str().unwrap().to_owned(), reply.body["secret"].as_str().unwrap().to_owned())
}

async fn new_bill(app: &TestApp) -> u64 {
    let body = json!({"calculationMethod": "PERCENTAGE", "dueDate": "2024-04-30T00:00:00Z", "percentage": 30, "baseAmount": 1000.05});
    let reply = app.send(app.keyed("POST", "/bills", API_KEY).json(&body)).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body["id"].as_u64().unwrap()
}

async fn describe(app: &TestApp, bill: u64, text: &str) -> Reply {
    app.send(app.keyed("PATCH", &format!("/bills/{bill}"), API_KEY).json(&json!({"description": text}))).await
}

/// Verifies a delivery with the Standard Webhooks library and with billflow's own signature.
fn verify(received: &Received, secret: &str) -> Value {
    let mut headers = lambda_http::http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(name, received.headers[name].parse().unwrap());
    }
    let webhook = standardwebhooks::Webhook::new(secret).expect("a Standard Webhooks secret");
    webhook.verify(received.body.as_bytes(), &headers).expect("the library verifies the delivery");
    let timestamp: i64 = received.headers["webhook-timestamp"].parse().unwrap();
    let ours =
        shared::domain::webhook::signature(&[secret], &received.headers["webhook-id"], timestamp, &received.body);
    assert!(
        received.headers["webhook-signature"].split(' ').any(|s| s == ours),
        "billflow's own signature is among them"
    );
    assert_eq!(received.headers["content-type"], "application/json");
    let event: Value = serde_json::from_str(&received.body).unwrap();
    assert_eq!(event["id"], received.headers["webhook-id"].as_str());
    event
}

/// Every event a filter lists, page by page (5 a page).
async fn pages(app: &TestApp, filter: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut path = format!("/events?{filter}&limit=5");
    loop {
        let page = app.get(&path).await.body;
        seen.extend(page["Items"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        match page["LastEvaluatedKey"].as_str() {
            Some(next) => path = format!("/events?{filter}&limit=5&exclusiveStartKey={next}"),
            None => return seen,
        }
    }
}

on_both_stores!(webhooks_quick_changes_arrive_signed_and_in_order_and_the_events_api_serves_them);
async fn webhooks_quick_changes_arrive_signed_and_in_order_and_the_events_api_serves_them(backend: Backend) {
    let Some(app) = app_on(backend).await else { return };
    let receiver = Receiver::start().await;
    let (_, secret) = endpoint(&app, &receiver.url("/hook"), json!(["bill.*"])).await;
    let (_, other) = endpoint(&app, &receiver.url("/runs"), json!(["bill_run.*"])).await;
    let bill = new_bill(&app).await;
    for i in 0..12 {
        let started = Instant::now();
        assert_eq!(describe(&app, bill, &format!("v{i}")).await.status, 200);
        assert!(started.elapsed() < Duration::from_secs(2), "the API never waits for a delivery");
    }
    let got = receiver.wait("/hook", 13).await;
    let events: Vec<Value> = got.iter().map(|r| verify(r, &secret)).collect();
    let versions: Vec<u64> =
        events.iter().map(|e| e["id"].as_str().unwrap().rsplit('_').next().unwrap().parse().unwrap()).collect();
    assert_eq!(versions, (1..=13).collect::<Vec<_>>(), "one event per change, in version order");
    assert_eq!(events[0]["type"], "bill.created");
    assert!(events[1..].iter().all(|e| e["type"] == "bill.updated"));
    assert_eq!(events[12]["data"]["object"]["description"], "v11");
    assert_eq!(events[12]["data"]["previous"]["description"], "v10");
    assert_eq!(
        events[12]["resource"],
        json!({"kind": "bill", "id": bill.to_string(), "href": format!("/bills/{bill}")})
    );
    assert_eq!(events[12]["tenant"], "dev");
    assert!(receiver.at("/runs").is_empty(), "an endpoint gets only the types it enabled");
    let _ = other;

    // The events API: the same events, newest first, filtered and paged.
    let listed = app.get(&format!("/events?resource=bill:{bill}")).await;
    assert_eq!(listed.status, 200);
    let ids: Vec<&str> = listed.body["Items"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    let mut sent: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    sent.reverse();
    assert_eq!(ids, sent);
    let one = app.get(&format!("/events/{}", sent[0])).await;
    assert_eq!(one.body, events[12], "GET /events/{{id}} answers the event as it was delivered");
    let updated: Vec<String> = sent[..12].iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(pages(&app, "type=bill.updated").await, updated, "paged: every one once");
    let all: Vec<String> = sent.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(pages(&app, &format!("resource=/bills/{bill}")).await, all, "a resource's trail, paged");
    let later = app.get("/events?after=2999-01-01T00:00:00Z").await;
    assert_eq!(later.body["Count"], 0);
    for bad in ["/events?type=nope", "/events?resource=nope:1", "/events?after=soon", "/events?limit=0"] {
        assert_eq!(app.get(bad).await.status, 400, "{bad}");
    }
    let (stem, _) = sent[0].rsplit_once('_').unwrap();
    let (tagged, _) = stem.rsplit_once('_').unwrap();
    for missing in [
        format!("/events/{tagged}_999_1"),
        "/events/nope".into(),
        format!("/events/{stem}_99"),
        format!("/events/evt_bill_{bill}_1"),
    ] {
        assert_eq!(app.get(&missing).await.status, 404, "{missing}");
    }
    app.stop().await;
}

on_both_stores!(webhooks_retries_gone_redirects_and_dead_endpoints_follow_the_rules);
async fn webhooks_retries_gone_redirects_and_dead_endpoints_follow_the_rules(backend: Backend) {
    let Some(app) = app_on(backend).await else { return };
    let receiver = Receiver::start().await;
    let mut ids = HashMap::new();
    for path in ["/flaky", "/busy", "/gone", "/down", "/redirect"] {
        ids.insert(path, endpoint(&app, &receiver.url(path), json!(["bill.created"])).await.0);
    }
    new_bill(&app).await;
    let flaky = receiver.wait("/flaky", 3).await;
    assert!(flaky[1].at - flaky[0].at >= Duration::from_millis(500), "the schedule's first delay");
    let busy = receiver.wait("/busy", 2).await;
    assert!(busy[1].at - busy[0].at >= Duration::from_millis(1000), "Retry-After: 1 is honoured");
    assert_eq!(flaky[0].headers["webhook-id"], flaky[2].headers["webhook-id"], "a retry carries the same id");
    receiver.wait("/down", 2).await;
    let log = |id: &str| admin(&app, "GET", &format!("/webhook-endpoints/{id}/deliveries"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let gone = app.send(admin(&app, "GET", &format!("/webhook-endpoints/{}", ids["/gone"]))).await.body;
        let down = app.send(admin(&app, "GET", &format!("/webhook-endpoints/{}", ids["/down"]))).await.body;
        if gone["disabled"] == true && down["disabled"] == true {
            assert!(gone["disabledReason"].as_str().unwrap().contains("410"));
            break;
        }
        assert!(Instant::now() < deadline, "410 and a dead endpoint disable: {gone} {down}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.at("/gone").len(), 1, "no attempt after 410");
    // Disabled once it failed for the schedule's whole span (2 s here), at the latest when the
    // schedule is spent: at most one attempt and its four retries.
    assert!((2..=5).contains(&receiver.at("/down").len()), "{} attempts", receiver.at("/down").len());
    // /gone at once; /down and /redirect once a delivery failed every attempt of the schedule.
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.get("/events?type=webhook_endpoint.disabled").await.body["Count"] != 3 {
        assert!(Instant::now() < deadline, "each disabling is an event");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let flaky_log = app.send(log(&ids["/flaky"])).await.body;
    let codes: Vec<Value> =
        flaky_log["Items"][0]["attempts"].as_array().unwrap().iter().map(|a| a["statusCode"].clone()).collect();
    assert_eq!(codes, vec![json!(500), json!(500), json!(200)]);
    assert_eq!(flaky_log["Items"][0]["status"], "delivered");
    let redirect_log = app.send(log(&ids["/redirect"])).await.body;
    assert_eq!(redirect_log["Items"][0]["attempts"][0]["statusCode"], 302, "a redirect is a failed attempt");
    assert!(receiver.at("/hook").is_empty(), "redirects are never followed");

    // Redelivery: the same event id again.
    let event_id = flaky[0].headers["webhook-id"].clone();
    let again = app
        .send(admin(&app, "POST", &format!("/webhook-endpoints/{}/deliveries/{event_id}/redeliver", ids["/flaky"])))
        .await;
    assert_eq!(again.status, 202, "{:?}", again.body);
    let flaky = receiver.wait("/flaky", 4).await;
    assert_eq!(flaky[3].headers["webhook-id"], event_id);
    let missing = admin(
        &app,
        "POST",
        &format!(
            "/webhook-endpoints/{}/deliveries/{}_99/redeliver",
            ids["/flaky"],
            event_id.rsplit_once('_').unwrap().0
        ),
    );
    assert_eq!(app.send(missing).await.status, 404);
    app.stop().await;
}

on_both_stores!(webhooks_a_rotation_signs_with_both_secrets_and_urls_follow_the_rules);
async fn webhooks_a_rotation_signs_with_both_secrets_and_urls_follow_the_rules(backend: Backend) {
    let Some(app) = app_on(backend).await else { return };
    let receiver = Receiver::start().await;
    let (id, old) = endpoint(&app, &receiver.url("/hook"), json!(["*"])).await;
    let rotated = app.send(admin(&app, "POST", &format!("/webhook-endpoints/{id}/rotate-secret"))).await;
    assert_eq!(rotated.status, 200);
    let new = rotated.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let shown = app.send(admin(&app, "GET", &format!("/webhook-endpoints/{id}"))).await.body;
    assert!(shown.get("secret").is_none(), "a secret is shown once");
    new_bill(&app).await;
    let got = receiver.wait("/hook", 1).await;
    assert_eq!(got[0].headers["webhook-signature"].split(' ').count(), 2, "both secrets sign for 24 hours");
    verify(&got[0], &old);
    verify(&got[0], &new);

    for (url, why) in [
        ("http://169.254.169.254/latest/meta-data", "the metadata address"),
        ("https://10.0.0.1/hook", "a private address"),
        ("https://192.168.1.1/hook", "a private address"),
        ("https://[fe80::1]/hook", "a link-local address"),
        ("https://[::ffff:169.254.169.254]/hook", "a mapped metadata address"),
        ("http://93.184.216.34/hook", "http to a public address"),
        ("ftp://127.0.0.1/hook", "another scheme"),
        ("https://user:pw@127.0.0.1/hook", "user info"),
    ] {
        let reply = app
            .send(admin(&app, "POST", "/webhook-endpoints").json(&json!({"url": url, "enabledEvents": ["*"]})))
            .await;
        assert_eq!(reply.status, 400, "{why}: {url}");
    }
    let patch = admin(&app, "PATCH", &format!("/webhook-endpoints/{id}")).json(&json!({"url": "https://10.1.2.3/"}));
    assert_eq!(app.send(patch).await.status, 400);
    for bad in [
        json!({"url": receiver.url("/x")}),
        json!({"url": receiver.url("/x"), "enabledEvents": ["nope"]}),
        json!({"url": receiver.url("/x"), "enabledEvents": []}),
        json!({"url": receiver.url("/x"), "enabledEvents": ["*"], "secret": "x"}),
    ] {
        assert_eq!(app.send(admin(&app, "POST", "/webhook-endpoints").json(&bad)).await.status, 400, "{bad}");
    }
    for _ in 1..16 {
        endpoint(&app, &receiver.url("/more"), json!(["bill.deleted"])).await;
    }
    let over = app
        .send(
            admin(&app, "POST", "/webhook-endpoints").json(&json!({"url": receiver.url("/x"), "enabledEvents": ["*"]})),
        )
        .await;
    assert_eq!(over.status, 409, "at most 16 endpoints a tenant");
    assert_eq!(app.send(admin(&app, "GET", "/webhook-endpoints")).await.body["Count"], 16);
    let plain = app.send(app.request("GET", "/webhook-endpoints")).await;
    assert_eq!(plain.status, 403, "billing:admin only");
    assert_eq!(app.send(admin(&app, "DELETE", &format!("/webhook-endpoints/{id}"))).await.status, 204);
    assert_eq!(app.send(admin(&app, "GET", &format!("/webhook-endpoints/{id}"))).await.status, 404);
    app.stop().await;
}

on_both_stores!(webhooks_a_slow_endpoint_delays_no_other_and_tenants_see_only_their_own);
async fn webhooks_a_slow_endpoint_delays_no_other_and_tenants_see_only_their_own(backend: Backend) {
    let Some(app) = app_on(backend).await else { return };
    let receiver = Receiver::start().await;
    let (slow, _) = endpoint(&app, &receiver.url("/slow"), json!(["bill.*"])).await;
    let (_, secret) = endpoint(&app, &receiver.url("/hook"), json!(["bill.*"])).await;
    let started = Instant::now();
    let bill = new_bill(&app).await;
    assert_eq!(describe(&app, bill, "second").await.status, 200);
    receiver.wait("/hook", 2).await;
    // The slow endpoint holds its first attempt for the whole 15 s timeout: the fast one's two
    // deliveries came while it hung.
    assert!(started.elapsed() < Duration::from_secs(12), "the fast endpoint got both events while the slow one hung");
    assert_eq!(receiver.at("/slow").len(), 1, "the slow one's second event waits for its first");
    verify(&receiver.at("/hook")[1], &secret);

    // Another tenant: none of this tenant's endpoints, events or subscriptions.
    let other = Principal {
        user_id: 9,
        tenants: vec!["other".into()],
        scopes: vec!["billing:read".into(), "billing:write".into(), "billing:admin".into()],
    };
    let token = app.token_for(&other);
    let as_other = |method: &str, path: &str| app.request_as(&token, method, path);
    assert_eq!(app.send(as_other("GET", &format!("/webhook-endpoints/{slow}"))).await.status, 404);
    assert_eq!(app.send(as_other("GET", &format!("/webhook-endpoints/{slow}/deliveries"))).await.status, 404);
    assert_eq!(app.send(as_other("DELETE", &format!("/webhook-endpoints/{slow}"))).await.status, 404);
    assert_eq!(app.send(as_other("GET", "/webhook-endpoints")).await.body["Count"], 0);
    assert_eq!(app.send(as_other("GET", "/events")).await.body["Count"], 0);
    assert_eq!(app.send(as_other("GET", &format!("/events?resource=bill:{bill}"))).await.body["Count"], 0);
    let first = app.get(&format!("/events?resource=bill:{bill}")).await.body["Items"][0]["id"].clone();
    assert_eq!(app.send(as_other("GET", &format!("/events/{}", first.as_str().unwrap()))).await.status, 404);
    let hub = app
        .send(
            admin(&app, "POST", "/brm/customerBillManagement/v4/hub").json(&json!({"callback": receiver.url("/tmf")})),
        )
        .await;
    assert_eq!(
        app.send(as_other(
            "DELETE",
            &format!("/brm/customerBillManagement/v4/hub/{}", hub.body["id"].as_str().unwrap())
        ))
        .await
        .status,
        404
    );
    assert_eq!(app.get("/events").await.body["Count"], 2, "this tenant's own");
    app.stop().await;
}

on_both_stores!(webhooks_the_hub_posts_tmf_notifications_to_its_listeners);
async fn webhooks_the_hub_posts_tmf_notifications_to_its_listeners(backend: Backend) {
    let Some(app) = app_on(backend).await else { return };
    let receiver = Receiver::start().await;
    let hub = "/brm/customerBillManagement/v4/hub";
    let all = app.send(admin(&app, "POST", hub).json(&json!({"callback": receiver.url("/all")}))).await;
    assert_eq!(all.status, 201, "{:?}", all.body);
    assert!(all.header("location").unwrap().ends_with(all.body["id"].as_str().unwrap()));
    let query = json!({"callback": receiver.url("/bills"), "query": "eventType=CustomerBillCreateEvent"});
    assert_eq!(app.send(admin(&app, "POST", hub).json(&query)).await.status, 201);
    for bad in [
        json!({}),
        json!({"callback": "https://169.254.169.254/"}),
        json!({"callback": receiver.url("/x"), "query": "eventType=Nope"}),
    ] {
        let reply = app.send(admin(&app, "POST", hub).json(&bad)).await;
        assert_eq!(reply.status, 400, "{bad}");
        assert_tmf("Error", &reply.body);
    }
    let rate = json!({"billingAccount": {"id": "ACC-9"}, "name": "charge", "taxExcludedAmount": {"unit": "EUR", "value": 10},
        "appliedTax": [{"taxCategory": "VAT", "taxRate": 0.2, "taxAmount": {"unit": "EUR", "value": 2}}]});
    assert_eq!(app.post("/brm/customerBillManagement/v4/appliedCustomerBillingRate", &rate).await.status, 201);
    let request = app
        .post("/brm/customerBillManagement/v4/customerBillOnDemand", &json!({"billingAccount": {"id": "ACC-9"}}))
        .await;
    assert_eq!(request.status, 201);
    let created = receiver.wait("/all/listener/customerBillCreateEvent", 1).await;
    let body: Value = serde_json::from_str(&created[0].body).unwrap();
    assert_eq!(body["eventType"], "CustomerBillCreateEvent");
    assert!(body["eventId"].as_str().unwrap().contains("_customer_bill_"));
    assert_tmf("CustomerBill", &body["event"]["customerBill"]);
    let demand = receiver.wait("/all/listener/customerBillOnDemandCreateEvent", 1).await;
    let demand: Value = serde_json::from_str(&demand[0].body).unwrap();
    assert_tmf("CustomerBillOnDemand", &demand["event"]["customerBillOnDemand"]);
    receiver.wait("/all/listener/customerBillOnDemandStateChangeEvent", 1).await;
    receiver.wait("/bills/listener/customerBillCreateEvent", 1).await;
    assert!(
        receiver.got.lock().unwrap().iter().all(|r| !r.path.starts_with("/bills/listener/customerBillOnDemand")),
        "query filters"
    );
    let id = all.body["id"].as_str().unwrap();
    assert_eq!(app.send(admin(&app, "DELETE", &format!("{hub}/{id}"))).await.status, 204);
    let again = app.send(admin(&app, "DELETE", &format!("{hub}/{id}"))).await;
    assert_eq!(again.status, 404);
    assert_tmf("Error", &again.body);
    app.stop().await;
}
