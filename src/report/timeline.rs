//! The run's timeline in the summary: the workers' [`crate::stats::interval::Timeline`]s merged,
//! brought to one interval length and named after the plan (`timeline` in the summary JSON).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::scenario::plan::{Plan, Schedule};
use crate::stats::interval::{Finished, MAX_INTERVALS, ReqSlot, Slot, VuSamples, add_sparse};
use crate::stats::{hdr, new_hist};

/// The merged timeline, as the summary JSON carries it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TimelineOut {
    /// Interval length in seconds (after any coarsening).
    pub interval_s: f64,
    /// The configured interval in seconds.
    pub configured_interval_s: f64,
    /// The most intervals kept.
    pub max_intervals: usize,
    /// The request names (in the order of the summary's `by_name`); an interval's entries
    /// point into this list.
    pub names: Vec<NameOut>,
    /// Intervals from the start of the run; interval `i` covers `[i, i+1) × interval_s`.
    pub intervals: Vec<IntervalOut>,
}

/// One interval.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct IntervalOut {
    /// Start, seconds from the start of the run.
    pub t_s: f64,
    /// The most VUs active at once (sampled).
    pub vus: u64,
    /// The most requests in flight at once (sampled like `vus`).
    pub active_requests: u64,
    /// Request names with requests finished in this interval.
    pub by_name: Vec<NameSlotOut>,
    /// Per scenario.
    pub scenarios: Vec<ScenarioSlotOut>,
    /// Per check (those with results in this interval).
    pub checks: Vec<CheckSlotOut>,
}

/// A request name of the timeline.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct NameOut {
    /// Scenario.
    pub scenario: String,
    /// Request name.
    pub name: String,
    /// Method.
    pub method: String,
}

/// One request name in one interval.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NameSlotOut {
    /// Index into [`TimelineOut::names`].
    pub n: usize,
    /// Requests finished.
    pub requests: u64,
    /// Failed (absent: 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub failures: u64,
    /// By error type (absent: none).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, u64>,
    /// By status code (absent: no response).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub statuses: BTreeMap<String, u64>,
    /// Response body bytes (absent: 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub bytes_in: u64,
    /// Request body bytes (absent: 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub bytes_out: u64,
    /// Latency of every request of the interval: the exact HdrHistogram (µs, 3 significant
    /// digits), V2-deflate encoded in base64 (see `crate::stats::hdr`); percentiles, min, max
    /// and mean come from it.
    pub histogram: String,
    /// The same for the failed requests of the interval only (absent: none failed): the
    /// HTML report subtracts it to chart the successful requests, as the summary's latency.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub failed_histogram: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One scenario in one interval.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ScenarioSlotOut {
    /// Scenario name.
    pub name: String,
    /// Iterations finished.
    pub iterations: u64,
    /// Dropped iterations.
    pub dropped: u64,
    /// Open model: iterations per second the schedule asked for (mean over the interval).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intended_rate: Option<f64>,
    /// Open model: iterations per second started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub achieved_rate: Option<f64>,
    /// Open model: mean start lag, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_lag_mean_s: Option<f64>,
    /// Open model: largest start lag, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_lag_max_s: Option<f64>,
}

/// One check in one interval.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckSlotOut {
    /// Check name.
    pub name: String,
    /// Request name.
    pub request: String,
    /// Passes.
    pub passes: u64,
    /// Failures.
    pub fails: u64,
}

/// Merges the workers' timelines (and the VU samples) into the summary's form.
pub(crate) fn merge(plan: &Plan, parts: Vec<Finished>, vus: &VuSamples) -> Option<TimelineOut> {
    let base_us = parts.first()?.base_us;
    let shift = parts.iter().map(|p| p.shift).max().unwrap_or(0);
    let mut slots: Vec<Slot> = Vec::new();
    for Finished {
        shift: s,
        slots: done,
        ..
    } in parts
    {
        let k = shift - s;
        for (i, slot) in done.into_iter().enumerate() {
            let j = i >> k;
            if slots.len() <= j {
                slots.resize_with(j + 1, Slot::default);
            }
            slots[j].merge(&slot);
        }
    }
    // VU samples are per base interval: fold them to the final interval (and cover them).
    let fold = |samples: &[u64]| {
        let mut out: Vec<u64> = Vec::new();
        for (i, v) in samples.iter().enumerate() {
            let j = i >> shift;
            if out.len() <= j {
                out.resize(j + 1, 0);
            }
            out[j] = out[j].max(*v);
        }
        out
    };
    let vu_slots = fold(&vus.max_active);
    let req_slots = fold(&vus.max_requests);
    let n = slots.len().max(vu_slots.len().min(MAX_INTERVALS));
    slots.resize_with(n, Slot::default);
    // Names grouped like the summary's by_name: (scenario, name, method).
    let mut keys: BTreeMap<(usize, String, String), usize> = BTreeMap::new();
    for m in &plan.requests {
        keys.insert((m.scenario, m.name.to_string(), m.method.to_string()), 0);
    }
    let mut names = Vec::with_capacity(keys.len());
    for (i, ((sc, name, method), idx)) in keys.iter_mut().enumerate() {
        *idx = i;
        names.push(NameOut {
            scenario: plan.scenarios[*sc].name.to_string(),
            name: name.clone(),
            method: method.clone(),
        });
    }
    let name_of: Vec<usize> = plan
        .requests
        .iter()
        .map(|m| keys[&(m.scenario, m.name.to_string(), m.method.to_string())])
        .collect();
    let interval_us = base_us << shift;
    let interval_s = interval_us as f64 / 1e6;
    let mut intervals = Vec::with_capacity(n);
    for (i, slot) in slots.iter().enumerate() {
        let t0 = Duration::from_micros(i as u64 * interval_us);
        intervals.push(interval_out(
            plan,
            &name_of,
            names.len(),
            slot,
            t0,
            interval_s,
            vu_slots.get(i).copied().unwrap_or(0),
            req_slots.get(i).copied().unwrap_or(0),
        ));
    }
    Some(TimelineOut {
        interval_s,
        configured_interval_s: base_us as f64 / 1e6,
        max_intervals: MAX_INTERVALS,
        names,
        intervals,
    })
}

#[allow(clippy::too_many_arguments)]
fn interval_out(
    plan: &Plan,
    name_of: &[usize],
    n_names: usize,
    slot: &Slot,
    t0: Duration,
    secs: f64,
    vus: u64,
    active_requests: u64,
) -> IntervalOut {
    // Group like the summary's by_name (several definitions may share a name).
    let mut groups: Vec<Option<ReqSlot>> = vec![None; n_names];
    for (i, r) in slot.requests.iter().enumerate() {
        if r.requests == 0 {
            continue;
        }
        groups[name_of[i]]
            .get_or_insert_with(ReqSlot::default)
            .merge(r);
    }
    let by_name = groups
        .into_iter()
        .enumerate()
        .filter_map(|(n, r)| r.map(|r| (n, r)))
        .map(|(n, r)| {
            let mut h = new_hist();
            add_sparse(&mut h, &r.hist);
            let failed_histogram = if r.failed_hist.is_empty() {
                String::new()
            } else {
                let mut f = new_hist();
                add_sparse(&mut f, &r.failed_hist);
                hdr::encode(&f)
            };
            let mut statuses = r.statuses.clone();
            statuses.sort_unstable();
            NameSlotOut {
                n,
                requests: r.requests,
                failures: r.failures,
                errors: r
                    .errors
                    .iter()
                    .map(|(k, v)| (k.as_str().into_owned(), *v))
                    .collect(),
                statuses: statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                bytes_in: r.bytes_in,
                bytes_out: r.bytes_out,
                histogram: hdr::encode(&h),
                failed_histogram,
            }
        })
        .collect();
    let scenarios = plan
        .scenarios
        .iter()
        .enumerate()
        .map(|(i, sc)| {
            let s = slot.scenarios.get(i).copied().unwrap_or_default();
            let open = match &sc.schedule {
                Schedule::ArrivalRate { start, stages, .. } => Some((start, stages)),
                _ => None,
            };
            ScenarioSlotOut {
                name: sc.name.to_string(),
                iterations: s.iterations,
                dropped: s.dropped,
                intended_rate: open.map(|(start, stages)| {
                    // Mean of the linear rate over the interval (Simpson on a piecewise line is
                    // exact when no stage boundary falls inside; close enough when one does).
                    let at = |f: f64| {
                        crate::scenario::schedule::vu_target(
                            *start,
                            stages,
                            t0 + Duration::from_secs_f64(secs * f),
                        )
                    };
                    // A segment of a distributed run: its share of the global rate, so the
                    // segments' timelines add up to it.
                    (at(0.0) + 4.0 * at(0.5) + at(0.999_999)) / 6.0 * plan.stripe.fraction()
                }),
                achieved_rate: open.map(|_| s.started as f64 / secs),
                start_lag_mean_s: open.map(|_| {
                    if s.started == 0 {
                        0.0
                    } else {
                        s.lag_sum_us as f64 / s.started as f64 / 1e6
                    }
                }),
                start_lag_max_s: open.map(|_| s.lag_max_us as f64 / 1e6),
            }
        })
        .collect();
    let checks = slot
        .checks
        .iter()
        .enumerate()
        .filter(|(_, c)| c.0 + c.1 > 0)
        .map(|(i, c)| {
            let m = &plan.checks[i];
            CheckSlotOut {
                name: m.name.to_string(),
                request: plan.requests[m.request].name.to_string(),
                passes: c.0,
                fails: c.1,
            }
        })
        .collect();
    IntervalOut {
        t_s: t0.as_secs_f64(),
        vus,
        active_requests,
        by_name,
        scenarios,
        checks,
    }
}

/// The most intervals a merged timeline can have: segments' timelines keep at most
/// [`MAX_INTERVALS`] each and start together; four times that leaves room for skew.
const MAX_MERGED_INTERVALS: usize = 4 * MAX_INTERVALS;

/// Adds up the timelines of the segments of a distributed run (`stampede merge`, the
/// coordinator): interval by interval from the common start, names matched by (scenario, name,
/// method), counts and open-model rates summed, latency histograms added (exact), VUs and
/// requests in flight summed (each segment's peak: an upper bound of the test's), start lag
/// weighted by the iterations each segment started. Intervals of different lengths (a segment
/// that coarsened more) are brought to the longest. `None` when no part has a timeline.
pub(crate) fn merge_outs(parts: &[TimelineOut]) -> Option<TimelineOut> {
    let first = parts.first()?;
    let interval_s = parts.iter().map(|p| p.interval_s).fold(0.0, f64::max);
    if interval_s <= 0.0 {
        return None;
    }
    let mut names: Vec<NameOut> = parts.iter().flat_map(|p| p.names.iter().cloned()).collect();
    names.sort();
    names.dedup();
    let mut intervals: Vec<IntervalOut> = Vec::new();
    // Per merged interval and name: the histogram being added up.
    let mut hists: Vec<BTreeMap<usize, hdrhistogram::Histogram<u64>>> = Vec::new();
    // The same for the failed requests.
    let mut failed: Vec<BTreeMap<usize, hdrhistogram::Histogram<u64>>> = Vec::new();
    // Per merged interval and scenario: iterations started (weights of the start lag).
    let mut started: Vec<BTreeMap<String, f64>> = Vec::new();
    for p in parts {
        let remap: Vec<usize> = p
            .names
            .iter()
            .map(|n| names.binary_search(n).unwrap_or(0))
            .collect();
        for iv in &p.intervals {
            let j = ((iv.t_s + 1e-9) / interval_s).floor().max(0.0) as usize;
            // Each timeline keeps at most MAX_INTERVALS; an interval far beyond that (a
            // hostile or broken `t_s`) would allocate every interval before it: skipped.
            if j >= MAX_MERGED_INTERVALS {
                continue;
            }
            while intervals.len() <= j {
                intervals.push(IntervalOut {
                    t_s: intervals.len() as f64 * interval_s,
                    ..IntervalOut::default()
                });
                hists.push(BTreeMap::new());
                failed.push(BTreeMap::new());
                started.push(BTreeMap::new());
            }
            let out = &mut intervals[j];
            out.vus = out.vus.saturating_add(iv.vus);
            out.active_requests = out.active_requests.saturating_add(iv.active_requests);
            for ns in &iv.by_name {
                let n = remap.get(ns.n).copied().unwrap_or(0);
                let idx = match out.by_name.iter().position(|x| x.n == n) {
                    Some(i) => i,
                    None => {
                        out.by_name.push(NameSlotOut {
                            n,
                            ..NameSlotOut::default()
                        });
                        out.by_name.len() - 1
                    }
                };
                let o = &mut out.by_name[idx];
                o.requests = o.requests.saturating_add(ns.requests);
                o.failures = o.failures.saturating_add(ns.failures);
                o.bytes_in = o.bytes_in.saturating_add(ns.bytes_in);
                o.bytes_out = o.bytes_out.saturating_add(ns.bytes_out);
                for (k, v) in &ns.errors {
                    let e = o.errors.entry(k.clone()).or_default();
                    *e = e.saturating_add(*v);
                }
                for (k, v) in &ns.statuses {
                    let e = o.statuses.entry(k.clone()).or_default();
                    *e = e.saturating_add(*v);
                }
                let h = hists[j].entry(n).or_insert_with(new_hist);
                // An undecodable histogram counts as empty (the counts above still add up).
                let _ = hdr::decode_into(&ns.histogram, h);
                if !ns.failed_histogram.is_empty() {
                    let f = failed[j].entry(n).or_insert_with(new_hist);
                    let _ = hdr::decode_into(&ns.failed_histogram, f);
                }
            }
            for sc in &iv.scenarios {
                let idx = match out.scenarios.iter().position(|x| x.name == sc.name) {
                    Some(i) => i,
                    None => {
                        out.scenarios.push(ScenarioSlotOut {
                            name: sc.name.clone(),
                            ..ScenarioSlotOut::default()
                        });
                        out.scenarios.len() - 1
                    }
                };
                let o = &mut out.scenarios[idx];
                o.iterations = o.iterations.saturating_add(sc.iterations);
                o.dropped = o.dropped.saturating_add(sc.dropped);
                let add = |a: &mut Option<f64>, b: Option<f64>| {
                    if let Some(b) = b {
                        *a = Some(a.unwrap_or(0.0) + b);
                    }
                };
                add(&mut o.intended_rate, sc.intended_rate);
                add(&mut o.achieved_rate, sc.achieved_rate);
                if let (Some(mean), Some(rate)) = (sc.start_lag_mean_s, sc.achieved_rate) {
                    add(&mut o.start_lag_mean_s, Some(mean * rate));
                    *started[j].entry(sc.name.clone()).or_default() += rate;
                }
                if let Some(m) = sc.start_lag_max_s {
                    o.start_lag_max_s = Some(o.start_lag_max_s.unwrap_or(0.0).max(m));
                }
            }
            for c in &iv.checks {
                match out
                    .checks
                    .iter_mut()
                    .find(|x| x.name == c.name && x.request == c.request)
                {
                    Some(o) => {
                        o.passes = o.passes.saturating_add(c.passes);
                        o.fails = o.fails.saturating_add(c.fails);
                    }
                    None => out.checks.push(c.clone()),
                }
            }
        }
    }
    for (((iv, h), f), w) in intervals.iter_mut().zip(&hists).zip(&failed).zip(&started) {
        for ns in iv.by_name.iter_mut() {
            if let Some(h) = h.get(&ns.n) {
                ns.histogram = hdr::encode(h);
            }
            if let Some(f) = f.get(&ns.n) {
                ns.failed_histogram = hdr::encode(f);
            }
        }
        iv.by_name.sort_by_key(|x| x.n);
        for sc in iv.scenarios.iter_mut() {
            // The weighted sum above over the iterations started: the mean lag.
            let total = w.get(&sc.name).copied().unwrap_or(0.0);
            if let Some(sum) = sc.start_lag_mean_s.as_mut() {
                *sum = if total > 0.0 { *sum / total } else { 0.0 };
            }
        }
    }
    Some(TimelineOut {
        interval_s,
        configured_interval_s: first.configured_interval_s,
        max_intervals: first.max_intervals,
        names,
        intervals,
    })
}

#[cfg(test)]
mod merge_tests {
    use super::*;

    fn part(t_s: f64, name: &str, lat_us: &[u64], iters: u64) -> TimelineOut {
        let mut h = new_hist();
        for v in lat_us {
            let _ = h.record(*v);
        }
        TimelineOut {
            interval_s: 1.0,
            configured_interval_s: 1.0,
            max_intervals: MAX_INTERVALS,
            names: vec![NameOut {
                scenario: "s".into(),
                name: name.into(),
                method: "GET".into(),
            }],
            intervals: vec![IntervalOut {
                t_s,
                vus: 2,
                active_requests: 1,
                by_name: vec![NameSlotOut {
                    n: 0,
                    requests: lat_us.len() as u64,
                    statuses: [("200".to_string(), lat_us.len() as u64)].into(),
                    histogram: hdr::encode(&h),
                    ..NameSlotOut::default()
                }],
                scenarios: vec![ScenarioSlotOut {
                    name: "s".into(),
                    iterations: iters,
                    intended_rate: Some(10.0),
                    achieved_rate: Some(iters as f64),
                    start_lag_mean_s: Some(iters as f64 / 1000.0),
                    start_lag_max_s: Some(0.5),
                    ..ScenarioSlotOut::default()
                }],
                checks: Vec::new(),
            }],
        }
    }

    #[test]
    fn segment_timelines_add_up_exactly() {
        let a = part(0.0, "/a", &[100, 200, 300], 4);
        let b = part(0.0, "/a", &[400, 50_000], 6);
        let c = part(1.0, "/b", &[700], 1);
        let m = merge_outs(&[a, b, c]).expect("merged");
        assert_eq!(m.names.len(), 2);
        assert_eq!(m.intervals.len(), 2);
        let i0 = &m.intervals[0];
        assert_eq!((i0.vus, i0.active_requests), (4, 2));
        assert_eq!(i0.by_name.len(), 1);
        assert_eq!(i0.by_name[0].requests, 5);
        assert_eq!(i0.by_name[0].statuses["200"], 5);
        let h = hdr::decode(&i0.by_name[0].histogram).expect("histogram");
        assert_eq!(h.len(), 5);
        assert_eq!(h.max(), h.highest_equivalent(50_000));
        let s = &i0.scenarios[0];
        assert_eq!(s.iterations, 10);
        assert_eq!(s.intended_rate, Some(20.0));
        // Lag weighted by iterations started: (4·0.004 + 6·0.006) / 10.
        assert!((s.start_lag_mean_s.unwrap_or(0.0) - 0.0052).abs() < 1e-12);
        let i1 = &m.intervals[1];
        assert_eq!(m.names[i1.by_name[0].n].name, "/b");
        assert!(merge_outs(&[]).is_none());
    }
}
