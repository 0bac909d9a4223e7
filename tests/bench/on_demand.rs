//! `make bench-on-demand`: the time from an on-demand bill request to `done`, for an account
//! with N unbilled rates (default 500). For each size it starts the dev server (in this process,
//! worker in-process with no step delay) on a fresh store, records the rates over HTTP, requests
//! the bill, and times the POST to the GET that sees the request done. It checks that the one bill
//! holds every rate exactly once, and prints a markdown table.
//!
//! Usage: `bench-on-demand [--dynamodb] RATES...` (DynamoDB Local from `DYNAMODB_ENDPOINT`, as
//! `tests/with-dynamodb-local.sh` sets it). Build it in release.

use billflow_tests::bench_args;
use billflow_tests::on_demand::measure;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (backend, mut sizes) = bench_args();
    if sizes.is_empty() {
        sizes = vec![500];
    }
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("\n{backend:?} store, {build} build, worker in-process with no step delay, {cores} cores\n");
    println!("| unbilled rates | request to done (s) | rates/s |");
    println!("| ---: | ---: | ---: |");
    for rates in sizes {
        let seconds = measure(backend, rates).await;
        println!("| {rates} | {seconds:.3} | {:.0} |", rates as f64 / seconds);
    }
}
