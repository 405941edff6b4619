//! Thresholds: a small expression language evaluated against the end-of-run aggregate, and
//! (with a window) on a sliding window during the run (see `crate::window`).
//!
//! ```text
//! threshold  := metric [ "[" window "]" ] [ "{" filter ("," filter)* "}" ] op value
//! metric     := p50 | p90 | p95 | p99 | p99.9 | p<N> | min | max | mean | avg
//!             | error_rate | rps | requests | failures | iterations | dropped_iterations
//!             | check_rate | check_failures
//! filter     := (name | method | scenario) "=" text
//! window     := number ( "ms" | "s" | "m" | "h" )
//! op         := "<" | "<=" | ">" | ">=" | "==" | "!="
//! value      := number [ "us" | "ms" | "s" | "m" | "%" ]
//! ```
//!
//! Latency metrics take a duration (`500ms`, `1.5s`; a bare number means milliseconds).
//! `error_rate` and `check_rate` take a ratio (`1%` or `0.01`). Examples: `p99 < 500ms`,
//! `p95{name=/login} < 1s`, `error_rate < 1%`, `rps > 100`, `p99[30s] < 500ms`,
//! `error_rate[1m]{name=/login} < 1%`. k6's forms (`http_req_duration: p(95)<200`,
//! `http_req_failed < 0.01`, `{name:/login}` tags) are refused with the exact expression to
//! write instead ([`k6_form`]); that a filter names a request of the plan is checked by the plan.
//!
//! A window (`p99[30s]`) judges every span of that length, sliding by the timeline interval,
//! during the run; the threshold holds when every judged window held, and its final `actual` is
//! the worst window's value. `abort_on_fail` and `delay` are not part of the expression: they
//! come from the file's table form or `--abort-on-fail` (see [`Threshold::abort_on_fail`]).

use std::fmt;

use serde::Serialize;

/// What a threshold measures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    /// A latency percentile (0–100).
    Percentile(f64),
    /// Fastest request.
    Min,
    /// Slowest request.
    Max,
    /// Mean latency.
    Mean,
    /// failures / requests.
    ErrorRate,
    /// Requests per second over the run.
    Rps,
    /// Requests sent.
    Requests,
    /// Requests with an error type.
    Failures,
    /// Completed iterations.
    Iterations,
    /// Iterations dropped by arrival-rate executors.
    DroppedIterations,
    /// Passed checks / all checks.
    CheckRate,
    /// Failed checks.
    CheckFailures,
}

impl Metric {
    fn is_latency(self) -> bool {
        matches!(
            self,
            Metric::Percentile(_) | Metric::Min | Metric::Max | Metric::Mean
        )
    }
    fn is_ratio(self) -> bool {
        matches!(self, Metric::ErrorRate | Metric::CheckRate)
    }
}

/// Comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => (a - b).abs() <= f64::EPSILON * a.abs().max(b.abs()).max(1.0),
            Op::Ne => (a - b).abs() > f64::EPSILON * a.abs().max(b.abs()).max(1.0),
        }
    }
}

/// Restricts a threshold to some requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Request name (`url.template`).
    pub name: Option<String>,
    /// HTTP method.
    pub method: Option<String>,
    /// Scenario.
    pub scenario: Option<String>,
}

/// A parsed threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// The text as written.
    pub source: String,
    /// What is measured.
    pub metric: Metric,
    /// Which requests.
    pub filter: Filter,
    /// How it is compared.
    pub op: Op,
    /// The limit, in seconds for latencies and as a ratio for rates.
    pub value: f64,
    /// The sliding window (`p99[30s]`); `None`: the whole run.
    pub window: Option<std::time::Duration>,
    /// Stop the run as soon as the threshold is crossed (judged live).
    pub abort_on_fail: bool,
    /// No live verdict before this long into the run (warm-up); windows that end earlier are
    /// not judged at all.
    pub delay: std::time::Duration,
}

/// Why a threshold does not parse.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("threshold `{text}`: {message}")]
pub struct ParseError {
    text: String,
    message: String,
}

/// The outcome of one threshold.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// The expression.
    pub threshold: String,
    /// The measured value (seconds for latencies, ratio for rates); `null` if nothing matched.
    pub actual: Option<f64>,
    /// Whether it held.
    pub ok: bool,
}

/// Gives thresholds their values.
pub trait Source {
    /// The value of `metric` over the requests matching `filter`, or `None` if none match.
    fn value(&self, metric: Metric, filter: &Filter) -> Option<f64>;
}

impl Threshold {
    /// Parses one expression. k6's forms (`http_req_duration: p(95)<200`,
    /// `http_req_failed: rate<0.01`, `http_reqs > 100`, `{name:/login}` filters) are refused
    /// with the exact stampede expression to write instead (see [`k6_form`]).
    pub fn parse(text: &str) -> Result<Threshold, ParseError> {
        Threshold::parse_ours(text).map_err(|e| match k6_form(text.trim()) {
            Some(ours) => ParseError {
                text: text.trim().to_string(),
                message: format!(
                    "this is k6's syntax; did you mean `{ours}`?{}",
                    if ours.ends_with("ms") && !text.contains("ms") {
                        " (k6's bare numbers are milliseconds)"
                    } else {
                        ""
                    }
                ),
            },
            None => e,
        })
    }

    /// [`Threshold::parse`] without the k6 suggestions.
    fn parse_ours(text: &str) -> Result<Threshold, ParseError> {
        let err = |m: &str| ParseError {
            text: text.to_string(),
            message: m.to_string(),
        };
        let s = text.trim();
        if s.contains('{') && !s.contains('}') {
            return Err(err("missing `}` after the filter"));
        }
        // The comparison comes after the filter, whose values may contain `=`.
        let search_from = s.find('}').map_or(0, |i| i + 1);
        let op_pos = s[search_from..]
            .find(['<', '>', '=', '!'])
            .map(|i| i + search_from)
            .ok_or_else(|| err("missing comparison (<, <=, >, >=, ==, !=)"))?;
        let (lhs, rest) = s.split_at(op_pos);
        let (op, rhs) = if let Some(r) = rest.strip_prefix("<=") {
            (Op::Le, r)
        } else if let Some(r) = rest.strip_prefix(">=") {
            (Op::Ge, r)
        } else if let Some(r) = rest.strip_prefix("==") {
            (Op::Eq, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (Op::Ne, r)
        } else if let Some(r) = rest.strip_prefix('<') {
            (Op::Lt, r)
        } else if let Some(r) = rest.strip_prefix('>') {
            (Op::Gt, r)
        } else {
            return Err(err("unknown comparison; use <, <=, >, >=, == or !="));
        };
        let lhs = lhs.trim();
        let (lhs, window) = split_window(lhs).map_err(|m| err(&m))?;
        let (metric_txt, filter) = match lhs.find('{') {
            Some(i) => {
                let inner = lhs[i + 1..]
                    .strip_suffix('}')
                    .ok_or_else(|| err("missing `}` after the filter"))?;
                (lhs[..i].trim(), parse_filter(inner).map_err(|m| err(&m))?)
            }
            None => (lhs.as_str(), Filter::default()),
        };
        let metric = parse_metric(metric_txt).map_err(|m| match k6_percentile(metric_txt) {
            // k6 writes `p(95)`: show the whole expression as stampede writes it.
            Some(ours) => err(&format!(
                "unknown metric `{metric_txt}`; did you mean `{}`?",
                s.replacen(metric_txt, &ours, 1)
            )),
            None => err(&m),
        })?;
        let value = parse_value(rhs.trim(), metric).map_err(|m| err(&m))?;
        Ok(Threshold {
            source: s.to_string(),
            metric,
            filter,
            op,
            value,
            window,
            abort_on_fail: false,
            delay: std::time::Duration::ZERO,
        })
    }

    /// Whether `a` is a worse value than `b` for this threshold (larger for `<`/`<=`, smaller
    /// for `>`/`>=`, further from the limit for `==`/`!=`): how the worst window is chosen.
    pub fn worse(&self, a: f64, b: f64) -> bool {
        match self.op {
            Op::Lt | Op::Le => a > b,
            Op::Gt | Op::Ge => a < b,
            Op::Eq | Op::Ne => (a - self.value).abs() > (b - self.value).abs(),
        }
    }

    /// Whether `actual` meets the limit.
    pub fn holds(&self, actual: f64) -> bool {
        self.op.holds(actual, self.value)
    }

    /// Evaluates against a source.
    pub fn evaluate(&self, src: &dyn Source) -> Outcome {
        let actual = src.value(self.metric, &self.filter);
        Outcome {
            threshold: self.source.clone(),
            actual,
            ok: actual.is_some_and(|a| self.op.holds(a, self.value)),
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Takes a `[window]` out of the left-hand side (after the metric, or after the filter).
fn split_window(lhs: &str) -> Result<(String, Option<std::time::Duration>), String> {
    let Some(open) = lhs.find('[') else {
        if lhs.contains(']') {
            return Err("`]` without `[` before it".into());
        }
        return Ok((lhs.to_string(), None));
    };
    let close = lhs[open..]
        .find(']')
        .map(|i| i + open)
        .ok_or("missing `]` after the window")?;
    let w = parse_window(lhs[open + 1..close].trim())?;
    let rest = format!("{}{}", lhs[..open].trim_end(), &lhs[close + 1..]);
    if rest.contains('[') || rest.contains(']') {
        return Err("only one `[window]` per threshold".into());
    }
    Ok((rest.trim().to_string(), Some(w)))
}

/// `30s`, `1m`, `500ms`, `1h`, `1.5s`: a window length (a unit is required).
fn parse_window(w: &str) -> Result<std::time::Duration, String> {
    let split = w
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(w.len());
    let (num, unit) = w.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("window `{w}` is not a duration such as 30s, 1m or 500ms"))?;
    let scale = match unit.trim() {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "" => {
            return Err(format!(
                "window `{w}` needs a unit (ms, s, m or h), e.g. 30s"
            ));
        }
        u => return Err(format!("unknown window unit `{u}` (use ms, s, m or h)")),
    };
    let secs = n * scale;
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "window `{w}` must be longer than 0 and at most 24h"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

fn parse_filter(inner: &str) -> Result<Filter, String> {
    let mut f = Filter::default();
    for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("filter `{part}` must be key=value"))?;
        let v = v.trim().trim_matches('"').to_string();
        match k.trim() {
            "name" | "url.template" => f.name = Some(v),
            "method" => f.method = Some(v.to_ascii_uppercase()),
            "scenario" => f.scenario = Some(v),
            other => {
                return Err(format!(
                    "unknown filter key `{other}` (use name, method or scenario)"
                ));
            }
        }
    }
    Ok(f)
}

/// The metric names, for suggestions.
const METRICS: &[&str] = &[
    "p50",
    "p90",
    "p95",
    "p99",
    "p99.9",
    "min",
    "max",
    "mean",
    "avg",
    "error_rate",
    "rps",
    "requests",
    "failures",
    "iterations",
    "dropped_iterations",
    "check_rate",
    "check_failures",
];

/// The stampede expression for a k6 threshold, when `s` is one: a k6 metric name
/// (`http_req_duration`, `http_req_failed`, `http_reqs`, `iterations`, `dropped_iterations`,
/// `checks`) with or without its `: aggregation` (`p(95)`, `avg`, `med`, `min`, `max`,
/// `rate`, `count`), and `{tag:value}` filters (`name`, `method`, `scenario`;
/// `expected_response:true` is what stampede's latencies measure already). A bare latency
/// limit gets `ms`, k6's unit. `None` for anything else, and for a stampede expression whose
/// only k6 habit is `p(95)` (that one gets its own suggestion).
pub(crate) fn k6_form(s: &str) -> Option<String> {
    let search_from = s.find('}').map_or(0, |i| i + 1);
    let op_pos = s[search_from..].find(['<', '>', '=', '!'])? + search_from;
    let (lhs, rest) = s.split_at(op_pos);
    let op_len = if rest[1..].starts_with('=') { 2 } else { 1 };
    let (op, value) = (&rest[..op_len], rest[op_len..].trim());
    let lhs = lhs.trim();
    if lhs.contains('[') {
        return None;
    }
    let (head, agg) = match lhs.rfind(':').filter(|i| *i >= search_from.min(lhs.len())) {
        Some(i) if !lhs[i..].contains('}') => (lhs[..i].trim(), Some(lhs[i + 1..].trim())),
        _ => (lhs, None),
    };
    let (name, tags) = match head.find('{') {
        Some(i) => (head[..i].trim(), Some(head[i + 1..].strip_suffix('}')?)),
        None => (head, None),
    };
    let k6_tags = tags.is_some_and(|t| t.contains(':'));
    let metric = k6_metric(name, agg)?;
    if agg.is_none() && !k6_tags && !K6_METRICS.contains(&name) {
        return None;
    }
    let filter = match tags {
        Some(t) => k6_filter(t)?,
        None => String::new(),
    };
    let latency = parse_metric(&metric).is_ok_and(Metric::is_latency);
    let bare = !value.is_empty() && value.parse::<f64>().is_ok();
    let unit = if latency && bare { "ms" } else { "" };
    let ours = format!("{metric}{filter} {op} {value}{unit}");
    Threshold::parse_ours(&ours).ok().map(|_| ours)
}

/// k6's metric names that have a stampede counterpart.
const K6_METRICS: &[&str] = &[
    "http_req_duration",
    "http_req_failed",
    "http_reqs",
    "checks",
];

/// The stampede metric for a k6 metric and aggregation (or a stampede metric / `p(95)` with
/// k6 tags).
fn k6_metric(name: &str, agg: Option<&str>) -> Option<String> {
    let latency = |a: &str| match a {
        "avg" => Some("mean".to_string()),
        "min" | "max" => Some(a.to_string()),
        _ => k6_percentile(a),
    };
    Some(match (name, agg) {
        ("http_req_duration", Some(a)) => latency(a)?,
        ("http_req_failed", None | Some("rate")) => "error_rate".into(),
        ("http_reqs", None | Some("count")) => "requests".into(),
        ("http_reqs", Some("rate")) => "rps".into(),
        ("iterations", Some("count")) => "iterations".into(),
        ("dropped_iterations", Some("count")) => "dropped_iterations".into(),
        ("checks", None | Some("rate")) => "check_rate".into(),
        (m, None) if parse_metric(m).is_ok() => m.to_string(),
        (m, None) => k6_percentile(m)?,
        _ => return None,
    })
}

/// k6's `{name:/login, method:GET}` → `{name=/login,method=GET}` (`expected_response:true`
/// dropped: stampede's latencies are those of successful requests already).
fn k6_filter(tags: &str) -> Option<String> {
    let mut out = Vec::new();
    for part in tags.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once([':', '='])?;
        let (k, v) = (k.trim().trim_matches('"'), v.trim().trim_matches('"'));
        match k {
            "name" | "method" | "scenario" => out.push(format!("{k}={v}")),
            "expected_response" if v == "true" => {}
            _ => return None,
        }
    }
    Some(if out.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", out.join(","))
    })
}

/// k6's `p(95)` → `p95`; its `med` → `p50`.
fn k6_percentile(m: &str) -> Option<String> {
    if m == "med" {
        return Some("p50".into());
    }
    let q = m.strip_prefix("p(")?.strip_suffix(')')?.trim();
    q.parse::<f64>().ok().map(|_| format!("p{q}"))
}

fn parse_metric(m: &str) -> Result<Metric, String> {
    Ok(match m {
        "min" => Metric::Min,
        "max" => Metric::Max,
        "mean" | "avg" => Metric::Mean,
        "error_rate" => Metric::ErrorRate,
        "rps" => Metric::Rps,
        "requests" => Metric::Requests,
        "failures" => Metric::Failures,
        "iterations" => Metric::Iterations,
        "dropped_iterations" => Metric::DroppedIterations,
        "check_rate" => Metric::CheckRate,
        "check_failures" => Metric::CheckFailures,
        "p999" => Metric::Percentile(99.9),
        p if p.starts_with('p') && p[1..].parse::<f64>().is_ok() => {
            let q: f64 = p[1..]
                .parse()
                .map_err(|_| format!("unknown metric `{m}`"))?;
            if !(0.0..=100.0).contains(&q) {
                return Err(format!("percentile `{m}` must be between p0 and p100"));
            }
            Metric::Percentile(q)
        }
        _ => {
            let hint = crate::suggest::did_you_mean(m, METRICS.iter().copied())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(format!(
                "unknown metric `{m}`{hint} (use pNN, min, max, mean, error_rate, rps, requests, failures, iterations, dropped_iterations, check_rate, check_failures)"
            ));
        }
    })
}

fn parse_value(v: &str, metric: Metric) -> Result<f64, String> {
    if v.is_empty() {
        return Err("missing value after the comparison".into());
    }
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{v}` is not a number with an optional unit"))?;
    if !n.is_finite() {
        return Err(format!("`{v}` is not a finite number"));
    }
    let unit = unit.trim();
    if metric.is_latency() {
        let scale = match unit {
            "" | "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "s" => 1.0,
            "m" => 60.0,
            _ => {
                return Err(format!(
                    "unknown duration unit `{unit}` (use us, ms, s or m)"
                ));
            }
        };
        Ok(n * scale)
    } else if metric.is_ratio() {
        match unit {
            "%" => Ok(n / 100.0),
            "" => Ok(n),
            _ => Err(format!(
                "unknown unit `{unit}` for a rate (use % or a ratio)"
            )),
        }
    } else if unit.is_empty() {
        Ok(n)
    } else {
        Err(format!("`{unit}`: this metric takes a plain number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Source for Fixed {
        fn value(&self, metric: Metric, filter: &Filter) -> Option<f64> {
            if filter.name.as_deref() == Some("/missing") {
                return None;
            }
            Some(match metric {
                Metric::Percentile(q) if q >= 99.0 => 0.400,
                Metric::Percentile(_) => 0.100,
                Metric::ErrorRate => 0.02,
                Metric::Rps => 150.0,
                _ => 1.0,
            })
        }
    }

    #[test]
    fn parses_the_documented_examples() {
        let t = Threshold::parse("p99 < 500ms").unwrap();
        assert_eq!(t.metric, Metric::Percentile(99.0));
        assert_eq!(t.op, Op::Lt);
        assert!((t.value - 0.5).abs() < 1e-12);

        let t = Threshold::parse("p95{name=/login} < 1s").unwrap();
        assert_eq!(t.filter.name.as_deref(), Some("/login"));
        assert!((t.value - 1.0).abs() < 1e-12);

        let t = Threshold::parse("error_rate < 1%").unwrap();
        assert!((t.value - 0.01).abs() < 1e-12);

        let t = Threshold::parse("rps > 100").unwrap();
        assert_eq!((t.metric, t.op, t.value), (Metric::Rps, Op::Gt, 100.0));

        let t = Threshold::parse("p99.9{method=post, scenario=s1}<=2.5s").unwrap();
        assert_eq!(t.metric, Metric::Percentile(99.9));
        assert_eq!(t.filter.method.as_deref(), Some("POST"));
        assert_eq!(t.filter.scenario.as_deref(), Some("s1"));
        assert_eq!(t.op, Op::Le);
    }

    #[test]
    fn windows_parse_after_the_metric_or_the_filter() {
        use std::time::Duration;
        let t = Threshold::parse("p99[30s] < 500ms").unwrap();
        assert_eq!(t.metric, Metric::Percentile(99.0));
        assert_eq!(t.window, Some(Duration::from_secs(30)));
        assert!((t.value - 0.5).abs() < 1e-12);
        assert_eq!(t.source, "p99[30s] < 500ms");
        let t = Threshold::parse("error_rate[1m] < 1%").unwrap();
        assert_eq!(
            (t.metric, t.window),
            (Metric::ErrorRate, Some(Duration::from_secs(60)))
        );
        let t = Threshold::parse("p95[500ms]{name=/login} <= 1s").unwrap();
        assert_eq!(t.window, Some(Duration::from_millis(500)));
        assert_eq!(t.filter.name.as_deref(), Some("/login"));
        let t = Threshold::parse("p99.9{method=get}[1.5s]>=2").unwrap();
        assert_eq!(t.window, Some(Duration::from_millis(1500)));
        assert_eq!(t.filter.method.as_deref(), Some("GET"));
        assert_eq!(t.op, Op::Ge);
        let t = Threshold::parse("rps[1h] > 10").unwrap();
        assert_eq!(t.window, Some(Duration::from_secs(3600)));
        // Without a window, nothing changes.
        let t = Threshold::parse("p99 < 500ms").unwrap();
        assert_eq!((t.window, t.abort_on_fail), (None, false));
        for (text, needle) in [
            ("p99[30] < 1s", "needs a unit"),
            ("p99[30x] < 1s", "unknown window unit"),
            ("p99[0s] < 1s", "longer than 0"),
            ("p99[2d] < 1s", "unknown window unit"),
            ("p99[soon] < 1s", "not a duration"),
            ("p99[30s < 1s", "missing `]`"),
            ("p99 30s] < 1s", "without `[`"),
            ("p99[1s][2s] < 1s", "only one"),
            ("p99[25h] < 1s", "at most 24h"),
        ] {
            let e = Threshold::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn worst_depends_on_the_direction() {
        let lt = Threshold::parse("p99[1s] < 1s").unwrap();
        assert!(lt.worse(2.0, 1.0));
        let gt = Threshold::parse("rps[1s] > 10").unwrap();
        assert!(gt.worse(1.0, 2.0));
        assert!(gt.holds(11.0) && !gt.holds(9.0));
    }

    #[test]
    fn bare_latency_numbers_are_milliseconds() {
        assert!((Threshold::parse("p90 < 250").unwrap().value - 0.25).abs() < 1e-12);
    }

    #[test]
    fn rejects_bad_expressions_with_a_reason() {
        for (text, needle) in [
            ("p99 500ms", "comparison"),
            ("p99 < fast", "not a number"),
            ("latency < 1s", "unknown metric"),
            ("p99 < 5parsecs", "unknown duration unit"),
            ("p95{host=x} < 1s", "unknown filter key"),
            ("p95{name=x < 1s", "missing `}`"),
            ("rps > 10%", "plain number"),
            ("p101 < 1s", "between"),
            ("p99 <", "missing value"),
        ] {
            let e = Threshold::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
            assert!(e.contains(text.trim()), "{text}: {e}");
        }
    }

    #[test]
    fn k6_syntax_and_typos_get_a_suggestion() {
        let e = Threshold::parse("p(95) < 200").unwrap_err().to_string();
        assert_eq!(
            e,
            "threshold `p(95) < 200`: unknown metric `p(95)`; did you mean `p95 < 200`?"
        );
        let e = Threshold::parse("p(99.9){name=/a}<1s")
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("did you mean `p99.9{name=/a}<1s`?"), "{e}");
        let e = Threshold::parse("med < 1s").unwrap_err().to_string();
        assert!(e.contains("did you mean `p50 < 1s`?"), "{e}");
        let e = Threshold::parse("eror_rate < 1%").unwrap_err().to_string();
        assert!(e.contains("did you mean `error_rate`?"), "{e}");
        let e = Threshold::parse("pfast < 1s").unwrap_err().to_string();
        assert!(e.contains("unknown metric `pfast`"), "{e}");
    }

    #[test]
    fn k6_thresholds_are_refused_with_the_exact_stampede_form() {
        for (k6, ours) in [
            ("http_req_duration: p(95)<200", "p95 < 200ms"),
            ("http_req_duration:p(99.9) <= 1.5", "p99.9 <= 1.5ms"),
            ("http_req_duration: avg < 100", "mean < 100ms"),
            ("http_req_duration: med<50", "p50 < 50ms"),
            ("http_req_duration: max < 2s", "max < 2s"),
            (
                "http_req_duration{name:/login}: p(95)<200",
                "p95{name=/login} < 200ms",
            ),
            (
                "http_req_duration{expected_response:true, method:POST}: p(90) < 300",
                "p90{method=POST} < 300ms",
            ),
            ("p(95){name:/login} < 200", "p95{name=/login} < 200ms"),
            ("p95{name:/login} < 1s", "p95{name=/login} < 1s"),
            ("http_req_failed < 0.01", "error_rate < 0.01"),
            ("http_req_failed: rate<0.01", "error_rate < 0.01"),
            (
                "http_req_failed{scenario:smoke}: rate < 1%",
                "error_rate{scenario=smoke} < 1%",
            ),
            ("http_reqs > 100", "requests > 100"),
            ("http_reqs: count>100", "requests > 100"),
            ("http_reqs: rate>=50", "rps >= 50"),
            ("iterations: count > 10", "iterations > 10"),
            ("dropped_iterations: count == 0", "dropped_iterations == 0"),
            ("checks: rate>0.99", "check_rate > 0.99"),
        ] {
            let e = Threshold::parse(k6).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!(
                    "threshold `{k6}`: this is k6's syntax; did you mean `{ours}`?"
                )),
                "{k6}: {e}"
            );
            // The suggestion is a valid stampede threshold.
            Threshold::parse(ours).unwrap_or_else(|e| panic!("{ours}: {e}"));
        }
        let e = Threshold::parse("http_req_duration: p(95)<200")
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("(k6's bare numbers are milliseconds)"), "{e}");
        // No stampede counterpart: the usual error.
        for text in [
            "http_req_duration < 200",
            "http_req_duration{status:200}: p(95)<200",
            "http_req_waiting: p(95)<200",
        ] {
            let e = Threshold::parse(text).unwrap_err().to_string();
            assert!(!e.contains("k6"), "{text}: {e}");
        }
        // Valid stampede expressions are untouched, even with colons in filter values.
        assert!(Threshold::parse("p95{name=http://a:1/x} < 1s").is_ok());
        assert!(Threshold::parse("iterations > 100").is_ok());
    }

    #[test]
    fn evaluates_against_a_source() {
        let ok = |t: &str| Threshold::parse(t).unwrap().evaluate(&Fixed).ok;
        assert!(ok("p99 < 500ms"));
        assert!(!ok("p99 < 300ms"));
        assert!(ok("p50 <= 100ms"));
        assert!(!ok("error_rate < 1%"));
        assert!(ok("error_rate < 5%"));
        assert!(ok("rps > 100"));
        assert!(!ok("rps >= 200"));
        assert!(ok("requests == 1"));
        assert!(ok("requests != 2"));
        // Nothing matched: the threshold fails rather than passing vacuously.
        let o = Threshold::parse("p99{name=/missing} < 1s")
            .unwrap()
            .evaluate(&Fixed);
        assert!(!o.ok);
        assert_eq!(o.actual, None);
    }
}
