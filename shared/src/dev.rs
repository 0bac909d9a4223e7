//! The local dev server: every route of the route table on one port, through the same handlers
//! the Lambdas run, with bearer-JWT verification turned into the authorizer context API Gateway
//! would pass, and the stage worker in-process; `GET /openapi.json` and `GET /docs` serve the
//! API's OpenAPI document and a page to browse it. Enabled by the `dev-server` feature.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
};
use lambda_http::http::header;
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::{AuthConfig, Denied, Verifier};
use crate::domain::identity::{Principal, SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE};
use crate::http::request::MAX_BODY;
use crate::http::{ApiError, Deps};
use crate::routes::{self, Matched};
use crate::store::SharedRepository;

/// Signs the dev server's HS256 tokens (the printed dev tokens, and the tests'). Verification is
/// [`Verifier`]'s, as in the `authorizer` function.
#[derive(Clone)]
pub struct Auth {
    config: AuthConfig,
}

/// The claims billflow's tokens carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub uid: u64,
    #[serde(default)]
    pub tenants: Vec<String>,
    #[serde(default)]
    pub scope: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

impl Auth {
    /// An HS256 secret, with `iss` and `aud` to put in tokens (and require of them) when set.
    pub fn new(secret: impl Into<Vec<u8>>, issuer: Option<String>, audience: Option<String>) -> Self {
        Self { config: AuthConfig { jwt_secret: Some(secret.into()), issuer, audience, ..AuthConfig::from_env() } }
    }

    /// The environment's configuration (`AUTH_*`, as the authorizer reads it), with `secret` as the
    /// HS256 secret when `AUTH_JWT_SECRET` is not set.
    pub fn from_env(secret: &[u8]) -> Self {
        let mut config = AuthConfig::from_env();
        config.jwt_secret.get_or_insert_with(|| secret.to_vec());
        Self { config }
    }

    /// As it is, with API key lookups reused for `ttl` at most (0: every request reads the key).
    pub fn with_api_key_cache(mut self, ttl: Duration) -> Self {
        self.config.api_key_cache = ttl.min(crate::auth::API_KEY_CACHE);
        self
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// A signed HS256 token for `principal`, valid for `ttl`.
    pub fn token(&self, principal: &Principal, ttl: Duration) -> String {
        let exp = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64 + ttl.as_secs();
        let claims = Claims {
            sub: format!("user-{}", principal.user_id),
            uid: principal.user_id,
            tenants: principal.tenants.clone(),
            scope: principal.scopes.join(" "),
            exp,
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
        };
        let secret = self.config.jwt_secret.as_deref().unwrap_or_default();
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret))
            .unwrap_or_default()
    }
}

/// The caller of the printed dev token: user 1, tenant `dev`, both scopes.
pub fn dev_principal() -> Principal {
    Principal { user_id: 1, tenants: vec!["dev".into()], scopes: vec![SCOPE_READ.into(), SCOPE_WRITE.into()] }
}

/// The caller of the printed admin token: as [`dev_principal`], plus `billing:admin` (locking
/// billing runs, managing the tenant's API keys).
pub fn dev_admin() -> Principal {
    let mut admin = dev_principal();
    admin.user_id = 2;
    admin.scopes.push(SCOPE_ADMIN.into());
    admin
}

/// The caller of the printed two-tenant token: user 3 of tenants `dev` and `other`, who names
/// the request's tenant in `X-Tenant-Id`.
pub fn dev_two_tenants() -> Principal {
    Principal { user_id: 3, tenants: vec!["dev".into(), "other".into()], ..dev_principal() }
}

/// Stores `key` for `principal` through the same code as `billflow-admin api-key create` and
/// `POST /api-keys` ([`crate::api_keys`]; only its hash is stored).
pub async fn seed_api_key(store: &SharedRepository, key: &str, principal: &Principal) -> Result<(), String> {
    let new = crate::api_keys::NewKey {
        caller: principal.clone(),
        description: Some("dev server key".into()),
        expires_in: None,
    };
    let issued = new.issue_key(key.to_owned()).map_err(|e| e.to_string())?;
    store.put_api_key(&issued.record).await.map_err(|e| e.to_string())
}

/// What the dev server signs its tokens with and seeds as its key, kept in a file (mode 0600) so
/// that pasted tokens and keys keep working across restarts: made on first use, or anew when
/// `fresh` (the file is rewritten).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevCredentials {
    /// The HS256 secret, hex (32 random bytes).
    pub jwt_secret: String,
    pub api_key: String,
}

impl DevCredentials {
    pub fn load_or_make(path: &std::path::Path, fresh: bool) -> std::io::Result<Self> {
        if !fresh {
            if let Ok(text) = std::fs::read_to_string(path) {
                if let Ok(kept) = serde_json::from_str::<Self>(&text) {
                    return Ok(kept);
                }
            }
        }
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let made = Self {
            jwt_secret: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            api_key: crate::api_keys::new_api_key().1,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        std::io::Write::write_all(&mut options.open(path)?, serde_json::to_string(&made)?.as_bytes())?;
        Ok(made)
    }
}

pub struct Config {
    pub addr: SocketAddr,
    pub store: SharedRepository,
    /// Run the stage worker in-process (tests that need a stage held below 100 turn it off).
    pub worker: bool,
    /// A pause before each worker step (the stream's latency in AWS).
    pub step_delay: Duration,
    /// How often the sweeper re-drives work past its lease and the billing-run scheduler looks
    /// for due runs (`None`: never).
    pub timers: crate::worker::Timers,
    pub auth: Auth,
}

/// A running dev server.
pub struct DevServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl DevServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets requests in flight finish (5 s at most), and returns.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

struct State {
    deps: Deps,
    verifier: Verifier,
}

/// Binds `config.addr` (port 0 picks a free port) and serves until [`DevServer::stop`].
pub async fn start(config: Config) -> std::io::Result<DevServer> {
    let listener = TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    let store = if config.worker {
        let mut jobs = crate::worker::jobs();
        jobs.extend(crate::events::sender::jobs());
        crate::worker::in_process(config.store, config.step_delay, config.timers, jobs)
    } else {
        config.store
    };
    let verifier = Verifier::new(config.auth.config().clone(), store.clone());
    let state = Arc::new(State { deps: Deps::new(store), verifier });
    let (tx, mut rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        loop {
            tokio::select! {
                _ = &mut rx => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let state = state.clone();
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(&state, req).await) }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    });
    Ok(DevServer { addr, shutdown: Some(tx), task })
}

async fn handle(state: &State, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    if method == "GET" {
        if let Some((content_type, bytes)) = docs(&path) {
            let mut response = hyper::Response::new(Full::new(bytes));
            response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
            return response;
        }
    }
    let errors = routes::errors_for(&path);
    let response = match Limited::new(body, MAX_BODY + 1).collect().await {
        Err(_) => ApiError::PayloadTooLarge("the body is larger than 1 MiB".into()).into_response(&request_id, errors),
        Ok(collected) => match routes::find(&method, &path) {
            Matched::NotFound => {
                ApiError::NotFound(format!("no route for {method} {path}")).into_response(&request_id, errors)
            }
            Matched::MethodNotAllowed { allow } => {
                ApiError::MethodNotAllowed(allow.join(", ")).into_response(&request_id, errors)
            }
            Matched::Found { route, params } => {
                // As API Gateway with the authorizer: a verified caller becomes the context; a
                // denial reaches the handler with none, which answers 401.
                let identity = match state.verifier.authorize(route.auth, &parts.headers).await {
                    Ok(identity) => Some(identity),
                    Err(Denied::Store(e)) => {
                        return to_hyper(ApiError::from(e).into_response(&request_id, route.errors))
                    }
                    Err(reason) => {
                        tracing::info!(request_id = %request_id, %reason, "credential denied");
                        None
                    }
                };
                let context = gateway_context(&route, &parts, &path, &request_id, identity);
                let request = lambda_http::http::Request::from_parts(parts, Body::from(collected.to_bytes().to_vec()))
                    .with_path_parameters(decoded(params))
                    .with_query_string_parameters(query_parameters(query.as_deref()))
                    .with_request_context(RequestContext::ApiGatewayV2(context));
                match routes::handler(&route) {
                    Some(handler) => return to_hyper(handler(&state.deps, request).await),
                    None => ApiError::internal(format!("route {} has no handler", route.function))
                        .into_response(&request_id, route.errors),
                }
            }
        },
    };
    tracing::info!(request_id = %request_id, method = %method, path = %path, status = response.status().as_u16(), "request");
    let mut response = to_hyper(response);
    if let Ok(value) = header::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// A query string's parameters, each with every value it was given, as API Gateway passes them.
fn query_parameters(query: Option<&str>) -> HashMap<String, Vec<String>> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes()).fold(HashMap::new(), |mut map, (k, v)| {
        map.entry(k.into_owned()).or_default().push(v.into_owned());
        map
    })
}

/// The request context API Gateway would pass for `route`, with the authorizer's context of a
/// verified caller (none for a denied one).
fn gateway_context(
    route: &routes::Route,
    parts: &hyper::http::request::Parts,
    path: &str,
    request_id: &str,
    identity: Option<crate::auth::Identity>,
) -> ApiGatewayV2httpRequestContext {
    let mut http = ApiGatewayV2httpRequestContextHttpDescription::default();
    http.method = parts.method.clone();
    http.path = Some(path.to_owned());
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(format!("{} {}", route.method, route.path));
    context.request_id = Some(request_id.to_owned());
    context.http = http;
    context.authorizer = identity.map(|identity| {
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        if let serde_json::Value::Object(fields) = identity.context() {
            authorizer.fields = fields.into_iter().collect();
        }
        authorizer
    });
    context
}

/// The OpenAPI document and its browsable page (Swagger UI, vendored in `shared/static/`): served
/// without credentials, and only by the dev server (they are not routes of the API in AWS).
fn docs(path: &str) -> Option<(&'static str, Bytes)> {
    static DOCUMENT: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    Some(match path {
        "/openapi.json" => {
            ("application/json", DOCUMENT.get_or_init(|| Bytes::from(crate::openapi::document().to_string())).clone())
        }
        "/docs" | "/docs/" => ("text/html; charset=utf-8", Bytes::from_static(include_bytes!("../static/docs.html"))),
        "/docs/init.js" => ("text/javascript", Bytes::from_static(include_bytes!("../static/docs-init.js"))),
        "/docs/swagger-ui-bundle.js" => {
            ("text/javascript", Bytes::from_static(include_bytes!("../static/swagger-ui/swagger-ui-bundle.js")))
        }
        "/docs/swagger-ui.css" => {
            ("text/css", Bytes::from_static(include_bytes!("../static/swagger-ui/swagger-ui.css")))
        }
        _ => return None,
    })
}

/// Path parameters percent-decoded, as API Gateway passes them (`monthly%20plan` is `monthly plan`).
/// A segment that does not decode to UTF-8 is passed as sent, for the handler to refuse.
fn decoded(params: Vec<(String, String)>) -> HashMap<String, String> {
    params
        .into_iter()
        .map(|(name, raw)| {
            let value = percent_encoding::percent_decode_str(&raw).decode_utf8().map(|v| v.into_owned()).unwrap_or(raw);
            (name, value)
        })
        .collect()
}

fn to_hyper(response: lambda_http::Response<Body>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_credentials_are_kept_across_restarts_until_fresh_ones_are_asked_for() {
        let dir = std::env::temp_dir().join(format!("billflow-dev-{}", uuid::Uuid::new_v4()));
        let path = dir.join("kept/dev-credentials.json");
        let first = DevCredentials::load_or_make(&path, false).unwrap();
        assert_eq!(first.jwt_secret.len(), 64);
        assert!(first.api_key.starts_with("bfk_"));
        assert_eq!(DevCredentials::load_or_make(&path, false).unwrap(), first, "a restart keeps them");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let fresh = DevCredentials::load_or_make(&path, true).unwrap();
        assert_ne!(fresh, first);
        assert_eq!(DevCredentials::load_or_make(&path, false).unwrap(), fresh, "the fresh ones are kept");
        std::fs::write(&path, "not json").unwrap();
        assert_ne!(DevCredentials::load_or_make(&path, false).unwrap(), fresh, "a broken file is made anew");
        let _ = std::fs::remove_dir_all(dir);
    }
}
