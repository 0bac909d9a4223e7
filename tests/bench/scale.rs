//! `make bench-scale` and `make bench-modelled`: how the stage worker's cost grows with a run's
//! bills. For each size it starts the dev server (in this process, worker in-process) on a fresh
//! store, creates a bill run with that many bills over HTTP, then drives it through every stage and
//! times each one from the PATCH that requests it to the GET that sees it done.
//!
//! - `bench-scale [--dynamodb] SIZE...`: no step delay, `parallel: false`; one table per store, the
//!   per-bill time of the largest run against the smallest (budget: at most 1.5), and on DynamoDB
//!   Local (from `DYNAMODB_ENDPOINT`, as `tests/with-dynamodb-local.sh` sets it) the write units
//!   each stage consumed per bill beside the floor of one write unit per bill it changes.
//! - `bench-scale --modelled [--step-delay-ms N] SIZE...`: the modelled AWS time on the embedded
//!   store: each worker step waits N ms first (default 250, a stream hop), for `parallel` false and
//!   true; seconds and bills/s per stage, and the projection to 1,000,000 bills.
//!
//! Build it in release: the numbers are about the release binaries.

use billflow_tests::scale::{measure_scenario, Measured, Scenario, CHANGED_PER_BILL, STAGES};
use billflow_tests::Backend;

const PROJECTED: f64 = 1_000_000.0;

fn stage_name(stage: &str) -> &str {
    if stage == "DISTRIBUTION" {
        "DISTRIBUTION to FINALIZED"
    } else {
        stage
    }
}

fn print_table(backend: Backend, results: &[Measured]) {
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("\n{backend:?} store, {build} build, worker in-process with no step delay, {} cores\n", cores());
    let units = backend == Backend::Dynamo;
    if units {
        println!("| bills | stage | seconds | bills/s | write units per bill | floor per bill |");
        println!("| ---: | --- | ---: | ---: | ---: | ---: |");
    } else {
        println!("| bills | stage | seconds | bills/s |");
        println!("| ---: | --- | ---: | ---: |");
    }
    for m in results {
        for (i, ((stage, _), s)) in STAGES.iter().zip(&m.seconds).enumerate() {
            let row = format!("| {} | {} | {s:.3} | {:.0} |", m.bills, stage_name(stage), m.bills as f64 / s);
            if units {
                let per_bill = m.write_units[i] / m.bills as f64;
                println!("{row} {per_bill:.2} | {:.0} |", CHANGED_PER_BILL[i]);
            } else {
                println!("{row}");
            }
        }
        let total: f64 = m.seconds.iter().sum();
        println!(
            "| {} | all stages | {total:.3} | {:.0} |{}",
            m.bills,
            m.bills as f64 / total,
            if units { " | |" } else { "" }
        );
    }
    if let (Some(small), Some(large)) = (results.first(), results.last()) {
        if large.bills > small.bills {
            print_ratio(small, large);
        }
    }
}

fn print_ratio(small: &Measured, large: &Measured) {
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

/// The modelled AWS time: every size, sequential and parallel, then the projection to 1,000,000
/// bills from the largest size's rate (a segment's steps are a chain: its time grows with its
/// bills, so a stage's time scales linearly with the run at a fixed segment count).
fn print_modelled(step_delay_ms: u64, results: &[(Scenario, Measured)]) {
    println!(
        "\nModelled AWS time: embedded store, each worker step after {step_delay_ms} ms (a stream hop), {} cores\n",
        cores()
    );
    println!("| bills | parallel | stage | seconds | bills/s |");
    println!("| ---: | --- | --- | ---: | ---: |");
    for (scenario, m) in results {
        for ((stage, _), s) in STAGES.iter().zip(&m.seconds) {
            println!(
                "| {} | {} | {} | {s:.1} | {:.0} |",
                m.bills,
                scenario.parallel,
                stage_name(stage),
                m.bills as f64 / s
            );
        }
    }
    let Some(largest) = results.iter().map(|(s, _)| s.bills).max() else { return };
    println!("\nProjected to 1,000,000 bills (from the {largest}-bill runs' rates):\n");
    println!("| parallel | stage | seconds | minutes |");
    println!("| --- | --- | ---: | ---: |");
    for (scenario, m) in results.iter().filter(|(s, _)| s.bills == largest) {
        let mut total = 0.0;
        for ((stage, _), s) in STAGES.iter().zip(&m.seconds) {
            // DISTRIBUTION and the system stages walk no bill: their time does not grow.
            let scale = if *stage == "DISTRIBUTION" { 1.0 } else { PROJECTED / m.bills as f64 };
            total += s * scale;
            println!("| {} | {} | {:.0} | {:.1} |", scenario.parallel, stage_name(stage), s * scale, s * scale / 60.0);
        }
        println!("| {} | all stages | {total:.0} | {:.1} |", scenario.parallel, total / 60.0);
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

struct Args {
    backend: Backend,
    modelled: Option<u64>,
    sizes: Vec<usize>,
}

fn args() -> Args {
    let mut parsed = Args { backend: Backend::Memory, modelled: None, sizes: Vec::new() };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dynamodb" => parsed.backend = Backend::Dynamo,
            "--modelled" => parsed.modelled = Some(parsed.modelled.unwrap_or(250)),
            "--step-delay-ms" => {
                let delay = args.next().and_then(|d| d.parse().ok()).expect("--step-delay-ms takes milliseconds");
                parsed.modelled = Some(delay);
            }
            n => parsed.sizes.push(n.parse::<usize>().unwrap_or_else(|_| panic!("not a size: {n}"))),
        }
    }
    parsed
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Args { backend, modelled, mut sizes } = args();
    if let Some(step_delay_ms) = modelled {
        if sizes.is_empty() {
            sizes = vec![10_000, 100_000];
        }
        let mut results = Vec::new();
        for bills in sizes {
            for parallel in [false, true] {
                let scenario = Scenario { bills, parallel, step_delay_ms };
                let measured = measure_scenario(Backend::Memory, scenario).await;
                eprintln!("{scenario:?}: stages {:?} s", measured.seconds);
                results.push((scenario, measured));
            }
        }
        print_modelled(step_delay_ms, &results);
        return;
    }
    if sizes.is_empty() {
        sizes = vec![1000, 4000, 16000];
    }
    let mut results = Vec::new();
    for bills in sizes {
        let measured = measure_scenario(backend, Scenario { bills, parallel: false, step_delay_ms: 0 }).await;
        eprintln!(
            "{backend:?}: {bills} bills, stages {:?} s, write units {:?}",
            measured.seconds, measured.write_units
        );
        results.push(measured);
    }
    print_table(backend, &results);
}
