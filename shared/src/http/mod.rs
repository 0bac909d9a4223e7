//! The HTTP edge, split by concern: [`error`] (the one error type and its per-family bodies),
//! [`caller`], [`request`] parsing, [`response`]s, [`idempotency`], and the handlers of each
//! family. Handlers are ordinary async functions over a `lambda_http::Request`, so the Lambdas,
//! the dev server and the tests call the same code; lost races are retried by
//! [`crate::retry::with_retries`].

pub mod bill_runs;
pub mod billing_runs;
pub mod bills;
pub mod caller;
pub mod customer_bills;
pub mod error;
pub mod idempotency;
pub mod request;
pub mod response;

pub use error::{ApiError, ApiResult, ErrorFormat};

use crate::store::SharedRepository;

/// What every handler needs, built once per process.
#[derive(Clone)]
pub struct Deps {
    pub store: SharedRepository,
}
