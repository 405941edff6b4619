//! The plan: a validated [`Config`] turned into what the run executes and reports — parsed URLs
//! and headers, static bodies as `Bytes`, per-scenario schedules, parsed thresholds, the metric
//! and export settings, and one index per request and per check so the hot path records by
//! number, never by string.
//!
//! The plan is the only thing downstream code sees: it does not keep the [`Config`] it came from.
//! Everything that can be checked before the first request is checked here (or in
//! `config::validate`), so `stampede validate` and `stampede run` refuse the same files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue, USER_AGENT};
use http::{Method, Uri};

use crate::config::{
    Checks, Config, ConfigError, ExecutorKind, ExtractSource, MetricsConfig, RequestConfig,
    ScenarioConfig, ThinkTime,
};
pub(crate) use crate::http::client::{ClientOptions, Target};
use crate::http::url::{Credentials, split_credentials};
use crate::scenario::schedule::Stage;
use crate::scenario::segment::Stripe;
use crate::scenario::template::{
    Template, VarTable, Vars, initial_values, process_env, table_from,
};
use crate::threshold::Threshold;

/// Most latency histograms the run's exact statistics may hold, over all worker threads plus
/// the merged total: 10,000 (about 1.9 GB). Each worker keeps one HdrHistogram (1 µs – 1 h at 3
/// significant digits, about 0.19 MB) per request definition and two per scenario, so many
/// URLs on many workers would otherwise allocate gigabytes. The default worker count shrinks
/// to fit; an explicit `--workers` that does not fit is refused.
pub(crate) const MAX_HISTOGRAMS: usize = 10_000;

/// What the workers run, and everything the run needs besides.
#[derive(Debug)]
pub struct Plan {
    /// The run id.
    pub run_id: String,
    /// Scenarios, in config order.
    pub scenarios: Vec<ScenarioPlan>,
    /// Every request of every scenario, by global id.
    pub requests: Vec<RequestMeta>,
    /// Every check, by global id.
    pub checks: Vec<CheckMeta>,
    /// Distinct servers, by id.
    pub targets: Vec<Target>,
    /// Thresholds, parsed once (here).
    pub thresholds: Vec<Threshold>,
    /// Grace period for in-flight iterations at the end.
    pub graceful_stop: Duration,
    /// How long a worker keeps polling after its last request or response (`run.busy_poll`).
    pub busy_poll: Duration,
    /// Interval of the summary's timeline (`[run] timeline_interval`).
    pub timeline_interval: Duration,
    /// `[run] fail_on_export_error`: an incomplete export fails the run (exit 5).
    pub fail_on_export_error: bool,
    /// Worker threads (at most one per VU, and within [`MAX_HISTOGRAMS`]).
    pub workers: usize,
    /// HTTP client settings.
    pub client: ClientOptions,
    /// Metric recording and export settings (validated; `buckets` filled with the defaults
    /// when unset). Exporters resolve environment and secrets from them.
    pub metrics: MetricsConfig,
    /// Where the JSON summary is written (its directory exists).
    pub summary_json: Option<PathBuf>,
    /// This generator's execution segment ([`Stripe::whole`] outside a distributed run): the
    /// schedules above are already this segment's share (see [`Plan::apply_segment`]).
    pub stripe: Stripe,
    /// Trace context: sampling, per-iteration traces, span export (validated).
    pub tracing: crate::config::TracingConfig,
}

/// Reporting facts about one request definition.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    /// The name (`url.template`).
    pub name: Arc<str>,
    /// The method.
    pub method: Method,
    /// Scenario index.
    pub scenario: usize,
    /// Target id.
    pub target: usize,
}

/// What a check tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// Status is one of these.
    Status(Vec<u16>),
    /// Body contains this text.
    BodyContains(String),
    /// An extraction into this variable found a value.
    Extract(String),
}

/// Reporting facts about one check.
#[derive(Clone, Debug)]
pub struct CheckMeta {
    /// Display name, e.g. `status in [200]`.
    pub name: Arc<str>,
    /// The request it belongs to.
    pub request: usize,
    /// Scenario index.
    pub scenario: usize,
}

/// A check of one request: what it tests and where its result is counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Global check id (index in [`Plan::checks`]).
    pub id: usize,
    /// What it tests.
    pub kind: CheckKind,
}

/// An extraction from a response into a VU variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extract {
    /// Index of the VU variable that receives the value.
    pub var: usize,
    /// Where the value comes from.
    pub source: ExtractSource,
    /// The check that counts whether a value was found.
    pub check: usize,
}

/// How a scenario's VUs are paced.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// Fixed VUs until a duration and/or an iteration cap.
    ConstantVus {
        /// VUs.
        vus: u64,
        /// Run length.
        duration: Option<Duration>,
        /// Iteration cap.
        iterations: Option<u64>,
    },
    /// VUs moved linearly through stages.
    RampingVus {
        /// VUs at the start.
        start: f64,
        /// Stages (target = VUs).
        stages: Vec<Stage>,
    },
    /// A total number of iterations shared by the VUs.
    SharedIterations {
        /// VUs.
        vus: u64,
        /// Total iterations.
        iterations: u64,
        /// Optional time limit.
        max_duration: Option<Duration>,
    },
    /// Iterations started at a rate moved linearly through stages (a constant rate is one
    /// stage from `rate` to `rate`).
    ArrivalRate {
        /// Rate at the start (iterations/s).
        start: f64,
        /// Stages (target = iterations/s).
        stages: Vec<Stage>,
        /// Pre-allocated VUs: the most iterations in flight at once.
        vus: u64,
    },
}

impl Schedule {
    /// VUs that must exist.
    pub fn max_vus(&self) -> u64 {
        match self {
            Schedule::ConstantVus { vus, .. }
            | Schedule::SharedIterations { vus, .. }
            | Schedule::ArrivalRate { vus, .. } => *vus,
            Schedule::RampingVus { start, stages } => stages
                .iter()
                .map(|s| s.target)
                .fold(*start, f64::max)
                .ceil() as u64,
        }
    }

    /// Planned length, if bounded by time. Validation keeps it within
    /// [`crate::config::MAX_DURATION`]; the sum saturates rather than panics regardless.
    pub fn duration(&self) -> Option<Duration> {
        match self {
            Schedule::ConstantVus { duration, .. } => *duration,
            Schedule::SharedIterations { max_duration, .. } => *max_duration,
            Schedule::RampingVus { stages, .. } | Schedule::ArrivalRate { stages, .. } => Some(
                stages
                    .iter()
                    .fold(Duration::ZERO, |total, s| total.saturating_add(s.duration)),
            ),
        }
    }

    /// Whether this is an open-model (arrival-rate) schedule.
    pub fn is_open(&self) -> bool {
        matches!(self, Schedule::ArrivalRate { .. })
    }
}

/// One scenario, ready to run.
#[derive(Debug)]
pub struct ScenarioPlan {
    /// Index in [`Plan::scenarios`].
    pub index: usize,
    /// Name.
    pub name: Arc<str>,
    /// Pacing.
    pub schedule: Schedule,
    /// Requests each VU sends once before its first iteration.
    pub on_start: Vec<RequestPlan>,
    /// Tasks: each iteration runs one, chosen by smooth weighted round-robin.
    pub tasks: Vec<Vec<RequestPlan>>,
    /// Task weights.
    pub weights: Vec<u32>,
    /// Pause after each iteration.
    pub think_time: Option<ThinkTime>,
    /// Initial VU variable values, by index.
    pub initial_vars: Vec<String>,
    /// VUs of the whole test (all segments); equal to the schedule's own outside a
    /// distributed run. VU numbers (`${vu}`) are global: `0..global_vus`.
    pub global_vus: u64,
    /// VUs this generator runs (ramping-vus keeps the global profile in its schedule).
    pub local_vus: u64,
}

impl ScenarioPlan {
    /// The global VU number (`${vu}`) of this generator's `k`-th VU: VUs are striped over the
    /// segments like any other quantity. A segment that was given one VU beyond its share (it
    /// has iterations to run but its share of the VUs is 0) numbers it past every global VU.
    pub fn vu_id(&self, stripe: &Stripe, k: u64) -> u64 {
        if k < stripe.scale(self.global_vus) {
            stripe.nth(k)
        } else {
            self.global_vus + stripe.index as u64 + k
        }
    }
}

/// A URL: fixed, or rendered per request.
#[derive(Clone, Debug)]
pub enum UrlPlan {
    /// Parsed once (origin-form for HTTP/1.1, absolute for HTTP/2).
    Static(Uri),
    /// Rendered then parsed per request; `origin_form` strips scheme and authority.
    Dynamic {
        /// The full URL template.
        template: Template,
        /// Send only path and query (HTTP/1.1).
        origin_form: bool,
    },
}

/// A header value: fixed or rendered per request.
#[derive(Clone, Debug)]
pub enum HeaderPlan {
    /// Fixed.
    Static(HeaderValue),
    /// Rendered per request.
    Dynamic(Template),
}

/// A body: fixed or rendered per request.
#[derive(Clone, Debug)]
pub enum BodyPlan {
    /// Fixed.
    Static(Bytes),
    /// Rendered per request.
    Dynamic(Template),
}

/// One request, ready to send.
#[derive(Clone, Debug)]
pub struct RequestPlan {
    /// Global request id.
    pub id: usize,
    /// Method.
    pub method: Method,
    /// Target id.
    pub target: usize,
    /// URL.
    pub url: UrlPlan,
    /// Headers, in order (later entries override earlier ones of the same name).
    pub headers: Vec<(HeaderName, HeaderPlan)>,
    /// Body.
    pub body: Option<BodyPlan>,
    /// Extractions into VU variables, each with its check.
    pub extract: Vec<Extract>,
    /// Every check of the request: status, body, and one per extraction (`extract` says what
    /// it extracts; the executor counts those there).
    pub checks: Vec<Check>,
    /// Whether the response body must be kept (extraction from JSON or a body check).
    pub keep_body: bool,
    /// Pause after this request.
    pub think_time: Option<ThinkTime>,
    /// HTTP/1.1 only: the complete wire bytes, when nothing in the request varies per VU.
    pub wire: Option<Bytes>,
    /// HTTP/2 only: the request head as an HPACK header block (static table only, valid on
    /// any connection), when nothing in the request varies per VU.
    pub h2_head: Option<Bytes>,
    /// Whether the response to this request has no body (HEAD).
    pub head: bool,
    /// Whether an extraction needs the response headers.
    pub keep_headers: bool,
    /// Whether the request carries its own `traceparent` header (`-H`, `[defaults] headers`, its
    /// own): the user's trace context wins, and stampede never samples the request (no second
    /// header, no span, no exemplar).
    pub own_traceparent: bool,
}

/// The headers, when every one of them is static (else `None`: the request varies).
fn static_headers(
    headers: &[(HeaderName, HeaderPlan)],
) -> Option<impl Iterator<Item = (&HeaderName, &HeaderValue)>> {
    headers
        .iter()
        .all(|(_, h)| matches!(h, HeaderPlan::Static(_)))
        .then(|| {
            headers.iter().filter_map(|(n, h)| match h {
                HeaderPlan::Static(v) => Some((n, v)),
                HeaderPlan::Dynamic(_) => None,
            })
        })
}

/// Serializes a fully static HTTP/1.1 request once, at plan time.
fn static_wire(
    method: &Method,
    url: &UrlPlan,
    headers: &[(HeaderName, HeaderPlan)],
    body: Option<&BodyPlan>,
) -> Option<Bytes> {
    let UrlPlan::Static(uri) = url else {
        return None;
    };
    let hs: Vec<(HeaderName, HeaderValue)> = static_headers(headers)?
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    let body: &[u8] = match body {
        Some(BodyPlan::Static(b)) => b,
        Some(BodyPlan::Dynamic(_)) => return None,
        None => &[],
    };
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = Vec::new();
    crate::http::h1::write_request(&mut out, method, pq, &hs, body);
    Some(Bytes::from(out))
}

/// Encodes a fully static HTTP/2 request head once, at plan time (the body, static too, goes
/// as it is).
fn static_h2_head(
    method: &Method,
    url: &UrlPlan,
    headers: &[(HeaderName, HeaderPlan)],
    body: Option<&BodyPlan>,
) -> Option<Bytes> {
    let UrlPlan::Static(uri) = url else {
        return None;
    };
    if matches!(body, Some(BodyPlan::Dynamic(_))) {
        return None;
    }
    let hs: Vec<(&HeaderName, &HeaderValue)> = static_headers(headers)?.collect();
    let mut out = Vec::new();
    crate::http::h2::encode_head(&mut out, method, uri, hs);
    Some(Bytes::from(out))
}

const USER_AGENT_VALUE: &str = concat!("stampede/", env!("CARGO_PKG_VERSION"));

/// Builds the plan. `origin` names the config file for error messages.
pub(crate) fn build(config: Config, run_id: String, origin: &str) -> Result<Plan, ConfigError> {
    let err = |key: &str, msg: String| ConfigError::invalid(origin, key, msg);
    let mut b = Builder {
        origin,
        requests: Vec::new(),
        checks: Vec::new(),
        targets: Vec::new(),
        http2: config.defaults.http2,
    };
    let default_base = config
        .defaults
        .base_url
        .as_deref()
        .map(|u| base_url(u, "defaults.base_url", origin))
        .transpose()?;
    let thresholds = config
        .thresholds
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut th = Threshold::parse(t.expr())
                .map_err(|e| err(&format!("thresholds[{i}]"), e.to_string()))?;
            (th.abort_on_fail, th.delay) = t.abort();
            Ok(th)
        })
        .collect::<Result<Vec<_>, _>>();
    // Sizes the open model's default VUs; a threshold's error is reported after the scenarios'.
    let latency = thresholds.as_deref().ok().and_then(latency_bound);
    let mut scenarios = Vec::new();
    for (i, sc) in config.scenarios.iter().enumerate() {
        scenarios.push(b.scenario(i, sc, &config, default_base.as_ref(), latency)?);
    }
    let thresholds = thresholds?;
    for (i, t) in thresholds.iter().enumerate() {
        check_filter(&t.filter, &b.requests, &scenarios)
            .map_err(|m| err(&format!("thresholds[{i}]"), format!("`{}`: {m}", t.source)))?;
    }
    let workers = workers(
        config.run.workers,
        &scenarios,
        b.requests.len(),
        available_cpus(),
    )
    .map_err(|(key, m)| err(key, m))?;
    let summary_json = config
        .run
        .summary_json
        .as_deref()
        .map(|p| summary_path(p).map_err(|m| err("run.summary_json", m)))
        .transpose()?;
    let mut metrics = config.metrics;
    metrics
        .buckets
        .get_or_insert_with(|| crate::config::DEFAULT_DURATION_BUCKETS.to_vec());
    Ok(Plan {
        run_id,
        scenarios,
        requests: b.requests,
        checks: b.checks,
        targets: b.targets,
        thresholds,
        graceful_stop: config.run.graceful_stop.get(),
        busy_poll: config.run.busy_poll.get(),
        timeline_interval: config.run.timeline_interval.get(),
        fail_on_export_error: config.run.fail_on_export_error,
        workers,
        client: ClientOptions {
            timeout: config.defaults.timeout.get(),
            connect_timeout: config.defaults.connect_timeout.get(),
            http2: config.defaults.http2,
            h2_max_streams: config.defaults.h2_max_streams,
            insecure: config.defaults.insecure,
        },
        metrics,
        summary_json,
        stripe: Stripe::whole(),
        tracing: config.tracing,
    })
}

impl Plan {
    /// Keeps only this generator's segment of the test: every VU count, pre-allocated VU
    /// count and iteration budget becomes its share ([`Stripe::scale`]; the shares of all
    /// segments sum exactly to the original). ramping-vus keeps its global profile and the
    /// segment runs the VUs whose global numbers it owns, so the sum over segments at any
    /// instant is the single-machine count. Arrival-rate schedules stay global: the executor
    /// runs only the global iteration indexes the segment owns. A segment with iterations to
    /// run but no VU in its share gets one VU (so the union of the segments runs every
    /// iteration; k6 would drop them).
    pub fn apply_segment(&mut self, stripe: Stripe) {
        for sc in &mut self.scenarios {
            let global = sc.schedule.max_vus();
            sc.global_vus = global;
            let s = &stripe;
            sc.local_vus = match &mut sc.schedule {
                Schedule::ConstantVus {
                    vus, iterations, ..
                } => {
                    *vus = s.scale(*vus);
                    if let Some(i) = iterations {
                        *i = s.scale(*i);
                    }
                    *vus
                }
                Schedule::SharedIterations {
                    vus, iterations, ..
                } => {
                    *vus = s.scale(*vus);
                    *iterations = s.scale(*iterations);
                    if *vus == 0 && *iterations > 0 {
                        *vus = 1;
                    }
                    *vus
                }
                Schedule::RampingVus { .. } => s.scale(global),
                Schedule::ArrivalRate { start, stages, vus } => {
                    let mine = s.scale(crate::scenario::schedule::total_arrivals(*start, stages));
                    *vus = s.scale(*vus);
                    if *vus == 0 && mine > 0 {
                        *vus = 1;
                    }
                    *vus
                }
            };
        }
        let vus: u64 = self.scenarios.iter().map(|s| s.local_vus).sum();
        self.workers = self.workers.min(vus.max(1) as usize);
        self.stripe = stripe;
    }
}

fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The worker count: as asked (or one per CPU), never more than the VUs that can exist at
/// once, and within [`MAX_HISTOGRAMS`]. The error names the key at fault.
fn workers(
    asked: Option<usize>,
    scenarios: &[ScenarioPlan],
    requests: usize,
    cpus: usize,
) -> Result<usize, (&'static str, String)> {
    let vus = scenarios
        .iter()
        .map(|s| s.schedule.max_vus())
        .fold(0u64, u64::saturating_add)
        .max(1);
    let per_worker = requests + 2 * scenarios.len();
    // Workers plus the merged total each hold `per_worker` histograms.
    let fits = (MAX_HISTOGRAMS / per_worker.max(1)).saturating_sub(1);
    if fits == 0 {
        return Err((
            "scenarios",
            format!(
                "{requests} request definitions need more exact-statistics memory than one worker may use (at most {} request definitions; use one request with a variable, e.g. url = \"/items/${{id}}\", instead of many URLs)",
                (MAX_HISTOGRAMS / 2).saturating_sub(2 * scenarios.len())
            ),
        ));
    }
    let wanted = match asked {
        Some(w) if w > fits => {
            return Err((
                "run.workers",
                format!(
                    "{w} workers × {per_worker} latency histograms (one per request definition, two per scenario, ~0.19 MB each) exceed the limit of {MAX_HISTOGRAMS}; use --workers {fits} or fewer"
                ),
            ));
        }
        Some(w) => w,
        None => cpus.min(fits),
    };
    Ok(wanted
        .min(usize::try_from(vus).unwrap_or(usize::MAX))
        .max(1))
}

/// The summary file's directory must exist before the run starts, not be found missing after it.
fn summary_path(p: &Path) -> Result<PathBuf, String> {
    if p.is_dir() {
        return Err(format!(
            "{} is a directory; give a file name (--summary-json or run.summary_json)",
            p.display()
        ));
    }
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(format!(
            "cannot write {}: directory {} does not exist (--summary-json or run.summary_json)",
            p.display(),
            dir.display()
        ));
    }
    Ok(p.to_path_buf())
}

/// A base URL, checked once under its own key (`defaults.base_url`, `scenarios[0].base_url`).
#[derive(Clone, Debug)]
struct BaseUrl {
    url: String,
    key: String,
}

fn base_url(url: &str, key: &str, origin: &str) -> Result<BaseUrl, ConfigError> {
    let bad = |m: String| ConfigError::invalid(origin, key, m);
    // `${env.X}` is filled in now; per-VU variables are not allowed in a base URL's server
    // part, which the request's own check reports with the request's key.
    let expanded = match Template::parse(url, &VarTable::default(), &process_env) {
        Ok(t) => match t.as_static() {
            Some(s) => s.to_string(),
            None => {
                return Ok(BaseUrl {
                    url: url.into(),
                    key: key.into(),
                });
            }
        },
        Err(crate::scenario::template::TemplateError::Undefined(_)) => {
            return Ok(BaseUrl {
                url: url.into(),
                key: key.into(),
            });
        }
        Err(e) => return Err(bad(e.to_string())),
    };
    let (expanded, _) = split_credentials(&expanded);
    match scheme_of(&expanded) {
        Some(s) => check_scheme(s).map_err(bad)?,
        None => {
            return Err(bad(format!(
                "{:?} is not an absolute URL; write e.g. http://127.0.0.1:8080",
                expanded
            )));
        }
    }
    let uri: Uri = lower_scheme(&expanded)
        .parse()
        .map_err(|e| bad(format!("{expanded:?} is not a valid URL: {e}")))?;
    server_of(&uri).map_err(bad)?;
    Ok(BaseUrl {
        url: url.to_string(),
        key: key.to_string(),
    })
}

/// The scheme of an absolute URL (`http` in `http://…`, any case), or None for a path.
fn scheme_of(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// Only HTTP and HTTPS, in any case.
fn check_scheme(scheme: &str) -> Result<(), String> {
    if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        Ok(())
    } else {
        Err(format!(
            "the scheme {scheme:?} is not supported: use http:// or https://"
        ))
    }
}

/// The URL with its scheme in lower case (schemes are case-insensitive).
fn lower_scheme(url: &str) -> String {
    match scheme_of(url) {
        Some(s) => format!("{}{}", s.to_ascii_lowercase(), &url[s.len()..]),
        None => url.to_string(),
    }
}

/// The server of a parsed absolute URL, with its port checked (1-65535, digits only).
fn server_of(uri: &Uri) -> Result<Target, String> {
    let tls = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") => true,
        Some(s) if s.eq_ignore_ascii_case("http") => false,
        Some(s) => return Err(check_scheme(s).err().unwrap_or_default()),
        None => return Err("the URL has no scheme; write http:// or https://".into()),
    };
    let auth = uri
        .authority()
        .filter(|a| !a.host().is_empty())
        .ok_or_else(|| "the URL has no host".to_string())?;
    let hostport = auth
        .as_str()
        .rsplit_once('@')
        .map_or(auth.as_str(), |(_, h)| h);
    let port = match hostport
        .strip_prefix(auth.host())
        .and_then(|r| r.strip_prefix(':'))
    {
        None => {
            if tls {
                443
            } else {
                80
            }
        }
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                return Err(format!("port {p:?} is not a number from 1 to 65535"));
            }
        },
    };
    Ok(Target {
        tls,
        host: auth
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
        authority: hostport.to_string(),
    })
}

struct Builder<'a> {
    origin: &'a str,
    requests: Vec<RequestMeta>,
    checks: Vec<CheckMeta>,
    targets: Vec<Target>,
    http2: bool,
}

/// What every request of a scenario inherits.
struct ReqCtx<'a> {
    scenario: usize,
    base: Option<&'a BaseUrl>,
    /// Default then scenario headers: (name, value, the key they were set under).
    headers: &'a [(String, String, String)],
    vars: &'a VarTable,
    /// The values a VU starts with (its first request renders with these).
    initial: &'a Vars,
}

/// A request's URL, resolved: how it is sent, and to which server.
struct ResolvedUrl {
    url: UrlPlan,
    target: usize,
    /// `user:password` from the URL, sent as basic auth.
    credentials: Option<Credentials>,
}

impl Builder<'_> {
    fn err(&self, key: impl Into<String>, msg: impl Into<String>) -> ConfigError {
        ConfigError::invalid(self.origin, key, msg)
    }

    fn scenario(
        &mut self,
        index: usize,
        sc: &ScenarioConfig,
        cfg: &Config,
        default_base: Option<&BaseUrl>,
        latency: Option<f64>,
    ) -> Result<ScenarioPlan, ConfigError> {
        let at = format!("scenarios[{index}]");
        let extracted: Vec<&String> = sc
            .on_start
            .iter()
            .chain(sc.requests.iter())
            .chain(sc.tasks.iter().flat_map(|t| t.requests.iter()))
            .flat_map(|r| r.extract.keys())
            .collect();
        let vars = table_from(sc.variables.keys(), extracted);
        let initial = Vars {
            values: initial_values(&vars, &sc.variables),
            vu: 0,
            iteration: 0,
        };
        let own_base = sc
            .base_url
            .as_deref()
            .map(|u| base_url(u, &format!("{at}.base_url"), self.origin))
            .transpose()?;
        let mut headers: Vec<(String, String, String)> = cfg
            .defaults
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone(), format!("defaults.headers.{k}")))
            .collect();
        headers.extend(
            sc.headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone(), format!("{at}.headers.{k}"))),
        );
        let ctx = ReqCtx {
            scenario: index,
            base: own_base.as_ref().or(default_base),
            headers: &headers,
            vars: &vars,
            initial: &initial,
        };
        let mut on_start = Vec::new();
        for (r, rc) in sc.on_start.iter().enumerate() {
            on_start.push(self.request(&ctx, rc, &format!("{at}.on_start[{r}]"))?);
        }
        let mut tasks = Vec::new();
        let mut weights = Vec::new();
        if !sc.requests.is_empty() {
            let mut reqs = Vec::new();
            for (r, rc) in sc.requests.iter().enumerate() {
                reqs.push(self.request(&ctx, rc, &format!("{at}.requests[{r}]"))?);
            }
            tasks.push(reqs);
            weights.push(1);
        }
        for (t, task) in sc.tasks.iter().enumerate() {
            let mut reqs = Vec::new();
            for (r, rc) in task.requests.iter().enumerate() {
                reqs.push(self.request(&ctx, rc, &format!("{at}.tasks[{t}].requests[{r}]"))?);
            }
            tasks.push(reqs);
            weights.push(task.weight);
        }
        let schedule = schedule(sc, latency);
        Ok(ScenarioPlan {
            index,
            name: Arc::from(sc.name.as_str()),
            global_vus: schedule.max_vus(),
            local_vus: schedule.max_vus(),
            schedule,
            on_start,
            tasks,
            weights,
            think_time: sc.think_time.clone(),
            initial_vars: initial.values,
        })
    }

    /// One request: method, URL and server, headers, body, then its checks and extractions.
    fn request(
        &mut self,
        ctx: &ReqCtx<'_>,
        rc: &RequestConfig,
        at: &str,
    ) -> Result<RequestPlan, ConfigError> {
        let method = self.method(rc, at)?;
        let resolved = self.url(ctx, rc, at)?;
        let mut headers = HeaderList::default();
        self.standard_headers(ctx, &resolved, &mut headers, at)?;
        let body = self.body(ctx, rc, &mut headers, at)?;
        for (k, v, key) in ctx.headers {
            self.header(ctx, &mut headers, k, v, key)?;
        }
        for (k, v) in &rc.headers {
            self.header(ctx, &mut headers, k, v, &format!("{at}.headers.{k}"))?;
        }
        let headers = headers.0;
        let id = self.requests.len();
        self.requests.push(RequestMeta {
            name: request_name(rc),
            method: method.clone(),
            scenario: ctx.scenario,
            target: resolved.target,
        });
        let mut checks = self.checks(rc.checks.as_ref(), id, ctx.scenario);
        let extract = self.extracts(ctx, rc, id, &mut checks, at)?;
        let keep_body = checks
            .iter()
            .any(|c| matches!(c.kind, CheckKind::BodyContains(_)))
            || extract
                .iter()
                .any(|e| matches!(e.source, ExtractSource::Json(_)));
        let keep_headers = extract
            .iter()
            .any(|e| matches!(e.source, ExtractSource::Header(_)));
        let (wire, h2_head) = if self.http2 {
            (
                None,
                static_h2_head(&method, &resolved.url, &headers, body.as_ref()),
            )
        } else {
            (
                static_wire(&method, &resolved.url, &headers, body.as_ref()),
                None,
            )
        };
        let own_traceparent = headers
            .iter()
            .any(|(n, _)| n.as_str() == crate::trace::TRACEPARENT);
        Ok(RequestPlan {
            id,
            own_traceparent,
            head: method == Method::HEAD,
            keep_headers,
            wire,
            h2_head,
            method,
            target: resolved.target,
            url: resolved.url,
            headers,
            body,
            extract,
            checks,
            keep_body,
            think_time: rc.think_time.clone(),
        })
    }

    fn method(&self, rc: &RequestConfig, at: &str) -> Result<Method, ConfigError> {
        let text = rc.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
        Method::from_bytes(text.as_bytes())
            .map_err(|_| self.err(format!("{at}.method"), format!("invalid method {text:?}")))
    }

    /// The absolute URL as written (credentials still in it), query appended.
    fn absolute_url(
        &self,
        ctx: &ReqCtx<'_>,
        rc: &RequestConfig,
        at: &str,
    ) -> Result<String, ConfigError> {
        let key = format!("{at}.url");
        if rc.url.is_empty() {
            return Err(self.err(key, "must not be empty"));
        }
        let mut full = match scheme_of(&rc.url) {
            Some(scheme) => {
                check_scheme(scheme).map_err(|m| self.err(&key, m))?;
                lower_scheme(&rc.url)
            }
            None => {
                let base = ctx.base.ok_or_else(|| {
                    self.err(
                        &key,
                        format!(
                            "{:?} is relative but no base URL is set (defaults.base_url, the scenario's base_url, or --url)",
                            rc.url
                        ),
                    )
                })?;
                lower_scheme(&join_url(&base.url, &rc.url))
            }
        };
        if !rc.query.is_empty() {
            full.push(if full.contains('?') { '&' } else { '?' });
            let q: Vec<String> = rc
                .query
                .iter()
                .map(|(k, v)| format!("{}={}", encode_query(k), encode_query(v)))
                .collect();
            full.push_str(&q.join("&"));
        }
        Ok(full)
    }

    /// Resolves the URL: the server must be fixed (`${env.X}` is fine, per-VU variables are
    /// not), the port valid, and a URL with variables must render to a valid URL with the
    /// values a VU starts with.
    fn url(
        &mut self,
        ctx: &ReqCtx<'_>,
        rc: &RequestConfig,
        at: &str,
    ) -> Result<ResolvedUrl, ConfigError> {
        let key = format!("{at}.url");
        // The key at fault when the URL came from a base URL.
        let server_key = match (scheme_of(&rc.url), ctx.base) {
            (None, Some(b)) => b.key.clone(),
            _ => key.clone(),
        };
        let with_credentials = self.absolute_url(ctx, rc, at)?;
        // user:password@ in the URL becomes a basic-auth header and leaves the URL (and every
        // message that quotes it).
        let (full, credentials) = split_credentials(&with_credentials);
        let template = Template::parse(&full, ctx.vars, &process_env)
            .map_err(|e| self.err(&key, e.to_string()))?;
        let origin = self.origin;
        let invalid = |e: http::uri::InvalidUri| {
            ConfigError::invalid(origin, &key, format!("{full:?} is not a valid URL: {e}"))
        };
        // Render with two different fillers: the scheme and server must come out the same.
        let probe = |fill: &str| {
            template.render(&Vars {
                values: vec![fill.to_string(); ctx.vars.len()],
                vu: 1,
                iteration: 1,
            })
        };
        let p1: Uri = probe("a").parse().map_err(invalid)?;
        let p2: Uri = probe("b").parse().map_err(invalid)?;
        if p1.authority() != p2.authority() || p1.scheme() != p2.scheme() {
            return Err(self.err(
                &key,
                "the scheme and host may use ${env.X} but not per-VU variables",
            ));
        }
        let target = server_of(&p1).map_err(|m| self.err(&server_key, m))?;
        let target = self.target_id(target);
        let origin_form = !self.http2;
        let url = match template.as_static() {
            Some(s) => {
                let uri: Uri = s.parse().map_err(invalid)?;
                UrlPlan::Static(if origin_form {
                    to_origin_form(&uri)
                } else {
                    uri
                })
            }
            None => {
                let first = template.render(ctx.initial);
                if first.parse::<Uri>().is_err() {
                    return Err(self.err(
                        &key,
                        format!(
                            "{full:?} renders to {first:?} with the scenario's initial variables, which is not a valid URL"
                        ),
                    ));
                }
                UrlPlan::Dynamic {
                    template,
                    origin_form,
                }
            }
        };
        Ok(ResolvedUrl {
            url,
            target,
            credentials,
        })
    }

    fn target_id(&mut self, target: Target) -> usize {
        match self.targets.iter().position(|t| *t == target) {
            Some(i) => i,
            None => {
                self.targets.push(target);
                self.targets.len() - 1
            }
        }
    }

    /// Host (HTTP/1.1), Authorization from URL credentials, User-Agent.
    fn standard_headers(
        &self,
        ctx: &ReqCtx<'_>,
        url: &ResolvedUrl,
        headers: &mut HeaderList,
        at: &str,
    ) -> Result<(), ConfigError> {
        let key = format!("{at}.url");
        if !self.http2 {
            let authority = self.targets[url.target].authority.clone();
            self.header(ctx, headers, HOST.as_str(), &authority, &key)?;
        }
        if let Some(c) = &url.credentials {
            self.header(ctx, headers, AUTHORIZATION.as_str(), &c.basic_auth(), &key)?;
        }
        self.header(
            ctx,
            headers,
            USER_AGENT.as_str(),
            USER_AGENT_VALUE,
            &format!("{at}.headers"),
        )
    }

    /// Parses one header (name, value template) under `key`. A value with per-VU variables must
    /// render to a valid header value with the values a VU starts with.
    fn header(
        &self,
        ctx: &ReqCtx<'_>,
        headers: &mut HeaderList,
        name: &str,
        value: &str,
        key: &str,
    ) -> Result<(), ConfigError> {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| self.err(key, format!("invalid header name {name:?}")))?;
        let t = Template::parse(value, ctx.vars, &process_env)
            .map_err(|e| self.err(key, e.to_string()))?;
        // Values may be secrets: the messages never quote them.
        let plan = match t.as_static() {
            Some(s) => HeaderPlan::Static(HeaderValue::from_str(s).map_err(|_| {
                self.err(
                    key,
                    "not a valid header value (control characters such as CR or LF)",
                )
            })?),
            None => {
                if HeaderValue::from_str(&t.render(ctx.initial)).is_err() {
                    return Err(self.err(
                        key,
                        "renders to an invalid header value with the scenario's initial variables (control characters such as CR or LF)",
                    ));
                }
                HeaderPlan::Dynamic(t)
            }
        };
        headers.set(header, plan);
        Ok(())
    }

    /// `body` (text) or `json` (which also sets `Content-Type: application/json`).
    fn body(
        &self,
        ctx: &ReqCtx<'_>,
        rc: &RequestConfig,
        headers: &mut HeaderList,
        at: &str,
    ) -> Result<Option<BodyPlan>, ConfigError> {
        let (text, key) = match (&rc.body, &rc.json) {
            (Some(_), Some(_)) => {
                return Err(self.err(format!("{at}.body"), "give either body or json, not both"));
            }
            (Some(b), None) => (b.clone(), format!("{at}.body")),
            (None, Some(j)) => {
                let key = format!("{at}.json");
                self.header(
                    ctx,
                    headers,
                    CONTENT_TYPE.as_str(),
                    "application/json",
                    &key,
                )?;
                let text = serde_json::to_string(j).map_err(|e| self.err(&key, e.to_string()))?;
                (text, key)
            }
            (None, None) => return Ok(None),
        };
        let t = Template::parse(&text, ctx.vars, &process_env)
            .map_err(|e| self.err(key, e.to_string()))?;
        Ok(Some(match t.as_static() {
            Some(s) => BodyPlan::Static(Bytes::copy_from_slice(s.as_bytes())),
            None => BodyPlan::Dynamic(t),
        }))
    }

    /// Status and body checks, each registered with a global id.
    fn checks(&mut self, checks: Option<&Checks>, request: usize, scenario: usize) -> Vec<Check> {
        let mut out = Vec::new();
        let Some(Checks {
            status,
            body_contains,
        }) = checks
        else {
            return out;
        };
        if !status.is_empty() {
            let list: Vec<String> = status.iter().map(u16::to_string).collect();
            out.push(Check {
                id: self.check(format!("status in [{}]", list.join(",")), request, scenario),
                kind: CheckKind::Status(status.clone()),
            });
        }
        if let Some(text) = body_contains {
            out.push(Check {
                id: self.check(format!("body contains {text:?}"), request, scenario),
                kind: CheckKind::BodyContains(text.clone()),
            });
        }
        out
    }

    /// Extractions, each with the check `extract <var>` that counts whether it found a value
    /// (also listed in `checks`, so a request with no check has an empty list).
    fn extracts(
        &mut self,
        ctx: &ReqCtx<'_>,
        rc: &RequestConfig,
        request: usize,
        checks: &mut Vec<Check>,
        at: &str,
    ) -> Result<Vec<Extract>, ConfigError> {
        let mut out = Vec::new();
        for (var, source) in &rc.extract {
            if let ExtractSource::Json(p) = source
                && !(p.is_empty() || p.starts_with('/'))
            {
                return Err(self.err(
                    format!("{at}.extract.{var}"),
                    format!("JSON pointer {p:?} must start with / (e.g. \"/data/token\")"),
                ));
            }
            if let ExtractSource::Header(h) = source
                && HeaderName::from_bytes(h.as_bytes()).is_err()
            {
                return Err(self.err(
                    format!("{at}.extract.{var}"),
                    format!("invalid header name {h:?}"),
                ));
            }
            let check = self.check(format!("extract {var}"), request, ctx.scenario);
            checks.push(Check {
                id: check,
                kind: CheckKind::Extract(var.clone()),
            });
            out.push(Extract {
                var: ctx.vars.get(var).unwrap_or_default(),
                source: source.clone(),
                check,
            });
        }
        Ok(out)
    }

    fn check(&mut self, name: String, request: usize, scenario: usize) -> usize {
        self.checks.push(CheckMeta {
            name: Arc::from(name),
            request,
            scenario,
        });
        self.checks.len() - 1
    }
}

/// Headers in order; setting a name again replaces the earlier value.
#[derive(Default)]
struct HeaderList(Vec<(HeaderName, HeaderPlan)>);

impl HeaderList {
    fn set(&mut self, name: HeaderName, value: HeaderPlan) {
        self.0.retain(|(n, _)| *n != name);
        self.0.push((name, value));
    }
}

/// Name: explicit, or the path of the URL as written (variables kept as `${x}`).
fn request_name(rc: &RequestConfig) -> Arc<str> {
    match &rc.name {
        Some(n) => Arc::from(n.as_str()),
        None => Arc::from(path_of(&rc.url)),
    }
}

/// `latency`: the longest latency a threshold allows (see [`latency_bound`]).
fn schedule(sc: &ScenarioConfig, latency: Option<f64>) -> Schedule {
    let stages = || -> Vec<Stage> {
        sc.stages
            .iter()
            .map(|s| Stage::new(s.duration.get(), s.target))
            .collect()
    };
    match sc.executor_kind() {
        ExecutorKind::ConstantVus => Schedule::ConstantVus {
            vus: sc.vus.unwrap_or(1),
            duration: sc.duration.map(|d| d.get()),
            iterations: sc.iterations,
        },
        ExecutorKind::RampingVus => Schedule::RampingVus {
            start: sc.start.unwrap_or(0.0),
            stages: stages(),
        },
        ExecutorKind::SharedIterations => Schedule::SharedIterations {
            vus: sc.vus.unwrap_or(1),
            iterations: sc.iterations.unwrap_or(1),
            max_duration: sc.duration.map(|d| d.get()),
        },
        ExecutorKind::ConstantArrivalRate => {
            let rate = sc.rate.unwrap_or(1.0);
            Schedule::ArrivalRate {
                start: rate,
                stages: vec![Stage::new(
                    sc.duration.map(|d| d.get()).unwrap_or_default(),
                    rate,
                )],
                vus: sc.vus.unwrap_or_else(|| default_open_vus(rate, latency)),
            }
        }
        // The search runs each step as constant-arrival-rate (`crate::command::capacity`); planned on
        // its own (`validate`), it is its first step's shape.
        ExecutorKind::CapacitySearch => Schedule::ArrivalRate {
            start: 1.0,
            stages: vec![Stage::new(Duration::from_secs(1), 1.0)],
            vus: sc.vus.unwrap_or(10),
        },
        ExecutorKind::RampingArrivalRate => {
            let start = sc.start.unwrap_or(0.0);
            let peak = sc.stages.iter().map(|s| s.target).fold(start, f64::max);
            Schedule::ArrivalRate {
                start,
                stages: stages(),
                vus: sc.vus.unwrap_or_else(|| default_open_vus(peak, latency)),
            }
        }
    }
}

/// Enough VUs for the peak rate at the longest latency a threshold allows (at least 100 ms),
/// within [10, 10,000] (Little's law: VUs busy = rate × latency). Fewer would drop iterations
/// for want of a free VU while the target still meets its thresholds: a capacity search would
/// blame the generator for the target's queueing.
fn default_open_vus(rate: f64, latency: Option<f64>) -> u64 {
    let latency = latency.unwrap_or(0.0).max(0.1);
    let vus = (rate * latency).ceil();
    if vus.is_finite() {
        (vus as u64).clamp(10, 10_000)
    } else {
        10_000
    }
}

/// Whether some request matches a threshold's filter: a name, method or scenario that no
/// request has is a typo found before the run (with the closest one), not a threshold that
/// fails after it for want of requests.
fn check_filter(
    f: &crate::threshold::Filter,
    requests: &[RequestMeta],
    scenarios: &[ScenarioPlan],
) -> Result<(), String> {
    let scenario_of = |r: &RequestMeta| &*scenarios[r.scenario].name;
    let known = |what: &str, want: &str, have: Vec<&str>| -> Result<(), String> {
        if have.contains(&want) {
            return Ok(());
        }
        let mut have = have;
        have.sort_unstable();
        have.dedup();
        let hint = crate::suggest::did_you_mean(want, have.iter().copied())
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        let list: Vec<&str> = have.iter().copied().take(10).collect();
        let more = if have.len() > 10 { ", …" } else { "" };
        Err(format!(
            "no request has the {what} `{want}`{hint} (the plan's: {}{more})",
            list.join(", ")
        ))
    };
    if let Some(n) = &f.name {
        known("name", n, requests.iter().map(|r| &*r.name).collect())?;
    }
    if let Some(m) = &f.method {
        known(
            "method",
            m,
            requests.iter().map(|r| r.method.as_str()).collect(),
        )?;
    }
    if let Some(s) = &f.scenario {
        known("scenario", s, requests.iter().map(scenario_of).collect())?;
    }
    let matches = requests.iter().any(|r| {
        f.name.as_deref().is_none_or(|n| n == &*r.name)
            && f.method.as_deref().is_none_or(|m| m == r.method.as_str())
            && f.scenario.as_deref().is_none_or(|s| s == scenario_of(r))
    });
    if matches {
        Ok(())
    } else {
        Err("no request matches the whole filter (each part matches some request, not all together)".into())
    }
}

/// The longest request latency the run's thresholds allow (`p99 < 500ms`, `max <= 2s`,
/// `mean < 1s`), in seconds; `None` if no threshold bounds latency from above.
pub(crate) fn latency_bound(thresholds: &[Threshold]) -> Option<f64> {
    use crate::threshold::{Metric, Op};
    thresholds
        .iter()
        .filter(|t| {
            matches!(t.metric, Metric::Percentile(_) | Metric::Max | Metric::Mean)
                && matches!(t.op, Op::Lt | Op::Le)
        })
        .map(|t| t.value)
        .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
}

fn join_url(base: &str, path: &str) -> String {
    match (base.ends_with('/'), path.starts_with('/')) {
        (true, true) => format!("{}{}", base.trim_end_matches('/'), path),
        (false, false) => format!("{base}/{path}"),
        _ => format!("{base}{path}"),
    }
}

/// The path of a URL as written (`/x` of `HTTP://host/x?q`), or the text itself for a path.
fn path_of(url: &str) -> String {
    let after_scheme = match scheme_of(url) {
        Some(s) => {
            let rest = &url[s.len() + 3..];
            rest.find('/').map_or("/", |i| &rest[i..])
        }
        None => url,
    };
    let path = after_scheme.split('?').next().unwrap_or("/");
    if path.is_empty() {
        "/".to_string()
    } else {
        path.to_string()
    }
}

fn to_origin_form(uri: &Uri) -> Uri {
    uri.path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/")
        .parse()
        .unwrap_or_else(|_| Uri::from_static("/"))
}

fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else if b == b'$' || b == b'{' || b == b'}' {
            // Keep template markers intact; values are rendered later.
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, load};

    /// Every segment's plan of `toml` under `seq`.
    fn segment_plans(toml: &str, seq: &crate::scenario::segment::Sequence) -> Vec<Plan> {
        (0..seq.len())
            .map(|i| {
                let mut p = plan_of(toml).expect("plan");
                p.apply_segment(Stripe::new(seq, i).expect("stripe"));
                p
            })
            .collect()
    }

    #[test]
    fn segments_share_vus_and_iterations_exactly() {
        use crate::scenario::segment::Sequence;
        let toml = r#"
            [[scenarios]]
            name = "c"
            vus = 30
            iterations = 1001
            requests = [{ url = "http://127.0.0.1:1/" }]
            [[scenarios]]
            name = "r"
            stages = [{ duration = "10s", target = 7 }, { duration = "10s", target = 0 }]
            requests = [{ url = "http://127.0.0.1:1/" }]
            [[scenarios]]
            name = "o"
            rate = 3000
            duration = "5s"
            vus = 2
            requests = [{ url = "http://127.0.0.1:1/" }]
        "#;
        for seq in ["0,1/3,2/3,1", "0,0.1,0.25,0.5,1", "0,1"] {
            let seq = Sequence::parse(seq).unwrap();
            let plans = segment_plans(toml, &seq);
            let sum = |f: &dyn Fn(&Plan) -> u64| plans.iter().map(f).sum::<u64>();
            assert_eq!(sum(&|p| p.scenarios[0].local_vus), 30, "{seq}");
            let iters = |p: &Plan| match p.scenarios[0].schedule {
                Schedule::SharedIterations { iterations, .. } => iterations,
                ref s => panic!("{s:?}"),
            };
            assert_eq!(sum(&iters), 1001, "{seq}");
            assert_eq!(sum(&|p| p.scenarios[1].local_vus), 7, "{seq}");
            // VU numbers are global and unique.
            let mut ids: Vec<u64> = plans
                .iter()
                .flat_map(|p| {
                    (0..p.scenarios[0].local_vus).map(|k| p.scenarios[0].vu_id(&p.stripe, k))
                })
                .collect();
            ids.sort_unstable();
            assert_eq!(ids, (0..30).collect::<Vec<_>>());
            // Ramping-vus: at every instant the active VUs over all segments (a VU is active
            // while the target exceeds its global number) equal the single-machine count.
            for tenth in 0..=200 {
                let t = Duration::from_millis(tenth * 100);
                let Schedule::RampingVus { start, ref stages } = plans[0].scenarios[1].schedule
                else {
                    panic!()
                };
                let target = crate::scenario::schedule::vu_target(start, stages, t);
                let single = (0..7).filter(|v| target > *v as f64).count();
                let union: usize = plans
                    .iter()
                    .map(|p| {
                        (0..p.scenarios[1].local_vus)
                            .filter(|k| target > p.scenarios[1].vu_id(&p.stripe, *k) as f64)
                            .count()
                    })
                    .sum();
                assert_eq!(union, single, "{seq} t={t:?}");
            }
            // Open model: 2 pre-allocated VUs over more segments: every segment with
            // iterations still gets a VU.
            assert!(plans.iter().all(|p| p.scenarios[2].local_vus >= 1));
        }
    }

    #[test]
    fn union_of_segment_arrival_schedules_is_the_single_schedule() {
        use crate::scenario::schedule::{arrival_time, total_arrivals};
        use crate::scenario::segment::Sequence;
        let profiles: [(f64, Vec<Stage>); 3] = [
            (3000.0, vec![Stage::new(Duration::from_secs(5), 3000.0)]),
            (
                0.0,
                vec![
                    Stage::new(Duration::from_secs(3), 500.0),
                    Stage::new(Duration::from_secs(2), 500.0),
                    Stage::new(Duration::from_secs(1), 20.0),
                ],
            ),
            (7.5, vec![Stage::new(Duration::from_millis(1500), 91.0)]),
        ];
        for seq in [
            "0,1",
            "0,1/3,2/3,1",
            "0,0.1,0.25,0.5,1",
            "0,1/7,3/11,0.5,0.9,1",
        ] {
            let seq = Sequence::parse(seq).unwrap();
            for (start, stages) in &profiles {
                let total = total_arrivals(*start, stages);
                let single: Vec<Duration> = (0..total)
                    .map(|i| arrival_time(*start, stages, i).unwrap())
                    .collect();
                let mut union = Vec::new();
                for i in 0..seq.len() {
                    let st = Stripe::new(&seq, i).unwrap();
                    // What the executor does: local claim c → global index nth(c).
                    for c in 0..st.scale(total) {
                        union.push((st.nth(c), arrival_time(*start, stages, st.nth(c)).unwrap()));
                    }
                }
                union.sort_unstable();
                let idx: Vec<u64> = union.iter().map(|u| u.0).collect();
                assert_eq!(idx, (0..total).collect::<Vec<_>>(), "{seq}");
                let times: Vec<Duration> = union.into_iter().map(|u| u.1).collect();
                assert_eq!(times, single, "{seq}");
            }
        }
    }

    fn plan_of(toml: &str) -> Result<Plan, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        std::fs::write(&p, toml).unwrap();
        let cfg = load(Some(&p), &Overrides::default())?;
        build(cfg, "t".into(), "s.toml")
    }

    #[test]
    fn joins_names_and_queries() {
        let plan = plan_of(
            r#"
            [defaults]
            base_url = "http://127.0.0.1:9528/"
            [[scenarios]]
            vus = 1
            duration = "1s"
            [[scenarios.requests]]
            url = "/newsql/api/getTablesByAppId"
            query = { appId = "1" }
            "#,
        )
        .unwrap();
        let r = &plan.scenarios[0].tasks[0][0];
        match &r.url {
            UrlPlan::Static(u) => assert_eq!(u, "/newsql/api/getTablesByAppId?appId=1"),
            other => panic!("{other:?}"),
        }
        assert_eq!(&*plan.requests[0].name, "/newsql/api/getTablesByAppId");
        assert_eq!(plan.targets[0].port, 9528);
        assert!(r.headers.iter().any(|(n, _)| n == HOST));
    }

    #[test]
    fn credentials_in_urls_become_basic_auth_and_leave_the_url() {
        let plan = plan_of(
            r#"
            [[scenarios]]
            vus = 1
            duration = "1s"
            requests = [{ url = "http://load:s%40cret@127.0.0.1:9/x" }]
            "#,
        )
        .unwrap();
        let r = &plan.scenarios[0].tasks[0][0];
        let wire = String::from_utf8(r.wire.as_ref().unwrap().to_vec()).unwrap();
        assert!(
            wire.contains(&format!(
                "authorization: Basic {}",
                crate::http::url::base64(b"load:s@cret")
            )),
            "{wire}"
        );
        assert!(!wire.contains("s%40cret@"), "{wire}");
        assert_eq!(plan.targets[0].authority, "127.0.0.1:9");
        assert_eq!(&*plan.requests[0].name, "/x");
    }

    #[test]
    fn relative_url_without_base_is_an_error() {
        let e = plan_of(
            r#"
            [[scenarios]]
            vus = 1
            duration = "1s"
            requests = [{ url = "/x" }]
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("scenarios[0].requests[0].url"), "{e}");
    }

    #[test]
    fn dynamic_host_is_rejected_but_dynamic_path_is_fine() {
        let e = plan_of(
            r#"
            [[scenarios]]
            vus = 1
            duration = "1s"
            variables = { h = "x" }
            requests = [{ url = "http://${h}/x" }]
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("per-VU variables"), "{e}");
        let p = plan_of(
            r#"
            [[scenarios]]
            vus = 1
            duration = "1s"
            variables = { id = "7" }
            requests = [{ url = "http://127.0.0.1:1/items/${id}" }]
            "#,
        )
        .unwrap();
        assert_eq!(&*p.requests[0].name, "/items/${id}");
        assert!(matches!(
            p.scenarios[0].tasks[0][0].url,
            UrlPlan::Dynamic { .. }
        ));
    }

    #[test]
    fn schedules_follow_the_executor() {
        let p = plan_of(
            r#"
            [defaults]
            base_url = "http://127.0.0.1:1"
            [[scenarios]]
            name = "a"
            rate = 200
            duration = "10s"
            requests = [{ url = "/" }]
            [[scenarios]]
            name = "b"
            stages = [{ duration = "5s", target = 20 }, { duration = "5s", target = 0 }]
            requests = [{ url = "/" }]
            [[scenarios]]
            name = "c"
            iterations = 100
            vus = 4
            requests = [{ url = "/" }]
            "#,
        )
        .unwrap();
        assert_eq!(
            p.scenarios[0].schedule,
            Schedule::ArrivalRate {
                start: 200.0,
                stages: vec![Stage::new(Duration::from_secs(10), 200.0)],
                vus: 20
            }
        );
        assert_eq!(p.scenarios[1].schedule.max_vus(), 20);
        assert_eq!(
            p.scenarios[2].schedule,
            Schedule::SharedIterations {
                vus: 4,
                iterations: 100,
                max_duration: None
            }
        );
    }
    #[test]
    fn the_busy_poll_window_comes_from_the_run_table() {
        let sc = "[[scenarios]]\nvus = 1\nduration = \"1s\"\nrequests = [{ url = \"http://127.0.0.1:1/\" }]\n";
        let p = plan_of(sc).unwrap();
        assert_eq!(p.busy_poll, Duration::ZERO);
        let p = plan_of(&format!("[run]\nbusy_poll = \"100us\"\n{sc}")).unwrap();
        assert_eq!(p.busy_poll, Duration::from_micros(100));
        let p = plan_of(&format!("[run]\nbusy_poll = \"250us\"\n{sc}")).unwrap();
        assert_eq!(p.busy_poll, Duration::from_micros(250));
    }

    #[test]
    fn open_model_vus_default_to_the_rate_times_the_latency_thresholds_allow() {
        let vus = |thresholds: &str, rate: u64| {
            let p = plan_of(&format!(
                r#"
                thresholds = [{thresholds}]
                [defaults]
                base_url = "http://127.0.0.1:1"
                [[scenarios]]
                rate = {rate}
                duration = "10s"
                requests = [{{ url = "/" }}]
                "#
            ))
            .unwrap();
            p.scenarios[0].schedule.max_vus()
        };
        // No latency threshold: 100 ms worth of the rate, at least 10.
        assert_eq!(vus("", 200), 20);
        assert_eq!(vus("", 50), 10);
        assert_eq!(vus(r#""error_rate < 1%""#, 200), 20);
        // The longest latency bound counts; lower bounds and rates do not.
        assert_eq!(vus(r#""p99 < 500ms""#, 200), 100);
        assert_eq!(vus(r#""p99[1s] < 2s", "p50 <= 300ms""#, 200), 400);
        assert_eq!(vus(r#""max < 1s", "mean > 5s""#, 200), 200);
        // A short bound does not go below 100 ms; a huge one stops at 10,000.
        assert_eq!(vus(r#""p95 < 10ms""#, 200), 20);
        assert_eq!(vus(r#""p99 < 10s""#, 5000), 10_000);
    }

    fn plan_err(toml: &str) -> String {
        plan_of(toml).expect_err(toml).to_string()
    }

    const ONE_VU: &str = "[[scenarios]]\nvus = 1\niterations = 1\n";

    #[test]
    fn ports_must_be_numbers_from_1_to_65535() {
        for (url, ok) in [
            ("http://127.0.0.1:99999/", false),
            ("http://127.0.0.1:99x/", false),
            ("http://127.0.0.1:0/", false),
            ("http://127.0.0.1:+80/", false),
            ("http://[::1]:65536/", false),
            ("http://127.0.0.1:65535/", true),
            ("http://[::1]:8080/", true),
        ] {
            let toml = format!("{ONE_VU}requests = [{{ url = \"{url}\" }}]\n");
            match plan_of(&toml) {
                Ok(p) => assert!(ok, "{url} accepted as port {}", p.targets[0].port),
                Err(e) => {
                    let e = e.to_string();
                    assert!(!ok, "{url}: {e}");
                    assert!(
                        e.contains("`scenarios[0].requests[0].url`") && e.contains("port"),
                        "{e}"
                    );
                }
            }
        }
        // A bad port in a base URL names the base URL's key.
        let e = plan_err(&format!(
            "[defaults]\nbase_url = \"http://127.0.0.1:99999\"\n{ONE_VU}requests = [{{ url = \"/x\" }}]\n"
        ));
        assert!(
            e.contains("`defaults.base_url`") && e.contains("99999"),
            "{e}"
        );
        let e = plan_err(&format!(
            "{ONE_VU}base_url = \"http://127.0.0.1:1x\"\nrequests = [{{ url = \"/x\" }}]\n"
        ));
        assert!(e.contains("`scenarios[0].base_url`"), "{e}");
    }

    #[test]
    fn only_http_and_https_in_any_case() {
        // An ftp:// URL is not a path to join to the base URL.
        let e = plan_err(&format!(
            "[defaults]\nbase_url = \"http://127.0.0.1:1\"\n{ONE_VU}requests = [{{ url = \"FTP://127.0.0.1/x\" }}]\n"
        ));
        assert!(
            e.contains("`scenarios[0].requests[0].url`") && e.contains("\"FTP\""),
            "{e}"
        );
        let e = plan_err(&format!(
            "[defaults]\nbase_url = \"ftp://127.0.0.1\"\n{ONE_VU}requests = [{{ url = \"/x\" }}]\n"
        ));
        assert!(
            e.contains("`defaults.base_url`") && e.contains("\"ftp\""),
            "{e}"
        );
        // Upper-case schemes are schemes: credentials leave the URL and the name.
        let p = plan_of(&format!(
            "{ONE_VU}requests = [{{ url = \"HTTPS://load:pw@127.0.0.1:9/x\" }}]\n"
        ))
        .expect("HTTPS");
        assert!(p.targets[0].tls);
        assert_eq!(p.targets[0].authority, "127.0.0.1:9");
        assert_eq!(&*p.requests[0].name, "/x");
        let r = &p.scenarios[0].tasks[0][0];
        assert!(r.headers.iter().any(|(n, _)| n == AUTHORIZATION));
        assert!(!format!("{r:?}").contains("pw@"));
    }

    #[test]
    fn templates_are_rendered_with_the_initial_variables() {
        // A header whose variable starts with a line break fails every request: refuse it.
        let e = plan_err(&format!(
            "{ONE_VU}variables = {{ t = \"a\\r\\nX-Evil: 1\" }}\nrequests = [{{ url = \"http://127.0.0.1:1/\", headers = {{ X-T = \"${{t}}\" }} }}]\n"
        ));
        assert!(
            e.contains("`scenarios[0].requests[0].headers.X-T`") && e.contains("initial"),
            "{e}"
        );
        assert!(!e.contains("Evil"), "header values are never quoted: {e}");
        let e = plan_err(&format!(
            "{ONE_VU}variables = {{ q = \"a b\" }}\nrequests = [{{ url = \"http://127.0.0.1:1/?q=${{q}}\" }}]\n"
        ));
        assert!(
            e.contains("`scenarios[0].requests[0].url`") && e.contains("initial"),
            "{e}"
        );
        // An extracted variable starts empty, which is fine.
        plan_of(&format!(
            "{ONE_VU}on_start = [{{ url = \"http://127.0.0.1:1/login\", extract = {{ token = {{ json = \"/t\" }} }} }}]\nrequests = [{{ url = \"http://127.0.0.1:1/\", headers = {{ Authorization = \"Bearer ${{token}}\" }} }}]\n"
        ))
        .expect("extracted variables start empty");
    }

    #[test]
    fn inherited_headers_are_named_where_they_are_set() {
        let e = plan_err(&format!(
            "[defaults]\nheaders = {{ \"Bad Name\" = \"x\" }}\n{ONE_VU}requests = [{{ url = \"http://127.0.0.1:1/\" }}]\n"
        ));
        assert!(e.contains("`defaults.headers.Bad Name`"), "{e}");
        let e = plan_err(&format!(
            "{ONE_VU}headers = {{ \"Bad Name\" = \"x\" }}\nrequests = [{{ url = \"http://127.0.0.1:1/\" }}]\n"
        ));
        assert!(e.contains("`scenarios[0].headers.Bad Name`"), "{e}");
    }

    #[test]
    fn checks_and_extractions_are_named_records() {
        let p = plan_of(&format!(
            "{ONE_VU}variables = {{ a = \"1\" }}\nrequests = [{{ url = \"http://127.0.0.1:1/\", checks = {{ status = 200, body_contains = \"ok\" }}, extract = {{ tok = {{ header = \"X-Token\" }} }} }}]\n"
        ))
        .expect("plan");
        let r = &p.scenarios[0].tasks[0][0];
        let kinds: Vec<&CheckKind> = r.checks.iter().map(|c| &c.kind).collect();
        assert_eq!(
            kinds,
            [
                &CheckKind::Status(vec![200]),
                &CheckKind::BodyContains("ok".into()),
                &CheckKind::Extract("tok".into())
            ]
        );
        assert_eq!(
            r.extract,
            [Extract {
                var: 1,
                source: ExtractSource::Header("X-Token".into()),
                check: 2
            }]
        );
        assert!(r.keep_body && r.keep_headers);
        assert_eq!(p.checks.len(), 3);
        assert_eq!(&*p.checks[2].name, "extract tok");
    }

    #[test]
    fn workers_fit_the_vus_and_the_histogram_budget() {
        let sc = |vus: u64| ScenarioPlan {
            index: 0,
            name: "s".into(),
            schedule: Schedule::ConstantVus {
                vus,
                duration: None,
                iterations: Some(1),
            },
            on_start: vec![],
            tasks: vec![],
            weights: vec![],
            think_time: None,
            initial_vars: vec![],
            global_vus: vus,
            local_vus: vus,
        };
        // Never more workers than VUs.
        assert_eq!(workers(Some(8), &[sc(2)], 1, 4), Ok(2));
        assert_eq!(workers(None, &[sc(100)], 1, 4), Ok(4));
        // 1,000 request definitions: (w + 1) × 1002 histograms ≤ 10,000 → 8 workers at most.
        assert_eq!(workers(None, &[sc(100)], 1000, 64), Ok(8));
        assert_eq!(workers(Some(8), &[sc(100)], 1000, 64), Ok(8));
        let (key, e) = workers(Some(9), &[sc(100)], 1000, 64).expect_err("9 × 1002");
        assert!(key == "run.workers" && e.contains("--workers 8"), "{e}");
        let (key, e) = workers(None, &[sc(100)], 5000, 1).expect_err("5000 requests");
        assert!(
            key == "scenarios" && e.contains("request definitions"),
            "{e}"
        );
    }

    #[test]
    fn the_summary_directory_must_exist_and_the_plan_keeps_what_the_run_reads() {
        let e = plan_err(&format!(
            "[run]\nsummary_json = \"/nonexistent-dir/s.json\"\n{ONE_VU}requests = [{{ url = \"http://127.0.0.1:1/\" }}]\n"
        ));
        assert!(
            e.contains("`run.summary_json`") && e.contains("/nonexistent-dir"),
            "{e}"
        );
        let e = plan_err(&format!(
            "[run]\nsummary_json = \"/tmp\"\n{ONE_VU}requests = [{{ url = \"http://127.0.0.1:1/\" }}]\n"
        ));
        assert!(e.contains("is a directory"), "{e}");
        let p = plan_of(&format!(
            "thresholds = [\"p95 < 1s\"]\n[run]\nsummary_json = \"s.json\"\n[metrics]\ninterval = \"2s\"\n{ONE_VU}requests = [{{ url = \"http://127.0.0.1:1/\" }}]\n"
        ))
        .expect("plan");
        assert_eq!(p.thresholds.len(), 1);
        assert_eq!(
            p.summary_json.as_deref(),
            Some(std::path::Path::new("s.json"))
        );
        assert_eq!(p.metrics.interval, Some(crate::config::Dur::secs(2)));
        assert_eq!(
            p.metrics.buckets.as_deref(),
            Some(crate::config::DEFAULT_DURATION_BUCKETS)
        );
    }

    #[test]
    fn schedule_lengths_saturate_instead_of_overflowing() {
        let s = Schedule::RampingVus {
            start: 0.0,
            stages: vec![
                Stage::new(Duration::MAX, 1.0),
                Stage::new(Duration::MAX, 1.0),
            ],
        };
        assert_eq!(s.duration(), Some(Duration::MAX));
    }
}
