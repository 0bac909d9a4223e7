//! Responses: JSON bodies, resources with their ETag, and the wrapper every handler runs in.

use std::time::Instant;

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use super::error::{ApiResult, ErrorFormat};
use super::request::{etag, request_id};

pub(crate) fn set(response: &mut Response<Body>, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

/// A response with a JSON text body.
pub fn text_response(status: StatusCode, text: String, content_type: &str) -> Response<Body> {
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    set(&mut response, header::CONTENT_TYPE, content_type);
    response
}

pub(crate) fn respond(status: StatusCode, body: &impl Serialize, content_type: &str) -> Response<Body> {
    text_response(status, serde_json::to_string(body).unwrap_or_else(|_| "null".to_owned()), content_type)
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    respond(status, body, "application/json")
}

/// A single resource, as its stored JSON text, with its ETag.
pub fn resource_response(status: StatusCode, body: &str, version: u64) -> Response<Body> {
    let mut response = text_response(status, body.to_owned(), "application/json");
    set(&mut response, header::ETAG, &etag(version));
    response
}

pub fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

pub fn with_header(mut response: Response<Body>, name: &'static str, value: &str) -> Response<Body> {
    set(&mut response, header::HeaderName::from_static(name), value);
    response
}

/// Runs a handler body: renders its error in the family's `format`, adds `x-request-id` and
/// logs one line (never the body, a token or a key).
pub async fn respond_to<F>(req: &Request, format: ErrorFormat, work: F) -> Response<Body>
where
    F: std::future::Future<Output = ApiResult>,
{
    let started = Instant::now();
    let id = request_id(req);
    let mut response = match work.await {
        Ok(response) => response,
        Err(error) => error.into_response(&id, format),
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
