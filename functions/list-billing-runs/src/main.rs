//! list-billing-runs: GET /billingRuns/{tenantId} and GET /billingRuns/{tenantId}/recurringBillingRun/{recurring_billing_run_id}
use shared::http::billing_runs;
use shared::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::Error> {
    runtime::init_tracing();
    let deps = runtime::deps_from_env()?;
    runtime::serve_http(&deps, billing_runs::list).await
}
