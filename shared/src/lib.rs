//! billflow's one library. Dependencies point inward: `domain` (pure rules and typed keys) <-
//! `store` (the repository trait, DynamoDB and in-memory, and the typed facade) <- `worker` (jobs
//! registered per family) and `http` (the edge: parsing, errors, handlers) <- `routes` and the thin
//! `main`s in `functions/`.

pub mod api_keys;
pub mod auth;
#[cfg(feature = "dev-server")]
pub mod dev;
pub mod domain;
pub mod events;
pub mod http;
#[cfg(feature = "dev-server")]
pub mod openapi;
pub mod outbound;
pub mod retry;
pub mod routes;
pub mod runtime;
pub mod store;
pub mod worker;
