//! Exact local statistics for the summary and thresholds, independent of metric export.
//!
//! Each worker thread owns a [`WorkerStats`] (no sharing, no locks); at the end they are merged
//! into one [`Aggregate`]. Latencies go into HdrHistograms with 3 significant digits (0.1%),
//! recorded in microseconds from 1 µs to 1 hour. A small atomic log-bucket histogram per worker
//! ([`Live`]) feeds the progress line.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::outcome::{ErrorKind, Sample, Wire};

pub(crate) mod hdr;
pub(crate) mod interval;

const HIST_MAX_US: u64 = 3_600_000_000;

/// An empty latency histogram (µs) with the bounds every stampede histogram shares.
pub(crate) fn new_hist() -> Histogram<u64> {
    // Bounds are constants within hdrhistogram's limits; this cannot fail.
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).unwrap_or_else(|_| unreachable!())
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, HIST_MAX_US)
}

/// Statistics of one request definition.
#[derive(Clone, Debug)]
pub struct RequestStats {
    /// Latency histogram (µs), every request.
    pub latency: Histogram<u64>,
    /// Latency histogram (µs) of the failed requests only, created at the first failure (a
    /// run without failures pays nothing); successful = `latency` − this (see the report).
    pub failed_latency: Option<Histogram<u64>>,
    /// Requests sent.
    pub requests: u64,
    /// Requests with an error type.
    pub failures: u64,
    /// Response body bytes.
    pub bytes_in: u64,
    /// Request body bytes.
    pub bytes_out: u64,
    /// Octets on the wire, both ways (HTTP heads, bodies and framing; see [`Wire`]).
    pub wire: Wire,
    /// Count by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Count by error type.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Tries sent again on another connection: the server had closed the kept-alive one, or
    /// (HTTP/2) did not process the request (not failures; see `Sample::reconnects`).
    pub reconnects: u64,
}

impl RequestStats {
    fn new() -> Self {
        RequestStats {
            latency: new_hist(),
            failed_latency: None,
            requests: 0,
            failures: 0,
            bytes_in: 0,
            bytes_out: 0,
            wire: Wire::default(),
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
            reconnects: 0,
        }
    }

    /// Records one request (`us`: its latency in µs).
    fn record(&mut self, s: &Sample, us: u64) {
        self.requests += 1;
        let _ = self.latency.record(us);
        self.bytes_in += s.bytes_in;
        self.bytes_out += s.bytes_out;
        self.wire += s.wire;
        self.reconnects += u64::from(s.reconnects);
        if let Some(code) = s.status {
            *self.statuses.entry(code).or_default() += 1;
        }
        if let Some(e) = s.error {
            self.failures += 1;
            *self.errors.entry(e).or_default() += 1;
            let _ = self.failed_latency.get_or_insert_with(new_hist).record(us);
        }
    }

    /// Adds one interval of the timeline.
    fn add_slot(&mut self, r: &interval::ReqSlot) {
        if r.requests == 0 {
            return;
        }
        self.requests += r.requests;
        self.failures += r.failures;
        self.bytes_in += r.bytes_in;
        self.bytes_out += r.bytes_out;
        self.wire += r.wire;
        self.reconnects += r.reconnects;
        for (k, v) in &r.statuses {
            *self.statuses.entry(*k).or_default() += v;
        }
        for (k, v) in &r.errors {
            *self.errors.entry(*k).or_default() += v;
        }
        interval::add_sparse(&mut self.latency, &r.hist);
        if !r.failed_hist.is_empty() {
            interval::add_sparse(
                self.failed_latency.get_or_insert_with(new_hist),
                &r.failed_hist,
            );
        }
    }

    fn merge(&mut self, o: &RequestStats) {
        // Same bounds on both sides: add cannot fail.
        let _ = self.latency.add(&o.latency);
        if let Some(f) = &o.failed_latency {
            let _ = self.failed_latency.get_or_insert_with(new_hist).add(f);
        }
        self.requests += o.requests;
        self.failures += o.failures;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.wire += o.wire;
        self.reconnects += o.reconnects;
        for (k, v) in &o.statuses {
            *self.statuses.entry(*k).or_default() += v;
        }
        for (k, v) in &o.errors {
            *self.errors.entry(*k).or_default() += v;
        }
    }
}

/// Why an open-model iteration was dropped (started more than 50 ms after its scheduled time,
/// or not at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// No VU was free at the scheduled time: the target is slow or there are too few VUs.
    NoVu,
    /// The generator itself fell behind its schedule: stampede was paused or starved of CPU
    /// when the iteration was due.
    Generator,
}

impl DropReason {
    /// Both reasons, in a fixed order.
    pub const ALL: [DropReason; 2] = [DropReason::NoVu, DropReason::Generator];

    /// The `stampede.drop.reason` attribute value and the summary's key suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::NoVu => "no_vu",
            DropReason::Generator => "generator",
        }
    }
}

/// Dropped iterations by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// No free VU.
    pub no_vu: u64,
    /// The generator fell behind.
    pub generator: u64,
}

impl Drops {
    /// Every dropped iteration.
    pub fn total(&self) -> u64 {
        self.no_vu + self.generator
    }

    /// The count for one reason.
    pub fn get(&self, r: DropReason) -> u64 {
        match r {
            DropReason::NoVu => self.no_vu,
            DropReason::Generator => self.generator,
        }
    }

    fn add(&mut self, o: &Drops) {
        self.no_vu += o.no_vu;
        self.generator += o.generator;
    }
}

/// Per-scenario iteration counts.
#[derive(Clone, Debug)]
pub struct ScenarioStats {
    /// Completed iterations.
    pub iterations: u64,
    /// Dropped iterations (open model), by reason.
    pub dropped: Drops,
    /// Iteration duration (µs).
    pub duration: Histogram<u64>,
    /// Scheduling lag of open-model iterations (µs): actual start − scheduled start.
    pub lag: Histogram<u64>,
    /// Starts and completions inside the scenario's window (from the timeline).
    pub window: interval::Window,
}

impl ScenarioStats {
    fn new() -> Self {
        ScenarioStats {
            iterations: 0,
            dropped: Drops::default(),
            duration: new_hist(),
            lag: new_hist(),
            window: interval::Window::default(),
        }
    }
}

/// One worker's statistics.
#[derive(Clone, Debug)]
pub struct WorkerStats {
    /// By request id.
    pub requests: Vec<RequestStats>,
    /// By scenario index.
    pub scenarios: Vec<ScenarioStats>,
    /// (passes, fails) by check id.
    pub checks: Vec<(u64, u64)>,
    /// The same, per time interval (taken out before merging; see [`interval`]).
    pub timeline: Option<interval::Timeline>,
}

impl WorkerStats {
    /// Empty stats for a plan's shape.
    pub fn new(requests: usize, scenarios: usize, checks: usize) -> Self {
        WorkerStats {
            requests: (0..requests).map(|_| RequestStats::new()).collect(),
            scenarios: (0..scenarios).map(|_| ScenarioStats::new()).collect(),
            checks: vec![(0, 0); checks],
            timeline: None,
        }
    }

    /// Keeps a timeline: from now on requests, iterations and checks are recorded there only,
    /// and [`WorkerStats::take_timeline`] adds them up.
    pub fn with_timeline(mut self, t: interval::Timeline) -> Self {
        self.timeline = Some(t);
        self
    }

    /// Records one request: once, into the timeline's current interval when there is one.
    #[inline]
    pub fn record(&mut self, s: &Sample) {
        let us = micros(s.latency);
        match self.timeline.as_mut() {
            Some(t) => t.record(s, us),
            None => self.requests[s.req].record(s, us),
        }
    }

    /// Records a finished iteration.
    pub fn iteration(&mut self, scenario: usize, took: Duration) {
        let s = &mut self.scenarios[scenario];
        match self.timeline.as_mut() {
            Some(t) => t.iteration(scenario),
            None => s.iterations += 1,
        }
        let _ = s.duration.record(micros(took));
    }

    /// Records an open-model start lag.
    pub fn lag(&mut self, scenario: usize, lag: Duration) {
        if let Some(t) = self.timeline.as_mut() {
            t.started(scenario, lag);
        }
        let _ = self.scenarios[scenario].lag.record(micros(lag));
    }

    /// Records dropped iterations.
    pub fn dropped(&mut self, scenario: usize, d: &Drops) {
        if let Some(t) = self.timeline.as_mut() {
            t.dropped(scenario, d.total());
        }
        self.scenarios[scenario].dropped.add(d);
    }

    /// Records a check result.
    pub fn check(&mut self, id: usize, pass: bool) {
        let c = match self.timeline.as_mut() {
            Some(t) => return t.check(id, pass),
            None => &mut self.checks[id],
        };
        if pass {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }

    /// Ends the timeline: adds its intervals up into the whole-run statistics (requests,
    /// iterations, checks) and returns them.
    pub fn take_timeline(&mut self) -> Option<interval::Finished> {
        let f = self.timeline.take()?.finish();
        for slot in &f.slots {
            for (a, b) in self.requests.iter_mut().zip(&slot.requests) {
                a.add_slot(b);
            }
            for (a, b) in self.scenarios.iter_mut().zip(&slot.scenarios) {
                a.iterations += b.iterations;
            }
            for (a, b) in self.checks.iter_mut().zip(&slot.checks) {
                a.0 += b.0;
                a.1 += b.1;
            }
        }
        for (a, w) in self.scenarios.iter_mut().zip(&f.windows) {
            a.window.merge(w);
        }
        Some(f)
    }

    /// Adds another worker's stats.
    pub fn merge(&mut self, o: &WorkerStats) {
        for (a, b) in self.requests.iter_mut().zip(&o.requests) {
            a.merge(b);
        }
        for (a, b) in self.scenarios.iter_mut().zip(&o.scenarios) {
            a.iterations += b.iterations;
            a.dropped.add(&b.dropped);
            let _ = a.duration.add(&b.duration);
            let _ = a.lag.add(&b.lag);
            a.window.merge(&b.window);
        }
        for (a, b) in self.checks.iter_mut().zip(&o.checks) {
            a.0 += b.0;
            a.1 += b.1;
        }
    }
}

/// Latency figures in seconds.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, PartialEq)]
pub struct Latency {
    /// Fastest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

/// Latency figures of a histogram (µs) in seconds.
pub(crate) fn latency_of(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    let s = |us: u64| us as f64 / 1e6;
    Latency {
        min: s(h.min()),
        mean: h.mean() / 1e6,
        p50: s(h.value_at_quantile(0.50)),
        p90: s(h.value_at_quantile(0.90)),
        p95: s(h.value_at_quantile(0.95)),
        p99: s(h.value_at_quantile(0.99)),
        max: s(h.max()),
    }
}

/// A merged view of a histogram set.
pub(crate) fn merged_latency<'a>(
    hs: impl IntoIterator<Item = &'a Histogram<u64>>,
) -> Histogram<u64> {
    let mut out = new_hist();
    for h in hs {
        let _ = out.add(h);
    }
    out
}

const LIVE_BUCKETS: usize = 256;

/// Live counters one worker updates and the progress line reads.
#[derive(Debug)]
pub(crate) struct Live {
    /// Requests finished.
    pub requests: AtomicU64,
    /// Requests started (in flight: `started - requests`).
    started: AtomicU64,
    /// Failures.
    pub failures: AtomicU64,
    /// Iterations dropped for lack of a free VU.
    pub dropped_no_vu: AtomicU64,
    /// Iterations dropped because the generator fell behind.
    pub dropped_generator: AtomicU64,
    /// The latest failure: `(request id + 1) << 32 | ErrorKind::key()`, 0 before any (read by
    /// the display's "nearly everything fails" warning).
    pub last_error: AtomicU64,
    buckets: Vec<AtomicU64>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            requests: AtomicU64::new(0),
            started: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            dropped_no_vu: AtomicU64::new(0),
            dropped_generator: AtomicU64::new(0),
            last_error: AtomicU64::new(0),
            buckets: (0..LIVE_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// Log-spaced bucket of a latency: 8 buckets per power of two of microseconds.
fn live_bucket(us: u64) -> usize {
    let us = us.max(1);
    let log = 63 - us.leading_zeros() as usize;
    let frac = if log >= 3 {
        ((us >> (log - 3)) & 7) as usize
    } else {
        ((us << (3 - log)) & 7) as usize
    };
    (log * 8 + frac).min(LIVE_BUCKETS - 1)
}

fn live_bucket_upper_us(b: usize) -> f64 {
    let log = b / 8;
    let frac = (b % 8) as f64;
    (2f64).powi(log as i32) * (1.0 + (frac + 1.0) / 8.0)
}

impl Live {
    /// Notes a request's start. Only this worker writes the counter: a plain load and store,
    /// no locked instruction.
    #[inline]
    pub(crate) fn start(&self) {
        let n = self.started.load(Ordering::Relaxed);
        self.started.store(n + 1, Ordering::Relaxed);
    }

    /// Requests in flight (started, not yet recorded).
    pub(crate) fn in_flight(&self) -> u64 {
        // Read finished first: a request finishing in between is not counted twice.
        let done = self.requests.load(Ordering::Relaxed);
        self.started.load(Ordering::Relaxed).saturating_sub(done)
    }

    /// Records one request (relaxed atomics: only this worker writes).
    pub(crate) fn record(&self, s: &Sample) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = s.error {
            self.failures.fetch_add(1, Ordering::Relaxed);
            let packed = ((s.req as u64 + 1) << 32) | u64::from(e.key());
            self.last_error.store(packed, Ordering::Relaxed);
        } else {
            // Live latency, like the summary's, is that of successful requests.
            self.buckets[live_bucket(s.latency.as_micros() as u64)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records dropped iterations (relaxed atomics: only this worker writes).
    pub(crate) fn dropped(&self, d: &Drops) {
        if d.no_vu > 0 {
            self.dropped_no_vu.fetch_add(d.no_vu, Ordering::Relaxed);
        }
        if d.generator > 0 {
            self.dropped_generator
                .fetch_add(d.generator, Ordering::Relaxed);
        }
    }

    /// Dropped iterations so far.
    pub(crate) fn drops(&self) -> Drops {
        Drops {
            no_vu: self.dropped_no_vu.load(Ordering::Relaxed),
            generator: self.dropped_generator.load(Ordering::Relaxed),
        }
    }

    /// Adds the bucket counts into `into`.
    pub(crate) fn snapshot_into(&self, into: &mut [u64]) {
        for (i, b) in self.buckets.iter().enumerate() {
            into[i] += b.load(Ordering::Relaxed);
        }
    }

    /// Bucket count, for sizing snapshot buffers.
    pub(crate) fn buckets() -> usize {
        LIVE_BUCKETS
    }
}

/// Quantile (seconds, bucket upper bound) of the difference of two live snapshots.
pub(crate) fn live_quantile(now: &[u64], before: &[u64], q: f64) -> Option<f64> {
    let deltas: Vec<u64> = now
        .iter()
        .zip(before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let total: u64 = deltas.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, d) in deltas.iter().enumerate() {
        seen += d;
        if seen >= rank {
            return Some(live_bucket_upper_us(i) / 1e6);
        }
    }
    None
}

/// The run's clock: when it started and, once the workers are done, how long it lasted. The
/// `stampede.run.duration` gauge reads it, so its last exported value equals the summary's
/// `duration_s`.
#[derive(Debug)]
pub struct RunClock {
    /// When the run started.
    pub start: tokio::time::Instant,
    end_us: AtomicU64,
}

impl RunClock {
    /// A clock started now.
    pub fn start() -> Self {
        RunClock {
            start: tokio::time::Instant::now(),
            end_us: AtomicU64::new(u64::MAX),
        }
    }

    /// Freezes the duration (the workers are done); returns it.
    pub fn stop(&self) -> Duration {
        let d = self.start.elapsed();
        self.end_us.store(d.as_micros() as u64, Ordering::Relaxed);
        d
    }

    /// Elapsed so far, or the frozen duration after [`RunClock::stop`].
    pub fn elapsed(&self) -> Duration {
        match self.end_us.load(Ordering::Relaxed) {
            u64::MAX => self.start.elapsed(),
            us => Duration::from_micros(us),
        }
    }
}

/// VU counts per (worker, scenario), written by each worker and summed by readers, so VUs
/// starting and finishing iterations never contend on one cache line across threads.
#[derive(Debug)]
pub struct VuCounts {
    scenarios: usize,
    active: Vec<AtomicI64>,
    allocated: Vec<AtomicI64>,
}

impl VuCounts {
    /// Counters for `workers` × `scenarios`.
    pub fn new(workers: usize, scenarios: usize) -> Self {
        let n = workers * scenarios;
        VuCounts {
            scenarios,
            active: (0..n).map(|_| AtomicI64::new(0)).collect(),
            allocated: (0..n).map(|_| AtomicI64::new(0)).collect(),
        }
    }

    /// Adds `d` to the active VUs of a scenario on a worker.
    pub fn add_active(&self, worker: usize, scenario: usize, d: i64) {
        self.active[worker * self.scenarios + scenario].fetch_add(d, Ordering::Relaxed);
    }

    /// Adds `d` to the allocated VUs of a scenario on a worker.
    pub fn add_allocated(&self, worker: usize, scenario: usize, d: i64) {
        self.allocated[worker * self.scenarios + scenario].fetch_add(d, Ordering::Relaxed);
    }

    fn sum(cells: &[AtomicI64], scenarios: usize, scenario: usize) -> i64 {
        cells
            .iter()
            .skip(scenario)
            .step_by(scenarios.max(1))
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Active VUs of a scenario.
    pub fn active(&self, scenario: usize) -> i64 {
        Self::sum(&self.active, self.scenarios, scenario)
    }

    /// Allocated VUs of a scenario.
    pub fn allocated(&self, scenario: usize) -> i64 {
        Self::sum(&self.allocated, self.scenarios, scenario)
    }

    /// Active VUs of all scenarios.
    pub fn total_active(&self) -> i64 {
        (0..self.scenarios).map(|s| self.active(s)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(
        ms: u64,
        status: Option<u16>,
        error: Option<ErrorKind>,
        bytes_in: u64,
        bytes_out: u64,
    ) -> Sample {
        Sample {
            req: 0,
            latency: Duration::from_millis(ms),
            status,
            error,
            bytes_in,
            bytes_out,
            wire: Wire::default(),
            reconnects: 0,
        }
    }

    #[test]
    fn percentiles_are_exact_within_hdr_precision() {
        let mut w = WorkerStats::new(1, 1, 0);
        for ms in 1..=1000u64 {
            w.record(&sample(ms, Some(200), None, 10, 0));
        }
        let l = latency_of(&w.requests[0].latency);
        assert!((l.p50 - 0.500).abs() < 0.001, "{l:?}");
        assert!((l.p99 - 0.990).abs() < 0.001, "{l:?}");
        assert!((l.max - 1.000).abs() < 0.001, "{l:?}");
        assert!((l.min - 0.001).abs() < 0.0001, "{l:?}");
    }

    #[test]
    fn merge_adds_everything() {
        let mut a = WorkerStats::new(1, 1, 1);
        let mut b = WorkerStats::new(1, 1, 1);
        a.record(&sample(1, Some(200), None, 1, 2));
        b.record(&sample(2, Some(500), Some(ErrorKind::Status(500)), 3, 4));
        b.record(&sample(2, None, Some(ErrorKind::Timeout), 0, 4));
        b.check(0, false);
        a.check(0, true);
        b.iteration(0, Duration::from_millis(3));
        b.dropped(
            0,
            &Drops {
                no_vu: 2,
                generator: 3,
            },
        );
        a.dropped(
            0,
            &Drops {
                no_vu: 1,
                generator: 0,
            },
        );
        a.merge(&b);
        let r = &a.requests[0];
        assert_eq!(
            (r.requests, r.failures, r.bytes_in, r.bytes_out),
            (3, 2, 4, 10)
        );
        assert_eq!(r.statuses.get(&500), Some(&1));
        assert_eq!(r.errors.get(&ErrorKind::Timeout), Some(&1));
        assert_eq!(r.latency.len(), 3);
        assert_eq!(a.checks[0], (1, 1));
        assert_eq!(a.scenarios[0].iterations, 1);
        assert_eq!(
            a.scenarios[0].dropped,
            Drops {
                no_vu: 3,
                generator: 3
            }
        );
        assert_eq!(a.scenarios[0].dropped.total(), 6);
    }

    #[test]
    fn the_timeline_adds_up_to_exactly_what_direct_recording_gives() {
        let start = tokio::time::Instant::now();
        let tl = interval::Timeline::new(start, Duration::from_millis(10), 2, 1, 1);
        let mut with = WorkerStats::new(2, 1, 1).with_timeline(tl);
        let mut direct = WorkerStats::new(2, 1, 1);
        for i in 0..600u64 {
            let mut s = match i % 7 {
                0 => sample(900 + i, Some(503), Some(ErrorKind::Status(503)), 5, 1),
                1 => sample(i % 40, None, Some(ErrorKind::Timeout), 0, 1),
                _ => sample(1 + (i * 37) % 250, Some(200), None, 100 + i, 0),
            };
            s.req = (i % 2) as usize;
            s.reconnects = u8::from(i % 11 == 0);
            for w in [&mut with, &mut direct] {
                w.record(&s);
                w.check(0, i % 5 != 0);
                w.iteration(0, Duration::from_millis(i % 13));
            }
            if i % 100 == 0 {
                // Across several intervals.
                std::thread::sleep(Duration::from_millis(12));
            }
        }
        let f = with.take_timeline().expect("timeline");
        assert!(f.slots.len() >= 6, "{} intervals", f.slots.len());
        assert!(with.take_timeline().is_none());
        for (a, b) in with.requests.iter().zip(&direct.requests) {
            assert_eq!(
                (
                    a.requests,
                    a.failures,
                    a.bytes_in,
                    a.bytes_out,
                    a.reconnects
                ),
                (
                    b.requests,
                    b.failures,
                    b.bytes_in,
                    b.bytes_out,
                    b.reconnects
                )
            );
            assert_eq!(a.statuses, b.statuses);
            assert_eq!(a.errors, b.errors);
            assert_eq!(a.latency, b.latency);
            assert_eq!(a.failed_latency, b.failed_latency);
            assert_eq!(latency_of(&a.latency), latency_of(&b.latency));
        }
        assert_eq!(with.checks, direct.checks);
        assert_eq!(with.scenarios[0].iterations, direct.scenarios[0].iterations);
        assert_eq!(with.scenarios[0].duration, direct.scenarios[0].duration);
    }

    #[test]
    fn live_quantiles_bracket_the_truth() {
        let live = Live::default();
        let mut before = vec![0; Live::buckets()];
        live.snapshot_into(&mut before);
        for ms in 1..=100u64 {
            live.record(&sample(ms, Some(200), None, 0, 0));
        }
        let mut now = vec![0; Live::buckets()];
        live.snapshot_into(&mut now);
        let p99 = live_quantile(&now, &before, 0.99).unwrap();
        assert!((0.099..=0.099 * 1.13).contains(&p99), "{p99}");
        assert!(live_quantile(&before, &before, 0.99).is_none());
    }
}
