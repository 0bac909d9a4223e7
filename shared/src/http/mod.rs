//! The HTTP edge: request parsing, the caller, the one error type and its one mapping to statuses
//! and problem+json bodies, and the handlers. Handlers are ordinary async functions over a
//! `lambda_http::Request`, so the Lambdas, the dev server and the tests call the same code.

pub mod bill_runs;
pub mod bills;

use std::time::Instant;

use lambda_http::http::{header, HeaderMap, HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::domain::{DomainError, FieldError};
use crate::store::{IdempotencyRecord, NewItem, SharedRepository, StoreError};

/// What every handler needs, built once per process.
#[derive(Clone)]
pub struct Deps {
    pub store: SharedRepository,
}

/// Bodies over this size are 413.
pub const MAX_BODY: usize = 1024 * 1024;

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 60 * 60;

/// The one error type of the edge. Every variant maps to exactly one status in [`ApiError::status`].
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
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("the body is larger than 1 MiB")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    /// A dependency is unavailable; the cause is logged, never sent.
    #[error("{0}")]
    Unavailable(String),
    /// A bug; the cause is logged, never sent.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest { detail: detail.into(), errors: Vec::new() }
    }

    pub fn field(pointer: &str, detail: &str) -> Self {
        DomainError::field(pointer, detail).into()
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem+json response (RFC 9457). Internal causes stay in the log.
    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let status = self.status();
        let title = status.canonical_reason().unwrap_or("Error");
        let slug = title.to_lowercase().replace(' ', "-");
        let detail = match &self {
            Self::Internal(cause) => {
                tracing::error!(request_id, cause = %cause, "internal error");
                format!("an internal error occurred; quote request id {request_id}")
            }
            Self::Unavailable(cause) => {
                tracing::warn!(request_id, cause = %cause, "dependency unavailable");
                "a dependency is unavailable; retry later".to_owned()
            }
            other => other.to_string(),
        };
        let mut body = json!({ "type": format!("urn:billflow:problem:{slug}"), "title": title, "status": status.as_u16(), "detail": detail });
        if let Self::BadRequest { errors, .. } = &self {
            if !errors.is_empty() {
                body["errors"] = json!(errors);
            }
        }
        let mut response = respond(status, &body, "application/problem+json");
        match &self {
            Self::MethodNotAllowed(allow) => set(&mut response, header::ALLOW, allow),
            Self::Unavailable(_) => set(&mut response, header::RETRY_AFTER, "1"),
            Self::Unauthorized(_) => set(&mut response, header::WWW_AUTHENTICATE, "Bearer"),
            _ => {}
        }
        response
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
            StoreError::Conflict | StoreError::IdempotencyKeyTaken => {
                Self::Conflict("a concurrent change won; read the resource again and retry".into())
            }
            StoreError::Unavailable(cause) => Self::Unavailable(cause),
            StoreError::Internal(cause) => Self::Internal(cause),
        }
    }
}

pub type ApiResult<T = Response<Body>> = Result<T, ApiError>;

// ---------------------------------------------------------------------------------------------
// The caller

pub const SCOPE_READ: &str = "billing:read";
pub const SCOPE_WRITE: &str = "billing:write";

/// The caller, as the authorizer's context gives it (`userId`, `tenants`, `scopes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    pub user_id: u64,
    pub tenants: Vec<String>,
    pub scopes: Vec<String>,
}

impl Principal {
    /// Reads the authorizer context of an API Gateway HTTP API request; 401 without one.
    pub fn from_request(req: &Request) -> ApiResult<Self> {
        let unauthorized = || ApiError::Unauthorized("no or invalid credentials".into());
        let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() else {
            return Err(unauthorized());
        };
        let fields = &ctx.authorizer.as_ref().ok_or_else(unauthorized)?.fields;
        let user_id = match fields.get("userId") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(unauthorized)?;
        let list = |name: &str, separator: char| -> Vec<String> {
            match fields.get(name) {
                Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
                Some(Value::String(s)) => {
                    s.split(separator).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
                }
                _ => Vec::new(),
            }
        };
        Ok(Self { user_id, tenants: list("tenants", ','), scopes: list("scopes", ' ') })
    }

    pub fn require(&self, scope: &str) -> ApiResult<()> {
        if self.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("this needs the {scope} scope")))
        }
    }

    /// The authorizer context the dev server (and tests) attach, as API Gateway would.
    pub fn to_context(&self) -> std::collections::HashMap<String, Value> {
        [
            ("userId".to_owned(), json!(self.user_id)),
            ("tenants".to_owned(), json!(self.tenants)),
            ("scopes".to_owned(), json!(self.scopes)),
        ]
        .into()
    }
}

/// The caller, required to hold `scope`.
pub fn caller(req: &Request, scope: &str) -> ApiResult<Principal> {
    let principal = Principal::from_request(req)?;
    principal.require(scope)?;
    Ok(principal)
}

// ---------------------------------------------------------------------------------------------
// Requests

/// The API Gateway request id when there is one, else a new id.
pub fn request_id(req: &Request) -> String {
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() {
        if let Some(id) = ctx.request_id.as_deref().filter(|id| !id.is_empty()) {
            return id.to_owned();
        }
    }
    uuid::Uuid::new_v4().to_string()
}

/// A path id: a positive 64-bit integer, else 400.
pub fn path_id(req: &Request, name: &str) -> ApiResult<u64> {
    let raw = req.path_parameters_ref().and_then(|p| p.first(name)).unwrap_or_default();
    // Digits only: `u64::from_str` would also take "+5".
    match raw.parse::<u64>() {
        Ok(id) if id > 0 && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(id),
        _ => Err(ApiError::field(&format!("/{name}"), "must be a positive 64-bit integer")),
    }
}

pub fn header_str<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

/// The body as bytes, refusing more than 1 MiB (413).
pub fn body_bytes(req: &Request) -> ApiResult<&[u8]> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY {
        return Err(ApiError::PayloadTooLarge);
    }
    Ok(bytes)
}

fn parse_json(bytes: &[u8]) -> ApiResult<Value> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request("the body is empty; a JSON body is required"));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// A JSON body: size (413), then content type `application/json` (415), then syntax (400).
pub fn json_body(req: &Request) -> ApiResult<Value> {
    let bytes = body_bytes(req)?;
    match media_type(req.headers()).as_deref() {
        Some("application/json") => parse_json(bytes),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "expected Content-Type application/json, got {}",
            other.unwrap_or("none")
        ))),
    }
}

/// A JSON Patch body: `application/json-patch+json`, or `application/json` when it is an array.
pub fn json_patch_body(req: &Request) -> ApiResult<Value> {
    let bytes = body_bytes(req)?;
    let media = media_type(req.headers());
    match media.as_deref() {
        Some("application/json-patch+json") => parse_json(bytes),
        Some("application/json") => match parse_json(bytes)? {
            body @ Value::Array(_) => Ok(body),
            _ => Err(ApiError::UnsupportedMediaType(
                "a JSON Patch is sent as application/json-patch+json (or application/json with an array body)".into(),
            )),
        },
        other => Err(ApiError::UnsupportedMediaType(format!(
            "expected Content-Type application/json-patch+json, got {}",
            other.unwrap_or("none")
        ))),
    }
}

/// `If-Match` against the current version: 412 when it names another one.
pub fn check_if_match(req: &Request, version: u64) -> ApiResult<()> {
    let Some(value) = header_str(req, "if-match") else {
        return Ok(());
    };
    let current = etag(version);
    let matches = value.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == current);
    if matches {
        Ok(())
    } else {
        Err(ApiError::PreconditionFailed(format!("If-Match {value} does not match the current ETag {current}")))
    }
}

pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

// ---------------------------------------------------------------------------------------------
// Responses

fn set(response: &mut Response<Body>, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

fn respond(status: StatusCode, body: &impl Serialize, content_type: &str) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "null".to_owned());
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    set(&mut response, header::CONTENT_TYPE, content_type);
    response
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    respond(status, body, "application/json")
}

/// A single resource with its ETag.
pub fn resource_response(status: StatusCode, body: &Value, version: u64) -> Response<Body> {
    let mut response = json_response(status, body);
    set(&mut response, header::ETAG, &etag(version));
    response
}

pub fn with_header(mut response: Response<Body>, name: &'static str, value: &str) -> Response<Body> {
    set(&mut response, header::HeaderName::from_static(name), value);
    response
}

/// Runs a handler body: maps its error to the one problem+json response, adds `x-request-id`
/// and logs one line (never the body, a token or a key).
pub async fn respond_to<F>(req: &Request, work: F) -> Response<Body>
where
    F: std::future::Future<Output = ApiResult>,
{
    let started = Instant::now();
    let id = request_id(req);
    let mut response = match work.await {
        Ok(response) => response,
        Err(error) => error.into_response(&id),
    };
    set(&mut response, header::HeaderName::from_static("x-request-id"), &id);
    tracing::info!(
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

// ---------------------------------------------------------------------------------------------
// Idempotency-Key

/// A create's idempotency: the scoped key and the body's fingerprint.
pub struct Idempotency {
    pub key: String,
    pub fingerprint: String,
}

impl Idempotency {
    /// Reads `Idempotency-Key` (1-255 visible ASCII characters), scoped by caller and route.
    pub fn from_request(req: &Request, caller: &Principal, route: &str, body: &Value) -> ApiResult<Option<Self>> {
        let Some(raw) = req.headers().get("idempotency-key") else {
            return Ok(None);
        };
        let key = raw.to_str().ok().filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
        let key =
            key.ok_or_else(|| ApiError::field("/Idempotency-Key", "must be 1 to 255 visible ASCII characters"))?;
        let canonical = serde_json::to_string(body).unwrap_or_default();
        let fingerprint = format!("{:x}", Sha256::digest(canonical.as_bytes()));
        Ok(Some(Self { key: format!("{}:{route}:{key}", caller.user_id), fingerprint }))
    }

    /// The stored response for a replay, or 422 when the key was used with another body.
    pub fn replay(&self, record: &IdempotencyRecord) -> ApiResult {
        if record.fingerprint != self.fingerprint {
            return Err(ApiError::Unprocessable("this Idempotency-Key was used with a different body".into()));
        }
        let mut response = Response::new(Body::Text(record.body.clone()));
        *response.status_mut() = StatusCode::from_u16(record.status).unwrap_or(StatusCode::OK);
        set(&mut response, header::CONTENT_TYPE, "application/json");
        if let Some(location) = &record.location {
            set(&mut response, header::LOCATION, location);
        }
        Ok(with_header(response, "idempotency-replayed", "true"))
    }

    pub fn record(&self, status: StatusCode, body: &Value, location: Option<String>) -> IdempotencyRecord {
        IdempotencyRecord {
            key: self.key.clone(),
            fingerprint: self.fingerprint.clone(),
            status: status.as_u16(),
            body: body.to_string(),
            location,
            expires_at: crate::store::now_epoch() + IDEMPOTENCY_TTL_SECONDS,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writes that may lose a race

/// How many times a write that lost a race is re-read and re-applied before 409.
pub const ATTEMPTS: u32 = 8;

/// A short, jittered pause before attempt `n` (none before the first), so that writers who lost
/// a race do not collide again in lockstep.
pub async fn backoff(attempt: u32) {
    if attempt > 0 {
        let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 8;
        tokio::time::sleep(std::time::Duration::from_millis(u64::from(attempt) * 2 + jitter)).await;
    }
}

/// Writes a new resource: 201 with `Location`, or the stored response when a concurrent request
/// with the same `Idempotency-Key` won. `Ok(None)` when the write lost a race: read and try again.
pub async fn store_new(
    deps: &Deps,
    item: NewItem,
    idempotency: Option<&Idempotency>,
    location: &str,
) -> ApiResult<Option<Response<Body>>> {
    match deps.store.create(item).await {
        Ok(stored) => {
            let response = resource_response(StatusCode::CREATED, &stored.doc, stored.version);
            Ok(Some(with_header(response, "location", location)))
        }
        Err(StoreError::Conflict) => Ok(None),
        Err(StoreError::IdempotencyKeyTaken) => {
            let idem = idempotency.ok_or_else(|| ApiError::Internal("key taken without a key".into()))?;
            match deps.store.idempotency(&idem.key).await? {
                Some(record) => idem.replay(&record).map(Some),
                None => Err(StoreError::Conflict.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}
