//! The flag layer: every `stampede run` flag is defined once, here — its help text (the doc
//! comment), its name and parser (`#[arg]`) and where it lands in the configuration.
//!
//! A flag that is a plain config key names that key in `#[serde(rename = "section.key")]`; the
//! whole struct is serialized and merged by figment as the top layer ([`FlagLayer`]), so such a
//! flag needs no code at all. Flags that change every scenario (`--vus`, `--rate`, `--stage`, …),
//! describe an ad-hoc run (`--url`, `--method`, …) or apply to every remote-write target are
//! `#[serde(skip)]` and applied after extraction by `load` (scenario and remote-write lists
//! cannot be addressed by a key path).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};
use serde::{Serialize, Serializer};

use super::{Dur, HistogramKind, OtlpProtocol, Stage, parse_duration};

/// Help heading of the load flags.
const LOAD: &str = "Load";
/// Help heading of the request flags.
const REQUEST: &str = "Request";
/// Help heading of the output flags.
const OUTPUT: &str = "Output";
/// Help heading of the threshold flags.
const THRESHOLDS: &str = "Thresholds";
/// Help heading of the remote-write flags.
const REMOTE_WRITE: &str = "Remote-write";
/// Help heading of the OTLP flags.
const OTLP: &str = "OTLP";
/// Help heading of the flags that concern both exporters.
const METRICS: &str = "Metrics";
/// Help heading of the trace context flags.
const TRACING: &str = "Tracing";

/// Values from command-line flags: the top configuration layer.
#[derive(Args, Clone, Debug, Default, Serialize)]
pub struct Overrides {
    /// Virtual users (closed model), or pre-allocated VUs with --rate
    /// [default: 10; with --rate: the peak rate times the longest latency a threshold allows
    /// (at least 100 ms), within 10..=10000].
    /// With FILE: replaces every scenario's vus.
    #[arg(long, short = 'c', value_name = "N", help_heading = LOAD)]
    #[serde(skip)]
    pub vus: Option<u64>,
    /// Iterations per second: open model (constant-arrival-rate); with --stage, the starting
    /// rate of a ramping-arrival-rate.
    #[arg(long, value_name = "R", help_heading = LOAD)]
    #[serde(skip)]
    pub rate: Option<f64>,
    /// Run length, e.g. 30s, 1m30s, 250ms, or seconds [default: 10s unless -n or --stage].
    #[arg(long, short = 'd', value_name = "DURATION", value_parser = dur, help_heading = LOAD)]
    #[serde(skip)]
    pub duration: Option<Dur>,
    /// Total iterations, shared by the VUs.
    #[arg(long, short = 'n', value_name = "N", help_heading = LOAD)]
    #[serde(skip)]
    pub iterations: Option<u64>,
    /// A ramp stage DURATION:TARGET, repeatable (k6 style), e.g. --stage 30s:50 --stage 1m:50
    /// --stage 10s:0. The targets are VUs (ramping-vus from 0), or iterations/s with --rate
    /// (ramping-arrival-rate from R). The stages set the run length (no -d or -n).
    #[arg(long = "stage", value_name = "DURATION:TARGET", value_parser = stage,
          conflicts_with_all = ["duration", "iterations"], help_heading = LOAD)]
    #[serde(skip)]
    pub stages: Vec<Stage>,
    /// Load-generating worker threads [default: one per CPU].
    #[arg(long, value_name = "N", help_heading = LOAD)]
    #[serde(rename = "run.workers", skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// Keep polling up to this long after a worker's last request or response instead of
    /// sleeping (e.g. 100us; adaptive below it): on a dedicated generator, the wake-up leaves
    /// the measured latency [default: 0s, off]
    #[arg(long, value_name = "DURATION", value_parser = dur, help_heading = LOAD)]
    #[serde(rename = "run.busy_poll", skip_serializing_if = "Option::is_none")]
    pub busy_poll: Option<Dur>,
    /// Grace period for in-flight requests at the end or on Ctrl-C [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = dur, help_heading = LOAD)]
    #[serde(rename = "run.graceful_stop", skip_serializing_if = "Option::is_none")]
    pub graceful_stop: Option<Dur>,

    /// Target URL, repeatable (requests are spread evenly across them). With FILE: the base URL
    /// of relative request URLs and the origin (scheme://host:port) of absolute ones.
    #[arg(long = "url", short = 'u', value_name = "URL", value_parser = check_url, help_heading = REQUEST)]
    #[serde(skip)]
    pub urls: Vec<String>,
    /// HTTP method of an ad-hoc run [default: GET].
    #[arg(long, short = 'X', value_name = "METHOD", help_heading = REQUEST)]
    #[serde(skip)]
    pub method: Option<String>,
    /// Request header 'Name: value', repeatable (added to every request).
    #[arg(long = "header", short = 'H', value_name = "'K: V'", value_parser = header,
          help_heading = REQUEST)]
    #[serde(
        rename = "defaults.headers",
        serialize_with = "pairs_as_map",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub headers: Vec<(String, String)>,
    /// Request body of an ad-hoc run.
    #[arg(long, value_name = "TEXT", conflicts_with = "json", help_heading = REQUEST)]
    #[serde(skip)]
    pub body: Option<String>,
    /// JSON request body of an ad-hoc run (sets Content-Type: application/json).
    #[arg(long, value_name = "JSON", value_parser = json, help_heading = REQUEST)]
    #[serde(skip)]
    pub json: Option<serde_json::Value>,
    /// Whole-request timeout [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = dur, help_heading = REQUEST)]
    #[serde(rename = "defaults.timeout", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    /// HTTP/2 (ALPN over TLS, prior knowledge over cleartext) [default: HTTP/1.1].
    #[arg(long, help_heading = REQUEST)]
    #[serde(rename = "defaults.http2", skip_serializing_if = "std::ops::Not::not")]
    pub http2: bool,
    /// HTTP/2: concurrent streams per connection; N > 1 lets VUs share connections [default: 1].
    #[arg(long, value_name = "N", help_heading = REQUEST)]
    #[serde(
        rename = "defaults.h2_max_streams",
        skip_serializing_if = "Option::is_none"
    )]
    pub h2_streams: Option<u32>,
    /// Skip TLS certificate verification.
    #[arg(long, short = 'k', help_heading = REQUEST)]
    #[serde(
        rename = "defaults.insecure",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub insecure: bool,

    /// Output: run id, summary file, live display.
    #[command(flatten)]
    #[serde(flatten)]
    pub output: OutputFlags,

    /// Threshold, e.g. 'p99 < 500ms', repeatable (added to the file's); any crossed → exit 3.
    #[arg(long = "threshold", value_name = "EXPR", help_heading = THRESHOLDS)]
    #[serde(skip)]
    pub thresholds: Vec<String>,

    /// Stop the run (gracefully; exit 3) as soon as a --threshold of the command line is
    /// crossed, judged live (a windowed one on each window; others on the run so far).
    #[arg(long, help_heading = THRESHOLDS)]
    #[serde(skip)]
    pub abort_on_fail: bool,

    /// No live verdict for --abort-on-fail before this long into the run (warm-up) [default: 0s].
    #[arg(long, value_name = "DURATION", value_parser = dur, help_heading = THRESHOLDS, requires = "abort_on_fail")]
    #[serde(skip)]
    pub abort_delay: Option<Dur>,

    /// Metric export.
    #[command(flatten)]
    #[serde(flatten)]
    pub export: ExportFlags,
}

/// The search flags of `stampede find-max` (each overrides its `[capacity]` key).
#[derive(Args, Clone, Debug, Default)]
pub struct CapacityFlags {
    /// The first step's rate, iterations/s [default: 10].
    #[arg(long, value_name = "RATE", help_heading = "Search")]
    pub start_rate: Option<f64>,
    /// The highest rate tried, iterations/s [default: 10000].
    #[arg(long, value_name = "RATE", help_heading = "Search")]
    pub max_rate: Option<f64>,
    /// Each ramp step multiplies the rate by this [default: 2].
    #[arg(long, value_name = "FACTOR", help_heading = "Search")]
    pub growth: Option<f64>,
    /// How long each step holds its rate: the window its sent and achieved rates are counted
    /// in; warned below 2 s or 4× the SLO's latency bound [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = dur, help_heading = "Search")]
    pub step_duration: Option<Dur>,
    /// Stop bisecting when the passing and failing rates are this close: a percentage of the
    /// rate (5%) or iterations/s (20) [default: 5%].
    #[arg(long, value_name = "P", help_heading = "Search")]
    pub precision: Option<String>,
    /// The most the whole search may take [default: 10m].
    #[arg(long, value_name = "DURATION", value_parser = dur, help_heading = "Search")]
    pub max_duration: Option<Dur>,
}

impl CapacityFlags {
    /// The first search flag given, by its name (`--max-rate`), if any.
    pub fn given(&self) -> Option<&'static str> {
        [
            (self.start_rate.is_some(), "--start-rate"),
            (self.max_rate.is_some(), "--max-rate"),
            (self.growth.is_some(), "--growth"),
            (self.step_duration.is_some(), "--step-duration"),
            (self.precision.is_some(), "--precision"),
            (self.max_duration.is_some(), "--max-duration"),
        ]
        .into_iter()
        .find_map(|(set, name)| set.then_some(name))
    }
}

/// Help heading of the distributed-run flags.
const DISTRIBUTED: &str = "Distributed";

/// Flags of a distributed run (`stampede run` only; see the README's "Distributed runs").
/// They are not configuration keys: each generator gets its own.
#[derive(Args, Clone, Debug, Default)]
pub struct DistFlags {
    /// Run one of N equal execution segments (a distributed run of N generators); the index
    /// comes from --segment-index, else JOB_COMPLETION_INDEX, else STAMPEDE_SEGMENT_INDEX.
    #[arg(long, value_name = "N", conflicts_with = "segment", help_heading = DISTRIBUTED)]
    pub segment_count: Option<u64>,
    /// This generator's segment (0 to N-1; 0 is the coordinator) [default:
    /// $JOB_COMPLETION_INDEX, then $STAMPEDE_SEGMENT_INDEX].
    #[arg(long, value_name = "I", requires = "segment_count", help_heading = DISTRIBUTED)]
    pub segment_index: Option<u64>,
    /// Run the execution segment FROM:TO (exact fractions: 0:1/3, 1/3:2/3, 0.5:1) of the
    /// sequence --segment-sequence [default sequence: 0,FROM,TO,1].
    #[arg(long, value_name = "FROM:TO", help_heading = DISTRIBUTED)]
    pub segment: Option<String>,
    /// The whole segment sequence 0,a,b,…,1 that every generator of the run shares (unequal
    /// generators), e.g. 0,1/4,1/2,1.
    #[arg(long, value_name = "0,A,…,1", requires = "segment", help_heading = DISTRIBUTED)]
    pub segment_sequence: Option<String>,
    /// Segments other than 0: the coordinator (segment 0) as HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", env = "STAMPEDE_COORDINATOR", help_heading = DISTRIBUTED)]
    pub coordinator: Option<String>,
    /// Segment 0: where the coordinator listens [default: 0.0.0.0:7070].
    #[arg(long, value_name = "ADDR", help_heading = DISTRIBUTED)]
    pub coordinator_listen: Option<std::net::SocketAddr>,
    /// How long to wait for every segment to be ready (and for the coordinator) [default: 5m].
    #[arg(long, value_name = "DURATION", value_parser = dur, help_heading = DISTRIBUTED)]
    pub coordinator_timeout: Option<Dur>,
    /// Write this generator's own (local) summary as JSON to this file; --summary-json on the
    /// coordinator is the merged one.
    #[arg(long, value_name = "PATH", help_heading = DISTRIBUTED)]
    pub segment_summary_json: Option<PathBuf>,
}

impl DistFlags {
    /// Whether this is a distributed run.
    pub fn active(&self) -> bool {
        self.segment_count.is_some() || self.segment.is_some()
    }
}

/// Output flags (shared by `run` and `demo`).
#[derive(Args, Clone, Debug, Default, Serialize)]
pub struct OutputFlags {
    /// Value of the stampede_run_id label [default: generated, e.g. 20261126-021500-ab12].
    #[arg(long, value_name = "ID", help_heading = OUTPUT)]
    #[serde(rename = "run.id", skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Write the summary as JSON to this file.
    #[arg(long, value_name = "PATH", help_heading = OUTPUT)]
    #[serde(rename = "run.summary_json", skip_serializing_if = "Option::is_none")]
    pub summary_json: Option<PathBuf>,
    /// No live progress line and no status lines.
    #[arg(long, short, help_heading = OUTPUT)]
    #[serde(rename = "run.quiet", skip_serializing_if = "std::ops::Not::not")]
    pub quiet: bool,
    /// Status line interval when stderr is not a terminal (CI logs); 0 turns it off
    /// [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = dur, help_heading = OUTPUT)]
    #[serde(
        rename = "run.status_interval",
        skip_serializing_if = "Option::is_none"
    )]
    pub status_interval: Option<Dur>,
    /// Interval of the summary's timeline, at least 10ms [default: 1s; doubled to keep at most
    /// 1,000].
    #[arg(long, value_name = "DURATION", value_parser = dur, help_heading = OUTPUT)]
    #[serde(
        rename = "run.timeline_interval",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeline_interval: Option<Dur>,
    /// Write a self-contained HTML report to this file at the end (also on Ctrl-C).
    #[arg(long, value_name = "PATH", help_heading = OUTPUT)]
    #[serde(skip)]
    pub report: Option<PathBuf>,
    /// Write thresholds and checks as JUnit XML test cases to this file.
    #[arg(long, value_name = "PATH", help_heading = OUTPUT)]
    #[serde(skip)]
    pub junit: Option<PathBuf>,
    /// Write a Markdown summary to this file (also appended to $GITHUB_STEP_SUMMARY when set).
    #[arg(long, value_name = "PATH", help_heading = OUTPUT)]
    #[serde(skip)]
    pub summary_markdown: Option<PathBuf>,
}

/// Metric export flags (shared by `run` and `demo`).
#[derive(Args, Clone, Debug, Default, Serialize)]
pub struct ExportFlags {
    /// Prometheus remote-write URL, e.g. http://127.0.0.1:9090/api/v1/write (repeatable).
    #[arg(long = "remote-write-url", value_name = "URL", help_heading = REMOTE_WRITE)]
    #[serde(skip)]
    pub remote_write_urls: Vec<String>,
    /// Settings for every remote-write target.
    #[command(flatten)]
    #[serde(skip)]
    pub remote_write: RemoteWriteFlags,
    /// OTLP endpoint, e.g. http://127.0.0.1:4317 (gRPC) or http://127.0.0.1:4318 (HTTP)
    /// [default: OTEL_EXPORTER_OTLP_METRICS_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT].
    #[arg(long, value_name = "URL", help_heading = OTLP)]
    #[serde(
        rename = "metrics.otlp.endpoint",
        skip_serializing_if = "Option::is_none"
    )]
    pub otlp_endpoint: Option<String>,
    /// OTLP transport: grpc or http [default: grpc for port 4317, else http/protobuf; or
    /// OTEL_EXPORTER_OTLP_PROTOCOL].
    #[arg(long, value_name = "grpc|http", value_parser = protocol, help_heading = OTLP)]
    #[serde(
        rename = "metrics.otlp.protocol",
        skip_serializing_if = "Option::is_none"
    )]
    pub otlp_protocol: Option<OtlpProtocol>,
    /// OTLP collection/export interval [default: OTEL_METRIC_EXPORT_INTERVAL or 5s].
    #[arg(long, value_name = "DURATION", value_parser = dur, help_heading = OTLP)]
    #[serde(rename = "metrics.interval", skip_serializing_if = "Option::is_none")]
    pub metrics_interval: Option<Dur>,
    /// Histograms: explicit buckets or exponential (Prometheus native) [default: explicit].
    #[arg(long, value_name = "explicit|exponential", value_parser = histogram,
          help_heading = METRICS)]
    #[serde(rename = "metrics.histogram", skip_serializing_if = "Option::is_none")]
    pub histogram: Option<HistogramKind>,
    /// service.instance.id of this generator (Prometheus `instance` label): give each of
    /// several generators of one run its own [default: <hostname>-<run id>, plus -<segment>
    /// in segment mode].
    #[arg(long, value_name = "ID", help_heading = METRICS)]
    #[serde(
        rename = "metrics.instance_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub instance_id: Option<String>,
    /// Exit 5 when any exporter delivered less than everything it took on (dropped, rejected,
    /// given up, or still queued at the flush deadline), so a green CI run means complete
    /// dashboards ([run] fail_on_export_error) [default: export failures only warn].
    #[arg(long, help_heading = METRICS)]
    #[serde(
        rename = "run.fail_on_export_error",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub fail_on_export_error: bool,
    /// Do not record OpenTelemetry instruments (the summary stays exact).
    #[arg(long, help_heading = METRICS)]
    #[serde(
        rename = "metrics.enabled",
        serialize_with = "negated",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub no_metrics: bool,
    /// Fraction of requests that carry a W3C traceparent header and can become exemplars,
    /// 0 to 1, e.g. 0.01 [default: off] ([tracing] sample_ratio).
    #[arg(long, value_name = "R", value_parser = ratio, help_heading = TRACING)]
    #[serde(
        rename = "tracing.sample_ratio",
        skip_serializing_if = "Option::is_none"
    )]
    pub trace_sample_ratio: Option<f64>,
    /// Export one http.client span per sampled request to the OTLP endpoint
    /// ([tracing] export = "otlp").
    #[arg(long, help_heading = TRACING)]
    #[serde(
        rename = "tracing.export",
        serialize_with = "otlp_when_set",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub otlp_traces: bool,
}

/// `--remote-write-*` settings, applied to every remote-write target (credentials only by
/// reference: a file or an environment variable).
#[derive(Args, Clone, Debug, Default)]
#[command(next_help_heading = REMOTE_WRITE)]
pub struct RemoteWriteFlags {
    /// Push interval (>= 1s) for every remote-write target [default: 5s].
    #[arg(id = "remote_write_interval", long = "remote-write-interval", value_name = "DURATION", value_parser = dur)]
    pub interval: Option<Dur>,
    /// Extra remote-write header 'K: V', repeatable, e.g. 'X-Scope-OrgID: team-a'.
    #[arg(id = "remote_write_header", long = "remote-write-header", value_name = "'K: V'", value_parser = header)]
    pub headers: Vec<(String, String)>,
    /// Remote-write bearer token read from this file.
    #[arg(
        id = "remote_write_bearer_token_file",
        long = "remote-write-bearer-token-file",
        value_name = "PATH"
    )]
    pub bearer_token_file: Option<PathBuf>,
    /// Remote-write bearer token read from this environment variable.
    #[arg(
        id = "remote_write_bearer_token_env",
        long = "remote-write-bearer-token-env",
        value_name = "VAR"
    )]
    pub bearer_token_env: Option<String>,
    /// Remote-write basic-auth user; the password comes from --remote-write-password-env/-file.
    #[arg(
        id = "remote_write_user",
        long = "remote-write-user",
        value_name = "USER"
    )]
    pub user: Option<String>,
    /// Environment variable holding the remote-write basic-auth password.
    #[arg(
        id = "remote_write_password_env",
        long = "remote-write-password-env",
        value_name = "VAR",
        requires = "remote_write_user"
    )]
    pub password_env: Option<String>,
    /// File holding the remote-write basic-auth password.
    #[arg(
        id = "remote_write_password_file",
        long = "remote-write-password-file",
        value_name = "PATH",
        requires = "remote_write_user"
    )]
    pub password_file: Option<PathBuf>,
    /// PEM CA bundle to trust for remote-write HTTPS.
    #[arg(
        id = "remote_write_ca_file",
        long = "remote-write-ca-file",
        value_name = "PATH"
    )]
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification for remote-write HTTPS (testing only).
    #[arg(id = "remote_write_insecure", long = "remote-write-insecure")]
    pub insecure: bool,
}

impl RemoteWriteFlags {
    /// Applies the flags to one remote-write target.
    pub(crate) fn apply(&self, rw: &mut super::RemoteWriteConfig) {
        if let Some(i) = self.interval {
            rw.push_interval = i;
        }
        for (k, v) in &self.headers {
            rw.headers.insert(k.clone(), v.clone());
        }
        if self.bearer_token_file.is_some() || self.bearer_token_env.is_some() {
            rw.bearer_token = None;
            rw.bearer_token_file = self.bearer_token_file.clone();
            rw.bearer_token_env = self.bearer_token_env.clone();
        }
        if let Some(u) = &self.user {
            rw.basic_auth = Some(super::BasicAuth {
                username: u.clone(),
                password: None,
                password_file: self.password_file.clone(),
                password_env: self.password_env.clone(),
            });
        }
        if let Some(ca) = &self.ca_file {
            rw.tls.ca_file = Some(ca.clone());
        }
        if self.insecure {
            rw.tls.insecure_skip_verify = true;
        }
    }
}

/// The flag layer as a figment provider: the serialized [`Overrides`], each `section.key`
/// nested where it belongs. Merge it with `admerge` so that `--threshold` adds to the file's
/// thresholds (the only list in this layer) while every other flag replaces its key.
pub(crate) struct FlagLayer<'a>(pub(crate) &'a Overrides);

impl Provider for FlagLayer<'_> {
    fn metadata(&self) -> Metadata {
        Metadata::named("command-line flags")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let flat = Value::serialize(self.0)?
            .into_dict()
            .ok_or_else(|| figment::Error::from("the flags did not serialize to a map"))?;
        let mut nested = Dict::new();
        for (path, value) in flat {
            insert_at(&mut nested, &path, value);
        }
        if !self.0.thresholds.is_empty() {
            // Strings, or tables when --abort-on-fail applies to them.
            let list = self.0.thresholds.iter().map(|t| {
                if self.0.abort_on_fail {
                    let mut d = Dict::new();
                    d.insert("threshold".into(), Value::from(t.clone()));
                    d.insert("abort_on_fail".into(), Value::from(true));
                    let delay = self.0.abort_delay.unwrap_or_default().get();
                    d.insert(
                        "delay".into(),
                        Value::from(format!("{}ms", delay.as_millis())),
                    );
                    Value::from(d)
                } else {
                    Value::from(t.clone())
                }
            });
            nested.insert("thresholds".into(), Value::from(list.collect::<Vec<_>>()));
        }
        Ok(Profile::Default.collect(nested))
    }
}

/// Inserts `value` at the dotted `path`, creating tables on the way.
fn insert_at(dict: &mut Dict, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            dict.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = dict
                .entry(head.to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert_at(inner, rest, value);
            }
        }
    }
}

fn pairs_as_map<S: Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    let map: BTreeMap<&str, &str> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    map.serialize(s)
}

fn otlp_when_set<S: Serializer>(_: &bool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("otlp")
}

/// A sampling ratio: a number from 0 to 1.
fn ratio(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
        .ok_or_else(|| format!("`{s}`: a fraction from 0 to 1, e.g. 0.01 for 1 % of requests"))
}

fn negated<S: Serializer>(v: &bool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(!*v)
}

fn dur(s: &str) -> Result<Dur, String> {
    parse_duration(s).map(Dur)
}

/// `DURATION:TARGET`, e.g. `30s:50`.
fn stage(s: &str) -> Result<Stage, String> {
    let (d, t) = s.rsplit_once(':').ok_or_else(|| {
        format!("`{s}`: write a stage as DURATION:TARGET, e.g. 30s:50 (ramp to 50 over 30 s)")
    })?;
    let duration = dur(d.trim())?;
    let target: f64 = t
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: the target `{t}` is not a number"))?;
    if !target.is_finite() || target < 0.0 {
        return Err(format!("`{s}`: the target must be a number >= 0"));
    }
    Ok(Stage { duration, target })
}

/// Checks a `--url`: an absolute http(s) URL. A missing scheme is the usual slip (`127.0.0.1:8080/`).
pub fn check_url(s: &str) -> Result<String, String> {
    let lower = s.trim().to_ascii_lowercase();
    if let Some(rest) = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
    {
        if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
            return Err("the URL has no host".into());
        }
        return Ok(s.trim().to_string());
    }
    if let Some((scheme, _)) = s.split_once("://") {
        return Err(format!(
            "unsupported scheme `{scheme}`: stampede speaks http:// and https://"
        ));
    }
    Err(format!(
        "the scheme is missing; did you mean http://{}?",
        s.trim()
    ))
}

fn header(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}`: write a header as 'Name: value'"))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("`{s}`: the header name is empty"));
    }
    Ok((k.to_string(), v.trim().to_string()))
}

fn json(s: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(s).map_err(|e| format!("not valid JSON: {e}"))
}

fn protocol(s: &str) -> Result<OtlpProtocol, String> {
    match s {
        "grpc" => Ok(OtlpProtocol::Grpc),
        "http" | "http/protobuf" => Ok(OtlpProtocol::Http),
        _ => Err(format!("`{s}`: use grpc or http")),
    }
}

fn histogram(s: &str) -> Result<HistogramKind, String> {
    match s {
        "explicit" | "classic" => Ok(HistogramKind::Explicit),
        "exponential" | "native" => Ok(HistogramKind::Exponential),
        _ => Err(format!("`{s}`: use explicit or exponential")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_given_flags_reach_the_layer_each_at_its_key() {
        let ov = Overrides {
            timeout: Some(Dur::secs(3)),
            h2_streams: Some(10),
            headers: vec![("X-A".into(), "1".into())],
            thresholds: vec!["p99 < 1s".into()],
            vus: Some(7),
            output: OutputFlags {
                run_id: Some("r".into()),
                ..Default::default()
            },
            export: ExportFlags {
                no_metrics: true,
                otlp_endpoint: Some("http://127.0.0.1:4317".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let data = FlagLayer(&ov).data().expect("serializes");
        let d = &data[&Profile::Default];
        let text = format!("{d:?}");
        assert_eq!(
            d.keys().map(String::as_str).collect::<Vec<_>>(),
            ["defaults", "metrics", "run", "thresholds"],
            "{text}"
        );
        let v: crate::config::Config = figment::Figment::from(
            figment::providers::Serialized::defaults(crate::config::Config::default()),
        )
        .merge(FlagLayer(&ov))
        .extract()
        .expect("extracts");
        assert_eq!(v.defaults.timeout, Dur::secs(3));
        assert_eq!(v.defaults.h2_max_streams, 10);
        assert_eq!(crate::config::Config::default().defaults.h2_max_streams, 1);
        assert_eq!(v.defaults.headers.get("X-A").map(String::as_str), Some("1"));
        assert_eq!(v.run.id.as_deref(), Some("r"));
        assert!(!v.metrics.enabled);
        assert_eq!(
            v.metrics.otlp.and_then(|o| o.endpoint).as_deref(),
            Some("http://127.0.0.1:4317")
        );
        assert_eq!(v.thresholds, ["p99 < 1s"]);
        // Unset flags leave the defaults alone.
        assert!(!v.defaults.http2 && !v.run.quiet && v.metrics.interval.is_none());
    }

    #[test]
    fn tracing_flags_land_in_the_tracing_section() {
        let ov = Overrides {
            export: ExportFlags {
                trace_sample_ratio: Some(0.25),
                otlp_traces: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let v: crate::config::Config = figment::Figment::from(
            figment::providers::Serialized::defaults(crate::config::Config::default()),
        )
        .merge(FlagLayer(&ov))
        .extract()
        .expect("extracts");
        assert_eq!(v.tracing.sample_ratio, Some(0.25));
        assert_eq!(v.tracing.export, Some(crate::config::TraceExport::Otlp));
        assert!(!v.tracing.per_iteration);
        assert_eq!(ratio("0.01"), Ok(0.01));
        for bad in ["1.5", "-0.1", "half", "NaN"] {
            assert!(ratio(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_need_their_scheme() {
        assert_eq!(
            check_url("127.0.0.1:8080/").unwrap_err(),
            "the scheme is missing; did you mean http://127.0.0.1:8080/?"
        );
        assert!(check_url("ftp://x/").unwrap_err().contains("`ftp`"));
        assert!(check_url("http:///x").unwrap_err().contains("no host"));
        assert_eq!(check_url("HTTPS://h:1/p").as_deref(), Ok("HTTPS://h:1/p"));
    }

    #[test]
    fn stages_parse_as_duration_colon_target() {
        assert_eq!(
            stage("1m30s:50"),
            Ok(Stage {
                duration: Dur::secs(90),
                target: 50.0
            })
        );
        assert_eq!(stage("500ms:0").map(|s| s.target), Ok(0.0));
        for bad in ["30s", "30s:-1", "soon:5", "30s:many"] {
            assert!(stage(bad).is_err(), "{bad}");
        }
    }
}
