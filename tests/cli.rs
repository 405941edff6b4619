//! The binary's contract: exit codes, errors that name the culprit, config/ examples valid.

use std::time::{Duration, Instant};

use crate::support::schema::conforms;
use crate::support::{self, stampede, write_config};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn every_example_in_config_validates() {
    let mut n = 0;
    for entry in std::fs::read_dir(support::root().join("config")).expect("config/") {
        let p = entry.expect("entry").path();
        let o = stampede(&["validate", p.to_str().expect("utf-8 path")]);
        assert!(o.status.success(), "{}: {}", p.display(), stderr(&o));
        n += 1;
    }
    assert!(
        n >= 5,
        "expected the example scenarios in config/, found {n}"
    );
}

#[test]
fn bad_configs_exit_2_and_name_the_culprit() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "unknown.toml",
            "[[scenarios]]\nvus = 1\nduration = \"1s\"\nrequests = [{ url = \"http://127.0.0.1:1/\" }]\nvuss = 3\n",
            &["vuss", "unknown.toml"],
        ),
        (
            "syntax.toml",
            "[[scenarios]]\nvus = 1\nduration = \"1s\n",
            &["syntax.toml", "line 3"],
        ),
        (
            "duration.toml",
            "[[scenarios]]\nvus = 1\nduration = \"ten seconds\"\nrequests = [{ url = \"http://127.0.0.1:1/\" }]\n",
            &["duration", "ten seconds"],
        ),
        (
            "negative.toml",
            "[[scenarios]]\nvus = -5\nduration = \"1s\"\nrequests = [{ url = \"http://127.0.0.1:1/\" }]\n",
            &["vus", "-5"],
        ),
        (
            "zero.yaml",
            "scenarios:\n  - vus: 0\n    duration: 1s\n    requests:\n      - url: http://127.0.0.1:1/\n",
            &["scenarios[0].vus", "zero.yaml"],
        ),
        (
            "broken.yaml",
            "scenarios:\n  - vus: 1\n   duration: 1s\n",
            &["broken.yaml", "line"],
        ),
        (
            "threshold.toml",
            "thresholds = [\"p99 < soon\"]\n[[scenarios]]\nvus = 1\nduration = \"1s\"\nrequests = [{ url = \"http://127.0.0.1:1/\" }]\n",
            &["thresholds[0]", "p99 < soon"],
        ),
        (
            "rw.toml",
            "[[scenarios]]\nvus = 1\nduration = \"1s\"\nrequests = [{ url = \"http://127.0.0.1:1/\" }]\n[metrics.remote_write]\nurl = \"http://127.0.0.1:1/api/v1/write\"\npush_intervl = \"1s\"\n",
            &["push_intervl"],
        ),
    ];
    for (name, text, needles) in cases {
        let (_d, p) = write_config(name, text);
        for cmd in ["validate", "run"] {
            let o = stampede(&[cmd, p.to_str().expect("path")]);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd} {name}: {err}");
            for n in *needles {
                assert!(err.contains(n), "{cmd} {name}: `{n}` not in: {err}");
            }
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

#[test]
fn missing_file_and_bad_flags_exit_2() {
    let o = stampede(&["run", "/nonexistent/scenario.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/scenario.toml"));
    let o = stampede(&["run", "--url", "http://127.0.0.1:1/", "--duration", "soon"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--duration"), "{}", stderr(&o));
    let o = stampede(&["run"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--url"));
}

#[test]
fn thresholds_set_the_exit_code_and_the_json_summary_has_its_keys() {
    let t = support::target();
    let url = format!("http://{}/", t.addr);
    let dir = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("summary.json");
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
        "p99 < 1us",
        "--threshold",
        "error_rate < 1%",
        "--summary-json",
        json.to_str().expect("path"),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("CROSSED p99 < 1us"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("summary written"))
            .expect("json");
    for k in [
        "run_id",
        "requests",
        "failures",
        "rps",
        "duration_s",
        "latency_s",
        "by_name",
        "errors",
        "thresholds",
    ] {
        assert!(v.get(k).is_some(), "missing key {k}: {v}");
    }
    for k in ["min", "mean", "p50", "p90", "p95", "p99", "max"] {
        assert!(v["latency_s"][k].is_number(), "latency_s.{k}");
    }
    assert_eq!(v["requests"], 50);
    assert_eq!(v["by_name"][0]["name"], "/");
    assert_eq!(v["by_name"][0]["method"], "GET");
    assert_eq!(v["thresholds"][0]["ok"], false);
    assert_eq!(v["thresholds"][1]["ok"], true);

    let o = stampede(&[
        "run",
        "--url",
        &url,
        "--iterations",
        "20",
        "--quiet",
        "--threshold",
        "p99 < 10s",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn env_layer_sits_between_file_and_flags() {
    let t = support::target();
    let (_d, p) = write_config(
        "env.toml",
        &format!(
            "[run]\nid = \"from-file\"\n[[scenarios]]\nexecutor = \"shared-iterations\"\nvus = 1\niterations = 5\nrequests = [{{ url = \"http://{}/\" }}]\n",
            t.addr
        ),
    );
    let dir = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("s.json");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            p.to_str().expect("p"),
            "--quiet",
            "--summary-json",
            json.to_str().expect("j"),
        ];
        args.extend_from_slice(extra);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
            .args(&args)
            .env("STAMPEDE_RUN__ID", "from-env")
            // Not configuration: must not be taken for a config key.
            .env("STAMPEDE_LOG", "warn")
            .env("STAMPEDE_OTELCOL_BIN", "/nonexistent")
            .output()
            .expect("run");
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("json");
        v["run_id"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(run(&[]), "from-env");
    assert_eq!(run(&["--run-id", "from-flag"]), "from-flag");
}

#[cfg(unix)]
#[test]
fn sigint_stops_gracefully_prints_the_summary_and_exits_130() {
    let t = support::target();
    let dir = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("s.json");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args([
            "run",
            "--url",
            &format!("http://{}/delay/100", t.addr),
            "--vus",
            "5",
            "--duration",
            "60s",
            "--quiet",
            "--summary-json",
            json.to_str().expect("j"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    let start = Instant::now();
    // SAFETY: sending SIGINT to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let o = child.wait_with_output().expect("wait");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("json");
    assert_eq!(v["interrupted"], true);
    let reqs = v["requests"].as_u64().expect("requests");
    // In-flight requests finished within the grace period: none was cut.
    assert_eq!(v["failures"], 0, "{v}");
    assert_eq!(
        t.counters
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        reqs
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("(interrupted)"));
}

#[test]
fn the_json_summary_follows_the_committed_schema() {
    let t = support::target();
    let (_d, p) = write_config(
        "schema.toml",
        &format!(
            r#"
            thresholds = ["p99 < 10s"]
            [[scenarios]]
            name = "open"
            rate = 50
            duration = "1s"
            requests = [{{ url = "http://{a}/", checks = {{ status = 200 }} }}, {{ url = "http://{a}/status/500" }}]
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
        "--summary-json",
        json.to_str().expect("j"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("json");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(support::root().join("docs/summary.schema.json")).expect("schema"),
    )
    .expect("schema json");
    conforms(&v, &schema, &schema, "$").unwrap_or_else(|e| panic!("{e}\n{v:#}"));
    assert!(
        v["scenarios"][0]["start_lag_s"].is_object(),
        "open model reports start lag"
    );
    // Dropped iterations add up by cause, in total and per scenario.
    for d in [&v, &v["scenarios"][0]] {
        assert_eq!(
            d["dropped_iterations"].as_u64(),
            Some(
                d["dropped_no_vu"].as_u64().unwrap_or(u64::MAX)
                    + d["dropped_generator"].as_u64().unwrap_or(0)
            ),
            "{d}"
        );
    }
    // And a broken document does not conform (the validator can fail).
    let mut bad = v.clone();
    bad["requests"] = serde_json::json!("many");
    assert!(conforms(&bad, &schema, &schema, "$").is_err());
}

#[test]
fn the_demo_runs_with_nothing_installed() {
    let dir = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("demo.json");
    let o = stampede(&[
        "demo",
        "--duration",
        "2s",
        "--quiet",
        "--summary-json",
        json.to_str().expect("j"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "/user/login",
        "/user/api/getApps",
        "/newsql/api/getTablesByAppId",
        "thresholds:",
    ] {
        assert!(
            out.contains(needle),
            "`{needle}` not in the demo summary:\n{out}"
        );
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("json");
    assert!(v["requests"].as_u64().expect("requests") > 100, "{v}");
    // The login token was extracted and used: no 401s.
    assert!(v["errors"].get("401").is_none(), "{v}");
    assert!(
        v["errors"]["503"].as_u64().is_some(),
        "the demo's trickle of 503s: {v}"
    );
}

// ---- The command-line surface (issue 11): defaults, habits from other tools, help. ----

fn connections(t: &stampede::target::Target) -> u64 {
    t.counters
        .connections
        .load(std::sync::atomic::Ordering::Relaxed)
}

fn served(t: &stampede::target::Target) -> u64 {
    t.counters
        .requests
        .load(std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn ad_hoc_runs_default_to_10_vus_whatever_else_is_set() {
    // -n without -c: 10 VUs share the iterations (one keep-alive connection each).
    let t = support::target();
    let url = format!("http://{}/", t.addr);
    let (o, v) = support::stampede_summary(&["run", "--url", &url, "-n", "200"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!((v["requests"].as_u64(), served(&t)), (Some(200), 200));
    assert_eq!(v["scenarios"][0]["executor"], "shared-iterations");
    assert_eq!(connections(&t), 10, "10 VUs, one connection each");

    // -d without -c: 10 VUs for that long.
    let t = support::target();
    let url = format!("http://{}/", t.addr);
    let (o, v) = support::stampede_summary(&["run", "--url", &url, "-d", "500ms"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(v["requests"].as_u64(), Some(served(&t)));
    assert_eq!(connections(&t), 10, "10 VUs, one connection each");
    assert!(v["duration_s"].as_f64().is_some_and(|d| d < 2.0), "{v}");

    // -c wins.
    let t = support::target();
    let url = format!("http://{}/", t.addr);
    let (o, _) = support::stampede_summary(&["run", "--url", &url, "-c", "3", "-n", "30"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!((served(&t), connections(&t)), (30, 3));
}

#[test]
fn rate_without_duration_runs_10_s_like_closed_runs() {
    let t = support::target();
    let url = format!("http://{}/", t.addr);
    let (o, v) = support::stampede_summary(&["run", "--url", &url, "--rate", "5"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(v["scenarios"][0]["executor"], "constant-arrival-rate");
    // 5/s for the default 10 s: 50 iterations on an exact schedule.
    let n = v["requests"].as_u64().expect("requests");
    assert!((49..=51).contains(&n), "{n} requests: {v}");
    assert_eq!(n, served(&t));
    let d = v["duration_s"].as_f64().expect("duration");
    assert!((9.5..12.0).contains(&d), "ran {d} s");
}

#[test]
fn stage_flags_ramp_vus_or_rate_without_a_file() {
    // VUs: up to 4 and back down; every VU holds one connection.
    let t = support::target();
    let url = format!("http://{}/", t.addr);
    let (o, v) = support::stampede_summary(&[
        "run", "--url", &url, "--stage", "300ms:4", "--stage", "700ms:4", "--stage", "300ms:0",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(v["scenarios"][0]["executor"], "ramping-vus");
    let n = v["requests"].as_u64().expect("requests");
    assert!(n > 50, "{v}");
    assert_eq!((n, v["failures"].as_u64()), (served(&t), Some(0)));
    assert_eq!(connections(&t), 4, "peak of 4 VUs");

    // Rate: 20/s for 1 s, then 20 → 60/s over 1 s: 20 + 40 = 60 iterations.
    let t = support::target();
    let url = format!("http://{}/", t.addr);
    let (o, v) = support::stampede_summary(&[
        "run", "--url", &url, "--rate", "20", "--stage", "1s:20", "--stage", "1s:60",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(v["scenarios"][0]["executor"], "ramping-arrival-rate");
    let n = v["requests"].as_u64().expect("requests");
    assert!((59..=61).contains(&n), "{n}: {v}");
    assert_eq!(n, served(&t));

    let o = stampede(&["run", "--url", &url, "--stage", "30s"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--stage") && stderr(&o).contains("DURATION:TARGET"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn url_with_a_file_replaces_the_origin_of_absolute_request_urls() {
    let t = support::target();
    // Every URL in the file points at a port where nothing listens.
    let (_d, p) = write_config(
        "absolute.toml",
        r#"
        [[scenarios]]
        executor = "shared-iterations"
        vus = 2
        iterations = 20
        on_start = [{ url = "http://127.0.0.1:1/status/200" }]
        requests = [{ url = "http://127.0.0.1:1/" }, { url = "/status/204" }]
        "#,
    );
    let url = format!("http://{}", t.addr);
    let (o, v) = support::stampede_summary(&["run", p.to_str().expect("p"), "--url", &url]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(v["failures"], 0, "{v}");
    assert_eq!(v["requests"].as_u64(), Some(2 + 2 * 20));
    assert_eq!(served(&t), 2 + 2 * 20, "every request went to --url");
}

#[test]
fn a_url_where_the_file_goes_is_the_target() {
    let t = support::target();
    let url = format!("http://{}/", t.addr);
    let (o, v) = support::stampede_summary(&["run", &url, "-n", "20"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!((v["requests"].as_u64(), served(&t)), (Some(20), 20));
    let help = String::from_utf8_lossy(&stampede(&["run", "--help"]).stdout).into_owned();
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("A URL here (http://…) is taken as --url"),
        "{help}"
    );
}

#[test]
fn a_url_without_its_scheme_is_named_with_the_fix() {
    let o = stampede(&["run", "--url", "127.0.0.1:8080/", "-n", "1"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("--url")
            && e.contains("the scheme is missing; did you mean http://127.0.0.1:8080/?"),
        "{e}"
    );
    let o = stampede(&["run", "127.0.0.1:8080/"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("did you mean http://127.0.0.1:8080/?"),
        "{}",
        stderr(&o)
    );
}

/// Starts `stampede target --listen <arg>`, returns the address it printed, after one GET /.
fn target_answers_on(listen: &str) -> String {
    use std::io::{BufRead, Read, Write};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["target", "--listen", listen])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn stampede target");
    let mut line = String::new();
    let read = std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line);
    let answer = (|| {
        read.ok()?;
        let addr = line
            .trim()
            .strip_prefix("stampede target listening on http://")?;
        let mut s = std::net::TcpStream::connect(addr).ok()?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).ok()?;
        Some((addr.to_string(), reply))
    })();
    let _ = child.kill();
    let _ = child.wait();
    let (addr, reply) = answer.unwrap_or_else(|| panic!("no target on --listen {listen}: {line}"));
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    addr
}

#[test]
fn target_listen_takes_a_bare_port_or_a_host_name() {
    let port = support::free_port();
    assert_eq!(
        target_answers_on(&port.to_string()),
        format!("127.0.0.1:{port}")
    );
    let port = support::free_port();
    let addr = target_answers_on(&format!("localhost:{port}"));
    assert!(addr.ends_with(&format!(":{port}")), "{addr}");
    for bad in ["nowhere", "localhost:http"] {
        let o = stampede(&["target", "--listen", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        let e = stderr(&o);
        assert!(e.contains("--listen") && e.contains("HOST:PORT"), "{e}");
        assert!(!e.contains("invalid socket address syntax"), "{e}");
    }
}

#[test]
fn a_misspelt_config_key_gets_its_line_and_a_suggestion() {
    let (_d, p) = write_config(
        "typo.toml",
        "[[scenarios]]\nvus = 1\nduratoin = \"1s\"\nrequests = [{ url = \"http://127.0.0.1:1/\" }]\n",
    );
    let o = stampede(&["validate", p.to_str().expect("p")]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains(
            "typo.toml: line 3: unknown key `duratoin` in `scenarios[0]`; did you mean `duration`?"
        ),
        "{e}"
    );
    assert!(!e.contains("``"), "nested backticks: {e}");
    let (_d, p) = write_config(
        "k6.yaml",
        "thresholds: [\"p(95) < 200\"]\nscenarios:\n  - vus: 1\n    duration: 1s\n    requests: [{ url: \"http://127.0.0.1:1/\" }]\n",
    );
    let o = stampede(&["run", p.to_str().expect("p")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("did you mean `p95 < 200`?"),
        "{}",
        stderr(&o)
    );
    let o = stampede(&[
        "run",
        "--url",
        "http://127.0.0.1:1/",
        "--threshold",
        "p(99) < 1s",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("did you mean `p99 < 1s`?"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn run_help_groups_the_flags_shows_defaults_and_ends_with_examples() {
    let o = stampede(&["run", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let help = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut at = 0;
    for heading in [
        "Load:",
        "Request:",
        "Output:",
        "Thresholds:",
        "Remote-write:",
        "OTLP:",
        "Metrics:",
        "Examples:",
    ] {
        let i = help[at..]
            .find(&format!("\n{heading}\n"))
            .unwrap_or_else(|| panic!("no {heading} section after byte {at}:\n{help}"));
        at += i + 1;
    }
    for needle in [
        "-c, --vus <N>",
        "[default: 10",
        "--timeout",
        "[default: 10s]",
        "--stage 30s:50",
    ] {
        assert!(help.contains(needle), "`{needle}` not in:\n{help}");
    }
    let o = stampede(&["target", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout).into_owned();
    for route in [
        "/user/login",
        "/user/api/getApps",
        "/status/<code>",
        "/delay/<ms>",
        "/bytes/<n>",
        "/reset",
        "/__stats",
    ] {
        assert!(
            help.contains(route),
            "`{route}` not in target --help:\n{help}"
        );
    }
}

/// Long flags in `text`: `--name` tokens.
fn long_flags(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("--") {
        rest = &rest[i + 2..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if name.len() > 1 && name.starts_with(|c: char| c.is_ascii_lowercase()) {
            out.insert(format!("--{name}"));
        }
    }
    out
}

#[test]
fn readme_flag_table_lists_exactly_the_flags_of_run_help() {
    let help = String::from_utf8_lossy(&stampede(&["run", "--help"]).stdout).into_owned();
    // Flags defined by `run --help`: the first column of each option line.
    let defined: std::collections::BTreeSet<String> = help
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .flat_map(|l| long_flags(l.trim_start().split("  ").next().unwrap_or_default()))
        .filter(|f| f != "--help")
        .collect();
    assert!(defined.len() > 30, "{defined:?}");
    let readme = std::fs::read_to_string(support::root().join("README.md")).expect("README.md");
    let section = readme
        .split("\n## Command line\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Command line section");
    // The table's first column.
    let table: std::collections::BTreeSet<String> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| long_flags(l.split(" | ").next().unwrap_or_default()))
        .collect();
    let missing: Vec<_> = defined.difference(&table).collect();
    let extra: Vec<_> = table.difference(&defined).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README.md's command-line table and `stampede run --help` differ:\n  not in README: {missing:?}\n  not in --help: {extra:?}"
    );
}

/// Issue 9, items 5-8 and 12-13: input that cannot run, or would be silently ignored, is refused
/// by `validate` and by `run` alike — exit 2, the file and the exact key named, no panic, within
/// seconds, and `run` sends nothing (the target counts zero requests).
#[test]
fn refused_settings_name_the_key_in_validate_and_run_and_send_nothing() {
    let t = support::target();
    let url = format!("http://{}/", t.addr);
    let base = format!("http://{}", t.addr);
    // A scenario that would run for a minute if accepted: a refusal must come before it starts.
    let ok = format!("vus = 1\nduration = \"60s\"\nrequests = [{{ url = \"{url}\" }}]\n");
    let sc = format!("[[scenarios]]\n{ok}");
    let cases: Vec<(&str, String, &[&str])> = vec![
        // item 5: absurd rates
        (
            "rate",
            format!(
                "[[scenarios]]\nrate = 1e12\nduration = \"60s\"\nrequests = [{{ url = \"{url}\" }}]\n"
            ),
            &["`scenarios[0].rate`", "at most 10000000"],
        ),
        (
            "ramp_rate",
            format!(
                "[[scenarios]]\nexecutor = \"ramping-arrival-rate\"\nstages = [{{ duration = \"60s\", target = 1e12 }}]\nrequests = [{{ url = \"{url}\" }}]\n"
            ),
            &["`scenarios[0].stages[0].target`", "at most"],
        ),
        // item 6: durations that would overflow an Instant
        (
            "duration",
            format!(
                "[[scenarios]]\nvus = 1\nduration = \"300000000000y\"\nrequests = [{{ url = \"{url}\" }}]\n"
            ),
            &["scenarios[0].duration", "at most 365 days"],
        ),
        (
            "timeout",
            format!("[defaults]\ntimeout = \"300000000000y\"\n{sc}"),
            &["defaults.timeout", "at most 365 days"],
        ),
        (
            "connect_timeout",
            format!("[defaults]\nconnect_timeout = \"300000000000y\"\n{sc}"),
            &["defaults.connect_timeout", "at most 365 days"],
        ),
        (
            "graceful_stop",
            format!("[run]\ngraceful_stop = \"300000000000y\"\n{sc}"),
            &["run.graceful_stop", "at most 365 days"],
        ),
        (
            "think_time",
            format!("[[scenarios]]\nthink_time = \"300000000000y\"\n{ok}"),
            &["scenarios[0].think_time", "at most 365 days"],
        ),
        (
            "interval",
            format!("[metrics]\ninterval = \"300000000000y\"\n{sc}"),
            &["metrics.interval", "at most 365 days"],
        ),
        (
            "stage_sum",
            format!(
                "[[scenarios]]\nstages = [{{ duration = \"300d\", target = 1 }}, {{ duration = \"300d\", target = 0 }}]\nrequests = [{{ url = \"{url}\" }}]\n"
            ),
            &["`scenarios[0].stages`", "365 days"],
        ),
        // item 7: what cannot be allocated
        (
            "vus",
            format!(
                "[[scenarios]]\nvus = 1000000000000\nduration = \"60s\"\nrequests = [{{ url = \"{url}\" }}]\n"
            ),
            &["`scenarios[0].vus`", "at most 1000000"],
        ),
        (
            "stage_vus",
            format!(
                "[[scenarios]]\nstages = [{{ duration = \"60s\", target = 1e12 }}]\nrequests = [{{ url = \"{url}\" }}]\n"
            ),
            &["`scenarios[0].stages[0].target`", "at most 1000000"],
        ),
        (
            "workers",
            format!("[run]\nworkers = 20000\n{sc}"),
            &["`run.workers`", "at most 1024"],
        ),
        (
            "timeline_interval",
            format!("[run]\ntimeline_interval = \"5ms\"\n{sc}"),
            &["`run.timeline_interval`", "5ms: at least 10ms"],
        ),
        (
            "busy_poll",
            format!("[run]\nbusy_poll = \"1s\"\n{sc}"),
            &["`run.busy_poll`", "at most 10ms"],
        ),
        // item 8: ports
        (
            "port_range",
            "[[scenarios]]\nvus = 1\nduration = \"60s\"\nrequests = [{ url = \"http://127.0.0.1:99999/\" }]\n"
                .to_string(),
            &["`scenarios[0].requests[0].url`", "\"99999\""],
        ),
        (
            "port_text",
            "[defaults]\nbase_url = \"http://127.0.0.1:99x\"\n[[scenarios]]\nvus = 1\nduration = \"60s\"\nrequests = [{ url = \"/\" }]\n"
                .to_string(),
            &["`defaults.base_url`", "\"99x\""],
        ),
        // item 12: settings that would be ignored
        (
            "think_time_key",
            format!(
                "[[scenarios]]\nthink_time = {{ min = \"1s\", max = \"2s\", mean = \"1s\" }}\n{ok}"
            ),
            &["mean", "think_time"],
        ),
        (
            "rate_with_constant_vus",
            format!("[[scenarios]]\nexecutor = \"constant-vus\"\nrate = 100\n{ok}"),
            &[
                "`scenarios[0].rate`",
                "constant-vus takes vus, duration, iterations",
            ],
        ),
        (
            "stages_with_constant_arrival_rate",
            format!(
                "[[scenarios]]\nexecutor = \"constant-arrival-rate\"\nrate = 10\nduration = \"60s\"\nstages = [{{ duration = \"1s\", target = 5 }}]\nrequests = [{{ url = \"{url}\" }}]\n"
            ),
            &[
                "`scenarios[0].stages`",
                "constant-arrival-rate takes rate, duration, vus",
            ],
        ),
        (
            "vus_with_ramping_vus",
            format!(
                "[[scenarios]]\nexecutor = \"ramping-vus\"\nvus = 50\nstages = [{{ duration = \"60s\", target = 5 }}]\nrequests = [{{ url = \"{url}\" }}]\n"
            ),
            &["`scenarios[0].vus`", "ramping-vus takes start, stages"],
        ),
        (
            "request_think_time",
            format!(
                "[[scenarios]]\nvus = 1\nduration = \"60s\"\nrequests = [{{ url = \"{url}\" }}, {{ url = \"{url}\", think_time = {{ min = \"2s\", max = \"1s\" }} }}]\n"
            ),
            &["`scenarios[0].requests[1].think_time`", "must not exceed"],
        ),
        (
            "ftp",
            format!(
                "[defaults]\nbase_url = \"{base}\"\n[[scenarios]]\nvus = 1\nduration = \"60s\"\nrequests = [{{ url = \"FTP://127.0.0.1/x\" }}]\n"
            ),
            &["`scenarios[0].requests[0].url`", "\"FTP\" is not supported"],
        ),
        // item 13: what used to pass validate and fail (or misbehave) at run time
        (
            "otlp_endpoint",
            format!("[metrics.otlp]\nendpoint = \"ftp://127.0.0.1:4317\"\n{sc}"),
            &["--otlp-endpoint / metrics.otlp.endpoint", "http://"],
        ),
        (
            "otlp_header",
            format!(
                "[metrics.otlp]\nendpoint = \"http://127.0.0.1:4318\"\nheaders = {{ api-key = \"a\\r\\nb\" }}\n{sc}"
            ),
            &["`metrics.otlp.headers.api-key`", "CR or LF"],
        ),
        (
            "dynamic_header",
            format!(
                "[[scenarios]]\nvariables = {{ t = \"a\\nb\" }}\nvus = 1\nduration = \"60s\"\nrequests = [{{ url = \"{url}\", headers = {{ X-T = \"${{t}}\" }} }}]\n"
            ),
            &[
                "`scenarios[0].requests[0].headers.X-T`",
                "initial variables",
            ],
        ),
        (
            "summary_dir",
            format!("[run]\nsummary_json = \"/nonexistent-stampede-dir/s.json\"\n{sc}"),
            &["`run.summary_json`", "/nonexistent-stampede-dir"],
        ),
    ];
    for (name, text, needles) in &cases {
        let file = format!("{name}.toml");
        let (_d, p) = write_config(&file, text);
        for cmd in ["validate", "run"] {
            let started = Instant::now();
            let path = p.to_str().expect("path");
            let o = if cmd == "run" {
                stampede(&[cmd, path, "--quiet"])
            } else {
                stampede(&[cmd, path])
            };
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd} {name}: {err}");
            assert!(
                err.contains(&file),
                "{cmd} {name}: the file is not named: {err}"
            );
            for n in *needles {
                assert!(err.contains(n), "{cmd} {name}: {n:?} not in: {err}");
            }
            assert!(!err.contains("panicked"), "{cmd} {name}: {err}");
            // Messages from validation and the plan quote values with "…", so backticks
            // (around the key, in template errors) never nest.
            if err.contains(&format!("{}: `", p.display())) {
                assert!(
                    !err.contains("``") && err.matches('`').count() % 2 == 0,
                    "{cmd} {name}: nested backticks: {err}"
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{cmd} {name} took {:?}",
                started.elapsed()
            );
        }
    }
    let sent = t
        .counters
        .requests
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(sent, 0, "a refused run sent {sent} requests");
}

/// The same limits through flags: exit 2 naming the flag or key, before any request is sent.
#[test]
fn refused_flags_exit_2_before_the_run_starts() {
    let t = support::target();
    let url = format!("http://{}/", t.addr);
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--rate", "1e12", "--duration", "60s"],
            &["`scenarios[0].rate`", "at most"],
        ),
        (
            &["--duration", "300000000000y"],
            &["--duration", "at most 365 days"],
        ),
        (
            &["--timeout", "300000000000y", "-d", "60s"],
            &["--timeout", "at most 365 days"],
        ),
        (
            &["--graceful-stop", "300000000000y", "-d", "60s"],
            &["--graceful-stop", "365 days"],
        ),
        (
            &["--workers", "20000", "-n", "1"],
            &["`run.workers`", "at most 1024"],
        ),
        (
            &["--busy-poll", "50ms", "-n", "1"],
            &["`run.busy_poll`", "at most 10ms"],
        ),
        (
            &["--timeline-interval", "1ms", "-n", "1"],
            &[
                "`run.timeline_interval`",
                "1ms: at least 10ms",
                "--timeline-interval",
            ],
        ),
        (
            &["--timeline-interval", "0", "-n", "1"],
            &[
                "`run.timeline_interval`",
                "at least 10ms",
                "--timeline-interval",
            ],
        ),
        (
            &["--busy-poll", "soon", "-n", "1"],
            &["--busy-poll", "invalid duration"],
        ),
        (
            &["--vus", "1000000000000", "-d", "60s"],
            &["`scenarios[0].vus`", "at most 1000000"],
        ),
        (
            &[
                "--summary-json",
                "/nonexistent-stampede-dir/s.json",
                "-d",
                "60s",
            ],
            &["--summary-json", "/nonexistent-stampede-dir"],
        ),
    ];
    for (flags, needles) in cases {
        let mut args = vec!["run", "--url", &url, "--quiet"];
        args.extend_from_slice(flags);
        let started = Instant::now();
        let o = stampede(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {err}");
        for n in *needles {
            assert!(err.contains(n), "{flags:?}: {n:?} not in: {err}");
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{flags:?}");
    }
    let o = stampede(&[
        "run",
        "--url",
        "http://127.0.0.1:99999/",
        "-n",
        "1",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("\"99999\""), "{}", stderr(&o));
    let sent = t
        .counters
        .requests
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(sent, 0, "a refused run sent {sent} requests");
}

/// `validate` resolves OTLP settings from the environment as the run does: a CR/LF in
/// `OTEL_EXPORTER_OTLP_HEADERS` is an error naming the variable (it was silently dropped).
#[test]
fn validate_checks_otlp_settings_from_the_environment() {
    let (_d, p) = write_config(
        "otlp_env.toml",
        "[[scenarios]]\nvus = 1\nduration = \"1s\"\nrequests = [{ url = \"http://127.0.0.1:1/\" }]\n",
    );
    let validate = |env: &[(&str, &str)]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"));
        c.args(["validate", p.to_str().expect("path")])
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_HEADERS");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("run stampede validate")
    };
    let o = validate(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=se%0D%0Acret"),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("otlp_env.toml") && err.contains("OTEL_EXPORTER_OTLP_HEADERS"),
        "{err}"
    );
    assert!(!err.contains("cret"), "the value is never printed: {err}");
    let o = validate(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("OTEL_EXPORTER_OTLP_ENDPOINT"),
        "{}",
        stderr(&o)
    );
    let o = validate(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// Issue 9 item 13: remote-write secrets (password and bearer files, `*_env` variables) are
/// read by `validate` as by `run`: a missing one is exit 2 naming the file and the key, before
/// any request, and the secret itself is never printed.
#[test]
fn validate_and_run_read_remote_write_secrets_before_any_request() {
    let t = support::target();
    let dir = tempfile::tempdir().expect("tmp");
    let secret = dir.path().join("pw");
    let missing = dir.path().join("no-such-password");
    let text = |pw: &std::path::Path| {
        format!(
            "[[scenarios]]\nvus = 1\nduration = \"30s\"\nrequests = [{{ url = \"http://{}/\" }}]\n\n\
             [metrics.remote_write]\nurl = \"http://127.0.0.1:1/api/v1/write\"\n\
             basic_auth = {{ username = \"u\", password_file = \"{}\" }}\n",
            t.addr,
            pw.display()
        )
    };
    let (_d, bad) = write_config("rw_secret.toml", &text(&missing));
    for cmd in ["validate", "run"] {
        let started = std::time::Instant::now();
        let path = bad.to_str().expect("path");
        let o = if cmd == "run" {
            support::stampede(&[cmd, path, "--quiet"])
        } else {
            support::stampede(&[cmd, path])
        };
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {err}");
        assert!(
            err.contains("rw_secret.toml")
                && err.contains("password_file")
                && err.contains("no-such-password"),
            "{cmd}: {err}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{cmd} refused late"
        );
    }
    assert_eq!(
        t.counters
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "nothing is sent when a secret is missing"
    );
    std::fs::write(&secret, "s3cr3t-pw\n").expect("write secret");
    let (_d2, good) = write_config("rw_secret_ok.toml", &text(&secret));
    let o = support::stampede(&["validate", good.to_str().expect("path")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("s3cr3t") && !String::from_utf8_lossy(&o.stdout).contains("s3cr3t")
    );
}

/// Issue 9 item 7: each URL costs an exact latency histogram (~0.19 MB) per worker thread, so
/// many URLs on many workers are refused with the largest worker count that fits.
#[test]
fn many_urls_on_many_workers_are_refused_with_a_count_that_fits() {
    let urls: Vec<String> = (0..1000)
        .map(|i| format!("http://127.0.0.1:1/p{i}"))
        .collect();
    let mut args = vec!["run", "--quiet", "-n", "1", "--workers", "9"];
    for u in &urls {
        args.extend(["--url", u.as_str()]);
    }
    let o = stampede(&args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`run.workers`") && err.contains("--workers 8"),
        "{err}"
    );
    let more: Vec<String> = (0..5000)
        .map(|i| format!("http://127.0.0.1:1/p{i}"))
        .collect();
    let mut args = vec!["run", "--quiet", "-n", "1"];
    for u in &more {
        args.extend(["--url", u.as_str()]);
    }
    let o = stampede(&args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`scenarios`") && err.contains("request definitions"),
        "{err}"
    );
}

/// k6's threshold forms are refused (exit 2) with the exact stampede expression, in `validate`
/// and in `run`, before anything is sent.
#[test]
fn k6_thresholds_are_answered_with_the_stampede_form() {
    let (_d, p) = write_config(
        "k6-forms.yaml",
        "thresholds: [\"http_req_duration{name:/login}: p(95)<200\"]\nscenarios:\n  - vus: 1\n    duration: 1s\n    requests: [{ name: /login, url: \"http://127.0.0.1:1/login\" }]\n",
    );
    let o = stampede(&["validate", p.to_str().expect("p")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "`thresholds[0]`: threshold `http_req_duration{name:/login}: p(95)<200`: this is k6's syntax; did you mean `p95{name=/login} < 200ms`? (k6's bare numbers are milliseconds)"
        ),
        "{}",
        stderr(&o)
    );
    let t = support::target();
    let url = format!("http://{}/", t.addr);
    for (k6, ours) in [
        ("http_req_duration: p(95)<200", "`p95 < 200ms`"),
        ("http_req_failed < 0.01", "`error_rate < 0.01`"),
        ("http_reqs > 100", "`requests > 100`"),
        ("http_reqs: rate>100", "`rps > 100`"),
    ] {
        let o = stampede(&["run", "-u", &url, "-d", "1s", "--threshold", k6]);
        assert_eq!(o.status.code(), Some(2), "{k6}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("this is k6's syntax; did you mean {ours}?")),
            "{k6}: {}",
            stderr(&o)
        );
    }
    assert_eq!(served(&t), 0, "a refused threshold sent requests");
}

/// A threshold filter naming a request, method or scenario the plan does not have is a typo:
/// found by `validate` and before the run sends anything, with the closest name.
#[test]
fn a_threshold_filter_that_matches_nothing_is_refused_before_the_run() {
    let t = support::target();
    let scenario = format!(
        "[[scenarios]]\nname = \"smoke\"\nvus = 1\nduration = \"1s\"\n[[scenarios.requests]]\nname = \"/user/login\"\nurl = \"http://{}/\"\n[[scenarios.requests]]\nname = \"/home\"\nurl = \"http://{}/\"\n",
        t.addr, t.addr
    );
    let (d, p) = write_config(
        "filter-typo.toml",
        &format!("thresholds = [\"p95{{name=/usr/login}} < 1s\"]\n{scenario}"),
    );
    let file = p.to_str().expect("p");
    for cmd in ["validate", "run"] {
        let o = stampede(&[cmd, file]);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(
                "`thresholds[0]`: `p95{name=/usr/login} < 1s`: no request has the name `/usr/login`; did you mean `/user/login`? (the plan's: /home, /user/login)"
            ),
            "{cmd}: {}",
            stderr(&o)
        );
    }
    let plain = d.path().join("plain.toml");
    std::fs::write(&plain, &scenario).expect("write");
    let plain = plain.to_str().expect("p");
    let o = stampede(&[
        "run",
        plain,
        "--threshold",
        "error_rate{scenario=smoek} < 1%",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no request has the scenario `smoek`; did you mean `smoke`?"),
        "{}",
        stderr(&o)
    );
    assert_eq!(served(&t), 0, "a run with a filter typo sent requests");
}

/// Every request refused with 401: the warning says to check the credentials, not whether the
/// target is up.
#[test]
fn a_run_refused_with_401_is_told_to_check_the_credentials() {
    let t = support::target();
    let url = format!("http://{}/status/401", t.addr);
    let o = stampede(&["run", "-u", &url, "-c", "2", "-d", "2s"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    let warn = err
        .lines()
        .find(|l| l.contains("nearly every request fails"))
        .unwrap_or_else(|| panic!("no warning:\n{err}"));
    assert!(
        warn.contains("mostly 401 from ")
            && warn.contains("the requests were refused (401): check the credentials"),
        "{warn}"
    );
    assert!(!warn.contains("is the target up"), "{warn}");
}

/// `run FILE --max-rate …` takes the search flags for a capacity-search file (as `find-max`
/// does) and names `find-max` for any other file.
#[test]
fn run_takes_the_search_flags_of_a_capacity_file_and_names_find_max_otherwise() {
    let t = support::target();
    let (d, plain) = write_config(
        "plain.toml",
        &format!(
            "[[scenarios]]\nvus = 1\nduration = \"1s\"\nrequests = [{{ url = \"http://{}/\" }}]\n",
            t.addr
        ),
    );
    let o = stampede(&["run", plain.to_str().expect("p"), "--max-rate", "20"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("`--max-rate`: applies to a capacity search")
            && stderr(&o).contains("use `stampede find-max "),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("-- --max-rate"), "{}", stderr(&o));
    assert_eq!(served(&t), 0);
    let search = d.path().join("search.toml");
    std::fs::write(
        &search,
        format!(
            "thresholds = [\"error_rate < 1%\"]\n[capacity]\nstart_rate = 10\nmax_rate = 1000\ngrowth = 2\nstep_duration = \"1s\"\n[[scenarios]]\nexecutor = \"capacity-search\"\nvus = 5\nrequests = [{{ url = \"http://{}/\" }}]\n",
            t.addr
        ),
    )
    .expect("write");
    let json = d.path().join("capacity.json");
    let o = stampede(&[
        "run",
        search.to_str().expect("p"),
        "--max-rate",
        "20",
        "--summary-json",
        json.to_str().expect("p"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = support::read_json(&json);
    assert_eq!(v["capacity"]["stopped_by"], "max_rate", "{}", v["capacity"]);
    let steps = v["capacity"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!steps.is_empty(), "{}", v["capacity"]);
    let top = steps
        .iter()
        .filter_map(|s| s["intended_rate"].as_f64())
        .fold(0.0, f64::max);
    assert!(
        top <= 20.0 && top > 0.0,
        "the file's max_rate 1000 won: {top}"
    );
}

/// A base64 HdrHistogram V2 (deflate form) of `counts` (value µs, count), stampede's bounds.
fn hdr_of(counts: &[(u64, u64)]) -> String {
    use base64::Engine as _;
    use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("h");
    for (v, n) in counts {
        h.record_n(*v, *n).expect("record");
    }
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(&h, &mut buf)
        .expect("serialize");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// A V2 deflate histogram whose inner header claims a `claim`-byte payload that is not there.
fn hdr_claiming(claim: u32) -> String {
    use base64::Engine as _;
    use std::io::Write as _;
    let mut v2 = Vec::new();
    v2.extend_from_slice(&0x1c84_9313u32.to_be_bytes()); // V2 cookie
    v2.extend_from_slice(&claim.to_be_bytes()); // payload length
    v2.extend_from_slice(&0u32.to_be_bytes()); // normalizing offset
    v2.extend_from_slice(&3u32.to_be_bytes()); // significant digits
    v2.extend_from_slice(&1u64.to_be_bytes()); // lowest
    v2.extend_from_slice(&3_600_000_000u64.to_be_bytes()); // highest
    v2.extend_from_slice(&1.0f64.to_be_bytes()); // integer-to-double ratio
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&v2).expect("deflate");
    let body = z.finish().expect("deflate");
    let mut b = 0x1c84_9314u32.to_be_bytes().to_vec(); // V2 deflate cookie
    b.extend_from_slice(&(body.len() as u32).to_be_bytes());
    b.extend_from_slice(&body);
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[cfg(unix)]
/// A real summary of 20 requests to the embedded target, in `dir/base.json`, checked to merge
/// alone to what the target saw.
fn honest_summary(dir: &std::path::Path) -> (std::path::PathBuf, serde_json::Value) {
    let t = support::target();
    let base = dir.join("base.json");
    let url = format!("http://{}/", t.addr);
    let o = stampede(&[
        "run",
        "--url",
        &url,
        "-n",
        "20",
        "--vus",
        "2",
        "--quiet",
        "--no-metrics",
        "--summary-json",
        base.to_str().expect("path"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let seen = served(&t);
    assert_eq!(seen, 20);
    let v = support::read_json(&base);
    // The honest file merges to what the target saw.
    let merged = dir.join("merged.json");
    let m = support::stampede_measured(&[
        "merge",
        base.to_str().expect("path"),
        "--summary-json",
        merged.to_str().expect("path"),
    ]);
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    assert_eq!(support::read_json(&merged)["requests"], seen);
    (base, v)
}

#[cfg(unix)]
#[test]
fn merge_refuses_hostile_summaries_with_exit_2_in_bounded_memory_and_time() {
    let dir = tempfile::tempdir().expect("tmp");
    let (base, v) = honest_summary(dir.path());
    let big = 1u64 << 62;
    type Edit = fn(&mut serde_json::Value);
    let cases: &[(&str, Edit, &[&str])] = &[
        (
            "payload.json",
            |v| v["by_name"][0]["latency_all_hdr"] = hdr_claiming(1 << 31).into(),
            &[
                "payload.json: by_name[0].latency_all_hdr:",
                "payload claims 2147483648 bytes",
            ],
        ),
        (
            "requests.json",
            |v| v["by_name"][0]["requests"] = u64::MAX.into(),
            &[
                "requests.json: by_name[0].latency_all_hdr:",
                "holds 20 requests, its row says 18446744073709551615",
            ],
        ),
        (
            "bucket.json",
            |v| v["by_name"][0]["latency_all_hdr"] = hdr_of(&[(1000, 1 << 62)]).into(),
            &[
                "bucket.json: by_name[0].latency_all_hdr:",
                "holds 4611686018427387904 requests, its row says 20",
            ],
        ),
        (
            "buckets.json",
            |v| {
                let five: Vec<(u64, u64)> = (1..=5).map(|i| (i * 100, 1 << 62)).collect();
                v["by_name"][0]["latency_hdr"] = hdr_of(&five).into()
            },
            &[
                "buckets.json: by_name[0].latency_hdr:",
                "counts overflow a 64-bit total",
            ],
        ),
        (
            "segments.json",
            |v| {
                v["distributed"] = serde_json::json!({"segments": u32::MAX, "merged": [0],
                    "missing": [], "start_skew_s": 0.0})
            },
            &[
                "segments.json: distributed.segments: 4294967295 segments: a run has at most 1000000",
            ],
        ),
    ];
    assert_eq!(big, 4611686018427387904);
    for (name, edit, needles) in cases {
        let mut bad = v.clone();
        edit(&mut bad);
        let p = dir.path().join(name);
        let text = serde_json::to_string(&bad).expect("json");
        assert!(text.len() < 64 << 10, "{name}: {} bytes", text.len());
        std::fs::write(&p, text).expect("write");
        let m = support::stampede_measured(&[
            "merge",
            base.to_str().expect("p"),
            p.to_str().expect("p"),
        ]);
        assert_eq!(m.code, Some(2), "{name}: {}", m.stderr);
        for n in *needles {
            assert!(m.stderr.contains(n), "{name}: {n:?} not in {}", m.stderr);
        }
        assert!(!m.stderr.contains("panicked"), "{}", m.stderr);
        assert!(m.peak_rss_mb < 100, "{name}: peak RSS {} MB", m.peak_rss_mb);
        assert!(m.wall < Duration::from_secs(10), "{name}: {:?}", m.wall);
    }
}

#[cfg(unix)]
#[test]
fn merge_refuses_counts_whose_sum_overflows_across_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_, v) = honest_summary(dir.path());
    // Reconnects of u64::MAX, twice: each file alone is fine.
    let mut a = v;
    a["reconnects"] = u64::MAX.into();
    let (pa, pb) = (dir.path().join("a.json"), dir.path().join("b.json"));
    std::fs::write(&pa, a.to_string()).expect("write");
    std::fs::write(&pb, a.to_string()).expect("write");
    let m =
        support::stampede_measured(&["merge", pa.to_str().expect("p"), pb.to_str().expect("p")]);
    assert_eq!(m.code, Some(2), "{}", m.stderr);
    assert!(
        m.stderr
            .contains("b.json: reconnects: 18446744073709551615 overflows"),
        "{}",
        m.stderr
    );
}
