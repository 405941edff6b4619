//! Tests of the queue → send stages against a tiny in-process hyper receiver on
//! 127.0.0.1:0 that decodes snappy+protobuf bodies and answers scripted statuses; secrets by
//! key, redaction. (Settings: `config/export.rs`; retry policy: `export/retry.rs`.)

use super::*;
use crate::test_support::{make_test_pki, tls_receiver};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;

use crate::config::{Dur, Secret};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

use hyper::server::conn::http1 as server_http1;
use hyper::service::service_fn;
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
struct Recorded {
    status: u16,
    headers: HeaderMap,
    req: Option<WriteRequest>,
}

struct Receiver {
    addr: SocketAddr,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    attempts: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Starts a receiver answering statuses from `script` in order, then 200.
    async fn start(script: Vec<u16>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let recorded: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let attempts = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (rec, att) = (recorded.clone(), attempts.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (rec, att, script) = (rec.clone(), att.clone(), script.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (rec, att, script) = (rec.clone(), att.clone(), script.clone());
                        async move {
                            att.fetch_add(1, Ordering::SeqCst);
                            let headers = req.headers().clone();
                            let body = req.into_body().collect().await.map(|b| b.to_bytes());
                            let decoded = body
                                .ok()
                                .and_then(|b| encode::decode_write_request(&b).ok());
                            let status = script.lock().expect("lock").pop_front().unwrap_or(200);
                            rec.lock().expect("lock").push(Recorded {
                                status,
                                headers,
                                req: decoded,
                            });
                            let mut resp = hyper::Response::builder().status(status);
                            if status == 429 {
                                resp = resp.header("Retry-After", "0");
                            }
                            let text = if status >= 400 {
                                "out of order sample ".repeat(100)
                            } else {
                                String::new()
                            };
                            Ok::<_, std::convert::Infallible>(
                                resp.body(Full::new(Bytes::from(text))).expect("response"),
                            )
                        }
                    });
                    let _ = server_http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self {
            addr,
            recorded,
            attempts,
            _task: task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    fn recorded(&self) -> Vec<Recorded> {
        self.recorded.lock().expect("lock").clone()
    }

    /// First sample value of every successfully received request, in arrival order.
    fn delivered_values(&self) -> Vec<f64> {
        self.recorded()
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .filter_map(|r| r.req.as_ref())
            .map(|r| r.timeseries[0].samples[0].value)
            .collect()
    }
}

fn cfg(url: String) -> RemoteWriteConfig {
    RemoteWriteConfig {
        url,
        timeout: Dur::secs(2),
        min_backoff: Dur::millis(5),
        max_backoff: Dur::millis(20),
        ..RemoteWriteConfig::default()
    }
}

fn one(v: f64) -> WriteRequest {
    WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: "t".into(),
                },
                Label {
                    name: "job".into(),
                    value: "test".into(),
                },
            ],
            samples: vec![Sample {
                value: v,
                timestamp: 1_700_000_000_000,
            }],
            exemplars: vec![],
            histograms: vec![],
        }],
        metadata: vec![],
    }
}

async fn free_port_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}/api/v1/write")
}

#[tokio::test]
async fn sends_in_order_with_protocol_and_auth_headers() {
    let rx = Receiver::start(vec![]).await;
    let mut c = cfg(rx.url());
    c.bearer_token = Some(Secret("s3cr3t".into()));
    c.headers.insert("X-Scope-OrgID".into(), "tenant-1".into());
    let exp = RemoteWriteExporter::new(c).expect("exporter");
    for i in 0..5 {
        exp.enqueue_request(&one(f64::from(i))).expect("enqueue");
    }
    let report = exp.flush(Duration::from_secs(5)).await;
    assert!(report.drained, "{report:?}");
    assert_eq!(rx.delivered_values(), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
    assert_eq!(report.stats.batches_sent, 5);
    assert_eq!(report.stats.samples_sent, 5);
    assert_eq!(report.samples_not_delivered, 0);
    let h = &rx.recorded()[0].headers;
    let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert_eq!(get("content-encoding"), "snappy");
    assert_eq!(get("content-type"), "application/x-protobuf");
    assert_eq!(get("x-prometheus-remote-write-version"), "0.1.0");
    assert_eq!(
        get("user-agent"),
        concat!("stampede/", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(get("authorization"), "Bearer s3cr3t");
    assert_eq!(get("x-scope-orgid"), "tenant-1");
    assert_eq!(get("host"), rx.addr.to_string());
    // one keep-alive connection is reused: 5 requests, 5 attempts
    assert_eq!(rx.attempts.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn retries_503_and_429_then_succeeds() {
    let rx = Receiver::start(vec![503, 429, 500]).await;
    let exp = RemoteWriteExporter::new(cfg(rx.url())).expect("exporter");
    exp.enqueue_request(&one(7.0)).expect("enqueue");
    exp.enqueue_request(&one(8.0)).expect("enqueue");
    let report = exp.flush(Duration::from_secs(5)).await;
    assert!(report.drained);
    assert_eq!(rx.attempts.load(Ordering::SeqCst), 5);
    assert_eq!(report.stats.retries, 3);
    assert_eq!(report.stats.batches_sent, 2);
    assert_eq!(rx.delivered_values(), vec![7.0, 8.0]);
}

#[tokio::test]
async fn no_retry_on_400_and_next_batch_still_sent() {
    let rx = Receiver::start(vec![400]).await;
    let exp = RemoteWriteExporter::new(cfg(rx.url())).expect("exporter");
    exp.enqueue_request(&one(1.0)).expect("enqueue");
    exp.enqueue_request(&one(2.0)).expect("enqueue");
    let report = exp.flush(Duration::from_secs(5)).await;
    assert!(report.drained);
    // exactly one attempt for the rejected batch, one for the next
    assert_eq!(rx.attempts.load(Ordering::SeqCst), 2);
    assert_eq!(report.stats.retries, 0);
    assert_eq!(report.stats.batches_rejected, 1);
    assert_eq!(report.stats.samples_rejected, 1);
    assert_eq!(report.stats.batches_sent, 1);
    assert_eq!(rx.delivered_values(), vec![2.0]);
    assert_eq!(report.samples_not_delivered, 1);
}

#[tokio::test]
async fn queue_overflow_drops_oldest_and_counts() {
    let rx = Receiver::start(vec![]).await;
    let mut c = cfg(rx.url());
    c.queue_capacity = 3;
    let exp = RemoteWriteExporter::new(c).expect("exporter");
    // current-thread runtime: the sender cannot run before we await, so all ten
    // batches hit the queue first.
    for i in 0..10 {
        exp.enqueue_request(&one(f64::from(i))).expect("enqueue");
    }
    let s = exp.stats();
    assert_eq!(s.batches_dropped, 7);
    assert_eq!(s.samples_dropped, 7);
    assert_eq!(s.batches_pending, 3);
    let report = exp.flush(Duration::from_secs(5)).await;
    assert!(report.drained);
    assert_eq!(rx.delivered_values(), vec![7.0, 8.0, 9.0]);
    assert_eq!(report.samples_not_delivered, 7);
}

#[tokio::test]
async fn flush_reports_pending_when_the_receiver_keeps_failing() {
    let rx = Receiver::start(vec![503; 10_000]).await;
    let mut c = cfg(format!("http://{}/api/v1/write", rx.addr));
    c.max_retries = 10_000;
    let exp = RemoteWriteExporter::new(c).expect("exporter");
    for i in 0..3 {
        exp.enqueue_request(&one(f64::from(i))).expect("enqueue");
    }
    let report = exp.flush(Duration::from_millis(300)).await;
    assert!(!report.drained);
    assert_eq!(report.stats.samples_pending, 3);
    assert_eq!(report.stats.batches_pending, 3);
    assert_eq!(report.samples_not_delivered, 3);
    assert_eq!(report.stats.samples_sent, 0);
    assert!(report.stats.retries > 0);
}

#[tokio::test]
async fn gives_up_after_max_retries_and_counts_failed() {
    let rx = Receiver::start(vec![503; 3]).await;
    let mut c = cfg(format!("http://{}/api/v1/write", rx.addr));
    c.max_retries = 2;
    let exp = RemoteWriteExporter::new(c).expect("exporter");
    exp.enqueue_request(&one(1.0)).expect("enqueue");
    let report = exp.flush(Duration::from_secs(5)).await;
    assert!(report.drained);
    assert_eq!(report.stats.retries, 2);
    assert_eq!(report.stats.batches_failed, 1);
    assert_eq!(report.samples_not_delivered, 1);
    assert_eq!(
        exp.delivery().hint,
        None,
        "a 503 says nothing is misconfigured"
    );
}

/// A receiver that refused every connection of the run is given up at the final flush after
/// two attempts each, not retried until the deadline; the hint says nothing listens there.
#[tokio::test]
async fn a_receiver_unreachable_all_run_is_given_up_at_the_flush() {
    let url = free_port_url().await;
    let mut c = cfg(url.clone());
    c.max_retries = 10_000;
    c.min_backoff = crate::config::Dur::secs(1);
    c.max_backoff = crate::config::Dur::secs(1);
    let exp = RemoteWriteExporter::new(c).expect("exporter");
    for i in 0..3 {
        exp.enqueue_request(&one(f64::from(i))).expect("enqueue");
    }
    let started = std::time::Instant::now();
    let report = exp.flush(Duration::from_secs(10)).await;
    assert!(report.drained);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        (report.stats.batches_failed, report.stats.attempts_failed),
        (3, 6)
    );
    let d = exp.delivery();
    assert_eq!((d.given_up, d.delivered), (3, 0));
    let hint = d.hint.unwrap_or_default();
    assert!(
        hint.starts_with(&format!("nothing accepted a connection at {url} all run")),
        "{hint}"
    );
}

/// Prometheus' HTTP 500 "native histograms are disabled" is rejected at once, with its hint.
#[tokio::test]
async fn a_permanent_500_is_rejected_at_once_with_a_hint() {
    let url = canned_500("native histograms are disabled").await;
    let exp = RemoteWriteExporter::new(cfg(url)).expect("exporter");
    exp.enqueue_request(&one(1.0)).expect("enqueue");
    let report = exp.flush(Duration::from_secs(5)).await;
    assert!(report.drained);
    assert_eq!(
        (report.stats.batches_rejected, report.stats.retries),
        (1, 0)
    );
    let hint = exp.delivery().hint.unwrap_or_default();
    assert!(
        hint.contains("--enable-feature=native-histograms"),
        "{hint}"
    );
}

/// A receiver answering every request HTTP 500 with `body`.
async fn canned_500(body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(
                    move |_req: hyper::Request<hyper::body::Incoming>| async move {
                        hyper::Response::builder()
                            .status(500)
                            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                                body.as_bytes(),
                            )))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}/api/v1/write")
}

#[tokio::test]
async fn basic_auth_from_url_userinfo_is_sent_and_redacted() {
    let rx = Receiver::start(vec![]).await;
    let url = format!("http://user:pa55@{}/api/v1/write", rx.addr);
    let exp = RemoteWriteExporter::new(cfg(url)).expect("exporter");
    assert!(!exp.redacted_url().contains("pa55"));
    assert!(!format!("{exp:?}").contains("pa55"));
    exp.enqueue_request(&one(1.0)).expect("enqueue");
    assert!(exp.flush(Duration::from_secs(5)).await.drained);
    let h = &rx.recorded()[0].headers;
    // base64("user:pa55")
    assert_eq!(
        h.get("authorization").and_then(|v| v.to_str().ok()),
        Some("Basic dXNlcjpwYTU1")
    );
}

/// One credentials rule for every URL: the remote-write endpoint and the load target decode
/// `user:p%40ss@` the same way, upper-case scheme included.
#[test]
fn url_credentials_give_the_same_authorization_as_the_load_target() {
    for url in [
        "http://user:p%40ss@127.0.0.1:9/api/v1/write",
        "HTTP://user:p%40ss@127.0.0.1:9/api/v1/write",
    ] {
        let rw = Settings::resolve(&cfg(url.into())).expect("resolve");
        let rw = rw.headers[header::AUTHORIZATION].to_str().expect("ascii");
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("s.toml");
        let toml = format!(
            "[[scenarios]]\nvus = 1\nduration = \"1s\"\nrequests = [{{ url = \"{url}\" }}]\n"
        );
        std::fs::write(&p, toml).expect("write");
        let c = crate::config::load(Some(&p), &crate::config::Overrides::default()).expect("load");
        let plan = crate::scenario::plan::build(c, "t".into(), "s.toml").expect("plan");
        let wire = plan.scenarios[0].tasks[0][0]
            .wire
            .clone()
            .expect("static request");
        let wire = String::from_utf8_lossy(&wire);
        let load = wire
            .lines()
            .find_map(|l| l.strip_prefix("authorization: "))
            .expect("an authorization header");
        assert_eq!(rw, load, "{url}");
        assert_eq!(rw, format!("Basic {}", base64(b"user:p@ss")));
        assert!(
            !wire.contains("p%40ss") && !plan.requests[0].name.contains("ss@"),
            "{wire}"
        );
    }
}

#[tokio::test]
async fn export_from_sdk_and_stale_markers_on_flush() {
    use opentelemetry::KeyValue;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::metrics::{SdkMeterProvider, reader::MetricReader};

    let rx = Receiver::start(vec![]).await;
    let mut c = cfg(rx.url());
    c.stale_markers_on_end = true;
    let exp = RemoteWriteExporter::new(c).expect("exporter");
    assert_eq!(exp.temporality(), Temporality::Cumulative);
    let reader = crate::metrics::SharedReader::new(Temporality::Cumulative);
    let provider = SdkMeterProvider::builder()
        .with_resource(
            Resource::builder_empty()
                .with_attributes([
                    KeyValue::new("service.name", "stampede"),
                    KeyValue::new("service.instance.id", "i-1"),
                ])
                .build(),
        )
        .with_reader(reader.clone())
        .build();
    let counter = provider
        .meter("stampede")
        .u64_counter("stampede.iterations")
        .build();
    counter.add(3, &[KeyValue::new("stampede.scenario", "a")]);
    counter.add(4, &[KeyValue::new("stampede.scenario", "b")]);
    for _ in 0..2 {
        let mut rm = ResourceMetrics::default();
        reader.collect(&mut rm).expect("collect");
        exp.export(&rm).await.expect("export");
    }
    let report = exp.flush(Duration::from_secs(5)).await;
    assert!(report.drained);
    assert_eq!(report.stats.batches_sent, 3);
    let rec = rx.recorded();
    let first = rec[0].req.as_ref().expect("decoded");
    assert_eq!(first.timeseries.len(), 2);
    assert!(
        first
            .timeseries
            .iter()
            .all(|t| t.labels[0].value == "stampede_iterations_total")
    );
    let stale = rec[2].req.as_ref().expect("decoded");
    assert_eq!(stale.timeseries.len(), 2);
    for ts in &stale.timeseries {
        assert_eq!(ts.samples[0].value.to_bits(), STALE_NAN_BITS);
        assert!(ts.samples[0].timestamp > first.timeseries[0].samples[0].timestamp);
    }
    // shutdown → later exports fail
    exp.shutdown().expect("shutdown");
    let mut rm = ResourceMetrics::default();
    reader.collect(&mut rm).expect("collect");
    assert!(exp.export(&rm).await.is_err());
}

#[tokio::test]
async fn new_reports_missing_secret_sources_by_key() {
    let mut c = cfg("http://127.0.0.1:1/api/v1/write".into());
    c.bearer_token_file = Some("/nonexistent/token".into());
    let msg = RemoteWriteExporter::new(c)
        .expect_err("must fail")
        .to_string();
    assert!(msg.contains("remote_write.bearer_token_file"), "{msg}");
    let mut c = cfg("http://127.0.0.1:1/api/v1/write".into());
    c.bearer_token_env = Some("STAMPEDE_TEST_SURELY_UNSET_VAR".into());
    let msg = RemoteWriteExporter::new(c)
        .expect_err("must fail")
        .to_string();
    assert!(msg.contains("remote_write.bearer_token_env"), "{msg}");
}

#[test]
fn new_outside_runtime_fails() {
    let r = RemoteWriteExporter::new(cfg("http://127.0.0.1:1/x".into()));
    assert!(matches!(r, Err(RemoteWriteError::NoRuntime)));
}

#[test]
fn base64_is_standard() {
    assert_eq!(
        base64(b"Aladdin:open sesame"),
        "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
    assert_eq!(base64(b"a"), "YQ==");
    assert_eq!(base64(b"ab"), "YWI=");
}

#[tokio::test]
async fn https_with_custom_ca_insecure_and_untrusted() {
    let dir = std::env::temp_dir().join(format!("stampede-rw-tls-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let Some((ca, cert, key)) = make_test_pki(&dir) else {
        panic!("this test needs the openssl CLI to make certificates: apt-get install -y openssl");
    };
    let (addr, ok) = tls_receiver(&cert, &key, |b| encode::decode_write_request(b).is_ok()).await;
    let url = format!("https://{addr}/api/v1/write");

    // trusted via tls.ca_file
    let mut c = cfg(url.clone());
    c.tls.ca_file = Some(ca);
    let exp = RemoteWriteExporter::new(c).expect("exporter");
    exp.enqueue_request(&one(1.0)).expect("enqueue");
    assert!(exp.flush(Duration::from_secs(5)).await.drained);
    assert_eq!(exp.stats().batches_sent, 1);

    // insecure_skip_verify
    let mut c = cfg(url.clone());
    c.tls.insecure_skip_verify = true;
    let exp = RemoteWriteExporter::new(c).expect("exporter");
    exp.enqueue_request(&one(2.0)).expect("enqueue");
    assert!(exp.flush(Duration::from_secs(5)).await.drained);
    assert_eq!(exp.stats().batches_sent, 1);

    // untrusted (webpki roots only): handshake fails, retried, then given up
    let mut c = cfg(url);
    c.max_retries = 1;
    let exp = RemoteWriteExporter::new(c).expect("exporter");
    exp.enqueue_request(&one(3.0)).expect("enqueue");
    let r = exp.flush(Duration::from_secs(5)).await;
    assert_eq!(r.stats.batches_failed, 1, "{r:?}");
    assert_eq!(ok.load(Ordering::SeqCst), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn large_collections_are_split_into_requests_in_order() {
    use opentelemetry::KeyValue;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::reader::MetricReader;
    use opentelemetry_sdk::metrics::{SdkMeterProvider, Temporality};

    let rx = Receiver::start(vec![]).await;
    let exp = RemoteWriteExporter::new(cfg(rx.url())).expect("exporter");
    let reader = crate::metrics::SharedReader::new(Temporality::Cumulative);
    let provider = SdkMeterProvider::builder()
        .with_reader(reader.clone())
        .build();
    let counter = provider
        .meter("stampede")
        .u64_counter("stampede.iterations")
        .build();
    // 4,500 series, spread over three instruments (each stays under the SDK's default
    // cardinality limit of 2,000 attribute sets).
    for m in 0..3 {
        let c = provider
            .meter("stampede")
            .u64_counter(format!("split.test{m}"))
            .build();
        for i in 0..1500 {
            c.add(1, &[KeyValue::new("i", i64::from(i))]);
        }
    }
    counter.add(1, &[]);
    let mut rm = ResourceMetrics::default();
    reader.collect(&mut rm).expect("collect");
    let samples = exp.export_metrics(&rm).expect("export");
    let report = exp.flush(Duration::from_secs(10)).await;
    assert!(report.drained, "{report:?}");
    let rec = rx.recorded();
    let sizes: Vec<usize> = rec
        .iter()
        .map(|r| r.req.as_ref().expect("decoded").timeseries.len())
        .collect();
    assert!(sizes.len() >= 3, "{sizes:?}");
    assert!(
        sizes.iter().all(|n| *n <= MAX_SERIES_PER_REQUEST),
        "{sizes:?}"
    );
    assert_eq!(sizes.iter().sum::<usize>(), samples);
    assert_eq!(report.stats.samples_sent, samples as u64);
    assert_eq!(report.samples_not_delivered, 0);
}
