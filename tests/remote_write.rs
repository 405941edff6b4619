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
