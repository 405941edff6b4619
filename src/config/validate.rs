//! Semantic checks that serde cannot express: every executor has what it needs, numbers are in
//! range, thresholds parse. Each error names the key.

use std::collections::BTreeSet;

use super::load::ConfigError;
use super::{Config, ExecutorKind, ScenarioConfig, ThinkTime};

/// Checks a merged configuration.
pub fn validate(cfg: &Config, origin: &str) -> Result<(), ConfigError> {
    let bad = |key: String, msg: String| Err(ConfigError::invalid(origin, key, msg));
    if cfg.scenarios.is_empty() {
        return bad(
            "scenarios".into(),
            "at least one scenario is required".into(),
        );
    }
    if let Some(id) = &cfg.run.id
        && (id.is_empty()
            || id.len() > 128
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)))
    {
        return bad(
            "run.id".into(),
            format!("`{id}`: use 1-128 characters of [A-Za-z0-9-_.:]"),
        );
    }
    if cfg.run.workers == Some(0) {
        return bad("run.workers".into(), "must be at least 1".into());
    }
    if cfg
        .metrics
        .interval
        .is_some_and(|i| i.get() < std::time::Duration::from_millis(100))
    {
        return bad("metrics.interval".into(), "must be at least 100ms".into());
    }
    if let Some(b) = &cfg.metrics.buckets {
        if b.is_empty() || b.windows(2).any(|w| w[0] >= w[1]) || b.iter().any(|v| !v.is_finite()) {
            return bad(
                "metrics.buckets".into(),
                "must be a non-empty, strictly increasing list of finite numbers".into(),
            );
        }
    }
    if !(-10..=20).contains(&cfg.metrics.exponential_max_scale) {
        return bad(
            "metrics.exponential_max_scale".into(),
            "must be between -10 and 20".into(),
        );
    }
    if cfg.defaults.timeout.get().is_zero() {
        return bad("defaults.timeout".into(), "must be greater than 0".into());
    }
    for (i, t) in cfg.thresholds.iter().enumerate() {
        if let Err(e) = crate::threshold::Threshold::parse(t) {
            return bad(format!("thresholds[{i}]"), e.to_string());
        }
    }
    let mut names = BTreeSet::new();
    for (i, sc) in cfg.scenarios.iter().enumerate() {
        if !names.insert(sc.name.as_str()) {
            return bad(
                format!("scenarios[{i}].name"),
                format!("duplicate scenario name `{}`", sc.name),
            );
        }
        validate_scenario(sc, &format!("scenarios[{i}]"), origin)?;
    }
    Ok(())
}

fn validate_scenario(sc: &ScenarioConfig, at: &str, origin: &str) -> Result<(), ConfigError> {
    let bad =
        |key: &str, msg: String| Err(ConfigError::invalid(origin, format!("{at}.{key}"), msg));
    if sc.name.is_empty() {
        return bad("name", "must not be empty".into());
    }
    if sc.tasks.is_empty() && sc.requests.is_empty() {
        return bad("requests", "a scenario needs `requests` or `tasks`".into());
    }
    if !sc.tasks.is_empty() && !sc.requests.is_empty() {
        return bad(
            "requests",
            "give either `requests` or `tasks`, not both".into(),
        );
    }
    for (t, task) in sc.tasks.iter().enumerate() {
        if task.weight == 0 {
            return bad(&format!("tasks[{t}].weight"), "must be at least 1".into());
        }
        if task.requests.is_empty() {
            return bad(&format!("tasks[{t}].requests"), "must not be empty".into());
        }
    }
    if sc.vus == Some(0) {
        return bad("vus", "must be at least 1".into());
    }
    if let Some(ThinkTime::Uniform { min, max }) = &sc.think_time
        && min > max
    {
        return bad("think_time", "min must not exceed max".into());
    }
    let kind = sc.executor_kind();
    let need_duration = |what: &str| -> Result<(), ConfigError> {
        match sc.duration {
            Some(d) if !d.get().is_zero() => Ok(()),
            Some(_) => bad("duration", "must be greater than 0".into()),
            None => bad("duration", format!("{what} needs a duration")),
        }
    };
    match kind {
        ExecutorKind::ConstantVus => {
            if sc.duration.is_none() && sc.iterations.is_none() {
                return bad(
                    "duration",
                    "constant-vus needs a duration or iterations".into(),
                );
            }
            if sc.duration.is_some_and(|d| d.get().is_zero()) {
                return bad("duration", "must be greater than 0".into());
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
            if sc.stages.is_empty() {
                return bad("stages", format!("{} needs stages", kind.as_str()));
            }
            for (s, st) in sc.stages.iter().enumerate() {
                if !st.target.is_finite() || st.target < 0.0 {
                    return bad(
                        &format!("stages[{s}].target"),
                        "must be a number >= 0".into(),
                    );
                }
            }
            if sc.start.is_some_and(|s| !s.is_finite() || s < 0.0) {
                return bad("start", "must be a number >= 0".into());
            }
            if sc.stages.iter().all(|s| s.duration.get().is_zero()) {
                return bad(
                    "stages",
                    "total stage duration must be greater than 0".into(),
                );
            }
        }
        ExecutorKind::ConstantArrivalRate => {
            match sc.rate {
                Some(r) if r.is_finite() && r > 0.0 => {}
                _ => {
                    return bad(
                        "rate",
                        "constant-arrival-rate needs rate > 0 (per second)".into(),
                    );
                }
            }
            need_duration("constant-arrival-rate")?;
        }
    }
    if matches!(
        kind,
        ExecutorKind::ConstantArrivalRate | ExecutorKind::RampingArrivalRate
    ) && sc.iterations.is_some()
    {
        return bad(
            "iterations",
            "arrival-rate executors are paced by rate and duration; remove iterations".into(),
        );
    }
    Ok(())
}
