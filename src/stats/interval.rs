//! The run's timeline, as the workers record it: the exact statistics of [`crate::stats`], kept
//! per time interval (1 s by default, `[run] timeline_interval` / `--timeline-interval`).
//!
//! Each worker owns a [`Timeline`] inside its `WorkerStats` (no sharing, no locks), and it is
//! the **only** place a request is recorded: the whole-run figures (per request definition,
//! every request and the failed ones) are the sum of the intervals, added up once when the
//! worker ends ([`crate::stats::WorkerStats::take_timeline`]). One latency record per request,
//! as before the timeline existed.
//!
//! Requests are placed in the interval in which they *finished*; an iteration likewise; a check
//! in the interval of the request it checks. The current interval keeps a dense HdrHistogram per
//! request definition (and one of the failed requests, made at the first failure); when the
//! worker moves on, each is folded into a sparse list of `(value µs, count)` pairs — exact,
//! HdrHistogram's 3 significant digits — and the dense one is reset for reuse. Memory is
//! bounded: at most [`MAX_INTERVALS`] intervals are kept; when a run outlives them, neighbours
//! are merged in pairs and the interval doubles (a 1 s timeline of a 30 min run ends with 2 s
//! intervals). At the end the workers' timelines are brought to the same interval and merged.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::outcome::{ErrorKind, Sample, Wire};

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
    /// Octets on the wire, both ways.
    pub wire: Wire,
    /// Tries sent again on another connection (not failures).
    pub reconnects: u64,
    /// By status code (a handful: a list beats a map on the hot path).
    pub statuses: Vec<(u16, u64)>,
    /// By error type.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Latency (µs) of every request, as sorted `(value, count)` pairs of HdrHistogram buckets.
    pub hist: Vec<(u64, u64)>,
    /// The same for the failed requests only (empty without failures).
    pub failed_hist: Vec<(u64, u64)>,
}

/// Adds `n` to `code`'s count.
pub(crate) fn bump(statuses: &mut Vec<(u16, u64)>, code: u16, n: u64) {
    match statuses.iter_mut().find(|e| e.0 == code) {
        Some(e) => e.1 += n,
        None => statuses.push((code, n)),
    }
}

impl ReqSlot {
    pub fn merge(&mut self, o: &ReqSlot) {
        self.requests += o.requests;
        self.failures += o.failures;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.wire += o.wire;
        self.reconnects += o.reconnects;
        for (k, v) in &o.statuses {
            bump(&mut self.statuses, *k, *v);
        }
        for (k, v) in &o.errors {
            *self.errors.entry(*k).or_default() += v;
        }
        self.hist = merge_sparse(&self.hist, &o.hist);
        if !o.failed_hist.is_empty() {
            self.failed_hist = merge_sparse(&self.failed_hist, &o.failed_hist);
        }
    }
}

fn merge_sparse(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    if a.is_empty() {
        return b.to_vec();
    }
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

/// The sparse form of a dense histogram; resets the dense one for reuse.
fn take_sparse(h: &mut Histogram<u64>) -> Vec<(u64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let out = h
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect();
    h.reset();
    out
}

/// Adds sparse `(value, count)` pairs into a dense histogram (exact: each value is its bucket's
/// highest equivalent, so it lands in the bucket it came from).
pub(crate) fn add_sparse(h: &mut Histogram<u64>, pairs: &[(u64, u64)]) {
    for (v, c) in pairs {
        // Same bounds as the histogram the pairs came from: cannot fail.
        let _ = h.record_n(*v, *c);
    }
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

/// What an open-model scenario did inside its window, `[run start, run start + duration]`
/// (a capacity step's window): counted by the instant each event happened, so completions after
/// the window's end (the in-flight wait) are not counted in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// Iterations started inside the window.
    pub started: u64,
    /// Iterations completed inside the window.
    pub completed: u64,
    /// When the first iteration completed, µs after the start (`None`: none did in the window).
    pub first_done_us: Option<u64>,
}

impl Window {
    /// Adds another worker's (or segment's) counts: counts add, the first completion is the
    /// earliest.
    pub fn merge(&mut self, o: &Window) {
        self.started += o.started;
        self.completed += o.completed;
        self.first_done_us = match (self.first_done_us, o.first_done_us) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
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

/// A worker's finished timeline: the configured interval (µs), how often it was doubled, and
/// the intervals.
#[derive(Clone, Debug)]
pub struct Finished {
    /// The configured interval, µs.
    pub base_us: u64,
    /// The interval is `base_us << shift`.
    pub shift: u32,
    /// Intervals by index.
    pub slots: Vec<Slot>,
    /// By scenario index: what happened inside the scenario's window.
    pub windows: Vec<Window>,
}

/// One worker's timeline.
#[derive(Clone, Debug)]
pub struct Timeline {
    /// Live feed of closed intervals (None: nobody listens).
    feed: Option<Feed>,
    start: Instant,
    base_us: u64,
    shift: u32,
    cur: u64,
    /// When the current interval ends (a comparison per record instead of a division).
    next_at: Instant,
    slot: Slot,
    hists: Vec<Histogram<u64>>,
    failed: Vec<Option<Histogram<u64>>>,
    shape: (usize, usize, usize),
    /// Finished intervals, by index (at the current interval length).
    done: Vec<Slot>,
    /// By scenario: the end of its window (far in the future: no end).
    window_ends: Vec<Instant>,
    /// By scenario: what happened inside its window.
    windows: Vec<Window>,
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
        let base_us = interval.max(MIN_INTERVAL).as_micros() as u64;
        let mut t = Timeline {
            feed: None,
            start,
            base_us,
            shift: 0,
            cur: 0,
            next_at: start,
            slot: Slot::default(),
            hists: (0..requests).map(|_| new_hist()).collect(),
            failed: vec![None; requests],
            shape: (requests, scenarios, checks),
            done: Vec::new(),
            window_ends: Vec::new(),
            windows: vec![Window::default(); scenarios],
        };
        t.window_ends = vec![t.far(); scenarios];
        t.slot = t.empty_slot();
        t.next_at = t.end_of(0);
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

    /// The end of interval `idx` (far in the future when the clock cannot say).
    fn end_of(&self, idx: u64) -> Instant {
        let us = (idx + 1).saturating_mul(self.interval_us());
        self.start
            .checked_add(Duration::from_micros(us))
            .unwrap_or_else(|| self.far())
    }

    /// An instant no run reaches.
    fn far(&self) -> Instant {
        self.start + Duration::from_secs(86_400 * 365 * 30)
    }

    /// Counts each scenario's starts and completions inside its window, `[start, start + d]`
    /// (`None`: the whole run), besides the intervals.
    pub fn with_windows(mut self, lengths: impl IntoIterator<Item = Option<Duration>>) -> Self {
        for (end, d) in self.window_ends.iter_mut().zip(lengths) {
            if let Some(e) = d.and_then(|d| self.start.checked_add(d)) {
                *end = e;
            }
        }
        self
    }

    /// Moves to the interval of `now`, folding the current one away when it changes.
    #[inline]
    fn at(&mut self, now: Instant) -> &mut Slot {
        if now >= self.next_at {
            self.advance(now);
        }
        &mut self.slot
    }

    fn fold_current(&mut self) {
        let empty = self.empty_slot();
        let mut slot = std::mem::replace(&mut self.slot, empty);
        for (i, r) in slot.requests.iter_mut().enumerate() {
            r.hist = take_sparse(&mut self.hists[i]);
            if let Some(f) = self.failed[i].as_mut() {
                r.failed_hist = take_sparse(f);
            }
            r.statuses.sort_unstable();
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
    #[inline(never)]
    fn advance(&mut self, now: Instant) {
        let mut idx =
            now.saturating_duration_since(self.start).as_micros() as u64 / self.interval_us();
        self.fold_current();
        while idx >= MAX_INTERVALS as u64 {
            self.coarsen();
            idx >>= 1;
        }
        self.cur = idx;
        self.next_at = self.end_of(idx);
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
    #[inline]
    pub fn record_at(&mut self, s: &Sample, us: u64, now: Instant) {
        let r = &mut self.at(now).requests[s.req];
        r.requests += 1;
        r.bytes_in += s.bytes_in;
        r.bytes_out += s.bytes_out;
        r.wire += s.wire;
        r.reconnects += u64::from(s.reconnects);
        if let Some(c) = s.status {
            bump(&mut r.statuses, c, 1);
        }
        if let Some(e) = s.error {
            r.failures += 1;
            *r.errors.entry(e).or_default() += 1;
            let _ = self.failed[s.req].get_or_insert_with(new_hist).record(us);
        }
        let _ = self.hists[s.req].record(us);
    }

    /// Records a finished iteration.
    pub fn iteration(&mut self, scenario: usize) {
        let now = Instant::now();
        if now <= self.window_ends[scenario] {
            let w = &mut self.windows[scenario];
            w.completed += 1;
            if w.first_done_us.is_none() {
                w.first_done_us =
                    Some(now.saturating_duration_since(self.start).as_micros() as u64);
            }
        }
        self.at(now).scenarios[scenario].iterations += 1;
    }

    /// Records the start (and its lag) of an open-model iteration.
    pub fn started(&mut self, scenario: usize, lag: Duration) {
        let now = Instant::now();
        if now <= self.window_ends[scenario] {
            self.windows[scenario].started += 1;
        }
        let s = &mut self.at(now).scenarios[scenario];
        let us = lag.as_micros() as u64;
        s.started += 1;
        s.lag_sum_us += us;
        s.lag_max_us = s.lag_max_us.max(us);
    }

    /// Records `n` dropped iterations (whatever their cause), counted when they are dropped.
    pub fn dropped(&mut self, scenario: usize, n: u64) {
        self.at(Instant::now()).scenarios[scenario].dropped += n;
    }

    /// Records a check result, in the interval of the request it checks (the latest recorded:
    /// no clock read).
    pub fn check(&mut self, id: usize, pass: bool) {
        let c = &mut self.slot.checks[id];
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

    /// Closes the current interval: the finished intervals and the interval length.
    pub fn finish(mut self) -> Finished {
        self.fold_current();
        Finished {
            base_us: self.base_us,
            shift: self.shift,
            slots: self.done,
            windows: self.windows,
        }
    }
}

/// Load samples taken by the run's main thread a few times per interval: the most VUs and the
/// most requests in flight seen per interval (read from counters the workers keep anyway, so
/// the requests pay nothing for it).
#[derive(Clone, Debug, Default)]
pub(crate) struct VuSamples {
    /// Most active VUs, by base interval index.
    pub max_active: Vec<u64>,
    /// Most requests in flight, by base interval index.
    pub max_requests: Vec<u64>,
}

impl VuSamples {
    /// Notes `active` VUs and `requests` in flight `elapsed` into the run.
    pub(crate) fn sample(
        &mut self,
        elapsed: Duration,
        interval: Duration,
        active: u64,
        requests: u64,
    ) {
        let base = interval.max(MIN_INTERVAL).as_micros() as u64;
        let idx = (elapsed.as_micros() as u64 / base) as usize;
        // Bounded like the timeline: beyond a day of 10 ms intervals, stop sampling.
        if idx > 10_000_000 {
            return;
        }
        for (v, series) in [
            (active, &mut self.max_active),
            (requests, &mut self.max_requests),
        ] {
            if series.len() <= idx {
                series.resize(idx + 1, 0);
            }
            series[idx] = series[idx].max(v);
        }
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
            wire: Default::default(),
            reconnects: 0,
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
        let Finished {
            shift, slots: done, ..
        } = t.finish();
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
        let Finished {
            shift, slots: done, ..
        } = t.finish();
        assert!(done.len() <= MAX_INTERVALS, "{}", done.len());
        assert_eq!(shift, 3, "5000 intervals → 625 after three doublings");
        let total: u64 = done.iter().map(|s| s.requests[0].requests).sum();
        assert_eq!(total, n);
        assert!(done.iter().all(|s| s.requests[0].requests == 8));
    }

    #[test]
    fn a_window_counts_only_what_happened_inside_it() {
        let start = Instant::now();
        let mut t = Timeline::new(start, Duration::from_secs(1), 1, 2, 0)
            .with_windows([Some(Duration::from_millis(50)), None]);
        for _ in 0..3 {
            t.started(0, Duration::ZERO);
            t.iteration(0);
            t.iteration(1);
        }
        std::thread::sleep(Duration::from_millis(60));
        t.started(0, Duration::ZERO);
        t.iteration(0);
        t.iteration(1);
        let f = t.finish();
        let (w, whole) = (f.windows[0], f.windows[1]);
        assert_eq!((w.started, w.completed), (3, 3), "{w:?}");
        assert!(w.first_done_us.is_some_and(|us| us < 50_000), "{w:?}");
        assert_eq!(whole.completed, 4, "no window: the whole run");
        // Every iteration is still in the intervals.
        assert_eq!(f.slots[0].scenarios[0].iterations, 4);
        let mut m = w;
        m.merge(&Window {
            started: 1,
            completed: 2,
            first_done_us: Some(7),
        });
        assert_eq!((m.started, m.completed, m.first_done_us), (4, 5, Some(7)));
    }

    #[test]
    fn sparse_histograms_merge_by_value() {
        let a = vec![(1, 2), (5, 1)];
        let b = vec![(2, 1), (5, 3), (9, 1)];
        assert_eq!(merge_sparse(&a, &b), vec![(1, 2), (2, 1), (5, 4), (9, 1)]);
    }
}
