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
