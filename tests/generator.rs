//! The generator watches itself: a run starved of CPU says so in its summary; a light run does
//! not. The starved run is pinned to one core with `taskset` and sends to a closed loopback
//! port, so every request fails at once and its whole cost is stampede's: the load threads
//! never idle, whatever else the machine runs (a shared machine may hold the CPU share below
//! 90 %, the busy share still shows it). Against a real target on a busy machine the target is
//! often the slower side, and then the generator rightly does not warn.

use std::process::Command;

use crate::support::{self, nginx::Nginx};

/// Runs the stampede binary under `prefix` (e.g. taskset), returning stdout and the summary.
fn run_under(prefix: &[&str], args: &[&str]) -> (String, serde_json::Value) {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("summary.json");
    let out = Command::new(prefix[0])
        .args(&prefix[1..])
        .arg(env!("CARGO_BIN_EXE_stampede"))
        .args(args)
        .arg("--summary-json")
        .arg(&json)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
        .env("COLUMNS", "400")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "run {prefix:?}: {e} (taskset and nice: Debian util-linux and coreutils; \
                 scripts/test.sh installs them)"
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (stdout, support::read_json(&json))
}

const WARNING: &str = "results may measure the generator, not the target";

#[test]
fn a_cpu_starved_generator_warns_that_it_measured_itself_and_a_light_run_does_not() {
    let closed = format!("http://127.0.0.1:{}/", support::free_port());
    let (text, s) = run_under(
        &["taskset", "-c", "0"],
        &[
            "run",
            "-u",
            &closed,
            "-c",
            "16",
            "-d",
            "3s",
            "-q",
            "--no-metrics",
        ],
    );
    let g = &s["generator"];
    assert_eq!(g["cores"], 1, "{g}");
    assert_eq!(g["cpu_bound"], true, "{g}\n{text}");
    assert!(
        g["cpu_utilization_peak"].as_f64() >= Some(0.9) || g["busy_peak"].as_f64() >= Some(0.9),
        "{g}"
    );
    assert!(
        text.contains("WARNING: the generator was CPU-bound (CPU peak "),
        "{text}"
    );
    assert!(text.contains(WARNING), "{text}");

    // 20 requests/s for 2 s against nginx: a few percent of a core.
    let n = Nginx::start();
    let url = format!("http://127.0.0.1:{}/", n.port);
    let (text, s) = run_under(
        &["env"],
        &[
            "run",
            "-u",
            &url,
            "--rate",
            "20",
            "-d",
            "2s",
            "-q",
            "--no-metrics",
        ],
    );
    let g = &s["generator"];
    assert_eq!(g["cpu_bound"], false, "{g}");
    assert!(g["cpu_utilization_peak"].as_f64() < Some(0.5), "{g}");
    assert!(g["busy_peak"].as_f64() < Some(0.5), "{g}");
    assert!(g["cpu_s"].as_f64() > Some(0.0), "{g}");
    assert!(g["memory_peak_bytes"].as_u64() > Some(1 << 20), "{g}");
    assert!(!text.contains(WARNING), "{text}");

    // 3,000 requests/s: the workers poll between a request and its response (`--busy-poll
    // 100us`), so tokio never sees them parked, also while `sched_yield` has given the
    // CPU away; polling with nothing to do is not work, and the generator is not CPU-bound
    // (it said so, busy 94–96 % in a debug build, before that was known).
    // On one core with a CPU hog, as a generator shares its cores with a target or a build:
    // the poll's `sched_yield` gives the core to the hog for a while, and that wait is idle.
    let mut hog = Command::new("taskset")
        .args([
            "-c",
            "0",
            "sh",
            "-c",
            "end=$(($(date +%s) + 4)); while [ $(date +%s) -lt $end ]; do :; done",
        ])
        .spawn()
        .expect("taskset (Debian util-linux)");
    let (text, s) = run_under(
        &["taskset", "-c", "0"],
        &[
            "run",
            "-u",
            &url,
            "--rate",
            "3000",
            "-d",
            "2s",
            "-q",
            "--no-metrics",
            "--workers",
            "1",
            "--busy-poll",
            "100us",
        ],
    );
    let _ = hog.kill();
    let _ = hog.wait();
    let g = &s["generator"];
    assert_eq!(g["cpu_bound"], false, "{g}");
    assert!(g["busy_peak"].as_f64() < Some(0.75), "{g}");
    assert!(g["busy_poll_idle_s"].as_f64() > Some(0.0), "{g}");
    assert!(!text.contains(WARNING), "{text}");
}
