//! Configuration: the typed shape of a scenario file, and how it is layered.
//!
//! Flow: built-in defaults < file (TOML or YAML) < `STAMPEDE_*` environment variables (nested with
//! `__`) < command-line flags, merged by figment into a [`Config`] that does no I/O. `plan` then
//! turns a validated `Config` into executable scenarios.

mod duration;
mod load;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use duration::{Dur, parse_duration};
pub use load::{ConfigError, Overrides, RemoteWriteFlags, load};
pub use validate::validate;

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
    pub thresholds: Vec<String>,
    /// Metric recording and export.
    pub metrics: MetricsConfig,
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
    /// Interval of the summary's timeline (at least 10ms; doubled as often as needed to keep
    /// at most 1,000 intervals).
    pub timeline_interval: Dur,
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
            timeline_interval: Dur::secs(1),
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
        }
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
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
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

/// How a request body is given.
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
    /// Prometheus remote-write targets (`[metrics.remote_write]` or `[[metrics.remote_write]]`).
    #[serde(
        deserialize_with = "crate::export::remote_write_list",
        skip_serializing
    )]
    pub remote_write: Vec<crate::export::RemoteWriteConfig>,
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
