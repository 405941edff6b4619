//! Every Grafana panel query (`grafana/dashboards/stampede.json`) against real stampede data in
//! a real Prometheus, pushed by remote-write and, separately, through the real Collector, with
//! classic and native histograms. The queries are run by `grafana/tests/check-queries.mjs`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stampede::Summary;
use stampede::config::{DEFAULT_DURATION_BUCKETS, Overrides};

use crate::otlp::{
    otlp_delivered_everything, otlp_metrics, wait_for_native_requests, wait_for_totals,
};
use crate::remote_write::{mixed_load, mixed_scenario};
use crate::support::{self, collector::Collector, prometheus::Prometheus};

const EXPONENTIAL: &str = "histogram = \"exponential\"";

fn node() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("node"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "`node` (Node.js 20 or newer) is not on PATH; the dashboard tests run \
                 grafana/tests/check-queries.mjs with it. Install it, e.g. \
                 `apt-get install nodejs` or https://nodejs.org/en/download"
            )
        })
}

/// Runs check-queries.mjs for the run and asserts it passes, showing its output otherwise.
fn check_queries(p: &Prometheus, s: &Summary, native: bool) {
    let script = support::root()
        .join("grafana")
        .join("tests")
        .join("check-queries.mjs");
    let requests = s.requests.to_string();
    // The overview's Avg req/s and Duration equal the summary's (within 1%).
    let rps = s.rps.to_string();
    let duration = s.duration_s.to_string();
    let mut cmd = Command::new(node());
    cmd.arg(&script)
        .args(["--prom", &p.base_url()])
        .args(["--run", &s.run_id])
        .args(["--expect-requests", &requests])
        .args(["--expect-rps", &rps])
        .args(["--expect-duration", &duration])
        .args(["--scrape-interval", "1s"])
        .current_dir(support::root());
    if native {
        cmd.arg("--native");
    }
    let out = cmd
        .output()
        .expect("run node grafana/tests/check-queries.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "check-queries.mjs{} failed ({}):\n{stdout}\n{stderr}",
        if native { " --native" } else { "" },
        out.status
    );
}

fn mixed_outcomes(s: &Summary) {
    for e in ["503", "connection_refused"] {
        assert!(s.errors.contains_key(e), "{:?}", s.errors);
    }
    assert!(s.failures < s.requests, "{s:?}");
}

fn via_remote_write(native: bool) {
    let p = Prometheus::start_with(native);
    let t = support::target();
    let id = support::run_id(if native { "dash-rw-native" } else { "dash-rw" });
    let mut text = mixed_scenario(t.addr, &id, &p.write_url(), "");
    if native {
        text = text.replace(
            "[metrics.remote_write]",
            &format!("[metrics]\n{EXPONENTIAL}\n[metrics.remote_write]"),
        );
    }
    let s = support::run_toml(&text, &Overrides::default());
    mixed_outcomes(&s);
    assert!(
        s.export.iter().all(|r| r.not_delivered == 0),
        "{:?}",
        s.export
    );
    if native {
        wait_for_native_requests(&p, &s, &String::new);
    } else {
        crate::remote_write::assert_totals_match(&p, &s);
    }
    check_queries(&p, &s, native);
}

fn via_collector(native: bool) {
    let p = Prometheus::start_with(native);
    let c = Collector::start(&p.write_url());
    let t = support::target();
    let id = support::run_id(if native {
        "dash-otlp-native"
    } else {
        "dash-otlp"
    });
    let text = format!(
        "{}{}",
        mixed_load(t.addr, &id),
        otlp_metrics(
            &c.grpc_endpoint,
            "grpc",
            if native { EXPONENTIAL } else { "" }
        )
    );
    let s = support::run_toml(&text, &Overrides::default());
    mixed_outcomes(&s);
    otlp_delivered_everything(&s);
    let logs = || c.logs();
    if native {
        wait_for_native_requests(&p, &s, &logs);
    } else {
        wait_for_totals(&p, &s, Duration::from_secs(30), &logs);
    }
    check_queries(&p, &s, native);
}

#[test]
fn dashboard_queries_work_on_remote_write_data() {
    via_remote_write(false);
}

#[test]
fn dashboard_queries_work_on_remote_write_native_histograms() {
    via_remote_write(true);
}

#[test]
fn dashboard_queries_work_on_data_through_the_collector() {
    via_collector(false);
}

#[test]
fn dashboard_queries_work_on_native_histograms_through_the_collector() {
    via_collector(true);
}

/// What one generator process of a multi-generator run reported.
struct GeneratorRun {
    /// A regular expression for its `instance` label.
    instance: String,
    requests: u64,
    duration_s: f64,
    p99_all_s: f64,
}

/// Where the generators send their metrics.
enum Sink<'a> {
    RemoteWrite(&'a Prometheus),
    Collector(&'a Collector),
}

/// Runs three stampede processes at once, one run id, each with its own `--instance-id` and
/// its own delay (so their latency distributions differ), exporting to `sink`.
fn three_generators(sink: &Sink<'_>, run: &str) -> Vec<GeneratorRun> {
    let t = support::target();
    let dir = tempfile::tempdir().expect("temp dir");
    let delays = [5, 10, 30];
    let children: Vec<_> = delays
        .iter()
        .enumerate()
        .map(|(i, ms)| {
            let json = dir.path().join(format!("gen-{i}.json"));
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_stampede"));
            cmd.args(["run", "-u", &format!("http://{}/delay/{ms}", t.addr)])
                .args(["-c", "4", "-d", "3s", "--quiet", "--run-id", run])
                .args(["--instance-id", &format!("gen-{i}")])
                .arg("--summary-json")
                .arg(&json)
                .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
                .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            match sink {
                Sink::RemoteWrite(p) => cmd
                    .args(["--remote-write-url", &p.write_url()])
                    .args(["--remote-write-interval", "1s"]),
                Sink::Collector(c) => cmd
                    .args([
                        "--otlp-endpoint",
                        &c.grpc_endpoint,
                        "--otlp-protocol",
                        "grpc",
                    ])
                    .args(["--metrics-interval", "1s"]),
            };
            (cmd.spawn().expect("start the stampede binary"), json)
        })
        .collect();
    children
        .into_iter()
        .enumerate()
        .map(|(i, (child, json))| {
            let out = child.wait_with_output().expect("wait for stampede");
            assert!(
                out.status.success(),
                "generator failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let v = support::read_json(&json);
            for e in v["export"].as_array().expect("export rows") {
                assert_eq!(e["not_delivered"], 0, "{e}");
            }
            assert!(v["generator"]["cpu_s"].as_f64() > Some(0.0), "{v}");
            GeneratorRun {
                instance: format!("gen-{i}"),
                requests: v["requests"].as_u64().expect("requests"),
                duration_s: v["duration_s"].as_f64().expect("duration_s"),
                p99_all_s: v["latency_all_s"]["p99"].as_f64().expect("p99"),
            }
        })
        .collect()
}

/// The classic bucket `(lower, upper]` holding `v` (seconds).
fn bucket_of(v: f64) -> (f64, f64) {
    let upper = DEFAULT_DURATION_BUCKETS
        .iter()
        .copied()
        .find(|b| *b >= v)
        .unwrap_or(f64::INFINITY);
    let lower = DEFAULT_DURATION_BUCKETS
        .iter()
        .copied()
        .rev()
        .find(|b| *b < v)
        .unwrap_or(0.0);
    (lower, upper)
}

/// Prometheus holds the sum of the generators' totals, one `instance` each, and every
/// dashboard panel shows the combined run.
fn generators_add_up(p: &Prometheus, run: &str, gens: &[GeneratorRun], logs: &dyn Fn() -> String) {
    let want: u64 = gens.iter().map(|g| g.requests).sum();
    let total =
        format!("sum(http_client_request_duration_seconds_count{{stampede_run_id=\"{run}\"}})");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = p.query_scalar(&total).map(|v| v as u64);
        if got == Some(want) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus total {got:?} != sum of the three summaries {want}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let instances = p.query_scalar(&format!(
        "count(count by (instance) (http_client_request_duration_seconds_count{{stampede_run_id=\"{run}\"}}))"
    ));
    assert_eq!(instances, Some(3.0), "one instance label per generator");
    for (i, g) in gens.iter().enumerate() {
        let sel = format!(
            "{{stampede_run_id=\"{run}\", instance=~\"{}\"}}",
            g.instance
        );
        let n = p.query_scalar(&format!(
            "sum(http_client_request_duration_seconds_count{sel})"
        ));
        assert_eq!(n, Some(g.requests as f64), "requests of gen-{i}");
        let util = p.query_scalar(&format!("count(process_cpu_utilization_ratio{sel})"));
        assert_eq!(util, Some(2.0), "gen-{i}: user and system utilization");
        let mem = p.query_scalar(&format!("max(process_memory_usage_bytes{sel})"));
        assert!(mem > Some(1e6), "gen-{i} memory {mem:?}");
    }
    // The overview: total, req/s over the longest generator's duration, p99 between the
    // generators' own p99s (the union's quantile lies between them), widened to their buckets.
    let duration = gens.iter().map(|g| g.duration_s).fold(0.0, f64::max);
    let lo = bucket_of(
        gens.iter()
            .map(|g| g.p99_all_s)
            .fold(f64::INFINITY, f64::min),
    )
    .0;
    let hi = bucket_of(gens.iter().map(|g| g.p99_all_s).fold(0.0, f64::max)).1;
    let script = support::root()
        .join("grafana")
        .join("tests")
        .join("check-queries.mjs");
    let out = Command::new(node())
        .arg(&script)
        .args(["--prom", &p.base_url(), "--run", run])
        .args(["--expect-requests", &want.to_string()])
        .args(["--expect-rps", &(want as f64 / duration).to_string()])
        .args(["--expect-duration", &duration.to_string()])
        .args(["--expect-instances", "3"])
        .args(["--expect-p99", &format!("{lo}:{hi}")])
        .args(["--scrape-interval", "1s"])
        .current_dir(support::root())
        .output()
        .expect("run node grafana/tests/check-queries.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "check-queries.mjs failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "ok    Total requests = ",
        "ok    [44] Generators = 3",
        "ok    p99 latency = ",
    ] {
        assert!(stdout.contains(line), "{line}\n{stdout}");
    }
}

fn no_logs() -> String {
    String::new()
}

#[test]
fn three_generators_remote_writing_one_run_add_up_in_prometheus_and_the_dashboard() {
    let p = Prometheus::start();
    let run = support::run_id("dash-3gen-rw");
    let gens = three_generators(&Sink::RemoteWrite(&p), &run);
    generators_add_up(&p, &run, &gens, &no_logs);
}

#[test]
fn three_generators_through_one_collector_add_up_in_prometheus_and_the_dashboard() {
    let p = Prometheus::start();
    let c = Collector::start(&p.write_url());
    let run = support::run_id("dash-3gen-otlp");
    let gens = three_generators(&Sink::Collector(&c), &run);
    generators_add_up(&p, &run, &gens, &|| c.logs());
}

/// Issue 12: the three segments of one distributed run (a coordinator and two more, as an
/// Indexed Job's pods) remote-write into one Prometheus: its totals equal the coordinator's
/// merged summary, each segment is its own `instance`, and the dashboard shows the whole run.
#[test]
fn three_segments_of_a_distributed_run_add_up_to_the_merged_summary_in_prometheus() {
    let p = Prometheus::start();
    let run = support::run_id("dash-3seg-rw");
    let t = support::target();
    let dir = tempfile::tempdir().expect("temp dir");
    let coord = format!("127.0.0.1:{}", support::free_port());
    let url = format!("http://{}/delay/10", t.addr);
    let children: Vec<_> = (0..3)
        .map(|i| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_stampede"));
            cmd.args(["run", "-u", &url, "-c", "6", "-d", "3s", "--quiet"])
                .args(["--run-id", &run])
                .args(["--segment-count", "3", "--segment-index", &i.to_string()])
                .args(["--coordinator", &coord, "--coordinator-listen", &coord])
                .args(["--coordinator-timeout", "30s"])
                .args(["--remote-write-url", &p.write_url()])
                .args(["--remote-write-interval", "1s"])
                .arg("--summary-json")
                .arg(dir.path().join(format!("summary-{i}.json")))
                .arg("--segment-summary-json")
                .arg(dir.path().join(format!("segment-{i}.json")))
                .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
                .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
                .env_remove("JOB_COMPLETION_INDEX")
                .env_remove("STAMPEDE_SEGMENT_INDEX")
                .env_remove("STAMPEDE_COORDINATOR")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd.spawn().expect("start the stampede binary")
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("wait for stampede");
        assert!(
            out.status.success(),
            "segment {i} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let gens: Vec<GeneratorRun> = (0..3)
        .map(|i| {
            let v = support::read_json(&dir.path().join(format!("segment-{i}.json")));
            for e in v["export"].as_array().expect("export rows") {
                assert_eq!(e["not_delivered"], 0, "segment {i}: {e}");
            }
            assert_eq!(v["segment"]["index"], i, "{v}");
            GeneratorRun {
                // The default id in segment mode: `<host>-<run id>-<segment>`.
                instance: format!(".+-{run}-{i}"),
                requests: v["requests"].as_u64().expect("requests"),
                duration_s: v["duration_s"].as_f64().expect("duration_s"),
                p99_all_s: v["latency_all_s"]["p99"].as_f64().expect("p99"),
            }
        })
        .collect();
    let merged = support::read_json(&dir.path().join("summary-0.json"));
    assert_eq!(
        merged["distributed"]["merged"],
        serde_json::json!([0, 1, 2])
    );
    assert_eq!(
        merged["requests"].as_u64(),
        Some(gens.iter().map(|g| g.requests).sum::<u64>()),
        "the merged summary is the sum of the segments"
    );
    assert!(
        gens.iter().all(|g| g.requests > 0),
        "every segment sent requests"
    );
    generators_add_up(&p, &run, &gens, &no_logs);
}
