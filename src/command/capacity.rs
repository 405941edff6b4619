//! The capacity search (`stampede find-max`, `executor = "capacity-search"`): the highest
//! arrival rate at which the target still meets its SLO.
//!
//! Each step is an ordinary run ([`crate::run`]) of one constant-arrival-rate scenario for
//! `step_duration`: the same engine, statistics, thresholds (windowed ones judged over the
//! step: its worst window) and exporters. The search:
//! 1. ramp: from `start_rate`, multiply by `growth` after every passing step, up to `max_rate`;
//!    a failing step of the ramp is re-checked once (a flapping target's transient is not its
//!    capacity), and the re-check decides;
//! 2. search: bisect between the last passing and the first failing rate until they are within
//!    `precision` (of the passing rate, or absolute).
//!
//! A step is judged on its **window**, `[start, start + step_duration]`, by the instant things
//! happened there ([`crate::report::summary::WindowRow`]): *sent* = iterations started inside it,
//! *achieved* = iterations completed inside it, per second of the window (from its first
//! completion: no response can come before one latency has passed; at most a quarter of the
//! window is left out so). Completions during the in-flight wait after the window do not count:
//! a target that queues serves its capacity, not the rate it was sent. A step passes when the
//! SLO holds, both rates are at least [`ACHIEVED_MIN`] of the intended rate (a dropped
//! iteration is one not sent) and nothing grows steadily across the window ([`trend`]). Blame
//! goes by side:
//! - the SLO crossed, or on-time sends without their completions ("target did not keep up"),
//!   or a growing queue: the **target**'s failure (`fail`);
//! - late or dropped sends (the SLO met): the **generator**'s; the step is retried once (a
//!   passing stall of a shared machine), then the search stops with `stopped_by = "generator"`
//!   and claims no maximum.
//!
//! Bounded by `max_rate` and `max_duration` (no step starts that would end past it).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::command::shared::{Error, Presentation};
use crate::config::{
    CapacityConfig, CapacityFlags, Config, ConfigError, DistFlags, Dur, ExecutorKind,
};
use crate::distributed::generator::{DistError, Followed, Steps};
use crate::report::summary::Summary;
use crate::scenario::segment::Stripe;
use crate::slo::{Capacity, Step};

/// The least share of the intended rate a passing step must send, and achieve.
pub(crate) const ACHIEVED_MIN: f64 = 0.98;

/// The shortest step judged well: shorter ones are warned about (a queue has too little time
/// to show, and the window's edges weigh too much).
const SHORT_STEP: Duration = Duration::from_secs(2);

/// A step should also last this many times the longest latency the SLO allows (the first
/// completion comes one latency into the window).
const STEP_PER_LATENCY: f64 = 4.0;

/// The fewest timeline intervals a step's window is cut into (for [`trend`]).
const STEP_INTERVALS: u32 = 8;

/// The least rise of the p99 that counts as a trend, seconds (and a tenth of the SLO's latency
/// bound, when larger).
const TREND_FLOOR_S: f64 = 0.02;

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
    /// The longest latency the SLO allows, seconds (`None`: no latency threshold).
    latency_bound: Option<f64>,
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
            latency_bound: None,
        })
    }

    /// The precision in iterations/s around a passing rate.
    fn precision_at(&self, rate: f64) -> f64 {
        match self.precision {
            (p, true) => p * rate,
            (p, false) => p,
        }
    }

    /// The shortest step judged well for this SLO (see [`SHORT_STEP`]).
    fn shortest_step(&self) -> Duration {
        let by_latency = Duration::from_secs_f64(
            (self.latency_bound.unwrap_or(0.0) * STEP_PER_LATENCY).clamp(0.0, 86_400.0),
        );
        SHORT_STEP.max(by_latency)
    }

    /// The least rise of the p99 across a step that counts as a trend, seconds.
    fn trend_floor_s(&self) -> f64 {
        TREND_FLOOR_S.max(self.latency_bound.unwrap_or(0.0) / 10.0)
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
        .unwrap_or_else(crate::command::shared::generate_run_id)
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
    let mut search = Search::of(&cfg.capacity, origin)?;
    let plan = crate::command::shared::prepare(
        step_config(cfg, search.start_rate, &search),
        run_id.to_string(),
        origin,
    )?;
    search.latency_bound = crate::scenario::plan::latency_bound(&plan.thresholds);
    Ok(search)
}

/// Runs the search described by `cfg` (its first scenario, its thresholds, its `[capacity]`)
/// and returns the summary of the step at the maximum (or of the last step), with `capacity`.
pub(crate) fn run(cfg: Config, origin: &str, presentation: Presentation) -> Result<Summary, Error> {
    let run_id = run_id_of(&cfg);
    let search = checked(&cfg, origin, &run_id)?;
    let mut step = |rate: f64| -> Result<Summary, Error> {
        let plan = crate::command::shared::prepare(
            step_config(&cfg, rate, &search),
            run_id.clone(),
            origin,
        )?;
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
        announce(cfg, search, run_id);
    }
    while let Some((rate, phase)) = next.take() {
        if began.elapsed() + search.step > search.max_duration {
            stopped_by = "max_duration";
            break;
        }
        // Until a failure is confirmed, a failing step is re-checked once before it ends the
        // ramp (a flapping target's transient); the bisection's failures are not.
        let recheck =
            hi.is_none() && began.elapsed() + search.step.saturating_mul(2) <= search.max_duration;
        let (verdict, s) = attempt(step, rate, phase, search, recheck, print, &mut steps)?;
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

/// The search's first lines (stderr): its settings, and a warning when its steps are too
/// short to be judged well.
fn announce(cfg: &Config, search: &Search, run_id: &str) {
    eprintln!(
        "stampede find-max {run_id}: from {}/s (×{} per step, at most {}/s), {} per step, precision {}",
        search.start_rate,
        search.growth,
        search.max_rate,
        humantime::format_duration(search.step),
        cfg.capacity.precision
    );
    let shortest = search.shortest_step();
    if search.step < shortest {
        eprintln!(
            "  warning: steps of {} are too short to judge well (at least {}: 2 s, and 4× the longest latency the SLO allows); a growing queue may not show",
            humantime::format_duration(search.step),
            humantime::format_duration(shortest)
        );
    }
}

/// Runs and judges the step at `rate`, and records it in `steps`. A step is run once more
/// when the generator fell short (a passing stall of a shared machine) and, with `recheck`,
/// once more when it failed (a target's transient): each attempt that is run again is kept,
/// marked `rechecked`, and the last (phase `recheck`) decides. Returns the deciding verdict
/// and summary.
fn attempt(
    step: &mut dyn FnMut(f64) -> Result<Summary, Error>,
    rate: f64,
    mut phase: &str,
    search: &Search,
    mut recheck: bool,
    print: bool,
    steps: &mut Vec<Step>,
) -> Result<(Verdict, Summary), Error> {
    let mut retry = true;
    loop {
        let s = step(rate)?;
        let (verdict, mut judged) = judge(&s, rate, phase, search);
        let again = !s.interrupted
            && match verdict {
                Verdict::Generator => std::mem::take(&mut retry),
                Verdict::Fail => std::mem::take(&mut recheck),
                Verdict::Pass => false,
            };
        judged.rechecked = again;
        if print {
            print_step(&judged);
            if again {
                eprintln!(
                    "  {rate:.1}/s: {}; checking the step once more",
                    match verdict {
                        Verdict::Generator => "the generator fell short",
                        _ => "a first failure",
                    }
                );
            }
        }
        steps.push(judged);
        if !again {
            return Ok((verdict, s));
        }
        phase = "recheck";
    }
}

/// One step's line on stderr.
fn print_step(j: &Step) {
    eprintln!(
        "  {} {:.1}/s: {} (sent {:.1}/s, achieved {:.1}/s, p99 {:.1}ms, errors {:.2}%){}",
        j.phase,
        j.intended_rate,
        j.verdict,
        j.sent_rate,
        j.achieved_rate,
        j.p99_s * 1e3,
        j.error_rate * 100.0,
        j.reason
            .as_deref()
            .map(|r| format!(" — {r}"))
            .unwrap_or_default()
    );
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
            crate::report::summary::render_text(
                &summary,
                &crate::report::summary::TextStyle::for_stdout()
            )
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
/// every segment's summary (so the SLO, the sent and achieved rates and the trend are the
/// whole test's), then publishes the next rate. `hash` is [`crate::distributed::generator::scenario_hash`].
pub(crate) fn run_segmented(
    mut cfg: Config,
    origin: &str,
    presentation: Presentation,
    stripe: Stripe,
    hash: crate::distributed::generator::Fingerprint,
    flags: &DistFlags,
) -> Result<Segmented, SegmentedError> {
    cfg.metrics.segment = Some(stripe.index as u32);
    let run_id = run_id_of(&cfg);
    let search = checked(&cfg, origin, &run_id)?;
    let display = crate::run::Display::default();
    if stripe.index != 0 {
        let followed =
            crate::distributed::generator::follow(&stripe, hash, flags, |rate, coord, id| {
                let mut plan = crate::command::shared::prepare(
                    step_config(&cfg, rate, &search),
                    id.to_string(),
                    origin,
                )
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
        let mut plan = crate::command::shared::prepare(
            step_config(&cfg, rate, &search),
            run_id.clone(),
            origin,
        )?;
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
        Some(c) if c.stopped_by == "generator" => crate::command::shared::EXIT_FAILURE,
        Some(c) if c.stopped_by == "interrupted" => crate::command::shared::EXIT_INTERRUPTED,
        Some(c) if c.max_rate.is_none() => crate::command::shared::EXIT_THRESHOLDS,
        Some(_) => crate::command::shared::EXIT_OK,
        None => crate::command::shared::summary_exit_code(s),
    }
}

/// The configuration of one step: the first scenario at a constant `rate` for a step.
fn step_config(cfg: &Config, rate: f64, search: &Search) -> Config {
    let mut c = cfg.clone();
    c.run.summary_json = None;
    c.run.graceful_stop = Dur(c.run.graceful_stop.get().min(search.step));
    c.run.timeline_interval = Dur(step_interval(c.run.timeline_interval.get(), search.step));
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

/// A step's timeline interval: the configured one, halved until the step holds at least
/// [`STEP_INTERVALS`] of them (so [`trend`] can see the window's quarters; windowed
/// thresholds keep their length, as halving divides it).
fn step_interval(configured: Duration, step: Duration) -> Duration {
    let mut i = configured;
    while i > step / STEP_INTERVALS && i / 2 >= crate::stats::interval::MIN_INTERVAL {
        i /= 2;
    }
    i
}

/// What a step's window says: the rates sent and achieved (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Rates {
    sent: f64,
    achieved: f64,
}

impl Rates {
    fn of(s: &Summary, search: &Search) -> Rates {
        let t = search.step.as_secs_f64();
        let w = s
            .scenarios
            .first()
            .and_then(|r| r.window)
            .unwrap_or_default();
        let lead = w.first_completed_s.unwrap_or(0.0).clamp(0.0, t / 4.0);
        Rates {
            sent: w.started as f64 / t,
            achieved: w.completed as f64 / (t - lead),
        }
    }
}

/// Judges one step's summary (for a distributed search, the merged one) at `rate`.
fn judge(s: &Summary, rate: f64, phase: &str, search: &Search) -> (Verdict, Step) {
    let r = Rates::of(s, search);
    let min = ACHIEVED_MIN * rate;
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
    } else if r.sent < min {
        (
            Verdict::Generator,
            Some(format!(
                "generator fell short: sent {:.1}/s ({:.1}% of the rate), {} dropped iterations ({} no free VU, {} behind schedule)",
                r.sent,
                r.sent / rate * 100.0,
                s.dropped_iterations,
                s.dropped_no_vu,
                s.dropped_generator,
            )),
        )
    } else if r.achieved < min {
        (
            Verdict::Fail,
            Some(format!(
                "target did not keep up: achieved {:.1}/s ({:.1}% of the rate)",
                r.achieved,
                r.achieved / rate * 100.0
            )),
        )
    } else if let Some(t) = trend(s, rate, search) {
        (Verdict::Fail, Some(format!("unsustainable trend: {t}")))
    } else {
        (Verdict::Pass, None)
    };
    let step = Step {
        intended_rate: rate,
        sent_rate: r.sent,
        achieved_rate: r.achieved,
        rps: s.requests as f64 / s.duration_s.max(1e-9),
        window_s: search.step.as_secs_f64(),
        duration_s: s.duration_s,
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
        rechecked: false,
    };
    (verdict, step)
}

/// A quarter of a step's window: the p99 of the requests that finished in it (all of them,
/// failures included), seconds, and the mean of its intervals' most requests in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Quarter {
    p99_s: f64,
    in_flight: f64,
}

/// The window's four quarters from the step's timeline (`None`: fewer than four intervals).
fn quarters(s: &Summary, window_s: f64) -> Option<[Quarter; 4]> {
    let tl = s.timeline.as_ref()?;
    let inside: Vec<_> = tl
        .intervals
        .iter()
        .filter(|iv| iv.t_s + tl.interval_s <= window_s + 1e-6)
        .collect();
    let n = inside.len();
    if n < 4 {
        return None;
    }
    let mut out = [Quarter::default(); 4];
    for (k, q) in out.iter_mut().enumerate() {
        let part = &inside[k * n / 4..(k + 1) * n / 4];
        let mut h = crate::stats::new_hist();
        for ns in part.iter().flat_map(|iv| &iv.by_name) {
            // A histogram that does not decode adds nothing (the summary made it).
            let _ = crate::stats::hdr::decode_into(&ns.histogram, &mut h);
        }
        q.p99_s = if h.is_empty() {
            0.0
        } else {
            h.value_at_quantile(0.99) as f64 / 1e6
        };
        q.in_flight =
            part.iter().map(|iv| iv.active_requests as f64).sum::<f64>() / part.len().max(1) as f64;
    }
    Some(out)
}

/// Whether latency or requests in flight grew steadily across the step's window, which a
/// short step could pass before the SLO or the achieved rate shows it: the four quarters'
/// values rise from each to the next, at least a third of the rise comes before the last
/// quarter (one slow moment at the end is no trend), and the last is at least twice the first
/// and above it by at least the floor (p99: [`Search::trend_floor_s`]; in flight: that latency
/// at the rate, at least 4). Returns what rose.
fn trend(s: &Summary, rate: f64, search: &Search) -> Option<String> {
    let q = quarters(s, search.step.as_secs_f64())?;
    let rising = |v: [f64; 4], floor: f64| {
        let rise = v[3] - v[0];
        v.windows(2).all(|p| p[1] > p[0])
            && v[3] >= 2.0 * v[0]
            && rise >= floor
            && v[2] - v[0] >= rise / 3.0
    };
    let floor = search.trend_floor_s();
    let p99 = q.map(|q| q.p99_s);
    let flight = q.map(|q| q.in_flight);
    if rising(p99, floor) {
        Some(format!(
            "p99 rose quarter by quarter across the step, from {:.1}ms to {:.1}ms",
            p99[0] * 1e3,
            p99[3] * 1e3
        ))
    } else if rising(flight, (rate * floor).max(4.0)) {
        Some(format!(
            "requests in flight rose quarter by quarter across the step, from {:.1} to {:.1}",
            flight[0], flight[3]
        ))
    } else {
        None
    }
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

    /// A step's summary with its window's counts and a timeline of 250 ms intervals: per
    /// interval, every request at `lat_ms[i]` and `flight[i]` requests in flight at most.
    fn step_summary(window: (u64, u64, f64), lat_ms: &[u64], flight: &[u64]) -> Summary {
        use crate::report::timeline::{IntervalOut, NameSlotOut, TimelineOut};
        let mut s = Summary::of_rows(crate::report::summary::Rows {
            run_id: "r".into(),
            secs: 2.1,
            ok: crate::stats::new_hist(),
            all: crate::stats::new_hist(),
            by_name: vec![],
            errors: Default::default(),
            errors_by_target: vec![],
            reconnects: 0,
            scenarios: vec![],
            checks: vec![],
            thresholds: vec![],
            interrupted: false,
        });
        s.scenarios.push(crate::report::summary::ScenarioRow {
            name: "s".into(),
            executor: "constant-arrival-rate".into(),
            iterations: window.1 + 50,
            dropped_iterations: 0,
            dropped_no_vu: 0,
            dropped_generator: 0,
            iteration_duration_s: Default::default(),
            start_lag_s: None,
            iteration_duration_hdr: String::new(),
            start_lag_hdr: None,
            window: Some(crate::report::summary::WindowRow {
                window_s: 2.0,
                started: window.0,
                completed: window.1,
                first_completed_s: Some(window.2),
            }),
        });
        let intervals = lat_ms
            .iter()
            .zip(flight)
            .enumerate()
            .map(|(i, (ms, f))| {
                let mut h = crate::stats::new_hist();
                h.record_n(ms * 1000, 50).unwrap();
                IntervalOut {
                    t_s: i as f64 * 0.25,
                    active_requests: *f,
                    by_name: vec![NameSlotOut {
                        requests: 50,
                        histogram: crate::stats::hdr::encode(&h),
                        ..Default::default()
                    }],
                    ..Default::default()
                }
            })
            .collect();
        s.timeline = Some(TimelineOut {
            interval_s: 0.25,
            intervals,
            ..Default::default()
        });
        s
    }

    fn search(step: Duration, latency_bound: Option<f64>) -> Search {
        let mut s = Search::of(&CapacityConfig::default(), "t").unwrap();
        s.step = step;
        s.latency_bound = latency_bound;
        s
    }

    #[test]
    fn a_steps_timeline_interval_is_halved_to_an_eighth_of_it_at_most() {
        let ms = Duration::from_millis;
        assert_eq!(step_interval(ms(1000), ms(2000)), ms(250));
        assert_eq!(step_interval(ms(1000), ms(10_000)), ms(1000));
        assert_eq!(step_interval(ms(1000), ms(8000)), ms(1000));
        assert_eq!(step_interval(ms(100), ms(500)), ms(50));
        assert_eq!(
            step_interval(ms(10), ms(500)),
            ms(10),
            "not below the minimum"
        );
    }

    #[test]
    fn a_step_is_judged_on_its_window_and_blamed_by_side() {
        let sr = search(Duration::from_secs(2), Some(0.4));
        let flat = [2; 8];
        let low = [1; 8];
        // 350/s sent on time, 600 completed inside the window from 10 ms: the target's.
        let s = step_summary((700, 600, 0.01), &flat, &low);
        let (v, st) = judge(&s, 350.0, "search", &sr);
        assert_eq!(v, Verdict::Fail);
        assert_eq!(st.sent_rate, 350.0);
        assert!((st.achieved_rate - 600.0 / 1.99).abs() < 1e-9, "{st:?}");
        assert_eq!(
            st.reason.as_deref(),
            Some("target did not keep up: achieved 301.5/s (86.1% of the rate)")
        );
        assert_eq!((st.window_s, st.duration_s), (2.0, 2.1));
        // Sent short (the rest started late, past the window): the generator's.
        let s = step_summary((600, 600, 0.01), &flat, &low);
        let (v, st) = judge(&s, 350.0, "search", &sr);
        assert_eq!(v, Verdict::Generator, "{st:?}");
        assert!(
            st.reason
                .as_deref()
                .is_some_and(|r| r.starts_with("generator fell short: sent 300.0/s (85.7% of")),
            "{st:?}"
        );
        // Both on time: a pass. The first completion's lead is capped at a quarter.
        let mut s = step_summary((700, 696, 0.001), &flat, &low);
        assert_eq!(judge(&s, 350.0, "ramp", &sr).0, Verdict::Pass);
        // A few dropped iterations, within the 2 %: still sent.
        s.dropped_iterations = 5;
        s.scenarios[0].window = s.scenarios[0]
            .window
            .map(|w| crate::report::summary::WindowRow { started: 695, ..w });
        assert_eq!(judge(&s, 350.0, "ramp", &sr).0, Verdict::Pass);
        let s = step_summary((700, 600, 1.5), &flat, &low);
        let (_, st) = judge(&s, 350.0, "ramp", &sr);
        assert_eq!(st.achieved_rate, 400.0, "600 over the last 1.5 s");
    }

    #[test]
    fn a_steady_rise_across_a_passing_step_fails_it() {
        let sr = search(Duration::from_secs(2), Some(0.4));
        let low = [1; 8];
        let ok = |lat: &[u64], flight: &[u64]| {
            let s = step_summary((700, 700, 0.001), lat, flight);
            judge(&s, 350.0, "ramp", &sr)
        };
        // A queue: the p99 grows quarter by quarter, to more than twice and 40 ms above.
        let (v, st) = ok(&[5, 10, 20, 30, 40, 50, 60, 70], &low);
        assert_eq!(v, Verdict::Fail, "{st:?}");
        assert_eq!(
            st.reason.as_deref(),
            Some(
                "unsustainable trend: p99 rose quarter by quarter across the step, from 10.0ms to 70.0ms"
            )
        );
        // One slow moment at the end is no trend; nor is a rise below the floor (40 ms here).
        assert_eq!(ok(&[5, 5, 5, 5, 5, 5, 5, 90], &low).0, Verdict::Pass);
        assert_eq!(ok(&[5, 6, 6, 7, 7, 8, 9, 90], &low).0, Verdict::Pass);
        assert_eq!(ok(&[5, 10, 15, 20, 25, 30, 35, 40], &low).0, Verdict::Pass);
        assert_eq!(ok(&[40, 50, 20, 30, 40, 50, 60, 70], &low).0, Verdict::Pass);
        // Requests piling up in flight (at 350/s, 40 ms more is 14 more in flight).
        let (v, st) = ok(&[2; 8], &[1, 2, 4, 6, 9, 12, 15, 20]);
        assert_eq!(v, Verdict::Fail, "{st:?}");
        assert!(
            st.reason
                .as_deref()
                .is_some_and(|r| r.contains("requests in flight rose") && r.contains("to 17.5")),
            "{st:?}"
        );
        assert_eq!(ok(&[2; 8], &[1, 2, 2, 3, 3, 4, 4, 5]).0, Verdict::Pass);
        // A step too short for four quarters is not judged on its trend.
        let s = step_summary((700, 700, 0.001), &[5, 10, 40], &[1, 2, 3]);
        assert_eq!(judge(&s, 350.0, "ramp", &sr).0, Verdict::Pass);
    }

    #[test]
    fn short_steps_are_warned_about_by_the_slos_latency() {
        assert_eq!(
            search(Duration::from_secs(2), Some(0.4)).shortest_step(),
            SHORT_STEP
        );
        assert_eq!(
            search(Duration::from_secs(2), Some(1.0)).shortest_step(),
            Duration::from_secs(4)
        );
        assert_eq!(
            search(Duration::from_secs(2), None).shortest_step(),
            SHORT_STEP
        );
        assert!((search(Duration::from_secs(2), Some(0.4)).trend_floor_s() - 0.04).abs() < 1e-12);
        assert_eq!(
            search(Duration::from_secs(2), None).trend_floor_s(),
            TREND_FLOOR_S
        );
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
        assert_eq!(c.run.timeline_interval.get(), Duration::from_secs(1));
        assert!(!wanted(&c));
    }
}
