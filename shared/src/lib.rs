//! billflow's one library. Dependencies point inward: `domain` (pure rules) <- `store`
//! (the repository trait, DynamoDB and in-memory) <- `http` (the edge: parsing, errors, handlers)
//! <- `routes` and the thin `main`s in `functions/`.

pub mod domain;
pub mod store;
pub mod http;
pub mod worker;
pub mod routes;
pub mod runtime;
