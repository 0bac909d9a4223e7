//! Pure domain rules: models, validation, transitions and patch application.
//! Nothing here knows about HTTP, DynamoDB or async.

pub mod bill;
pub mod bill_run;
pub mod billing_run;
pub(crate) mod check;
pub mod customer_bill;
pub mod dates;
pub mod event;
pub mod identity;
pub mod key;
pub mod list;
pub mod money;
pub mod patch;
pub mod resource;
pub mod segment;
pub mod tmf_query;
pub mod webhook;

#[cfg(test)]
mod proptests;

use serde::Serialize;

/// The largest stored form of a resource (its JSON text and the worker's state beside it):
/// DynamoDB's item limit is 400 KB, and the rest is left for the store's own attributes. The
/// store refuses a larger one.
pub const MAX_RESOURCE_BYTES: usize = 350 * 1024;

/// What the worker may add to a resource a client wrote: issuing a bill (its status, dates and
/// amounts), billing a rate (its `bill` reference), a stage's state beside a run. Each adds well
/// under 1 KB; 8 KiB leaves room for all of them, so no client content can make a worker's write
/// pass [`MAX_RESOURCE_BYTES`] and stick the work.
pub const WORKER_HEADROOM: usize = 8 * 1024;

/// The largest stored form a client's write may give a resource (413 beyond), and the most a
/// JSON Patch may grow a document to: [`MAX_RESOURCE_BYTES`] less the worker's headroom.
pub const MAX_CLIENT_BYTES: usize = MAX_RESOURCE_BYTES - WORKER_HEADROOM;

/// One problem with one field of the input, located by JSON Pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub pointer: String,
    pub detail: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { pointer: pointer.into(), detail: detail.into() }
    }
}

/// A refusal by a domain rule. The HTTP edge maps each variant to exactly one status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The input is malformed or invalid (400).
    #[error("{detail}")]
    Invalid { detail: String, errors: Vec<FieldError> },
    /// The resource's state forbids the request (409).
    #[error("{0}")]
    Conflict(String),
}

impl DomainError {
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::Invalid { detail: detail.into(), errors: Vec::new() }
    }

    pub fn field(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        let error = FieldError::new(pointer, detail);
        Self::Invalid { detail: format!("{}: {}", error.pointer, error.detail), errors: vec![error] }
    }

    pub fn fields(errors: Vec<FieldError>) -> Self {
        let detail = errors.iter().map(|e| format!("{}: {}", e.pointer, e.detail)).collect::<Vec<_>>().join("; ");
        Self::Invalid { detail, errors }
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Conflict(detail.into())
    }
}
