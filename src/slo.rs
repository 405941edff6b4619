//! Live SLO judgement: windowed thresholds (`p99[30s] < 500ms`) and `abort_on_fail`, judged
//! during the run from the workers' closed timeline intervals; and the data of a capacity
//! search's verdict (`stampede find-max`), which the summary carries.
//!
//! Flow: each worker's timeline ([`crate::stats::interval`]) sends every interval it closes
//! over a channel (one message per interval per worker); the run loop ([`crate::run`]) hands
//! them to an [`Evaluator`], which merges them by interval (exact: counts add, histograms add
//! bucket by bucket) and, once an interval is over for everyone, judges every window that ends
//! with it. A window of `w` is the `w / interval` intervals (rounded up, at least one) that end
//! at an interval boundary; it slides by one interval.
//!
//! What a windowed threshold's verdict means:
//! - during the run, each window ending at or after the threshold's `delay` is judged once
//!   (a window in which the metric has no value, e.g. no requests finished, is not judged);
//! - at the end, the last window (ending with the run's last, possibly partial, interval) is
//!   judged too; a run shorter than the window is judged once, as a whole;
//! - the threshold holds when every judged window held. Its `actual` is the **worst** window's
//!   value (highest for `<`/`<=`, lowest for `>`/`>=`), and `failed_at_s` is the end of the
//!   first window that crossed (seconds since the start). No judged window at all: it fails with
//!   `actual = null`, as a threshold that matched nothing does.
//!
//! Latency percentiles over a window are over every request that finished in it, failures
//! included (the timeline keeps one histogram per request definition); whole-run latency
//! thresholds keep judging successful requests only.
//!
//! An `abort_on_fail` threshold without a window is judged live on the run so far, at every
//! interval boundary after its delay; with a window, on each window. The first crossing stops
//! the run (see [`Abort`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::scenario::plan::Plan;
use crate::stats::interval::{Closed, Slot};
use crate::threshold::{Filter, Metric, Source, Threshold};

/// The threshold that stopped a run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Abort {
    /// The expression.
    pub threshold: String,
    /// When it crossed: the end of the window (or interval) judged, seconds since the start.
    pub at_s: f64,
    /// The value that crossed (the threshold's unit: seconds, ratio, count or req/s).
    pub actual: f64,
}

/// The final verdict of a live-judged threshold.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Verdict {
    /// Index in `plan.thresholds`.
    pub index: usize,
    /// The worst judged window's value (`None`: no window was judged).
    pub actual: Option<f64>,
    /// Every judged window held (and at least one was judged).
    pub ok: bool,
    /// The end of the first window that crossed, seconds since the start.
    pub failed_at_s: Option<f64>,
    /// How many windows were judged.
    pub windows: u64,
}

struct Tracked {
    index: usize,
    th: Threshold,
    /// Window length in intervals (0: the run so far).
    span: u64,
    worst: Option<f64>,
    failed_at_s: Option<f64>,
    windows: u64,
}

/// Judges windowed and `abort_on_fail` thresholds from closed intervals.
pub(crate) struct Evaluator {
    interval_us: u64,
    /// Merged closed intervals by start (µs), kept as long as the longest window needs them.
    slots: BTreeMap<u64, Slot>,
    /// Everything up to `judged_us`, merged (for abort thresholds without a window).
    so_far: Slot,
    /// Interval boundaries up to here are judged.
    judged_us: u64,
    tracked: Vec<Tracked>,
    meta: Meta,
    abort: Option<Abort>,
}

/// What the filters need of the plan: the names behind the ids of an interval's slots.
#[derive(Clone, Debug, Default)]
pub(crate) struct Meta {
    /// By request id: (name, method, scenario index).
    pub requests: Vec<(String, String, usize)>,
    /// By scenario index: its name.
    pub scenarios: Vec<String>,
    /// By check id: request id.
    pub checks: Vec<usize>,
}

impl Meta {
    fn of(plan: &Plan) -> Meta {
        Meta {
            requests: plan
                .requests
                .iter()
                .map(|r| (r.name.to_string(), r.method.to_string(), r.scenario))
                .collect(),
            scenarios: plan.scenarios.iter().map(|s| s.name.to_string()).collect(),
            checks: plan.checks.iter().map(|c| c.request).collect(),
        }
    }

    fn matching(&self, f: &Filter) -> Vec<usize> {
        (0..self.requests.len())
            .filter(|&i| {
                let (name, method, sc) = &self.requests[i];
                f.name.as_deref().is_none_or(|n| n == name)
                    && f.method.as_deref().is_none_or(|m| m == method)
                    && f.scenario
                        .as_deref()
                        .is_none_or(|s| s == self.scenarios[*sc])
            })
            .collect()
    }
}

impl Evaluator {
    /// An evaluator for the plan's windowed and `abort_on_fail` thresholds (`None` if it has
    /// none: nothing is judged live).
    pub(crate) fn new(plan: &Plan) -> Option<Evaluator> {
        let interval_us = plan
            .timeline_interval
            .max(crate::stats::interval::MIN_INTERVAL)
            .as_micros() as u64;
        Evaluator::with(
            &plan.thresholds,
            |t| t.window.is_some() || t.abort_on_fail,
            interval_us,
            Meta::of(plan),
        )
    }

    /// An evaluator for the `thresholds` that `track` picks, over intervals of `interval_us`.
    fn with(
        thresholds: &[Threshold],
        track: impl Fn(&Threshold) -> bool,
        interval_us: u64,
        meta: Meta,
    ) -> Option<Evaluator> {
        let interval_us = interval_us.max(1);
        let tracked: Vec<Tracked> = thresholds
            .iter()
            .enumerate()
            .filter(|(_, t)| track(t))
            .map(|(index, t)| Tracked {
                index,
                span: t
                    .window
                    .map_or(0, |w| (w.as_micros() as u64).div_ceil(interval_us).max(1)),
                th: t.clone(),
                worst: None,
                failed_at_s: None,
                windows: 0,
            })
            .collect();
        (!tracked.is_empty()).then(|| Evaluator {
            interval_us,
            slots: BTreeMap::new(),
            so_far: Slot::default(),
            judged_us: 0,
            tracked,
            meta,
            abort: None,
        })
    }

    /// How often the run should call [`Evaluator::judge`].
    pub(crate) fn period(&self) -> Duration {
        Duration::from_micros(self.interval_us / 4)
            .clamp(Duration::from_millis(10), Duration::from_millis(250))
    }

    /// Takes one worker's closed interval.
    pub(crate) fn add(&mut self, c: Closed) {
        // A long run's timeline doubles its interval (see `stats::interval`): a coarse interval
        // is filed under its start, and windows then take whole coarse intervals.
        if c.start_us + c.len_us <= self.judged_us {
            // Late: its windows are judged; it still counts for the run so far.
            self.so_far.merge(&c.slot);
        }
        self.slots.entry(c.start_us).or_default().merge(&c.slot);
    }

    /// Judges the windows that ended by `elapsed` (allowing the workers a little time to send
    /// their intervals); returns the first `abort_on_fail` crossing, once.
    pub(crate) fn judge(&mut self, elapsed: Duration) -> Option<Abort> {
        let slack = (self.interval_us / 4).max(50_000);
        let now = elapsed.as_micros() as u64;
        while self.judged_us + self.interval_us + slack <= now {
            let end = self.judged_us + self.interval_us;
            self.judge_at(end, None);
        }
        self.take_abort()
    }

    /// Judges what is left at the end of a run that lasted `elapsed`, the last partial
    /// interval included, and returns every tracked threshold's verdict.
    pub(crate) fn finish(&mut self, elapsed: Duration) -> Vec<Verdict> {
        let now = (elapsed.as_micros() as u64).max(1);
        let last = now.div_ceil(self.interval_us) * self.interval_us;
        while self.judged_us < last {
            let end = self.judged_us + self.interval_us;
            self.judge_at(end, (end >= last).then_some(now));
        }
        self.tracked
            .iter()
            .map(|t| Verdict {
                index: t.index,
                actual: t.worst,
                ok: t.windows > 0 && t.failed_at_s.is_none(),
                failed_at_s: t.failed_at_s,
                windows: t.windows,
            })
            .collect()
    }

    /// The abort found so far (if not yet taken).
    fn take_abort(&mut self) -> Option<Abort> {
        self.abort.take()
    }

    /// Judges the windows ending at `end`; `last`: the run ended at this µs (inside the
    /// interval that ends at `end`).
    fn judge_at(&mut self, end: u64, last: Option<u64>) {
        let upto = last.map_or(end, |l| l.min(end));
        let start = end - self.interval_us;
        for (_, s) in self.slots.range(start..end) {
            self.so_far.merge(s);
        }
        self.judged_us = end;
        let longest = self
            .tracked
            .iter()
            .map(|t| t.span)
            .max()
            .unwrap_or(1)
            .max(1);
        let aborted_before = self.abort.is_some();
        for t in &mut self.tracked {
            let value = if t.span == 0 {
                if !t.th.abort_on_fail {
                    continue;
                }
                let src = SlotSource {
                    slot: &self.so_far,
                    secs: upto as f64 / 1e6,
                    meta: &self.meta,
                };
                src.value(t.th.metric, &t.th.filter)
            } else {
                let w = t.span * self.interval_us;
                // A full window; or, at the end of a run shorter than it, the whole run.
                if end < w && !(last.is_some() && t.windows == 0) {
                    continue;
                }
                let from = end.saturating_sub(w);
                let mut merged = Slot::default();
                for (_, s) in self.slots.range(from..end) {
                    merged.merge(s);
                }
                let src = SlotSource {
                    slot: &merged,
                    secs: upto.saturating_sub(from).max(1) as f64 / 1e6,
                    meta: &self.meta,
                };
                src.value(t.th.metric, &t.th.filter)
            };
            if (end as f64) < t.th.delay.as_micros() as f64 {
                continue;
            }
            let Some(v) = value else { continue };
            let at_s = upto as f64 / 1e6;
            if t.span > 0 {
                t.windows += 1;
                if t.worst.is_none_or(|w| t.th.worse(v, w)) {
                    t.worst = Some(v);
                }
                if !t.th.holds(v) && t.failed_at_s.is_none() {
                    t.failed_at_s = Some(at_s);
                }
            }
            if t.th.abort_on_fail && !t.th.holds(v) && !aborted_before && self.abort.is_none() {
                self.abort = Some(Abort {
                    threshold: t.th.source.clone(),
                    at_s,
                    actual: v,
                });
            }
        }
        // Keep what the longest window still needs.
        let keep_from = end.saturating_sub(longest * self.interval_us);
        self.slots = self.slots.split_off(&keep_from);
    }
}

/// A threshold's value over one merged slot (a window, or the run so far).
struct SlotSource<'a> {
    slot: &'a Slot,
    secs: f64,
    meta: &'a Meta,
}

impl Source for SlotSource<'_> {
    fn value(&self, metric: Metric, filter: &Filter) -> Option<f64> {
        let ids = self.meta.matching(filter);
        let reqs = |i: &usize| self.slot.requests.get(*i);
        let n: u64 = ids.iter().filter_map(reqs).map(|r| r.requests).sum();
        let fails: u64 = ids.iter().filter_map(reqs).map(|r| r.failures).sum();
        let hist = || {
            let mut h: BTreeMap<u64, u64> = BTreeMap::new();
            for r in ids.iter().filter_map(reqs) {
                for (v, c) in &r.hist {
                    *h.entry(*v).or_default() += c;
                }
            }
            let total: u64 = h.values().sum();
            (total > 0).then_some((h, total))
        };
        let scen: Vec<usize> = (0..self.meta.scenarios.len())
            .filter(|i| {
                filter
                    .scenario
                    .as_deref()
                    .is_none_or(|n| n == self.meta.scenarios[*i])
            })
            .collect();
        let sc = |f: fn(&crate::stats::interval::ScenarioSlot) -> u64| {
            (!scen.is_empty()).then(|| {
                scen.iter()
                    .filter_map(|i| self.slot.scenarios.get(*i))
                    .map(f)
                    .sum::<u64>() as f64
            })
        };
        let checks: Vec<(u64, u64)> = self
            .meta
            .checks
            .iter()
            .enumerate()
            .filter(|(_, r)| ids.contains(r))
            .map(|(c, _)| self.slot.checks.get(c).copied().unwrap_or_default())
            .collect();
        match metric {
            Metric::Percentile(q) => hist().map(|(h, total)| quantile(&h, total, q) as f64 / 1e6),
            Metric::Min => hist().and_then(|(h, _)| h.keys().next().map(|v| *v as f64 / 1e6)),
            Metric::Max => hist().and_then(|(h, _)| h.keys().last().map(|v| *v as f64 / 1e6)),
            Metric::Mean => hist().map(|(h, total)| {
                h.iter().map(|(v, c)| *v as f64 * *c as f64).sum::<f64>() / total as f64 / 1e6
            }),
            Metric::ErrorRate => (n > 0).then(|| fails as f64 / n as f64),
            Metric::Rps => (!ids.is_empty()).then(|| n as f64 / self.secs.max(1e-9)),
            Metric::Requests => (!ids.is_empty()).then_some(n as f64),
            Metric::Failures => (!ids.is_empty()).then_some(fails as f64),
            Metric::Iterations => sc(|s| s.iterations),
            Metric::DroppedIterations => sc(|s| s.dropped),
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

/// Judges the windowed thresholds among `thresholds` over a finished run's intervals (a merged
/// distributed run's: the segments' intervals added up), window by window as the live
/// [`Evaluator`] does on one generator: worst window, first crossing, delay. `meta` names the
/// intervals' request, scenario and check ids; the run lasted `elapsed` (its last interval may
/// be partial). Returns one verdict per windowed threshold (`index` into `thresholds`).
pub(crate) fn judge_intervals(
    thresholds: &[Threshold],
    interval: Duration,
    meta: Meta,
    intervals: impl IntoIterator<Item = Closed>,
    elapsed: Duration,
) -> Vec<Verdict> {
    let interval_us = interval.as_micros() as u64;
    let Some(mut e) = Evaluator::with(thresholds, |t| t.window.is_some(), interval_us, meta) else {
        return Vec::new();
    };
    for c in intervals {
        e.add(c);
    }
    e.finish(elapsed)
}

/// The value at quantile `q` (0–100) of `(value, count)` buckets holding `total` values:
/// the smallest value with at least `q`% of the values at or below it (HdrHistogram's rule).
fn quantile(h: &BTreeMap<u64, u64>, total: u64, q: f64) -> u64 {
    let rank = ((q / 100.0 * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (v, c) in h {
        seen += c;
        if seen >= rank {
            return *v;
        }
    }
    h.keys().last().copied().unwrap_or(0)
}

/// One step of a capacity search. Its rates are of its window, `[start, start +
/// step_duration]` (see `crate::command::capacity`).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Step {
    /// Intended arrival rate, iterations/s.
    pub intended_rate: f64,
    /// Sent: iterations started inside the window, per second of it.
    pub sent_rate: f64,
    /// Achieved: iterations completed inside the window, per second of it (from its first
    /// completion, at most a quarter of it left out).
    pub achieved_rate: f64,
    /// Requests per second over the whole step (`duration_s`).
    pub rps: f64,
    /// The window's length (`step_duration`), seconds.
    pub window_s: f64,
    /// How long the step ran, seconds: the window and the wait for requests in flight.
    pub duration_s: f64,
    /// Latency percentiles of the step's successful requests, seconds.
    pub p50_s: f64,
    /// 95th percentile.
    pub p95_s: f64,
    /// 99th percentile.
    pub p99_s: f64,
    /// Failed / all requests.
    pub error_rate: f64,
    /// Iterations dropped (no free VU, or stampede behind its schedule).
    pub dropped_iterations: u64,
    /// `pass`; `fail`: the target's (the SLO crossed, under 98 % of the rate achieved from
    /// on-time sends, or latency or requests in flight rising steadily across the step);
    /// `generator`: stampede could not send the rate (under 98 % of it sent inside the window:
    /// iterations dropped or started late).
    pub verdict: String,
    /// Why it did not pass: the crossed thresholds, "target did not keep up: achieved …",
    /// "unsustainable trend: …", or the generator's shortfall.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `ramp` (growing), `search` (binary search) or `recheck` (the same rate again, after the
    /// step before it was `rechecked`).
    pub phase: String,
    /// This step did not pass and was run once more at once (the next step, phase `recheck`,
    /// decides): a first failure of the ramp, or a generator's shortfall.
    pub rechecked: bool,
}

/// The outcome of a capacity search (`capacity` in the summary).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Capacity {
    /// The highest rate (iterations/s) that met the SLO; `null` when none did or when the
    /// generator, not the target, set the limit.
    pub max_rate: Option<f64>,
    /// The lowest rate that failed the SLO (`null`: none did).
    pub first_failing_rate: Option<f64>,
    /// Why the search ended: `precision` (bracketed within the precision), `max_rate` (the
    /// --max-rate passed), `max_duration` (out of time), `generator` (stampede could not
    /// produce the rate: no maximum is claimed), `no_passing_step` (the first step failed),
    /// `interrupted`.
    pub stopped_by: String,
    /// The precision asked for, iterations/s.
    pub precision: f64,
    /// The SLO: the thresholds every step was judged by (plus sent and achieved ≥ 98 % of the
    /// intended rate, and no steady rise across the step).
    pub slo: Vec<String>,
    /// Every step, in order.
    pub steps: Vec<Step>,
}

/// The text of a capacity search: verdict line and the table of steps.
pub(crate) fn capacity_text(c: &Capacity) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(o, "  capacity search (SLO: {}):", c.slo.join(", "));
    let _ = writeln!(
        o,
        "   {:>7} {:>9} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7} verdict",
        "phase", "intended", "achieved", "p50", "p95", "p99", "errors", "dropped"
    );
    // The columns fit 80; a failing step's reason goes below its row, wrapped at 80.
    for s in &c.steps {
        let row = format!(
            "   {:>7} {:>9} {:>9} {:>7} {:>7} {:>7} {:>6.2}% {:>7} {}",
            s.phase,
            format!("{:.1}/s", s.intended_rate),
            format!("{:.1}/s", s.achieved_rate),
            ms(s.p50_s),
            ms(s.p95_s),
            ms(s.p99_s),
            s.error_rate * 100.0,
            s.dropped_iterations,
            s.verdict,
        );
        let _ = writeln!(o, "{row}");
        let why = match (&s.reason, s.rechecked) {
            (Some(r), true) => Some(format!("{r}; re-checked in the next step")),
            (Some(r), false) => Some(r.clone()),
            (None, true) => Some("re-checked in the next step".to_string()),
            (None, false) => None,
        };
        if let Some(r) = why {
            let _ = writeln!(o, "{}", wrap_words(&r, "          ", TEXT_WIDTH));
        }
    }
    let rechecked: Vec<String> = c
        .steps
        .iter()
        .filter(|s| s.rechecked)
        .map(|s| format!("{:.1}/s", s.intended_rate))
        .collect();
    if !rechecked.is_empty() {
        let _ = writeln!(
            o,
            "{}",
            wrap_words(
                &format!("    re-checked: {}", rechecked.join(", ")),
                "      ",
                TEXT_WIDTH
            )
        );
    }
    let verdict = match (c.max_rate, c.stopped_by.as_str()) {
        (_, "generator") => format!(
            "no maximum claimed: the generator could not keep up (under 98% of the intended rate sent: iterations dropped or started late) before the target broke the SLO{}; add VUs (--vus) or generators",
            c.steps
                .iter()
                .filter(|s| s.verdict == "pass")
                .map(|s| s.intended_rate)
                .fold(None, |a: Option<f64>, r| Some(a.map_or(r, |a| a.max(r))))
                .map(|r| format!(" (the target met the SLO up to at least {r:.1}/s)"))
                .unwrap_or_default()
        ),
        (Some(m), by) => format!(
            "max sustainable rate {m:.1}/s (first failing {}; ended by {by}, precision {:.1}/s)",
            c.first_failing_rate
                .map_or("none".to_string(), |f| format!("{f:.1}/s")),
            c.precision
        ),
        (None, by) => format!("no rate met the SLO (ended by {by})"),
    };
    let _ = writeln!(
        o,
        "{}",
        wrap_words(&format!("    {verdict}"), "      ", TEXT_WIDTH)
    );
    o
}

/// The width the capacity search's text keeps to.
const TEXT_WIDTH: usize = 80;

/// `text` broken at spaces into lines of at most `width` characters (a word longer than that
/// stands alone), every line after the first starting with `indent`; the first line is
/// indented by `indent` too unless `text` starts with spaces of its own.
fn wrap_words(text: &str, indent: &str, width: usize) -> String {
    let lead = text.len() - text.trim_start().len();
    let mut out = if lead > 0 {
        text[..lead].to_string()
    } else {
        indent.to_string()
    };
    let mut len = out.chars().count();
    let mut fresh = true;
    for w in text.split_whitespace() {
        let n = w.chars().count();
        if !fresh && len + 1 + n > width {
            out.push('\n');
            out.push_str(indent);
            len = indent.chars().count();
            fresh = true;
        }
        if !fresh {
            out.push(' ');
            len += 1;
        }
        out.push_str(w);
        len += n;
        fresh = false;
    }
    out
}

fn ms(s: f64) -> String {
    format!("{:.1}ms", s * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::interval::ReqSlot;

    fn plan(thresholds: &[&str]) -> Plan {
        let th: Vec<String> = thresholds.iter().map(|t| format!("{t:?}")).collect();
        crate::test_support::plan_of(&format!(
            "thresholds = [{}]\n[run]\ntimeline_interval = \"1s\"\n[[scenarios]]\nvus = 1\nduration = \"1s\"\nrequests = [{{ url = \"http://127.0.0.1:1/\" }}]\n",
            th.join(", ")
        ))
    }

    /// One worker's interval `i` (1 s) with `n` requests of `ms` latency, `f` of them failed.
    fn closed(i: u64, n: u64, f: u64, ms: u64) -> Closed {
        Closed {
            start_us: i * 1_000_000,
            len_us: 1_000_000,
            slot: Slot {
                requests: vec![ReqSlot {
                    requests: n,
                    failures: f,
                    hist: vec![(ms * 1000, n)],
                    ..Default::default()
                }],
                scenarios: vec![],
                checks: vec![],
            },
        }
    }

    #[test]
    fn a_window_trips_where_the_whole_run_would_pass() {
        let mut p = plan(&["p99[2s] < 50ms"]);
        p.thresholds[0].abort_on_fail = true;
        let mut e = Evaluator::new(&p).expect("tracked");
        // 10 s at 10 ms, then 2 s at 100 ms (2 workers per interval).
        for i in 0..12 {
            let ms = if i < 10 { 10 } else { 100 };
            e.add(closed(i, 50, 0, ms));
            e.add(closed(i, 50, 0, ms));
        }
        // Intervals 0..10 judged: windows hold.
        assert_eq!(e.judge(Duration::from_millis(10_300)), None);
        // Interval 10 (10-11 s) is slow: the window ending at 11 s has p99 = 100 ms.
        let a = e.judge(Duration::from_millis(11_300)).expect("abort");
        assert_eq!(a.threshold, "p99[2s] < 50ms");
        assert_eq!(a.at_s, 11.0);
        assert!((a.actual - 0.1).abs() < 1e-9, "{a:?}");
        // Only once.
        assert_eq!(e.judge(Duration::from_millis(11_900)), None);
        let v = e.finish(Duration::from_millis(12_000));
        assert_eq!(v.len(), 1);
        assert!(!v[0].ok);
        assert_eq!(v[0].failed_at_s, Some(11.0));
        assert_eq!(v[0].actual, Some(0.1));
        // Windows ending at 2, 3, …, 12 s.
        assert_eq!(v[0].windows, 11);
    }

    #[test]
    fn the_delay_holds_verdicts_back() {
        let mut p = plan(&["error_rate[1s] < 1%"]);
        p.thresholds[0].abort_on_fail = true;
        p.thresholds[0].delay = Duration::from_secs(3);
        let mut e = Evaluator::new(&p).expect("tracked");
        // Failing during warm-up (0-3 s), fine after.
        for i in 0..6 {
            e.add(closed(i, 100, if i < 3 { 50 } else { 0 }, 1));
        }
        // The window ending at 3 s (interval 2-3 s) is the first judged: it crosses.
        assert_eq!(e.judge(Duration::from_millis(2_900)), None);
        let a = e.judge(Duration::from_millis(3_400)).expect("abort at 3 s");
        assert_eq!(a.at_s, 3.0);
        let v = e.finish(Duration::from_secs(6));
        assert_eq!(v[0].windows, 4, "windows ending at 3, 4, 5, 6 s");
        assert_eq!(v[0].actual, Some(0.5));
    }

    #[test]
    fn worst_window_and_passing_verdict() {
        let p = plan(&["p50[3s] < 1s", "rps[2s] > 10", "error_rate < 5%"]);
        let mut e = Evaluator::new(&p).expect("tracked");
        for (i, n) in [20, 40, 30, 30, 25].into_iter().enumerate() {
            e.add(closed(i as u64, n, 0, 10 * (i as u64 + 1)));
        }
        let v = e.finish(Duration::from_millis(4_500));
        // The cumulative threshold without abort_on_fail is not tracked.
        assert_eq!(v.len(), 2);
        // p50 over windows [0,3), [1,4), [2,5): worst is the last one (30,40,50 ms → 40 ms).
        assert!(v[0].ok);
        assert_eq!(v[0].actual, Some(0.04));
        assert_eq!(v[0].windows, 3);
        // rps over 2 s windows: 30, 35, 30, then 55 in the last 1.5 s → lowest 30.
        assert_eq!(v[1].actual, Some(30.0));
        assert!(v[1].ok);
    }

    #[test]
    fn a_run_shorter_than_its_window_is_judged_whole_and_nothing_judged_fails() {
        let mut p = plan(&["p99[1m] < 1s", "p99[1s] < 1s"]);
        // A filter the plan refuses (no such request) cannot come from a file; set afterwards,
        // it matches nothing at all.
        p.thresholds[1].filter.name = Some("/none".into());
        let mut e = Evaluator::new(&p).expect("tracked");
        e.add(closed(0, 10, 0, 5));
        e.add(closed(1, 10, 0, 7));
        let v = e.finish(Duration::from_millis(1_500));
        assert_eq!(v[0].windows, 1);
        assert!(v[0].ok);
        assert_eq!(v[0].actual, Some(0.007));
        assert!(!v[1].ok);
        assert_eq!(v[1].actual, None);
    }

    #[test]
    fn the_capacity_text_has_every_step_and_the_verdict() {
        let step = |rate: f64, verdict: &str, reason: Option<&str>| Step {
            intended_rate: rate,
            sent_rate: rate,
            achieved_rate: rate,
            rps: rate,
            window_s: 2.0,
            duration_s: 2.0,
            p50_s: 0.001,
            p95_s: 0.002,
            p99_s: 0.003,
            error_rate: 0.0,
            dropped_iterations: 0,
            verdict: verdict.into(),
            reason: reason.map(str::to_string),
            phase: "ramp".into(),
            rechecked: false,
        };
        let mut c = Capacity {
            max_rate: Some(200.0),
            first_failing_rate: Some(212.5),
            stopped_by: "precision".into(),
            precision: 20.0,
            slo: vec!["p99[1s] < 100ms".into()],
            steps: vec![
                step(100.0, "pass", None),
                step(200.0, "pass", None),
                step(400.0, "fail", Some("crossed p99[1s] < 100ms")),
            ],
        };
        let t = capacity_text(&c);
        assert!(t.contains("capacity search (SLO: p99[1s] < 100ms)"), "{t}");
        assert_eq!(t.lines().filter(|l| l.contains("ramp")).count(), 3, "{t}");
        assert!(
            t.contains("fail\n          crossed p99[1s] < 100ms\n"),
            "{t}"
        );
        assert!(
            t.contains("max sustainable rate 200.0/s (first failing 212.5/s; ended by precision"),
            "{t}"
        );
        c.max_rate = None;
        c.stopped_by = "generator".into();
        c.steps[2] = step(400.0, "generator", Some("generator saturated"));
        let t = capacity_text(&c);
        assert!(
            t.contains("no maximum claimed: the generator could not keep up"),
            "{t}"
        );
        assert!(t.contains("at least 200.0/s"), "{t}");
        // Long reasons and verdicts keep to 80 columns.
        c.steps[2] = step(
            400.0,
            "generator",
            Some(
                "generator saturated: 123456 dropped iterations (120000 no free VU, 3456 behind \
                 schedule), achieved 87.3% of the rate",
            ),
        );
        c.steps[1] = step(
            200.0,
            "fail",
            Some("crossed p99[1s] < 100ms, error_rate < 1%"),
        );
        let t = capacity_text(&c);
        for l in t.lines() {
            assert!(
                l.chars().count() <= 80,
                "{} columns: {l:?}\n{t}",
                l.chars().count()
            );
        }
        assert!(
            t.contains("\n          generator saturated: 123456 dropped"),
            "{t}"
        );
        assert!(t.contains("achieved 87.3% of the rate"), "{t}");
        assert!(
            t.contains("fail\n          crossed p99[1s] < 100ms, error_rate < 1%"),
            "{t}"
        );
        let flat = t.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains("before the target broke the SLO"), "{t}");
        // A re-checked step says so under its row, and the re-check's phase fits the table.
        c.steps[1].rechecked = true;
        c.steps.insert(
            2,
            Step {
                phase: "recheck".into(),
                ..step(200.0, "generator", None)
            },
        );
        let t = capacity_text(&c);
        assert!(
            t.contains("error_rate < 1%; re-checked in the next step\n   recheck   200.0/s"),
            "{t}"
        );
        assert!(t.contains("\n    re-checked: 200.0/s\n"), "{t}");
        assert!(t.lines().all(|l| l.chars().count() <= 80), "{t}");
    }

    #[test]
    fn words_wrap_at_the_width_with_the_indent() {
        assert_eq!(wrap_words("a bb ccc", "  ", 7), "  a bb\n  ccc");
        assert_eq!(
            wrap_words("    a bb ccc", "      ", 10),
            "    a bb\n      ccc"
        );
        assert_eq!(
            wrap_words("averyveryverylongword x", "", 5),
            "averyveryverylongword\nx"
        );
    }

    #[test]
    fn quantiles_follow_hdr_rank() {
        let h: BTreeMap<u64, u64> = [(1, 90), (2, 9), (3, 1)].into_iter().collect();
        assert_eq!(quantile(&h, 100, 50.0), 1);
        assert_eq!(quantile(&h, 100, 90.0), 1);
        assert_eq!(quantile(&h, 100, 99.0), 2);
        assert_eq!(quantile(&h, 100, 99.9), 3);
        assert_eq!(quantile(&h, 100, 100.0), 3);
    }
}
