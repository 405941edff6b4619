//! What a person sees: the live view in a real terminal (tmux), status lines in CI logs,
//! threshold values in their own units, colour only on a terminal, host:port of dead targets.

use std::time::Duration;

use crate::support::{self, stampede, tty::Tty};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Lines of the progress view (`[====>---] 01.5s/3s ...`).
fn progress_lines(screen: &str) -> Vec<&str> {
    screen.lines().filter(|l| l.contains("s/3s")).collect()
}

#[test]
fn the_live_view_fits_80_columns_shows_a_bar_and_leaves_no_trail() {
    let closed = support::free_port();
    // A dead target: every request fails fast, so the "nearly everything fails" warning is
    // logged while the progress line is on screen, and the latency threshold fails.
    let cmd = format!(
        "env -u NO_COLOR {} run --url http://127.0.0.1:{closed}/ --vus 2 --duration 3s --threshold 'p95 < 500ms'; echo STAMPEDE-EXIT=$?; sleep 120",
        env!("CARGO_BIN_EXE_stampede")
    );
    let t = Tty::start(80, 24, &cmd);
    let shots = t.watch(Duration::from_millis(150), Duration::from_secs(30), |s| {
        s.contains("STAMPEDE-EXIT=")
    });
    let last = shots.last().expect("a capture");
    assert!(last.contains("STAMPEDE-EXIT=3"), "exit 3 expected:\n{last}");
    let mut saw_bar = 0;
    for s in &shots {
        // -J joins wrapped lines: a line over 80 columns would show here as one long line.
        // (A long log line wraps as it must; it is printed above the live area, not in it.)
        for l in s.lines() {
            assert!(
                !(l.contains("WARN") && l.contains("s/3s")),
                "a log line glued onto the progress line: {l}"
            );
            if !l.contains(" WARN ") {
                assert!(
                    l.chars().count() <= 80,
                    "{} columns: {l}\n{s}",
                    l.chars().count()
                );
            }
        }
        let p = progress_lines(s);
        assert!(p.len() <= 1, "a trail of progress lines:\n{s}");
        if let Some(l) = p.first()
            && l.starts_with("[=")
            && l.contains("errors 100.00%")
        {
            saw_bar += 1;
        }
    }
    assert!(
        saw_bar >= 2,
        "the bar with elapsed/total should be on screen during the run; captures:\n{}",
        shots.join("\n-----\n")
    );
    // At the end the progress line is gone, the warning stayed above it on its own line,
    // and the summary follows.
    assert!(progress_lines(last).is_empty(), "{last}");
    let warn = last
        .lines()
        .find(|l| l.contains("nearly every request fails"))
        .unwrap_or_else(|| panic!("no warning:\n{last}"));
    assert!(
        warn.contains(&format!("connection_refused from 127.0.0.1:{closed}")),
        "{warn}"
    );
    assert!(
        last.contains("CROSSED p95 < 500ms  (no successful requests"),
        "{last}"
    );
    // On a terminal, crossed thresholds are red.
    let coloured = t.capture(true);
    let crossed = coloured
        .lines()
        .find(|l| l.contains("CROSSED"))
        .unwrap_or_else(|| panic!("{coloured}"));
    assert!(crossed.contains("\x1b[31m"), "not red: {crossed:?}");
}

#[test]
fn without_a_terminal_a_status_line_comes_every_interval_without_escape_codes() {
    let t = support::target();
    let url = format!("http://{}/", t.addr);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["run", "--url", &url, "--vus", "2", "--duration", "3s"])
        .args(["--status-interval", "1s", "--threshold", "p99 < 1us"])
        .env("STAMPEDE_LOG", "info")
        .env_remove("NO_COLOR")
        .output()
        .expect("run");
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(3), "{err}");
    let status: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with('[') && l.contains("s/3s] vus 2, ") && l.contains(" req/s, p99 "))
        .collect();
    assert!(
        status.len() >= 2,
        "status lines expected every second:\n{err}"
    );
    for b in [&out, &err] {
        assert!(!b.contains('\x1b'), "escape codes when piped:\n{b:?}");
    }
    // Piped, the summary fits the 120 columns assumed for a CI log.
    for l in out.lines() {
        assert!(l.chars().count() <= 120, "{l}");
    }
    assert!(out.contains("✗ CROSSED p99 < 1us  (actual "), "{out}");

    // --quiet and an interval of 0 turn them off.
    for extra in [
        &["--status-interval", "500ms", "--quiet"][..],
        &["--status-interval", "0"],
    ] {
        let mut args = vec!["run", "--url", &url, "--vus", "1", "--duration", "1500ms"];
        args.extend_from_slice(extra);
        let o = stampede(&args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{err}");
        assert!(!err.contains("] vus "), "{extra:?}: {err}");
    }
}

#[test]
fn threshold_values_print_in_the_thresholds_own_units() {
    let t = support::target();
    let url = format!("http://{}/", t.addr);
    let dir = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("s.json");
    let o = stampede(&[
        "run",
        "--url",
        &url,
        "--vus",
        "2",
        "--iterations",
        "50",
        "--quiet",
        "--threshold",
        "p95 < 500ms",
        "--threshold",
        "max < 10s",
        "--threshold",
        "error_rate < 5%",
        "--threshold",
        "dropped_iterations == 0",
        "--threshold",
        "requests == 50",
        "--threshold",
        "rps > 1",
        "--summary-json",
        json.to_str().expect("path"),
    ]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let actual = |th: &str| -> String {
        let l = out
            .lines()
            .find(|l| l.contains(&format!("✓ {th}  (actual ")))
            .unwrap_or_else(|| panic!("`{th}` not passed in:\n{out}"));
        l.rsplit_once("(actual ")
            .and_then(|(_, a)| a.strip_suffix(')'))
            .unwrap_or_default()
            .to_string()
    };
    // A millisecond threshold reads in ms (or µs when below 0.1 ms): never raw seconds.
    let p95 = actual("p95 < 500ms");
    let (num, unit) = p95.split_at(p95.find(|c: char| c.is_alphabetic()).unwrap_or(0));
    assert!(unit == "ms" || unit == "µs", "{p95}");
    assert!(num.parse::<f64>().is_ok_and(|n| n >= 0.1), "{p95}");
    let max = actual("max < 10s");
    assert!(max.ends_with('s') && !max.starts_with("0.000"), "{max}");
    assert_eq!(actual("error_rate < 5%"), "0%");
    assert_eq!(actual("dropped_iterations == 0"), "0");
    assert_eq!(actual("requests == 50"), "50");
    assert!(actual("rps > 1").ends_with(" req/s"), "{out}");
    assert!(!out.contains('\x1b'), "no colour when piped: {out:?}");
    // The JSON keeps raw numbers and says their unit.
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("json");
    assert_eq!(v["thresholds"][0]["unit"], "s");
    assert!(v["thresholds"][0]["actual"].as_f64().expect("actual") < 0.5);
    assert_eq!(v["thresholds"][2]["unit"], "ratio");
    assert_eq!(v["thresholds"][4]["actual"], 50.0);
    assert_eq!(v["thresholds"][4]["unit"], "count");
}

/// The per-name table of a run whose names are long, as a person sees it.
fn long_names_config() -> (
    stampede::target::Target,
    tempfile::TempDir,
    std::path::PathBuf,
) {
    let t = support::target();
    let (d, p) = support::write_config(
        "long-names.toml",
        &format!(
            r#"
            [[scenarios]]
            name = "api"
            executor = "shared-iterations"
            vus = 2
            iterations = 20
            requests = [
              {{ name = "/newsql/api/getTablesByAppId", url = "http://{a}/" }},
              {{ name = "/newsql/api/getColumnsByTableId", url = "http://{a}/" }},
            ]
            "#,
            a = t.addr
        ),
    );
    (t, d, p)
}

/// The table's heading line.
fn heading(out: &str) -> &str {
    out.lines()
        .find(|l| l.contains("reqs") && l.contains("fails"))
        .unwrap_or_else(|| panic!("no table in:\n{out}"))
}

/// Issue 22 (5): at 80 and 100 columns p50 stays and names are whole (on a line of their own
/// above their figures when they do not fit beside them); at 100 nothing is hidden.
#[test]
fn at_80_and_100_columns_the_table_keeps_p50_and_whole_names() {
    let (_t, _d, p) = long_names_config();
    for width in [80u16, 100] {
        let cmd = format!(
            "{} run {} --quiet; echo STAMPEDE-EXIT=$?; sleep 120",
            env!("CARGO_BIN_EXE_stampede"),
            p.display()
        );
        let t = Tty::start(width, 60, &cmd);
        let shots = t.watch(Duration::from_millis(200), Duration::from_secs(30), |s| {
            s.contains("STAMPEDE-EXIT=")
        });
        let last = shots.last().expect("a capture");
        assert!(last.contains("STAMPEDE-EXIT=0"), "{last}");
        for l in last.lines() {
            assert!(l.chars().count() <= width.into(), "{width}: {l}\n{last}");
        }
        let head = heading(last);
        for col in [" p50 ", " p95 ", " p99"] {
            assert!(head.contains(col), "{width}: no {col} in:\n{last}");
        }
        for name in [
            "/newsql/api/getTablesByAppId",
            "/newsql/api/getColumnsByTableId",
        ] {
            assert!(last.contains(&format!("  {name}")), "{width}:\n{last}");
        }
        assert!(!last.contains('…'), "{width}: a name was cut:\n{last}");
        if width == 100 {
            assert!(!last.contains("hidden to fit"), "{width}:\n{last}");
            assert!(head.contains(" p90 ") && head.contains(" min "), "{last}");
        } else {
            assert!(
                last.contains("hidden to fit 80 columns: method, min"),
                "{last}"
            );
            // Figures go last and p90 last of them (how many go depends on their widths).
            assert!(head.contains(" p90 "), "{last}");
        }
    }
}

/// Piped (a CI log: neither stdout nor stderr a terminal), the summary assumes at least 120
/// columns, whatever a narrower `COLUMNS` says: every column, each name beside its figures.
#[test]
fn piped_the_table_assumes_at_least_120_columns() {
    let (_t, _d, p) = long_names_config();
    for columns in [None, Some("80")] {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"));
        c.arg("run").arg(&p).arg("--quiet");
        match columns {
            Some(n) => c.env("COLUMNS", n),
            None => c.env_remove("COLUMNS"),
        };
        let o = c.output().expect("run");
        let out = text(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let head = heading(&out);
        for col in COLUMNS {
            assert!(head.contains(col), "{columns:?}: no {col} in:\n{out}");
        }
        assert!(!out.contains("hidden to fit"), "{out}");
        let row = out
            .lines()
            .find(|l| l.contains("/newsql/api/getTablesByAppId"))
            .unwrap_or_else(|| panic!("{out}"));
        assert!(row.contains(" GET ") && row.ends_with("ms"), "{row}");
        for l in out.lines() {
            assert!(l.chars().count() <= 120, "{l}");
        }
    }
}

/// The table's columns, as its heading names them.
const COLUMNS: [&str; 12] = [
    "name", "method", "reqs", "fails", "req/s", "min", "mean", "p50", "p90", "p95", "p99", "max",
];

#[test]
fn a_dead_target_fails_latency_thresholds_and_is_named_by_host_and_port() {
    let closed = support::free_port();
    let dir = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("s.json");
    let o = stampede(&[
        "run",
        "--url",
        &format!("http://127.0.0.1:{closed}/"),
        "--vus",
        "2",
        "--duration",
        "2s",
        "--quiet",
        "--threshold",
        "p95 < 500ms",
        "--threshold",
        "error_rate < 5%",
        "--summary-json",
        json.to_str().expect("path"),
    ]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(3), "{err}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("json");
    let reqs = v["requests"].as_u64().expect("requests");
    assert!(reqs >= 20, "{v}");
    assert_eq!(v["failures"].as_u64(), Some(reqs));
    // Failed connects are not fast responses: the latency threshold has nothing to judge.
    assert!(
        out.contains(&format!(
            "✗ CROSSED p95 < 500ms  (no successful requests, {reqs} failed)"
        )),
        "{out}"
    );
    assert!(
        out.contains("✗ CROSSED error_rate < 5%  (actual 100.00%)"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "errors: connection_refused: {reqs} (127.0.0.1:{closed})"
        )),
        "{out}"
    );
    assert_eq!(v["thresholds"][0]["actual"], serde_json::Value::Null);
    assert_eq!(v["thresholds"][0]["ok"], false);
    assert!(
        v["thresholds"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("no successful requests")),
        "{v}"
    );
    assert_eq!(
        v["errors_by_target"],
        serde_json::json!([{ "error": "connection_refused", "target": format!("127.0.0.1:{closed}"), "count": reqs }])
    );
    // Every request's latency is still in the JSON, failures included.
    assert!(
        v["latency_all_s"]["max"].as_f64().is_some_and(|m| m > 0.0),
        "{v}"
    );
    // Warned during the run, once, naming the error and the target; no escape codes in logs.
    let warns: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("nearly every request fails"))
        .collect();
    assert_eq!(warns.len(), 1, "{err}");
    assert!(
        warns[0].contains(&format!(
            "mostly connection_refused from 127.0.0.1:{closed}"
        )),
        "{err}"
    );
    assert!(!err.contains('\x1b'), "escape codes in piped logs: {err:?}");
}
