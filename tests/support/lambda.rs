//! The Lambda Runtime API, emulated: a small server on a free loopback port hands a function's
//! binary its events through `/2018-06-01/runtime/invocation/next` and collects its responses,
//! as Lambda does. The real-binary tests (`tests/lambda_invoke.rs`) and `make bench` (cold
//! starts, first responses, peak memory) run functions through it.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Mutex};

/// What a function answered to one invocation.
#[derive(Debug)]
pub enum Outcome {
    Response(Value),
    Error(String),
}

pub struct RuntimeApi {
    addr: std::net::SocketAddr,
    events: mpsc::UnboundedSender<Value>,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
    first_next: Arc<std::sync::Mutex<Option<Instant>>>,
}

struct Shared {
    events: Mutex<mpsc::UnboundedReceiver<Value>>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    first_next: Arc<std::sync::Mutex<Option<Instant>>>,
}

pub async fn runtime_api() -> RuntimeApi {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (outcomes_tx, outcomes_rx) = mpsc::unbounded_channel();
    let first_next = Arc::new(std::sync::Mutex::new(None));
    let shared =
        Arc::new(Shared { events: Mutex::new(events_rx), outcomes: outcomes_tx, first_next: first_next.clone() });
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(serve(&shared, req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    RuntimeApi { addr, events: events_tx, outcomes: outcomes_rx, first_next }
}

async fn serve(shared: &Shared, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    if path == "/2018-06-01/runtime/invocation/next" {
        shared.first_next.lock().unwrap().get_or_insert_with(Instant::now);
        let Some(event) = shared.events.lock().await.recv().await else {
            return hyper::Response::builder().status(500).body(Full::new(Bytes::new())).unwrap();
        };
        let deadline = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 30_000;
        return hyper::Response::builder()
            .header("lambda-runtime-aws-request-id", uuid::Uuid::new_v4().to_string())
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header("lambda-runtime-invoked-function-arn", "arn:aws:lambda:eu-west-1:123456789012:function:test")
            .header("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(event.to_string())))
            .unwrap();
    }
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let outcome = if path.ends_with("/response") {
        Outcome::Response(serde_json::from_slice(&body).unwrap_or(Value::Null))
    } else {
        Outcome::Error(format!("{path}: {}", String::from_utf8_lossy(&body)))
    };
    let _ = shared.outcomes.send(outcome);
    hyper::Response::builder().status(202).body(Full::new(Bytes::new())).unwrap()
}

/// A function's binary: in `BILLFLOW_BIN_DIR`, else beside the running executable (cargo puts
/// tests in `<target>/<profile>/deps/` and binaries in `<target>/<profile>/`), so that a
/// `CARGO_TARGET_DIR` anywhere works.
pub fn binary(name: &str) -> PathBuf {
    let dir = std::env::var("BILLFLOW_BIN_DIR").map(PathBuf::from).unwrap_or_else(|_| {
        let exe = std::env::current_exe().expect("the running executable's path");
        let dir = exe.parent().expect("an executable lives in a directory");
        // A test runs from <target>/<profile>/deps, a binary from <target>/<profile>.
        if dir.ends_with("deps") { dir.parent().unwrap_or(dir) } else { dir }.to_path_buf()
    });
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: build it first (`cargo build --workspace`)", path.display());
    path
}

/// An API Gateway event or stream record from `tests/events/`.
pub fn event(name: &str) -> Value {
    let path = format!("{}/events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// An HTTP API authorizer event (payload 2.0) for `route_key`, carrying one credential header.
pub fn authorizer_event(route_key: &str, header: (&str, &str)) -> Value {
    let mut event = event("authorizer");
    event["routeKey"] = Value::String(route_key.to_owned());
    if let Some(headers) = event["headers"].as_object_mut() {
        headers.remove("authorization");
        headers.insert(header.0.to_owned(), Value::String(header.1.to_owned()));
    }
    event
}

/// One start of a function: its answers, and how long it took.
#[derive(Debug)]
pub struct Run {
    pub outcomes: Vec<Outcome>,
    /// Process start to its first `next` request (its init).
    pub cold: Duration,
    /// Process start to its first answer.
    pub first_response: Duration,
    /// Its peak resident memory (VmHWM), in KiB, read after its last answer.
    pub peak_rss_kib: Option<u64>,
}

/// The environment a function runs with: the Lambda variables, plus `env`.
fn command(binary: &Path, function: &str, api: &RuntimeApi, env: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command
}

/// Starts the binary of `function` against a fresh emulator with `env`, sends `events` one at a
/// time, and returns its answers, its init and first-answer times and its peak memory.
pub async fn start(function: &str, env: &[(&str, &str)], events: Vec<Value>) -> Run {
    let mut api = runtime_api().await;
    let binary = binary(function);
    let started = Instant::now();
    let mut child = command(&binary, function, &api, env).spawn().expect("the function starts");
    let mut outcomes = Vec::new();
    let mut first_answer = None;
    for event in events {
        api.events.send(event).unwrap();
        let outcome =
            tokio::time::timeout(Duration::from_secs(30), api.outcomes.recv()).await.expect("an answer in time");
        first_answer.get_or_insert_with(|| started.elapsed());
        outcomes.push(outcome.expect("an answer"));
    }
    let cold = api.first_next.lock().unwrap().map(|t| t - started).unwrap_or_default();
    let peak_rss_kib = child.id().and_then(peak_rss_kib);
    child.kill().await.ok();
    Run { outcomes, cold, first_response: first_answer.unwrap_or_default(), peak_rss_kib }
}

/// A process's peak resident set size (VmHWM in /proc), in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A function's HTTP answer: status, headers and JSON body (panics on an invocation error).
pub fn response(outcome: &Outcome) -> (u64, Value, Value) {
    match outcome {
        Outcome::Response(r) => {
            let body =
                r["body"].as_str().map(|b| serde_json::from_str(b).unwrap_or(Value::Null)).unwrap_or(Value::Null);
            (r["statusCode"].as_u64().unwrap_or_default(), r["headers"].clone(), body)
        }
        Outcome::Error(e) => panic!("the function failed: {e}"),
    }
}
