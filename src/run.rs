//! One run from plan to summary: resolve targets, wire metrics and exporters, start the
//! workers, watch for Ctrl-C/SIGTERM, show progress, then merge statistics, flush exporters
//! and build the summary.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::executor::{RunShared, run_worker};
use crate::export::Pipeline;
use crate::metrics::{self, Instruments};
use crate::plan::Plan;
use crate::progress::{Mode, Monitor};
use crate::report::{Aggregate, Summary};
use crate::stats::{RunClock, VuCounts, WorkerStats};
use crate::term;

/// How a run is shown.
#[derive(Clone, Copy, Debug, Default)]
pub struct Display {
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
pub enum RunError {
    /// Export configuration.
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    /// Threads or runtimes could not start.
    #[error("cannot start the run: {0}")]
    Io(#[from] std::io::Error),
}

/// How long the final export may take.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs the plan to completion (or interruption) and returns its summary.
pub fn execute(plan: Plan, display: Display) -> Result<Summary, RunError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(execute_async(plan, display))
}

async fn execute_async(plan: Plan, display: Display) -> Result<Summary, RunError> {
    let plan = Arc::new(plan);
    let client = Arc::new(crate::http::client::Shared::new(&plan.targets, &plan.client).await);
    let vus = Arc::new(VuCounts::new(plan.workers, plan.scenarios.len()));
    let mcfg = &plan.metrics;
    let pipeline = Pipeline::build(mcfg)?;
    if display.banner {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "stampede run {}", plan.run_id);
        for s in &plan.scenarios {
            let _ = writeln!(
                e,
                "  scenario {}: {}, up to {} VUs{}",
                s.name,
                schedule_text(&s.schedule),
                s.schedule.max_vus(),
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
    // The run's time zero: schedules, the summary's duration and stampede.run.duration.
    let clock = Arc::new(RunClock::start());
    let (provider, instruments) = if mcfg.enabled {
        let p = metrics::provider(mcfg, &plan.run_id, &pipeline.readers());
        let i = Arc::new(Instruments::new(&p, &plan, vus.clone(), clock.clone()));
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
    );
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut handles = Vec::new();
    for w in 0..plan.workers {
        let s = shared.clone();
        let tx = done_tx.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("stampede-worker-{w}"))
                .spawn(move || {
                    let r = run_worker(w, s);
                    let _ = tx.send(());
                    r
                })?,
        );
    }
    drop(done_tx);
    let mut interrupted = false;
    let mut signals = Signals::new();
    let mut monitor = Monitor::new(
        Mode::choose(display.progress, display.status_interval),
        &shared,
    );
    let mut tick = tokio::time::interval(monitor.period());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut finished = 0;
    let grace = plan.graceful_stop;
    // VUs for the timeline, sampled here (a few times per interval) rather than by the workers.
    let tl_interval = plan.timeline_interval;
    let mut vu_samples = crate::stats::interval::VuSamples::default();
    let mut vu_tick = tokio::time::interval(
        (tl_interval / 4).clamp(Duration::from_millis(10), Duration::from_millis(250)),
    );
    vu_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while finished < plan.workers {
        tokio::select! {
            r = done_rx.recv() => match r {
                Some(()) => finished += 1,
                None => break,
            },
            _ = signals.next() => {
                if interrupted {
                    term::print_above("second interrupt: cutting in-flight requests now");
                    shared.stop(Duration::ZERO);
                } else {
                    interrupted = true;
                    term::print_above(&format!("interrupted: stopping (in-flight requests get {}; press Ctrl-C again to cut them)", humantime::format_duration(grace)));
                    shared.stop(grace);
                }
            }
            _ = tick.tick() => monitor.tick(&shared),
            _ = vu_tick.tick() => vu_samples.sample(
                clock.elapsed(),
                tl_interval,
                vus.total_active().max(0) as u64,
            ),
        }
    }
    let elapsed = clock.stop();
    monitor.finish();
    let mut merged = WorkerStats::new(plan.requests.len(), plan.scenarios.len(), plan.checks.len());
    let mut timelines = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok(mut ws)) => {
                timelines.extend(ws.timeline.take());
                merged.merge(&ws);
            }
            Ok(Err(e)) => return Err(RunError::Io(e)),
            Err(_) => {
                return Err(RunError::Io(std::io::Error::other(
                    "a worker thread panicked",
                )));
            }
        }
    }
    // The final collection sees every recorded request: workers are done.
    let export = if pipeline.is_empty() {
        Vec::new()
    } else {
        pipeline.finish(FLUSH_TIMEOUT).await
    };
    if let Some(p) = provider {
        let _ = p.shutdown();
    }
    drop(instruments);
    let agg = Aggregate {
        plan: &plan,
        stats: merged,
        elapsed,
    };
    let mut summary = agg.summary(export, interrupted);
    summary.timeline = crate::timeline::merge(&plan, timelines, &vu_samples);
    Ok(summary)
}

fn schedule_text(s: &crate::plan::Schedule) -> String {
    use crate::plan::Schedule::*;
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
            if stages.len() == 1 && stages[0].1 == *start {
                format!("constant-arrival-rate {start}/s")
            } else {
                format!("ramping-arrival-rate, {} stages", stages.len())
            }
        }
    }
}

/// SIGINT and SIGTERM as one stream.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        {
            let term = async {
                match self.term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
