//! The capacity search (`stampede find-max`, `executor = "capacity-search"`): the highest
//! arrival rate at which the target still meets its SLO.
//!
//! Each step is an ordinary run ([`crate::run`]) of one constant-arrival-rate scenario for
//! `step_duration`: the same engine, statistics, thresholds (windowed ones judged over the
//! step: its worst window) and exporters. The search:
//! 1. ramp: from `start_rate`, multiply by `growth` after every passing step, up to `max_rate`;
//! 2. search: bisect between the last passing and the first failing rate until they are within
//!    `precision` (of the passing rate, or absolute).
//!
//! A step passes when every threshold holds (the SLO), **and** the generator delivered the rate:
//! no dropped iterations and at least [`ACHIEVED_MIN`] of the intended rate achieved. A step
//! that met the SLO but not the rate says nothing about the target: the search retries it once
//! (a passing stall of a shared machine), then stops with `stopped_by = "generator"` and claims
//! no maximum. A step that crossed the SLO is the target's failure, whatever else happened.
//! Bounded by `max_rate` and `max_duration` (no step starts that would end past it).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::command::{Error, Presentation};
use crate::config::{
    CapacityConfig, CapacityFlags, Config, ConfigError, DistFlags, Dur, ExecutorKind,
};
use crate::distributed::{DistError, Followed, Steps};
use crate::report::Summary;
use crate::segment::Stripe;
use crate::slo::{Capacity, Step};

/// The least share of the intended rate a passing step must achieve.
pub(crate) const ACHIEVED_MIN: f64 = 0.98;

/// The search's settings, checked.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Search {
    start_rate: f64,
    max_rate: f64,
    growth: f64,
    step: Duration,
    /// (value, relative)
    precision: (f64, bool),
    max_duration: Duration,
}

impl Search {
    /// From the `[capacity]` table (already validated with the rest of the config).
    fn of(c: &CapacityConfig, origin: &str) -> Result<Search, ConfigError> {
        let precision = crate::config::parse_precision(&c.precision)
            .map_err(|m| ConfigError::invalid(origin, "capacity.precision", m))?;
        Ok(Search {
            start_rate: c.start_rate,
            max_rate: c.max_rate,
            growth: c.growth,
            step: c.step_duration.get(),
            precision,
            max_duration: c.max_duration.get(),
        })
    }

    /// The precision in iterations/s around a passing rate.
    fn precision_at(&self, rate: f64) -> f64 {
        match self.precision {
            (p, true) => p * rate,
            (p, false) => p,
        }
    }
}

/// Whether a configuration asks for a capacity search (`executor = "capacity-search"`).
pub(crate) fn wanted(cfg: &Config) -> bool {
    cfg.scenarios
        .iter()
        .any(|s| s.executor_kind() == ExecutorKind::CapacitySearch)
}

/// How one step went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Pass,
    Fail,
    Generator,
}

/// The search's run id: `--run-id`, or a new one.
fn run_id_of(cfg: &Config) -> String {
    cfg.run
        .id
        .clone()
        .unwrap_or_else(crate::command::generate_run_id)
}

/// Checks a search's configuration (as a run would be checked: the first step's plan) and
/// returns its settings.
fn checked(cfg: &Config, origin: &str, run_id: &str) -> Result<Search, Error> {
    crate::config::validate(cfg, origin)?;
    crate::config::validate_capacity(cfg, origin)?;
    if cfg.thresholds.is_empty() {
        return Err(ConfigError::invalid(
            origin,
            "thresholds",
            "a capacity search needs at least one threshold, its SLO (--threshold 'p99[5s] < 500ms')",
        )
        .into());
    }
    let search = Search::of(&cfg.capacity, origin)?;
    crate::command::prepare(
        step_config(cfg, search.start_rate, &search),
        run_id.to_string(),
        origin,
    )?;
    Ok(search)
}

/// Runs the search described by `cfg` (its first scenario, its thresholds, its `[capacity]`)
/// and returns the summary of the step at the maximum (or of the last step), with `capacity`.
pub(crate) fn run(cfg: Config, origin: &str, presentation: Presentation) -> Result<Summary, Error> {
    let run_id = run_id_of(&cfg);
    let search = checked(&cfg, origin, &run_id)?;
    let mut step = |rate: f64| -> Result<Summary, Error> {
        let plan =
            crate::command::prepare(step_config(&cfg, rate, &search), run_id.clone(), origin)?;
        crate::run::execute(plan, crate::run::Display::default()).map_err(|e| match e {
            crate::run::RunError::Export(e) => Error::Export(e),
            e => Error::Other(anyhow::Error::new(e)),
        })
    };
    let (capacity, summaries) = drive(&cfg, &search, &run_id, presentation.print, &mut step)?;
    conclude(&cfg, &search, capacity, summaries, presentation)
}

/// Steps up and bisects, running each step with `step(rate)` (one generator's run, or every
/// segment's merged); returns the verdict and every step's summary by rate.
fn drive(
    cfg: &Config,
    search: &Search,
    run_id: &str,
    print: bool,
    step: &mut dyn FnMut(f64) -> Result<Summary, Error>,
) -> Result<(Capacity, Vec<(f64, Summary)>), Error> {
    let began = Instant::now();
    let mut steps: Vec<Step> = Vec::new();
    let mut summaries: Vec<(f64, Summary)> = Vec::new();
    let mut lo: Option<f64> = None;
    let mut hi: Option<f64> = None;
    let mut stopped_by = "precision";
    let mut next = Some((search.start_rate, "ramp"));
    if print {
        eprintln!(
            "stampede find-max {run_id}: from {}/s (×{} per step, at most {}/s), {} per step, precision {}",
            search.start_rate,
            search.growth,
            search.max_rate,
            humantime::format_duration(search.step),
            cfg.capacity.precision
        );
    }
    while let Some((rate, phase)) = next.take() {
        if began.elapsed() + search.step > search.max_duration {
            stopped_by = "max_duration";
            break;
        }
        let mut s = step(rate)?;
        let (mut verdict, mut judged) = judge(&s, rate, phase, search);
        if verdict == Verdict::Generator && !s.interrupted {
            // Once more: a shared machine's passing stall is not a saturated generator.
            if print {
                eprintln!("  {rate:.1}/s: the generator fell short; trying the step once more");
            }
            steps.push(judged);
            s = step(rate)?;
            (verdict, judged) = judge(&s, rate, phase, search);
        }
        if print {
            eprintln!(
                "  {phase} {rate:.1}/s: {} (achieved {:.1}/s, p99 {:.1}ms, errors {:.2}%){}",
                judged.verdict,
                judged.achieved_rate,
                judged.p99_s * 1e3,
                judged.error_rate * 100.0,
                judged
                    .reason
                    .as_deref()
                    .map(|r| format!(" — {r}"))
                    .unwrap_or_default()
            );
        }
        steps.push(judged);
        let interrupted = s.interrupted;
        summaries.push((rate, s));
        if interrupted {
            stopped_by = "interrupted";
            break;
        }
        match verdict {
            Verdict::Generator => {
                stopped_by = "generator";
                break;
            }
            Verdict::Pass => lo = Some(rate),
            Verdict::Fail => hi = Some(rate),
        }
        next = match (lo, hi) {
            (None, Some(_)) => {
                stopped_by = "no_passing_step";
                None
            }
            (Some(l), None) => {
                if l >= search.max_rate {
                    stopped_by = "max_rate";
                    None
                } else {
                    Some(((l * search.growth).min(search.max_rate), "ramp"))
                }
            }
            (Some(l), Some(h)) => {
                if h - l <= search.precision_at(l) {
                    stopped_by = "precision";
                    None
                } else {
                    Some(((l + h) / 2.0, "search"))
                }
            }
            (None, None) => None,
        };
    }
    let max_rate = if stopped_by == "generator" { None } else { lo };
    let capacity = Capacity {
        max_rate,
        first_failing_rate: hi,
        stopped_by: stopped_by.to_string(),
        precision: search.precision_at(lo.unwrap_or(search.start_rate)),
        slo: cfg
            .thresholds
            .iter()
            .map(|t| t.expr().to_string())
            .collect(),
        steps,
    };
    Ok((capacity, summaries))
}

/// The search's summary: the step at the maximum (else the last step) with the verdict,
/// printed and written to `--summary-json`.
fn conclude(
    cfg: &Config,
    search: &Search,
    capacity: Capacity,
    mut summaries: Vec<(f64, Summary)>,
    presentation: Presentation,
) -> Result<Summary, Error> {
    let pick = summaries
        .iter()
        .rposition(|(r, _)| Some(*r) == capacity.max_rate)
        .unwrap_or(summaries.len().saturating_sub(1));
    let mut summary = if summaries.is_empty() {
        return Err(Error::Other(anyhow::anyhow!(
            "the capacity search ran no step: max_duration ({}) is shorter than a step",
            humantime::format_duration(search.max_duration)
        )));
    } else {
        summaries.swap_remove(pick).1
    };
    summary.capacity = Some(capacity);
    if presentation.print {
        print!(
            "{}",
            crate::report::render_text(&summary, &crate::report::TextStyle::for_stdout())
        );
    }
    if let Some(p) = &cfg.run.summary_json {
        let json = serde_json::to_string_pretty(&summary)
            .map_err(|e| anyhow::anyhow!("cannot serialize the summary: {e}"))?;
        std::fs::write(p, json + "\n")
            .map_err(|e| anyhow::anyhow!("cannot write the summary to {}: {e}", p.display()))?;
    }
    Ok(summary)
}

/// Why a distributed search could not be carried out.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SegmentedError {
    /// Bad configuration, or a failed run (as for one generator).
    #[error(transparent)]
    Search(#[from] Error),
    /// The coordination failed (a mismatch: exit 2; otherwise 1).
    #[error(transparent)]
    Dist(#[from] DistError),
}

/// How this generator's part in a distributed search ended.
#[derive(Debug)]
pub(crate) enum Segmented {
    /// The coordinator (segment 0): the search's summary (every step merged), and its own
    /// summary of the last step it ran.
    Coordinator(Box<Summary>, Option<Box<Summary>>),
    /// Another segment: its last step, and how the search ended.
    Segment(Box<Followed>),
}

/// The capacity search over execution segments: the rate is global, each segment runs its
/// share of every step at a common start, and the coordinator judges each step on the merge of
/// every segment's summary (so the SLO, the achieved rate and the dropped iterations are the
/// whole test's), then publishes the next rate. `hash` is [`crate::distributed::scenario_hash`].
pub(crate) fn run_segmented(
    mut cfg: Config,
    origin: &str,
    presentation: Presentation,
    stripe: Stripe,
    hash: crate::distributed::Fingerprint,
    flags: &DistFlags,
) -> Result<Segmented, SegmentedError> {
    cfg.metrics.segment = Some(stripe.index as u32);
    let run_id = run_id_of(&cfg);
    let search = checked(&cfg, origin, &run_id)?;
    let display = crate::run::Display::default();
    if stripe.index != 0 {
        let followed = crate::distributed::follow(&stripe, hash, flags, |rate, coord, id| {
            let mut plan =
                crate::command::prepare(step_config(&cfg, rate, &search), id.to_string(), origin)
                    .map_err(|e| crate::run::RunError::Io(std::io::Error::other(e.to_string())))?;
            plan.apply_segment(stripe.clone());
            crate::run::execute_coordinated(plan, display, coord)
        })?;
        return Ok(Segmented::Segment(Box::new(followed)));
    }
    let steps = Steps::open(
        stripe.count as u32,
        run_id.clone(),
        hash,
        flags,
        crate::run::Display {
            banner: presentation.print,
            ..display
        },
    )?;
    let run_id = steps.run_id().to_string();
    let mut step = |rate: f64| -> Result<Summary, Error> {
        let mut plan =
            crate::command::prepare(step_config(&cfg, rate, &search), run_id.clone(), origin)?;
        plan.apply_segment(stripe.clone());
        steps
            .step(plan, rate)
            .map_err(|e| Error::Other(anyhow::Error::new(e)))
    };
    let driven = drive(&cfg, &search, &run_id, presentation.print, &mut step);
    let reason = match &driven {
        Ok((c, _)) => format!("the search is over ({})", c.stopped_by),
        Err(e) => format!("the coordinator failed: {e}"),
    };
    let last_local = steps.close(&reason).map(Box::new);
    let (capacity, summaries) = driven?;
    let summary = conclude(&cfg, &search, capacity, summaries, presentation)?;
    Ok(Segmented::Coordinator(Box::new(summary), last_local))
}

/// The exit code of a search: 0 with a maximum, 3 when no rate met the SLO, 1 when the generator
/// set the limit (no maximum can be claimed), 130 when interrupted.
pub(crate) fn exit_code(s: &Summary) -> u8 {
    match s.capacity.as_ref() {
        Some(c) if c.stopped_by == "generator" => crate::command::EXIT_FAILURE,
        Some(c) if c.stopped_by == "interrupted" => crate::command::EXIT_INTERRUPTED,
        Some(c) if c.max_rate.is_none() => crate::command::EXIT_THRESHOLDS,
        Some(_) => crate::command::EXIT_OK,
        None => crate::command::summary_exit_code(s),
    }
}

/// The configuration of one step: the first scenario at a constant `rate` for a step.
fn step_config(cfg: &Config, rate: f64, search: &Search) -> Config {
    let mut c = cfg.clone();
    c.run.summary_json = None;
    c.run.graceful_stop = Dur(c.run.graceful_stop.get().min(search.step));
    if let Some(sc) = c.scenarios.first_mut() {
        let open = matches!(
            sc.executor_kind(),
            ExecutorKind::ConstantArrivalRate
                | ExecutorKind::RampingArrivalRate
                | ExecutorKind::CapacitySearch
        );
        if !open {
            // A closed model's VUs are no pre-allocation: the plan's default applies.
            sc.vus = None;
        }
        sc.executor = Some(ExecutorKind::ConstantArrivalRate);
        sc.rate = Some(rate);
        sc.duration = Some(Dur(search.step));
        sc.start = None;
        sc.stages.clear();
        sc.iterations = None;
    }
    c
}

/// Judges one step's summary (for a distributed search, the merged one) at `rate`.
fn judge(s: &Summary, rate: f64, phase: &str, search: &Search) -> (Verdict, Step) {
    let secs = search.step.as_secs_f64();
    let achieved = s.iterations as f64 / secs;
    let crossed: Vec<&str> = s
        .thresholds
        .iter()
        .filter(|t| !t.ok)
        .map(|t| t.threshold.as_str())
        .collect();
    let (verdict, reason) = if !crossed.is_empty() {
        (
            Verdict::Fail,
            Some(format!("crossed {}", crossed.join(", "))),
        )
    } else if s.dropped_iterations > 0 || achieved < ACHIEVED_MIN * rate {
        (
            Verdict::Generator,
            Some(format!(
                "generator saturated: {} dropped iterations ({} no free VU, {} behind schedule), achieved {:.1}% of the rate",
                s.dropped_iterations,
                s.dropped_no_vu,
                s.dropped_generator,
                achieved / rate * 100.0
            )),
        )
    } else {
        (Verdict::Pass, None)
    };
    let step = Step {
        intended_rate: rate,
        achieved_rate: achieved,
        rps: s.requests as f64 / secs,
        duration_s: secs,
        p50_s: s.latency_s.p50,
        p95_s: s.latency_s.p95,
        p99_s: s.latency_s.p99,
        error_rate: s.error_rate,
        dropped_iterations: s.dropped_iterations,
        verdict: match verdict {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Generator => "generator",
        }
        .to_string(),
        reason,
        phase: phase.to_string(),
    };
    (verdict, step)
}

/// `stampede find-max`: loads the file and flags, applies the search flags, runs the search.
pub(crate) fn find_max(
    file: Option<&Path>,
    ov: &crate::config::Overrides,
    flags: &CapacityFlags,
    presentation: Presentation,
) -> Result<Summary, Error> {
    let (cfg, origin) = load(file, ov, flags)?;
    run(cfg, &origin, presentation)
}

/// The configuration of `stampede find-max`: the file and flag layers with the search flags
/// applied; and the origin to name in errors.
pub(crate) fn load(
    file: Option<&Path>,
    ov: &crate::config::Overrides,
    flags: &CapacityFlags,
) -> Result<(Config, String), Error> {
    let mut ov = ov.clone();
    // Without a file, the ad-hoc scenario is an open-model one.
    if file.is_none() && ov.rate.is_none() {
        ov.rate = Some(
            flags
                .start_rate
                .unwrap_or(CapacityConfig::default().start_rate),
        );
    }
    let mut cfg = crate::config::load(file, &ov)?;
    let c = &mut cfg.capacity;
    if let Some(v) = flags.start_rate {
        c.start_rate = v;
    }
    if let Some(v) = flags.max_rate {
        c.max_rate = v;
    }
    if let Some(v) = flags.growth {
        c.growth = v;
    }
    if let Some(v) = flags.step_duration {
        c.step_duration = v;
    }
    if let Some(v) = &flags.precision {
        c.precision = v.clone();
    }
    if let Some(v) = flags.max_duration {
        c.max_duration = v;
    }
    let origin = file.map_or("command line".to_string(), |p| p.display().to_string());
    if cfg.scenarios.len() > 1 {
        return Err(ConfigError::invalid(
            &origin,
            "scenarios",
            "find-max drives one scenario; this file has several",
        )
        .into());
    }
    Ok((cfg, origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_is_relative_or_absolute() {
        let mut c = CapacityConfig::default();
        let s = Search::of(&c, "t").unwrap();
        assert!((s.precision_at(200.0) - 10.0).abs() < 1e-9);
        c.precision = "20".into();
        assert!((Search::of(&c, "t").unwrap().precision_at(1000.0) - 20.0).abs() < 1e-9);
        c.precision = "0%".into();
        let e = Search::of(&c, "t").unwrap_err().to_string();
        assert!(e.contains("capacity.precision"), "{e}");
    }

    #[test]
    fn a_step_is_the_first_scenario_at_a_constant_rate() {
        let cfg = crate::config::load_str(
            "t.toml",
            "[[scenarios]]\nexecutor = \"capacity-search\"\nvus = 50\nrequests = [{ url = \"http://127.0.0.1:1/\" }]\n",
            &Default::default(),
        )
        .unwrap();
        assert!(wanted(&cfg));
        let s = Search::of(&cfg.capacity, "t").unwrap();
        let c = step_config(&cfg, 123.0, &s);
        let sc = &c.scenarios[0];
        assert_eq!(sc.executor, Some(ExecutorKind::ConstantArrivalRate));
        assert_eq!((sc.rate, sc.vus), (Some(123.0), Some(50)));
        assert_eq!(sc.duration, Some(Dur::secs(10)));
        assert!(!wanted(&c));
    }
}
