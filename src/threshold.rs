//! Thresholds: a small expression language evaluated against the end-of-run aggregate.
//!
//! ```text
//! threshold  := metric [ "{" filter ("," filter)* "}" ] op value
//! metric     := p50 | p90 | p95 | p99 | p99.9 | p<N> | min | max | mean | avg
//!             | error_rate | rps | requests | failures | iterations | dropped_iterations
//!             | check_rate | check_failures
//! filter     := (name | method | scenario) "=" text
//! op         := "<" | "<=" | ">" | ">=" | "==" | "!="
//! value      := number [ "us" | "ms" | "s" | "m" | "%" ]
//! ```
//!
//! Latency metrics take a duration (`500ms`, `1.5s`; a bare number means milliseconds).
//! `error_rate` and `check_rate` take a ratio (`1%` or `0.01`). Examples: `p99 < 500ms`,
//! `p95{name=/login} < 1s`, `error_rate < 1%`, `rps > 100`.

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
    /// Parses one expression.
    pub fn parse(text: &str) -> Result<Threshold, ParseError> {
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
        let (metric_txt, filter) = match lhs.find('{') {
            Some(i) => {
                let inner = lhs[i + 1..]
                    .strip_suffix('}')
                    .ok_or_else(|| err("missing `}` after the filter"))?;
                (lhs[..i].trim(), parse_filter(inner).map_err(|m| err(&m))?)
            }
            None => (lhs, Filter::default()),
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
        })
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
