//! Credential verification (docs/auth.md): one module for the `authorizer` function and the
//! dev server, so that what `make run` accepts is exactly what AWS accepts.
//!
//! - Bearer JWTs: HS256 with `AUTH_JWT_SECRET`; RS256 and ES256 against the JWKS at
//!   `AUTH_JWKS_URL` (fetched on first use, cached for `AUTH_JWKS_TTL_SECONDS`, refreshed on an
//!   unknown `kid` at most once a minute; a JWKS that cannot be fetched denies). `exp` is
//!   required, `nbf` checked, `iss` and `aud` when `AUTH_ISSUER` / `AUTH_AUDIENCE` are set. The
//!   key is chosen by the algorithm family, so `alg: none` and an HS256 token signed with an RSA
//!   public key are refused.
//! - API keys: looked up by SHA-256 hash; revoked and expired keys are refused; a lookup is cached
//!   in the process for at most 60 s.
//!
//! Nothing is fetched, read or set up at construction: the HTTP client and the JWKS come with the
//! first request that needs them. Denials carry a reason for the log, never for the client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lambda_http::http::HeaderMap;
use serde::Deserialize;

use crate::domain::identity::Principal;
use crate::http::caller::api_key_hash;
use crate::routes::Auth;
use crate::store::{now_epoch, ApiKeyRecord, SharedRepository, StoreError};

/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;
/// The JWKS is fetched again for an unknown `kid` at most this often (counted from the last fetch).
pub const JWKS_REFRESH: Duration = Duration::from_secs(60);
/// How long an API key lookup is reused in the process, at most (`AUTH_API_KEY_CACHE_SECONDS`
/// may shorten it).
pub const API_KEY_CACHE: Duration = Duration::from_secs(60);
/// The largest JWKS document read.
const MAX_JWKS_BYTES: usize = 256 * 1024;
const JWKS_TIMEOUT: Duration = Duration::from_secs(3);

/// What verification is configured with.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub jwt_secret: Option<Vec<u8>>,
    pub jwks_url: Option<String>,
    pub jwks_ttl: Duration,
    /// How soon an unknown `kid` may fetch the JWKS again ([`JWKS_REFRESH`]).
    pub jwks_refresh: Duration,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// How long an API key lookup is reused ([`API_KEY_CACHE`] at most).
    pub api_key_cache: Duration,
}

impl AuthConfig {
    /// `AUTH_JWT_SECRET`, `AUTH_JWKS_URL`, `AUTH_JWKS_TTL_SECONDS` (default 600), `AUTH_ISSUER`,
    /// `AUTH_AUDIENCE`, `AUTH_API_KEY_CACHE_SECONDS` (default and most 60); empty values count as
    /// unset.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            jwt_secret: var("AUTH_JWT_SECRET").map(String::into_bytes),
            jwks_url: var("AUTH_JWKS_URL"),
            jwks_ttl: Duration::from_secs(var("AUTH_JWKS_TTL_SECONDS").and_then(|v| v.parse().ok()).unwrap_or(600)),
            jwks_refresh: JWKS_REFRESH,
            issuer: var("AUTH_ISSUER"),
            audience: var("AUTH_AUDIENCE"),
            api_key_cache: var("AUTH_API_KEY_CACHE_SECONDS")
                .and_then(|v| v.parse().ok())
                .map_or(API_KEY_CACHE, Duration::from_secs)
                .min(API_KEY_CACHE),
        }
    }
}

/// How a caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    Jwt,
    ApiKey,
}

impl AuthType {
    pub fn name(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::ApiKey => "apiKey",
        }
    }
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub principal: Principal,
    pub auth_type: AuthType,
}

impl Identity {
    /// The authorizer context every handler reads: `userId`, `tenants`, `scopes`, `authType`.
    pub fn context(&self) -> serde_json::Value {
        serde_json::json!({
            "userId": self.principal.user_id,
            "tenants": self.principal.tenants,
            "scopes": self.principal.scopes,
            "authType": self.auth_type.name(),
        })
    }
}

/// Why a credential was refused: for the log only (never the credential itself).
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    #[error("no credential for this route")]
    Missing,
    #[error("the credential header is malformed")]
    Malformed,
    #[error("this route takes another kind of credential")]
    WrongKind,
    #[error("token refused: {0}")]
    Token(String),
    #[error("the JWKS could not be fetched: {0}")]
    Jwks(String),
    #[error("unknown API key")]
    UnknownKey,
    #[error("revoked API key")]
    Revoked,
    #[error("expired API key")]
    Expired,
    #[error("store error: {0}")]
    Store(#[from] StoreError),
    #[error("no route {0:?}")]
    NoRoute(String),
}

/// The claims billflow reads from a token.
#[derive(Debug, Deserialize)]
struct Claims {
    #[allow(dead_code)]
    sub: String,
    uid: u64,
    #[serde(default)]
    tenants: Vec<String>,
    #[serde(default)]
    scope: String,
}

#[derive(Default)]
struct Jwks {
    set: Option<JwkSet>,
    fetched_at: Option<Instant>,
}

/// The verifier: configuration, the store of API keys, and what it caches.
pub struct Verifier {
    config: AuthConfig,
    store: SharedRepository,
    http: OnceLock<Result<HttpsClient, String>>,
    jwks: tokio::sync::Mutex<Jwks>,
    api_keys: Mutex<HashMap<String, (Instant, ApiKeyRecord)>>,
}

impl Verifier {
    pub fn new(config: AuthConfig, store: SharedRepository) -> Self {
        Self { config, store, http: OnceLock::new(), jwks: Default::default(), api_keys: Default::default() }
    }

    /// The caller a request's credential names, for a route that takes `auth`.
    pub async fn authorize(&self, auth: Auth, headers: &HeaderMap) -> Result<Identity, Denied> {
        let header = |name: &str| headers.get(name).map(|v| v.to_str().map_err(|_| Denied::Malformed));
        let bearer = header("authorization").transpose()?;
        let key = header("x-api-key").transpose()?;
        match auth {
            Auth::Bearer => {
                let value = bearer.ok_or(if key.is_some() { Denied::WrongKind } else { Denied::Missing })?;
                let token = value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .ok_or(Denied::Malformed)?;
                Ok(Identity { principal: self.bearer(token).await?, auth_type: AuthType::Jwt })
            }
            Auth::ApiKey => {
                let key = key.ok_or(if bearer.is_some() { Denied::WrongKind } else { Denied::Missing })?;
                Ok(Identity { principal: self.api_key(key).await?, auth_type: AuthType::ApiKey })
            }
        }
    }

    /// Verifies a bearer JWT.
    pub async fn bearer(&self, token: &str) -> Result<Principal, Denied> {
        let refused = |e: jsonwebtoken::errors::Error| Denied::Token(e.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(refused)?;
        let key = match header.alg {
            Algorithm::HS256 => match &self.config.jwt_secret {
                Some(secret) => DecodingKey::from_secret(secret),
                None => return Err(Denied::Token("HS256 tokens are not accepted: no secret is configured".into())),
            },
            Algorithm::RS256 | Algorithm::ES256 => self.jwk(header.kid.as_deref(), header.alg).await?,
            other => return Err(Denied::Token(format!("algorithm {other:?} is not accepted"))),
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        // A configured issuer or audience is required of every token, not only checked when present.
        let mut required = vec!["exp"];
        required.extend(self.config.issuer.as_ref().map(|_| "iss"));
        required.extend(self.config.audience.as_ref().map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        match &self.config.issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &self.config.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(refused)?.claims;
        Ok(Principal {
            user_id: claims.uid,
            tenants: claims.tenants,
            scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
        })
    }

    /// The JWKS key for `kid`, of the algorithm's family.
    async fn jwk(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, Denied> {
        let Some(url) = self.config.jwks_url.as_deref() else {
            return Err(Denied::Token(format!("{alg:?} tokens are not accepted: no JWKS is configured")));
        };
        let kid = kid.ok_or_else(|| Denied::Token("the token names no kid".into()))?;
        let mut jwks = self.jwks.lock().await;
        if jwks.fetched_at.is_none_or(|at| at.elapsed() >= self.config.jwks_ttl) {
            self.fetch(&mut jwks, url).await?;
        }
        if let Some(key) = find(&jwks, kid, alg) {
            return key;
        }
        if jwks.fetched_at.is_none_or(|at| at.elapsed() >= self.config.jwks_refresh) {
            self.fetch(&mut jwks, url).await?;
            if let Some(key) = find(&jwks, kid, alg) {
                return key;
            }
        }
        Err(Denied::Token(format!("no key {kid:?} in the JWKS")))
    }

    async fn fetch(&self, jwks: &mut Jwks, url: &str) -> Result<(), Denied> {
        let client = self.http.get_or_init(http_client).as_ref().map_err(|e| Denied::Jwks(e.clone()))?;
        let fetched = async {
            let request =
                lambda_http::http::Request::get(url).body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
            let response = client.request(request).await.map_err(|e| e.to_string())?;
            if !response.status().is_success() {
                return Err(format!("status {}", response.status()));
            }
            let bytes = Limited::new(response.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
                .map_err(
                    |e| if e.is::<LengthLimitError>() { "the JWKS is too large".to_owned() } else { e.to_string() },
                )?
                .to_bytes();
            serde_json::from_slice::<JwkSet>(&bytes).map_err(|e| e.to_string())
        };
        let fetched = tokio::time::timeout(JWKS_TIMEOUT, fetched)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {JWKS_TIMEOUT:?}")));
        match fetched {
            Ok(set) => {
                *jwks = Jwks { set: Some(set), fetched_at: Some(Instant::now()) };
                Ok(())
            }
            // A set that cannot be fetched denies: the old one is dropped, never trusted longer.
            Err(e) => {
                *jwks = Jwks::default();
                Err(Denied::Jwks(e))
            }
        }
    }

    /// Verifies an API key by its hash.
    pub async fn api_key(&self, key: &str) -> Result<Principal, Denied> {
        if key.is_empty() || key.len() > 256 {
            return Err(Denied::Malformed);
        }
        let hash = api_key_hash(key);
        let cached = self.api_keys.lock().ok().and_then(|cache| {
            cache
                .get(&hash)
                .filter(|(at, _)| at.elapsed() < self.config.api_key_cache)
                .map(|(_, record)| record.clone())
        });
        let record = match cached {
            Some(record) => record,
            None => {
                let record = self.store.api_key(&hash).await?.ok_or(Denied::UnknownKey)?;
                if let Ok(mut cache) = self.api_keys.lock() {
                    cache.insert(hash, (Instant::now(), record.clone()));
                }
                record
            }
        };
        let now = now_epoch();
        if record.revoked_at.is_some() {
            return Err(Denied::Revoked);
        }
        if !record.valid_at(now) {
            return Err(Denied::Expired);
        }
        Ok(record.caller)
    }
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// The HTTPS (or HTTP) client of JWKS fetches, built on first use: its TLS set-up loads the
/// system's root certificates, which an issuer's JWKS may chain to. It is the hyper client and
/// rustls connector (on ring) that the SDK's DynamoDB client already links, so the authorizer
/// carries no second HTTP stack.
fn http_client() -> Result<HttpsClient, String> {
    use hyper_rustls::ConfigBuilderExt;
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_native_roots()
        .map_err(|e| e.to_string())?
        .with_no_client_auth();
    let connector = HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

fn find(jwks: &Jwks, kid: &str, alg: Algorithm) -> Option<Result<DecodingKey, Denied>> {
    let jwk = jwks.set.as_ref()?.find(kid)?;
    use jsonwebtoken::jwk::AlgorithmParameters::{EllipticCurve, RSA};
    let family_fits =
        matches!((&jwk.algorithm, alg), (RSA(_), Algorithm::RS256) | (EllipticCurve(_), Algorithm::ES256));
    if !family_fits {
        return Some(Err(Denied::Token(format!("key {kid:?} is not a key for {alg:?}"))));
    }
    Some(DecodingKey::from_jwk(jwk).map_err(|e| Denied::Token(e.to_string())))
}

// ---------------------------------------------------------------------------------------------
// The `authorizer` function

pub use aws_lambda_events::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse as AuthorizerResponse,
    ApiGatewayV2CustomAuthorizerV2Request as AuthorizerRequest,
};

/// The kind of credential a route takes, from an authorizer event's `routeKey` ("GET /bills").
fn route_auth(route_key: &str) -> Option<Auth> {
    let (method, path) = route_key.split_once(' ')?;
    crate::routes::ROUTES.iter().find(|r| r.method == method && r.path == path).map(|r| r.auth)
}

/// An HTTP API authorizer's answer (payload 2.0, simple responses): allowed with the caller's
/// context, or denied. Deny is the default: an unknown route, a credential of the wrong kind, a
/// store error all deny, and the reason is logged (at info, without the credential).
pub async fn authorize_event(verifier: &Verifier, event: &AuthorizerRequest) -> AuthorizerResponse {
    let route_key = event.route_key.clone().unwrap_or_default();
    let outcome = match route_auth(&route_key) {
        Some(auth) => verifier.authorize(auth, &event.headers).await,
        None => Err(Denied::NoRoute(route_key.clone())),
    };
    let mut response = AuthorizerResponse::default();
    match outcome {
        Ok(identity) => {
            response.is_authorized = true;
            response.context = identity.context();
        }
        Err(reason) => {
            let request_id = event.request_context.request_id.as_deref().unwrap_or_default();
            tracing::info!(request_id, route = %route_key, %reason, "denied");
        }
    }
    response
}

/// A denial, for a step that failed before it could decide (a panic).
pub fn deny() -> AuthorizerResponse {
    AuthorizerResponse::default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_jwks_client_builds_on_ring_and_the_system_roots() {
        assert!(super::http_client().is_ok(), "{:?}", super::http_client().err());
    }
}
