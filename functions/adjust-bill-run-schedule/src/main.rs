//! adjust-bill-run-schedule: POST /adjust-bill-run-schedule/{bill_run_id}?periods=N
use shared::http::bill_runs;
use shared::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::Error> {
    runtime::init_tracing();
    let deps = runtime::deps_from_env()?;
    runtime::serve_http(&deps, bill_runs::adjust_schedule).await
}
