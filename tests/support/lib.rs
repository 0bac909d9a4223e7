//! Shared test support: DynamoDB Local discovery, fresh stores, and `spawn_app` (the dev server on
//! a free port with typed request helpers, every response checked against the OpenAPI document).

pub mod lambda;
pub mod on_demand;
pub mod openapi;
pub mod receiver;
pub mod scale;
pub mod tmf;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use serde_json::Value;
use shared::dev::{self, Auth, Config, DevServer};
use shared::domain::identity::Principal;
use shared::domain::key::TenantId;
use shared::store::dynamo::DynamoStore;
use shared::store::memory::MemoryStore;
use shared::store::repo::Tenant;
use shared::store::SharedRepository;

/// A bench's arguments `[--dynamodb] SIZES...`: the store, and the sizes as given.
pub fn bench_args() -> (Backend, Vec<usize>) {
    let mut backend = Backend::Memory;
    let mut sizes = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--dynamodb" => backend = Backend::Dynamo,
            n => sizes.push(n.parse::<usize>().unwrap_or_else(|_| panic!("not a size: {n}"))),
        }
    }
    (backend, sizes)
}

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Dynamo,
}

/// The DynamoDB Local endpoint `make test` started (`DYNAMODB_ENDPOINT`). Without one, tests that
/// need it fail under `CI=true` and are reported as not run otherwise.
pub fn dynamodb_endpoint() -> Option<String> {
    match std::env::var("DYNAMODB_ENDPOINT").ok().filter(|e| !e.is_empty()) {
        Some(endpoint) => Some(endpoint),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("DYNAMODB_ENDPOINT is not set: under CI=true the DynamoDB Local tests must run (use `make test`)")
        }
        None => {
            eprintln!("NOT RUN: DYNAMODB_ENDPOINT is not set; run `make test` to start DynamoDB Local");
            None
        }
    }
}

pub fn dynamo_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
        .http_client(shared::store::dynamo::http_client(false))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A DynamoDB store on a new, uniquely named table.
pub async fn fresh_dynamo(endpoint: &str) -> DynamoStore {
    let table = format!("billflow-test-{}", uuid::Uuid::new_v4());
    let store = DynamoStore::new(dynamo_client(endpoint), table);
    store.create_table_if_missing().await.expect("create the test table");
    store
}

/// A fresh store of the given kind, or `None` when DynamoDB Local is not there (outside CI).
pub async fn fresh_store(backend: Backend) -> Option<SharedRepository> {
    match backend {
        Backend::Memory => Some(Arc::new(MemoryStore::new())),
        Backend::Dynamo => Some(Arc::new(fresh_dynamo(&dynamodb_endpoint()?).await)),
    }
}

pub const SECRET: &str = "test-secret";

/// The dev server on a free loopback port with a fresh store, and a client for it.
pub struct TestApp {
    pub server: DevServer,
    pub base: String,
    pub token: String,
    /// The dev admin's token (tenant `dev`, also `billing:admin`).
    pub admin_token: String,
    pub http: reqwest::Client,
    /// The store behind the server, for seeding what no request can make.
    pub store: SharedRepository,
    auth: Auth,
}

/// The API keys `spawn_app` seeds: one with both scopes, one that may only read.
pub const API_KEY: &str = "test-key-rw";
pub const READ_ONLY_API_KEY: &str = "test-key-ro";

pub async fn spawn_app(backend: Backend, worker: bool) -> Option<TestApp> {
    spawn_app_with(backend, worker, 0).await
}

/// As [`spawn_app`], with a pause before each worker step.
pub async fn spawn_app_with(backend: Backend, worker: bool, step_delay_ms: u64) -> Option<TestApp> {
    Some(spawn_app_on(fresh_store(backend).await?, worker, step_delay_ms, None).await)
}

/// How often the test servers' billing-run scheduler ticks.
pub const SCHEDULER_EVERY: Duration = Duration::from_millis(200);

/// The dev server on `store`, with the sweeper's timer when `sweep_every` is given (and the
/// billing-run scheduler's whenever the worker runs).
pub async fn spawn_app_on(
    store: SharedRepository,
    worker: bool,
    step_delay_ms: u64,
    sweep_every: Option<Duration>,
) -> TestApp {
    // Every request reads its API key, so that a revoked key fails at once.
    let auth = Auth::new(SECRET, None, None).with_api_key_cache(Duration::ZERO);
    let token = auth.token(&dev::dev_principal(), Duration::from_secs(3600));
    let admin_token = auth.token(&dev::dev_admin(), Duration::from_secs(3600));
    dev::seed_api_key(&store, API_KEY, &dev::dev_principal()).await.expect("seed the test API key");
    let reader = Principal { user_id: 2, tenants: vec!["dev".into()], scopes: vec!["billing:read".into()] };
    dev::seed_api_key(&store, READ_ONLY_API_KEY, &reader).await.expect("seed the read-only API key");
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let config = Config {
        addr,
        store: store.clone(),
        worker,
        step_delay: Duration::from_millis(step_delay_ms),
        timers: shared::worker::Timers { sweep: sweep_every, schedule: worker.then_some(SCHEDULER_EVERY) },
        auth: auth.clone(),
    };
    let server = dev::start(config).await.expect("start the dev server");
    let base = server.url();
    TestApp { server, base, token, admin_token, http: reqwest::Client::new(), store, auth }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestApp {
    /// The store as the dev tenant (the tenant of `token` and the API keys) sees it.
    pub fn dev(&self) -> Tenant<'_> {
        Tenant::new(self.store.as_ref(), TenantId::parse("dev").expect("a tenant id"))
    }

    /// A request as the caller of `token`.
    pub fn request_as(&self, token: &str, method: &str, path: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token)
    }

    /// A token for another caller (e.g. without a scope).
    pub fn token_for(&self, principal: &Principal) -> String {
        self.auth.token(principal, Duration::from_secs(3600))
    }

    pub fn request(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    /// Sends the request and reads the response, which must be what the OpenAPI document says
    /// the operation answers (`openapi::check`).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let request = request.build().expect("a valid request");
        let (method, path) = (request.method().to_string(), request.url().path().to_owned());
        let response = self.http.execute(request).await.expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body read");
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
        if let Err(mismatch) = openapi::check(&method, &path, status, content_type, &body) {
            panic!("{mismatch}");
        }
        Reply { status, headers, body }
    }

    /// A request authenticated with an API key instead of the token (the bills routes).
    pub fn keyed(&self, method: &str, path: &str, key: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        self.http.request(method, format!("{}{path}", self.base)).header("x-api-key", key)
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request("GET", path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(self.request("POST", path).json(body)).await
    }

    pub async fn patch(&self, path: &str, ops: &Value) -> Reply {
        let request =
            self.request("PATCH", path).header("content-type", "application/json-patch+json").body(ops.to_string());
        self.send(request).await
    }

    /// Polls GET `path` until `done` holds (the in-process worker runs stages asynchronously).
    pub async fn wait_for(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..200 {
            let reply = self.get(path).await;
            if done(&reply.body) {
                return reply.body;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{path} never reached the expected state");
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

/// For each `async fn name(backend: Backend)`, two `#[tokio::test]`s: `name::memory` and
/// `name::dynamodb`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn memory() {
                    super::$name($crate::Backend::Memory).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn dynamodb() {
                    super::$name($crate::Backend::Dynamo).await
                }
            }
        )*
    };
}
