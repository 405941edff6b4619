//! Configuration: the typed shape of a scenario file, and how it is layered.
//!
//! Flow: built-in defaults < file (TOML or YAML) < `STAMPEDE_*` environment variables (nested with
//! `__`) < command-line flags, merged by figment into a [`Config`] that does no I/O. `plan` then
//! turns a validated `Config` into executable scenarios.

mod duration;
mod error;
mod export;
mod flags;
mod load;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use duration::{Dur, MAX_DURATION, parse_duration};
pub use error::ConfigError;
pub use export::{
    BasicAuth, InvalidRemoteWrite, RemoteWriteConfig, RemoteWriteUrl, Secret, TlsConfig, redact_url,
};
pub use flags::{
    CapacityFlags, DistFlags, ExportFlags, OutputFlags, Overrides, RemoteWriteFlags, check_url,
};
pub use load::{AD_HOC_DURATION, AD_HOC_VUS, load, load_str};
pub use validate::{
    MAX_RATE, MAX_VUS, MAX_WORKERS, executor_keys, parse_precision, validate, validate_capacity,
};

/// The whole configuration of a run.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Run-wide settings: id, summary output, grace period.
    pub run: RunConfig,
    /// Defaults shared by every scenario's requests.
    pub defaults: Defaults,
    /// The scenarios that run side by side.
    pub scenarios: Vec<ScenarioConfig>,
    /// Threshold expressions such as `p99 < 500ms`; any crossed makes the run exit with code 3.
    /// Each is a string or a table `{ threshold, abort_on_fail, delay }`.
    pub thresholds: Vec<ThresholdConfig>,
    /// Metric recording and export.
    pub metrics: MetricsConfig,
    /// Trace context on sampled requests, client spans and exemplars (`[tracing]`).
    pub tracing: TracingConfig,
    /// Capacity search settings (`stampede find-max`, `executor = "capacity-search"`).
    pub capacity: CapacityConfig,
}

/// How a capacity search steps the arrival rate (`[capacity]`; `stampede find-max` flags
/// override each key).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CapacityConfig {
    /// The first step's rate, iterations/s.
    pub start_rate: f64,
    /// The highest rate tried, iterations/s.
    pub max_rate: f64,
    /// Each ramp step multiplies the rate by this (> 1).
    pub growth: f64,
    /// How long each step holds its rate.
    pub step_duration: Dur,
    /// When the binary search stops: `5%` of the rate, or an absolute `20` (iterations/s).
    pub precision: String,
    /// The most the whole search may take (no step starts that would end later).
    pub max_duration: Dur,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        CapacityConfig {
            start_rate: 10.0,
            max_rate: 10_000.0,
            growth: 2.0,
            step_duration: Dur::secs(10),
            precision: "5%".into(),
            max_duration: Dur::secs(600),
        }
    }
}

/// Trace context (`[tracing]`): which requests carry a W3C `traceparent`, whether an iteration
/// is one trace, and where client spans go.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// Fraction of requests (or, with `per_iteration`, of iterations) that are sampled: they
    /// carry a `traceparent` header and become exemplars (0 or unset: off; at most 1).
    pub sample_ratio: Option<f64>,
    /// One trace per iteration: every request of a sampled iteration is a child span of the
    /// iteration's root span, so a user journey is one trace.
    pub per_iteration: bool,
    /// Where client spans go: `otlp` (the OTLP endpoint of `[metrics.otlp]`), or unset: none.
    pub export: Option<TraceExport>,
}

/// Client span export.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TraceExport {
    /// One `http.client` span per sampled request, over OTLP.
    Otlp,
}

/// Run-wide settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Run id attached to every series as `stampede_run_id`; generated when absent.
    pub id: Option<String>,
    /// Where to write the JSON summary.
    pub summary_json: Option<PathBuf>,
    /// No live progress line.
    pub quiet: bool,
    /// When stderr is not a terminal, a status line this often (`0`: none).
    pub status_interval: Dur,
    /// How long in-flight iterations may go on after the end (or Ctrl-C) before they are cut.
    pub graceful_stop: Dur,
    /// Worker threads generating load (default: one per CPU).
    pub workers: Option<usize>,
    /// The longest a worker keeps polling after its last request or response instead of
    /// sleeping (adaptive, up to this; at most 10ms). Off (`0`) by default: see `crate::busy`.
    pub busy_poll: Dur,
    /// Interval of the summary's timeline (at least 10ms; doubled as often as needed to keep
    /// at most 1,000 intervals).
    pub timeline_interval: Dur,
    /// Exit 5 when any exporter delivered less than everything (dropped, rejected, given up
    /// or still pending at the flush deadline); off: export failures only warn.
    pub fail_on_export_error: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            id: None,
            summary_json: None,
            quiet: false,
            status_interval: Dur::secs(10),
            graceful_stop: Dur::secs(10),
            workers: None,
            busy_poll: Dur(std::time::Duration::ZERO),
            timeline_interval: Dur::secs(1),
            fail_on_export_error: false,
        }
    }
}

/// Defaults for every request.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    /// Base URL that relative request URLs are joined to.
    pub base_url: Option<String>,
    /// Whole-request timeout (connect + send + full response).
    pub timeout: Dur,
    /// TCP (+TLS) connect timeout.
    pub connect_timeout: Dur,
    /// Headers sent with every request.
    pub headers: BTreeMap<String, String>,
    /// Speak HTTP/2 (ALPN over TLS; prior knowledge over cleartext).
    pub http2: bool,
    /// HTTP/2: most concurrent streams per connection. 1 (the default): each VU keeps its own
    /// connection; N > 1: the VUs of a worker share connections, up to N streams each (fewer if
    /// the server's `SETTINGS_MAX_CONCURRENT_STREAMS` says so).
    pub h2_max_streams: u32,
    /// Skip TLS certificate verification.
    pub insecure: bool,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            base_url: None,
            timeout: Dur::secs(10),
            connect_timeout: Dur::secs(5),
            headers: BTreeMap::new(),
            http2: false,
            h2_max_streams: 1,
            insecure: false,
        }
    }
}

/// How a scenario schedules its iterations.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutorKind {
    /// A fixed number of VUs looping for a duration (closed model).
    ConstantVus,
    /// VUs ramped through stages (closed model).
    RampingVus,
    /// A fixed number of iterations shared by the VUs (closed model).
    #[serde(alias = "iterations")]
    SharedIterations,
    /// Iterations started at a fixed rate (open model).
    ConstantArrivalRate,
    /// Iterations started at a rate ramped through stages (open model).
    RampingArrivalRate,
    /// A capacity search: constant-rate steps, ramped then bisected, judged against the
    /// thresholds (settings in `[capacity]`; see `stampede find-max`).
    CapacitySearch,
}

impl ExecutorKind {
    /// The name used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::ConstantVus => "constant-vus",
            ExecutorKind::RampingVus => "ramping-vus",
            ExecutorKind::SharedIterations => "shared-iterations",
            ExecutorKind::ConstantArrivalRate => "constant-arrival-rate",
            ExecutorKind::RampingArrivalRate => "ramping-arrival-rate",
            ExecutorKind::CapacitySearch => "capacity-search",
        }
    }
}

/// A threshold in a file: `"p99[30s] < 500ms"`, or the table form
/// `{ threshold = "p99[30s] < 500ms", abort_on_fail = true, delay = "30s" }`.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(untagged)]
pub enum ThresholdConfig {
    /// Just the expression.
    Text(String),
    /// The expression with its abort settings.
    Table(ThresholdTable),
}

/// The table form of a threshold.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ThresholdTable {
    /// The expression.
    pub threshold: String,
    /// Stop the run (gracefully, exit 3) as soon as it is crossed.
    #[serde(default)]
    pub abort_on_fail: bool,
    /// No live verdict before this long into the run (warm-up).
    #[serde(default)]
    pub delay: Dur,
}

impl ThresholdConfig {
    /// The expression.
    pub fn expr(&self) -> &str {
        match self {
            ThresholdConfig::Text(t) => t,
            ThresholdConfig::Table(t) => &t.threshold,
        }
    }

    /// `(abort_on_fail, delay)`.
    pub fn abort(&self) -> (bool, std::time::Duration) {
        match self {
            ThresholdConfig::Text(_) => (false, std::time::Duration::ZERO),
            ThresholdConfig::Table(t) => (t.abort_on_fail, t.delay.get()),
        }
    }
}

impl From<&str> for ThresholdConfig {
    fn from(s: &str) -> Self {
        ThresholdConfig::Text(s.to_string())
    }
}

impl PartialEq<&str> for ThresholdConfig {
    fn eq(&self, o: &&str) -> bool {
        matches!(self, ThresholdConfig::Text(t) if t == o)
    }
}

impl<'de> Deserialize<'de> for ThresholdConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // By hand rather than `untagged`, which would hide the table's own errors.
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ThresholdConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a threshold such as \"p99 < 500ms\", or { threshold, abort_on_fail, delay }",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ThresholdConfig, E> {
                Ok(ThresholdConfig::Text(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ThresholdConfig, A::Error> {
                ThresholdTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(ThresholdConfig::Table)
            }
        }
        d.deserialize_any(V)
    }
}

/// One stage of a ramping executor: move linearly to `target` (VUs or iterations/s) over
/// `duration`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// How long the stage lasts.
    pub duration: Dur,
    /// The VU count (ramping-vus) or rate (ramping-arrival-rate) reached at the end of the stage.
    pub target: f64,
}

/// Think time after each iteration: constant, or uniform in a range.
///
/// Written as a duration (`"1s"`, `1.5`) or as `{ min, max }`; any other key in the table is an
/// error (serde's `untagged` would drop it silently, so the shape is decided by hand).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(untagged)]
pub enum ThinkTime {
    /// Always the same pause.
    Constant(Dur),
    /// A pause drawn uniformly from `[min, max]`.
    Uniform {
        /// Shortest pause.
        min: Dur,
        /// Longest pause.
        max: Dur,
    },
}

impl<'de> Deserialize<'de> for ThinkTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Range {
            min: Dur,
            max: Dur,
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ThinkTime;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration such as \"1s\", or { min, max }")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ThinkTime, A::Error> {
                let r = Range::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(ThinkTime::Uniform {
                    min: r.min,
                    max: r.max,
                })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ThinkTime, E> {
                Dur::deserialize(serde::de::value::StrDeserializer::new(v)).map(ThinkTime::Constant)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ThinkTime, E> {
                Dur::deserialize(serde::de::value::U64Deserializer::new(v)).map(ThinkTime::Constant)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ThinkTime, E> {
                Dur::deserialize(serde::de::value::I64Deserializer::new(v)).map(ThinkTime::Constant)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ThinkTime, E> {
                Dur::deserialize(serde::de::value::F64Deserializer::new(v)).map(ThinkTime::Constant)
            }
        }
        d.deserialize_any(V)
    }
}

impl ThinkTime {
    /// The range `(min, max)`; a constant pause is `(d, d)`.
    pub fn bounds(&self) -> (Dur, Dur) {
        match self {
            ThinkTime::Constant(d) => (*d, *d),
            ThinkTime::Uniform { min, max } => (*min, *max),
        }
    }
}

/// One scenario.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScenarioConfig {
    /// Name, exported as `stampede_scenario`.
    pub name: String,
    /// Executor; inferred from the other keys when absent.
    pub executor: Option<ExecutorKind>,
    /// VUs (closed model) or pre-allocated VUs (open model).
    pub vus: Option<u64>,
    /// How long the scenario runs.
    pub duration: Option<Dur>,
    /// Total iterations (shared-iterations; a cap for the other closed-model executors).
    pub iterations: Option<u64>,
    /// Iterations per second (constant-arrival-rate).
    pub rate: Option<f64>,
    /// Stages (ramping executors).
    pub stages: Vec<Stage>,
    /// Starting VUs (ramping-vus) or starting rate (ramping-arrival-rate).
    pub start: Option<f64>,
    /// Base URL for this scenario's relative URLs (overrides `defaults.base_url`).
    pub base_url: Option<String>,
    /// Headers added to this scenario's requests.
    pub headers: BTreeMap<String, String>,
    /// Pause after each iteration.
    pub think_time: Option<ThinkTime>,
    /// Initial values of per-VU variables.
    pub variables: BTreeMap<String, String>,
    /// Requests each VU sends once, before its first iteration (e.g. a login).
    pub on_start: Vec<RequestConfig>,
    /// Weighted tasks; each iteration runs one task, picked by weight.
    pub tasks: Vec<TaskConfig>,
    /// Shorthand for a single task: every iteration runs these requests in order.
    pub requests: Vec<RequestConfig>,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        ScenarioConfig {
            name: "default".into(),
            executor: None,
            vus: None,
            duration: None,
            iterations: None,
            rate: None,
            stages: Vec::new(),
            start: None,
            base_url: None,
            headers: BTreeMap::new(),
            think_time: None,
            variables: BTreeMap::new(),
            on_start: Vec::new(),
            tasks: Vec::new(),
            requests: Vec::new(),
        }
    }
}

impl ScenarioConfig {
    /// The executor, explicit or inferred from the keys present.
    pub fn executor_kind(&self) -> ExecutorKind {
        if let Some(k) = self.executor {
            return k;
        }
        match (self.rate.is_some(), self.stages.is_empty()) {
            (true, _) => ExecutorKind::ConstantArrivalRate,
            (false, false) => ExecutorKind::RampingVus,
            (false, true) if self.iterations.is_some() && self.duration.is_none() => {
                ExecutorKind::SharedIterations
            }
            _ => ExecutorKind::ConstantVus,
        }
    }
}

/// A weighted group of requests.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// Relative weight (default 1).
    #[serde(default = "one")]
    pub weight: u32,
    /// Requests sent in order.
    pub requests: Vec<RequestConfig>,
}

fn one() -> u32 {
    1
}

/// Checks on a response, counted as pass/fail.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Checks {
    /// Acceptable status codes.
    #[serde(default, deserialize_with = "one_or_many")]
    pub status: Vec<u16>,
    /// A string the body must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(u16),
        Many(Vec<u16>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(v) => vec![v],
        OneOrMany::Many(v) => v,
    })
}

/// Where an extracted value comes from.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum ExtractSource {
    /// A JSON pointer into the response body (RFC 6901), e.g. `/data/token`.
    Json(String),
    /// A response header.
    Header(String),
}

/// One request.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestConfig {
    /// Name that groups URLs into one series (`url.template`); defaults to the URL's path.
    pub name: Option<String>,
    /// HTTP method (default GET).
    pub method: Option<String>,
    /// Absolute URL, or a path joined to the base URL. May use `${var}` and `${env.NAME}`.
    pub url: String,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
    /// Query parameters appended to the URL.
    pub query: BTreeMap<String, String>,
    /// Raw body.
    pub body: Option<String>,
    /// JSON body (sets `Content-Type: application/json`).
    pub json: Option<serde_json::Value>,
    /// Values to extract from the response into VU variables.
    pub extract: BTreeMap<String, ExtractSource>,
    /// Checks counted as pass/fail.
    pub checks: Option<Checks>,
    /// Pause after this request.
    pub think_time: Option<ThinkTime>,
}

/// Which histogram aggregation the duration and size histograms use.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HistogramKind {
    /// Classic explicit buckets (`_bucket{le}` series).
    #[default]
    Explicit,
    /// Base-2 exponential histograms (Prometheus native histograms).
    Exponential,
}

/// OTLP export settings (`[metrics.otlp]`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// Collector endpoint, e.g. `http://127.0.0.1:4317` (gRPC) or `http://127.0.0.1:4318` (HTTP).
    pub endpoint: Option<String>,
    /// `grpc` or `http` (HTTP/protobuf).
    pub protocol: Option<OtlpProtocol>,
    /// Extra headers (e.g. an API key). Never printed.
    pub headers: BTreeMap<String, String>,
    /// Export timeout.
    pub timeout: Option<Dur>,
    /// `cumulative` (default) or `delta`.
    pub temporality: Option<TemporalityConfig>,
}

/// OTLP transport.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OtlpProtocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    #[serde(alias = "http/protobuf")]
    Http,
}

/// Aggregation temporality for OTLP.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TemporalityConfig {
    /// Totals since the start of the run (survives Collector restarts).
    Cumulative,
    /// Changes since the previous export.
    Delta,
}

/// Metric recording and export (`[metrics]`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Record OpenTelemetry instruments at all (the summary is computed either way).
    pub enabled: bool,
    /// OTLP collection/export interval (default 5s; `OTEL_METRIC_EXPORT_INTERVAL` when unset).
    pub interval: Option<Dur>,
    /// `explicit` (classic buckets) or `exponential` (native histograms).
    pub histogram: HistogramKind,
    /// Bucket boundaries in seconds for duration histograms (explicit).
    pub buckets: Option<Vec<f64>>,
    /// Maximum scale of exponential histograms (-10..=20; 8 or less suits Prometheus).
    pub exponential_max_scale: i8,
    /// Maximum bucket count of exponential histograms.
    pub exponential_max_size: u32,
    /// `service.name` resource attribute (Prometheus `job`).
    pub service_name: Option<String>,
    /// `service.instance.id` resource attribute (Prometheus `instance`); default
    /// `<hostname>-<run id>`, plus `-<segment>` in segment mode. Give every generator of one
    /// run its own, so their cumulative series never collide.
    pub instance_id: Option<String>,
    /// This process's execution segment index: set by segment mode (never read from a file);
    /// goes into the default instance id and the `stampede.segment` resource attribute.
    #[serde(skip)]
    pub segment: Option<u32>,
    /// Prometheus remote-write targets (`[metrics.remote_write]` or `[[metrics.remote_write]]`).
    #[serde(deserialize_with = "export::remote_write_list", skip_serializing)]
    pub remote_write: Vec<RemoteWriteConfig>,
    /// OTLP export.
    pub otlp: Option<OtlpConfig>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            interval: None,
            histogram: HistogramKind::Explicit,
            buckets: None,
            exponential_max_scale: 8,
            exponential_max_size: 160,
            service_name: None,
            instance_id: None,
            segment: None,
            remote_write: Vec::new(),
            otlp: None,
        }
    }
}

/// Default bucket boundaries (seconds): sub-millisecond to a minute, dense enough around the
/// usual SLOs that `histogram_quantile` p99 lands within a useful distance.
pub const DEFAULT_DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2,
    0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0,
];

/// Default bucket boundaries (bytes) for body sizes.
pub const DEFAULT_SIZE_BUCKETS: &[f64] = &[
    0.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
];

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const REQ: &str = "requests = [{ url = \"http://127.0.0.1:1/\" }]\n";

    /// A config text with `v` as the value of one duration key, and how to read that key back.
    type DurationKey = (&'static str, fn(&str) -> String, fn(&Config) -> Duration);

    /// Every duration key of a scenario file.
    const DURATION_KEYS: &[DurationKey] = &[
        (
            "run.graceful_stop",
            |v| format!("[run]\ngraceful_stop = {v}\n[[scenarios]]\nvus = 1\nduration = 1\n{REQ}"),
            |c| c.run.graceful_stop.get(),
        ),
        (
            "run.status_interval",
            |v| {
                format!("[run]\nstatus_interval = {v}\n[[scenarios]]\nvus = 1\nduration = 1\n{REQ}")
            },
            |c| c.run.status_interval.get(),
        ),
        (
            "run.timeline_interval",
            |v| {
                format!(
                    "[run]\ntimeline_interval = {v}\n[[scenarios]]\nvus = 1\nduration = 1\n{REQ}"
                )
            },
            |c| c.run.timeline_interval.get(),
        ),
        (
            "defaults.timeout",
            |v| format!("[defaults]\ntimeout = {v}\n[[scenarios]]\nvus = 1\nduration = 1\n{REQ}"),
            |c| c.defaults.timeout.get(),
        ),
        (
            "defaults.connect_timeout",
            |v| {
                format!(
                    "[defaults]\nconnect_timeout = {v}\n[[scenarios]]\nvus = 1\nduration = 1\n{REQ}"
                )
            },
            |c| c.defaults.connect_timeout.get(),
        ),
        (
            "scenarios[0].duration",
            |v| format!("[[scenarios]]\nvus = 1\nduration = {v}\n{REQ}"),
            |c| c.scenarios[0].duration.unwrap_or_default().get(),
        ),
        (
            "scenarios[0].stages[0].duration",
            |v| format!("[[scenarios]]\nstages = [{{ duration = {v}, target = 1 }}]\n{REQ}"),
            |c| c.scenarios[0].stages[0].duration.get(),
        ),
        (
            "scenarios[0].think_time",
            |v| format!("[[scenarios]]\nvus = 1\nduration = 1\nthink_time = {v}\n{REQ}"),
            |c| {
                c.scenarios[0]
                    .think_time
                    .as_ref()
                    .map_or(Duration::MAX, |t| t.bounds().0.get())
            },
        ),
        (
            "scenarios[0].think_time.min",
            |v| {
                format!(
                    "[[scenarios]]\nvus = 1\nduration = 1\nthink_time = {{ min = {v}, max = \"365d\" }}\n{REQ}"
                )
            },
            |c| {
                c.scenarios[0]
                    .think_time
                    .as_ref()
                    .map_or(Duration::MAX, |t| t.bounds().0.get())
            },
        ),
        (
            "scenarios[0].think_time.max",
            |v| {
                format!(
                    "[[scenarios]]\nvus = 1\nduration = 1\nthink_time = {{ min = 0, max = {v} }}\n{REQ}"
                )
            },
            |c| {
                c.scenarios[0]
                    .think_time
                    .as_ref()
                    .map_or(Duration::MAX, |t| t.bounds().1.get())
            },
        ),
        (
            "scenarios[0].requests[0].think_time",
            |v| {
                format!(
                    "[[scenarios]]\nvus = 1\nduration = 1\nrequests = [{{ url = \"http://127.0.0.1:1/\", think_time = {v} }}]\n"
                )
            },
            |c| {
                c.scenarios[0].requests[0]
                    .think_time
                    .as_ref()
                    .map_or(Duration::MAX, |t| t.bounds().0.get())
            },
        ),
        (
            "metrics.interval",
            |v| format!("[metrics]\ninterval = {v}\n[[scenarios]]\nvus = 1\nduration = 1\n{REQ}"),
            |c| c.metrics.interval.unwrap_or_default().get(),
        ),
        (
            "metrics.otlp.timeout",
            |v| {
                format!(
                    "[metrics.otlp]\ntimeout = {v}\n[[scenarios]]\nvus = 1\nduration = 1\n{REQ}"
                )
            },
            |c| {
                c.metrics
                    .otlp
                    .as_ref()
                    .and_then(|o| o.timeout)
                    .unwrap_or_default()
                    .get()
            },
        ),
        (
            "capacity.step_duration",
            |v| {
                format!(
                    "[capacity]\nstep_duration = {v}\n[[scenarios]]\nvus = 1\nduration = 1\n{REQ}"
                )
            },
            |c| c.capacity.step_duration.get(),
        ),
        (
            "capacity.max_duration",
            |v| {
                format!(
                    "[capacity]\nmax_duration = {v}\n[[scenarios]]\nvus = 1\nduration = 1\n{REQ}"
                )
            },
            |c| c.capacity.max_duration.get(),
        ),
        (
            "thresholds[].delay",
            |v| {
                format!(
                    "thresholds = [{{ threshold = \"p99 < 1s\", abort_on_fail = true, delay = {v} }}]\n[[scenarios]]\nvus = 1\nduration = 1\n{REQ}"
                )
            },
            |c| c.thresholds[0].abort().1,
        ),
    ];

    fn load_text(text: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let p = dir.path().join("d.toml");
        std::fs::write(&p, text).map_err(|e| e.to_string())?;
        load(Some(&p), &Overrides::default()).map_err(|e| e.to_string())
    }

    #[test]
    fn every_duration_key_accepts_the_same_forms_and_the_same_bound() {
        let forms = [
            ("5", Duration::from_secs(5)),
            ("1.5", Duration::from_millis(1500)),
            ("\"1.5s\"", Duration::from_millis(1500)),
            ("\"250ms\"", Duration::from_millis(250)),
            ("\"1m30s\"", Duration::from_secs(90)),
            ("\"365d\"", MAX_DURATION),
        ];
        check_duration_keys(
            DURATION_KEYS,
            &forms,
            &["\"300000000000y\"", "\"366d\"", "31536001", "1e12"],
            |_, e| e.contains("at most 365 days"),
        );
    }

    /// Every key of `keys` reads each of `forms` as its duration and refuses each of `over`
    /// with an error that `refused(key, error)` accepts.
    fn check_duration_keys(
        keys: &[DurationKey],
        forms: &[(&str, Duration)],
        over: &[&str],
        refused: impl Fn(&str, &str) -> bool,
    ) {
        for (key, text, get) in keys {
            for (form, want) in forms {
                let cfg = load_text(&text(form)).unwrap_or_else(|e| panic!("{key} = {form}: {e}"));
                assert_eq!(get(&cfg), *want, "{key} = {form}");
            }
            for o in over {
                let e = load_text(&text(o)).expect_err(key);
                assert!(refused(key, &e), "{key} = {o}: {e}");
            }
        }
    }

    /// Duration keys with a bound of their own, far below 365 days: (key, file text, value).
    const SHORT_DURATION_KEYS: &[DurationKey] = &[(
        "run.busy_poll",
        |v| format!("[run]\nbusy_poll = {v}\n[[scenarios]]\nvus = 1\nduration = 1\n{REQ}"),
        |c| c.run.busy_poll.get(),
    )];

    #[test]
    fn short_duration_keys_accept_the_same_forms_within_their_bound() {
        let forms = [
            ("0", Duration::ZERO),
            ("0.002", Duration::from_millis(2)),
            ("\"0.5ms\"", Duration::from_micros(500)),
            ("\"100us\"", Duration::from_micros(100)),
            ("\"10ms\"", Duration::from_millis(10)),
        ];
        check_duration_keys(
            SHORT_DURATION_KEYS,
            &forms,
            &["\"11ms\"", "1", "\"366d\"", "1e12"],
            |key, e| e.contains(&format!("`{key}`")) || e.contains("at most 365 days"),
        );
    }

    #[test]
    fn the_timeline_interval_has_a_lower_bound_of_10ms() {
        let text = |v: &str| {
            format!("[run]\ntimeline_interval = {v}\n[[scenarios]]\nvus = 1\nduration = 1\n{REQ}")
        };
        for (v, want) in [("\"10ms\"", 10), ("0.25", 250), ("\"1s\"", 1000)] {
            let c = load_text(&text(v)).unwrap_or_else(|e| panic!("{v}: {e}"));
            assert_eq!(c.run.timeline_interval.get(), Duration::from_millis(want));
        }
        for v in ["0", "\"1ms\"", "\"9.9ms\"", "0.001"] {
            let e = load_text(&text(v)).expect_err(v);
            assert!(e.contains("`run.timeline_interval`"), "{v}: {e}");
            assert!(e.contains("at least 10ms"), "{v}: {e}");
        }
    }

    #[test]
    fn the_duration_key_list_is_complete() {
        // Every field of type Dur / Option<Dur> in this file (ThinkTime's three included) must
        // have a row above; the stage duration is `Stage::duration`.
        let src = include_str!("mod.rs");
        let body = &src[..src.find("#[cfg(test)]").unwrap_or(src.len())];
        let fields = body
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("//"))
            .filter(|l| {
                l.ends_with(": Dur,")
                    || l.ends_with(": Option<Dur>,")
                    || l.starts_with("Constant(Dur)")
            })
            .count();
        // The scenario-level and request-level think_time share ThinkTime's three fields, and
        // its deserializer's `Range` helper repeats `min` and `max`.
        let think_time_rows = 4;
        let think_time_fields = 3 + 2;
        assert_eq!(
            fields,
            DURATION_KEYS.len() + SHORT_DURATION_KEYS.len() - think_time_rows + think_time_fields,
            "a duration field was added or removed: list its key in DURATION_KEYS"
        );
    }

    #[test]
    fn think_time_tables_take_min_and_max_only() {
        let e = load_text(&format!(
            "[[scenarios]]\nvus = 1\nduration = 1\nthink_time = {{ min = 1, max = 2, mean = 3 }}\n{REQ}"
        ))
        .expect_err("mean");
        assert!(e.contains("mean") && e.contains("think_time"), "{e}");
        let e = load_text(
            "[[scenarios]]\nvus = 1\nduration = 1\nrequests = [{ url = \"http://127.0.0.1:1/\", think_time = { min = 1 } }]\n",
        )
        .expect_err("no max");
        assert!(e.contains("max"), "{e}");
    }
}
