//! OpenTelemetry instruments: the MeterProvider, its readers, and the per-worker recorder.
//!
//! Attribute sets are built once (per request definition, and per outcome the first time it is
//! seen) and bound with the SDK's bound instruments, so recording a request is a handful of
//! atomic adds with no attribute lookup, no lock and no allocation. Exporters attach as
//! [`SharedReader`]s that the export loop collects on its own schedule.
//!
//! Series limits: the SDK folds the attribute sets of an instrument past its cardinality limit
//! (2,000 by default) into one `otel.metric.overflow` set that has no other attribute, so those
//! requests would lose their run id. [`SeriesLimits`] raises every instrument's limit to what
//! the plan needs, and the outcome instruments (whose sets depend on the status codes and error
//! types seen) get a budget of [`OUTCOMES_PER_REQUEST`] per request: past it, a new outcome is
//! recorded into a per-scenario overflow set that keeps the run id and scenario, and the summary
//! says how many were folded. The SDK's own overflow therefore never happens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use opentelemetry::metrics::{
    BoundCounter, BoundHistogram, BoundUpDownCounter, Counter, Histogram, Meter,
    MeterProvider as _, UpDownCounter,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    Aggregation, Instrument, InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Stream,
    Temporality,
};

use crate::config::{DEFAULT_DURATION_BUCKETS, DEFAULT_SIZE_BUCKETS, HistogramKind, MetricsConfig};
use crate::outcome::{ErrorKind, Sample};
use crate::process::{self, Monitor};
use crate::scenario::plan::Plan;
use crate::stats::{DropReason, Drops, RunClock, VuCounts};

/// A [`ManualReader`] that can be registered with the provider and still collected by us.
#[derive(Clone, Debug)]
pub struct SharedReader(Arc<ManualReader>);

impl SharedReader {
    /// A reader with the given temporality.
    pub fn new(temporality: Temporality) -> Self {
        SharedReader(Arc::new(
            ManualReader::builder()
                .with_temporality(temporality)
                .build(),
        ))
    }
}

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline)
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

/// The resource every series carries (`job`, `instance`, `target_info`).
pub fn resource(cfg: &MetricsConfig, run_id: &str) -> Resource {
    let mut b = Resource::builder();
    let name = cfg
        .service_name
        .clone()
        .or_else(|| std::env::var("OTEL_SERVICE_NAME").ok())
        .unwrap_or_else(|| "stampede".to_string());
    b = b.with_service_name(name);
    b = b.with_attributes([
        KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        KeyValue::new("service.instance.id", instance_id(cfg, run_id)),
    ]);
    if let Some(seg) = cfg.segment {
        b = b.with_attributes([KeyValue::new(SEGMENT_KEY, i64::from(seg))]);
    }
    // OTEL_RESOURCE_ATTRIBUTES: key=value,key=value (values percent-decoded minimally).
    if let Ok(attrs) = std::env::var("OTEL_RESOURCE_ATTRIBUTES") {
        let kvs: Vec<KeyValue> = attrs
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| !k.trim().is_empty() && k.trim() != "service.name")
            .map(|(k, v)| KeyValue::new(k.trim().to_string(), v.trim().to_string()))
            .collect();
        b = b.with_attributes(kvs);
    }
    b.build()
}

/// The resource attribute that carries the execution segment index (in `target_info`).
pub const SEGMENT_KEY: &str = "stampede.segment";

/// `service.instance.id` (Prometheus `instance`): `metrics.instance_id` (`--instance-id`), else
/// `<hostname>-<run id>`, with `-<segment>` appended in segment mode, so that N generators of
/// one run (pods with their own hostnames, or processes on one host) never write the same
/// cumulative series. `OTEL_RESOURCE_ATTRIBUTES=service.instance.id=…` overrides it all.
pub fn instance_id(cfg: &MetricsConfig, run_id: &str) -> String {
    if let Some(id) = &cfg.instance_id {
        return id.clone();
    }
    match cfg.segment {
        Some(seg) => format!("{}-{run_id}-{seg}", hostname()),
        None => format!("{}-{run_id}", hostname()),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Outcome attribute sets (status code × error type) budgeted per request definition.
pub const OUTCOMES_PER_REQUEST: usize = 16;
/// The largest series limit of one instrument (the SDK sizes a table by it up front).
pub const MAX_SERIES_PER_INSTRUMENT: usize = 200_000;
/// The SDK's default cardinality limit.
const SDK_DEFAULT_LIMIT: usize = 2000;

/// The attribute as Prometheus shows it: `otel_metric_overflow="true"`.
pub const OVERFLOW_KEY: &str = "otel.metric.overflow";

/// Series limits per instrument, from the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesLimits {
    /// Distinct outcome sets the outcome instruments (request duration, response size) take
    /// before folding.
    pub outcome_budget: usize,
    /// Limit of the outcome instruments: the budget plus one overflow set per scenario.
    pub outcome: usize,
    /// Limit of the per-request instruments (request body size, active requests).
    pub per_request: usize,
    /// Limit of the check counter.
    pub checks: usize,
    /// Limit of the per-scenario instruments.
    pub per_scenario: usize,
}

impl SeriesLimits {
    /// What a plan needs.
    pub fn for_plan(plan: &Plan) -> SeriesLimits {
        let requests = request_sets(plan).1;
        let scenarios = plan.scenarios.len().max(1);
        let at_least = |n: usize| {
            n.saturating_add(1)
                .clamp(SDK_DEFAULT_LIMIT, MAX_SERIES_PER_INSTRUMENT)
        };
        let outcome_budget = requests
            .saturating_mul(OUTCOMES_PER_REQUEST)
            .clamp(SDK_DEFAULT_LIMIT, MAX_SERIES_PER_INSTRUMENT - scenarios - 1);
        SeriesLimits {
            outcome_budget,
            outcome: outcome_budget + scenarios + 1,
            per_request: at_least(requests),
            checks: at_least(plan.checks.len().saturating_mul(2)),
            per_scenario: at_least(scenarios),
        }
    }

    fn for_instrument(&self, name: &str) -> usize {
        match name {
            "http.client.request.duration" | "http.client.response.body.size" => self.outcome,
            "http.client.request.body.size" | "http.client.active_requests" => self.per_request,
            "stampede.checks" => self.checks,
            _ => self.per_scenario,
        }
    }
}

/// Distinct request attribute sets: the set index of every request id, and how many.
/// Definitions sharing scenario, name, method and server share a set.
fn request_sets(plan: &Plan) -> (Vec<usize>, usize) {
    let mut ids: HashMap<(usize, &str, &str, usize), usize> = HashMap::new();
    let of = plan
        .requests
        .iter()
        .map(|r| {
            let n = ids.len();
            *ids.entry((r.scenario, &*r.name, r.method.as_str(), r.target))
                .or_insert(n)
        })
        .collect();
    (of, ids.len())
}

/// Builds the provider with one reader per exporter and the plan's series limits.
pub fn provider(
    cfg: &MetricsConfig,
    run_id: &str,
    readers: &[SharedReader],
    limits: SeriesLimits,
) -> SdkMeterProvider {
    let mut b = SdkMeterProvider::builder().with_resource(resource(cfg, run_id));
    for r in readers {
        b = b.with_reader(r.clone());
    }
    let exponential = (cfg.histogram == HistogramKind::Exponential).then_some(
        Aggregation::Base2ExponentialHistogram {
            max_size: cfg.exponential_max_size,
            max_scale: cfg.exponential_max_scale,
            record_min_max: true,
        },
    );
    // One view for every instrument (several matching views would duplicate streams).
    b = b.with_view(move |i: &Instrument| {
        let limit = limits.for_instrument(i.name());
        let mut s = Stream::builder();
        if limit > SDK_DEFAULT_LIMIT {
            s = s.with_cardinality_limit(limit);
        }
        if let Some(agg) = &exponential
            && i.kind() == InstrumentKind::Histogram
        {
            s = s.with_aggregation(agg.clone());
        } else if limit <= SDK_DEFAULT_LIMIT {
            return None;
        }
        s.build().ok()
    });
    b.build()
}

/// Metric series folded because the outcome instruments reached their series budget.
#[derive(Clone, Debug, Default, serde::Serialize, PartialEq, Eq)]
pub struct Folded {
    /// Distinct attribute sets recorded into the overflow series instead of their own.
    pub series: u64,
    /// The budget of distinct outcome series.
    pub limit: u64,
}

/// The shared budget of distinct outcome sets (touched only the first time a worker sees an
/// outcome of a request, never per request).
#[derive(Debug)]
struct OutcomeBudget {
    budget: usize,
    state: Mutex<BudgetState>,
}

#[derive(Debug, Default)]
struct BudgetState {
    /// (request set, status, error key) → has its own series?
    seen: HashMap<(usize, u16, u32), bool>,
    admitted: usize,
    folded: usize,
}

impl OutcomeBudget {
    fn new(budget: usize) -> Self {
        OutcomeBudget {
            budget,
            state: Mutex::new(BudgetState::default()),
        }
    }

    /// Whether this outcome gets its own series (else it is folded).
    fn admit(&self, key: (usize, u16, u32)) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(own) = st.seen.get(&key) {
            return *own;
        }
        let own = st.admitted < self.budget;
        if own {
            st.admitted += 1;
        } else {
            st.folded += 1;
        }
        st.seen.insert(key, own);
        own
    }

    fn folded(&self) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).folded
    }
}

/// The instruments, created once per run.
#[derive(Debug)]
pub struct Instruments {
    duration: Histogram<f64>,
    req_size: Histogram<u64>,
    resp_size: Histogram<u64>,
    active: UpDownCounter<i64>,
    iterations: Counter<u64>,
    iteration_duration: Histogram<f64>,
    dropped: Counter<u64>,
    checks: Counter<u64>,
    /// Base attributes by request id: method, server.*, url.template, run id, scenario.
    request_attrs: Vec<Vec<KeyValue>>,
    /// Base attributes by scenario: run id, scenario.
    scenario_attrs: Vec<Vec<KeyValue>>,
    /// Check attributes by check id (without result).
    check_attrs: Vec<Vec<KeyValue>>,
    /// Request set (distinct attribute set) by request id.
    request_set: Vec<usize>,
    /// By scenario: run id, scenario, `otel.metric.overflow` — where folded outcomes go.
    overflow_attrs: Vec<Vec<KeyValue>>,
    outcomes: OutcomeBudget,
    /// Scenario by request id.
    request_scenario: Vec<usize>,
    /// Exemplars of sampled requests (None: tracing off or no exporter).
    exemplars: Option<Arc<ExemplarStore>>,
    _vus_gauge: opentelemetry::metrics::ObservableGauge<i64>,
    _vus_max_gauge: opentelemetry::metrics::ObservableGauge<i64>,
    _run_duration_gauge: opentelemetry::metrics::ObservableGauge<f64>,
    _target_rate_gauge: Option<opentelemetry::metrics::ObservableGauge<f64>>,
    _process: ProcessInstruments,
}

/// The generator's own CPU and memory (OTel semantic conventions for process metrics),
/// observed at collection from a [`Monitor`] (no per-request cost).
#[derive(Debug)]
struct ProcessInstruments {
    _cpu_time: opentelemetry::metrics::ObservableCounter<f64>,
    _cpu_utilization: opentelemetry::metrics::ObservableGauge<f64>,
    _memory: opentelemetry::metrics::ObservableGauge<i64>,
}

impl ProcessInstruments {
    /// `process.cpu.time` (s, by `cpu.mode` user/system), `process.cpu.utilization` (1, by
    /// `cpu.mode`, the last sampling interval, 0–1 of the cores the process may use) and
    /// `process.memory.usage` (By, resident set size), each with the run id.
    fn new(meter: &Meter, monitor: Arc<Monitor>, run: &KeyValue) -> Self {
        let modes = |mode: &'static str| vec![run.clone(), KeyValue::new("cpu.mode", mode)];
        let (user, system) = (modes("user"), modes("system"));
        let (u1, s1) = (user.clone(), system.clone());
        let cpu_time = meter
            .f64_observable_counter("process.cpu.time")
            .with_unit("s")
            .with_description("Total CPU seconds of the stampede process, by CPU mode")
            .with_callback(move |obs| {
                let t = process::cpu_times();
                obs.observe(t.user, &u1);
                obs.observe(t.system, &s1);
            })
            .build();
        let cpu_utilization = meter
            .f64_observable_gauge("process.cpu.utilization")
            .with_unit("1")
            .with_description(
                "CPU time of the stampede process over the last sampling interval, divided by the interval and the cores it may use",
            )
            .with_callback(move |obs| {
                let u = monitor.utilization();
                obs.observe(u.user, &user);
                obs.observe(u.system, &system);
            })
            .build();
        let mem = vec![run.clone()];
        let memory = meter
            .i64_observable_gauge("process.memory.usage")
            .with_unit("By")
            .with_description("Resident memory of the stampede process")
            .with_callback(move |obs| {
                if let Some(b) = process::rss_bytes() {
                    obs.observe(i64::try_from(b).unwrap_or(i64::MAX), &mem);
                }
            })
            .build();
        ProcessInstruments {
            _cpu_time: cpu_time,
            _cpu_utilization: cpu_utilization,
            _memory: memory,
        }
    }
}

impl Instruments {
    fn scenario_of(&self, req: usize) -> usize {
        self.request_scenario[req]
    }
}

/// The instrumentation scope of every instrument.
pub const SCOPE: &str = "stampede";

impl Instruments {
    /// Creates the instruments for a plan.
    pub fn new(
        provider: &SdkMeterProvider,
        plan: &Plan,
        vus: Arc<VuCounts>,
        clock: Arc<RunClock>,
        generator: Arc<Monitor>,
    ) -> Instruments {
        let scope = InstrumentationScope::builder(SCOPE)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let meter: Meter = provider.meter_with_scope(scope);
        let buckets = plan
            .metrics
            .buckets
            .clone()
            .unwrap_or_else(|| DEFAULT_DURATION_BUCKETS.to_vec());
        let run = KeyValue::new("stampede.run.id", plan.run_id.clone());
        let scenario_attrs: Vec<Vec<KeyValue>> = plan
            .scenarios
            .iter()
            .map(|s| {
                vec![
                    run.clone(),
                    KeyValue::new("stampede.scenario", s.name.to_string()),
                ]
            })
            .collect();
        let request_attrs = plan
            .requests
            .iter()
            .map(|r| {
                let t = &plan.targets[r.target];
                let mut v = scenario_attrs[r.scenario].clone();
                v.push(KeyValue::new("http.request.method", r.method.to_string()));
                v.push(KeyValue::new("server.address", t.host.clone()));
                v.push(KeyValue::new("server.port", i64::from(t.port)));
                v.push(KeyValue::new("url.template", r.name.to_string()));
                v
            })
            .collect();
        let overflow_attrs = scenario_attrs
            .iter()
            .map(|a| {
                let mut v = a.clone();
                v.push(KeyValue::new(OVERFLOW_KEY, true));
                v
            })
            .collect();
        let check_attrs = plan
            .checks
            .iter()
            .map(|c| {
                let mut v = scenario_attrs[c.scenario].clone();
                v.push(KeyValue::new("stampede.check.name", c.name.to_string()));
                v.push(KeyValue::new(
                    "url.template",
                    plan.requests[c.request].name.to_string(),
                ));
                v
            })
            .collect();
        let (v1, a1) = (vus.clone(), scenario_attrs.clone());
        let vus_gauge = meter
            .i64_observable_gauge("stampede.vus")
            .with_unit("{vu}")
            .with_description("VUs running an iteration or waiting to start one")
            .with_callback(move |obs| {
                for (i, attrs) in a1.iter().enumerate() {
                    obs.observe(v1.active(i), attrs);
                }
            })
            .build();
        let (v2, a2) = (vus.clone(), scenario_attrs.clone());
        let vus_max_gauge = meter
            .i64_observable_gauge("stampede.vus.max")
            .with_unit("{vu}")
            .with_description("VUs allocated")
            .with_callback(move |obs| {
                for (i, attrs) in a2.iter().enumerate() {
                    obs.observe(v2.allocated(i), attrs);
                }
            })
            .build();
        let clock2 = clock.clone();
        let a3 = scenario_attrs.clone();
        let run_duration_gauge = meter
            .f64_observable_gauge("stampede.run.duration")
            .with_unit("s")
            .with_description("Time since the run started; after the end, the run's total duration")
            .with_callback(move |obs| {
                let secs = clock.elapsed().as_secs_f64();
                for attrs in &a3 {
                    obs.observe(secs, attrs);
                }
            })
            .build();
        let process = ProcessInstruments::new(&meter, generator, &run);
        // Open-model scenarios: the intended arrival rate now (a capacity search's staircase).
        let rates: Vec<(f64, Vec<crate::scenario::schedule::Stage>, Vec<KeyValue>)> = plan
            .scenarios
            .iter()
            .filter_map(|s| match &s.schedule {
                crate::scenario::plan::Schedule::ArrivalRate { start, stages, .. } => {
                    Some((*start, stages.clone(), scenario_attrs[s.index].clone()))
                }
                _ => None,
            })
            .collect();
        // A segment runs its share of the global schedule: report that share, so the
        // generators of one run sum to the global rate on the dashboard.
        let share = plan.stripe.fraction();
        let target_rate_gauge = (!rates.is_empty()).then(|| {
            meter
                .f64_observable_gauge("stampede.target_rate")
                .with_unit("{iteration}/s")
                .with_description(
                    "Intended arrival rate of an open-model scenario (iterations per second; a segment of a distributed run reports its share)",
                )
                .with_callback(move |obs| {
                    let t = clock2.elapsed();
                    for (start, stages, attrs) in &rates {
                        obs.observe(crate::scenario::schedule::vu_target(*start, stages, t) * share, attrs);
                    }
                })
                .build()
        });
        Instruments {
            _target_rate_gauge: target_rate_gauge,
            _run_duration_gauge: run_duration_gauge,
            _process: process,
            duration: meter
                .f64_histogram("http.client.request.duration")
                .with_unit("s")
                .with_description("Duration of HTTP client requests")
                .with_boundaries(buckets.clone())
                .build(),
            req_size: meter
                .u64_histogram("http.client.request.body.size")
                .with_unit("By")
                .with_description("Size of HTTP client request bodies")
                .with_boundaries(DEFAULT_SIZE_BUCKETS.to_vec())
                .build(),
            resp_size: meter
                .u64_histogram("http.client.response.body.size")
                .with_unit("By")
                .with_description("Size of HTTP client response bodies")
                .with_boundaries(DEFAULT_SIZE_BUCKETS.to_vec())
                .build(),
            active: meter
                .i64_up_down_counter("http.client.active_requests")
                .with_unit("{request}")
                .with_description("Number of active HTTP requests")
                .build(),
            iterations: meter
                .u64_counter("stampede.iterations")
                .with_unit("{iteration}")
                .with_description("Completed scenario iterations")
                .build(),
            iteration_duration: meter
                .f64_histogram("stampede.iteration.duration")
                .with_unit("s")
                .with_description("Duration of scenario iterations")
                .with_boundaries(buckets)
                .build(),
            dropped: meter
                .u64_counter("stampede.dropped_iterations")
                .with_unit("{iteration}")
                .with_description(
                    "Iterations an arrival-rate executor dropped, by stampede.drop.reason: no_vu (no free VU) or generator (stampede fell behind its schedule)",
                )
                .build(),
            checks: meter
                .u64_counter("stampede.checks")
                .with_unit("{check}")
                .with_description("Check results")
                .build(),
            request_attrs,
            scenario_attrs,
            check_attrs,
            request_set: request_sets(plan).0,
            request_scenario: plan.requests.iter().map(|r| r.scenario).collect(),
            overflow_attrs,
            outcomes: OutcomeBudget::new(SeriesLimits::for_plan(plan).outcome_budget),
            exemplars: None,
            _vus_gauge: vus_gauge,
            _vus_max_gauge: vus_max_gauge,
        }
    }

    /// How many outcome series were folded (`None`: none).
    pub fn folded(&self) -> Option<Folded> {
        let n = self.outcomes.folded();
        (n > 0).then_some(Folded {
            series: n as u64,
            limit: self.outcomes.budget as u64,
        })
    }

    /// Keeps exemplars of sampled requests in `store` (call before sharing the instruments).
    pub fn with_exemplars(mut self, store: Arc<ExemplarStore>) -> Instruments {
        self.exemplars = Some(store);
        self
    }

    /// A recorder for one worker thread.
    pub fn recorder(self: &Arc<Self>) -> Recorder {
        Recorder {
            exemplars: self.exemplars.as_ref().map(|s| s.worker()),
            inst: self.clone(),
            by_outcome: (0..self.request_attrs.len()).map(|_| Vec::new()).collect(),
            per_request: self
                .request_attrs
                .iter()
                .map(|a| PerRequest {
                    req_size: self.req_size.bind(a),
                    active: self.active.bind(a),
                })
                .collect(),
            per_scenario: self
                .scenario_attrs
                .iter()
                .map(|a| PerScenario {
                    iterations: self.iterations.bind(a),
                    duration: self.iteration_duration.bind(a),
                    dropped: DropReason::ALL.map(|r| {
                        let mut v = a.clone();
                        v.push(KeyValue::new("stampede.drop.reason", r.as_str()));
                        self.dropped.bind(&v)
                    }),
                })
                .collect(),
            per_check: self
                .check_attrs
                .iter()
                .map(|a| {
                    let with = |r: &'static str| {
                        let mut v = a.clone();
                        v.push(KeyValue::new("stampede.check.result", r));
                        self.checks.bind(&v)
                    };
                    (with("pass"), with("fail"))
                })
                .collect(),
        }
    }
}

struct PerRequest {
    req_size: BoundHistogram<u64>,
    active: BoundUpDownCounter<i64>,
}

struct PerScenario {
    iterations: BoundCounter<u64>,
    duration: BoundHistogram<f64>,
    /// By [`DropReason::ALL`] order.
    dropped: [BoundCounter<u64>; 2],
}

struct PerOutcome {
    duration: BoundHistogram<f64>,
    resp_size: BoundHistogram<u64>,
    /// Index of this series in the worker's exemplar slots (when exemplars are kept).
    exemplar: usize,
}

/// Records into bound instruments; one per worker thread (not shared).
pub struct Recorder {
    inst: Arc<Instruments>,
    /// By request id: (status, error key, bound instruments); a few entries each, scanned
    /// linearly (cheaper than hashing on every request).
    by_outcome: Vec<Vec<(u16, u32, PerOutcome)>>,
    per_request: Vec<PerRequest>,
    per_scenario: Vec<PerScenario>,
    per_check: Vec<(BoundCounter<u64>, BoundCounter<u64>)>,
    /// This worker's exemplar slots.
    exemplars: Option<Arc<WorkerExemplars>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field(
                "outcomes",
                &self.by_outcome.iter().map(Vec::len).sum::<usize>(),
            )
            .finish()
    }
}

impl Recorder {
    /// A request started.
    pub fn start(&self, req: usize) {
        self.per_request[req].active.add(1);
    }

    /// A request finished.
    pub fn finish(&mut self, sample: &Sample) {
        let Sample {
            req,
            latency,
            status,
            error,
            bytes_in,
            bytes_out,
            ..
        } = *sample;
        let pr = &self.per_request[req];
        pr.active.add(-1);
        // Requests without a body (most GETs) have no request body size to record; skipping
        // them saves a histogram update per request on the hot path.
        if bytes_out > 0 {
            pr.req_size.record(bytes_out);
        }
        let st = status.unwrap_or(0);
        let ek = error.map_or(0, ErrorKind::key);
        let slots = &mut self.by_outcome[req];
        let idx = match slots.iter().position(|(s, e, _)| *s == st && *e == ek) {
            Some(i) => i,
            None => {
                let inst = &self.inst;
                let attrs = if inst.outcomes.admit((inst.request_set[req], st, ek)) {
                    let mut attrs = inst.request_attrs[req].clone();
                    if let Some(s) = status {
                        attrs.push(KeyValue::new("http.response.status_code", i64::from(s)));
                    }
                    if let Some(e) = error {
                        attrs.push(KeyValue::new("error.type", e.as_str().into_owned()));
                    }
                    attrs
                } else {
                    inst.overflow_attrs[inst.scenario_of(req)].clone()
                };
                // Only when a new outcome is first seen: its series key for exemplars.
                let exemplar = self.exemplars.as_ref().map_or(0, |w| {
                    w.add_series(series_key(
                        attrs.iter().map(|kv| (kv.key.as_str(), kv.value.as_str())),
                    ))
                });
                slots.push((
                    st,
                    ek,
                    PerOutcome {
                        duration: inst.duration.bind(&attrs),
                        resp_size: inst.resp_size.bind(&attrs),
                        exemplar,
                    },
                ));
                slots.len() - 1
            }
        };
        let o = &slots[idx].2;
        o.duration.record(latency.as_secs_f64());
        if status.is_some() {
            o.resp_size.record(bytes_in);
        }
    }

    /// A sampled request finished (after [`Recorder::finish`] recorded it): it may be the
    /// slowest of its series in the current interval of each exporter.
    pub fn exemplar(&self, sample: &Sample, trace_id: [u8; 16], span_id: [u8; 8], at: SystemTime) {
        let Some(w) = &self.exemplars else { return };
        let st = sample.status.unwrap_or(0);
        let ek = sample.error.map_or(0, ErrorKind::key);
        let Some((_, _, o)) = self.by_outcome[sample.req]
            .iter()
            .find(|(s, e, _)| *s == st && *e == ek)
        else {
            return;
        };
        w.offer(
            o.exemplar,
            Exemplar {
                trace_id,
                span_id,
                value: sample.latency.as_secs_f64(),
                time: at,
            },
        );
    }

    /// An iteration finished.
    pub fn iteration(&self, scenario: usize, took: Duration) {
        let s = &self.per_scenario[scenario];
        s.iterations.add(1);
        s.duration.record(took.as_secs_f64());
    }

    /// Iterations were dropped.
    pub fn dropped(&self, scenario: usize, d: &Drops) {
        for (r, c) in DropReason::ALL
            .iter()
            .zip(&self.per_scenario[scenario].dropped)
        {
            let n = d.get(*r);
            if n > 0 {
                c.add(n);
            }
        }
    }

    /// A check ran.
    pub fn check(&self, id: usize, pass: bool) {
        let c = &self.per_check[id];
        if pass { c.0.add(1) } else { c.1.add(1) }
    }
}

/// The instrument that carries exemplars.
pub const EXEMPLAR_INSTRUMENT: &str = "http.client.request.duration";

/// The slowest sampled request of a series in an interval: what a person wants to open.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exemplar {
    /// Its trace.
    pub trace_id: [u8; 16],
    /// Its (client) span.
    pub span_id: [u8; 8],
    /// Its duration in seconds.
    pub value: f64,
    /// When it finished.
    pub time: SystemTime,
}

impl Exemplar {
    /// Whether `self` should replace `kept` (the slower wins; on a tie, the later).
    fn beats(&self, kept: &Option<Exemplar>) -> bool {
        kept.is_none_or(|k| self.value >= k.value)
    }
}

/// Exemplars of one collection by series key ([`series_key`] of the data point's attributes).
pub type Exemplars = HashMap<String, Exemplar>;

/// The key of a series: its attributes sorted by key, `key=value` joined by `\x1f`. Made
/// from the recorder's attribute sets when an outcome is first seen, and from the collected
/// data points at export, so the two meet without the SDK's help (opentelemetry_sdk 0.33
/// neither samples exemplars nor lets a reader add them).
pub fn series_key<'a>(attrs: impl Iterator<Item = (&'a str, std::borrow::Cow<'a, str>)>) -> String {
    let mut v: Vec<(&str, std::borrow::Cow<'_, str>)> = attrs.collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::new();
    for (i, (k, val)) in v.iter().enumerate() {
        if i > 0 {
            out.push('\x1f');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(val);
    }
    out
}

/// Exemplar slots of every worker, one slot per series and exporter: each exporter takes its
/// own slots when it collects, so each gets the slowest request of its own interval.
#[derive(Debug)]
pub struct ExemplarStore {
    exporters: usize,
    workers: Mutex<Vec<Arc<WorkerExemplars>>>,
}

impl ExemplarStore {
    /// A store for `exporters` exporters.
    pub fn new(exporters: usize) -> ExemplarStore {
        ExemplarStore {
            exporters,
            workers: Mutex::new(Vec::new()),
        }
    }

    fn worker(&self) -> Arc<WorkerExemplars> {
        let w = Arc::new(WorkerExemplars {
            exporters: self.exporters,
            series: Mutex::new(Vec::new()),
        });
        self.workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(w.clone());
        w
    }

    /// Takes exporter `exporter`'s exemplars since its last take: the slowest per series over
    /// all workers.
    pub fn take(&self, exporter: usize) -> Exemplars {
        let mut out = Exemplars::new();
        let workers = self
            .workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for w in workers {
            let mut series = w.series.lock().unwrap_or_else(|p| p.into_inner());
            for (key, slots) in series.iter_mut() {
                if let Some(e) = slots.get_mut(exporter).and_then(Option::take) {
                    let kept = out.get(key.as_str()).copied();
                    if e.beats(&kept) {
                        out.insert(key.clone(), e);
                    }
                }
            }
        }
        out
    }
}

/// One worker's slots. The lock is the worker's own: taken by sampled requests only, and by
/// an exporter a few times a minute.
#[derive(Debug)]
struct WorkerExemplars {
    exporters: usize,
    /// (series key, slot by exporter).
    series: Mutex<Vec<(String, Vec<Option<Exemplar>>)>>,
}

impl WorkerExemplars {
    fn add_series(&self, key: String) -> usize {
        let mut s = self.series.lock().unwrap_or_else(|p| p.into_inner());
        s.push((key, vec![None; self.exporters]));
        s.len() - 1
    }

    fn offer(&self, series: usize, e: Exemplar) {
        let mut s = self.series.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, slots)) = s.get_mut(series) {
            for slot in slots.iter_mut() {
                if e.beats(slot) {
                    *slot = Some(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_generator_of_a_run_gets_its_own_instance() {
        let mut cfg = MetricsConfig::default();
        let host = hostname();
        assert_eq!(instance_id(&cfg, "r1"), format!("{host}-r1"));
        cfg.segment = Some(2);
        assert_eq!(instance_id(&cfg, "r1"), format!("{host}-r1-2"));
        cfg.instance_id = Some("gen-a".into());
        assert_eq!(instance_id(&cfg, "r1"), "gen-a", "the key wins");
        if std::env::var_os("OTEL_RESOURCE_ATTRIBUTES").is_none() {
            let r = resource(&cfg, "r1");
            let get = |k: &'static str| r.get(&opentelemetry::Key::from_static_str(k));
            assert_eq!(get("service.instance.id"), Some("gen-a".into()));
            assert_eq!(get(SEGMENT_KEY), Some(2i64.into()));
        }
    }

    #[test]
    fn the_instance_id_comes_from_the_file_and_an_empty_one_is_refused() {
        let ov = crate::config::Overrides::default();
        let req = "duration = \"1s\"\nrequests = [{ url = \"http://127.0.0.1:1/\" }]\n";
        let ok = format!("[metrics]\ninstance_id = \"gen-7\"\n[[scenarios]]\n{req}");
        let cfg = crate::config::load_str("t.toml", &ok, &ov).map_err(|e| e.to_string());
        assert_eq!(
            cfg.map(|c| c.metrics.instance_id),
            Ok(Some("gen-7".to_string()))
        );
        let bad = format!("[metrics]\ninstance_id = \" \"\n[[scenarios]]\n{req}");
        let e = crate::config::load_str("t.toml", &bad, &ov)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            e.as_ref().is_err_and(|e| e.contains("metrics.instance_id")),
            "{e:?}"
        );
    }

    #[test]
    fn each_exporter_gets_the_slowest_of_its_own_interval() {
        let store = ExemplarStore::new(2);
        let (w1, w2) = (store.worker(), store.worker());
        let key = series_key([("b", "2".into()), ("a", "x".into())].into_iter());
        assert_eq!(key, "a=x\x1fb=2");
        let (s1, s2) = (w1.add_series(key.clone()), w2.add_series(key.clone()));
        let at = SystemTime::UNIX_EPOCH;
        let ex = |v: f64, id: u8| Exemplar {
            trace_id: [id; 16],
            span_id: [id; 8],
            value: v,
            time: at,
        };
        w1.offer(s1, ex(0.2, 1));
        w1.offer(s1, ex(0.1, 2));
        w2.offer(s2, ex(0.5, 3));
        w2.offer(s2, ex(0.3, 4));
        assert_eq!(
            store.take(0)[&key].trace_id,
            [3; 16],
            "the slowest over workers"
        );
        assert!(
            store.take(0).is_empty(),
            "taken: a new interval starts empty"
        );
        w1.offer(s1, ex(0.05, 5));
        assert_eq!(store.take(0)[&key].trace_id, [5; 16]);
        // The second exporter's interval began at the start: it still has the slowest of all.
        assert_eq!(store.take(1)[&key].value, 0.5);
    }

    #[test]
    fn the_outcome_budget_admits_up_to_its_size_then_folds_and_remembers() {
        let b = OutcomeBudget::new(2);
        assert!(b.admit((0, 200, 0)));
        assert!(
            b.admit((0, 200, 0)),
            "the same outcome again keeps its series"
        );
        assert!(b.admit((1, 200, 0)));
        assert!(!b.admit((1, 503, 7)), "over budget: folded");
        assert!(!b.admit((1, 503, 7)), "and stays folded");
        assert!(!b.admit((2, 200, 0)));
        assert!(b.admit((0, 200, 0)), "admitted ones stay admitted");
        assert_eq!(b.folded(), 2);
    }
}
