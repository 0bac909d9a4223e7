//! `make bench` is a benchmark, not a timed test: this only checks that its harness works, on a
//! tiny run of the floor (one cold start of `bench/hello-world` through the Runtime API emulator).

use billflow_tests::lambda::binary;

#[test]
fn the_bench_harness_measures_the_floor() {
    let output = std::process::Command::new(binary("bench"))
        .args(["--runs", "1", "--warmups", "0", "--floor-only"])
        .output()
        .expect("the bench binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let row = stdout.lines().find(|l| l.starts_with("| hello-world | floor |")).unwrap_or_else(|| panic!("{stdout}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    let init: f64 = cells[3].parse().expect("an init time");
    let rss: f64 = cells[7].parse().expect("a peak RSS");
    assert!(init > 0.0 && rss > 0.0, "{row}");
    let refused = std::process::Command::new(binary("bench")).args(["--runs", "0"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2), "bad arguments are refused, not measured");
}
