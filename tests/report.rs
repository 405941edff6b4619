//! Issue 13: the run's timeline in the summary JSON, CI outputs (JUnit, Markdown) and run
//! comparison, through the binary against the embedded target.

use crate::support::{self, stampede, write_config};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn read_json(p: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("summary file")).expect("summary json")
}

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// An interval's latency histogram: base64 of HdrHistogram's V2 (deflate) encoding.
fn hist(v: &serde_json::Value) -> hdrhistogram::Histogram<u64> {
    use base64::Engine as _;
    use hdrhistogram::serialization::Deserializer;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("histogram string"))
        .expect("base64");
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .expect("HdrHistogram V2")
}

/// The timeline's name of an interval entry.
fn name_of<'a>(tl: &'a serde_json::Value, n: &serde_json::Value) -> &'a str {
    tl["names"][u(&n["n"]) as usize]["name"]
        .as_str()
        .expect("name")
}

#[test]
fn the_timeline_sums_to_the_totals_and_shows_a_stall_in_its_interval() {
    let t = support::target();
    let (_d, p) = write_config(
        "timeline.toml",
        &format!(
            r#"
            [[scenarios]]
            name = "steady"
            vus = 2
            duration = "3s"
            requests = [{{ url = "http://{a}/", checks = {{ status = 200 }} }}, {{ url = "http://{a}/status/503" }}]
            [[scenarios]]
            name = "stall"
            executor = "shared-iterations"
            vus = 1
            iterations = 1
            requests = [{{ name = "stall", url = "http://{a}/delay/1300" }}]
            "#,
            a = t.addr
        ),
    );
    let dir = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("s.json");
    let o = stampede(&[
        "run",
        p.to_str().expect("p"),
        "--quiet",
        "--timeline-interval",
        "1s",
        "--summary-json",
        json.to_str().expect("j"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = read_json(&json);
    let tl = &v["timeline"];
    assert_eq!(tl["interval_s"].as_f64(), Some(1.0), "{tl:#}");
    let intervals = tl["intervals"].as_array().expect("intervals");
    assert!((3..=5).contains(&intervals.len()), "{}", intervals.len());
    // Per name and in total, the intervals add up to the summary exactly: requests,
    // failures, histogram counts, error types, statuses, bytes, checks.
    let mut total = 0;
    for row in v["by_name"].as_array().expect("by_name") {
        let name = row["name"].as_str().expect("name");
        let mut reqs = 0;
        let mut fails = 0;
        let mut hist = 0;
        let mut bytes = 0;
        let mut s503 = 0;
        for iv in intervals {
            for n in iv["by_name"].as_array().expect("by_name") {
                if name_of(tl, n) == name {
                    reqs += u(&n["requests"]);
                    // Zero counters are left out.
                    fails += n["failures"].as_u64().unwrap_or(0);
                    bytes += n["bytes_in"].as_u64().unwrap_or(0);
                    s503 += n["statuses"]["503"].as_u64().unwrap_or(0);
                    hist += self::hist(&n["histogram"]).len();
                }
            }
        }
        assert!(u(&row["requests"]) > 0, "{name}");
        assert_eq!(reqs, u(&row["requests"]), "{name}");
        assert_eq!(hist, reqs, "{name}: histogram counts");
        assert_eq!(fails, u(&row["failures"]), "{name}");
        if name.ends_with('/') {
            assert!(bytes > 0, "{name}: response bytes");
        }
        assert_eq!(
            s503,
            row["status_codes"]["503"].as_u64().unwrap_or(0),
            "{name}"
        );
        total += reqs;
    }
    assert_eq!(total, u(&v["requests"]));
    let err503: u64 = intervals
        .iter()
        .flat_map(|iv| iv["by_name"].as_array().expect("by_name"))
        .map(|n| n["errors"]["503"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(err503, u(&v["errors"]["503"]));
    let passes: u64 = intervals
        .iter()
        .flat_map(|iv| iv["checks"].as_array().expect("checks"))
        .map(|c| u(&c["passes"]))
        .sum();
    assert_eq!(passes, u(&v["checks"][0]["passes"]));
    let iterations: u64 = intervals
        .iter()
        .flat_map(|iv| iv["scenarios"].as_array().expect("scenarios"))
        .map(|s| u(&s["iterations"]))
        .sum();
    assert_eq!(iterations, u(&v["iterations"]));
    // The 1.3 s stall finished in [1 s, 2 s): the spike is there and nowhere else.
    let stall: Vec<(f64, f64)> = intervals
        .iter()
        .flat_map(|iv| {
            iv["by_name"]
                .as_array()
                .expect("by_name")
                .iter()
                .filter(|n| name_of(tl, n) == "stall")
                .map(|n| {
                    (
                        iv["t_s"].as_f64().expect("t"),
                        self::hist(&n["histogram"]).value_at_quantile(0.99) as f64 / 1e6,
                    )
                })
        })
        .collect();
    assert_eq!(stall.len(), 1, "{stall:?}");
    assert_eq!(stall[0].0, 1.0, "{stall:?}");
    assert!((1.3..1.5).contains(&stall[0].1), "{stall:?}");
    for iv in intervals {
        for n in iv["by_name"].as_array().expect("by_name") {
            if name_of(tl, n) != "stall" {
                let max = self::hist(&n["histogram"]).max() as f64 / 1e6;
                assert!(max < 0.5, "{}: {max}", name_of(tl, n));
            }
        }
    }
    // VUs were sampled: three at the start (2 steady + 1 stall), two later.
    assert_eq!(u(&intervals[0]["vus"]), 3, "{:#}", intervals[0]);
    assert_eq!(u(&intervals[2]["vus"]), 2, "{:#}", intervals[2]);
    // Requests in flight were sampled too: the stall held one for 1.3 s, beside the steady
    // VUs' (at most one request each).
    let active: Vec<u64> = intervals.iter().map(|i| u(&i["active_requests"])).collect();
    assert!(
        active[0] >= 1 && active.iter().all(|a| *a <= 3),
        "{active:?}"
    );
    // The run's metadata.
    let meta = &v["meta"];
    assert_eq!(meta["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(u(&v["generators"]), 1);
    for k in ["started_at", "ended_at"] {
        let t = meta[k].as_str().expect(k);
        assert!(
            t.len() == 24 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
            "{k}: {t}"
        );
    }
    assert!(meta["started_at"].as_str() < meta["ended_at"].as_str());
    assert_eq!(meta["command_line"][1], "run", "{meta:#}");
    assert_eq!(meta["config"]["scenarios"][1]["name"], "stall", "{meta:#}");
}

#[test]
fn secrets_never_reach_the_summary_json_nor_the_report() {
    let t = support::target();
    let a = t.addr;
    let (_d, p) = write_config(
        "secrets.toml",
        &format!(
            r#"
            thresholds = ["p99 < 10s"]
            [defaults.headers]
            X-Api-Key = "key-s3cret-1"
            [[scenarios]]
            name = "login"
            executor = "shared-iterations"
            vus = 1
            iterations = 2
            variables = {{ token = "var-s3cret-2" }}
            requests = [
              {{ method = "POST", url = "http://{a}/user/login", json = {{ username = "admin", password = "json-s3cret-3" }} }},
              {{ url = "http://basic:url-s3cret-4@{a}/", headers = {{ Authorization = "Bearer hdr-s3cret-5" }} }},
              {{ method = "POST", url = "http://{a}/echo", body = "user=a&password=form-s3cret-6" }},
            ]
            "#
        ),
    );
    let dir = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("s.json");
    let html = dir.path().join("r.html");
    let o = stampede(&[
        "run",
        p.to_str().expect("p"),
        "--quiet",
        "-H",
        "Authorization: Bearer flag-s3cret-7",
        "--header=Cookie: session=flag-s3cret-8",
        "--remote-write-url",
        &format!("http://rw:rw-s3cret-9@{a}/api/v1/write?token=q-s3cret-10"),
        "--summary-json",
        json.to_str().expect("j"),
        "--report",
        html.to_str().expect("h"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&json).expect("summary");
    let page = std::fs::read_to_string(&html).expect("report");
    for (what, doc) in [("summary JSON", &text), ("HTML report", &page)] {
        assert!(!doc.contains("s3cret"), "a secret in the {what}");
        assert!(
            doc.contains("&lt;redacted&gt;") || doc.contains("<redacted>"),
            "{what}"
        );
    }
    // What is not secret stays: the header names, the hosts, the request names.
    let v = read_json(&json);
    let cmd: Vec<&str> = v["meta"]["command_line"]
        .as_array()
        .expect("command line")
        .iter()
        .map(|a| a.as_str().expect("arg"))
        .collect();
    assert!(cmd.contains(&"Authorization: <redacted>"), "{cmd:?}");
    assert!(cmd.contains(&"--header=Cookie: <redacted>"), "{cmd:?}");
    let cfg = &v["meta"]["config"];
    assert_eq!(
        cfg["scenarios"][0]["requests"][1]["url"],
        format!("http://{a}/")
    );
    assert_eq!(
        cfg["scenarios"][0]["requests"][0]["json"]["username"],
        "admin"
    );
    assert!(page.contains("X-Api-Key"), "header names stay");
}

fn xmllint() -> std::path::PathBuf {
    let p = std::path::PathBuf::from("/usr/bin/xmllint");
    assert!(
        p.exists(),
        "xmllint not found: install it with `apt-get install -y libxml2-utils`"
    );
    p
}

#[test]
fn junit_and_markdown_outputs_carry_thresholds_and_checks() {
    let t = support::target();
    let (_d, p) = write_config(
        "ci.toml",
        &format!(
            r#"
            thresholds = ["p99 < 10s", "error_rate < 0.01"]
            [[scenarios]]
            name = "ci"
            executor = "shared-iterations"
            vus = 2
            iterations = 40
            requests = [{{ url = "http://{a}/", checks = {{ status = 200 }} }}, {{ url = "http://{a}/status/500", checks = {{ status = 200 }} }}]
            "#,
            a = t.addr
        ),
    );
    let dir = tempfile::tempdir().expect("tmp");
    let junit = dir.path().join("junit.xml");
    let md = dir.path().join("summary.md");
    let step = dir.path().join("step.md");
    std::fs::write(&step, "earlier step\n").expect("step file");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args([
            "run",
            p.to_str().expect("p"),
            "--quiet",
            "--junit",
            junit.to_str().expect("j"),
            "--summary-markdown",
            md.to_str().expect("m"),
        ])
        .env("GITHUB_STEP_SUMMARY", &step)
        .output()
        .expect("run stampede");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let xml = std::fs::read_to_string(&junit).expect("junit file");
    let v = std::process::Command::new(xmllint())
        .args(["--noout", "--schema"])
        .arg(support::root().join("tests/fixtures/junit.xsd"))
        .arg(&junit)
        .output()
        .expect("run xmllint");
    assert!(
        v.status.success(),
        "{}\n{xml}",
        String::from_utf8_lossy(&v.stderr)
    );
    // 2 thresholds + 2 checks; the error-rate threshold and the 500 check failed, with values.
    assert_eq!(xml.matches("<testcase ").count(), 4, "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 2, "{xml}");
    assert!(xml.contains("actual 50.00 %"), "{xml}");
    assert!(xml.contains("40 of 40 failed"), "{xml}");
    // The schema can fail: a testcase without a name does not validate.
    let bad = dir.path().join("bad.xml");
    std::fs::write(&bad, xml.replacen(" name=\"p99 &lt; 10s\"", "", 1)).expect("bad");
    let v = std::process::Command::new(xmllint())
        .args(["--noout", "--schema"])
        .arg(support::root().join("tests/fixtures/junit.xsd"))
        .arg(&bad)
        .output()
        .expect("run xmllint");
    assert!(!v.status.success(), "a nameless testcase must not validate");
    let text = std::fs::read_to_string(&md).expect("markdown");
    assert!(
        text.contains("1 of 2 thresholds crossed (exit 3)"),
        "{text}"
    );
    assert!(
        text.contains("| 80 | "),
        "80 requests in the totals row: {text}"
    );
    let s = std::fs::read_to_string(&step).expect("step summary");
    assert!(
        s.starts_with("earlier step\n"),
        "appended, not replaced: {s}"
    );
    assert!(s.contains(&text), "{s}");
}

/// The rows of the Markdown table whose header line starts with `header`.
fn md_table<'a>(text: &'a str, header: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| !l.starts_with(header))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect()
}

#[test]
fn markdown_escapes_hostile_names_and_shows_no_latency_for_names_that_all_failed() {
    let t = support::target();
    // A name with a line break into a heading, raw HTML, a pipe, an ampersand and a trailing
    // backslash; every request to it fails (500), the other one succeeds.
    let hostile = r"evil\n## injected <img src=x onerror=alert(1)> | a & b\\";
    let (_d, p) = write_config(
        "md.toml",
        &format!(
            r#"
            [[scenarios]]
            executor = "shared-iterations"
            vus = 2
            iterations = 30
            requests = [
              {{ name = "{hostile}", url = "http://{a}/status/500" }},
              {{ name = "/ok", url = "http://{a}/" }},
            ]
            "#,
            a = t.addr
        ),
    );
    let dir = tempfile::tempdir().expect("tmp");
    let md = dir.path().join("summary.md");
    let json = dir.path().join("s.json");
    let o = stampede(&[
        "run",
        p.to_str().expect("p"),
        "--quiet",
        "--no-metrics",
        "--summary-markdown",
        md.to_str().expect("m"),
        "--summary-json",
        json.to_str().expect("j"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let served = t
        .counters
        .requests
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(served, 60);
    let text = std::fs::read_to_string(&md).expect("markdown");
    let check = |text: &str, rows: &[&str], what: &str| {
        assert_eq!(
            text.lines().filter(|l| l.starts_with('#')).count(),
            1,
            "{what}: {text}"
        );
        assert!(!text.contains("<img"), "{what}: {text}");
        let evil: Vec<&&str> = rows.iter().filter(|r| r.contains("evil")).collect();
        assert!(!evil.is_empty(), "{what}: {text}");
        for r in evil {
            assert!(
                r.contains(r"evil\n## injected &lt;img src=x onerror=alert(1)&gt; \| a &amp; b\\"),
                "{what}: {r}"
            );
            // Exactly the table's columns: no cell split by the pipe or the backslash.
            let cells = r.replace(r"\\", "").replace(r"\|", "").matches('|').count();
            assert_eq!(cells, rows[0].matches('|').count(), "{what}: {r}");
        }
    };
    let rows = md_table(&text, "| name |");
    assert_eq!(rows.len(), 2, "{text}");
    check(&text, &rows, "--summary-markdown");
    let evil = rows.iter().find(|r| r.contains("evil")).expect("row");
    assert!(evil.contains("| 30 | 30 |"), "{evil}");
    assert!(
        evil.ends_with("| – | – | – |"),
        "all failed: no latency, {evil}"
    );
    let ok = rows.iter().find(|r| r.contains("/ok")).expect("row");
    assert!(!ok.contains('–') && ok.contains(" ms |"), "{ok}");
    // compare --markdown of the run with itself: same escaping, `–` for the failed latencies.
    let o = stampede(&[
        "compare",
        json.to_str().expect("j"),
        json.to_str().expect("j"),
        "--markdown",
    ]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{out}");
    let rows = md_table(&out, "| name |");
    check(&out, &rows, "compare --markdown");
    let p99 = rows
        .iter()
        .find(|r| r.contains("evil") && r.contains("| p99 |"))
        .expect("p99 row");
    assert!(p99.contains("| p99 | – | – | – |"), "{p99}");
}

#[test]
fn a_tenth_of_a_second_run_has_sub_second_time_ticks_in_its_report() {
    let t = support::target();
    let dir = tempfile::tempdir().expect("tmp");
    let html = dir.path().join("r.html");
    let url = format!("http://{}/", t.addr);
    let o = stampede(&[
        "run",
        "--url",
        &url,
        "-d",
        "0.1s",
        "--vus",
        "2",
        "--quiet",
        "--no-metrics",
        "--report",
        html.to_str().expect("h"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&html).expect("report");
    // The first chart's time axis (its labels are the only centred ones).
    let chart = text
        .split("<figure class=\"chart\"")
        .nth(1)
        .expect("a chart");
    let ticks: Vec<f64> = chart
        .split("text-anchor=\"middle\">")
        .skip(1)
        .filter_map(|t| t.split(" s<").next()?.parse().ok())
        .collect();
    assert!(ticks.len() >= 3, "{ticks:?}");
    assert!(
        ticks.windows(2).all(|w| w[1] > w[0]),
        "distinct, rising: {ticks:?}"
    );
    assert!(
        *ticks.last().expect("tick") <= 0.2,
        "within the run: {ticks:?}"
    );
    assert_eq!(ticks[0], 0.0);
}

fn summary_of(target: &str, path: &str, out: &std::path::Path) {
    let o = stampede(&[
        "run",
        "--url",
        &format!("http://{target}{path}"),
        "--vus",
        "8",
        "--iterations",
        "200",
        "--quiet",
        "--summary-json",
        out.to_str().expect("out"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn compare_detects_a_slower_target_and_passes_the_same_one() {
    let t = support::target();
    let a = t.addr.to_string();
    let dir = tempfile::tempdir().expect("tmp");
    let base = dir.path().join("base.json");
    let same = dir.path().join("same.json");
    let slow = dir.path().join("slow.json");
    summary_of(&a, "/delay/5", &base);
    summary_of(&a, "/delay/5", &same);
    summary_of(&a, "/delay/100", &slow);
    let path = |p: &std::path::Path| p.to_str().expect("p").to_string();
    // Two runs of the same 5 ms target: on a loaded shared machine their p99 may differ by
    // 2-3x, so the tolerance is wide; the slow target is 20x slower, far beyond it.
    let o = stampede(&[
        "compare",
        &path(&base),
        &path(&same),
        "--max-regression",
        "300%",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = stampede(&[
        "compare",
        &path(&base),
        &path(&slow),
        "--max-regression",
        "300%",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(out.contains("REGRESSION"), "{out}");
    let o = stampede(&["compare", &path(&base), &path(&slow), "--markdown"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(
        out.contains("| p99 |") && out.contains("❌ regression"),
        "{out}"
    );
    // Unreadable input is a usage error naming the file.
    let o = stampede(&["compare", &path(&base), "/nonexistent/x.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/x.json"), "{}", stderr(&o));
}

#[test]
fn the_html_report_opens_in_chromium_with_the_summary_figures_and_drawn_charts() {
    let t = support::target();
    let (_d, p) = write_config(
        "mixed.toml",
        &format!(
            r#"
            thresholds = ["p99 < 10s", "error_rate < 0.05"]
            [[scenarios]]
            name = "open"
            rate = 50
            duration = "3s"
            vus = 20
            requests = [{{ url = "http://{a}/", checks = {{ status = 200 }} }}, {{ url = "http://{a}/status/500" }}, {{ url = "http://{a}/delay/20" }}]
            "#,
            a = t.addr
        ),
    );
    let dir = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("s.json");
    let html = dir.path().join("report.html");
    let o = stampede(&[
        "run",
        p.to_str().expect("p"),
        "--quiet",
        "--summary-json",
        json.to_str().expect("j"),
        "--report",
        html.to_str().expect("h"),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let v = read_json(&json);
    let text = std::fs::read_to_string(&html).expect("report");
    // Nothing is loaded: no element source, stylesheet link, CSS url() or script request.
    for banned in [
        "src=",
        "<link",
        "url(",
        "@import",
        "fetch(",
        "XMLHttpRequest",
    ] {
        assert!(
            !text.contains(banned),
            "the report must not load anything: {banned}"
        );
    }
    // Remade later from the summary: the same file.
    let again = dir.path().join("again.html");
    let o = stampede(&[
        "report",
        json.to_str().expect("j"),
        "-o",
        again.to_str().expect("a"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&again).expect("again"), text);
    // Against a baseline (here: a run of a slower target), figures sit beside the baseline's.
    let slow_json = dir.path().join("slow.json");
    let o = stampede(&[
        "run",
        "--url",
        &format!("http://{}/delay/60", t.addr),
        "--vus",
        "2",
        "--iterations",
        "20",
        "--quiet",
        "--summary-json",
        slow_json.to_str().expect("s"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let with_base = dir.path().join("with-base.html");
    let o = stampede(&[
        "report",
        json.to_str().expect("j"),
        "--baseline",
        slow_json.to_str().expect("s"),
        "-o",
        with_base.to_str().expect("w"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let b = std::fs::read_to_string(&with_base).expect("with baseline");
    let tiles = &b[b.find("class=\"tiles\"").expect("tiles")..];
    let tiles = &tiles[..tiles.find("</section>").expect("end")];
    assert_eq!(
        tiles.matches("<small class=\"delta").count(),
        11,
        "one per tile (the byte tiles: on the wire and bodies, both ways)"
    );
    let bp99 = v["latency_s"]["p99"].as_f64().expect("p99");
    let slow: serde_json::Value = read_json(&slow_json);
    let sp99 = slow["latency_s"]["p99"].as_f64().expect("p99");
    let expect = format!(
        "baseline {:.2} ms ({:+.1} %)",
        sp99 * 1000.0,
        (bp99 - sp99) / sp99 * 100.0
    );
    assert!(b.contains(&expect), "{expect}");
    // Opened in real headless Chromium over the DevTools protocol (tests/browser), with the
    // network off: no console error, nothing requested but the file, the figures of the
    // summary in the DOM, every chart drawn; a full-page screenshot kept to look at.
    let shots = support::root().join("target/test-artifacts");
    std::fs::create_dir_all(&shots).expect("artifacts dir");
    let png = shots.join("report-mixed.png");
    let _ = std::fs::remove_file(&png);
    let seen = open_in_chromium(&html, &png);
    assert_eq!(seen["console_errors"], serde_json::json!([]), "{seen:#}");
    assert_eq!(seen["page_errors"], serde_json::json!([]), "{seen:#}");
    let file_url = format!("file://{}", html.display());
    assert_eq!(seen["requests"], serde_json::json!([file_url]), "{seen:#}");
    assert_eq!(seen["failed"], serde_json::json!([]), "{seen:#}");
    let dom = &seen["dom"];
    assert_eq!(dom["requests"], v["requests"].to_string());
    assert_eq!(dom["exit_code"], "3");
    assert_eq!(
        dom["p99"],
        format!(
            "{:.2} ms",
            v["latency_s"]["p99"].as_f64().expect("p99") * 1000.0
        )
    );
    assert_eq!(dom["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(dom["generators"], "1");
    assert_eq!(dom["started"], v["meta"]["started_at"]);
    let mut want: Vec<String> = v["by_name"]
        .as_array()
        .expect("by_name")
        .iter()
        .map(|r| r["requests"].to_string())
        .collect();
    let mut got: Vec<String> = dom["name_requests"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| c.as_str().expect("cell").to_string())
        .collect();
    // The script sorted the table by a click: compare as sets.
    want.sort();
    got.sort();
    assert_eq!(got, want);
    // The per-name table's latency is the successful requests', as the tiles' and the text's.
    for row in v["by_name"].as_array().expect("by_name") {
        let p99 = row["latency_s"]["p99"].as_f64().expect("p99");
        assert!(
            dom["name_p99"]
                .as_array()
                .expect("p99 cells")
                .iter()
                .any(|c| c.as_str().and_then(|c| c.parse::<f64>().ok()) == Some(p99)),
            "{p99} not in {}",
            dom["name_p99"]
        );
    }
    // The verdict: each threshold with its limit, actual and margin, in the threshold's units.
    let rows = dom["thresholds"].as_array().expect("threshold rows");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0][0], "p99 < 10s");
    assert_eq!(rows[0][1], "10000.00 ms");
    assert!(
        rows[0][3].as_str().expect("margin").starts_with('+'),
        "{rows:?}"
    );
    assert_eq!(rows[1][0], "error_rate < 0.05");
    assert_eq!(rows[1][1], "5.00 %");
    assert!(
        rows[1][2].as_str().expect("actual").ends_with(" %"),
        "{rows:?}"
    );
    assert!(
        rows[1][3].as_str().expect("margin").starts_with('−'),
        "{rows:?}"
    );
    assert_eq!(rows[1][4], "crossed");
    // Every chart drew data points: req/s, latency, failures, VUs and active requests,
    // iterations, open model rate and start lag, spectrum.
    let charts = dom["charts"].as_array().expect("charts");
    assert_eq!(charts.len(), 8, "{charts:#?}");
    for c in charts {
        assert!(u(&c["points"]) > 0, "{c}");
        assert_eq!(c["drawn"], c["lines"], "{c}");
    }
    assert!(
        std::fs::metadata(&png)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "screenshot"
    );
    // With the baseline: its series dotted in the charts, its status codes and checks beside.
    let png = shots.join("report-with-baseline.png");
    let seen = open_in_chromium(&with_base, &png);
    assert_eq!(seen["console_errors"], serde_json::json!([]), "{seen:#}");
    assert!(b.contains("class=\"series base\""), "baseline series drawn");
    assert!(
        b.contains("<th>baseline</th>"),
        "status codes beside the baseline's"
    );
    assert!(
        b.contains("<th>baseline fails</th>"),
        "checks beside the baseline's"
    );
}

/// Opens a report with tests/browser/open-report.mjs (puppeteer-core driving /usr/bin/chromium).
fn open_in_chromium(html: &std::path::Path, png: &std::path::Path) -> serde_json::Value {
    let chromium = std::path::PathBuf::from("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "chromium not found: install it with `apt-get install -y chromium`"
    );
    let dir = support::root().join("tests/browser");
    assert!(
        dir.join("node_modules/puppeteer-core").exists(),
        "puppeteer-core not installed: run `npm ci --prefix tests/browser` (Node.js >= 20)"
    );
    let o = std::process::Command::new("node")
        .arg(dir.join("open-report.mjs"))
        .arg(html)
        .arg(png)
        .arg(&chromium)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node ({e}): install Node.js >= 20"));
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

#[test]
fn ctrl_c_still_writes_the_report_and_the_junit_file() {
    let t = support::target();
    let dir = tempfile::tempdir().expect("tmp");
    let html = dir.path().join("r.html");
    let junit = dir.path().join("j.xml");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args([
            "run",
            "--url",
            &format!("http://{}/", t.addr),
            "--vus",
            "2",
            "--duration",
            "30s",
        ])
        .args(["--quiet", "--report", html.to_str().expect("h")])
        .args(["--junit", junit.to_str().expect("j")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn stampede");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: sending SIGINT to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let text = std::fs::read_to_string(&html).expect("report written after Ctrl-C");
    assert!(text.contains("Verdict: interrupted"), "{text}");
    assert!(text.contains("id=\"exit-code\">130<"));
    assert!(
        std::fs::read_to_string(&junit)
            .expect("junit")
            .contains("<testsuites")
    );
}

/// Issue 22 (3): the summary's wire figures are the octets on the connection, both ways, as
/// the server counted them (nginx's `$request_length` and `$bytes_sent`): exactly over
/// HTTP/1.1; the body figures stay, labelled as bodies.
#[test]
fn wire_bytes_are_the_octets_nginx_counted_over_http1() {
    // nginx counts a request body in `$request_length` only when it reads it (`return`
    // discards it unread): the front server proxies to a sink, so it reads every body.
    let (front, sink) = (support::free_port(), support::free_port());
    let n = support::nginx::Nginx::start_with(&format!(
        r#"server {{ listen 127.0.0.1:{front}; location / {{ proxy_pass http://127.0.0.1:{sink}; }} }}
        server {{ listen 127.0.0.1:{sink}; access_log off; location / {{ return 200 "ok"; }} }}"#
    ));
    let url = format!("http://127.0.0.1:{front}/");
    let dir = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("s.json");
    let o = stampede(&[
        "run",
        "--url",
        &url,
        "-X",
        "POST",
        "--body",
        "hello, wire",
        "-H",
        "X-Pad: 0123456789",
        "--vus",
        "3",
        "--iterations",
        "300",
        "--summary-json",
        json.to_str().expect("path"),
    ]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let logged = n.logged_wire();
    assert_eq!(logged.len(), 300, "nginx logged {} requests", logged.len());
    let (req, resp) = logged.iter().fold((0, 0), |(a, b), (r, s)| (a + r, b + s));
    let v = read_json(&json);
    support::schema::assert_summary_conforms(&v);
    let b = &v["bytes"];
    assert_eq!(u(&b["wire_sent"]), req, "{b}");
    assert_eq!(u(&b["wire_received"]), resp, "{b}");
    // Bodies alone: 11 bytes out, nginx's "ok" back, per request.
    assert_eq!(
        (u(&b["body_sent"]), u(&b["body_received"])),
        (3300, 600),
        "{b}"
    );
    assert_eq!(
        v["by_name"][0]["bytes"], *b,
        "one name: its row is the total"
    );
    // The text says which is which.
    let wire = format!("data on the wire: {} sent, {} received", kb(req), kb(resp));
    assert!(out.contains(&wire), "`{wire}` not in:\n{out}");
    assert!(
        out.contains("bodies alone: 3.3 kB sent, 600 B received"),
        "{out}"
    );
}

/// Over HTTP/2 (h2c and TLS) the wire figures are the connection's frames: at least what
/// nginx counted for its streams' responses, at most that plus the connection's own frames.
#[test]
fn wire_bytes_over_http2_cover_every_frame_nginx_sent() {
    let n = support::nginx::Nginx::start_h2("");
    for url in [
        format!("http://127.0.0.1:{}/", n.port),
        format!("https://127.0.0.1:{}/", n.tls_port),
    ] {
        let before = n.logged_wire().len();
        let (o, v) = support::stampede_summary(&[
            "run",
            "--url",
            &url,
            "--http2",
            "--insecure",
            "--vus",
            "2",
            "--iterations",
            "200",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let logged = n.logged_wire();
        let mine = &logged[before..];
        assert_eq!(mine.len(), 200, "{url}");
        let resp: u64 = mine.iter().map(|w| w.1).sum();
        let b = &v["bytes"];
        let got = u(&b["wire_received"]);
        // Two connections: SETTINGS, its ACK, WINDOW_UPDATE, in a few hundred octets each.
        assert!(
            got >= resp && got <= resp + 2 * 300,
            "{url}: received {got}, nginx sent {resp} in its streams"
        );
        // 200 HEADERS frames of a few octets each, plus the preface and SETTINGS.
        let sent = u(&b["wire_sent"]);
        assert!((200 * 9..200 * 200).contains(&sent), "{url}: sent {sent}");
        assert_eq!(u(&b["body_received"]), 400, "{b}");
    }
}

/// As the text summary writes byte counts.
fn kb(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.2} MB", n as f64 / 1e6)
    } else if n >= 1000 {
        format!("{:.1} kB", n as f64 / 1e3)
    } else {
        format!("{n} B")
    }
}

/// A run of one request name whose requests half succeed after `delay_ms` and half fail fast
/// (503); its summary JSON.
fn half_failing_run(dir: &std::path::Path, file: &str, delay_ms: u64) -> std::path::PathBuf {
    let t = support::target();
    let (_d, p) = write_config(
        "half.toml",
        &format!(
            r#"
            thresholds = ["error_rate < 60%"]
            [[scenarios]]
            name = "api"
            executor = "shared-iterations"
            vus = 4
            iterations = 120
            requests = [
              {{ name = "/api", url = "http://{a}/delay/{delay_ms}" }},
              {{ name = "/api", url = "http://{a}/status/503" }},
            ]
            "#,
            a = t.addr
        ),
    );
    let json = dir.join(file);
    let o = stampede(&[
        "run",
        p.to_str().expect("path"),
        "--quiet",
        "--summary-json",
        json.to_str().expect("path"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    json
}

/// Issue 22 (3): the HTML page has one latency population, the successful requests', as the
/// text summary and thresholds (the per-name table mixed failures in), and says so; with
/// `--baseline` the comparison's verdict stands beside the thresholds' (it said "passed" where
/// `stampede compare` said REGRESSION).
#[test]
fn the_html_report_has_one_latency_population_and_the_baseline_verdict() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = half_failing_run(dir.path(), "base.json", 1);
    let cur = half_failing_run(dir.path(), "cur.json", 30);
    let html = dir.path().join("r.html");
    let report = |summary: &std::path::Path, baseline: &std::path::Path| {
        let o = stampede(&[
            "report",
            summary.to_str().expect("path"),
            "--baseline",
            baseline.to_str().expect("path"),
            "-o",
            html.to_str().expect("path"),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        std::fs::read_to_string(&html).expect("report")
    };
    let compare = stampede(&[
        "compare",
        base.to_str().expect("path"),
        cur.to_str().expect("path"),
    ]);
    assert_eq!(
        compare.status.code(),
        Some(3),
        "compare sees the regression"
    );
    let page = report(&cur, &base);
    let verdict = verdict_of(&page);
    assert!(
        verdict.contains("Verdict: 1 threshold passed; <span id=\"baseline-verdict\">REGRESSION against the baseline (beyond 10 %)</span>"),
        "{verdict}"
    );
    assert!(
        verdict.contains("<li><b>total</b> p50: ") && verdict.contains("<ul id=\"regressions\">"),
        "{verdict}"
    );
    assert!(verdict.contains("class=\"verdict bad\""), "{verdict}");
    // The per-name table's p50 is the successful requests' (≥ 30 ms), not every request's.
    let v = read_json(&cur);
    let row = &v["by_name"][0];
    assert_eq!(u(&row["failures"]), 120, "{row}");
    let ok_p50 = row["latency_s"]["p50"].as_f64().expect("p50");
    assert!(ok_p50 >= 0.03, "{row}");
    assert!(
        row["latency_all_s"]["p50"].as_f64().expect("p50") < ok_p50,
        "{row}"
    );
    let table = &page[page.find("id=\"by-name\"").expect("table")..];
    let cell = "<td class=\"num p50\" data-v=\"";
    let at = table.find(cell).expect("p50 cell") + cell.len();
    let shown: f64 = table[at..]
        .split('"')
        .next()
        .and_then(|x| x.parse().ok())
        .expect("data-v");
    assert_eq!(shown, ok_p50, "{table}");
    let label = "Latency of successful requests only (120 failed requests excluded)";
    assert_eq!(
        page.matches(label).count(),
        2,
        "tiles and table say so: {page}"
    );
    assert!(
        page.contains("Latency p50 / p95 / p99 (successful requests)"),
        "{page}"
    );
    // Against itself: no regression, said as plainly.
    let page = report(&base, &base);
    let verdict = verdict_of(&page);
    assert!(
        verdict.contains("no regression against the baseline (beyond 10 %)"),
        "{verdict}"
    );
    assert!(verdict.contains("class=\"verdict ok\""), "{verdict}");
}

/// The verdict section of an HTML report.
fn verdict_of(page: &str) -> &str {
    let from = page.find("<section id=\"verdict\"").expect("verdict");
    let to = page[from..]
        .find("</section>")
        .map_or(page.len(), |n| from + n);
    &page[from..to]
}
