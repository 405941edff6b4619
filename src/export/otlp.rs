//! OTLP export (gRPC via tonic, or HTTP/protobuf via a hyper client), with retries and
//! delivery accounting around opentelemetry-otlp's exporter.
//!
//! Settings resolve as code (flags, `[metrics.otlp]`) > standard environment variables >
//! defaults, following the OpenTelemetry SDK environment variable specification.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;

use crate::config::{OtlpConfig, OtlpProtocol, TemporalityConfig};

/// `OTEL_EXPORTER_OTLP_ENDPOINT`: base endpoint for all signals.
pub const ENV_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`: full metrics endpoint.
pub const ENV_METRICS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_HEADERS`: `k=v,k2=v2`, values URL-encoded.
pub const ENV_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
/// `OTEL_EXPORTER_OTLP_PROTOCOL`: `grpc` or `http/protobuf`.
pub const ENV_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// `OTEL_METRIC_EXPORT_INTERVAL`: milliseconds.
pub const ENV_INTERVAL: &str = "OTEL_METRIC_EXPORT_INTERVAL";
/// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`: `cumulative` or `delta`.
pub const ENV_TEMPORALITY: &str = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";

/// Resolved OTLP settings.
#[derive(Clone, PartialEq)]
pub struct Resolved {
    /// Where metrics go (full URL for HTTP).
    pub endpoint: String,
    /// Transport.
    pub protocol: OtlpProtocol,
    /// Headers (secret: never printed).
    pub headers: BTreeMap<String, String>,
    /// Per-export timeout.
    pub timeout: Duration,
    /// Temporality.
    pub temporality: Temporality,
    /// Export interval, if the environment sets one.
    pub interval: Option<Duration>,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("endpoint", &super::remote_write::redact_url(&self.endpoint))
            .field("protocol", &self.protocol)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("temporality", &self.temporality)
            .finish()
    }
}

/// Why OTLP export cannot start.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// A setting is unusable.
    #[error("{source_name}: {message}")]
    Invalid {
        /// The flag, key or variable.
        source_name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The exporter could not be built.
    #[error("OTLP exporter: {0}")]
    Build(String),
}

/// Resolves settings from config and an environment lookup. Returns `None` when OTLP is not
/// configured anywhere.
pub fn resolve(
    cfg: Option<&OtlpConfig>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Resolved>, OtlpError> {
    let cfg_endpoint = cfg
        .and_then(|c| c.endpoint.clone())
        .filter(|e| !e.is_empty());
    let env_metrics = env(ENV_METRICS_ENDPOINT).filter(|e| !e.is_empty());
    let env_base = env(ENV_ENDPOINT).filter(|e| !e.is_empty());
    // (endpoint, is it the full metrics URL already?, where it came from)
    let (endpoint, full, origin) = match (cfg_endpoint, env_metrics, env_base) {
        (Some(e), _, _) => (e, false, "--otlp-endpoint / metrics.otlp.endpoint"),
        (None, Some(e), _) => (e, true, ENV_METRICS_ENDPOINT),
        (None, None, Some(e)) => (e, false, ENV_ENDPOINT),
        (None, None, None) => return Ok(None),
    };
    let uri: http::Uri = endpoint.parse().map_err(|e| OtlpError::Invalid {
        source_name: origin,
        message: format!(
            "`{}` is not a URL: {e}",
            super::remote_write::redact_url(&endpoint)
        ),
    })?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(OtlpError::Invalid {
            source_name: origin,
            message: "the endpoint must start with http:// or https://".into(),
        });
    }
    let protocol = match cfg.and_then(|c| c.protocol) {
        Some(p) => p,
        None => match env(ENV_PROTOCOL).as_deref() {
            Some("grpc") => OtlpProtocol::Grpc,
            Some("http/protobuf") => OtlpProtocol::Http,
            Some(other) => {
                return Err(OtlpError::Invalid {
                    source_name: ENV_PROTOCOL,
                    message: format!("`{other}`: use grpc or http/protobuf"),
                });
            }
            // The conventional ports say which; otherwise the spec's default.
            None if uri.port_u16() == Some(4317) => OtlpProtocol::Grpc,
            None => OtlpProtocol::Http,
        },
    };
    let endpoint = if protocol == OtlpProtocol::Http && !full {
        let trimmed = endpoint.trim_end_matches('/');
        if uri.path().trim_end_matches('/').is_empty() || !trimmed.ends_with("/v1/metrics") {
            format!("{trimmed}/v1/metrics")
        } else {
            trimmed.to_string()
        }
    } else {
        endpoint
    };
    let mut headers = BTreeMap::new();
    if let Some(h) = env(ENV_HEADERS) {
        for kv in h.split(',').filter(|s| !s.trim().is_empty()) {
            let (k, v) = kv.split_once('=').ok_or_else(|| OtlpError::Invalid {
                source_name: ENV_HEADERS,
                message: "expected key=value pairs separated by commas".into(),
            })?;
            headers.insert(
                k.trim().to_ascii_lowercase(),
                crate::http::url::percent_decode(v.trim()),
            );
        }
    }
    if let Some(c) = cfg {
        for (k, v) in &c.headers {
            headers.insert(k.to_ascii_lowercase(), v.clone());
        }
    }
    let temporality = match cfg.and_then(|c| c.temporality) {
        Some(TemporalityConfig::Delta) => Temporality::Delta,
        Some(TemporalityConfig::Cumulative) => Temporality::Cumulative,
        None => match env(ENV_TEMPORALITY)
            .map(|s| s.to_ascii_lowercase())
            .as_deref()
        {
            Some("delta") => Temporality::Delta,
            Some("cumulative") | None => Temporality::Cumulative,
            Some(other) => {
                return Err(OtlpError::Invalid {
                    source_name: ENV_TEMPORALITY,
                    message: format!("`{other}`: use cumulative or delta"),
                });
            }
        },
    };
    let interval = match env(ENV_INTERVAL) {
        Some(ms) => Some(
            ms.trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms >= 100)
                .map(Duration::from_millis)
                .ok_or_else(|| OtlpError::Invalid {
                    source_name: ENV_INTERVAL,
                    message: format!("`{ms}`: milliseconds, at least 100"),
                })?,
        ),
        None => None,
    };
    Ok(Some(Resolved {
        endpoint,
        protocol,
        headers,
        timeout: cfg
            .and_then(|c| c.timeout)
            .map_or(Duration::from_secs(10), |d| d.get()),
        temporality,
        interval,
    }))
}

/// Delivery counters.
#[derive(Clone, Debug, Default)]
pub struct OtlpStats {
    /// Successful exports.
    pub exports_ok: u64,
    /// Failed attempts (each retry counts).
    pub attempts_failed: u64,
    /// Data points in successful exports.
    pub points_delivered: u64,
    /// Exports given up after their retries.
    pub exports_given_up: u64,
    /// Data points whose latest value never reached the receiver. With delta temporality every
    /// export given up adds its points; with cumulative temporality the next successful export
    /// carries the same totals, so this is only the points of a failed export that no later
    /// export superseded (at the end: 0 whenever the final export succeeded).
    pub points_lost: u64,
    /// Whether the most recent export (the final one at the end) was delivered.
    pub last_ok: bool,
    /// The last error (credentials never included).
    pub last_error: Option<String>,
}

/// An OTLP metric exporter with retries.
pub struct OtlpExporter {
    inner: opentelemetry_otlp::MetricExporter,
    settings: Resolved,
    stats: Mutex<OtlpStats>,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("settings", &self.settings)
            .finish()
    }
}

impl OtlpExporter {
    /// Builds the exporter (call inside a tokio runtime).
    pub fn new(settings: Resolved) -> Result<OtlpExporter, OtlpError> {
        let inner = match settings.protocol {
            OtlpProtocol::Grpc => {
                let mut hm = http::HeaderMap::new();
                for (k, v) in &settings.headers {
                    let name = http::HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                        OtlpError::Invalid {
                            source_name: "metrics.otlp.headers",
                            message: format!("invalid header name `{k}`"),
                        }
                    })?;
                    let val = http::HeaderValue::from_str(v).map_err(|_| OtlpError::Invalid {
                        source_name: "metrics.otlp.headers",
                        message: format!("invalid value for header `{k}`"),
                    })?;
                    hm.insert(name, val);
                }
                let md = opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(hm);
                opentelemetry_otlp::MetricExporter::builder()
                    .with_tonic()
                    .with_endpoint(settings.endpoint.clone())
                    .with_timeout(settings.timeout)
                    .with_metadata(md)
                    // Retries happen in `export_with_retry` only (counted, bounded by the
                    // interval); the library's own retry would multiply them.
                    .with_retry_policy(opentelemetry_otlp::RetryPolicy::disabled())
                    .with_temporality(settings.temporality)
                    .build()
            }
            OtlpProtocol::Http => {
                let client = opentelemetry_http::hyper::HyperClient::with_default_connector(
                    settings.timeout,
                    None,
                );
                let headers: HashMap<String, String> = settings
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                opentelemetry_otlp::MetricExporter::builder()
                    .with_http()
                    .with_http_client(client)
                    .with_endpoint(settings.endpoint.clone())
                    .with_timeout(settings.timeout)
                    .with_headers(headers)
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_retry_policy(opentelemetry_otlp::RetryPolicy::disabled())
                    .with_temporality(settings.temporality)
                    .build()
            }
        }
        .map_err(|e| OtlpError::Build(scrub(&e.to_string(), &settings)))?;
        Ok(OtlpExporter {
            inner,
            settings,
            stats: Mutex::new(OtlpStats::default()),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Resolved {
        &self.settings
    }

    /// A name for reports (credentials removed).
    pub fn describe(&self) -> String {
        let p = match self.settings.protocol {
            OtlpProtocol::Grpc => "grpc",
            OtlpProtocol::Http => "http",
        };
        format!(
            "otlp/{p} {}",
            super::remote_write::redact_url(&self.settings.endpoint)
        )
    }

    /// Counters so far.
    pub fn stats(&self) -> OtlpStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Exports with up to `attempts` tries and exponential backoff (200 ms, 400 ms, …, ≤ 5 s),
    /// giving up early at `deadline`.
    pub async fn export_with_retry(
        &self,
        rm: &ResourceMetrics,
        attempts: u32,
        deadline: tokio::time::Instant,
    ) -> bool {
        let points = count_points(rm);
        let mut backoff = Duration::from_millis(200);
        for attempt in 1..=attempts.max(1) {
            match self.inner.export(rm).await {
                Ok(()) => {
                    if let Ok(mut s) = self.stats.lock() {
                        s.exports_ok += 1;
                        s.points_delivered += points;
                        s.last_ok = true;
                        if self.settings.temporality == Temporality::Cumulative {
                            // These totals supersede whatever earlier exports failed to carry.
                            s.points_lost = 0;
                        }
                    }
                    return true;
                }
                Err(e) => {
                    let msg = scrub(&e.to_string(), &self.settings);
                    let first = self.stats.lock().map(|mut s| {
                        s.attempts_failed += 1;
                        let first = s.attempts_failed == 1;
                        s.last_error = Some(msg.clone());
                        first
                    });
                    if first.unwrap_or(false) {
                        tracing::warn!(exporter = %self.describe(), error = %msg, "OTLP export failed; retrying");
                    } else {
                        tracing::debug!(exporter = %self.describe(), error = %msg, attempt, "OTLP export failed");
                    }
                    let now = tokio::time::Instant::now();
                    if attempt == attempts || now + backoff >= deadline {
                        break;
                    }
                    let jitter =
                        Duration::from_millis(fastrand::u64(0..=backoff.as_millis() as u64 / 2));
                    tokio::time::sleep(backoff + jitter).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        if let Ok(mut s) = self.stats.lock() {
            s.exports_given_up += 1;
            if self.settings.temporality == Temporality::Cumulative {
                // A cumulative collection holds every stream's running total, so it replaces
                // the points of any earlier failed one.
                s.points_lost = points;
            } else {
                s.points_lost += points;
            }
            s.last_ok = false;
        }
        false
    }

    /// Shuts the exporter down.
    pub fn shutdown(&self) {
        let _ = self.inner.shutdown_with_timeout(Duration::from_secs(1));
    }
}

/// Removes header values from an error message, in case a transport echoes them.
fn scrub(msg: &str, s: &Resolved) -> String {
    let mut out = msg.to_string();
    for v in s.headers.values().filter(|v| v.len() >= 4) {
        out = out.replace(v.as_str(), "<redacted>");
    }
    out
}

/// Data points in a collection.
pub fn count_points(rm: &ResourceMetrics) -> u64 {
    let mut n = 0u64;
    for sm in rm.scope_metrics() {
        for m in sm.metrics() {
            n += match m.data() {
                AggregatedMetrics::F64(d) => points_of(d),
                AggregatedMetrics::U64(d) => points_of(d),
                AggregatedMetrics::I64(d) => points_of(d),
            };
        }
    }
    n
}

fn points_of<T>(d: &MetricData<T>) -> u64 {
    (match d {
        MetricData::Gauge(g) => g.data_points().count(),
        MetricData::Sum(s) => s.data_points().count(),
        MetricData::Histogram(h) => h.data_points().count(),
        MetricData::ExponentialHistogram(h) => h.data_points().count(),
    }) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn nothing_configured_means_no_otlp() {
        assert!(resolve(None, &env_of(&[])).unwrap().is_none());
    }

    #[test]
    fn code_beats_env_and_http_gets_the_signal_path() {
        let cfg = OtlpConfig {
            endpoint: Some("http://127.0.0.1:4318".into()),
            ..Default::default()
        };
        let r = resolve(
            Some(&cfg),
            &env_of(&[(ENV_ENDPOINT, "http://elsewhere:4317")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.endpoint, "http://127.0.0.1:4318/v1/metrics");
        assert_eq!(r.protocol, OtlpProtocol::Http);
        assert_eq!(r.temporality, Temporality::Cumulative);
    }

    #[test]
    fn env_variables_are_honoured() {
        let r = resolve(
            None,
            &env_of(&[
                (ENV_ENDPOINT, "http://127.0.0.1:4317"),
                (ENV_HEADERS, "api-key=s%3Dcret,x-team=load"),
                (ENV_INTERVAL, "1500"),
                (ENV_TEMPORALITY, "delta"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.protocol, OtlpProtocol::Grpc);
        assert_eq!(r.endpoint, "http://127.0.0.1:4317");
        assert_eq!(r.headers.get("api-key").map(String::as_str), Some("s=cret"));
        assert_eq!(r.interval, Some(Duration::from_millis(1500)));
        assert_eq!(r.temporality, Temporality::Delta);
        // The metrics-specific endpoint is used as-is.
        let r = resolve(
            None,
            &env_of(&[
                (ENV_METRICS_ENDPOINT, "http://127.0.0.1:9999/custom"),
                (ENV_PROTOCOL, "http/protobuf"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.endpoint, "http://127.0.0.1:9999/custom");
        // Debug output never shows header values.
        let cfg = OtlpConfig {
            endpoint: Some("http://127.0.0.1:4318".into()),
            headers: [("authorization".to_string(), "Bearer sekrit".to_string())].into(),
            ..Default::default()
        };
        let r = resolve(Some(&cfg), &env_of(&[])).unwrap().unwrap();
        assert!(!format!("{r:?}").contains("sekrit"));
    }

    #[test]
    fn bad_settings_name_their_source() {
        let e = resolve(
            None,
            &env_of(&[
                (ENV_ENDPOINT, "http://127.0.0.1:4317"),
                (ENV_PROTOCOL, "carrier-pigeon"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(ENV_PROTOCOL), "{e}");
        let e = resolve(None, &env_of(&[(ENV_ENDPOINT, "ftp://x")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains(ENV_ENDPOINT), "{e}");
    }
}
