//! The one error type of the edge, its one mapping to statuses, and its bodies: rendered per route
//! family by an [`ErrorFormat`] (problem+json, or the TMF Error of TMF678).

use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Response};
use serde_json::json;

use super::response::{respond, set};
use crate::domain::{DomainError, FieldError};
use crate::retry::LostRace;
use crate::store::StoreError;

/// Every variant maps to exactly one status in [`ApiError::status`]; causes of 500 and 503 are
/// logged, never sent.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    BadRequest { detail: String, errors: Vec<FieldError> },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The path exists, with other methods (listed in `Allow`).
    #[error("allowed methods: {0}")]
    MethodNotAllowed(String),
    /// The resource's state forbids the request.
    #[error("{0}")]
    Conflict(String),
    /// A conditional write lost to a concurrent change (retried by `with_retries`, then 409).
    #[error("a concurrent change won; read the resource again and retry")]
    LostRace,
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    /// The store throttles (429 with Retry-After); the cause is logged.
    #[error("too many requests; retry later")]
    TooManyRequests(#[source] StoreError),
    /// A dependency is unavailable (503 with Retry-After); the cause is logged.
    #[error("a dependency is unavailable; retry later")]
    Unavailable(#[source] StoreError),
    /// A bug; the cause is logged, never sent.
    #[error("an internal error occurred")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type ApiResult<T = Response<Body>> = Result<T, ApiError>;

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest { detail: detail.into(), errors: Vec::new() }
    }

    pub fn field(pointer: &str, detail: &str) -> Self {
        DomainError::field(pointer, detail).into()
    }

    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) | Self::LostRace => StatusCode::CONFLICT,
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable machine code (the TMF Error's `code`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "INVALID_BODY",
            Self::Unauthorized(_) => "UNAUTHORIZED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
            Self::Conflict(_) => "INVALID_STATE",
            Self::LostRace => "CONCURRENT_CHANGE",
            Self::PreconditionFailed(_) => "PRECONDITION_FAILED",
            Self::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            Self::Unprocessable(_) => "IDEMPOTENCY_KEY_REUSED",
            Self::TooManyRequests(_) => "TOO_MANY_REQUESTS",
            Self::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL_ERROR",
        }
    }

    /// What a client is told: the message, except for 429, 500 and 503, whose causes go to the
    /// log with the request id.
    fn detail(&self, request_id: &str) -> String {
        match self {
            Self::Internal(cause) => {
                tracing::error!(request_id, cause = %error_chain(cause.as_ref()), "internal error");
                format!("an internal error occurred; quote request id {request_id}")
            }
            Self::Unavailable(cause) | Self::TooManyRequests(cause) => {
                tracing::warn!(request_id, cause = %cause, "store unavailable or throttling");
                self.to_string()
            }
            other => other.to_string(),
        }
    }

    /// The response in `format`, with the headers its status needs.
    pub fn into_response(self, request_id: &str, format: ErrorFormat) -> Response<Body> {
        let detail = self.detail(request_id);
        let mut response = format.render(&self, &detail);
        match &self {
            Self::MethodNotAllowed(allow) => set(&mut response, header::ALLOW, allow),
            Self::Unavailable(_) | Self::TooManyRequests(_) => set(&mut response, header::RETRY_AFTER, "1"),
            Self::Unauthorized(_) => set(&mut response, header::WWW_AUTHENTICATE, "Bearer"),
            _ => {}
        }
        response
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl LostRace for ApiError {
    fn is_lost_race(&self) -> bool {
        matches!(self, Self::LostRace)
    }

    fn lost_race() -> Self {
        Self::LostRace
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid { detail, errors } => Self::BadRequest { detail, errors },
            DomainError::Conflict(detail) => Self::Conflict(detail),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict | StoreError::IdempotencyKeyTaken => Self::LostRace,
            e @ StoreError::TooLarge { .. } => {
                Self::PayloadTooLarge(format!("{e}: a resource's stored form is bounded"))
            }
            e @ StoreError::Throttled(_) => Self::TooManyRequests(e),
            e @ StoreError::Unavailable(_) => Self::Unavailable(e),
            e @ StoreError::Internal(_) => Self::Internal(Box::new(e)),
        }
    }
}

/// How a route family writes its error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFormat {
    /// RFC 9457 problem+json: `{type, title, status, detail}` and `errors: [{pointer, detail}]`.
    Problem,
    /// TMF630/TMF678 Error: `{code, reason, message, status, @type: "Error"}`.
    Tmf,
}

impl ErrorFormat {
    fn render(self, error: &ApiError, detail: &str) -> Response<Body> {
        let status = error.status();
        let title = status.canonical_reason().unwrap_or("Error");
        match self {
            Self::Problem => {
                let slug = title.to_lowercase().replace(' ', "-");
                let mut body = json!({
                    "type": format!("urn:billflow:problem:{slug}"),
                    "title": title,
                    "status": status.as_u16(),
                    "detail": detail,
                });
                if let ApiError::BadRequest { errors, .. } = error {
                    if !errors.is_empty() {
                        body["errors"] = json!(errors);
                    }
                }
                respond(status, &body, "application/problem+json")
            }
            Self::Tmf => {
                let body = json!({
                    "code": error.code(),
                    "reason": title,
                    "message": detail,
                    "status": status.as_u16().to_string(),
                    "@type": "Error",
                });
                respond(status, &body, "application/json")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(response: &Response<Body>) -> serde_json::Value {
        match response.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn given_an_error_then_each_format_renders_its_shape_and_hides_internals() {
        let problem = ApiError::field("/name", "is required").into_response("r1", ErrorFormat::Problem);
        assert_eq!(problem.status(), 400);
        assert_eq!(body(&problem)["errors"][0]["pointer"], "/name");
        let tmf = ApiError::NotFound("no such bill".into()).into_response("r2", ErrorFormat::Tmf);
        assert_eq!(
            body(&tmf),
            json!({"code": "NOT_FOUND", "reason": "Not Found", "message": "no such bill", "status": "404", "@type": "Error"})
        );
        let internal = ApiError::internal("secret table name").into_response("r3", ErrorFormat::Tmf);
        assert!(!body(&internal).to_string().contains("secret"));
        let throttled = ApiError::from(StoreError::Throttled("ThrottlingException on table-x9".into()))
            .into_response("r4", ErrorFormat::Problem);
        assert_eq!(throttled.status(), 429);
        assert_eq!(throttled.headers()["retry-after"], "1");
        assert!(!body(&throttled).to_string().contains("table-x9"));
    }
}
