//! CI outputs of a summary: JUnit XML (`--junit`), a Markdown summary (`--summary-markdown`,
//! also appended to `$GITHUB_STEP_SUMMARY`), and the comparison of two summary files
//! (`stampede compare`).
//!
//! The comparison reads summary JSON documents as plain JSON values, so a summary written by an
//! older or newer stampede compares as long as the figures it names are present.

use std::fmt::Write as _;

use serde_json::Value;

use crate::report::summary::Summary;

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => o.push(c),
        }
    }
    o
}

/// The summary JSON as `--summary-json` writes it: pretty-printed, except the timeline's
/// intervals, one compact line each (indentation would otherwise be most of a long run's file).
pub(crate) fn summary_json_text(s: &Summary) -> Result<String, serde_json::Error> {
    let mut v = serde_json::to_value(s)?;
    let intervals = v
        .get_mut("timeline")
        .and_then(|t| t.get_mut("intervals"))
        .map(Value::take);
    let mut text = serde_json::to_string_pretty(&v)?;
    if let Some(Value::Array(iv)) = intervals {
        let lines = iv
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()?;
        let body = if lines.is_empty() {
            "[]".to_string()
        } else {
            format!("[\n      {}\n    ]", lines.join(",\n      "))
        };
        // The first `"intervals": null` is the timeline's (nothing before it has that key).
        text = text.replacen("\"intervals\": null", &format!("\"intervals\": {body}"), 1);
    }
    Ok(text)
}

/// A threshold actual with its unit, for people.
pub(crate) fn actual_text(actual: Option<f64>, unit: &str) -> String {
    match actual {
        None => "n/a".into(),
        Some(v) => match unit {
            "s" => format!("{:.2} ms", v * 1000.0),
            "ratio" => format!("{:.2} %", v * 100.0),
            "count" => format!("{v:.0}"),
            "req/s" => format!("{v:.1} req/s"),
            u => format!("{v} {u}"),
        },
    }
}

/// JUnit XML: one `testsuite` of thresholds and one of checks; a crossed threshold or a check
/// with failures is a `<failure>` carrying the actual value.
pub(crate) fn junit(s: &Summary) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let th_fail = s.thresholds.iter().filter(|t| !t.ok).count();
    let ck_fail = s.checks.iter().filter(|c| c.fails > 0).count();
    let _ = writeln!(
        x,
        "<testsuites name=\"stampede {}\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">",
        xml_escape(&s.run_id),
        s.thresholds.len() + s.checks.len(),
        th_fail + ck_fail,
        s.duration_s
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"thresholds\" tests=\"{}\" failures=\"{th_fail}\" errors=\"0\" time=\"{:.3}\">",
        s.thresholds.len(),
        s.duration_s
    );
    for t in &s.thresholds {
        let _ = write!(
            x,
            "    <testcase classname=\"stampede.thresholds\" name=\"{}\" time=\"0\"",
            xml_escape(&t.threshold)
        );
        if t.ok {
            x.push_str("/>\n");
        } else {
            let why = match (&t.reason, t.actual) {
                (Some(r), _) => r.clone(),
                (None, a) => format!("actual {}", actual_text(a, t.unit)),
            };
            let _ = writeln!(
                x,
                ">\n      <failure message=\"{}\" type=\"threshold\">{}: {}</failure>\n    </testcase>",
                xml_escape(&format!("crossed: {why}")),
                xml_escape(&t.threshold),
                xml_escape(&why)
            );
        }
    }
    x.push_str("  </testsuite>\n");
    let _ = writeln!(
        x,
        "  <testsuite name=\"checks\" tests=\"{}\" failures=\"{ck_fail}\" errors=\"0\" time=\"{:.3}\">",
        s.checks.len(),
        s.duration_s
    );
    for c in &s.checks {
        let name = format!("{} {}: {}", c.scenario, c.request, c.name);
        let _ = write!(
            x,
            "    <testcase classname=\"stampede.checks\" name=\"{}\" time=\"0\"",
            xml_escape(&name)
        );
        if c.fails == 0 {
            x.push_str("/>\n");
        } else {
            let msg = format!("{} of {} failed", c.fails, c.passes.saturating_add(c.fails));
            let _ = writeln!(
                x,
                ">\n      <failure message=\"{}\" type=\"check\">{}</failure>\n    </testcase>",
                xml_escape(&msg),
                xml_escape(&msg)
            );
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

fn ms(s: f64) -> String {
    format!("{:.2} ms", s * 1000.0)
}

/// What a latency cell shows when no request of the row succeeded (no latency to show).
const NO_LATENCY: &str = "–";

/// A latency cell: `–` for a row without successful requests (its latencies are 0, not fast).
fn ms_of(s: f64, successes: u64) -> String {
    if successes == 0 {
        NO_LATENCY.into()
    } else {
        ms(s)
    }
}

/// Text for a Markdown table cell: `|` and `\` escaped (a pipe would split the cell, a trailing
/// backslash escape the next one), line breaks shown as `\n` (one would end the row and turn
/// the rest into a paragraph or a heading), `&`, `<` and `>` as entities (GitHub renders HTML
/// in step summaries and comments), other control characters dropped.
pub(crate) fn md_cell(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => o.push_str("\\|"),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            c if c.is_control() => {}
            c => o.push(c),
        }
    }
    o
}

/// Text as inline code in a Markdown table cell: within a code span HTML is not rendered and
/// entities are not decoded, so only what ends the span, the cell or the row is changed:
/// line breaks become spaces, `|` is escaped (GitHub's tables read `\|` even in code) and the
/// fence is longer than any run of backticks inside.
pub(crate) fn md_code(s: &str) -> String {
    let text: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .replace('|', "\\|");
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    if longest == 0 {
        format!("{fence}{text}{fence}")
    } else {
        format!("{fence} {text} {fence}")
    }
}

/// A compact Markdown summary for CI pages and PR comments.
pub(crate) fn markdown(s: &Summary, exit_code: u8) -> String {
    let mut m = String::new();
    let crossed = s.thresholds.iter().filter(|t| !t.ok).count();
    let verdict = if crossed > 0 {
        format!("❌ {crossed} of {} thresholds crossed", s.thresholds.len())
    } else if s.interrupted {
        "⚠️ interrupted".to_string()
    } else {
        "✅ passed".to_string()
    };
    let _ = writeln!(
        m,
        "### stampede run {}: {verdict} (exit {exit_code})\n",
        md_code(&s.run_id)
    );
    let _ = writeln!(
        m,
        "| requests | req/s | error % | p50 | p95 | p99 | duration |\n|---:|---:|---:|---:|---:|---:|---:|"
    );
    let _ = writeln!(
        m,
        "| {} | {:.1} | {:.2} % | {} | {} | {} | {:.1} s |\n",
        s.requests,
        s.rps,
        s.error_rate * 100.0,
        ms_of(s.latency_s.p50, s.requests.saturating_sub(s.failures)),
        ms_of(s.latency_s.p95, s.requests.saturating_sub(s.failures)),
        ms_of(s.latency_s.p99, s.requests.saturating_sub(s.failures)),
        s.duration_s
    );
    if !s.thresholds.is_empty() {
        let _ = writeln!(m, "| threshold | actual | result |\n|---|---:|---|");
        for t in &s.thresholds {
            let _ = writeln!(
                m,
                "| {} | {} | {} |",
                md_code(&t.threshold),
                actual_text(t.actual, t.unit),
                if t.ok { "✅ ok" } else { "❌ crossed" }
            );
        }
        m.push('\n');
    }
    let _ = writeln!(
        m,
        "| name | requests | failures | req/s | p50 | p95 | p99 |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    for r in &s.by_name {
        let ok = r.requests.saturating_sub(r.failures);
        let _ = writeln!(
            m,
            "| {} {} | {} | {} | {:.1} | {} | {} | {} |",
            md_cell(&r.method),
            md_cell(&r.name),
            r.requests,
            r.failures,
            r.rps,
            ms_of(r.latency_s.p50, ok),
            ms_of(r.latency_s.p95, ok),
            ms_of(r.latency_s.p99, ok)
        );
    }
    if !s.checks.is_empty() {
        let _ = writeln!(m, "\n| check | passes | fails |\n|---|---:|---:|");
        for c in &s.checks {
            let _ = writeln!(
                m,
                "| {}: {} | {} | {} |",
                md_cell(&c.request),
                md_cell(&c.name),
                c.passes,
                c.fails
            );
        }
    }
    m
}

/// Fewer requests than this in either run: the row is compared with a caution.
pub(crate) const MIN_SAMPLES: u64 = 100;

/// One compared figure.
#[derive(Clone, Debug)]
pub(crate) struct Delta {
    /// `req/s`, `error %`, `p50`, `p95`, `p99`.
    pub figure: &'static str,
    /// Baseline value (seconds for latencies, ratio for the error rate; NaN for the latencies
    /// of a row without successful requests).
    pub base: f64,
    /// Current value.
    pub cur: f64,
    /// Whether it got worse beyond the tolerance.
    pub regression: bool,
}

/// One compared row: a request name or the total.
#[derive(Clone, Debug)]
pub(crate) struct CompareRow {
    /// `scenario method name`, or `total`.
    pub name: String,
    /// Requests in the baseline and the current run.
    pub requests: (u64, u64),
    /// The figures.
    pub deltas: Vec<Delta>,
    /// A caution (too few samples, missing on one side).
    pub caution: Option<String>,
}

/// The comparison of two summaries.
#[derive(Clone, Debug)]
pub(crate) struct Comparison {
    /// Tolerance as a fraction (0.1 = 10 %).
    pub tolerance: f64,
    /// Total first, then names.
    pub rows: Vec<CompareRow>,
}

impl Comparison {
    /// Whether any figure regressed beyond the tolerance.
    pub(crate) fn regressed(&self) -> bool {
        self.rows
            .iter()
            .any(|r| r.deltas.iter().any(|d| d.regression))
    }
}

/// Why two summaries cannot be compared.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct CompareError(pub String);

fn f(v: &Value, path: &[&str]) -> Option<f64> {
    let mut x = v;
    for p in path {
        x = x.get(p)?;
    }
    x.as_f64()
}

fn figures(v: &Value, what: &str) -> Result<(u64, [f64; 5]), CompareError> {
    let get = |path: &[&str]| {
        f(v, path).ok_or_else(|| CompareError(format!("{what}: no `{}`", path.join("."))))
    };
    let (requests, failures) = (get(&["requests"])?, get(&["failures"])?);
    // No successful request, no latency (its percentiles read 0): NaN, shown as `–` and never
    // judged (every comparison with NaN is false).
    let lat = |q: &str| -> Result<f64, CompareError> {
        let v = get(&["latency_s", q])?;
        Ok(if failures >= requests { f64::NAN } else { v })
    };
    Ok((
        requests as u64,
        [
            get(&["rps"])?,
            failures / requests.max(1.0),
            lat("p50")?,
            lat("p95")?,
            lat("p99")?,
        ],
    ))
}

const FIGURES: [&str; 5] = ["req/s", "error %", "p50", "p95", "p99"];

fn deltas(b: &[f64; 5], c: &[f64; 5], tol: f64, judge: bool) -> Vec<Delta> {
    FIGURES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let (base, cur) = (b[i], c[i]);
            let regression = judge
                && match i {
                    // Throughput: lower is worse.
                    0 => cur < base * (1.0 - tol),
                    // Error rate: worse when it rises beyond the tolerance relative to the
                    // baseline and by more than 0.1 percentage point (so a rise from zero counts).
                    1 => cur > base * (1.0 + tol) && cur - base > 0.001,
                    // Latency: higher is worse (and by more than 1 ms, below which timer noise
                    // dominates).
                    _ => cur > base * (1.0 + tol) && cur - base > 0.001,
                };
            Delta {
                figure: name,
                base,
                cur,
                regression,
            }
        })
        .collect()
}

fn row_key(r: &Value) -> String {
    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    format!("{} {} {}", s("scenario"), s("method"), s("name"))
}

/// Compares two summary JSON documents.
pub(crate) fn compare(
    base: &Value,
    cur: &Value,
    tolerance: f64,
) -> Result<Comparison, CompareError> {
    let (bn, bf) = figures(base, "baseline")?;
    let (cn, cf) = figures(cur, "current")?;
    let few = |b: u64, c: u64| {
        (b.min(c) < MIN_SAMPLES).then(|| {
            format!(
                "too few samples to compare ({b} vs {c} requests; fewer than {MIN_SAMPLES} are not judged)"
            )
        })
    };
    let mut rows = vec![CompareRow {
        name: "total".into(),
        requests: (bn, cn),
        deltas: deltas(&bf, &cf, tolerance, bn.min(cn) >= MIN_SAMPLES),
        caution: few(bn, cn),
    }];
    let empty = Vec::new();
    let brows = base
        .get("by_name")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let crows = cur
        .get("by_name")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    for c in crows {
        let key = row_key(c);
        let b = brows.iter().find(|b| row_key(b) == key);
        let (cn, cf) = figures(c, &format!("current `{key}`"))?;
        match b {
            Some(b) => {
                let (bn, bf) = figures(b, &format!("baseline `{key}`"))?;
                rows.push(CompareRow {
                    name: key,
                    requests: (bn, cn),
                    deltas: deltas(&bf, &cf, tolerance, bn.min(cn) >= MIN_SAMPLES),
                    caution: few(bn, cn),
                });
            }
            None => rows.push(CompareRow {
                name: key,
                requests: (0, cn),
                deltas: deltas(&cf, &cf, tolerance, false),
                caution: Some("not in the baseline".into()),
            }),
        }
    }
    for b in brows {
        let key = row_key(b);
        if !crows.iter().any(|c| row_key(c) == key) {
            let (bn, bf) = figures(b, &format!("baseline `{key}`"))?;
            rows.push(CompareRow {
                name: key,
                requests: (bn, 0),
                deltas: deltas(&bf, &bf, tolerance, false),
                caution: Some("not in the current run".into()),
            });
        }
    }
    Ok(Comparison { tolerance, rows })
}

pub(crate) fn fig_text(figure: &str, v: f64) -> String {
    if v.is_nan() {
        return NO_LATENCY.into();
    }
    match figure {
        "req/s" => format!("{v:.1}"),
        "error %" => format!("{:.2} %", v * 100.0),
        _ => ms(v),
    }
}

pub(crate) fn change_text(d: &Delta) -> String {
    if d.base.is_nan() || d.cur.is_nan() {
        NO_LATENCY.into()
    } else if d.base == 0.0 {
        if d.cur == 0.0 {
            "±0".into()
        } else {
            "new".into()
        }
    } else {
        format!("{:+.1} %", (d.cur - d.base) / d.base * 100.0)
    }
}

/// The comparison as text (or a Markdown table).
pub(crate) fn render_comparison(c: &Comparison, markdown: bool) -> String {
    let mut o = String::new();
    let verdict = if c.regressed() {
        format!("REGRESSION beyond {:.0} %", c.tolerance * 100.0)
    } else {
        format!("no regression beyond {:.0} %", c.tolerance * 100.0)
    };
    if markdown {
        let _ = writeln!(o, "### stampede compare: {verdict}\n");
        let _ = writeln!(
            o,
            "| name | requests | figure | baseline | current | change | |\n|---|---:|---|---:|---:|---:|---|"
        );
    } else {
        let _ = writeln!(o, "stampede compare: {verdict}");
    }
    for r in &c.rows {
        if !markdown {
            let _ = writeln!(
                o,
                "\n{}  ({} → {} requests){}",
                r.name,
                r.requests.0,
                r.requests.1,
                r.caution
                    .as_ref()
                    .map(|x| format!("  caution: {x}"))
                    .unwrap_or_default()
            );
        }
        for d in &r.deltas {
            let mark = if d.regression { "REGRESSION" } else { "" };
            if markdown {
                let _ = writeln!(
                    o,
                    "| {} | {} → {} | {} | {} | {} | {} | {}{} |",
                    md_cell(&r.name),
                    r.requests.0,
                    r.requests.1,
                    d.figure,
                    fig_text(d.figure, d.base),
                    fig_text(d.figure, d.cur),
                    change_text(d),
                    if d.regression { "❌ regression" } else { "" },
                    r.caution
                        .as_ref()
                        .map(|x| format!(" ⚠️ {x}"))
                        .unwrap_or_default()
                );
            } else {
                let _ = writeln!(
                    o,
                    "  {:<8} {:>12} → {:>12}  {:>9}  {mark}",
                    d.figure,
                    fig_text(d.figure, d.base),
                    fig_text(d.figure, d.cur),
                    change_text(d)
                );
            }
        }
    }
    o
}

/// Parses a tolerance in percent: `10%` or `10`.
pub(crate) fn parse_tolerance(s: &str) -> Result<f64, String> {
    let t = s.trim().trim_end_matches('%').trim();
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v / 100.0),
        _ => Err(format!("`{s}`: write a percentage such as 10%")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(rps: f64, p99: f64, reqs: u64) -> Value {
        serde_json::json!({
            "requests": reqs, "failures": 0, "rps": rps,
            "latency_s": {"p50": p99 / 2.0, "p95": p99 * 0.9, "p99": p99},
            "by_name": [{"scenario": "s", "method": "GET", "name": "/", "requests": reqs,
                "failures": 0, "rps": rps,
                "latency_s": {"p50": p99 / 2.0, "p95": p99 * 0.9, "p99": p99}}]
        })
    }

    #[test]
    fn slower_latency_beyond_the_tolerance_is_a_regression() {
        let c = compare(&doc(100.0, 0.010, 1000), &doc(100.0, 0.0105, 1000), 0.1).unwrap();
        assert!(!c.regressed());
        let c = compare(&doc(100.0, 0.010, 1000), &doc(100.0, 0.020, 1000), 0.1).unwrap();
        assert!(c.regressed());
        let c = compare(&doc(100.0, 0.010, 1000), &doc(80.0, 0.010, 1000), 0.1).unwrap();
        assert!(c.regressed(), "throughput fell 20 %");
        // Too few samples: cautioned, not judged.
        let c = compare(&doc(100.0, 0.010, 10), &doc(100.0, 0.050, 10), 0.1).unwrap();
        assert!(!c.regressed());
        assert!(c.rows[0].caution.is_some());
    }

    #[test]
    fn tolerances_are_percentages() {
        assert_eq!(parse_tolerance("10%"), Ok(0.1));
        assert_eq!(parse_tolerance("5"), Ok(0.05));
        assert!(parse_tolerance("ten").is_err());
    }
}
