//! billing-run-scheduler: preprocesses and runs the billing runs whose dates have come, every minute
use shared::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::Error> {
    runtime::init_tracing();
    runtime::serve_billing_run_scheduler().await
}
