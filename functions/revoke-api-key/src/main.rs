//! revoke-api-key: DELETE /api-keys/{key_id}
use shared::http::api_keys;
use shared::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::Error> {
    runtime::init_tracing();
    let deps = runtime::deps_from_env()?;
    runtime::serve_http(&deps, api_keys::revoke).await
}
