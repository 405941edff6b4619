//! Every Grafana panel query (`grafana/dashboards/stampede.json`) against real stampede data in
//! a real Prometheus, pushed by remote-write and, separately, through the real Collector, with
//! classic and native histograms. The queries are run by `grafana/tests/check-queries.mjs`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use stampede::Summary;
use stampede::config::Overrides;

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
