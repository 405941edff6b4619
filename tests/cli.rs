//! The binary's contract: exit codes, errors that name the culprit, config/ examples valid.

use std::time::{Duration, Instant};

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

/// A small validator for the subset of JSON Schema that docs/summary.schema.json uses.
fn conforms(
    v: &serde_json::Value,
    s: &serde_json::Value,
    root: &serde_json::Value,
    at: &str,
) -> Result<(), String> {
    use serde_json::Value;
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        return conforms(v, &root["$defs"][name], root, at);
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(x) => vec![x.as_str()],
            Value::Array(xs) => xs.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_u64() || v.is_i64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => false,
        });
        if !ok {
            return Err(format!("{at}: {v} is not {types:?}"));
        }
    }
    if let Some(obj) = v.as_object() {
        for req in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let k = req.as_str().unwrap_or_default();
            if !obj.contains_key(k) {
                return Err(format!("{at}: missing required `{k}`"));
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => conforms(val, ps, root, &format!("{at}.{k}"))?,
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => return Err(format!("{at}: unexpected key `{k}`")),
                    Some(ap @ Value::Object(_)) => conforms(val, ap, root, &format!("{at}.{k}"))?,
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, it) in arr.iter().enumerate() {
            conforms(it, items, root, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
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
