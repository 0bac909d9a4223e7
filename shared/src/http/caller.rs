//! The caller, read from the authorizer's context on the request (`userId`, `tenants`, `scopes`,
//! `authType`), and the tenant the request acts in (docs/tenants.md): the only way a handler gets a store.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::Deps;
use crate::domain::identity::Principal;
use crate::domain::key::TenantId;
use crate::store::repo::Tenant;

/// The header a caller of several tenants names the request's tenant in.
pub const TENANT_HEADER: &str = "x-tenant-id";

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

/// Whether the caller authenticated with a bearer token (the authorizer's `authType` is `jwt`;
/// a context without one is not).
pub fn by_bearer(req: &Request) -> bool {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            ctx.authorizer.as_ref().is_some_and(|a| a.fields.get("authType").and_then(Value::as_str) == Some("jwt"))
        }
        _ => false,
    }
}

/// The tenant `name` of `principal`'s, when it is theirs (403 otherwise, and for a name that
/// cannot be a tenant id).
fn own_tenant(principal: &Principal, name: &str) -> ApiResult<TenantId> {
    if !principal.belongs_to(name) {
        return Err(ApiError::Forbidden(format!("tenant {name:?} is not among the caller's tenants")));
    }
    TenantId::parse(name).ok_or_else(|| ApiError::Forbidden(format!("{name:?} is not a usable tenant id")))
}

/// The tenant a request of a family other than billing runs acts in: the credential's only
/// tenant, or the one `X-Tenant-Id` names (400 when a caller of several tenants names none, 403
/// when it names one that is not the caller's; a caller of no tenant is 403).
pub fn request_tenant(principal: &Principal, req: &Request) -> ApiResult<TenantId> {
    let mut named = req.headers().get_all(TENANT_HEADER).iter();
    if let Some(value) = named.next() {
        if named.next().is_some() {
            return Err(ApiError::field("/X-Tenant-Id", "must be sent once"));
        }
        let name = value.to_str().map_err(|_| ApiError::field("/X-Tenant-Id", "must be a tenant id"))?;
        return own_tenant(principal, name.trim());
    }
    let mut tenants: Vec<&str> = principal.tenants.iter().map(String::as_str).collect();
    tenants.sort_unstable();
    tenants.dedup();
    match tenants.as_slice() {
        [] => Err(ApiError::Forbidden("the credential belongs to no tenant".into())),
        [only] => own_tenant(principal, only),
        several => Err(ApiError::field(
            "/X-Tenant-Id",
            &format!("is required: the credential belongs to several tenants ({})", several.join(", ")),
        )),
    }
}

/// The caller, holding `scope`, and the store of the tenant the request acts in
/// ([`request_tenant`]).
pub fn acting<'a>(deps: &'a Deps, req: &Request, scope: &str) -> ApiResult<(Principal, Tenant<'a>)> {
    let principal = caller(req, scope)?;
    let tenant = request_tenant(&principal, req)?;
    Ok((principal, deps.tenant(tenant)))
}

/// As [`acting`], for billing runs: the tenant is the path's `{tenantId}`, which must be the
/// caller's (403).
pub fn acting_in_path<'a>(deps: &'a Deps, req: &Request, scope: &str) -> ApiResult<(Principal, Tenant<'a>)> {
    let principal = caller(req, scope)?;
    let raw = req.path_parameters_ref().and_then(|p| p.first("tenantId")).unwrap_or_default();
    let tenant = own_tenant(&principal, raw)?;
    Ok((principal, deps.tenant(tenant)))
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::http::ApiError;

    fn request(header: Option<&str>) -> Request {
        let mut req = Request::default();
        if let Some(value) = header.and_then(|h| lambda_http::http::HeaderValue::from_str(h).ok()) {
            req.headers_mut().insert(TENANT_HEADER, value);
        }
        req
    }

    fn principal(tenants: Vec<String>) -> Principal {
        Principal { user_id: 1, tenants, scopes: Vec::new() }
    }

    /// Tenant names as tokens carry them: valid ids, near misses (separators, spaces, case,
    /// the key prefix), empty and overlong ones.
    fn tenant_name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z]{1,3}",
            "[A-Za-z0-9._-]{1,64}",
            "[a-z#T ]{0,6}",
            Just(String::new()),
            Just("x".repeat(65)),
            ".{0,10}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever a credential's tenants and `X-Tenant-Id` are, the request's tenant is one of
        /// the credential's own, the one the header names when it names one, and nothing panics.
        #[test]
        fn the_request_tenant_is_always_one_of_the_callers_own(
            tenants in proptest::collection::vec(tenant_name(), 0..5),
            header in proptest::option::of(prop_oneof![tenant_name(), "[ -~]{0,70}"]),
        ) {
            let principal = principal(tenants.clone());
            let req = request(header.as_deref());
            let sent = req.headers().get(TENANT_HEADER).and_then(|v| v.to_str().ok()).map(|h| h.trim().to_owned());
            match request_tenant(&principal, &req) {
                Ok(tenant) => {
                    prop_assert!(tenants.iter().any(|t| t == tenant.as_str()), "{tenant} is not the caller's");
                    if let Some(sent) = &sent {
                        prop_assert_eq!(tenant.as_str(), sent.as_str());
                    } else {
                        let mut distinct = tenants.clone();
                        distinct.sort();
                        distinct.dedup();
                        prop_assert_eq!(distinct.len(), 1, "several tenants need the header");
                    }
                }
                Err(ApiError::Forbidden(_)) => {}
                Err(ApiError::BadRequest { errors, .. }) => {
                    prop_assert!(errors.iter().all(|e| e.pointer == "/X-Tenant-Id"));
                    prop_assert!(sent.is_none(), "a named tenant is 403 or accepted, never 400");
                }
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn x_tenant_id_is_sent_once() {
        let mut req = request(Some("a"));
        req.headers_mut().append(TENANT_HEADER, lambda_http::http::HeaderValue::from_static("b"));
        let two = principal(vec!["a".into(), "b".into()]);
        assert!(matches!(request_tenant(&two, &req), Err(ApiError::BadRequest { .. })));
    }

    #[test]
    fn one_tenant_is_implicit_several_need_the_header_and_none_is_forbidden() {
        let one = principal(vec!["a".into()]);
        let two = principal(vec!["a".into(), "b".into()]);
        assert_eq!(request_tenant(&one, &request(None)).unwrap().as_str(), "a");
        assert_eq!(request_tenant(&one, &request(Some("a"))).unwrap().as_str(), "a");
        assert!(matches!(request_tenant(&one, &request(Some("b"))), Err(ApiError::Forbidden(_))));
        assert!(matches!(request_tenant(&two, &request(None)), Err(ApiError::BadRequest { .. })));
        assert_eq!(request_tenant(&two, &request(Some("b"))).unwrap().as_str(), "b");
        assert!(matches!(request_tenant(&principal(vec![]), &request(None)), Err(ApiError::Forbidden(_))));
        let doubled = principal(vec!["a".into(), "a".into()]);
        assert_eq!(request_tenant(&doubled, &request(None)).unwrap().as_str(), "a", "one tenant, named twice");
    }
}
