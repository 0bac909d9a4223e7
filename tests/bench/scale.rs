//! `make bench-scale`: how the stage worker's cost grows with a run's bills. For each size it
//! starts the dev server (in this process, worker in-process, no step delay) on a fresh store,
//! creates a bill run with that many bills over HTTP, then drives it through every stage and times
//! each one from the PATCH that requests it to the GET that sees it done. Prints one markdown table
//! per store, and the per-bill time of the largest run against the smallest (budget: at most 1.5).
//!
//! Usage: `bench-scale [--dynamodb] SIZE...` (DynamoDB Local from `DYNAMODB_ENDPOINT`, as
//! `tests/with-dynamodb-local.sh` sets it). Build it in release: the numbers are about the release
//! binaries.

use billflow_tests::scale::{measure, Measured, STAGES};
use billflow_tests::Backend;

fn print_table(backend: Backend, results: &[Measured]) {
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("\n{backend:?} store, {build} build, worker in-process with no step delay, {} cores\n", cores());
    println!("| bills | stage | seconds | bills/s |");
    println!("| ---: | --- | ---: | ---: |");
    for m in results {
        for ((stage, _), s) in STAGES.iter().zip(&m.seconds) {
            let stage = if *stage == "DISTRIBUTION" { "DISTRIBUTION to FINALIZED" } else { stage };
            println!("| {} | {stage} | {s:.3} | {:.0} |", m.bills, m.bills as f64 / s);
        }
        let total: f64 = m.seconds.iter().sum();
        println!("| {} | all stages | {total:.3} | {:.0} |", m.bills, m.bills as f64 / total);
    }
    if let (Some(small), Some(large)) = (results.first(), results.last()) {
        if large.bills > small.bills {
            let per_bill = |m: &Measured, s: f64| s / m.bills as f64;
            println!("\nPer-bill time of {} bills against {} (budget: at most 1.5):\n", large.bills, small.bills);
            println!("| stage | ratio |");
            println!("| --- | ---: |");
            for (i, (stage, _)) in STAGES.iter().enumerate() {
                let ratio = per_bill(large, large.seconds[i]) / per_bill(small, small.seconds[i]);
                println!("| {stage} | {ratio:.2} |");
            }
            let total = |m: &Measured| m.seconds.iter().sum::<f64>();
            let ratio = per_bill(large, total(large)) / per_bill(small, total(small));
            let verdict = if ratio <= 1.5 { "met" } else { "missed" };
            println!("| all stages | {ratio:.2} ({verdict}) |");
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut backend = Backend::Memory;
    let mut sizes = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--dynamodb" => backend = Backend::Dynamo,
            n => sizes.push(n.parse::<usize>().unwrap_or_else(|_| panic!("not a size: {n}"))),
        }
    }
    if sizes.is_empty() {
        sizes = vec![1000, 4000, 16000];
    }
    let mut results = Vec::new();
    for bills in sizes {
        let measured = measure(backend, bills).await;
        eprintln!("{backend:?}: {bills} bills, stages {:?} s", measured.seconds);
        results.push(measured);
    }
    print_table(backend, &results);
}
