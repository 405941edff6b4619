//! End-to-end check of the remote-write exporter against a real
//! Prometheus (collection → translate → encode → queue → send → Prometheus query API).
//! Also exercises `tests/support/prometheus.rs`.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::prometheus::Prometheus;
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{Aggregation, Instrument, SdkMeterProvider, Stream, Temporality};
use stampede::config::{Dur, RemoteWriteConfig};
use stampede::export::remote_write::RemoteWriteExporter;
use stampede::metrics::SharedReader;

const BOUNDS: [f64; 28] = [
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2,
    0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0,
];

fn provider(native: bool) -> (SdkMeterProvider, SharedReader) {
    let reader = SharedReader::new(Temporality::Cumulative);
    let mut b = SdkMeterProvider::builder()
        .with_resource(
            Resource::builder_empty()
                .with_attributes([
                    KeyValue::new("service.name", "stampede"),
                    KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                    KeyValue::new("service.instance.id", "smoke-instance-1"),
                ])
                .build(),
        )
        .with_reader(reader.clone());
    if native {
        b = b.with_view(|i: &Instrument| {
            (i.name() == "http.client.request.duration")
                .then(|| {
                    Stream::builder()
                        .with_aggregation(Aggregation::Base2ExponentialHistogram {
                            max_size: 160,
                            max_scale: 8,
                            record_min_max: true,
                        })
                        .build()
                        .ok()
                })
                .flatten()
        });
    }
    (b.build(), reader)
}

fn attrs(run: &str, status: Option<i64>, error: Option<&str>) -> Vec<KeyValue> {
    let mut v = vec![
        KeyValue::new("stampede.run.id", run.to_owned()),
        KeyValue::new("stampede.scenario", "smoke"),
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("server.address", "127.0.0.1"),
        KeyValue::new("server.port", 8080_i64),
        KeyValue::new("url.template", "home"),
    ];
    if let Some(s) = status {
        v.push(KeyValue::new("http.response.status_code", s));
    }
    if let Some(e) = error {
        v.push(KeyValue::new("error.type", e.to_owned()));
    }
    v
}

async fn push(reader: &SharedReader, exp: &RemoteWriteExporter) -> usize {
    let mut rm = ResourceMetrics::default();
    reader.collect(&mut rm).expect("collect");
    let before = exp.stats().samples_enqueued;
    exp.export(&rm).await.expect("export");
    (exp.stats().samples_enqueued - before) as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_histograms_reach_prometheus_with_contract_names() {
    let prom = Prometheus::start();
    let exp = RemoteWriteExporter::new(RemoteWriteConfig {
        url: prom.write_url(),
        ..RemoteWriteConfig::default()
    })
    .expect("exporter");
    let (provider, reader) = provider(false);
    let meter = provider.meter("stampede");
    let h = meter
        .f64_histogram("http.client.request.duration")
        .with_unit("s")
        .with_boundaries(BOUNDS.to_vec())
        .build();
    let ok = attrs("run-classic", Some(200), None);
    let timeout = attrs("run-classic", None, Some("timeout"));
    for i in 0..1000 {
        h.record(0.001 + f64::from(i) * 0.0005, &ok);
    }
    for _ in 0..37 {
        h.record(10.0, &timeout);
    }
    meter
        .u64_counter("stampede.iterations")
        .with_unit("{iteration}")
        .build()
        .add(1037, &[KeyValue::new("stampede.run.id", "run-classic")]);
    meter
        .i64_gauge("stampede.vus")
        .with_unit("{vu}")
        .build()
        .record(10, &[KeyValue::new("stampede.run.id", "run-classic")]);
    meter
        .i64_up_down_counter("http.client.active_requests")
        .with_unit("{request}")
        .build()
        .add(3, &attrs("run-classic", None, None)[..6]);

    let samples = push(&reader, &exp).await;
    let report = exp.flush(Duration::from_secs(10)).await;
    assert!(report.drained, "{report:?}");
    assert_eq!(
        report.stats.batches_rejected,
        0,
        "{report:?}\n{}",
        prom.log()
    );
    println!(
        "classic push: {samples} samples, {} bytes per push (snappy), {} bytes total over {} pushes",
        report.stats.last_batch_bytes, report.stats.bytes_sent, report.stats.batches_sent
    );

    let sel = r#"{stampede_run_id="run-classic"}"#;
    let q = |e: &str| prom.query_scalar_eventually(e, Duration::from_secs(5));
    assert_eq!(
        q(&format!(
            "sum(http_client_request_duration_seconds_count{sel})"
        )),
        Some(1037.0)
    );
    assert_eq!(
        q(
            r#"sum(http_client_request_duration_seconds_bucket{stampede_run_id="run-classic",le="+Inf"})"#
        ),
        Some(1037.0)
    );
    assert_eq!(
        q(r#"sum(http_client_request_duration_seconds_count{error_type="timeout"})"#),
        Some(37.0)
    );
    // 1000 values 0.001..0.5: those <= 0.1 are i <= 198 → 199
    assert_eq!(
        q(
            r#"sum(http_client_request_duration_seconds_bucket{le="0.1",http_response_status_code="200"})"#
        ),
        Some(199.0)
    );
    assert_eq!(
        q(&format!("sum(stampede_iterations_total{sel})")),
        Some(1037.0)
    );
    assert_eq!(q(&format!("sum(stampede_vus{sel})")), Some(10.0));
    assert_eq!(
        q(&format!("sum(http_client_active_requests{sel})")),
        Some(3.0)
    );
    assert!(
        q(&format!(
            "sum(http_client_request_duration_seconds_sum{sel})"
        ))
        .is_some()
    );

    let les: BTreeSet<String> = prom
        .series(r#"http_client_request_duration_seconds_bucket{http_response_status_code="200"}"#)
        .into_iter()
        .filter_map(|s| s.get("le").cloned())
        .collect();
    for le in ["0.0005", "0.005", "0.0075", "1", "7.5", "60", "+Inf"] {
        assert!(les.contains(le), "missing le={le} in {les:?}");
    }
    assert_eq!(les.len(), 29);

    let series = prom.series(r#"http_client_request_duration_seconds_count{error_type="timeout"}"#);
    assert_eq!(series.len(), 1);
    let names: Vec<&str> = series[0].keys().map(String::as_str).collect();
    assert_eq!(
        names,
        vec![
            "__name__",
            "error_type",
            "http_request_method",
            "instance",
            "job",
            "server_address",
            "server_port",
            "stampede_run_id",
            "stampede_scenario",
            "url_template"
        ]
    );
    assert_eq!(series[0]["job"], "stampede");
    assert_eq!(series[0]["instance"], "smoke-instance-1");
    assert_eq!(series[0]["server_port"], "8080");

    let ti = prom.series(r#"target_info{job="stampede"}"#);
    assert_eq!(ti.len(), 1, "{ti:?}");
    assert_eq!(ti[0]["service_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(ti[0]["instance"], "smoke-instance-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_histograms_and_receiver_restart() {
    let mut prom = Prometheus::start_with(true);
    let exp = RemoteWriteExporter::new(RemoteWriteConfig {
        url: prom.write_url(),
        min_backoff: Dur::millis(50),
        max_backoff: Dur::millis(500),
        max_retries: 100,
        ..RemoteWriteConfig::default()
    })
    .expect("exporter");
    let (provider, reader) = provider(true);
    let meter = provider.meter("stampede");
    let h = meter
        .f64_histogram("http.client.request.duration")
        .with_unit("s")
        .build();
    let ok = attrs("run-native", Some(200), None);
    let mut n = 0u32;
    for i in 0..500 {
        h.record(0.002 + f64::from(i) * 0.0004, &ok); // 2ms..202ms
        n += 1;
    }
    let s1 = push(&reader, &exp).await;
    assert!(exp.flush(Duration::from_secs(10)).await.drained);

    // receiver restarted mid-run: pushes made while it is down are retried
    prom.stop();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for i in 0..500 {
        h.record(0.002 + f64::from(i) * 0.0004, &ok);
        n += 1;
    }
    let s2 = push(&reader, &exp).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    prom.restart();
    let report = exp.flush(Duration::from_secs(20)).await;
    assert!(report.drained, "{report:?}");
    assert_eq!(
        report.stats.batches_rejected,
        0,
        "{report:?}\n{}",
        prom.log()
    );
    assert_eq!(report.samples_not_delivered, 0, "{report:?}");
    assert!(report.stats.retries > 0);
    println!(
        "native push: {s1}+{s2} samples, {} bytes per push (snappy), stats {:?}",
        report.stats.last_batch_bytes, report.stats
    );

    let q = |e: &str| prom.query_scalar_eventually(e, Duration::from_secs(5));
    let sel = r#"{stampede_run_id="run-native"}"#;
    assert_eq!(
        q(&format!(
            "histogram_count(sum(http_client_request_duration_seconds{sel}))"
        )),
        Some(f64::from(n))
    );
    let sum = q(&format!(
        "histogram_sum(sum(http_client_request_duration_seconds{sel}))"
    ))
    .unwrap_or(0.0);
    let want: f64 = 2.0 * (0..500).map(|i| 0.002 + f64::from(i) * 0.0004).sum::<f64>();
    assert!((sum - want).abs() < 1e-6, "sum {sum} want {want}");
    let p99 = q(&format!(
        "histogram_quantile(0.99, sum(rate(http_client_request_duration_seconds{sel}[1m])))"
    ))
    .unwrap_or(f64::NAN);
    // true p99 of the second window ≈ 0.198 s; schema-8 bucket error < 0.3 %
    assert!((0.19..0.21).contains(&p99), "p99 {p99}");
    let p50 = q(&format!(
        "histogram_quantile(0.5, sum(http_client_request_duration_seconds{sel}))"
    ))
    .unwrap_or(f64::NAN);
    assert!((0.095..0.109).contains(&p50), "p50 {p50}");
    // native histograms: no classic _bucket series
    assert!(
        prom.series("http_client_request_duration_seconds_bucket")
            .is_empty()
    );
}
