//! `make run`: the whole API on one port (127.0.0.1:3000, `PORT` overrides), the embedded store by
//! default or DynamoDB when `AWS_ENDPOINT_URL_DYNAMODB` is set, the worker in-process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shared::dev::{self, Auth, Config};
use shared::store::dynamo::DynamoStore;
use shared::store::memory::MemoryStore;
use shared::store::SharedRepository;
use shared::worker::Timers;

/// `STORE_FAULTS=<share 0..1>` and `STORE_FAULTS_SEED=<n>` (default 1): the share of writes the
/// embedded store fails on purpose (`shared::store::faults`), if any.
fn store_faults() -> Result<Option<(f64, u64)>, String> {
    let Ok(share) = std::env::var("STORE_FAULTS") else { return Ok(None) };
    let share: f64 = share
        .parse()
        .ok()
        .filter(|s: &f64| (0.0..=1.0).contains(s))
        .ok_or_else(|| format!("STORE_FAULTS must be a share from 0 to 1, got {share:?}"))?;
    let seed = match std::env::var("STORE_FAULTS_SEED") {
        Ok(seed) => seed.parse().map_err(|_| format!("STORE_FAULTS_SEED must be a whole number, got {seed:?}"))?,
        Err(_) => 1,
    };
    Ok(Some((share, seed)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Webhooks to a receiver on this machine, by default here (docs/events.md); never in a stack.
    if std::env::var_os("WEBHOOK_ALLOW_LOOPBACK").is_none() {
        std::env::set_var("WEBHOOK_ALLOW_LOOPBACK", "true");
    }
    let endpoint = shared::store::dynamo::local_endpoint_defaults();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve(endpoint))
}

/// The store: DynamoDB at `endpoint`, else the embedded one, with faults if `STORE_FAULTS` asks.
async fn open_store(endpoint: Option<String>) -> Result<(SharedRepository, String), Box<dyn std::error::Error>> {
    let faults = store_faults()?;
    Ok(match endpoint {
        Some(_) if faults.is_some() => {
            return Err(
                "STORE_FAULTS is for the embedded store only: unset AWS_ENDPOINT_URL_DYNAMODB or STORE_FAULTS".into()
            )
        }
        Some(endpoint) => {
            let table = shared::store::dynamo::tool_table_name();
            let store = DynamoStore::from_env(table.clone()).await;
            store
                .create_table_if_missing()
                .await
                .map_err(|e| format!("cannot use table {table} at {endpoint}: {e}"))?;
            (Arc::new(store), format!("DynamoDB table {table} at {endpoint}"))
        }
        None => match faults {
            Some((share, seed)) => (
                Arc::new(MemoryStore::with_faults(share, seed)),
                format!("embedded in-memory store, {share} of writes failing on purpose (seed {seed})"),
            ),
            None => (Arc::new(MemoryStore::new()), "embedded in-memory store".into()),
        },
    })
}

async fn serve(endpoint: Option<String>) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal())
        .with_max_level(shared::runtime::log_level())
        .init();
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse().map_err(|_| format!("PORT must be a port number, got {p:?}"))?,
        Err(_) => 3000,
    };
    let (store, described) = open_store(endpoint).await?;
    let (auth, api_key, kept) = credentials(&store).await?;
    let step_delay = match std::env::var("WORKER_STEP_DELAY_MS") {
        Ok(ms) => {
            Duration::from_millis(ms.parse().map_err(|_| format!("WORKER_STEP_DELAY_MS must be a number, got {ms:?}"))?)
        }
        Err(_) => Duration::from_millis(100),
    };
    let timers =
        Timers { sweep: Some(interval("SWEEPER_INTERVAL_MS")?), schedule: Some(interval("SCHEDULER_INTERVAL_MS")?) };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let config = Config { addr, store, worker: true, step_delay, timers, auth: auth.clone() };
    let server = dev::start(config).await?;
    println!("billflow dev server on {} ({described})", server.url());
    print_credentials(&server.url(), &auth, &api_key, &kept);
    println!("press Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    server.stop().await;
    Ok(())
}

/// The dev server's signer and API key, kept across restarts (`DEV_CREDENTIALS_FILE`, made anew with
/// `DEV_FRESH_CREDENTIALS=1`; `AUTH_JWT_SECRET` and `DEV_API_KEY` override), the key stored unless a
/// kept table holds it already; and where they are kept.
async fn credentials(store: &SharedRepository) -> Result<(Auth, String, String), String> {
    let fresh = std::env::var("DEV_FRESH_CREDENTIALS").is_ok_and(|v| v == "1");
    let kept = std::env::var("DEV_CREDENTIALS_FILE").unwrap_or_else(|_| ".tools/dev-credentials.json".into());
    let credentials = dev::DevCredentials::load_or_make(std::path::Path::new(&kept), fresh)
        .map_err(|e| format!("cannot keep the dev credentials in {kept}: {e}"))?;
    let api_key = std::env::var("DEV_API_KEY").ok().filter(|k| !k.is_empty()).unwrap_or(credentials.api_key);
    let hash = shared::http::caller::api_key_hash(&api_key);
    if store.api_key(&hash).await.map_err(|e| format!("cannot read the dev API key: {e}"))?.is_none() {
        dev::seed_api_key(store, &api_key, &dev::dev_principal())
            .await
            .map_err(|e| format!("cannot store the dev API key: {e}"))?;
    }
    Ok((Auth::from_env(credentials.jwt_secret.as_bytes()), api_key, kept))
}

/// What `make run` prints: every credential with its caller and tenant, ready to paste.
fn print_credentials(url: &str, auth: &Auth, api_key: &str, kept: &str) {
    let month = Duration::from_secs(30 * 24 * 3600);
    println!("OpenAPI document: {url}/openapi.json, to browse and try: {url}/docs");
    println!("dev token (user 1, tenant dev, billing:read billing:write), for /bill-runs, /adhoc-bill-runs, /billingRuns/dev and /brm/customerBillManagement/v4:");
    println!("export TOKEN={}", auth.token(&dev::dev_principal(), month));
    println!("dev admin token (user 2, tenant dev, also billing:admin: locks billing runs, manages /api-keys):");
    println!("export ADMIN_TOKEN={}", auth.token(&dev::dev_admin(), month));
    println!("dev API key for /bills (x-api-key; user 1, tenant dev):");
    println!("export API_KEY={api_key}");
    println!("a token of two tenants (user 3, tenants dev and other, billing:read billing:write): name the tenant of each request in X-Tenant-Id, e.g.");
    println!("export TWO_TENANTS_TOKEN={}", auth.token(&dev::dev_two_tenants(), month));
    println!("curl -H \"Authorization: Bearer $TWO_TENANTS_TOKEN\" -H 'X-Tenant-Id: other' {url}/bill-runs");
    println!("(the tokens and the key stay valid across restarts: they are kept in {kept}; DEV_FRESH_CREDENTIALS=1 makes new ones)");
}

/// A timer's interval from the environment variable `name` (milliseconds, 5000 unless set; 0 is
/// refused: a timer needs a period).
fn interval(name: &str) -> Result<Duration, String> {
    match std::env::var(name) {
        Ok(ms) => match ms.parse::<u64>() {
            Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
            _ => Err(format!("{name} must be a number of milliseconds above 0, got {ms:?}")),
        },
        Err(_) => Ok(Duration::from_millis(5_000)),
    }
}
