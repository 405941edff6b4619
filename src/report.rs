//! The end-of-run summary: computed from the merged exact statistics (never from export
//! buckets), then rendered as a text table or JSON. The JSON shape is documented in
//! `docs/summary.schema.json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::plan::Plan;
use crate::stats::{Latency, WorkerStats, latency_of, merged_latency};
use crate::threshold::{Filter, Metric, Outcome, Source};

/// One row of the per-name table.
#[derive(Clone, Debug, Serialize)]
pub struct NameRow {
    /// Request name (`url.template`).
    pub name: String,
    /// Method.
    pub method: String,
    /// Scenario.
    pub scenario: String,
    /// Requests sent.
    pub requests: u64,
    /// Requests with an error type.
    pub failures: u64,
    /// Requests per second.
    pub rps: f64,
    /// Latency in seconds.
    pub latency_s: Latency,
    /// Count by status code.
    pub status_codes: BTreeMap<String, u64>,
}

/// A check's totals.
#[derive(Clone, Debug, Serialize)]
pub struct CheckRow {
    /// Check name.
    pub name: String,
    /// Request name.
    pub request: String,
    /// Scenario.
    pub scenario: String,
    /// Passes.
    pub passes: u64,
    /// Failures.
    pub fails: u64,
}

/// A scenario's iteration totals.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioRow {
    /// Name.
    pub name: String,
    /// Executor.
    pub executor: String,
    /// Completed iterations.
    pub iterations: u64,
    /// Dropped iterations (open model).
    pub dropped_iterations: u64,
    /// Iteration duration, seconds.
    pub iteration_duration_s: Latency,
    /// Open model: how late iterations started, seconds (p50/p99/max meaningful).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_lag_s: Option<Latency>,
}

/// What an exporter delivered.
#[derive(Clone, Debug, Serialize)]
pub struct ExportRow {
    /// Exporter (e.g. `remote_write http://…/api/v1/write`, credentials removed).
    pub exporter: String,
    /// Data points/samples delivered.
    pub delivered: u64,
    /// Not delivered (dropped, rejected or still pending at exit).
    pub not_delivered: u64,
    /// Failed export attempts.
    pub failed_attempts: u64,
    /// Human-readable detail.
    pub detail: String,
}

/// The summary of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Run id.
    pub run_id: String,
    /// Requests sent, whatever their outcome.
    pub requests: u64,
    /// Requests with an error type.
    pub failures: u64,
    /// failures / requests.
    pub error_rate: f64,
    /// Requests per second over the run.
    pub rps: f64,
    /// Run duration in seconds.
    pub duration_s: f64,
    /// Latency over all requests, seconds.
    pub latency_s: Latency,
    /// Per request name (and method).
    pub by_name: Vec<NameRow>,
    /// Count by error type.
    pub errors: BTreeMap<String, u64>,
    /// Requests that went again on a fresh connection because the server had closed the
    /// kept-alive one before answering (not failures; each counted once in `requests`).
    pub reconnects: u64,
    /// Completed iterations.
    pub iterations: u64,
    /// Dropped iterations.
    pub dropped_iterations: u64,
    /// Per scenario.
    pub scenarios: Vec<ScenarioRow>,
    /// Checks.
    pub checks: Vec<CheckRow>,
    /// Threshold outcomes.
    pub thresholds: Vec<Outcome>,
    /// Export delivery.
    pub export: Vec<ExportRow>,
    /// Whether the run was interrupted (Ctrl-C / SIGTERM).
    pub interrupted: bool,
}

/// Statistics with the plan they belong to: answers thresholds and builds the summary.
pub struct Aggregate<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// Merged statistics.
    pub stats: WorkerStats,
    /// Wall-clock duration.
    pub elapsed: Duration,
}

impl Aggregate<'_> {
    fn matching(&self, f: &Filter) -> Vec<usize> {
        (0..self.plan.requests.len())
            .filter(|&i| {
                let m = &self.plan.requests[i];
                f.name.as_deref().is_none_or(|n| n == &*m.name)
                    && f.method.as_deref().is_none_or(|x| x == m.method.as_str())
                    && f.scenario
                        .as_deref()
                        .is_none_or(|s| s == &*self.plan.scenarios[m.scenario].name)
            })
            .collect()
    }

    fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Builds the summary (thresholds evaluated).
    pub fn summary(&self, export: Vec<ExportRow>, interrupted: bool) -> Summary {
        let plan = self.plan;
        let s = &self.stats;
        let secs = self.secs();
        let requests: u64 = s.requests.iter().map(|r| r.requests).sum();
        let failures: u64 = s.requests.iter().map(|r| r.failures).sum();
        let all = merged_latency(s.requests.iter().map(|r| &r.latency));
        // Group rows by (scenario, name, method): several definitions may share a name.
        let mut groups: BTreeMap<(usize, String, String), Vec<usize>> = BTreeMap::new();
        for (i, m) in plan.requests.iter().enumerate() {
            groups
                .entry((m.scenario, m.name.to_string(), m.method.to_string()))
                .or_default()
                .push(i);
        }
        let mut by_name = Vec::new();
        for ((sc, name, method), ids) in groups {
            let reqs: u64 = ids.iter().map(|i| s.requests[*i].requests).sum();
            let fails: u64 = ids.iter().map(|i| s.requests[*i].failures).sum();
            let h = merged_latency(ids.iter().map(|i| &s.requests[*i].latency));
            let mut codes = BTreeMap::new();
            for i in &ids {
                for (c, n) in &s.requests[*i].statuses {
                    *codes.entry(c.to_string()).or_insert(0) += n;
                }
            }
            by_name.push(NameRow {
                name,
                method,
                scenario: plan.scenarios[sc].name.to_string(),
                requests: reqs,
                failures: fails,
                rps: reqs as f64 / secs,
                latency_s: latency_of(&h),
                status_codes: codes,
            });
        }
        let mut errors = BTreeMap::new();
        for r in &s.requests {
            for (k, n) in &r.errors {
                *errors.entry(k.as_str().into_owned()).or_insert(0) += n;
            }
        }
        let scenarios = plan
            .scenarios
            .iter()
            .zip(&s.scenarios)
            .map(|(p, st)| ScenarioRow {
                name: p.name.to_string(),
                executor: executor_name(&p.schedule),
                iterations: st.iterations,
                dropped_iterations: st.dropped,
                iteration_duration_s: latency_of(&st.duration),
                start_lag_s: p.schedule.is_open().then(|| latency_of(&st.lag)),
            })
            .collect::<Vec<_>>();
        let checks = plan
            .checks
            .iter()
            .zip(&s.checks)
            .map(|(c, (p, f))| CheckRow {
                name: c.name.to_string(),
                request: plan.requests[c.request].name.to_string(),
                scenario: plan.scenarios[c.scenario].name.to_string(),
                passes: *p,
                fails: *f,
            })
            .collect();
        let thresholds = plan.thresholds.iter().map(|t| t.evaluate(self)).collect();
        Summary {
            run_id: plan.run_id.clone(),
            requests,
            failures,
            error_rate: if requests == 0 {
                0.0
            } else {
                failures as f64 / requests as f64
            },
            rps: requests as f64 / secs,
            duration_s: secs,
            latency_s: latency_of(&all),
            by_name,
            errors,
            reconnects: s.requests.iter().map(|r| r.reconnects).sum(),
            iterations: scenarios.iter().map(|s| s.iterations).sum(),
            dropped_iterations: scenarios.iter().map(|s| s.dropped_iterations).sum(),
            scenarios,
            checks,
            thresholds,
            export,
            interrupted,
        }
    }
}

fn executor_name(s: &crate::plan::Schedule) -> String {
    use crate::plan::Schedule::*;
    match s {
        ConstantVus { .. } => "constant-vus",
        RampingVus { .. } => "ramping-vus",
        SharedIterations { .. } => "shared-iterations",
        ArrivalRate { stages, start, .. } => {
            if stages.len() == 1 && stages[0].1 == *start {
                "constant-arrival-rate"
            } else {
                "ramping-arrival-rate"
            }
        }
    }
    .to_string()
}

impl Source for Aggregate<'_> {
    fn value(&self, metric: Metric, filter: &Filter) -> Option<f64> {
        let ids = self.matching(filter);
        let s = &self.stats;
        let scen: Vec<usize> = self
            .plan
            .scenarios
            .iter()
            .filter(|sc| filter.scenario.as_deref().is_none_or(|n| n == &*sc.name))
            .map(|sc| sc.index)
            .collect();
        let reqs: u64 = ids.iter().map(|i| s.requests[*i].requests).sum();
        let fails: u64 = ids.iter().map(|i| s.requests[*i].failures).sum();
        let checks: Vec<(u64, u64)> = self
            .plan
            .checks
            .iter()
            .zip(&s.checks)
            .filter(|(c, _)| ids.contains(&c.request))
            .map(|(_, v)| *v)
            .collect();
        let lat = || {
            let h = merged_latency(ids.iter().map(|i| &s.requests[*i].latency));
            (!h.is_empty()).then_some(h)
        };
        match metric {
            Metric::Percentile(q) => lat().map(|h| h.value_at_quantile(q / 100.0) as f64 / 1e6),
            Metric::Min => lat().map(|h| h.min() as f64 / 1e6),
            Metric::Max => lat().map(|h| h.max() as f64 / 1e6),
            Metric::Mean => lat().map(|h| h.mean() / 1e6),
            Metric::ErrorRate => (reqs > 0).then(|| fails as f64 / reqs as f64),
            Metric::Rps => (!ids.is_empty()).then(|| reqs as f64 / self.secs()),
            Metric::Requests => (!ids.is_empty()).then_some(reqs as f64),
            Metric::Failures => (!ids.is_empty()).then_some(fails as f64),
            Metric::Iterations => (!scen.is_empty())
                .then(|| scen.iter().map(|i| s.scenarios[*i].iterations).sum::<u64>() as f64),
            Metric::DroppedIterations => (!scen.is_empty())
                .then(|| scen.iter().map(|i| s.scenarios[*i].dropped).sum::<u64>() as f64),
            Metric::CheckRate => {
                let (p, f) = checks.iter().fold((0, 0), |a, c| (a.0 + c.0, a.1 + c.1));
                (p + f > 0).then(|| p as f64 / (p + f) as f64)
            }
            Metric::CheckFailures => {
                (!checks.is_empty()).then(|| checks.iter().map(|c| c.1).sum::<u64>() as f64)
            }
        }
    }
}

fn ms(s: f64) -> String {
    let ms = s * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0}ms")
    } else if ms >= 10.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{ms:.2}ms")
    }
}

/// Renders the summary as a text report.
pub fn render_text(s: &Summary) -> String {
    let mut o = String::new();
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "run {}  {:.1}s  {} requests  {} failures ({:.2}%)  {:.1} req/s{}",
        s.run_id,
        s.duration_s,
        s.requests,
        s.failures,
        s.error_rate * 100.0,
        s.rps,
        if s.interrupted { "  (interrupted)" } else { "" }
    );
    let _ = writeln!(o);
    let header = [
        "name", "method", "reqs", "fails", "req/s", "min", "mean", "p50", "p90", "p95", "p99",
        "max",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    let row = |name: &str, method: &str, reqs: u64, fails: u64, rps: f64, l: &Latency| {
        vec![
            name.to_string(),
            method.to_string(),
            reqs.to_string(),
            fails.to_string(),
            format!("{rps:.1}"),
            ms(l.min),
            ms(l.mean),
            ms(l.p50),
            ms(l.p90),
            ms(l.p95),
            ms(l.p99),
            ms(l.max),
        ]
    };
    for r in &s.by_name {
        rows.push(row(
            &r.name,
            &r.method,
            r.requests,
            r.failures,
            r.rps,
            &r.latency_s,
        ));
    }
    rows.push(row(
        "total",
        "",
        s.requests,
        s.failures,
        s.rps,
        &s.latency_s,
    ));
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for (i, r) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c < 2 {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            } else {
                let _ = write!(line, "{cell:>w$}  ", w = widths[c]);
            }
        }
        let _ = writeln!(o, "  {}", line.trim_end());
        if i == 0 || i == rows.len() - 2 {
            let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            let _ = writeln!(o, "  {}", "-".repeat(total));
        }
    }
    let _ = writeln!(o);
    for sc in &s.scenarios {
        let _ = write!(
            o,
            "  scenario {} ({}): {} iterations",
            sc.name, sc.executor, sc.iterations
        );
        if sc.executor.contains("arrival") {
            let _ = write!(o, ", {} dropped", sc.dropped_iterations);
            if let Some(l) = &sc.start_lag_s {
                let _ = write!(o, ", start lag p99 {}", ms(l.p99));
            }
        }
        let _ = writeln!(o);
    }
    if !s.errors.is_empty() {
        let list: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(o, "  errors: {}", list.join(", "));
    }
    if s.reconnects > 0 {
        let _ = writeln!(
            o,
            "  reconnects: {} (the server had closed an idle kept-alive connection; the requests went again on a fresh one, not failures)",
            s.reconnects
        );
    }
    if !s.checks.is_empty() {
        let _ = writeln!(o, "  checks:");
        for c in &s.checks {
            let mark = if c.fails == 0 { "✓" } else { "✗" };
            let _ = writeln!(
                o,
                "    {mark} {} {}: {} passed, {} failed",
                c.request, c.name, c.passes, c.fails
            );
        }
    }
    for e in &s.export {
        let _ = writeln!(
            o,
            "  export {}: {} delivered, {} NOT delivered{}",
            e.exporter,
            e.delivered,
            e.not_delivered,
            if e.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", e.detail)
            }
        );
    }
    if !s.thresholds.is_empty() {
        let _ = writeln!(o, "  thresholds:");
        for t in &s.thresholds {
            let actual = t
                .actual
                .map_or("no data".to_string(), |a| format!("{a:.6}"));
            let _ = writeln!(
                o,
                "    {} {}  (actual {})",
                if t.ok { "✓" } else { "✗ CROSSED" },
                t.threshold,
                actual
            );
        }
    }
    o
}
