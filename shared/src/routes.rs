//! The route table: the one list of (method, path, function). The dev server routes by it, and
//! `tests/infra.rs` checks that `infra/template.yaml` declares exactly these routes and functions.

use lambda_http::{Body, Request, Response};

use crate::domain::bill_run::{AdhocBillRun, BillRun};
use crate::http::{api_keys, bill_runs, billing_runs, bills, customer_bills, Deps, ErrorFormat};

/// How a route's callers authenticate (in AWS: which authorizer identity source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <JWT>`
    Bearer,
    /// `x-api-key: <key>`
    ApiKey,
}

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

const fn route(method: &'static str, path: &'static str, function: &'static str) -> Route {
    Route { method, path, function, auth: Auth::Bearer, errors: ErrorFormat::Problem }
}

const fn tmf(method: &'static str, path: &'static str, function: &'static str) -> Route {
    Route { method, path, function, auth: Auth::Bearer, errors: ErrorFormat::Tmf }
}

const fn keyed(method: &'static str, path: &'static str, function: &'static str) -> Route {
    Route { method, path, function, auth: Auth::ApiKey, errors: ErrorFormat::Problem }
}

pub const ROUTES: &[Route] = &[
    route("GET", "/bill-runs", "list-bill-runs"),
    route("POST", "/bill-runs", "create-bill-run"),
    route("GET", "/bill-runs/{bill_run_id}", "get-bill-run"),
    route("PATCH", "/bill-runs/{bill_run_id}", "update-bill-run"),
    route("POST", "/adjust-bill-run-schedule/{bill_run_id}", "adjust-bill-run-schedule"),
    route("GET", "/adhoc-bill-runs", "list-adhoc-bill-runs"),
    route("POST", "/adhoc-bill-runs", "create-adhoc-bill-run"),
    route("GET", "/adhoc-bill-runs/{adhoc_bill_run_id}", "get-adhoc-bill-run"),
    route("PATCH", "/adhoc-bill-runs/{adhoc_bill_run_id}", "update-adhoc-bill-run"),
    keyed("GET", "/bills", "list-bills"),
    keyed("POST", "/bills", "create-bill"),
    keyed("GET", "/bills/{billId}", "get-bill"),
    keyed("PATCH", "/bills/{billId}", "update-bill"),
    keyed("DELETE", "/bills/{billId}", "delete-bill"),
    route("GET", "/billingRuns/{tenantId}", "list-billing-runs"),
    route("POST", "/billingRuns/{tenantId}", "create-billing-run"),
    route("GET", "/billingRuns/{tenantId}/{id}", "get-billing-run"),
    route("PUT", "/billingRuns/{tenantId}/{id}", "update-billing-run"),
    route("DELETE", "/billingRuns/{tenantId}/{id}", "delete-billing-run"),
    route("GET", "/billingRuns/{tenantId}/recurringBillingRun/{recurring_billing_run_id}", "list-billing-runs"),
    tmf("GET", "/brm/customerBillManagement/v4/customerBill", "list-customer-bills"),
    tmf("GET", "/brm/customerBillManagement/v4/customerBill/{id}", "get-customer-bill"),
    tmf("PATCH", "/brm/customerBillManagement/v4/customerBill/{id}", "patch-customer-bill"),
    tmf("POST", "/brm/customerBillManagement/v4/customerBillOnDemand", "create-customer-bill-on-demand"),
    tmf("GET", "/brm/customerBillManagement/v4/customerBillOnDemand", "list-customer-bill-on-demand"),
    tmf("GET", "/brm/customerBillManagement/v4/customerBillOnDemand/{id}", "get-customer-bill-on-demand"),
    tmf("GET", "/brm/customerBillManagement/v4/appliedCustomerBillingRate", "list-applied-customer-billing-rates"),
    tmf("GET", "/brm/customerBillManagement/v4/appliedCustomerBillingRate/{id}", "get-applied-customer-billing-rate"),
    tmf("POST", "/brm/customerBillManagement/v4/appliedCustomerBillingRate", "create-applied-customer-billing-rate"),
    route("POST", "/api-keys", "create-api-key"),
    route("GET", "/api-keys", "list-api-keys"),
    route("DELETE", "/api-keys/{key_id}", "revoke-api-key"),
];

/// Functions with no route: triggered by events, not HTTP.
pub const EVENT_FUNCTIONS: &[&str] = &["bill-run-worker", "authorizer"];

/// Calls the handler of `function`: the same code its Lambda binary runs.
pub async fn dispatch(function: &str, deps: &Deps, req: Request) -> Option<Response<Body>> {
    Some(match function {
        "list-bill-runs" => bill_runs::list::<BillRun>(deps, req).await,
        "create-bill-run" => bill_runs::create::<BillRun>(deps, req).await,
        "get-bill-run" => bill_runs::get::<BillRun>(deps, req).await,
        "update-bill-run" => bill_runs::update::<BillRun>(deps, req).await,
        "adjust-bill-run-schedule" => bill_runs::adjust_schedule(deps, req).await,
        "list-adhoc-bill-runs" => bill_runs::list::<AdhocBillRun>(deps, req).await,
        "create-adhoc-bill-run" => bill_runs::create::<AdhocBillRun>(deps, req).await,
        "get-adhoc-bill-run" => bill_runs::get::<AdhocBillRun>(deps, req).await,
        "update-adhoc-bill-run" => bill_runs::update::<AdhocBillRun>(deps, req).await,
        "list-bills" => bills::list(deps, req).await,
        "create-bill" => bills::create(deps, req).await,
        "get-bill" => bills::get(deps, req).await,
        "update-bill" => bills::update(deps, req).await,
        "delete-bill" => bills::delete(deps, req).await,
        "list-billing-runs" => billing_runs::list(deps, req).await,
        "create-billing-run" => billing_runs::create(deps, req).await,
        "get-billing-run" => billing_runs::get(deps, req).await,
        "update-billing-run" => billing_runs::update(deps, req).await,
        "delete-billing-run" => billing_runs::delete(deps, req).await,
        "list-customer-bills" => customer_bills::list_bills(deps, req).await,
        "get-customer-bill" => customer_bills::get_bill(deps, req).await,
        "patch-customer-bill" => customer_bills::patch_bill(deps, req).await,
        "create-customer-bill-on-demand" => customer_bills::create_on_demand(deps, req).await,
        "list-customer-bill-on-demand" => customer_bills::list_on_demand(deps, req).await,
        "get-customer-bill-on-demand" => customer_bills::get_on_demand(deps, req).await,
        "list-applied-customer-billing-rates" => customer_bills::list_rates(deps, req).await,
        "get-applied-customer-billing-rate" => customer_bills::get_rate(deps, req).await,
        "create-applied-customer-billing-rate" => customer_bills::create_rate(deps, req).await,
        "create-api-key" => api_keys::create(deps, req).await,
        "list-api-keys" => api_keys::list(deps, req).await,
        "revoke-api-key" => api_keys::revoke(deps, req).await,
        _ => return None,
    })
}

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
    fn every_routed_function_has_a_handler_and_routes_are_unique() {
        let mut routes: Vec<(&str, &str)> = ROUTES.iter().map(|r| (r.method, r.path)).collect();
        routes.sort();
        let count = routes.len();
        routes.dedup();
        assert_eq!(routes.len(), count, "a method and path is served once");
        assert!(ROUTES.iter().all(|r| !EVENT_FUNCTIONS.contains(&r.function)));
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let deps = Deps::new(std::sync::Arc::new(crate::store::memory::MemoryStore::new()));
        for route in ROUTES {
            let handled = rt.block_on(dispatch(route.function, &deps, Request::default()));
            assert!(handled.is_some(), "{} has no handler", route.function);
        }
    }
}
