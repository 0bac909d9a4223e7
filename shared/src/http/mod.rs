//! The HTTP edge, split by concern: [`error`] (the one error type and its per-family bodies),
//! [`caller`], [`request`] parsing, [`response`]s, [`idempotency`], and the handlers of each
//! family. Handlers are ordinary async functions over a `lambda_http::Request`, so the Lambdas,
//! the dev server and the tests call the same code; lost races are retried by
//! [`crate::retry::with_retries`].

pub mod api_keys;
pub mod bill_runs;
pub mod billing_runs;
pub mod bills;
pub mod caller;
pub mod cursor;
pub mod customer_bills;
pub mod error;
pub mod events;
pub mod handler;
pub mod idempotency;
pub mod request;
pub mod response;
pub mod webhooks;

pub use error::{ApiError, ApiResult, ErrorFormat};

pub use deps::Deps;

mod deps {
    use crate::domain::key::TenantId;
    use crate::store::repo::Tenant;
    use crate::store::SharedRepository;

    /// What every handler needs, built once per process. The store is private to this module:
    /// a handler reaches it only as one tenant's [`Tenant`], the request's (see
    /// [`super::caller::acting`]), so no handler can read or write another tenant's items.
    #[derive(Clone)]
    pub struct Deps {
        store: SharedRepository,
    }

    impl Deps {
        pub fn new(store: SharedRepository) -> Self {
            Self { store }
        }

        /// The store as one tenant sees it.
        pub fn tenant(&self, id: TenantId) -> Tenant<'_> {
            Tenant::new(self.store.as_ref(), id)
        }
    }
}
