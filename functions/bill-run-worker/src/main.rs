//! bill-run-worker: carries out requested bill-run stages, triggered by the table's stream
use shared::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::Error> {
    runtime::init_tracing();
    runtime::serve_stream().await
}
