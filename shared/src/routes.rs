//! The route table: the one list of (method, path, function, handler). The dev server routes by
//! it and calls each route's handler, the OpenAPI document is built from it, and
//! `tests/infra.rs` checks that `infra/template.yaml` declares exactly these routes and functions.
//! Each function's `main` serves the same handler.

use std::future::Future;
use std::pin::Pin;

use lambda_http::{Body, Request, Response};

use crate::domain::bill_run::{AdhocBillRun, BillRun};
use crate::http::{api_keys, bill_runs, billing_runs, bills, customer_bills, events, webhooks, Deps, ErrorFormat};

/// How a route's callers authenticate (in AWS: which authorizer identity source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <JWT>`
    Bearer,
    /// `x-api-key: <key>`
    ApiKey,
}

/// A route's handler, as the dev server calls it (a Lambda's `main` calls the function itself).
/// Kept apart from [`Route`], so that what reads the table alone (the authorizer) links none.
pub type Handler = for<'a> fn(&'a Deps, Request) -> Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// Path template with `{param}` segments, as API Gateway writes it.
    pub path: &'static str,
    /// The Lambda function (and binary) that serves it.
    pub function: &'static str,
    pub auth: Auth,
    /// How the route's family writes its error bodies.
    pub errors: ErrorFormat,
}

/// A handler function as a [`Handler`].
macro_rules! handler {
    ($function:expr) => {{
        fn boxed<'a>(deps: &'a Deps, req: Request) -> Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>> {
            Box::pin($function(deps, req))
        }
        boxed as Handler
    }};
}

const fn route(method: &'static str, path: &'static str, function: &'static str) -> Route {
    Route { method, path, function, auth: Auth::Bearer, errors: ErrorFormat::Problem }
}

const fn tmf(method: &'static str, path: &'static str, function: &'static str) -> Route {
    Route { method, path, function, auth: Auth::Bearer, errors: ErrorFormat::Tmf }
}

const fn keyed(method: &'static str, path: &'static str, function: &'static str) -> Route {
    Route { method, path, function, auth: Auth::ApiKey, errors: ErrorFormat::Problem }
}

/// A path under TMF678's base path.
macro_rules! tmf_path {
    ($rest:literal) => {
        concat!("/brm/customerBillManagement/v4/", $rest)
    };
}

/// The route table and each route's handler, from one declaration: [`ROUTES`], and [`handler`].
macro_rules! routes {
    ($($kind:ident($($route:expr),+) => $handler:expr,)+) => {
        pub const ROUTES: &[Route] = &[$($kind($($route),+)),+];

        /// The handler of a route of [`ROUTES`] (`None` for any other route).
        pub fn handler(route: &Route) -> Option<Handler> {
            const HANDLERS: &[Handler] = &[$(handler!($handler)),+];
            ROUTES.iter().position(|r| r == route).map(|i| HANDLERS[i])
        }
    };
}

routes! {
    route("GET", "/bill-runs", "list-bill-runs") => bill_runs::list::<BillRun>,
    route("POST", "/bill-runs", "create-bill-run") => bill_runs::create::<BillRun>,
    route("GET", "/bill-runs/{bill_run_id}", "get-bill-run") => bill_runs::get::<BillRun>,
    route("PATCH", "/bill-runs/{bill_run_id}", "update-bill-run") => bill_runs::update::<BillRun>,
    route("POST", "/adjust-bill-run-schedule/{bill_run_id}", "adjust-bill-run-schedule") => bill_runs::adjust_schedule,
    route("GET", "/adhoc-bill-runs", "list-adhoc-bill-runs") => bill_runs::list::<AdhocBillRun>,
    route("POST", "/adhoc-bill-runs", "create-adhoc-bill-run") => bill_runs::create::<AdhocBillRun>,
    route("GET", "/adhoc-bill-runs/{adhoc_bill_run_id}", "get-adhoc-bill-run") => bill_runs::get::<AdhocBillRun>,
    route("PATCH", "/adhoc-bill-runs/{adhoc_bill_run_id}", "update-adhoc-bill-run") => bill_runs::update::<AdhocBillRun>,
    keyed("GET", "/bills", "list-bills") => bills::list,
    keyed("POST", "/bills", "create-bill") => bills::create,
    keyed("GET", "/bills/{billId}", "get-bill") => bills::get,
    keyed("PATCH", "/bills/{billId}", "update-bill") => bills::update,
    keyed("DELETE", "/bills/{billId}", "delete-bill") => bills::delete,
    route("GET", "/billingRuns/{tenantId}", "list-billing-runs") => billing_runs::list,
    route("POST", "/billingRuns/{tenantId}", "create-billing-run") => billing_runs::create,
    route("GET", "/billingRuns/{tenantId}/{id}", "get-billing-run") => billing_runs::get,
    route("PUT", "/billingRuns/{tenantId}/{id}", "update-billing-run") => billing_runs::update,
    route("DELETE", "/billingRuns/{tenantId}/{id}", "delete-billing-run") => billing_runs::delete,
    route("GET", "/billingRuns/{tenantId}/recurringBillingRun/{recurring_billing_run_id}", "list-billing-runs") => billing_runs::list,
    route("GET", "/billingRuns/{tenantId}/{id}/actions", "list-billing-run-actions") => billing_runs::actions,
    tmf("GET", tmf_path!("customerBill"), "list-customer-bills") => customer_bills::list_bills,
    tmf("GET", tmf_path!("customerBill/{id}"), "get-customer-bill") => customer_bills::get_bill,
    tmf("PATCH", tmf_path!("customerBill/{id}"), "patch-customer-bill") => customer_bills::patch_bill,
    tmf("POST", tmf_path!("customerBillOnDemand"), "create-customer-bill-on-demand") => customer_bills::create_on_demand,
    tmf("GET", tmf_path!("customerBillOnDemand"), "list-customer-bill-on-demand") => customer_bills::list_on_demand,
    tmf("GET", tmf_path!("customerBillOnDemand/{id}"), "get-customer-bill-on-demand") => customer_bills::get_on_demand,
    tmf("GET", tmf_path!("appliedCustomerBillingRate"), "list-applied-customer-billing-rates") => customer_bills::list_rates,
    tmf("GET", tmf_path!("appliedCustomerBillingRate/{id}"), "get-applied-customer-billing-rate") => customer_bills::get_rate,
    tmf("POST", tmf_path!("appliedCustomerBillingRate"), "create-applied-customer-billing-rate") => customer_bills::create_rate,
    route("POST", "/api-keys", "create-api-key") => api_keys::create,
    route("GET", "/api-keys", "list-api-keys") => api_keys::list,
    route("DELETE", "/api-keys/{key_id}", "revoke-api-key") => api_keys::revoke,
    route("GET", "/events", "list-events") => events::list,
    route("GET", "/events/{event_id}", "get-event") => events::get,
    route("POST", "/webhook-endpoints", "create-webhook-endpoint") => webhooks::create,
    route("GET", "/webhook-endpoints", "list-webhook-endpoints") => webhooks::list,
    route("GET", "/webhook-endpoints/{id}", "get-webhook-endpoint") => webhooks::get,
    route("PATCH", "/webhook-endpoints/{id}", "update-webhook-endpoint") => webhooks::update,
    route("DELETE", "/webhook-endpoints/{id}", "delete-webhook-endpoint") => webhooks::delete,
    route("POST", "/webhook-endpoints/{id}/rotate-secret", "rotate-webhook-secret") => webhooks::rotate,
    route("GET", "/webhook-endpoints/{id}/deliveries", "list-webhook-deliveries") => webhooks::deliveries,
    route("POST", "/webhook-endpoints/{id}/deliveries/{event_id}/redeliver", "redeliver-event") => webhooks::redeliver,
    tmf("POST", tmf_path!("hub"), "create-hub-subscription") => webhooks::hub_create,
    tmf("DELETE", tmf_path!("hub/{id}"), "delete-hub-subscription") => webhooks::hub_delete,
}

/// Functions with no route: triggered by events, not HTTP.
pub const EVENT_FUNCTIONS: &[&str] =
    &["bill-run-worker", "sweeper", "authorizer", "event-publisher", "webhook-sender", "billing-run-scheduler"];

/// The outcome of matching a request against the table.
#[derive(Debug, PartialEq, Eq)]
pub enum Matched {
    Found {
        route: Route,
        params: Vec<(String, String)>,
    },
    /// The path exists with other methods (405 with `Allow`).
    MethodNotAllowed {
        allow: Vec<&'static str>,
    },
    NotFound,
}

/// The error format of the family a path belongs to (by its first segment), for answers given
/// before a route is found (404, 405, 413).
pub fn errors_for(path: &str) -> ErrorFormat {
    let first = |p: &str| p.split('/').nth(1).unwrap_or_default().to_owned();
    ROUTES.iter().find(|r| first(r.path) == first(path)).map_or(ErrorFormat::Problem, |r| r.errors)
}

pub fn find(method: &str, path: &str) -> Matched {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut allow = Vec::new();
    for route in ROUTES {
        let template: Vec<&str> = route.path.split('/').collect();
        if template.len() != segments.len() {
            continue;
        }
        let mut params = Vec::new();
        let fits =
            template.iter().zip(&segments).all(|(t, s)| match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                Some(name) => {
                    params.push((name.to_owned(), (*s).to_owned()));
                    !s.is_empty()
                }
                None => t == s,
            });
        if !fits {
            continue;
        }
        if route.method == method {
            return Matched::Found { route: *route, params };
        }
        allow.push(route.method);
    }
    if allow.is_empty() {
        Matched::NotFound
    } else {
        Matched::MethodNotAllowed { allow }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_paths_then_routes_params_and_405_come_from_the_table() {
        match find("GET", "/bill-runs/42") {
            Matched::Found { route, params } => {
                assert_eq!(route.function, "get-bill-run");
                assert_eq!(params, vec![("bill_run_id".to_owned(), "42".to_owned())]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(find("DELETE", "/bill-runs/42"), Matched::MethodNotAllowed { allow: vec!["GET", "PATCH"] });
        assert_eq!(find("GET", "/bill-runs/42/extra"), Matched::NotFound);
        assert_eq!(find("GET", "/nothing"), Matched::NotFound);
        assert!(matches!(find("POST", "/adjust-bill-run-schedule/x"), Matched::Found { .. }));
        let bill = "/brm/customerBillManagement/v4/customerBill/x";
        assert_eq!(find("DELETE", bill), Matched::MethodNotAllowed { allow: vec!["GET", "PATCH"] });
        assert_eq!(errors_for(bill), ErrorFormat::Tmf, "the family answers TMF Errors before routing too");
        assert_eq!(errors_for("/brm/nothing"), ErrorFormat::Tmf);
    }

    #[test]
    fn every_route_answers_through_its_handler_and_routes_are_unique() {
        let mut routes: Vec<(&str, &str)> = ROUTES.iter().map(|r| (r.method, r.path)).collect();
        routes.sort();
        let count = routes.len();
        routes.dedup();
        assert_eq!(routes.len(), count, "a method and path is served once");
        assert!(ROUTES.iter().all(|r| !EVENT_FUNCTIONS.contains(&r.function)));
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let deps = Deps::new(std::sync::Arc::new(crate::store::memory::MemoryStore::new()));
        for route in ROUTES {
            // A request without the authorizer's context: every handler answers 401 itself.
            let handler = handler(route).expect("every route has its handler");
            let answer = rt.block_on(handler(&deps, Request::default()));
            assert_eq!(answer.status(), 401, "{route:?}");
        }
    }
}
