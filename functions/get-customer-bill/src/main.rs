//! get-customer-bill: GET /brm/customerBillManagement/v4/customerBill/{id}
use shared::http::customer_bills;
use shared::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::Error> {
    runtime::init_tracing();
    let deps = runtime::deps_from_env()?;
    runtime::serve_http(&deps, customer_bills::get_bill).await
}
