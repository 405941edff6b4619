//! Semantic checks that serde cannot express: every executor has what it needs and nothing it
//! would ignore, numbers are within the limits below, ranges are ordered. Each error names the
//! key exactly (`scenarios[0].requests[1].think_time`). URLs, headers, templates and thresholds
//! are checked where they are parsed, once, in `plan`.
//!
//! The limits refuse what cannot run rather than let it busy-loop or allocate until the
//! allocator aborts; durations have their own bound, [`super::MAX_DURATION`].

use std::collections::BTreeSet;

use super::error::ConfigError;
use super::{Config, ExecutorKind, RequestConfig, ScenarioConfig, ThinkTime};

/// Highest arrival rate of one scenario (`rate`, and `start`/stage targets of
/// ramping-arrival-rate): 10,000,000 iterations/s. That is ten times what one machine's HTTP
/// client can send (stampede does about 100k req/s per core), and small enough that the
/// iteration index over the longest allowed run (rate × 365 days ≈ 3.2·10¹⁴) stays exact in the
/// `f64` schedule maths (< 2⁵³).
pub const MAX_RATE: f64 = 10_000_000.0;

/// Most VUs a run may have, summed over its scenarios (peak for ramping-vus, pre-allocated for
/// arrival-rate): 1,000,000. Each VU is a task with its own state (about 1.6 KB while idle) and,
/// once active, a socket per server — beyond a million the default per-process file limit
/// (`nr_open` = 1,048,576) is reached anyway.
pub const MAX_VUS: u64 = 1_000_000;

/// Most concurrent streams per HTTP/2 connection (`defaults.h2_max_streams`, `--h2-streams`).
pub(crate) const MAX_H2_STREAMS: u32 = 10_000;

/// The longest busy-poll window (`run.busy_poll`, `--busy-poll`).
const MAX_BUSY_POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// The shortest timeline interval (`run.timeline_interval`, `--timeline-interval`): 10 ms, the
/// finest the timeline's slots resolve (shorter ones were once raised to it silently).
pub(crate) const MIN_TIMELINE_INTERVAL: std::time::Duration = crate::stats::interval::MIN_INTERVAL;

/// Most worker threads (`run.workers`, `--workers`): 1024. Each has its own runtime and exact
/// statistics (about 0.4 MB per scenario plus 0.2 MB per request definition); threads beyond the
/// CPU count only add context switches.
pub const MAX_WORKERS: usize = 1024;

/// The scenario keys each executor takes; any other of `vus`, `duration`, `iterations`, `rate`,
/// `stages`, `start` is an error (it would be ignored). The README's executor table says the same.
pub fn executor_keys(kind: ExecutorKind) -> &'static [&'static str] {
    match kind {
        ExecutorKind::ConstantVus => &["vus", "duration", "iterations"],
        ExecutorKind::RampingVus => &["start", "stages"],
        ExecutorKind::SharedIterations => &["vus", "iterations", "duration"],
        ExecutorKind::ConstantArrivalRate => &["rate", "duration", "vus"],
        ExecutorKind::RampingArrivalRate => &["start", "stages", "vus"],
        ExecutorKind::CapacitySearch => &["vus"],
    }
}

/// Checks a merged configuration.
pub fn validate(cfg: &Config, origin: &str) -> Result<(), ConfigError> {
    let bad = |key: &str, msg: String| Err(ConfigError::invalid(origin, key, msg));
    if cfg.scenarios.is_empty() {
        return bad("scenarios", "at least one scenario is required".into());
    }
    if cfg
        .scenarios
        .iter()
        .any(|s| s.executor_kind() == ExecutorKind::CapacitySearch)
    {
        validate_capacity(cfg, origin)?;
    }
    if let Some(id) = &cfg.run.id
        && (id.is_empty()
            || id.len() > 128
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)))
    {
        return bad(
            "run.id",
            format!("{id:?}: use 1-128 characters of A-Z a-z 0-9 - _ . :"),
        );
    }
    match cfg.run.workers {
        Some(0) => return bad("run.workers", "must be at least 1 (--workers)".into()),
        Some(w) if w > MAX_WORKERS => {
            return bad(
                "run.workers",
                format!(
                    "{w} worker threads: at most {MAX_WORKERS} (--workers; one per CPU is the default and usually best)"
                ),
            );
        }
        _ => {}
    }
    if cfg.run.busy_poll.get() > MAX_BUSY_POLL {
        return bad(
            "run.busy_poll",
            format!(
                "{}: at most {} (--busy-poll: how long an idle worker keeps polling; a bare number is seconds, write e.g. 100us)",
                cfg.run.busy_poll,
                super::Dur(MAX_BUSY_POLL)
            ),
        );
    }
    if cfg.run.timeline_interval.get() < MIN_TIMELINE_INTERVAL {
        return bad(
            "run.timeline_interval",
            format!(
                "{}: at least {} (--timeline-interval: the summary's timeline interval; a bare number is seconds, write e.g. 100ms)",
                cfg.run.timeline_interval,
                super::Dur(MIN_TIMELINE_INTERVAL)
            ),
        );
    }
    if cfg
        .metrics
        .interval
        .is_some_and(|i| i.get() < std::time::Duration::from_millis(100))
    {
        return bad("metrics.interval", "must be at least 100ms".into());
    }
    if let Some(b) = &cfg.metrics.buckets
        && (b.is_empty() || b.windows(2).any(|w| w[0] >= w[1]) || b.iter().any(|v| !v.is_finite()))
    {
        return bad(
            "metrics.buckets",
            "must be a non-empty, strictly increasing list of finite numbers".into(),
        );
    }
    if !(-10..=20).contains(&cfg.metrics.exponential_max_scale) {
        return bad(
            "metrics.exponential_max_scale",
            "must be between -10 and 20".into(),
        );
    }
    if let Some(id) = &cfg.metrics.instance_id
        && (id.trim().is_empty() || id.chars().any(char::is_control))
    {
        return bad(
            "metrics.instance_id",
            "must be a non-empty name without control characters".into(),
        );
    }
    if let Some(otlp) = &cfg.metrics.otlp {
        for (k, v) in &otlp.headers {
            let key = format!("metrics.otlp.headers.{k}");
            if http::HeaderName::from_bytes(k.as_bytes()).is_err() {
                return bad(&key, "not a valid header name".into());
            }
            // The value may be a secret: say what is wrong, never what it is.
            if http::HeaderValue::from_str(v).is_err() {
                return bad(
                    &key,
                    "not a valid header value (control characters such as CR or LF)".into(),
                );
            }
        }
    }
    if let Some(r) = cfg.tracing.sample_ratio
        && !(0.0..=1.0).contains(&r)
    {
        return bad(
            "tracing.sample_ratio",
            format!(
                "{r}: a fraction from 0 (off) to 1 (every request), e.g. 0.01 (--trace-sample-ratio)"
            ),
        );
    }
    if cfg.tracing.export.is_some() && cfg.tracing.sample_ratio.is_none_or(|r| r <= 0.0) {
        return bad(
            "tracing.export",
            "client spans need sampled requests: set tracing.sample_ratio (--trace-sample-ratio) above 0".into(),
        );
    }
    if cfg.defaults.timeout.get().is_zero() {
        return bad("defaults.timeout", "must be greater than 0".into());
    }
    if cfg.defaults.connect_timeout.get().is_zero() {
        return bad("defaults.connect_timeout", "must be greater than 0".into());
    }
    if !(1..=MAX_H2_STREAMS).contains(&cfg.defaults.h2_max_streams) {
        return bad(
            "defaults.h2_max_streams",
            format!(
                "{}: use 1 to {MAX_H2_STREAMS} concurrent streams per HTTP/2 connection (--h2-streams)",
                cfg.defaults.h2_max_streams
            ),
        );
    }
    let mut names = BTreeSet::new();
    let mut total_vus: u64 = 0;
    for (i, sc) in cfg.scenarios.iter().enumerate() {
        let at = format!("scenarios[{i}]");
        if !names.insert(sc.name.as_str()) {
            return bad(
                &format!("{at}.name"),
                format!("duplicate scenario name {:?}", sc.name),
            );
        }
        validate_scenario(sc, &at, origin)?;
        total_vus = total_vus.saturating_add(peak_vus(sc));
    }
    if total_vus > MAX_VUS {
        return bad(
            "scenarios",
            format!("the scenarios need {total_vus} VUs together; at most {MAX_VUS} per run"),
        );
    }
    Ok(())
}

/// The most VUs a valid scenario can have at once (the plan's `Schedule::max_vus`, before it
/// exists; open-model defaults are at most 2000).
fn peak_vus(sc: &ScenarioConfig) -> u64 {
    match sc.executor_kind() {
        ExecutorKind::RampingVus => sc
            .stages
            .iter()
            .map(|s| s.target)
            .fold(sc.start.unwrap_or(0.0), f64::max)
            .ceil() as u64,
        ExecutorKind::ConstantArrivalRate
        | ExecutorKind::RampingArrivalRate
        | ExecutorKind::CapacitySearch => sc.vus.unwrap_or(2000),
        ExecutorKind::ConstantVus | ExecutorKind::SharedIterations => sc.vus.unwrap_or(1),
    }
}

fn validate_scenario(sc: &ScenarioConfig, at: &str, origin: &str) -> Result<(), ConfigError> {
    let bad =
        |key: &str, msg: String| Err(ConfigError::invalid(origin, format!("{at}.{key}"), msg));
    if sc.name.is_empty() {
        return bad("name", "must not be empty".into());
    }
    if sc.tasks.is_empty() && sc.requests.is_empty() {
        return bad("requests", "a scenario needs requests or tasks".into());
    }
    if !sc.tasks.is_empty() && !sc.requests.is_empty() {
        return bad("requests", "give either requests or tasks, not both".into());
    }
    for (t, task) in sc.tasks.iter().enumerate() {
        if task.weight == 0 {
            return bad(&format!("tasks[{t}].weight"), "must be at least 1".into());
        }
        if task.requests.is_empty() {
            return bad(&format!("tasks[{t}].requests"), "must not be empty".into());
        }
    }
    for (key, rc) in requests_with_keys(sc) {
        check_think_time(rc.think_time.as_ref())
            .map_err(|m| ConfigError::invalid(origin, format!("{at}.{key}.think_time"), m))?;
    }
    check_think_time(sc.think_time.as_ref())
        .map_err(|m| ConfigError::invalid(origin, format!("{at}.think_time"), m))?;

    let kind = sc.executor_kind();
    let allowed = executor_keys(kind);
    let present = [
        ("vus", sc.vus.is_some(), " (set in the file or by --vus)"),
        (
            "duration",
            sc.duration.is_some(),
            " (set in the file or by --duration)",
        ),
        (
            "iterations",
            sc.iterations.is_some(),
            " (set in the file or by --iterations)",
        ),
        ("rate", sc.rate.is_some(), " (set in the file or by --rate)"),
        ("stages", !sc.stages.is_empty(), ""),
        ("start", sc.start.is_some(), ""),
    ];
    for (key, set, flag) in present {
        if set && !allowed.contains(&key) {
            let how = if sc.executor.is_some() {
                ""
            } else {
                "; the executor was inferred from the other keys, set executor to choose one"
            };
            return bad(
                key,
                format!(
                    "{} takes {}, not {key}, which it would ignore{flag}{how}",
                    kind.as_str(),
                    allowed.join(", "),
                ),
            );
        }
    }
    match sc.vus {
        Some(0) => return bad("vus", "must be at least 1".into()),
        Some(v) if v > MAX_VUS => {
            return bad("vus", format!("{v} VUs: at most {MAX_VUS} per run"));
        }
        _ => {}
    }
    if sc.duration.is_some_and(|d| d.get().is_zero()) {
        return bad("duration", "must be greater than 0".into());
    }
    match kind {
        ExecutorKind::ConstantVus => {
            if sc.duration.is_none() && sc.iterations.is_none() {
                return bad(
                    "duration",
                    "constant-vus needs a duration or iterations".into(),
                );
            }
        }
        ExecutorKind::SharedIterations => {
            if sc.iterations.is_none_or(|i| i == 0) {
                return bad(
                    "iterations",
                    "shared-iterations needs iterations > 0".into(),
                );
            }
        }
        ExecutorKind::RampingVus | ExecutorKind::RampingArrivalRate => {
            let (max, unit) = if kind == ExecutorKind::RampingVus {
                (MAX_VUS as f64, "VUs")
            } else {
                (MAX_RATE, "iterations/s")
            };
            if sc.stages.is_empty() {
                return bad("stages", format!("{} needs stages", kind.as_str()));
            }
            for (s, st) in sc.stages.iter().enumerate() {
                check_level(st.target, max, unit)
                    .or_else(|m| bad(&format!("stages[{s}].target"), m))?;
            }
            if let Some(start) = sc.start {
                check_level(start, max, unit).or_else(|m| bad("start", m))?;
            }
            let mut total = std::time::Duration::ZERO;
            for st in &sc.stages {
                total = total
                    .checked_add(st.duration.get())
                    .filter(|t| *t <= super::MAX_DURATION)
                    .ok_or_else(|| {
                        ConfigError::invalid(
                            origin,
                            format!("{at}.stages"),
                            "the stages last more than 365 days together; every duration, stage totals included, is at most 365 days",
                        )
                    })?;
            }
            if total.is_zero() {
                return bad(
                    "stages",
                    "total stage duration must be greater than 0".into(),
                );
            }
        }
        ExecutorKind::ConstantArrivalRate => {
            match sc.rate {
                Some(r) if r.is_finite() && r > 0.0 && r <= MAX_RATE => {}
                Some(r) if r > MAX_RATE => {
                    return bad(
                        "rate",
                        format!("{r} iterations/s: at most {MAX_RATE} per scenario"),
                    );
                }
                _ => {
                    return bad(
                        "rate",
                        "constant-arrival-rate needs rate > 0 (per second)".into(),
                    );
                }
            }
            if sc.duration.is_none() {
                return bad("duration", "constant-arrival-rate needs a duration".into());
            }
        }
        ExecutorKind::CapacitySearch => {}
    }
    Ok(())
}

/// A capacity search's precision: `Ok((value, relative))`, `5%` → `(0.05, true)`, `20` →
/// `(20.0, false)` iterations/s.
pub fn parse_precision(s: &str) -> Result<(f64, bool), String> {
    let t = s.trim();
    let (num, rel) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), true),
        None => (t, false),
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && (!rel || v < 100.0) => {
            Ok((if rel { v / 100.0 } else { v }, rel))
        }
        _ => Err(format!(
            "`{s}`: write a percentage of the rate (5%, below 100%) or iterations/s (20), above 0"
        )),
    }
}

/// The `[capacity]` table, and a capacity-search scenario's place (the only one). Checked with
/// the rest when a scenario is a capacity search, and by every capacity search.
pub fn validate_capacity(cfg: &Config, origin: &str) -> Result<(), ConfigError> {
    let bad = |key: &str, msg: String| Err(ConfigError::invalid(origin, key, msg));
    let c = &cfg.capacity;
    let searching = cfg
        .scenarios
        .iter()
        .position(|s| s.executor_kind() == ExecutorKind::CapacitySearch);
    if let Some(i) = searching
        && cfg.scenarios.len() > 1
    {
        return bad(
            &format!("scenarios[{i}].executor"),
            "capacity-search must be the only scenario (the search sets one global rate)".into(),
        );
    }
    if !(c.start_rate.is_finite() && c.start_rate > 0.0 && c.start_rate <= MAX_RATE) {
        return bad(
            "capacity.start_rate",
            format!("must be above 0 and at most {MAX_RATE} (iterations/s)"),
        );
    }
    if !(c.max_rate.is_finite() && c.max_rate >= c.start_rate && c.max_rate <= MAX_RATE) {
        return bad(
            "capacity.max_rate",
            format!(
                "must be at least start_rate ({}) and at most {MAX_RATE} (iterations/s)",
                c.start_rate
            ),
        );
    }
    if !(c.growth.is_finite() && c.growth > 1.0 && c.growth <= 100.0) {
        return bad("capacity.growth", "must be above 1 and at most 100".into());
    }
    if c.step_duration.get() < std::time::Duration::from_millis(500) {
        return bad("capacity.step_duration", "must be at least 500ms".into());
    }
    if c.max_duration.get() < c.step_duration.get() {
        return bad(
            "capacity.max_duration",
            "must be at least one step_duration".into(),
        );
    }
    if let Err(m) = parse_precision(&c.precision) {
        return bad("capacity.precision", m);
    }
    Ok(())
}

/// A stage target or start: a number in `0..=max`.
fn check_level(v: f64, max: f64, unit: &str) -> Result<(), String> {
    if !v.is_finite() || v < 0.0 {
        Err("must be a number >= 0".into())
    } else if v > max {
        Err(format!("{v} {unit}: at most {max}"))
    } else {
        Ok(())
    }
}

fn check_think_time(tt: Option<&ThinkTime>) -> Result<(), String> {
    match tt {
        Some(ThinkTime::Uniform { min, max }) if min > max => {
            Err(format!("min ({min}) must not exceed max ({max})"))
        }
        _ => Ok(()),
    }
}

/// Every request of a scenario with its key relative to the scenario (`requests[1]`).
fn requests_with_keys(sc: &ScenarioConfig) -> impl Iterator<Item = (String, &RequestConfig)> {
    let on_start = sc
        .on_start
        .iter()
        .enumerate()
        .map(|(r, rc)| (format!("on_start[{r}]"), rc));
    let requests = sc
        .requests
        .iter()
        .enumerate()
        .map(|(r, rc)| (format!("requests[{r}]"), rc));
    let tasks = sc.tasks.iter().enumerate().flat_map(|(t, task)| {
        task.requests
            .iter()
            .enumerate()
            .map(move |(r, rc)| (format!("tasks[{t}].requests[{r}]"), rc))
    });
    on_start.chain(requests).chain(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Dur;

    fn scenario(toml_text: &str) -> ScenarioConfig {
        let mut sc: ScenarioConfig = toml::from_str(toml_text).expect("scenario");
        if sc.requests.is_empty() && sc.tasks.is_empty() {
            sc.requests.push(RequestConfig {
                url: "http://127.0.0.1:1/".into(),
                ..Default::default()
            });
        }
        sc
    }

    fn check(sc: ScenarioConfig) -> Result<(), String> {
        let cfg = Config {
            scenarios: vec![sc],
            ..Default::default()
        };
        validate(&cfg, "s.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn every_executor_refuses_the_keys_it_would_ignore() {
        // (scenario, the offending key) — one line per executor and foreign key.
        let cases = [
            (
                "executor = \"constant-vus\"\nvus = 1\nduration = 1\nrate = 5",
                "rate",
            ),
            (
                "executor = \"constant-vus\"\nvus = 1\nduration = 1\nstages = [{ duration = 1, target = 1 }]",
                "stages",
            ),
            (
                "executor = \"constant-vus\"\nvus = 1\nduration = 1\nstart = 1",
                "start",
            ),
            (
                "executor = \"ramping-vus\"\nvus = 3\nstages = [{ duration = 1, target = 1 }]",
                "vus",
            ),
            (
                "executor = \"ramping-vus\"\nduration = 3\nstages = [{ duration = 1, target = 1 }]",
                "duration",
            ),
            (
                "executor = \"ramping-vus\"\niterations = 3\nstages = [{ duration = 1, target = 1 }]",
                "iterations",
            ),
            (
                "executor = \"shared-iterations\"\niterations = 3\nrate = 1",
                "rate",
            ),
            (
                "executor = \"constant-arrival-rate\"\nrate = 1\nduration = 1\nstages = [{ duration = 1, target = 1 }]",
                "stages",
            ),
            (
                "executor = \"constant-arrival-rate\"\nrate = 1\nduration = 1\niterations = 5",
                "iterations",
            ),
            (
                "executor = \"ramping-arrival-rate\"\nrate = 1\nstages = [{ duration = 1, target = 1 }]",
                "rate",
            ),
            (
                "executor = \"ramping-arrival-rate\"\nduration = 1\nstages = [{ duration = 1, target = 1 }]",
                "duration",
            ),
            // Inferred executors too: rate makes it constant-arrival-rate.
            (
                "rate = 1\nduration = 1\nstages = [{ duration = 1, target = 1 }]",
                "stages",
            ),
        ];
        for (text, key) in cases {
            let e = check(scenario(text)).expect_err(text);
            assert!(
                e.contains(&format!("`scenarios[0].{key}`")) && e.contains("would ignore"),
                "{text}: {e}"
            );
        }
        // What each executor takes is accepted.
        for text in [
            "executor = \"constant-vus\"\nvus = 2\nduration = 1\niterations = 9",
            "executor = \"ramping-vus\"\nstart = 1\nstages = [{ duration = 1, target = 1 }]",
            "executor = \"shared-iterations\"\nvus = 2\niterations = 3\nduration = 5",
            "executor = \"constant-arrival-rate\"\nrate = 1\nduration = 1\nvus = 4",
            "executor = \"ramping-arrival-rate\"\nstart = 1\nvus = 4\nstages = [{ duration = 1, target = 1 }]",
        ] {
            check(scenario(text)).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
    }

    #[test]
    fn limits_are_enforced_with_the_key_named() {
        let cases = [
            ("rate = 1e12\nduration = 1", "scenarios[0].rate", "at most"),
            (
                "rate = 10000001\nduration = 1",
                "scenarios[0].rate",
                "at most",
            ),
            (
                "vus = 1000000000000\nduration = 1",
                "scenarios[0].vus",
                "at most 1000000",
            ),
            (
                "stages = [{ duration = 1, target = 2e6 }]",
                "scenarios[0].stages[0].target",
                "at most",
            ),
            (
                "executor = \"ramping-arrival-rate\"\nstart = 2e7\nstages = [{ duration = 1, target = 1 }]",
                "scenarios[0].start",
                "at most",
            ),
            (
                "stages = [{ duration = \"300d\", target = 1 }, { duration = \"100d\", target = 1 }]",
                "scenarios[0].stages",
                "365 days",
            ),
        ];
        for (text, key, needle) in cases {
            let e = check(scenario(text)).expect_err(text);
            assert!(
                e.contains(&format!("`{key}`")) && e.contains(needle),
                "{text}: {e}"
            );
        }
        check(scenario("rate = 10000000\nduration = 1\nvus = 10")).expect("the maximum rate");
        check(scenario("vus = 1000000\nduration = 1")).expect("the maximum VUs");
        // The VU limit is per run: two scenarios of 600k are too many together.
        let mut a = scenario("vus = 600000\nduration = 1");
        a.name = "a".into();
        let mut b = a.clone();
        b.name = "b".into();
        let cfg = Config {
            scenarios: vec![a, b],
            ..Default::default()
        };
        let e = validate(&cfg, "s.toml").expect_err("1.2M VUs").to_string();
        assert!(e.contains("`scenarios`") && e.contains("1200000"), "{e}");
        let mut cfg = Config {
            scenarios: vec![scenario("vus = 1\nduration = 1")],
            ..Default::default()
        };
        cfg.run.workers = Some(20_000);
        let e = validate(&cfg, "s.toml").expect_err("workers").to_string();
        assert!(e.contains("`run.workers`") && e.contains("1024"), "{e}");
        cfg.run.workers = Some(MAX_WORKERS);
        validate(&cfg, "s.toml").expect("1024 workers");
        for (n, ok) in [
            (0, false),
            (1, true),
            (MAX_H2_STREAMS, true),
            (MAX_H2_STREAMS + 1, false),
        ] {
            cfg.defaults.h2_max_streams = n;
            let r = validate(&cfg, "s.toml");
            assert_eq!(r.is_ok(), ok, "{n}");
            if let Err(e) = r {
                let e = e.to_string();
                assert!(
                    e.contains("`defaults.h2_max_streams`") && e.contains("--h2-streams"),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn think_time_ranges_are_ordered_at_every_level() {
        let mut sc = scenario("vus = 1\nduration = 1");
        sc.requests[0].think_time = Some(ThinkTime::Uniform {
            min: Dur::secs(2),
            max: Dur::secs(1),
        });
        let e = check(sc.clone()).expect_err("request-level");
        assert!(e.contains("`scenarios[0].requests[0].think_time`"), "{e}");
        sc.requests[0].think_time = None;
        sc.think_time = Some(ThinkTime::Uniform {
            min: Dur::secs(2),
            max: Dur::secs(1),
        });
        let e = check(sc).expect_err("scenario-level");
        assert!(e.contains("`scenarios[0].think_time`"), "{e}");
    }

    #[test]
    fn otlp_header_values_with_line_breaks_are_refused() {
        let mut cfg = Config {
            scenarios: vec![scenario("vus = 1\nduration = 1")],
            ..Default::default()
        };
        cfg.metrics.otlp = Some(crate::config::OtlpConfig {
            headers: [("api-key".to_string(), "sec\r\nret".to_string())].into(),
            ..Default::default()
        });
        let e = validate(&cfg, "s.toml").expect_err("CR/LF").to_string();
        assert!(e.contains("`metrics.otlp.headers.api-key`"), "{e}");
        assert!(!e.contains("sec"), "the value is never printed: {e}");
    }
    #[test]
    fn the_readme_executor_table_lists_exactly_the_keys_each_executor_takes() {
        let readme = include_str!("../../README.md");
        let kinds = [
            ExecutorKind::ConstantVus,
            ExecutorKind::RampingVus,
            ExecutorKind::SharedIterations,
            ExecutorKind::ConstantArrivalRate,
            ExecutorKind::RampingArrivalRate,
            ExecutorKind::CapacitySearch,
        ];
        for kind in kinds {
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", kind.as_str())))
                .unwrap_or_else(|| panic!("no README row for {}", kind.as_str()));
            let keys_column = row.rsplit('|').nth(1).unwrap_or_default();
            // The first word of each `…` span: `stages = [{ duration, target }]` is `stages`.
            let mut listed: Vec<&str> = keys_column
                .split('`')
                .skip(1)
                .step_by(2)
                .filter_map(|span| span.split_whitespace().next())
                .collect();
            listed.sort_unstable();
            let mut takes = executor_keys(kind).to_vec();
            takes.sort_unstable();
            assert_eq!(listed, takes, "README row: {row}");
        }
    }
}
