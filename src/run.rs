//! One run from plan to summary: resolve targets, wire metrics and exporters, start the
//! workers, watch for Ctrl-C/SIGTERM, show progress, then merge statistics, flush exporters
//! and build the summary.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::executor::{RunShared, WorkerError, run_worker};
use crate::engine::task::Panicked;
use crate::export::Pipeline;
use crate::metrics::{self, Instruments};
use crate::report::progress::{Mode, Monitor};
use crate::report::summary::{Aggregate, Summary};
use crate::scenario::plan::Plan;
use crate::stats::{Drops, RunClock, VuCounts, WorkerStats};
use crate::term;

/// How a run is shown.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Display {
    /// Live progress on stderr: a progress area on a terminal, else status lines every
    /// `status_interval`.
    pub progress: bool,
    /// Start banner on stderr.
    pub banner: bool,
    /// Status line interval when stderr is not a terminal (`None` or zero: none).
    pub status_interval: Option<Duration>,
}

/// Why a run could not happen.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    /// Export configuration.
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    /// Threads or runtimes could not start.
    #[error("cannot start the run: {0}")]
    Io(#[from] std::io::Error),
    /// A VU task, a worker thread or an export loop panicked: the run's result is incomplete.
    #[error("the run failed: {0} (a bug in stampede; please report it)")]
    Panicked(Panicked),
}

impl From<Panicked> for RunError {
    fn from(p: Panicked) -> Self {
        RunError::Panicked(p)
    }
}

impl From<WorkerError> for RunError {
    fn from(e: WorkerError) -> Self {
        match e {
            WorkerError::Runtime(e) => RunError::Io(e),
            WorkerError::Panicked(p) => RunError::Panicked(p),
        }
    }
}

/// What ties a run to the other segments of a distributed run (all empty for a lone run).
#[derive(Default)]
pub(crate) struct Coordination {
    /// The common wall-clock start: the run sleeps until then.
    pub start_at: Option<std::time::SystemTime>,
    /// Set (to a reason) when the run must stop from outside: the coordinator was interrupted
    /// or another segment failed. The run stops gracefully, as on Ctrl-C.
    pub abort: Option<tokio::sync::watch::Receiver<Option<String>>>,
    /// Called when this run is interrupted by Ctrl-C/SIGTERM (the coordinator tells everyone).
    pub on_interrupt: Option<Box<dyn Fn() + Send>>,
    /// Set by a Ctrl-C/SIGTERM that came before the run listened (the coordinator's barrier
    /// listener): the run starts as interrupted, so a signal in that gap is not lost.
    pub interrupted: Option<Arc<AtomicBool>>,
}

/// Waits for an outside stop request; never completes without one.
async fn abort_requested(rx: &mut Option<tokio::sync::watch::Receiver<Option<String>>>) -> String {
    if let Some(rx) = rx.as_mut()
        && let Ok(v) = rx.wait_for(Option::is_some).await
    {
        return v.clone().unwrap_or_default();
    }
    std::future::pending().await
}

fn unix_s(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// How long the final export may take.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs the plan to completion (or interruption) and returns its summary.
pub(crate) fn execute(plan: Plan, display: Display) -> Result<Summary, RunError> {
    execute_with(plan, display, Coordination::default(), run_worker)
}

/// [`execute`] as one segment of a distributed run.
pub(crate) fn execute_coordinated(
    plan: Plan,
    display: Display,
    coord: Coordination,
) -> Result<Summary, RunError> {
    execute_with(plan, display, coord, run_worker)
}

/// What each worker thread runs (tests inject one that panics).
type WorkerBody = fn(usize, Arc<RunShared>) -> Result<WorkerStats, WorkerError>;

fn execute_with(
    plan: Plan,
    display: Display,
    coord: Coordination,
    worker: WorkerBody,
) -> Result<Summary, RunError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // A panic on the coordinating thread fails the run with its message, as a worker's does.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(execute_async(plan, display, coord, worker))
    }))
    .unwrap_or_else(|p| Err(Panicked::from_payload("the run's coordinator", &*p).into()))
}

async fn execute_async(
    plan: Plan,
    display: Display,
    coord: Coordination,
    worker: WorkerBody,
) -> Result<Summary, RunError> {
    let Coordination {
        start_at,
        abort: mut abort_rx,
        on_interrupt,
        interrupted: early_interrupt,
    } = coord;
    let plan = Arc::new(plan);
    let client = Arc::new(crate::http::client::Shared::new(&plan.targets, &plan.client).await);
    let vus = Arc::new(VuCounts::new(plan.workers, plan.scenarios.len()));
    let mcfg = &plan.metrics;
    let mut pipeline = Pipeline::build(mcfg)?;
    let spans = pipeline.add_spans(&plan)?;
    // Exemplars only come from sampled requests.
    let tracing_on = plan.tracing.sample_ratio.is_some_and(|r| r > 0.0);
    if display.banner {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "stampede run {}", plan.run_id);
        for s in &plan.scenarios {
            let _ = writeln!(
                e,
                "  scenario {}: {}, up to {} VUs{}",
                s.name,
                schedule_text(&s.schedule),
                s.local_vus,
                s.schedule
                    .duration()
                    .map(|d| format!(", {}", humantime::format_duration(d)))
                    .unwrap_or_default()
            );
        }
        for d in pipeline.describe() {
            let _ = writeln!(e, "  export: {d}");
        }
    }
    // A distributed run starts at the coordinator's wall-clock time (unless told to stop
    // before it).
    if let Some(at) = start_at
        && let Ok(wait) = at.duration_since(std::time::SystemTime::now())
    {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = abort_requested(&mut abort_rx) => {}
        }
    }
    // The run's time zero: schedules, the summary's duration and stampede.run.duration.
    let clock = Arc::new(RunClock::start());
    let started_wall = std::time::SystemTime::now();
    // The generator's own CPU and memory: sampled once a second, for the metrics and summary.
    let generator = Arc::new(crate::process::Monitor::start());
    let generator_sampler = tokio::spawn(crate::process::sample_every(generator.clone()));
    let wall_start = started_wall;
    let (provider, instruments) = if mcfg.enabled {
        let limits = metrics::SeriesLimits::for_plan(&plan);
        let p = metrics::provider(mcfg, &plan.run_id, &pipeline.readers(), limits);
        let mut i = Instruments::new(&p, &plan, vus.clone(), clock.clone(), generator.clone());
        if tracing_on {
            i = i.with_exemplars(pipeline.exemplars());
        }
        let i = Arc::new(i);
        (Some(p), Some(i))
    } else {
        (None, None)
    };
    pipeline.start();
    let shared = RunShared::new(
        plan.clone(),
        client,
        instruments.clone(),
        vus.clone(),
        clock.start,
        generator.clone(),
    );
    if let Some(sink) = spans {
        let _ = shared.spans.set(sink);
    }
    // Windowed and abort_on_fail thresholds: judged live from the workers' closed intervals.
    let mut judge = crate::slo::Evaluator::new(&plan);
    let mut feed_rx = judge.as_ref().map(|_| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let _ = shared.feed.set(tx);
        rx
    });
    let mut judge_tick = tokio::time::interval(
        judge
            .as_ref()
            .map_or(Duration::from_secs(3600), |j| j.period()),
    );
    judge_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut aborted: Option<crate::slo::Abort> = None;
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut handles = Vec::new();
    for w in 0..plan.workers {
        let s = shared.clone();
        let tx = done_tx.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("stampede-worker-{w}"))
                .spawn(move || {
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker(w, s)))
                        .unwrap_or_else(|p| {
                            Err(Panicked::from_payload(format!("worker thread {w}"), &*p).into())
                        });
                    let _ = tx.send(r);
                })?,
        );
    }
    drop(done_tx);
    let drop_watch = tokio::spawn(warn_about_drops(shared.clone()));
    let mut interrupted = false;
    let mut signals = Signals::after(early_interrupt.as_deref());
    let mut monitor = Monitor::new(
        Mode::choose(display.progress, display.status_interval),
        &shared,
    );
    let mut tick = tokio::time::interval(monitor.period());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut finished = 0;
    let grace = plan.graceful_stop;
    let mut merged = WorkerStats::new(plan.requests.len(), plan.scenarios.len(), plan.checks.len());
    let mut failure: Option<RunError> = None;
    let mut timelines = Vec::new();
    // VUs and requests in flight for the timeline, sampled here (a few times per interval)
    // rather than by the workers.
    let tl_interval = plan.timeline_interval;
    let mut vu_samples = crate::stats::interval::VuSamples::default();
    let mut vu_tick = tokio::time::interval(
        (tl_interval / 4).clamp(Duration::from_millis(10), Duration::from_millis(250)),
    );
    vu_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while finished < plan.workers {
        tokio::select! {
            r = done_rx.recv() => match r {
                Some(Ok(mut ws)) => {
                    finished += 1;
                    timelines.extend(ws.take_timeline());
                    merged.merge(&ws);
                }
                Some(Err(e)) => {
                    finished += 1;
                    // Without this worker the run is incomplete: stop the others as Ctrl-C
                    // would, keep what they recorded, and fail.
                    shared.stop(grace);
                    failure.get_or_insert(e.into());
                }
                None => break,
            },
            reason = abort_requested(&mut abort_rx), if !interrupted => {
                interrupted = true;
                abort_rx = None;
                term::print_above(&format!("stopping: {reason} (in-flight requests get {})", humantime::format_duration(grace)));
                shared.stop(grace);
            }
            _ = signals.next() => {
                if let Some(f) = &on_interrupt {
                    f();
                }
                if interrupted {
                    term::print_above("second interrupt: cutting in-flight requests now");
                    shared.stop(Duration::ZERO);
                } else {
                    interrupted = true;
                    term::print_above(&format!("interrupted: stopping (in-flight requests get {}; press Ctrl-C again to cut them)", humantime::format_duration(grace)));
                    shared.stop(grace);
                }
            }
            Some(c) = async {
                match feed_rx.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some(j) = judge.as_mut() {
                    j.add(c);
                }
            }
            _ = judge_tick.tick(), if judge.is_some() => {
                if let Some(a) = judge.as_mut().and_then(|j| j.judge(clock.elapsed()))
                    && aborted.is_none()
                {
                    term::print_above(&format!(
                        "threshold {} crossed at {:.1}s (abort_on_fail): stopping the run (in-flight requests get {})",
                        a.threshold,
                        a.at_s,
                        humantime::format_duration(grace)
                    ));
                    shared.stop(grace);
                    aborted = Some(a);
                }
            }
            _ = tick.tick() => monitor.tick(&shared),
            _ = vu_tick.tick() => vu_samples.sample(
                clock.elapsed(),
                tl_interval,
                vus.total_active().max(0) as u64,
                shared.live.iter().map(|l| l.in_flight()).sum(),
            ),
        }
    }
    let elapsed = clock.stop();
    generator_sampler.abort();
    let generator = generator.finish();
    monitor.finish();
    for (w, h) in handles.into_iter().enumerate() {
        if let Err(p) = h.join() {
            failure.get_or_insert(Panicked::from_payload(format!("worker thread {w}"), &*p).into());
        }
    }
    if finished < plan.workers && failure.is_none() {
        failure = Some(RunError::Io(std::io::Error::other(
            "a worker ended without reporting its statistics",
        )));
    }
    drop_watch.abort();
    if let Err(e) = drop_watch.await
        && let Some(p) = Panicked::from_join("the dropped-iterations monitor", e)
    {
        failure.get_or_insert(p.into());
    }
    // The final collection sees every recorded request: workers are done.
    let export = if pipeline.is_empty() {
        Vec::new()
    } else {
        let announce = display.banner;
        let mut on_slow = |w: &[crate::export::Waiting]| {
            if announce {
                eprint!(
                    "{}",
                    crate::report::summary::flush_waiting_text(FLUSH_TIMEOUT, w)
                );
            }
        };
        pipeline
            .finish(tokio::time::Instant::now() + FLUSH_TIMEOUT, &mut on_slow)
            .await
    };
    let folded = instruments.as_ref().and_then(|i| i.folded());
    if let Some(p) = provider {
        let _ = p.shutdown();
    }
    drop(instruments);
    // Fail only after the export flush: what was recorded still reaches the backends.
    if let Some(p) = pipeline.panicked().into_iter().next() {
        failure.get_or_insert(p.into());
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let agg = Aggregate {
        plan: &plan,
        stats: merged,
        elapsed,
    };
    let mut summary = agg.summary(&export, interrupted);
    summary.metrics_folded = folded;
    summary.fail_on_export_error = plan.fail_on_export_error;
    summary.generator = Some(generator);
    if let Some(mut j) = judge {
        // The workers' last intervals (sent as they finished).
        if let Some(rx) = feed_rx.as_mut() {
            while let Ok(c) = rx.try_recv() {
                j.add(c);
            }
        }
        for v in j.finish(elapsed) {
            let t = &plan.thresholds[v.index];
            let Some(row) = summary.thresholds.get_mut(v.index) else {
                continue;
            };
            if t.window.is_some() {
                row.actual = v.actual;
                row.ok = v.ok;
                row.failed_at_s = v.failed_at_s;
                row.reason = v
                    .actual
                    .is_none()
                    .then(|| "no window had a value".to_string());
            }
        }
        summary.aborted = aborted;
    }
    summary.timeline = crate::report::timeline::merge(&plan, timelines, &vu_samples);
    if !plan.stripe.is_whole() {
        summary.segment = Some(crate::report::summary::SegmentInfo {
            index: plan.stripe.index as u32,
            count: plan.stripe.count as u32,
            segment: plan.stripe.label.clone(),
            planned_start_unix_s: start_at.map_or(unix_s(started_wall), unix_s),
            started_unix_s: unix_s(started_wall),
        });
    }
    summary.meta = Some(crate::report::summary::RunMeta::timed(wall_start, elapsed));
    Ok(summary)
}

/// How often at most a drop warning repeats.
const DROP_WARNING_EVERY: Duration = Duration::from_secs(5);

/// Warns during the run, at most every [`DROP_WARNING_EVERY`] per cause, when open-model
/// iterations are being dropped: for lack of VUs (raise `vus`) or because stampede itself falls
/// behind its schedule.
async fn warn_about_drops(shared: Arc<RunShared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut before = shared.drops();
    let mut at = Instant::now();
    let mut warned: [Option<Instant>; 2] = [None, None];
    loop {
        tick.tick().await;
        let now_drops = shared.drops();
        let now = Instant::now();
        let secs = now.saturating_duration_since(at).as_secs_f64().max(1e-3);
        let d = Drops {
            no_vu: now_drops.no_vu.saturating_sub(before.no_vu),
            generator: now_drops.generator.saturating_sub(before.generator),
        };
        (before, at) = (now_drops, now);
        let due =
            |w: &Option<Instant>| w.is_none_or(|t| now.duration_since(t) >= DROP_WARNING_EVERY);
        let per_sec = |n: u64| (n as f64 / secs).round() as u64;
        if d.no_vu > 0 && due(&warned[0]) {
            warned[0] = Some(now);
            let vus: u64 = shared
                .plan
                .scenarios
                .iter()
                .filter(|s| s.schedule.is_open())
                .map(|s| s.schedule.max_vus())
                .sum();
            tracing::warn!(
                "insufficient VUs: {} iterations dropped in the last second (all {vus} pre-allocated VUs busy); raise --vus / vus, or the target is too slow for the rate",
                per_sec(d.no_vu)
            );
        }
        if d.generator > 0 && due(&warned[1]) {
            warned[1] = Some(now);
            tracing::warn!(
                "stampede fell behind its schedule: {} iterations dropped in the last second (the process was paused or short of CPU)",
                per_sec(d.generator)
            );
        }
    }
}

fn schedule_text(s: &crate::scenario::plan::Schedule) -> String {
    use crate::scenario::plan::Schedule::*;
    match s {
        ConstantVus {
            vus, iterations, ..
        } => match iterations {
            Some(i) => format!("constant-vus {vus} (max {i} iterations)"),
            None => format!("constant-vus {vus}"),
        },
        RampingVus { stages, .. } => format!("ramping-vus, {} stages", stages.len()),
        SharedIterations {
            vus, iterations, ..
        } => {
            format!("shared-iterations {iterations} over {vus} VUs")
        }
        ArrivalRate { start, stages, .. } => {
            if stages.len() == 1 && stages[0].target == *start {
                format!("constant-arrival-rate {start}/s")
            } else {
                format!("ramping-arrival-rate, {} stages", stages.len())
            }
        }
    }
}

/// SIGINT and SIGTERM as one stream. Both listeners live as long as this value: a signal that
/// comes while the run's loop is busy elsewhere is kept for its next poll (a `ctrl_c()` made
/// anew at each poll lost a Ctrl-C that came between two polls).
pub(crate) struct Signals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    /// A signal caught before these listeners existed (see [`Coordination::interrupted`]).
    pending: bool,
}

impl Signals {
    /// Listens from now on.
    pub(crate) fn new() -> Self {
        #[cfg(unix)]
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            #[cfg(unix)]
            int: signal(SignalKind::interrupt()).ok(),
            #[cfg(unix)]
            term: signal(SignalKind::terminate()).ok(),
            pending: false,
        }
    }

    /// Listens from now on, and starts interrupted if `early` says a signal already came.
    fn after(early: Option<&AtomicBool>) -> Self {
        let mut s = Signals::new();
        s.pending = early.is_some_and(|e| e.swap(false, std::sync::atomic::Ordering::Relaxed));
        s
    }

    /// The next Ctrl-C or SIGTERM.
    pub(crate) async fn next(&mut self) {
        if std::mem::take(&mut self.pending) {
            return;
        }
        #[cfg(unix)]
        {
            async fn one(s: &mut Option<tokio::signal::unix::Signal>) {
                match s.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = one(&mut self.int) => {}
                _ = one(&mut self.term) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_worker_thread_stops_the_run_and_fails_it() {
        let t = crate::target::spawn_background(([127, 0, 0, 1], 0).into()).expect("target");
        let plan = crate::test_support::plan_of(&format!(
            r#"
                [run]
                workers = 2
                [[scenarios]]
                vus = 2
                duration = "1h"
                requests = [{{ url = "http://{}/" }}]
                "#,
            t.addr
        ));
        let began = std::time::Instant::now();
        let r = execute_with(plan, Display::default(), Coordination::default(), |w, s| {
            if w == 1 {
                // After the other worker has had time to send requests.
                std::thread::sleep(Duration::from_millis(300));
                panic!("injected failure in worker {w}");
            }
            run_worker(w, s)
        });
        // The other worker was stopped (graceful_stop defaults to 10 s; its requests are fast).
        assert!(
            began.elapsed() < Duration::from_secs(8),
            "{:?}",
            began.elapsed()
        );
        match r {
            Err(e @ RunError::Panicked(_)) => assert_eq!(
                e.to_string(),
                "the run failed: worker thread 1 panicked: injected failure in worker 1 (a bug \
                 in stampede; please report it)"
            ),
            Err(e) => panic!("expected a panic error, got {e}"),
            Ok(s) => panic!(
                "expected a panic error, got a summary of {} requests",
                s.requests
            ),
        }
        // Requests the healthy worker sent before the stop really happened.
        assert!(
            t.counters
                .requests
                .load(std::sync::atomic::Ordering::Relaxed)
                > 0
        );
    }
}
