//! Request parsing: ids, bodies (size, then content type, then syntax), `If-Match`.

use lambda_http::http::{header, HeaderMap};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use crate::domain::key::{Id, IdType};

/// Bodies over this size are 413.
pub const MAX_BODY: usize = 1024 * 1024;

/// The API Gateway request id when there is one, else a new id.
pub fn request_id(req: &Request) -> String {
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() {
        if let Some(id) = ctx.request_id.as_deref().filter(|id| !id.is_empty()) {
            return id.to_owned();
        }
    }
    uuid::Uuid::new_v4().to_string()
}

/// A path id of the kind's type (400 otherwise): a positive 64-bit integer, or a UUID.
pub fn path_id(req: &Request, name: &str, ids: IdType) -> ApiResult<Id> {
    let raw = req.path_parameters_ref().and_then(|p| p.first(name)).unwrap_or_default();
    match Id::parse(ids, raw) {
        Some(id) if id != Id::Int(0) => Ok(id),
        _ => Err(ApiError::field(
            &format!("/{name}"),
            match ids {
                IdType::Counter => "must be a positive 64-bit integer",
                IdType::Uuid => "must be a UUID",
            },
        )),
    }
}

/// 400 for a query parameter the route does not take, named by pointer.
pub fn unknown_parameters(req: &Request, known: &[&str]) -> ApiResult<()> {
    let params = req.query_string_parameters_ref();
    match params.into_iter().flat_map(|p| p.iter()).find(|(name, _)| !known.contains(name)) {
        Some((name, _)) => Err(ApiError::field(&format!("/{name}"), "unknown query parameter")),
        None => Ok(()),
    }
}

pub fn header_str<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

/// The body as bytes, refusing more than 1 MiB (413).
pub fn body_bytes(req: &Request) -> ApiResult<&[u8]> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY {
        return Err(ApiError::PayloadTooLarge("the body is larger than 1 MiB".into()));
    }
    Ok(bytes)
}

pub(crate) fn parse_json(bytes: &[u8]) -> ApiResult<Value> {
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
    match media_type(req.headers()).as_deref() {
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
