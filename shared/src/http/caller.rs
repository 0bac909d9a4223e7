//! The caller, read from the authorizer's context on the request (00-platform.md, Identity).

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use crate::domain::identity::Principal;

/// Reads the authorizer context of an API Gateway HTTP API request; 401 without one.
pub fn principal(req: &Request) -> ApiResult<Principal> {
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
    Ok(Principal { user_id, tenants: list("tenants", ','), scopes: list("scopes", ' ') })
}

/// The caller, required to hold `scope` (403 otherwise).
pub fn caller(req: &Request, scope: &str) -> ApiResult<Principal> {
    let principal = principal(req)?;
    if principal.has_scope(scope) {
        Ok(principal)
    } else {
        Err(ApiError::Forbidden(format!("this needs the {scope} scope")))
    }
}

/// The hash an API key is stored under: SHA-256, hex. The key itself is never stored or logged.
pub fn api_key_hash(key: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(key.as_bytes()))
}
