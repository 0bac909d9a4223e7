//! list-webhook-endpoints: GET /webhook-endpoints
use shared::http::webhooks;
use shared::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::Error> {
    runtime::init_tracing();
    let deps = runtime::deps_from_env()?;
    runtime::serve_http(&deps, webhooks::list).await
}
