//! `make bench`: every budget (docs/performance.md lists them) measured in one run, each figure beside the
//! same figure of a hello-world `lambda_http` function (`bench/hello-world`, the floor) measured
//! in the same run on the same machine.
//!
//! Parts: the release build of every function for arm64 from nothing, into a target directory of
//! its own, and its stripped sizes (`--build DIR`; `--lambda-dir DIR` for the sizes of an existing
//! `cargo lambda build`); cold starts through the Runtime API emulator
//! against DynamoDB Local (init, first response, peak RSS); warm handler times in-process on the
//! embedded store; the stage worker at 1,000 and 16,000 bills. Budgets are marked met or missed;
//! the exit status is non-zero only when a measurement could not be taken.
//!
//! Usage: `bench [--runs N] [--warmups N] [--build DIR] [--lambda-dir DIR] [--scale SIZES] [--floor-only]`
//! with the release binaries beside it (or in `BILLFLOW_BIN_DIR`) and `DYNAMODB_ENDPOINT` set (as
//! `tests/with-dynamodb-local.sh` sets it).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use billflow_tests::lambda::{self, event, Outcome, Run};
use billflow_tests::{fresh_dynamo, Backend};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use shared::domain::bill_run::BillRun;
use shared::domain::key::{Id, TenantId};
use shared::http::{bill_runs, billing_runs, bills, customer_bills, Deps};
use shared::store::memory::MemoryStore;
use shared::store::repo::Tenant;
use shared::store::SharedRepository;

/// The functions measured: the floor, a GET and a write of every family, the worker and the
/// authorizer.
const MEASURED: &[(&str, &str)] = &[
    ("hello-world", "floor"),
    ("get-bill-run", "bill runs: GET"),
    ("update-bill-run", "bill runs: PATCH"),
    ("get-bill", "bills: GET"),
    ("update-bill", "bills: PATCH"),
    ("get-billing-run", "billing runs: GET"),
    ("update-billing-run", "billing runs: PUT"),
    ("get-customer-bill", "customer bills: GET"),
    ("patch-customer-bill", "customer bills: PATCH"),
    ("bill-run-worker", "worker: one step"),
    ("authorizer", "authorizer: API key"),
];

const SECRET: &str = "bench-secret";
const PLACEHOLDER: &str = "00000000-0000-4000-8000-000000000000";

struct Args {
    runs: usize,
    warmups: usize,
    build: Option<PathBuf>,
    lambda_dir: Option<PathBuf>,
    scale: Vec<usize>,
    floor_only: bool,
}

fn args() -> Result<Args, String> {
    let mut args =
        Args { runs: 20, warmups: 2, build: None, lambda_dir: None, scale: vec![1000, 16000], floor_only: false };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        let mut value = || given.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--runs" => args.runs = value()?.parse().map_err(|_| "--runs takes a number")?,
            "--warmups" => args.warmups = value()?.parse().map_err(|_| "--warmups takes a number")?,
            "--build" => args.build = Some(PathBuf::from(value()?)),
            "--lambda-dir" => args.lambda_dir = Some(PathBuf::from(value()?)),
            "--scale" => {
                args.scale = value()?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().map_err(|_| format!("not a size: {s}")))
                    .collect::<Result<_, _>>()?
            }
            "--floor-only" => args.floor_only = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok(args)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let at = ((values.len() as f64 * p).ceil() as usize).clamp(1, values.len()) - 1;
    values[at]
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

/// The budgets' verdicts, collected as the parts run.
#[derive(Default)]
struct Budgets(Vec<(String, String, bool)>);

impl Budgets {
    fn add(&mut self, budget: impl Into<String>, measured: impl Into<String>, met: bool) {
        self.0.push((budget.into(), measured.into(), met));
    }
}

// ---------------------------------------------------------------------------------------------
// Build and sizes

/// Every function of the workspace, and the floor.
fn functions() -> Vec<String> {
    let mut names: Vec<String> = shared::routes::ROUTES
        .iter()
        .map(|r| r.function)
        .chain(shared::routes::EVENT_FUNCTIONS.iter().copied())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names.insert(0, "hello-world".to_owned());
    names
}

/// Builds every function and the floor from nothing (dependencies included) into `dir`, removed
/// first: what a fresh clone costs.
fn build(dir: &Path, budgets: &mut Budgets) -> Result<(), String> {
    let names = functions();
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    }
    let mut command = std::process::Command::new("cargo");
    command.env("CARGO_TARGET_DIR", dir).args(["lambda", "build", "--release", "--arm64"]);
    for name in &names {
        command.args(["-p", name]);
    }
    let started = Instant::now();
    let status = command.status().map_err(|e| format!("cargo lambda build: {e}"))?;
    if !status.success() {
        return Err(format!("cargo lambda build failed: {status}"));
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("\n### Release build for arm64\n");
    println!(
        "`cargo lambda build --release --arm64` of all {} functions and the floor, dependencies included, into an empty target directory: {seconds:.0} s on this run (budget: under 600 s on a fresh clone, 2 cores).",
        names.len() - 1
    );
    budgets.add(
        "release build of every function, arm64 (under 10 minutes)",
        format!("{seconds:.0} s"),
        seconds < 600.0,
    );
    Ok(())
}

fn sizes(dir: &Path, budgets: &mut Budgets) -> Result<(), String> {
    let size = |name: &str| {
        std::fs::metadata(dir.join(name).join("bootstrap"))
            .map(|m| m.len())
            .map_err(|e| format!("{}/{name}/bootstrap: {e} (run with --build)", dir.display()))
    };
    let floor = size("hello-world")? as f64;
    println!("\n### Release `bootstrap` sizes, arm64, stripped\n");
    println!("| function | bytes | MiB | ratio to floor |");
    println!("| --- | ---: | ---: | ---: |");
    let mut largest = (String::new(), 0u64);
    for name in functions() {
        let bytes = size(&name)?;
        println!("| {name} | {bytes} | {:.2} | {:.2} |", bytes as f64 / 1048576.0, bytes as f64 / floor);
        if name != "hello-world" && bytes > largest.1 {
            largest = (name, bytes);
        }
    }
    let met = largest.1 <= 6_000_000;
    budgets.add("every bootstrap at most 6 MB stripped", format!("largest {} {} B", largest.0, largest.1), met);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Cold starts

fn event_with(name: &str, id: &str, body: Option<Value>) -> Value {
    let mut event: Value = serde_json::from_str(&event(name).to_string().replace(PLACEHOLDER, id)).unwrap();
    if let Some(body) = body {
        event["body"] = json!(body.to_string());
    }
    event
}

fn status_of(response: &Response<Body>) -> u16 {
    response.status().as_u16()
}

fn request_of(event: &Value) -> Request {
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
}

fn body_of(response: &Response<Body>) -> Value {
    serde_json::from_slice(response.body().as_ref()).unwrap_or(Value::Null)
}

/// What the measured functions read, written through the handlers themselves.
struct Seeds {
    deps: Deps,
    billing_run: String,
    customer_bill: String,
    api_key: String,
}

async fn seed(store: SharedRepository) -> Result<Seeds, String> {
    let deps = Deps::new(store.clone());
    let created = |what: &str, response: Response<Body>| {
        if status_of(&response) == 201 {
            Ok(body_of(&response))
        } else {
            Err(format!("seeding {what}: {} {}", status_of(&response), body_of(&response)))
        }
    };
    created("a bill run", bill_runs::create::<BillRun>(&deps, request_of(&event("create-bill-run"))).await)?;
    created("a bill", bills::create(&deps, request_of(&event("create-bill"))).await)?;
    let run = created("a billing run", billing_runs::create(&deps, request_of(&event("create-billing-run"))).await)?;
    created(
        "a rate",
        customer_bills::create_rate(&deps, request_of(&event("create-applied-customer-billing-rate"))).await,
    )?;
    let request = created(
        "an on-demand request",
        customer_bills::create_on_demand(&deps, request_of(&event("create-customer-bill-on-demand"))).await,
    )?;
    let id = Id::Uuid(request["id"].as_str().unwrap_or_default().parse().map_err(|_| "an on-demand id")?);
    let tenant = Tenant::new(store.as_ref(), TenantId::parse("acme").ok_or("a tenant")?);
    shared::worker::customer_bills::step(&tenant, &id, None).await.map_err(|e| e.to_string())?;
    let done = body_of(
        &customer_bills::get_on_demand(
            &deps,
            request_of(&event_with("get-customer-bill-on-demand", &id.to_string(), None)),
        )
        .await,
    );
    let customer_bill = done["customerBill"]["id"].as_str().ok_or("the on-demand bill was not made")?.to_owned();
    let caller = shared::domain::identity::Principal {
        user_id: 3,
        tenants: vec!["acme".into()],
        scopes: vec!["billing:read".into()],
    };
    let issued =
        shared::api_keys::NewKey { caller, description: None, expires_in: None }.issue().map_err(|e| e.to_string())?;
    store.put_api_key(&issued.record).await.map_err(|e| e.to_string())?;
    let api_key = issued.key;
    Ok(Seeds { deps, billing_run: run["id"].as_str().unwrap_or_default().to_owned(), customer_bill, api_key })
}

/// The event the `n`th start of `function` serves: a read, or a write that succeeds every time.
async fn request_for(function: &str, seeds: &Seeds, n: usize) -> Result<Value, String> {
    Ok(match function {
        "hello-world" | "get-bill-run" => event("get-bill-run"),
        "update-bill-run" => event_with(
            "update-bill-run",
            "",
            Some(json!([{"op": "replace", "path": "/paused", "value": n.is_multiple_of(2)}])),
        ),
        "get-bill" => event("get-bill"),
        "update-bill" => event_with("update-bill", "", Some(json!({"description": format!("note {n}")}))),
        "get-billing-run" => event_with("get-billing-run", &seeds.billing_run, None),
        "update-billing-run" => {
            let get = event_with("get-billing-run", &seeds.billing_run, None);
            let mut run = body_of(&billing_runs::get(&seeds.deps, request_of(&get)).await);
            run["name"] = json!(format!("November statements {n}"));
            event_with("update-billing-run", &seeds.billing_run, Some(run))
        }
        "get-customer-bill" => event_with("get-customer-bill", &seeds.customer_bill, None),
        "patch-customer-bill" => {
            let state = if n.is_multiple_of(2) { "onHold" } else { "inProgress" };
            event_with("patch-customer-bill", &seeds.customer_bill, Some(json!({"state": state})))
        }
        "bill-run-worker" => {
            // A fresh on-demand request of an account with nothing to bill: one full step.
            let body = json!({"billingAccount": {"id": format!("BENCH-{n}-{}", uuid::Uuid::new_v4())}});
            let created = customer_bills::create_on_demand(
                &seeds.deps,
                request_of(&event_with("create-customer-bill-on-demand", "", Some(body))),
            )
            .await;
            let id = body_of(&created)["id"].as_str().ok_or("an on-demand request for the worker")?.to_owned();
            event_with("customer-bill-on-demand-worker", &id, None)
        }
        "authorizer" => lambda::authorizer_event("GET /bills/{billId}", ("x-api-key", &seeds.api_key)),
        other => return Err(format!("no request for {other}")),
    })
}

/// Whether an answer is the one that function should give (a served request, not an error).
fn served(function: &str, outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Response(r) if function == "authorizer" => r["isAuthorized"] == true,
        Outcome::Response(r) if function == "bill-run-worker" => r["batchItemFailures"] == json!([]),
        Outcome::Response(r) => r["statusCode"].as_u64().is_some_and(|s| (200..300).contains(&s)),
        Outcome::Error(_) => false,
    }
}

struct ColdStarts {
    function: &'static str,
    label: &'static str,
    init_ms: f64,
    first_ms: f64,
    rss_mib: f64,
}

async fn cold_starts(args: &Args, budgets: &mut Budgets) -> Result<Vec<ColdStarts>, String> {
    let endpoint = if args.floor_only {
        None
    } else {
        Some(
            std::env::var("DYNAMODB_ENDPOINT")
                .map_err(|_| "DYNAMODB_ENDPOINT is not set: run under tests/with-dynamodb-local.sh")?,
        )
    };
    let (seeds, table) = match &endpoint {
        Some(endpoint) => {
            let store = fresh_dynamo(endpoint).await;
            let table = store.table().to_owned();
            (Some(seed(Arc::new(store)).await?), table)
        }
        None => (None, String::new()),
    };
    let endpoint = endpoint.unwrap_or_default();
    let env = [
        ("TABLE_NAME", table.as_str()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_REGION", "us-east-1"),
        ("AUTH_JWT_SECRET", SECRET),
    ];
    let mut results = Vec::new();
    for &(function, label) in MEASURED.iter().take(if args.floor_only { 1 } else { MEASURED.len() }) {
        let (mut init, mut first, mut rss) = (Vec::new(), Vec::new(), Vec::new());
        for n in 0..args.warmups + args.runs {
            let request = match &seeds {
                Some(seeds) => request_for(function, seeds, n).await?,
                None => event("get-bill-run"),
            };
            let run: Run = lambda::start(function, &env, vec![request]).await;
            if !served(function, &run.outcomes[0]) {
                return Err(format!("{function} did not serve its request: {:?}", run.outcomes[0]));
            }
            if n >= args.warmups {
                init.push(run.cold.as_secs_f64() * 1e3);
                first.push(run.first_response.as_secs_f64() * 1e3);
                rss.push(run.peak_rss_kib.ok_or(format!("no peak RSS of {function}"))? as f64 / 1024.0);
            }
        }
        results.push(ColdStarts {
            function,
            label,
            init_ms: median(&mut init),
            first_ms: median(&mut first),
            rss_mib: median(&mut rss),
        });
    }
    // DynamoDB Local's own share of a first response: a GetItem on a new client (a new
    // connection), as a function's first request makes it, timed from this process.
    let local_get_ms = if seeds.is_some() {
        let mut times = Vec::new();
        for _ in 0..args.runs {
            let client = billflow_tests::dynamo_client(&endpoint);
            let started = Instant::now();
            client
                .get_item()
                .table_name(&table)
                .key("PK", aws_sdk_dynamodb::types::AttributeValue::S("BENCH#none".into()))
                .key("SK", aws_sdk_dynamodb::types::AttributeValue::S("BENCH#none".into()))
                .send()
                .await
                .map_err(|e| format!("GetItem on DynamoDB Local: {e}"))?;
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
        Some(median(&mut times))
    } else {
        None
    };
    let floor = &results[0];
    println!(
        "\n### Cold starts ({} starts each after {} warm-ups, medians; Runtime API emulator, DynamoDB Local)\n",
        args.runs, args.warmups
    );
    println!("| function | what | init (start to first `next`) ms | ratio | first response ms | ratio | peak RSS MiB | ratio |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in &results {
        println!(
            "| {} | {} | {:.1} | {:.2} | {:.1} | {:.2} | {:.1} | {:.2} |",
            r.function,
            r.label,
            r.init_ms,
            r.init_ms / floor.init_ms,
            r.first_ms,
            r.first_ms / floor.first_ms,
            r.rss_mib,
            r.rss_mib / floor.rss_mib
        );
    }
    if let Some(ms) = local_get_ms {
        println!(
            "\nDynamoDB Local alone: a GetItem on a new client and connection, from this process, median {ms:.1} ms \
             ({:.2}x the floor's first response).",
            ms / floor.first_ms
        );
    }
    let functions = &results[1..];
    if !functions.is_empty() {
        let worst = |f: fn(&ColdStarts) -> f64| functions.iter().max_by(|a, b| f(a).total_cmp(&f(b))).unwrap();
        let init = worst(|r| r.init_ms);
        let ratio = init.init_ms / floor.init_ms;
        budgets.add(
            "cold start median within 2x the floor's",
            format!("worst {} {ratio:.2}x", init.function),
            ratio <= 2.0,
        );
        // The budget is of a GET that reads DynamoDB Local (docs/performance.md, Budgets); writes, the
        // worker and the authorizer are in the table above.
        let gets: Vec<&ColdStarts> = functions.iter().filter(|r| r.label.ends_with(": GET")).collect();
        if let Some(first) = gets.iter().max_by(|a, b| a.first_ms.total_cmp(&b.first_ms)) {
            let ratio = first.first_ms / floor.first_ms;
            let local = local_get_ms.map_or(String::new(), |ms| {
                format!(" (of which a GetItem on a new connection to DynamoDB Local alone: {ms:.1} ms)")
            });
            budgets.add(
                "first response of a GET median within 3x the floor's",
                format!("worst {} {ratio:.2}x{local}", first.function),
                ratio <= 3.0,
            );
        }
        let rss = worst(|r| r.rss_mib);
        budgets.add(
            "peak memory under 10 MiB",
            format!("worst {} {:.1} MiB", rss.function, rss.rss_mib),
            rss.rss_mib < 10.0,
        );
    }
    Ok(results)
}

// ---------------------------------------------------------------------------------------------
// Warm handlers

const ROUNDS: usize = 400;

async fn hello(_: &Deps, _: Request) -> Response<Body> {
    Response::new(Body::from("hello"))
}

async fn warm_handlers(budgets: &mut Budgets) -> Result<(), String> {
    let store: SharedRepository = Arc::new(MemoryStore::new());
    let seeds = seed(store).await?;
    let deps = &seeds.deps;
    // (function, kind, budget in us)
    let cases: &[(&str, &str, Option<f64>)] = &[
        ("hello-world", "floor", None),
        ("get-bill-run", "GET", Some(100.0)),
        ("update-bill-run", "PATCH", Some(300.0)),
        ("get-bill", "GET", Some(100.0)),
        ("update-bill", "PATCH", Some(300.0)),
        ("get-billing-run", "GET", Some(100.0)),
        ("update-billing-run", "PUT", Some(300.0)),
        ("get-customer-bill", "GET", Some(100.0)),
        ("patch-customer-bill", "PATCH", Some(300.0)),
    ];
    println!("\n### Warm handlers in-process, embedded store ({ROUNDS} calls each)\n");
    println!("| handler | kind | median us | p99 us | median ratio to floor | budget |");
    println!("| --- | --- | ---: | ---: | ---: | --- |");
    let mut floor = 0.0;
    for &(function, kind, budget) in cases {
        let mut times = Vec::with_capacity(ROUNDS);
        for n in 0..ROUNDS {
            let request = request_of(&request_for(function, &seeds, n).await?);
            let started = Instant::now();
            let response = match function {
                "hello-world" => hello(deps, request).await,
                "get-bill-run" => bill_runs::get::<BillRun>(deps, request).await,
                "update-bill-run" => bill_runs::update::<BillRun>(deps, request).await,
                "get-bill" => bills::get(deps, request).await,
                "update-bill" => bills::update(deps, request).await,
                "get-billing-run" => billing_runs::get(deps, request).await,
                "update-billing-run" => billing_runs::update(deps, request).await,
                "get-customer-bill" => customer_bills::get_bill(deps, request).await,
                "patch-customer-bill" => customer_bills::patch_bill(deps, request).await,
                other => return Err(format!("no handler for {other}")),
            };
            times.push(started.elapsed().as_secs_f64() * 1e6);
            if !(200..300).contains(&status_of(&response)) {
                return Err(format!("{function}: {} {}", status_of(&response), body_of(&response)));
            }
        }
        let (mid, p99) = (median(&mut times), percentile(&mut times, 0.99));
        if function == "hello-world" {
            floor = mid;
        }
        let limit = budget.map_or_else(|| "-".to_owned(), |b| format!("median under {b:.0} us: {}", verdict(mid < b)));
        println!("| {function} | {kind} | {mid:.1} | {p99:.1} | {:.0} | {limit} |", mid / floor.max(f64::MIN_POSITIVE));
        if let Some(b) = budget {
            budgets.add(format!("warm {function} ({kind}) median under {b:.0} us"), format!("{mid:.1} us"), mid < b);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Scale

async fn scale(sizes: &[usize], budgets: &mut Budgets) {
    let mut results = Vec::new();
    for &bills in sizes {
        results.push(billflow_tests::scale::measure(Backend::Memory, bills).await);
    }
    println!("\n### The stage worker at scale (embedded store, worker in-process, no step delay)\n");
    println!("| bills | stage | seconds | bills/s |");
    println!("| ---: | --- | ---: | ---: |");
    for m in &results {
        for ((stage, _), s) in billflow_tests::scale::STAGES.iter().zip(&m.seconds) {
            println!("| {} | {stage} | {s:.3} | {:.0} |", m.bills, m.bills as f64 / s);
        }
    }
    if let (Some(small), Some(large)) = (results.first(), results.last()) {
        if large.bills > small.bills {
            let total = |m: &billflow_tests::scale::Measured| m.seconds.iter().sum::<f64>() / m.bills as f64;
            let ratio = total(large) / total(small);
            println!("\nPer-bill time over all stages, {} bills against {}: {ratio:.2}", large.bills, small.bills);
            budgets.add(
                format!("stage worker per-bill time at {} within 1.5x of {}", large.bills, small.bills),
                format!("{ratio:.2}x"),
                ratio <= 1.5,
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// On-demand customer bills (no budget: reported beside the others)

async fn on_demand(rates: usize, dynamodb: bool) {
    let mut rows = vec![("embedded", billflow_tests::on_demand::measure(Backend::Memory, rates).await)];
    if dynamodb {
        rows.push(("DynamoDB Local", billflow_tests::on_demand::measure(Backend::Dynamo, rates).await));
    }
    println!("\n### On-demand customer bill, {rates} unbilled rates (request to `done`, worker in-process)\n");
    println!("| store | seconds | rates/s |");
    println!("| --- | ---: | ---: |");
    for (store, seconds) in rows {
        println!("| {store} | {seconds:.3} | {:.0} |", rates as f64 / seconds);
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    let date = time::OffsetDateTime::now_utc().date();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("## `make bench`, {date}, {cores} cores, {profile} harness\n");
    println!("Every figure beside the same figure of `bench/hello-world` (the floor), measured in the same run.");
    let mut budgets = Budgets::default();
    let outcome: Result<(), String> = async {
        if let Some(dir) = &args.build {
            build(dir, &mut budgets)?;
            sizes(&dir.join("lambda"), &mut budgets)?;
        } else if let Some(dir) = &args.lambda_dir {
            sizes(dir, &mut budgets)?;
        }
        cold_starts(&args, &mut budgets).await?;
        if !args.floor_only {
            warm_handlers(&mut budgets).await?;
            if !args.scale.is_empty() {
                scale(&args.scale, &mut budgets).await;
            }
            on_demand(500, true).await;
        }
        Ok(())
    }
    .await;
    println!("\n### Budgets\n");
    println!("| budget | measured | verdict |");
    println!("| --- | --- | --- |");
    for (budget, measured, met) in &budgets.0 {
        println!("| {budget} | {measured} | {} |", verdict(*met));
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: a measurement could not be taken: {e}");
            ExitCode::FAILURE
        }
    }
}
