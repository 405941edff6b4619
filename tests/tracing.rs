//! Trace context: the embedded target records the `traceparent` headers it receives (sampled
//! fraction, W3C validity, one trace per iteration, HTTP/1.1 and HTTP/2); exemplars read back
//! from real Prometheus instances (exemplar storage on) fed by remote-write and by the real
//! Collector, each the slowest sampled request of its series and interval; client spans seen
//! by the Collector's debug exporter with their attributes and parent ids.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stampede::config::Overrides;

use crate::otlp::otlp_metrics;
use crate::support::{self, collector::Collector, prometheus::Prometheus};

/// A parsed `traceparent`: (trace id, parent id), both lower-case hex.
fn parse_traceparent(v: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = v.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && s.bytes().any(|b| b != b'0')
    };
    (parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && parts[3] == "01")
        .then(|| (parts[1].to_string(), parts[2].to_string()))
}

/// What the target saw: (trace id, span id, path) of every request with a traceparent; every
/// header must be valid W3C (version 00, sampled).
fn seen(t: &stampede::target::Target) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (tp, path) in t.counters.traces.lock().expect("traces").drain(..) {
        let (trace, span) =
            parse_traceparent(&tp).unwrap_or_else(|| panic!("not a valid traceparent: {tp:?}"));
        out.push((trace, span, path));
    }
    out
}

fn requests(t: &stampede::target::Target) -> u64 {
    t.counters
        .requests
        .swap(0, std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn traceparent_headers_are_w3c_sampled_at_the_ratio_and_one_trace_per_iteration() {
    let t = support::target();
    let run = |extra: &str, tracing: &str| {
        support::run_toml(
            &format!(
                r#"
                [defaults]
                base_url = "http://{}"
                {extra}
                [tracing]
                {tracing}
                [[scenarios]]
                executor = "shared-iterations"
                vus = 4
                iterations = 2000
                requests = [
                  {{ url = "/" }},
                  {{ name = "/bytes/{{n}}", url = "/bytes/${{vu}}${{iteration}}" }},
                  {{ method = "POST", url = "/echo", body = "hello", checks = {{ body_contains = "hello" }} }},
                ]
                "#,
                t.addr
            ),
            &Overrides::default(),
        )
    };

    // Off: no header at all.
    let s = run("", "");
    assert_eq!(s.requests, 6000);
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert!(seen(&t).is_empty());
    requests(&t);

    // 20 % of the requests, over static, rendered and POST requests alike; bodies intact.
    let s = run("", "sample_ratio = 0.2");
    assert_eq!(requests(&t), 6000, "{:?} {:?}", s.errors, s.by_name);
    assert_eq!(s.checks[0].fails, 0, "the POST bodies arrive whole");
    let got = seen(&t);
    // 1,200 expected, σ = √(6000·0.2·0.8) ≈ 31: six sigmas either side.
    assert!((1014..=1386).contains(&got.len()), "{} sampled", got.len());
    for path in ["/", "/echo"] {
        let n = got.iter().filter(|g| g.2 == path).count();
        assert!((300..=500).contains(&n), "{n} sampled of {path}");
    }
    assert!(got.iter().any(|g| g.2.starts_with("/bytes/")));
    let traces: BTreeSet<&str> = got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(traces.len(), got.len(), "one trace per sampled request");

    // HTTP/2 (h2c): the header is in the request too.
    let s = run("http2 = true", "sample_ratio = 1.0");
    assert_eq!(s.requests, 6000);
    assert_eq!(seen(&t).len(), 6000);
    requests(&t);

    // Per iteration: each sampled iteration is one trace with one span per request.
    let s = run("", "sample_ratio = 0.5\nper_iteration = true");
    assert_eq!(s.checks[0].fails, 0);
    let got = seen(&t);
    let mut by_trace: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for (trace, span, path) in &got {
        by_trace.entry(trace).or_default().push((span, path));
    }
    // 1,000 iterations expected, σ ≈ 22.
    assert!(
        (860..=1140).contains(&by_trace.len()),
        "{} sampled iterations",
        by_trace.len()
    );
    for (trace, spans) in &by_trace {
        let paths: BTreeSet<&str> = spans.iter().map(|s| s.1).collect();
        assert_eq!(spans.len(), 3, "trace {trace}: {spans:?}");
        assert_eq!(paths.len(), 3, "one of each request in trace {trace}");
        let ids: BTreeSet<&str> = spans.iter().map(|s| s.0).collect();
        assert_eq!(ids.len(), 3, "a span id per request in trace {trace}");
    }
}

/// Every request a [`recording_server`] read: (path, every `traceparent` value it carried).
type Heard = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<String>)>>>;

/// A loopback server (HTTP/1.1 and h2c, hyper) that records each request's path and every
/// `traceparent` value on the wire, repeated headers kept apart (a `HeaderMap` appends them).
fn recording_server() -> (std::net::SocketAddr, Heard) {
    use http_body_util::Full;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let heard: Heard = Default::default();
    let h = heard.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(l.local_addr().expect("addr")).expect("send");
            while let Ok((tcp, _)) = l.accept().await {
                let h = h.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<_>| {
                        let values = req
                            .headers()
                            .get_all("traceparent")
                            .iter()
                            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                            .collect();
                        let path = req.uri().path().to_string();
                        h.lock().expect("heard").push((path, values));
                        async {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                bytes::Bytes::from_static(b"ok"),
                            )))
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
    });
    (rx.recv().expect("server address"), heard)
}

#[test]
fn a_users_traceparent_goes_alone_and_that_request_is_not_sampled() {
    let mine = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let (addr, heard) = recording_server();
    let url = format!("http://{addr}/");
    // `-H` on every request, sampling on for all of them, HTTP/1.1 and h2c.
    for http2 in [false, true] {
        let mut args = vec![
            "run",
            "--url",
            &url,
            "-n",
            "50",
            "--vus",
            "2",
            "--quiet",
            "--no-metrics",
            "--trace-sample-ratio",
            "1",
        ];
        let header = format!("traceparent: {mine}");
        args.extend(["-H", &header]);
        if http2 {
            args.push("--http2");
        }
        let o = support::stampede(&args);
        assert_eq!(o.status.code(), Some(0), "{}", support::text(&o));
        let got = std::mem::take(&mut *heard.lock().expect("heard"));
        assert_eq!(got.len(), 50, "http2 {http2}");
        for (path, values) in &got {
            assert_eq!(values, &[mine], "http2 {http2}: {path}");
        }
    }
    // A request's own header: that request keeps it alone, its neighbour is sampled.
    let s = support::run_toml(
        &format!(
            r#"
            [defaults]
            base_url = "http://{addr}"
            [tracing]
            sample_ratio = 1.0
            [[scenarios]]
            executor = "shared-iterations"
            vus = 2
            iterations = 40
            requests = [
              {{ url = "/mine", headers = {{ Traceparent = "{mine}" }} }},
              {{ url = "/sampled" }},
            ]
            "#
        ),
        &Overrides::default(),
    );
    assert_eq!(s.requests, 80);
    let got = std::mem::take(&mut *heard.lock().expect("heard"));
    assert_eq!(got.len(), 80);
    let mut sampled = BTreeSet::new();
    for (path, values) in &got {
        assert_eq!(values.len(), 1, "{path}: {values:?}");
        match path.as_str() {
            "/mine" => assert_eq!(values[0], mine),
            _ => {
                assert!(parse_traceparent(&values[0]).is_some(), "{values:?}");
                assert_ne!(values[0], mine);
                sampled.insert(values[0].clone());
            }
        }
    }
    assert_eq!(sampled.len(), 40, "one fresh trace per sampled request");
}

/// One exemplar from `/api/v1/query_exemplars`.
#[derive(Debug)]
struct Ex {
    series: BTreeMap<String, String>,
    trace_id: String,
    span_id: String,
    value: f64,
}

fn exemplars(p: &Prometheus, selector: &str, since: f64) -> Vec<Ex> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let q = format!(
        "/api/v1/query_exemplars?query={}&start={since}&end={}",
        urlencode(selector),
        now + 60.0
    );
    let (status, body) = p.get(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
    assert_eq!(status, 200, "{q}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let mut out = Vec::new();
    for s in v["data"].as_array().into_iter().flatten() {
        let series: BTreeMap<String, String> =
            serde_json::from_value(s["seriesLabels"].clone()).expect("labels");
        for e in s["exemplars"].as_array().into_iter().flatten() {
            out.push(Ex {
                series: series.clone(),
                trace_id: e["labels"]["trace_id"].as_str().unwrap_or("").to_string(),
                span_id: e["labels"]["span_id"].as_str().unwrap_or("").to_string(),
                value: e["value"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN),
            });
        }
    }
    out
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Waits until the exemplars of `selector` stop changing (the Collector passes data on
/// asynchronously) and returns them.
fn settled_exemplars(p: &Prometheus, selector: &str, since: f64) -> Vec<Ex> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = usize::MAX;
    loop {
        let e = exemplars(p, selector, since);
        if (!e.is_empty() && e.len() == last) || Instant::now() > deadline {
            return e;
        }
        last = e.len();
        std::thread::sleep(Duration::from_millis(1500));
    }
}

/// Spans in the debug exporter's detailed log: (trace id, parent id, id, name, kind,
/// attributes).
#[derive(Debug, Default, Clone)]
struct LoggedSpan {
    trace_id: String,
    parent_id: String,
    id: String,
    name: String,
    kind: String,
    attrs: BTreeMap<String, String>,
}

fn logged_spans(log: &str) -> Vec<LoggedSpan> {
    let mut out: Vec<LoggedSpan> = Vec::new();
    let mut cur: Option<LoggedSpan> = None;
    let mut in_attrs = false;
    for line in log.lines() {
        let l = line.trim();
        if l.starts_with("Span #") {
            out.extend(cur.take());
            cur = Some(LoggedSpan::default());
            in_attrs = false;
            continue;
        }
        let Some(s) = cur.as_mut() else { continue };
        let field = |name: &str| {
            l.strip_prefix(name)
                .map(|r| r.trim_start().trim_start_matches(':').trim().to_string())
        };
        if let Some(v) = field("Trace ID") {
            s.trace_id = v;
        } else if let Some(v) = field("Parent ID") {
            s.parent_id = v;
        } else if let Some(v) = field("ID") {
            s.id = v;
        } else if let Some(v) = field("Name") {
            s.name = v;
        } else if let Some(v) = field("Kind") {
            s.kind = v;
        } else if l.starts_with("Attributes:") {
            in_attrs = true;
        } else if in_attrs && let Some(kv) = l.strip_prefix("-> ") {
            if let Some((k, v)) = kv.split_once(": ") {
                s.attrs.insert(k.to_string(), v.to_string());
            }
        } else if !l.starts_with("->") {
            in_attrs = false;
        }
    }
    out.extend(cur);
    out
}

#[test]
fn exemplars_and_client_spans_via_remote_write_and_the_collector() {
    let t = support::target();
    let direct = Prometheus::start();
    let via = Prometheus::start();
    let collector = Collector::start_with_env(&via.write_url(), &[("DEBUG_VERBOSITY", "detailed")]);
    let run_id = support::run_id("exemplars");
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
        - 5.0;
    // Three requests under one name (one series): every collection interval holds several
    // of each, so the slowest sampled request of every interval is a /delay/120 one. A
    // random pick would be one of the fast ones two times in three.
    let cfg = format!(
        r#"
        [run]
        id = "{run_id}"
        [defaults]
        base_url = "http://{}"
        [tracing]
        sample_ratio = 1.0
        per_iteration = true
        export = "otlp"
        [[scenarios]]
        name = "journey"
        executor = "constant-vus"
        vus = 3
        duration = "3500ms"
        [[scenarios.tasks]]
        requests = [{{ name = "delay", url = "/delay/5" }}]
        [[scenarios.tasks]]
        requests = [{{ name = "delay", url = "/delay/25" }}]
        [[scenarios.tasks]]
        requests = [{{ name = "delay", url = "/delay/120" }}]
        [[metrics.remote_write]]
        url = "{}"
        push_interval = "1s"
        {}
        "#,
        t.addr,
        direct.write_url(),
        otlp_metrics(&collector.grpc_endpoint, "grpc", "")
    );
    let s = support::run_toml(&cfg, &Overrides::default());
    assert!(s.requests > 30, "{}", s.requests);
    for row in &s.export {
        assert_eq!(row.not_delivered, 0, "{row:?}");
    }
    let spans_row = s
        .export
        .iter()
        .find(|r| r.exporter.starts_with("otlp/grpc spans"))
        .unwrap_or_else(|| panic!("no span export row: {:?}", s.export));
    // One client span per request and one root span per iteration.
    assert_eq!(
        spans_row.delivered,
        s.requests + s.iterations,
        "{spans_row:?}"
    );

    let got = seen(&t);
    assert_eq!(got.len() as u64, s.requests, "every request was sampled");
    let by_span: BTreeMap<&str, (&str, &str)> = got
        .iter()
        .map(|(trace, span, path)| (span.as_str(), (trace.as_str(), path.as_str())))
        .collect();

    let selector =
        format!("http_client_request_duration_seconds_bucket{{stampede_run_id=\"{run_id}\"}}");
    for (path, p) in [("remote-write", &direct), ("collector", &via)] {
        let ex = settled_exemplars(p, &selector, since);
        assert!(
            ex.len() >= 3,
            "{path}: an exemplar per interval, got {ex:?}\n{}",
            p.log()
        );
        let mut traces = BTreeSet::new();
        for e in &ex {
            let (trace, target_path) = by_span.get(e.span_id.as_str()).unwrap_or_else(|| {
                panic!("{path}: exemplar {e:?} is not a request the target saw")
            });
            assert_eq!(*trace, e.trace_id, "{path}: {e:?}");
            assert_eq!(
                *target_path, "/delay/120",
                "{path}: the exemplar is the slowest request of its interval: {e:?}"
            );
            assert!((0.12..1.0).contains(&e.value), "{path}: {e:?}");
            // On the bucket the value falls in: le ≥ value > the bound below (a loaded machine
            // can stretch the 120 ms request past the 0.15 bucket: the bucket follows it).
            let le: f64 = e.series["le"].parse().unwrap_or(f64::INFINITY);
            let expected = stampede::config::DEFAULT_DURATION_BUCKETS
                .iter()
                .copied()
                .find(|b| e.value <= *b)
                .unwrap_or(f64::INFINITY);
            assert_eq!(le, expected, "{path}: {e:?}");
            assert_eq!(e.series["url_template"], "delay");
            traces.insert(e.trace_id.clone());
        }
        assert_eq!(traces.len(), ex.len(), "{path}: one exemplar per interval");
    }

    // Client spans in the Collector, with their attributes and parent ids.
    let deadline = Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans = logged_spans(&collector.logs());
        if spans.len() as u64 >= s.requests + s.iterations || Instant::now() > deadline {
            break spans;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let clients: Vec<&LoggedSpan> = spans.iter().filter(|s| s.kind == "Client").collect();
    let roots: BTreeMap<&str, &LoggedSpan> = spans
        .iter()
        .filter(|s| s.kind == "Internal")
        .map(|s| (s.id.as_str(), s))
        .collect();
    assert_eq!(clients.len() as u64, s.requests, "{:?}", spans.first());
    assert_eq!(roots.len() as u64, s.iterations);
    let port = t.addr.port().to_string();
    for c in &clients {
        let (trace, path) = by_span
            .get(c.id.as_str())
            .unwrap_or_else(|| panic!("span {c:?} is not a request the target saw"));
        assert_eq!(*trace, c.trace_id);
        let root = roots
            .get(c.parent_id.as_str())
            .unwrap_or_else(|| panic!("span {c:?}: its parent is no iteration root span"));
        assert_eq!(root.trace_id, c.trace_id);
        assert_eq!(root.parent_id, "", "{root:?}");
        assert_eq!(root.name, "iteration journey");
        assert_eq!(c.name, "GET delay");
        let a = |k: &str| c.attrs.get(k).map(String::as_str).unwrap_or("");
        assert_eq!(a("http.request.method"), "Str(GET)", "{c:?}");
        assert_eq!(a("server.address"), "Str(127.0.0.1)", "{c:?}");
        assert_eq!(a("server.port"), format!("Int({port})"), "{c:?}");
        assert_eq!(
            a("url.full"),
            format!("Str(http://127.0.0.1:{port}{path})"),
            "{c:?}"
        );
        assert_eq!(a("http.response.status_code"), "Int(200)", "{c:?}");
        assert_eq!(a("error.type"), "", "{c:?}");
        assert_eq!(a("stampede.run.id"), format!("Str({run_id})"), "{c:?}");
    }
}

#[test]
fn bad_tracing_settings_are_named_with_exit_code_2() {
    let out = support::stampede(&[
        "run",
        "-u",
        "http://127.0.0.1:1/",
        "--trace-sample-ratio",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--trace-sample-ratio") && err.contains("from 0 to 1"),
        "{err}"
    );

    let out = support::stampede(&["run", "-u", "http://127.0.0.1:1/", "--otlp-traces"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tracing.export") && err.contains("sample_ratio"),
        "{err}"
    );

    let out = support::stampede(&[
        "run",
        "-u",
        "http://127.0.0.1:1/",
        "--trace-sample-ratio",
        "0.5",
        "--otlp-traces",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tracing.export") && err.contains("--otlp-endpoint"),
        "{err}"
    );

    let (_dir, p) = support::write_config(
        "t.toml",
        "[tracing]\nsample_ratio = 1.5\n[[scenarios]]\nrequests = [{ url = \"http://127.0.0.1:1/\" }]\n",
    );
    let out = support::stampede(&["validate", &p.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tracing.sample_ratio"), "{err}");
}

#[test]
fn client_spans_over_otlp_http_reach_the_collector() {
    let t = support::target();
    let prom = Prometheus::start();
    let collector =
        Collector::start_with_env(&prom.write_url(), &[("DEBUG_VERBOSITY", "detailed")]);
    let cfg = format!(
        r#"
        [defaults]
        base_url = "http://{}"
        [tracing]
        sample_ratio = 1.0
        export = "otlp"
        [[scenarios]]
        executor = "shared-iterations"
        vus = 2
        iterations = 20
        requests = [{{ url = "/status/503" }}]
        {}
        "#,
        t.addr,
        otlp_metrics(&collector.http_endpoint, "http", "")
    );
    let s = support::run_toml(&cfg, &Overrides::default());
    assert_eq!(s.requests, 20);
    let row = s
        .export
        .iter()
        .find(|r| r.exporter.starts_with("otlp/http spans"))
        .unwrap_or_else(|| panic!("no span export row: {:?}", s.export));
    assert!(row.exporter.ends_with("/v1/traces"), "{row:?}");
    assert_eq!((row.delivered, row.not_delivered), (20, 0), "{row:?}");
    let got = seen(&t);
    let deadline = Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans = logged_spans(&collector.logs());
        if spans.len() >= 20 || Instant::now() > deadline {
            break spans;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(spans.len(), 20, "{}", collector.logs());
    for sp in &spans {
        assert!(
            got.iter()
                .any(|(trace, span, _)| *trace == sp.trace_id && *span == sp.id),
            "{sp:?} is a request the target saw"
        );
        assert_eq!(sp.parent_id, "", "per request: a root span");
        assert_eq!(sp.kind, "Client");
        assert_eq!(sp.attrs["http.response.status_code"], "Int(503)");
        assert_eq!(sp.attrs["error.type"], "Str(503)");
    }
}

#[test]
fn spans_that_cannot_be_delivered_are_reported_loudly() {
    let t = support::target();
    let down = format!("http://127.0.0.1:{}", support::free_port());
    let url = format!("http://{}/", t.addr);
    let dir = tempfile::tempdir().expect("temp dir");
    let summary = dir.path().join("s.json");
    let out = support::stampede(&[
        "run",
        "-u",
        &url,
        "-n",
        "10",
        "-c",
        "1",
        "--quiet",
        "--trace-sample-ratio",
        "1",
        "--otlp-traces",
        "--otlp-endpoint",
        &down,
        "--otlp-protocol",
        "grpc",
        "--summary-json",
        &summary.display().to_string(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("10 spans NOT delivered"), "{err}");
    let s = support::read_json(&summary);
    support::schema::assert_summary_conforms(&s);
    let row = s["export"]
        .as_array()
        .and_then(|rows| {
            rows.iter().find(|r| {
                r["exporter"]
                    .as_str()
                    .is_some_and(|e| e.contains(" spans "))
            })
        })
        .cloned()
        .unwrap_or_else(|| panic!("no span row: {}", s["export"]));
    assert_eq!(row["unit"], "spans");
    assert_eq!(row["delivered"], 0);
    assert_eq!(row["not_delivered"], 10);
}

#[test]
fn the_collector_config_validates_with_span_forwarding_on() {
    use crate::support::collector::{collector_binary, collector_config};
    let out = std::process::Command::new(collector_binary())
        .arg("validate")
        .arg("--config")
        .arg(collector_config())
        .env("TRACES_EXPORTERS", "[debug, otlp_grpc/traces]")
        .env("TRACES_OTLP_ENDPOINT", "127.0.0.1:4317")
        .output()
        .expect("run otelcol validate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
