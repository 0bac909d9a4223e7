//! event-publisher: puts every published event on the bus and makes its deliveries, triggered by the table's stream
use shared::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::Error> {
    runtime::init_tracing();
    runtime::serve_event_publisher().await
}
