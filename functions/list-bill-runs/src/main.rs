//! list-bill-runs: GET /bill-runs
use shared::domain::bill_run::BillRun;
use shared::http::bill_runs;
use shared::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::Error> {
    runtime::init_tracing();
    let deps = runtime::deps_from_env()?;
    runtime::serve_http(&deps, bill_runs::list::<BillRun>).await
}
