//! The live view of a run, driven by the run's control task a few times a second:
//!
//! - on a terminal, a progress area at the bottom of stderr, fitted to its width: a bar with
//!   elapsed / total (`[=====>----] 05.5s/10s`, or `512/1000 iters`), VUs, req/s and p99 over
//!   the last second, the error rate and the request count; one line per scenario when there
//!   are several (log lines are printed above it, see [`crate::term`]);
//! - when stderr is not a terminal (CI), a compact status line every `status_interval`;
//! - in both cases (and with `--quiet`), one early warning when nearly every request fails
//!   (> 90 % of at least 20 requests over the last 1–5 s), naming the most frequent error type
//!   and the target's host:port.
//!
//! It reads only relaxed atomic counters the workers keep anyway ([`Live`], VU counts, the
//! executor's claim counters); nothing here runs per request.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::executor::RunShared;
use crate::outcome::ErrorKind;
use crate::scenario::plan::{Plan, ScenarioPlan, Schedule};
use crate::stats::{Live, live_quantile};
use crate::term::{self, host_port};

/// How the run is shown while it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A progress area on a terminal (stderr).
    Live,
    /// A status line every so often (stderr is not a terminal).
    Status(Duration),
    /// Nothing but the failure warning.
    Off,
}

impl Mode {
    /// The mode for this process: the live area when `progress` is wanted and stderr is a
    /// terminal, else status lines every `status_interval` (unless it is zero or `None`).
    pub(crate) fn choose(progress: bool, status_interval: Option<Duration>) -> Mode {
        if !progress {
            Mode::Off
        } else if term::Stream::Stderr.is_terminal() {
            Mode::Live
        } else {
            match status_interval {
                Some(d) if !d.is_zero() => Mode::Status(d),
                _ => Mode::Off,
            }
        }
    }
}

/// Window of the failure warning.
const FAIL_WINDOW: Duration = Duration::from_secs(5);
/// The warning looks at no less than this much of the run (a hiccup at the start is not it)...
const FAIL_MIN_WINDOW: Duration = Duration::from_secs(1);
/// ...at least this many requests in the window...
const FAIL_MIN_REQUESTS: u64 = 20;
/// ...and more than this share of them failed.
const FAIL_SHARE: f64 = 0.9;
/// Window of the live req/s and p99.
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// Terminal width when it cannot be known.
const DEFAULT_WIDTH: usize = 80;

/// Counters summed over the workers at one instant.
struct Snap {
    at: Instant,
    requests: u64,
    failures: u64,
    buckets: Vec<u64>,
}

/// Everything one line of the view needs, already summed.
struct Figures {
    vus: i64,
    rps: f64,
    p99: Option<f64>,
    requests: u64,
    error_pct: f64,
}

/// The live view's state between ticks.
pub(crate) struct Monitor {
    mode: Mode,
    history: VecDeque<Snap>,
    last_status: Option<Snap>,
    next_status: Option<Instant>,
    /// Failures per worker at the previous tick (to sample `Live::last_error` only when new).
    seen_failures: Vec<u64>,
    /// (when, packed last error) samples for the warning's "mostly X from host:port".
    error_samples: VecDeque<(Instant, u64)>,
    warned: bool,
}

impl Monitor {
    /// A monitor for a run that starts now.
    pub(crate) fn new(mode: Mode, shared: &RunShared) -> Monitor {
        let now = Instant::now();
        Monitor {
            mode,
            history: VecDeque::new(),
            last_status: Some(snap(shared, now)),
            next_status: match mode {
                Mode::Status(d) => now.checked_add(d),
                _ => None,
            },
            seen_failures: vec![0; shared.live.len()],
            error_samples: VecDeque::new(),
            warned: false,
        }
    }

    /// How often [`Monitor::tick`] wants to run.
    pub(crate) fn period(&self) -> Duration {
        match self.mode {
            Mode::Live => Duration::from_millis(250),
            Mode::Status(_) | Mode::Off => Duration::from_millis(500),
        }
    }

    /// Samples the counters; redraws, prints a status line or warns as due.
    pub(crate) fn tick(&mut self, shared: &RunShared) {
        let now = Instant::now();
        let s = snap(shared, now);
        self.sample_errors(shared, now);
        self.history.push_back(s);
        while self
            .history
            .front()
            .is_some_and(|f| now.duration_since(f.at) > FAIL_WINDOW + Duration::from_secs(1))
        {
            self.history.pop_front();
        }
        self.watch_failures(shared, now);
        match self.mode {
            Mode::Live => {
                let width = term::width(term::Stream::Stderr).unwrap_or(DEFAULT_WIDTH);
                let rows = term::height(term::Stream::Stderr).unwrap_or(24);
                let lines = self.frame(shared, width, rows);
                term::show(lines);
            }
            Mode::Status(every) => {
                if let Some(due) = self.next_status.filter(|t| now >= *t) {
                    // On the interval's own schedule (no drift from late ticks), never behind.
                    self.next_status = due
                        .checked_add(every)
                        .filter(|n| *n > now)
                        .or_else(|| now.checked_add(every));
                    let line = self.status_line(shared);
                    term::print_above(&line);
                }
            }
            Mode::Off => {}
        }
    }

    /// Erases the live area (the summary follows).
    pub(crate) fn finish(&mut self) {
        if self.mode == Mode::Live {
            term::hide();
        }
    }

    fn latest(&self) -> Option<&Snap> {
        self.history.back()
    }

    /// The newest snapshot at least `age` older than the latest (or the oldest one).
    fn base(&self, age: Duration) -> Option<&Snap> {
        let now = self.latest()?.at;
        self.history
            .iter()
            .rev()
            .find(|s| now.duration_since(s.at) >= age)
            .or_else(|| self.history.front())
    }

    fn figures(&self, shared: &RunShared, base: Option<&Snap>) -> Figures {
        let Some(now) = self.latest() else {
            return Figures {
                vus: shared.vus.total_active(),
                rps: 0.0,
                p99: None,
                requests: 0,
                error_pct: 0.0,
            };
        };
        let (rps, p99) = match base {
            Some(b) if now.at > b.at => (
                (now.requests - b.requests) as f64 / now.at.duration_since(b.at).as_secs_f64(),
                live_quantile(&now.buckets, &b.buckets, 0.99),
            ),
            _ => (0.0, None),
        };
        Figures {
            vus: shared.vus.total_active(),
            rps,
            p99,
            requests: now.requests,
            error_pct: if now.requests == 0 {
                0.0
            } else {
                now.failures as f64 * 100.0 / now.requests as f64
            },
        }
    }

    fn frame(&self, shared: &RunShared, width: usize, rows: usize) -> Vec<String> {
        let plan = &shared.plan;
        let elapsed = shared.start.elapsed();
        let f = self.figures(shared, self.base(RATE_WINDOW));
        // Leave the last column free: a character there puts some terminals in a pending wrap.
        let w = width.saturating_sub(1).max(1);
        let totals = figure_fields(&f);
        if plan.scenarios.len() == 1 {
            let p = scenario_progress(&plan.scenarios[0], elapsed, shared.claimed(0));
            return vec![fit_line(&p, true, totals, w, 0)];
        }
        let mut lines = vec![fit_line(
            &overall_progress(plan, elapsed),
            false,
            totals,
            w,
            0,
        )];
        let name_w = plan
            .scenarios
            .iter()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(0)
            .min(w / 3);
        let room = rows.saturating_sub(2).clamp(1, 10);
        let n = plan.scenarios.len();
        let shown = if n > room { room - 1 } else { n };
        let progress: Vec<Progress> = plan
            .scenarios
            .iter()
            .take(shown)
            .map(|sc| scenario_progress(sc, elapsed, shared.claimed(sc.index)))
            .collect();
        // Same width of progress text on every line, so the bars line up.
        let text_w = progress
            .iter()
            .map(|p| p.text().chars().count())
            .max()
            .unwrap_or(0);
        for (sc, p) in plan.scenarios.iter().zip(progress) {
            let name = format!("  {:<name_w$}", term::abbreviate(&sc.name, name_w));
            let vus = Field::new(
                3,
                format!(
                    "vus {}/{}",
                    shared.vus.active(sc.index),
                    sc.schedule.max_vus()
                ),
            );
            let mut fields = vec![Field::new(0, name)];
            fields.push(vus);
            lines.push(fit_line(&p, true, fields, w, text_w));
        }
        if shown < n {
            lines.push(term::abbreviate(
                &format!("  … {} more scenarios", n - shown),
                w,
            ));
        }
        lines
    }

    fn status_line(&mut self, shared: &RunShared) -> String {
        let plan = &shared.plan;
        let elapsed = shared.start.elapsed();
        let f = self.figures(shared, self.last_status.as_ref());
        self.last_status = self.history.back().map(|s| Snap {
            at: s.at,
            requests: s.requests,
            failures: s.failures,
            buckets: s.buckets.clone(),
        });
        let progress = if plan.scenarios.len() == 1 {
            scenario_progress(&plan.scenarios[0], elapsed, shared.claimed(0))
        } else {
            overall_progress(plan, elapsed)
        };
        let mut line = format!(
            "[{}] vus {}, {:.1} req/s, p99 {}, {} requests, {:.2}% errors",
            progress.text(),
            f.vus,
            f.rps,
            f.p99.map_or("-".into(), fmt_latency),
            f.requests,
            f.error_pct
        );
        if plan.scenarios.len() > 1 {
            let parts: Vec<String> = plan
                .scenarios
                .iter()
                .map(|sc| {
                    let p = scenario_progress(sc, elapsed, shared.claimed(sc.index));
                    format!("{} {}", sc.name, p.text())
                })
                .collect();
            line.push_str(" | ");
            line.push_str(&parts.join(", "));
        }
        line
    }

    fn sample_errors(&mut self, shared: &RunShared, now: Instant) {
        use std::sync::atomic::Ordering::Relaxed;
        for (w, l) in shared.live.iter().enumerate() {
            let f = l.failures.load(Relaxed);
            if f > self.seen_failures[w] {
                self.seen_failures[w] = f;
                let e = l.last_error.load(Relaxed);
                if e != 0 {
                    self.error_samples.push_back((now, e));
                }
            }
        }
        while self
            .error_samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > FAIL_WINDOW)
        {
            self.error_samples.pop_front();
        }
    }

    fn watch_failures(&mut self, shared: &RunShared, now: Instant) {
        if self.warned {
            return;
        }
        let (Some(last), Some(base)) = (self.latest(), self.base(FAIL_WINDOW)) else {
            return;
        };
        let reqs = last.requests - base.requests;
        let fails = last.failures - base.failures;
        let secs = now.duration_since(base.at).as_secs_f64();
        if secs < FAIL_MIN_WINDOW.as_secs_f64()
            || reqs < FAIL_MIN_REQUESTS
            || (fails as f64) <= FAIL_SHARE * reqs as f64
        {
            return;
        }
        self.warned = true;
        let top = top_error(&self.error_samples, &shared.plan);
        let advice = failure_advice(top.as_ref().map(|t| t.0));
        let cause = top
            .map(|(kind, target)| format!(", mostly {} from {target}", kind.as_str()))
            .unwrap_or_default();
        tracing::warn!(
            "nearly every request fails: {fails} of {reqs} in the last {secs:.1}s ({:.0}%){cause}; {advice}",
            fails as f64 * 100.0 / reqs as f64
        );
    }
}

fn snap(shared: &RunShared, at: Instant) -> Snap {
    use std::sync::atomic::Ordering::Relaxed;
    let mut buckets = vec![0; Live::buckets()];
    let (mut requests, mut failures) = (0, 0);
    for l in &shared.live {
        l.snapshot_into(&mut buckets);
        requests += l.requests.load(Relaxed);
        failures += l.failures.load(Relaxed);
    }
    Snap {
        at,
        requests,
        failures,
        buckets,
    }
}

/// What to check when nearly every request fails, by the most frequent error: a status says
/// the target is up and answering, so the question is what it refuses and why.
fn failure_advice(top: Option<ErrorKind>) -> String {
    match top {
        Some(ErrorKind::Status(c @ (401 | 407))) => {
            format!(
                "the requests were refused ({c}): check the credentials (Authorization header, URL userinfo)"
            )
        }
        Some(ErrorKind::Status(403)) => {
            "the requests were refused (403): check the credentials and what they are allowed"
                .into()
        }
        Some(ErrorKind::Status(c @ (404 | 405 | 410))) => {
            format!("the target answers {c}: check the URL's path and the method")
        }
        Some(ErrorKind::Status(429)) => {
            "the target is rate-limiting (429): lower the rate or raise the target's limit".into()
        }
        Some(ErrorKind::Status(c @ 400..=499)) => {
            format!("the target rejects the requests ({c}): check the method, headers and body")
        }
        Some(ErrorKind::Status(c)) => {
            format!("the target is up but failing ({c}): look at its logs")
        }
        _ => "is the target up and the URL right?".into(),
    }
}

/// The most frequent (error type, host:port) among the samples.
fn top_error(samples: &VecDeque<(Instant, u64)>, plan: &Plan) -> Option<(ErrorKind, String)> {
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for (_, e) in samples {
        *counts.entry(*e).or_default() += 1;
    }
    let (packed, _) = counts.into_iter().max_by_key(|(_, n)| *n)?;
    let req = ((packed >> 32) as usize).checked_sub(1)?;
    let key = (packed & 0xffff_ffff) as u32;
    let target = plan.targets.get(plan.requests.get(req)?.target)?;
    Some((
        ErrorKind::from_key(key)?,
        host_port(&target.host, target.port),
    ))
}

/// Where a scenario (or the run) is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Progress {
    /// Time-bound: elapsed of total.
    Time { elapsed: Duration, total: Duration },
    /// Bound by an iteration budget.
    Iterations { done: u64, total: u64 },
    /// No known end.
    Elapsed(Duration),
}

impl Progress {
    fn fraction(&self) -> Option<f64> {
        match *self {
            Progress::Time { elapsed, total } if !total.is_zero() => {
                Some((elapsed.as_secs_f64() / total.as_secs_f64()).min(1.0))
            }
            Progress::Time { .. } => Some(1.0),
            Progress::Iterations { done, total } if total > 0 => {
                Some((done.min(total) as f64 / total as f64).min(1.0))
            }
            Progress::Iterations { .. } => Some(1.0),
            Progress::Elapsed(_) => None,
        }
    }

    fn text(&self) -> String {
        match *self {
            Progress::Time { elapsed, total } => {
                format!("{}/{}", clock(elapsed, total), compact(total))
            }
            Progress::Iterations { done, total } => format!("{}/{total} iters", done.min(total)),
            Progress::Elapsed(e) => clock(e, e),
        }
    }
}

fn scenario_progress(sc: &ScenarioPlan, elapsed: Duration, claimed: u64) -> Progress {
    match &sc.schedule {
        Schedule::ConstantVus {
            duration: None,
            iterations: Some(n),
            ..
        }
        | Schedule::SharedIterations { iterations: n, .. } => Progress::Iterations {
            done: claimed,
            total: *n,
        },
        s => match s.duration() {
            Some(total) => Progress::Time { elapsed, total },
            None => Progress::Elapsed(elapsed),
        },
    }
}

/// The run as a whole: time-bound if every scenario is.
fn overall_progress(plan: &Plan, elapsed: Duration) -> Progress {
    let durations: Option<Vec<Duration>> = plan
        .scenarios
        .iter()
        .map(|s| match scenario_progress(s, elapsed, 0) {
            Progress::Time { total, .. } => Some(total),
            _ => None,
        })
        .collect();
    match durations.and_then(|d| d.into_iter().max()) {
        Some(total) => Progress::Time { elapsed, total },
        None => Progress::Elapsed(elapsed),
    }
}

/// Elapsed time on a clock as wide as the total's: `05.5s` of 10s, `1m05.5s` of 2m.
fn clock(d: Duration, total: Duration) -> String {
    let s = d.as_secs_f64();
    if total < Duration::from_secs(60) && s < 60.0 {
        format!("{s:04.1}s")
    } else if total < Duration::from_secs(3600) && s < 3600.0 {
        let m = (s / 60.0).floor();
        format!("{m:.0}m{:04.1}s", s - m * 60.0)
    } else {
        let t = s as u64;
        format!("{}h{:02}m{:02}s", t / 3600, t / 60 % 60, t % 60)
    }
}

/// A planned length: `10s`, `1m30s`, `30m`, `1h`, `1.5s`.
fn compact(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 {
        return format!("{:.1}s", d.as_secs_f64());
    }
    let t = d.as_secs();
    let (h, m, s) = (t / 3600, t / 60 % 60, t % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// A latency in seconds with a unit that keeps 2–3 significant digits.
pub(crate) fn fmt_latency(s: f64) -> String {
    let us = s * 1e6;
    if us < 1_000.0 {
        format!("{us:.0}µs")
    } else if us < 10_000.0 {
        format!("{:.2}ms", us / 1e3)
    } else if us < 100_000.0 {
        format!("{:.1}ms", us / 1e3)
    } else if us < 1_000_000.0 {
        format!("{:.0}ms", us / 1e3)
    } else {
        format!("{s:.2}s")
    }
}

/// A piece of a line; the lowest `prio` numbers stay longest when the line must shrink.
struct Field {
    prio: u8,
    text: String,
}

impl Field {
    fn new(prio: u8, text: String) -> Field {
        Field { prio, text }
    }
}

fn figure_fields(f: &Figures) -> Vec<Field> {
    vec![
        Field::new(4, format!("vus {}", f.vus)),
        Field::new(1, format!("req/s {:.1}", f.rps)),
        Field::new(3, format!("p99 {}", f.p99.map_or("-".into(), fmt_latency))),
        Field::new(2, format!("errors {:.2}%", f.error_pct)),
        Field::new(5, format!("requests {}", f.requests)),
    ]
}

const BAR_MIN: usize = 10;
const BAR_MAX: usize = 30;
/// The bar's priority among the fields (the progress text has 0).
const BAR_PRIO: u8 = 1;

fn bar(fraction: f64, inner: usize) -> String {
    let filled = ((fraction * inner as f64).round() as usize).min(inner);
    let mut s = String::with_capacity(inner + 2);
    s.push('[');
    if filled == inner {
        s.push_str(&"=".repeat(inner));
    } else {
        s.push_str(&"=".repeat(filled));
        s.push('>');
        s.push_str(&"-".repeat(inner - filled - 1));
    }
    s.push(']');
    s
}

/// One line at most `width` characters: `lead` fields, the bar (when `with_bar` and the
/// progress has a fraction), the progress text (padded to `text_w`), then `fields`, dropping
/// the least important fields first and cutting the line only as a last resort.
fn fit_line(
    p: &Progress,
    with_bar: bool,
    fields: Vec<Field>,
    width: usize,
    text_w: usize,
) -> String {
    // A scenario line passes its name as the first, prio-0 field: it goes before the bar.
    let (lead, mut rest): (Vec<Field>, Vec<Field>) = fields.into_iter().partition(|f| f.prio == 0);
    let progress = format!("{:<text_w$}", p.text());
    let fraction = if with_bar { p.fraction() } else { None };
    let mut show_bar = fraction.is_some();
    let len =
        |fs: &[Field]| -> usize { fs.iter().map(|f| f.text.chars().count() + 2).sum::<usize>() };
    let fixed = |rest: &[Field], bar: bool| {
        lead.iter()
            .map(|f| f.text.chars().count() + 1)
            .sum::<usize>()
            + progress.chars().count()
            + len(rest)
            + if bar { BAR_MIN + 3 } else { 0 }
    };
    while fixed(&rest, show_bar) > width {
        // Drop the least important remaining field, or the bar when it is the least important.
        let worst = rest.iter().enumerate().max_by_key(|(_, f)| f.prio);
        match worst {
            Some((i, f)) if !show_bar || f.prio > BAR_PRIO => {
                rest.remove(i);
            }
            _ if show_bar => show_bar = false,
            _ => break,
        }
    }
    let mut line = String::new();
    for f in &lead {
        line.push_str(&f.text);
        line.push(' ');
    }
    if show_bar && let Some(fr) = fraction {
        let spare = width.saturating_sub(fixed(&rest, false) + 3);
        line.push_str(&bar(fr, spare.clamp(BAR_MIN, BAR_MAX)));
        line.push(' ');
    }
    line.push_str(&progress);
    for f in &rest {
        line.push_str("  ");
        line.push_str(&f.text);
    }
    term::abbreviate_end(&line, width)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(e: f64, t: u64) -> Progress {
        Progress::Time {
            elapsed: Duration::from_secs_f64(e),
            total: Duration::from_secs(t),
        }
    }

    #[test]
    fn clocks_and_totals_read_like_k6() {
        assert_eq!(time(5.5, 10).text(), "05.5s/10s");
        assert_eq!(time(65.0, 90).text(), "1m05.0s/1m30s");
        assert_eq!(time(7.0, 7200).text(), "0h00m07s/2h");
        assert_eq!(compact(Duration::from_millis(1500)), "1.5s");
        assert_eq!(compact(Duration::from_secs(1800)), "30m");
        let it = Progress::Iterations {
            done: 1200,
            total: 1000,
        };
        assert_eq!(it.text(), "1000/1000 iters");
        assert_eq!(it.fraction(), Some(1.0));
    }

    #[test]
    fn the_bar_fills_with_the_fraction() {
        assert_eq!(bar(0.0, 10), "[>---------]");
        assert_eq!(bar(0.55, 10), "[======>---]");
        assert_eq!(bar(1.0, 10), "[==========]");
    }

    #[test]
    fn a_line_fits_any_width_and_keeps_the_bar_longest() {
        let f = Figures {
            vus: 1000,
            rps: 123_456.7,
            p99: Some(0.0123),
            requests: 12_345_678,
            error_pct: 12.5,
        };
        for width in [20, 40, 60, 79, 100, 200] {
            let l = fit_line(&time(5.5, 10), true, figure_fields(&f), width, 0);
            assert!(l.chars().count() <= width, "{width}: {l}");
            assert!(l.contains("05.5s/10s"), "{width}: {l}");
            if width >= 40 {
                assert!(l.contains("[=="), "{width}: {l}");
            }
        }
        let wide = fit_line(&time(5.5, 10), true, figure_fields(&f), 200, 0);
        for part in [
            "vus 1000",
            "req/s 123456.7",
            "p99 12.3ms",
            "errors 12.50%",
            "requests 12345678",
        ] {
            assert!(wide.contains(part), "{wide}");
        }
        // At 79 columns: the bar, elapsed/total, req/s and errors are all there.
        let l = fit_line(&time(5.5, 10), true, figure_fields(&f), 79, 0);
        assert!(l.contains("req/s") && l.contains("errors"), "{l}");
    }

    #[test]
    fn latencies_keep_two_or_three_digits() {
        assert_eq!(fmt_latency(0.000_211), "211µs");
        assert_eq!(fmt_latency(0.002_1), "2.10ms");
        assert_eq!(fmt_latency(0.021), "21.0ms");
        assert_eq!(fmt_latency(0.21), "210ms");
        assert_eq!(fmt_latency(2.1), "2.10s");
    }

    #[test]
    fn the_advice_follows_the_status_class() {
        let says = |k: Option<ErrorKind>| failure_advice(k);
        assert_eq!(
            says(Some(ErrorKind::Status(401))),
            "the requests were refused (401): check the credentials (Authorization header, URL userinfo)"
        );
        assert!(says(Some(ErrorKind::Status(403))).starts_with("the requests were refused (403)"));
        assert!(says(Some(ErrorKind::Status(404))).contains("path"));
        assert!(says(Some(ErrorKind::Status(429))).contains("rate-limiting"));
        assert!(says(Some(ErrorKind::Status(422))).contains("(422)"));
        assert!(says(Some(ErrorKind::Status(503))).contains("up but failing (503)"));
        for k in [
            Some(ErrorKind::ConnectionRefused),
            Some(ErrorKind::Timeout),
            None,
        ] {
            assert_eq!(says(k), "is the target up and the URL right?");
        }
        assert_eq!(
            ErrorKind::from_key(ErrorKind::TooManyOpenFiles.key()),
            Some(ErrorKind::TooManyOpenFiles)
        );
    }
}
