//! webhook-sender: sends deliveries (webhooks, the TMF678 hub), triggered by the table's stream and every minute for retries
use shared::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::Error> {
    runtime::init_tracing();
    runtime::serve_webhook_sender().await
}
