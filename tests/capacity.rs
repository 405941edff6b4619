//! Issue 14: windowed thresholds judged live, abort_on_fail (with its warm-up delay), and the
//! capacity search (`stampede find-max`, `executor = "capacity-search"`) against the embedded
//! target with a configurable capacity and a degradation at a known time.

use std::time::{Duration, Instant};

use stampede::config::Overrides;
use stampede::target::{Options, Target, spawn_background_with};

use crate::support::{self, prometheus::Prometheus, text};

fn target_with(opts: Options) -> Target {
    spawn_background_with(([127, 0, 0, 1], 0).into(), opts).expect("start the embedded target")
}

fn read_json(p: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).expect("summary JSON")
}

fn steps_text(v: &serde_json::Value) -> String {
    v["capacity"]["steps"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    format!(
                        "{} {:.1}/s→{:.1}/s p99 {:.1}ms err {:.2}% {} {}",
                        s["phase"].as_str().unwrap_or_default(),
                        s["intended_rate"].as_f64().unwrap_or_default(),
                        s["achieved_rate"].as_f64().unwrap_or_default(),
                        s["p99_s"].as_f64().unwrap_or_default() * 1e3,
                        s["error_rate"].as_f64().unwrap_or_default() * 100.0,
                        s["verdict"].as_str().unwrap_or_default(),
                        s["reason"].as_str().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// K = 200 req/s, beyond it requests queue (up to 500 ms): the p99 SLO finds K within the
/// precision (10 %), through the documented command line; the JSON holds every step and
/// conforms to the schema; the text shows the table.
#[test]
fn find_max_finds_the_capacity_with_a_p99_slo() {
    let k = 200.0;
    let t = target_with(Options {
        capacity: Some(k),
        queue: Duration::from_millis(500),
        ..Default::default()
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("capacity.json");
    let html = dir.path().join("capacity.html");
    let url = format!("http://{}/", t.addr);
    let began = Instant::now();
    let o = support::stampede(&[
        "find-max",
        &url,
        "--threshold",
        "p99[1s] < 100ms",
        "--start-rate",
        "100",
        "--max-rate",
        "1000",
        "--step-duration",
        "2s",
        "--precision",
        "10%",
        "--summary-json",
        json.to_str().expect("utf-8 path"),
        "--report",
        html.to_str().expect("utf-8 path"),
        "--no-metrics",
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let v = read_json(&json);
    let steps = steps_text(&v);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    let max = v["capacity"]["max_rate"].as_f64().expect("max_rate");
    let precision = v["capacity"]["precision"].as_f64().expect("precision");
    assert!(
        (max - k).abs() <= precision.max(0.1 * k),
        "max {max} vs K {k} (precision {precision}):\n{steps}"
    );
    assert_eq!(v["capacity"]["stopped_by"], "precision", "{steps}");
    let first_fail = v["capacity"]["first_failing_rate"]
        .as_f64()
        .expect("a failing rate");
    assert!(
        first_fail > max && first_fail - max <= precision + 1e-9,
        "{steps}"
    );
    let all = v["capacity"]["steps"].as_array().expect("steps");
    assert!(all.len() >= 4, "{steps}");
    // The ramp doubles from 100/s; every failing step failed on the SLO, not the generator.
    assert_eq!(all[0]["intended_rate"], 100.0);
    assert_eq!(all[0]["phase"], "ramp");
    assert!(all.iter().any(|s| s["phase"] == "search"), "{steps}");
    for s in all {
        // A generator's shortfall (a starved shared machine) is retried, never the verdict.
        assert!(
            s["verdict"] != "generator" || s["rechecked"] == true,
            "{steps}"
        );
        if s["verdict"] == "pass" {
            let (i, a) = (
                s["intended_rate"].as_f64().unwrap_or_default(),
                s["achieved_rate"].as_f64().unwrap_or_default(),
            );
            assert!(a >= 0.98 * i, "{steps}");
        }
    }
    support::schema::assert_summary_conforms(&v);
    assert!(
        stdout.contains("capacity search (SLO: p99[1s] < 100ms)"),
        "{stdout}"
    );
    assert!(stdout.contains("max sustainable rate"), "{stdout}");
    let page = std::fs::read_to_string(&html).expect("HTML report");
    assert!(
        page.contains("<section id=\"capacity\">"),
        "no capacity section"
    );
    assert!(
        page.contains(&format!("{max:.1}/s</b>")),
        "no max rate in the report"
    );
    assert!(
        began.elapsed() < Duration::from_secs(60),
        "{:?}",
        began.elapsed()
    );
}

/// Issue 22: K = 150 req/s with a 500 ms queue, 2 s steps and `p99 < 400ms`. The queue does
/// not push the p99 past the SLO within a 2 s step at 175/s, so counting every completion of
/// the step (those in the wait after it too) against its nominal length reported 175/s as
/// sustainable (as 350/s against 300/s in the issue; half the rate here, for a shared CI
/// machine's generator). Counted inside the step's window, the target achieves its capacity, not the
/// rate sent: the search finds K within 5 %, and names the shortfall as the target's.
#[test]
fn find_max_at_2s_steps_finds_a_queueing_targets_capacity_within_5_percent() {
    let k = 150.0;
    let t = target_with(Options {
        capacity: Some(k),
        queue: Duration::from_millis(500),
        ..Default::default()
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("queue.json");
    let began = Instant::now();
    let o = support::stampede(&[
        "find-max",
        &format!("http://{}/", t.addr),
        "--threshold",
        "p99 < 400ms",
        "--start-rate",
        "50",
        "--step-duration",
        "2s",
        "--summary-json",
        json.to_str().expect("utf-8 path"),
        "--no-metrics",
    ]);
    let took = began.elapsed();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    let v = read_json(&json);
    let steps = steps_text(&v);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    let max = v["capacity"]["max_rate"].as_f64().expect("max_rate");
    assert!(
        (0.95 * k..=1.05 * k).contains(&max),
        "max {max} vs K {k}:\n{steps}"
    );
    let all = v["capacity"]["steps"].as_array().expect("steps");
    let num = |s: &serde_json::Value, k: &str| s[k].as_f64().unwrap_or(f64::NAN);
    for s in all {
        // A generator's shortfall (a starved shared machine) is retried, never the verdict.
        assert!(
            s["verdict"] != "generator" || s["rechecked"] == true,
            "{steps}"
        );
        assert_eq!(num(s, "window_s"), 2.0, "{steps}");
        if s["verdict"] == "pass" {
            assert!(
                num(s, "sent_rate") >= 0.98 * num(s, "intended_rate"),
                "{steps}"
            );
        }
        if num(s, "error_rate") == 0.0 {
            // Only successes: nothing completed inside the window beyond what K allows.
            assert!(num(s, "achieved_rate") <= 1.05 * k, "{steps}");
        }
    }
    // Steps the old count passed (175/s: no 503s, p99 under 400 ms) fail on the target's side
    // without crossing the SLO: it achieved at most K (less when its own thread is starved of
    // CPU), or its queue grew across the step (at K itself, jitter loses turns for good).
    let target_side: Vec<_> = all
        .iter()
        .filter(|s| {
            s["reason"].as_str().is_some_and(|r| {
                r.starts_with("target did not keep up: achieved ")
                    || r.starts_with("unsustainable trend: ")
            })
        })
        .collect();
    assert!(!target_side.is_empty(), "{steps}");
    for s in &target_side {
        assert_eq!(s["verdict"], "fail", "{steps}");
        assert!(num(s, "intended_rate") >= 0.95 * k, "{steps}");
        // Sent on time: what fell short was the target's.
        assert!(
            num(s, "sent_rate") >= 0.98 * num(s, "intended_rate"),
            "{steps}"
        );
        if s["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("target did not keep up"))
        {
            let a = num(s, "achieved_rate");
            assert!(
                a <= 1.05 * k && a < 0.98 * num(s, "intended_rate"),
                "achieved {a}:\n{steps}"
            );
        }
    }
    let said = stderr.contains("target did not keep up: achieved")
        || stderr.contains("unsustainable trend: ");
    assert!(said, "{stderr}");
    // The summary (the step at the maximum) holds its window's counts.
    let w = &v["scenarios"][0]["window"];
    assert_eq!(w["window_s"], 2.0, "{w}");
    let started = w["started"].as_f64().unwrap_or_default();
    assert!((started - 2.0 * max).abs() <= 0.02 * 2.0 * max + 1.0, "{w}");
    support::schema::assert_summary_conforms(&v);
    assert!(took < Duration::from_secs(60), "{took:?}");
}

/// Issue 22: a target whose latency climbs steadily through the first step (0 to 80 ms over its
/// 400 requests: 8 s at 50/s) while it serves every request: the SLO (`p99 < 200ms`) holds and
/// the rate is achieved (the rise costs 1 % of the window), but the queue-like rise fails the
/// step ("unsustainable trend") and it is re-checked. Counted as before, the step passed.
#[test]
fn a_latency_rising_steadily_across_a_step_fails_it() {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    let t = support::target();
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("trend.json");
    let (counters, done) = (
        t.counters.clone(),
        std::sync::Arc::new(AtomicBool::new(false)),
    );
    let stop = done.clone();
    // Every response is held until now + the latency of its place in the step.
    let climb = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stop.load(Relaxed) && Instant::now() < deadline {
            let n = counters.requests.load(Relaxed);
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            counters
                .stalled_until_ms
                .store(now_ms + (n % 400) / 5, Relaxed);
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let began = Instant::now();
    let o = support::stampede(&[
        "find-max",
        &format!("http://{}/", t.addr),
        "--threshold",
        "p99 < 200ms",
        "--vus",
        "50",
        "--start-rate",
        "50",
        "--max-rate",
        "50",
        "--step-duration",
        "8s",
        "--summary-json",
        json.to_str().expect("utf-8 path"),
        "--no-metrics",
    ]);
    let took = began.elapsed();
    done.store(true, Relaxed);
    climb.join().expect("the climbing thread");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    let v = read_json(&json);
    let steps = steps_text(&v);
    // Exit 3 (no rate met the SLO) when the re-check trended too, 0 when it passed.
    assert!(matches!(o.status.code(), Some(0 | 3)), "{stdout}\n{stderr}");
    let first = &v["capacity"]["steps"][0];
    assert_eq!(first["verdict"], "fail", "{steps}\n{stderr}");
    assert!(
        first["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("unsustainable trend: p99 rose quarter by quarter")),
        "{steps}"
    );
    assert_eq!(first["rechecked"], true, "{steps}");
    assert_eq!(v["capacity"]["steps"][1]["phase"], "recheck", "{steps}");
    // Neither the SLO nor the rates gave it away.
    let num = |k: &str| first[k].as_f64().unwrap_or(f64::NAN);
    assert!(num("p99_s") < 0.2, "{steps}");
    assert!(
        num("sent_rate") >= 49.0 && num("achieved_rate") >= 49.0,
        "{steps}"
    );
    assert!(stderr.contains("unsustainable trend: p99 rose"), "{stderr}");
    assert!(took < Duration::from_secs(60), "{took:?}");
}

/// Issue 21 item 14: a flapping target, slow for half a second once (every response held
/// until 500 ms after the target's 150th request, mid-way through the ramp's second step). That
/// first failure is re-checked at once, the re-check passes and the ramp goes on to
/// --max-rate; the result says which step was re-checked.
#[test]
fn a_flapping_targets_transient_failure_is_rechecked_and_does_not_end_the_ramp() {
    use std::sync::atomic::Ordering::Relaxed;
    let t = support::target();
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("flap.json");
    let counters = t.counters.clone();
    // Steps of 2 s from 50/s: the first sends 100 requests, the second (100/s) 200 more.
    let flap = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while counters.requests.load(Relaxed) < 150 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        counters.stalled_until_ms.store(now_ms + 500, Relaxed);
    });
    let began = Instant::now();
    let o = support::stampede(&[
        "find-max",
        &format!("http://{}/", t.addr),
        "--threshold",
        "p99 < 200ms",
        "--vus",
        "100",
        "--start-rate",
        "50",
        "--max-rate",
        "200",
        "--step-duration",
        "2s",
        "--summary-json",
        json.to_str().expect("utf-8 path"),
        "--no-metrics",
    ]);
    let took = began.elapsed();
    flap.join().expect("the flapping thread");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    let v = read_json(&json);
    let steps = steps_text(&v);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(v["capacity"]["stopped_by"], "max_rate", "{steps}");
    assert_eq!(v["capacity"]["max_rate"], 200.0, "{steps}");
    assert!(v["capacity"]["first_failing_rate"].is_null(), "{steps}");
    let all = v["capacity"]["steps"].as_array().expect("steps");
    let failed: Vec<usize> = (0..all.len())
        .filter(|&i| all[i]["verdict"] == "fail")
        .collect();
    assert_eq!(failed.len(), 1, "one transient:\n{steps}");
    let i = failed[0];
    assert_eq!(all[i]["rechecked"], true, "{steps}");
    // The second step (100/s), or the first's retry when a starved generator fell short.
    let rate = all[i]["intended_rate"].as_f64().unwrap_or_default();
    assert!(rate == 100.0 || rate == 50.0, "{steps}");
    assert!(
        all[i]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("crossed p99 < 200ms")),
        "{steps}"
    );
    // The re-check decides (after a retry of its own, when a starved generator fell short).
    let mut j = i + 1;
    while all.get(j).is_some_and(|s| s["verdict"] == "generator") {
        assert_eq!(all[j]["rechecked"], true, "{steps}");
        assert_eq!(all[j]["intended_rate"], rate, "{steps}");
        j += 1;
    }
    let again = all.get(j).expect("the re-check");
    assert_eq!(again["phase"], "recheck", "{steps}");
    assert_eq!(again["intended_rate"], rate, "{steps}");
    assert_eq!(again["verdict"], "pass", "{steps}");
    assert_eq!(again["rechecked"], false, "{steps}");
    // The ramp went on doubling after it: 50, 100 and 200 passed in the end.
    let passed: Vec<f64> = all
        .iter()
        .filter(|s| s["verdict"] == "pass")
        .filter_map(|s| s["intended_rate"].as_f64())
        .collect();
    assert_eq!(passed, vec![50.0, 100.0, 200.0], "{steps}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("    re-checked: ") && l.contains(&format!("{rate:.1}/s"))),
        "{stdout}"
    );
    assert!(stdout.contains("re-checked in the next step"), "{stdout}");
    support::schema::assert_summary_conforms(&v);
    assert!(took < Duration::from_secs(60), "{took:?}");
}

/// K = 500 req/s, beyond it 503 at once (past a 100 ms queue, which absorbs a stalled moment): the error-rate SLO finds K within the
/// precision, through `executor = "capacity-search"` and `[capacity]` in a file run by `run`.
#[test]
fn a_capacity_search_executor_finds_the_capacity_with_an_error_rate_slo() {
    let k = 500.0;
    let t = target_with(Options {
        capacity: Some(k),
        queue: Duration::from_millis(100),
        ..Default::default()
    });
    let (dir, file) = support::write_config(
        "search.toml",
        &format!(
            r#"
            thresholds = ["error_rate < 1%"]
            [capacity]
            start_rate = 125
            max_rate = 2000
            growth = 2
            step_duration = "2s"
            precision = "10%"
            max_duration = "2m"
            [metrics]
            enabled = false
            [[scenarios]]
            executor = "capacity-search"
            vus = 100
            requests = [{{ url = "http://{}/" }}]
            "#,
            t.addr
        ),
    );
    let json = dir.path().join("s.json");
    let o = support::stampede(&[
        "run",
        file.to_str().expect("utf-8"),
        "--summary-json",
        json.to_str().expect("utf-8"),
    ]);
    let v = read_json(&json);
    let steps = steps_text(&v);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let max = v["capacity"]["max_rate"].as_f64().expect("max_rate");
    assert!((max - k).abs() <= 0.1 * k, "max {max} vs K {k}:\n{steps}");
    // Beyond K the target refused: the failing steps crossed the error rate; at K itself
    // (its turns lost to jitter) a step may instead fall short of the rate or queue up, the
    // target's failures too, never below K.
    let fails: Vec<_> = v["capacity"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["verdict"] == "fail")
        .collect();
    assert!(
        fails.iter().any(|s| s["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("error_rate < 1%")),
        "{steps}"
    );
    for s in fails {
        let reason = s["reason"].as_str().unwrap_or_default();
        if reason.contains("error_rate < 1%") {
            assert!(
                s["error_rate"].as_f64().unwrap_or_default() >= 0.01,
                "{steps}"
            );
        } else {
            assert!(
                reason.starts_with("target did not keep up")
                    || reason.starts_with("unsustainable trend"),
                "{steps}"
            );
            assert!(
                s["intended_rate"].as_f64().unwrap_or_default() >= 0.95 * k,
                "{steps}"
            );
        }
    }
    support::schema::assert_summary_conforms(&v);
}

/// Too few pre-allocated VUs (2, against 20 ms responses: at most ~100 iterations/s): the
/// search stops on the generator and says so, claiming no maximum (exit 1).
#[test]
fn a_saturated_generator_is_not_reported_as_the_targets_maximum() {
    let t = support::target();
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("gen.json");
    let o = support::stampede(&[
        "find-max",
        "--url",
        &format!("http://{}/delay/20", t.addr),
        "--vus",
        "2",
        "--threshold",
        "p99 < 1s",
        "--start-rate",
        "30",
        "--growth",
        "4",
        "--step-duration",
        "2s",
        "--summary-json",
        json.to_str().expect("utf-8"),
        "--no-metrics",
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let v = read_json(&json);
    let steps = steps_text(&v);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{steps}");
    assert_eq!(v["capacity"]["stopped_by"], "generator", "{steps}");
    assert!(v["capacity"]["max_rate"].is_null(), "{steps}");
    let all = v["capacity"]["steps"].as_array().expect("steps");
    assert_eq!(all[0]["verdict"], "pass", "{steps}");
    // 120/s twice (the retry), both short of the rate with iterations dropped for want of VUs.
    let last = all.last().expect("a step");
    assert_eq!(last["intended_rate"], 120.0, "{steps}");
    assert_eq!(last["verdict"], "generator", "{steps}");
    assert!(
        last["dropped_iterations"].as_u64().unwrap_or_default() > 0,
        "{steps}"
    );
    assert!(
        last["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("no free VU"),
        "{steps}"
    );
    assert!(stdout.contains("generator could not keep up"), "{stdout}");
    assert!(stdout.contains("at least 30.0/s"), "{stdout}");
}

/// The target slows down for 60 ms at 5 s (300 ms added): `p99[5s]` crosses in the window that
/// holds those requests, within 2 s of the degradation, while the whole run's p99 passes.
#[test]
fn a_windowed_p99_trips_when_the_target_degrades_while_the_whole_run_passes() {
    let t = target_with(Options {
        degrade_after: Some(Duration::from_secs(5)),
        degrade_for: Some(Duration::from_millis(60)),
        degrade_latency: Duration::from_millis(300),
        ..Default::default()
    });
    let s = support::run_toml(
        &format!(
            r#"
            thresholds = ["p99 < 100ms", "p99[5s] < 100ms"]
            [metrics]
            enabled = false
            [[scenarios]]
            rate = 100
            duration = "10s"
            vus = 50
            requests = [{{ url = "http://{}/" }}]
            "#,
            t.addr
        ),
        &Overrides::default(),
    );
    let rows: Vec<String> = s.thresholds.iter().map(|r| format!("{r:?}")).collect();
    let (whole, windowed) = (&s.thresholds[0], &s.thresholds[1]);
    assert!(whole.ok, "{rows:#?}");
    assert!(!windowed.ok, "{rows:#?}");
    assert_eq!(windowed.window_s, Some(5.0));
    let at = windowed.failed_at_s.expect("failed_at_s");
    assert!((5.0..=7.0).contains(&at), "{rows:#?}");
    assert!(windowed.actual.is_some_and(|a| a >= 0.3), "{rows:#?}");
    assert!(s.aborted.is_none());
    assert!(s.duration_s >= 9.5, "no abort: the run went to its end");
    assert_eq!(stampede::summary_exit_code(&s), 3);
}

/// The same degradation for good, with --abort-on-fail: the run stops within seconds of it
/// (exit 3), the summary says which threshold stopped it and when, and Prometheus still gets
/// the final flush: its totals equal the summary's.
#[test]
fn abort_on_fail_stops_the_run_and_the_final_flush_reaches_prometheus() {
    let prom = Prometheus::start();
    let t = target_with(Options {
        degrade_after: Some(Duration::from_secs(3)),
        degrade_latency: Duration::from_millis(300),
        ..Default::default()
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("abort.json");
    let run_id = format!("abort-{}", std::process::id());
    let began = Instant::now();
    let o = support::stampede(&[
        "run",
        "--url",
        &format!("http://{}/", t.addr),
        "--rate",
        "50",
        "--vus",
        "50",
        "--duration",
        "30s",
        "--threshold",
        "p99[2s] < 100ms",
        "--abort-on-fail",
        "--run-id",
        &run_id,
        "--remote-write-url",
        &prom.write_url(),
        "--remote-write-interval",
        "1s",
        "--summary-json",
        json.to_str().expect("utf-8"),
    ]);
    let took = began.elapsed();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(took < Duration::from_secs(15), "{took:?}\n{stdout}");
    let v = read_json(&json);
    assert_eq!(v["aborted"]["threshold"], "p99[2s] < 100ms", "{v:#}");
    let at = v["aborted"]["at_s"].as_f64().expect("at_s");
    assert!((3.0..=6.0).contains(&at), "{at}");
    assert!(v["aborted"]["actual"].as_f64().unwrap_or_default() >= 0.3);
    assert_eq!(v["thresholds"][0]["abort_on_fail"], true);
    assert_eq!(v["thresholds"][0]["ok"], false);
    assert!(v["duration_s"].as_f64().unwrap_or(99.0) < 10.0);
    assert!(stdout.contains("aborted at"), "{stdout}");
    support::schema::assert_summary_conforms(&v);
    let requests = v["requests"].as_u64().expect("requests");
    assert!(requests > 100, "{requests}");
    let expr =
        format!("sum(http_client_request_duration_seconds_count{{stampede_run_id=\"{run_id}\"}})");
    let got = prom
        .query_scalar_eventually(&expr, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no data for {expr}\n{}", prom.log()));
    assert_eq!(got as u64, requests, "Prometheus has the final flush");
    // The intended rate, as a gauge.
    let rate = prom
        .query_scalar_eventually(
            &format!("max(stampede_target_rate_per_second{{stampede_run_id=\"{run_id}\"}})"),
            Duration::from_secs(5),
        )
        .unwrap_or_else(|| panic!("no stampede_target_rate_per_second\n{}", prom.log()));
    assert_eq!(rate, 50.0);
}

/// A slow start (the first 2 s) does not abort a run whose threshold waits 4 s (`delay`);
/// without the delay, the same start aborts it.
#[test]
fn the_warm_up_delay_holds_abort_on_fail_back() {
    let run = |delay: &str| {
        let t = target_with(Options {
            degrade_after: Some(Duration::ZERO),
            degrade_for: Some(Duration::from_secs(2)),
            degrade_latency: Duration::from_millis(200),
            ..Default::default()
        });
        support::run_toml(
            &format!(
                r#"
                thresholds = [{{ threshold = "p99[1s] < 100ms", abort_on_fail = true, delay = "{delay}" }}]
                [metrics]
                enabled = false
                [[scenarios]]
                rate = 50
                duration = "6s"
                vus = 30
                requests = [{{ url = "http://{}/" }}]
                "#,
                t.addr
            ),
            &Overrides::default(),
        )
    };
    let s = run("4s");
    assert!(s.aborted.is_none(), "{:?}", s.aborted);
    assert!(s.thresholds[0].ok, "{:?}", s.thresholds[0]);
    assert!(s.duration_s >= 5.5);
    let s = run("0s");
    let a = s.aborted.expect("aborted without the delay");
    assert!(a.at_s <= 3.0, "{a:?}");
    assert!(!s.thresholds[0].ok);
}

/// Bad search settings are usage errors naming the key, before any load is sent.
#[test]
fn bad_search_settings_exit_2_naming_the_key() {
    let t = support::target();
    let url = format!("http://{}/", t.addr);
    for (args, needle) in [
        (vec!["--precision", "0%"], "capacity.precision"),
        (vec!["--growth", "1"], "capacity.growth"),
        (
            vec!["--max-rate", "5", "--start-rate", "10"],
            "capacity.max_rate",
        ),
        (vec!["--step-duration", "100ms"], "capacity.step_duration"),
    ] {
        let mut all = vec!["find-max", url.as_str(), "--threshold", "p99 < 1s"];
        all.extend(args.iter().copied());
        let o = support::stampede(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let o = support::stampede(&["find-max", &url]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("at least one threshold"), "{err}");
    let o = support::stampede(&["run", &url, "--threshold", "p99[30x] < 1s"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown window unit"), "{err}");
    assert_eq!(
        t.counters
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "nothing was sent"
    );
}

/// Starts segment `index` of `count` of `stampede find-max` with `args`; the coordinator listens
/// on `port` (loopback). Summaries go to `dir/summary-I.json` (the search's, on the
/// coordinator) and `dir/segment-I.json` (each segment's last step).
fn find_max_segment(
    dir: &std::path::Path,
    port: u16,
    index: u32,
    count: u32,
    args: &[&str],
) -> std::process::Child {
    let coord = format!("127.0.0.1:{port}");
    std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("STAMPEDE_SEGMENT_INDEX")
        .env_remove("STAMPEDE_COORDINATOR")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .arg("find-max")
        .args(args)
        .args(["--segment-count", &count.to_string()])
        .args(["--segment-index", &index.to_string()])
        .args(["--coordinator", &coord, "--coordinator-listen", &coord])
        .args(["--coordinator-timeout", "30s"])
        .arg("--summary-json")
        .arg(dir.join(format!("summary-{index}.json")))
        .arg("--segment-summary-json")
        .arg(dir.join(format!("segment-{index}.json")))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start stampede find-max")
}

/// The search over three execution segments: the rate is global (each segment runs a third
/// of every step, at a common start), each step is judged on the merge of the three summaries
/// (one segment alone would achieve a third of the rate: a "generator" verdict), and the
/// search finds K within the precision. Every request the target served is in one step's
/// merged count; the other segments end when the coordinator says the search is over.
#[test]
fn find_max_over_three_segments_finds_the_global_capacity() {
    let k = 300.0;
    let t = target_with(Options {
        capacity: Some(k),
        queue: Duration::from_millis(500),
        ..Default::default()
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("http://{}/", t.addr);
    let args = [
        url.as_str(),
        "--threshold",
        "p99[1s] < 100ms",
        "--start-rate",
        "120",
        "--max-rate",
        "1200",
        "--step-duration",
        "2s",
        "--precision",
        "10%",
        "--no-metrics",
    ];
    let port = support::free_port();
    let began = Instant::now();
    let children: Vec<_> = (0..3)
        .map(|i| find_max_segment(dir.path(), port, i, 3, &args))
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    let v = read_json(&dir.path().join("summary-0.json"));
    let steps = steps_text(&v);
    assert_eq!(
        outs[0].status.code(),
        Some(0),
        "{}\n{steps}",
        text(&outs[0])
    );
    for o in &outs[1..] {
        assert_eq!(o.status.code(), Some(0), "{}", text(o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("the search is over (precision)"),
            "{}",
            text(o)
        );
    }
    let max = v["capacity"]["max_rate"].as_f64().expect("max_rate");
    let precision = v["capacity"]["precision"].as_f64().expect("precision");
    assert!(
        (max - k).abs() <= precision.max(0.1 * k),
        "max {max} vs K {k} (precision {precision}):\n{steps}"
    );
    let all = v["capacity"]["steps"].as_array().expect("steps");
    assert!(all.iter().any(|s| s["phase"] == "search"), "{steps}");
    let mut merged_requests = 0.0;
    for s in all {
        // A generator's shortfall (a starved shared machine) is retried, never the verdict.
        assert!(
            s["verdict"] != "generator" || s["rechecked"] == true,
            "{steps}"
        );
        let (i, a) = (
            s["intended_rate"].as_f64().unwrap_or_default(),
            s["achieved_rate"].as_f64().unwrap_or_default(),
        );
        if s["verdict"] == "pass" {
            assert!(
                a >= 0.98 * i,
                "the global rate, not a third of it:\n{steps}"
            );
        }
        merged_requests +=
            s["rps"].as_f64().unwrap_or_default() * s["duration_s"].as_f64().unwrap_or_default();
    }
    let served = t
        .counters
        .requests
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        merged_requests.round() as u64,
        served,
        "every request the target served is in one step's merged count:\n{steps}"
    );
    // The search's summary is the merge of the three segments' step at the maximum.
    assert_eq!(v["distributed"]["segments"], 3, "{v}");
    assert_eq!(v["distributed"]["merged"], serde_json::json!([0, 1, 2]));
    assert_eq!(v["thresholds"][0]["window_s"], 1.0);
    support::schema::assert_summary_conforms(&v);
    // Each segment ran its third of the last step.
    let last: f64 = all
        .last()
        .and_then(|s| s["intended_rate"].as_f64())
        .unwrap_or_default();
    let mut iterations = 0;
    for i in 0..3 {
        let seg = read_json(&dir.path().join(format!("segment-{i}.json")));
        assert_eq!(seg["segment"]["index"], i, "{seg}");
        iterations += seg["iterations"].as_u64().unwrap_or_default();
    }
    assert!(
        (iterations as f64 - last * 2.0).abs() <= 0.05 * last * 2.0,
        "the last step ({last}/s for 2 s) ran {iterations} iterations over the three segments"
    );
    assert!(
        began.elapsed() < Duration::from_secs(90),
        "{:?}",
        began.elapsed()
    );
}

/// A segment that dies during a step of a distributed search: the step cannot be judged (it
/// would be two thirds of the load), so the coordinator stops the search, names the segment
/// and exits 1; the surviving segment is told and exits non-zero too, within seconds.
#[test]
fn a_segment_lost_mid_search_stops_the_search_and_is_named() {
    let t = support::target();
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("http://{}/", t.addr);
    let args = [
        url.as_str(),
        "--threshold",
        "p99[1s] < 100ms",
        "--start-rate",
        "60",
        "--step-duration",
        "4s",
        "--no-metrics",
    ];
    let port = support::free_port();
    let began = Instant::now();
    let mut children: Vec<_> = (0..3)
        .map(|i| find_max_segment(dir.path(), port, i, 3, &args))
        .collect();
    // Into the first step (the barrier and the start take about a second).
    std::thread::sleep(Duration::from_millis(2500));
    children[2].kill().expect("kill segment 2");
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    let took = began.elapsed();
    let err0 = String::from_utf8_lossy(&outs[0].stderr);
    assert_eq!(outs[0].status.code(), Some(1), "{err0}");
    assert!(
        err0.contains("segment 2 sent no summary of step 0"),
        "{err0}"
    );
    let err1 = String::from_utf8_lossy(&outs[1].stderr);
    assert_eq!(outs[1].status.code(), Some(1), "{err1}");
    assert!(
        err1.contains("the coordinator stopped the search: segment 2 sent no summary"),
        "{err1}"
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
}
