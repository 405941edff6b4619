//! Merging the summaries of a distributed run's segments into the summary of the whole test:
//! what the coordinator does at the end of a run and `stampede merge` does offline.
//!
//! Counts add up; latencies are never averaged: every summary carries its histograms (base64
//! HdrHistogram V2, [`crate::stats::hdr`]) per request name (successful and all requests) and
//! per scenario, and the merged percentiles come from the added histograms, exactly as one
//! machine recording every request would have computed them. Thresholds are evaluated on the
//! merged result through [`crate::threshold::Source`]; windowed ones (`p99[30s]`) window by
//! window over the merged timeline ([`crate::slo::judge_intervals`]), as one generator judges
//! them live. The run's duration is the longest
//! segment's (the segments run side by side); rates are the merged counts over it.
//!
//! The merged summary is itself mergeable (it carries the merged histograms). The segments'
//! timelines are added up interval by interval ([`crate::report::timeline::merge_outs`]), so a merged
//! run has its charts over time too.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Deserialize;

use crate::report::summary::{
    ByteCounts, CheckRow, DistributedInfo, NameRow, Rows, ScenarioRow, SegmentInfo, Summary,
    TargetError, ThresholdRow,
};
use crate::stats::{hdr, latency_of, new_hist};
use crate::threshold::{Filter, Metric, Source, Threshold};

/// A summary that cannot be merged.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MergeError {
    /// Not a summary JSON, or one without histograms (written by an older stampede).
    #[error(
        "{0}: not a mergeable summary (stampede run --summary-json / --segment-summary-json): {1}"
    )]
    Invalid(String, String),
    /// A field that cannot be right (`seg1.json: by_name[2].latency_all_hdr: …`): a histogram
    /// that does not decode or disagrees with its row's count, a count whose sum overflows.
    #[error("{0}: {1}: {2}")]
    Field(String, String, String),
    /// Nothing to merge.
    #[error("no summaries to merge")]
    Empty,
}

/// One request name of an input summary.
#[derive(Debug, Deserialize)]
struct InName {
    name: String,
    method: String,
    scenario: String,
    requests: u64,
    failures: u64,
    status_codes: BTreeMap<String, u64>,
    latency_hdr: String,
    latency_all_hdr: String,
    /// Absent in summaries of an older stampede: zeros.
    #[serde(default)]
    bytes: ByteCounts,
}

/// One scenario of an input summary.
#[derive(Debug, Deserialize)]
struct InScenario {
    name: String,
    executor: String,
    iterations: u64,
    dropped_no_vu: u64,
    dropped_generator: u64,
    iteration_duration_hdr: String,
    #[serde(default)]
    start_lag_hdr: Option<String>,
    #[serde(default)]
    window: Option<crate::report::summary::WindowRow>,
}

/// What merging reads from a summary JSON (the rest is ignored).
#[derive(Debug, Deserialize)]
struct Input {
    run_id: String,
    duration_s: f64,
    by_name: Vec<InName>,
    errors: BTreeMap<String, u64>,
    errors_by_target: Vec<TargetError>,
    reconnects: u64,
    scenarios: Vec<InScenario>,
    checks: Vec<CheckRow>,
    interrupted: bool,
    #[serde(default)]
    segment: Option<SegmentInfo>,
    #[serde(default)]
    distributed: Option<DistributedInfo>,
    #[serde(default)]
    generator: Option<InGenerator>,
    #[serde(default)]
    meta: Option<crate::report::summary::RunMeta>,
    #[serde(default)]
    aborted: Option<crate::slo::Abort>,
    #[serde(default)]
    timeline: Option<crate::report::timeline::TimelineOut>,
}

/// The part of a segment's `generator` object merging keeps.
#[derive(Debug, Deserialize)]
struct InGenerator {
    #[serde(default)]
    cpu_bound: bool,
}

/// A summary to merge, read from JSON; `origin` names it in errors (a file, `segment 2`).
#[derive(Debug)]
pub(crate) struct Part {
    origin: String,
    input: Input,
}

impl Part {
    /// Reads a summary JSON value.
    pub(crate) fn from_value(origin: &str, v: serde_json::Value) -> Result<Part, MergeError> {
        let input = serde_json::from_value(v)
            .map_err(|e| MergeError::Invalid(origin.to_string(), e.to_string()))?;
        Ok(Part {
            origin: origin.to_string(),
            input,
        })
    }
}

#[derive(Default)]
struct Name {
    requests: u64,
    failures: u64,
    codes: BTreeMap<String, u64>,
    ok: Option<Histogram<u64>>,
    all: Option<Histogram<u64>>,
    bytes: ByteCounts,
}

#[derive(Default)]
struct Scen {
    executor: String,
    iterations: u64,
    no_vu: u64,
    generator: u64,
    duration: Option<Histogram<u64>>,
    lag: Option<Histogram<u64>>,
    window: Option<crate::report::summary::WindowRow>,
}

fn add(into: &mut Option<Histogram<u64>>, h: Histogram<u64>) {
    match into {
        Some(a) => {
            // Both decoded to stampede's bounds: cannot fail.
            let _ = a.add(&h);
        }
        None => *into = Some(h),
    }
}

/// The merged statistics, by key, before they become a summary.
struct Merged {
    names: BTreeMap<(String, String, String), Name>,
    scenarios: Vec<(String, Scen)>,
    checks: BTreeMap<(String, String, String), (u64, u64)>,
    secs: f64,
    /// Requests over every name, iterations and dropped iterations over every scenario
    /// (checked: no sum of rows' counts can overflow).
    total: u64,
    iterations: u64,
    dropped: u64,
}

impl Merged {
    fn rows(&self, f: &Filter) -> impl Iterator<Item = &Name> {
        self.names
            .iter()
            .filter(|((sc, name, method), _)| {
                f.name.as_deref().is_none_or(|n| n == name)
                    && f.method.as_deref().is_none_or(|m| m == method)
                    && f.scenario.as_deref().is_none_or(|s| s == sc)
            })
            .map(|(_, v)| v)
    }

    fn missing(&self, metric: Metric, f: &Filter) -> String {
        let rows: Vec<&Name> = self.rows(f).collect();
        let reqs: u64 = rows.iter().map(|r| r.requests).sum();
        match metric {
            Metric::Iterations | Metric::DroppedIterations => "no scenario matches".into(),
            Metric::CheckRate | Metric::CheckFailures => "no checks".into(),
            _ if rows.is_empty() => "no request matches".into(),
            _ if reqs == 0 => "no requests were sent".into(),
            _ => format!("no successful requests, {reqs} failed"),
        }
    }
}

impl Source for Merged {
    fn value(&self, metric: Metric, f: &Filter) -> Option<f64> {
        let rows: Vec<&Name> = self.rows(f).collect();
        let reqs: u64 = rows.iter().map(|r| r.requests).sum();
        let fails: u64 = rows.iter().map(|r| r.failures).sum();
        let lat = || {
            let mut h = new_hist();
            for r in &rows {
                if let Some(x) = &r.ok {
                    let _ = h.add(x);
                }
            }
            (!h.is_empty()).then_some(h)
        };
        let scen = self
            .scenarios
            .iter()
            .filter(|(n, _)| f.scenario.as_deref().is_none_or(|s| s == n))
            .map(|(_, s)| s)
            .collect::<Vec<_>>();
        // Checks have no method: a method filter matches the checks of the named requests.
        let checks: Vec<(u64, u64)> = self
            .checks
            .iter()
            .filter(|((sc, req, _), _)| {
                f.name.as_deref().is_none_or(|n| n == req)
                    && f.scenario.as_deref().is_none_or(|s| s == sc)
            })
            .map(|(_, v)| *v)
            .collect();
        match metric {
            Metric::Percentile(q) => lat().map(|h| h.value_at_quantile(q / 100.0) as f64 / 1e6),
            Metric::Min => lat().map(|h| h.min() as f64 / 1e6),
            Metric::Max => lat().map(|h| h.max() as f64 / 1e6),
            Metric::Mean => lat().map(|h| h.mean() / 1e6),
            Metric::ErrorRate => (reqs > 0).then(|| fails as f64 / reqs as f64),
            Metric::Rps => (!rows.is_empty()).then(|| reqs as f64 / self.secs),
            Metric::Requests => (!rows.is_empty()).then_some(reqs as f64),
            Metric::Failures => (!rows.is_empty()).then_some(fails as f64),
            Metric::Iterations => {
                (!scen.is_empty()).then(|| scen.iter().map(|s| s.iterations).sum::<u64>() as f64)
            }
            Metric::DroppedIterations => (!scen.is_empty())
                .then(|| scen.iter().map(|s| s.no_vu + s.generator).sum::<u64>() as f64),
            Metric::CheckRate => {
                let (p, fl) = checks.iter().fold((0u64, 0u64), |a, c| {
                    (a.0.saturating_add(c.0), a.1.saturating_add(c.1))
                });
                (p > 0 || fl > 0).then(|| p as f64 / (p as f64 + fl as f64))
            }
            Metric::CheckFailures => {
                (!checks.is_empty()).then(|| checks.iter().map(|c| c.1 as f64).sum::<f64>())
            }
        }
    }
}

/// Refuses a timeline interval histogram that does not decode or does not hold its slot's
/// requests (merging would otherwise count it as empty, or chart counts it does not have).
fn check_timeline(p: &Part) -> Result<(), MergeError> {
    let Some(tl) = &p.input.timeline else {
        return Ok(());
    };
    for (k, iv) in tl.intervals.iter().enumerate() {
        for (j, ns) in iv.by_name.iter().enumerate() {
            let field = format!("timeline.intervals[{k}].by_name[{j}].histogram");
            histogram(&p.origin, field, &ns.histogram, Some(ns.requests))?;
        }
    }
    Ok(())
}

/// Refuses a segment count beyond what a run can have ([`crate::scenario::segment::MAX_LCD`]): the
/// merged summary lists every missing segment, so a claimed 4 billion would allocate 16 GB.
fn check_segment_count(p: &Part) -> Result<(), MergeError> {
    let max = crate::scenario::segment::MAX_LCD;
    let claims = [
        ("segment.count", p.input.segment.as_ref().map(|s| s.count)),
        (
            "distributed.segments",
            p.input.distributed.as_ref().map(|d| d.segments),
        ),
    ];
    for (field, n) in claims {
        if let Some(n) = n
            && u64::from(n) > max
        {
            return Err(MergeError::Field(
                p.origin.clone(),
                field.into(),
                format!("{n} segments: a run has at most {max}"),
            ));
        }
    }
    Ok(())
}

/// Adds `n` to `into`, or refuses the input whose `field` makes the sum overflow.
fn sum_into(into: &mut u64, n: u64, origin: &str, field: String) -> Result<(), MergeError> {
    *into = into.checked_add(n).ok_or_else(|| {
        MergeError::Field(
            origin.to_string(),
            field,
            format!("{n} overflows the merged count (more than {})", u64::MAX),
        )
    })?;
    Ok(())
}

/// Decodes the histogram in `field`; `count`, when given, is what its row says it holds.
fn histogram(
    origin: &str,
    field: String,
    text: &str,
    count: Option<u64>,
) -> Result<Histogram<u64>, MergeError> {
    let bad = |msg: String| MergeError::Field(origin.to_string(), field.clone(), msg);
    let h = hdr::decode(text).map_err(|e| bad(e.to_string()))?;
    match count {
        Some(n) if h.len() != n => {
            Err(bad(format!("holds {} requests, its row says {n}", h.len())))
        }
        _ => Ok(h),
    }
}

/// Adds a part's request names to the merge: counts with checked sums, histograms that hold
/// exactly the row's requests (every one; the successful ones).
fn add_names(m: &mut Merged, p: &Part) -> Result<(), MergeError> {
    let o = &p.origin;
    for (k, n) in p.input.by_name.iter().enumerate() {
        let f = |x: &str| format!("by_name[{k}].{x}");
        let ok_count = n.requests.checked_sub(n.failures).ok_or_else(|| {
            MergeError::Field(
                o.clone(),
                f("failures"),
                format!("{} is more than its {} requests", n.failures, n.requests),
            )
        })?;
        let all = histogram(
            o,
            f("latency_all_hdr"),
            &n.latency_all_hdr,
            Some(n.requests),
        )?;
        let ok = histogram(o, f("latency_hdr"), &n.latency_hdr, Some(ok_count))?;
        let e = m
            .names
            .entry((n.scenario.clone(), n.name.clone(), n.method.clone()))
            .or_default();
        sum_into(&mut e.requests, n.requests, o, f("requests"))?;
        sum_into(&mut e.failures, n.failures, o, f("failures"))?;
        sum_into(&mut m.total, n.requests, o, f("requests"))?;
        for (c, v) in &n.status_codes {
            sum_into(
                e.codes.entry(c.clone()).or_insert(0),
                *v,
                o,
                f(&format!("status_codes.{c}")),
            )?;
        }
        e.bytes += n.bytes;
        add(&mut e.ok, ok);
        add(&mut e.all, all);
    }
    Ok(())
}

/// Adds a part's scenarios to the merge (checked sums; histograms that decode).
fn add_scenarios(m: &mut Merged, p: &Part) -> Result<(), MergeError> {
    let o = &p.origin;
    for (k, s) in p.input.scenarios.iter().enumerate() {
        let f = |x: &str| format!("scenarios[{k}].{x}");
        let duration = histogram(
            o,
            f("iteration_duration_hdr"),
            &s.iteration_duration_hdr,
            None,
        )?;
        let lag = match &s.start_lag_hdr {
            Some(l) => Some(histogram(o, f("start_lag_hdr"), l, None)?),
            None => None,
        };
        let pos = match m.scenarios.iter().position(|(n, _)| *n == s.name) {
            Some(p) => p,
            None => {
                m.scenarios.push((s.name.clone(), Scen::default()));
                m.scenarios.len() - 1
            }
        };
        let e = &mut m.scenarios[pos].1;
        e.executor = s.executor.clone();
        sum_into(&mut e.iterations, s.iterations, o, f("iterations"))?;
        sum_into(&mut e.no_vu, s.dropped_no_vu, o, f("dropped_no_vu"))?;
        sum_into(
            &mut e.generator,
            s.dropped_generator,
            o,
            f("dropped_generator"),
        )?;
        // Totals over scenarios (the summary's), checked once here.
        sum_into(&mut m.iterations, s.iterations, o, f("iterations"))?;
        sum_into(&mut m.dropped, s.dropped_no_vu, o, f("dropped_no_vu"))?;
        sum_into(
            &mut m.dropped,
            s.dropped_generator,
            o,
            f("dropped_generator"),
        )?;
        add(&mut e.duration, duration);
        if let Some(l) = lag {
            add(&mut e.lag, l);
        }
        if let Some(w) = &s.window {
            e.window.get_or_insert_with(Default::default).merge(w);
        }
    }
    Ok(())
}

/// Merges segment summaries into the whole test's summary, with `thresholds` evaluated on it.
/// `segments` is the run's segment count when known (the coordinator's); otherwise it is taken
/// from the parts. Segments of `0..segments` without a part are listed as missing.
pub(crate) fn merge(
    parts: &[Part],
    thresholds: &[Threshold],
    segments: Option<u32>,
) -> Result<Summary, MergeError> {
    let first = parts.first().ok_or(MergeError::Empty)?;
    let mut m = Merged {
        names: BTreeMap::new(),
        scenarios: Vec::new(),
        checks: BTreeMap::new(),
        secs: 0.0,
        total: 0,
        iterations: 0,
        dropped: 0,
    };
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_target: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut reconnects = 0;
    let mut interrupted = false;
    let mut merged_idx = Vec::new();
    let mut starts = Vec::new();
    let mut cpu_bound = Vec::new();
    let mut count = segments;
    for p in parts {
        let i = &p.input;
        check_segment_count(p)?;
        check_timeline(p)?;
        let idx: Vec<u32> = match (&i.segment, &i.distributed) {
            (Some(s), _) => vec![s.index],
            (None, Some(d)) => d.merged.clone(),
            (None, None) => Vec::new(),
        };
        if let Some(dup) = idx.iter().find(|x| merged_idx.contains(*x)) {
            return Err(MergeError::Invalid(
                p.origin.clone(),
                format!("segment {dup} is in another input too; it would count twice"),
            ));
        }
        m.secs = m.secs.max(i.duration_s);
        add_names(&mut m, p)?;
        add_scenarios(&mut m, p)?;
        let sum = |into: &mut u64, n: u64, field: String| sum_into(into, n, &p.origin, field);
        for (k, c) in i.checks.iter().enumerate() {
            let e = m
                .checks
                .entry((c.scenario.clone(), c.request.clone(), c.name.clone()))
                .or_default();
            sum(&mut e.0, c.passes, format!("checks[{k}].passes"))?;
            sum(&mut e.1, c.fails, format!("checks[{k}].fails"))?;
        }
        for (k, n) in &i.errors {
            sum(
                errors.entry(k.clone()).or_insert(0),
                *n,
                format!("errors.{k}"),
            )?;
        }
        for (k, t) in i.errors_by_target.iter().enumerate() {
            let e = by_target
                .entry((t.error.clone(), t.target.clone()))
                .or_insert(0);
            sum(e, t.count, format!("errors_by_target[{k}].count"))?;
        }
        sum(&mut reconnects, i.reconnects, "reconnects".into())?;
        interrupted |= i.interrupted;
        if let Some(s) = &i.segment {
            merged_idx.push(s.index);
            starts.push(s.started_unix_s);
            if i.generator.as_ref().is_some_and(|g| g.cpu_bound) {
                cpu_bound.push(s.index);
            }
            count.get_or_insert(s.count);
        }
        if let Some(d) = &i.distributed {
            // A merged summary merged again: its segments count as merged.
            merged_idx.extend(&d.merged);
            cpu_bound.extend(&d.cpu_bound);
            count.get_or_insert(d.segments);
        }
    }
    let secs = m.secs.max(1e-9);
    let mut all = new_hist();
    let mut ok = new_hist();
    let mut by_name = Vec::new();
    for ((sc, name, method), n) in &m.names {
        let h_ok = n.ok.clone().unwrap_or_else(new_hist);
        let h_all = n.all.clone().unwrap_or_else(new_hist);
        let _ = ok.add(&h_ok);
        let _ = all.add(&h_all);
        by_name.push(NameRow {
            name: name.clone(),
            method: method.clone(),
            scenario: sc.clone(),
            requests: n.requests,
            failures: n.failures,
            rps: n.requests as f64 / secs,
            latency_s: latency_of(&h_ok),
            latency_all_s: latency_of(&h_all),
            status_codes: n.codes.clone(),
            latency_hdr: hdr::encode(&h_ok),
            latency_all_hdr: hdr::encode(&h_all),
            bytes: n.bytes,
        });
    }
    let scenarios: Vec<ScenarioRow> = m
        .scenarios
        .iter()
        .map(|(name, s)| {
            let d = s.duration.clone().unwrap_or_else(new_hist);
            ScenarioRow {
                name: name.clone(),
                executor: s.executor.clone(),
                iterations: s.iterations,
                dropped_iterations: s.no_vu + s.generator,
                dropped_no_vu: s.no_vu,
                dropped_generator: s.generator,
                iteration_duration_s: latency_of(&d),
                start_lag_s: s.lag.as_ref().map(latency_of),
                iteration_duration_hdr: hdr::encode(&d),
                start_lag_hdr: s.lag.as_ref().map(hdr::encode),
                window: s.window,
            }
        })
        .collect();
    let checks = m
        .checks
        .iter()
        .map(|((sc, req, name), (p, f))| CheckRow {
            name: name.clone(),
            request: req.clone(),
            scenario: sc.clone(),
            passes: *p,
            fails: *f,
        })
        .collect();
    let timeline = crate::report::timeline::merge_outs(
        &parts
            .iter()
            .filter_map(|p| p.input.timeline.clone())
            .collect::<Vec<_>>(),
    );
    // Windowed thresholds are judged window by window on the merged timeline, as one
    // generator judges them live; without a timeline, on the whole merged run.
    let windowed = timeline
        .as_ref()
        .map(|tl| judge_timeline(thresholds, tl, secs))
        .unwrap_or_default();
    let threshold_rows = thresholds
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut o = t.evaluate(&m);
            let failed_at_s = match windowed.iter().find(|v| v.index == i) {
                Some(v) => {
                    (o.actual, o.ok) = (v.actual, v.ok);
                    v.failed_at_s
                }
                None => None,
            };
            ThresholdRow::of(t, o, failed_at_s, || m.missing(t.metric, &t.filter))
        })
        .collect();
    merged_idx.sort_unstable();
    merged_idx.dedup();
    let count = count.unwrap_or(parts.len() as u32);
    // Summaries of lone runs (no segment) name no segment: nothing can be called missing.
    let missing = if merged_idx.is_empty() {
        Vec::new()
    } else {
        (0..count).filter(|i| !merged_idx.contains(i)).collect()
    };
    // The run's facts: the first part's, spanning the earliest start to the latest end.
    let meta = parts
        .iter()
        .filter_map(|p| p.input.meta.clone())
        .reduce(|mut a, b| {
            if b.started_at < a.started_at {
                a.started_at = b.started_at;
            }
            if b.ended_at > a.ended_at {
                a.ended_at = b.ended_at;
            }
            a
        });
    let skew = match (
        starts.iter().copied().reduce(f64::min),
        starts.iter().copied().reduce(f64::max),
    ) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    Ok(Summary {
        // The first abort_on_fail threshold that stopped a segment stopped the whole test.
        aborted: parts
            .iter()
            .filter_map(|p| p.input.aborted.clone())
            .min_by(|a, b| a.at_s.total_cmp(&b.at_s)),
        generators: (merged_idx.len() as u32).max(parts.len() as u32),
        meta,
        timeline,
        distributed: Some(DistributedInfo {
            segments: count,
            merged: merged_idx,
            missing,
            start_skew_s: skew,
            cpu_bound: {
                cpu_bound.sort_unstable();
                cpu_bound
            },
        }),
        ..Summary::of_rows(Rows {
            run_id: first.input.run_id.clone(),
            secs,
            ok,
            all,
            by_name,
            errors,
            errors_by_target: by_target
                .into_iter()
                .map(|((error, target), count)| TargetError {
                    error,
                    target,
                    count,
                })
                .collect(),
            reconnects,
            scenarios,
            checks,
            thresholds: threshold_rows,
            interrupted,
        })
    })
}

/// Judges the windowed thresholds over a merged timeline (see [`crate::slo::judge_intervals`]):
/// the timeline's names become the request ids, its intervals the closed slots.
fn judge_timeline(
    thresholds: &[Threshold],
    tl: &crate::report::timeline::TimelineOut,
    duration_s: f64,
) -> Vec<crate::slo::Verdict> {
    use crate::stats::interval::{Closed, Slot};
    let interval_us = (tl.interval_s * 1e6).round() as u64;
    if interval_us == 0 || tl.intervals.is_empty() {
        return Vec::new();
    }
    let mut meta = crate::slo::Meta::default();
    let scenario_of =
        |name: &str, scenarios: &mut Vec<String>| match scenarios.iter().position(|s| s == name) {
            Some(i) => i,
            None => {
                scenarios.push(name.to_string());
                scenarios.len() - 1
            }
        };
    for n in &tl.names {
        let sc = scenario_of(&n.scenario, &mut meta.scenarios);
        meta.requests.push((n.name.clone(), n.method.clone(), sc));
    }
    for iv in &tl.intervals {
        for sc in &iv.scenarios {
            scenario_of(&sc.name, &mut meta.scenarios);
        }
    }
    // Checks by (name, request name), each tied to the first request of that name.
    let mut check_keys: Vec<(String, String)> = Vec::new();
    for c in tl.intervals.iter().flat_map(|iv| &iv.checks) {
        let key = (c.name.clone(), c.request.clone());
        if !check_keys.contains(&key) {
            check_keys.push(key);
        }
    }
    meta.checks = check_keys
        .iter()
        .map(|(_, req)| {
            meta.requests
                .iter()
                .position(|r| &r.0 == req)
                .unwrap_or(usize::MAX)
        })
        .collect();
    let mut h = new_hist();
    let intervals: Vec<Closed> = tl
        .intervals
        .iter()
        .map(|iv| {
            let mut slot = Slot::default();
            slot.requests
                .resize_with(meta.requests.len(), Default::default);
            for ns in &iv.by_name {
                let Some(r) = slot.requests.get_mut(ns.n) else {
                    continue;
                };
                r.requests += ns.requests;
                r.failures += ns.failures;
                h.reset();
                // An undecodable histogram counts as empty (its counts still do).
                if hdr::decode_into(&ns.histogram, &mut h).is_ok() {
                    r.hist = h
                        .iter_recorded()
                        .map(|v| (v.value_iterated_to(), v.count_at_value()))
                        .collect();
                }
            }
            slot.scenarios
                .resize_with(meta.scenarios.len(), Default::default);
            for sc in &iv.scenarios {
                if let Some(i) = meta.scenarios.iter().position(|n| n == &sc.name) {
                    slot.scenarios[i].iterations += sc.iterations;
                    slot.scenarios[i].dropped += sc.dropped;
                }
            }
            slot.checks.resize(check_keys.len(), (0, 0));
            for c in &iv.checks {
                if let Some(i) = check_keys
                    .iter()
                    .position(|(n, r)| n == &c.name && r == &c.request)
                {
                    slot.checks[i].0 += c.passes;
                    slot.checks[i].1 += c.fails;
                }
            }
            Closed {
                start_us: (iv.t_s * 1e6).round() as u64,
                len_us: interval_us,
                slot,
            }
        })
        .collect();
    let last_end = tl.intervals.len() as f64 * tl.interval_s;
    let secs = if duration_s > 0.0 {
        duration_s
    } else {
        last_end
    };
    crate::slo::judge_intervals(
        thresholds,
        std::time::Duration::from_micros(interval_us),
        meta,
        intervals,
        std::time::Duration::from_secs_f64(secs.min(last_end).max(1e-6)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(origin: &str, index: u32, reqs: u64, lat_us: &[u64], dur: f64) -> Part {
        let mut h = new_hist();
        for v in lat_us {
            h.record(*v).unwrap();
        }
        let v = serde_json::json!({
            "run_id": "r",
            "duration_s": dur,
            "by_name": [{
                "name": "/", "method": "GET", "scenario": "s", "requests": reqs, "failures": 0,
                "status_codes": {"200": reqs}, "latency_hdr": hdr::encode(&h),
                "latency_all_hdr": hdr::encode(&h)
            }],
            "errors": {}, "errors_by_target": [], "reconnects": 0,
            "scenarios": [{"name": "s", "executor": "constant-vus", "iterations": reqs,
                "dropped_no_vu": 0, "dropped_generator": 0,
                "iteration_duration_hdr": hdr::encode(&h)}],
            "checks": [], "interrupted": false,
            "segment": {"index": index, "count": 3, "segment": "x", "planned_start_unix_s": 100.0,
                "started_unix_s": 100.0 + index as f64 * 0.001}
        });
        Part::from_value(origin, v).unwrap()
    }

    #[test]
    fn percentiles_come_from_the_union_and_thresholds_judge_the_merge() {
        // Segment 0 is fast, segment 1 slow: the merged p50 is neither's own.
        let a: Vec<u64> = (1..=100).map(|i| i * 10).collect();
        let b: Vec<u64> = (1..=100).map(|i| 5_000 + i * 10).collect();
        let parts = [part("a", 0, 100, &a, 5.0), part("b", 1, 100, &b, 5.2)];
        let t = [
            Threshold::parse("requests < 150").unwrap(),
            Threshold::parse("p50 < 10ms").unwrap(),
        ];
        let s = merge(&parts, &t, None).unwrap();
        assert_eq!(s.requests, 200);
        assert_eq!(s.duration_s, 5.2);
        let mut union = new_hist();
        for v in a.iter().chain(&b) {
            union.record(*v).unwrap();
        }
        assert_eq!(s.latency_s.p99, union.value_at_quantile(0.99) as f64 / 1e6);
        assert_eq!(s.latency_s.p50, union.value_at_quantile(0.5) as f64 / 1e6);
        assert!(
            !s.thresholds[0].ok,
            "200 requests crosses a count each part passes"
        );
        assert!(s.thresholds[1].ok);
        let d = s.distributed.unwrap();
        assert_eq!(d.merged, [0, 1]);
        assert_eq!(d.missing, [2]);
        assert!((d.start_skew_s - 0.001).abs() < 1e-9);
        // The merged summary merges again.
        let v = serde_json::to_value(merge(&parts, &[], None).unwrap()).unwrap();
        let again = merge(&[Part::from_value("m", v).unwrap()], &[], Some(3)).unwrap();
        assert_eq!(again.latency_s.p99, s.latency_s.p99);
        assert_eq!(again.distributed.unwrap().merged, [0, 1]);
        assert!(Part::from_value("x", serde_json::json!({"requests": 1})).is_err());
        // The same segment twice would count twice.
        let e = merge(
            &[part("a", 1, 100, &a, 1.0), part("b", 1, 100, &a, 1.0)],
            &[],
            None,
        );
        assert!(
            e.unwrap_err()
                .to_string()
                .contains("segment 1 is in another input too")
        );
    }

    /// The error merging `parts` gives (a merged summary is no error here).
    fn refusal(parts: &[Part]) -> String {
        match merge(parts, &[], None) {
            Ok(s) => panic!("merged: {} requests", s.requests),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn counts_that_overflow_or_disagree_with_their_histograms_are_refused() {
        let lat: Vec<u64> = (1..=100).collect();
        let v = |reqs: u64| {
            serde_json::to_value(merge(&[part("a", 0, 100, &lat, 1.0)], &[], None).unwrap())
                .map(|mut v| {
                    v["by_name"][0]["requests"] = reqs.into();
                    v
                })
                .unwrap()
        };
        // A row that claims more requests than its histogram holds.
        let e = refusal(&[Part::from_value("seg1.json", v(u64::MAX)).unwrap()]);
        assert_eq!(
            e,
            format!(
                "seg1.json: by_name[0].latency_all_hdr: holds 100 requests, its row says {}",
                u64::MAX
            )
        );
        // Failures beyond the requests.
        let mut f = v(100);
        f["by_name"][0]["failures"] = 101.into();
        let e = refusal(&[Part::from_value("f.json", f).unwrap()]);
        assert!(
            e.starts_with("f.json: by_name[0].failures: 101 is more than"),
            "{e}"
        );
        // Sums that overflow: reconnects, errors, check counts.
        for (key, val) in [
            ("reconnects", serde_json::json!(u64::MAX)),
            ("errors", serde_json::json!({"timeout": u64::MAX})),
        ] {
            let mut a = v(100);
            a[key] = val;
            // Lone runs (no segments), so that both inputs merge.
            a["distributed"] = serde_json::Value::Null;
            let parts = [
                Part::from_value("a.json", a.clone()).unwrap(),
                Part::from_value("b.json", a).unwrap(),
            ];
            let e = refusal(&parts);
            assert!(e.starts_with(&format!("b.json: {key}")), "{e}");
            assert!(e.contains("overflows the merged count"), "{e}");
        }
        // A segment count that would list billions of missing segments.
        let mut c =
            serde_json::to_value(merge(&[part("c", 0, 100, &lat, 1.0)], &[], None).unwrap())
                .unwrap();
        c["distributed"]["segments"] = u32::MAX.into();
        let e = refusal(&[Part::from_value("c.json", c).unwrap()]);
        assert_eq!(
            e,
            "c.json: distributed.segments: 4294967295 segments: a run has at most 1000000"
        );
        // A timeline histogram that claims what it does not hold.
        let mut t = v(100);
        t["timeline"] = serde_json::to_value(segment_timeline(99, 0)).unwrap();
        t["timeline"]["intervals"][3]["by_name"][0]["requests"] = 7.into();
        let e = refusal(&[Part::from_value("t.json", t).unwrap()]);
        assert_eq!(
            e,
            "t.json: timeline.intervals[3].by_name[0].histogram: holds 100 requests, its row says 7"
        );
        // A histogram that is not one.
        let mut h = v(100);
        h["scenarios"][0]["iteration_duration_hdr"] = "AAAA".into();
        let e = refusal(&[Part::from_value("h.json", h).unwrap()]);
        assert!(
            e.starts_with("h.json: scenarios[0].iteration_duration_hdr: histogram is not"),
            "{e}"
        );
    }

    /// A segment's timeline: 20 intervals of 1 s, 100 requests each at 10 ms, except that in
    /// interval `slow_at` `slow` of them took 100 ms.
    fn segment_timeline(slow_at: usize, slow: u64) -> crate::report::timeline::TimelineOut {
        use crate::report::timeline::{
            IntervalOut, NameOut, NameSlotOut, ScenarioSlotOut, TimelineOut,
        };
        let intervals = (0..20)
            .map(|i| {
                let mut h = crate::stats::new_hist();
                let s = if i == slow_at { slow } else { 0 };
                h.record_n(10_000, 100 - s).unwrap();
                if s > 0 {
                    h.record_n(100_000, s).unwrap();
                }
                IntervalOut {
                    t_s: i as f64,
                    by_name: vec![NameSlotOut {
                        n: 0,
                        requests: 100,
                        histogram: crate::stats::hdr::encode(&h),
                        ..Default::default()
                    }],
                    scenarios: vec![ScenarioSlotOut {
                        name: "default".into(),
                        iterations: 100,
                        ..Default::default()
                    }],
                    ..Default::default()
                }
            })
            .collect();
        TimelineOut {
            interval_s: 1.0,
            configured_interval_s: 1.0,
            max_intervals: 1000,
            names: vec![NameOut {
                scenario: "default".into(),
                name: "GET /".into(),
                method: "GET".into(),
            }],
            intervals,
        }
    }

    #[test]
    fn a_merged_timeline_is_judged_window_by_window() {
        let th: Vec<Threshold> = ["p99[2s] < 50ms", "p99 < 50ms", "iterations[5s] >= 1000"]
            .iter()
            .map(|t| Threshold::parse(t).unwrap())
            .collect();
        // Two segments; the second one is slow for 30 requests in 10-11 s: 30 of the
        // 400 requests of the windows that hold that interval (7.5 %), 0.75 % of the run.
        let tl = crate::report::timeline::merge_outs(&[
            segment_timeline(99, 0),
            segment_timeline(10, 30),
        ])
        .unwrap();
        let v = judge_timeline(&th, &tl, 20.0);
        assert_eq!(
            v.len(),
            2,
            "the whole-run threshold is not judged here: {v:?}"
        );
        assert_eq!(v[0].index, 0);
        assert!(!v[0].ok);
        assert_eq!(v[0].failed_at_s, Some(11.0));
        assert!((v[0].actual.unwrap() - 0.1).abs() < 1e-3, "{v:?}");
        assert_eq!(v[0].windows, 19, "windows ending at 2, 3, …, 20 s");
        // 200 iterations per second over both segments: every 5 s window holds 1,000.
        assert_eq!(v[1].index, 2);
        assert!(v[1].ok, "{v:?}");
        assert_eq!(v[1].actual, Some(1000.0));
        // One segment alone is 500 per window: the merge, not a segment, is judged.
        let alone = judge_timeline(&th, &segment_timeline(99, 0), 20.0);
        assert!(!alone[1].ok);
        assert_eq!(alone[1].actual, Some(500.0));
    }
}
