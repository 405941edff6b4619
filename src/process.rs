//! The generator's own process: CPU time, CPU utilization and resident memory.
//!
//! A load generator that runs out of CPU measures itself: requests start late, responses are
//! read late, and the latencies grow with the generator's queue, not the target's. stampede
//! therefore watches its own process. [`Monitor`] is sampled about once a second (never per
//! request) from `getrusage(RUSAGE_SELF)` (user and system CPU time of every thread) and
//! `/proc/self/statm` (resident pages); the metrics layer exports the readings as the OTel
//! semantic-convention instruments `process.cpu.time`, `process.cpu.utilization` and
//! `process.memory.usage`, and the summary gets a [`Generator`] object that says whether the
//! generator was CPU-bound.
//!
//! A generator can also be short of CPU that other processes on the same cores take: then its
//! own utilization stays low while its requests wait. So the monitor also reads how busy the
//! load-generating threads were (the tokio runtimes' busy time: running tasks, or ready to and
//! waiting for a core, as opposed to parked with nothing to do); threads that never idle are
//! the bottleneck too.
//!
//! Utilization is CPU time over wall time **and the cores the process may use**
//! ([`std::thread::available_parallelism`]: the affinity mask, e.g. `taskset`, and a cgroup
//! CPU quota, e.g. a Kubernetes CPU limit). The readings are of the whole process: in
//! `stampede demo`, which serves its embedded target in the same process, they include the
//! target.

use std::sync::{Arc, Mutex};

use std::time::{Duration, Instant};
use tokio::runtime::RuntimeMetrics;

use crate::busy::Idle;

use serde::Serialize;

/// How often [`Monitor::sample`] is meant to be called.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// A generator whose busiest sampling interval used at least this fraction of its cores is
/// CPU-bound.
pub const CPU_BOUND_AT: f64 = 0.9;

/// Intervals shorter than this (the last, cut one) do not count for the peak, unless the run
/// had no other.
const MIN_INTERVAL: Duration = Duration::from_millis(500);

/// CPU time of the process, seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTimes {
    /// In user mode.
    pub user: f64,
    /// In kernel mode on behalf of the process.
    pub system: f64,
}

impl CpuTimes {
    /// User plus system.
    pub fn total(&self) -> f64 {
        self.user + self.system
    }
}

/// The CPU time the process has used so far (all threads, since it started).
pub fn cpu_times() -> CpuTimes {
    let (ru, ok) = rusage();
    if !ok {
        return CpuTimes::default();
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    CpuTimes {
        user: secs(ru.ru_utime),
        system: secs(ru.ru_stime),
    }
}

fn rusage() -> (libc::rusage, bool) {
    // SAFETY: getrusage writes a `rusage` into the zeroed struct we own; RUSAGE_SELF is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0;
    (ru, ok)
}

/// The resident set size now, bytes (`None` where `/proc/self/statm` cannot be read).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok().filter(|p| *p > 0).unwrap_or(4096))
}

/// The largest resident set size the process has had, bytes (`ru_maxrss`, KiB on Linux).
pub fn peak_rss_bytes() -> u64 {
    let (ru, ok) = rusage();
    if ok {
        u64::try_from(ru.ru_maxrss).unwrap_or(0) * 1024
    } else {
        0
    }
}

/// The cores this process may use (affinity mask and cgroup quota), at least 1.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What the summary says about the generator itself (`generator` in the summary JSON).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Generator {
    /// Cores the process may use (affinity mask, cgroup quota).
    pub cores: usize,
    /// CPU time used during the run, seconds (user + system).
    pub cpu_s: f64,
    /// Of which in user mode.
    pub cpu_user_s: f64,
    /// Of which in kernel mode.
    pub cpu_system_s: f64,
    /// CPU time over the run's wall time and `cores` (0–1).
    pub cpu_utilization_mean: f64,
    /// The busiest sampling interval's utilization (0–1 of `cores`).
    pub cpu_utilization_peak: f64,
    /// The busiest sampling interval's share of time the load-generating threads were busy
    /// (running tasks or waiting for a core to run them; not parked idle, not busy polling
    /// with nothing to do), 0–1.
    pub busy_peak: f64,
    /// Seconds the load threads spent busy polling with nothing to do (`--busy-poll`): part
    /// of `cpu_s`, left out of `cpu_bound`.
    pub busy_poll_idle_s: f64,
    /// Length of the sampling intervals, seconds.
    pub sample_interval_s: f64,
    /// Resident set size at the end, bytes.
    pub memory_bytes: u64,
    /// Largest resident set size of the process, bytes.
    pub memory_peak_bytes: u64,
    /// `cpu_utilization_peak` less the idle polling, or `busy_peak`, reached
    /// [`CPU_BOUND_AT`]: the results may measure the generator, not the target.
    pub cpu_bound: bool,
}

/// Samples the process's CPU use over a run; cheap to share (one lock, taken about once a
/// second and at each metric collection).
#[derive(Debug)]
pub struct Monitor {
    cores: usize,
    started: Instant,
    start_cpu: CpuTimes,
    state: Mutex<State>,
    /// The load-generating runtimes, with their busy time and idle polling at the last sample.
    runtimes: Mutex<Vec<Watched>>,
}

/// One load-generating runtime.
#[derive(Debug)]
struct Watched {
    metrics: RuntimeMetrics,
    /// What its worker polled with nothing to do (`crate::busy`).
    idle: Arc<Idle>,
    busy: Duration,
    /// `idle` at the last sample: wall, CPU (ns).
    idle_seen: (u64, u64),
}

#[derive(Debug)]
struct State {
    at: Instant,
    cpu: CpuTimes,
    /// The last complete interval's utilization by mode (user, system), 0–1 of the cores.
    last: CpuTimes,
    peak: f64,
    /// The busiest interval's utilization less the idle polling.
    work_peak: f64,
    busy_peak: f64,
    /// Idle polling over the whole run.
    idle_total: Duration,
    intervals: u32,
    finished: Option<Generator>,
}

impl Default for Monitor {
    fn default() -> Self {
        Self::start()
    }
}

impl Monitor {
    /// Starts watching now.
    pub fn start() -> Monitor {
        Self::with_cores(available_cores())
    }

    fn with_cores(cores: usize) -> Monitor {
        let now = Instant::now();
        let cpu = cpu_times();
        Monitor {
            cores: cores.max(1),
            started: now,
            start_cpu: cpu,
            state: Mutex::new(State {
                at: now,
                cpu,
                last: CpuTimes::default(),
                peak: 0.0,
                work_peak: 0.0,
                busy_peak: 0.0,
                idle_total: Duration::ZERO,
                intervals: 0,
                finished: None,
            }),
            runtimes: Mutex::new(Vec::new()),
        }
    }

    /// Watches how busy a load-generating runtime is (a worker thread's, when it starts);
    /// `idle`: what its worker polls with nothing to do.
    pub fn add_runtime(&self, metrics: RuntimeMetrics, idle: Arc<Idle>) {
        let busy = busy_of(&metrics);
        let idle_seen = idle.seen();
        self.runtimes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Watched {
                metrics,
                idle,
                busy,
                idle_seen,
            });
    }

    /// Busy time the runtimes added since the last call less their idle polling's wall time,
    /// how many there are, and the idle polling's CPU time.
    fn busy_since_last(&self) -> (Option<(Duration, usize)>, Duration) {
        let mut rts = self.runtimes.lock().unwrap_or_else(|p| p.into_inner());
        let mut added = Duration::ZERO;
        let mut idle_cpu = Duration::ZERO;
        for w in rts.iter_mut() {
            let busy = busy_of(&w.metrics);
            let seen = w.idle.seen();
            let wall = Duration::from_nanos(seen.0.saturating_sub(w.idle_seen.0));
            idle_cpu += Duration::from_nanos(seen.1.saturating_sub(w.idle_seen.1));
            added += busy.saturating_sub(w.busy).saturating_sub(wall);
            w.busy = busy;
            w.idle_seen = seen;
        }
        ((!rts.is_empty()).then_some((added, rts.len())), idle_cpu)
    }

    /// The cores the utilization is relative to.
    pub fn cores(&self) -> usize {
        self.cores
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes the current interval (call about every [`SAMPLE_EVERY`]).
    pub fn sample(&self) {
        self.sample_at(Instant::now(), cpu_times(), false);
    }

    fn sample_at(&self, now: Instant, cpu: CpuTimes, last: bool) {
        let (busy, idle) = {
            let st = self.lock();
            let wall = now.saturating_duration_since(st.at);
            if wall.is_zero() || (wall < MIN_INTERVAL && !(last && st.intervals == 0)) {
                return;
            }
            drop(st);
            self.busy_since_last()
        };
        self.close_interval(now, cpu, busy, idle);
    }

    /// `idle`: the load threads' CPU time polling with nothing to do during the interval.
    fn close_interval(
        &self,
        now: Instant,
        cpu: CpuTimes,
        busy: Option<(Duration, usize)>,
        idle: Duration,
    ) {
        let mut st = self.lock();
        let wall = now.saturating_duration_since(st.at);
        if wall.is_zero() {
            return;
        }
        if let Some((b, n)) = busy {
            let share = b.as_secs_f64() / (wall.as_secs_f64() * n as f64);
            st.busy_peak = st.busy_peak.max(share.min(1.0));
        }
        let cap = wall.as_secs_f64() * self.cores as f64;
        let u = CpuTimes {
            user: ((cpu.user - st.cpu.user) / cap).max(0.0),
            system: ((cpu.system - st.cpu.system) / cap).max(0.0),
        };
        st.peak = st.peak.max(u.total());
        st.work_peak = st
            .work_peak
            .max((u.total() - idle.as_secs_f64() / cap).max(0.0));
        st.idle_total += idle;
        st.last = u;
        st.intervals += 1;
        st.at = now;
        st.cpu = cpu;
    }

    /// The last complete interval's utilization by mode, 0–1 of [`Monitor::cores`].
    pub fn utilization(&self) -> CpuTimes {
        self.lock().last
    }

    /// Ends the watch (a second call returns the same figures).
    pub fn finish(&self) -> Generator {
        if let Some(g) = &self.lock().finished {
            return g.clone();
        }
        let (now, cpu) = (Instant::now(), cpu_times());
        self.sample_at(now, cpu, true);
        let g = self.figures(now, cpu, rss_bytes().unwrap_or(0), peak_rss_bytes());
        self.lock().finished = Some(g.clone());
        g
    }

    fn figures(&self, now: Instant, cpu: CpuTimes, rss: u64, peak_rss: u64) -> Generator {
        let st = self.lock();
        let wall = now
            .saturating_duration_since(self.started)
            .as_secs_f64()
            .max(1e-9);
        let used = CpuTimes {
            user: (cpu.user - self.start_cpu.user).max(0.0),
            system: (cpu.system - self.start_cpu.system).max(0.0),
        };
        let mean = used.total() / (wall * self.cores as f64);
        let work_mean =
            (used.total() - st.idle_total.as_secs_f64()).max(0.0) / (wall * self.cores as f64);
        // A run shorter than one interval: its only interval is the whole run.
        let (peak, work_peak) = if st.intervals == 0 {
            (mean, work_mean)
        } else {
            (st.peak.max(mean), st.work_peak.max(work_mean))
        };
        Generator {
            cores: self.cores,
            cpu_s: used.total(),
            cpu_user_s: used.user,
            cpu_system_s: used.system,
            cpu_utilization_mean: mean,
            cpu_utilization_peak: peak,
            busy_peak: st.busy_peak,
            busy_poll_idle_s: st.idle_total.as_secs_f64(),
            sample_interval_s: SAMPLE_EVERY.as_secs_f64(),
            memory_bytes: rss,
            memory_peak_bytes: peak_rss.max(rss),
            // With a hair of slack: CPU seconds are sums of floats (90 % may come out 0.8999…).
            cpu_bound: work_peak >= CPU_BOUND_AT - 1e-9 || st.busy_peak >= CPU_BOUND_AT - 1e-9,
        }
    }
}

fn busy_of(m: &RuntimeMetrics) -> Duration {
    (0..m.num_workers())
        .map(|w| m.worker_total_busy_duration(w))
        .sum()
}

/// Samples `monitor` every [`SAMPLE_EVERY`] until the task is dropped or aborted.
pub async fn sample_every(monitor: std::sync::Arc<Monitor>) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        monitor.sample();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn cpu(user: f64, system: f64) -> CpuTimes {
        CpuTimes { user, system }
    }

    #[test]
    fn utilization_is_cpu_time_over_wall_time_and_cores() {
        let m = Monitor::with_cores(2);
        let t0 = m.started;
        let c0 = m.start_cpu;
        // 1 s: 1.5 s user + 0.3 s system on 2 cores = 90 %.
        m.sample_at(
            t0 + Duration::from_secs(1),
            cpu(c0.user + 1.5, c0.system + 0.3),
            false,
        );
        let u = m.utilization();
        assert!((u.user - 0.75).abs() < 1e-9, "{u:?}");
        assert!((u.system - 0.15).abs() < 1e-9, "{u:?}");
        // 3 s more, idle.
        let end = t0 + Duration::from_secs(4);
        m.sample_at(end, cpu(c0.user + 1.5, c0.system + 0.3), false);
        assert_eq!(m.utilization(), cpu(0.0, 0.0));
        let g = m.figures(end, cpu(c0.user + 1.5, c0.system + 0.3), 10, 20);
        assert!((g.cpu_s - 1.8).abs() < 1e-9);
        assert!((g.cpu_utilization_mean - 1.8 / 8.0).abs() < 1e-9, "{g:?}");
        assert!((g.cpu_utilization_peak - 0.9).abs() < 1e-9, "{g:?}");
        assert!(g.cpu_bound, "a 90 % second is CPU-bound: {g:?}");
        assert_eq!((g.memory_bytes, g.memory_peak_bytes, g.cores), (10, 20, 2));
    }

    #[test]
    fn a_short_tail_interval_does_not_set_the_peak_and_a_light_run_is_not_cpu_bound() {
        let m = Monitor::with_cores(1);
        let (t0, c0) = (m.started, m.start_cpu);
        m.sample_at(
            t0 + Duration::from_secs(1),
            cpu(c0.user + 0.2, c0.system),
            false,
        );
        // 100 ms at 100 %: too short to count.
        let end = t0 + Duration::from_millis(1100);
        m.sample_at(end, cpu(c0.user + 0.3, c0.system), true);
        let g = m.figures(end, cpu(c0.user + 0.3, c0.system), 0, 0);
        // The peak is never below the mean (0.3 s over 1.1 s).
        assert!((g.cpu_utilization_peak - 0.3 / 1.1).abs() < 1e-9, "{g:?}");
        assert!(!g.cpu_bound);
    }

    #[test]
    fn load_threads_that_never_idle_make_a_generator_cpu_bound_at_low_utilization() {
        let m = Monitor::with_cores(2);
        let (t0, c0) = (m.started, m.start_cpu);
        // 2 workers busy 1.9 s of 2 s (waiting for cores other processes hold): 30 % CPU.
        let end = t0 + Duration::from_secs(1);
        m.close_interval(
            end,
            cpu(c0.user + 0.6, c0.system),
            Some((Duration::from_millis(1900), 2)),
            Duration::ZERO,
        );
        let g = m.figures(end, cpu(c0.user + 0.6, c0.system), 0, 0);
        assert!((g.busy_peak - 0.95).abs() < 1e-9, "{g:?}");
        assert!((g.cpu_utilization_peak - 0.3).abs() < 1e-9, "{g:?}");
        assert!(g.cpu_bound, "{g:?}");
    }

    #[test]
    fn busy_polling_with_nothing_to_do_is_not_cpu_bound_and_work_still_is() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let m = Monitor::with_cores(1);
        let idle = Arc::new(Idle::default());
        m.add_runtime(rt.metrics(), idle.clone());
        let (t0, c0) = (m.started, m.start_cpu);
        // A second at 97 % of the core, 0.8 s of it polling with nothing to do.
        idle.cpu_ns.fetch_add(800_000_000, Ordering::Relaxed);
        idle.wall_ns.fetch_add(900_000_000, Ordering::Relaxed);
        let end = t0 + Duration::from_secs(1);
        let (busy, polled) = m.busy_since_last();
        assert_eq!(polled, Duration::from_millis(800));
        assert_eq!(busy.map(|b| b.1), Some(1));
        m.close_interval(end, cpu(c0.user + 0.87, c0.system + 0.1), busy, polled);
        let g = m.figures(end, cpu(c0.user + 0.87, c0.system + 0.1), 0, 0);
        assert!((g.cpu_utilization_peak - 0.97).abs() < 1e-9, "{g:?}");
        assert!((g.busy_poll_idle_s - 0.8).abs() < 1e-9, "{g:?}");
        assert!(!g.cpu_bound, "{g:?}");
        // The next second: 95 % of the core, 0.02 s of it idle polling: working flat out.
        idle.cpu_ns.fetch_add(20_000_000, Ordering::Relaxed);
        idle.wall_ns.fetch_add(20_000_000, Ordering::Relaxed);
        let end2 = end + Duration::from_secs(1);
        let (busy, polled) = m.busy_since_last();
        assert_eq!(polled, Duration::from_millis(20));
        m.close_interval(end2, cpu(c0.user + 1.77, c0.system + 0.15), busy, polled);
        let g = m.figures(end2, cpu(c0.user + 1.77, c0.system + 0.15), 0, 0);
        assert!((g.busy_poll_idle_s - 0.82).abs() < 1e-9, "{g:?}");
        assert!(g.cpu_bound, "{g:?}");
    }

    #[test]
    fn a_run_shorter_than_one_interval_takes_its_mean_as_peak() {
        let m = Monitor::with_cores(1);
        let (t0, c0) = (m.started, m.start_cpu);
        let end = t0 + Duration::from_millis(200);
        m.sample_at(end, cpu(c0.user + 0.19, c0.system), true);
        let g = m.figures(end, cpu(c0.user + 0.19, c0.system), 0, 0);
        assert!((g.cpu_utilization_peak - 0.95).abs() < 1e-9, "{g:?}");
        assert!(g.cpu_bound);
    }

    #[test]
    fn the_readings_of_this_process_are_plausible() {
        let before = cpu_times();
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = cpu_times();
        assert!(after.total() > before.total(), "{before:?} {after:?}");
        let rss = rss_bytes().expect("/proc/self/statm");
        assert!(rss > 1 << 20, "{rss}");
        assert!(peak_rss_bytes() >= rss / 2, "{} {rss}", peak_rss_bytes());
        assert!(available_cores() >= 1);
    }
}
