//! authorizer: the HTTP API's Lambda authorizer (payload 2.0, simple responses) for every route
use shared::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::Error> {
    runtime::init_tracing();
    runtime::serve_authorizer().await
}
