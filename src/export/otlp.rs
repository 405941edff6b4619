//! OTLP export: the collection converted to the OTLP protobuf messages (opentelemetry-proto),
//! sent over gRPC (tonic) or HTTP/protobuf, both through the exporters' one connector, with
//! the shared retry policy and delivery accounting.
//!
//! Settings resolve as code (flags, `[metrics.otlp]`) > standard environment variables >
//! defaults, following the OpenTelemetry SDK environment variable specification.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http_body_util::Full;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue as ProtoKeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{exemplar, metric};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use prost::Message as _;
use tokio::time::Instant;

use super::delivery::{Delivery, Unit, Waiting};
use super::retry::{Failure, Next, RetryPolicy, chain};
use super::transport::{Connector, Http1, Peer, after, tls_connector};
use crate::config::{OtlpConfig, OtlpProtocol, TemporalityConfig, redact_url};
use crate::metrics::{EXEMPLAR_INSTRUMENT, Exemplar, Exemplars, series_key};

/// `OTEL_EXPORTER_OTLP_ENDPOINT`: base endpoint for all signals.
pub const ENV_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`: full metrics endpoint.
pub const ENV_METRICS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: full traces endpoint (client spans).
pub const ENV_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
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
            .field("endpoint", &redact_url(&self.endpoint))
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
        message: format!("`{}` is not a URL: {e}", redact_url(&endpoint)),
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

/// The retry policy of OTLP exports: a few quick retries within the interval (or the flush
/// deadline); with cumulative temporality the next export carries the same totals anyway.
const RETRY: RetryPolicy = RetryPolicy {
    max_retries: 4,
    min_backoff: Duration::from_millis(200),
    max_backoff: Duration::from_secs(5),
};

/// The settings for client spans, from the metrics settings: the same endpoint (HTTP: its
/// `/v1/metrics` path becomes `/v1/traces`), unless `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
/// names the full traces endpoint.
pub fn traces_settings(metrics: &Resolved, env: &dyn Fn(&str) -> Option<String>) -> Resolved {
    let mut s = metrics.clone();
    if let Some(e) = env(ENV_TRACES_ENDPOINT).filter(|e| !e.is_empty()) {
        s.endpoint = e;
    } else if s.protocol == OtlpProtocol::Http {
        let base = s.endpoint.trim_end_matches('/');
        s.endpoint = match base.strip_suffix("/v1/metrics") {
            Some(b) => format!("{b}/v1/traces"),
            None => format!("{base}/v1/traces"),
        };
    }
    s
}

/// What the receiver said it refused (an OTLP partial success).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Partial {
    /// Items refused.
    pub rejected: i64,
    /// Why.
    pub message: String,
}

/// An OTLP export request: metrics or spans, over gRPC or HTTP/protobuf.
pub trait Payload: prost::Message + Clone + Default + Send + Sync + 'static {
    /// One gRPC call.
    fn grpc(
        channel: tonic::transport::Channel,
        req: tonic::Request<Self>,
    ) -> impl std::future::Future<Output = Result<Option<Partial>, tonic::Status>> + Send;
    /// The partial success in an HTTP answer's body.
    fn partial(body: &[u8]) -> Option<Partial>;
}

impl Payload for ExportMetricsServiceRequest {
    async fn grpc(
        channel: tonic::transport::Channel,
        req: tonic::Request<Self>,
    ) -> Result<Option<Partial>, tonic::Status> {
        let r = MetricsServiceClient::new(channel).export(req).await?;
        Ok(r.into_inner().partial_success.map(|p| Partial {
            rejected: p.rejected_data_points,
            message: p.error_message,
        }))
    }
    fn partial(body: &[u8]) -> Option<Partial> {
        ExportMetricsServiceResponse::decode(body)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| Partial {
                rejected: p.rejected_data_points,
                message: p.error_message,
            })
    }
}

impl Payload for ExportTraceServiceRequest {
    async fn grpc(
        channel: tonic::transport::Channel,
        req: tonic::Request<Self>,
    ) -> Result<Option<Partial>, tonic::Status> {
        let r = TraceServiceClient::new(channel).export(req).await?;
        Ok(r.into_inner().partial_success.map(|p| Partial {
            rejected: p.rejected_spans,
            message: p.error_message,
        }))
    }
    fn partial(body: &[u8]) -> Option<Partial> {
        ExportTraceServiceResponse::decode(body)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| Partial {
                rejected: p.rejected_spans,
                message: p.error_message,
            })
    }
}

/// The series key of an OTLP data point's attributes (as [`series_key`] makes it from the
/// recorder's).
fn proto_series_key(attrs: &[ProtoKeyValue]) -> String {
    series_key(attrs.iter().map(|kv| {
        let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => std::borrow::Cow::Borrowed(s.as_str()),
            Some(any_value::Value::IntValue(i)) => i.to_string().into(),
            Some(any_value::Value::BoolValue(b)) => b.to_string().into(),
            Some(any_value::Value::DoubleValue(d)) => d.to_string().into(),
            _ => "".into(),
        };
        (kv.key.as_str(), v)
    }))
}

fn proto_exemplar(e: &Exemplar) -> opentelemetry_proto::tonic::metrics::v1::Exemplar {
    opentelemetry_proto::tonic::metrics::v1::Exemplar {
        filtered_attributes: Vec::new(),
        time_unix_nano: e
            .time
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        span_id: e.span_id.to_vec(),
        trace_id: e.trace_id.to_vec(),
        value: Some(exemplar::Value::AsDouble(e.value)),
    }
}

/// Adds the exemplars of a collection to the `http.client.request.duration` data points they
/// belong to. opentelemetry_sdk 0.33 has exemplar fields on its data points but never fills
/// them (and they cannot be set from outside), so stampede attaches its own when it builds
/// the protobuf message: one per data point, the slowest sampled request of the interval.
pub fn attach_exemplars(req: &mut ExportMetricsServiceRequest, ex: &Exemplars) -> usize {
    if ex.is_empty() {
        return 0;
    }
    let mut n = 0;
    for rm in &mut req.resource_metrics {
        for sm in &mut rm.scope_metrics {
            for m in sm
                .metrics
                .iter_mut()
                .filter(|m| m.name == EXEMPLAR_INSTRUMENT)
            {
                match &mut m.data {
                    Some(metric::Data::Histogram(h)) => {
                        for dp in &mut h.data_points {
                            if let Some(e) = ex.get(&proto_series_key(&dp.attributes)) {
                                dp.exemplars.push(proto_exemplar(e));
                                n += 1;
                            }
                        }
                    }
                    Some(metric::Data::ExponentialHistogram(h)) => {
                        for dp in &mut h.data_points {
                            if let Some(e) = ex.get(&proto_series_key(&dp.attributes)) {
                                dp.exemplars.push(proto_exemplar(e));
                                n += 1;
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    n
}

/// Data points not delivered, by why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Loss {
    rejected: u64,
    given_up: u64,
    pending: u64,
}

/// Delivery counters.
#[derive(Clone, Debug, Default)]
struct Stats {
    exports_ok: u64,
    attempts_failed: u64,
    points_delivered: u64,
    /// What never reached the receiver. With delta temporality every export adds its losses;
    /// with cumulative temporality each export carries every total so far, so only the
    /// latest export's losses count (0 whenever the final export succeeded).
    loss: Loss,
    last_ok: bool,
    last_error: Option<String>,
    /// Causes already logged at warn (a few; repeats go to debug).
    warned: Vec<String>,
    hint: Option<&'static str>,
    /// Whether the endpoint answered the other OTLP protocol (probed once, after a connection
    /// broke without an answer).
    probed: Option<bool>,
    /// The export being attempted: (data points, failed attempts so far).
    in_flight: Option<(u64, u32)>,
}

/// How the exports travel.
enum Transport {
    Grpc {
        channel: tonic::transport::Channel,
        metadata: tonic::metadata::MetadataMap,
    },
    Http {
        http: tokio::sync::Mutex<Http1>,
        path: String,
        headers: HeaderMap,
    },
}

/// The hint for an OTLP protocol sent to the other protocol's port.
pub const PORT_HINT: &str = "OTLP gRPC usually listens on 4317 and HTTP on 4318: check the port and --otlp-protocol (metrics.otlp.protocol)";

/// An OTLP metric exporter with retries.
pub struct OtlpExporter {
    settings: Resolved,
    peer: Arc<Peer>,
    transport: Transport,
    stats: Mutex<Stats>,
    /// Data points (metrics) or spans.
    unit: Unit,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("settings", &self.settings)
            .finish()
    }
}

fn invalid(source_name: &'static str, message: impl Into<String>) -> OtlpError {
    OtlpError::Invalid {
        source_name,
        message: message.into(),
    }
}

impl OtlpExporter {
    /// Builds the exporter (call inside a tokio runtime).
    pub fn new(settings: Resolved) -> Result<OtlpExporter, OtlpError> {
        let uri: http::Uri = settings
            .endpoint
            .parse()
            .map_err(|e| invalid("metrics.otlp.endpoint", format!("not a URL: {e}")))?;
        let https = uri
            .scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("https"));
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("metrics.otlp.endpoint", "missing host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let alpn: &[&[u8]] = match settings.protocol {
            OtlpProtocol::Grpc => &[b"h2"],
            OtlpProtocol::Http => &[b"http/1.1"],
        };
        let tls = if https {
            Some(tls_connector(false, Vec::new(), alpn).map_err(OtlpError::Build)?)
        } else {
            None
        };
        let peer = Arc::new(Peer { host, port, tls });
        let mut headers = HeaderMap::new();
        for (k, v) in &settings.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                invalid("metrics.otlp.headers", format!("invalid header name `{k}`"))
            })?;
            let mut val = HeaderValue::from_str(v).map_err(|_| {
                invalid(
                    "metrics.otlp.headers",
                    format!("invalid value for header `{k}`"),
                )
            })?;
            val.set_sensitive(true);
            headers.insert(name, val);
        }
        let transport = match settings.protocol {
            OtlpProtocol::Grpc => {
                let endpoint = tonic::transport::Endpoint::from_shared(settings.endpoint.clone())
                    .map_err(|e| OtlpError::Build(scrub(&chain(&e), &settings)))?
                    .user_agent(concat!("stampede/", env!("CARGO_PKG_VERSION")))
                    .map_err(|e| OtlpError::Build(chain(&e)))?;
                let channel = endpoint.connect_with_connector_lazy(Connector(peer.clone()));
                Transport::Grpc {
                    channel,
                    metadata: tonic::metadata::MetadataMap::from_headers(headers),
                }
            }
            OtlpProtocol::Http => {
                let authority = uri
                    .authority()
                    .map(|a| a.as_str().rsplit_once('@').map_or(a.as_str(), |(_, h)| h))
                    .unwrap_or_default();
                let host_header = HeaderValue::from_str(authority)
                    .map_err(|_| invalid("metrics.otlp.endpoint", "invalid host"))?;
                headers.insert(header::HOST, host_header);
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-protobuf"),
                );
                headers.insert(
                    header::USER_AGENT,
                    HeaderValue::from_static(concat!("stampede/", env!("CARGO_PKG_VERSION"))),
                );
                Transport::Http {
                    http: tokio::sync::Mutex::new(Http1::new((*peer).clone())),
                    path: uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
                    headers,
                }
            }
        };
        Ok(OtlpExporter {
            settings,
            peer,
            transport,
            stats: Mutex::new(Stats::default()),
            unit: Unit::DataPoints,
        })
    }

    /// Builds a span exporter (call inside a tokio runtime); `settings` from
    /// [`traces_settings`].
    pub fn for_spans(settings: Resolved) -> Result<OtlpExporter, OtlpError> {
        let mut e = OtlpExporter::new(settings)?;
        e.unit = Unit::Spans;
        Ok(e)
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
        let what = if self.unit == Unit::Spans {
            " spans"
        } else {
            ""
        };
        format!("otlp/{p}{what} {}", redact_url(&self.settings.endpoint))
    }

    fn lock(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What was delivered and what not, so far.
    pub fn delivery(&self) -> Delivery {
        let s = self.lock();
        Delivery {
            exporter: self.describe(),
            unit: self.unit,
            delivered: s.points_delivered,
            dropped: 0,
            rejected: s.loss.rejected,
            given_up: s.loss.given_up,
            pending: s.loss.pending + s.in_flight.map_or(0, |(p, _)| p),
            requests: s.exports_ok,
            bytes: None,
            failed_attempts: s.attempts_failed,
            last_failed: !s.last_ok && s.attempts_failed > 0,
            last_error: s.last_error.clone(),
            hint: s.hint.filter(|_| !s.last_ok).map(str::to_string),
        }
    }

    /// What a flush would still wait for (`None` when no export is in flight).
    pub fn waiting(&self) -> Option<Waiting> {
        let s = self.lock();
        let (points, _) = s.in_flight?;
        Some(Waiting {
            exporter: self.describe(),
            unit: self.unit,
            pending: points,
            requests: 1,
            failed_attempts: s.attempts_failed,
            last_error: s.last_error.clone(),
        })
    }

    /// Counts the points of an export that was cut off (its task aborted at the deadline).
    pub fn abandon_in_flight(&self) {
        let mut s = self.lock();
        if let Some((points, _)) = s.in_flight.take() {
            let loss = Loss {
                pending: points,
                ..Loss::default()
            };
            self.settle(&mut s, loss);
            s.last_ok = false;
        }
    }

    fn settle(&self, s: &mut Stats, loss: Loss) {
        if self.unit == Unit::DataPoints && self.settings.temporality == Temporality::Cumulative {
            // A cumulative collection holds every stream's running total, so it replaces the
            // losses of any earlier one.
            s.loss = loss;
        } else {
            s.loss.rejected += loss.rejected;
            s.loss.given_up += loss.given_up;
            s.loss.pending += loss.pending;
        }
    }

    /// Exports one collection, retrying with the shared policy, never past `deadline`.
    /// Returns whether it was delivered.
    pub async fn export_until(&self, rm: &ResourceMetrics, deadline: Instant) -> bool {
        self.export_with(rm, &Exemplars::new(), deadline).await
    }

    /// [`OtlpExporter::export_until`] with exemplars attached to the request duration points.
    pub async fn export_with(
        &self,
        rm: &ResourceMetrics,
        exemplars: &Exemplars,
        deadline: Instant,
    ) -> bool {
        let points = count_points(rm);
        let mut req = ExportMetricsServiceRequest::from(rm);
        attach_exemplars(&mut req, exemplars);
        self.deliver(&req, points, deadline).await
    }

    /// Exports `spans` spans, retrying with the shared policy, never past `deadline`.
    pub async fn export_spans(
        &self,
        req: &ExportTraceServiceRequest,
        spans: u64,
        deadline: Instant,
    ) -> bool {
        self.deliver(req, spans, deadline).await
    }

    /// Counts spans dropped before they reached the exporter as rejected-free losses.
    async fn deliver<P: Payload>(&self, req: &P, points: u64, deadline: Instant) -> bool {
        self.lock().in_flight = Some((points, 0));
        let mut failures = 0u32;
        let loss = loop {
            let now = Instant::now();
            let until = deadline.min(after(self.settings.timeout));
            let failure = if until <= now {
                Failure::Timeout(Duration::ZERO)
            } else {
                match self.send(req, until).await {
                    Ok(partial) => {
                        let rejected = partial
                            .as_ref()
                            .map_or(0, |p| u64::try_from(p.rejected).unwrap_or(0));
                        let mut s = self.lock();
                        s.in_flight = None;
                        s.exports_ok += 1;
                        s.points_delivered += points.saturating_sub(rejected);
                        s.last_ok = true;
                        let loss = Loss {
                            rejected,
                            ..Loss::default()
                        };
                        self.settle(&mut s, loss);
                        drop(s);
                        if let Some(p) = partial.filter(|p| p.rejected > 0 || !p.message.is_empty())
                        {
                            tracing::warn!(
                                exporter = %self.describe(),
                                "OTLP: the receiver accepted the export partially: {} {} rejected: {}",
                                p.rejected,
                                self.unit.name(u64::try_from(p.rejected).unwrap_or(0)),
                                scrub(&p.message, &self.settings)
                            );
                        }
                        return true;
                    }
                    Err(f) => f,
                }
            };
            failures += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let next = RETRY.after_failure(failures, &failure, fastrand::f64(), Some(left));
            let cause = scrub(&failure.to_string(), &self.settings);
            let hint = match super::retry::hint(&failure) {
                Some(h) => Some(h),
                None => self.hint_for(&failure, deadline).await,
            };
            let new_cause = {
                let mut s = self.lock();
                s.attempts_failed += 1;
                s.in_flight = Some((points, failures));
                s.last_error = Some(cause.clone());
                if hint.is_some() {
                    s.hint = hint;
                }
                super::retry::first_time(&mut s.warned, &cause)
            };
            let hint_text = hint.map(|h| format!(" ({h})")).unwrap_or_default();
            if new_cause {
                tracing::warn!(
                    exporter = %self.describe(),
                    "OTLP export failed (the same cause again is logged at debug): {cause}{hint_text}"
                );
            } else {
                tracing::debug!(exporter = %self.describe(), failures, "OTLP export failed: {cause}");
            }
            match next {
                Next::Retry(delay) => tokio::time::sleep(delay).await,
                Next::Reject => {
                    break Loss {
                        rejected: points,
                        ..Loss::default()
                    };
                }
                Next::GiveUp => {
                    break Loss {
                        given_up: points,
                        ..Loss::default()
                    };
                }
                Next::OutOfTime => {
                    break Loss {
                        pending: points,
                        ..Loss::default()
                    };
                }
            }
        };
        let mut s = self.lock();
        s.in_flight = None;
        s.last_ok = false;
        self.settle(&mut s, loss);
        false
    }

    /// One attempt.
    async fn send<P: Payload>(&self, req: &P, until: Instant) -> Result<Option<Partial>, Failure> {
        let started = Instant::now();
        match &self.transport {
            Transport::Grpc { channel, metadata } => {
                // The attempt's time limit is ours (below), so that every failure reads alike.
                let mut request = tonic::Request::new(req.clone());
                *request.metadata_mut() = metadata.clone();
                match tokio::time::timeout_at(until, P::grpc(channel.clone(), request)).await {
                    Ok(Ok(partial)) => Ok(partial),
                    Ok(Err(status)) => Err(grpc_failure(&status)),
                    Err(_) => Err(Failure::Timeout(until.saturating_duration_since(started))),
                }
            }
            Transport::Http {
                http,
                path,
                headers,
            } => {
                let mut r = http::Request::post(path.as_str())
                    .body(Full::new(Bytes::from(req.encode_to_vec())))
                    .map_err(|e| Failure::Broken(e.to_string()))?;
                *r.headers_mut() = headers.clone();
                let mut http = match tokio::time::timeout_at(until, http.lock()).await {
                    Ok(h) => h,
                    Err(_) => {
                        return Err(Failure::Timeout(until.saturating_duration_since(started)));
                    }
                };
                let answer = http.send(r, until).await?;
                Ok(P::partial(answer.body.as_ref()))
            }
        }
    }

    /// A hint when the failure looks like the other OTLP protocol's port: the conventional
    /// ports, a failure that says so, or (once, after a connection that broke without an
    /// answer) a probe showing that the endpoint speaks the other protocol.
    async fn hint_for(&self, f: &Failure, deadline: Instant) -> Option<&'static str> {
        let port = self
            .settings
            .endpoint
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.port_u16());
        let said = match self.settings.protocol {
            OtlpProtocol::Grpc => {
                port == Some(4318)
                    || matches!(f, Failure::Broken(m) if looks_like_http(m))
                    || matches!(f, Failure::Grpc { code, message }
                        if matches!(code, 2 | 12 | 13) && looks_like_http(message))
            }
            OtlpProtocol::Http => {
                port == Some(4317)
                    || matches!(f, Failure::Broken(m) if m.contains("invalid HTTP version")
                        || m.contains("HTTP/2"))
            }
        };
        if said {
            return Some(PORT_HINT);
        }
        if !matches!(f, Failure::Broken(_)) {
            return None;
        }
        let probed = self.lock().probed;
        let other = match probed {
            Some(other) => other,
            None => {
                let until = deadline.min(Instant::now() + Duration::from_secs(2));
                let other = self.speaks_the_other_protocol(until).await;
                self.lock().probed = Some(other);
                other
            }
        };
        other.then_some(PORT_HINT)
    }

    /// Whether the endpoint answers the other OTLP protocol.
    async fn speaks_the_other_protocol(&self, until: Instant) -> bool {
        match self.settings.protocol {
            OtlpProtocol::Grpc => {
                // Any HTTP/1.1 answer at all.
                let mut http = Http1::new((*self.peer).clone());
                let req = http::Request::get("/")
                    .header(header::HOST, self.peer.host.as_str())
                    .body(Full::new(Bytes::new()));
                match req {
                    Ok(req) => matches!(
                        http.send(req, until).await,
                        Ok(_) | Err(Failure::Status { .. })
                    ),
                    Err(_) => false,
                }
            }
            OtlpProtocol::Http => {
                // An empty gRPC export answered by a gRPC server (success or a gRPC status).
                let scheme = if self.peer.tls.is_some() {
                    "https"
                } else {
                    "http"
                };
                let origin = format!("{scheme}://{}:{}", self.peer.host, self.peer.port);
                let Ok(endpoint) = tonic::transport::Endpoint::from_shared(origin) else {
                    return false;
                };
                let mut grpc_peer = (*self.peer).clone();
                if grpc_peer.tls.is_some() {
                    match tls_connector(false, Vec::new(), &[b"h2"]) {
                        Ok(t) => grpc_peer.tls = Some(t),
                        Err(_) => return false,
                    }
                }
                let channel = endpoint.connect_with_connector_lazy(Connector(Arc::new(grpc_peer)));
                let mut client = MetricsServiceClient::new(channel);
                let probe = client.export(ExportMetricsServiceRequest::default());
                match tokio::time::timeout_at(until, probe).await {
                    Ok(Ok(_)) => true,
                    Ok(Err(status)) => std::error::Error::source(&status).is_none(),
                    Err(_) => false,
                }
            }
        }
    }
}

/// Whether a gRPC failure says the other side speaks HTTP/1.1, not gRPC.
fn looks_like_http(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("frame with invalid size")
        || m.contains("http status")
        || m.contains("content-type")
        || m.contains("h2 protocol")
        || m.contains("invalid http")
}

/// A gRPC status as a failure. A status tonic made from a transport error (no answer from a
/// gRPC server at all) is a broken connection; otherwise the receiver's code and message.
fn grpc_failure(status: &tonic::Status) -> Failure {
    let message = status.message();
    match std::error::Error::source(status) {
        Some(src) => {
            let cause = chain(src);
            Failure::Broken(if cause.starts_with(message) || message.is_empty() {
                cause
            } else {
                format!("{message}: {cause}")
            })
        }
        None => Failure::Grpc {
            code: status.code() as i32,
            message: message.to_string(),
        },
    }
}

/// Removes header values from an error message, in case a receiver echoes them.
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

    /// An OTLP/HTTP receiver answering `(status, content type, body)` from `script` in order,
    /// then 200; counts requests.
    async fn receiver(
        script: Vec<(u16, &'static str, Vec<u8>)>,
    ) -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        use http_body_util::BodyExt;
        use hyper::service::service_fn;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let count = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(Mutex::new(std::collections::VecDeque::from(script)));
        let n = count.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (n, script) = (n.clone(), script.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (n, script) = (n.clone(), script.clone());
                        async move {
                            n.fetch_add(1, Ordering::SeqCst);
                            let body = req.into_body().collect().await.map(|b| b.to_bytes());
                            assert!(
                                body.ok()
                                    .and_then(|b| ExportMetricsServiceRequest::decode(b).ok())
                                    .is_some(),
                                "an OTLP request body"
                            );
                            let (status, ct, body) = script
                                .lock()
                                .expect("lock")
                                .pop_front()
                                .unwrap_or((200, "application/x-protobuf", Vec::new()));
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .header("content-type", ct)
                                    .header("retry-after", "0")
                                    .body(Full::new(Bytes::from(body)))
                                    .expect("response"),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (addr, count)
    }

    fn exporter(addr: std::net::SocketAddr, temporality: TemporalityConfig) -> OtlpExporter {
        let cfg = OtlpConfig {
            endpoint: Some(format!("http://{addr}")),
            protocol: Some(OtlpProtocol::Http),
            temporality: Some(temporality),
            ..Default::default()
        };
        let settings = resolve(Some(&cfg), &env_of(&[])).unwrap().unwrap();
        OtlpExporter::new(settings).expect("exporter")
    }

    /// A collection of `n` data points (one counter, `n` attribute sets).
    fn collection(n: i64) -> ResourceMetrics {
        use opentelemetry::KeyValue;
        use opentelemetry::metrics::MeterProvider as _;
        use opentelemetry_sdk::metrics::SdkMeterProvider;
        use opentelemetry_sdk::metrics::reader::MetricReader;
        let reader = crate::metrics::SharedReader::new(Temporality::Cumulative);
        let provider = SdkMeterProvider::builder()
            .with_reader(reader.clone())
            .build();
        let c = provider.meter("t").u64_counter("c").build();
        for i in 0..n {
            c.add(1, &[KeyValue::new("i", i)]);
        }
        let mut rm = ResourceMetrics::default();
        reader.collect(&mut rm).expect("collect");
        rm
    }

    fn rpc_status(message: &str) -> Vec<u8> {
        #[derive(Clone, PartialEq, prost::Message)]
        struct RpcStatus {
            #[prost(int32, tag = "1")]
            code: i32,
            #[prost(string, tag = "2")]
            message: String,
        }
        RpcStatus {
            code: 3,
            message: message.into(),
        }
        .encode_to_vec()
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn exemplars_are_attached_to_their_request_duration_points() {
        let (rm, ex) =
            crate::export::remote_write::translate::tests::collection_with_exemplar(0.007);
        let mut req = ExportMetricsServiceRequest::from(&rm);
        assert_eq!(attach_exemplars(&mut req, &ex), 1);
        let m = &req.resource_metrics[0].scope_metrics[0].metrics[0];
        let Some(metric::Data::Histogram(h)) = &m.data else {
            panic!("a histogram: {m:?}")
        };
        let e = &h.data_points[0].exemplars[0];
        assert_eq!(e.trace_id, vec![0xab; 16]);
        assert_eq!(e.span_id, vec![0xcd; 8]);
        assert_eq!(e.value, Some(exemplar::Value::AsDouble(0.007)));
        assert_eq!(e.time_unix_nano, 1_700_000_000_123_000_000);
        assert_eq!(attach_exemplars(&mut req, &Exemplars::new()), 0);
    }

    #[test]
    fn traces_go_to_the_metrics_endpoint_or_their_own() {
        let env = env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]);
        let m = resolve(None, &env).ok().flatten().expect("resolved");
        assert_eq!(
            traces_settings(&m, &env).endpoint,
            "http://c:4318/v1/traces"
        );
        let env = env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:4317"),
        ]);
        let m = resolve(None, &env).ok().flatten().expect("resolved");
        assert_eq!(m.protocol, OtlpProtocol::Grpc);
        assert_eq!(traces_settings(&m, &env).endpoint, "http://t:4317");
        let env = env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")]);
        let m = resolve(None, &env).ok().flatten().expect("resolved");
        assert_eq!(traces_settings(&m, &env).endpoint, "http://c:4317");
    }

    #[tokio::test]
    async fn http_retries_a_503_then_counts_a_partial_success() {
        let partial = ExportMetricsServiceResponse {
            partial_success: Some(
                opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess {
                    rejected_data_points: 2,
                    error_message: "two points too old".into(),
                },
            ),
        }
        .encode_to_vec();
        let (addr, requests) = receiver(vec![
            (503, "text/plain", b"busy".to_vec()),
            (200, "application/x-protobuf", partial),
        ])
        .await;
        let exp = exporter(addr, TemporalityConfig::Cumulative);
        assert!(exp.export_until(&collection(5), soon()).await);
        let d = exp.delivery();
        assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(
            (d.delivered, d.rejected, d.not_delivered()),
            (3, 2, 2),
            "{d:?}"
        );
        assert_eq!((d.requests, d.failed_attempts), (1, 1));
        assert_eq!(
            d.last_error.as_deref(),
            Some("HTTP 503 Service Unavailable: busy")
        );
        assert!(!d.last_failed);
    }

    #[tokio::test]
    async fn a_permanent_refusal_is_not_retried_and_keeps_the_receivers_message() {
        let (addr, requests) = receiver(vec![(
            400,
            "application/x-protobuf",
            rpc_status("metric name is invalid"),
        )])
        .await;
        let exp = exporter(addr, TemporalityConfig::Cumulative);
        assert!(!exp.export_until(&collection(4), soon()).await);
        let d = exp.delivery();
        assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!((d.delivered, d.rejected), (0, 4), "{d:?}");
        assert_eq!(
            d.last_error.as_deref(),
            Some("HTTP 400 Bad Request: metric name is invalid")
        );
        assert!(d.last_failed);
        assert_eq!(d.hint, None, "an HTTP answer is no protocol mismatch");
    }

    #[tokio::test]
    async fn cumulative_exports_supersede_earlier_losses_and_delta_ones_add_up() {
        let refused = || (400, "text/plain", b"no".to_vec());
        for (temporality, lost_at_end) in [
            (TemporalityConfig::Cumulative, 0),
            (TemporalityConfig::Delta, 6),
        ] {
            let (addr, _) = receiver(vec![refused(), refused()]).await;
            let exp = exporter(addr, temporality);
            for _ in 0..2 {
                assert!(!exp.export_until(&collection(3), soon()).await);
            }
            assert!(exp.export_until(&collection(3), soon()).await);
            let d = exp.delivery();
            assert_eq!(d.not_delivered(), lost_at_end, "{temporality:?}: {d:?}");
            assert_eq!(d.delivered, 3);
        }
    }

    #[tokio::test]
    async fn a_silent_receiver_is_cut_off_at_the_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let exp = exporter(addr, TemporalityConfig::Cumulative);
        let started = Instant::now();
        let deadline = started + Duration::from_millis(300);
        assert!(!exp.export_until(&collection(7), deadline).await);
        assert!(
            started.elapsed() < Duration::from_millis(800),
            "{:?}",
            started.elapsed()
        );
        let d = exp.delivery();
        assert_eq!((d.pending, d.not_delivered()), (7, 7), "{d:?}");
        assert!(exp.waiting().is_none());
        drop(listener);
    }
}
