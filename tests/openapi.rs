//! The OpenAPI document: served by the dev server without credentials (`/openapi.json`), browsable
//! at `/docs` from vendored assets only, and the checker that holds every response of the HTTP
//! tests to it (`support/openapi.rs`) refuses what the document does not say.

use billflow_tests::openapi::check;
use billflow_tests::{spawn_app, Backend, API_KEY};
use serde_json::{json, Value};

fn bill_run() -> Value {
    json!({
        "id": 1, "name": "Jan 2024", "sortableName": "jan 2024", "billingCycleId": 1, "created": "2024-01-01",
        "periodStartDate": "2024-01-01", "periodEndDate": "2024-01-31", "invoiceDate": "2024-02-01",
        "includeUsageUntilDate": null, "billRunStatus": "OPEN", "summaryStatus": "PROPERTIES",
        "summaryStatusPercentage": 100, "billingUserAdminId": null, "parallel": false, "paused": false,
        "revenueInMajorCurrency": 0, "usageSuspenseCount": 0, "rentalSuspenseCount": 0,
        "maxInvoiceValue": null, "maxInvoiceCustomerId": null, "failedBills": 0,
    })
}

#[test]
fn the_checker_refuses_undocumented_statuses_media_types_fields_and_shapes() {
    let json = Some("application/json");
    assert_eq!(check("GET", "/bill-runs/1", 200, json, &bill_run()), Ok(()));
    // A status the operation does not document.
    let err = check("GET", "/bill-runs/1", 418, json, &bill_run()).unwrap_err();
    assert!(err.contains("a status the OpenAPI document does not give it"), "{err}");
    // A media type the status does not document.
    let err = check("GET", "/bill-runs/1", 200, Some("text/plain"), &bill_run()).unwrap_err();
    assert!(err.contains("where the document has"), "{err}");
    // A field the resource does not have, a field missing, a field of the wrong type.
    let mut extra = bill_run();
    extra["secret"] = json!("x");
    assert!(check("GET", "/bill-runs/1", 200, json, &extra).is_err());
    let mut missing = bill_run();
    missing.as_object_mut().unwrap().remove("paused");
    assert!(check("GET", "/bill-runs/1", 200, json, &missing).is_err());
    let mut wrong = bill_run();
    wrong["summaryStatus"] = json!("SOMETHING_ELSE");
    assert!(check("GET", "/bill-runs/1", 200, json, &wrong).is_err());
    // Errors: problem+json for the problem families, the TMF Error for TMF678.
    let problem =
        json!({"type": "urn:billflow:problem:not-found", "title": "Not Found", "status": 404, "detail": "no"});
    assert_eq!(check("GET", "/bill-runs/1", 404, Some("application/problem+json"), &problem), Ok(()));
    let tmf = "/brm/customerBillManagement/v4/customerBill/00000000-0000-4000-8000-000000000000";
    assert!(check("GET", tmf, 404, Some("application/problem+json"), &problem).is_err());
    let error = json!({"code": "NOT_FOUND", "reason": "Not Found", "message": "no", "status": "404", "@type": "Error"});
    assert_eq!(check("GET", tmf, 404, json, &error), Ok(()));
    // A 204 has no body.
    assert!(check("DELETE", "/bills/1", 204, None, &Value::Null).is_ok());
    assert!(check("DELETE", "/bills/1", 204, json, &bill_run()).is_err());
}

#[tokio::test]
async fn the_dev_server_serves_the_document_and_its_page_without_credentials() {
    let app = spawn_app(Backend::Memory, false).await.unwrap();
    let get = |path: &str| app.http.get(format!("{}{path}", app.base)).send();

    let response = get("/openapi.json").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served: Value = response.json().await.unwrap();
    assert_eq!(&served, shared::openapi::document());
    assert_eq!(served["openapi"], "3.1.0");

    let page = get("/docs").await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    // Nothing from a CDN: every script and stylesheet is one the server itself serves.
    assert!(!html.contains("http://") && !html.contains("https://"), "{html}");
    for asset in ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/init.js"] {
        assert!(html.contains(asset), "{asset}");
        let response = get(asset).await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert!(!response.bytes().await.unwrap().is_empty(), "{asset}");
    }
    let init = get("/docs/init.js").await.unwrap().text().await.unwrap();
    assert!(init.contains("\"/openapi.json\""), "{init}");
    // Only GET: the document is not a route of the API.
    let post = app.http.post(format!("{}/openapi.json", app.base)).send().await.unwrap();
    assert_eq!(post.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn every_request_example_of_the_document_is_accepted() {
    let app = spawn_app(Backend::Memory, false).await.unwrap();
    let doc = shared::openapi::document();
    let mut sent = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(op) = item.get("post") else { continue };
        let Some(example) = op.pointer("/requestBody/content/application~1json/example") else { continue };
        let path = path.replace("{tenantId}", "dev");
        let request = if op["security"][0].get("apiKey").is_some() {
            app.keyed("POST", &path, API_KEY)
        } else if path.starts_with("/api-keys") {
            app.request_as(&app.admin_token, "POST", &path)
        } else {
            app.request("POST", &path)
        };
        let reply = app.send(request.json(example)).await;
        assert_eq!(reply.status, 201, "POST {path} with the document's example: {}", reply.body);
        sent += 1;
    }
    assert_eq!(sent, 7, "every create carries an example");
    app.stop().await;
}

#[test]
#[should_panic(expected = "not a valid TMF678 Error")]
fn the_tmf_check_refuses_a_value_of_the_wrong_type() {
    // TMF678's Error has `status` as a string.
    let error = json!({"code": "NOT_FOUND", "reason": "Not Found", "status": 404, "@type": "Error"});
    billflow_tests::tmf::assert_tmf("Error", &error);
}

#[test]
#[should_panic(expected = "attributes TMF678 Error does not define")]
fn the_tmf_check_refuses_an_attribute_the_standard_does_not_define() {
    let error = json!({"code": "NOT_FOUND", "reason": "Not Found", "status": "404", "@type": "Error", "hint": "x"});
    billflow_tests::tmf::assert_tmf("Error", &error);
}
