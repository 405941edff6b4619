//! The run's timeline, as the workers record it: the exact statistics of [`crate::stats`] kept per time interval as well
//! (1 s by default, `[run] timeline_interval` / `--timeline-interval`).
//!
//! Each worker owns a [`Timeline`] inside its `WorkerStats` (no sharing, no locks). Requests are
//! placed in the interval in which they *finished* (an iteration or check likewise). The current
//! interval keeps a dense HdrHistogram per request definition; when the worker moves on, it is
//! folded into a sparse list of `(value µs, count)` pairs — exact, HdrHistogram's 3 significant
//! digits — and the dense one is reset for reuse. Memory is bounded: at most
//! [`MAX_INTERVALS`] intervals are kept; when a run outlives them, neighbours are merged in
//! pairs and the interval doubles (a 1 s timeline of a 30 min run ends with 2 s intervals).
//! At the end the workers' timelines are brought to the same interval and merged.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::outcome::{ErrorKind, Sample};

/// The most intervals a timeline keeps before it merges neighbours.
pub(crate) const MAX_INTERVALS: usize = 1000;

/// The smallest interval accepted (shorter settings are raised to it).
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(10);

use super::new_hist;

/// One request definition in one interval.
#[derive(Clone, Debug, Default)]
pub struct ReqSlot {
    /// Requests finished.
    pub requests: u64,
    /// Of which failed.
    pub failures: u64,
    /// Response body bytes.
    pub bytes_in: u64,
    /// Request body bytes.
    pub bytes_out: u64,
    /// By status code.
    pub statuses: BTreeMap<u16, u64>,
    /// By error type.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Latency (µs) as sorted `(value, count)` pairs of HdrHistogram buckets.
    pub hist: Vec<(u64, u64)>,
}

impl ReqSlot {
    pub fn merge(&mut self, o: &ReqSlot) {
        self.requests += o.requests;
        self.failures += o.failures;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        for (k, v) in &o.statuses {
            *self.statuses.entry(*k).or_default() += v;
        }
        for (k, v) in &o.errors {
            *self.errors.entry(*k).or_default() += v;
        }
        self.hist = merge_sparse(&self.hist, &o.hist);
    }
}

fn merge_sparse(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                out.push((x.0, x.1 + y.1));
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                out.push(*x);
                i += 1;
            }
            (Some(x), None) => {
                out.push(*x);
                i += 1;
            }
            (_, Some(y)) => {
                out.push(*y);
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// One scenario in one interval.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScenarioSlot {
    /// Iterations finished.
    pub iterations: u64,
    /// Open-model iterations started.
    pub started: u64,
    /// Dropped iterations.
    pub dropped: u64,
    /// Sum of start lags (µs) of the started ones.
    pub lag_sum_us: u64,
    /// Largest start lag (µs).
    pub lag_max_us: u64,
}

/// Everything of one interval.
#[derive(Clone, Debug, Default)]
pub struct Slot {
    /// By request id (empty: nothing happened).
    pub requests: Vec<ReqSlot>,
    /// By scenario index.
    pub scenarios: Vec<ScenarioSlot>,
    /// (passes, fails) by check id.
    pub checks: Vec<(u64, u64)>,
}

impl Slot {
    pub fn merge(&mut self, o: &Slot) {
        if self.requests.len() < o.requests.len() {
            self.requests
                .resize_with(o.requests.len(), ReqSlot::default);
        }
        for (a, b) in self.requests.iter_mut().zip(&o.requests) {
            a.merge(b);
        }
        if self.scenarios.len() < o.scenarios.len() {
            self.scenarios
                .resize(o.scenarios.len(), ScenarioSlot::default());
        }
        for (a, b) in self.scenarios.iter_mut().zip(&o.scenarios) {
            a.iterations += b.iterations;
            a.started += b.started;
            a.dropped += b.dropped;
            a.lag_sum_us += b.lag_sum_us;
            a.lag_max_us = a.lag_max_us.max(b.lag_max_us);
        }
        if self.checks.len() < o.checks.len() {
            self.checks.resize(o.checks.len(), (0, 0));
        }
        for (a, b) in self.checks.iter_mut().zip(&o.checks) {
            a.0 += b.0;
            a.1 += b.1;
        }
    }
}

/// A closed interval of one worker, sent live to the run's window evaluator (`crate::slo`):
/// one message per interval per worker, never per request.
#[derive(Clone, Debug)]
pub struct Closed {
    /// Start, µs after the run start.
    pub start_us: u64,
    /// Length, µs.
    pub len_us: u64,
    /// What happened in it.
    pub slot: Slot,
}

/// Where a timeline sends its closed intervals.
pub(crate) type Feed = tokio::sync::mpsc::UnboundedSender<Closed>;

/// One worker's timeline.
#[derive(Clone, Debug)]
pub struct Timeline {
    /// Live feed of closed intervals (None: nobody listens).
    feed: Option<Feed>,
    start: Instant,
    base_us: u64,
    shift: u32,
    cur: u64,
    slot: Slot,
    hists: Vec<Histogram<u64>>,
    shape: (usize, usize, usize),
    /// Finished intervals, by index (at the current interval length).
    done: Vec<Slot>,
}

impl Timeline {
    /// A timeline whose interval 0 starts at `start`.
    pub fn new(
        start: Instant,
        interval: Duration,
        requests: usize,
        scenarios: usize,
        checks: usize,
    ) -> Self {
        let mut t = Timeline {
            feed: None,
            start,
            base_us: interval.max(MIN_INTERVAL).as_micros() as u64,
            shift: 0,
            cur: 0,
            slot: Slot::default(),
            hists: (0..requests).map(|_| new_hist()).collect(),
            shape: (requests, scenarios, checks),
            done: Vec::new(),
        };
        t.slot = t.empty_slot();
        t
    }

    fn empty_slot(&self) -> Slot {
        Slot {
            requests: vec![ReqSlot::default(); self.shape.0],
            scenarios: vec![ScenarioSlot::default(); self.shape.1],
            checks: vec![(0, 0); self.shape.2],
        }
    }

    fn interval_us(&self) -> u64 {
        self.base_us << self.shift
    }

    /// Moves to the interval of `now`, folding the current one away when it changes.
    fn at(&mut self, now: Instant) -> &mut Slot {
        let idx = now.saturating_duration_since(self.start).as_micros() as u64 / self.interval_us();
        if idx != self.cur {
            self.advance(idx);
        }
        &mut self.slot
    }

    fn fold_current(&mut self) {
        let empty = self.empty_slot();
        let mut slot = std::mem::replace(&mut self.slot, empty);
        for (r, h) in slot.requests.iter_mut().zip(self.hists.iter_mut()) {
            if !h.is_empty() {
                r.hist = h
                    .iter_recorded()
                    .map(|v| (v.value_iterated_to(), v.count_at_value()))
                    .collect();
                h.reset();
            }
        }
        let p = self.cur as usize;
        if let Some(f) = &self.feed {
            let len_us = self.interval_us();
            let c = Closed {
                start_us: self.cur * len_us,
                len_us,
                slot: slot.clone(),
            };
            let _ = f.send(c);
        }
        if p < self.done.len() {
            self.done[p].merge(&slot);
        } else {
            self.done.resize_with(p, Slot::default);
            self.done.push(slot);
        }
    }

    #[cold]
    fn advance(&mut self, mut idx: u64) {
        self.fold_current();
        while idx >= MAX_INTERVALS as u64 {
            self.coarsen();
            idx >>= 1;
        }
        self.cur = idx;
    }

    fn coarsen(&mut self) {
        let old = std::mem::take(&mut self.done);
        let mut it = old.into_iter();
        while let Some(mut a) = it.next() {
            if let Some(b) = it.next() {
                a.merge(&b);
            }
            self.done.push(a);
        }
        self.shift += 1;
        self.cur >>= 1;
    }

    /// Records a finished request.
    pub fn record(&mut self, s: &Sample, us: u64) {
        self.record_at(s, us, Instant::now());
    }

    /// Records a request that finished at `now`.
    pub fn record_at(&mut self, s: &Sample, us: u64, now: Instant) {
        let r = &mut self.at(now).requests[s.req];
        r.requests += 1;
        r.bytes_in += s.bytes_in;
        r.bytes_out += s.bytes_out;
        if let Some(c) = s.status {
            *r.statuses.entry(c).or_default() += 1;
        }
        if let Some(e) = s.error {
            r.failures += 1;
            *r.errors.entry(e).or_default() += 1;
        }
        let _ = self.hists[s.req].record(us);
    }

    /// Records a finished iteration.
    pub fn iteration(&mut self, scenario: usize) {
        self.at(Instant::now()).scenarios[scenario].iterations += 1;
    }

    /// Records the start (and its lag) of an open-model iteration.
    pub fn started(&mut self, scenario: usize, lag: Duration) {
        let s = &mut self.at(Instant::now()).scenarios[scenario];
        let us = lag.as_micros() as u64;
        s.started += 1;
        s.lag_sum_us += us;
        s.lag_max_us = s.lag_max_us.max(us);
    }

    /// Records `n` dropped iterations (whatever their cause), counted when they are dropped.
    pub fn dropped(&mut self, scenario: usize, n: u64) {
        self.at(Instant::now()).scenarios[scenario].dropped += n;
    }

    /// Records a check result.
    pub fn check(&mut self, id: usize, pass: bool) {
        let c = &mut self.at(Instant::now()).checks[id];
        if pass {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }

    /// Also sends each closed interval to `feed`.
    pub fn with_feed(mut self, feed: Feed) -> Self {
        self.feed = Some(feed);
        self
    }

    /// Closes the interval of `now` if it is over (the feed learns of it without waiting for
    /// the next request).
    pub fn tick(&mut self, now: Instant) {
        self.at(now);
    }

    /// Sends the current interval as it stands and stops feeding (the worker is done).
    pub fn close_feed(&mut self) {
        if self.feed.is_some() {
            self.fold_current();
            self.feed = None;
        }
    }

    /// Closes the current interval: returns the finished intervals and the interval length.
    pub fn finish(mut self) -> (u64, u32, Vec<Slot>) {
        self.fold_current();
        (self.base_us, self.shift, self.done)
    }
}

/// VU samples taken by the run's main thread (the most active VUs seen per interval).
#[derive(Clone, Debug, Default)]
pub(crate) struct VuSamples {
    /// By base interval index.
    pub max_active: Vec<u64>,
}

impl VuSamples {
    /// Notes `active` VUs `elapsed` into the run.
    pub(crate) fn sample(&mut self, elapsed: Duration, interval: Duration, active: u64) {
        let base = interval.max(MIN_INTERVAL).as_micros() as u64;
        let idx = (elapsed.as_micros() as u64 / base) as usize;
        // Bounded like the timeline: beyond a day of 10 ms intervals, stop sampling.
        if idx > 10_000_000 {
            return;
        }
        if self.max_active.len() <= idx {
            self.max_active.resize(idx + 1, 0);
        }
        self.max_active[idx] = self.max_active[idx].max(active);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ms: u64) -> Sample {
        Sample {
            req: 0,
            latency: Duration::from_millis(ms),
            status: Some(200),
            error: None,
            bytes_in: 1,
            bytes_out: 0,
            reconnected: false,
        }
    }

    #[test]
    fn intervals_split_by_time_and_sum_to_the_total() {
        let start = Instant::now();
        let mut t = Timeline::new(start, Duration::from_secs(1), 1, 1, 0);
        for i in 0..30u64 {
            let at = start + Duration::from_millis(100 * i);
            t.record_at(&sample(i + 1), (i + 1) * 1000, at);
        }
        let (_, shift, done) = t.finish();
        assert_eq!(shift, 0);
        assert_eq!(done.len(), 3);
        let counts: Vec<u64> = done.iter().map(|s| s.requests[0].requests).collect();
        assert_eq!(counts, vec![10, 10, 10]);
        let hist_total: u64 = done[1].requests[0].hist.iter().map(|p| p.1).sum();
        assert_eq!(hist_total, 10);
        // The second second held latencies 11..=20 ms.
        assert_eq!(
            done[1].requests[0].hist.first().map(|p| p.0 / 1000),
            Some(11)
        );
    }

    #[test]
    fn long_runs_coarsen_and_stay_bounded() {
        let start = Instant::now();
        let mut t = Timeline::new(start, Duration::from_millis(10), 1, 1, 0);
        let n = 5_000u64;
        for i in 0..n {
            t.record_at(&sample(1), 1000, start + Duration::from_millis(10 * i + 5));
        }
        let (_, shift, done) = t.finish();
        assert!(done.len() <= MAX_INTERVALS, "{}", done.len());
        assert_eq!(shift, 3, "5000 intervals → 625 after three doublings");
        let total: u64 = done.iter().map(|s| s.requests[0].requests).sum();
        assert_eq!(total, n);
        assert!(done.iter().all(|s| s.requests[0].requests == 8));
    }

    #[test]
    fn sparse_histograms_merge_by_value() {
        let a = vec![(1, 2), (5, 1)];
        let b = vec![(2, 1), (5, 3), (9, 1)];
        assert_eq!(merge_sparse(&a, &b), vec![(1, 2), (2, 1), (5, 4), (9, 1)]);
    }
}
