//! list-billing-run-actions: GET /billingRuns/{tenantId}/{id}/actions
use shared::http::billing_runs;
use shared::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::Error> {
    runtime::init_tracing();
    let deps = runtime::deps_from_env()?;
    runtime::serve_http(&deps, billing_runs::actions).await
}
