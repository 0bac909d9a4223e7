//! sweeper: re-drives async work past its lease (bill-run stages, on-demand bills), every minute
use shared::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::Error> {
    runtime::init_tracing();
    runtime::serve_sweeper().await
}
