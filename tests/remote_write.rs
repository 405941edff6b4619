//! Whole runs pushed by remote-write into a real Prometheus; totals read back exactly.

use std::time::Duration;

use stampede::Summary;
use stampede::config::Overrides;

use crate::support::{self, prometheus::Prometheus};

/// A run mixing successes, 5xx, resets and refused connections, with checks.
pub(crate) fn mixed_scenario(
    target: std::net::SocketAddr,
    run_id: &str,
    write_url: &str,
    extra: &str,
) -> String {
    format!(
        r#"{}
        [metrics.remote_write]
        url = "{write_url}"
        push_interval = "1s"
        {extra}
        "#,
        mixed_load(target, run_id)
    )
}

/// The load part of [`mixed_scenario`] (no `[metrics]` section): 4 VUs for 3 s, 55 % `/`
/// with checks, 18 % 503, 9 % refused connections, 9 % connection resets, 9 % JSON POSTs.
pub(crate) fn mixed_load(target: std::net::SocketAddr, run_id: &str) -> String {
    let closed = support::free_port();
    format!(
        r#"
        [run]
        id = "{run_id}"
        [defaults]
        base_url = "http://{target}"
        timeout = "2s"
        [[scenarios]]
        name = "mixed"
        executor = "constant-vus"
        vus = 4
        duration = "3s"
        think_time = "5ms"
        [[scenarios.tasks]]
        weight = 6
        requests = [{{ url = "/", checks = {{ status = 200, body_contains = "ok" }} }}]
        [[scenarios.tasks]]
        weight = 2
        requests = [{{ name = "/status/{{code}}", url = "/status/503" }}]
        [[scenarios.tasks]]
        weight = 1
        requests = [{{ name = "refused", url = "http://127.0.0.1:{closed}/" }}]
        [[scenarios.tasks]]
        weight = 1
        requests = [{{ url = "/reset" }}]
        [[scenarios.tasks]]
        weight = 1
        requests = [{{ method = "POST", url = "/echo", json = {{ hello = "stampede" }} }}]
        "#
    )
}

fn sum(p: &Prometheus, expr: &str) -> u64 {
    p.query_scalar_eventually(expr, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no data for {expr}\n{}", p.log())) as u64
}

/// Checks that Prometheus holds exactly the summary's totals for the run.
pub(crate) fn assert_totals_match(p: &Prometheus, s: &Summary) {
    let run = &s.run_id;
    let total = sum(
        p,
        &format!("sum(http_client_request_duration_seconds_count{{stampede_run_id=\"{run}\"}})"),
    );
    assert_eq!(total, s.requests, "total requests");
    for row in &s.by_name {
        let n = sum(
            p,
            &format!(
                "sum(http_client_request_duration_seconds_count{{stampede_run_id=\"{run}\",url_template=\"{}\",http_request_method=\"{}\"}})",
                row.name, row.method
            ),
        );
        assert_eq!(n, row.requests, "requests of {}", row.name);
    }
    for (etype, count) in &s.errors {
        let n = sum(
            p,
            &format!(
                "sum(http_client_request_duration_seconds_count{{stampede_run_id=\"{run}\",error_type=\"{etype}\"}})"
            ),
        );
        assert_eq!(n, *count, "error.type {etype}");
    }
    let its = sum(
        p,
        &format!("sum(stampede_iterations_total{{stampede_run_id=\"{run}\"}})"),
    );
    assert_eq!(its, s.iterations, "iterations");
    for c in &s.checks {
        for (result, want) in [("pass", c.passes), ("fail", c.fails)] {
            let expr = format!(
                "sum(stampede_checks_total{{stampede_run_id=\"{run}\",stampede_check_name=\"{}\",stampede_check_result=\"{result}\"}})",
                c.name.replace('"', "\\\"")
            );
            let got = p
                .query_scalar_eventually(&expr, Duration::from_secs(5))
                .unwrap_or(0.0) as u64;
            assert_eq!(got, want, "check {} {result}", c.name);
        }
    }
}

fn delivered_everything(s: &Summary) {
    assert_eq!(s.export.len(), 1, "{:?}", s.export);
    assert_eq!(s.export[0].not_delivered, 0, "{:?}", s.export);
    assert!(s.export[0].delivered > 0);
}

#[test]
fn a_run_arrives_in_prometheus_with_exact_totals() {
    let p = Prometheus::start();
    let t = support::target();
    let id = support::run_id("rw-exact");
    let s = support::run_toml(
        &mixed_scenario(t.addr, &id, &p.write_url(), ""),
        &Overrides::default(),
    );
    assert!(s.failures > 0 && s.failures < s.requests, "{s:?}");
    for e in ["503", "connection_reset", "connection_refused"] {
        assert!(s.errors.contains_key(e), "{:?}", s.errors);
    }
    delivered_everything(&s);
    assert_totals_match(&p, &s);

    // The p99 from the buckets lands within one bucket of the exact p99 (of every request,
    // failures included: the histogram's population).
    let q = p
        .query_scalar(&format!(
            "histogram_quantile(0.99, sum by (le) (http_client_request_duration_seconds_bucket{{stampede_run_id=\"{id}\"}}))"
        ))
        .expect("quantile");
    let bounds = stampede::config::DEFAULT_DURATION_BUCKETS;
    let bucket_of = |v: f64| bounds.iter().position(|b| v <= *b).unwrap_or(bounds.len());
    let (bq, bs) = (bucket_of(q), bucket_of(s.latency_all_s.p99));
    assert!(
        bq.abs_diff(bs) <= 1,
        "prometheus p99 {q} vs exact {}",
        s.latency_all_s.p99
    );

    // Series names and labels follow the contract.
    let series = p.series(&format!("{{stampede_run_id=\"{id}\"}}"));
    let names: std::collections::BTreeSet<&str> =
        series.iter().map(|s| s["__name__"].as_str()).collect();
    for n in [
        "http_client_request_duration_seconds_bucket",
        "http_client_request_duration_seconds_count",
        "http_client_request_duration_seconds_sum",
        "http_client_request_body_size_bytes_count",
        "http_client_response_body_size_bytes_count",
        "http_client_active_requests",
        "stampede_vus",
        "stampede_vus_max",
        "stampede_run_duration_seconds",
        "stampede_iterations_total",
        "stampede_iteration_duration_seconds_count",
        "stampede_checks_total",
    ] {
        assert!(names.contains(n), "missing {n} in {names:?}");
    }
    let ok = series
        .iter()
        .find(|s| {
            s["__name__"] == "http_client_request_duration_seconds_count"
                && s.get("http_response_status_code").map(String::as_str) == Some("200")
        })
        .expect("a 200 series");
    let labels: Vec<&str> = ok.keys().map(String::as_str).collect();
    assert_eq!(
        labels,
        [
            "__name__",
            "http_request_method",
            "http_response_status_code",
            "instance",
            "job",
            "server_address",
            "server_port",
            "stampede_run_id",
            "stampede_scenario",
            "url_template"
        ]
    );
    assert_eq!(ok["job"], "stampede");
    assert!(
        p.query_scalar("count(target_info{job=\"stampede\"})")
            .is_some()
    );
}

#[test]
fn native_histograms_arrive_and_quantiles_work() {
    let p = Prometheus::start_with(true);
    let t = support::target();
    let id = support::run_id("rw-native");
    let s = support::run_toml(
        &mixed_scenario(t.addr, &id, &p.write_url(), "").replace(
            "[metrics.remote_write]",
            "[metrics]\nhistogram = \"exponential\"\n[metrics.remote_write]",
        ),
        &Overrides::default(),
    );
    delivered_everything(&s);
    let n = sum(
        &p,
        &format!(
            "sum(histogram_count(http_client_request_duration_seconds{{stampede_run_id=\"{id}\"}}))"
        ),
    );
    assert_eq!(n, s.requests);
    let q = p
        .query_scalar(&format!(
            "histogram_quantile(0.5, sum(http_client_request_duration_seconds{{stampede_run_id=\"{id}\"}}))"
        ))
        .expect("native quantile");
    assert!(q > 0.0 && q < 1.0, "{q}");
    assert!(
        p.series(&format!(
            "http_client_request_duration_seconds_bucket{{stampede_run_id=\"{id}\"}}"
        ))
        .is_empty()
    );
}

#[test]
fn a_receiver_down_at_start_still_gets_the_full_totals() {
    let mut p = Prometheus::start();
    let t = support::target();
    let id = support::run_id("rw-down");
    let text = mixed_scenario(
        t.addr,
        &id,
        &p.write_url(),
        "min_backoff = \"100ms\"\nmax_backoff = \"500ms\"\nmax_retries = 100",
    );
    p.stop();
    let runner = std::thread::spawn(move || support::run_toml(&text, &Overrides::default()));
    std::thread::sleep(Duration::from_millis(2000));
    p.restart();
    let s = runner.join().expect("run");
    delivered_everything(&s);
    assert_totals_match(&p, &s);
}

#[test]
fn a_receiver_restarted_mid_run_still_gets_the_full_totals() {
    let mut p = Prometheus::start();
    let t = support::target();
    let id = support::run_id("rw-restart");
    let text = mixed_scenario(
        t.addr,
        &id,
        &p.write_url(),
        "min_backoff = \"100ms\"\nmax_backoff = \"500ms\"\nmax_retries = 100",
    );
    let runner = std::thread::spawn(move || support::run_toml(&text, &Overrides::default()));
    std::thread::sleep(Duration::from_millis(1200));
    p.stop();
    std::thread::sleep(Duration::from_millis(1200));
    p.restart();
    let s = runner.join().expect("run");
    delivered_everything(&s);
    assert_totals_match(&p, &s);
}

#[test]
fn a_receiver_answering_400_is_not_retried_and_the_run_says_so() {
    let t = support::target();
    let id = support::run_id("rw-400");
    let started = std::time::Instant::now();
    let s = support::run_toml(
        &mixed_scenario(t.addr, &id, &format!("http://{}/status/400", t.addr), ""),
        &Overrides::default(),
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(s.export.len(), 1);
    let row = &s.export[0];
    assert_eq!(row.delivered, 0, "{row:?}");
    assert!(row.not_delivered > 0, "{row:?}");
    assert!(row.detail.contains("rejected"), "{row:?}");
}

#[test]
fn request_body_sizes_are_recorded_for_requests_with_a_body() {
    let p = Prometheus::start();
    let t = support::target();
    let id = support::run_id("rw-bodies");
    let s = support::run_toml(
        &mixed_scenario(t.addr, &id, &p.write_url(), ""),
        &Overrides::default(),
    );
    let echo = s
        .by_name
        .iter()
        .find(|r| r.name == "/echo")
        .expect("the POST row");
    // Every POST carried the 20-byte JSON body; GETs record no request body size.
    let n = sum(
        &p,
        &format!("sum(http_client_request_body_size_bytes_count{{stampede_run_id=\"{id}\"}})"),
    );
    assert_eq!(n, echo.requests);
    let bytes = sum(
        &p,
        &format!("sum(http_client_request_body_size_bytes_sum{{stampede_run_id=\"{id}\"}})"),
    );
    assert_eq!(
        bytes,
        echo.requests * r#"{"hello":"stampede"}"#.len() as u64
    );
    // The echo answers with the same body: response sizes add up too.
    let resp = sum(
        &p,
        &format!(
            "sum(http_client_response_body_size_bytes_sum{{stampede_run_id=\"{id}\",url_template=\"/echo\"}})"
        ),
    );
    assert_eq!(resp, bytes);
}

/// Prometheus without native histograms refuses exponential histograms with a 500 whose body
/// says why: that body reaches the user at error level (a permanent refusal) and in the
/// summary.
#[test]
fn a_receivers_error_body_reaches_the_user() {
    let p = Prometheus::start();
    let t = support::target();
    let (_dir, file) = support::write_config(
        "native.toml",
        &format!(
            r#"
            [[scenarios]]
            vus = 1
            duration = "1s"
            requests = [{{ url = "http://{}/" }}]
            [metrics]
            histogram = "exponential"
            [metrics.remote_write]
            url = "{}"
            push_interval = 1
            max_retries = 1
            min_backoff = 0.1
            max_backoff = "200ms"
            "#,
            t.addr,
            p.write_url()
        ),
    );
    let out = support::stampede(&["run", "--quiet", file.to_str().expect("utf-8 path")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let said = "native histograms are disabled";
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("ERROR") && l.contains("HTTP 500") && l.contains(said)),
        "the receiver's answer is not in a warning:\n{stderr}"
    );
    let row = support::summary_entry(&stdout, "  export remote_write ")
        .unwrap_or_else(|| panic!("no export line:\n{stdout}"));
    assert!(
        row.contains("samples NOT delivered") && row.contains(said),
        "{row}"
    );
    assert!(!stderr.contains("Status(500"), "{stderr}");
}

/// A scenario of `n` requests named `r0`…, all to `/` of the target; shared iterations.
fn many_names(target: std::net::SocketAddr, run_id: &str, n: usize, iterations: u64) -> String {
    let mut s = format!(
        r#"
        [run]
        id = "{run_id}"
        [defaults]
        base_url = "http://{target}"
        [[scenarios]]
        name = "many"
        executor = "shared-iterations"
        vus = 2
        iterations = {iterations}
        "#
    );
    for i in 0..n {
        s.push_str(&format!(
            "[[scenarios.requests]]\nname = \"r{i}\"\nurl = \"/\"\n"
        ));
    }
    s
}

/// `[metrics]` for the many-series runs: native histograms (one sample per series, so the
/// final push stays small) and only the final collection pushed.
fn one_final_native_push(write_url: &str) -> String {
    format!(
        "[metrics]\nhistogram = \"exponential\"\n[metrics.remote_write]\nurl = \"{write_url}\"\npush_interval = \"1h\"\n"
    )
}

/// More request names than the SDK's default 2,000 series per instrument: every series keeps
/// the run id, nothing is folded, and Prometheus holds exactly the summary's total.
#[test]
fn more_than_2000_request_names_arrive_with_the_run_id_and_exact_totals() {
    let p = Prometheus::start_with(true);
    let t = support::target();
    let id = support::run_id("rw-names");
    let text = format!(
        "{}\n{}",
        many_names(t.addr, &id, 2100, 4),
        one_final_native_push(&p.write_url())
    );
    let s = support::run_toml(&text, &Overrides::default());
    assert_eq!(s.requests, 4 * 2100);
    assert!(s.metrics_folded.is_none(), "{:?}", s.metrics_folded);
    delivered_everything(&s);
    let total = sum(
        &p,
        &format!(
            "sum(histogram_count(http_client_request_duration_seconds{{stampede_run_id=\"{id}\"}}))"
        ),
    );
    assert_eq!(total, s.requests);
    let names = sum(
        &p,
        &format!("count(http_client_request_duration_seconds{{stampede_run_id=\"{id}\"}})"),
    );
    assert_eq!(names, 2100, "one series per request name");
    assert!(
        p.series("{otel_metric_overflow=\"true\"}").is_empty(),
        "nothing may be folded"
    );
}

/// Past the series budget of the outcome instruments (2,730 distinct name × status series for
/// a budget of 2,000), the rest is folded into per-scenario overflow series that keep the run
/// id and scenario: Prometheus' per-run total still equals the summary's, and the summary
/// says how many series were folded.
#[test]
fn folded_series_keep_the_run_id_and_the_summary_says_so() {
    let p = Prometheus::start_with(true);
    let t = support::target();
    let id = support::run_id("rw-folded");
    // 30 requests × 100 iterations; `/status/2${iteration}` answers 210…299 (90 statuses) and
    // 400 for the invalid 20…29: 91 outcomes per request name.
    let mut text = format!(
        r#"
        [run]
        id = "{id}"
        [defaults]
        base_url = "http://{}"
        [[scenarios]]
        name = "folding"
        executor = "shared-iterations"
        vus = 1
        iterations = 100
        "#,
        t.addr
    );
    for i in 0..30 {
        text.push_str(&format!(
            "[[scenarios.requests]]\nname = \"r{i}\"\nurl = \"/status/2${{iteration}}\"\n"
        ));
    }
    text.push_str(&one_final_native_push(&p.write_url()));
    let (_dir, file) = support::write_config("folding.toml", &text);
    let json = file.with_file_name("summary.json");
    let out = support::stampede(&[
        "run",
        file.to_str().expect("utf-8 path"),
        "--quiet",
        "--summary-json",
        json.to_str().expect("utf-8 path"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("summary")).expect("json");
    support::schema::assert_summary_conforms(&v);
    let requests = v["requests"].as_u64().expect("requests");
    assert_eq!(requests, 3000);
    let distinct: usize = v["by_name"]
        .as_array()
        .expect("by_name")
        .iter()
        .map(|r| r["status_codes"].as_object().map_or(0, |c| c.len()))
        .sum();
    let folded = v["metrics_folded"]["series"]
        .as_u64()
        .expect("metrics_folded");
    assert_eq!(folded as usize, distinct - 2000, "{}", v["metrics_folded"]);
    assert!(
        stdout.contains(&format!("warning: {folded} metric series")),
        "{stdout}"
    );
    let total = sum(
        &p,
        &format!(
            "sum(histogram_count(http_client_request_duration_seconds{{stampede_run_id=\"{id}\"}}))"
        ),
    );
    assert_eq!(total, requests, "the run's total in Prometheus");
    let overflow = p.series("http_client_request_duration_seconds{otel_metric_overflow=\"true\"}");
    assert_eq!(overflow.len(), 1, "{overflow:?}");
    assert_eq!(overflow[0]["stampede_run_id"], id);
    assert_eq!(overflow[0]["stampede_scenario"], "folding");
    let in_overflow = sum(
        &p,
        &format!(
            "sum(histogram_count(http_client_request_duration_seconds{{stampede_run_id=\"{id}\",otel_metric_overflow=\"true\"}}))"
        ),
    );
    assert!(in_overflow > 0 && in_overflow < requests, "{in_overflow}");
}

/// A 1 s run of one VU against the target with exponential histograms pushed to `write_url`
/// with the default retry settings (10 retries, backoff up to 10 s: a retried failure would
/// keep the final flush waiting for its 15 s deadline).
fn one_second_native_run(target: std::net::SocketAddr, write_url: &str) -> String {
    format!(
        r#"
        [[scenarios]]
        vus = 1
        duration = "1s"
        requests = [{{ url = "http://{target}/" }}]
        [metrics]
        histogram = "exponential"
        [metrics.remote_write]
        url = "{write_url}"
        "#
    )
}

/// Runs `file` with `extra` flags: (exit code, stdout, stderr, wall time).
fn timed_run(file: &std::path::Path, extra: &[&str]) -> (Option<i32>, String, String, Duration) {
    let started = std::time::Instant::now();
    let mut args = vec!["run", "--quiet", file.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let out = support::stampede(&args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

/// Prometheus without native histograms answers HTTP 500 "native histograms are disabled":
/// permanent, so it is not retried until the flush deadline; the hint names the feature flag,
/// and `--fail-on-export-error` turns the incomplete export into exit 5 (0 without it, with a
/// warning after the summary).
#[test]
fn a_permanent_500_is_not_retried_and_fails_the_run_when_asked() {
    let p = Prometheus::start();
    let t = support::target();
    let (_dir, file) = support::write_config(
        "native-refused.toml",
        &one_second_native_run(t.addr, &p.write_url()),
    );
    let (code, out, err, took) = timed_run(&file, &["--fail-on-export-error"]);
    assert_eq!(code, Some(stampede::EXIT_EXPORT as i32), "{out}\n{err}");
    assert!(
        took < Duration::from_secs(6),
        "a permanent error was retried: the 1 s run took {took:?}\n{err}"
    );
    let row = support::summary_entry(&out, "  export remote_write ")
        .unwrap_or_else(|| panic!("no export line:\n{out}"));
    assert!(
        row.contains("rejected by the receiver")
            && row.contains("--enable-feature=native-histograms"),
        "{row}"
    );
    assert!(
        err.lines().any(|l| l.contains("ERROR")
            && l.contains("native histograms are disabled")
            && l.contains("hint: the receiver does not take native histograms")),
        "{err}"
    );
    assert!(
        err.contains("error: an exporter delivered less than everything")
            && err.contains("(--fail-on-export-error: exit 5)"),
        "{err}"
    );
    // Without the flag: exit 0, and a warning that says what the flag would do.
    let (code, out, err, took) = timed_run(&file, &[]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(took < Duration::from_secs(6), "{took:?}\n{err}");
    assert!(
        err.contains("WARNING: an exporter delivered less than everything")
            && err
                .contains("--fail-on-export-error ([run] fail_on_export_error) makes this exit 5"),
        "{err}"
    );
}

/// A remote-write URL where nothing listens: the final flush gives up at once instead of
/// retrying until its 15 s deadline, says nothing accepted a connection all run, and the
/// config key `[run] fail_on_export_error` fails the run with exit 5.
#[test]
fn an_unreachable_receiver_is_given_up_at_the_flush_and_fails_the_run_when_asked() {
    let t = support::target();
    let closed = support::free_port();
    let url = format!("http://127.0.0.1:{closed}/api/v1/write");
    let text = one_second_native_run(t.addr, &url);
    let (_dir, file) = support::write_config("unreachable.toml", &text);
    let (code, out, err, took) = timed_run(&file, &[]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        took < Duration::from_secs(5),
        "the flush waited for a receiver that is not there: {took:?}\n{err}"
    );
    let row = support::summary_entry(&out, "  export remote_write ")
        .unwrap_or_else(|| panic!("no export line:\n{out}"));
    assert!(
        row.contains("0 samples delivered")
            && row.contains("given up after retries")
            && row.contains(&format!(
                "nothing accepted a connection at http://127.0.0.1:{closed}/api/v1/write all run"
            )),
        "{row}"
    );
    assert!(err.contains("WARNING: an exporter delivered less"), "{err}");
    let (dir2, strict) = support::write_config(
        "unreachable-strict.toml",
        &format!("[run]\nfail_on_export_error = true\n{text}"),
    );
    let json = dir2.path().join("summary.json");
    let (code, out, err, took) = timed_run(&strict, &["--summary-json", json.to_str().expect("p")]);
    assert_eq!(code, Some(stampede::EXIT_EXPORT as i32), "{out}\n{err}");
    assert!(took < Duration::from_secs(5), "{took:?}\n{err}");
    let v = support::read_json(&json);
    crate::support::schema::assert_summary_conforms(&v);
    assert_eq!(v["fail_on_export_error"], true);
    assert_eq!(v["export"][0]["delivered"], 0, "{}", v["export"]);
    assert!(
        v["export"][0]["given_up"].as_u64().is_some_and(|n| n > 0),
        "{}",
        v["export"]
    );
    // A report remade from the summary says the run's exit code.
    let html = dir2.path().join("report.html");
    let o = support::stampede(&[
        "report",
        json.to_str().expect("p"),
        "-o",
        html.to_str().expect("p"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", support::text(&o));
    let page = std::fs::read_to_string(&html).expect("report");
    assert!(page.contains("<b id=\"exit-code\">5</b>"), "{page}");
}

/// `OTEL_RESOURCE_ATTRIBUTES` lands on `target_info`, not on the request series; the README's
/// PromQL join puts it on them.
#[test]
fn resource_attributes_land_on_target_info_and_join_onto_the_series() {
    let p = Prometheus::start();
    let t = support::target();
    let id = support::run_id("rw-resource");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["run", "--quiet", "-u", &format!("http://{}/", t.addr)])
        .args(["-c", "1", "-n", "7", "--run-id", &id])
        .args(["--remote-write-url", &p.write_url()])
        .env("OTEL_RESOURCE_ATTRIBUTES", "team=checkout")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", support::text(&out));
    let count = format!("http_client_request_duration_seconds_count{{stampede_run_id=\"{id}\"}}");
    let series = p.series(&count);
    assert_eq!(series.len(), 1, "{series:?}");
    assert!(!series[0].contains_key("team"), "{:?}", series[0]);
    let instance = series[0].get("instance").cloned().unwrap_or_default();
    let info = p.series(&format!("target_info{{instance=\"{instance}\"}}"));
    assert_eq!(
        info.first().and_then(|l| l.get("team")).map(String::as_str),
        Some("checkout"),
        "{info:?}"
    );
    let joined = p.query_scalar(&format!(
        "sum by (team) ({count} * on (job, instance) group_left (team) target_info{{team=\"checkout\"}})"
    ));
    assert_eq!(joined, Some(7.0));
}
