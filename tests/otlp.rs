//! Whole runs exported by OTLP (gRPC and HTTP) through the real OpenTelemetry Collector
//! (`otel-collector/config.yaml`) into a real Prometheus; totals read back exactly, and the
//! series match what stampede's own remote-write exporter produces.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use stampede::Summary;
use stampede::config::Overrides;

use crate::remote_write::{assert_totals_match, mixed_load};
use crate::support::{self, collector::Collector, prometheus::Prometheus};

/// How long the Collector may take to pass the last export on to Prometheus.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(30);

/// `[metrics]` with a 1 s interval and OTLP to `endpoint` over `protocol`.
pub(crate) fn otlp_metrics(endpoint: &str, protocol: &str, extra: &str) -> String {
    format!(
        r#"
        [metrics]
        interval = "1s"
        {extra}
        [metrics.otlp]
        endpoint = "{endpoint}"
        protocol = "{protocol}"
        "#
    )
}

/// The mixed run, exported by OTLP only.
fn otlp_scenario(
    target: std::net::SocketAddr,
    run_id: &str,
    endpoint: &str,
    protocol: &str,
) -> String {
    format!(
        "{}{}",
        mixed_load(target, run_id),
        otlp_metrics(endpoint, protocol, "")
    )
}

/// Everything was handed to the OTLP exporter's receiver (the Collector).
pub(crate) fn otlp_delivered_everything(s: &Summary) {
    let row = s
        .export
        .iter()
        .find(|r| r.exporter.starts_with("otlp/"))
        .unwrap_or_else(|| panic!("no OTLP export row: {:?}", s.export));
    assert_eq!(row.not_delivered, 0, "{:?}", s.export);
    assert!(row.delivered > 0, "{:?}", s.export);
    assert!(!row.detail.contains("FINAL EXPORT FAILED"), "{row:?}");
}

fn value(p: &Prometheus, expr: &str) -> u64 {
    p.query_scalar(expr).map_or(0, |v| v as u64)
}

/// Waits until Prometheus holds the run's final request, iteration and check totals (the
/// Collector passes data on asynchronously, so an earlier, smaller cumulative value may be
/// visible first), then checks every total with [`assert_totals_match`].
pub(crate) fn wait_for_totals(
    p: &Prometheus,
    s: &Summary,
    timeout: Duration,
    logs: &dyn Fn() -> String,
) {
    let run = &s.run_id;
    let checks: u64 = s.checks.iter().map(|c| c.passes + c.fails).sum();
    let want = (s.requests, s.iterations, checks);
    let deadline = Instant::now() + timeout;
    loop {
        let got = (
            value(
                p,
                &format!(
                    "sum(http_client_request_duration_seconds_count{{stampede_run_id=\"{run}\"}})"
                ),
            ),
            value(
                p,
                &format!("sum(stampede_iterations_total{{stampede_run_id=\"{run}\"}})"),
            ),
            value(
                p,
                &format!("sum(stampede_checks_total{{stampede_run_id=\"{run}\"}})"),
            ),
        );
        if got == want {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "after {timeout:?} Prometheus has (requests, iterations, checks) = {got:?}, \
                 the run {want:?}\nexport: {:?}\n{}\n--- prometheus log ---\n{}",
                s.export,
                logs(),
                p.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_totals_match(p, s);
}

fn collector_logs(c: &Collector) -> impl Fn() -> String + '_ {
    move || format!("--- collector log ---\n{}", c.logs())
}

fn run_through_collector(protocol: &str) {
    let p = Prometheus::start();
    let c = Collector::start(&p.write_url());
    let t = support::target();
    let id = support::run_id(&format!("otlp-{protocol}"));
    let endpoint = if protocol == "grpc" {
        &c.grpc_endpoint
    } else {
        &c.http_endpoint
    };
    let s = support::run_toml(
        &otlp_scenario(t.addr, &id, endpoint, protocol),
        &Overrides::default(),
    );
    assert!(s.failures > 0 && s.failures < s.requests, "{s:?}");
    for e in ["503", "connection_reset", "connection_refused"] {
        assert!(s.errors.contains_key(e), "{:?}", s.errors);
    }
    otlp_delivered_everything(&s);
    wait_for_totals(&p, &s, ARRIVAL_TIMEOUT, &collector_logs(&c));
}

#[test]
fn grpc_run_arrives_through_the_collector_with_exact_totals() {
    run_through_collector("grpc");
}

#[test]
fn http_run_arrives_through_the_collector_with_exact_totals() {
    run_through_collector("http");
}

/// metric name → label names (union over the metric's series).
fn label_names(series: &[BTreeMap<String, String>]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in series {
        let name = s.get("__name__").cloned().unwrap_or_default();
        out.entry(name)
            .or_default()
            .extend(s.keys().filter(|k| *k != "__name__").cloned());
    }
    out
}

/// Human-readable differences between two name → label-name maps.
fn describe_differences(
    a_name: &str,
    a: &BTreeMap<String, BTreeSet<String>>,
    b_name: &str,
    b: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut diffs = Vec::new();
    for n in a.keys().filter(|n| !b.contains_key(*n)) {
        diffs.push(format!("metric {n} only from {a_name}"));
    }
    for n in b.keys().filter(|n| !a.contains_key(*n)) {
        diffs.push(format!("metric {n} only from {b_name}"));
    }
    for (n, la) in a {
        if let Some(lb) = b.get(n) {
            let only_a: Vec<_> = la.difference(lb).collect();
            let only_b: Vec<_> = lb.difference(la).collect();
            if !only_a.is_empty() || !only_b.is_empty() {
                diffs.push(format!(
                    "{n}: labels only from {a_name} {only_a:?}, only from {b_name} {only_b:?}"
                ));
            }
        }
    }
    diffs
}

#[test]
fn remote_write_and_otlp_through_the_collector_produce_the_same_series() {
    same_series_from_both_paths(false);
}

#[test]
fn remote_write_and_otlp_through_the_collector_produce_the_same_native_histogram_series() {
    same_series_from_both_paths(true);
}

/// Waits until the run's native request-duration histograms count all its requests.
pub(crate) fn wait_for_native_requests(p: &Prometheus, s: &Summary, logs: &dyn Fn() -> String) {
    let expr = format!(
        "sum(histogram_count(http_client_request_duration_seconds{{stampede_run_id=\"{}\"}}))",
        s.run_id
    );
    let deadline = Instant::now() + ARRIVAL_TIMEOUT;
    loop {
        let got = value(p, &expr);
        if got == s.requests {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus counts {got} requests in the native histograms, the run {}\n{}",
            s.requests,
            logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One run pushed by remote-write straight into Prometheus A and by OTLP/gRPC through the
/// Collector into Prometheus B: the same series (names, label names and label values) and the
/// same `target_info` labels must come out.
fn same_series_from_both_paths(native: bool) {
    let direct = Prometheus::start_with(native);
    let via_collector = Prometheus::start_with(native);
    let c = Collector::start(&via_collector.write_url());
    let t = support::target();
    let id = support::run_id(if native {
        "otlp-vs-rw-native"
    } else {
        "otlp-vs-rw"
    });
    let text = format!(
        r#"{}
        [metrics]
        interval = "1s"
        histogram = "{}"
        [metrics.remote_write]
        url = "{}"
        push_interval = "1s"
        [metrics.otlp]
        endpoint = "{}"
        protocol = "grpc"
        "#,
        mixed_load(t.addr, &id),
        if native { "exponential" } else { "explicit" },
        direct.write_url(),
        c.grpc_endpoint,
    );
    let s = support::run_toml(&text, &Overrides::default());
    assert_eq!(s.export.len(), 2, "{:?}", s.export);
    assert!(
        s.export.iter().all(|r| r.not_delivered == 0),
        "{:?}",
        s.export
    );
    otlp_delivered_everything(&s);
    if native {
        wait_for_native_requests(&direct, &s, &String::new);
        wait_for_native_requests(&via_collector, &s, &collector_logs(&c));
    } else {
        assert_totals_match(&direct, &s);
        wait_for_totals(&via_collector, &s, ARRIVAL_TIMEOUT, &collector_logs(&c));
    }

    let selector = format!("{{stampede_run_id=\"{id}\"}}");
    let rw = label_names(&direct.series(&selector));
    let otlp = label_names(&via_collector.series(&selector));
    assert!(
        rw.contains_key("stampede_iterations_total") && rw.len() > 5,
        "remote-write series: {rw:#?}"
    );
    let native_name = "http_client_request_duration_seconds";
    assert_eq!(rw.contains_key(native_name), native, "{rw:#?}");
    let mut diffs = describe_differences("remote-write", &rw, "OTLP+Collector", &otlp);

    // The resource's target_info: same process, so the same job/instance on both sides.
    let instance = direct.series(&selector)[0]["instance"].clone();
    let info_selector = format!("target_info{{instance=\"{instance}\"}}");
    let info_rw = label_names(&direct.series(&info_selector));
    let info_otlp = label_names(&via_collector.series(&info_selector));
    assert!(!info_rw.is_empty(), "no target_info from remote-write");
    assert!(!info_otlp.is_empty(), "no target_info from the Collector");
    diffs.extend(describe_differences(
        "remote-write",
        &info_rw,
        "OTLP+Collector",
        &info_otlp,
    ));
    assert!(
        diffs.is_empty(),
        "the two export paths differ:\n  {}\nremote-write: {rw:#?}\nOTLP+Collector: {otlp:#?}",
        diffs.join("\n  ")
    );

    // And the same label values: every series of one side exists on the other.
    let sets = |p: &Prometheus| -> BTreeSet<BTreeMap<String, String>> {
        p.series(&selector).into_iter().collect()
    };
    let (a, b) = (sets(&direct), sets(&via_collector));
    let only_a: Vec<_> = a.difference(&b).collect();
    let only_b: Vec<_> = b.difference(&a).collect();
    assert!(
        only_a.is_empty() && only_b.is_empty(),
        "series only from remote-write: {only_a:#?}\nseries only from OTLP+Collector: {only_b:#?}"
    );
}

/// Runs the mixed scenario (5 s of load, OTLP every 1 s) in the background against a
/// Collector that `disturb` stops and starts while the run is going, then checks that the
/// exporter saw failures, that the final export went through and that Prometheus holds the
/// exact totals: with cumulative temporality every export carries the totals so far, so the
/// exports lost while the Collector was away do not matter.
fn survives(protocol: &str, disturb: impl FnOnce(&mut Collector)) {
    let p = Prometheus::start();
    let mut c = Collector::start(&p.write_url());
    let t = support::target();
    let id = support::run_id(&format!("otlp-disturbed-{protocol}"));
    let endpoint = if protocol == "grpc" {
        c.grpc_endpoint.clone()
    } else {
        c.http_endpoint.clone()
    };
    let text = otlp_scenario(t.addr, &id, &endpoint, protocol).replacen(
        "duration = \"3s\"",
        "duration = \"5s\"",
        1,
    );
    let started = Instant::now();
    let runner = std::thread::spawn(move || support::run_toml(&text, &Overrides::default()));
    disturb(&mut c);
    let s = runner.join().expect("run");
    let elapsed = started.elapsed();
    let row = &s.export[0];
    assert!(
        row.failed_attempts > 0,
        "the Collector was down during an export, yet no attempt failed: {row:?}"
    );
    otlp_delivered_everything(&s);
    wait_for_totals(&p, &s, ARRIVAL_TIMEOUT, &collector_logs(&c));
    // 5 s of load and a final export that went through at once.
    assert!(elapsed < Duration::from_secs(15), "run took {elapsed:?}");
}

/// Down for the first exports (1 s, 2 s), back well before the end of the load.
fn down_at_start(c: &mut Collector) {
    c.stop();
    std::thread::sleep(Duration::from_millis(2500));
    c.start_again();
}

/// Stopped gracefully after the first export, down for the exports at 2 s and 3 s.
fn restarted_mid_run(c: &mut Collector) {
    std::thread::sleep(Duration::from_millis(1500));
    c.stop();
    std::thread::sleep(Duration::from_millis(1500));
    c.start_again();
}

#[test]
fn grpc_collector_down_at_start_still_gets_the_full_totals() {
    survives("grpc", down_at_start);
}

#[test]
fn http_collector_down_at_start_still_gets_the_full_totals() {
    survives("http", down_at_start);
}

#[test]
fn grpc_collector_restarted_mid_run_still_gets_the_full_totals() {
    survives("grpc", restarted_mid_run);
}

#[test]
fn http_collector_restarted_mid_run_still_gets_the_full_totals() {
    survives("http", restarted_mid_run);
}

#[test]
fn collector_config_validates() {
    let out = support::collector::validate_config();
    assert!(
        out.status.success(),
        "otelcol validate --config otel-collector/config.yaml failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn otel_exporter_otlp_endpoint_alone_enables_export() {
    let p = Prometheus::start();
    let c = Collector::start(&p.write_url());
    let t = support::target();
    let id = support::run_id("otlp-env");
    let dir = tempfile::tempdir().expect("temp dir");
    let summary = dir.path().join("summary.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["run", "--quiet", "--vus", "2", "--duration", "2s"])
        .args(["--url", &format!("http://{}/", t.addr)])
        .args(["--run-id", &id])
        .arg("--summary-json")
        .arg(&summary)
        .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &c.http_endpoint)
        .env("OTEL_METRIC_EXPORT_INTERVAL", "1000")
        .output()
        .expect("run the stampede binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "stampede failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("otlp/http"),
        "the banner/summary should name the OTLP exporter:\n{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("read the summary JSON"))
            .expect("summary JSON");
    let requests = json["requests"].as_u64().expect("requests");
    assert!(requests > 0, "{json}");
    let expr =
        format!("sum(http_client_request_duration_seconds_count{{stampede_run_id=\"{id}\"}})");
    let deadline = Instant::now() + ARRIVAL_TIMEOUT;
    loop {
        let got = value(&p, &expr);
        if got == requests {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus has {got} requests for {id}, the run {requests}\n{stdout}\n{stderr}\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The exporter rows of a `--summary-json` file (which must follow the schema).
fn export_rows(summary: &std::path::Path) -> Vec<serde_json::Value> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(summary).expect("read the summary JSON"))
            .expect("summary JSON");
    support::schema::assert_summary_conforms(&json);
    json["export"].as_array().cloned().unwrap_or_default()
}

/// OTLP (over `protocol`) and remote-write both pointed at a receiver that accepts TCP and
/// never answers: the process ends within the documented flush bound (15 s) of the run's end,
/// says while waiting what it waits for, and the summary says what was NOT delivered.
fn a_silent_receiver_cannot_hold_the_process(protocol: &str) {
    let t = support::target();
    let hole = support::SilentServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let summary = dir.path().join("summary.json");
    let started = Instant::now();
    let out = support::stampede(&[
        "run",
        "--quiet",
        "--url",
        &format!("http://{}/", t.addr),
        "-c",
        "1",
        "-d",
        "1s",
        "--otlp-endpoint",
        &format!("http://{}", hole.addr),
        "--otlp-protocol",
        protocol,
        "--remote-write-url",
        &format!("http://{}/api/v1/write", hole.addr),
        "--summary-json",
        summary.to_str().expect("utf-8 path"),
    ]);
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Export failures do not change the exit code.
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // 1 s of load, then at most 15 s of flush (and a little for start and exit).
    assert!(
        elapsed < Duration::from_secs(1 + 17),
        "the process ended {elapsed:?} after its start\n{stderr}"
    );
    // It did wait for the answers that never came (both exporters, at the same time).
    assert!(elapsed > Duration::from_secs(14), "{elapsed:?}\n{stderr}");
    assert!(
        stderr.contains("flushing metrics (up to 15 s)…"),
        "no flush notice:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("waiting for otlp/{protocol} http://{}", hole.addr))
            && stderr.contains(&format!(
                "waiting for remote_write http://{}/api/v1/write",
                hole.addr
            )),
        "the notice does not say what it waits for:\n{stderr}"
    );
    let rows = export_rows(&summary);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(row["delivered"], 0, "{row}");
        let pending = row["pending"].as_u64().expect("pending");
        assert!(pending > 0, "{row}");
        assert_eq!(row["not_delivered"].as_u64(), Some(pending), "{row}");
        assert!(
            row["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("no answer within")),
            "{row}"
        );
    }
    for (exporter, unit) in [
        ("remote_write".to_string(), "samples"),
        (format!("otlp/{protocol}"), "data points"),
    ] {
        let entry = support::summary_entry(&stdout, &format!("  export {exporter} "))
            .unwrap_or_else(|| panic!("no {exporter} line:\n{stdout}"));
        assert!(
            entry.contains(&format!(" {unit} NOT delivered")),
            "the summary does not say how many {unit} were NOT delivered:\n{stdout}"
        );
    }
}

#[test]
fn a_silent_grpc_receiver_cannot_hold_the_process_past_the_flush_bound() {
    a_silent_receiver_cannot_hold_the_process("grpc");
}

#[test]
fn a_silent_http_receiver_cannot_hold_the_process_past_the_flush_bound() {
    a_silent_receiver_cannot_hold_the_process("http");
}

/// gRPC sent to the Collector's OTLP/HTTP port, and HTTP/protobuf to its gRPC port: the
/// failure is logged with its cause and a hint about the ports, and the summary repeats it;
/// the right pairing gets no hint.
#[test]
fn otlp_sent_to_the_other_protocols_port_gets_a_hint() {
    let c = Collector::start("http://127.0.0.1:9/api/v1/write");
    let t = support::target();
    let hint = "OTLP gRPC usually listens on 4317 and HTTP on 4318";
    let run = |endpoint: &str, protocol: &str| {
        let out = support::stampede(&[
            "run",
            "--quiet",
            "--url",
            &format!("http://{}/", t.addr),
            "-c",
            "1",
            "-d",
            "1s",
            "--otlp-endpoint",
            endpoint,
            "--otlp-protocol",
            protocol,
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        (stdout, stderr)
    };
    for (endpoint, protocol) in [(&c.http_endpoint, "grpc"), (&c.grpc_endpoint, "http")] {
        let (stdout, stderr) = run(endpoint, protocol);
        let warned = stderr
            .lines()
            .any(|l| l.contains("WARN") && l.contains("OTLP export failed") && l.contains(hint));
        assert!(
            warned,
            "{protocol} to {endpoint}: no warning with the hint:\n{stderr}"
        );
        let row = support::summary_entry(&stdout, &format!("  export otlp/{protocol} "))
            .unwrap_or_else(|| panic!("no OTLP export line:\n{stdout}"));
        assert!(
            row.contains("data points NOT delivered") && row.contains(hint),
            "{row}"
        );
    }
    let (stdout, stderr) = run(&c.grpc_endpoint, "grpc");
    assert!(
        !stdout.contains(hint) && !stderr.contains(hint),
        "{stdout}\n{stderr}"
    );
    let row = support::summary_entry(&stdout, "  export otlp/grpc ")
        .unwrap_or_else(|| panic!("no OTLP export line:\n{stdout}"));
    assert!(row.contains(" 0 data points NOT delivered"), "{row}");
}
